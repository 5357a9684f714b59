"""Frame building: SIMPLE keys, Upbit's number spellings, whole zero-padded books."""

from __future__ import annotations

import orjson
import pytest

from upbit_ws.simulator import SimulatorConfig
from upbit_ws.simulator.frames import FrameBuilder, encode_object
from upbit_ws.simulator.listing import PRICE_SCALE
from upbit_ws.simulator.market import BookSnapshot, MarketModel, grouped_levels
from upbit_ws.simulator.spelling import fixed8, java, zero_e8

BUILDER = FrameBuilder(number_spelling="upbit")


@pytest.mark.parametrize(
    ("value", "text"),
    [(116539000.0, b"1.16539E8"), (9.101e-5, b"9.101E-5"), (3050.0, b"3050.0"), (1e7, b"1.0E7")],
)
def test_java_spelling(value: float, text: bytes) -> None:
    """Java Double.toString spellings, as Upbit prints big prices and tiny sizes."""
    assert orjson.dumps(java(value)) == text
    assert orjson.loads(orjson.dumps(java(value))) == pytest.approx(value)


def test_fixed_and_zero_spellings() -> None:
    """8-decimal fixed (candles) and 0E-8 (a zero change_price) are valid JSON numbers."""
    assert orjson.dumps(fixed8(91154000.0)) == b"91154000.00000000"
    assert orjson.dumps(zero_e8(0.0)) == b"0E-8"
    assert orjson.loads(b"0E-8") == 0


def _model() -> MarketModel:
    cfg = SimulatorConfig(krw_markets=10, btc_markets=2, usdt_markets=2)
    return MarketModel(cfg, start=cfg.start_time)


def test_simple_keys_follow_the_tables() -> None:
    """SIMPLE frames use the abbreviated keys of section 4 (ty, cd, tp, sid, ...)."""
    model = _model()
    trade = model.states["KRW-BTC"].last_trade
    assert trade is not None
    obj = BUILDER.trade(trade, "REALTIME", trade.timestamp + 5)
    simple = orjson.loads(encode_object(obj, data_type="trade", simple=True))
    assert set(simple) == {
        "ty", "cd", "tms", "td", "ttm", "ttms", "tp", "tv", "ab", "pcp", "c", "cp", "sid",
        "bap", "bas", "bbp", "bbs", "st",
    }  # fmt: skip
    assert simple["sid"] == trade.sequential_id
    assert simple["tp"] == trade.price / PRICE_SCALE


def test_orderbook_padding_and_level_grouping() -> None:
    """Books are padded with zero units to the depth; a level buckets prices and is echoed."""
    book = BookSnapshot(
        code="KRW-BTC",
        timestamp=1,
        tick=1000 * PRICE_SCALE,
        asks=((101_000 * PRICE_SCALE, PRICE_SCALE), (102_000 * PRICE_SCALE, PRICE_SCALE)),
        bids=((100_000 * PRICE_SCALE, PRICE_SCALE),),
    )
    obj = orjson.loads(
        encode_object(
            BUILDER.orderbook(book, "REALTIME", depth=5, level=0),
            data_type="orderbook",
            simple=False,
        )
    )
    units = obj["orderbook_units"]
    assert len(units) == 5
    assert units[1]["bid_price"] == 0 and units[1]["bid_size"] == 0
    assert units[4] == {"ask_price": 0, "bid_price": 0, "ask_size": 0, "bid_size": 0}
    assert obj["total_ask_size"] == 2 and obj["level"] == 0
    grouped = BUILDER.orderbook(book, "REALTIME", depth=1, level=10_000)
    parsed = orjson.loads(encode_object(grouped, data_type="orderbook", simple=False))
    assert parsed["orderbook_units"][0]["ask_price"] == 110_000
    assert parsed["orderbook_units"][0]["ask_size"] == 2
    assert parsed["level"] == 10_000


@pytest.mark.parametrize("level", [10_000, 100_000, 1_000_000])
def test_grouped_deep_book_has_real_buckets_at_every_depth(level: int) -> None:
    """A busy market grouped by a wide level still fills 30 buckets a side, stable per bucket."""
    state = _model().states["KRW-BTC"]
    book = state.book()
    assert len(book.asks) == 30 and book.tail_notional > 0
    step = level * PRICE_SCALE
    asks, bids = grouped_levels(book, step=step, depth=30)
    assert len(asks) == 30 and len(bids) == 30
    assert all(size > 0 for _, size in asks + bids)
    assert all(price % step == 0 for price, _ in asks + bids)
    assert [p for p, _ in asks] == sorted({p for p, _ in asks})
    assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
    # Past the modelled levels the buckets are one level apart and keep their sizes.
    assert asks[-1][0] - asks[-2][0] == step and bids[-2][0] - bids[-1][0] == step
    assert grouped_levels(book, step=step, depth=30) == (asks, bids)
    # The native units are inside the first buckets: nothing is lost by grouping.
    assert sum(s for _, s in asks) >= sum(s for _, s in book.asks)


def test_grouped_book_stops_above_zero_and_thin_books_stay_padded() -> None:
    """Bid buckets never reach price 0; a thin book is grouped as it is and zero-padded."""
    state = _model().states["KRW-BTC"]
    price = state.last_price
    _, bids = grouped_levels(state.book(), step=price // 4 // PRICE_SCALE * PRICE_SCALE, depth=30)
    assert 0 < len(bids) <= 4 and all(p > 0 for p, _ in bids)
    thin = BookSnapshot(
        code="KRW-X", timestamp=1, tick=PRICE_SCALE, asks=((10 * PRICE_SCALE, 5),), bids=()
    )
    obj = BUILDER.orderbook(thin, "REALTIME", depth=5, level=10)
    units = orjson.loads(encode_object(obj, data_type="orderbook", simple=False))["orderbook_units"]
    assert units[0]["ask_price"] == 10 and units[1]["ask_price"] == 0
    assert all(u["bid_price"] == 0 for u in units)


def test_plain_spelling_mode() -> None:
    """number_spelling='plain' writes orjson's shortest floats only."""
    plain = FrameBuilder(number_spelling="plain")
    model = _model()
    candle = model.latest_candle("KRW-BTC", "candle.1m")
    assert candle is not None
    text = encode_object(
        plain.candle("candle.1m", "KRW-BTC", candle, "SNAPSHOT", 1),
        data_type="candle.1m",
        simple=False,
    )
    assert b"00000000," not in text
