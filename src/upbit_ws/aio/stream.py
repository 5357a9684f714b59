"""The subscription a component holds: an async iterator over its own bounded buffer.

``ws.component("chart").subscribe("candle.1m", ["KRW-BTC"])`` returns a :class:`Subscription`.
The socket reader pushes decoded messages into it without ever blocking (the router calls
:meth:`Subscription._push`, which appends to a :class:`~upbit_ws.core.buffer.DeliveryBuffer`
and wakes the consumer); the consumer reads at its own pace:

* ``async for msg in sub`` yields typed data messages (:class:`~upbit_ws.Ticker`,
  :class:`~upbit_ws.Orderbook`, ...) and nothing else, so the common loop stays simple;
* ``async for item in sub.items()`` yields the same messages **and** the in-band
  :class:`~upbit_ws.core.buffer.Gap` markers, for consumers that must know exactly where data
  was lost (a trade tape drawing "... 12 trades skipped", an order book UI that re-reads REST);
* ``async for batch in sub.batches(max_items=...)`` yields lists of messages, for throughput.

Where gaps show up, whichever way you iterate: every lost message is counted in
:meth:`Subscription.statistics` (``dropped``, ``gaps``), and each gap also goes out once as a
:class:`~upbit_ws.core.events.GapEvent` system event (``ws.events()``) naming the component, when
the consumer reaches the point of the loss. With ``async for msg in sub`` and ``batches()`` the
marker itself is skipped; ``items()`` hands it over.

Overflow policies (see :mod:`upbit_ws.core.buffer`): ``latest`` (ticker, orderbook: newest per
code, each frame supersedes the last, nothing is lost), ``drop_oldest`` (trade, candles: a
bounded FIFO that drops the oldest and counts it) and ``never_drop`` (myOrder, myAsset: drops
nothing; past its large, soft bound it grows, and each overflow episode is logged, counted and
published as a :class:`~upbit_ws.core.events.BufferOverflowed` event).

Lifecycle: :meth:`Subscription.aclose` (or leaving ``async with``) unsubscribes at once and
discards what is still waiting; iteration then ends with ``StopAsyncIteration``. When the
manager shuts down, iteration ends after the messages already buffered have been read.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, cast

from upbit_ws.aio.logcontext import log_context
from upbit_ws.core.book import SubId, connection_of
from upbit_ws.core.buffer import DeliveryBuffer, Gap, OverflowPolicy
from upbit_ws.core.constants import PRIVATE_TYPES, ConnectionKind, DataType
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.messages import DataMessage

if TYPE_CHECKING:
    from upbit_ws.core.buffer import BufferStatistics

__all__ = [
    "DEFAULT_BATCH",
    "PushFn",
    "Subscription",
    "SubscriptionOwner",
    "SubscriptionStatistics",
]

M = TypeVar("M", bound=DataMessage)

#: Default largest batch :meth:`Subscription.batches` hands out at once. Small batches keep
#: the consumer's live set small; above a few hundred, throughput falls (cache-cold frees;
#: see benchmarks/README-subscriptions.md).
DEFAULT_BATCH: Final = 256
#: How many recent trade ids a backfilled subscription remembers, to deliver each trade once.
_RECENT_IDS: Final = 4096


class SubscriptionOwner(Protocol):
    """What a :class:`Subscription` asks of the service that created it."""

    async def update_subscription(self, sub: Subscription[Any], codes: Iterable[str]) -> None:
        """Replace the codes of ``sub`` (expanding and checking them)."""
        ...

    def close_subscription(self, sub: Subscription[Any]) -> None:
        """Unsubscribe ``sub``."""
        ...

    async def backfill(self, sub: Subscription[Any], gap: Gap) -> list[Any]:
        """Return what replaces reconnect ``gap`` of a backfilled trade subscription, in order.

        The missed trades (oldest first), preceded by ``gap`` itself when they do not reach
        back to its start; just ``[gap]`` when they cannot be fetched.
        """
        ...

    def gap_reached(self, sub: Subscription[Any], gap: Gap, since: float) -> None:
        """Note that the consumer of ``sub`` reached a gap of ``gap.dropped`` messages."""
        ...

    def overflowed(self, sub: Subscription[Any]) -> float:
        """Note the start of an overflow episode of ``sub``; return the time it happened.

        For ``latest`` and ``drop_oldest`` that is the first loss before a gap; for
        ``never_drop`` the buffer grew past its bound and lost nothing.
        """
        ...


@dataclass(frozen=True, slots=True)
class SubscriptionStatistics:
    """A snapshot of one subscription: its identity, its codes and its buffer's counters.

    ``pushed == delivered + dropped + conflated + depth`` (the buffer's invariant);
    ``gaps`` counts gap markers reached by the consumer; ``overflows`` counts the episodes in
    which a ``never_drop`` buffer grew past its bound (it drops nothing: ``depth`` and
    ``high_water`` may then exceed ``capacity``).
    """

    sub_id: int
    component: str
    type: DataType
    connection: ConnectionKind
    codes: int
    policy: OverflowPolicy
    capacity: int
    depth: int
    high_water: int
    pushed: int
    delivered: int
    dropped: int
    conflated: int
    gaps: int
    overflows: int
    closed: bool


class Subscription(Generic[M]):
    """One component's subscription: an async iterator of typed messages.

    Built by ``component.subscribe(...)``, never directly. ``codes`` are the resolved market
    codes (wildcards expanded), ``requested`` what the caller asked for. See the module docs
    for iteration, gaps and lifecycle.
    """

    __slots__ = (
        "__weakref__",
        "_backfill",
        "_backfilled",
        "_buffer",
        "_closed",
        "_ended",
        "_error",
        "_fifo_ready",
        "_keyed_ready",
        "_last_trade",
        "_loss_since",
        "_owner",
        "_recent",
        "_replay",
        "_topup",
        "_waiter_box",
        "codes",
        "component",
        "depth",
        "level",
        "requested",
        "sub_id",
        "type",
    )

    def __init__(
        self,
        owner: SubscriptionOwner,
        *,
        sub_id: SubId,
        component: str,
        type: DataType,
        requested: tuple[str, ...],
        codes: tuple[str, ...],
        depth: int | None,
        level: int | float | None,
        policy: OverflowPolicy,
        capacity: int | None,
        backfill: bool = False,
    ) -> None:
        self._owner = owner
        #: Trade backfill (issue #9): a reconnect gap is filled from REST before live trades.
        self._backfill = backfill
        # Backfilled items waiting to be handed out, before anything in the buffer.
        self._replay: deque[Any] = deque()
        # sequential_ids delivered lately (backfill only): a backfilled trade seen live before
        # the loss is not delivered twice, nor a live one after it that was backfilled.
        self._recent: deque[int] = deque(maxlen=_RECENT_IDS)
        # sequential_ids of the current gap's backfill, until seen live (cleared at the next
        # reconnect gap: a live trade it could match comes before that marker).
        self._backfilled: set[int] = set()
        # The trade_timestamp of the newest trade delivered per code: a backfill brings only
        # newer ones (its read starts a second early, before what the subscriber already had).
        self._last_trade: dict[str, int] = {}
        # A reconnect gap backfilled before live trades resumed (nothing after its marker
        # yet): its read may end before the first live trade, so it is read again then.
        self._topup: Gap | None = None
        self._buffer: DeliveryBuffer[M] = DeliveryBuffer(policy=policy, capacity=capacity)
        self._closed = False  # unsubscribed: stop at once
        self._ended = False  # the service shut down: stop once the buffer is empty
        self._error: BaseException | None = None
        # Consumers waiting for a push; the hot path only tests the list for emptiness.
        self._waiter_box: list[asyncio.Future[None]] = []
        self._loss_since: float | None = None
        # The buffer's container that __anext__ takes the next message from directly
        # (DeliveryBuffer.direct): set while nothing special comes first, None otherwise.
        self._fifo_ready: deque[M] | None = None
        self._keyed_ready: OrderedDict[Hashable, M] | None = None
        self._arm()
        self.sub_id = sub_id
        self.component = component
        self.type: DataType = type
        self.requested = requested
        self.codes = codes
        self.depth = depth
        self.level = level

    # -- public surface ----------------------------------------------------------------------

    @property
    def policy(self) -> OverflowPolicy:
        """Return the overflow policy of this subscription's buffer."""
        return self._buffer.policy

    @property
    def connection(self) -> ConnectionKind:
        """Return the connection that carries this subscription (public or private)."""
        return connection_of(self.type)

    @property
    def closed(self) -> bool:
        """Tell whether this subscription was closed (by :meth:`aclose` or a shutdown)."""
        return self._closed or self._ended

    @property
    def pending(self) -> int:
        """Return how many entries wait in the buffer (messages plus a pending gap marker)."""
        return len(self._buffer)

    def __repr__(self) -> str:
        codes = ",".join(self.requested) if len(self.requested) <= 4 else f"{len(self.codes)}"
        options = ""
        if self.type == "orderbook":
            options = f" depth={self.depth}" + (f" level={self.level:g}" if self.level else "")
        state = "closed" if self.closed else "open"
        return (
            f"<Subscription #{self.sub_id} {self.component}:{self.type} [{codes}]{options} "
            f"policy={self.policy} pending={len(self._buffer)} {state}>"
        )

    def __aiter__(self) -> Subscription[M]:
        return self

    async def __anext__(self) -> M:
        """Return the next data message (gap markers are skipped, see the module docs)."""
        # The hot path: a message waits with nothing in front of it, taken from the buffer's
        # container in C (no second coroutine, no Python call; see _arm).
        fifo = self._fifo_ready
        if fifo:
            return fifo.popleft()
        keyed = self._keyed_ready
        if keyed:
            return keyed.popitem(False)[1]
        return await self._next_message()

    async def _next_message(self) -> M:
        """Return the next data message the slow way (empty, closed, a gap first, backfill)."""
        while True:
            item = await self._next_item()
            if not isinstance(item, Gap):
                self._arm()
                return item

    def _arm(self) -> None:
        """Let __anext__ take messages straight from the buffer while nothing special is next.

        Disarmed (:meth:`_disarm`) wherever the buffer's answer may change (an overflow, a
        reconnect marker, close, failure) and armed again by the slow path once it handed a
        message out. Never for a backfilled subscription (each live trade is checked).
        """
        if self._closed or self._backfill:
            self._fifo_ready = self._keyed_ready = None
        else:
            self._fifo_ready, self._keyed_ready = self._buffer.direct()

    def _disarm(self) -> None:
        self._fifo_ready = self._keyed_ready = None

    def items(self) -> AsyncIterator[M | Gap]:
        """Iterate over data messages and the in-band :class:`Gap` markers, in order."""
        return self._items()

    async def _items(self) -> AsyncIterator[M | Gap]:
        while True:
            try:
                item = await self._next_item()
            except StopAsyncIteration:
                return
            yield item

    def batches(self, *, max_items: int = DEFAULT_BATCH) -> AsyncIterator[list[M]]:
        """Iterate over lists of up to ``max_items`` data messages, as they arrive.

        Each list holds what was waiting when the consumer asked (at least one message), so a
        slow consumer gets big batches and a fast one small ones. Gap markers are skipped (see
        the module docs); they are counted and published as events all the same.
        """
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise InvalidInputError(f"max_items must be an integer >= 1, not {max_items!r}")
        return self._batches(max_items)

    async def _batches(self, max_items: int) -> AsyncIterator[list[M]]:
        buffer = self._buffer
        while True:
            if not buffer:
                try:
                    await self._wait()
                except StopAsyncIteration:
                    return
                continue
            marked = buffer.markers
            raw = buffer.drain(max_items)
            # An overflow marker can only come first (nothing is pushed during a drain), but a
            # reconnect marker sits where the connection was lost: then look at every item.
            if self._backfill:
                raw = await self._backfilled_batch(raw)
            elif marked or isinstance(raw[0], Gap):
                for item in raw:
                    if isinstance(item, Gap):
                        self._gap(item)
                raw = [item for item in raw if not isinstance(item, Gap)]
            if raw:
                yield cast(list[M], raw)

    async def _backfilled_batch(self, raw: list[Any]) -> list[Any]:
        """Replace reconnect gaps in ``raw`` by their backfill, drop duplicates and gaps."""
        out: list[Any] = list(self._replay)
        self._replay.clear()
        last = len(raw) - 1
        for index, item in enumerate(raw):
            if isinstance(item, Gap):
                if item.reason == "reconnect":
                    resumed = index < last or bool(self._buffer)
                    filled = await self._fill_reconnect(item, resumed=resumed)
                    out.extend(i for i in filled if not isinstance(i, Gap))
                else:
                    self._gap(item)
                continue
            if self._topup is not None:
                out.extend(await self._fill_topup())
            if not self._seen(item):
                out.append(item)
        return out

    async def update(self, codes: Iterable[str]) -> None:
        """Replace this subscription's codes (type and options stay); wildcards allowed.

        The codes are normalised and checked against the market list first (an unknown code
        raises :class:`~upbit_ws.UnknownCodeError` and changes nothing); the merged request
        then goes out within the coalescing window, paced by the rate limiter. Messages of the
        old codes still waiting in the buffer are not delivered after this returns.
        """
        if self.closed:
            raise InvalidInputError(f"{self!r} is closed; subscribe again instead")
        with log_context(component=self.component):
            await self._owner.update_subscription(self, codes)

    async def aclose(self) -> None:
        """Unsubscribe; waiting messages are discarded and iteration ends. Idempotent."""
        if self._closed:
            return
        with log_context(component=self.component):
            self._owner.close_subscription(self)

    async def __aenter__(self) -> Subscription[M]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def statistics(self) -> SubscriptionStatistics:
        """Return a snapshot of this subscription's buffer counters."""
        stats: BufferStatistics = self._buffer.statistics()
        return SubscriptionStatistics(
            sub_id=int(self.sub_id),
            component=self.component,
            type=self.type,
            connection=self.connection,
            codes=len(self.codes),
            policy=stats.policy,
            capacity=stats.capacity,
            depth=stats.depth,
            high_water=stats.high_water,
            pushed=stats.pushed,
            delivered=stats.delivered,
            dropped=stats.dropped,
            conflated=stats.conflated,
            gaps=stats.gaps,
            overflows=stats.overflows,
            closed=self.closed,
        )

    # -- the reader side (hot path) ----------------------------------------------------------

    def _push(self, message: M, key: object) -> None:
        """Buffer ``message`` for market ``key`` and wake the consumer; never blocks."""
        if self._buffer.push(message, key):
            self._overflowed()
        box = self._waiter_box
        if box:
            waiter = box.pop()
            if not waiter.done():
                waiter.set_result(None)

    def _push_many(self, messages: list[M], newest: dict[str, M]) -> None:
        """Buffer a socket read's ``messages`` (``newest``: each market's last one), wake once.

        The router's bulk path: one C-level extend when the buffer takes them all without a
        loss (:meth:`DeliveryBuffer.extend`), else :meth:`_push`'s work for each in order.
        """
        buffer = self._buffer
        if not buffer.extend(messages, newest):
            push = buffer.push
            for message in messages:
                if push(message, message.code):
                    self._overflowed()
        box = self._waiter_box
        if box:
            waiter = box.pop()
            if not waiter.done():
                waiter.set_result(None)

    def _overflowed(self) -> None:
        """Report the start of an overflow episode (the rare branch of :meth:`_push`)."""
        self._disarm()  # a gap marker now comes first, or a never_drop episode began
        at = self._owner.overflowed(self)
        if self._buffer.policy != "never_drop" and self._loss_since is None:
            self._loss_since = at  # the gap the consumer reaches next starts here

    # -- service side ------------------------------------------------------------------------

    def _set_codes(self, requested: tuple[str, ...], codes: tuple[str, ...]) -> int:
        """Record new codes and drop buffered messages of codes no longer wanted.

        Returns how many were dropped (counted as ``dropped``, without a gap marker: the
        consumer asked for them to go). ``myOrder`` without codes means every market
        (docs/protocol.md section 2.2), so it keeps everything; for public types no codes
        (a wildcard that matches nothing) keeps nothing.
        """
        old = self.codes
        self.requested = requested
        self.codes = codes
        if codes == old or not self._buffer:
            return 0
        if not codes and self.type in PRIVATE_TYPES:
            return 0
        wanted = frozenset(codes)
        return self._buffer.discard(lambda message: message.code in wanted)

    def _mark_closed(self) -> int:
        """End iteration at once and discard what waits; return how many were discarded."""
        self._closed = True
        self._disarm()
        gone = self._buffer.clear()
        self._wake()
        return gone

    def _mark_reconnect_gap(self, since: float | None) -> None:
        """Place a reconnect :class:`Gap` marker in band (see ``DeliveryBuffer.mark_gap``)."""
        if not self._closed and self._buffer.mark_gap(since):
            self._disarm()
            self._wake()

    def _mark_ended(self) -> None:
        """End iteration once the buffer is drained (manager shutdown)."""
        self._ended = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        """End iteration by raising ``error`` (e.g. a code found unknown after start)."""
        self._error = error
        self._closed = True
        self._disarm()
        self._buffer.clear()
        self._wake()

    def _wake(self) -> None:
        box = self._waiter_box
        while box:
            waiter = box.pop()
            if not waiter.done():
                waiter.set_result(None)

    # -- consumer internals ------------------------------------------------------------------

    async def _next_item(self) -> M | Gap:
        buffer = self._buffer
        while True:
            if self._closed:
                self._raise_end()
            if self._replay:
                return cast(M | Gap, self._replay.popleft())
            if buffer:
                item = buffer.pop()
                if isinstance(item, Gap):
                    if self._backfill and item.reason == "reconnect":
                        filled = await self._fill_reconnect(item, resumed=bool(buffer))
                        self._replay.extend(filled)
                        continue
                    self._gap(item)
                elif self._backfill:
                    if self._topup is not None:
                        self._replay.extend(await self._fill_topup())
                        if not self._seen(item):
                            self._replay.append(item)
                        continue
                    if self._seen(item):
                        continue
                return item
            await self._wait()

    async def _fill_reconnect(self, gap: Gap, *, resumed: bool) -> list[Any]:
        """Return the backfill of reconnect ``gap``; ``resumed``: something came after it.

        Upbit starts a subscription 150-650 ms after the request (docs/protocol.md section
        1.3), so a read made before live trades resumed can end before the first of them:
        the gap is then kept in ``_topup`` and read again at the first live item. A gap that
        comes while one is kept is merged into it (the earlier start).
        """
        pending = self._topup
        if pending is None:
            self._backfilled.clear()
        elif pending.since is not None and (gap.since is None or pending.since < gap.since):
            gap = replace(gap, since=pending.since)
        self._topup = None if resumed else gap
        return await self._filled(gap)

    async def _fill_topup(self) -> list[Any]:
        """Read a kept gap again now that live trades resumed: what the first read missed."""
        gap, self._topup = self._topup, None
        assert gap is not None
        # The first read already put the gap in band if it could not reach back.
        return [i for i in await self._filled(gap) if not isinstance(i, Gap)]

    async def _filled(self, gap: Gap) -> list[Any]:
        """Return the backfill of reconnect ``gap``, minus trades already delivered.

        Only trades newer than the newest one delivered for their code: the read reaches a
        second before the gap (clock skew), and what came before the subscriber's last trade
        was either delivered or never its to have.
        """
        delivered = set(self._recent)
        last_trade = self._last_trade
        out: list[Any] = []
        for item in await self._owner.backfill(self, gap):
            if isinstance(item, Gap):
                out.append(item)
                continue
            seq = item.sequential_id
            if seq in delivered or seq in self._backfilled:
                continue
            stamp = item.trade_timestamp
            if stamp < last_trade.get(item.code, 0):
                continue
            last_trade[item.code] = stamp  # the backfill comes oldest first
            self._backfilled.add(seq)
            self._recent.append(seq)
            out.append(item)
        return out

    def _seen(self, item: Any) -> bool:
        """Tell whether live trade ``item`` was delivered already (backfilled); note it."""
        seq = item.sequential_id
        backfilled = self._backfilled
        if backfilled and seq in backfilled:
            backfilled.discard(seq)
            return True
        self._recent.append(seq)
        if item.trade_timestamp > self._last_trade.get(item.code, 0):
            self._last_trade[item.code] = item.trade_timestamp
        return False

    async def _wait(self) -> None:
        """Wait for the next push; raise StopAsyncIteration (or the error) when it is over."""
        if self._closed:
            self._raise_end()
        if self._ended and not self._buffer:
            raise StopAsyncIteration
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter_box.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiter_box:
                self._waiter_box.remove(waiter)

    def _raise_end(self) -> None:
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration

    def _gap(self, gap: Gap) -> None:
        if not gap.dropped:
            return  # a reconnect marker: its GapEvent went out when the connection came back
        since = self._loss_since
        self._loss_since = None
        self._owner.gap_reached(self, gap, since if since is not None else 0.0)


#: A function the router calls for every message a subscription receives.
PushFn = Callable[[Any, object], None]
