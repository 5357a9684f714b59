"""Server frames: data objects in DEFAULT or SIMPLE keys, list wrapping, control frames.

Field names, SIMPLE abbreviations and date formats follow docs/protocol.md section 4 (one table
per type); every frame is UTF-8 JSON that the server sends in a BINARY message (section 1.3).
This module is deliberately independent of the client's codec (``upbit_ws.core``) so that the
two cannot share a bug.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final, Literal

import orjson

from upbit_ws.simulator import spelling
from upbit_ws.simulator.config import NumberSpelling
from upbit_ws.simulator.listing import PRICE_SCALE
from upbit_ws.simulator.market import (
    BookSnapshot,
    Candle,
    TickerSnapshot,
    Trade,
    grouped_levels,
)
from upbit_ws.simulator.spelling import Number

__all__ = [
    "SIMPLE_KEYS",
    "STATUS_UP",
    "FrameBuilder",
    "error_frame",
    "is_list_format",
    "is_simple_format",
    "list_subscriptions_object",
    "to_simple",
    "wrap_list",
]

StreamType = Literal["SNAPSHOT", "REALTIME"]

#: The keep-alive reply to a text ``PING`` (section 6), sent as a binary frame.
STATUS_UP: Final = b'{"status":"UP"}'

_TICKER: Final = {
    "type": "ty", "code": "cd", "opening_price": "op", "high_price": "hp", "low_price": "lp",
    "trade_price": "tp", "prev_closing_price": "pcp", "change": "c", "change_price": "cp",
    "signed_change_price": "scp", "change_rate": "cr", "signed_change_rate": "scr",
    "trade_volume": "tv", "acc_trade_volume": "atv", "acc_trade_volume_24h": "atv24h",
    "acc_trade_price": "atp", "acc_trade_price_24h": "atp24h", "trade_date": "tdt",
    "trade_time": "ttm", "trade_timestamp": "ttms", "ask_bid": "ab", "acc_ask_volume": "aav",
    "acc_bid_volume": "abv", "highest_52_week_price": "h52wp", "highest_52_week_date": "h52wdt",
    "lowest_52_week_price": "l52wp", "lowest_52_week_date": "l52wdt", "market_state": "ms",
    "delisting_date": "dd", "timestamp": "tms", "stream_type": "st", "trade_status": "ts",
    "market_state_for_ios": "msfi", "is_trading_suspended": "its", "market_warning": "mw",
}  # fmt: skip
_TRADE: Final = {
    "type": "ty", "code": "cd", "trade_price": "tp", "trade_volume": "tv", "ask_bid": "ab",
    "prev_closing_price": "pcp", "change": "c", "change_price": "cp", "trade_date": "td",
    "trade_time": "ttm", "trade_timestamp": "ttms", "timestamp": "tms", "sequential_id": "sid",
    "best_ask_price": "bap", "best_ask_size": "bas", "best_bid_price": "bbp",
    "best_bid_size": "bbs", "stream_type": "st",
}  # fmt: skip
_ORDERBOOK: Final = {
    "type": "ty", "code": "cd", "total_ask_size": "tas", "total_bid_size": "tbs",
    "orderbook_units": "obu", "ask_price": "ap", "bid_price": "bp", "ask_size": "as",
    "bid_size": "bs", "timestamp": "tms", "level": "lv", "stream_type": "st",
}  # fmt: skip
_CANDLE: Final = {
    "type": "ty", "code": "cd", "candle_date_time_utc": "cdttmu",
    "candle_date_time_kst": "cdttmk", "opening_price": "op", "high_price": "hp",
    "low_price": "lp", "trade_price": "tp", "candle_acc_trade_volume": "catv",
    "candle_acc_trade_price": "catp", "timestamp": "tms", "stream_type": "st",
}  # fmt: skip
_MY_ORDER: Final = {
    "type": "ty", "code": "cd", "uuid": "uid", "ask_bid": "ab", "order_type": "ot", "state": "s",
    "trade_uuid": "tuid", "price": "p", "avg_price": "ap", "volume": "v",
    "remaining_volume": "rv", "executed_volume": "ev", "trades_count": "tc",
    "reserved_fee": "rsf", "remaining_fee": "rmf", "paid_fee": "pf", "locked": "l",
    "executed_funds": "ef", "time_in_force": "tif", "trade_fee": "tf", "is_maker": "im",
    "identifier": "id", "smp_type": "smpt", "prevented_volume": "pv",
    "prevented_locked": "pl", "trade_timestamp": "ttms", "order_timestamp": "otms",
    "timestamp": "tms", "stream_type": "st",
}  # fmt: skip
_MY_ASSET: Final = {
    "type": "ty", "asset_uuid": "astuid", "assets": "ast", "currency": "cu", "balance": "b",
    "locked": "l", "asset_timestamp": "asttms", "timestamp": "tms", "stream_type": "st",
}  # fmt: skip
_LIST: Final = {
    "method": "mthd", "result": "rslt", "type": "ty", "codes": "cds", "level": "lv",
    "ticket": "tckt", "is_only_snapshot": "is_only_snapshot",
    "is_only_realtime": "is_only_realtime",
}  # fmt: skip

#: DEFAULT -> SIMPLE key maps by frame family (sections 3.3 and 4).
SIMPLE_KEYS: Final[Mapping[str, Mapping[str, str]]] = {
    "ticker": _TICKER,
    "trade": _TRADE,
    "orderbook": _ORDERBOOK,
    "candle": _CANDLE,
    "myOrder": _MY_ORDER,
    "myAsset": _MY_ASSET,
    "LIST_SUBSCRIPTIONS": _LIST,
}
_KST_OFFSET: Final = 9 * 3600


def is_simple_format(fmt: str) -> bool:
    """Tell whether ``fmt`` uses abbreviated keys (SIMPLE, SIMPLE_LIST)."""
    return fmt.startswith("SIMPLE")


def is_list_format(fmt: str) -> bool:
    """Tell whether ``fmt`` wraps objects in a JSON array (JSON_LIST, SIMPLE_LIST)."""
    return fmt.endswith("_LIST")


def family(data_type: str) -> str:
    """Return the key-map family of a data type (every ``candle.*`` shares one)."""
    return "candle" if data_type.startswith("candle.") else data_type


def to_simple(obj: object, keys: Mapping[str, str]) -> object:
    """Rename keys of ``obj`` (and of nested objects and lists) to their SIMPLE names."""
    if isinstance(obj, dict):
        return {keys.get(k, k): to_simple(v, keys) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_simple(v, keys) for v in obj]
    return obj


def wrap_list(objects: Sequence[bytes]) -> bytes:
    """Join encoded objects into one ``*_LIST`` frame body (a JSON array)."""
    return b"[" + b",".join(objects) + b"]"


def error_frame(name: str, message: str) -> bytes:
    """Return an error frame body ``{"error":{"name","message"}}`` (section 7.1)."""
    return orjson.dumps({"error": {"name": name, "message": message}})


def list_subscriptions_object(
    ticket: str, result: Sequence[Mapping[str, object]], *, simple: bool
) -> bytes:
    """Return the LIST_SUBSCRIPTIONS reply object (section 3.3), in DEFAULT or SIMPLE keys."""
    obj: dict[str, object] = {
        "method": "LIST_SUBSCRIPTIONS",
        "result": [dict(r) for r in result],
        "ticket": ticket,
    }
    return orjson.dumps(to_simple(obj, _LIST) if simple else obj)


def _date(ms: int, pattern: str, *, offset: int = 0) -> str:
    return time.strftime(pattern, time.gmtime(ms // 1000 + offset))


def _f(units: int) -> float:
    return units / PRICE_SCALE


class FrameBuilder:
    """Build DEFAULT-keyed objects for each data type with the configured number spellings."""

    def __init__(self, *, number_spelling: NumberSpelling) -> None:
        self._upbit = number_spelling == "upbit"

    # --- spelling helpers: the "upbit" mix, or orjson's shortest floats -----------------

    def _big(self, value: float, *, variant: bool) -> Number:
        return spelling.java(value) if self._upbit and variant else spelling.plain(value)

    def _fixed(self, value: float) -> Number:
        return spelling.fixed8(value) if self._upbit else spelling.plain(value)

    def _intish(self, value: float) -> Number:
        return spelling.as_int(value) if self._upbit else spelling.plain(value)

    def _zero(self, value: float) -> Number:
        return spelling.zero_e8(value) if self._upbit else spelling.plain(value)

    def number(self, value: float | int | Decimal | None) -> object:
        """Spell a free-form number (order-engine values): decimals keep every digit."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, Decimal):
            return spelling.decimal(value) if self._upbit else float(value)
        return value

    # --- data types --------------------------------------------------------------------

    def ticker(
        self, t: TickerSnapshot, stream_type: StreamType, timestamp: int
    ) -> dict[str, object]:
        """Return a ticker object (section 4.1)."""
        trade = t.trade
        price, prev = trade.price, t.prev_close
        change = "RISE" if price > prev else "FALL" if price < prev else "EVEN"
        diff = _f(price - prev)
        rate = round(abs(price - prev) / prev, 10) if prev else 0.0
        # Every fourth frame spells big prices and tiny sizes as Java does (1.16539E8, 9.101E-5).
        java = timestamp % 4 == 0
        big = self._big
        return {
            "type": "ticker",
            "code": t.code,
            "opening_price": big(_f(t.open), variant=java),
            "high_price": big(_f(t.high), variant=java),
            "low_price": big(_f(t.low), variant=java),
            "trade_price": big(_f(price), variant=java),
            "prev_closing_price": big(_f(prev), variant=java),
            "acc_trade_price": t.acc_price,
            "change": change,
            "change_price": big(abs(diff), variant=java),
            "signed_change_price": big(diff, variant=java),
            "change_rate": rate,
            "signed_change_rate": rate if diff >= 0 else -rate,
            "ask_bid": trade.ask_bid,
            "trade_volume": big(_f(trade.volume), variant=java),
            "acc_trade_volume": t.acc_volume,
            "trade_date": _date(trade.timestamp, "%Y%m%d"),
            "trade_time": _date(trade.timestamp, "%H%M%S"),
            "trade_timestamp": trade.timestamp,
            "acc_ask_volume": t.acc_ask_volume,
            "acc_bid_volume": t.acc_bid_volume,
            "highest_52_week_price": big(_f(t.high_52w), variant=java),
            "highest_52_week_date": t.high_52w_date,
            "lowest_52_week_price": big(_f(t.low_52w), variant=java),
            "lowest_52_week_date": t.low_52w_date,
            "market_state": "ACTIVE",
            "is_trading_suspended": False,
            "delisting_date": None,
            "market_warning": "CAUTION" if t.warning else "NONE",
            "timestamp": timestamp,
            "acc_trade_price_24h": t.acc_price_24h,
            "acc_trade_volume_24h": t.acc_volume_24h,
            "stream_type": stream_type,
        }

    def trade(self, t: Trade, stream_type: StreamType, timestamp: int) -> dict[str, object]:
        """Return a trade object (section 4.2); dates are ``yyyy-MM-dd`` and ``HH:mm:ss``."""
        diff = t.price - t.prev_closing_price
        change = "RISE" if diff > 0 else "FALL" if diff < 0 else "EVEN"
        snapshot = stream_type == "SNAPSHOT"
        return {
            "type": "trade",
            "code": t.market,
            "timestamp": timestamp,
            "trade_date": _date(t.timestamp, "%Y-%m-%d"),
            "trade_time": _date(t.timestamp, "%H:%M:%S"),
            "trade_timestamp": t.timestamp,
            "trade_price": spelling.plain(_f(t.price)),
            "trade_volume": self._big(_f(t.volume), variant=t.timestamp % 3 == 0),
            "ask_bid": t.ask_bid,
            # A trade can carry an 8-decimal prev_closing_price beside a short price (15).
            "prev_closing_price": self._fixed(_f(t.prev_closing_price))
            if snapshot
            else spelling.plain(_f(t.prev_closing_price)),
            "change": change,
            # The socket's change_price is unsigned; zero can be spelled 0E-8 (4.2, 15).
            "change_price": self._zero(abs(_f(diff))),
            "sequential_id": t.sequential_id,
            "best_ask_price": self._intish(_f(t.best_ask_price)),
            "best_ask_size": _f(t.best_ask_size),
            "best_bid_price": self._intish(_f(t.best_bid_price)),
            "best_bid_size": _f(t.best_bid_size),
            "stream_type": stream_type,
        }

    def orderbook(
        self, book: BookSnapshot, stream_type: StreamType, *, depth: int, level: float
    ) -> dict[str, object]:
        """Return a whole-book object of ``depth`` units, zero-padded, at grouping ``level``.

        Every frame is a full top-N book, thin books are padded with zero units, and ``level``
        is echoed (section 4.3). Totals cover the units sent ([UNSURE] in the reference).
        """
        asks: Sequence[tuple[int, int]] = book.asks
        bids: Sequence[tuple[int, int]] = book.bids
        if level > 0:
            asks, bids = grouped_levels(book, step=round(level * PRICE_SCALE), depth=depth)
        units: list[dict[str, object]] = []
        total_ask = total_bid = 0
        for i in range(depth):
            ask_p, ask_s = asks[i] if i < len(asks) else (0, 0)
            bid_p, bid_s = bids[i] if i < len(bids) else (0, 0)
            total_ask += ask_s
            total_bid += bid_s
            units.append(
                {
                    "ask_price": spelling.plain(_f(ask_p)),
                    "bid_price": spelling.plain(_f(bid_p)),
                    "ask_size": _f(ask_s),
                    "bid_size": _f(bid_s),
                }
            )
        return {
            "type": "orderbook",
            "code": book.code,
            "timestamp": book.timestamp,
            "total_ask_size": _f(total_ask),
            "total_bid_size": _f(total_bid),
            "orderbook_units": units,
            "level": spelling.as_int(level),
            "stream_type": stream_type,
        }

    def candle(
        self, data_type: str, code: str, c: Candle, stream_type: StreamType, timestamp: int
    ) -> dict[str, object]:
        """Return a candle object (section 4.4): 8-decimal prices as Upbit writes them."""
        fixed = self._fixed
        return {
            "type": data_type,
            "code": code,
            "candle_date_time_utc": _date(c.start * 1000, "%Y-%m-%dT%H:%M:%S"),
            "candle_date_time_kst": _date(c.start * 1000, "%Y-%m-%dT%H:%M:%S", offset=_KST_OFFSET),
            "opening_price": fixed(_f(c.open)),
            "high_price": fixed(_f(c.high)),
            "low_price": fixed(_f(c.low)),
            "trade_price": fixed(_f(c.close)),
            "candle_acc_trade_volume": fixed(c.volume),
            "candle_acc_trade_price": fixed(c.acc_price),
            "timestamp": timestamp,
            "stream_type": stream_type,
        }

    def spell_private(self, obj: Mapping[str, object]) -> dict[str, object]:
        """Spell the numbers of a myOrder/myAsset object built by the order engine."""
        out: dict[str, object] = {}
        for key, value in obj.items():
            if isinstance(value, list):
                out[key] = [self.spell_private(v) if isinstance(v, dict) else v for v in value]
            elif isinstance(value, Decimal | float) and not isinstance(value, bool):
                out[key] = self.number(value)
            else:
                out[key] = value
        return out


def encode_object(obj: Mapping[str, object], *, data_type: str, simple: bool) -> bytes:
    """Encode one data object in DEFAULT or SIMPLE keys (without list wrapping)."""
    if simple:
        return orjson.dumps(to_simple(obj, SIMPLE_KEYS[family(data_type)]))
    return orjson.dumps(obj)
