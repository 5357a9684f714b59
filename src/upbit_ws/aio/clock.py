"""The shell's one clock seam: monotonic seconds from the running loop, and the wall clock.

The pure core never reads a clock; every input it gets carries ``now`` from here. Using the
loop's own clock (``loop.time()``) means a deadline the core hands back can be slept on with
``asyncio.timeout`` without converting between clocks. A :class:`Clock` is injected into the
managed connection and the manager, so tests may replace it (for example with a clock that
starts at a known value); whatever it returns must advance at the loop's rate, because the
shell sleeps ``deadline - clock.now()`` seconds of loop time.

The wall clock is used only where Upbit speaks in calendar time: :meth:`Clock.wall` converts
the monotonic receive time to epoch for the exchange-to-client latency (frames carry an epoch
``timestamp``), and :func:`utc_now` serves API key expiry (``GET /v1/api_keys`` answers
``expire_at`` in KST, section 9.2).

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "LoopClock", "WallClock", "utc_now"]


class Clock(Protocol):
    """Monotonic seconds at the event loop's rate, and epoch seconds."""

    def now(self) -> float:
        """Return the current monotonic time in seconds."""
        ...

    def wall(self) -> float:
        """Return the current epoch time in seconds (to compare with Upbit's timestamps)."""
        ...


class LoopClock:
    """The running event loop's clock (``loop.time()``): the default :class:`Clock`.

    The loop is looked up at each call, so one instance may be built outside a loop. Outside a
    running loop (a snapshot read from synchronous code) it reads :func:`time.monotonic`,
    which is what asyncio's own loops use.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "LoopClock()"

    def now(self) -> float:
        """Return ``loop.time()`` of the running loop (``time.monotonic()`` without one)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return time.monotonic()
        return loop.time()

    def wall(self) -> float:
        """Return ``time.time()``."""
        return time.time()


class WallClock(Protocol):
    """Calendar time, for API key expiry."""

    def __call__(self) -> datetime:
        """Return the current time as an aware datetime."""
        ...


def utc_now() -> datetime:
    """Return the current wall-clock time as an aware UTC datetime."""
    return datetime.now(UTC)
