"""Decoding server frames: Upbit's frames (docs/protocol.md section 4), in all formats."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import msgspec
import orjson
import pytest

from upbit_ws import DecodeError, InvalidInputError
from upbit_ws.core.decode import decode, decode_all
from upbit_ws.core.messages import (
    MESSAGE_TYPES,
    SIMPLE_KEYS,
    AssetBalance,
    Candle,
    ErrorFrame,
    KeepAlive,
    Message,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    SubscribedType,
    SubscriptionList,
    Ticker,
    Trade,
    UnknownMessage,
)

# --- Example frames as Upbit sends them (docs/protocol.md section 4) -----------------------

TICKER_4_1 = b"""\
{"type":"ticker","code":"KRW-BTC","opening_price":109165000.0,"high_price":110117000.0,
 "low_price":108958000.0,"trade_price":109868000.0,"prev_closing_price":109165000.0,
 "acc_trade_price":59726546304.62442,"change":"RISE","change_price":703000.0,
 "signed_change_price":703000.0,"change_rate":0.006439793,"signed_change_rate":0.006439793,
 "ask_bid":"BID","trade_volume":9.101E-5,"acc_trade_volume":544.24861805,
 "trade_date":"20260826","trade_time":"072400","trade_timestamp":1787729040682,
 "acc_ask_volume":271.9810004,"acc_bid_volume":272.26761765,
 "highest_52_week_price":179869000.0,"highest_52_week_date":"2025-10-09",
 "lowest_52_week_price":88342000.0,"lowest_52_week_date":"2026-08-14",
 "market_state":"ACTIVE","is_trading_suspended":false,"delisting_date":null,
 "market_warning":"NONE","timestamp":1787729042606,
 "acc_trade_price_24h":198189163442.74924,"acc_trade_volume_24h":1807.38027625,
 "stream_type":"REALTIME"}"""

TRADE_4_2 = b"""\
{"type":"trade","code":"KRW-BTC","timestamp":1787728554853,"trade_date":"2026-08-26",
 "trade_time":"07:15:54","trade_timestamp":1787728554797,"trade_price":109847000.0,
 "trade_volume":0.00509799,"ask_bid":"ASK","prev_closing_price":109165000.0,
 "change":"RISE","change_price":682000.0,"sequential_id":17877285547970000,
 "best_ask_price":109867000,"best_ask_size":0.0099545,"best_bid_price":109847000,
 "best_bid_size":0.1583673,"stream_type":"SNAPSHOT"}"""

TRADE_4_2_SIMPLE = b"""\
{"ty":"trade","cd":"KRW-BTC","tms":1787728554853,"td":"2026-08-26","ttm":"07:15:54",
 "ttms":1787728554797,"tp":109847000.0,"tv":0.00509799,"ab":"ASK","pcp":109165000.0,
 "c":"RISE","cp":682000.0,"sid":17877285547970000,"bap":109867000,"bas":0.0099545,
 "bbp":109847000,"bbs":0.1583673,"st":"SNAPSHOT"}"""

ORDERBOOK_4_3 = b"""\
{"type":"orderbook","code":"KRW-BTC","timestamp":1787727947526,
 "total_ask_size":18.93431797,"total_bid_size":11.48721726,
 "orderbook_units":[
   {"ask_price":109950000.0,"bid_price":109880000.0,"ask_size":0.00342134,"bid_size":0.18819864},
   {"ask_price":109960000.0,"bid_price":109840000.0,"ask_size":0.00077053,"bid_size":0.08051758}],
 "level":10000,"stream_type":"SNAPSHOT"}"""

CANDLE_4_4 = b"""\
{"type":"candle.1s","code":"KRW-BTC","candle_date_time_utc":"2025-01-02T04:28:05",
 "candle_date_time_kst":"2025-01-02T13:28:05","opening_price":142009000.0,
 "high_price":142009000.0,"low_price":142009000.0,"trade_price":142009000.0,
 "candle_acc_trade_volume":0.00606119,"candle_acc_trade_price":860743.53071,
 "timestamp":1735792085824,"stream_type":"REALTIME"}"""

MYORDER_4_5 = b"""\
{"type":"myOrder","code":"KRW-BTC","uuid":"ac2dc2a3-fce9-40a2-a4f6-5987c25c438f",
 "ask_bid":"BID","order_type":"limit","state":"trade",
 "trade_uuid":"68315169-fba4-4175-ade3-aff14a616657","price":0.001453,"avg_price":0.00145372,
 "volume":30925891.29839369,"remaining_volume":29968038.09235948,
 "executed_volume":30925891.29839369,"trades_count":1,"reserved_fee":44.23943970238218,
 "remaining_fee":21.77177967409916,"paid_fee":22.467660028283017,"locked":43565.33112787242,
 "executed_funds":44935.32005656603,"time_in_force":null,"trade_fee":22.467660028283017,
 "is_maker":true,"identifier":"test-1","smp_type":"cancel_maker",
 "prevented_volume":1.174291929,"prevented_locked":0.001706246173,
 "trade_timestamp":1710751590421,"order_timestamp":1710751590000,
 "timestamp":1710751597500,"stream_type":"REALTIME"}"""

# Section 15: a market-buy ("price") order in wait, with the nulls real captures show.
MYORDER_MARKET_BUY = b"""\
{"type":"myOrder","code":"KRW-BTC","uuid":"u-1","ask_bid":"BID",
 "order_type":"price","state":"wait","trade_uuid":null,"price":5000.0,"avg_price":0,
 "volume":null,"remaining_volume":null,"executed_volume":null,"trades_count":0,
 "reserved_fee":2.5,"remaining_fee":2.5,"paid_fee":0,"locked":5002.5,"executed_funds":0,
 "time_in_force":null,"trade_fee":null,"is_maker":null,"identifier":null,"smp_type":null,
 "prevented_volume":null,"prevented_locked":0,"trade_timestamp":null,
 "order_timestamp":1710751590000,"timestamp":1710751590012,"stream_type":"REALTIME"}"""

MYASSET_4_6 = b"""\
{"type":"myAsset","asset_uuid":"e635f223-1609-4969-8fb6-4376937baad6",
 "assets":[{"currency":"KRW","balance":1386929.37231066771348207123,
            "locked":10329.670127489597585685}],
 "asset_timestamp":1710146517259,"timestamp":1710146517267,"stream_type":"REALTIME"}"""

LIST_3_3 = b"""{
  "method": "LIST_SUBSCRIPTIONS",
  "result": [
    {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]},
    {"type": "orderbook", "codes": ["KRW-BTC"], "level": 0}
  ],
  "ticket": "unique-ticket"
}"""

STATUS_6 = b'{"status":"UP"}'
ERROR_7 = '{"error":{"name":"WRONG_FORMAT","message":"Format 이 맞지 않습니다."}}'.encode()

EXPECTED: dict[str, Message] = {
    "ticker": Ticker(
        code="KRW-BTC",
        opening_price=109165000.0,
        high_price=110117000.0,
        low_price=108958000.0,
        trade_price=109868000.0,
        prev_closing_price=109165000.0,
        change="RISE",
        change_price=703000.0,
        signed_change_price=703000.0,
        change_rate=0.006439793,
        signed_change_rate=0.006439793,
        trade_volume=9.101e-5,
        acc_trade_volume=544.24861805,
        acc_trade_price=59726546304.62442,
        trade_date="20260826",
        trade_time="072400",
        trade_timestamp=1787729040682,
        ask_bid="BID",
        acc_ask_volume=271.9810004,
        acc_bid_volume=272.26761765,
        timestamp=1787729042606,
        acc_trade_volume_24h=1807.38027625,
        acc_trade_price_24h=198189163442.74924,
        highest_52_week_price=179869000.0,
        highest_52_week_date="2025-10-09",
        lowest_52_week_price=88342000.0,
        lowest_52_week_date="2026-08-14",
        market_state="ACTIVE",
        delisting_date=None,
        is_trading_suspended=False,
        market_warning="NONE",
        stream_type="REALTIME",
    ),
    "trade": Trade(
        code="KRW-BTC",
        trade_price=109847000.0,
        trade_volume=0.00509799,
        ask_bid="ASK",
        prev_closing_price=109165000.0,
        change="RISE",
        change_price=682000.0,
        trade_date="2026-08-26",
        trade_time="07:15:54",
        trade_timestamp=1787728554797,
        timestamp=1787728554853,
        sequential_id=17877285547970000,
        best_ask_price=109867000.0,
        best_ask_size=0.0099545,
        best_bid_price=109847000.0,
        best_bid_size=0.1583673,
        stream_type="SNAPSHOT",
    ),
    "orderbook": Orderbook(
        code="KRW-BTC",
        timestamp=1787727947526,
        total_ask_size=18.93431797,
        total_bid_size=11.48721726,
        orderbook_units=(
            OrderbookUnit(109950000.0, 109880000.0, 0.00342134, 0.18819864),
            OrderbookUnit(109960000.0, 109840000.0, 0.00077053, 0.08051758),
        ),
        level=10000.0,
        stream_type="SNAPSHOT",
    ),
    "candle": Candle(
        type="candle.1s",
        code="KRW-BTC",
        candle_date_time_utc="2025-01-02T04:28:05",
        candle_date_time_kst="2025-01-02T13:28:05",
        opening_price=142009000.0,
        high_price=142009000.0,
        low_price=142009000.0,
        trade_price=142009000.0,
        candle_acc_trade_volume=0.00606119,
        candle_acc_trade_price=860743.53071,
        timestamp=1735792085824,
        stream_type="REALTIME",
    ),
    "myOrder": MyOrder(
        code="KRW-BTC",
        uuid="ac2dc2a3-fce9-40a2-a4f6-5987c25c438f",
        ask_bid="BID",
        order_type="limit",
        state="trade",
        timestamp=1710751597500,
        trade_uuid="68315169-fba4-4175-ade3-aff14a616657",
        price=Decimal("0.001453"),
        avg_price=Decimal("0.00145372"),
        volume=Decimal("30925891.29839369"),
        remaining_volume=Decimal("29968038.09235948"),
        executed_volume=Decimal("30925891.29839369"),
        trades_count=1,
        reserved_fee=Decimal("44.23943970238218"),
        remaining_fee=Decimal("21.77177967409916"),
        paid_fee=Decimal("22.467660028283017"),
        locked=Decimal("43565.33112787242"),
        executed_funds=Decimal("44935.32005656603"),
        time_in_force=None,
        trade_fee=Decimal("22.467660028283017"),
        is_maker=True,
        identifier="test-1",
        smp_type="cancel_maker",
        prevented_volume=Decimal("1.174291929"),
        prevented_locked=Decimal("0.001706246173"),
        trade_timestamp=1710751590421,
        order_timestamp=1710751590000,
        stream_type="REALTIME",
    ),
    "myAsset": MyAsset(
        asset_uuid="e635f223-1609-4969-8fb6-4376937baad6",
        assets=(
            AssetBalance(
                currency="KRW",
                balance=Decimal("1386929.37231066771348207123"),
                locked=Decimal("10329.670127489597585685"),
            ),
        ),
        asset_timestamp=1710146517259,
        timestamp=1710146517267,
        stream_type="REALTIME",
    ),
    "LIST_SUBSCRIPTIONS": SubscriptionList(
        result=(
            SubscribedType(type="ticker", codes=("KRW-BTC", "KRW-ETH")),
            SubscribedType(type="orderbook", codes=("KRW-BTC",), level=0.0),
        ),
        ticket="unique-ticket",
    ),
    "status": KeepAlive(status="UP"),
    "error": ErrorFrame(name="WRONG_FORMAT", message="Format 이 맞지 않습니다."),
}

FRAMES: dict[str, bytes] = {
    "ticker": TICKER_4_1,
    "trade": TRADE_4_2,
    "orderbook": ORDERBOOK_4_3,
    "candle": CANDLE_4_4,
    "myOrder": MYORDER_4_5,
    "myAsset": MYASSET_4_6,
    "LIST_SUBSCRIPTIONS": LIST_3_3,
    "status": STATUS_6,
    "error": ERROR_7,
}

# The SIMPLE abbreviations, transcribed from the tables of docs/protocol.md sections 4.1-4.6
# and 3.3 ("default:simple" pairs), to pin messages.SIMPLE_KEYS against the document.
_DOC_SIMPLE = {
    "ticker": "type:ty code:cd opening_price:op high_price:hp low_price:lp trade_price:tp "
    "prev_closing_price:pcp change:c change_price:cp signed_change_price:scp change_rate:cr "
    "signed_change_rate:scr trade_volume:tv acc_trade_volume:atv acc_trade_volume_24h:atv24h "
    "acc_trade_price:atp acc_trade_price_24h:atp24h trade_date:tdt trade_time:ttm "
    "trade_timestamp:ttms ask_bid:ab acc_ask_volume:aav acc_bid_volume:abv "
    "highest_52_week_price:h52wp highest_52_week_date:h52wdt lowest_52_week_price:l52wp "
    "lowest_52_week_date:l52wdt market_state:ms delisting_date:dd timestamp:tms stream_type:st "
    "trade_status:ts market_state_for_ios:msfi is_trading_suspended:its market_warning:mw",
    "trade": "type:ty code:cd trade_price:tp trade_volume:tv ask_bid:ab prev_closing_price:pcp "
    "change:c change_price:cp trade_date:td trade_time:ttm trade_timestamp:ttms timestamp:tms "
    "sequential_id:sid best_ask_price:bap best_ask_size:bas best_bid_price:bbp "
    "best_bid_size:bbs stream_type:st",
    "orderbook": "type:ty code:cd total_ask_size:tas total_bid_size:tbs orderbook_units:obu "
    "timestamp:tms level:lv stream_type:st",
    "orderbook_units": "ask_price:ap bid_price:bp ask_size:as bid_size:bs",
    "candle": "type:ty code:cd candle_date_time_utc:cdttmu candle_date_time_kst:cdttmk "
    "opening_price:op high_price:hp low_price:lp trade_price:tp candle_acc_trade_volume:catv "
    "candle_acc_trade_price:catp timestamp:tms stream_type:st",
    "myOrder": "type:ty code:cd uuid:uid ask_bid:ab order_type:ot state:s trade_uuid:tuid "
    "price:p avg_price:ap volume:v remaining_volume:rv executed_volume:ev trades_count:tc "
    "reserved_fee:rsf remaining_fee:rmf paid_fee:pf locked:l executed_funds:ef "
    "time_in_force:tif trade_fee:tf is_maker:im identifier:id smp_type:smpt "
    "prevented_volume:pv prevented_locked:pl trade_timestamp:ttms order_timestamp:otms "
    "timestamp:tms stream_type:st",
    "myAsset": "type:ty asset_uuid:astuid assets:ast asset_timestamp:asttms timestamp:tms "
    "stream_type:st",
    "assets": "currency:cu balance:b locked:l",
    "LIST_SUBSCRIPTIONS": "method:mthd result:rslt ticket:tckt",
    "result": "type:ty codes:cds level:lv",
}

_NESTED = {"orderbook": "orderbook_units", "myAsset": "assets", "LIST_SUBSCRIPTIONS": "result"}
_KEY = re.compile(rb'"([A-Za-z0-9_]+)"(\s*):')


def to_simple(frame: bytes, kind: str) -> bytes:
    """Rewrite a DEFAULT frame's keys to SIMPLE, keeping every number spelling as it was."""
    if kind not in SIMPLE_KEYS:
        return frame  # status and error frames have no SIMPLE form
    keys = dict(SIMPLE_KEYS[kind])
    if kind in _NESTED:
        keys |= SIMPLE_KEYS[_NESTED[kind]]
    return _KEY.sub(
        lambda m: b'"%s"%s:' % (keys.get(m[1].decode(), m[1].decode()).encode(), m[2]), frame
    )


