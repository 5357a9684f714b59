"""The router: every frame decoded once, routed by (type, code[, level]) in O(1) to its subscribers.

One :class:`Router` serves one connection. It is called synchronously on the socket reader
(:meth:`Router.taker` once per socket read, the function it returns per frame, which only
keeps the frame, then :meth:`Router.end_read`, which decodes and routes the read;
:meth:`Router.route` for frames that path does not take), so it never awaits and never logs
per frame. A read that one subscription takes whole goes into its buffer in one step
(:meth:`Router._bulk`); otherwise each message is delivered on its own.

* **Routing table.** Built from :meth:`SubscriptionBook.routing_table` and rebuilt lazily, at
  the first frame after :attr:`SubscriptionBook.version` changed: one dict lookup per frame
  (type, then code). Orderbook frames with a grouping ``level`` take a second table; a
  ``myOrder`` frame whose code nobody asked for goes to the all-markets subscribers.
* **Depth.** Upbit sends one book per (code, level) per connection, at the merged (largest)
  depth (docs/protocol.md section 2.3). Each subscriber gets the depth it asked for; those
  asking for the same depth share one truncated object.
* **Control frames.** ``{"status":"UP"}`` and LIST_SUBSCRIPTIONS replies go to the owner's
  ``on_control`` callback (pending ``list_subscriptions()``); the router only counts
  them. Error frames never come here: the connection reads them (one place).
* **Unwanted frames.** After a resubscribe a few frames of the old set still arrive (section
  3.2); frames nobody wants are dropped and counted, never an error. A frame that does not
  decode is counted and logged (its first 200 bytes) and the reader carries on.
* **Duplicate snapshots and late joiners.** Each stream key keeps the last message routed for
  it. A new subscription to a stream that is already flowing is seeded at once with that
  message (:meth:`Router.seed`), as Upbit would send a SNAPSHOT to a new subscriber; the
  request goes out with ``is_only_realtime`` for that stream, so nothing else would arrive
  until the next change. When there is no such message (the route was let go because its
  last subscriber left, before that removal went out), ``seed`` says so and the channel asks
  the planner to send the stream with a snapshot again. When a SNAPSHOT frame arrives after
  a resubscribe or a reconnect and carries exactly what the key's subscribers already have
  (every field equal except ``timestamp`` and ``stream_type``), it is a duplicate and is
  suppressed; a snapshot with new content (the market moved while the socket was down) is
  delivered, because it *is* the fresh state. Private streams (myOrder, myAsset) are events,
  never seeded.
* **Private integrity.** On the private router a gate (:meth:`Router.set_gate`, the
  reconciler's ``live``, behind a hold while a pass reads) sees every myOrder/myAsset message
  before delivery and may suppress one already delivered by a reconciliation, or hold it and
  hand it back later (:meth:`Router.deliver_live`); reconciled messages enter through
  :meth:`Router.deliver_reconciled`, to the same subscribers (codes and buffer policies
  apply). The public router never has a gate: its hot path is unchanged.
* **Statistics.** Messages and bytes by type, decode errors,
  exchange-to-client latency (receive time minus the frame's ``timestamp``, sampled one frame
  in :data:`LATENCY_SAMPLE_EVERY` of each stream, or of a read delivered whole, REALTIME frames
  only since snapshots carry old times, section 4.3), unwanted and duplicate counts.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

import msgspec

from upbit_ws.aio.stream import PushFn, Subscription
from upbit_ws.core.book import ALL_CODES, StreamKey, SubId, SubscriptionBook
from upbit_ws.core.constants import DEFAULT_ORDERBOOK_DEPTH, PRIVATE_TYPES, ConnectionKind
from upbit_ws.core.decode import DECODE_FAILURES, decode, decode_all, decode_data
from upbit_ws.core.errors import DecodeError, InvalidInputError
from upbit_ws.core.messages import (
    ErrorFrame,
    KeepAlive,
    Message,
    Orderbook,
    SubscriptionList,
    UnknownMessage,
)

__all__ = [
    "LATENCY_SAMPLE_EVERY",
    "LatencyHistogram",
    "LatencySummary",
    "Router",
    "RouterStatistics",
]

_log = logging.getLogger("upbit_ws.router")

#: One frame in this many of a stream has its exchange-to-client latency recorded (a power of
#: two).
LATENCY_SAMPLE_EVERY: Final = 16
_SAMPLE_MASK: Final = LATENCY_SAMPLE_EVERY - 1
#: Decode errors logged in full before the log is thinned to one in :data:`_LOG_EVERY`.
_LOG_FIRST: Final = 10
_LOG_EVERY: Final = 1000

#: Called with every control frame (keep-alive, LIST reply) and its receive time.
ControlHandler = Callable[[Message, float], None]
#: Called when a frame of a watched stream arrives (the first data of a new request).
WatchHandler = Callable[[float], None]
#: Takes one frame's payload, a view of the transport's buffer (see :meth:`Router.taker`).
FrameTaker = Callable[[memoryview], None]
#: Buffers a read's messages of one subscription, with each code's last (``_push_many``).
BulkPushFn = Callable[[list[Any], dict[str, Any]], None]
#: Reads with fewer messages go through the per-message delivery (no set-up to amortise).
_BULK_MIN: Final = 4
_CODE_OF: Final = attrgetter("code")
_STREAM_OF: Final = attrgetter("stream_type")


# ---------------------------------------------------------------------------------------------
# Latency sketch


def _bounds() -> tuple[float, ...]:
    # Geometric buckets, 20% apart, from 10 us to about 100 s: percentiles within 20%.
    out: list[float] = []
    value = 0.01
    while value < 100_000.0:
        out.append(round(value, 6))
        value *= 1.2
    return tuple(out)


_BOUNDS: Final = _bounds()


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles of a latency sketch, in milliseconds (``None`` before the first sample).

    Percentiles are bucket upper bounds (buckets 20% wide), capped at the largest sample.
    """

    count: int
    mean_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class LatencyHistogram:
    """A small fixed-bucket latency histogram in milliseconds: O(1) memory, cheap to add to.

    Negative samples (clock skew between the exchange and this host) count into the lowest
    bucket; :attr:`negative` says how many there were.
    """

    __slots__ = ("_counts", "_max", "_sum", "count", "negative")

    def __init__(self) -> None:
        self._counts = [0] * (len(_BOUNDS) + 1)
        self._sum = 0.0
        self._max = -math.inf
        self.count = 0
        self.negative = 0

    def add(self, ms: float) -> None:
        """Record one sample of ``ms`` milliseconds."""
        if ms < 0:
            self.negative += 1
            ms = 0.0
        self._counts[bisect.bisect_left(_BOUNDS, ms)] += 1
        self.count += 1
        self._sum += ms
        if ms > self._max:
            self._max = ms

    def percentile(self, q: float) -> float | None:
        """Return the ``q`` quantile (0..1) in ms, or ``None`` without samples."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                bound = _BOUNDS[index] if index < len(_BOUNDS) else self._max
                return min(bound, self._max)
        return self._max

    def summary(self) -> LatencySummary:
        """Return count, mean, p50, p90, p99 and max."""
        if not self.count:
            return LatencySummary(0, None, None, None, None, None)
        return LatencySummary(
            count=self.count,
            mean_ms=self._sum / self.count,
            p50_ms=self.percentile(0.5),
            p90_ms=self.percentile(0.9),
            p99_ms=self.percentile(0.99),
            max_ms=self._max,
        )


# ---------------------------------------------------------------------------------------------
# Routes


class _Route:
    """Who receives frames of one stream key, and that key's last message and counters."""

    __slots__ = (
        "groups",
        "key",
        "last",
        "level_check",
        "messages",
        "nbytes",
        "single",
        "suppressed",
        "watched",
    )

    def __init__(self, key: StreamKey) -> None:
        self.key = key
        #: (depth to cut to or None, push functions): subscribers sharing a depth share a book.
        self.groups: tuple[tuple[int | None, tuple[PushFn, ...]], ...] = ()
        #: The only push function when there is exactly one uncut subscriber (the fast path).
        self.single: PushFn | None = None
        self.last: Any = None
        #: A level-0 orderbook route whose code also has levelled subscribers: check the level.
        self.level_check = False
        self.watched = False
        self.messages = 0
        self.nbytes = 0
        self.suppressed = 0


