"""What the dashboard shows, kept apart from how it is drawn (no Textual here).

The subscription readers write into a :class:`DashboardModel` as fast as frames arrive; the
app reads it on a timer (about 10 times a second) and redraws only what changed. So a fast
stream never starves the UI: between two redraws a ticker may change twenty times and is drawn
once, from its latest value.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from upbit_ws.core.events import ConnectionStateChanged, Event, GapEvent, RequestRejected
from upbit_ws.core.messages import Candle, Orderbook, Ticker

__all__ = [
    "CANDLES_SHOWN",
    "SORT_KEYS",
    "Bar",
    "ConnectionStatus",
    "DashboardModel",
    "SortKey",
    "sort_codes",
]

#: The chart keeps this many 1-minute candles (the newest).
CANDLES_SHOWN: Final = 40
#: Lines kept in the event log panel.
LOG_LINES: Final = 200
#: How long the status bar keeps saying how fast a connection recovered.
RECOVERED_SHOWN: Final = 8.0

#: States in which a socket is up (``degraded``: open, being probed after a silence).
_LIVE: Final = frozenset({"open", "degraded"})

SortKey = Literal["change", "volume", "price", "code"]
#: The coin list's sort orders, in the order the ``s`` key cycles through them.
SORT_KEYS: Final[tuple[SortKey, ...]] = ("change", "volume", "price", "code")


@dataclass(slots=True)
class Bar:
    """One 1-minute candle of the selected coin (the last frame of that minute wins)."""

    minute: str
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(slots=True)
class ConnectionStatus:
    """What the status bar shows of one connection.

    ``last_frame_at`` is when the dashboard last saw its frame counter move (monotonic);
    ``down_at`` when it last left ``open``; ``recovered_in`` how long the last outage took.
    ``down_for``, ``retry_in`` and ``network_watch`` are the connection's own figures of an
    outage under way (``ConnectionStatistics``): how long it has had no socket, the seconds
    to its next connect, and whether the host answering again ends that wait sooner.
    """

    kind: str
    state: str = "not open yet"
    reason: str = ""
    frames: int = 0
    last_frame_at: float | None = None
    reconnects: int = 0
    down_at: float | None = None
    recovered_in: float | None = None
    recovered_at: float | None = None
    down_for: float | None = None
    retry_in: float | None = None
    network_watch: bool = False


@dataclass(slots=True)
class DashboardModel:
    """The latest data of the three components, the connection states and an event log."""

    selected: str
    tickers: dict[str, Ticker] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    #: Codes whose ticker changed since the coin list last drew them.
    dirty: set[str] = field(default_factory=set)
    ticker_updates: int = 0
    book: Orderbook | None = None
    book_updates: int = 0
    bars: dict[str, Bar] = field(default_factory=dict)
    candle_updates: int = 0
    connections: dict[str, ConnectionStatus] = field(default_factory=dict)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    #: Bumped by every line added to ``log``, so the panel redraws only on change.
    log_version: int = 0
    #: (monotonic time, public frames received) samples of the last seconds, for frames/s.
    frame_samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    # --- data ---------------------------------------------------------------------------

    def add_tickers(self, batch: Iterable[Ticker]) -> None:
        """Keep the newest ticker of each code and mark it for redrawing."""
        tickers, dirty = self.tickers, self.dirty
        count = 0
        for ticker in batch:
            tickers[ticker.code] = ticker
            dirty.add(ticker.code)
            count += 1
        self.ticker_updates += count

    def set_book(self, book: Orderbook) -> None:
        """Keep the book if it is the selected coin's (a frame in flight may be the old one's)."""
        if book.code == self.selected:
            self.book = book
            self.book_updates += 1

    def add_candle(self, candle: Candle) -> None:
        """Merge a 1-minute candle frame of the selected coin into the chart's bars."""
        if candle.code != self.selected:
            return
        minute = candle.candle_date_time_kst[:16]
        self.bars[minute] = Bar(
            minute,
            candle.opening_price,
            candle.high_price,
            candle.low_price,
            candle.trade_price,
            candle.candle_acc_trade_volume,
        )
        self.candle_updates += 1
        self._trim_bars()

    def add_history(self, bars: Iterable[Bar]) -> None:
        """Add older bars (from REST) without overwriting minutes the stream already gave."""
        for bar in bars:
            self.bars.setdefault(bar.minute, bar)
        self._trim_bars()

    def _trim_bars(self) -> None:
        if len(self.bars) > CANDLES_SHOWN:
            for minute in sorted(self.bars)[: len(self.bars) - CANDLES_SHOWN]:
                del self.bars[minute]

    def select(self, code: str) -> None:
        """Make ``code`` the selected coin: the book and the chart start empty for it."""
        self.selected = code
        self.book = None
        self.bars.clear()

    def chart_bars(self) -> list[Bar]:
        """Return the chart's bars, oldest first."""
        return [self.bars[m] for m in sorted(self.bars)]

    # --- connections and events ---------------------------------------------------------

    def connection(self, kind: str) -> ConnectionStatus:
        """Return the status of connection ``kind`` (created on first use)."""
        status = self.connections.get(kind)
        if status is None:
            status = self.connections[kind] = ConnectionStatus(kind)
        return status

    def note(self, line: str, *, now: float | None = None) -> None:
        """Add a line to the event log, stamped with the wall-clock time."""
        stamp = time.strftime("%H:%M:%S", time.localtime(now))
        self.log.append(f"{stamp} {line}")
        self.log_version += 1

    def on_event(self, event: Event) -> None:
        """Fold a system event into the connection states and the event log."""
        if isinstance(event, ConnectionStateChanged):
            status = self.connection(event.connection)
            status.state = event.new
            status.reason = event.reason
            if event.old in _LIVE and event.new not in _LIVE:
                status.down_at = event.at
            if event.new == "open" and status.down_at is not None:
                status.recovered_in = event.at - status.down_at
                status.recovered_at = event.at
                status.down_at = None
            why = f" ({_short(event.reason)})" if event.reason and event.new != "open" else ""
            took = ""
            if event.new == "open" and status.recovered_at == event.at:
                assert status.recovered_in is not None
                took = f" after {status.recovered_in * 1000:.0f} ms"
            self.note(f"{event.connection} {event.old} -> {event.new}{why}{took}")
        elif isinstance(event, GapEvent):
            self.note(f"gap in {event.type} {event.code or ''} ({event.reason})")
        elif isinstance(event, RequestRejected):
            self.note(f"{event.connection}: Upbit rejected a request: {event.name}")
        else:
            self.note(f"{type(event).__name__}")

    def sample_frames(self, now: float, kind: str, frames: int, reconnects: int) -> None:
        """Note a connection's frame counter; the last-frame age is measured from its moves."""
        status = self.connection(kind)
        if frames != status.frames:
            status.frames = frames
            status.last_frame_at = now
        status.reconnects = reconnects
        if kind == "public":
            self.frame_samples.append((now, frames))

    def frames_per_second(self) -> float:
        """Return the public connection's frame rate over the last samples (about 2 s)."""
        samples = self.frame_samples
        if len(samples) < 2:
            return 0.0
        newest_at, newest = samples[-1]
        for at, frames in samples:
            if newest_at - at <= 2.0:
                span = newest_at - at
                return (newest - frames) / span if span > 0 else 0.0
        return 0.0


def sort_codes(tickers: dict[str, Ticker], key: SortKey) -> list[str]:
    """Return the codes in the coin list's order for ``key`` (largest first, code A-Z)."""
    if key == "code":
        return sorted(tickers)
    if key == "change":
        return sorted(tickers, key=lambda c: (-tickers[c].signed_change_rate, c))
    if key == "price":
        return sorted(tickers, key=lambda c: (-tickers[c].trade_price, c))
    return sorted(tickers, key=lambda c: (-volume_24h(tickers[c]), c))


def volume_24h(ticker: Ticker) -> float:
    """Return the 24 h traded value in KRW (the day's value where the 24 h one is absent)."""
    if ticker.acc_trade_price_24h is not None:
        return ticker.acc_trade_price_24h
    return ticker.acc_trade_price


def _short(reason: str, limit: int = 60) -> str:
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"
