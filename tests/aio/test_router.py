"""The router: decode once, O(1) routing, depth cuts, control frames, duplicates, statistics.

Frames are fed to the real router of a real subscription service (no sockets needed: the
router takes bytes, exactly as the connection hands them over on the reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
import orjson
import pytest

from tests.aio.subscription_helpers import (
    attached_service,
    candle,
    my_asset,
    my_order,
    next_item,
    orderbook,
    stack,
    ticker,
    trade,
)
from upbit_ws.aio.router import LATENCY_SAMPLE_EVERY, LatencyHistogram, Router
from upbit_ws.aio.stream import Subscription
from upbit_ws.aio.subscriptions import SubscriptionService
from upbit_ws.core.book import SubscriptionBook
from upbit_ws.core.messages import Orderbook, Ticker
from upbit_ws.simulator.frames import SIMPLE_KEYS


async def drain(sub: Subscription[Any]) -> list[Any]:
    """Return what waits in a subscription's buffer (through its public ``batches()``)."""
    if not sub.pending:
        return []
    async with asyncio.timeout(1), contextlib.aclosing(sub.batches(max_items=10_000)) as batches:
        return await anext(batches)


@pytest.fixture
def service() -> SubscriptionService:
    return attached_service()  # both connections, as a manager with credentials has


def public(service: SubscriptionService) -> Router:
    return service.listener("public").router


def private(service: SubscriptionService) -> Router:
    return service.listener("private").router


async def test_frames_go_only_to_the_subscriptions_of_their_type_and_code(
    service: SubscriptionService,
) -> None:
    """A frame reaches the subscribers of its (type, code) and nobody else."""
    btc = service.component("a").subscribe("ticker", ["KRW-BTC"])
    eth = service.component("b").subscribe("ticker", ["KRW-ETH"])
    trades = service.component("c").subscribe("trade", ["KRW-BTC"])
    router = public(service)
    router.route(ticker("KRW-BTC"), 0.0)
    router.route(ticker("KRW-ETH", 200.0), 0.0)
    router.route(trade("KRW-BTC", 7), 0.0)
    assert [m.code for m in await drain(btc)] == ["KRW-BTC"]
    assert [(m.code, m.trade_price) for m in await drain(eth)] == [("KRW-ETH", 200.0)]
    got = await drain(trades)
    assert [(m.type, m.sequential_id) for m in got] == [("trade", 7)]


async def test_subscribers_of_one_key_share_one_decoded_object(
    service: SubscriptionService,
) -> None:
    """Each frame is decoded once: two subscribers of one stream get the same object."""
    a = service.component("a").subscribe("ticker", ["KRW-BTC"])
    b = service.component("b").subscribe("ticker", ["KRW-BTC", "KRW-ETH"])
    public(service).route(ticker("KRW-BTC"), 0.0)
    (ma,) = await drain(a)
    (mb,) = await drain(b)
    assert isinstance(ma, Ticker)
    assert ma is mb


async def test_orderbooks_are_cut_to_each_subscribers_depth_and_shared_per_depth(
    service: SubscriptionService,
) -> None:
    """The merged 30-unit book is cut once per depth; equal depths share the cut object."""
    five_a = service.component("a").subscribe("orderbook", ["KRW-BTC"], depth=5)
    five_b = service.component("b").subscribe("orderbook", ["KRW-BTC"], depth=5)
    fifteen = service.component("c").subscribe("orderbook", ["KRW-BTC"], depth=15)
    full = service.component("d").subscribe("orderbook", ["KRW-BTC"])
    public(service).route(orderbook("KRW-BTC", 30), 0.0)
    (a,), (b,), (c,), (d,) = [await drain(sub) for sub in (five_a, five_b, fifteen, full)]
    assert [len(x.units) for x in (a, b, c, d)] == [5, 5, 15, 30]
    assert a is b
    assert a.total_ask_size == 5.0  # totals cover the rows kept (section 4.3)
    assert d.best_bid == c.best_bid == a.best_bid == 99.0


