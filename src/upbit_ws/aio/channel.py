"""One connection's share of the subscription layer: listener, router, flusher, confirmation.

A :class:`Channel` is the :class:`~upbit_ws.aio.connection.ConnectionListener` of one
connection (public or private). The subscription service owns one per connection; see
:mod:`upbit_ws.aio.subscriptions` for the whole picture. What happens here:

* frames go straight to the channel's :class:`~upbit_ws.aio.router.Router` (``frame_taker``
  *is* ``router.taker``, ``on_frame`` *is* ``router.route``: no call layer on the hot path);
* one flusher task waits for a change, coalesces for a few ms, plans the full request from the
  book and sends it through ``connection.send`` (the one rate-limited path); a change made
  while a send waits is carried by the next request (docs/protocol.md section 3: every
  request replaces the whole subscription, so only the latest state matters);
* confirmation at the first frame of a stream the request added, or after a quiet window
  without an error frame (Upbit acknowledges nothing, section 1.3): ``confirm_quiet`` for a
  request that adds no public stream, ``change_timeout`` for one that does (a request whose
  new streams stay silent that long is counted as *silent* and logged: Upbit ignores unknown
  codes and unsupported levels without an error, sections 2.3 and 2.4);
* error frames come decoded from the connection (``on_error``; the connection reads and logs
  them, :func:`~upbit_ws.core.classify.error_frame_meaning` says what a name means). One
  naming a malformed request while a request is in flight is its rejection. Other names are
  not about the request's content and never mark the desired state rejected: ``INVALID_AUTH``
  on the private socket is the key being refused (the connection reports it to the key-health
  path, section 5), and ``TOO_MANY_REQUEST`` is documented only for indicator requests, which
  this library never sends, so it can only be a limit we do not know (section 14.1); in every
  case Upbit closes the socket (section 7.3) and the current desired state goes out again on
  the next one, paced by the reconnect backoff;
* a new subscriber to a stream already flowing is seeded with the stream's last message; when
  there is none, the planner re-sends that stream without ``is_only_realtime`` so that Upbit
  sends its snapshot again (:meth:`Channel.seed`);
* an empty desired state on the public connection is sent as one ``is_only_snapshot`` ticker
  request (one frame, then silence; section 2.2); on the private connection nothing is sent;
* after a reconnect everything is planned fresh and a reconnect gap event goes out for each
  event stream (trade, candles, myOrder, myAsset);
* private gaps (a reconnect, a stall the socket lived through) are handed to ``on_gap`` with
  where they began, for the REST reconciliation (:mod:`upbit_ws.aio.private`), which waits
  for :attr:`Channel.subscribed` (the request written on the current socket) before it reads;
* LIST_SUBSCRIPTIONS questions wait for Upbit's reply, matched by the ticket it echoes
  (section 3.3), else in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from upbit_ws.aio.component import ConnectionView
from upbit_ws.aio.connection import ManagedConnection
from upbit_ws.aio.router import (
    FrameTaker,
    LatencyHistogram,
    LatencySummary,
    Router,
    RouterStatistics,
)
from upbit_ws.aio.stream import Subscription
from upbit_ws.core.book import StreamKey, SubId, SubscriptionBook, WantedStream
from upbit_ws.core.classify import error_frame_meaning
from upbit_ws.core.constants import CANDLE_TYPES, PRIVATE_TYPES, ConnectionKind
from upbit_ws.core.encode import TypeRequest, encode_list_subscriptions, encode_request, new_ticket
from upbit_ws.core.errors import ServerRejectedError, TransportError, UpbitWsError
from upbit_ws.core.events import Event, GapEvent, ReconcileCause, RequestRejected
from upbit_ws.core.messages import ErrorFrame, Message, SubscribedType, SubscriptionList
from upbit_ws.core.planner import Plan, PlannerStatistics, SubscriptionPlanner

__all__ = ["Channel", "ChannelStatistics"]

_log = logging.getLogger("upbit_ws.subscriptions")

#: The market a public connection's quiesce request names when nothing is wanted.
_QUIESCE_CODE: Final = "KRW-BTC"
#: Streams whose frames are events, lost for good while a socket is down.
_GAP_TYPES: Final = frozenset({"trade", "myOrder", "myAsset", *CANDLE_TYPES})


class _SocketGone(TransportError):
    """The socket a LIST_SUBSCRIPTIONS question went out on ended before it answered."""


@dataclass(frozen=True, slots=True)
class ChannelStatistics:
    """Counters of the subscription layer on one connection.

    ``requests_sent`` counts subscription requests written (``quiesce_requests`` of them for an
    empty desired state); ``changes`` counts book changes that woke the flusher, so
    ``changes - requests_sent`` is roughly what coalescing saved. ``change_latency`` runs from
    a change to the first frame of a stream it added. ``rejections`` counts error frames that
    refused a request in flight as malformed; ``other_errors`` the error frames that did not
    (``INVALID_AUTH``, ``TOO_MANY_REQUEST``, ...). ``flusher_restarts`` counts restarts of the
    flusher after an internal error.
    """

    connection: ConnectionKind
    state: str
    desired_streams: int
    confirmed_streams: int
    in_flight: bool
    changes: int
    requests_sent: int
    quiesce_requests: int
    send_failures: int
    confirmed_by_data: int
    confirmed_by_quiet: int
    silent_changes: int
    rejections: int
    other_errors: int
    list_requests: int
    reconnect_gaps: int
    flusher_restarts: int
    change_latency: LatencySummary
    router: RouterStatistics
    planner: PlannerStatistics


class Channel:
    """The subscription layer of one connection: its listener, router and flusher.

    Built by the subscription service with what it needs: the shared ``book``, ``planner`` and
    ``sinks`` (live subscriptions by id), the shell clock ``now``, ``publish`` for events,
    the timings, ``markets`` (the cached market list, for the quiesce request),
    ``before_send`` (called before each request, to refresh the latency clock offset) and
    ``on_opened`` (called when a socket opens: the network works again).
    """

    def __init__(
        self,
        kind: ConnectionKind,
        *,
        book: SubscriptionBook,
        planner: SubscriptionPlanner,
        sinks: Mapping[SubId, Subscription[Any]],
        now: Callable[[], float],
        publish: Callable[[Event], None],
        coalesce: float,
        confirm_quiet: float,
        change_timeout: float,
        markets: Callable[[], frozenset[str] | None],
        before_send: Callable[[], None],
        fail_subscriptions: Callable[[Iterable[SubId], BaseException], None] | None = None,
        on_opened: Callable[[], None] | None = None,
    ) -> None:
        self.kind: ConnectionKind = kind
        self._on_opened = on_opened
        self._book = book
        self._planner = planner
        self._now = now
        self._publish = publish
        self._coalesce = coalesce
        self._confirm_quiet = confirm_quiet
        self._change_timeout = change_timeout
        self._markets = markets
        self._before_send = before_send
        self._sinks = sinks
        self._fail_subscriptions = fail_subscriptions
        self.router = Router(
            book,
            connection=kind,
            sinks=sinks,
            on_control=self._on_control,
            on_watch=self._on_watch,
        )
        #: The hot path: frames go straight to the router (ConnectionListener.on_frame).
        self.on_frame: Callable[[bytes, float], None] = self.router.route
        #: The faster hot path, one call per socket read (ConnectionListener.frame_taker).
        self.frame_taker: Callable[[float, FrameTaker], FrameTaker] = self.router.taker
        #: The end of each such read: its frames are routed then.
        self.frames_taken: Callable[[int, Callable[[], None]], None] = self.router.end_read
        #: The connection that uses this channel as its listener (``None``: detached).
        self.connection: ManagedConnection | None = None
        #: The error that stopped the flusher for good, if it crashed too often.
        self.broken: BaseException | None = None
        self._wake = asyncio.Event()
        self._change_since: float | None = None
        # The request written (or being written) and not yet confirmed or rejected.
        self._inflight: Plan | None = None
        self._inflight_since: float | None = None
        self._sent_recorded = False
        self._resent = False  # the request in flight re-sends accepted streams on a new socket
        self._hit_at: float | None = None
        self._quiet: asyncio.TimerHandle | None = None
        self._sent_keys: frozenset[StreamKey] = frozenset()
        #: The type objects of the last request written on the current socket.
        self.last_request: tuple[TypeRequest, ...] = ()
        # The plan of that request (None: nothing written on this socket yet).
        self._socket_plan: Plan | None = None
        self._closed_at: float | None = None
        # The receive time of the last frame on any socket: where a connection loss begins.
        self._last_frame_at: float | None = None
        # The plan of the request last built for a spare socket (a hedge under way).
        self._spare_plan: Plan | None = None
        # Pending LIST_SUBSCRIPTIONS questions by ticket, oldest first.
        self._list_waiters: dict[str, asyncio.Future[SubscriptionList]] = {}
        self.change_latency = LatencyHistogram()
        self.changes = 0
        self.requests_sent = 0
        self.quiesce_requests = 0
        self.send_failures = 0
        self.confirmed_by_data = 0
        self.confirmed_by_quiet = 0
        self.silent_changes = 0
        self.rejections = 0
        self.other_errors = 0
        self.list_requests = 0
        self.reconnect_gaps = 0
        self.flusher_restarts = 0
        self.stale_resubscribes = 0
        #: Told of every private gap: ``on_gap(cause, since)``, ``since`` the monotonic time
        #: of the last frame before it (the private reconciliation; None: nobody listens).
        self.on_gap: Callable[[ReconcileCause, float], None] | None = None
        #: Set while the current socket carries the desired subscription (its request was
        #: written); cleared when the socket goes.
        self.subscribed = asyncio.Event()

    def __repr__(self) -> str:
        return f"<channel {self.kind} requests_sent={self.requests_sent}>"

    # -- ConnectionListener ------------------------------------------------------------------

    def on_open(self, connection: ManagedConnection) -> None:
        """Take a new socket: forget what the old one streamed and send everything fresh."""
        self.connection = connection
        self._forget_socket()
        now = self._now()
        connection.set_streaming(self.kind == "public" and bool(self._desired()))
        if self._closed_at is not None:
            self._publish_reconnect_gaps(self._closed_at, now)
            if self.on_gap is not None:
                self.on_gap("reconnect", self._closed_at)
            self._closed_at = None
        if self._desired():
            self.poke(now)
        if self._on_opened is not None:
            self._on_opened()

    def on_closed(self, connection: ManagedConnection) -> None:
        """Note the socket is gone: nothing streams and nothing is in flight any more.

        The loss begins at the last frame received (issue #9: not when the loss was noticed,
        up to a pong timeout later), or at the loss of an earlier socket that delivered
        nothing since.
        """
        self._socket_lost(connection.session.last_frame_at)

    def _socket_lost(self, last: float | None) -> None:
        """Forget the socket that ended; ``last``: its last frame (None: it delivered none)."""
        self._forget_socket()
        if last is not None:
            self._last_frame_at = last
        if self._closed_at is None:
            since = self._last_frame_at
            self._closed_at = since if since is not None else self._now()
        self._fail_list_waiters(
            _SocketGone(f"the {self.kind} connection closed before Upbit answered")
        )

    def spare_request(self, connection: ManagedConnection) -> bytes | None:
        """Return the request for a spare socket (a hedge): the newest desired state, fresh.

        Everything with its snapshot, as after a reconnect (the server keeps nothing across
        sockets, docs/protocol.md section 3.2); the plan is kept for :meth:`on_switched`.
        ``None`` on a private connection with nothing wanted (a pong proves the spare).
        """
        plan = self._planner.fresh_plan(self.kind)
        self._spare_plan = plan
        self._before_send()
        if plan.is_empty:
            return self._quiesce_frame() if self.kind == "public" else None
        return encode_request(plan.types, ticket=new_ticket())

    def on_switched(self, connection: ManagedConnection, since: float | None) -> None:
        """Take the spare socket of a hedge that won: a reconnect that overlapped.

        The old socket is gone: the gap runs from its last frame (``since``) exactly as for a
        reconnect (:meth:`on_closed` then :meth:`on_open`), but the new socket already carries
        the request :meth:`spare_request` built, so it is recorded as sent rather than sent
        again; a change made during the hedge goes out next, as a change.
        """
        self._socket_lost(since)
        self.connection = connection
        now = self._now()
        if self._closed_at is not None:
            self._publish_reconnect_gaps(self._closed_at, now)
            if self.on_gap is not None:
                self.on_gap("reconnect", self._closed_at)
            self._closed_at = None
        plan, self._spare_plan = self._spare_plan, None
        if plan is not None:
            watch = frozenset(w.key for w in plan.snapshot_streams() if w.type not in PRIVATE_TYPES)
            self._inflight = plan
            self.router.watch(watch)
            sent = not (plan.is_empty and self.kind == "private")
            # The same rule as the first request after a reconnect (see _flush): the spare
            # re-sent only accepted streams and no data can confirm them, so it is applied.
            self._resent = not watch and self._planner.last_accepted(self.kind).issuperset(
                plan.desired
            )
            self._written(connection, plan, sent=sent, added=watch)
        if self._desired():
            self.poke(now)

    def on_stale(self, connection: ManagedConnection) -> None:
        """Re-send the whole desired state with fresh snapshots on the same socket (issue #9)."""
        if connection is not self.connection:
            return
        self.stale_resubscribes += 1
        self._forget_socket()
        if self._desired():
            self.poke(self._now())

    def on_stall(self, connection: ManagedConnection, since: float) -> None:
        """Hand a stall the open socket lived through to ``on_gap`` (private; issue #9)."""
        if connection is not self.connection or self.on_gap is None:
            return
        self.on_gap("stall", since)

    def _forget_socket(self) -> None:
        self.subscribed.clear()
        self._reset_inflight()
        self._planner.connection_lost(self.kind)
        self._sent_keys = frozenset()
        self._socket_plan = None
        self.last_request = ()

    # -- changes and the flusher -------------------------------------------------------------

    def poke(self, now: float) -> None:
        """Note that the desired state changed; the flusher sends it after the window."""
        self.changes += 1
        if self._change_since is None:
            self._change_since = now
        self._wake.set()

    def _desired(self) -> tuple[WantedStream, ...]:
        return self._book.wanted(self.kind)

    def seed(self, sub: Subscription[Any], keys: Iterable[StreamKey]) -> None:
        """Give a new subscriber of ``keys`` the current state of the streams already flowing.

        Seeded from the router's last message of each stream; a stream the server sends but
        the router has nothing cached for (its route was let go when its last subscriber left,
        before the removal went out) is re-sent with a snapshot by the next request instead.
        Call it right after the book changed, then :meth:`poke`.
        """
        missing = self.router.seed(sub, keys)
        if missing:
            self._planner.request_snapshot(self.kind, missing)

    def progress(self) -> int:
        """Return a counter that grows while the flusher does useful work (for its supervisor)."""
        return self.requests_sent + self.send_failures

    def restart(self) -> None:
        """Start the flusher over after an internal error: plan everything fresh."""
        self.flusher_restarts += 1
        self._reset_inflight()
        self._planner.connection_lost(self.kind)
        self._sent_keys = frozenset()
        self.poke(self._now())

    async def run(self) -> None:
        """Flush forever: wait for a change, coalesce, send the latest desired state."""
        window = self._coalesce
        while True:
            await self._wake.wait()
            if window > 0:
                await asyncio.sleep(window)
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        conn = self.connection
        if conn is None or not conn.is_open:
            return  # on_open wakes the flusher again
        # Plan only once the limiter would let the request go: changes made while waiting
        # join this request instead of following it as a second one (section 8.1: 5/s).
        try:
            await conn.wait_send_slot()
        except UpbitWsError:
            return  # the socket closed while waiting; on_open plans everything fresh
        if conn is not self.connection or not conn.is_open:
            return
        plan = self._planner.plan_for(self.kind)
        if plan is None:
            if self._inflight is None:
                self._change_since = None  # the changes cancelled out
            return
        self._before_send()
        frame: bytes | None
        if plan.is_empty:
            frame = self._quiesce_frame() if self.kind == "public" else None
        else:
            frame = encode_request(plan.types, ticket=new_ticket())
        change_since, self._change_since = self._change_since, None
        generation = conn.generation
        # Watch the streams this request adds before it leaves: their frames can only be
        # answers to it (they were not in the previous request), whenever they arrive.
        watch = frozenset(w.key for w in plan.snapshot_streams() if w.type not in PRIVATE_TYPES)
        fresh_socket = self._socket_plan is None
        self._reset_inflight()
        self._inflight = plan
        self._inflight_since = change_since
        added = watch - self._sent_keys
        self.router.watch(added)
        # The first request on a new socket, made only of streams Upbit accepted before and
        # with no new public stream whose data could confirm it: only the quiet window can,
        # and it cannot say more than the earlier socket did (see ``view``).
        self._resent = (
            fresh_socket
            and not added
            and self._planner.last_accepted(self.kind).issuperset(plan.desired)
        )
        try:
            if frame is not None:
                await conn.send(frame)
        except UpbitWsError as exc:
            self.send_failures += 1
            if self._inflight is plan:  # not a spare's request recorded meanwhile (a hedge)
                self._reset_inflight()
            if self._change_since is None:
                self._change_since = change_since
            _log.info(
                "%s subscription request not sent (%s); it goes out after the reconnect",
                self.kind,
                exc,
                extra={"connection": self.kind},
            )
            return
        if self._inflight is not plan or conn.generation != generation or not conn.is_open:
            # The socket changed under the send: on_open re-plans everything fresh.
            return
        self._written(conn, plan, sent=frame is not None, added=added)

    def _written(
        self, conn: ManagedConnection, plan: Plan, *, sent: bool, added: frozenset[StreamKey]
    ) -> None:
        """Record that ``plan`` (in flight, its new streams watched) is on the current socket.

        ``sent``: a frame carried it (an empty private plan sends none).
        """
        self._planner.sent(self.kind, plan)
        if sent:
            self.subscribed.set()
        self._sent_recorded = True
        keys = frozenset(w.key for w in plan.desired)
        if sent and self.kind == "public" and 2 * len(keys) <= len(self._sent_keys):
            # At most half the streams of the last request on this socket: the rate learned
            # from the wider stream no longer holds (a swap of codes, or one stream of many
            # closing, keeps it).
            conn.stream_narrowed()
        self._sent_keys = keys
        self._socket_plan = plan
        self.last_request = plan.types
        if plan.is_empty:
            self.quiesce_requests += sent
            self.requests_sent += sent
            self._planner.confirmed(self.kind, plan)
            self._reset_inflight()
            conn.set_streaming(False)
            return
        self.requests_sent += 1
        conn.set_streaming(self.kind == "public")
        if self._hit_at is not None:
            self._confirm(self._hit_at, by_data=True)
            return
        loop = asyncio.get_running_loop()
        # A change that arrived during the send already set the wake event: the next loop
        # turn plans again and sends the latest state.
        if added:
            self._quiet = loop.call_later(self._change_timeout, self._silent_confirm, plan, added)
        else:
            self._quiet = loop.call_later(self._confirm_quiet, self._quiet_confirm, plan)

    def _quiesce_frame(self) -> bytes:
        markets = self._markets()
        code = _QUIESCE_CODE
        if markets is not None and code not in markets and markets:
            code = min(markets)
        return encode_request(
            [TypeRequest(type="ticker", codes=(code,), is_only_snapshot=True)],
            ticket=new_ticket(),
        )

    # -- confirmation and rejection ----------------------------------------------------------

    def _on_watch(self, received_at: float) -> None:
        if self._inflight is None:
            return
        if not self._sent_recorded:
            self._hit_at = received_at
            return
        self._confirm(received_at, by_data=True)

    def _quiet_confirm(self, plan: Plan) -> None:
        if self._inflight is plan and self._sent_recorded:
            self._confirm(None, by_data=False)

    def _silent_confirm(self, plan: Plan, added: frozenset[StreamKey]) -> None:
        if self._inflight is not plan or not self._sent_recorded:
            return
        self.silent_changes += 1
        shown = ", ".join(sorted(f"{t} {c}" + (f" level={lv}" if lv else "") for t, c, lv in added))
        _log.warning(
            "Upbit sent nothing for the new %s streams within %g s: %s; an unknown code or an "
            "unsupported level is ignored by Upbit without an error (or the market is quiet)",
            self.kind,
            self._change_timeout,
            shown[:300],
            extra={"connection": self.kind},
        )
        self._confirm(None, by_data=False)

    def _confirm(self, at: float | None, *, by_data: bool) -> None:
        plan = self._inflight
        since = self._inflight_since
        self._reset_inflight()
        if plan is None or not self._planner.confirmed(self.kind, plan):
            return
        if by_data:
            self.confirmed_by_data += 1
            if at is not None and since is not None:
                self.change_latency.add((at - since) * 1000.0)
        else:
            self.confirmed_by_quiet += 1

    def _reset_inflight(self) -> None:
        self._inflight = None
        self._inflight_since = None
        self._sent_recorded = False
        self._resent = False
        self._hit_at = None
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None
        self.router.unwatch()

    def _on_control(self, message: Message, received_at: float) -> None:
        if isinstance(message, SubscriptionList):
            self._list_answered(message)

    def on_error(self, error: ErrorFrame) -> None:
        """Take an error frame (the connection decoded and logged it); see the module docs."""
        # Upbit closes the socket after any error frame (section 7.3): no LIST answer follows.
        self._fail_list_waiters(ServerRejectedError(error.name, error.message))
        if error_frame_meaning(error.name, connection=self.kind) != "request_rejected":
            # The key (reported to the key-health path by the connection) or nothing against
            # the request: the current subscription goes out again after the reconnect.
            self.other_errors += 1
            return
        plan = self._inflight
        if plan is not None and self._sent_recorded:
            # Upbit refused the request in flight (section 7); it closes the socket next.
            self._reject(plan, error)

    def _reject(self, plan: Plan, error: ErrorFrame) -> None:
        """Record that Upbit refused ``plan`` as malformed (section 7.2)."""
        self._reset_inflight()
        remembered = self._planner.rejected(self.kind, plan)
        self.rejections += 1
        _log.info(
            "Upbit rejected the %s subscription request with %s: %s; %s",
            self.kind,
            error.name,
            error.message,
            "twice in a row: keeping the last accepted subscription"
            if remembered
            else "it is sent again after the reconnect (accepted before, or rejected only once)",
            extra={"connection": self.kind, "error_name": error.name},
        )
        if remembered:
            self._fail_added(plan, error)
        self._publish(
            RequestRejected(
                at=self._now(), connection=self.kind, name=error.name, message=error.message
            )
        )

    def _fail_added(self, plan: Plan, error: ErrorFrame) -> None:
        """Fail, loudly, the subscriptions that added the streams Upbit refused twice."""
        accepted = self._planner.last_accepted(self.kind)
        refused = [w for w in plan.desired if w not in accepted]
        ids: dict[SubId, None] = {}
        for want in refused:
            ids.update(dict.fromkeys(self._book.subscribers(want.type, want.code, want.level)))
        if not ids or self._fail_subscriptions is None:
            return
        shown = ", ".join(str(w) for w in refused)[:300]
        _log.warning(
            "Upbit rejected the %s subscription request twice in a row with %s: %s; failing "
            "the %d subscription(s) that added %s",
            self.kind,
            error.name,
            error.message,
            len(ids),
            shown,
            extra={"connection": self.kind, "error_name": error.name},
        )
        failure = ServerRejectedError(
            error.name, f"{error.message} (refused twice in a row; streams: {shown})"
        )
        self._fail_subscriptions(tuple(ids), failure)

    def _publish_reconnect_gaps(self, since: float, now: float) -> None:
        if self.kind == "public":
            # In band too (issue #9 item 5): each event subscription's consumer of items()
            # reaches a Gap where the loss was. Ticker and orderbook need none: the snapshot
            # sent after the resubscription supersedes what was lost (and their ``latest``
            # buffers keep only the newest message per code anyway).
            for sub in list(self._sinks.values()):
                if sub.connection == self.kind and sub.type in _GAP_TYPES:
                    sub._mark_reconnect_gap(since)
        types = sorted({w.type for w in self._desired() if w.type in _GAP_TYPES})
        for kind in types:
            self.reconnect_gaps += 1
            self._publish(
                GapEvent(
                    at=now,
                    connection=self.kind,
                    type=kind,
                    code=None,
                    reason="reconnect",
                    since=since,
                )
            )

    # -- LIST_SUBSCRIPTIONS ------------------------------------------------------------------

    async def ask_server(self) -> tuple[SubscribedType, ...] | None:
        """Ask Upbit what this connection streams; ``None`` when no socket is open.

        If the socket asked ends before it answers and another is open already (a hedge's
        spare took over), the question goes to that one, within the same deadline: the answer
        is about the socket that streams now. A socket that ended with none open behind it
        raises :class:`TransportError`, as does no answer within the deadline.
        """
        loop = asyncio.get_running_loop()
        timeout = self._change_timeout
        deadline = loop.time() + timeout
        while True:
            conn = self.connection
            if conn is None or not conn.is_open:
                return None
            generation = conn.generation
            waiter: asyncio.Future[SubscriptionList] = loop.create_future()
            ticket = new_ticket()
            self._list_waiters[ticket] = waiter
            try:
                self.list_requests += 1
                await conn.send(encode_list_subscriptions(ticket=ticket))
                async with asyncio.timeout_at(deadline):
                    reply = await waiter
            except TimeoutError as exc:
                raise TransportError(
                    f"Upbit did not answer LIST_SUBSCRIPTIONS on the {self.kind} connection "
                    f"within {timeout:g} s"
                ) from exc
            except _SocketGone as exc:
                now = self.connection
                if (
                    now is not None
                    and now.is_open
                    and now.generation != generation
                    and loop.time() < deadline
                ):
                    continue  # a spare took over: ask the socket that streams now
                raise TransportError(str(exc)) from None
            finally:
                if self._list_waiters.get(ticket) is waiter:
                    del self._list_waiters[ticket]
            return reply.result

    def _list_answered(self, reply: SubscriptionList) -> None:
        # Upbit echoes the ticket of the LIST request (section 3.3; the docs leave a doubt
        # that it could be the subscription's ticket, so an unknown one answers the oldest).
        waiter = self._list_waiters.pop(reply.ticket, None) if reply.ticket else None
        if waiter is None and self._list_waiters:
            oldest = next(iter(self._list_waiters))
            waiter = self._list_waiters.pop(oldest)
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def _fail_list_waiters(self, error: UpbitWsError) -> None:
        waiters = list(self._list_waiters.values())
        self._list_waiters.clear()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    def fail_waiters(self) -> None:
        """End pending LIST_SUBSCRIPTIONS questions with an error (shutdown)."""
        self._fail_list_waiters(
            TransportError(
                f"the subscription service closed before Upbit answered LIST_SUBSCRIPTIONS "
                f"on the {self.kind} connection"
            )
        )

    # -- views -------------------------------------------------------------------------------

    def view(self, server: tuple[SubscribedType, ...] | None) -> ConnectionView:
        """Return the merged state of this connection, as of its current socket."""
        confirmed = self._planner.confirmed_state(self.kind)
        plan = self._socket_plan
        return ConnectionView(
            connection=self.kind,
            state=self._state(),
            desired=self._desired(),
            confirmed=confirmed,
            in_flight=self._inflight is not None,
            last_request=self.last_request,
            requests_sent=self.requests_sent,
            server=server,
            applied=plan is not None and self._inflight is None and plan.desired == confirmed,
            resent=self._resent
            and self._sent_recorded
            and plan is not None
            and set(plan.desired) == set(self._desired()),
        )

    @property
    def attached(self) -> bool:
        """Tell whether a connection carries this channel's subscriptions."""
        return self.connection is not None

    def _state(self) -> str:
        conn = self.connection
        return conn.state if conn is not None else "detached"

    def statistics(self) -> ChannelStatistics:
        """Return this channel's counters."""
        return ChannelStatistics(
            connection=self.kind,
            state=self._state(),
            desired_streams=len(self._desired()),
            confirmed_streams=len(self._planner.confirmed_state(self.kind)),
            in_flight=self._inflight is not None,
            changes=self.changes,
            requests_sent=self.requests_sent,
            quiesce_requests=self.quiesce_requests,
            send_failures=self.send_failures,
            confirmed_by_data=self.confirmed_by_data,
            confirmed_by_quiet=self.confirmed_by_quiet,
            silent_changes=self.silent_changes,
            rejections=self.rejections,
            other_errors=self.other_errors,
            list_requests=self.list_requests,
            reconnect_gaps=self.reconnect_gaps,
            flusher_restarts=self.flusher_restarts,
            change_latency=self.change_latency.summary(),
            router=self.router.statistics(),
            planner=self._planner.statistics(self.kind),
        )
