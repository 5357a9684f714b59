"""Subscriptions as streams: iteration, batches, overflow policies and gaps, lifecycle.

Frames are pushed through the real router of a real subscription service, as the socket
reader does; consumers are real tasks. Waits are bounded by timeouts on real events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.aio.subscription_helpers import (
    MARKETS,
    attached_service,
    my_order,
    next_item,
    ticker,
    trade,
)
from upbit_ws.aio.subscriptions import SubscriptionService
from upbit_ws.core.buffer import DeliveryBuffer, Gap, OverflowPolicy
from upbit_ws.core.errors import InvalidInputError, UnknownCodeError
from upbit_ws.core.events import BufferOverflowed, Event, GapEvent
from upbit_ws.core.messages import Trade


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def service(events: list[Event]) -> SubscriptionService:
    return attached_service(publish=events.append)  # as a manager with credentials has


def feed(service: SubscriptionService, *frames: bytes) -> None:
    router = service.listener("public").router
    for frame in frames:
        router.route(frame, 0.0)


async def test_async_for_yields_typed_messages_in_arrival_order(
    service: SubscriptionService,
) -> None:
    """A trade subscription yields Trade messages in the order the socket delivered them."""
    sub = service.component("tape").subscribe("trade", ["KRW-BTC"])
    feed(service, *(trade("KRW-BTC", i) for i in range(3)))
    got = [await next_item(sub) for _ in range(3)]
    assert all(isinstance(m, Trade) for m in got)
    assert [m.sequential_id for m in got] == [0, 1, 2]


async def test_a_waiting_consumer_is_woken_by_the_next_frame(
    service: SubscriptionService,
) -> None:
    """A consumer blocked in anext() gets the frame pushed after it started waiting."""
    sub = service.component("tape").subscribe("trade", ["KRW-BTC"])
    task = asyncio.create_task(next_item(sub))
    await asyncio.sleep(0)  # let the consumer block first
    assert not task.done()
    feed(service, trade("KRW-BTC", 42))
    message = await asyncio.wait_for(task, 2.0)
    assert message.sequential_id == 42


async def test_latest_policy_keeps_the_newest_per_code_and_loses_nothing(
    service: SubscriptionService,
) -> None:
    """A slow ticker consumer gets the newest frame per code, in first-arrival order."""
    sub = service.component("coins").subscribe("ticker", ["KRW-BTC", "KRW-ETH"])
    assert sub.policy == "latest"
    feed(
        service,
        ticker("KRW-BTC", 1.0),
        ticker("KRW-ETH", 2.0),
        ticker("KRW-BTC", 3.0, seq=1),
        ticker("KRW-BTC", 4.0, seq=2),
    )
    got = [await next_item(sub) for _ in range(2)]
    assert [(m.code, m.trade_price) for m in got] == [("KRW-BTC", 4.0), ("KRW-ETH", 2.0)]
    stats = sub.statistics()
    assert (stats.pushed, stats.conflated, stats.dropped) == (4, 2, 0)


async def test_drop_oldest_overflow_yields_a_counted_gap_marker_and_an_event(
    service: SubscriptionService, events: list[Event]
) -> None:
    """A full trade buffer drops the oldest; items() shows a Gap, and a Gap event goes out."""
    sub = service.component("tape").subscribe("trade", ["KRW-BTC"], capacity=3)
    assert sub.policy == "drop_oldest"
    feed(service, *(trade("KRW-BTC", i) for i in range(5)))
    items = sub.items()
    got = [await next_item(items) for _ in range(4)]
    assert isinstance(got[0], Gap)
    assert (got[0].dropped, got[0].policy) == (2, "drop_oldest")
    assert [m.sequential_id for m in got[1:]] == [2, 3, 4]
    (event,) = [e for e in events if isinstance(e, GapEvent)]
    assert (event.reason, event.dropped, event.subscriber, event.code) == (
        "overflow",
        2,
        "tape",
        "KRW-BTC",
    )
    assert sub.statistics().gaps == 1


async def test_plain_iteration_skips_gap_markers_but_still_reports_them(
    service: SubscriptionService, events: list[Event]
) -> None:
    """async for yields data only; the gap is still counted and published."""
    sub = service.component("tape").subscribe("trade", ["KRW-BTC"], capacity=2)
    feed(service, *(trade("KRW-BTC", i) for i in range(4)))
    got = [await next_item(sub) for _ in range(2)]
    assert [m.sequential_id for m in got] == [2, 3]
    assert [e.dropped for e in events if isinstance(e, GapEvent)] == [2]


async def test_never_drop_overflow_is_loud_and_loses_nothing(
    events: list[Event], caplog: pytest.LogCaptureFixture
) -> None:
    """A myOrder buffer past its bound keeps every event; one warning, event and hook call."""
    hooked: list[BufferOverflowed] = []
    service = attached_service(publish=events.append, on_overflow=hooked.append)
    sub = service.component("bot").subscribe("myOrder", capacity=2)
    assert sub.policy == "never_drop"
    router = service.listener("private").router
    with caplog.at_level(logging.WARNING, logger="upbit_ws.subscriptions"):
        for i in range(5):
            router.route(my_order("KRW-BTC", str(i)), 0.0)
    assert caplog.text.count("never_drop") == 1  # once per episode
    got = [await next_item(sub.items()) for _ in range(5)]
    assert [m.uuid for m in got] == ["0", "1", "2", "3", "4"]  # no Gap, nothing lost
    stats = sub.statistics()
    assert (stats.overflows, stats.dropped, stats.high_water) == (1, 0, 5)
    overflows = [e for e in events if isinstance(e, BufferOverflowed)]
    assert [(e.subscriber, e.type, e.capacity, e.depth) for e in overflows] == [
        ("bot", "myOrder", 2, 3)
    ]
    assert hooked == overflows
    assert service.statistics().buffer_overflows == 1
    assert not any(isinstance(e, GapEvent) for e in events)


async def test_a_slow_consumer_never_blocks_the_reader_or_other_consumers(
    service: SubscriptionService,
) -> None:
    """Pushing 10,000 frames to a consumer that never reads returns at once; others flow."""
    stuck = service.component("stuck").subscribe("trade", ["KRW-BTC"], capacity=100)
    live = service.component("live").subscribe("trade", ["KRW-BTC"], capacity=20_000)
    feed(service, *(trade("KRW-BTC", i) for i in range(10_000)))
    assert stuck.pending == 101  # 100 messages plus one gap marker: memory stays bounded
    assert live.pending == 10_000
    assert stuck.statistics().dropped == 9_900


async def test_batches_hand_out_what_is_waiting_up_to_max_items(
    service: SubscriptionService,
) -> None:
    """batches() yields lists of at most max_items, skipping gap markers."""
    sub = service.component("tape").subscribe("trade", ["KRW-BTC"], capacity=8)
    feed(service, *(trade("KRW-BTC", i) for i in range(10)))
    batches = sub.batches(max_items=5)
    first = await next_item(batches)
    second = await next_item(batches)
    assert [m.sequential_id for m in first] == [2, 3, 4, 5]  # the gap marker took one slot
    assert [m.sequential_id for m in second] == [6, 7, 8, 9]
    task = asyncio.create_task(next_item(batches))
    await asyncio.sleep(0)
    feed(service, trade("KRW-BTC", 99))
    assert [m.sequential_id for m in await asyncio.wait_for(task, 2.0)] == [99]
    with pytest.raises(InvalidInputError):
        sub.batches(max_items=0)


async def test_aclose_ends_iteration_at_once_and_discards_what_waits(
    service: SubscriptionService,
) -> None:
    """aclose() wakes a waiting consumer with StopAsyncIteration and clears the buffer."""
    sub = service.component("tape").subscribe("trade", ["KRW-BTC"])
    waiting = asyncio.create_task(next_item(sub))
    await asyncio.sleep(0)
    await sub.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 2.0)
    other = service.component("tape2").subscribe("trade", ["KRW-BTC"])
    feed(service, trade("KRW-BTC", 1))
    await other.aclose()
    await other.aclose()  # idempotent
    assert other.pending == 0
    assert [m async for m in other] == []
    assert sub.closed and other.statistics().closed


async def test_async_with_unsubscribes_on_exit(service: SubscriptionService) -> None:
    """Leaving ``async with`` unsubscribes: the book forgets the stream."""
    async with service.component("chart").subscribe("candle.1m", ["KRW-BTC"]) as sub:
        assert service.subscriptions().public.desired
    assert sub.closed
    assert service.subscriptions().public.desired == ()


async def test_shutdown_ends_iteration_after_the_buffered_messages(
    service: SubscriptionService,
) -> None:
    """When the service closes, consumers still read what was buffered, then stop."""
    sub = service.component("tape").subscribe("trade", ["KRW-BTC"])
    feed(service, trade("KRW-BTC", 1), trade("KRW-BTC", 2))
    service.close()
    assert [m.sequential_id async for m in sub] == [1, 2]
    with pytest.raises(InvalidInputError):
        service.component("late").subscribe("trade", ["KRW-BTC"])


async def test_update_hides_buffered_messages_of_codes_no_longer_wanted(
    service: SubscriptionService,
) -> None:
    """After update(["KRW-ETH"]), a waiting KRW-BTC ticker is not delivered."""
    sub = service.component("book").subscribe("ticker", ["KRW-BTC"])
    feed(service, ticker("KRW-BTC"))
    await sub.update(["krw-eth"])
    assert sub.codes == ("KRW-ETH",)
    feed(service, ticker("KRW-ETH", 7.0))
    message = await next_item(sub)
    assert (message.code, message.trade_price) == ("KRW-ETH", 7.0)


async def test_a_code_found_unknown_when_the_list_arrives_ends_the_subscription_with_it() -> None:
    """Codes accepted before the market list loaded are checked later; an unknown one raises."""
    service = attached_service("public", markets=None)  # no market list yet
    sub = service.component("a").subscribe("ticker", ["KRW-BTX"])
    ok = service.component("b").subscribe("ticker", ["KRW-BTC"])
    service.set_markets(MARKETS)
    with pytest.raises(UnknownCodeError) as info:
        await next_item(sub)
    assert "KRW-BTC" in info.value.suggestions
    assert not ok.closed
    assert service.subscriptions().public.desired[0].code == "KRW-BTC"


async def test_repr_and_statistics_describe_the_subscription(
    service: SubscriptionService,
) -> None:
    """repr names component, type, codes and policy; statistics carry the buffer counters."""
    sub: Any = service.component("book").subscribe("orderbook", ["KRW-BTC"], depth=15)
    text = repr(sub)
    assert "book:orderbook" in text and "KRW-BTC" in text and "depth=15" in text
    assert "latest" in text
    stats = sub.statistics()
    assert (stats.component, stats.type, stats.connection, stats.codes) == (
        "book",
        "orderbook",
        "public",
        1,
    )


async def test_update_back_to_a_superset_delivers_the_re_added_code(
    service: SubscriptionService,
) -> None:
    """Review #3: [BTC,ETH] -> [ETH] -> [ETH,BTC] delivers BTC again; the hidden one counts."""
    sub = service.component("tape").subscribe("trade", ["KRW-BTC", "KRW-ETH"])
    feed(service, trade("KRW-BTC", 1), trade("KRW-ETH", 2))
    await sub.update(["KRW-ETH"])
    await sub.update(["KRW-ETH", "KRW-BTC"])
    feed(service, trade("KRW-BTC", 3))
    got = [await next_item(sub, 1.0) for _ in range(3)]
    # BTC 1 comes back as the seed of a re-joined stream (its last message), then BTC 3.
    assert [(m.code, m.sequential_id) for m in got] == [
        ("KRW-ETH", 2),
        ("KRW-BTC", 1),
        ("KRW-BTC", 3),
    ]
    stats = sub.statistics()
    assert stats.dropped == 1  # the BTC trade buffered when it stopped being wanted
    assert stats.pushed == stats.delivered + stats.dropped + stats.conflated + stats.depth