@pytest.mark.parametrize("table", sorted(_DOC_SIMPLE))
def test_simple_key_maps_match_the_protocol_document(table: str) -> None:
    """The SIMPLE abbreviations are exactly those of docs/protocol.md."""
    pairs = dict(pair.split(":") for pair in _DOC_SIMPLE[table].split())
    assert dict(SIMPLE_KEYS[table]) == pairs


def test_documented_simple_trade_sample_is_what_to_simple_builds() -> None:
    """The SIMPLE trade sample of section 4.2 equals the DEFAULT sample with keys mapped."""
    assert orjson.loads(to_simple(TRADE_4_2, "trade")) == orjson.loads(TRADE_4_2_SIMPLE)


@pytest.mark.parametrize("kind", sorted(FRAMES))
def test_default_example_decodes(kind: str) -> None:
    """Each DEFAULT example frame of the protocol document decodes to its exact message."""
    message = decode(FRAMES[kind])
    assert message == EXPECTED[kind]
    assert type(message) is type(EXPECTED[kind])


@pytest.mark.parametrize("kind", sorted(FRAMES))
def test_simple_example_decodes_to_the_same_message(kind: str) -> None:
    """The SIMPLE form of each example decodes to the same class and values as DEFAULT."""
    message = decode(to_simple(FRAMES[kind], kind))
    assert message == EXPECTED[kind]
    assert type(message) is type(EXPECTED[kind])


