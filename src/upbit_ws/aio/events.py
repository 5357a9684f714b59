"""The event hub: typed system events fanned out to any number of bounded subscriber streams.

Connections publish state changes, the key-health loop publishes key problems, the
subscription layer publishes rejections and gaps; UIs and logs read them with
``manager.events()``. Publishing is synchronous and never blocks or awaits, so it is safe on
the socket reader: each subscriber has its own bounded queue, and when a slow reader lets it
fill up the *oldest* event is dropped and counted (a UI wants the latest state, and a stuck
dashboard must never hold the library back). A stream ends when the hub closes, after the
events already queued have been read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Final

import msgspec

from upbit_ws.aio.clock import Clock, LoopClock
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.events import Event

__all__ = ["DEFAULT_EVENT_QUEUE", "EventHub", "EventHubStatistics", "EventStream"]

#: Events kept per subscriber before the oldest is dropped.
DEFAULT_EVENT_QUEUE: Final = 1024


@dataclass(frozen=True, slots=True)
class EventHubStatistics:
    """A snapshot of the hub: events published, live subscribers, events dropped in total."""

    published: int
    subscribers: int
    dropped: int


class EventStream:
    """One subscriber's view of the hub: ``async for event in stream``.

    Created by :meth:`EventHub.subscribe`; events published after that call are queued even
    before the first iteration. :meth:`aclose` (or leaving ``async with``) unsubscribes.

    A stream has one reader: each event is delivered once per stream, so for two readers call
    ``events()`` twice. A second task that waits on a stream another task already waits on
    raises :class:`~upbit_ws.InvalidInputError` at once rather than hang.
    """

    __slots__ = ("_closed", "_hub", "_queue", "_waiter", "dropped", "maxsize")

    def __init__(self, hub: EventHub, maxsize: int) -> None:
        self._hub = hub
        self._queue: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.maxsize = maxsize
        #: Events dropped because this stream's queue was full.
        self.dropped = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<EventStream {state} queued={len(self._queue)} dropped={self.dropped}>"

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            if self._waiter is not None:
                raise InvalidInputError(
                    "another task is already reading this event stream; an EventStream has one "
                    "reader: call events() once per reader"
                )
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def queued(self) -> int:
        """Return how many events wait to be read."""
        return len(self._queue)

    def get_nowait(self) -> Event | None:
        """Return the oldest queued event, or None when none is queued."""
        return self._queue.popleft() if self._queue else None

    async def aclose(self) -> None:
        """Unsubscribe; events already queued can still be read, then iteration ends."""
        self._finish()
        self._hub._discard(self)

    def _push(self, event: Event) -> None:
        if self._closed:
            return
        queue = self._queue
        if len(queue) >= self.maxsize:
            queue.popleft()
            self.dropped += 1
            self._hub._dropped += 1
        queue.append(event)
        self._wake()

    def _finish(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class EventHub:
    """Fan typed events out to bounded subscriber streams; see the module docs."""

    __slots__ = ("_clock", "_closed", "_dropped", "_published", "_streams", "queue_size")

    def __init__(
        self, *, queue_size: int = DEFAULT_EVENT_QUEUE, clock: Clock | None = None
    ) -> None:
        _check_size(queue_size)
        self.queue_size = queue_size
        self._clock: Clock = clock or LoopClock()
        self._streams: list[EventStream] = []
        self._published = 0
        self._dropped = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<EventHub subscribers={len(self._streams)} published={self._published}>"

    @property
    def closed(self) -> bool:
        """Tell whether :meth:`close` was called."""
        return self._closed

    def publish(self, event: Event) -> None:
        """Queue ``event`` for every subscriber; never blocks (full queues drop their oldest)."""
        if self._closed:
            return
        self._published += 1
        if event.at_wall is None:
            # The wall-clock instant of ``at``: the event may have waited a moment since.
            clock = self._clock
            wall = clock.wall() - (clock.now() - event.at)
            event = msgspec.structs.replace(event, at_wall=wall)
        for stream in self._streams:
            stream._push(event)

    def subscribe(self, *, queue_size: int | None = None) -> EventStream:
        """Return a new stream of every event published from now on.

        ``queue_size`` bounds this stream's queue (default: the hub's). Subscribing to a closed
        hub returns a stream that ends at once.
        """
        size = self.queue_size if queue_size is None else queue_size
        _check_size(size)
        stream = EventStream(self, size)
        if self._closed:
            stream._finish()
        else:
            self._streams.append(stream)
        return stream

    def close(self) -> None:
        """End every stream (after its queued events) and refuse new events."""
        self._closed = True
        streams, self._streams = self._streams, []
        for stream in streams:
            stream._finish()

    def statistics(self) -> EventHubStatistics:
        """Return how many events were published and dropped, and how many streams listen."""
        return EventHubStatistics(self._published, len(self._streams), self._dropped)

    def _discard(self, stream: EventStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)


def _check_size(size: object) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidInputError(f"queue_size must be a whole number >= 1, got {size!r}")
