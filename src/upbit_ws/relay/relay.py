"""The relay: one manager's subscriptions appended to Redis Streams, highly available.

::

    async with Relay("redis://127.0.0.1:6379", {"trade": ["KRW-BTC"], "ticker": ["KRW-BTC"]}):
        ...  # every message goes to upbit:trade:KRW-BTC / upbit:ticker:KRW-BTC

**Data path.** One :class:`~upbit_ws.WebSocketManager` subscription per type (``drop_oldest``
with a large bound, so tickers and books are never conflated away), read with ``batches()``;
what each read brought is split by code and each part encoded once, as one stream entry
(format ``m2``, :mod:`upbit_ws.relay.codec`), into the relay's *outbox*, a bounded FIFO shared
under a lock. The Redis side (the writer and the lease) runs on an event loop of its own, on a
daemon thread (:class:`_LoopThread`): under a flood one WebSocket read can hold the reading
loop for a quarter of a second, and round trips to Redis must not wait for those turns. The
writer takes whole entries, up to ``batch_size`` messages, and appends them in one fenced
``MULTI``/``EXEC`` (:meth:`RedisClient.fenced_append
<upbit_ws.relay.redis_client.RedisClient.fenced_append>`), so a flood costs one round trip per
batch and one ``XADD`` per entry, not per message. Connection changes and gaps of the manager
go to ``upbit:events`` (and each gap also into the affected data streams, in band).

**Redis down.** Appends fail, the writer retries the same batch with capped backoff (0.05 s
to 1 s) and the outbox keeps filling up to ``buffer_size`` messages; past that the oldest
entries are dropped whole and their messages counted per stream, and the next append writes a
:class:`FeedGap` (cause ``relay_overflow``) before the data that follows the loss, then a
:class:`RedisOutage` once an append lands (:meth:`Relay.events` yields both locally too).
Closing never waits for a Redis that stopped answering longer than a few bounded seconds (see
:meth:`Relay.aclose`). A batch whose reply was lost is not appended twice: the transaction
records the last batch id.

**High availability.** Relays of one subscription set share a lease (``upbit:lease:relay``):
``SET NX PX`` to take it, a compare-and-set script to renew it every third of its time to live,
and a compare-and-delete on clean exit. Only the holder appends, and every append checks the
token under ``WATCH`` of the lease in the same transaction (Redis refuses it if the lease
changed since), so a relay that lost the lease (stalled, partitioned) can never write again,
even if it does not know yet. A standby runs its own manager (hot) and keeps the newest
``buffer_size`` messages as a backlog; it polls the lease, sleeping until the lease's remaining
time to live runs out (at most a third of the lease). On taking over it reads the newest
entries of each stream, finds the newest stored message in its backlog by its bytes (without
``stream_type``; entries are compared message by message), and appends only what came after
it (see :meth:`Relay._take_over`), so readers get no duplicate and, when the backlog reaches
back, no loss either: they see a :class:`LeaseAcquired` event whose ``at - since`` is the
wait (at most the lease time to live plus one renewal period), and a :class:`FeedGap` (cause
``takeover``) on any stream the backlog could not close.

A bug in one of the relay's tasks stops the relay (``wait_closed()`` raises it) and a standby
takes over; Redis and Upbit faults never stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import msgspec

from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.aio.stream import Subscription
from upbit_ws.core.auth import Credentials
from upbit_ws.core.backoff import Backoff
from upbit_ws.core.buffer import OverflowPolicy
from upbit_ws.core.config import BackoffConfig, ConnectionConfig
from upbit_ws.core.constants import DEFAULT_BASE_URL, PRIVATE_TYPES
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.events import ConnectionStateChanged, GapEvent
from upbit_ws.core.messages import DataMessage
from upbit_ws.relay.codec import (
    FIELD_BATCH,
    FIELD_GAP,
    FIELD_MESSAGE,
    KIND_BATCH,
    KIND_GAP,
    KIND_MESSAGE,
    FeedGap,
    GapCause,
    LeaseAcquired,
    LeaseReleased,
    RedisOutage,
    RelayConfig,
    RelayEvent,
    UpstreamStateChanged,
    check_subscriptions,
    decode_entry,
    encode_event,
    encode_gap,
    encode_message,
    encode_messages,
    entry_id_seconds,
)
from upbit_ws.relay.redis_client import RedisClient, RedisCommandError, RedisUnavailableError
from upbit_ws.relay.scripts import RELEASE, RENEW

__all__ = ["Relay", "RelayRole", "RelayStatistics"]

_log = logging.getLogger("upbit_ws.relay")

T = TypeVar("T")

RelayRole = Literal["new", "standby", "leader", "closed"]

#: Redis retry delays: quick first retry, capped at one second (Redis restarts are short).
_REDIS_BACKOFF: Final = BackoffConfig(
    first_delay=0.05, cap=1.0, reset_after=1.0, rate_limited_floor=1.0, blocked_floor=1.0
)
#: Newest entries read per stream at takeover to find where the previous leader stopped: a
#: few first (an entry may hold a flood's batch, hundreds of kB), more where those few hold
#: fewer than _HIGH_WATER_MESSAGES messages between them.
_HIGH_WATER_FIRST: Final = 8
_HIGH_WATER_ENTRIES: Final = 64
#: How long aclose() lets the writer flush what is buffered before giving up.
_FLUSH_TIMEOUT: Final = 2.0
#: Most messages a pump encodes per turn (one lock and one wake-up of the writer each).
_PUMP_BATCH: Final = 1024
#: Events one events() listener may hold unread; past that the oldest go.
_EVENTS_BOUND: Final = 1024

# One outbox entry: stream key, kind (KIND_BATCH: messages of one stream, KIND_GAP, or
# KIND_MESSAGE: an event), how many messages it holds (1 for a gap or an event), payload.
_Entry = tuple[str, int, int, bytes]
#: Fields of the stream entries a takeover reads, by kind (see codec.py).
_FIELDS: Final = {KIND_MESSAGE: FIELD_MESSAGE, KIND_GAP: FIELD_GAP, KIND_BATCH: FIELD_BATCH}
#: Newest messages per stream a takeover compares its backlog with (entries hold batches):
#: as many as the newest 64 entries held when each held one message.
_HIGH_WATER_MESSAGES: Final = 64


@dataclass(frozen=True, slots=True)
class _Mark:
    """A stream's newest stored message, the recent ones, their newest timestamp, its time."""

    payload: bytes
    recent: frozenset[bytes]
    timestamp: int
    at: float