@pytest.mark.parametrize("kind", sorted(FRAMES))
@pytest.mark.parametrize("simple", [False, True], ids=["JSON_LIST", "SIMPLE_LIST"])
def test_list_format_examples_decode(kind: str, simple: bool) -> None:
    """JSON_LIST and SIMPLE_LIST wrap each message in an array; both decoders unwrap it."""
    body = to_simple(FRAMES[kind], kind) if simple else FRAMES[kind]
    frame = b"[" + body + b"]"
    assert decode_all(frame) == [EXPECTED[kind]]
    assert decode(frame) == EXPECTED[kind]


@pytest.mark.parametrize("simple", [False, True], ids=["JSON_LIST", "SIMPLE_LIST"])
def test_list_frame_with_several_messages(simple: bool) -> None:
    """decode_all yields every element of a mixed array; decode refuses to pick one."""
    kinds = ["trade", "candle", "ticker", "status", "orderbook", "myAsset"]
    parts = [to_simple(FRAMES[k], k) if simple else FRAMES[k] for k in kinds]
    frame = b"[" + b",".join(parts) + b"]"
    assert decode_all(frame) == [EXPECTED[k] for k in kinds]
    with pytest.raises(DecodeError, match="decode_all"):
        decode(frame)


def test_homogeneous_list_frame_takes_the_fast_path_correctly() -> None:
    """An array of hot-path messages decodes in order with the right classes."""
    frame = b"[" + b",".join([TRADE_4_2, ORDERBOOK_4_3, TRADE_4_2]) + b"]"
    got = decode_all(frame)
    assert [type(m) for m in got] == [Trade, Orderbook, Trade]
    assert got[1] == EXPECTED["orderbook"]


