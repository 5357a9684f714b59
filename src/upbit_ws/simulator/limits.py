"""Rate limits of section 8, as pure sliding windows over an injected ``now``.

* Connects: 5 per second (public per IP, private per account). Excess gets HTTP 429 at the
  handshake; a client that keeps going gets 418 and a block that doubles on every repeat.
* Messages: 5 per second and 100 per minute per connection.
* REST: per-group requests per second, reported in ``Remaining-Req`` (section 8.2).

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

__all__ = ["ConnectDecision", "ConnectLimiter", "SlidingWindow"]


class SlidingWindow:
    """Count events within the last ``window`` seconds and allow at most ``limit``."""

    def __init__(self, limit: int | None, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def _trim(self, now: float) -> None:
        times = self._times
        while times and times[0] <= now - self.window:
            times.popleft()

    def remaining(self, now: float) -> int | None:
        """Return how many events the window still allows (``None`` when unlimited)."""
        if self.limit is None:
            return None
        self._trim(now)
        return max(0, self.limit - len(self._times))

    def hit(self, now: float) -> bool:
        """Record one event at ``now``; return ``False`` (and record nothing) if over the limit."""
        if self.limit is None:
            return True
        self._trim(now)
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


@dataclass(frozen=True, slots=True)
class ConnectDecision:
    """The answer to one handshake: ``status`` 101 (accept), 429 or 418."""

    status: Literal[101, 429, 418]
    #: Seconds left of a 418 block.
    blocked_for: float = 0.0
    remaining: int | None = None


class ConnectLimiter:
    """Handshake rate limit with 429, then 418 and a growing block (section 8.1)."""

    def __init__(
        self,
        *,
        per_second: int | None,
        window: float,
        strikes_before_block: int,
        block: float,
        block_max: float,
        memory: float,
    ) -> None:
        self._window = SlidingWindow(per_second, window)
        self._strikes_before_block = strikes_before_block
        self._block = block
        self._block_max = block_max
        self._memory = memory
        self._strikes = 0
        self._last_strike = float("-inf")
        self._blocked_until = float("-inf")
        self._blocks = 0

    def check(self, now: float) -> ConnectDecision:
        """Decide one handshake at ``now``."""
        if now < self._blocked_until:
            return ConnectDecision(418, blocked_for=self._blocked_until - now, remaining=0)
        if now - self._last_strike > self._memory:
            # A quiet spell forgives earlier excess, and the block length starts over.
            self._strikes = 0
            if now - self._blocked_until > self._memory:
                self._blocks = 0
        if self._window.hit(now):
            return ConnectDecision(101, remaining=self._window.remaining(now))
        self._strikes += 1
        self._last_strike = now
        if self._strikes > self._strikes_before_block:
            length = min(self._block_max, self._block * 2**self._blocks)
            self._blocks += 1
            self._strikes = 0
            self._blocked_until = now + length
            return ConnectDecision(418, blocked_for=length, remaining=0)
        return ConnectDecision(429, remaining=0)
