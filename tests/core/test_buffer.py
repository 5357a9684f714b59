"""Bounded delivery buffers: overflow policies, gap markers, counters, and their properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upbit_ws.core.buffer import (
    DEFAULT_CAPACITY,
    OVERFLOW_POLICIES,
    DeliveryBuffer,
    Gap,
    OverflowPolicy,
    default_policy,
)
from upbit_ws.core.constants import CANDLE_TYPES
from upbit_ws.core.errors import InvalidInputError


def test_default_policies_per_type() -> None:
    """ticker/orderbook conflate, trade/candles drop oldest, private types never drop."""
    assert default_policy("ticker") == "latest"
    assert default_policy("orderbook") == "latest"
    assert default_policy("trade") == "drop_oldest"
    assert all(default_policy(t) == "drop_oldest" for t in CANDLE_TYPES)
    assert default_policy("myOrder") == "never_drop"
    assert default_policy("myAsset") == "never_drop"


def test_default_capacity_per_policy() -> None:
    """Without a capacity the buffer takes its policy's named default bound."""
    for policy in OVERFLOW_POLICIES:
        assert DeliveryBuffer[int](policy=policy).capacity == DEFAULT_CAPACITY[policy]


def test_fifo_order_without_overflow() -> None:
    """drop_oldest delivers in arrival order while under its bound."""
    buf: DeliveryBuffer[int] = DeliveryBuffer(policy="drop_oldest", capacity=3)
    for i in range(3):
        assert buf.push(i, "KRW-BTC") is False
    assert len(buf) == 3
    assert buf.drain(10) == [0, 1, 2]
    assert not buf


def test_drop_oldest_reports_a_gap_before_the_next_message() -> None:
    """When full the oldest goes, and the consumer sees Gap(count) before what remains."""
    buf: DeliveryBuffer[int] = DeliveryBuffer(policy="drop_oldest", capacity=2)
    results = [buf.push(i) for i in range(5)]
    assert results == [False, False, True, True, True]
    assert len(buf) == 3  # two messages and one gap marker
    assert buf.pop() == Gap(3, "drop_oldest")
    assert buf.pop() == 3
    assert buf.pop() == 4
    stats = buf.statistics()
    assert (stats.pushed, stats.delivered, stats.dropped, stats.gaps) == (5, 2, 3, 1)
    assert stats.high_water == 2


def test_gap_counts_accumulate_until_delivered() -> None:
    """Drops between two pops fold into one gap marker with their total."""
    buf: DeliveryBuffer[str] = DeliveryBuffer(policy="drop_oldest", capacity=1)
    buf.push("a")
    buf.push("b")
    assert buf.pop() == Gap(1, "drop_oldest")
    assert buf.pop() == "b"
    buf.push("c")
    buf.push("d")
    buf.push("e")
    assert buf.drain(5) == [Gap(2, "drop_oldest"), "e"]


def test_latest_keeps_only_the_newest_per_key() -> None:
    """latest conflates: a new message for a waiting key replaces it and is counted."""
    buf: DeliveryBuffer[str] = DeliveryBuffer(policy="latest", capacity=10)
    buf.push("btc1", "KRW-BTC")
    buf.push("eth1", "KRW-ETH")
    buf.push("btc2", "KRW-BTC")
    buf.push("btc3", "KRW-BTC")
    assert buf.drain(10) == ["btc3", "eth1"]
    assert buf.statistics().conflated == 2
    assert buf.statistics().dropped == 0


def test_latest_is_fair_to_quiet_codes() -> None:
    """A constantly updating code keeps its turn and never pushes a quiet code back."""
    buf: DeliveryBuffer[str] = DeliveryBuffer(policy="latest", capacity=10)
    buf.push("btc", "KRW-BTC")
    buf.push("eth", "KRW-ETH")
    for i in range(100):
        buf.push(f"btc{i}", "KRW-BTC")
    assert buf.pop() == "btc99"
    for i in range(100):
        buf.push(f"btc-again{i}", "KRW-BTC")
    # ETH arrived before the second BTC burst, so it is served first.
    assert buf.pop() == "eth"
    assert buf.pop() == "btc-again99"


