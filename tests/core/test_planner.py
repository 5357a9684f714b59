"""The request planner: one full, deterministic request per connection and its confirmation."""

from __future__ import annotations

import orjson
import pytest

from upbit_ws.core.book import SubscriptionBook, WantedStream
from upbit_ws.core.encode import TypeRequest, encode_request
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.planner import Plan, SubscriptionPlanner, build_plan, wire_code


def _apply(planner: SubscriptionPlanner, connection: str = "public") -> Plan:
    plan = planner.plan_for(connection)  # type: ignore[arg-type]
    assert plan is not None
    planner.sent(plan.connection, plan)
    assert planner.confirmed(plan.connection, plan)
    return plan


def test_nothing_wanted_nothing_planned() -> None:
    """A fresh planner over an empty book has nothing to send on either connection."""
    planner = SubscriptionPlanner(SubscriptionBook())
    assert planner.plan_for("public") is None
    assert planner.plan_for("private") is None


def test_first_plan_asks_snapshots_for_everything() -> None:
    """The first request carries every stream without is_only_realtime, so each gets a snapshot."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-ETH", "KRW-BTC"])
    book.subscribe("chart", "candle.1m", ["KRW-BTC"])
    plan = SubscriptionPlanner(book).plan_for("public")
    assert plan is not None
    assert plan.types == (
        TypeRequest("ticker", ("KRW-BTC", "KRW-ETH")),
        TypeRequest("candle.1m", ("KRW-BTC",)),
    )
    assert plan.desired == book.wanted("public")
    assert plan.snapshot_streams() == plan.desired


def test_plan_encodes_to_the_documented_wire_shape() -> None:
    """A plan's types encode into one array request with the depth suffix and level."""
    book = SubscriptionBook()
    book.subscribe("ob", "orderbook", ["KRW-BTC"], depth=15, level=10000)
    book.subscribe("ob2", "orderbook", ["KRW-ETH"])
    plan = SubscriptionPlanner(book).plan_for("public")
    assert plan is not None
    frame = orjson.loads(encode_request(plan.types, ticket="t-1"))
    assert frame == [
        {"ticket": "t-1"},
        {"type": "orderbook", "codes": ["KRW-ETH"]},
        {"type": "orderbook", "codes": ["KRW-BTC.15"], "level": 10000},
        {"format": "DEFAULT"},
    ]


