"""Typed, immutable messages for every frame Upbit's WebSocket sends.

One class per message kind, with Upbit's DEFAULT field names (docs/protocol.md section 4).
SIMPLE-format frames decode into the same classes (:mod:`upbit_ws.core.decode` reads the
abbreviated keys listed in :data:`SIMPLE_KEYS`).

Numbers follow one rule (docs/rest.md, "Numbers"): market data (ticker, trade, orderbook,
candle) is ``float``, for display and signals at a high rate (Upbit sends JSON doubles, in any
spelling: ``1.16539E8``, ``0E-8``, ``91361000.0``, bare integers; section 15 of the protocol
notes); everything a trader adds or compares as money on their own account (every amount of
:class:`MyOrder` and :class:`MyAsset`) is an exact :class:`decimal.Decimal`, as in the REST
results. Timestamps and ``sequential_id`` are ``int`` (``sequential_id`` exceeds 2**53, so it
never goes through a float).

:class:`MyOrder` and :class:`MyAsset` carry ``reconciled``: ``False`` for a frame received on
the socket, ``True`` for a message rebuilt from REST after a private gap
(:mod:`upbit_ws.core.reconcile`).

Every data message has ``.type`` (the wire type, e.g. ``"ticker"`` or ``"candle.1m"``) and
``.code`` (the market, e.g. ``"KRW-BTC"``; ``None`` for myAsset, which has no market). The
control frames (:class:`KeepAlive`, :class:`ErrorFrame`, :class:`SubscriptionList`) also have
``.type`` (``"status"``, ``"error"``, ``"LIST_SUBSCRIPTIONS"``) and ``.code`` (``None``), so a
router can read both from any message.

All classes are frozen ``msgspec.Struct`` values (``gc=False``: they hold no reference cycles);
build them with keyword arguments (the field order is not part of the API). They encode back
to DEFAULT JSON with ``msgspec.json.encode``; :class:`MyOrder` and :class:`MyAsset` leave out
fields at their default (``None``, and ``reconciled`` unless it is ``True``), so an encoded live
event carries only Upbit's keys and a reconciled one keeps its mark through JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, TypeAlias

import msgspec

from upbit_ws.core.constants import CANDLE_TYPES, CandleType
from upbit_ws.core.errors import InvalidInputError

__all__ = [
    "CANDLE_TYPE_NAMES",
    "MESSAGE_TYPES",
    "SIMPLE_KEYS",
    "AskBid",
    "AssetBalance",
    "Candle",
    "CandleType",
    "Change",
    "DataMessage",
    "ErrorFrame",
    "KeepAlive",
    "Message",
    "MyAsset",
    "MyOrder",
    "Orderbook",
    "OrderbookUnit",
    "StreamType",
    "SubscribedType",
    "SubscriptionList",
    "Ticker",
    "Trade",
    "UnknownMessage",
]

StreamType = Literal["SNAPSHOT", "REALTIME"]
#: ``RISE`` / ``EVEN`` / ``FALL`` against the previous close (section 4.1).
Change = Literal["RISE", "EVEN", "FALL"]
#: ``ASK``: seller-initiated (or a sell order), ``BID``: buyer-initiated (section 4.2).
AskBid = Literal["ASK", "BID"]
CANDLE_TYPE_NAMES: Final[tuple[CandleType, ...]] = CANDLE_TYPES

# The hot data types are members of a msgspec tagged union over ``type`` (one C-level decode,
# no per-frame Python dispatch); ``type`` is then the tag, exposed as a class constant.
# Fields are positional-or-keyword (required ones first) so the SIMPLE path can build a
# message from its twin's field tuple in one C call; build messages with keywords.
_TAGGED: Final[dict[str, Any]] = {"frozen": True, "gc": False, "tag_field": "type"}
_PLAIN: Final[dict[str, Any]] = {"frozen": True, "gc": False}


class Ticker(msgspec.Struct, tag="ticker", **_TAGGED):
    """A ticker frame: the market's current price and daily statistics (section 4.1).

    ``trade_date``/``trade_time`` are UTC ``yyyyMMdd``/``HHmmss`` (not the trade format).
    Fields Upbit marks deprecated or added later, and the 52-week figures, may be absent and
    then read ``None``. ``delisting_date`` is opaque (usually ``None``; the docs and the SDK
    disagree on its shape), kept as decoded JSON.
    """

    type: ClassVar[Literal["ticker"]] = "ticker"
    code: str
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    prev_closing_price: float
    change: Change
    change_price: float
    signed_change_price: float
    change_rate: float
    signed_change_rate: float
    trade_volume: float
    acc_trade_volume: float
    acc_trade_price: float
    trade_date: str
    trade_time: str
    trade_timestamp: int
    ask_bid: AskBid
    acc_ask_volume: float
    acc_bid_volume: float
    timestamp: int
    acc_trade_volume_24h: float | None = None
    acc_trade_price_24h: float | None = None
    highest_52_week_price: float | None = None
    highest_52_week_date: str | None = None
    lowest_52_week_price: float | None = None
    lowest_52_week_date: str | None = None
    market_state: str | None = None
    delisting_date: Any = None
    is_trading_suspended: bool | None = None
    market_warning: str | None = None
    trade_status: str | None = None
    market_state_for_ios: str | None = None
    stream_type: StreamType | None = None


class Trade(msgspec.Struct, tag="trade", **_TAGGED):
    """A trade frame: one executed trade (section 4.2).

    ``trade_date``/``trade_time`` are UTC ``yyyy-MM-dd``/``HH:mm:ss``. ``sequential_id`` is
    unique per trade but not ordered (dedupe by it, sort by ``(trade_timestamp,
    sequential_id)``). ``change_price`` is unsigned. The ``best_*`` fields were added later
    and read ``None`` when absent.
    """

    type: ClassVar[Literal["trade"]] = "trade"
    code: str
    trade_price: float
    trade_volume: float
    ask_bid: AskBid
    prev_closing_price: float
    change: Change
    change_price: float
    trade_date: str
    trade_time: str
    trade_timestamp: int
    timestamp: int
    sequential_id: int
    best_ask_price: float | None = None
    best_ask_size: float | None = None
    best_bid_price: float | None = None
    best_bid_size: float | None = None
    stream_type: StreamType | None = None


class OrderbookUnit(msgspec.Struct, frozen=True, gc=False):
    """One row of an order book: the i-th best ask beside the i-th best bid (section 4.3).

    Thin books are padded with zero prices and sizes on the empty side.
    """

    ask_price: float
    bid_price: float
    ask_size: float
    bid_size: float


class Orderbook(msgspec.Struct, tag="orderbook", **_TAGGED):
    """An order book frame: always the whole top-N book, never a delta (section 4.3).

    ``code`` has no ``.N`` suffix. ``orderbook_units`` (also ``units``) runs from the best
    price outwards. ``level`` echoes the requested price grouping (0 = native tick) and is
    ``None`` where the host does not send it (Indonesia); ``stream_type`` may be absent too.
    """

    type: ClassVar[Literal["orderbook"]] = "orderbook"
    code: str
    timestamp: int
    total_ask_size: float
    total_bid_size: float
    orderbook_units: tuple[OrderbookUnit, ...]
    level: float | None = None
    stream_type: StreamType | None = None

    @property
    def units(self) -> tuple[OrderbookUnit, ...]:
        """Return the book's rows, best first (the same tuple as ``orderbook_units``)."""
        return self.orderbook_units

    @property
    def best_ask(self) -> float | None:
        """Return the lowest ask price, or ``None`` when the ask side is empty (zero padded)."""
        units = self.orderbook_units
        if units and units[0].ask_price > 0:
            return units[0].ask_price
        return None

    @property
    def best_bid(self) -> float | None:
        """Return the highest bid price, or ``None`` when the bid side is empty (zero padded)."""
        units = self.orderbook_units
        if units and units[0].bid_price > 0:
            return units[0].bid_price
        return None

    def truncated(self, depth: int) -> Orderbook:
        """Return this book cut to its best ``depth`` rows (``self`` when it has no more).

        Used to serve a depth-15 subscriber from a depth-30 stream. The totals are recomputed
        over the rows kept, since Upbit's totals cover the units it sends (section 4.3).
        A depth below 1 raises :class:`~upbit_ws.InvalidInputError`.
        """
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise InvalidInputError(f"orderbook depth must be a positive int, not {depth!r}")
        units = self.orderbook_units
        if depth >= len(units):
            return self
        kept = units[:depth]
        return msgspec.structs.replace(
            self,
            orderbook_units=kept,
            total_ask_size=round(math.fsum(u.ask_size for u in kept), 8),
            total_bid_size=round(math.fsum(u.bid_size for u in kept), 8),
        )


