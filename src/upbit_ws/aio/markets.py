"""The market list: loaded from ``GET /v1/market/all``, cached, refreshed, judged before use.

The subscription service checks codes against it and expands ``KRW-*`` style wildcards with it
(section 9.1). It is refreshed every ``SubscriptionConfig.market_refresh`` seconds; a failed
load is retried sooner, on delays from the core :class:`~upbit_ws.core.backoff.Backoff` (about
a second, growing to the refresh interval), and at once when a socket opens after one failed
(:meth:`MarketList.retry_if_failed`): an app started offline, whose ``KRW-*`` waits for the
list, gets it when the network is back rather than up to a refresh interval later.

Whether a loaded list may replace the known one is the pure
:class:`~upbit_ws.core.markets.MarketListPolicy` (an empty or drastically shorter answer is
kept out, counted in ``anomalies`` and logged). Every accepted list goes to ``on_change``,
which re-resolves the subscriptions.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from upbit_ws.aio.clock import Clock, LoopClock
from upbit_ws.aio.rest import RestClient
from upbit_ws.core.backoff import Backoff
from upbit_ws.core.config import BackoffConfig
from upbit_ws.core.errors import UpbitWsError
from upbit_ws.core.markets import MarketListPolicy

__all__ = ["FIRST_LOAD_TIMEOUT", "MarketList", "MarketListStatistics"]

_log = logging.getLogger("upbit_ws.subscriptions")

#: How long the first market-list load may take when the service starts.
FIRST_LOAD_TIMEOUT: Final = 5.0
#: The first retry after a failed load; retries grow from there up to the refresh interval.
_RETRY_FIRST: Final = 1.0


@dataclass(frozen=True, slots=True)
class MarketListStatistics:
    """The market-list cache: how many codes, when loaded, how loads went."""

    markets: int | None
    loaded_at: float | None
    loads: int
    failures: int
    last_error: str | None
    #: Refreshes whose list was empty or drastically shorter and was not taken.
    anomalies: int = 0


class MarketList:
    """The cached market codes (``None`` before the first load); see the module docs.

    ``rest`` loads the list (``None``: only :meth:`set` fills it); ``markets`` is a list known
    from the start; ``on_change(old, new)`` hears every list taken.
    """

    def __init__(
        self,
        rest: RestClient | None,
        *,
        markets: Iterable[str] | None,
        refresh_every: float,
        on_change: Callable[[frozenset[str] | None, frozenset[str]], None],
        clock: Clock | None = None,
        retry_first: float = _RETRY_FIRST,
    ) -> None:
        self._rest = rest
        self._refresh_every = refresh_every
        self._retry_first = retry_first
        self._failed = False  # the last load failed (not: was refused by the policy)
        self._retry = asyncio.Event()  # set: retry now (see retry_if_failed)
        self._on_change = on_change
        self._clock: Clock = clock or LoopClock()
        self._policy = MarketListPolicy()
        self.codes: frozenset[str] | None = None if markets is None else frozenset(markets)
        #: Set once a list is known.
        self.ready = asyncio.Event()
        if self.codes is not None:
            self.ready.set()
        self._loaded_at: float | None = None
        self._loads = 0
        self._failures = 0
        self._anomalies = 0
        self._error: str | None = None

    def __repr__(self) -> str:
        return f"<MarketList {'unknown' if self.codes is None else len(self.codes)} codes>"

    @property
    def can_load(self) -> bool:
        """Tell whether the list is loaded from REST (and refreshed)."""
        return self._rest is not None

    def progress(self) -> int:
        """Return a counter that grows while the refresher does useful work (its supervisor's)."""
        return self._loads + self._failures

    async def load(self, *, wait: float = FIRST_LOAD_TIMEOUT) -> bool:
        """Load the list unless it is known, waiting at most ``wait`` seconds; return if known."""
        if self.codes is None and self._rest is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.refresh()
        return self.codes is not None

    async def refresh(self) -> bool:
        """Reload the list now; return whether a list was loaded and taken."""
        if self._rest is None:
            return False
        try:
            listed = await self._rest.market_all()
        except UpbitWsError as exc:
            self._failures += 1
            self._failed = True
            self._error = str(exc)
            _log.warning("market list not loaded: %s", exc)
            return False
        self._failed = False
        codes = frozenset(m.market for m in listed)
        verdict = self._policy.judge(self.codes, codes)
        if not verdict.take:
            self._anomalies += 1
            self._error = f"{verdict.reason}; kept the known list"
            _log.warning(
                "market list refresh ignored: %s (wildcard subscriptions keep their codes)",
                self._error,
            )
            return False
        if verdict.repeated:
            _log.warning(
                "the market list shrank from %d to %d codes on %d refreshes in a row; taking it",
                len(self.codes or ()),
                len(codes),
                verdict.repeated,
            )
        self._loads += 1
        self._error = None
        self.set(codes)
        return True

    def set(self, codes: Iterable[str]) -> None:
        """Take ``codes`` as the market list (the subscriptions are re-resolved)."""
        new = frozenset(codes)
        old = self.codes
        self.codes = new
        self._loaded_at = self._clock.now()
        self.ready.set()
        self._on_change(old, new)

    def retry_if_failed(self) -> None:
        """Retry now if the last load failed: the caller saw the network work again."""
        if self._failed and self._rest is not None:
            self._retry.set()

    async def run(self) -> None:
        """Refresh every ``refresh_every`` seconds; after a failure retry sooner, backing off.

        A wait after a failure ends early when :meth:`retry_if_failed` is called.
        """
        every = self._refresh_every
        first = min(self._retry_first, every)
        retries = Backoff(
            BackoffConfig(
                first_delay=first,
                cap=every,
                jitter=0.1,
                rate_limited_floor=every,
                blocked_floor=first,
            )
        )
        delay = retries.next_delay() if self.codes is None else every
        while True:
            self._retry.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._retry.wait()
            if await self.refresh():
                retries.reset()
                delay = every
            else:
                delay = retries.next_delay()

    def statistics(self) -> MarketListStatistics:
        """Return a snapshot of the cache and its loads."""
        return MarketListStatistics(
            markets=None if self.codes is None else len(self.codes),
            loaded_at=self._loaded_at,
            loads=self._loads,
            failures=self._failures,
            last_error=self._error,
            anomalies=self._anomalies,
        )