@dataclass(frozen=True, slots=True)
class RouterStatistics:
    """A snapshot of one connection's router.

    ``messages_by_type``/``bytes_by_type`` count data frames routed to at least one
    subscriber (duplicates included); ``unwanted`` counts data frames nobody wanted (in flight
    after a resubscribe), ``duplicate_snapshots`` the SNAPSHOT frames suppressed as duplicates.
    ``latency`` is exchange-to-client latency (sampled, REALTIME frames).
    """

    connection: ConnectionKind
    frames: int
    bytes: int
    messages_by_type: dict[str, int]
    bytes_by_type: dict[str, int]
    decode_errors: int
    keepalives: int
    list_replies: int
    unknown_types: int
    unwanted: int
    duplicate_snapshots: int
    routes: int
    latency: LatencySummary
    clock_skew_samples: int
    #: Private: live messages the gate took (suppressed, already delivered by a
    #: reconciliation, or held for a pass and delivered later), and reconciled messages
    #: routed (see the module docs).
    gated: int = 0
    reconciled: int = 0


class Router:
    """Decode and route the frames of one connection; see the module docs.

    ``sinks`` maps live subscription ids to their :class:`~upbit_ws.aio.stream.Subscription`
    (owned and kept current by the subscription service). ``wall_offset`` converts the
    receive time (the shell's monotonic clock) to epoch seconds for the latency statistic.
    """

    def __init__(
        self,
        book: SubscriptionBook,
        *,
        connection: ConnectionKind,
        sinks: Mapping[SubId, Subscription[Any]],
        on_control: ControlHandler,
        on_watch: WatchHandler,
        wall_offset: float = 0.0,
    ) -> None:
        self._book = book
        self._connection: ConnectionKind = connection
        self._private = connection == "private"
        self._sinks = sinks
        self._on_control = on_control
        self._on_watch = on_watch
        self.wall_offset = wall_offset
        self._version = -1
        self._routes: dict[StreamKey, _Route] = {}
        self._tables: dict[str, dict[str | None, _Route]] = {}
        self._leveled: dict[tuple[str, int | float], _Route] = {}
        self._watching: list[_Route] = []
        # The socket read being taken (see taker): its receive time, its frames and where
        # frames the fast decoder refuses go.
        self._read_at = 0.0
        self._views: list[memoryview] = []
        self._other: FrameTaker = _nowhere
        # Bulk delivery (see _bulk): type -> the one subscription's _push_many, when one
        # uncut subscription receives every stream of that type; per-type counters of it.
        self._bulk_sinks: dict[str, BulkPushFn] = {}
        self._bulk_messages: dict[str, int] = {}
        self._bulk_bytes: dict[str, int] = {}
        # Counters of routes that no longer exist, by type.
        self._gone_messages: dict[str, int] = {}
        self._gone_bytes: dict[str, int] = {}
        self._gone_suppressed = 0
        self._other_frames = 0
        self._other_bytes = 0
        self._decode_errors = 0
        self._keepalives = 0
        self._list_replies = 0
        self._unknown = 0
        self._unwanted = 0
        self._gate: Callable[[Any, int, float], bool] | None = None
        self._gated = 0
        self._reconciled = 0
        self.latency = LatencyHistogram()

    def __repr__(self) -> str:
        return (
            f"<Router {self._connection} routes={len(self._routes)} "
            f"unwanted={self._unwanted} decode_errors={self._decode_errors}>"
        )

    # -- the hot path --------------------------------------------------------------------------

    def taker(self, received_at: float, other: FrameTaker) -> FrameTaker:
        """Return the function that takes the data frames of one socket read (the hot path).

        The connection calls this once per read (``received_at`` is that read's time), the
        returned function with every frame's payload, and :meth:`end_read` once the read's
        last frame was taken. The function only keeps the payload (a C call, no Python frame
        per frame): payloads are views of the transport's read buffer, which stays put until
        the read ends. :meth:`end_read` then decodes them in one C-level pass (msgspec's
        decoder mapped over the read) and routes the messages, a whole read at once when one
        subscription takes every frame of it (:meth:`_bulk`). A frame the fast decoder
        refuses (an error frame, a control frame, SIMPLE, a candle, garbage) goes to
        ``other`` in its place in the order, which reads it the slow way (the connection's
        error-frame check, then :meth:`route`); the frames around it are not affected.
        """
        self._read_at = received_at
        self._other = other
        views = self._views
        if views:  # a read that never ended (cannot happen with picows): its views are stale
            views.clear()
        return views.append

    def end_read(self, nbytes: int, failed: Callable[[], None]) -> None:
        """Route the frames taken since :meth:`taker`; see there.

        ``nbytes`` is the payload bytes of those frames (the transport counts them). ``failed``
        is called inside the ``except`` block when a delivery raised (a bug downstream): that
        message, or the messages of that bulk delivery, are lost; the rest of the read is
        still routed.
        """
        views = self._views
        if not views:
            return
        try:
            if self._version != self._book.version:
                self._rebuild()
            if len(views) == 1:  # the usual read at normal load: no list, no scans
                self._take_one(views[0], failed)
            else:
                self._take_many(views, nbytes, failed)
        finally:
            views.clear()

    def _take_one(self, view: memoryview, failed: Callable[[], None]) -> None:
        """Route a read of one frame."""
        try:
            msg: Any = decode_data(view)
        except DECODE_FAILURES:
            msg = None
        try:
            if msg is None:
                self._other(view)
            else:
                self._deliver(msg, len(view), self._read_at)
        except Exception:
            failed()

    def _take_many(self, views: list[memoryview], nbytes: int, failed: Callable[[], None]) -> None:
        """Route a read of several frames: decoded in C, delivered whole when it qualifies."""
        at = self._read_at
        start, count = 0, len(views)
        while start < count:
            msgs: list[Any] = []
            try:
                # In C; on a refused frame, the messages before it stay in ``msgs``.
                msgs.extend(map(decode_data, views[start:] if start else views))
            except DECODE_FAILURES:
                refused = True
            else:
                refused = False
            end = start + len(msgs)
            try:
                bulk = len(msgs) >= _BULK_MIN and self._bulk(
                    msgs, nbytes if end - start == count else sum(map(len, views[start:end]))
                )
            except Exception:
                failed()  # a bug downstream: these messages are lost, the read goes on
                bulk = True
            if not bulk:
                deliver = self._deliver
                for index, msg in enumerate(msgs, start):
                    try:
                        deliver(msg, len(views[index]), at)
                    except Exception:
                        failed()
            start += len(msgs)
            if refused:
                try:
                    self._other(views[start])
                except Exception:
                    failed()
                start += 1

    def _bulk(self, msgs: list[Any], nbytes: int) -> bool:
        """Route a read's messages in one step if one subscription takes them all as they are.

        That is the common case of a flood (one component, one type on the connection): the
        messages are all of one type whose every route delivers to one and the same uncut
        subscriber (:attr:`_bulk_sinks`), all of codes it routes, none a SNAPSHOT (those may
        be duplicates to suppress) and nothing watched. Then the per-message work is C-level
        (the type, code and stream-type scans, the last message per code, the buffer's
        extend) and the counters are kept per read. Returns ``False``, having done nothing,
        when the read does not qualify: :meth:`_deliver` then takes each message.
        """
        classes: set[Any] = set(map(type, msgs))
        if len(classes) != 1 or self._watching:
            return False
        kind: str = classes.pop().type
        sink = self._bulk_sinks.get(kind)
        # A set: Literal strings are shared objects, so this is a hash lookup per message.
        if sink is None or "SNAPSHOT" in set(map(_STREAM_OF, msgs)):
            return False
        lasts: dict[str, Any] = dict(zip(map(_CODE_OF, msgs), msgs, strict=True))
        table = self._tables[kind]
        if not lasts.keys() <= table.keys():
            return False  # some code nobody wants (in flight after a resubscribe)
        for code, msg in lasts.items():
            table[code].last = msg
        n = len(msgs)
        self._bulk_messages[kind] = self._bulk_messages.get(kind, 0) + n
        self._bulk_bytes[kind] = self._bulk_bytes.get(kind, 0) + nbytes
        # One frame in LATENCY_SAMPLE_EVERY of the read (all REALTIME: checked above).
        wall_ms = (self._read_at + self.wall_offset) * 1000.0
        add = self.latency.add
        for msg in msgs[_SAMPLE_MASK::LATENCY_SAMPLE_EVERY]:
            add(wall_ms - msg.timestamp)
        sink(msgs, lasts)
        return True

    def route(self, payload: bytes, received_at: float) -> None:
        """Decode one frame and deliver it to every subscription that wants it."""
        if self._version != self._book.version:
            self._rebuild()
        try:
            msg: Any = decode(payload)
        except DecodeError as exc:
            self._undecodable(payload, exc, received_at)
            return
        self._deliver(msg, len(payload), received_at)

    def _deliver(self, msg: Any, size: int, received_at: float) -> None:
        """Deliver one decoded message: THE delivery function (list-format frames use it too)."""
        try:
            route: _Route | None = self._tables[msg.type][msg.code]
        except KeyError:
            route = None
        if route is None or route.level_check:
            route = self._slow_route(msg, size, received_at)
            if route is None:
                return
        n = route.messages + 1
        route.messages = n
        route.nbytes += size
        last = route.last
        route.last = msg
        if route.watched:
            # Before the duplicate test: a repeated snapshot (a quiet code after a reconnect)
            # is not delivered again, but it proves that Upbit serves the stream.
            self._watch_hit(received_at)
        if msg.stream_type == "REALTIME":
            # One frame in LATENCY_SAMPLE_EVERY of each stream (snapshots carry old times).
            if not n & _SAMPLE_MASK:
                self.latency.add((received_at + self.wall_offset) * 1000.0 - msg.timestamp)
        elif last is not None and msg.stream_type == "SNAPSHOT" and _same(last, msg):
            route.suppressed += 1
            return
        single = route.single
        if single is not None:
            single(msg, msg.code)
            return
        code = msg.code
        for depth, pushes in route.groups:
            item = msg if depth is None else msg.truncated(depth)
            for push in pushes:
                push(item, code)

    def _deliver_gated(self, msg: Any, size: int, received_at: float) -> None:
        """Private delivery: myOrder/myAsset pass the gate first (see :meth:`set_gate`)."""
        gate = self._gate
        if gate is not None and msg.type in PRIVATE_TYPES and not gate(msg, size, received_at):
            self._gated += 1
            return
        Router._deliver(self, msg, size, received_at)

    def set_gate(self, gate: Callable[[Any, int, float], bool]) -> None:
        """Pass every private message through ``gate(msg, size, received_at)`` first.

        ``False`` means the gate took the message: it suppressed it (already delivered) or
        holds it to hand back later through :meth:`deliver_live`. Private routers only (the
        public hot path keeps its direct delivery). The gate runs on the socket reader: it
        must be quick and never raise.
        """
        if not self._private:
            raise InvalidInputError("only the private router takes a gate")
        self._gate = gate
        # An instance attribute shadows the method: route() and list frames call this one.
        self._deliver = self._deliver_gated  # type: ignore[method-assign]

    def deliver_live(self, msg: Any, size: int, received_at: float) -> None:
        """Deliver a live message the gate held, as it would have been delivered then."""
        self.sync()
        Router._deliver(self, msg, size, received_at)

    def deliver_reconciled(self, msg: Any) -> int:
        """Deliver a message rebuilt from REST to the stream's subscribers; return how many.

        The same routes as live frames (codes, all-markets myOrder subscribers, buffer
        policies), without the live bookkeeping: no latency sample, no watch, no seeding.
        """
        self.sync()
        table = self._tables.get(msg.type)
        if table is None:
            return 0
        key = None if msg.type == "myAsset" else msg.code
        route = table.get(key)
        if route is None and msg.type == "myOrder":
            route = table.get(ALL_CODES)
        if route is None:
            return 0
        self._reconciled += 1
        delivered = 0
        for _depth, pushes in route.groups:
            for push in pushes:
                push(msg, msg.code)
                delivered += 1
        return delivered

    def _slow_route(self, msg: Any, size: int, received_at: float) -> _Route | None:
        """Route what missed the fast path: control frames, levels, myOrder for all markets."""
        kind = msg.type
        if isinstance(msg, ErrorFrame | KeepAlive | SubscriptionList | UnknownMessage):
            # Error frames are read by the connection and never routed (it hands them to the
            # channel typed); one that reaches a router anyway counts as an unknown frame.
            self._other_frames += 1
            self._other_bytes += size
            if isinstance(msg, KeepAlive):
                self._keepalives += 1
            elif isinstance(msg, SubscriptionList):
                self._list_replies += 1
            else:
                self._unknown += 1
                return None
            self._on_control(msg, received_at)
            return None
        route: _Route | None = None
        if kind == "orderbook" and msg.level:
            route = self._leveled.get((msg.code, msg.level))
        else:
            table = self._tables.get(kind)
            if table is not None:
                route = table.get(msg.code)
                if route is None and kind == "myOrder":
                    route = table.get(ALL_CODES)
        if route is None:
            self._unwanted += 1
            self._other_frames += 1
            self._other_bytes += size
        return route

    def _undecodable(self, payload: bytes, exc: DecodeError, received_at: float) -> None:
        # A list-format frame with several messages is not an error: route each one
        # (section 2.5; the library asks for DEFAULT, so this is a fallback).
        if payload[:1] == b"[":
            try:
                messages = decode_all(payload)
            except DecodeError:
                pass
            else:
                share = len(payload) // max(1, len(messages))
                for message in messages:
                    self._deliver(message, share, received_at)
                return
        self._decode_errors += 1
        count = self._decode_errors
        if count <= _LOG_FIRST or count % _LOG_EVERY == 0:
            _log.warning(
                "undecodable frame on the %s connection (%d so far): %s; first bytes %r",
                self._connection,
                count,
                exc.reason,
                exc.frame_head,
            )

    def _watch_hit(self, received_at: float) -> None:
        self.unwatch()
        self._on_watch(received_at)

    # -- control from the service ------------------------------------------------------------

    def watch(self, keys: frozenset[StreamKey]) -> None:
        """Call ``on_watch`` at the first frame of any of ``keys`` (then forget them)."""
        self.unwatch()
        if not keys:
            return
        self.sync()
        for key in keys:
            route = self._routes.get(key)
            if route is not None:
                route.watched = True
                self._watching.append(route)

    def unwatch(self) -> None:
        """Forget the watched keys."""
        for route in self._watching:
            route.watched = False
        self._watching.clear()

    def seed(self, sub: Subscription[Any], keys: Iterable[StreamKey]) -> list[StreamKey]:
        """Give a new subscriber the last message of each of ``keys`` already flowing.

        Returns the public keys it had no message for: streams not flowing yet (their
        snapshot is on its way) or streams whose route was let go when their last subscriber
        left (the caller asks the planner for a fresh snapshot of those still streaming).
        Call it right after the book changed: the routes consulted are those of the previous
        version, whose last messages are the current state of streams other subscribers
        already receive. Private streams are events, never seeded.
        """
        missing: list[StreamKey] = []
        push = sub._push
        for key in keys:
            if key[0] in PRIVATE_TYPES:
                continue
            route = self._routes.get(key)
            if route is None or route.last is None:
                missing.append(key)
                continue
            msg = route.last
            if sub.depth is not None and sub.depth < DEFAULT_ORDERBOOK_DEPTH:
                msg = msg.truncated(sub.depth)
            push(msg, msg.code)
        return missing

    def sync(self) -> None:
        """Rebuild the routing table now if the book changed since the last build."""
        if self._version != self._book.version:
            self._rebuild()

    def _rebuild(self) -> None:
        book = self._book
        version = book.version
        table = book.routing_table()
        all_orders = table.get(("myOrder", ALL_CODES, None), {})
        routes: dict[StreamKey, _Route] = {}
        for key, holders in table.items():
            kind, code, _level = key
            if (kind in PRIVATE_TYPES) != self._private:
                continue
            route = self._routes.get(key)
            if route is None:
                route = _Route(key)
            merged = dict(holders)
            if kind == "myOrder" and code != ALL_CODES:
                merged.update(all_orders)
            self._set_targets(route, merged)
            routes[key] = route
        for key, route in self._routes.items():
            if key not in routes:
                self._fold(route)
        tables: dict[str, dict[str | None, _Route]] = {}
        leveled: dict[tuple[str, int | float], _Route] = {}
        for (kind, code, level), route in routes.items():
            route.level_check = False
            if kind == "orderbook" and level:
                leveled[(code, level)] = route
            else:
                tables.setdefault(kind, {})[None if kind == "myAsset" else code] = route
        book_table = tables.get("orderbook", {})
        for code, _ in leveled:
            plain = book_table.get(code)
            if plain is not None:
                plain.level_check = True
        self._routes = routes
        self._tables = tables
        self._leveled = leveled
        self._bulk_sinks = {} if self._private else _bulk_sinks(tables, leveled)
        self._watching = [r for r in self._watching if r.key in routes]
        self._version = version

    def _set_targets(self, route: _Route, holders: dict[SubId, int | None]) -> None:
        by_depth: dict[int | None, list[PushFn]] = {}
        for sub_id, depth in holders.items():
            sink = self._sinks.get(sub_id)
            if sink is None:
                continue
            # Frames never carry more than 30 units (section 2.3): a depth-30 subscriber
            # takes the frame as it is.
            cut = depth if depth is not None and depth < DEFAULT_ORDERBOOK_DEPTH else None
            by_depth.setdefault(cut, []).append(sink._push)
        route.groups = tuple((depth, tuple(pushes)) for depth, pushes in by_depth.items())
        only = route.groups[0] if len(route.groups) == 1 else None
        route.single = only[1][0] if only and only[0] is None and len(only[1]) == 1 else None

    def _fold(self, route: _Route) -> None:
        kind = route.key[0]
        self._gone_messages[kind] = self._gone_messages.get(kind, 0) + route.messages
        self._gone_bytes[kind] = self._gone_bytes.get(kind, 0) + route.nbytes
        self._gone_suppressed += route.suppressed

    # -- statistics --------------------------------------------------------------------------

    def statistics(self) -> RouterStatistics:
        """Return a snapshot of the counters."""
        messages = dict(self._gone_messages)
        nbytes = dict(self._gone_bytes)
        suppressed = self._gone_suppressed
        for kind, count in self._bulk_messages.items():
            messages[kind] = messages.get(kind, 0) + count
            nbytes[kind] = nbytes.get(kind, 0) + self._bulk_bytes[kind]
        for (kind, _code, _level), route in self._routes.items():
            messages[kind] = messages.get(kind, 0) + route.messages
            nbytes[kind] = nbytes.get(kind, 0) + route.nbytes
            suppressed += route.suppressed
        frames = sum(messages.values()) + self._other_frames + self._decode_errors
        return RouterStatistics(
            connection=self._connection,
            frames=frames,
            bytes=sum(nbytes.values()) + self._other_bytes,
            messages_by_type={k: v for k, v in sorted(messages.items()) if v},
            bytes_by_type={k: v for k, v in sorted(nbytes.items()) if v},
            decode_errors=self._decode_errors,
            keepalives=self._keepalives,
            list_replies=self._list_replies,
            unknown_types=self._unknown,
            unwanted=self._unwanted,
            duplicate_snapshots=suppressed,
            routes=len(self._routes),
            latency=self.latency.summary(),
            clock_skew_samples=self.latency.negative,
            gated=self._gated,
            reconciled=self._reconciled,
        )


