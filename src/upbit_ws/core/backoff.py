"""Reconnect backoff: jittered, capped exponential delays that never give up.

Ordinary failures (refused, reset, timed out, closed) retry fast at first (within
``first_delay``, ~100 ms) and then back off exponentially up to ``cap``; a socket that proved
the path (see :class:`~upbit_ws.core.session.Session`) resets the sequence. Upbit's rate-limit
answers get longer waits (``docs/protocol.md`` section 8.1): HTTP 429 jumps to a floor of
several seconds and stays at least there for the rest of the sequence, and HTTP 418 (a block
that grows on repeat) waits out the block, for the server's Retry-After when it gave one, else
for a floor that doubles on every consecutive 418. A refused API key waits ``auth_retry`` (the
key-health loop usually re-opens the connection sooner).

Randomness comes from one injected :class:`random.Random`, so tests are reproducible.
"""

from __future__ import annotations

import math
import random
from typing import Literal

from upbit_ws.core.config import BackoffConfig

__all__ = ["Backoff", "BackoffClass"]

#: Which schedule a failure backs off on; :func:`upbit_ws.core.classify.classify` picks it.
BackoffClass = Literal["normal", "rate_limited", "blocked", "auth"]


class Backoff:
    """Hand out reconnect delays; one instance per managed connection.

    ``attempt`` counts the delays handed out since the last :meth:`reset` (so the next ordinary
    delay is drawn under :meth:`envelope` of ``attempt``).
    """

    __slots__ = ("_blocks", "_rng", "attempt", "config")

    def __init__(
        self, config: BackoffConfig | None = None, *, rng: random.Random | None = None
    ) -> None:
        self.config = config or BackoffConfig()
        self._rng = rng if rng is not None else random.Random()
        self.attempt = 0
        self._blocks = 0

    def __repr__(self) -> str:
        return f"Backoff(attempt={self.attempt}, cap={self.config.cap:g})"

    def envelope(self, attempt: int) -> float:
        """Return the upper bound of the ordinary delay for retry ``attempt`` (0-based)."""
        cfg = self.config
        # Compare exponents rather than computing factor ** attempt, which overflows.
        if cfg.factor > 1 and attempt * math.log(cfg.factor) >= math.log(cfg.cap / cfg.first_delay):
            return cfg.cap
        return min(cfg.cap, cfg.first_delay * cfg.factor**attempt)

    def _jittered(self, top: float) -> float:
        return top * (1.0 - self.config.jitter * self._rng.random())

    def _attempts_to_reach(self, floor: float) -> int:
        """Return the smallest attempt whose envelope's lower edge is at least ``floor``."""
        cfg = self.config
        bottom = cfg.first_delay * (1.0 - cfg.jitter)
        if floor <= bottom or cfg.factor == 1:
            return 0
        return max(0, math.ceil(math.log(floor / bottom) / math.log(cfg.factor)))

    def next_delay(
        self, *, kind: BackoffClass = "normal", retry_after: float | None = None
    ) -> float:
        """Return the seconds to wait before the next connect attempt, and count the attempt.

        ``kind`` is the backoff class of the failure; ``retry_after`` the wait the server asked
        for (HTTP Retry-After), used for ``rate_limited`` and ``blocked``. Ordinary and
        rate-limited delays lie in ``[0, cap]`` unless the server asked for longer.
        """
        cfg = self.config
        server_wait = retry_after if retry_after is not None and retry_after > 0 else None
        if kind == "blocked":
            self._blocks += 1
            # Later ordinary retries start from the cap: a host that was blocked once should not
            # hammer Upbit again right after the block (section 8.1: blocks grow on repeat).
            self.attempt = max(self.attempt + 1, self._attempts_to_reach(cfg.cap))
            if server_wait is not None:
                return server_wait
            floor = cfg.blocked_floor * cfg.factor ** min(self._blocks - 1, 64)
            top = min(cfg.blocked_cap, floor)
            return min(cfg.blocked_cap, top * (1.0 + cfg.jitter * self._rng.random()))
        if kind == "auth":
            self.attempt += 1
            return self._jittered(cfg.auth_retry)
        self._blocks = 0
        delay = self._jittered(self.envelope(self.attempt))
        if kind == "rate_limited":
            floor = cfg.rate_limited_floor
            # Jump the sequence so every later ordinary delay is at least the floor as well.
            self.attempt = max(self.attempt, self._attempts_to_reach(floor))
            delay = max(delay, min(cfg.cap, floor * (1.0 + cfg.jitter * self._rng.random())))
            if server_wait is not None:
                delay = max(delay, server_wait)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start over from the first-retry range, after a healthy session."""
        self.attempt = 0
        self._blocks = 0