@dataclass(frozen=True, slots=True)
class RelayStatistics:
    """A snapshot of one relay.

    ``received`` messages came from the manager; ``appended`` entries reached Redis (messages,
    gaps and events); ``buffered`` wait in the outbox; ``dropped`` were lost to a full outbox
    while leading (Redis down or slower than the feed), ``discarded`` aged out of a standby's
    backlog (not a loss: the leader had them). ``refilled`` counts backlog messages appended at
    takeovers, ``skipped`` backlog messages the previous leader had appended already.
    """

    relay: str
    role: RelayRole
    received: int
    appended: int
    buffered: int
    dropped: int
    discarded: int
    batches: int
    redis_errors: int
    takeovers: int
    lease_losses: int
    refilled: int
    skipped: int
    gaps: int


def _identity(message: DataMessage) -> bytes:
    """Return a message's bytes without ``stream_type`` (SNAPSHOT and REALTIME copies match)."""
    if getattr(message, "stream_type", None) is None:
        return encode_message(message)
    return encode_message(msgspec.structs.replace(message, stream_type=None))


def _entry_messages(type: str, kind: int, payload: bytes) -> list[DataMessage]:
    """Return the messages of an outbox or stream entry of data ``type`` (none for a gap)."""
    got = decode_entry(type, _FIELDS[kind], payload)
    return got if isinstance(got, list) else []


