"""Read a relay's streams back as typed messages, on any machine: :class:`RedisFeed`.

::

    async with RedisFeed("redis://127.0.0.1:6379") as feed:
        trades = feed.subscribe("trade", ["KRW-BTC", "KRW-ETH"])   # live: from now on
        async for trade in trades:          # upbit_ws.Trade, as from a local subscription
            ...

A :class:`FeedSubscription` has the shape of a local :class:`~upbit_ws.Subscription`:
``async for msg in sub`` (data only), ``sub.items()`` (data and the relay's in-band
:class:`~upbit_ws.relay.FeedGap` markers, exactly where data was lost), ``sub.batches()``.
Messages of one stream (one type and code) arrive in the order the relay appended them; streams
are read side by side. ``start`` is ``"$"`` (live: what is appended after the first read),
``"0"`` (everything Redis still holds), an entry id, or a mapping ``{code: id}``; ``sub.position``
gives the last id read per code, to resume from later.

**Consumer groups** (at-least-once work queues): ``feed.subscribe(type, codes, group="workers",
consumer="worker-1")`` reads through ``XREADGROUP``; each message is handed to one consumer of
the group and stays pending until ``await sub.ack(msg)`` (after processing). A consumer that
starts again first gets its own pending messages back; messages another consumer left
unacknowledged for ``claim_idle`` seconds (it died) are claimed (``XAUTOCLAIM``) and delivered
again. Groups are created on first use at ``start`` (``"$"`` by default).

Reads are plain ``XREAD`` / ``XREADGROUP`` of up to ``read_count`` entries per stream, blocking
for up to ``block_seconds`` only when nothing is new; hiredis (the ``redis`` extra) parses the
replies in C and msgspec decodes each stored payload into its typed message. When Redis goes
away the feed retries by itself (capped backoff, 0.05 s to 1 s, counted in
``statistics().reconnects``) and continues from the last id it read; groups lost with a Redis
restart are created again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar, overload

import msgspec

from upbit_ws.core.backoff import Backoff
from upbit_ws.core.config import BackoffConfig
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.messages import (
    MESSAGE_TYPES,
    Candle,
    CandleType,
    DataMessage,
    MyAsset,
    MyOrder,
    Orderbook,
    Ticker,
    Trade,
)
from upbit_ws.relay.codec import (
    DEFAULT_NAMESPACE,
    EVENT_DECODER,
    FIELD_BATCH,
    FIELD_GAP,
    FIELD_MESSAGE,
    GAP_DECODER,
    AnyRelayEvent,
    EntryFormatError,
    FeedGap,
    Keys,
    batch_decoder_for,
    decode_entry,
    decoder_for,
)
from upbit_ws.relay.redis_client import RedisClient, RedisCommandError, RedisUnavailableError

__all__ = ["FeedStatistics", "FeedSubscription", "RedisFeed"]

M = TypeVar("M", bound=DataMessage)

_log = logging.getLogger("upbit_ws.relay")
#: What a stream entry that is not a relay's (or is from a newer relay) raises on decoding.
_MALFORMED: Final = (msgspec.DecodeError, EntryFormatError, IndexError, TypeError)

_BACKOFF: Final = BackoffConfig(
    first_delay=0.05, cap=1.0, reset_after=1.0, rate_limited_floor=1.0, blocked_floor=1.0
)
#: Most entries read per stream and round trip.
DEFAULT_READ_COUNT: Final = 1024
#: How long one blocking read waits for new entries before it is issued again.
DEFAULT_BLOCK_SECONDS: Final = 1.0
#: Default idle bound after which a group's unacknowledged messages are claimed by others.
DEFAULT_CLAIM_IDLE: Final = 30.0

_Item = DataMessage | FeedGap
# A raw reply of one stream: key, then [id, [field, value] or None] per entry (hiredis lists).
_Raw = tuple[bytes, list[Any]]


@dataclass(frozen=True, slots=True)
class FeedStatistics:
    """A snapshot of one feed subscription.

    ``received`` messages and ``gaps`` markers were read; ``reconnects`` counts reads that
    failed because Redis was away; ``acked`` messages were acknowledged (groups) and
    ``unacked`` were handed out and not acknowledged yet; ``malformed`` entries could not be
    decoded (not written by a relay of this version) and were skipped (acknowledged in a
    group, so they are not delivered again).
    """

    type: str
    codes: tuple[str, ...]
    group: str | None
    received: int
    gaps: int
    reconnects: int
    acked: int
    unacked: int
    buffered: int
    malformed: int = 0


class RedisFeed:
    """A client of one Redis: typed subscriptions to a relay's streams, and its events.

    ``namespace`` must match the relay's; ``read_count`` caps entries per stream and round
    trip; ``block_seconds`` is how long a read waits for new entries before asking again.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        read_count: int = DEFAULT_READ_COUNT,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
    ) -> None:
        if isinstance(read_count, bool) or not isinstance(read_count, int) or read_count < 1:
            raise InvalidInputError(f"read_count must be an integer >= 1, not {read_count!r}")
        if not isinstance(block_seconds, int | float) or not 0.001 <= block_seconds <= 60:
            raise InvalidInputError(f"block_seconds must be in [0.001, 60], not {block_seconds!r}")
        self._redis = RedisClient(url)
        self.keys = Keys(namespace)
        self.read_count = read_count
        self.block_seconds = float(block_seconds)
        self._subs: list[FeedSubscription[Any]] = []
        self._closed = False

    def __repr__(self) -> str:
        count = len(self._subs)
        return f"<RedisFeed {self._redis.url} {self.keys.namespace} subscriptions={count}>"

    async def __aenter__(self) -> RedisFeed:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End every subscription and close the connections."""
        self._closed = True
        for sub in self._subs:
            sub._closed = True
        await self._redis.aclose()

    async def ping(self) -> None:
        """Raise :class:`~upbit_ws.relay.RedisUnavailableError` unless Redis answers."""
        await self._redis.ping()

    @overload
    def subscribe(
        self,
        type: Literal["ticker"],
        codes: Iterable[str],
        *,
        start: str | Mapping[str, str] = ...,
        group: str | None = ...,
        consumer: str | None = ...,
        claim_idle: float = ...,
    ) -> FeedSubscription[Ticker]: ...

    @overload
    def subscribe(
        self,
        type: Literal["trade"],
        codes: Iterable[str],
        *,
        start: str | Mapping[str, str] = ...,
        group: str | None = ...,
        consumer: str | None = ...,
        claim_idle: float = ...,
    ) -> FeedSubscription[Trade]: ...

    @overload
    def subscribe(
        self,
        type: Literal["orderbook"],
        codes: Iterable[str],
        *,
        start: str | Mapping[str, str] = ...,
        group: str | None = ...,
        consumer: str | None = ...,
        claim_idle: float = ...,
    ) -> FeedSubscription[Orderbook]: ...

    @overload
    def subscribe(
        self,
        type: CandleType,
        codes: Iterable[str],
        *,
        start: str | Mapping[str, str] = ...,
        group: str | None = ...,
        consumer: str | None = ...,
        claim_idle: float = ...,
    ) -> FeedSubscription[Candle]: ...

    @overload
    def subscribe(
        self,
        type: Literal["myOrder"],
        codes: Iterable[str],
        *,
        start: str | Mapping[str, str] = ...,
        group: str | None = ...,
        consumer: str | None = ...,
        claim_idle: float = ...,
    ) -> FeedSubscription[MyOrder]: ...

    @overload
    def subscribe(
        self,
        type: Literal["myAsset"],
        codes: Iterable[str] = ...,
        *,
        start: str | Mapping[str, str] = ...,
        group: str | None = ...,
        consumer: str | None = ...,
        claim_idle: float = ...,
    ) -> FeedSubscription[MyAsset]: ...

    @overload
    def subscribe(
        self,
        type: str,
        codes: Iterable[str] = ...,
        *,
        start: str | Mapping[str, str] = ...,
        group: str | None = ...,
        consumer: str | None = ...,
        claim_idle: float = ...,
    ) -> FeedSubscription[Any]: ...

    def subscribe(
        self,
        type: str,
        codes: Iterable[str] = (),
        *,
        start: str | Mapping[str, str] = "$",
        group: str | None = None,
        consumer: str | None = None,
        claim_idle: float = DEFAULT_CLAIM_IDLE,
    ) -> FeedSubscription[Any]:
        """Read ``type`` for ``codes`` from the relay's streams (see the module docs).

        ``group`` and ``consumer`` (both or neither) make it a consumer-group reader;
        ``claim_idle`` is then how long another consumer's message may stay unacknowledged
        before this one claims it. Bad input raises :class:`~upbit_ws.InvalidInputError`.
        """
        if self._closed:
            raise InvalidInputError("this RedisFeed is closed")
        if type not in MESSAGE_TYPES:
            raise InvalidInputError(
                f"unknown type {type!r}; expected one of {', '.join(MESSAGE_TYPES)}"
            )
        if isinstance(codes, str):
            codes = [codes]
        normal = tuple(dict.fromkeys(str(c).strip().upper() for c in codes))
        if type == "myAsset":
            normal = (None,)  # type: ignore[assignment]
        elif not normal:
            raise InvalidInputError(f"{type} needs at least one code")
        if (group is None) != (consumer is None):
            raise InvalidInputError("give both group and consumer, or neither")
        if not isinstance(claim_idle, int | float) or claim_idle <= 0:
            raise InvalidInputError(f"claim_idle must be > 0 s, not {claim_idle!r}")
        keys = [self.keys.stream(type, code) for code in normal]
        if isinstance(start, str):
            starts = [start] * len(keys)
        else:
            upper = {str(k).upper(): v for k, v in start.items()}
            starts = [upper.get(code or "", "$") for code in normal]
        sub: FeedSubscription[Any] = FeedSubscription(
            self,
            type=type,
            codes=tuple(c for c in normal if c is not None),
            keys=keys,
            starts=starts,
            group=group,
            consumer=consumer,
            claim_idle=float(claim_idle),
        )
        self._subs.append(sub)
        return sub

    async def events(self, *, start: str = "$") -> AsyncIterator[AnyRelayEvent]:
        """Yield the relay's events (:mod:`upbit_ws.relay.codec`) from ``start`` on, forever."""
        key = self.keys.events
        backoff = Backoff(_BACKOFF)
        last = start
        while not self._closed:
            try:
                if last == "$":
                    last = (await self._redis.last_ids([key]))[0]
                reply = await self._redis.xread(
                    {key: last}, block_ms=int(self.block_seconds * 1000), count=self.read_count
                )
                backoff.reset()
            except RedisUnavailableError:
                if self._closed:
                    return
                await asyncio.sleep(backoff.next_delay())
                continue
            for _, entries in reply:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    try:
                        event = EVENT_DECODER.decode(fields[1]) if fields[0] == b"m" else None
                    except _MALFORMED as exc:
                        # A newer relay's event, or a stranger's entry: never the end of this.
                        _log.warning("skipped %s entry %s: %s", key, last, exc)
                        continue
                    if event is not None:
                        yield event

    @property
    def client(self) -> RedisClient:
        """Return the Redis client (shared by this feed's subscriptions)."""
        return self._redis