def test_empty_list_frame() -> None:
    """An empty array carries no message: decode_all gives [] and decode raises."""
    assert decode_all(b"[]") == []
    assert decode_all(b" [ ] ") == []
    with pytest.raises(DecodeError):
        decode(b"[]")


@pytest.mark.parametrize("kind", sorted(FRAMES))
def test_text_and_buffer_inputs_decode_alike(kind: str) -> None:
    """str, bytearray and memoryview frames decode like the bytes Upbit sends."""
    frame = FRAMES[kind]
    for variant in (frame.decode(), bytearray(frame), memoryview(frame)):
        assert decode(variant) == EXPECTED[kind]
        assert decode_all(variant) == [EXPECTED[kind]]


def test_key_order_and_whitespace_do_not_matter() -> None:
    """A frame with its type key last and extra whitespace decodes the same."""
    fields = orjson.loads(TRADE_4_2)
    reordered = {k: fields[k] for k in reversed(list(fields))}
    frame = b"\n  " + orjson.dumps(reordered, option=orjson.OPT_INDENT_2) + b"\n"
    assert decode(frame) == EXPECTED["trade"]
    simple = orjson.loads(to_simple(TRADE_4_2, "trade"))
    assert decode(orjson.dumps(dict(reversed(list(simple.items()))))) == EXPECTED["trade"]