async def test_orderbook_levels_route_separately(service: SubscriptionService) -> None:
    """A grouped book (level 10000) goes to its level's subscribers, the native one to theirs."""
    native = service.component("a").subscribe("orderbook", ["KRW-BTC"])
    grouped = service.component("b").subscribe("orderbook", ["KRW-BTC"], level=10000)
    router = public(service)
    router.route(orderbook("KRW-BTC", level=10000.0), 0.0)
    assert [m.level for m in await drain(grouped)] == [10000.0]
    assert await drain(native) == []
    router.route(orderbook("KRW-BTC", level=0.0, bid=50.0), 0.0)
    assert [m.best_bid for m in await drain(native)] == [50.0]
    router.route(orderbook("KRW-BTC", level=None, bid=60.0), 0.0)  # Indonesia: no level key
    assert [m.best_bid for m in await drain(native)] == [60.0]
    assert await drain(grouped) == []


async def test_my_order_frames_reach_all_market_and_per_market_subscribers(
    service: SubscriptionService,
) -> None:
    """myOrder for all markets gets every order event; per-market subscribers only theirs."""
    every = service.component("a").subscribe("myOrder")
    btc_only = service.component("b").subscribe("myOrder", ["KRW-BTC"])
    assets = service.component("c").subscribe("myAsset")
    router = private(service)
    router.route(my_order("KRW-BTC", "1"), 0.0)
    router.route(my_order("KRW-ETH", "2"), 0.0)
    router.route(my_asset(), 0.0)
    assert [m.uuid for m in await drain(every)] == ["1", "2"]
    assert [m.uuid for m in await drain(btc_only)] == ["1"]
    assert [m.type for m in await drain(assets)] == ["myAsset"]


async def test_frames_nobody_wants_are_dropped_and_counted(service: SubscriptionService) -> None:
    """Frames in flight after a resubscribe (section 3.2) are dropped and counted, not raised."""
    sub = service.component("a").subscribe("ticker", ["KRW-ETH"])
    router = public(service)
    router.route(ticker("KRW-BTC"), 0.0)
    router.route(candle("candle.1m", "KRW-ETH"), 0.0)
    assert await drain(sub) == []
    stats = router.statistics()
    assert stats.unwanted == 2
    assert stats.messages_by_type == {}
    assert stats.frames == 2