class Candle(msgspec.Struct, **_PLAIN):
    """A candle frame of any of the nine intervals; ``type`` says which (section 4.4).

    ``candle_date_time_utc``/``_kst`` are ``yyyy-MM-ddTHH:mm:ss`` without a zone. The same
    candle time can arrive several times: the last one wins.
    """

    type: CandleType
    code: str
    candle_date_time_utc: str
    candle_date_time_kst: str
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    candle_acc_trade_volume: float
    candle_acc_trade_price: float
    timestamp: int
    stream_type: StreamType | None = None


class MyOrder(msgspec.Struct, tag="myOrder", omit_defaults=True, **_TAGGED):
    """A private order event: placed, filled, cancelled (section 4.5).

    ``order_type`` is ``limit``, ``price`` (market buy by amount), ``market`` (market sell) or
    ``best``; ``state`` is ``wait``, ``watch``, ``trade`` (a fill; ``trade_*`` fields set),
    ``done``, ``cancel`` or ``prevented``. They are plain strings so that a value Upbit adds
    later does not lose the event. Upbit sends many fields as ``null`` (a market buy has no
    ``volume``; a non-fill has no ``trade_uuid``); those read ``None``. Amounts are exact
    :class:`~decimal.Decimal` values (numbers or strings on the wire, section 4.5).
    ``reconciled`` is ``True`` on an event rebuilt from REST after a private gap.
    """

    type: ClassVar[Literal["myOrder"]] = "myOrder"
    code: str
    uuid: str
    ask_bid: AskBid
    order_type: str
    state: str
    timestamp: int
    trade_uuid: str | None = None
    price: Decimal | None = None
    avg_price: Decimal | None = None
    volume: Decimal | None = None
    remaining_volume: Decimal | None = None
    executed_volume: Decimal | None = None
    trades_count: int | None = None
    reserved_fee: Decimal | None = None
    remaining_fee: Decimal | None = None
    paid_fee: Decimal | None = None
    locked: Decimal | None = None
    executed_funds: Decimal | None = None
    time_in_force: str | None = None
    trade_fee: Decimal | None = None
    is_maker: bool | None = None
    identifier: str | None = None
    smp_type: str | None = None
    prevented_volume: Decimal | None = None
    prevented_locked: Decimal | None = None
    trade_timestamp: int | None = None
    order_timestamp: int | None = None
    stream_type: StreamType | None = None
    #: ``True`` when rebuilt from REST after a private gap rather than received live.
    reconciled: bool = False