def test_error_key_order_varies() -> None:
    """An error frame with message before name (section 7.1) is the same ErrorFrame."""
    frame = '{"error":{"message":"Format 이 맞지 않습니다.","name":"WRONG_FORMAT"}}'.encode()
    assert decode(frame) == EXPECTED["error"]


def test_error_frame_with_numeric_name() -> None:
    """A numeric error name (seen in REST bodies) is kept as its string."""
    assert decode(b'{"error":{"name":404,"message":"Code not found"}}') == ErrorFrame(
        name="404", message="Code not found"
    )


@pytest.mark.parametrize("interval", ["1s", "1m", "3m", "5m", "10m", "15m", "30m", "60m", "240m"])
def test_every_candle_interval_is_one_candle_class(interval: str) -> None:
    """All nine candle types decode to Candle, whose type names the interval."""
    frame = CANDLE_4_4.replace(b'"candle.1s"', f'"candle.{interval}"'.encode())
    for variant in (frame, to_simple(frame, "candle")):
        message = decode(variant)
        assert type(message) is Candle
        assert message.type == f"candle.{interval}"
        assert MESSAGE_TYPES[message.type] is Candle


def test_unsupported_candle_interval_is_unknown_not_candle() -> None:
    """A candle interval Upbit does not document is an UnknownMessage, not a crash."""
    frame = CANDLE_4_4.replace(b'"candle.1s"', b'"candle.2m"')
    message = decode(frame)
    assert isinstance(message, UnknownMessage)
    assert message.type == "candle.2m"
    assert message.code == "KRW-BTC"


