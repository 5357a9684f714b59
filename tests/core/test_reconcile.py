"""The pure reconciler: missed private events rebuilt from REST, each delivered at most once."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from upbit_ws.core.messages import AssetBalance, MyAsset, MyOrder
from upbit_ws.core.reconcile import TERMINAL_STATES, ReconcileInput, Reconciler, rest_time_ms
from upbit_ws.core.rest_types import Account, OrderTrade, RestOrder

T0 = 1_780_000_000_000  # epoch ms; REST times have whole seconds


def iso(ms: int) -> str:
    """Spell epoch ms as a KST REST time (whole seconds, as Upbit writes it)."""
    return datetime.fromtimestamp(ms // 1000 + 9 * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%S+09:00")


@dataclass
class FakeOrder:
    """The exchange's truth about one order."""

    uuid: str
    created: int
    state: str = "wait"
    trades: list[tuple[str, int]] = field(default_factory=list)

    def rest(self, *, with_trades: bool) -> RestOrder:
        """Return the REST body of the order (trades only as /v1/order gives them)."""
        fills = tuple(
            OrderTrade(
                market="KRW-BTC",
                uuid=t,
                price=Decimal(100),
                volume=Decimal(1),
                funds=Decimal(100),
                side="bid",
                created_at=iso(at),
            )
            for t, at in self.trades
        )
        return RestOrder(
            uuid=self.uuid,
            side="bid",
            ord_type="limit",
            state=self.state,
            market="KRW-BTC",
            created_at=iso(self.created),
            price=Decimal(100),
            volume=Decimal(10),
            remaining_volume=Decimal(10 - len(self.trades)),
            executed_volume=Decimal(len(self.trades)),
            trades_count=len(self.trades),
            trades=fills if with_trades else (),
        )


def live_order(order: FakeOrder, state: str, trade: str | None, at: int) -> MyOrder:
    """Return the live myOrder frame the exchange sends for one event."""
    return MyOrder(
        code="KRW-BTC",
        uuid=order.uuid,
        ask_bid="BID",
        order_type="limit",
        state=state,
        timestamp=at,
        trade_uuid=trade,
    )


def live_asset(balance: int, at: int) -> MyAsset:
    """Return a live myAsset frame for KRW."""
    row = AssetBalance(currency="KRW", balance=Decimal(balance), locked=Decimal(0))
    return MyAsset(asset_uuid=f"a{at}", assets=(row,), asset_timestamp=at, timestamp=at)


def snapshot(rec: Reconciler, orders: list[FakeOrder], krw: int, at: int) -> ReconcileInput:
    """Read REST as the driver does: lists without fills, /v1/order where fills are missing."""
    bodies = []
    for order in orders:
        listed = order.rest(with_trades=False)
        bodies.append(order.rest(with_trades=True) if rec.needs_detail(listed) else listed)
    accounts = [Account(currency="KRW", balance=Decimal(krw), locked=Decimal(0))]
    return ReconcileInput(orders=bodies, accounts=accounts, taken_at=at)


