"""Random operation sequences over the book and planner, with invariants after every step."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from upbit_ws.core.book import (
    ALL_CODES,
    StreamKey,
    SubId,
    SubscriptionBook,
    WantedStream,
    connection_of,
)
from upbit_ws.core.constants import CONNECTIONS, PRIVATE_TYPES, ConnectionKind, DataType
from upbit_ws.core.encode import encode_request
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.planner import Plan, SubscriptionPlanner, build_plan

COMPONENTS = ("coins", "book", "chart", "bot")
CODES = ("KRW-BTC", "KRW-ETH", "KRW-XRP")
TYPES: tuple[DataType, ...] = ("ticker", "trade", "orderbook", "candle.1m", "myOrder", "myAsset")
codes_st = st.lists(st.sampled_from(CODES), max_size=3)
connection_st = st.sampled_from(CONNECTIONS)


@dataclass
class ModelSub:
    component: str
    type: DataType
    codes: frozenset[str]
    depth: int | None
    level: int | None


def model_wanted(subs: dict[SubId, ModelSub], connection: ConnectionKind) -> set[WantedStream]:
    """Compute the union of live interest independently of the book."""
    depth: dict[tuple[DataType, str, int | None], int | None] = {}
    for sub in subs.values():
        if connection_of(sub.type) != connection:
            continue
        keys: list[tuple[DataType, str, int | None]]
        if sub.type == "myAsset" or (sub.type == "myOrder" and not sub.codes):
            keys = [(sub.type, ALL_CODES, None)]
        else:
            keys = [(sub.type, code, sub.level) for code in sub.codes]
        for key in keys:
            old = depth.get(key)
            depth[key] = sub.depth if old is None or sub.depth is None else max(old, sub.depth)
    if ("myOrder", ALL_CODES, None) in depth:
        depth = {k: v for k, v in depth.items() if k[0] != "myOrder" or k[1] == ALL_CODES}
    return {WantedStream(t, c, lv, d) for (t, c, lv), d in depth.items()}


class BookMachine(RuleBasedStateMachine):
    """The shell's protocol, driven at random: the book changes, plans go out, Upbit reacts."""

    def __init__(self) -> None:
        super().__init__()
        self.book = SubscriptionBook()
        self.planner = SubscriptionPlanner(self.book)
        self.subs: dict[SubId, ModelSub] = {}
        self.dead: list[SubId] = []
        # What the (model) server certainly streams: the last confirmed request's streams,
        # narrowed by every request sent since (each request replaces the whole set).
        self.certain: dict[ConnectionKind, set[WantedStream]] = {c: set() for c in CONNECTIONS}
        self.in_flight: dict[ConnectionKind, Plan | None] = dict.fromkeys(CONNECTIONS)
        # The streams of the last confirmed request ever: the fallback after a rejection.
        self.last_good: dict[ConnectionKind, set[WantedStream]] = {c: set() for c in CONNECTIONS}
        self.old_plans: dict[ConnectionKind, list[Plan]] = {c: [] for c in CONNECTIONS}
        # The desired state when Upbit last rejected a request, while it is unchanged.
        self.rejected_at: dict[ConnectionKind, set[WantedStream] | None] = dict.fromkeys(
            CONNECTIONS
        )
        self.rejected_states: dict[ConnectionKind, list[tuple[WantedStream, ...]]] = {
            c: [] for c in CONNECTIONS
        }
        # The desired state rejected once and how often in a row (reset by a confirmation):
        # only a second rejection in a row is remembered (issue #9, a spurious error frame).
        self.strikes: dict[ConnectionKind, tuple[tuple[WantedStream, ...] | None, int]] = (
            dict.fromkeys(CONNECTIONS, (None, 0))
        )
        # Streaming keys a late joiner asked a fresh snapshot for, until a plan carries it.
        self.resnapshot: dict[ConnectionKind, set[StreamKey]] = {c: set() for c in CONNECTIONS}

    @initialize()
    def start(self) -> None:
        """Begin with an empty book."""
        assert self.book.version == 0

    # -- book rules ----------------------------------------------------------------------

    @rule(
        component=st.sampled_from(COMPONENTS),
        kind=st.sampled_from(TYPES),
        codes=codes_st,
        depth=st.sampled_from((None, 1, 5, 15, 30)),
        level=st.sampled_from((None, 0, 1000)),
    )
    def subscribe(
        self,
        component: str,
        kind: DataType,
        codes: list[str],
        depth: int | None,
        level: int | None,
    ) -> None:
        """Subscribe a component; options only where the type has them."""
        if kind == "myAsset":
            codes = []
        if kind != "orderbook":
            depth = level = None
        sub_id = self.book.subscribe(component, kind, codes, depth=depth, level=level)
        assert sub_id not in self.subs
        if kind == "orderbook":
            depth = 30 if depth is None else depth
            level = 0 if level is None else level
        self.subs[sub_id] = ModelSub(component, kind, frozenset(codes), depth, level)

    @precondition(lambda self: bool(self.subs))
    @rule(data=st.data(), codes=codes_st)
    def update(self, data: st.DataObject, codes: list[str]) -> None:
        """Replace one subscription's codes."""
        sub_id = data.draw(st.sampled_from(sorted(self.subs)))
        sub = self.subs[sub_id]
        if sub.type == "myAsset":
            before = self.book.version
            if codes:
                with pytest.raises(InvalidInputError):
                    self.book.update(sub_id, codes)
                assert self.book.version == before
            return
        self.book.update(sub_id, codes)
        sub.codes = frozenset(codes)

    @precondition(lambda self: bool(self.subs))
    @rule(data=st.data())
    def unsubscribe(self, data: st.DataObject) -> None:
        """Remove one subscription."""
        sub_id = data.draw(st.sampled_from(sorted(self.subs)))
        self.book.unsubscribe(sub_id)
        del self.subs[sub_id]
        self.dead.append(sub_id)

    @rule(component=st.sampled_from(COMPONENTS))
    def drop_component(self, component: str) -> None:
        """Remove a whole component (maybe one with nothing)."""
        removed = set(self.book.drop_component(component))
        expected = {s for s, sub in self.subs.items() if sub.component == component}
        assert removed == expected
        for sub_id in removed:
            del self.subs[sub_id]
            self.dead.append(sub_id)

    @precondition(lambda self: bool(self.dead))
    @rule(data=st.data())
    def misuse_dead_id(self, data: st.DataObject) -> None:
        """Using a removed id raises and changes nothing."""
        sub_id = data.draw(st.sampled_from(self.dead))
        before = self.book.version
        with pytest.raises(InvalidInputError):
            self.book.unsubscribe(sub_id)
        with pytest.raises(InvalidInputError):
            self.book.update(sub_id, ["KRW-BTC"])
        assert self.book.version == before

    # -- planner rules -------------------------------------------------------------------

    @rule(connection=connection_st)
    def plan_and_send(self, connection: ConnectionKind) -> None:
        """Ask for the next plan and send it (or close the socket for an empty plan)."""
        plan = self.planner.plan_for(connection)
        if plan is None:
            return
        self.check_plan(connection, plan)
        if plan.is_empty:
            # The shell's documented answer to an empty plan: close the socket.
            self.lose(connection)
            return
        self.planner.sent(connection, plan)
        if self.in_flight[connection] is not None:
            self.old_plans[connection].append(self.in_flight[connection])  # type: ignore[arg-type]
        self.in_flight[connection] = plan
        self.certain[connection] &= set(plan.desired)
        self.resnapshot[connection] -= {w.key for w in plan.snapshot_streams()}

    @precondition(lambda self: any(self.in_flight.values()))
    @rule(data=st.data())
    def confirm_in_flight(self, data: st.DataObject) -> None:
        """The first data frame (or a quiet window) confirms the plan in flight."""
        self.confirm(data.draw(st.sampled_from([c for c in CONNECTIONS if self.in_flight[c]])))

    def confirm(self, connection: ConnectionKind) -> None:
        plan = self.in_flight[connection]
        if plan is None:
            return
        assert self.planner.confirmed(connection, plan)
        self.in_flight[connection] = None
        self.certain[connection] = set(plan.desired)
        self.last_good[connection] = set(plan.desired)
        self.strikes[connection] = (None, 0)
        assert self.planner.confirmed_state(connection) == plan.desired

    @precondition(lambda self: any(self.old_plans.values()))
    @rule(data=st.data())
    def confirm_stale(self, data: st.DataObject) -> None:
        """A late confirmation of a replaced plan is ignored."""
        connection = data.draw(st.sampled_from([c for c in CONNECTIONS if self.old_plans[c]]))
        plan = data.draw(st.sampled_from(self.old_plans[connection]))
        if plan == self.in_flight[connection]:
            return
        before = self.planner.confirmed_state(connection)
        assert not self.planner.confirmed(connection, plan)
        assert self.planner.confirmed_state(connection) == before

    @precondition(lambda self: any(self.in_flight.values()))
    @rule(data=st.data())
    def reject(self, data: st.DataObject) -> None:
        """Upbit answers the plan in flight with an error frame, then closes the socket."""
        self.reject_on(data.draw(st.sampled_from([c for c in CONNECTIONS if self.in_flight[c]])))

    def reject_on(self, connection: ConnectionKind) -> None:
        plan = self.in_flight[connection]
        assert plan is not None
        # A state made only of streams Upbit accepted before is not remembered as rejected.
        remembered = False
        if not set(plan.desired) <= self.last_good[connection]:
            desired, count = self.strikes[connection]
            count = count + 1 if desired == plan.desired else 1
            self.strikes[connection] = (plan.desired, count)
            remembered = count >= 2
        assert self.planner.rejected(connection, plan) == remembered
        if remembered:
            self.rejected_states[connection].append(plan.desired)
            if self.rejected_at[connection] is None:
                self.rejected_at[connection] = model_wanted(self.subs, connection)
        self.lose(connection)

    @rule(connection=connection_st, data=st.data())
    def late_joiner_without_cache(self, connection: ConnectionKind, data: st.DataObject) -> None:
        """A new subscriber joins streams with nothing cached: ask Upbit for snapshots."""
        keys = data.draw(
            st.sets(
                st.sampled_from(
                    [("ticker", c, None) for c in CODES] + [("orderbook", c, 0) for c in CODES]
                ),
                max_size=3,
            )
        )
        streaming = {w.key for w in self.certain[connection] if w.type not in PRIVATE_TYPES}
        hit = (set(keys) & streaming) - self.resnapshot[connection]
        assert self.planner.request_snapshot(connection, keys) == bool(hit)
        self.resnapshot[connection] |= hit

    @rule(connection=connection_st)
    def connection_lost(self, connection: ConnectionKind) -> None:
        """The socket dies; the next plan must snapshot everything."""
        self.lose(connection)
        plan = self.planner.plan_for(connection)
        if plan is not None:
            assert not any(t.is_only_realtime for t in plan.types)

    @rule(connection=connection_st)
    def settle(self, connection: ConnectionKind) -> None:
        """Send and confirm every plan: the confirmed state converges to the desired one."""
        self.confirm(connection)
        for _ in range(4):
            plan = self.planner.plan_for(connection)
            if plan is None:
                break
            self.check_plan(connection, plan)
            self.planner.sent(connection, plan)
            self.resnapshot[connection] -= {w.key for w in plan.snapshot_streams()}
            assert self.planner.confirmed(connection, plan)
            self.in_flight[connection] = None
            self.certain[connection] = set(plan.desired)
            self.last_good[connection] = set(plan.desired)
            self.strikes[connection] = (None, 0)
        else:
            raise AssertionError("planner did not converge")
        assert set(self.planner.confirmed_state(connection)) == self.expected_target(connection)
        self.old_plans[connection].clear()

    # -- helpers ---------------------------------------------------------------------------

    def lose(self, connection: ConnectionKind) -> None:
        self.planner.connection_lost(connection)
        if self.in_flight[connection] is not None:
            self.old_plans[connection].append(self.in_flight[connection])  # type: ignore[arg-type]
        self.in_flight[connection] = None
        self.certain[connection] = set()
        self.resnapshot[connection].clear()
        assert self.planner.confirmed_state(connection) == ()
        assert self.planner.streaming(connection) == frozenset()

    def check_plan(self, connection: ConnectionKind, plan: Plan) -> None:
        """Every proposed plan is valid on the wire, canonical, and flags exactly the certain."""
        assert plan.connection == connection
        if not plan.is_empty:
            encode_request(plan.types, ticket="t")
        assert list(plan.desired) == sorted(plan.desired, key=WantedStream.sort_key)
        streaming = {
            w for w in self.certain[connection] if w.key not in self.resnapshot[connection]
        }
        assert build_plan(connection, reversed(plan.desired), streaming=streaming) == plan
        realtime = set(plan.desired) - set(plan.snapshot_streams())
        public = {w for w in plan.desired if w.type not in PRIVATE_TYPES}
        # Realtime only for what the server certainly streams; everything streaming stays
        # realtime (no snapshot storm), except what a late joiner asked a snapshot for.
        fresh = {w for w in public if w.key in self.resnapshot[connection]}
        assert realtime == (public & self.certain[connection]) - fresh
        for request in plan.types:
            assert request.codes or request.type in ("myOrder", "myAsset")
            assert list(request.codes) == sorted(request.codes)
        assert plan.desired not in self.rejected_states[connection]

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def forget_rejection_when_desired_changes(self) -> None:
        """Track, on the model side, when a rejection stops applying (desired changed)."""
        for connection in CONNECTIONS:
            at = self.rejected_at[connection]
            if at is not None and model_wanted(self.subs, connection) != at:
                self.rejected_at[connection] = None
                self.rejected_states[connection].clear()

    @invariant()
    def book_matches_model(self) -> None:
        """The book's desired state is the union of live interest, depth merged to the max."""
        for connection in CONNECTIONS:
            wanted = self.book.wanted(connection)
            assert set(wanted) == model_wanted(self.subs, connection)
            assert list(wanted) == sorted(wanted, key=WantedStream.sort_key)
            assert len(set(wanted)) == len(wanted)

    @invariant()
    def nothing_leaks(self) -> None:
        """No empty routing entries, no zero refcounts, no component without subscriptions."""
        table = self.book.routing_table()
        assert all(table.values())
        assert all(count >= 1 for count in self.book.refcounts().values())
        assert set(self.book.components()) == {s.component for s in self.subs.values()}
        assert {s.sub_id for s in self.book.subscriptions()} == set(self.subs)
        holders = {sub_id for h in table.values() for sub_id in h}
        assert holders <= set(self.subs)
        if not self.subs:
            assert table == {}
            assert self.book.wanted("public") == self.book.wanted("private") == ()

    @invariant()
    def routing_answers_match(self) -> None:
        """subscribers() names exactly the live subscriptions wanting a key, at their depth."""
        kinds: tuple[DataType, ...] = ("ticker", "orderbook", "myOrder")
        for kind in kinds:
            for code in CODES:
                for level in (0, 1000):
                    found = self.book.subscribers(kind, code, level)
                    expected = {
                        s: sub.depth
                        for s, sub in self.subs.items()
                        if sub.type == kind
                        and (
                            (kind == "myOrder" and (not sub.codes or code in sub.codes))
                            or (kind != "myOrder" and code in sub.codes)
                        )
                        and (kind != "orderbook" or sub.level == level)
                    }
                    assert found == expected

    def expected_target(self, connection: ConnectionKind) -> set[WantedStream]:
        """Return the state the planner must steer to: the union, or the accepted part of it."""
        wanted = model_wanted(self.subs, connection)
        rejected = {frozenset(r) for r in self.rejected_states[connection]}
        if self.rejected_at[connection] is None or frozenset(wanted) not in rejected:
            return wanted
        return wanted & self.last_good[connection]

    @invariant()
    def plan_targets_the_union(self) -> None:
        """The next plan (or the state in flight) is the union of live interest.

        After a rejection, and while the desired state is unchanged, it is the part of the
        union that Upbit last accepted (nothing only when Upbit never accepted any of it).
        """
        for connection in CONNECTIONS:
            target = self.expected_target(connection)
            if self.rejected_at[connection] is None:
                assert target == model_wanted(self.subs, connection)
            plan = self.planner.plan_for(connection)
            if plan is None:
                in_flight = self.planner.in_flight(connection)
                current = (
                    in_flight.desired
                    if in_flight is not None
                    else self.planner.confirmed_state(connection)
                )
                assert set(current) == target
                assert not any(w.key in self.resnapshot[connection] for w in target)
            else:
                assert set(plan.desired) == target
                self.check_plan(connection, plan)

    @invariant()
    def rejections_never_silence_an_accepted_stream(self) -> None:
        """After any sequence of rejections, a wanted stream Upbit accepted before is sent.

        A non-empty desired state yields a non-empty target whenever any of it is in the
        last accepted request, and exactly itself when all of it is; only a state Upbit
        never accepted any part of may be left unsent (section 7.3) until it changes.
        """
        for connection in CONNECTIONS:
            wanted = model_wanted(self.subs, connection)
            good = self.last_good[connection]
            plan = self.planner.plan_for(connection)
            in_flight = self.planner.in_flight(connection)
            if plan is not None:
                target = set(plan.desired)
            elif in_flight is not None:
                target = set(in_flight.desired)
            else:
                target = set(self.planner.confirmed_state(connection))
            if wanted and wanted <= good:
                assert target == wanted
            if wanted & good:
                assert target

    @invariant()
    def merged_depth_is_max_of_live(self) -> None:
        """Each wanted orderbook stream has the largest depth of its live subscribers."""
        for want in self.book.wanted("public"):
            if want.type != "orderbook":
                continue
            depths = [
                s.depth
                for s in self.subs.values()
                if s.type == "orderbook" and want.code in s.codes and s.level == want.level
            ]
            assert want.depth == max(depths)  # type: ignore[type-var]


BookMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBookMachine = BookMachine.TestCase


def test_settle_confirms_a_plan_left_in_flight() -> None:
    """Replay of a shrunk sequence: a plan sent and never confirmed blocks re-planning.

    plan_for returns None while the in-flight plan matches the desired state, so the shell
    must confirm (or lose) it; settling after confirming converges.
    """
    machine = BookMachine()
    machine.start()
    machine.subscribe(component="coins", kind="myOrder", codes=[], depth=None, level=None)
    machine.plan_and_send(connection="private")
    assert machine.planner.plan_for("private") is None
    machine.settle(connection="private")
    assert machine.planner.confirmed_state("private") == (WantedStream("myOrder", ALL_CODES),)
    machine.plan_targets_the_union()
    machine.teardown()


def test_a_rejected_removal_keeps_the_rest_subscribed() -> None:
    """Replay of review #2: a removal answered by an error still leaves the rest to send.

    Two streams are confirmed, one is removed, the removal request draws an error frame and
    the socket closes; the remaining stream (accepted before) must be planned again.
    """
    machine = BookMachine()
    machine.start()
    machine.subscribe(component="coins", kind="ticker", codes=["KRW-BTC"], depth=None, level=None)
    machine.subscribe(component="book", kind="ticker", codes=["KRW-ETH"], depth=None, level=None)
    machine.settle(connection="public")
    machine.drop_component(component="book")
    machine.plan_and_send(connection="public")
    machine.reject_on("public")
    machine.rejections_never_silence_an_accepted_stream()
    machine.plan_targets_the_union()
    plan = machine.planner.plan_for("public")
    assert plan is not None and plan.desired == (WantedStream("ticker", "KRW-BTC"),)
    machine.teardown()