def test_latest_evicts_the_oldest_key_when_too_many_keys_wait() -> None:
    """Over its key bound, latest drops the oldest waiting key and reports a gap."""
    buf: DeliveryBuffer[str] = DeliveryBuffer(policy="latest", capacity=2)
    buf.push("a", "A")
    buf.push("b", "B")
    assert buf.push("c", "C") is True
    assert buf.drain(10) == [Gap(1, "latest"), "b", "c"]


def test_never_drop_overflow_is_loud() -> None:
    """A never_drop buffer past its bound keeps everything; True once per overflow episode."""
    buf: DeliveryBuffer[str] = DeliveryBuffer(policy="never_drop", capacity=2)
    assert buf.push("order1") is False
    assert buf.push("order2") is False
    assert buf.push("order3") is True  # the episode begins: loud
    assert buf.push("order4") is False  # the same episode: said once
    stats = buf.statistics()
    assert (stats.overflows, stats.dropped, stats.depth, stats.high_water) == (1, 0, 4, 4)
    assert buf.drain(1) == ["order1"]  # no Gap: nothing was lost
    assert buf.push("order5") is False  # depth 4 > 2 all along: still the first episode
    assert buf.drain(3) == ["order2", "order3", "order4"]  # back within the bound: it ended
    assert buf.push("order6") is False
    assert buf.push("order7") is True  # a second episode
    assert buf.statistics().overflows == 2
    assert buf.drain(10) == ["order5", "order6", "order7"]


def test_never_drop_discard_keeps_order_and_ends_the_overflow_episode() -> None:
    """discard() on a never_drop buffer over its bound keeps order; the next overflow is new."""
    buf: DeliveryBuffer[str] = DeliveryBuffer(policy="never_drop", capacity=4)
    for item in ("A1", "B1", "A2", "B2", "A3"):
        buf.push(item)
    assert buf.discard(lambda item: item.startswith("A")) == 2
    assert buf.push("A4") is False  # depth 4: within the bound again
    assert buf.push("A5") is True  # a new episode
    assert buf.drain(10) == ["A1", "A2", "A3", "A4", "A5"]
    stats = buf.statistics()
    assert (stats.overflows, stats.dropped, stats.gaps) == (2, 2, 0)


def test_pop_on_empty_raises_index_error() -> None:
    """Popping an empty buffer is a caller bug, reported like deque.pop."""
    for policy in OVERFLOW_POLICIES:
        buf: DeliveryBuffer[int] = DeliveryBuffer(policy=policy)
        with pytest.raises(IndexError):
            buf.pop()


def test_clear_discards_and_counts() -> None:
    """clear() empties the buffer, forgets a pending gap, and counts the discarded as dropped."""
    buf: DeliveryBuffer[int] = DeliveryBuffer(policy="drop_oldest", capacity=2)
    for i in range(3):
        buf.push(i)
    assert buf.clear() == 2
    assert len(buf) == 0
    stats = buf.statistics()
    assert stats.pushed == stats.delivered + stats.dropped + stats.conflated + stats.depth


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"policy": "keep_all"}, "unknown overflow policy"),
        ({"policy": "latest", "capacity": 0}, "capacity"),
        ({"policy": "latest", "capacity": True}, "capacity"),
        ({"policy": "latest", "capacity": 2.5}, "capacity"),
    ],
)
def test_bad_construction_raises(kwargs: dict[str, object], needle: str) -> None:
    """An unknown policy or a non-positive bound is refused with InvalidInputError."""
    with pytest.raises(InvalidInputError, match=needle):
        DeliveryBuffer(**kwargs)  # type: ignore[arg-type]


def test_drain_rejects_non_positive_max() -> None:
    """drain(0) is misuse, not an empty batch."""
    with pytest.raises(InvalidInputError, match="max_items"):
        DeliveryBuffer[int](policy="latest").drain(0)


def test_repr_shows_policy_and_depth() -> None:
    """repr names the policy, depth, bound and counters."""
    buf: DeliveryBuffer[int] = DeliveryBuffer(policy="latest", capacity=4)
    buf.push(1, "A")
    assert repr(buf) == "<DeliveryBuffer policy=latest depth=1/4 dropped=0 conflated=0>"


# -- properties ------------------------------------------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from("ABCDE")),
        st.tuples(st.just("pop"), st.just("")),
        st.tuples(st.just("drain"), st.sampled_from("123")),
    ),
    max_size=80,
)


