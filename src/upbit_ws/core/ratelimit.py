"""Rate limiting with GCRA over an injected ``now``: callers wait, nothing is dropped.

Upbit allows 5 connects per second (per IP for public, per account for private), and 5
messages per second *and* 100 per minute on each connection (``docs/protocol.md`` section
8.1). Going over gets HTTP 429 and then 418 with a block that grows on repeat, so the client
paces itself: every outbound frame and every connect first asks a limiter how long to wait.

:class:`Gcra` is the Generic Cell Rate Algorithm: one number of state (the theoretical arrival
time, TAT), O(1) per call. With emission interval ``T = period / rate`` and tolerance
``tau = (burst - 1) * T``, an event at ``t`` conforms when ``t >= TAT - tau``, and admitting it
sets ``TAT = max(TAT, t) + T``. Unrolled, event ``k`` is admitted at the earliest
``t >= max_j(t_j + (k - j) * T) - tau`` over the earlier admitted events ``j``; so any half-open
window of length ``L`` holds fewer than ``L / T + burst`` admitted events.
:meth:`Gcra.window` uses that to build a limiter that never lets more than ``limit`` events
into any window of ``period`` seconds while still allowing ``burst`` at once: it lowers the
sustained rate to ``limit - burst + 1`` per period.

:meth:`Gcra.acquire` *reserves* the slot and returns the wait, so concurrent callers queue up
in order without ever over-admitting; :class:`LimiterChain` reserves the same instant in every
limiter it holds, so "5 per second and 100 per minute" both hold for the frames it admits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from upbit_ws.core.config import RateLimits
from upbit_ws.core.errors import ConfigError

__all__ = [
    "ConnectLimiter",
    "Gcra",
    "LimiterChain",
    "LimiterStatistics",
    "SharedConnectLimiter",
    "connect_limiter",
    "message_limiter",
]


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """A snapshot of one limiter's work: admissions, how many had to wait, and how long."""

    acquired: int
    delayed: int
    total_delay: float
    max_delay: float


class _Counters:
    __slots__ = ("acquired", "delayed", "max_delay", "total_delay")

    def __init__(self) -> None:
        self.acquired = 0
        self.delayed = 0
        self.total_delay = 0.0
        self.max_delay = 0.0

    def record(self, wait: float) -> None:
        self.acquired += 1
        if wait > 0:
            self.delayed += 1
            self.total_delay += wait
            self.max_delay = max(self.max_delay, wait)

    def snapshot(self) -> LimiterStatistics:
        return LimiterStatistics(self.acquired, self.delayed, self.total_delay, self.max_delay)


