"""The one time seam of the market model: a real wall clock, or a manual one tests advance.

Only market data (prices, trades, candles, timestamps in frames) follows this clock, so that the
same seed and the same simulated times give the same frames. Connection timers (idle kill,
``{"status":"UP"}`` period, error-close delay, rate windows) run on the event loop's clock and
are shrunk through :class:`~upbit_ws.simulator.config.SimulatorConfig` instead.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "WallClock"]


class Clock(Protocol):
    """Source of the simulated time, in epoch seconds."""

    @property
    def manual(self) -> bool:
        """Tell whether time only moves when a test advances it."""
        ...

    def now(self) -> float:
        """Return the current simulated time in epoch seconds."""
        ...


class WallClock:
    """The real time: the market model steps by itself on the event loop."""

    @property
    def manual(self) -> bool:
        """Return ``False``: the wall clock moves on its own."""
        return False

    def now(self) -> float:
        """Return ``time.time()``."""
        return time.time()

    def __repr__(self) -> str:
        return "WallClock()"


class ManualClock:
    """A clock that moves only through :meth:`advance` (``Simulator.advance`` calls it)."""

    def __init__(self, start: float) -> None:
        self._now = float(start)

    @property
    def manual(self) -> bool:
        """Return ``True``: time moves only when advanced."""
        return True

    def now(self) -> float:
        """Return the current simulated time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("a manual clock only moves forward")
        self._now += seconds
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now:.3f})"