@pytest.mark.parametrize(
    ("frame", "kind", "code"),
    [
        (b'{"type":"indicator","code":"KRW-BTC","timeframe":"5m"}', "indicator", "KRW-BTC"),
        (b'{"ty":"announcement","cd":"KRW-XRP"}', "announcement", "KRW-XRP"),
        (b'{"type":"myTrade","code":5}', "myTrade", None),
        (b'{"method":"SOMETHING_NEW","result":[]}', "SOMETHING_NEW", None),
    ],
)
def test_unknown_types_become_unknown_messages(frame: bytes, kind: str, code: str | None) -> None:
    """Unknown type values are kept raw in an UnknownMessage, never an error."""
    message = decode(frame)
    assert isinstance(message, UnknownMessage)
    assert message.type == kind
    assert message.code == code
    assert message.raw == orjson.loads(frame)


def test_every_message_exposes_type_and_code() -> None:
    """Routers can read .type and .code from any decoded message."""
    for kind, frame in FRAMES.items():
        message = decode(frame)
        assert isinstance(message.type, str)
        assert message.code is None or isinstance(message.code, str)
        if kind in {"ticker", "trade", "orderbook", "candle", "myOrder"}:
            assert message.code == "KRW-BTC"
    assert decode(MYASSET_4_6).code is None
    assert decode(STATUS_6).type == "status"
    assert decode(ERROR_7).type == "error"
    assert decode(LIST_3_3).type == "LIST_SUBSCRIPTIONS"


def test_message_types_table_covers_every_data_type() -> None:
    """MESSAGE_TYPES maps each subscribable data type to the class its frames decode to."""
    from upbit_ws.core.constants import DATA_TYPES

    assert set(MESSAGE_TYPES) == set(DATA_TYPES)
    assert MESSAGE_TYPES["ticker"] is Ticker
    assert MESSAGE_TYPES["myAsset"] is MyAsset


# --- Numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "value"),
    [
        (b"1.16539E8", 116539000.0),
        (b"0E-8", 0.0),
        (b"106691000.00000000", 106691000.0),
        (b"91361000.0", 91361000.0),
        (b"91361000", 91361000.0),
        (b"7.9276E-4", 0.00079276),
        (b"8.428e-05", 8.428e-05),
        (b"860743.5307100000000000", 860743.53071),
    ],
)
def test_every_number_spelling_reads_as_the_same_float(spelling: bytes, value: float) -> None:
    """Exponents, trailing zeros and bare integers all decode to the float they spell."""
    frame = TRADE_4_2.replace(b'"trade_price":109847000.0', b'"trade_price":' + spelling)
    message = decode(frame)
    assert isinstance(message, Trade)
    assert message.trade_price == value
    assert isinstance(message.trade_price, float)
    simple = decode(to_simple(frame, "trade"))
    assert isinstance(simple, Trade)
    assert simple.trade_price == value


def test_sequential_id_beyond_two_to_the_53_stays_exact() -> None:
    """sequential_id above 2**53 is an exact int, never rounded through a float."""
    odd = 17883351803770003
    assert float(odd) != odd  # a float cannot hold it
    for sid in (17883351803770004, odd):  # section 15's value, and its odd neighbour
        frame = TRADE_4_2.replace(b"17877285547970000", str(sid).encode())
        for variant in (frame, to_simple(frame, "trade"), b"[" + frame + b"]"):
            message = decode(variant)
            assert isinstance(message, Trade)
            assert message.sequential_id == sid
            assert type(message.sequential_id) is int


def test_asset_balances_keep_every_digit() -> None:
    """myAsset balances keep all 27 significant digits as Decimal, in DEFAULT and SIMPLE."""
    for variant in (MYASSET_4_6, to_simple(MYASSET_4_6, "myAsset")):
        message = decode(variant)
        assert isinstance(message, MyAsset)
        assert str(message.assets[0].balance) == "1386929.37231066771348207123"
        assert str(message.assets[0].locked) == "10329.670127489597585685"


def test_asset_balance_zero_spellings() -> None:
    """Zero balances in exponent form decode to Decimal zero."""
    frame = MYASSET_4_6.replace(b"10329.670127489597585685", b"0E-8")
    message = decode(frame)
    assert isinstance(message, MyAsset)
    assert message.assets[0].locked == 0


# --- Nulls and optional fields --------------------------------------------------------------