@given(
    policy=st.sampled_from(OVERFLOW_POLICIES),
    capacity=st.integers(min_value=1, max_value=6),
    ops=_ops,
)
def test_buffer_properties(
    policy: OverflowPolicy, capacity: int, ops: list[tuple[str, str]]
) -> None:
    """Lossy policies stay within the bound, never_drop loses nothing; counters add up."""
    buf: DeliveryBuffer[tuple[str, int]] = DeliveryBuffer(policy=policy, capacity=capacity)
    out: list[tuple[str, int] | Gap] = []
    latest_pushed: dict[str, int] = {}
    for n, (op, arg) in enumerate(ops):
        if op == "push":
            buf.push((arg, n), arg)
            latest_pushed[arg] = n
        elif op == "pop":
            if buf:
                out.append(buf.pop())
        else:
            out.extend(buf.drain(int(arg)))
        stats = buf.statistics()
        if policy != "never_drop":
            assert stats.depth <= capacity
            assert stats.high_water <= capacity
        else:
            assert stats.dropped == 0  # never_drop keeps everything, over its bound too
        assert stats.pushed == stats.delivered + stats.dropped + stats.conflated + stats.depth
        assert len(buf) >= stats.depth
    out.extend(buf.drain(10_000))
    assert not buf
    stats = buf.statistics()
    gaps = [g for g in out if isinstance(g, Gap)]
    messages = [m for m in out if not isinstance(m, Gap)]
    assert sum(g.dropped for g in gaps) == stats.dropped
    assert len(gaps) == stats.gaps
    assert len(messages) == stats.delivered
    assert not gaps or policy != "never_drop"
    # Every gap marker is followed by a message: a drop only happens while a newer message
    # is being pushed. Two markers can be adjacent when the message waiting behind the first
    # was itself dropped before the consumer reached it.
    if gaps:
        assert not isinstance(out[-1], Gap)
    if policy == "latest":
        # The last value ever pushed for a key is never conflated away: it is delivered
        # unless the key was evicted as a counted drop.
        delivered = set(messages)
        missing = [k for k, n in latest_pushed.items() if (k, n) not in delivered]
        assert len(missing) <= stats.dropped
        if stats.dropped == 0:
            assert not missing
    else:
        # FIFO policies deliver in push order.
        ns = [n for _, n in messages]
        assert ns == sorted(ns)
        if stats.dropped == 0:
            assert len(messages) == stats.pushed


def test_latest_gap_then_dropped_waiter_gives_two_gaps_then_message() -> None:
    """A drop after a delivered gap adds a second marker; the message still follows."""
    buf: DeliveryBuffer[str] = DeliveryBuffer(policy="latest", capacity=1)
    buf.push("a1", "A")
    buf.push("b1", "B")
    assert buf.pop() == Gap(1, "latest")
    buf.push("a2", "A")
    assert buf.drain(10) == [Gap(1, "latest"), "a2"]


@pytest.mark.parametrize("policy", ["latest", "drop_oldest"])
def test_discard_drops_unwanted_messages_in_place_and_counts_them(
    policy: OverflowPolicy,
) -> None:
    """discard() keeps order and a pending gap, drops the rest as counted, unmarked losses."""
    buf: DeliveryBuffer[str] = DeliveryBuffer(policy=policy, capacity=4)
    for item in ("A1", "B1", "A2", "B2", "A3"):
        buf.push(item, item)  # five distinct keys: the first one overflows both policies
    assert buf.discard(lambda item: item.startswith("A")) == 2
    out = buf.drain(10)
    assert isinstance(out[0], Gap)  # the overflow before the discard is still marked
    assert out[0].dropped == 1
    assert [m for m in out if not isinstance(m, Gap)] == ["A2", "A3"]
    stats = buf.statistics()
    assert stats.pushed == stats.delivered + stats.dropped + stats.conflated + stats.depth
    assert stats.gaps == 1


# --- reconnect markers (issue #9 item 5) ----------------------------------------------------


@pytest.mark.parametrize("policy", ["drop_oldest", "never_drop"])
def test_a_reconnect_marker_sits_where_the_loss_was(policy: OverflowPolicy) -> None:
    """Messages before the loss, then the marker with its start, then messages after it."""
    buf: DeliveryBuffer[int] = DeliveryBuffer(policy=policy, capacity=10)
    buf.push(1)
    buf.push(2)
    assert buf.mark_gap(5.0)
    buf.push(3)
    assert len(buf) == 4
    assert buf.drain(10) == [1, 2, Gap(0, policy, reason="reconnect", since=5.0), 3]
    stats = buf.statistics()
    assert stats.gaps == 1 and stats.delivered == 3 and stats.depth == 0
    assert stats.pushed == stats.delivered + stats.dropped + stats.conflated + stats.depth