class AssetBalance(msgspec.Struct, frozen=True, gc=False):
    """One currency of a myAsset frame; ``balance`` is orderable, ``locked`` held by orders.

    Both are exact :class:`~decimal.Decimal` values: Upbit sends more than 17 significant
    digits (``1386929.37231066771348207123``, section 4.6), which a float would round.
    """

    currency: str
    balance: Decimal
    locked: Decimal


class MyAsset(msgspec.Struct, tag="myAsset", omit_defaults=True, **_TAGGED):
    """A private balance change, usually one changed currency per frame (section 4.6).

    myAsset has no market: ``code`` is ``None``. ``reconciled`` is ``True`` on a message
    rebuilt from ``GET /v1/accounts`` after a private gap.
    """

    type: ClassVar[Literal["myAsset"]] = "myAsset"
    code: ClassVar[None] = None
    asset_uuid: str
    assets: tuple[AssetBalance, ...]
    asset_timestamp: int
    timestamp: int
    stream_type: StreamType | None = None
    #: ``True`` when rebuilt from ``GET /v1/accounts`` after a private gap.
    reconciled: bool = False


class KeepAlive(msgspec.Struct, **_PLAIN):
    """The ``{"status":"UP"}`` reply Upbit sends every 10 s after a text ``PING`` (section 6)."""

    type: ClassVar[Literal["status"]] = "status"
    code: ClassVar[None] = None
    status: str


