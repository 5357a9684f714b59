"""Blocking views of a subscription and of the event stream.

:class:`Subscription` wraps one :class:`upbit_ws.Subscription` living on the facade's loop;
:class:`EventStream` wraps one ``ws.events()`` stream. Both hand items over through a
:class:`~upbit_ws.sync.handoff.Handoff`: nothing is read ahead, so the subscription's bounded
buffer and its overflow policy (``latest``, ``drop_oldest``, ``never_drop``) work exactly as
for an async consumer. Exceptions raised on the loop (``UnknownCodeError`` from ``update()``,
an error that ended the subscription) are raised in the caller's thread with their type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Generic, TypeVar

from upbit_ws.aio.events import EventStream as AioEventStream
from upbit_ws.aio.stream import DEFAULT_BATCH, SubscriptionStatistics
from upbit_ws.aio.stream import Subscription as AioSubscription
from upbit_ws.core.buffer import Gap, OverflowPolicy
from upbit_ws.core.constants import check_timeout
from upbit_ws.core.errors import InvalidInputError, UpbitWsError
from upbit_ws.core.events import Event
from upbit_ws.core.messages import DataMessage
from upbit_ws.sync.handoff import Ended, Handoff
from upbit_ws.sync.loop import LoopThread

__all__ = ["EndOfStream", "EventStream", "Subscription"]

M = TypeVar("M", bound=DataMessage)


class EndOfStream(UpbitWsError):
    """``get()`` found the stream over: the subscription was closed or the manager shut down."""


class Subscription(Generic[M]):
    """A blocking subscription: ``for msg in sub``, ``sub.get(timeout=1.0)``.

    Made by ``ws.component(name).subscribe(...)`` of :class:`upbit_ws.sync.WebSocketManager`.
    One thread should read it at a time; the methods themselves are thread-safe.
    """

    __slots__ = ("__weakref__", "_aio", "_batches", "_handoff", "_items", "_runner")

    def __init__(self, runner: LoopThread, aio: AioSubscription[M]) -> None:
        self._runner = runner
        self._aio = aio
        self._handoff = Handoff(runner, name=f"sub-{aio.sub_id}")
        self._items: AsyncIterator[M | Gap] | None = None
        self._batches: dict[int, AsyncIterator[list[M]]] = {}

    def __repr__(self) -> str:
        return repr(self._aio).replace("<Subscription", "<sync.Subscription", 1)

    @property
    def aio(self) -> AioSubscription[M]:
        """Return the asyncio subscription underneath (touch it only on the manager's loop)."""
        return self._aio

    @property
    def sub_id(self) -> int:
        """Return the subscription's id."""
        return int(self._aio.sub_id)

    @property
    def component(self) -> str:
        """Return the name of the component holding this subscription."""
        return self._aio.component

    @property
    def type(self) -> str:
        """Return the data type (``ticker``, ``orderbook``...)."""
        return self._aio.type

    @property
    def codes(self) -> tuple[str, ...]:
        """Return the resolved market codes (wildcards expanded)."""
        return self._aio.codes

    @property
    def requested(self) -> tuple[str, ...]:
        """Return the codes as the caller asked for them."""
        return self._aio.requested

    @property
    def policy(self) -> OverflowPolicy:
        """Return the overflow policy of the subscription's buffer."""
        return self._aio.policy

    @property
    def closed(self) -> bool:
        """Tell whether the subscription was closed (by :meth:`close` or a shutdown)."""
        return self._aio.closed

    # --- reading ----------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> M:
        """Return the next data message, waiting at most ``timeout`` seconds (None: for ever).

        Raises ``TimeoutError`` when nothing came in time, :class:`EndOfStream` once the
        subscription is closed (or the manager shut down and the buffer is read), and the
        error that ended it, if one did.
        """
        item = self._handoff.take(self._aio.__anext__, timeout)
        if isinstance(item, Ended):
            raise EndOfStream(f"{self!r} has ended")
        return item

    def __iter__(self) -> Iterator[M]:
        return self

    def __next__(self) -> M:
        item = self._handoff.take(self._aio.__anext__, None)
        if isinstance(item, Ended):
            raise StopIteration
        return item

    def get_item(self, timeout: float | None = None) -> M | Gap:
        """Like :meth:`get`, but also return the in-band :class:`~upbit_ws.Gap` markers."""
        item = self._handoff.take(self._next_item, timeout)
        if isinstance(item, Ended):
            raise EndOfStream(f"{self!r} has ended")
        return item

    async def _next_item(self) -> M | Gap:
        if self._items is None:
            self._items = self._aio.items()
        return await anext(self._items)

    def get_batch(self, *, max_items: int = DEFAULT_BATCH, timeout: float | None = None) -> list[M]:
        """Return the messages waiting now (1 to ``max_items``), waiting for the first.

        The fast way to read a busy stream: one hand-off per batch instead of per message.
        """
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise InvalidInputError(f"max_items must be an integer >= 1, not {max_items!r}")

        async def next_batch() -> list[M]:
            batches = self._batches.get(max_items)
            if batches is None:
                batches = self._batches[max_items] = self._aio.batches(max_items=max_items)
            return await anext(batches)

        item = self._handoff.take(next_batch, timeout)
        if isinstance(item, Ended):
            raise EndOfStream(f"{self!r} has ended")
        return item

    def batches(self, *, max_items: int = DEFAULT_BATCH) -> Iterator[list[M]]:
        """Iterate over batches of waiting messages (see :meth:`get_batch`) until the end."""
        while True:
            try:
                yield self.get_batch(max_items=max_items)
            except EndOfStream:
                return

    # --- changing -------------------------------------------------------------------------

    def update(self, codes: Iterable[str]) -> None:
        """Replace the codes (one merged request goes out); see ``Subscription.update``."""
        self._runner.run(self._aio.update(list(codes)))

    def close(self) -> None:
        """Unsubscribe; waiting messages are discarded and iteration ends. Idempotent."""
        if self._aio.closed or not self._runner.running:
            return
        self._runner.run(self._aio.aclose())

    def __enter__(self) -> Subscription[M]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def statistics(self) -> SubscriptionStatistics:
        """Return a snapshot of the subscription's buffer counters."""
        if not self._runner.running:
            return self._aio.statistics()
        return self._runner.call(self._aio.statistics)


class EventStream:
    """A blocking stream of system events: ``for event in ws.events(timeout=5): ...``.

    ``timeout`` (seconds) ends the iteration after that long without an event; None waits
    for ever (until the manager closes). :meth:`get` raises ``TimeoutError`` instead.
    """

    __slots__ = ("_aio", "_handoff", "_runner", "timeout")

    def __init__(self, runner: LoopThread, aio: AioEventStream, timeout: float | None) -> None:
        self._runner = runner
        self._aio = aio
        self._handoff = Handoff(runner, name="events")
        self.timeout = check_timeout(timeout)

    def __repr__(self) -> str:
        return repr(self._aio).replace("<EventStream", "<sync.EventStream", 1)

    def get(self, timeout: float | None = None) -> Event:
        """Return the next event, waiting at most ``timeout`` seconds (None: for ever).

        Raises ``TimeoutError`` when none came and :class:`EndOfStream` when the stream is over.
        """
        item = self._handoff.take(self._aio.__anext__, timeout)
        if isinstance(item, Ended):
            raise EndOfStream("the event stream has ended")
        return item

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        try:
            item = self._handoff.take(self._aio.__anext__, self.timeout)
        except TimeoutError:
            raise StopIteration from None
        if isinstance(item, Ended):
            raise StopIteration
        return item

    def close(self) -> None:
        """Unsubscribe; events already queued can still be read, then iteration ends."""
        if self._runner.running:
            self._runner.run(self._aio.aclose())

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