class Gcra:
    """A GCRA limiter: ``rate`` events per ``period`` seconds, ``burst`` of them at once.

    Time is whatever monotonic seconds the caller passes as ``now``; the limiter never reads a
    clock. ``now`` should not go backwards between calls (an earlier ``now`` is treated as the
    latest one seen, so a reservation never moves into the past).
    """

    __slots__ = ("_counters", "_latest", "_tat", "burst", "interval", "period", "rate", "tolerance")

    def __init__(self, *, rate: float, period: float, burst: int = 1) -> None:
        problems = []
        if not (_finite(rate) and rate > 0):
            problems.append(f"rate must be a finite number > 0, got {rate!r}")
        if not (_finite(period) and period > 0):
            problems.append(f"period must be a finite number > 0 s, got {period!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            problems.append(f"burst must be a whole number >= 1, got {burst!r}")
        if problems:
            raise ConfigError(problems)
        self.rate = float(rate)
        self.period = float(period)
        self.burst = burst
        self.interval = self.period / self.rate
        self.tolerance = (burst - 1) * self.interval
        self._tat = -math.inf
        self._latest = -math.inf
        self._counters = _Counters()

    @classmethod
    def window(cls, *, limit: int, period: float, burst: int = 1, margin: float = 0.0) -> Gcra:
        """Return a limiter admitting at most ``limit`` events in any window of ``period`` s.

        ``burst`` events may go at once; the sustained rate is then ``limit - burst + 1`` per
        ``period + margin`` seconds, which is what keeps every window of ``period + margin``
        seconds (and so every window of ``period``) at ``limit`` events or fewer.
        """
        problems = []
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            problems.append(f"limit must be a whole number >= 1, got {limit!r}")
        elif isinstance(burst, int) and not 1 <= burst <= limit:
            problems.append(f"burst must be between 1 and limit ({limit}), got {burst!r}")
        if not (_finite(margin) and margin >= 0):
            problems.append(f"margin must be a finite number >= 0 s, got {margin!r}")
        if problems:
            raise ConfigError(problems)
        return cls(rate=limit - burst + 1, period=period + margin, burst=burst)

    def __repr__(self) -> str:
        return f"Gcra(rate={self.rate:g}, period={self.period:g}, burst={self.burst})"

    def _clamp(self, now: float) -> float:
        if now < self._latest:
            return self._latest
        self._latest = now
        return now

    def earliest(self, now: float) -> float:
        """Return the earliest time at or after ``now`` when one event would be admitted."""
        return max(self._clamp(now), self._tat - self.tolerance)

    def delay(self, now: float) -> float:
        """Return how long an event arriving at ``now`` would wait (0 if admitted at once)."""
        now = self._clamp(now)
        return max(0.0, self._tat - self.tolerance - now)

    def reserve(self, at: float) -> None:
        """Record one event admitted at ``at``; ``at`` must be :meth:`earliest` or later."""
        self._tat = max(self._tat, at) + self.interval

    def acquire(self, now: float) -> float:
        """Reserve the next slot for an event arriving at ``now`` and return how long to wait.

        The caller must wait the returned seconds before acting; the slot stays reserved, so
        later callers queue behind it.
        """
        now = self._clamp(now)
        at = self.earliest(now)
        self.reserve(at)
        wait = at - now
        self._counters.record(wait)
        return wait

    def statistics(self) -> LimiterStatistics:
        """Return how many events were admitted, how many waited, and for how long."""
        return self._counters.snapshot()


class LimiterChain:
    """Several limiters that must all admit an event, reserved at one common instant.

    Used for Upbit's "5 messages per second and 100 per minute" on one connection: the wait is
    the longest of the parts, and the same admission time is recorded in every part, so every
    part's bound holds for the events the chain admits.
    """

    __slots__ = ("_counters", "parts")

    def __init__(self, parts: tuple[Gcra, ...]) -> None:
        if not parts:
            raise ConfigError(["a limiter chain needs at least one limiter"])
        self.parts = parts
        self._counters = _Counters()

    def __repr__(self) -> str:
        return f"LimiterChain({', '.join(map(repr, self.parts))})"

    def earliest(self, now: float) -> float:
        """Return the earliest time at or after ``now`` when every part would admit an event."""
        return max(part.earliest(now) for part in self.parts)

    def delay(self, now: float) -> float:
        """Return how long an event arriving at ``now`` would wait (0 if admitted at once)."""
        return max(part.delay(now) for part in self.parts)

    def acquire(self, now: float) -> float:
        """Reserve the next slot in every part for an event at ``now``; return the wait."""
        at = self.earliest(now)
        for part in self.parts:
            part.reserve(at)
        wait = max(0.0, at - now)
        self._counters.record(wait)
        return wait

    def statistics(self) -> LimiterStatistics:
        """Return how many events the chain admitted, how many waited, and for how long."""
        return self._counters.snapshot()


def message_limiter(limits: RateLimits | None = None) -> LimiterChain:
    """Return a fresh per-connection message limiter (5/s and 100/min by default).

    Upbit counts messages per connection (section 8.1), so each new socket gets a new one.
    """
    limits = limits or RateLimits()
    return LimiterChain(
        (
            Gcra.window(
                limit=limits.messages_per_second,
                period=1.0,
                burst=limits.message_burst,
                margin=limits.margin,
            ),
            Gcra.window(
                limit=limits.messages_per_minute,
                period=60.0,
                burst=limits.minute_burst,
                margin=limits.margin,
            ),
        )
    )


def connect_limiter(limits: RateLimits | None = None) -> Gcra:
    """Return a connect limiter (5/s by default) to share across every connection of a process.

    Upbit counts connects per IP (public) or per account (private), so one instance must pace
    every connection the process opens (section 8.1).
    """
    limits = limits or RateLimits()
    return Gcra.window(
        limit=limits.connects_per_second,
        period=1.0,
        burst=limits.connect_burst,
        margin=limits.margin,
    )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class ConnectLimiter(Protocol):
    """What a connection asks before each connect: a :class:`Gcra` or the shared limiter."""

    def delay(self, now: float) -> float:
        """Return how long a connect at ``now`` would wait (0 if admitted at once)."""

    def acquire(self, now: float) -> float:
        """Reserve the next connect slot at ``now`` and return how long to wait."""

    def statistics(self) -> LimiterStatistics:
        """Return how many connects were admitted, how many waited, and for how long."""


class SharedConnectLimiter:
    """A connect limiter that keeps every setting it was asked for: the strictest wins.

    Upbit counts connects per IP (public) and per account (private) (section 8.1) however
    many managers a process runs, so the process has one of these
    (:func:`shared_connect_limiter`). :meth:`require` adds the limiter of a
    :class:`~upbit_ws.core.config.RateLimits` unless one already held is at least as strict; a
    connect waits until every limiter held admits it, at one common instant, so no setting's
    bound is ever exceeded, whichever manager connects.
    """

    __slots__ = ("_acquired", "_delayed", "_max_delay", "_parts", "_total_delay")

    def __init__(self) -> None:
        self._parts: list[Gcra] = []
        self._acquired = 0
        self._delayed = 0
        self._total_delay = 0.0
        self._max_delay = 0.0

    def __repr__(self) -> str:
        return f"SharedConnectLimiter({', '.join(map(repr, self._parts))})"

    @property
    def parts(self) -> tuple[Gcra, ...]:
        """Return the limiters every connect must pass."""
        return tuple(self._parts)

    def require(self, limits: RateLimits) -> None:
        """Make every later connect also respect ``limits`` (a no-op if already as strict)."""
        new = connect_limiter(limits)
        if not any(_at_least_as_strict(part, new) for part in self._parts):
            self._parts = [p for p in self._parts if not _at_least_as_strict(new, p)] + [new]

    def delay(self, now: float) -> float:
        """Return how long a connect at ``now`` would wait (0 if admitted at once)."""
        return max((part.delay(now) for part in self._parts), default=0.0)

    def acquire(self, now: float) -> float:
        """Reserve the next connect slot in every limiter held and return how long to wait."""
        if not self._parts:
            self.require(RateLimits())
        at = max(part.earliest(now) for part in self._parts)
        for part in self._parts:
            part.reserve(at)
        wait = max(0.0, at - now)
        self._acquired += 1
        if wait > 0:
            self._delayed += 1
            self._total_delay += wait
            self._max_delay = max(self._max_delay, wait)
        return wait

    def statistics(self) -> LimiterStatistics:
        """Return how many connects were admitted, how many waited, and for how long."""
        return LimiterStatistics(self._acquired, self._delayed, self._total_delay, self._max_delay)


def _at_least_as_strict(a: Gcra, b: Gcra) -> bool:
    """Tell whether every sequence ``a`` admits, ``b`` admits too.

    GCRA admits events ``j < k`` when ``t_k - t_j >= (k - j) * interval - tolerance``; that
    holds for ``b`` whenever it holds for ``a`` if ``a``'s slope and its bound at ``k - j = 1``
    are both at least ``b``'s.
    """
    return a.interval >= b.interval and a.interval - a.tolerance >= b.interval - b.tolerance - 1e-12