async def test_update_to_a_wildcard_matching_nothing_leaves_no_old_code_behind(
    service: SubscriptionService,
) -> None:
    """Review #8: after update() to codes that resolve to none, old buffered frames are gone."""
    sub = service.component("tape").subscribe("trade", ["KRW-BTC"])
    feed(service, trade("KRW-BTC", 1), trade("KRW-BTC", 2))
    await sub.update(["KRW-ZZZ*"])
    assert sub.codes == ()
    assert sub.pending == 0
    assert sub.statistics().dropped == 2
    batches = sub.batches()
    waiting = asyncio.create_task(next_item(batches, 0.2))
    with pytest.raises(TimeoutError):
        await waiting


async def test_my_order_update_to_every_market_keeps_the_buffered_events(
    service: SubscriptionService,
) -> None:
    """myOrder without codes means every market (section 2.2): nothing buffered is dropped."""
    sub = service.component("bot").subscribe("myOrder", ["KRW-BTC"])
    router = service.listener("private").router
    router.route(my_order("KRW-BTC", "1"), 0.0)
    await sub.update([])
    router.route(my_order("KRW-ETH", "2"), 0.0)
    got = [await next_item(sub) for _ in range(2)]
    assert [(m.code, m.uuid) for m in got] == [("KRW-BTC", "1"), ("KRW-ETH", "2")]
    assert sub.statistics().dropped == 0