class FeedSubscription(Generic[M]):
    """Typed messages of one type and some codes, read from the relay's streams.

    Built by :meth:`RedisFeed.subscribe`; see the module docs. Iterate it from one task.
    """

    def __init__(
        self,
        feed: RedisFeed,
        *,
        type: str,
        codes: tuple[str, ...],
        keys: list[str],
        starts: list[str],
        group: str | None,
        consumer: str | None,
        claim_idle: float,
    ) -> None:
        self._feed = feed
        self._redis = feed.client
        self.type = type
        self.codes = codes
        self.group = group
        self.consumer = consumer
        self.claim_idle = claim_idle
        self._keys = keys
        self._index = {key.encode(): i for i, key in enumerate(keys, start=1)}
        self._last = list(starts)
        self._items: deque[_Item] = deque()
        self._buffered_gaps = 0  # FeedGap markers among _items (batches() skips them)
        self._entry_decoder = decoder_for(type)
        self._batch_decoder = batch_decoder_for(type)
        self._ready = False
        self._closed = False
        self._lock = asyncio.Lock()
        # Groups: this consumer's own pending messages come first, then new ones.
        self._from = ["0"] * len(keys)
        self._next_claim = 0.0
        self._unacked: dict[int, tuple[DataMessage, str, str]] = {}
        # Groups: messages of each handed-out entry not acknowledged yet; Redis acknowledges
        # whole entries, so an entry is XACKed once all of its messages are.
        self._entry_left: dict[tuple[str, str], int] = {}
        self._received = 0
        self._gaps = 0
        self._reconnects = 0
        self._acked = 0
        self._malformed = 0

    def __repr__(self) -> str:
        group = f" group={self.group}/{self.consumer}" if self.group else ""
        return f"<FeedSubscription {self.type} {','.join(self.codes) or '-'}{group}>"

    @property
    def position(self) -> dict[str, str]:
        """Return the last entry id read per code (pass it as ``start`` to resume)."""
        names = self.codes or ("",)
        return dict(zip(names, self._last, strict=True))

    def __aiter__(self) -> FeedSubscription[M]:
        return self

    async def __anext__(self) -> M:
        """Return the next data message (gap markers are skipped; see ``items()``)."""
        while True:
            item = await self._next_item()
            if not isinstance(item, FeedGap):
                return item

    def items(self) -> AsyncIterator[M | FeedGap]:
        """Iterate over data messages and the in-band :class:`FeedGap` markers, in order."""
        return self._iter_items()

    async def _iter_items(self) -> AsyncIterator[M | FeedGap]:
        while True:
            try:
                item = await self._next_item()
            except StopAsyncIteration:
                return
            yield item

    def batches(self) -> AsyncIterator[list[M]]:
        """Iterate over lists of the data messages each read brought (gaps skipped)."""
        return self._batches()

    async def _batches(self) -> AsyncIterator[list[M]]:
        while True:
            if not self._items:
                if self._closed:
                    return
                await self._fill()
                continue
            items, self._items = self._items, deque()
            if self._buffered_gaps:
                self._buffered_gaps = 0
                out: list[M] = [m for m in items if not isinstance(m, FeedGap)]  # type: ignore[misc]
            else:
                out = list(items)  # type: ignore[arg-type]
            if out:
                yield out

    async def ack(self, *messages: DataMessage) -> int:
        """Acknowledge processed messages (groups only); none given: every one handed out.

        Redis acknowledges whole stream entries, and an entry holds the messages one read of
        the relay brought: an entry is acknowledged once all of its messages are, and until then
        all of them can be delivered again (at-least-once per entry, docs/relay.md). Returns how
        many of the messages are acknowledged (a message whose entry another consumer claimed
        meanwhile is not counted). An unacknowledged message is delivered again after
        ``claim_idle``.
        """
        if self.group is None:
            raise InvalidInputError("ack() is for consumer-group subscriptions")
        if messages:
            picked = [self._unacked.pop(id(m), None) for m in messages]
            entries = [p for p in picked if p is not None]
        else:
            # Every message handed out: not those read ahead and still waiting in the buffer.
            waiting = {id(m) for m in self._items if not isinstance(m, FeedGap)}
            handed = [k for k in self._unacked if k not in waiting]
            entries = [self._unacked.pop(k) for k in handed]
        if not entries:
            return 0
        acked: dict[tuple[str, str], int] = {}
        for _, key, entry_id in entries:
            acked[(key, entry_id)] = acked.get((key, entry_id), 0) + 1
        complete: list[tuple[str, str]] = []
        done = 0
        left = self._entry_left
        for entry, count in acked.items():
            remaining = left.get(entry, count) - count
            if remaining > 0:
                left[entry] = remaining
                done += count  # the rest of its entry is still being processed
            else:
                left.pop(entry, None)
                complete.append(entry)
        results = await self._redis.ack_each(complete, self.group)
        done += sum(acked[entry] for entry, ok in zip(complete, results, strict=True) if ok)
        self._acked += done
        return done

    async def aclose(self) -> None:
        """Stop reading; iteration ends (within one blocking read)."""
        self._closed = True
        self._items.clear()
        self._buffered_gaps = 0

    def statistics(self) -> FeedStatistics:
        """Return a snapshot of this subscription's counters."""
        return FeedStatistics(
            type=self.type,
            codes=self.codes,
            group=self.group,
            received=self._received,
            gaps=self._gaps,
            reconnects=self._reconnects,
            acked=self._acked,
            unacked=(
                len(self._unacked) - (len(self._items) - self._buffered_gaps)
                if self.group is not None
                else 0
            ),
            buffered=len(self._items),
            malformed=self._malformed,
        )

    # --- reading -----------------------------------------------------------------------------

    async def _next_item(self) -> M | FeedGap:
        items = self._items
        while True:
            if items:
                item = items.popleft()
                if isinstance(item, FeedGap):
                    self._buffered_gaps -= 1
                return item  # type: ignore[return-value]
            if self._closed:
                raise StopAsyncIteration
            await self._fill()

    async def _fill(self) -> None:
        """Read until at least one entry arrived (or the subscription closed)."""
        async with self._lock:
            backoff = Backoff(_BACKOFF)
            while not self._closed and not self._items:
                try:
                    await self._read_once()
                    backoff.reset()
                except RedisUnavailableError:
                    if self._closed:
                        return
                    self._reconnects += 1
                    await asyncio.sleep(backoff.next_delay())
                except RedisCommandError as exc:
                    if "NOGROUP" not in exc.message:
                        raise
                    # The group is gone (a Redis restart without persistence): create it
                    # again from the start of what Redis holds now.
                    self._ready = False
                    self._last = ["0"] * len(self._keys)

    async def _prepare(self) -> None:
        if self.group is not None:
            for key, start in zip(self._keys, self._last, strict=True):
                await self._redis.create_group(key, self.group, start)
        elif "$" in self._last:
            ids = await self._redis.last_ids(self._keys)
            self._last = [i if s == "$" else s for s, i in zip(self._last, ids, strict=True)]
        self._ready = True

    async def _read_once(self) -> None:
        """One round trip (two when claiming): entries of every stream, decoded into items.

        Plain ``XREAD``/``XREADGROUP`` with a large ``COUNT``, blocking only when nothing is
        waiting: Redis serves them from its stream index at about a microsecond per entry,
        hiredis parses the reply in C, and msgspec decodes each stored payload (see
        benchmarks/README-relay.md for why not a Lua script that packs the reply).
        """
        if not self._ready:
            await self._prepare()
        count = self._feed.read_count
        block_ms = max(1, int(self._feed.block_seconds * 1000))
        if self.group is None:
            streams = dict(zip(self._keys, self._last, strict=True))
            self._accept_plain(await self._redis.xread(streams, count=count, block_ms=block_ms))
            return
        assert self.consumer is not None
        claimed: list[_Raw] = []
        pending_phase = self._from[0] != ">"
        now = time.monotonic()
        if not pending_phase and now >= self._next_claim:
            self._next_claim = now + self.claim_idle / 2
            idle_ms = max(1, int(self.claim_idle * 1000))
            per_key = await self._redis.autoclaim(
                self._keys, self.group, self.consumer, idle_ms=idle_ms, count=count
            )
            claimed = [(key.encode(), e) for key, e in zip(self._keys, per_key, strict=True) if e]
        streams = dict(zip(self._keys, self._from, strict=True))
        block = None if pending_phase or claimed else block_ms
        reply = claimed + await self._redis.xreadgroup(
            self.group, self.consumer, streams, count=count, block_ms=block
        )
        items = self._decode(reply)
        if pending_phase:
            # This consumer's own pending entries after a restart, then the new ones.
            if not any(entries for _, entries in reply):
                self._from = [">"] * len(self._keys)
                return
            for key, entries in reply:
                if entries:
                    self._from[self._index[key] - 1] = entries[-1][0].decode()
        await self._accept(items)

    def _decode(self, reply: list[_Raw]) -> list[tuple[int, str, list[Any], FeedGap | None]]:
        """Turn raw stream replies into (stream index, id, its messages, its gap or None)."""
        type = self.type
        index = self._index
        items: list[tuple[int, str, list[Any], FeedGap | None]] = []
        append = items.append
        for key, entries in reply:
            i = index[key]
            for entry_id, fields in entries:
                if not fields:
                    continue  # a pending entry trimmed from the stream since
                try:
                    got = decode_entry(type, fields[0], fields[1])
                except _MALFORMED as exc:
                    self._skipped(key, entry_id, exc)
                    append((i, entry_id.decode(), [], None))  # acknowledged in _accept
                    continue
                if isinstance(got, list):
                    append((i, entry_id.decode(), got, None))
                else:
                    append((i, entry_id.decode(), [], got))
        return items

    def _accept_plain(self, reply: list[_Raw]) -> None:
        """Decode a plain read's entries into the buffer (the hot path: no ids kept per entry).

        A format-2 entry (``m2``) is one msgpack array: one decode call and one ``extend`` for
        all of its messages.
        """
        decode_batch = self._batch_decoder
        decode = self._entry_decoder.decode
        items = self._items
        append = items.append
        extend = items.extend
        index = self._index
        last = self._last
        count = gaps = 0
        for key, entries in reply:
            if not entries:
                continue
            for entry_id, fields in entries:
                field = fields[0]
                try:
                    if field == FIELD_BATCH:
                        batch = decode_batch(fields[1])
                        extend(batch)
                        count += len(batch)
                    elif field == FIELD_MESSAGE:
                        append(decode(fields[1]))
                        count += 1
                    elif field == FIELD_GAP:
                        append(GAP_DECODER.decode(fields[1]))
                        gaps += 1
                    else:
                        raise EntryFormatError(field)
                except _MALFORMED as exc:
                    self._skipped(key, entry_id, exc)
            last[index[key] - 1] = entries[-1][0].decode()
        self._received += count
        self._gaps += gaps
        self._buffered_gaps += gaps

    def _skipped(self, key: bytes, entry_id: bytes, exc: Exception) -> None:
        """Count an entry that does not decode; say so once per subscription."""
        if not self._malformed:
            _log.warning(
                "%s: skipped entry %s of %s, which does not decode as %s (%s); later ones are "
                "only counted in statistics().malformed",
                self,
                entry_id.decode(),
                key.decode(),
                self.type,
                exc,
            )
        self._malformed += 1

    async def _accept(self, items: list[tuple[int, str, list[Any], FeedGap | None]]) -> None:
        last = self._last
        out = self._items
        acks: dict[str, list[str]] = {}
        group = self.group
        unacked = self._unacked
        left = self._entry_left
        keys = self._keys
        for index, entry_id, messages, gap in items:
            last[index - 1] = entry_id
            if messages:
                self._received += len(messages)
                if group is not None:
                    key = keys[index - 1]
                    left[(key, entry_id)] = len(messages)
                    for message in messages:
                        unacked[id(message)] = (message, key, entry_id)
                out.extend(messages)
            else:
                if gap is not None:
                    self._gaps += 1
                    self._buffered_gaps += 1
                    out.append(gap)
                if group is not None:
                    acks.setdefault(keys[index - 1], []).append(entry_id)
        if acks and group is not None:
            # A marker (or an entry that does not decode) needs no processing: acknowledged
            # as it is handed out, so it is not delivered again.
            await self._redis.ack(acks, group)
