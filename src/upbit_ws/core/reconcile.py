"""Private integrity: rebuild the myOrder/myAsset events a subscriber missed, from REST.

A private gap (a reconnect, a blackhole, a ``never_drop`` overflow) loses order and balance
events: a strategy that misses a fill holds a position it does not know about. After a gap the
shell reads REST (open orders, orders closed since the gap began, single orders with their
fills, balances; docs/rest.md, "Reconciliation") and hands it to :class:`Reconciler`, which
returns what the subscriber has not seen, as the same typed messages marked
``reconciled=True``.

The reconciler remembers what was delivered: every live message passes through
:meth:`Reconciler.live` before it is delivered, and every reconciled message is recorded as it
is produced. So each order event, keyed ``(uuid, state, trade_uuid)``, is delivered at most
once across live and reconciled delivery, whichever arrives first; a state never goes
backwards (no reconciled ``wait`` after a live ``trade`` or ``done``); and every fill and
terminal state (``done``, ``cancel``, ``prevented``) the exchange reports is delivered.

Memory: an order is remembered from its first event until it is finished and no later read or
live frame can bring it back (:meth:`Reconciler.forget`), and at most ``max_finished`` finished
orders are kept in any case.

Balances: the last delivered ``(balance, locked)`` per currency is remembered; a reconciliation
delivers one :class:`~upbit_ws.core.messages.MyAsset` with every currency that differs from
REST. A currency that changed live after :meth:`Reconciler.begin` is left alone: the socket
was up then, so anything newer than that live value will arrive live too, and the REST read
may be older than it.

Pure: no asyncio, no clock. Times are epoch milliseconds passed in.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from upbit_ws.core.messages import AskBid, AssetBalance, MyAsset, MyOrder
from upbit_ws.core.rest_types import Account, OrderTrade, RestOrder

__all__ = [
    "TERMINAL_STATES",
    "OrderKey",
    "ReconcileInput",
    "Reconciler",
    "ReconcilerStatistics",
    "rest_time_ms",
]

#: States after which an order never changes again (section 4.5 of the protocol notes).
TERMINAL_STATES: Final = frozenset({"done", "cancel", "prevented"})
_OPENING_STATES: Final = frozenset({"wait", "watch"})
#: ``(uuid, state, trade_uuid)``: one order event; ``trade_uuid`` is set only for fills.
OrderKey = tuple[str, str, str | None]
#: How many finished orders are remembered for de-duplication before the oldest is forgotten,
#: whatever :meth:`Reconciler.forget` was told (the hard bound of the memory).
DEFAULT_MAX_FINISHED: Final = 10_000


def rest_time_ms(text: str) -> int:
    """Return a REST time (``2024-03-13T15:26:07+09:00``; naive means UTC) in epoch ms."""
    moment = datetime.fromisoformat(text.replace(" ", "T"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class ReconcileInput:
    """What REST said after a gap: the reconciler's whole input.

    ``orders`` holds every order read (open, closed since the gap, single ones); when an uuid
    appears twice, a body with ``trades`` wins, then the later one. ``accounts`` is ``GET
    /v1/accounts``, or ``None`` when balances were not read. ``taken_at`` (epoch ms) stamps
    the rebuilt messages that have no better time. ``started_at`` (epoch ms) is when the read
    began: every event up to it is in this input (the shell's verified-up-to watermark).
    """

    orders: Sequence[RestOrder]
    accounts: Sequence[Account] | None
    taken_at: int
    started_at: int | None = None


@dataclass(frozen=True, slots=True)
class ReconcilerStatistics:
    """Counts: live messages passed and suppressed, reconciled messages produced, runs.

    ``tracked_orders`` is how many orders the memory holds now; ``forgotten_orders`` how many
    finished ones it let go (:meth:`Reconciler.forget` and the ``max_finished`` bound).
    """

    live_delivered: int
    live_suppressed: int
    reconciled_orders: int
    reconciled_assets: int
    runs: int
    tracked_orders: int
    forgotten_orders: int


@dataclass(slots=True)
class _Seen:
    """What the subscriber has seen of one order."""

    keys: set[tuple[str, str | None]] = field(default_factory=set)
    trades: set[str] = field(default_factory=set)
    last_state: str = ""
    finished: bool = False


class Reconciler:
    """Remember delivered private events; turn REST reads into the events that were missed."""

    def __init__(self, *, max_finished: int = DEFAULT_MAX_FINISHED) -> None:
        self._orders: dict[str, _Seen] = {}
        # Finished orders in the order they finished: uuid -> the terminal event's time (ms).
        self._finished: OrderedDict[str, int] = OrderedDict()
        self._max_finished = max_finished
        self._balances: dict[str, tuple[Decimal, Decimal]] = {}
        self._live_since_begin: set[str] | None = None
        self._live_delivered = 0
        self._live_suppressed = 0
        self._reconciled_orders = 0
        self._reconciled_assets = 0
        self._runs = 0
        self._forgotten = 0

    def __repr__(self) -> str:
        return (
            f"<Reconciler orders={len(self._orders)} currencies={len(self._balances)} "
            f"runs={self._runs}>"
        )

    # --- live side -------------------------------------------------------------------------

    def live(self, message: MyOrder | MyAsset) -> bool:
        """Record a live message; return whether to deliver it (``False``: already delivered).

        Call it for every myOrder/myAsset frame, in arrival order, before delivering it.
        """
        if isinstance(message, MyAsset):
            for row in message.assets:
                self._balances[row.currency] = (row.balance, row.locked)
                if self._live_since_begin is not None:
                    self._live_since_begin.add(row.currency)
            self._live_delivered += 1
            return True
        fresh = self._record(message.uuid, message.state, message.trade_uuid, message.timestamp)
        if fresh:
            self._live_delivered += 1
        else:
            self._live_suppressed += 1
        return fresh

    def _record(self, uuid: str, state: str, trade_uuid: str | None, at: int) -> bool:
        """Mark ``(uuid, state, trade_uuid)`` delivered; return False if it already was.

        ``at`` (epoch ms) is the event's time; a terminal event's is kept for :meth:`forget`.
        """
        seen = self._orders.get(uuid)
        if seen is None:
            seen = self._orders[uuid] = _Seen()
        key = (state, trade_uuid if state == "trade" else None)
        if key in seen.keys:
            return False
        seen.keys.add(key)
        if state == "trade" and trade_uuid is not None:
            seen.trades.add(trade_uuid)
        if not seen.finished:
            seen.last_state = state
        if state in TERMINAL_STATES and not seen.finished:
            seen.finished = True
            self._finished[uuid] = at
            while len(self._finished) > self._max_finished:
                self._forget_oldest()
        return True

    def _forget_oldest(self) -> None:
        """Drop the order that finished first from the memory."""
        uuid, _ = self._finished.popitem(last=False)
        self._orders.pop(uuid, None)
        self._forgotten += 1

    def forget(self, before: int) -> int:
        """Forget the finished orders whose terminal event is older than ``before`` (epoch ms).

        Return how many were forgotten. A forgotten order's events are no longer recognised:
        pass a ``before`` that no later REST read reaches back to (the start of the earliest
        read still possible, less its clock-skew margin) and that no live frame in flight can
        still be older than. The manager passes the earlier of the watermark and any gap not
        repaired yet, less the margin, and ten minutes ago (``src/upbit_ws/aio/private.py``):
        the memory then holds the last minutes' orders instead of filling ``max_finished``.
        Orders are taken in the order they finished, stopping at the first one still too new.
        """
        finished = self._finished
        forgotten = 0
        while finished and next(iter(finished.values())) < before:
            self._forget_oldest()
            forgotten += 1
        return forgotten

    # --- what to read ------------------------------------------------------------------------

    def begin(self) -> None:
        """Mark the start of a reconciliation: live balance changes from now on win over REST."""
        self._live_since_begin = set()

    def end(self) -> None:
        """Drop the mark of :meth:`begin` without reconciling (a read that found nothing)."""
        self._live_since_begin = None

    def unfinished(self) -> frozenset[str]:
        """Return the uuids of orders delivered in a non-terminal state (to look up by uuid)."""
        return frozenset(u for u, s in self._orders.items() if not s.finished)

    def needs_detail(self, order: RestOrder) -> bool:
        """Tell whether ``order`` has fills the subscriber has not seen (read ``/v1/order``)."""
        if order.trades and len(order.trades) >= order.trades_count:
            return False
        seen = self._orders.get(order.uuid)
        known = len(seen.trades) if seen is not None else 0
        return order.trades_count > known

    # --- reconciliation ------------------------------------------------------------------------

    def pending(self, data: ReconcileInput) -> bool:
        """Tell whether :meth:`reconcile` would produce anything for ``data``; records nothing.

        An audit asks first, then lets live frames in flight land before it reconciles, so
        that a fill merely slower over the socket than over REST is not taken for a miss.
        """
        for order in self._chosen(data.orders).values():
            seen = self._orders.get(order.uuid)
            if seen is None:
                if order.state in TERMINAL_STATES | _OPENING_STATES:
                    return True
                continue
            if not seen.keys:
                return True
            if any(("trade", t.uuid) not in seen.keys for t in order.trades):
                return True
            if order.state in TERMINAL_STATES and (order.state, None) not in seen.keys:
                return True
        if data.accounts is None:
            return False
        skip = self._live_since_begin or set()
        now = {a.currency: (a.balance, a.locked) for a in data.accounts}
        zero = (Decimal(0), Decimal(0))
        return any(
            now.get(c, zero) != self._balances.get(c)
            for c in set(now) | set(self._balances)
            if c not in skip
        )

    @staticmethod
    def _chosen(orders: Iterable[RestOrder]) -> dict[str, RestOrder]:
        """One body per uuid: one with ``trades`` wins, then the later one."""
        chosen: dict[str, RestOrder] = {}
        for order in orders:
            old = chosen.get(order.uuid)
            if old is None or order.trades or not old.trades:
                chosen[order.uuid] = order
        return chosen

    def reconcile(self, data: ReconcileInput) -> list[MyOrder | MyAsset]:
        """Return the missed events, in time order, each marked ``reconciled=True``.

        Order events come first (merged by time across orders, causal within one order), then
        one MyAsset with every currency whose REST balance differs from what was delivered.
        """
        self._runs += 1
        chosen = self._chosen(data.orders)
        streams = [self._order_events(o, data.taken_at) for o in chosen.values()]
        out: list[MyOrder | MyAsset] = list(heapq.merge(*streams, key=lambda m: m.timestamp))
        self._reconciled_orders += len(out)
        if data.accounts is not None:
            asset = self._asset_event(data.accounts, data.taken_at)
            if asset is not None:
                out.append(asset)
                self._reconciled_assets += 1
        self._live_since_begin = None
        return out

    def _order_events(self, order: RestOrder, taken_at: int) -> list[MyOrder]:
        seen = self._orders.get(order.uuid)
        created = rest_time_ms(order.created_at)
        events: list[MyOrder] = []
        if seen is None and order.state not in TERMINAL_STATES | _OPENING_STATES:
            return events  # a state this library does not know: nothing safe to rebuild
        if seen is None or not seen.keys:
            opening = "watch" if order.state == "watch" else "wait"
            if self._record(order.uuid, opening, None, created):
                events.append(_from_rest(order, opening, created))
        trades = sorted(order.trades, key=lambda t: rest_time_ms(t.created_at))
        volume = funds = Decimal(0)
        last = created
        for index, trade in enumerate(trades, start=1):
            volume += trade.volume
            funds += trade.funds
            at = max(last, rest_time_ms(trade.created_at))
            last = at
            if self._record(order.uuid, "trade", trade.uuid, at):
                events.append(_trade_event(order, trade, index, volume, funds, at))
        at = last if trades else max(created, taken_at)
        if order.state in TERMINAL_STATES and self._record(order.uuid, order.state, None, at):
            events.append(_from_rest(order, order.state, at))
        return events

    def _asset_event(self, accounts: Iterable[Account], taken_at: int) -> MyAsset | None:
        skip = self._live_since_begin or set()
        now: dict[str, tuple[Decimal, Decimal]] = {
            a.currency: (a.balance, a.locked) for a in accounts
        }
        zero = (Decimal(0), Decimal(0))
        changed: list[AssetBalance] = []
        for currency in sorted(set(now) | set(self._balances)):
            if currency in skip:
                continue
            value = now.get(currency, zero)  # REST leaves out currencies at zero
            if self._balances.get(currency) != value:
                self._balances[currency] = value
                changed.append(AssetBalance(currency=currency, balance=value[0], locked=value[1]))
        if not changed:
            return None
        return MyAsset(
            asset_uuid=f"reconciled-{taken_at}",
            assets=tuple(changed),
            asset_timestamp=taken_at,
            timestamp=taken_at,
            reconciled=True,
        )

    # --- views -----------------------------------------------------------------------------------

    def balances(self) -> Mapping[str, tuple[Decimal, Decimal]]:
        """Return the last delivered ``(balance, locked)`` per currency (the subscriber's view)."""
        return dict(self._balances)

    def statistics(self) -> ReconcilerStatistics:
        """Return a snapshot of the counters."""
        return ReconcilerStatistics(
            live_delivered=self._live_delivered,
            live_suppressed=self._live_suppressed,
            reconciled_orders=self._reconciled_orders,
            reconciled_assets=self._reconciled_assets,
            runs=self._runs,
            tracked_orders=len(self._orders),
            forgotten_orders=self._forgotten,
        )


def _ask_bid(order: RestOrder) -> AskBid:
    return "ASK" if order.side.lower() == "ask" else "BID"


def _from_rest(order: RestOrder, state: str, at: int) -> MyOrder:
    """Build a non-fill myOrder event from a REST order body."""
    funds = order.executed_funds
    if funds is None and order.trades:
        funds = sum((t.funds for t in order.trades), Decimal(0))
    executed = order.executed_volume
    avg = funds / executed if funds is not None and executed else Decimal(0)
    opening = state in _OPENING_STATES
    return MyOrder(
        code=order.market,
        uuid=order.uuid,
        ask_bid=_ask_bid(order),
        order_type=order.ord_type,
        state=state,
        timestamp=at,
        price=order.price,
        avg_price=Decimal(0) if opening else avg,
        volume=order.volume,
        remaining_volume=order.volume if opening else order.remaining_volume,
        executed_volume=Decimal(0) if opening else executed,
        trades_count=0 if opening else order.trades_count,
        reserved_fee=order.reserved_fee,
        remaining_fee=order.reserved_fee if opening else order.remaining_fee,
        paid_fee=Decimal(0) if opening else order.paid_fee,
        locked=order.locked,
        executed_funds=Decimal(0) if opening else funds,
        time_in_force=order.time_in_force,
        identifier=order.identifier,
        smp_type=order.smp_type,
        prevented_volume=order.prevented_volume,
        prevented_locked=order.prevented_locked,
        order_timestamp=rest_time_ms(order.created_at),
        reconciled=True,
    )


def _trade_event(
    order: RestOrder, trade: OrderTrade, index: int, volume: Decimal, funds: Decimal, at: int
) -> MyOrder:
    """Build a fill event: the fill's price, the order's running totals after it."""
    remaining = order.volume - volume if order.volume is not None else None
    return MyOrder(
        code=order.market,
        uuid=order.uuid,
        ask_bid=_ask_bid(order),
        order_type=order.ord_type,
        state="trade",
        timestamp=at,
        trade_uuid=trade.uuid,
        price=trade.price,
        avg_price=funds / volume if volume else Decimal(0),
        volume=order.volume,
        remaining_volume=remaining,
        executed_volume=volume,
        trades_count=index,
        executed_funds=funds,
        time_in_force=order.time_in_force,
        identifier=order.identifier,
        smp_type=order.smp_type,
        trade_timestamp=rest_time_ms(trade.created_at),
        order_timestamp=rest_time_ms(order.created_at),
        reconciled=True,
    )
