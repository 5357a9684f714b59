"""Request parsing: Upbit's error names and messages (section 7.2), options and suffixes."""

from __future__ import annotations

import orjson
import pytest

from upbit_ws.simulator import SimulatorConfig
from upbit_ws.simulator.protocol import (
    ListSubscriptions,
    Ping,
    RequestError,
    Subscribe,
    list_result,
    parse_request,
)

CFG = SimulatorConfig()


def _parse(obj: object, *, path: str = "public", config: SimulatorConfig = CFG) -> object:
    text = obj if isinstance(obj, str) else orjson.dumps(obj).decode()
    return parse_request(text, path=path, config=config)  # type: ignore[arg-type]


T = {"ticket": "t"}
BTC = ["KRW-BTC"]
BAD = [
    ("hello", "WRONG_FORMAT", "Format 이 맞지 않습니다."),
    ({"ticket": "t"}, "WRONG_FORMAT", "Format 이 맞지 않습니다."),
    ([{"type": "ticker", "codes": BTC}], "NO_TICKET", "티켓이 존재하지 않거나, 유효하지 않습니다."),
    ([{"ticket": ""}, {"type": "ticker", "codes": BTC}], "NO_TICKET", None),
    ([T, {"codes": BTC}], "NO_TYPE", "type 필드가 존재하지 않습니다."),
    ([T, {"type": "ticker"}], "NO_CODES", "codes 필드가 존재하지 않습니다."),
    ([T, {"type": "ticker", "codes": []}], "INVALID_PARAM", "codes 필드가 비어 있습니다."),
    ([T, {"type": "nope", "codes": BTC}], "INVALID_PARAM", "nope 은 지원하지 않는 타입입니다."),
    ([T, {"type": "ticker", "codes": BTC}, {"format": "XML"}], "WRONG_FORMAT", None),
    ([T, {"type": "ticker", "codes": "KRW-BTC"}], "WRONG_FORMAT", None),
]


@pytest.mark.parametrize(("frame", "name", "message"), BAD)
def test_invalid_requests_get_upbit_errors(frame: object, name: str, message: str | None) -> None:
    """Each malformed request maps to the section 7.2 error name and Korean message."""
    result = _parse(frame)
    assert isinstance(result, RequestError)
    assert result.name == name
    if message is not None:
        assert result.message == message


def test_objects_found_by_key_in_any_order() -> None:
    """Format first, ticket last: objects are found by key, not position (section 2.1)."""
    result = _parse(
        [{"format": "SIMPLE"}, {"type": "trade", "codes": ["KRW-BTC"]}, {"ticket": "x"}]
    )
    assert isinstance(result, Subscribe)
    assert (result.ticket, result.format) == ("x", "SIMPLE")
    assert [(e.type, e.code) for e in result.entries] == [("trade", "KRW-BTC")]


def test_missing_format_means_default() -> None:
    """Leaving out the format object gives DEFAULT (section 2.1, PROBE)."""
    result = _parse([{"ticket": "t"}, {"type": "ticker", "codes": ["KRW-BTC"]}])
    assert isinstance(result, Subscribe) and result.format == "DEFAULT"


@pytest.mark.parametrize(
    ("code", "depth"),
    [("KRW-BTC", 30), ("KRW-BTC.1", 1), ("KRW-BTC.5", 5), ("KRW-BTC.15", 15), ("KRW-BTC.30", 30),
     ("KRW-BTC.20", 30), ("KRW-BTC.2", 30)],
)  # fmt: skip
def test_orderbook_depth_suffix(code: str, depth: int) -> None:
    """Only .1/.5/.15/.30 are honoured; any other suffix (or none) gives 30 (section 2.3)."""
    result = _parse([{"ticket": "t"}, {"type": "orderbook", "codes": [code]}])
    assert isinstance(result, Subscribe)
    assert (result.entries[0].code, result.entries[0].depth) == ("KRW-BTC", depth)


def test_snake_and_camel_flags() -> None:
    """is_only_snapshot and isOnlyRealtime are both honoured; camel case can be turned off."""
    result = _parse(
        [{"ticket": "t"}, {"type": "ticker", "codes": ["KRW-BTC"], "is_only_snapshot": True},
         {"type": "trade", "codes": ["KRW-BTC"], "isOnlyRealtime": True}]
    )  # fmt: skip
    assert isinstance(result, Subscribe)
    assert result.entries[0].only_snapshot and not result.entries[0].only_realtime
    assert result.entries[1].only_realtime
    strict = CFG.replace(accept_camel_case_flags=False)
    again = _parse(
        [{"ticket": "t"}, {"type": "trade", "codes": ["X"], "isOnlyRealtime": True}], config=strict
    )
    assert isinstance(again, Subscribe) and not again.entries[0].only_realtime


def test_private_rules() -> None:
    """myAsset codes are WRONG_FORMAT, myOrder codes optional, private types need /private."""
    bad = _parse([{"ticket": "t"}, {"type": "myAsset", "codes": ["KRW-BTC"]}], path="private")
    assert isinstance(bad, RequestError) and bad.name == "WRONG_FORMAT"
    ok = _parse([{"ticket": "t"}, {"type": "myOrder"}, {"type": "myAsset"}], path="private")
    assert isinstance(ok, Subscribe) and [e.code for e in ok.entries] == ["*", "*"]
    public = _parse([{"ticket": "t"}, {"type": "myOrder"}])
    assert isinstance(public, RequestError) and public.name == "INVALID_AUTH"
    on_private = _parse([{"ticket": "t"}, {"type": "ticker", "codes": ["KRW-BTC"]}], path="private")
    assert isinstance(on_private, RequestError) and on_private.name == "INVALID_PARAM"


def test_ping_and_list_subscriptions() -> None:
    """Text PING is a ping; the method object makes a LIST_SUBSCRIPTIONS query."""
    assert isinstance(_parse("PING"), Ping)
    listed = _parse([{"ticket": "q"}, {"method": "LIST_SUBSCRIPTIONS"}])
    assert listed == ListSubscriptions(ticket="q", format=None)


def test_list_result_groups_and_drops_unknown_codes() -> None:
    """LIST_SUBSCRIPTIONS groups codes by type (and level) and leaves out ignored codes."""
    result = _parse(
        [{"ticket": "t"}, {"type": "ticker", "codes": ["KRW-BTC", "krw-eth", "KRW-ETH"]},
         {"type": "orderbook", "codes": ["KRW-BTC.15"], "level": 10000}]
    )  # fmt: skip
    assert isinstance(result, Subscribe)
    known = {"KRW-BTC": 1, "KRW-ETH": 1}
    assert list_result(result.entries, known=known, config=CFG) == [
        {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]},
        {"type": "orderbook", "codes": ["KRW-BTC"], "level": 10000},
    ]


def test_repeated_code_is_one_entry() -> None:
    """The same code twice with the same options is one subscription entry."""
    result = _parse([{"ticket": "t"}, {"type": "ticker", "codes": ["KRW-BTC", "KRW-BTC"]}])
    assert isinstance(result, Subscribe) and len(result.entries) == 1