def _bulk_sinks(
    tables: dict[str, dict[str | None, _Route]], leveled: dict[tuple[str, int | float], _Route]
) -> dict[str, BulkPushFn]:
    """Return, per type, the bulk push of the one subscription every route delivers to uncut."""
    sinks: dict[str, BulkPushFn] = {}
    for kind, table in tables.items():
        if kind == "orderbook" and leveled:
            continue
        pushes = {route.single for route in table.values()}
        if len(pushes) != 1:
            continue
        push = pushes.pop()
        owner = getattr(push, "__self__", None)
        if isinstance(owner, Subscription) and all(not r.level_check for r in table.values()):
            sinks[kind] = owner._push_many
    return sinks


def _nowhere(payload: memoryview) -> None:
    """Drop a frame (the router's ``other`` before the first read)."""


def _same(last: Any, new: Any) -> bool:
    """Tell whether ``new`` says nothing ``last`` did not (all fields but the send time)."""
    if type(last) is not type(new):
        return False
    if isinstance(new, Orderbook) and len(new.orderbook_units) != len(last.orderbook_units):
        return False
    try:
        same: bool = (
            msgspec.structs.replace(last, timestamp=new.timestamp, stream_type=new.stream_type)
            == new
        )
    except TypeError:  # a message without those fields
        return False
    return same