def test_a_latest_buffer_places_no_reconnect_marker() -> None:
    """latest keeps the newest per code; the snapshot after resubscribing repairs it."""
    buf: DeliveryBuffer[int] = DeliveryBuffer(policy="latest", capacity=4)
    assert not buf.mark_gap(1.0)
    assert len(buf) == 0


def test_an_overflow_that_pushes_a_marker_out_keeps_its_reason_and_start() -> None:
    """The marker is not lost: the overflow gap that replaces it says reconnect, since."""
    buf: DeliveryBuffer[int] = DeliveryBuffer(policy="drop_oldest", capacity=2)
    buf.mark_gap(7.0)
    for i in range(4):
        buf.push(i)
    assert buf.statistics().depth == 2
    first = buf.pop()
    assert first == Gap(2, "drop_oldest", reason="reconnect", since=7.0)
    assert buf.drain(5) == [2, 3]
    stats = buf.statistics()
    assert stats.pushed == stats.delivered + stats.dropped + stats.conflated + stats.depth


def test_discard_and_clear_keep_the_counts_straight_with_markers() -> None:
    """discard keeps markers in place; clear drops them without counting them as messages."""
    buf: DeliveryBuffer[int] = DeliveryBuffer(policy="drop_oldest", capacity=5)
    buf.push(1)
    buf.mark_gap(1.0)
    buf.push(2)
    assert buf.discard(lambda m: m != 1) == 1
    assert buf.markers == 1
    assert buf.clear() == 1
    stats = buf.statistics()
    assert stats.pushed == stats.delivered + stats.dropped + stats.conflated + stats.depth
    assert len(buf) == 0 and buf.markers == 0


# -- the consumer's fast paths (direct, bulk drain) and the counters kept where depth rises --


def _take_direct(buf: DeliveryBuffer[Any]) -> Any:
    """Take the next message the way Subscription.__anext__ does, or return None."""
    fifo, keyed = buf.direct()
    if fifo:
        return fifo.popleft()
    if keyed:
        return keyed.popitem(False)[1]
    return None


def test_direct_gives_nothing_when_a_gap_comes_first() -> None:
    """direct() offers the container only when nothing special is in front of the messages."""
    buf: DeliveryBuffer[int] = DeliveryBuffer(policy="drop_oldest", capacity=2)
    assert _take_direct(buf) is None  # empty
    for n in range(3):
        buf.push(n)
    assert buf.direct() == (None, None)  # a loss: the gap marker must come first
    assert buf.pop() == Gap(1, "drop_oldest")
    assert [_take_direct(buf), _take_direct(buf), _take_direct(buf)] == [1, 2, None]
    buf.push(3)
    buf.mark_gap(since=5.0)
    buf.push(4)
    assert buf.direct() == (None, None)  # a reconnect marker waits among the messages
    assert buf.pop() == 3
    stats = buf.statistics()
    assert (stats.pushed, stats.delivered, stats.dropped, stats.depth) == (5, 3, 1, 1)


def test_direct_waits_for_the_end_of_a_never_drop_episode() -> None:
    """While a never_drop buffer is past its bound, pop() takes messages (it ends the episode)."""
    buf: DeliveryBuffer[int] = DeliveryBuffer(policy="never_drop", capacity=2)
    assert [buf.push(n) for n in range(4)] == [False, False, True, False]
    assert buf.direct() == (None, None)
    assert [buf.pop(), buf.pop()] == [0, 1]  # back within the bound: the episode is over
    assert _take_direct(buf) == 2
    assert buf.push(4) is False and buf.push(5) is True  # a new episode
    stats = buf.statistics()
    assert (stats.overflows, stats.high_water, stats.delivered, stats.depth) == (2, 4, 3, 3)


