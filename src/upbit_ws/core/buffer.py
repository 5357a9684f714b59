"""Bounded delivery buffers with named overflow policies.

Each subscription gets its own buffer between the socket reader and its consumer, so a slow
consumer never blocks the reader or other consumers and memory stays bounded. The buffer is
pure (no asyncio): the shell wraps it with an ``asyncio.Event`` that it sets after a push.

Policies (the names are public API):

``latest``
    Conflate: keep only the newest message per key (the market code). A new message for a key
    already waiting replaces it *in place*, so the key keeps its turn and a code that updates
    constantly cannot starve the others. Replacements are counted as ``conflated`` and are not
    a loss: every ticker frame and every orderbook frame (a whole top-N book, section 4.3)
    supersedes the previous one. Default for ``ticker`` and ``orderbook``.
``drop_oldest``
    A bounded FIFO. When full, the oldest message is dropped and counted; the consumer then
    gets one :class:`Gap` carrying the number dropped before the next message. Default for
    ``trade`` and ``candle.*`` (a trade gap can be backfilled from ``/v1/trades/ticks``).
``never_drop``
    For ``myOrder`` and ``myAsset``: losing an order event is data loss, so this buffer never
    drops anything and never blocks the reader. Its bound (:data:`DEFAULT_CAPACITY`) is a soft
    one: a push beyond it is kept, and the buffer grows. Growing past the bound is an
    *overflow episode* (the consumer is too slow), made loud rather than silent: the first
    push of each episode returns ``True``, :attr:`BufferStatistics.overflows` counts the
    episodes and :attr:`BufferStatistics.high_water` shows how far it grew. The episode ends
    once the consumer brings the depth back within the bound. No :class:`Gap` marks it,
    because nothing was lost; the shell turns the signal into a log line, a counter and a
    :class:`~upbit_ws.core.events.BufferOverflowed` event, which is where a REST
    reconciliation (``/v1/orders/open``, ``/v1/accounts``) can hook in.

``latest`` buffers also evict the oldest waiting key when more distinct keys are waiting than
the bound allows; that is a real loss, counted as ``dropped`` and signalled by a :class:`Gap`.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Final, Generic, Literal, TypeVar, cast

from upbit_ws.core.constants import DataType
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.events import GapReason

__all__ = [
    "DEFAULT_CAPACITY",
    "OVERFLOW_POLICIES",
    "BufferStatistics",
    "DeliveryBuffer",
    "Gap",
    "OverflowPolicy",
    "default_policy",
]

T = TypeVar("T")

OverflowPolicy = Literal["latest", "drop_oldest", "never_drop"]
OVERFLOW_POLICIES: Final[tuple[OverflowPolicy, ...]] = ("latest", "drop_oldest", "never_drop")

#: Default bound per policy: distinct keys for ``latest`` (Upbit lists a few hundred markets),
#: messages for the others. ``never_drop``'s is large and soft: past it the buffer still keeps
#: everything, and reports an overflow episode.
DEFAULT_CAPACITY: Final[dict[OverflowPolicy, int]] = {
    "latest": 1024,
    "drop_oldest": 1024,
    "never_drop": 16384,
}


def default_policy(type: DataType) -> OverflowPolicy:
    """Return the default overflow policy for a data type.

    ``ticker`` and ``orderbook`` conflate (each frame supersedes the last), ``trade`` and
    candles drop the oldest with a counted gap, ``myOrder`` and ``myAsset`` never drop.
    """
    if type in ("ticker", "orderbook"):
        return "latest"
    if type in ("myOrder", "myAsset"):
        return "never_drop"
    return "drop_oldest"


@dataclass(frozen=True, slots=True)
class Gap:
    """The delivery gap marker: messages were lost before the next one.

    ``reason`` ``overflow``: the buffer dropped ``dropped`` messages (only ``latest`` and
    ``drop_oldest`` buffers lose messages). ``reconnect``: the connection was down, so the
    server's events between ``since`` (the receive time of the last frame before the loss)
    and the marker are unknown (``dropped`` is 0: the count is unknown); it is placed in
    order, after the messages received before the loss and before those after it.
    """

    dropped: int
    policy: OverflowPolicy
    reason: GapReason = "overflow"
    since: float | None = None


@dataclass(frozen=True, slots=True)
class BufferStatistics:
    """A snapshot of one buffer.

    ``pushed == delivered + dropped + conflated + depth`` always holds; ``gaps`` counts the
    :class:`Gap` markers handed out and ``overflows`` the episodes in which a ``never_drop``
    buffer grew past its bound (it keeps everything: ``dropped`` stays 0 for it, and
    ``depth`` and ``high_water`` may exceed ``capacity``).
    """

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


class DeliveryBuffer(Generic[T]):
    """A bounded buffer of messages for one consumer, with a named overflow policy.

    ``push`` never blocks and never raises for a full buffer; ``pop`` returns the next message
    or a :class:`Gap` that says how many were lost just before it. A ``never_drop`` buffer's
    bound is soft (see the module docs).
    """

    __slots__ = (
        "_capacity",
        "_carried",
        "_conflated",
        "_dropped",
        "_entered",
        "_fifo",
        "_gaps",
        "_high_water",
        "_keyed",
        "_latest",
        "_markers",
        "_never_drop",
        "_over",
        "_overflows",
        "_pending_gap",
        "_policy",
    )

    def __init__(self, *, policy: OverflowPolicy, capacity: int | None = None) -> None:
        if policy not in OVERFLOW_POLICIES:
            raise InvalidInputError(
                f"unknown overflow policy {policy!r}; use one of {', '.join(OVERFLOW_POLICIES)}"
            )
        if capacity is None:
            capacity = DEFAULT_CAPACITY[policy]
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidInputError(f"buffer capacity must be an integer >= 1, not {capacity!r}")
        self._policy: OverflowPolicy = policy
        self._latest = policy == "latest"
        self._never_drop = policy == "never_drop"
        # Inside a never_drop overflow episode (depth above the bound since it began).
        self._over = False
        self._capacity = capacity
        # Messages, and reconnect Gap markers in their place in the order (mark_gap).
        self._fifo: deque[T | Gap] = deque()
        self._markers = 0
        # A reconnect marker pushed out of the front by an overflow: the overflow gap that
        # replaces it carries its reason and start.
        self._carried: Gap | None = None
        self._keyed: OrderedDict[Hashable, T] = OrderedDict()
        self._pending_gap = 0
        # Counted where the depth rises (push, extend), so that taking a message (pop, drain,
        # or a consumer taking it straight from the container, see direct()) counts nothing.
        # ``_entered`` counts the messages that took a place of their own (a FIFO append, a
        # new ``latest`` key), each of which leaves by delivery or as ``dropped`` (evicted,
        # discarded, cleared): ``delivered`` is entered - dropped - depth, and ``pushed`` is
        # entered + conflated (statistics()).
        self._high_water = 0
        self._entered = 0
        self._dropped = 0
        self._conflated = 0
        self._gaps = 0
        self._overflows = 0

    @property
    def policy(self) -> OverflowPolicy:
        """Return the overflow policy of this buffer."""
        return self._policy

    @property
    def capacity(self) -> int:
        """Return the bound: distinct keys for ``latest``, messages otherwise."""
        return self._capacity

    def push(self, item: T, key: Hashable = None) -> bool:
        """Add ``item`` (for market ``key``); return whether the buffer overflowed.

        ``True`` means an undelivered message was lost (``latest``, ``drop_oldest``), or, for
        ``never_drop``, that this push began an overflow episode: the buffer kept the item
        and grew past its bound (once per episode; see the module docs). ``key`` matters only
        to ``latest``, which keeps the newest item per key.
        """
        if not self._latest:
            fifo = self._fifo
            self._entered += 1
            depth = len(fifo) - self._markers
            if depth < self._capacity:
                fifo.append(item)  # the common case: room in the FIFO
                if depth >= self._high_water:
                    self._high_water = depth + 1
                return False
            if self._never_drop:
                fifo.append(item)
                return self._grew(depth + 1)
            while isinstance(oldest := fifo.popleft(), Gap):
                self._markers -= 1
                self._carried = oldest
            fifo.append(item)
        else:
            keyed = self._keyed
            before = len(keyed)
            # Assigning to a present key replaces the value in place: the key keeps its turn,
            # so a code that updates constantly cannot starve the others.
            keyed[key] = item
            if len(keyed) == before:
                self._conflated += 1
                return False
            self._entered += 1
            if before < self._capacity:
                if before >= self._high_water:
                    self._high_water = before + 1
                return False
            # The new key went to the end, so the first one is the oldest waiting key.
            keyed.popitem(last=False)
        self._dropped += 1
        self._pending_gap += 1
        return True

    def extend(self, items: Sequence[T], newest: Mapping[Any, T]) -> bool:
        """Add ``items`` in one step when nothing is lost; ``newest``: each key's last item.

        ``newest`` maps the market of every item to the last of its items, in the order of
        each market's first item (``dict(zip(keys, items))``). The socket reader's bulk path:
        when the items fit within the bound as they are (a FIFO with room for all of them, a
        ``latest`` buffer with room for that many new keys), they go in by one C-level call
        (a FIFO takes ``items``, a ``latest`` buffer ``newest``, which leaves the keys, their
        turns and their values as one push per item would) and ``True`` is returned, with
        every counter exactly as ``len(items)`` calls of :meth:`push` would leave it
        (``latest``: items whose key already waits, or comes again, are counted as
        ``conflated``). Otherwise nothing is added and ``False`` says to push them one at a
        time, which applies the overflow policy.
        """
        n = len(items)
        if self._latest:
            keyed = self._keyed
            before = len(keyed)
            if before + n > self._capacity:
                return False  # might have to evict: the per-item path decides which
            keyed.update(newest)
            depth = len(keyed)
            self._entered += depth - before
            self._conflated += n - (depth - before)
        else:
            fifo = self._fifo
            depth = len(fifo) - self._markers + n
            if depth > self._capacity:
                return False
            fifo.extend(items)
            self._entered += n
        if depth > self._high_water:
            self._high_water = depth
        return True

    @property
    def markers(self) -> int:
        """Return how many reconnect gap markers wait among the messages."""
        return self._markers

    def mark_gap(self, since: float | None) -> bool:
        """Place a reconnect :class:`Gap` marker after the messages waiting now; return if placed.

        For a connection loss: the consumer reaches the marker after every message received
        before the loss and before any received after it. ``since`` is the receive time of
        the last frame before the loss. A ``latest`` buffer places none (it keeps the newest
        message per code, and the snapshot sent after the resubscription supersedes what was
        lost); it returns ``False``.
        """
        if self._latest:
            return False
        self._fifo.append(Gap(0, self._policy, reason="reconnect", since=since))
        self._markers += 1
        return True

    def _grew(self, depth: int) -> bool:
        """Note a never_drop buffer holding ``depth`` > capacity; True if an episode began."""
        if depth > self._high_water:
            self._high_water = depth
        if self._over:
            return False
        self._over = True
        self._overflows += 1
        return True

    def _shrank(self) -> None:
        """End the overflow episode once the depth is back within the bound."""
        if self._over and len(self._fifo) - self._markers <= self._capacity:
            self._over = False

    def direct(self) -> tuple[deque[T] | None, OrderedDict[Hashable, T] | None]:
        """Return the container a consumer may take the next messages from, while it may.

        The fast path of a consumer taking one message at a time, without a Python call per
        message: ``(fifo, None)`` for ``drop_oldest`` and ``never_drop``, whose next message
        is ``fifo.popleft()``, ``(None, keyed)`` for ``latest``, whose next message is
        ``keyed.popitem(False)[1]``, each while it is not empty. Taking a message there
        leaves every counter as :meth:`pop` would (``delivered`` is derived, see
        :meth:`statistics`). ``(None, None)`` when something special comes first: a gap
        marker is pending or waits among the messages, or a ``never_drop`` overflow episode
        is under way (its end is noted by :meth:`pop`); then :meth:`pop` says what is next.

        The answer holds until a :meth:`push` returns ``True`` (a loss, or an episode began),
        :meth:`mark_gap` places a marker or :meth:`clear` runs; ask again after those.
        """
        if self._pending_gap or self._markers or self._over:
            return None, None
        if self._latest:
            return None, self._keyed
        # No marker waits, so every entry is a message.
        return cast("deque[T]", self._fifo), None

    def pop(self) -> T | Gap:
        """Return the next message, or a :class:`Gap` first if messages were lost before it.

        A gap is always followed by a message eventually; two gaps are adjacent only when the
        message waiting behind the first was itself dropped before it was popped.

        Raises :class:`IndexError` when the buffer is empty (check ``len()`` or truth first).
        """
        if self._pending_gap:
            carried = self._carried
            if carried is not None:
                self._carried = None
                gap = Gap(self._pending_gap, self._policy, reason="reconnect", since=carried.since)
            else:
                gap = Gap(self._pending_gap, self._policy)
            self._pending_gap = 0
            self._gaps += 1
            return gap
        try:
            item = self._keyed.popitem(last=False)[1] if self._latest else self._fifo.popleft()
        except (KeyError, IndexError):
            raise IndexError("pop from an empty delivery buffer") from None
        if self._markers and isinstance(item, Gap):
            self._markers -= 1
            self._gaps += 1
            return item
        if self._over:
            self._shrank()
        return cast(T, item)

    def drain(self, max_items: int) -> list[T | Gap]:
        """Pop up to ``max_items`` entries (messages and gap markers) in delivery order."""
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise InvalidInputError(f"max_items must be an integer >= 1, not {max_items!r}")
        if self._pending_gap or self._markers or self._over:
            out: list[T | Gap] = []
            while len(out) < max_items and self:
                out.append(self.pop())
            return out
        # Only messages wait: take them in bulk.
        if self._latest:
            keyed = self._keyed
            if len(keyed) <= max_items:
                out = list(keyed.values())
                keyed.clear()
            else:
                popitem = keyed.popitem
                out = [popitem(last=False)[1] for _ in range(max_items)]
        else:
            fifo = self._fifo
            if len(fifo) <= max_items:
                out = list(fifo)
                fifo.clear()
            else:
                # popleft() max_items times, in C (no Python frame per message).
                out = list(map(deque.popleft, repeat(fifo, max_items)))
        return out

    def discard(self, keep: Callable[[T], bool]) -> int:
        """Drop every waiting message for which ``keep`` is false; return how many.

        For a consumer that stopped wanting some of its messages (a subscription's codes
        changed): they are counted as ``dropped`` but no :class:`Gap` marks them, because the
        consumer asked for them to go. Order and a pending gap marker stay as they were.
        """
        gone = 0
        if self._latest:
            keyed = self._keyed
            for key in [k for k, item in keyed.items() if not keep(item)]:
                del keyed[key]
                gone += 1
        else:
            fifo = self._fifo
            kept = [item for item in fifo if isinstance(item, Gap) or keep(item)]
            gone = len(fifo) - len(kept)
            if gone:
                fifo.clear()
                fifo.extend(kept)
        self._dropped += gone
        self._shrank()
        return gone

    def clear(self) -> int:
        """Discard every waiting message (on unsubscribe); return how many, counted as dropped."""
        gone = len(self._keyed) + len(self._fifo)
        self._keyed.clear()
        gone -= self._markers
        self._fifo.clear()
        self._markers = 0
        self._carried = None
        self._pending_gap = 0
        self._dropped += gone
        self._over = False
        return gone

    def __len__(self) -> int:
        """Return how many entries ``pop`` will give: messages plus a pending gap marker."""
        return len(self._keyed) + len(self._fifo) + (1 if self._pending_gap else 0)

    def __bool__(self) -> bool:
        return bool(self._keyed or self._fifo or self._pending_gap)

    def statistics(self) -> BufferStatistics:
        """Return a snapshot of depth, high-water mark and the drop and conflation counters."""
        depth = len(self._keyed) + len(self._fifo) - self._markers
        return BufferStatistics(
            policy=self._policy,
            capacity=self._capacity,
            depth=depth,
            high_water=self._high_water,
            pushed=self._entered + self._conflated,
            delivered=self._entered - self._dropped - depth,
            dropped=self._dropped,
            conflated=self._conflated,
            gaps=self._gaps,
            overflows=self._overflows,
        )

    def __repr__(self) -> str:
        return (
            f"<DeliveryBuffer policy={self._policy} depth={len(self._keyed) + len(self._fifo)}"
            f"/{self._capacity} dropped={self._dropped} conflated={self._conflated}>"
        )
