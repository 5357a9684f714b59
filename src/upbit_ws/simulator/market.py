"""The seeded market model: order books, trades, tickers and candles for every listed market.

Pure and deterministic: the model never reads a clock. :meth:`MarketModel.advance_to` steps it
to a simulated time on a fixed ``tick_interval`` grid, so the same seed and the same simulated
times give the same trades, books and candles however the caller chunks the advance.

Trades arrive per market as a Poisson process (busy markets faster); a buyer-initiated trade
takes the best ask, a seller-initiated one the best bid, and emptied levels move the price, so
the price is a random walk driven by the book. Books change on a 100 ms grid (section 4.3).

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from upbit_ws.simulator.config import SimulatorConfig
from upbit_ws.simulator.listing import PRICE_SCALE, MarketInfo, build_listing, tick_units

__all__ = [
    "CANDLE_UNITS",
    "BookSnapshot",
    "Candle",
    "MarketEvent",
    "MarketModel",
    "MarketState",
    "TickerSnapshot",
    "Trade",
    "Wants",
    "grouped_levels",
]

#: Candle type -> length in seconds (section 4.4).
CANDLE_UNITS: Final[dict[str, int]] = {
    "candle.1s": 1,
    "candle.1m": 60,
    "candle.3m": 180,
    "candle.5m": 300,
    "candle.10m": 600,
    "candle.15m": 900,
    "candle.30m": 1800,
    "candle.60m": 3600,
    "candle.240m": 14400,
}
_BOOK_LEVELS: Final = 30
_KRW_PER_USDT: Final = 1_390.0
_MEAN_TRADE_KRW: Final = 250_000.0
_MEAN_LEVEL_KRW: Final = 2_000_000.0
#: Mean of lognormvariate(0, 1), the size draw of one level (see ``MarketModel._level_size``).
_LOGNORMAL_MEAN: Final = math.exp(0.5)
_MASK64: Final = (1 << 64) - 1
_DAY_MS: Final = 86_400_000

#: ``wants(type, code)`` tells the model whether anyone listens, so unused payloads are skipped.
Wants = Callable[[str, str], bool]


@dataclass(frozen=True, slots=True)
class Trade:
    """One executed trade, shared by the WebSocket stream and ``GET /v1/trades/ticks``."""

    market: str
    timestamp: int
    price: int
    volume: int
    ask_bid: Literal["ASK", "BID"]
    prev_closing_price: int
    sequential_id: int
    best_ask_price: int
    best_ask_size: int
    best_bid_price: int
    best_bid_size: int


@dataclass(slots=True)
class Candle:
    """One candle; ``start`` is its window start in epoch seconds, prices in 1e-8 units."""

    start: int
    open: int
    high: int
    low: int
    close: int
    volume: float
    acc_price: float
    timestamp: int


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """A whole order book at one instant: asks ascending, bids descending, (price, size).

    ``tail_notional`` is the mean quote notional of one tick level beyond the modelled ones
    when those are only the top of a deeper book (busy markets), 0 when the book ends there
    (thin markets). ``salt`` keeps the sizes drawn for that tail stable per market and seed.
    """

    code: str
    timestamp: int
    tick: int
    asks: tuple[tuple[int, int], ...]
    bids: tuple[tuple[int, int], ...]
    tail_notional: float = 0.0
    salt: int = 0


@dataclass(frozen=True, slots=True)
class TickerSnapshot:
    """The ticker of one market right after ``trade`` (section 4.1), prices in 1e-8 units."""

    code: str
    trade: Trade
    open: int
    high: int
    low: int
    prev_close: int
    acc_volume: float
    acc_price: float
    acc_ask_volume: float
    acc_bid_volume: float
    acc_volume_24h: float
    acc_price_24h: float
    high_52w: int
    high_52w_date: str
    low_52w: int
    low_52w_date: str
    warning: bool


@dataclass(frozen=True, slots=True)
class MarketEvent:
    """Something a subscriber of ``(type, code)`` should see.

    ``data`` is a :class:`Trade` for ``trade``, a :class:`TickerSnapshot` for ``ticker``, a
    :class:`BookSnapshot` for ``orderbook`` and a :class:`Candle` for ``candle.*``;
    ``timestamp`` is the send time in ms.
    """

    type: str
    code: str
    timestamp: int
    data: Trade | TickerSnapshot | BookSnapshot | Candle


@dataclass(slots=True)
class MarketState:
    """Everything the model knows about one market."""

    info: MarketInfo
    rate: float
    notional_scale: float
    levels: int
    asks: list[list[int]]
    bids: list[list[int]]
    last_price: int
    prev_close: int
    open: int
    high: int
    low: int
    day: int
    acc_volume: float = 0.0
    acc_price: float = 0.0
    acc_ask_volume: float = 0.0
    acc_bid_volume: float = 0.0
    base_volume_24h: float = 0.0
    base_price_24h: float = 0.0
    high_52w: int = 0
    low_52w: int = 0
    high_52w_date: str = "2025-10-09"
    low_52w_date: str = "2026-07-01"
    last_trade: Trade | None = None
    trades: deque[Trade] = field(default_factory=deque)
    candles: dict[str, deque[Candle]] = field(default_factory=dict)
    candle_dirty: set[str] = field(default_factory=set)
    candle_emitted: dict[str, float] = field(default_factory=dict)
    book_changed: bool = False
    book_timestamp: int = 0
    seq_ms: int = 0
    seq_n: int = 0
    seq_used: set[int] = field(default_factory=set)
    trade_low: int | None = None
    trade_high: int | None = None
    salt: int = 0

    @property
    def code(self) -> str:
        """Return the market code."""
        return self.info.market

    @property
    def tick(self) -> int:
        """Return the current tick size in 1e-8 units."""
        return tick_units(self.info.quote, self.last_price)

    def ticker(self) -> TickerSnapshot | None:
        """Return the ticker after the last trade, or ``None`` before any trade."""
        trade = self.last_trade
        if trade is None:
            return None
        return TickerSnapshot(
            code=self.code,
            trade=trade,
            open=self.open,
            high=self.high,
            low=self.low,
            prev_close=self.prev_close,
            acc_volume=self.acc_volume,
            acc_price=self.acc_price,
            acc_ask_volume=self.acc_ask_volume,
            acc_bid_volume=self.acc_bid_volume,
            acc_volume_24h=self.acc_volume + self.base_volume_24h,
            acc_price_24h=self.acc_price + self.base_price_24h,
            high_52w=max(self.high_52w, self.high),
            high_52w_date=self.high_52w_date,
            low_52w=min(self.low_52w, self.low),
            low_52w_date=self.low_52w_date,
            warning=self.info.warning,
        )

    def book(self) -> BookSnapshot:
        """Return the current book (its timestamp is the time of the last change, 4.3)."""
        return BookSnapshot(
            code=self.code,
            timestamp=self.book_timestamp,
            tick=self.tick,
            asks=tuple((p, s) for p, s in self.asks),
            bids=tuple((p, s) for p, s in self.bids),
            tail_notional=(
                _MEAN_LEVEL_KRW * self.notional_scale * _LOGNORMAL_MEAN
                if self.levels == _BOOK_LEVELS
                else 0.0
            ),
            salt=self.salt,
        )


class MarketModel:
    """The seeded random walk behind every market; step it with :meth:`advance_to`."""

    def __init__(self, config: SimulatorConfig, *, start: float) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        # A generator of its own, so both id orders give the same walk.
        self._id_rng = (
            random.Random(config.seed + 1) if config.sequential_ids == "unordered" else None
        )
        self._origin = start - config.history_seconds
        self._dt = config.tick_interval
        self._tick_index = 0
        # With history, the walk starts earlier and is stepped silently up to ``start``.
        start, now = start - config.history_seconds, start
        self.listing: tuple[MarketInfo, ...] = build_listing(
            krw=config.krw_markets, btc=config.btc_markets, usdt=config.usdt_markets
        )
        self.states: dict[str, MarketState] = {}
        self._heap: list[tuple[float, int]] = []
        self._order: list[MarketState] = []
        btc_krw = next(m.base_price for m in self.listing if m.market == "KRW-BTC")
        for rank, info in enumerate(self.listing):
            state = self._new_state(info, rank, btc_krw, start)
            self.states[info.market] = state
            self._order.append(state)
            self._schedule(rank, start)
        self._busy = [s for s in self._order[: config.busy_markets]]
        if now > start:
            self.advance_to(now)

    # --- construction ------------------------------------------------------------------

    def _rate(self, info: MarketInfo, rank: int) -> float:
        """Return the mean trades per second of a market: busy ones fast, the tail quiet."""
        cfg = self._config
        if info.quote != "KRW":
            return cfg.quiet_trades_per_second * 4
        if rank < cfg.busy_markets:
            return cfg.trades_per_second * (1.0 - 0.05 * rank)
        return max(
            cfg.quiet_trades_per_second,
            cfg.trades_per_second * 0.3 * 0.85 ** (rank - cfg.busy_markets),
        )

    def _new_state(self, info: MarketInfo, rank: int, btc_krw: float, start: float) -> MarketState:
        rng = self._rng
        scale = {"KRW": 1.0, "BTC": 1.0 / btc_krw, "USDT": 1.0 / _KRW_PER_USDT}[info.quote]
        price = round(info.base_price * (1 + rng.gauss(0, 0.01)) * PRICE_SCALE)
        tick = tick_units(info.quote, price)
        price = max(tick, price // tick * tick)
        prev_close = max(tick, round(price * (1 + rng.gauss(0, 0.02))) // tick * tick)
        levels = _BOOK_LEVELS if info.quote == "KRW" and rank < 150 else rng.randint(6, 24)
        state = MarketState(
            info=info,
            rate=self._rate(info, rank),
            notional_scale=scale,
            levels=levels,
            asks=[],
            bids=[],
            last_price=price,
            prev_close=prev_close,
            open=prev_close,
            high=max(price, prev_close),
            low=min(price, prev_close),
            day=int(start // 86400),
            high_52w=price * 16 // 10 // tick * tick,
            low_52w=max(tick, price * 8 // 10 // tick * tick),
            # Not drawn from the walk's generator, so adding it changed no seeded walk.
            salt=zlib.crc32(f"{self._config.seed}:{info.market}".encode()),
        )
        for unit in CANDLE_UNITS:
            state.candles[unit] = deque(maxlen=self._config.candle_history)
        state.trades = deque(maxlen=max(1, self._config.trade_history))
        daily = _MEAN_TRADE_KRW * scale * state.rate * 86400 * rng.uniform(0.3, 0.6)
        state.acc_price = daily * rng.uniform(0.2, 0.8)
        state.acc_volume = state.acc_price / (price / PRICE_SCALE)
        state.acc_bid_volume = state.acc_volume * rng.uniform(0.4, 0.6)
        state.acc_ask_volume = state.acc_volume - state.acc_bid_volume
        state.base_price_24h = daily
        state.base_volume_24h = daily / (price / PRICE_SCALE)
        self._build_book(state, price)
        state.book_timestamp = int((start - rng.uniform(0.05, 30)) * 1000)
        # One trade in the past, so SNAPSHOTs and REST have something (section 4.2: the trade
        # snapshot is the latest trade, sent even if old).
        when = start - rng.uniform(0.5, 600 if state.rate < 1 else 5)
        self._trade(state, when, "BID" if rng.random() < 0.5 else "ASK")
        state.candle_dirty.clear()
        state.book_changed = False
        return state

    def _level_size(self, state: MarketState, price: int) -> int:
        notional = _MEAN_LEVEL_KRW * state.notional_scale * self._rng.lognormvariate(0, 1.0)
        return max(1, round(notional / price * PRICE_SCALE * PRICE_SCALE))

    def _build_book(self, state: MarketState, price: int) -> None:
        """Lay a fresh book around ``price``: best bid at it, asks from one tick above."""
        tick = tick_units(state.info.quote, price)
        gap = 1 if state.levels == _BOOK_LEVELS else self._rng.randint(1, 3)
        state.bids = [
            [p, self._level_size(state, p)]
            for p in (price - i * tick * gap for i in range(state.levels))
            if p > 0
        ]
        state.asks = [
            [p, self._level_size(state, p)]
            for p in (price + (i + 1) * tick * gap for i in range(state.levels))
        ]
        # Thin markets show one empty side now and then, so frames need zero padding (4.3).
        if state.levels < _BOOK_LEVELS and self._rng.random() < 0.3:
            del state.bids[self._rng.randint(1, max(1, len(state.bids) - 1)) :]

    def _schedule(self, index: int, after: float) -> None:
        state = self._order[index]
        if state.rate <= 0:
            return
        heapq.heappush(self._heap, (after + self._rng.expovariate(state.rate), index))

    # --- stepping ------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Return the simulated time the model has reached (end of its last tick)."""
        return self._origin + self._tick_index * self._dt

    def advance_to(self, now: float, wants: Wants | None = None) -> list[MarketEvent]:
        """Step every whole tick up to ``now`` and return the events, in time order."""
        events: list[MarketEvent] = []
        want = wants or _want_nothing
        while self._origin + (self._tick_index + 1) * self._dt <= now + 1e-9:
            self._tick_index += 1
            self._step(self.now, want, events)
        return events

    def _step(self, tick_end: float, want: Wants, events: list[MarketEvent]) -> None:
        heap = self._heap
        rng = self._rng
        end_ms = int(tick_end * 1000)
        while heap and heap[0][0] <= tick_end:
            when, index = heapq.heappop(heap)
            state = self._order[index]
            side: Literal["ASK", "BID"] = "BID" if rng.random() < 0.5 else "ASK"
            trade = self._trade(state, when, side)
            # The server stamps a few ms after the trade, but never after the frame leaves
            # (the tick end), so receive time minus timestamp stays a true latency.
            sent = min(trade.timestamp + rng.randint(2, 60), end_ms)
            if want("trade", state.code):
                events.append(MarketEvent("trade", state.code, sent, trade))
            if want("ticker", state.code):
                ticker = state.ticker()
                assert ticker is not None  # a trade just happened
                events.append(MarketEvent("ticker", state.code, sent, ticker))
            self._schedule(index, when)
        for state in self._busy:
            if rng.random() < self._config.book_churn:
                self._churn(state, end_ms)
        for state in self._order:
            if state.book_changed:
                state.book_changed = False
                if want("orderbook", state.code):
                    events.append(MarketEvent("orderbook", state.code, end_ms, state.book()))
            if state.candle_dirty:
                self._emit_candles(state, tick_end, want, events)

    def _emit_candles(
        self, state: MarketState, now: float, want: Wants, events: list[MarketEvent]
    ) -> None:
        """Send a changed candle at most once per ``candle_min_interval`` (section 4.4)."""
        for unit in sorted(state.candle_dirty):
            if now - state.candle_emitted.get(unit, -math.inf) < self._config.candle_min_interval:
                continue
            state.candle_dirty.discard(unit)
            state.candle_emitted[unit] = now
            if want(unit, state.code):
                candle = state.candles[unit][-1]
                events.append(MarketEvent(unit, state.code, int(now * 1000), _copy(candle)))

    def _churn(self, state: MarketState, now_ms: int) -> None:
        """Change one level's size without a trade (quotes come and go)."""
        side = state.asks if self._rng.random() < 0.5 else state.bids
        if not side:
            return
        level = side[self._rng.randrange(min(len(side), 10))]
        level[1] = max(1, round(level[1] * self._rng.uniform(0.5, 1.6)))
        state.book_changed = True
        state.book_timestamp = now_ms

    def _trade(self, state: MarketState, when: float, side: Literal["ASK", "BID"]) -> Trade:
        """Execute one trade against the book and update ticker, candles and history."""
        rng = self._rng
        if not state.asks or not state.bids:
            self._build_book(state, state.last_price)
        book_side = state.asks if side == "BID" else state.bids
        price, size = book_side[0]
        notional = _MEAN_TRADE_KRW * state.notional_scale * rng.lognormvariate(-0.5, 1.3)
        volume = max(1, min(size, round(notional / price * PRICE_SCALE * PRICE_SCALE)))
        ts = int(when * 1000)
        if ts == state.seq_ms:
            state.seq_n += 1
        else:
            state.seq_ms, state.seq_n = ts, 0
            state.seq_used.clear()
        n = state.seq_n
        if self._id_rng is not None:
            # Unique per trade but not in trade order within a millisecond (4.2, 15).
            n = self._id_rng.randrange(10_000)
            while n in state.seq_used:
                n = self._id_rng.randrange(10_000)
            state.seq_used.add(n)
        trade = Trade(
            market=state.code,
            timestamp=ts,
            price=price,
            volume=volume,
            ask_bid=side,
            prev_closing_price=state.prev_close,
            # Upbit's ids look like trade_timestamp * 10000 + n and exceed 2**53 (4.2, 15).
            sequential_id=ts * 10_000 + n,
            best_ask_price=state.asks[0][0],
            best_ask_size=state.asks[0][1],
            best_bid_price=state.bids[0][0],
            best_bid_size=state.bids[0][1],
        )
        self._consume(state, book_side, volume, ascending=side == "BID")
        self._refill_spread(state, side)
        self._record(state, trade)
        state.book_changed = True
        state.book_timestamp = ts
        return trade

    def _consume(
        self, state: MarketState, book_side: list[list[int]], volume: int, *, ascending: bool
    ) -> None:
        book_side[0][1] -= volume
        if book_side[0][1] > 0:
            return
        book_side.pop(0)
        if book_side:
            far = book_side[-1][0]
            tick = tick_units(state.info.quote, far)
            new = far + tick if ascending else far - tick
            new = -(-new // tick) * tick if ascending else new // tick * tick
            if new > 0:
                book_side.append([new, self._level_size(state, new)])

    def _refill_spread(self, state: MarketState, side: Literal["ASK", "BID"]) -> None:
        """Let the other side step into a widened spread: the walk follows the aggressor."""
        if not state.asks or not state.bids or self._rng.random() < 0.5:
            return
        tick = tick_units(state.info.quote, state.bids[0][0])
        if side == "BID":
            price = state.bids[0][0] + tick
            if price < state.asks[0][0]:
                state.bids.insert(0, [price, self._level_size(state, price)])
                del state.bids[state.levels :]
        else:
            price = state.asks[0][0] - tick
            if price > state.bids[0][0]:
                state.asks.insert(0, [price, self._level_size(state, price)])
                del state.asks[state.levels :]

    def _record(self, state: MarketState, trade: Trade) -> None:
        day = trade.timestamp // 86_400_000
        if day != state.day:
            # Ticker accumulators restart at 00:00 UTC (section 4.1).
            state.day = day
            state.prev_close = state.last_price
            state.open = trade.price
            state.high = state.low = trade.price
            state.acc_volume = state.acc_price = 0.0
            state.acc_ask_volume = state.acc_bid_volume = 0.0
        price_f = trade.price / PRICE_SCALE
        volume_f = trade.volume / PRICE_SCALE
        funds = price_f * volume_f
        state.last_price = trade.price
        state.high = max(state.high, trade.price)
        state.low = min(state.low, trade.price)
        state.acc_volume += volume_f
        state.acc_price += funds
        if trade.ask_bid == "ASK":
            state.acc_ask_volume += volume_f
        else:
            state.acc_bid_volume += volume_f
        state.last_trade = trade
        state.trades.append(trade)
        low, high = state.trade_low, state.trade_high
        state.trade_low = trade.price if low is None else min(low, trade.price)
        state.trade_high = trade.price if high is None else max(high, trade.price)
        seconds = trade.timestamp // 1000
        for unit, length in CANDLE_UNITS.items():
            history = state.candles[unit]
            start = seconds // length * length
            if history and history[-1].start == start:
                candle = history[-1]
                candle.high = max(candle.high, trade.price)
                candle.low = min(candle.low, trade.price)
                candle.close = trade.price
                candle.volume += volume_f
                candle.acc_price += funds
                candle.timestamp = trade.timestamp
            else:
                history.append(
                    Candle(
                        start=start,
                        open=trade.price,
                        high=trade.price,
                        low=trade.price,
                        close=trade.price,
                        volume=volume_f,
                        acc_price=funds,
                        timestamp=trade.timestamp,
                    )
                )
            state.candle_dirty.add(unit)

    # --- queries -------------------------------------------------------------------------

    def take_trade_range(self, code: str) -> tuple[int, int] | None:
        """Return and reset the (low, high) trade prices of ``code`` since the last call."""
        state = self.states[code]
        if state.trade_low is None or state.trade_high is None:
            return None
        out = (state.trade_low, state.trade_high)
        state.trade_low = state.trade_high = None
        return out

    def trades(
        self,
        code: str,
        *,
        count: int,
        cursor: int | None = None,
        days_ago: int = 0,
        before_ms: int | None = None,
    ) -> list[Trade]:
        """Return up to ``count`` trades of one UTC day, newest first (``GET /v1/trades/ticks``).

        The day is the newest trade's day minus ``days_ago`` (section 9.5: "empty gives the
        most recent trade date"). ``cursor`` keeps trades whose ``sequential_id`` is below it;
        ``before_ms`` keeps trades earlier than that many ms into the day (the ``to`` time).
        """
        history = self.states[code].trades
        if not history:
            return []
        day = history[-1].timestamp // _DAY_MS - days_ago
        out: list[Trade] = []
        for trade in reversed(history):
            trade_day = trade.timestamp // _DAY_MS
            if trade_day > day:
                continue
            if trade_day < day:
                break  # the history is in time order
            if cursor is not None and trade.sequential_id >= cursor:
                continue
            if before_ms is not None and trade.timestamp % _DAY_MS >= before_ms:
                continue
            out.append(trade)
            if len(out) >= count:
                break
        return out

    def candles(self, code: str, unit: str, *, count: int, to: float | None) -> list[Candle]:
        """Return up to ``count`` candles of ``unit``, newest first, starting before ``to``."""
        out: list[Candle] = []
        for candle in reversed(self.states[code].candles[unit]):
            if to is not None and candle.start >= to:
                continue
            out.append(_copy(candle))
            if len(out) >= count:
                break
        return out

    def latest_candle(self, code: str, unit: str) -> Candle | None:
        """Return a copy of the newest candle of ``unit`` (the candle SNAPSHOT), if any."""
        history = self.states[code].candles[unit]
        return _copy(history[-1]) if history else None


def grouped_levels(
    book: BookSnapshot, *, step: int, depth: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Return up to ``depth`` (price, size) buckets of ``step`` per side (section 2.3 ``level``).

    Asks round up to the bucket, bids down, sizes add up. The model keeps 30 tick levels, the
    top of a busy market's book; a bucket many ticks wide needs far more, so past the modelled
    levels each bucket gets the model's mean level size per tick it spans, with a stable
    per-bucket factor. A thin book (``tail_notional`` 0) ends where it ends and the frame is
    zero-padded. Bid buckets stop above price 0.
    """
    asks = _bucket(book.asks, step, up=True)
    bids = _bucket(book.bids, step, up=False)
    if book.tail_notional > 0 and book.tick > 0:
        _extend(asks, book, step, depth, up=True)
        _extend(bids, book, step, depth, up=False)
    return asks[:depth], bids[:depth]


def _bucket(levels: tuple[tuple[int, int], ...], step: int, *, up: bool) -> list[tuple[int, int]]:
    """Bucket price levels by ``step`` (asks round up, bids round down), summing sizes."""
    out: list[tuple[int, int]] = []
    for price, size in levels:
        bucket = -(-price // step) * step if up else price // step * step
        if out and out[-1][0] == bucket:
            out[-1] = (bucket, out[-1][1] + size)
        else:
            out.append((bucket, size))
    return out


def _extend(
    side: list[tuple[int, int]], book: BookSnapshot, step: int, depth: int, *, up: bool
) -> None:
    """Fill ``side`` to ``depth`` buckets past the modelled levels of a deep book."""
    native = book.asks if up else book.bids
    if not native or not side:
        return
    tick = book.tick
    # A price walk into a wider tick band can leave the level below one tick: buckets then
    # step by the smallest multiple of the level that holds a tick (empty buckets are skipped).
    stride = step * -(-tick // step)
    far = native[-1][0]
    price, size = side[-1]
    missing = (price - far) // tick if up else (far - price) // tick
    if missing > 0:
        side[-1] = (price, size + _tail_size(book, price, missing, up=up))
    per_bucket = max(1, stride // tick)
    while len(side) < depth:
        price = price + stride if up else price - stride
        if price <= 0:
            return
        side.append((price, _tail_size(book, price, per_bucket, up=up)))


def _tail_size(book: BookSnapshot, price: int, ticks: int, *, up: bool) -> int:
    """Size of ``ticks`` unmodelled tick levels at ``price``: mean size times a stable factor."""
    x = (book.salt * 0x9E3779B97F4A7C15 + price * 0xBF58476D1CE4E5B9 + (1 if up else 2)) & _MASK64
    x ^= x >> 31
    x = (x * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 29
    factor = 0.3 + 1.4 * (x / 2**64)  # mean 1
    return max(1, round(ticks * book.tail_notional * factor / price * PRICE_SCALE * PRICE_SCALE))


def _copy(candle: Candle) -> Candle:
    return Candle(
        start=candle.start,
        open=candle.open,
        high=candle.high,
        low=candle.low,
        close=candle.close,
        volume=candle.volume,
        acc_price=candle.acc_price,
        timestamp=candle.timestamp,
    )


def _want_nothing(_type: str, _code: str) -> bool:
    return False