async def test_private_types_refuse_the_latest_policy(service: SubscriptionService) -> None:
    """Review M5: 'latest' would merge order events per code; myOrder/myAsset refuse it."""
    bot = service.component("bot")
    for kind in ("myOrder", "myAsset"):
        with pytest.raises(InvalidInputError, match="latest"):
            bot.subscribe(kind, policy="latest")
    assert bot.subscribe("myOrder", policy="drop_oldest").policy == "drop_oldest"


async def test_private_types_without_the_private_connection_raise_at_once() -> None:
    """Review #7: with no private connection attached, myOrder/myAsset say to pass credentials."""
    service = attached_service("public")
    for kind in ("myOrder", "myAsset"):
        with pytest.raises(InvalidInputError, match="credentials"):
            service.component("bot").subscribe(kind)
    assert service.subscriptions().private.desired == ()
    assert str(service.subscriptions()).startswith("public (idle)")
    assert "private: no connection" in str(service.subscriptions())


async def test_update_of_a_subscription_closed_while_waiting_for_the_market_list() -> None:
    """Review M6: closing during the wait for the list makes update() say 'closed'."""
    service = attached_service(
        "public", markets=None
    )  # no market list yet: a wildcard waits for it
    sub = service.component("coins").subscribe("ticker", ["KRW-BTC"])
    updating = asyncio.create_task(sub.update(["KRW-*"]))
    await asyncio.sleep(0)  # the update waits for the list
    await sub.aclose()
    service.set_markets(MARKETS)
    with pytest.raises(InvalidInputError, match="was closed"):
        await asyncio.wait_for(updating, 2.0)