def test_drain_takes_a_bounded_batch_in_order_for_every_policy() -> None:
    """The bulk drain keeps delivery order and the bound, for FIFO and latest buffers."""
    fifo: DeliveryBuffer[int] = DeliveryBuffer(policy="drop_oldest", capacity=100)
    latest: DeliveryBuffer[int] = DeliveryBuffer(policy="latest", capacity=100)
    for n in range(10):
        fifo.push(n)
        latest.push(n, key=n % 5)  # keys 0..4, newest values 5..9
    assert fifo.drain(4) == [0, 1, 2, 3]
    assert fifo.drain(100) == [4, 5, 6, 7, 8, 9]
    assert latest.drain(3) == [5, 6, 7]
    assert latest.drain(100) == [8, 9]
    for buf, conflated in ((fifo, 0), (latest, 5)):
        stats = buf.statistics()
        assert (stats.delivered, stats.conflated, stats.depth, stats.high_water) == (
            10 - conflated,
            conflated,
            0,
            10 - conflated,
        )


_consumer_ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from("ABCDE")),
        st.tuples(st.just("take"), st.just("")),
        st.tuples(st.just("drain"), st.sampled_from("1237")),
        st.tuples(st.just("mark"), st.just("")),
        st.tuples(st.just("discard"), st.sampled_from("AB")),
    ),
    max_size=80,
)


@given(
    policy=st.sampled_from(OVERFLOW_POLICIES),
    capacity=st.integers(min_value=1, max_value=6),
    ops=_consumer_ops,
)
def test_counters_read_late_equal_counters_read_after_every_step(
    policy: OverflowPolicy, capacity: int, ops: list[tuple[str, str]]
) -> None:
    """Messages taken from direct()'s container leave every counter as pop() leaves them."""
    late: DeliveryBuffer[tuple[str, int]] = DeliveryBuffer(policy=policy, capacity=capacity)
    eager: DeliveryBuffer[tuple[str, int]] = DeliveryBuffer(policy=policy, capacity=capacity)
    peak = 0
    outs: tuple[list[object], list[object]] = ([], [])
    for n, (op, arg) in enumerate(ops):
        for buf, out in zip((late, eager), outs, strict=True):
            if op == "push":
                buf.push((arg, n), arg)
            elif op == "take":
                message = _take_direct(buf) if buf is late else None
                if message is not None:
                    out.append(message)
                elif buf:
                    out.append(buf.pop())
            elif op == "drain":
                out.extend(buf.drain(int(arg)))
            elif op == "mark":
                buf.mark_gap(since=float(n))
            else:
                buf.discard(lambda message, gone=arg: message[0] != gone)
        peak = max(peak, eager.statistics().depth)
    assert outs[0] == outs[1]
    assert late.statistics() == eager.statistics()
    assert late.statistics().high_water == peak


@given(
    policy=st.sampled_from(OVERFLOW_POLICIES),
    capacity=st.integers(min_value=1, max_value=8),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("read"), st.lists(st.sampled_from("ABCD"), max_size=10)),
            st.tuples(st.just("drain"), st.sampled_from([1, 3])),
            st.tuples(st.just("mark"), st.just([])),
        ),
        max_size=30,
    ),
)
def test_extend_leaves_what_one_push_per_item_leaves(
    policy: OverflowPolicy, capacity: int, steps: list[tuple[str, Any]]
) -> None:
    """A read taken by ``extend`` (or refused and pushed item by item) equals plain pushes."""
    bulk: DeliveryBuffer[tuple[str, int]] = DeliveryBuffer(policy=policy, capacity=capacity)
    plain: DeliveryBuffer[tuple[str, int]] = DeliveryBuffer(policy=policy, capacity=capacity)
    outs: tuple[list[object], list[object]] = ([], [])
    for n, (op, arg) in enumerate(steps):
        if op == "read":
            items = [(key, n * 100 + i) for i, key in enumerate(arg)]
            if not bulk.extend(items, dict(zip(arg, items, strict=True))):
                for item in items:
                    bulk.push(item, item[0])
            for item in items:
                plain.push(item, item[0])
        elif op == "drain":
            for buf, out in zip((bulk, plain), outs, strict=True):
                out.extend(buf.drain(arg))
        else:
            bulk.mark_gap(since=float(n))
            plain.mark_gap(since=float(n))
        assert bulk.statistics() == plain.statistics()
    for buf, out in zip((bulk, plain), outs, strict=True):
        out.extend(buf.drain(10_000))
    assert outs[0] == outs[1]