async def test_an_undecodable_frame_is_counted_logged_and_the_reader_goes_on(
    service: SubscriptionService, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad frame is counted and logged with its first bytes; the next frame still routes."""
    sub = service.component("a").subscribe("ticker", ["KRW-BTC"])
    router = public(service)
    with caplog.at_level(logging.WARNING, logger="upbit_ws.router"):
        router.route(b"\x00\xffnot json at all", 0.0)
    router.route(ticker("KRW-BTC"), 0.0)
    assert len(await drain(sub)) == 1
    assert router.statistics().decode_errors == 1
    assert "not json at all" in caplog.text


async def test_control_frames_are_counted_by_kind(service: SubscriptionService) -> None:
    """Keep-alives and LIST replies count by kind; error frames are not the router's."""
    router = public(service)
    router.route(b'{"status":"UP"}', 0.0)
    router.route(b'{"method":"LIST_SUBSCRIPTIONS","result":[],"ticket":"t"}', 0.0)
    router.route(b'{"type":"indicator","code":"KRW-BTC"}', 0.0)
    router.route(b'{"error":{"name":"WRONG_FORMAT","message":"x"}}', 0.0)  # never routed
    stats = router.statistics()
    assert stats.keepalives == 1
    assert stats.list_replies == 1
    assert stats.unknown_types == 2


async def test_routing_follows_book_changes_at_the_next_frame(
    service: SubscriptionService,
) -> None:
    """A new subscription receives from the next frame; an unsubscribed one stops at once."""
    router = public(service)
    first = service.component("a").subscribe("ticker", ["KRW-BTC"])
    router.route(ticker("KRW-BTC"), 0.0)
    assert router.statistics().routes == 1
    second = service.component("b").subscribe("trade", ["KRW-BTC"])
    router.route(trade("KRW-BTC", 1), 0.0)
    assert len(await drain(second)) == 1
    await first.aclose()
    router.route(ticker("KRW-BTC", 101.0), 0.0)
    assert await drain(first) == []
    assert router.statistics().unwanted == 1


async def test_a_snapshot_identical_to_what_subscribers_have_is_suppressed(
    service: SubscriptionService,
) -> None:
    """After a resubscribe, a SNAPSHOT repeating the last message is a duplicate and skipped."""
    sub = service.component("a").subscribe("ticker", ["KRW-BTC"])
    router = public(service)
    router.route(ticker("KRW-BTC", 100.0, ts=1), 0.0)
    router.route(ticker("KRW-BTC", 100.0, stream="SNAPSHOT", ts=2), 0.0)
    assert len(await drain(sub)) == 1
    assert router.statistics().duplicate_snapshots == 1
    # A snapshot with news (the market moved while the socket was down) is the fresh state.
    router.route(ticker("KRW-BTC", 105.0, stream="SNAPSHOT", ts=3, seq=1), 0.0)
    assert [m.trade_price for m in await drain(sub)] == [105.0]


async def test_a_late_joiner_gets_the_current_state_at_once_and_no_duplicate_later(
    service: SubscriptionService,
) -> None:
    """A new subscriber of a flowing stream is seeded; the next identical snapshot is skipped."""
    first = service.component("a").subscribe("ticker", ["KRW-BTC"])
    router = public(service)
    router.route(ticker("KRW-BTC", 100.0), 0.0)
    await drain(first)
    joiner = service.component("b").subscribe("ticker", ["KRW-BTC"])
    seeded = await drain(joiner)
    assert [m.trade_price for m in seeded] == [100.0]
    router.route(ticker("KRW-BTC", 100.0, stream="SNAPSHOT", ts=9), 0.0)
    assert await drain(joiner) == []
    assert await drain(first) == []


async def test_a_seeded_orderbook_is_cut_to_the_joiners_depth(
    service: SubscriptionService,
) -> None:
    """Seeding respects depth: a depth-5 joiner of a 30-unit stream gets 5 units."""
    service.component("a").subscribe("orderbook", ["KRW-BTC"])
    public(service).route(orderbook("KRW-BTC", 30), 0.0)
    joiner = service.component("b").subscribe("orderbook", ["KRW-BTC"], depth=5)
    (book,) = await drain(joiner)
    assert isinstance(book, Orderbook)
    assert len(book.units) == 5


async def test_seed_names_the_public_streams_it_had_nothing_for(
    service: SubscriptionService,
) -> None:
    """seed() returns the keys without a cached message (private ones are never seeded)."""
    joiner = service.component("a").subscribe("ticker", ["KRW-BTC"])
    router = public(service)
    router.route(ticker("KRW-BTC"), 0.0)
    await drain(joiner)
    keys = [("ticker", "KRW-BTC", None), ("ticker", "KRW-ETH", None)]
    assert router.seed(joiner, keys) == [("ticker", "KRW-ETH", None)]
    assert [m.code for m in await drain(joiner)] == ["KRW-BTC"]
    orders = service.component("b").subscribe("myOrder", ["KRW-BTC"])
    assert private(service).seed(orders, [("myOrder", "KRW-BTC", None)]) == []


async def test_private_events_are_never_replayed_to_a_joiner(
    service: SubscriptionService,
) -> None:
    """Order events are events, not state: a new myOrder subscriber gets no old order."""
    service.component("a").subscribe("myOrder", ["KRW-BTC"])
    private(service).route(my_order("KRW-BTC"), 0.0)
    joiner = service.component("b").subscribe("myOrder", ["KRW-BTC"])
    assert await drain(joiner) == []


async def test_list_format_frames_with_several_messages_route_each(
    service: SubscriptionService,
) -> None:
    """A JSON_LIST frame carrying two messages delivers both (section 2.5)."""
    sub = service.component("a").subscribe("ticker", ["KRW-BTC", "KRW-ETH"])
    frame = b"[" + ticker("KRW-BTC") + b"," + ticker("KRW-ETH") + b"]"
    public(service).route(frame, 0.0)
    assert sorted(m.code for m in await drain(sub)) == ["KRW-BTC", "KRW-ETH"]


async def test_list_format_frames_feed_the_latency_sample_like_single_frames(
    service: SubscriptionService,
) -> None:
    """Messages inside JSON_LIST frames are sampled for exchange latency like plain frames."""
    service.component("a").subscribe("trade", ["KRW-BTC"])
    router = public(service)
    for seq in range(0, LATENCY_SAMPLE_EVERY * 4, 2):  # two messages per frame
        router.route(b"[" + trade("KRW-BTC", seq) + b"," + trade("KRW-BTC", seq + 1) + b"]", 0.0)
    assert router.latency.count == 4


async def test_statistics_count_messages_and_bytes_by_type(service: SubscriptionService) -> None:
    """Messages and bytes are counted per type, and kept after the stream is dropped."""
    sub = service.component("a").subscribe("trade", ["KRW-BTC"])
    router = public(service)
    frames = [trade("KRW-BTC", i) for i in range(5)]
    for f in frames:
        router.route(f, 0.0)
    await sub.aclose()
    router.route(ticker("KRW-BTC"), 0.0)  # forces the rebuild that retires the route
    stats = router.statistics()
    assert stats.messages_by_type == {"trade": 5}
    assert stats.bytes_by_type == {"trade": sum(len(f) for f in frames)}


async def test_exchange_latency_is_sampled_from_realtime_frames(
    service: SubscriptionService,
) -> None:
    """Receive time minus frame timestamp is recorded for sampled REALTIME frames."""
    service.component("a").subscribe("trade", ["KRW-BTC"])
    router = public(service)
    router.wall_offset = 0.0
    frame = trade("KRW-BTC", 1, ts=1_000_000)
    for _ in range(64):
        router.route(frame, 1_000.025)  # 25 ms after the frame's timestamp
    latency = router.statistics().latency
    assert latency.count == 4  # one frame in 16
    assert latency.p50_ms is not None and 20.0 <= latency.p50_ms <= 30.0


def test_latency_histogram_percentiles_are_within_bucket_width() -> None:
    """Percentiles are within 20% of the exact ones; negative samples are counted apart."""
    histogram = LatencyHistogram()
    for ms in range(1, 101):
        histogram.add(float(ms))
    histogram.add(-3.0)
    summary = histogram.summary()
    assert summary.count == 101
    assert summary.p50_ms is not None and 50 <= summary.p50_ms <= 60
    assert summary.p99_ms is not None and 99 <= summary.p99_ms <= 100
    assert summary.max_ms == 100.0
    assert histogram.negative == 1
    assert LatencyHistogram().summary().p50_ms is None


async def test_a_watched_stream_fires_once_at_its_first_frame(
    service: SubscriptionService,
) -> None:
    """The first frame of a watched key calls back once (request confirmation)."""
    hits: list[float] = []
    book = SubscriptionBook()
    book.subscribe("a", "ticker", ["KRW-BTC", "KRW-ETH"])
    # A router over its own book: the routes exist, no subscription needs the frames.
    router = Router(
        book,
        connection="public",
        sinks={},
        on_control=lambda m, t: None,
        on_watch=hits.append,
    )
    router.watch(frozenset({("ticker", "KRW-ETH", None)}))
    router.route(ticker("KRW-BTC"), 1.0)
    router.route(ticker("KRW-ETH"), 2.0)
    router.route(ticker("KRW-ETH"), 3.0)
    assert hits == [2.0]


async def test_frames_encode_back_to_what_upbit_sends(service: SubscriptionService) -> None:
    """Helper frames use only Upbit's DEFAULT keys, type first, and decode to what they encode."""
    frames = {
        "ticker": ticker("KRW-BTC", 123.0),
        "trade": trade("KRW-BTC", 7),
        "orderbook": orderbook("KRW-BTC", 3),
        "candle": candle("candle.1m", "KRW-BTC", price=321.0),
        "myOrder": my_order("KRW-BTC", "1"),
        "myAsset": my_asset(),
    }
    for family, frame in frames.items():
        assert frame.startswith(b'{"type":"'), family
        # The simulator's key tables are written from section 4, apart from our codec.
        upbit_keys = set(SIMPLE_KEYS[family])
        obj = orjson.loads(frame)
        assert set(obj) <= upbit_keys, (family, set(obj) - upbit_keys)
        for unit in obj.get("orderbook_units", []):
            assert set(unit) <= upbit_keys
    subs = {
        "ticker": service.component("a").subscribe("ticker", ["KRW-BTC"]),
        "trade": service.component("a").subscribe("trade", ["KRW-BTC"]),
        "orderbook": service.component("a").subscribe("orderbook", ["KRW-BTC"]),
        "candle": service.component("a").subscribe("candle.1m", ["KRW-BTC"]),
        "myOrder": service.component("a").subscribe("myOrder"),
        "myAsset": service.component("a").subscribe("myAsset"),
    }
    for family, frame in frames.items():
        router = private(service) if family.startswith("my") else public(service)
        router.route(frame, 0.0)
        (message,) = await drain(subs[family])
        assert msgspec.json.encode(message) == frame, family


# -- per socket read (the hot path: Router.taker, then Router.end_read) ----------------------


def _read(router: Router, frames: list[bytes]) -> list[str]:
    """Hand ``frames`` to ``router`` as one socket read, as the connection does.

    Frames the fast decoder refuses go to ``other``, which (as the connection's slow path
    does) hands them to :meth:`Router.route`; returns what ``failed`` reported.
    """
    failures: list[str] = []

    def other(payload: memoryview) -> None:
        router.route(bytes(payload), 1.0)

    take = router.taker(1.0, other)
    for frame in frames:
        take(memoryview(frame))
    router.end_read(sum(map(len, frames)), lambda: failures.append("failed"))
    return failures


def _ticker_tape(codes: list[str], count: int, **options: Any) -> list[bytes]:
    return [ticker(codes[n % len(codes)], 100.0 + n, seq=n, **options) for n in range(count)]


async def test_a_read_with_bad_frames_among_good_ones_routes_every_good_one_in_order(
    service: SubscriptionService,
) -> None:
    """A frame the decoder refuses (garbage, a candle, a keep-alive) costs nothing else."""
    ticks = service.component("a").subscribe("ticker", ["KRW-BTC", "KRW-ETH"], policy="drop_oldest")
    candles = service.component("b").subscribe("candle.1m", ["KRW-BTC"])
    router = public(service)
    good = _ticker_tape(["KRW-BTC", "KRW-ETH"], 12)
    frames = [
        *good[:5],
        b"\x00\xffnot json at all",
        *good[5:9],
        candle("candle.1m", "KRW-BTC"),
        b'{"status":"UP"}',
        *good[9:],
    ]
    assert _read(router, frames) == []
    got = await drain(ticks)
    assert [m.trade_price for m in got] == [100.0 + n for n in range(12)]
    assert len(await drain(candles)) == 1
    stats = router.statistics()
    assert stats.decode_errors == 1
    assert stats.keepalives == 1
    assert stats.messages_by_type == {"candle.1m": 1, "ticker": 12}
    assert stats.frames == len(frames)


def _twins(**options: Any) -> tuple[list[Router], list[Subscription[Any]]]:
    """Two services with the same subscription: one fed frame by frame, one by reads."""
    routers, subs = [], []
    for _ in range(2):
        service = attached_service()
        subs.append(service.component("a").subscribe("ticker", ["KRW-BTC", "KRW-ETH"], **options))
        routers.append(public(service))
    return routers, subs


def _same_counts(a: Subscription[Any], b: Subscription[Any]) -> None:
    sa, sb = a.statistics(), b.statistics()
    for field in ("depth", "high_water", "pushed", "delivered", "dropped", "conflated", "gaps"):
        assert getattr(sa, field) == getattr(sb, field), field


@pytest.mark.parametrize(
    ("policy", "capacity"),
    [("drop_oldest", 1000), ("drop_oldest", 5), ("latest", 1024), ("latest", 1), ("never_drop", 4)],
)
async def test_a_read_taken_whole_leaves_what_frame_by_frame_delivery_leaves(
    policy: Any, capacity: int
) -> None:
    """Bulk delivery of a read: same messages, gaps and counters as one frame at a time."""
    (by_frame, by_read), (sub_frame, sub_read) = _twins(policy=policy, capacity=capacity)
    reads = [
        _ticker_tape(["KRW-BTC", "KRW-ETH"], 9),
        # A code nobody asked for (in flight after a resubscribe) and a duplicate snapshot.
        [*_ticker_tape(["KRW-BTC"], 3), ticker("KRW-XRP"), *_ticker_tape(["KRW-ETH"], 4)],
        [ticker("KRW-BTC", 102.0, seq=2, stream="SNAPSHOT", ts=5), *_ticker_tape(["KRW-BTC"], 6)],
        _ticker_tape(["KRW-ETH", "KRW-BTC"], 7),
    ]
    for frames in reads:
        for frame in frames:
            by_frame.route(frame, 1.0)
        assert _read(by_read, frames) == []
        _same_counts(sub_frame, sub_read)
    one = await drain(sub_frame)
    other = await drain(sub_read)
    assert [(m.code, m.trade_price) for m in one] == [(m.code, m.trade_price) for m in other]
    _same_counts(sub_frame, sub_read)
    b = _same_router_counts(by_frame, by_read)
    assert b.unwanted == 1
    assert b.duplicate_snapshots == 1


def _same_router_counts(by_frame: Router, by_read: Router) -> Any:
    """Assert that both routers counted the same frames, bytes and messages; return the 2nd's."""
    a, b = by_frame.statistics(), by_read.statistics()
    assert (a.frames, a.bytes, a.unwanted, a.duplicate_snapshots) == (
        b.frames,
        b.bytes,
        b.unwanted,
        b.duplicate_snapshots,
    )
    assert a.messages_by_type == b.messages_by_type
    assert a.bytes_by_type == b.bytes_by_type
    return b


def _mixed_twins(policy: Any, capacity: int) -> tuple[list[Router], list[dict[str, Any]]]:
    """Two services with a ticker, a trade and an orderbook component each (one per type)."""
    routers, subs = [], []
    for _ in range(2):
        service = attached_service()
        component = service.component("a")
        subs.append(
            {
                "ticker": component.subscribe(
                    "ticker", ["KRW-BTC", "KRW-ETH"], policy=policy, capacity=capacity
                ),
                "trade": component.subscribe("trade", ["KRW-BTC"], policy="drop_oldest"),
                "orderbook": component.subscribe("orderbook", ["KRW-BTC"]),
            }
        )
        routers.append(public(service))
    return routers, subs


@pytest.mark.parametrize(
    ("policy", "capacity"), [("drop_oldest", 1000), ("drop_oldest", 3), ("latest", 1024)]
)
async def test_a_read_of_several_types_leaves_what_frame_by_frame_delivery_leaves(
    policy: Any, capacity: int
) -> None:
    """Tickers with trades and a book among them (a read at normal load): split by type."""
    (by_frame, by_read), (frame_subs, read_subs) = _mixed_twins(policy, capacity)
    tape = _ticker_tape(["KRW-BTC", "KRW-ETH"], 12)
    trades = [trade("KRW-BTC", seq) for seq in range(8)]
    reads = [
        [*tape[:3], orderbook("KRW-BTC", bid=1.0), *tape[3:9], trades[0], *tape[9:]],
        # Trades enough to go whole too, a code nobody wants, a duplicate snapshot.
        [*trades[1:6], *tape[:4], ticker("KRW-XRP"), orderbook("KRW-BTC", bid=2.0), *tape[4:8]],
        [ticker("KRW-ETH", 107.0, seq=7, stream="SNAPSHOT", ts=5), *tape[:5], *trades[6:]],
        [orderbook("KRW-BTC", bid=3.0), *tape[2:10], candle("candle.1m", "KRW-BTC")],
    ]
    for frames in reads:
        for frame in frames:
            by_frame.route(frame, 1.0)
        assert _read(by_read, frames) == []
        for kind in ("ticker", "trade", "orderbook"):
            _same_counts(frame_subs[kind], read_subs[kind])
    for kind in ("ticker", "trade", "orderbook"):
        one = [msgspec.json.encode(m) for m in await drain(frame_subs[kind])]
        other = [msgspec.json.encode(m) for m in await drain(read_subs[kind])]
        assert one == other, kind
        assert one, kind
        _same_counts(frame_subs[kind], read_subs[kind])
    b = _same_router_counts(by_frame, by_read)
    assert (b.unwanted, b.duplicate_snapshots) == (2, 1)  # KRW-XRP, the candle; KRW-ETH


async def test_a_read_keeps_each_codes_last_message_for_late_joiners(
    service: SubscriptionService,
) -> None:
    """After a bulk read, a new subscriber of a flowing stream is seeded with its last message."""
    service.component("a").subscribe("ticker", ["KRW-BTC", "KRW-ETH"])
    router = public(service)
    _read(router, _ticker_tape(["KRW-BTC", "KRW-ETH"], 10))
    late = service.component("b").subscribe("ticker", ["KRW-ETH"])
    (seeded,) = await drain(late)
    assert (seeded.code, seeded.trade_price) == ("KRW-ETH", 109.0)
    assert router.statistics().latency.count == 0  # one in LATENCY_SAMPLE_EVERY: none of 10
    _read(router, _ticker_tape(["KRW-BTC"], LATENCY_SAMPLE_EVERY * 2))
    assert router.statistics().latency.count == 2


async def test_through_a_socket_a_malformed_frame_among_tickers_costs_no_ticker() -> None:
    """Real socket: tickers queued back to back around a malformed TEXT frame all arrive.

    Whether the transport reads them in one socket read or several, every good frame is
    delivered in order and the bad one is counted; the reader goes on.
    """
    async with stack() as st:
        sub = st.service.component("a").subscribe(
            "ticker", ["KRW-BTC"], policy="drop_oldest", capacity=10_000
        )
        await next_item(sub)  # the stream flows
        sim = st.sim_public()
        for n in range(20):
            if n == 10:
                sim.send_text(b"\x00\xffnot json at all")
            sim.send_control("ticker", ticker("KRW-BTC", 500.0 + n, seq=n))
        ours: list[float] = []
        while len(ours) < 20:
            msg = await next_item(sub)
            if 500.0 <= msg.trade_price < 520.0:
                ours.append(msg.trade_price)
        assert ours == [500.0 + n for n in range(20)]
        assert st.service.statistics().public.router.decode_errors == 1