# One step of a run: "event" (the exchange acts; the live frame is queued or lost), "deliver"
# (the oldest queued live frame arrives), "repeat" (a delivered live frame arrives again),
# "reconcile" (REST is read and the missed events rebuilt).
steps = st.lists(
    st.tuples(
        st.sampled_from(["event", "event", "deliver", "repeat", "reconcile"]),
        st.booleans(),  # for "event": whether the live frame is lost
        st.integers(0, 3),  # which order acts, or which frame repeats
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_random_interleavings_never_duplicate_nor_lose_a_terminal_state(
    plan: list[tuple[str, bool, int]],
) -> None:
    """Live and REST observations in any order: no event twice, every fill and end delivered."""
    rec = Reconciler()
    orders: list[FakeOrder] = []
    queue: deque[MyOrder | MyAsset] = deque()
    delivered: list[MyOrder | MyAsset] = []
    truth: set[tuple[str, str, str | None]] = set()
    krw = 1_000_000
    clock = T0

    def deliver(message: MyOrder | MyAsset) -> None:
        if rec.live(message):
            delivered.append(message)

    def reconcile() -> None:
        rec.begin()
        snap = snapshot(rec, orders, krw, clock)
        # pending() (the audit's question) agrees with reconcile() and records nothing.
        before = (rec.statistics(), rec.unfinished(), rec.balances())
        would = rec.pending(snap)
        assert (rec.statistics(), rec.unfinished(), rec.balances()) == before
        out = rec.reconcile(snap)
        assert would == bool(out)
        delivered.extend(out)

    for action, lost, pick in plan:
        clock += 700
        if action == "event":
            open_orders = [o for o in orders if o.state not in TERMINAL_STATES]
            if pick == 0 or not open_orders:
                order = FakeOrder(uuid=f"o{len(orders)}", created=clock)
                orders.append(order)
                frame = live_order(order, "wait", None, clock)
                key = (order.uuid, "wait", None)
            else:
                order = open_orders[pick % len(open_orders)]
                if pick == 3:
                    order.state = "cancel" if len(order.trades) % 2 else "done"
                    frame = live_order(order, order.state, None, clock)
                    key = (order.uuid, order.state, None)
                else:
                    trade = f"{order.uuid}-t{len(order.trades)}"
                    order.trades.append((trade, clock))
                    frame = live_order(order, "trade", trade, clock)
                    key = (order.uuid, "trade", trade)
            truth.add(key)
            krw -= 100
            if not lost:
                queue.append(frame)
                queue.append(live_asset(krw, clock))
        elif action == "deliver" and queue:
            deliver(queue.popleft())
        elif action == "repeat":
            frames = [m for m in delivered if isinstance(m, MyOrder) and not m.reconciled]
            if frames:
                deliver(frames[pick % len(frames)])
        elif action == "reconcile":
            reconcile()
    while queue:
        deliver(queue.popleft())
    clock += 1000
    reconcile()

    keys = [(m.uuid, m.state, m.trade_uuid) for m in delivered if isinstance(m, MyOrder)]
    assert len(keys) == len(set(keys)), "an order event was delivered twice"
    needed = {k for k in truth if k[1] != "wait"}
    assert needed <= set(keys), f"lost: {needed - set(keys)}"
    assert {o.uuid for o in orders} == {k[0] for k in keys}, "an order was never shown"
    assert rec.balances()["KRW"] == (Decimal(krw), Decimal(0))
    for order in orders:
        states = [m.state for m in delivered if isinstance(m, MyOrder) and m.uuid == order.uuid]
        if "wait" in states:
            assert states.index("wait") == 0, f"{order.uuid} went back to wait: {states}"


def test_reconciled_events_come_in_time_order_and_are_marked() -> None:
    """A gap's fills and end come back oldest first, marked reconciled, then the balances."""
    rec = Reconciler()
    a = FakeOrder("a", created=T0)
    assert rec.live(live_order(a, "wait", None, T0))
    a.trades += [("a-t0", T0 + 2000), ("a-t1", T0 + 5000)]
    a.state = "done"
    b = FakeOrder("b", created=T0 + 3000, state="cancel")
    out = rec.reconcile(snapshot(rec, [a, b], 5, T0 + 9000))
    got = [(m.uuid, m.state, m.trade_uuid) for m in out if isinstance(m, MyOrder)]
    assert got == [
        ("a", "trade", "a-t0"),
        ("b", "wait", None),
        ("a", "trade", "a-t1"),
        ("a", "done", None),
        ("b", "cancel", None),
    ]
    assert all(m.reconciled for m in out)
    stamps = [m.timestamp for m in out]
    assert stamps == sorted(stamps)
    fill = out[0]
    assert isinstance(fill, MyOrder) and fill.executed_volume == 1 and fill.price == 100
    asset = out[-1]
    assert isinstance(asset, MyAsset) and asset.assets[0].balance == 5


def test_live_twin_after_reconciled_event_is_suppressed() -> None:
    """A live fill that arrives after its reconciled twin is not delivered again."""
    rec = Reconciler()
    a = FakeOrder("a", created=T0, trades=[("a-t0", T0 + 1000)])
    rec.reconcile(snapshot(rec, [a], 1, T0 + 2000))
    assert not rec.live(live_order(a, "trade", "a-t0", T0 + 1000))
    assert rec.live(live_order(a, "trade", "a-t1", T0 + 3000))
    assert rec.statistics().live_suppressed == 1


def test_live_balance_during_reconciliation_wins_over_rest() -> None:
    """A balance that changed live after begin() is newer than the REST read: left alone."""
    rec = Reconciler()
    rec.begin()
    assert rec.live(live_asset(7, T0))
    accounts = [
        Account(currency="KRW", balance=Decimal(9), locked=Decimal(0)),
        Account(currency="BTC", balance=Decimal(1), locked=Decimal(0)),
    ]
    out = rec.reconcile(ReconcileInput(orders=(), accounts=accounts, taken_at=T0))
    assert len(out) == 1 and isinstance(out[0], MyAsset)
    assert [a.currency for a in out[0].assets] == ["BTC"]
    assert rec.balances()["KRW"] == (Decimal(7), Decimal(0))


def test_currency_gone_from_rest_reads_zero() -> None:
    """REST leaves out a currency at zero: a delivered non-zero balance is set to zero."""
    rec = Reconciler()
    row = AssetBalance(currency="XRP", balance=Decimal(3), locked=Decimal(0))
    rec.live(MyAsset(asset_uuid="x", assets=(row,), asset_timestamp=T0, timestamp=T0))
    out = rec.reconcile(ReconcileInput(orders=(), accounts=[], taken_at=T0))
    assert isinstance(out[0], MyAsset) and out[0].assets[0].balance == 0


def test_unfinished_and_needs_detail() -> None:
    """Orders seen open are listed for a lookup; fills not yet seen ask for the detail."""
    rec = Reconciler()
    a = FakeOrder("a", created=T0)
    rec.live(live_order(a, "wait", None, T0))
    assert rec.unfinished() == {"a"}
    a.trades.append(("a-t0", T0))
    assert rec.needs_detail(a.rest(with_trades=False))
    assert not rec.needs_detail(a.rest(with_trades=True))
    rec.live(live_order(a, "trade", "a-t0", T0))
    assert not rec.needs_detail(a.rest(with_trades=False))
    rec.live(live_order(a, "done", None, T0))
    assert rec.unfinished() == frozenset()
    assert rest_time_ms("2026-01-01T09:00:00+09:00") == rest_time_ms("2026-01-01T00:00:00")


def test_finished_orders_are_forgotten_past_the_bound() -> None:
    """Memory stays bounded: the oldest finished orders are dropped past max_finished."""
    rec = Reconciler(max_finished=2)
    for i in range(4):
        order = FakeOrder(f"o{i}", created=T0)
        rec.live(live_order(order, "cancel", None, T0))
    stats = rec.statistics()
    assert (stats.tracked_orders, stats.forgotten_orders) == (2, 2)


def test_forget_lets_go_of_orders_finished_before_the_cutoff_only() -> None:
    """forget(before) drops finished orders whose terminal event is older than ``before``.

    Unfinished orders and orders finished at or after the cutoff stay recognised; a
    reconciled terminal event counts with the time it was rebuilt at.
    """
    rec = Reconciler()
    old = FakeOrder("old", created=T0, state="done", trades=[("t-old", T0 + 10)])
    rec.live(live_order(old, "wait", None, T0))
    rec.live(live_order(old, "trade", "t-old", T0 + 10))
    rec.live(live_order(old, "done", None, T0 + 20))
    resting = FakeOrder("resting", created=T0)
    rec.live(live_order(resting, "wait", None, T0))
    rebuilt = FakeOrder("rebuilt", created=T0 + 500, state="cancel")
    assert [
        m.state
        for m in rec.reconcile(ReconcileInput([rebuilt.rest(with_trades=True)], None, T0 + 900))
    ] == [
        "wait",
        "cancel",
    ]
    assert rec.forget(T0 + 20) == 0  # "old" finished at the cutoff, not before it
    assert rec.forget(T0 + 21) == 1
    stats = rec.statistics()
    assert (stats.tracked_orders, stats.forgotten_orders) == (2, 1)
    assert rec.unfinished() == frozenset({"resting"})
    assert not rec.live(live_order(rebuilt, "cancel", None, T0 + 900))  # still known
    # Forgotten means unknown: a replay of its terminal event would pass (hence the cutoff).
    assert rec.live(live_order(old, "done", None, T0 + 20))
    assert rec.forget(T0 + 10_000) == 2  # "rebuilt" (rebuilt at taken_at) and the replay


def test_reconciled_mark_survives_json_and_live_frames_carry_only_upbit_keys() -> None:
    """Encoding keeps reconciled=True through JSON and adds no key to a live event."""
    import msgspec

    from upbit_ws import decode

    rec = Reconciler()
    a = FakeOrder("a", created=T0, state="cancel")
    rebuilt = rec.reconcile(snapshot(rec, [a], 1, T0 + 1000))
    for message in rebuilt:
        again = decode(msgspec.json.encode(message))
        assert again == message and again.reconciled  # type: ignore[union-attr]
    live = msgspec.json.encode(live_order(a, "wait", None, T0))
    assert b"reconciled" not in live