_stream_ops = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.lists(st.sampled_from(MARKETS[:3]), max_size=8)),
        st.tuples(st.just("read"), st.integers(min_value=1, max_value=6)),
        st.tuples(st.just("gap"), st.just([])),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(
    policy=st.sampled_from(("latest", "drop_oldest", "never_drop")),
    capacity=st.integers(min_value=1, max_value=5),
    ops=_stream_ops,
)
def test_async_for_gives_what_the_buffer_pops_and_keeps_its_counters(
    policy: OverflowPolicy, capacity: int, ops: list[tuple[str, Any]]
) -> None:
    """async for (its fast path armed, disarmed by losses and markers) equals buffer pops."""

    async def scenario() -> None:
        service = attached_service("public")
        sub = service.component("tape").subscribe(
            "trade", list(MARKETS[:3]), policy=policy, capacity=capacity
        )
        twin: DeliveryBuffer[int] = DeliveryBuffer(policy=policy, capacity=capacity)
        got: list[int] = []
        want: list[int] = []
        seq = 0
        for op, arg in ops:
            if op == "feed":
                for code in arg:
                    feed(service, trade(code, seq))
                    twin.push(seq, code)
                    seq += 1
            elif op == "gap":  # what the channel does at a reconnect (latest buffers: nothing)
                sub._mark_reconnect_gap(float(seq))
                twin.mark_gap(float(seq))
            else:
                for _ in range(arg):
                    if not twin.statistics().depth:
                        break  # no message waits: the consumer would wait
                    while isinstance(item := twin.pop(), Gap):
                        pass
                    want.append(item)
                    got.append((await next_item(sub)).sequential_id)
            assert got == want
            assert sub.statistics().pushed == twin.statistics().pushed
        mine, theirs = sub.statistics(), twin.statistics()
        assert (mine.delivered, mine.dropped, mine.conflated, mine.depth, mine.high_water) == (
            theirs.delivered,
            theirs.dropped,
            theirs.conflated,
            theirs.depth,
            theirs.high_water,
        )
        assert (mine.gaps, mine.overflows) == (theirs.gaps, theirs.overflows)

    asyncio.run(scenario())
