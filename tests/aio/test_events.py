"""The event hub: fan-out to bounded subscriber streams, drop-oldest counted, clean ends."""

from __future__ import annotations

import asyncio

import pytest

from upbit_ws.aio.events import EventHub, EventStream
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.events import ConnectionStateChanged, Event, KeyRecovered


def change(n: int) -> ConnectionStateChanged:
    """Return a distinct state-change event numbered ``n``."""
    return ConnectionStateChanged(
        at=float(n),
        at_wall=1e9 + n,
        connection="public",
        old="open",
        new="reconnecting",
        reason=str(n),
        attempt=n,
    )


async def take(stream: EventStream, count: int) -> list[Event]:
    """Read ``count`` events, failing if they do not come within a second."""
    async with asyncio.timeout(1):
        return [await anext(stream) for _ in range(count)]


async def test_every_subscriber_gets_every_event_in_order() -> None:
    """Two streams each receive all events published after they subscribed, in order."""
    hub = EventHub()
    first, second = hub.subscribe(), hub.subscribe()
    events = [change(i) for i in range(3)]
    for event in events:
        hub.publish(event)
    assert await take(first, 3) == events
    assert await take(second, 3) == events
    assert hub.statistics().published == 3 and hub.statistics().subscribers == 2


async def test_events_before_subscribe_are_not_replayed() -> None:
    """A stream sees only what is published after subscribe()."""
    hub = EventHub()
    hub.publish(change(0))
    stream = hub.subscribe()
    hub.publish(change(1))
    assert await take(stream, 1) == [change(1)]
    assert stream.queued == 0


async def test_waiting_reader_is_woken_by_publish() -> None:
    """A reader blocked on an empty stream gets the event published later."""
    hub = EventHub()
    stream = hub.subscribe()
    reader = asyncio.create_task(take(stream, 1))
    await asyncio.sleep(0)
    assert not reader.done()
    hub.publish(KeyRecovered(at=1.0, at_wall=1e9))
    assert await reader == [KeyRecovered(at=1.0, at_wall=1e9)]


async def test_full_queue_drops_oldest_and_counts() -> None:
    """A slow reader loses the oldest events, never blocks publish, and the drops are counted."""
    hub = EventHub(queue_size=3)
    slow = hub.subscribe()
    fast = hub.subscribe(queue_size=10)
    for i in range(5):
        hub.publish(change(i))
    assert await take(slow, 3) == [change(2), change(3), change(4)]
    assert slow.dropped == 2
    assert fast.dropped == 0 and fast.queued == 5
    assert hub.statistics().dropped == 2


async def test_close_ends_streams_after_queued_events() -> None:
    """Closing the hub lets readers drain what was queued, then ends iteration."""
    hub = EventHub()
    stream = hub.subscribe()
    hub.publish(change(0))
    hub.close()
    hub.publish(change(1))  # refused after close
    seen = [event async for event in stream]
    assert seen == [change(0)]
    assert hub.closed


async def test_close_wakes_a_waiting_reader() -> None:
    """A reader waiting on an empty stream finishes when the hub closes."""
    hub = EventHub()
    stream = hub.subscribe()

    async def read_all() -> list[Event]:
        return [event async for event in stream]

    reader = asyncio.create_task(read_all())
    await asyncio.sleep(0)
    hub.close()
    async with asyncio.timeout(1):
        assert await reader == []


async def test_stream_aclose_unsubscribes() -> None:
    """A closed stream receives nothing more and the hub forgets it."""
    hub = EventHub()
    async with hub.subscribe() as stream:
        hub.publish(change(0))
    hub.publish(change(1))
    assert stream.get_nowait() == change(0)
    assert stream.get_nowait() is None
    assert hub.statistics().subscribers == 0
    assert [event async for event in stream] == []


async def test_subscribe_after_close_ends_at_once() -> None:
    """Subscribing to a closed hub returns a stream that is already finished."""
    hub = EventHub()
    hub.close()
    assert [event async for event in hub.subscribe()] == []


async def test_cancelled_reader_does_not_break_the_stream() -> None:
    """A reader cancelled while waiting leaves the stream usable for the next reader."""
    hub = EventHub()
    stream = hub.subscribe()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await anext(stream)
    hub.publish(change(7))
    assert await take(stream, 1) == [change(7)]


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_queue_size_is_validated(size: object) -> None:
    """A queue size must be a whole number >= 1, for the hub and for each stream."""
    with pytest.raises(InvalidInputError):
        EventHub(queue_size=size)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        EventHub().subscribe(queue_size=size)  # type: ignore[arg-type]


async def test_second_concurrent_reader_is_refused_not_left_hanging() -> None:
    """A second task waiting on a stream another task waits on gets a clear error at once."""
    hub = EventHub()
    stream = hub.subscribe()
    first = asyncio.create_task(anext(stream))
    await asyncio.sleep(0)  # the first reader is now waiting
    with pytest.raises(InvalidInputError, match="one reader"):
        await asyncio.wait_for(anext(stream), 1)
    hub.publish(change(1))
    assert await asyncio.wait_for(first, 1) == change(1)
    hub.publish(change(2))
    assert await take(stream, 1) == [change(2)]  # the stream still works for its reader


async def test_hub_stamps_the_wall_clock_instant_of_at() -> None:
    """An event without at_wall gets the epoch time of its monotonic ``at`` from the clock."""

    class Fixed:
        def now(self) -> float:
            return 100.0

        def wall(self) -> float:
            return 1_700_000_000.0

    hub = EventHub(clock=Fixed())
    stream = hub.subscribe()
    hub.publish(KeyRecovered(at=98.5))
    (event,) = await take(stream, 1)
    assert event.at_wall == 1_700_000_000.0 - 1.5 and event.at == 98.5