def _default_relay_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Relay:
    """Relay the given subscriptions from Upbit to Redis Streams; see the module docs.

    ``subscriptions`` maps a data type to its codes (``{"trade": ["KRW-BTC"]}``; wildcards such
    as ``KRW-*`` expand through the market list). ``base_url``, ``credentials`` and
    ``connection_config`` go to the :class:`~upbit_ws.WebSocketManager`; ``config`` holds the
    Redis side (:class:`~upbit_ws.relay.codec.RelayConfig`); ``relay_id`` names this relay in
    events (host, pid and a random suffix by default).
    """

    def __init__(
        self,
        redis_url: str,
        subscriptions: Mapping[str, Iterable[str]],
        *,
        base_url: str = DEFAULT_BASE_URL,
        credentials: Credentials | None = None,
        config: RelayConfig | None = None,
        connection_config: ConnectionConfig | None = None,
        relay_id: str | None = None,
    ) -> None:
        self.subscriptions = check_subscriptions(subscriptions)
        if credentials is None and any(t in PRIVATE_TYPES for t in self.subscriptions):
            raise InvalidInputError("myOrder and myAsset need credentials")
        self.config = config or RelayConfig()
        self.relay_id = relay_id or _default_relay_id()
        self._redis = RedisClient(redis_url)
        # The Redis side (writer, lease) runs on this thread's loop; see _LoopThread.
        self._io: _LoopThread | None = None
        self._main: asyncio.AbstractEventLoop | None = None
        # Guards what both loops touch: the outbox, the loss records, the stream keys.
        self._lock = threading.RLock()
        self._ws = WebSocketManager(
            base_url=base_url, credentials=credentials, config=connection_config
        )
        self._keys = self.config.keys
        self._lease_key = self._keys.lease(self.config.lease_name)
        self._batch_key = self._keys.batch(self.config.lease_name)
        self._role: RelayRole = "new"
        self._role_changed = asyncio.Event()
        self._token: str | None = None
        self._outbox: deque[_Entry] = deque()
        self._queued = 0  # messages (and gaps and events) in the outbox: its bound's measure
        self._inflight: list[_Entry] | None = None
        self._writing = False
        self._wake = asyncio.Event()  # the writer's, on the Redis loop
        self._wake_sent = False  # a wake-up is on its way to the Redis loop (_wake_writer)
        self._closing = False
        self._inputs_done = False
        self._root: asyncio.Task[None] | None = None
        self._subs: list[Subscription[Any]] = []
        self._stream_keys: dict[tuple[str, str | None], str] = {}
        # Per stream: (first loss time, messages dropped) of the current loss episode.
        self._losses: dict[str, tuple[float, int]] = {}
        # Per stream: entries a standby's backlog aged out since it last led.
        self._aged_out: dict[str, int] = {}
        self._listeners: list[deque[RelayEvent | None]] = []
        self._listened = asyncio.Event()
        # The current Redis outage: (first failure, wall clock; dropped before it; failed
        # appends), or None. It ends with the first append that lands.
        self._outage: tuple[float, int, int] | None = None
        self._received = 0
        self._appended = 0
        self._dropped = 0
        self._discarded = 0
        self._batches = 0
        self._redis_errors = 0
        self._takeovers = 0
        self._lease_losses = 0
        self._refilled = 0
        self._skipped = 0
        self._gaps = 0

    def __repr__(self) -> str:
        kinds = ",".join(self.subscriptions)
        return f"<Relay {self.relay_id} {self._role} {kinds} -> {self._redis.url}>"

    # --- public surface ----------------------------------------------------------------------

    @property
    def role(self) -> RelayRole:
        """Return ``new``, ``standby``, ``leader`` or ``closed``."""
        return self._role

    @property
    def redis_url(self) -> str:
        """Return the Redis URL, any password masked."""
        return self._redis.url

    @property
    def manager(self) -> WebSocketManager:
        """Return the manager this relay reads from (for its health and statistics)."""
        return self._ws

    def events(self) -> AsyncIterator[RelayEvent]:
        """Yield the events this relay produces from now on, whatever its role or Redis's state.

        The same events as ``upbit:events`` (gaps, lease changes, upstream changes,
        :class:`~upbit_ws.relay.RedisOutage`), and also a standby's, which Redis does not get;
        the iteration ends when the relay closes. Up to 1024 unread events are kept per
        listener, the oldest dropped first.
        """
        queue: deque[RelayEvent | None] = deque(maxlen=_EVENTS_BOUND)
        self._listeners.append(queue)
        return self._listen(queue)

    async def _listen(self, queue: deque[RelayEvent | None]) -> AsyncIterator[RelayEvent]:
        try:
            while True:
                if not queue:
                    await self._listened.wait()  # set and replaced by each _publish
                    continue
                event = queue.popleft()
                if event is None:
                    return
                yield event
        finally:
            self._listeners.remove(queue)

    def _publish(self, event: RelayEvent | None) -> None:
        """On the main loop: hand ``event`` (None: the end) to every events() listener."""
        for queue in self._listeners:
            queue.append(event)
        listened, self._listened = self._listened, asyncio.Event()
        listened.set()

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Check Redis, start the manager and subscribe, then compete for the lease.

        Raises :class:`~upbit_ws.relay.RedisUnavailableError` when Redis does not answer (the
        relay gives up only at start: later outages are buffered and retried).
        """
        if self._role != "new":
            raise InvalidInputError(f"start() can be called once; the relay is {self._role}")
        self._main = asyncio.get_running_loop()
        self._io = _LoopThread(f"upbit-ws:relay-redis:{self.relay_id}")
        try:
            await self._io.run(self._redis.ping())
        except BaseException:
            await self._io.stop(self._redis.aclose(), within=_FLUSH_TIMEOUT)
            raise
        self._set_role("standby")
        try:
            await self._ws.start()
            for type, codes in self.subscriptions.items():
                policy: OverflowPolicy | None = None if type in PRIVATE_TYPES else "drop_oldest"
                sub = self._ws.component(f"relay:{type}").subscribe(
                    type, codes, policy=policy, capacity=self.config.upstream_capacity
                )
                self._subs.append(sub)
            self._root = asyncio.create_task(self._run(), name="upbit-ws:relay")
        except BaseException:
            await self.aclose()
            raise

    async def wait_closed(self) -> None:
        """Wait until the relay stops (after ``aclose()``, or a bug: then it is raised)."""
        root = self._root
        if root is None:
            return
        await asyncio.wait([root])
        if not root.cancelled() and root.exception() is not None:
            raise root.exception()  # type: ignore[misc]

    async def wait_role(self, role: RelayRole) -> None:
        """Wait until the relay's role is ``role`` (wrap it in ``asyncio.timeout``)."""
        while self._role != role:
            await self._role_changed.wait()

    async def run(self) -> None:
        """Start, relay until cancelled or a bug stops it, then close."""
        await self.start()
        try:
            await self.wait_closed()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop: flush what is buffered (briefly), release the lease, close everything.

        Every step is bounded, so a Redis that stopped answering delays this by seconds, never
        hangs it: the flush waits at most 2 s, the cancelled Redis side 2 s more, the lease
        release 4 s, closing the client 2 s.
        """
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(Exception):
            await self._ws.aclose()  # the pumps end once their subscriptions are drained
        root = self._root
        self._wake_writer()
        if root is not None and not root.done():
            # The writer returns once the outbox is flushed (a leader) or at once (a standby).
            await asyncio.wait([root], timeout=_FLUSH_TIMEOUT)
        if root is not None and not root.done():
            root.cancel()
            # Bounded: the Redis side runs on its own loop, and a redis-py call that swallowed
            # its cancellation (Redis stopped answering) must not hang close; that loop's
            # thread is a daemon, abandoned if it does not stop in time.
            await asyncio.wait([root], timeout=_FLUSH_TIMEOUT)
        io = self._io
        if io is not None:
            if self._role == "leader" and self._token is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2 * _FLUSH_TIMEOUT):
                        await io.run(self._release())
            self._set_role("closed")
            await io.stop(self._redis.aclose(), within=_FLUSH_TIMEOUT)
        else:
            self._set_role("closed")
        self._publish(None)

    def statistics(self) -> RelayStatistics:
        """Return a snapshot of this relay's counters."""
        return RelayStatistics(
            relay=self.relay_id,
            role=self._role,
            received=self._received,
            appended=self._appended,
            buffered=self._queued + sum(entry[2] for entry in self._inflight or ()),
            dropped=self._dropped,
            discarded=self._discarded,
            batches=self._batches,
            redis_errors=self._redis_errors,
            takeovers=self._takeovers,
            lease_losses=self._lease_losses,
            refilled=self._refilled,
            skipped=self._skipped,
            gaps=self._gaps,
        )

    # --- tasks -------------------------------------------------------------------------------

    async def _run(self) -> None:
        """The reading side on this loop, the Redis side on the Redis loop (module docs)."""
        assert self._io is not None
        async with asyncio.TaskGroup() as tg:
            redis_side = tg.create_task(self._io.run(self._redis_side()), name="upbit-ws:relay:io")
            inputs = [tg.create_task(self._events(), name="upbit-ws:relay:events")]
            inputs += [
                tg.create_task(self._pump(sub), name=f"upbit-ws:relay:pump:{sub.type}")
                for sub in self._subs
            ]
            # The inputs end when the manager closes (aclose), after what it had buffered.
            await asyncio.gather(*inputs)
            self._inputs_done = True
            self._wake_writer()
            await redis_side  # returns once the outbox is flushed (or this relay does not lead)

    async def _redis_side(self) -> None:
        """On the Redis loop: the lease and the writer."""
        async with asyncio.TaskGroup() as tg:
            lease = tg.create_task(self._lease_loop(), name="upbit-ws:relay:lease")
            await self._writer()
            lease.cancel()

    def _wake_writer(self) -> None:
        """Wake the writer on the Redis loop (from either thread).

        Skipped while the event is still set (the writer clears it and then looks at the
        outbox again before it waits) or a wake-up is on its way (it sets the event after this
        call), so what was queued before this call is seen either way.
        """
        io = self._io
        if io is not None and not self._wake_sent and not self._wake.is_set():
            # One wake-up in flight at a time: each costs a write to the loop's self-pipe and a
            # hand-over of the GIL, and the pumps of a flood would send one per batch each.
            self._wake_sent = True
            io.call(self._woken)

    def _woken(self) -> None:
        """On the Redis loop: a wake-up arrived (it runs after whatever queued it)."""
        self._wake_sent = False
        self._wake.set()

    async def _pump(self, sub: Subscription[Any]) -> None:
        """Encode what each read of the manager delivers into the outbox, one entry per stream.

        A batch is what was waiting when the pump asked (never held back for more), split by
        code in order; each part is one msgpack array (format ``m2``, codec.py), encoded in
        one call.
        """
        kind = sub.type
        lock = self._lock
        keys = _KeysByCode(self._stream_key, kind)
        async for batch in sub.batches(max_items=_PUMP_BATCH):
            by_code: dict[str | None, list[Any]] = {}
            for message in batch:
                code = message.code
                same = by_code.get(code)
                if same is None:
                    by_code[code] = [message]
                else:
                    same.append(message)
            entries = [
                (keys[code], KIND_BATCH, len(messages), encode_messages(messages))
                for code, messages in by_code.items()
            ]
            with lock:
                self._outbox.extend(entries)
                self._queued += len(batch)
                self._trim_locked()
            self._received += len(batch)
            self._wake_writer()

    def _stream_key(self, type: str, code: str | None) -> str:
        key = self._stream_keys.get((type, code))
        if key is None:
            with self._lock:
                key = self._stream_keys[(type, code)] = self._keys.stream(type, code)
        return key

    def _trim(self) -> None:
        """Hold the outbox to ``buffer_size``: drop the oldest, counted (see the module docs)."""
        with self._lock:
            self._trim_locked()

    def _trim_locked(self) -> None:
        """Drop the oldest entries (whole) while the outbox holds more than ``buffer_size``."""
        out = self._outbox
        limit = self.config.buffer_size
        if self._queued <= limit:
            return
        leading = self._role == "leader"
        now = time.time()
        while self._queued > limit and out:
            key, kind, count, _ = out.popleft()
            self._queued -= count
            if kind != KIND_BATCH:
                continue
            if leading:
                self._dropped += count
                since, lost = self._losses.get(key, (now, 0))
                self._losses[key] = (since, lost + count)
            else:
                self._discarded += count
                self._aged_out[key] = self._aged_out.get(key, 0) + count

    async def _events(self) -> None:
        """Turn the manager's connection changes and gaps into relay events."""
        loop = asyncio.get_running_loop()
        async for event in self._ws.events():
            offset = time.time() - loop.time()
            if isinstance(event, ConnectionStateChanged):
                self._emit(
                    UpstreamStateChanged(
                        at=event.at + offset,
                        relay=self.relay_id,
                        connection=event.connection,
                        old=event.old,
                        new=event.new,
                        reason=event.reason,
                    )
                )
            elif isinstance(event, GapEvent):
                cause: GapCause = (
                    "upstream_reconnect" if event.reason == "reconnect" else "upstream_overflow"
                )
                gap = FeedGap(
                    at=event.at + offset,
                    relay=self.relay_id,
                    type=event.type,
                    code=event.code,
                    cause=cause,
                    since=event.since + offset,
                    dropped=event.dropped,
                )
                self._gap(gap)

    def _emit(self, event: RelayEvent, *, first: bool = False) -> None:
        """Queue an event for ``upbit:events`` (only a leader's events are written)."""
        main = self._main
        if main is not None and not main.is_closed():
            main.call_soon_threadsafe(self._publish, event)
        if self._role != "leader" and not first:
            _log.info("relay %s (standby): %s", self.relay_id, event)
            return
        entry = (self._keys.events, KIND_MESSAGE, 1, encode_event(event))
        with self._lock:
            if first:
                self._outbox.appendleft(entry)
            else:
                self._outbox.append(entry)
            self._queued += 1
        self._wake_writer()

    def _gap(self, gap: FeedGap, *, first: bool = False) -> None:
        """Queue ``gap`` for the events stream and in band into each stream it covers."""
        payload = encode_gap(gap)
        if gap.code is not None and gap.type is not None:
            streams = [self._stream_key(gap.type, gap.code)]
        else:
            with self._lock:
                streams = [
                    key for (t, _), key in self._stream_keys.items() if gap.type in (None, t)
                ]
        entries = [(key, KIND_GAP, 1, payload) for key in streams]
        with self._lock:
            self._gaps += 1
            self._queued += len(entries)
            if first:
                self._outbox.extendleft(reversed(entries))
            else:
                # A standby keeps in-band gaps in its backlog: they matter if it takes over.
                self._outbox.extend(entries)
        self._emit(gap, first=first)

    # --- the writer --------------------------------------------------------------------------

    async def _writer(self) -> None:
        backoff = Backoff(_REDIS_BACKOFF)
        seq = itertools.count(1)
        batch_id = ""
        entries: list[tuple[str, bytes, int, bytes]] = []
        while True:
            if self._inflight is not None and self._role != "leader":
                # Lost the lease between retries: the batch goes back, filtered at a takeover.
                self._give_back(self._inflight)
                self._inflight = None
            if self._inflight is None:
                if self._role != "leader" or not self._outbox:
                    if self._inputs_done and (self._role != "leader" or not self._outbox):
                        return
                    if self._wake.is_set():
                        # Clear, then look again before waiting: the reading loop skips the
                        # wake-up while the event is still set (see _wake_writer).
                        self._wake.clear()
                        continue
                    await self._wake.wait()
                    continue
                self._write_losses()
                self._inflight = self._take_batch()
                entries = self._frame(self._inflight)
                batch_id = f"{self._token}:{next(seq)}"
            self._writing = True
            try:
                result = await self._redis.fenced_append(
                    (self._lease_key, self._token or ""),
                    (self._batch_key, batch_id),
                    entries,
                    self.config.lease_ms,
                )
            except RedisUnavailableError as exc:
                self._redis_errors += 1
                if self._outage is None:
                    self._outage = (time.time(), self._dropped, 0)
                    _log.warning("relay %s: cannot append: %s", self.relay_id, exc)
                since, dropped, retries = self._outage
                self._outage = (since, dropped, retries + 1)
                self._trim()
                await asyncio.sleep(backoff.next_delay())
                continue
            finally:
                self._writing = False
            backoff.reset()
            batch, self._inflight = self._inflight, None
            if batch is None:
                continue
            if result == -1:
                # The lease is gone: give the batch back; a takeover filters it later.
                self._give_back(batch)
                self._step_down("the lease expired or another relay holds it")
                continue
            self._batches += 1
            self._appended += sum(entry[2] for entry in batch)
            if self._outage is not None:
                self._end_outage()

    def _end_outage(self) -> None:
        """An append landed again: report the outage (after its gaps, module docs)."""
        assert self._outage is not None
        (since, dropped, retries), self._outage = self._outage, None
        dropped = self._dropped - dropped
        _log.warning(
            "relay %s: Redis answers again after %.1f s; %d messages dropped meanwhile",
            self.relay_id,
            time.time() - since,
            dropped,
        )
        self._emit(
            RedisOutage(
                at=time.time(), relay=self.relay_id, since=since, retries=retries, dropped=dropped
            )
        )

    def _take_batch(self) -> list[_Entry]:
        """Take whole entries from the outbox, up to ``batch_size`` messages (at least one)."""
        with self._lock:
            out = self._outbox
            limit = self.config.batch_size
            taken: list[_Entry] = []
            count = 0
            while out and (count < limit or not taken):
                entry = out.popleft()
                taken.append(entry)
                count += entry[2]
            self._queued -= count
            return taken

    def _give_back(self, batch: list[_Entry]) -> None:
        with self._lock:
            self._outbox.extendleft(reversed(batch))
            self._queued += sum(entry[2] for entry in batch)

    def _frame(self, batch: list[_Entry]) -> list[tuple[str, bytes, int, bytes]]:
        """Return ``batch`` as (stream, field, MAXLEN, payload) for the fenced append.

        Each entry carries its stream's MAXLEN: ``maxlen // n`` entries for an entry of ``n``
        messages, so a stream holds about ``maxlen`` messages (RelayConfig).
        """
        maxlen = self.config.maxlen
        return [
            (key, _FIELDS[kind], max(1, maxlen // count), payload)
            for key, kind, count, payload in batch
        ]

    def _write_losses(self) -> None:
        """Queue a gap, ahead of the data, for each stream that lost messages to a full outbox."""
        if not self._losses:
            return
        with self._lock:
            losses, self._losses = self._losses, {}
            by_key = {key: tc for tc, key in self._stream_keys.items()}
        now = time.time()
        for key, (since, dropped) in losses.items():
            type, code = by_key.get(key, (None, None))
            self._gap(
                FeedGap(
                    at=now,
                    relay=self.relay_id,
                    type=type,
                    code=code,
                    cause="relay_overflow",
                    since=since,
                    dropped=dropped,
                ),
                first=True,
            )

    # --- the lease ---------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        backoff = Backoff(_REDIS_BACKOFF)
        period = self.config.lease_seconds / 3
        while True:
            try:
                if self._role == "leader":
                    await asyncio.sleep(period)
                    renewed = await self._redis.script(
                        RENEW, [self._lease_key], [self._token, self.config.lease_ms]
                    )
                    if not renewed:
                        self._step_down("the lease expired before it was renewed")
                else:
                    token = uuid.uuid4().hex
                    if await self._redis.set_nx(self._lease_key, token, px=self.config.lease_ms):
                        await self._take_over(token)
                    else:
                        left = await self._redis.pttl(self._lease_key)
                        await asyncio.sleep(min(max(left, 10) / 1000, period))
                backoff.reset()
            except RedisUnavailableError:
                self._redis_errors += 1
                await asyncio.sleep(backoff.next_delay())

    def _set_role(self, role: RelayRole) -> None:
        """Change the role (on either loop) and wake whoever waits for it."""
        if role != self._role:
            _log.info("relay %s: %s -> %s", self.relay_id, self._role, role)
        self._role = role
        main = self._main
        if main is not None and not main.is_closed():
            main.call_soon_threadsafe(self._role_set)
        self._wake_writer()

    def _role_set(self) -> None:
        """On the main loop: wake wait_role()."""
        changed, self._role_changed = self._role_changed, asyncio.Event()
        changed.set()

    def _step_down(self, reason: str) -> None:
        if self._role != "leader":
            return
        self._lease_losses += 1
        _log.warning("relay %s: stepping down: %s", self.relay_id, reason)
        self._token = None
        # Losses stay recorded: if no other relay appends after them, they are still holes
        # readers must hear about when this relay leads again (see _take_over).
        with self._lock:
            self._aged_out.clear()
        self._set_role("standby")

    async def _take_over(self, token: str) -> None:
        """Filter the backlog against what the streams hold, then lead (module docs).

        Per stream, the previous leader's newest entry is looked up in the backlog by its
        bytes; everything up to it is dropped (already in Redis), everything after it is
        appended: exact, whatever order Upbit's timestamps are in (a trade's ``timestamp`` is
        its send time, which does not follow ``sequential_id``). When the backlog does not
        hold that entry (it aged out, or this relay's feed differs), only what is newer than
        every recent entry and not among them is appended, and the stream gets a gap.
        """
        if self._inflight is not None and not self._writing:
            self._give_back(self._inflight)
            self._inflight = None
        with self._lock:
            streams = {key for key, kind, _, _ in self._outbox if key != self._keys.events}
            streams.update(self._stream_keys.values())
        ordered = sorted(streams)
        newest = await self._redis.last_entries(ordered, _HIGH_WATER_FIRST)
        marks: dict[str, _Mark] = {}
        for key, entries in zip(ordered, newest, strict=True):
            mark = self._high_water(key, entries)
            if len(entries) == _HIGH_WATER_FIRST and (
                mark is None or len(mark.recent) < _HIGH_WATER_MESSAGES
            ):
                [entries] = await self._redis.last_entries([key], _HIGH_WATER_ENTRIES)
                mark = self._high_water(key, entries)
            if mark is not None:
                marks[key] = mark
        with self._lock:
            # The reading loop waits meanwhile (a takeover is rare; the filter is quick).
            self._filter_backlog(token, marks)

    def _filter_backlog(self, token: str, marks: dict[str, _Mark]) -> None:
        """Drop what the streams hold already from the backlog, then lead (lock held).

        The backlog's entries hold batches; they are compared one message at a time and what
        is kept is encoded again, consecutive messages of one stream as one entry.
        """
        events = self._keys.events
        # The backlog one message (or gap) at a time: key, message (None for a gap), and the
        # entry itself (kept as it is when it is not a batch).
        flat: list[tuple[str, DataMessage | None, _Entry]] = []
        for entry in self._outbox:
            key, kind, _, payload = entry
            if key == events:
                continue  # a standby's own events were logged, not relayed
            if kind == KIND_BATCH:
                for item in _entry_messages(self._type_of(key), kind, payload):
                    flat.append((key, item, entry))
            else:
                flat.append((key, None, entry))
        # Position of the last backlog copy of each stream's newest stored message, compared
        # without stream_type (a snapshot re-sends a message the old leader stored realtime).
        found: dict[str, int] = {}
        same: dict[int, bool] = {}
        for position, (key, message, _) in enumerate(flat):
            mark = marks.get(key)
            if mark is not None and message is not None:
                identity = _identity(message)
                same[position] = identity in mark.recent
                if identity == mark.payload:
                    found[key] = position
        kept: deque[_Entry] = deque()
        run: list[DataMessage] = []
        run_key = ""

        def close_run() -> None:
            if run:
                kept.append((run_key, KIND_BATCH, len(run), encode_messages(list(run))))
                run.clear()

        backlog: set[str] = set()
        refilled = skipped = 0
        for position, (key, message, entry) in enumerate(flat):
            mark = marks.get(key)
            if mark is not None:
                at = found.get(key)
                if at is not None:
                    stale = position <= at or same.get(position, False)
                else:
                    stale = message is None or (
                        message.timestamp <= mark.timestamp or same.get(position, False)
                    )
                if stale:
                    skipped += message is not None
                    continue
            if message is None:
                close_run()
                kept.append(entry)
                continue
            refilled += 1
            backlog.add(key)
            if key != run_key:
                close_run()
                run_key = key
            run.append(message)
        close_run()
        self._outbox = kept
        self._queued = sum(entry[2] for entry in kept)
        for key in list(self._losses):
            mark = marks.get(key)
            if mark is not None and mark.at >= self._losses[key][0]:
                del self._losses[key]  # another leader appended after the loss: covered
        self._token = token
        self._takeovers += 1
        self._refilled += refilled
        self._skipped += skipped
        now = time.time()
        since = max((m.at for m in marks.values()), default=None)
        by_key = {key: tc for tc, key in self._stream_keys.items()}
        self._set_role("leader")
        # Streams where the backlog could not be joined to the previous leader's last entry
        # although something happened since (backlog entries, or entries aged out of it).
        holes = [
            key for key in marks if key not in found and (key in backlog or self._aged_out.get(key))
        ]
        for key in reversed(holes):
            type, code = by_key.get(key, (None, None))
            self._gap(
                FeedGap(
                    at=now,
                    relay=self.relay_id,
                    type=type,
                    code=code,
                    cause="takeover",
                    since=marks[key].at,
                ),
                first=True,
            )
        self._aged_out.clear()
        self._emit(
            LeaseAcquired(at=now, relay=self.relay_id, since=since, refilled=refilled),
            first=True,
        )
        _log.info(
            "relay %s leads: %d backlog messages appended, %d already in Redis",
            self.relay_id,
            refilled,
            skipped,
        )

    def _type_of(self, key: str) -> str:
        """Return the data type of stream ``key`` (``upbit:trade:KRW-BTC`` -> ``trade``)."""
        return key[len(self.config.namespace) + 1 :].split(":", 1)[0]

    def _high_water(
        self, key: str, entries: list[tuple[bytes, dict[bytes, bytes]]]
    ) -> _Mark | None:
        """Return what a stream's newest entries say about where its last leader stopped."""
        type = self._type_of(key)
        newest_first: list[tuple[bytes, DataMessage]] = []
        for entry_id, fields in entries:
            for field, payload in fields.items():
                try:
                    got = decode_entry(type, field, payload)
                except (msgspec.DecodeError, InvalidInputError):
                    continue  # not a relay's entry (feed.py skips it too)
                if isinstance(got, list):
                    newest_first.extend((entry_id, message) for message in reversed(got))
        if not newest_first:
            return None
        recent = newest_first[:_HIGH_WATER_MESSAGES]
        newest_id, newest = recent[0]
        return _Mark(
            payload=_identity(newest),
            recent=frozenset(_identity(message) for _, message in recent),
            timestamp=max(message.timestamp for _, message in recent),
            at=entry_id_seconds(newest_id),
        )

    async def _release(self) -> None:
        """Append LeaseReleased and give the lease up (clean exit)."""
        token = self._token
        event = LeaseReleased(at=time.time(), relay=self.relay_id)
        entries = self._frame([(self._keys.events, KIND_MESSAGE, 1, encode_event(event))])
        with contextlib.suppress(RedisUnavailableError, RedisCommandError):
            async with asyncio.timeout(_FLUSH_TIMEOUT):
                await self._redis.fenced_append(
                    (self._lease_key, token or ""),
                    (self._batch_key, f"{token}:release"),
                    entries,
                    self.config.lease_ms,
                )
                await self._redis.script(RELEASE, [self._lease_key], [token])
        self._token = None


class _KeysByCode(dict[str | None, str]):
    """One type's stream keys by code: a lookup by code alone, no tuple built per message."""

    def __init__(self, make: Callable[[str, str | None], str], kind: str) -> None:
        super().__init__()
        self._make = make
        self._kind = kind

    def __missing__(self, code: str | None) -> str:
        key = self[code] = self._make(self._kind, code)
        return key


class _LoopThread:
    """An asyncio event loop on a daemon thread of its own: the relay's Redis side.

    Why: under a flood the reading loop spends whole turns in the WebSocket reader (one socket
    read of a flood took 0.2-0.5 s on the 2-core development machine), and every round trip
    of the writer and the lease needs turns of its loop; on a loop of their own they get them.
    benchmarks/README-relay.md has the measurements. Bounded everywhere: :meth:`run` and
    :meth:`stop` take timeouts, and the thread is a daemon, so a Redis that stopped answering
    can delay close by at most those bounds, never hang it or the interpreter's exit.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.close()

    def call(self, callback: Any, *args: Any) -> None:
        """Run ``callback(*args)`` on the loop soon (from any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
            self.loop.call_soon_threadsafe(callback, *args)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it here; cancelling this cancels it there."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stop(self, last: Coroutine[Any, Any, None], *, within: float) -> None:
        """Run ``last`` (closing the client) on the loop, then stop it; each within bounds."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(within):
                await self.run(last)
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, within)