def test_market_buy_order_with_nulls() -> None:
    """A market-buy myOrder with null volume, fill and SMP fields decodes with None there."""
    for variant in (MYORDER_MARKET_BUY, to_simple(MYORDER_MARKET_BUY, "myOrder")):
        message = decode(variant)
        assert isinstance(message, MyOrder)
        assert message.volume is None
        assert message.executed_volume is None
        assert message.trade_uuid is None
        assert message.is_maker is None
        assert message.avg_price == 0
        assert message.prevented_locked == 0
        assert isinstance(message.prevented_locked, Decimal)
        assert message.order_type == "price"


def test_my_order_numbers_sent_as_strings_are_accepted() -> None:
    """myOrder numbers written as strings (the SMP guide's sample) still decode."""
    frame = MYORDER_4_5.replace(b'"prevented_volume":1.174291929', b'"prevented_volume":"0"')
    message = decode(frame)
    assert isinstance(message, MyOrder)
    assert message.prevented_volume == Decimal(0)


def test_my_order_amounts_are_exact_decimals() -> None:
    """myOrder amounts keep every digit Upbit sends (money on the account, docs/rest.md)."""
    exact = b'"paid_fee":0.1000000000000000055'
    frame = MYORDER_4_5.replace(b'"paid_fee":22.467660028283017', exact)
    message = decode(frame)
    assert isinstance(message, MyOrder)
    assert message.paid_fee == Decimal("0.1000000000000000055")
    assert message.reconciled is False


def test_ticker_delisting_date_is_opaque() -> None:
    """delisting_date may be null, a string or an object: it is kept as decoded JSON."""
    for raw, want in [
        (b"null", None),
        (b'"2026-09-01"', "2026-09-01"),
        (b'{"year":2026,"month":9,"day":1}', {"year": 2026, "month": 9, "day": 1}),
    ]:
        message = decode(TICKER_4_1.replace(b'"delisting_date":null', b'"delisting_date":' + raw))
        assert isinstance(message, Ticker)
        assert message.delisting_date == want


def test_orderbook_without_level_or_stream_type() -> None:
    """Indonesia-host books have no level key; some fixtures lack stream_type too."""
    frame = ORDERBOOK_4_3.replace(b'"level":10000,"stream_type":"SNAPSHOT"', b'"extra":1')
    for variant in (frame, to_simple(frame, "orderbook")):
        message = decode(variant)
        assert isinstance(message, Orderbook)
        assert message.level is None
        assert message.stream_type is None


def test_ticker_without_deprecated_fields() -> None:
    """A ticker without the deprecated and later-added fields still decodes."""
    fields = orjson.loads(TICKER_4_1)
    for key in ("trade_status", "market_warning", "is_trading_suspended", "market_state"):
        fields.pop(key, None)
    for key in ("acc_trade_price_24h", "highest_52_week_price", "stream_type"):
        del fields[key]
    message = decode(orjson.dumps(fields))
    assert isinstance(message, Ticker)
    assert message.acc_trade_price_24h is None
    assert message.stream_type is None


def test_unknown_extra_fields_are_ignored() -> None:
    """New fields Upbit adds do not break decoding."""
    frame = TRADE_4_2.replace(b'"type":"trade",', b'"type":"trade","new_field":{"a":[1,2]},')
    assert decode(frame) == EXPECTED["trade"]


# --- Orderbook helpers ----------------------------------------------------------------------


def _book(depth: int) -> Orderbook:
    units = tuple(
        OrderbookUnit(100.0 + i, 99.0 - i, 0.5 + i / 100, 1.0 + i / 100) for i in range(depth)
    )
    return Orderbook(
        code="KRW-BTC",
        timestamp=1,
        total_ask_size=sum(u.ask_size for u in units),
        total_bid_size=sum(u.bid_size for u in units),
        orderbook_units=units,
        level=0.0,
        stream_type="REALTIME",
    )


def test_orderbook_best_prices_and_units() -> None:
    """best_ask/best_bid read the first row; units is orderbook_units."""
    book = decode(ORDERBOOK_4_3)
    assert isinstance(book, Orderbook)
    assert book.best_ask == 109950000.0
    assert book.best_bid == 109880000.0
    assert book.units is book.orderbook_units


def test_zero_padded_side_has_no_best_price() -> None:
    """A side padded with zero prices (thin book) has no best price."""
    book = Orderbook(
        code="KRW-X",
        timestamp=1,
        total_ask_size=0.0,
        total_bid_size=1.0,
        orderbook_units=(OrderbookUnit(0.0, 5.0, 0.0, 1.0),),
    )
    assert book.best_ask is None
    assert book.best_bid == 5.0
    empty = msgspec.structs.replace(book, orderbook_units=())
    assert empty.best_ask is None and empty.best_bid is None