class ErrorFrame(msgspec.Struct, **_PLAIN):
    """An error frame ``{"error":{"name","message"}}``; Upbit closes the socket after it.

    ``name`` is e.g. ``WRONG_FORMAT``, ``NO_TICKET``, ``INVALID_AUTH`` (section 7.2).
    Decoding never raises for it: the connection decides what to do.
    """

    type: ClassVar[Literal["error"]] = "error"
    code: ClassVar[None] = None
    name: str
    message: str


class SubscribedType(msgspec.Struct, **_PLAIN):
    """One entry of a LIST_SUBSCRIPTIONS reply: a type and its codes as Upbit holds them.

    The ``is_only_*`` flags are ``None`` unless Upbit echoes them (unknown, section 3.3).
    """

    type: str
    codes: tuple[str, ...] = ()
    level: float | None = None
    is_only_snapshot: bool | None = None
    is_only_realtime: bool | None = None


class SubscriptionList(msgspec.Struct, **_PLAIN):
    """The reply to LIST_SUBSCRIPTIONS: what Upbit is streaming on this connection (3.3)."""

    type: ClassVar[Literal["LIST_SUBSCRIPTIONS"]] = "LIST_SUBSCRIPTIONS"
    code: ClassVar[None] = None
    result: tuple[SubscribedType, ...]
    ticket: str | None = None


class UnknownMessage(msgspec.Struct, frozen=True):
    """A frame whose ``type`` this library does not know (e.g. ``indicator``), kept raw.

    ``raw`` is the whole frame as decoded JSON, with the keys as sent (SIMPLE frames keep
    their short keys); ``code`` is its ``code``/``cd`` when that is a string.
    """

    type: str
    raw: dict[str, Any]

    @property
    def code(self) -> str | None:
        """Return the frame's market code when it has one, else ``None``."""
        value = self.raw.get("code", self.raw.get("cd"))
        return value if isinstance(value, str) else None


#: A data message: what a subscription yields.
DataMessage: TypeAlias = Ticker | Trade | Orderbook | Candle | MyOrder | MyAsset
#: Anything :func:`upbit_ws.decode` returns.
Message: TypeAlias = DataMessage | KeepAlive | ErrorFrame | SubscriptionList | UnknownMessage

#: Wire type name -> message class, for every data type (all nine candle types map to Candle).
MESSAGE_TYPES: Final[Mapping[str, type[DataMessage]]] = MappingProxyType(
    {
        "ticker": Ticker,
        "trade": Trade,
        "orderbook": Orderbook,
        **dict.fromkeys(CANDLE_TYPE_NAMES, Candle),
        "myOrder": MyOrder,
        "myAsset": MyAsset,
    }
)

_COMMON = {"type": "ty", "code": "cd", "timestamp": "tms", "stream_type": "st"}