def test_confirmed_codes_go_realtime_and_new_codes_get_snapshots() -> None:
    """After a confirmed request, kept codes carry is_only_realtime and added codes do not."""
    book = SubscriptionBook()
    sub = book.subscribe("coins", "ticker", ["KRW-BTC", "KRW-ETH"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    book.update(sub, ["KRW-BTC", "KRW-ETH", "KRW-XRP"])
    plan = planner.plan_for("public")
    assert plan is not None
    assert plan.types == (
        TypeRequest("ticker", ("KRW-BTC", "KRW-ETH"), is_only_realtime=True),
        TypeRequest("ticker", ("KRW-XRP",)),
    )
    assert plan.snapshot_streams() == (WantedStream("ticker", "KRW-XRP"),)


def test_removal_only_sends_everything_else_realtime() -> None:
    """Removing a code re-sends the rest with is_only_realtime: no snapshot storm."""
    book = SubscriptionBook()
    sub = book.subscribe("coins", "ticker", ["KRW-BTC", "KRW-ETH"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    book.update(sub, ["KRW-BTC"])
    plan = planner.plan_for("public")
    assert plan is not None
    assert plan.types == (TypeRequest("ticker", ("KRW-BTC",), is_only_realtime=True),)


def test_no_op_change_plans_nothing() -> None:
    """A change that leaves the union as it is (a second holder) produces no request."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    extra = book.subscribe("chart", "ticker", ["KRW-BTC"])
    assert planner.plan_for("public") is None
    book.unsubscribe(extra)
    assert planner.plan_for("public") is None


def test_in_flight_plan_is_not_proposed_twice() -> None:
    """While a plan is in flight and the desired state is unchanged, nothing more is planned."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    plan = planner.plan_for("public")
    assert plan is not None
    assert planner.plan_for("public") == plan  # not sent yet: same plan again
    planner.sent("public", plan)
    assert planner.in_flight("public") == plan
    assert planner.plan_for("public") is None


def test_reconnect_snapshots_everything() -> None:
    """After connection_lost the same desired state is re-sent with fresh snapshots."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    book.subscribe("ob", "orderbook", ["KRW-BTC"], depth=5)
    planner = SubscriptionPlanner(book)
    first = _apply(planner)
    assert planner.plan_for("public") is None
    planner.connection_lost("public")
    assert planner.confirmed_state("public") == ()
    again = planner.plan_for("public")
    assert again == first
    assert again is not None
    assert not any(t.is_only_realtime for t in again.types)


def test_depth_merge_goes_on_the_code_and_30_has_no_suffix() -> None:
    """Orderbook depth merges to the largest; .N is on the code except for the default 30."""
    book = SubscriptionBook()
    book.subscribe("a", "orderbook", ["KRW-BTC"], depth=5)
    book.subscribe("b", "orderbook", ["KRW-BTC"], depth=15)
    book.subscribe("c", "orderbook", ["KRW-ETH"], depth=1)
    book.subscribe("d", "orderbook", ["KRW-ETH"], depth=30)
    plan = SubscriptionPlanner(book).plan_for("public")
    assert plan is not None
    assert plan.types == (TypeRequest("orderbook", ("KRW-BTC.15", "KRW-ETH")),)


def test_depth_change_is_a_new_stream_with_a_snapshot() -> None:
    """Raising the merged depth changes the wire code, so that code gets a fresh snapshot."""
    book = SubscriptionBook()
    book.subscribe("a", "orderbook", ["KRW-BTC", "KRW-ETH"], depth=5)
    planner = SubscriptionPlanner(book)
    _apply(planner)
    book.subscribe("b", "orderbook", ["KRW-BTC"], depth=15)
    plan = planner.plan_for("public")
    assert plan is not None
    assert plan.types == (
        TypeRequest("orderbook", ("KRW-ETH.5",), is_only_realtime=True),
        TypeRequest("orderbook", ("KRW-BTC.15",)),
    )


def test_levels_are_separate_type_objects_and_level_zero_is_omitted() -> None:
    """Each orderbook level is its own object; the native level 0 is not sent."""
    book = SubscriptionBook()
    book.subscribe("a", "orderbook", ["KRW-BTC"], level=10000)
    book.subscribe("b", "orderbook", ["KRW-BTC"], level=0)
    book.subscribe("c", "orderbook", ["KRW-ETH"], level=1000.0)
    plan = SubscriptionPlanner(book).plan_for("public")
    assert plan is not None
    assert plan.types == (
        TypeRequest("orderbook", ("KRW-BTC",)),
        TypeRequest("orderbook", ("KRW-ETH",), level=1000),
        TypeRequest("orderbook", ("KRW-BTC",), level=10000),
    )


def test_private_plan_my_order_all_and_my_asset() -> None:
    """Private: myOrder for all markets and myAsset go without codes and without flags."""
    book = SubscriptionBook()
    book.subscribe("s", "myOrder", ["KRW-BTC"])
    book.subscribe("w", "myAsset")
    planner = SubscriptionPlanner(book)
    first = _apply(planner, "private")
    assert first.types == (TypeRequest("myOrder", ("KRW-BTC",)), TypeRequest("myAsset"))
    book.subscribe("ledger", "myOrder", [])
    plan = planner.plan_for("private")
    assert plan is not None
    # Private types have no snapshot, so no is_only_realtime even for confirmed streams.
    assert plan.types == (TypeRequest("myOrder"), TypeRequest("myAsset"))
    assert orjson.loads(encode_request(plan.types, ticket="p"))[1:3] == [
        {"type": "myOrder"},
        {"type": "myAsset"},
    ]


def test_emptied_desired_state_gives_an_empty_plan_once() -> None:
    """When everything is unsubscribed an empty plan says "send nothing"; after it, None."""
    book = SubscriptionBook()
    sub = book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    book.unsubscribe(sub)
    plan = planner.plan_for("public")
    assert plan is not None
    assert plan.is_empty
    assert plan.desired == ()
    # The shell closes the socket instead of sending, then reports the loss.
    planner.connection_lost("public")
    assert planner.plan_for("public") is None


def test_empty_plan_can_be_confirmed_by_a_shell_keeping_the_socket() -> None:
    """A shell that keeps the socket may confirm the empty plan; then nothing more is due."""
    book = SubscriptionBook()
    sub = book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    book.unsubscribe(sub)
    _apply(planner)
    assert planner.plan_for("public") is None
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    plan = planner.plan_for("public")
    assert plan is not None
    assert plan.types == (TypeRequest("ticker", ("KRW-BTC",)),)


def test_streams_dropped_by_an_unconfirmed_request_are_not_realtime() -> None:
    """A code dropped by a sent request and re-added before confirmation gets a snapshot."""
    book = SubscriptionBook()
    sub = book.subscribe("coins", "ticker", ["KRW-BTC", "KRW-ETH"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    book.update(sub, ["KRW-BTC"])
    dropping = planner.plan_for("public")
    assert dropping is not None
    planner.sent("public", dropping)
    book.update(sub, ["KRW-BTC", "KRW-ETH"])
    plan = planner.plan_for("public")
    assert plan is not None
    assert plan.types == (
        TypeRequest("ticker", ("KRW-BTC",), is_only_realtime=True),
        TypeRequest("ticker", ("KRW-ETH",)),
    )


def test_stale_confirmation_is_ignored() -> None:
    """Confirming a plan that a newer request replaced changes nothing."""
    book = SubscriptionBook()
    sub = book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    first = planner.plan_for("public")
    assert first is not None
    planner.sent("public", first)
    book.update(sub, ["KRW-ETH"])
    second = planner.plan_for("public")
    assert second is not None
    planner.sent("public", second)
    assert not planner.confirmed("public", first)
    assert planner.confirmed_state("public") == ()
    assert planner.confirmed("public", second)
    assert planner.confirmed_state("public") == (WantedStream("ticker", "KRW-ETH"),)
    assert not planner.confirmed("public", second)  # twice: stale the second time
    assert planner.statistics("public").stale_confirmations == 2


def test_confirmation_after_connection_lost_is_stale() -> None:
    """A quiet-window confirmation firing after the socket died does not confirm anything."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    plan = planner.plan_for("public")
    assert plan is not None
    planner.sent("public", plan)
    planner.connection_lost("public")
    assert not planner.confirmed("public", plan)
    assert planner.plan_for("public") == plan


def test_rejected_state_is_not_proposed_again_and_falls_back_to_last_good() -> None:
    """After a rejection the planner re-sends only what Upbit accepted, until desired changes."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    bad = book.subscribe("ob", "orderbook", ["KRW-BTC"], level=7)
    plan = planner.plan_for("public")
    assert plan is not None
    planner.sent("public", plan)
    assert not planner.rejected("public", plan)  # once: maybe spurious, sent again
    # Upbit closes the socket after an error frame (section 7.3).
    planner.connection_lost("public")
    retry = planner.plan_for("public")
    assert retry is not None
    assert retry.desired == plan.desired
    planner.sent("public", retry)
    assert planner.rejected("public", retry)  # twice in a row: believed
    planner.connection_lost("public")
    fallback = planner.plan_for("public")
    assert fallback is not None
    assert fallback.types == (TypeRequest("ticker", ("KRW-BTC",)),)
    planner.sent("public", fallback)
    assert planner.confirmed("public", fallback)
    assert planner.plan_for("public") is None
    # The desired state changes: the planner tries the new desired state.
    book.unsubscribe(bad)
    book.subscribe("ob", "orderbook", ["KRW-BTC"])
    retry = planner.plan_for("public")
    assert retry is not None
    assert retry.desired == book.wanted("public")


def test_one_spurious_rejection_is_retried_as_is() -> None:
    """Issue #9 item 1: one error frame answering a valid request does not leave it unsent."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    book.subscribe("trades", "trade", ["KRW-ETH"])
    plan = planner.plan_for("public")
    assert plan is not None
    planner.sent("public", plan)
    assert not planner.rejected("public", plan)
    planner.connection_lost("public")
    again = planner.plan_for("public")
    assert again is not None
    assert again.desired == plan.desired
    planner.sent("public", again)
    assert planner.confirmed("public", again)
    assert planner.last_accepted("public") == frozenset(plan.desired)
    # A later rejection of a new state starts counting from one again.
    book.subscribe("more", "trade", ["KRW-XRP"])
    third = planner.plan_for("public")
    assert third is not None
    planner.sent("public", third)
    assert not planner.rejected("public", third)


def test_a_rejected_fallback_is_sent_again_because_upbit_accepted_it_before() -> None:
    """Even if the fallback draws an error too, it is re-sent: its streams were accepted."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    book.subscribe("ob", "orderbook", ["KRW-BTC"], level=7)
    first = planner.plan_for("public")
    assert first is not None
    planner.sent("public", first)
    assert not planner.rejected("public", first)
    planner.connection_lost("public")
    planner.sent("public", first)
    assert planner.rejected("public", first)
    planner.connection_lost("public")
    fallback = planner.plan_for("public")
    assert fallback is not None
    assert fallback.desired == (WantedStream("ticker", "KRW-BTC"),)
    planner.sent("public", fallback)
    assert not planner.rejected("public", fallback)  # not remembered
    planner.connection_lost("public")
    assert planner.plan_for("public") == fallback
    stats = planner.statistics("public")
    assert (stats.plans_rejected, stats.rejections_ignored) == (3, 2)


def test_a_removal_answered_by_an_error_never_leaves_nothing_to_send() -> None:
    """Review #2: a removal-only request "rejected" must not poison the remaining state.

    The desired state is a subset of what Upbit accepted; before the fix the planner
    remembered it as rejected, its fallback equalled it, and nothing was ever sent again.
    """
    book = SubscriptionBook()
    book.subscribe("a", "ticker", ["KRW-BTC"])
    leaving = book.subscribe("b", "ticker", ["KRW-ETH"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    book.unsubscribe(leaving)
    removal = planner.plan_for("public")
    assert removal is not None
    planner.sent("public", removal)
    planner.rejected("public", removal)
    planner.connection_lost("public")
    again = planner.plan_for("public")
    assert again is not None
    assert again.desired == (WantedStream("ticker", "KRW-BTC"),)
    assert not any(t.is_only_realtime for t in again.types)


def test_rejection_on_first_request_sends_nothing_until_change() -> None:
    """With no accepted state yet, a state rejected twice is not retried on reconnect."""
    book = SubscriptionBook()
    book.subscribe("ob", "orderbook", ["KRW-BTC"], level=7)
    planner = SubscriptionPlanner(book)
    plan = planner.plan_for("public")
    assert plan is not None
    planner.sent("public", plan)
    assert not planner.rejected("public", plan)
    planner.connection_lost("public")
    assert planner.plan_for("public") == plan  # once may be spurious: sent again
    planner.sent("public", plan)
    assert planner.rejected("public", plan)
    planner.connection_lost("public")
    assert planner.plan_for("public") is None
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    assert planner.plan_for("public") is not None


def test_a_requested_snapshot_re_sends_a_streaming_stream_without_realtime_only() -> None:
    """Review #4: a late joiner with nothing cached gets a snapshot with the next request."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC", "KRW-ETH"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    assert planner.plan_for("public") is None
    assert planner.request_snapshot("public", [("ticker", "KRW-ETH", None)])
    assert not planner.request_snapshot("public", [("ticker", "KRW-ETH", None)])  # pending
    assert not planner.request_snapshot("public", [("trade", "KRW-ETH", None)])  # not streaming
    plan = planner.plan_for("public")
    assert plan is not None
    assert plan.types == (
        TypeRequest("ticker", ("KRW-BTC",), is_only_realtime=True),
        TypeRequest("ticker", ("KRW-ETH",)),
    )
    planner.sent("public", plan)
    assert planner.plan_for("public") is None  # asked for once, sent once
    assert planner.confirmed("public", plan)
    assert planner.plan_for("public") is None
    assert planner.statistics("public").snapshots_requested == 1


def test_a_snapshot_request_outlives_the_confirmation_of_the_request_in_flight() -> None:
    """A request in flight that sends the stream realtime-only does not satisfy the ask."""
    book = SubscriptionBook()
    sub = book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    book.update(sub, ["KRW-BTC", "KRW-ETH"])
    in_flight = planner.plan_for("public")
    assert in_flight is not None
    planner.sent("public", in_flight)
    assert planner.request_snapshot("public", [("ticker", "KRW-BTC", None)])
    assert planner.confirmed("public", in_flight)
    plan = planner.plan_for("public")
    assert plan is not None
    assert WantedStream("ticker", "KRW-BTC") in plan.snapshot_streams()
    assert not planner.request_snapshot("private", [("myOrder", "*", None)])
    planner.connection_lost("public")
    assert planner.statistics("public").snapshots_requested == 1


def test_plans_are_deterministic() -> None:
    """The same desired state built in any order gives an equal plan."""
    one, two = SubscriptionBook(), SubscriptionBook()
    one.subscribe("a", "ticker", ["KRW-XRP", "KRW-BTC"])
    one.subscribe("b", "trade", ["KRW-ETH"])
    two.subscribe("b", "trade", ["KRW-ETH"])
    two.subscribe("a", "ticker", ["KRW-BTC"])
    two.subscribe("c", "ticker", ["KRW-XRP"])
    assert SubscriptionPlanner(one).plan_for("public") == SubscriptionPlanner(two).plan_for(
        "public"
    )


def test_build_plan_is_a_pure_function() -> None:
    """build_plan depends only on desired and streaming, not on planner state."""
    desired = [WantedStream("trade", "KRW-ETH"), WantedStream("trade", "KRW-BTC")]
    plan = build_plan("public", desired, streaming={WantedStream("trade", "KRW-ETH")})
    assert plan.types == (
        TypeRequest("trade", ("KRW-ETH",), is_only_realtime=True),
        TypeRequest("trade", ("KRW-BTC",)),
    )
    assert wire_code(WantedStream("orderbook", "KRW-BTC", 0, 5)) == "KRW-BTC.5"
    assert wire_code(WantedStream("orderbook", "KRW-BTC", 0, 30)) == "KRW-BTC"


def test_plan_for_the_wrong_connection_is_misuse() -> None:
    """Reporting a public plan as sent on the private connection raises InvalidInputError."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    plan = planner.plan_for("public")
    assert plan is not None
    with pytest.raises(InvalidInputError, match="not a plan for the private"):
        planner.sent("private", plan)
    with pytest.raises(InvalidInputError, match="unknown connection"):
        planner.plan_for("info")  # type: ignore[arg-type]


def test_statistics_count_the_lifecycle() -> None:
    """statistics() counts sent, confirmed, rejected plans and lost connections."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    planner = SubscriptionPlanner(book)
    _apply(planner)
    planner.connection_lost("public")
    stats = planner.statistics("public")
    assert (stats.plans_sent, stats.plans_confirmed, stats.connections_lost) == (1, 1, 1)
    assert stats.streaming == 0
    assert (stats.rejections_ignored, stats.snapshots_requested) == (0, 0)
    assert not stats.in_flight
    assert "public=streaming:0" in repr(planner)