def test_truncated_keeps_best_rows_and_recomputes_totals() -> None:
    """A 30-row book cut to 15 keeps the best 15 rows and their totals."""
    book = _book(30)
    cut = book.truncated(15)
    assert cut.orderbook_units == book.orderbook_units[:15]
    assert cut.total_ask_size == pytest.approx(sum(u.ask_size for u in cut.orderbook_units))
    assert cut.total_bid_size == pytest.approx(sum(u.bid_size for u in cut.orderbook_units))
    assert (cut.code, cut.timestamp, cut.level, cut.stream_type) == (
        book.code,
        book.timestamp,
        book.level,
        book.stream_type,
    )
    assert book.truncated(30) is book
    assert book.truncated(40) is book
    assert len(book.orderbook_units) == 30


@pytest.mark.parametrize("depth", [0, -1, True, 1.5])
def test_truncated_refuses_bad_depth(depth: Any) -> None:
    """A depth below 1 or not an int is refused as bad input."""
    with pytest.raises(InvalidInputError):
        _book(5).truncated(depth)


def test_messages_are_frozen() -> None:
    """Decoded messages cannot be changed in place (they are shared by subscribers)."""
    message = decode(TRADE_4_2)
    with pytest.raises(AttributeError):
        message.code = "KRW-ETH"  # type: ignore[misc]


def test_messages_encode_back_to_default_json() -> None:
    """msgspec.json.encode of a message gives the DEFAULT frame's values back."""
    for kind in ("ticker", "trade", "orderbook", "candle", "myOrder"):
        message = EXPECTED[kind]
        again = decode(msgspec.json.encode(message))
        assert again == message


# --- Malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"PING",
        b"hello",
        b"\xff\xfe",
        b"5",
        b"1.5",
        b'"ticker"',
        b"null",
        b"true",
        b"{}",
        b'{"foo":1}',
        b"[1,2]",
        b'[{"status":"UP"},3]',
        b"[[]]",
        b'{"type":"ticker"}',
        b'{"type":5}',
        b'{"ty":"trade","cd":"KRW-BTC"}',
        b'{"status":"UP"',
        b'{"error":"WRONG_FORMAT"}',
        b'{"error":{"message":"no name"}}',
        b'{"method":"LIST_SUBSCRIPTIONS","result":5}',
        b'{"mthd":"LIST_SUBSCRIPTIONS","rslt":[{"cds":[]}]}',
        TRADE_4_2.replace(b'"code":"KRW-BTC",', b""),
        TRADE_4_2.replace(b'"trade_price":109847000.0', b'"trade_price":"x"'),
        TRADE_4_2.replace(b'"sequential_id":17877285547970000', b'"sequential_id":1.5'),
        TRADE_4_2.replace(b'"ask_bid":"ASK"', b'"ask_bid":"SELL"'),
        CANDLE_4_4.replace(b'"code":"KRW-BTC",', b""),
        MYASSET_4_6.replace(b'"balance":1386929.37231066771348207123', b'"balance":[]'),
        ORDERBOOK_4_3.replace(b'"orderbook_units":[', b'"orderbook_units":[5,'),
        TICKER_4_1[:-20],
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    ],
)
def test_malformed_frames_raise_decode_error_only(frame: bytes) -> None:
    """Non-JSON and wrongly shaped frames raise DecodeError carrying the frame's head."""
    for fn in (decode, decode_all):
        with pytest.raises(DecodeError) as info:
            fn(frame)
        assert info.value.frame_head == frame[:200]


def test_decode_error_names_the_problem() -> None:
    """A frame missing a required field says which field and which type."""
    with pytest.raises(DecodeError, match=r"trade frame .*code"):
        decode(TRADE_4_2.replace(b'"code":"KRW-BTC",', b""))


@pytest.mark.parametrize("frame", [None, 5, 1.5, object(), ["x"], {"type": "ticker"}])
def test_non_frame_arguments_raise_decode_error(frame: Any) -> None:
    """Even a non-bytes argument raises DecodeError, not TypeError."""
    for fn in (decode, decode_all):
        with pytest.raises(DecodeError):
            fn(frame)


def test_lone_surrogate_text_raises_decode_error() -> None:
    """A str that cannot be UTF-8 encoded is a DecodeError."""
    with pytest.raises(DecodeError):
        decode('{"status":"\ud800"}')
