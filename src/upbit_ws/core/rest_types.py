"""Typed, immutable REST response bodies for the endpoints a WebSocket manager needs.

REST shapes differ from the WebSocket ones (docs/rest.md): exchange endpoints send numbers as
strings (kept exact here as :class:`~decimal.Decimal`: money on the account), name the side
``side``/``ord_type`` (WebSocket: ``ask_bid``/``order_type``) and omit null fields; quotation
endpoints send JSON numbers (``float`` here, like the streamed market data). Unknown fields are
ignored so that Upbit can add some.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Final, TypeVar

import msgspec
import orjson

from upbit_ws.core.errors import DecodeError
from upbit_ws.core.messages import OrderbookUnit

__all__ = [
    "Account",
    "ApiKeyInfo",
    "DayCandle",
    "MarketCaution",
    "MarketEvent",
    "MarketInfo",
    "MinuteCandle",
    "OrderTrade",
    "OrderbookInstrument",
    "PeriodCandle",
    "RestOrder",
    "RestOrderbook",
    "RestTicker",
    "SecondCandle",
    "TradeTick",
    "decode_rest",
    "parse_retry_after",
    "read_error_body",
]

T = TypeVar("T")


class MarketCaution(msgspec.Struct, frozen=True):
    """The ``market_event.caution`` flags of ``GET /v1/market/all?is_details=true``."""

    PRICE_FLUCTUATIONS: bool = False
    TRADING_VOLUME_SOARING: bool = False
    DEPOSIT_AMOUNT_SOARING: bool = False
    GLOBAL_PRICE_DIFFERENCES: bool = False
    CONCENTRATION_OF_SMALL_ACCOUNTS: bool = False


class MarketEvent(msgspec.Struct, frozen=True):
    """``market_event``: the investment warning and the caution flags."""

    warning: bool = False
    caution: MarketCaution = MarketCaution()


class MarketInfo(msgspec.Struct, frozen=True):
    """One market of ``GET /v1/market/all`` (details only with ``is_details=true``).

    The Indonesia host sends no ``korean_name`` and only ``market_warning``.
    """

    market: str
    english_name: str = ""
    korean_name: str = ""
    market_warning: str | None = None
    market_event: MarketEvent | None = None


class ApiKeyInfo(msgspec.Struct, frozen=True):
    """One key of ``GET /v1/api_keys``; ``expire_at`` is ISO 8601 with ``+09:00``."""

    access_key: str
    expire_at: str

    def __repr__(self) -> str:
        # The access key identifies the account; show only enough of it to tell keys apart.
        shown = f"{self.access_key[:4]}…" if len(self.access_key) > 4 else "…"
        return f"ApiKeyInfo(access_key={shown!r}, expire_at={self.expire_at!r})"


class Account(msgspec.Struct, frozen=True):
    """One currency of ``GET /v1/accounts``; amounts are exact decimals (sent as strings)."""

    currency: str
    balance: Decimal
    locked: Decimal
    avg_buy_price: Decimal = Decimal(0)
    avg_buy_price_modified: bool = False
    unit_currency: str = "KRW"


class OrderTrade(msgspec.Struct, frozen=True):
    """One fill inside a single-order body (``GET /v1/order`` lists ``trades``)."""

    market: str
    uuid: str
    price: Decimal
    volume: Decimal
    funds: Decimal
    side: str
    created_at: str
    trend: str | None = None


class RestOrder(msgspec.Struct, frozen=True):
    """One order of ``/v1/order``, ``/v1/orders/open`` or ``/v1/orders/closed``.

    Absent fields are ``None`` (REST omits nulls: a market sell has no ``price``, a market buy
    no ``volume``). A filled market buy ends in state ``cancel`` (section 15).
    """

    uuid: str
    side: str
    ord_type: str
    state: str
    market: str
    created_at: str
    price: Decimal | None = None
    volume: Decimal | None = None
    remaining_volume: Decimal | None = None
    executed_volume: Decimal | None = None
    executed_funds: Decimal | None = None
    reserved_fee: Decimal | None = None
    remaining_fee: Decimal | None = None
    paid_fee: Decimal | None = None
    locked: Decimal | None = None
    trades_count: int = 0
    time_in_force: str | None = None
    identifier: str | None = None
    smp_type: str | None = None
    prevented_volume: Decimal | None = None
    prevented_locked: Decimal | None = None
    trades: tuple[OrderTrade, ...] = ()


class TradeTick(msgspec.Struct, frozen=True):
    """One trade of ``GET /v1/trades/ticks`` (newest first; ``change_price`` is signed here).

    ``sequential_id`` is unique but not ordered: dedupe by it, sort by
    ``(timestamp, sequential_id)`` (section 9.5).
    """

    market: str
    trade_date_utc: str
    trade_time_utc: str
    timestamp: int
    trade_price: float
    trade_volume: float
    prev_closing_price: float
    change_price: float
    ask_bid: str
    sequential_id: int


class MinuteCandle(msgspec.Struct, frozen=True):
    """One candle of ``GET /v1/candles/minutes/{unit}`` (newest first)."""

    market: str
    candle_date_time_utc: str
    candle_date_time_kst: str
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    timestamp: int
    candle_acc_trade_price: float
    candle_acc_trade_volume: float
    unit: int


class SecondCandle(msgspec.Struct, frozen=True):
    """One candle of ``GET /v1/candles/seconds`` (newest first; the last 3 months only)."""

    market: str
    candle_date_time_utc: str
    candle_date_time_kst: str
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    timestamp: int
    candle_acc_trade_price: float
    candle_acc_trade_volume: float


class DayCandle(msgspec.Struct, frozen=True):
    """One candle of ``GET /v1/candles/days`` (newest first; days start 00:00 UTC).

    ``converted_trade_price`` is set only when ``converting_price_unit`` was asked for.
    """

    market: str
    candle_date_time_utc: str
    candle_date_time_kst: str
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    timestamp: int
    candle_acc_trade_price: float
    candle_acc_trade_volume: float
    prev_closing_price: float
    change_price: float
    change_rate: float
    converted_trade_price: float | None = None


class PeriodCandle(msgspec.Struct, frozen=True):
    """One candle of ``GET /v1/candles/weeks`` or ``/months`` (newest first).

    ``first_day_of_period`` (``yyyy-MM-dd``) names the week's Monday or the month's first day.
    """

    market: str
    candle_date_time_utc: str
    candle_date_time_kst: str
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    timestamp: int
    candle_acc_trade_price: float
    candle_acc_trade_volume: float
    first_day_of_period: str


class RestTicker(msgspec.Struct, frozen=True):
    """One market of ``GET /v1/ticker``: the snapshot the ``ticker`` stream starts from.

    ``market`` is the code (the stream calls it ``code``); ``trade_date``/``trade_time`` are UTC
    ``yyyyMMdd``/``HHmmss`` and the ``_kst`` twins the same instant in KST. The ``change*``
    fields compare with the previous UTC-midnight close.
    """

    market: str
    trade_date: str
    trade_time: str
    trade_timestamp: int
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    prev_closing_price: float
    change: str
    change_price: float
    change_rate: float
    signed_change_price: float
    signed_change_rate: float
    trade_volume: float
    acc_trade_price: float
    acc_trade_price_24h: float
    acc_trade_volume: float
    acc_trade_volume_24h: float
    timestamp: int
    trade_date_kst: str = ""
    trade_time_kst: str = ""
    highest_52_week_price: float | None = None
    highest_52_week_date: str | None = None
    lowest_52_week_price: float | None = None
    lowest_52_week_date: str | None = None


class OrderbookInstrument(msgspec.Struct, frozen=True):
    """One market of ``GET /v1/orderbook/instruments``: its tick and grouping levels.

    ``supported_levels`` are the order book ``level`` values Upbit honours for the market
    (``0``, the native tick, always; others on KRW markets only), exact as Upbit spells them.
    """

    market: str
    quote_currency: str
    tick_size: Decimal
    supported_levels: tuple[Decimal, ...] = ()

    def supports(self, level: float | int | str | Decimal) -> bool:
        """Tell whether ``level`` (as a subscription or REST call would give it) is honoured."""
        try:
            wanted = Decimal(str(level)) if not isinstance(level, Decimal) else level
        except ArithmeticError:
            return False
        return any(wanted == known for known in self.supported_levels)


class RestOrderbook(msgspec.Struct, frozen=True):
    """One market of ``GET /v1/orderbook``: the whole top-N book, best first.

    ``orderbook_units`` rows are the stream's :class:`~upbit_ws.core.messages.OrderbookUnit`;
    ``level`` echoes the price grouping (0: native tick).
    """

    market: str
    timestamp: int
    total_ask_size: float
    total_bid_size: float
    orderbook_units: tuple[OrderbookUnit, ...]
    level: float = 0.0

    @property
    def units(self) -> tuple[OrderbookUnit, ...]:
        """Return the book's rows, best first (the same tuple as ``orderbook_units``)."""
        return self.orderbook_units


_DECODERS: Final[dict[Any, msgspec.json.Decoder[Any]]] = {}


def decode_rest(body: bytes, kind: type[T]) -> T:
    """Decode a REST body into ``kind`` (e.g. ``list[MarketInfo]``) or raise DecodeError.

    Exchange endpoints send numbers as strings, quotation endpoints as numbers; the strict=False
    decoder accepts both for every numeric field.
    """
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind, strict=False)
    try:
        return decoder.decode(body)  # type: ignore[no-any-return]
    except msgspec.DecodeError as exc:
        raise DecodeError(f"unexpected REST body: {exc}", body) from exc


def read_error_body(body: bytes) -> tuple[str, str] | None:
    """Read Upbit's ``{"error": {"name", "message"}}`` (section 9.7), or None if not one.

    ``name`` may be a number on quotation endpoints (``{"name": 404, ...}``); it is returned as
    text. Used for REST answers and for refused WebSocket handshakes alike.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict) or error.get("name") is None:
        return None
    message = error.get("message")
    return str(error["name"]), str(message) if message else ""


def parse_retry_after(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header given in seconds; None for anything else."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
