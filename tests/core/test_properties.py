"""Property tests: request round trips, decoding random frames, and decode's error contract."""

from __future__ import annotations

import json
import string
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.core.test_decode import FRAMES, to_simple
from upbit_ws import DecodeError, InvalidInputError
from upbit_ws.core.constants import FORMATS, ORDERBOOK_DEPTHS
from upbit_ws.core.decode import decode, decode_all
from upbit_ws.core.encode import TypeRequest, encode_request, normalize_request
from upbit_ws.core.messages import (
    CANDLE_TYPE_NAMES,
    AssetBalance,
    Candle,
    ErrorFrame,
    KeepAlive,
    Message,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    SubscriptionList,
    Ticker,
    Trade,
    UnknownMessage,
)

ALL_CLASSES = (
    Ticker,
    Trade,
    Orderbook,
    Candle,
    MyOrder,
    MyAsset,
    KeepAlive,
    ErrorFrame,
    SubscriptionList,
    UnknownMessage,
)
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- Requests ---------------------------------------------------------------------------------

quotes = st.sampled_from(["KRW", "BTC", "USDT", "SGD", "IDR", "THB"])
bases = st.text(string.ascii_uppercase + string.digits, min_size=1, max_size=8)


@st.composite
def market_codes(draw: st.DrawFn) -> str:
    code = f"{draw(quotes)}-{draw(bases)}"
    return code.lower() if draw(st.booleans()) else code


@st.composite
def type_requests(draw: st.DrawFn) -> TypeRequest:
    kind = draw(
        st.sampled_from(["ticker", "trade", "orderbook", *CANDLE_TYPE_NAMES, "myOrder", "myAsset"])
    )
    flags = draw(st.sampled_from([(False, False), (True, False), (False, True)]))
    if kind == "myAsset":
        return TypeRequest("myAsset")
    if kind == "myOrder":
        return TypeRequest("myOrder", tuple(draw(st.lists(market_codes(), max_size=4))))
    codes = draw(st.lists(market_codes(), min_size=1, max_size=6))
    level: int | float | None = None
    if kind == "orderbook":
        depth = st.sampled_from([None, *ORDERBOOK_DEPTHS])
        codes = [c if (d := draw(depth)) is None else f"{c}.{d}" for c in codes]
        level = draw(
            st.none()
            | st.integers(0, 10**7)
            | st.floats(0, 1e7, allow_nan=False, allow_infinity=False)
        )
    return TypeRequest(kind, tuple(codes), level, *flags)  # type: ignore[arg-type]


def _expected_object(request: TypeRequest) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": request.type}
    codes = list(dict.fromkeys(c.upper() for c in request.codes))
    if codes:
        obj["codes"] = codes
    if request.level is not None:
        obj["level"] = request.level
    if request.is_only_snapshot:
        obj["is_only_snapshot"] = True
    if request.is_only_realtime:
        obj["is_only_realtime"] = True
    return obj


@SETTINGS
@given(
    st.lists(type_requests(), min_size=1, max_size=6),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1).filter(str.strip),
    st.sampled_from(FORMATS),
)
def test_request_round_trip(requests: list[TypeRequest], ticket: str, fmt: Any) -> None:
    """Any valid request encodes to the array Upbit expects, readable back with a JSON parser."""
    frame = encode_request(requests, ticket=ticket, format=fmt)
    assert orjson.loads(frame) == [
        {"ticket": ticket},
        *(_expected_object(r) for r in requests),
        {"format": fmt},
    ]
    normalized = [normalize_request(r) for r in requests]
    assert [normalize_request(r) for r in normalized] == normalized
    assert encode_request(normalized, ticket=ticket, format=fmt) == frame


@SETTINGS
@given(st.text(max_size=12), st.sampled_from(["ticker", "orderbook", "myOrder"]))
def test_arbitrary_codes_are_accepted_or_refused_cleanly(code: str, kind: Any) -> None:
    """A random code either normalises to QUOTE-BASE or raises InvalidInputError, nothing else."""
    try:
        out = normalize_request(TypeRequest(kind, (code,)))
    except InvalidInputError:
        return
    (got,) = out.codes
    base = got.rpartition(".")[0] if kind == "orderbook" and "." in got else got
    quote, _, coin = base.partition("-")
    assert quote.isalnum() and quote[0].isalpha() and coin.isalnum() and base == base.upper()


# --- Server frames from random values ---------------------------------------------------------