#: SIMPLE-format key of each DEFAULT field, per message kind (sections 4.1-4.6 and 3.3).
#: Nested rows use the keys ``orderbook_units`` / ``assets`` / ``result`` in the kind's map.
SIMPLE_KEYS: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "ticker": MappingProxyType(
            {
                **_COMMON,
                "opening_price": "op",
                "high_price": "hp",
                "low_price": "lp",
                "trade_price": "tp",
                "prev_closing_price": "pcp",
                "change": "c",
                "change_price": "cp",
                "signed_change_price": "scp",
                "change_rate": "cr",
                "signed_change_rate": "scr",
                "trade_volume": "tv",
                "acc_trade_volume": "atv",
                "acc_trade_volume_24h": "atv24h",
                "acc_trade_price": "atp",
                "acc_trade_price_24h": "atp24h",
                "trade_date": "tdt",
                "trade_time": "ttm",
                "trade_timestamp": "ttms",
                "ask_bid": "ab",
                "acc_ask_volume": "aav",
                "acc_bid_volume": "abv",
                "highest_52_week_price": "h52wp",
                "highest_52_week_date": "h52wdt",
                "lowest_52_week_price": "l52wp",
                "lowest_52_week_date": "l52wdt",
                "market_state": "ms",
                "delisting_date": "dd",
                "trade_status": "ts",
                "market_state_for_ios": "msfi",
                "is_trading_suspended": "its",
                "market_warning": "mw",
            }
        ),
        "trade": MappingProxyType(
            {
                **_COMMON,
                "trade_price": "tp",
                "trade_volume": "tv",
                "ask_bid": "ab",
                "prev_closing_price": "pcp",
                "change": "c",
                "change_price": "cp",
                "trade_date": "td",
                "trade_time": "ttm",
                "trade_timestamp": "ttms",
                "sequential_id": "sid",
                "best_ask_price": "bap",
                "best_ask_size": "bas",
                "best_bid_price": "bbp",
                "best_bid_size": "bbs",
            }
        ),
        "orderbook": MappingProxyType(
            {
                **_COMMON,
                "total_ask_size": "tas",
                "total_bid_size": "tbs",
                "orderbook_units": "obu",
                "level": "lv",
            }
        ),
        "orderbook_units": MappingProxyType(
            {"ask_price": "ap", "bid_price": "bp", "ask_size": "as", "bid_size": "bs"}
        ),
        "candle": MappingProxyType(
            {
                **_COMMON,
                "candle_date_time_utc": "cdttmu",
                "candle_date_time_kst": "cdttmk",
                "opening_price": "op",
                "high_price": "hp",
                "low_price": "lp",
                "trade_price": "tp",
                "candle_acc_trade_volume": "catv",
                "candle_acc_trade_price": "catp",
            }
        ),
        "myOrder": MappingProxyType(
            {
                **_COMMON,
                "uuid": "uid",
                "ask_bid": "ab",
                "order_type": "ot",
                "state": "s",
                "trade_uuid": "tuid",
                "price": "p",
                "avg_price": "ap",
                "volume": "v",
                "remaining_volume": "rv",
                "executed_volume": "ev",
                "trades_count": "tc",
                "reserved_fee": "rsf",
                "remaining_fee": "rmf",
                "paid_fee": "pf",
                "locked": "l",
                "executed_funds": "ef",
                "time_in_force": "tif",
                "trade_fee": "tf",
                "is_maker": "im",
                "identifier": "id",
                "smp_type": "smpt",
                "prevented_volume": "pv",
                "prevented_locked": "pl",
                "trade_timestamp": "ttms",
                "order_timestamp": "otms",
            }
        ),
        "myAsset": MappingProxyType(
            {
                "type": "ty",
                "timestamp": "tms",
                "stream_type": "st",
                "asset_uuid": "astuid",
                "assets": "ast",
                "asset_timestamp": "asttms",
            }
        ),
        "assets": MappingProxyType({"currency": "cu", "balance": "b", "locked": "l"}),
        "LIST_SUBSCRIPTIONS": MappingProxyType(
            {"method": "mthd", "result": "rslt", "ticket": "tckt"}
        ),
        "result": MappingProxyType({"type": "ty", "codes": "cds", "level": "lv"}),
    }
)
