"""Request frames: shape, option spelling and input validation."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from upbit_ws import InvalidInputError
from upbit_ws.core.encode import (
    TypeRequest,
    encode_list_subscriptions,
    encode_request,
    new_ticket,
    normalize_request,
    orderbook_code,
)


def _frame(types: list[TypeRequest], **kw: Any) -> list[dict[str, Any]]:
    out = orjson.loads(encode_request(types, ticket="t-1", **kw))
    assert isinstance(out, list)
    return out


def test_request_is_ticket_types_format_in_order() -> None:
    """A request is one array: ticket first, the type objects, the format last."""
    frame = _frame(
        [
            TypeRequest("ticker", ("KRW-BTC", "KRW-ETH")),
            TypeRequest("trade", ("KRW-BTC",), is_only_realtime=True),
            TypeRequest("orderbook", ("KRW-BTC.15",), level=10000),
            TypeRequest("candle.1m", ("KRW-BTC",)),
        ]
    )
    assert frame == [
        {"ticket": "t-1"},
        {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]},
        {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True},
        {"type": "orderbook", "codes": ["KRW-BTC.15"], "level": 10000},
        {"type": "candle.1m", "codes": ["KRW-BTC"]},
        {"format": "DEFAULT"},
    ]


def test_request_is_compact_bytes() -> None:
    """The frame is compact UTF-8 JSON bytes, ready to send as one TEXT frame."""
    raw = encode_request([TypeRequest("ticker", ("KRW-BTC",))], ticket="x", format="SIMPLE")
    assert raw == b'[{"ticket":"x"},{"type":"ticker","codes":["KRW-BTC"]},{"format":"SIMPLE"}]'


def test_private_request_omits_asset_codes_and_empty_order_codes() -> None:
    """myAsset never carries codes and myOrder without codes means all markets."""
    frame = _frame([TypeRequest("myOrder"), TypeRequest("myAsset")])
    assert frame[1:3] == [{"type": "myOrder"}, {"type": "myAsset"}]
    frame = _frame([TypeRequest("myOrder", ("krw-btc",))])
    assert frame[1] == {"type": "myOrder", "codes": ["KRW-BTC"]}


def test_snapshot_flag_is_snake_case_and_only_when_true() -> None:
    """is_only_snapshot is sent in snake case, and false flags are left out."""
    frame = _frame([TypeRequest("ticker", ("KRW-BTC",), is_only_snapshot=True)])
    assert frame[1] == {"type": "ticker", "codes": ["KRW-BTC"], "is_only_snapshot": True}


def test_codes_are_upper_cased_and_deduplicated() -> None:
    """Lowercase codes (which Upbit would silently ignore) go out upper case, once each."""
    frame = _frame([TypeRequest("ticker", (" krw-btc", "KRW-BTC", "usdt-eth"))])
    assert frame[1]["codes"] == ["KRW-BTC", "USDT-ETH"]


def test_orderbook_suffix_is_normalised() -> None:
    """An orderbook depth suffix survives normalisation of its code."""
    frame = _frame([TypeRequest("orderbook", ("krw-btc.5", "KRW-1INCH", "btc-xrp.30"))])
    assert frame[1]["codes"] == ["KRW-BTC.5", "KRW-1INCH", "BTC-XRP.30"]


def test_level_zero_is_sent() -> None:
    """level 0 (native tick size) is a real value, not omitted."""
    frame = _frame([TypeRequest("orderbook", ("KRW-BTC",), level=0)])
    assert frame[1]["level"] == 0


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (TypeRequest("ticker"), "at least one market code"),
        (TypeRequest("ticker", ("BTC",)), "QUOTE-BASE"),
        (TypeRequest("ticker", ("KRW_BTC",)), "QUOTE-BASE"),
        (TypeRequest("ticker", ("KRW-BTC.15",)), "depth suffix"),
        (TypeRequest("trade", ("KRW-*",)), "wildcard"),
        (TypeRequest("orderbook", ("KRW-BTC.20",)), "not supported"),
        (TypeRequest("orderbook", ("KRW-BTC.x",)), "bad depth suffix"),
        (TypeRequest("orderbook", ("KRW-BTC.0",)), "bad depth suffix"),
        (TypeRequest("ticker", ("KRW-BTC",), level=10), "orderbook only"),
        (TypeRequest("orderbook", ("KRW-BTC",), level=-1), ">= 0"),
        (TypeRequest("orderbook", ("KRW-BTC",), level=float("nan")), ">= 0"),
        (TypeRequest("orderbook", ("KRW-BTC",), level=True), ">= 0"),
        (
            TypeRequest("ticker", ("KRW-BTC",), is_only_snapshot=True, is_only_realtime=True),
            "both set",
        ),
        (TypeRequest("myOrder", is_only_realtime=True), "public types only"),
        (TypeRequest("myAsset", ("KRW-BTC",)), "WRONG_FORMAT"),
        (TypeRequest("myOrder", ("KRW-BTC.15",)), "depth suffix"),
        (TypeRequest("tickers", ("KRW-BTC",)), "unknown data type"),  # type: ignore[arg-type]
        (TypeRequest("ticker", "KRW-BTC"), "must be a tuple"),  # type: ignore[arg-type]
        (TypeRequest("ticker", None), "must be a tuple"),  # type: ignore[arg-type]
        (TypeRequest("ticker", (5,)), "must be a string"),  # type: ignore[arg-type]
    ],
)
def test_bad_type_objects_are_rejected_with_a_reason(request_: TypeRequest, needle: str) -> None:
    """Each input Upbit would reject or silently ignore raises InvalidInputError saying why."""
    with pytest.raises(InvalidInputError, match=needle):
        encode_request([request_], ticket="t")


def test_request_needs_a_type_object() -> None:
    """An empty request is refused: Upbit has no unsubscribe message."""
    with pytest.raises(InvalidInputError, match="at least one"):
        encode_request([], ticket="t")


def test_single_type_request_not_in_a_list_is_refused() -> None:
    """Passing a TypeRequest instead of a list of them is a clear error, not a crash."""
    with pytest.raises(InvalidInputError, match="pass a list"):
        encode_request(TypeRequest("ticker", ("KRW-BTC",)), ticket="t")  # type: ignore[arg-type]


@pytest.mark.parametrize("ticket", ["", "   ", None, 5, "bad\ud800"])
def test_ticket_must_be_a_non_empty_string(ticket: Any) -> None:
    """A missing ticket (Upbit's NO_TICKET) is caught before sending."""
    with pytest.raises(InvalidInputError, match="ticket"):
        encode_request([TypeRequest("ticker", ("KRW-BTC",))], ticket=ticket)


def test_unknown_format_is_refused() -> None:
    """Only the four documented formats are accepted."""
    with pytest.raises(InvalidInputError, match="format"):
        encode_request([TypeRequest("ticker", ("KRW-BTC",))], ticket="t", format="XML")  # type: ignore[arg-type]


def test_list_codes_become_a_tuple() -> None:
    """Codes given as a list are accepted and normalised to a hashable tuple."""
    fixed = normalize_request(TypeRequest("ticker", ["krw-btc"]))  # type: ignore[arg-type]
    assert fixed.codes == ("KRW-BTC",)
    assert hash(fixed) == hash(TypeRequest("ticker", ("KRW-BTC",)))


def test_normalize_request_returns_same_object_when_clean() -> None:
    """A request that is already normal is returned as is (cheap for the planner)."""
    req = TypeRequest("ticker", ("KRW-BTC",))
    assert normalize_request(req) is req
    fixed = normalize_request(TypeRequest("ticker", ("krw-btc",)))
    assert fixed == TypeRequest("ticker", ("KRW-BTC",))


def test_type_request_is_frozen_and_hashable() -> None:
    """TypeRequest is an immutable value usable as a dict key."""
    req = TypeRequest("ticker", ("KRW-BTC",))
    with pytest.raises(AttributeError):
        req.codes = ()  # type: ignore[misc]
    assert {req: 1}[TypeRequest("ticker", ("KRW-BTC",))] == 1


@pytest.mark.parametrize("depth", [1, 5, 15, 30])
def test_orderbook_code_appends_allowed_depths(depth: int) -> None:
    """orderbook_code builds the .N suffix for each depth Upbit honours."""
    assert orderbook_code("krw-btc", depth) == f"KRW-BTC.{depth}"


@pytest.mark.parametrize("depth", [0, 2, 20, 31, True, 15.0])
def test_orderbook_code_refuses_other_depths(depth: Any) -> None:
    """Depths Upbit would silently turn into 30 are refused."""
    with pytest.raises(InvalidInputError, match="not supported"):
        orderbook_code("KRW-BTC", depth)


def test_list_subscriptions_frame() -> None:
    """LIST_SUBSCRIPTIONS is ticket plus method, with a format only when asked."""
    assert orjson.loads(encode_list_subscriptions(ticket="u")) == [
        {"ticket": "u"},
        {"method": "LIST_SUBSCRIPTIONS"},
    ]
    assert orjson.loads(encode_list_subscriptions(ticket="u", format="SIMPLE"))[-1] == {
        "format": "SIMPLE"
    }


def test_new_ticket_is_a_fresh_uuid4() -> None:
    """Tickets are UUID4 strings and differ between calls."""
    a, b = new_ticket(), new_ticket()
    assert a != b
    assert uuid.UUID(a).version == 4


def test_unsupported_level_names_supported_levels_and_unknown_markets() -> None:
    """A level some market does not honour is one error naming each market's levels."""
    from decimal import Decimal

    from upbit_ws.core.encode import unsupported_level

    levels = {"KRW-BTC": (Decimal("0"), Decimal("10000")), "BTC-ETH": (Decimal("0"),)}
    assert unsupported_level(None, ["KRW-BTC"], levels) is None
    assert unsupported_level(0, ["KRW-XRP"], levels) is None
    assert unsupported_level(10000.0, ["KRW-BTC"], levels) is None
    error = unsupported_level(7, ["KRW-BTC", "BTC-ETH", "KRW-XRP"], levels)
    assert error is not None
    text = str(error)
    assert "KRW-BTC (supported: 0, 10000)" in text and "BTC-ETH (supported: 0)" in text
    assert "KRW-XRP (Upbit publishes no grouping levels" in text