@st.composite
def spelled(draw: st.DrawFn, value: float) -> str:
    """Spell a float the ways Upbit does; every spelling must parse back to the same float."""
    options = [repr(value), f"{value:.17e}", f"{value:.17E}"]
    if value == 0:
        options += ["0", "0E-8", "0.00000000", "0.0"]
    elif value == int(value):
        options += [str(int(value)), f"{int(value)}.00000000", f"{value:.5E}"]
    if "." in repr(value) and "e" not in repr(value):
        options.append(repr(value) + "0" * draw(st.integers(1, 8)))
    text = draw(st.sampled_from(options))
    assume(float(text) == value)
    return text


prices = st.floats(0, 1e13, allow_nan=False, allow_infinity=False) | st.integers(0, 10**9).map(
    float
)
ints = st.integers(0, 2**63 - 1)
texts = st.text(max_size=20)


def _render(draw: st.DrawFn, fields: dict[str, Any]) -> bytes:
    """Write a JSON object by hand so numbers keep the chosen spellings."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, float):
            out = draw(spelled(value))
        elif isinstance(value, list):
            out = "[" + ",".join(v.decode() for v in value) + "]"
        elif isinstance(value, Decimal):
            out = str(value)
        else:
            out = json.dumps(value)
        parts.append(f"{json.dumps(key)}:{out}")
    order = draw(st.permutations(parts)) if draw(st.booleans()) else parts
    return ("{" + ",".join(order) + "}").encode()


@st.composite
def trade_frames(draw: st.DrawFn) -> tuple[bytes, str, Trade]:
    fields: dict[str, Any] = {
        "type": "trade",
        "code": draw(texts),
        "timestamp": draw(ints),
        "trade_date": draw(texts),
        "trade_time": draw(texts),
        "trade_timestamp": draw(ints),
        "trade_price": draw(prices),
        "trade_volume": draw(prices),
        "ask_bid": draw(st.sampled_from(["ASK", "BID"])),
        "prev_closing_price": draw(prices),
        "change": draw(st.sampled_from(["RISE", "EVEN", "FALL"])),
        "change_price": draw(prices),
        "sequential_id": draw(ints),
        "best_ask_price": draw(prices),
        "best_ask_size": draw(prices),
        "best_bid_price": draw(prices),
        "best_bid_size": draw(prices),
        "stream_type": draw(st.sampled_from(["SNAPSHOT", "REALTIME"])),
    }
    want = Trade(**{k: v for k, v in fields.items() if k != "type"})
    return _render(draw, fields), "trade", want


@st.composite
def orderbook_frames(draw: st.DrawFn) -> tuple[bytes, str, Orderbook]:
    units = draw(st.lists(st.tuples(prices, prices, prices, prices), max_size=30))
    fields: dict[str, Any] = {
        "type": "orderbook",
        "code": draw(texts),
        "timestamp": draw(ints),
        "total_ask_size": draw(prices),
        "total_bid_size": draw(prices),
        "orderbook_units": [
            _render(
                draw, dict(zip(("ask_price", "bid_price", "ask_size", "bid_size"), u, strict=True))
            )
            for u in units
        ],
    }
    level = draw(st.none() | prices)
    if level is not None:
        fields["level"] = level
    want = Orderbook(
        code=fields["code"],
        timestamp=fields["timestamp"],
        total_ask_size=fields["total_ask_size"],
        total_bid_size=fields["total_bid_size"],
        orderbook_units=tuple(OrderbookUnit(*u) for u in units),
        level=level,
    )
    return _render(draw, fields), "orderbook", want


@st.composite
def candle_frames(draw: st.DrawFn) -> tuple[bytes, str, Candle]:
    fields: dict[str, Any] = {
        "type": draw(st.sampled_from(CANDLE_TYPE_NAMES)),
        "code": draw(texts),
        "candle_date_time_utc": draw(texts),
        "candle_date_time_kst": draw(texts),
        "opening_price": draw(prices),
        "high_price": draw(prices),
        "low_price": draw(prices),
        "trade_price": draw(prices),
        "candle_acc_trade_volume": draw(prices),
        "candle_acc_trade_price": draw(prices),
        "timestamp": draw(ints),
    }
    return _render(draw, fields), "candle", Candle(**fields)


decimals = st.decimals(
    min_value=Decimal("-1e20"), max_value=Decimal("1e20"), allow_nan=False, allow_infinity=False
)


@st.composite
def asset_frames(draw: st.DrawFn) -> tuple[bytes, str, MyAsset]:
    rows = draw(st.lists(st.tuples(texts, decimals, decimals), max_size=4))
    fields: dict[str, Any] = {
        "type": "myAsset",
        "asset_uuid": draw(texts),
        "assets": [_render(draw, {"currency": c, "balance": b, "locked": lk}) for c, b, lk in rows],
        "asset_timestamp": draw(ints),
        "timestamp": draw(ints),
        "stream_type": "REALTIME",
    }
    want = MyAsset(
        asset_uuid=fields["asset_uuid"],
        assets=tuple(AssetBalance(*row) for row in rows),
        asset_timestamp=fields["asset_timestamp"],
        timestamp=fields["timestamp"],
        stream_type="REALTIME",
    )
    return _render(draw, fields), "myAsset", want


@st.composite
def order_frames(draw: st.DrawFn) -> tuple[bytes, str, MyOrder]:
    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.none() | strategy)

    fields: dict[str, Any] = {
        "type": "myOrder",
        "code": draw(texts),
        "uuid": draw(texts),
        "ask_bid": draw(st.sampled_from(["ASK", "BID"])),
        "order_type": draw(st.sampled_from(["limit", "price", "market", "best"])),
        "state": draw(st.sampled_from(["wait", "watch", "trade", "done", "cancel", "prevented"])),
        "trade_uuid": maybe(texts),
        "price": maybe(decimals),
        "avg_price": maybe(decimals),
        "volume": maybe(decimals),
        "remaining_volume": maybe(decimals),
        "executed_volume": maybe(decimals),
        "trades_count": maybe(st.integers(0, 10**6)),
        "reserved_fee": maybe(decimals),
        "paid_fee": maybe(decimals),
        "locked": maybe(decimals),
        "time_in_force": maybe(st.sampled_from(["ioc", "fok", "post_only"])),
        "trade_fee": maybe(decimals),
        "is_maker": maybe(st.booleans()),
        "identifier": maybe(texts),
        "prevented_volume": maybe(decimals),
        "trade_timestamp": maybe(ints),
        "order_timestamp": draw(ints),
        "timestamp": draw(ints),
    }
    want = MyOrder(**{k: v for k, v in fields.items() if k != "type"})
    return _render(draw, fields), "myOrder", want


server_frames = st.one_of(
    trade_frames(), orderbook_frames(), candle_frames(), asset_frames(), order_frames()
)


@SETTINGS
@given(server_frames)
def test_random_server_frames_decode_to_their_values(case: tuple[bytes, str, Message]) -> None:
    """Frames built from random values and spellings decode to exactly those values."""
    frame, kind, want = case
    assert decode(frame) == want
    assert decode(to_simple(frame, kind)) == want
    assert decode_all(b"[" + frame + b"," + to_simple(frame, kind) + b"]") == [want, want]


# --- Nothing but DecodeError, for any input ---------------------------------------------------


def _check_contract(frame: Any) -> None:
    for fn in (decode, decode_all):
        try:
            result = fn(frame)
        except DecodeError:
            continue
        messages = result if isinstance(result, list) else [result]
        assert all(isinstance(m, ALL_CLASSES) for m in messages)


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_error(frame: bytes) -> None:
    """Random bytes decode to a message or raise DecodeError, never anything else."""
    _check_contract(frame)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_decode_error(frame: str) -> None:
    """Random text (including lone surrogates) decodes or raises DecodeError only."""
    _check_contract(frame)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "ty", "code", "cd", "status", "error", "name", "x"]) | texts,
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@SETTINGS
@given(json_values)
def test_arbitrary_json_raises_only_decode_error(value: Any) -> None:
    """Any JSON value decodes to a message or raises DecodeError, never anything else."""
    _check_contract(json.dumps(value).encode())


@SETTINGS
@given(
    st.sampled_from(sorted(FRAMES)),
    st.lists(st.tuples(st.integers(0, 60), st.none() | json_values), min_size=1, max_size=4),
    st.booleans(),
)
def test_mutated_real_frames_raise_only_decode_error(
    kind: str, edits: list[tuple[int, Any]], simple: bool
) -> None:
    """Example frames with fields dropped or replaced by any JSON decode or raise DecodeError."""
    fields = orjson.loads(to_simple(FRAMES[kind], kind) if simple else FRAMES[kind])
    for index, value in edits:
        keys = list(fields)
        key = keys[index % len(keys)]
        if value is None:
            del fields[key]
            if not fields:
                break
        else:
            fields[key] = value
    _check_contract(json.dumps(fields).encode())
