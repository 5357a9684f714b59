"""The managed connection: one always-on WebSocket (public or private) driven by a pure Session.

A :class:`ManagedConnection` is the thin asyncio shell around
:class:`~upbit_ws.core.session.Session`. It owns, in one TaskGroup, a driver (feeds the session
its inputs, performs the actions :meth:`Session.poll` returns, sleeps until the session's next
deadline or the next input), the connect attempt in progress, and graceful closes. There is no
reader task: the transport calls back on the socket's reader (picows), and those callbacks

* hand every data frame straight to the listener's fast path (``frame_taker``), with the
  liveness bookkeeping (``Session.frame_received``, the clock, the frame and byte counters)
  done once per socket read rather than once per frame: the hot path;
* report a close or a reset to the session *at once* and wake the driver, so recovery starts
  immediately (nothing waits for a periodic poll);
* report pongs, which prove the socket alive.

When the session declares a socket dead (no pong after a ping, a connect that timed out) the
socket is aborted, never closed gracefully: a closing handshake on a blackholed socket would
hang for its whole close timeout (issue #4).

A socket under suspicion gets a spare (a hedge, :mod:`upbit_ws.core.session`): the session
asks for it with :class:`~upbit_ws.core.session.Hedge`; the spare waits for the same connect
limiter, is sent the listener's ``spare_request`` (the newest merged request), and delivers
nothing until it proves itself (its first data frame, or on a quiet connection a pong after
its request). Then, on its own reader and before that frame is delivered, it becomes the
current socket (a new ``generation``), the old one is aborted, and the listener hears
``on_switched`` (the gap from the old socket's last frame). If the old socket answers first
the spare is closed gracefully; if the spare fails, the old socket's pong deadline decides.
If the old socket ends first (a reset, a close or a stalled write, not an error frame, which
may concern the request the spare carries too) while the spare is open and was sent its
request, the spare takes over the same way, unproved, instead of being dropped for a
reconnect behind it. So only one socket ever delivers.

Sending has one path, :meth:`ManagedConnection.send`: every frame waits for the socket's own
message limiter (Upbit allows 5 messages/s and 100/min per connection, section 8.1; the
limiter waits, never drops), is written, and must drain within the send timeout. Connects wait
for the connect limiter shared by the whole process (5 connects/s, section 8.1) *before* the
session hands out the connect, so the wait never eats into the connect timeout.

Error frames (``{"error":...}``, section 7) are read here and nowhere else: decoded once into
a typed :class:`~upbit_ws.core.messages.ErrorFrame`, logged once, counted by name, and handed
to the listener's ``on_error`` (the subscription layer decides whether a request it built was
rejected), never to ``on_frame``. Upbit closes the socket with 1000 150-800 ms after one and
the subscription is gone from the frame on (section 7.3), so the socket ends at the frame: it
is reported to the session as a :class:`~upbit_ws.core.errors.ServerRejectedError` carrying
the name (the close code too, when a connect attempt's frame waits for the close), and
:func:`~upbit_ws.core.classify.classify` (its one table of error-frame names) says what it is:
an ``INVALID_AUTH`` on the private connection is a refused key (the session suspends until the
key works again), anything else a close after which the session reconnects on its backoff.

The private connection signs a fresh JWT (new nonce) for every connect and sends it in the
handshake header (section 5). It does not normally stream (myOrder/myAsset are quiet), so its
data-silence probe is off unless the listener turns it on; it is pinged more often instead
(``KeepaliveConfig.quiet_ping_interval``).

A bug in the connection's own code (never a network fault: the session classifies those) does
not leave it down: :meth:`ManagedConnection.run` logs it with its traceback, counts it, aborts
the socket and reconnects after the ordinary backoff, which grows while the bug repeats. A
trader wants the data back, and the listener re-sends the full request on the new socket.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, assert_never

from upbit_ws.aio.clock import Clock, LoopClock
from upbit_ws.aio.logcontext import CONNECTION
from upbit_ws.aio.supervisor import InternalError, Supervisor, describe_error
from upbit_ws.aio.transport import WebSocket, open_websocket, tcp_reachable
from upbit_ws.core.auth import Credentials, build_ws_token
from upbit_ws.core.classify import ErrorFrameMeaning, error_frame_meaning, lasting_problem
from upbit_ws.core.config import ConnectionConfig, RateLimits
from upbit_ws.core.constants import ABNORMAL_CLOSURE, check_connection
from upbit_ws.core.decode import decode
from upbit_ws.core.errors import (
    ConnectionClosedError,
    DecodeError,
    InvalidInputError,
    ServerRejectedError,
    TransportError,
    UpbitWsError,
)
from upbit_ws.core.events import (
    ConnectionKind,
    ConnectionMisconfigured,
    ConnectionState,
    Event,
)
from upbit_ws.core.messages import ErrorFrame
from upbit_ws.core.ratelimit import (
    ConnectLimiter,
    LimiterChain,
    SharedConnectLimiter,
    message_limiter,
)
from upbit_ws.core.session import (
    LIVE_STATES,
    Action,
    CancelHedge,
    CloseSocket,
    Connect,
    DeclareDead,
    Hedge,
    ProbeNetwork,
    Resubscribe,
    SendPing,
    Session,
    Stalled,
    WaitBackoff,
)

__all__ = [
    "AuthRefusedCallback",
    "ConnectionHandle",
    "ConnectionListener",
    "ConnectionStatistics",
    "ManagedConnection",
    "NullListener",
    "shared_connect_limiter",
]

_log = logging.getLogger("upbit_ws.connection")

#: A listener's optional fast path (see :meth:`ConnectionListener.on_frame`): given a read's
#: receive time and where the frames it does not take go, it returns what takes each frame.
FrameTakerFactory = Callable[[float, Callable[[memoryview], None]], Callable[[memoryview], None]]

#: Every Upbit error frame starts like this (section 7.1: ``{"error":{...}}``, compact JSON).
_ERROR_PREFIX: Final = b'{"error"'
_CONNECT_STATES: Final[frozenset[ConnectionState]] = frozenset(
    {"connecting", "reconnecting", "suspended"}
)
_TASK_PREFIX: Final = "upbit-ws"
#: How the error-frame log line says what the name means. Not whether it answered our request:
#: only the subscription layer knows if one was in flight (it logs the rejection itself, see
#: aio/channel.py); an unsolicited frame carries the same names.
_MEANINGS: Final[dict[ErrorFrameMeaning, str]] = {
    "request_rejected": "Upbit's name for a malformed request",
    "key_refused": "the API key is refused",
    "other": "nothing against the request",
}

#: Called when Upbit refused the API key at the handshake or with an error frame:
#: ``(name, message)``, never the key itself.
AuthRefusedCallback = Callable[[str | None, str], None]


_PROCESS_CONNECT_LIMITER: Final = SharedConnectLimiter()


def shared_connect_limiter(limits: RateLimits | None = None) -> SharedConnectLimiter:
    """Return the process-wide connect limiter, made to respect ``limits`` too.

    There is one per process, whatever the settings: every connection of every manager shares
    it, and the strictest setting asked for holds for all of them (Upbit counts connects per IP
    and per account, section 8.1, not per manager).
    """
    _PROCESS_CONNECT_LIMITER.require(limits or RateLimits())
    return _PROCESS_CONNECT_LIMITER


class ConnectionListener(Protocol):
    """What the connection tells its user (the subscription layer), synchronously.

    No method may block or await; each runs on the socket reader or the driver. A listener
    may also define ``on_stall(connection, since)``, optional (looked up when needed): the
    open private socket lived through a stall (a ping answered late or never while frames
    came, ``docs/protocol.md`` section 6), so events sent since ``since`` (monotonic seconds,
    the last frame before it) may be lost although the socket stays.

    Hedging (a spare socket opened while the current one is under suspicion, see
    :mod:`upbit_ws.core.session`) needs two more optional methods; a listener without them
    gets the ordinary reconnect. ``spare_request(connection) -> bytes | None``: the full
    request a spare socket is sent now (the newest merged state, with snapshots, as after a
    reconnect; ``None``: nothing to send, a pong proves the spare). ``on_switched(connection,
    since)``: the spare took over and delivers from now on, carrying the request last
    returned by ``spare_request``; the old socket is gone, and what it did not deliver since
    ``since`` (its last frame; ``None`` if it delivered nothing) is lost, as on a reconnect.
    """

    def on_open(self, connection: ManagedConnection) -> None:
        """Take a new open socket with nothing sent on it yet: (re)send the full request.

        Called on every (re)connect; send through ``connection.send()`` from a task of yours.
        """

    def on_frame(self, payload: bytes, received_at: float) -> None:
        """Take one data frame (binary or text) as bytes; ``received_at`` is the shell clock.

        This is the hot path: decode, route and buffer only, never run user code inline.
        Error frames never come here (see :meth:`on_error`). A listener may also offer a
        faster path, an attribute ``frame_taker`` (:data:`FrameTakerFactory`): called once
        per socket read with its receive time and a function for the frames it does not
        take (error frames among them); it returns the function that takes each frame. Its
        companion ``frames_taken(nbytes, failed)``, if defined, is called when the read ended
        (the taken payloads, ``nbytes`` in all, are valid until it returns; ``failed`` reports
        a frame that raised).
        """

    def on_error(self, error: ErrorFrame) -> None:
        """Take an error frame Upbit sent on the open socket, decoded once by the connection.

        Upbit closes the socket right after it (section 7.3); :func:`error_frame_meaning`
        says what its name means. The connection already logged it.
        """

    def on_closed(self, connection: ManagedConnection) -> None:
        """Note that the socket is gone (any reason); a reconnect follows unless closing."""

    def on_stale(self, connection: ManagedConnection) -> None:
        """Re-send the full request on the open socket, with snapshots: the stream went stale.

        The socket answers pings but no data came for ``KeepaliveConfig.stale_after``; if none
        comes soon after this resend either, the connection reconnects by itself.
        """


class NullListener:
    """A listener with nothing to subscribe: sends nothing, ignores frames.

    It turns the data-silence probe off on open, because a connection with no subscription
    never streams (the periodic ping still runs).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "NullListener()"

    def on_open(self, connection: ManagedConnection) -> None:
        """Turn the silence probe off: nothing is subscribed."""
        connection.set_streaming(False)

    def on_frame(self, payload: bytes, received_at: float) -> None:
        """Ignore the frame."""

    def on_error(self, error: ErrorFrame) -> None:
        """Ignore the error frame (the connection logged it)."""

    def on_closed(self, connection: ManagedConnection) -> None:
        """Do nothing."""

    def on_stale(self, connection: ManagedConnection) -> None:
        """Do nothing: nothing is subscribed (the silence probe is off anyway)."""


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
    """A snapshot of one managed connection.

    ``uptime`` is how long the current socket has been open (0 when none is); ``reconnects``
    counts opens after the first. Frame and byte counters cover every socket so far.
    ``send_waits`` / ``send_wait_seconds`` count sends the message limiter held back;
    ``connect_waits`` / ``connect_wait_seconds`` connects held back by the shared connect
    limiter. ``internal_errors`` lists the bugs the connection recovered from (the newest; each
    logged with its traceback), ``internal_error_count`` counts them all. ``last_error`` is the
    reason of the last failure (never a secret). ``state_since_wall`` and
    ``last_error_at_wall`` are epoch seconds (UTC wall clock); ``state_since`` and
    ``last_error_at`` the same instants on the shell's monotonic clock (``loop.time()``), and
    ``uptime``, ``state_age``, ``last_frame_age`` durations in seconds.
    """

    connection: ConnectionKind
    url: str
    state: ConnectionState
    state_since: float
    uptime: float
    generation: int
    attempt: int
    connects: int
    opens: int
    reconnects: int
    failures: int
    declared_dead: int
    pings_sent: int
    pongs_received: int
    frames_received: int
    bytes_received: int
    error_frames: int
    server_errors: dict[str, int]
    messages_sent: int
    bytes_sent: int
    send_waits: int
    send_wait_seconds: float
    connect_waits: int
    connect_wait_seconds: float
    connect_timeout: float
    listener_errors: int
    internal_errors: tuple[InternalError, ...]
    internal_error_count: int
    events_dropped: int
    last_error: str | None
    last_error_at: float | None
    #: Observability (issue #10): see :class:`~upbit_ws.core.session.SessionStatistics`.
    state_age: float = 0.0
    last_frame_age: float | None = None
    failures_by_cause: Mapping[str, int] = field(default_factory=dict)
    state_since_wall: float = 0.0
    last_error_at_wall: float | None = None
    #: Reconnect backoff (issue #9): see :class:`~upbit_ws.core.session.SessionStatistics`.
    backoff_step: int = 0
    last_retry_delay: float | None = None
    down_age: float | None = None
    retry_in: float | None = None
    network_watch: bool = False
    proved: bool = False
    #: Stale streams (issue #9): see :class:`~upbit_ws.core.session.SessionStatistics`.
    stale: bool = False
    stale_reason: str | None = None
    stale_resubscribes: int = 0
    #: Private stalls (issue #9): see :class:`~upbit_ws.core.session.SessionStatistics`.
    stalls: int = 0
    #: Hedges and the adaptive thresholds (issue #9): see
    #: :class:`~upbit_ws.core.session.SessionStatistics`.
    hedges: int = 0
    hedges_won: int = 0
    hedges_cancelled: int = 0
    hedges_failed: int = 0
    hedging: bool = False
    #: The network watch of long reconnect waits: see
    #: :class:`~upbit_ws.core.session.SessionStatistics`.
    network_probes: int = 0
    network_returns: int = 0
    silence_threshold: float = 0.0
    suspicion: float = 0.0


class _Counters:
    """Mutable counters of a connection, read by :meth:`ManagedConnection.statistics`."""

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "connect_wait_seconds",
        "connect_waits",
        "degraded",
        "error_frames",
        "frames_received",
        "listener_errors",
        "messages_sent",
        "send_wait_seconds",
        "send_waits",
        "server_errors",
        "undecodable_errors",
    )

    def __init__(self) -> None:
        #: The session is probing the socket (state ``degraded``): the next frame recovers it.
        self.degraded = False
        self.frames_received = 0
        self.bytes_received = 0
        self.error_frames = 0
        self.server_errors: dict[str, int] = {}
        self.undecodable_errors = 0
        self.messages_sent = 0
        self.bytes_sent = 0
        self.send_waits = 0
        self.send_wait_seconds = 0.0
        self.connect_waits = 0
        self.connect_wait_seconds = 0.0
        self.listener_errors = 0


class _Socket:
    """One open socket as the connection sees it: the transport, its limiter, its end."""

    __slots__ = ("close_code", "closed", "generation", "handler", "limiter", "ws")

    def __init__(self, ws: WebSocket, handler: _Handler, generation: int, limiter: LimiterChain):
        self.ws = ws
        self.handler = handler
        self.generation = generation
        self.limiter = limiter
        self.closed = asyncio.Event()
        self.close_code = ABNORMAL_CLOSURE


class _Spare:
    """A spare socket opened by a hedge: delivers nothing until it takes over.

    ``requested`` is set once its request went out (or none was needed): from then on its
    first data frame, or on a quiet connection a pong, proves it.
    """

    __slots__ = ("by_pong", "handler", "limiter", "requested", "ws")

    def __init__(self, handler: _Handler, limiter: LimiterChain) -> None:
        self.handler = handler
        self.limiter = limiter
        self.ws: WebSocket | None = None
        self.requested = False
        #: Whether a pong proves it (a quiet connection, pinged after its request).
        self.by_pong = False


class _Handler:
    """The transport's FrameHandler for one socket; retired when the socket is let go.

    The hot path is per socket read, not per frame (:meth:`begin_read`): a liveness store in
    the session, the recovery check and the clock once per read, frame and byte counts once
    per read (:meth:`end_read`), and each frame goes straight to the listener's fast path
    (``frame_taker``). Frames that path does not take come back to :meth:`_take_one`, which
    reads error frames (by their prefix) and hands the rest to ``listener.on_frame``. It is
    given what it uses when the connection builds it (:meth:`ManagedConnection._new_handler`)
    and touches nothing else.
    """

    __slots__ = (
        "_counters",
        "_data_received",
        "_deliver",
        "_frame_received",
        "_kind",
        "_now",
        "_on_close",
        "_on_error_frame",
        "_on_pong",
        "_on_recovery",
        "_read_at",
        "_taken",
        "_taker",
        "awaiting_data",
        "error",
        "listener",
        "live",
    )

    def __init__(
        self,
        *,
        kind: ConnectionKind,
        counters: _Counters,
        now: Callable[[], float],
        frame_received: Callable[[float], None],
        data_received: Callable[[float], None],
        on_error_frame: Callable[[_Handler, bytes], None],
        on_recovery: Callable[[], None],
        on_pong: Callable[[], None],
        on_close: Callable[[_Handler, int, str], None],
    ) -> None:
        self._kind = kind
        self._counters = counters
        self._now = now
        self._on_error_frame = on_error_frame
        self.promote(
            frame_received=frame_received,
            data_received=data_received,
            on_recovery=on_recovery,
            on_pong=on_pong,
            on_close=on_close,
        )
        # Frames before the socket is handed to the listener are only inspected (Upbit sends
        # nothing unasked, except an INVALID_AUTH frame on a refused private key, section 5).
        self._deliver: Callable[[bytes, float], None] = _ignore
        self._taker: FrameTakerFactory | None = None
        self._taken: Callable[[int, Callable[[], None]], None] | None = None
        self._read_at = 0.0
        self.listener: ConnectionListener | None = None
        self.live = True
        #: Set when a request went out on this socket and no data frame has proved it yet: the
        #: first data frame reports ``Session.data_received`` (once, not per frame).
        self.awaiting_data = False
        #: The last error frame seen on this socket.
        self.error: ErrorFrame | None = None

    def promote(
        self,
        *,
        frame_received: Callable[[float], None],
        data_received: Callable[[float], None],
        on_recovery: Callable[[], None],
        on_pong: Callable[[], None],
        on_close: Callable[[_Handler, int, str], None],
    ) -> None:
        """Set the callbacks into the connection (a spare's handler becomes the current one's).

        A spare socket's handler is built with the spare's callbacks; a hedge that won calls
        this to make it the current socket's handler.
        """
        self._frame_received = frame_received
        self._data_received = data_received
        self._on_recovery = on_recovery
        self._on_pong = on_pong
        self._on_close = on_close
        self.awaiting_data = False

    def install(self, listener: ConnectionListener) -> None:
        self.listener = listener
        self._deliver = listener.on_frame
        self._taker = getattr(listener, "frame_taker", None)
        self._taken = getattr(listener, "frames_taken", None)

    def begin_read(self) -> Callable[[memoryview], None]:
        """Account for one socket read; return the function that takes each of its frames.

        Proof of life is once per read (``Session.frame_received`` says once per batch of
        frames read together is enough), and so is the clock: every frame of a read has that
        read's receive time. A degraded socket's recovery is published here. While a request
        waits for its first data frame (rare), every frame of the read takes the slow path,
        which tells data frames from error frames.
        """
        if not self.live:
            return _ignore_frame
        now = self._now()
        self._frame_received(now)
        self._read_at = now
        if self._counters.degraded:
            self._on_recovery()  # the read proved the socket alive: publish the recovery
        taker = self._taker
        if taker is None or self.awaiting_data:
            return self._take_one
        return taker(now, self._take_one)

    def _take_one(self, payload: memoryview) -> None:
        """Take one frame the slow way: error frames are read here, the rest go to the listener."""
        if not self.live:
            return
        data = bytes(payload)
        if data.startswith(_ERROR_PREFIX):
            # The one place that reads error frames: decoded once, handed on typed.
            self._on_error_frame(self, data)
            return
        if self.awaiting_data:
            self.awaiting_data = False
            self._data_received(self._read_at)  # the path works: the next drop retries at once
        self._deliver(data, self._read_at)

    def end_read(self, frames: int, nbytes: int) -> None:
        """Count the frames and bytes of the read that ended; the listener routes them now."""
        if self.live:
            counters = self._counters
            counters.frames_received += frames
            counters.bytes_received += nbytes
        taken = self._taken
        if taken is not None:
            taken(nbytes, self.take_failed)

    def take_failed(self) -> None:
        """Count and log a listener failure on a frame (called inside its ``except``).

        A listener bug must not drop the feed for everyone (picows would disconnect).
        """
        counters = self._counters
        counters.listener_errors += 1
        if counters.listener_errors == 1 or _log.isEnabledFor(logging.DEBUG):
            _log.exception(
                "%s connection: listener failed on a frame",
                self._kind,
                extra={"connection": self._kind},
            )

    def on_frame(self, payload: bytes) -> None:
        """Take one frame alone (a read of one frame; the transport uses the read methods)."""
        take = self.begin_read()
        try:
            take(memoryview(payload))
        except Exception:
            self.take_failed()
        self.end_read(1, len(payload))

    def on_pong(self) -> None:
        if self.live:
            self._on_pong()

    def on_close(self, code: int, reason: str) -> None:
        if self.live:
            self._on_close(self, code, reason)


def _ignore_time(now: float) -> None:
    """Take no note of a spare's read: only the current socket's reads prove the connection."""


def _nothing() -> None:
    """Do nothing (a spare has no recovery to publish)."""


def _ignore_frame(payload: memoryview) -> None:
    """Drop a frame of a socket that was let go."""


def _ignore(payload: bytes, received_at: float) -> None:
    """Drop a frame that arrived before its socket was handed to the listener."""


class ManagedConnection:
    """One always-on WebSocket, public or private; see the module docs.

    Run it with :meth:`run` inside a TaskGroup you own (the manager does), or standalone with
    ``async with ManagedConnection(...)`` / :meth:`start` and :meth:`aclose`.

    ``url`` is the WebSocket URL (``wss://api.upbit.com/websocket/v1`` or ``.../private``);
    ``credentials`` are required for ``private`` and refused for ``public``.
    ``connect_limiter`` defaults to the process-wide one (:func:`shared_connect_limiter`); any
    :class:`ConnectLimiter` (a :class:`~upbit_ws.core.ratelimit.Gcra`) may replace it.
    ``publish`` receives every :class:`~upbit_ws.core.events.ConnectionStateChanged`;
    ``on_auth_refused`` hears when Upbit refused the key on this (private) connection.
    """

    def __init__(
        self,
        kind: ConnectionKind,
        *,
        url: str,
        config: ConnectionConfig | None = None,
        credentials: Credentials | None = None,
        listener: ConnectionListener | None = None,
        connect_limiter: ConnectLimiter | None = None,
        publish: Callable[[Event], None] | None = None,
        on_auth_refused: AuthRefusedCallback | None = None,
        clock: Clock | None = None,
        session: Session | None = None,
    ) -> None:
        kind = check_connection(kind)
        if kind == "private" and credentials is None:
            raise InvalidInputError("a private connection needs credentials")
        if kind == "public" and credentials is not None:
            raise InvalidInputError("a public connection takes no credentials")
        self.kind: ConnectionKind = kind
        self.url = url
        self.config = config or ConnectionConfig()
        self._credentials = credentials
        self._listener: ConnectionListener = listener or NullListener()
        self._connect_limiter: ConnectLimiter = connect_limiter or shared_connect_limiter(
            self.config.rate_limits
        )
        self._publish = publish or _discard_event
        self._on_auth_refused = on_auth_refused
        self._clock: Clock = clock or LoopClock()
        self._now: Callable[[], float] = self._clock.now
        self._session = session or Session(kind, config=self.config)
        if self._session.connection != kind:
            raise InvalidInputError("the session must be of the same kind as the connection")
        self._counters = _Counters()
        self._supervisor = Supervisor(
            f"{kind} connection", config=self.config.backoff, clock=self._clock, logger=_log
        )
        self._sock: _Socket | None = None
        # The spare socket of a hedge under way, if any (see the module docs).
        self._spare: _Spare | None = None
        self._generation = 0
        # The connect attempt whose outcome the session waits for, if any; abandoned attempts
        # (declared dead) stay in _attempts until they end by their own timeout.
        self._attempt_handler: _Handler | None = None
        self._attempts: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._running = False
        self._finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        # The last connect failure, and the lasting problem it showed (a 404 to the WebSocket
        # path, a host that does not resolve) once announced: then it is published and logged
        # once, not at every backoff step (core.classify.lasting_problem).
        self._last_failure: UpbitWsError | None = None
        self._lasting: str | None = None

    def __repr__(self) -> str:
        return (
            f"<ManagedConnection {self.kind} {self._session.state} "
            f"generation={self._generation} url={self.url!r}>"
        )

    # --- read-only views ------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """Return the session's state (``open``, ``reconnecting``, ``suspended``...)."""
        return self._session.state

    @property
    def is_open(self) -> bool:
        """Tell whether a socket is open and usable for :meth:`send`."""
        return self._sock is not None and self._session.state in LIVE_STATES

    @property
    def generation(self) -> int:
        """Return the number of sockets opened so far (the current socket's number)."""
        return self._generation

    @property
    def listener(self) -> ConnectionListener:
        """Return the listener frames and open/close notices go to."""
        return self._listener

    @property
    def session(self) -> Session:
        """Return the pure session this connection drives (read it, do not feed it)."""
        return self._session

    def set_listener(self, listener: ConnectionListener) -> None:
        """Replace the listener; only before the connection runs."""
        if self._running or self._task is not None:
            raise InvalidInputError("set the listener before the connection starts")
        self._listener = listener

    def statistics(self) -> ConnectionStatistics:
        """Return a snapshot of the state and counters."""
        now = self._now()
        s = self._session.statistics(now)
        c = self._counters
        to_wall = self._clock.wall() - now  # monotonic -> epoch seconds
        return ConnectionStatistics(
            connection=self.kind,
            url=self.url,
            state=s.state,
            state_since=s.state_since,
            uptime=s.uptime,
            generation=self._generation,
            attempt=s.attempt,
            connects=s.connects,
            opens=s.opens,
            reconnects=max(0, s.opens - 1),
            failures=s.failures,
            declared_dead=s.declared_dead,
            pings_sent=s.pings_sent,
            pongs_received=s.pongs_received,
            frames_received=c.frames_received,
            bytes_received=c.bytes_received,
            error_frames=c.error_frames,
            server_errors=dict(c.server_errors),
            messages_sent=c.messages_sent,
            bytes_sent=c.bytes_sent,
            send_waits=c.send_waits,
            send_wait_seconds=c.send_wait_seconds,
            connect_waits=c.connect_waits,
            connect_wait_seconds=c.connect_wait_seconds,
            connect_timeout=s.connect_timeout,
            listener_errors=c.listener_errors,
            internal_errors=self._supervisor.errors,
            internal_error_count=self._supervisor.count,
            events_dropped=s.events_dropped,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            state_age=s.state_age,
            last_frame_age=s.last_frame_age,
            failures_by_cause=s.failures_by_cause,
            state_since_wall=s.state_since + to_wall,
            last_error_at_wall=(
                self._last_error_at + to_wall if self._last_error_at is not None else None
            ),
            backoff_step=s.backoff_step,
            last_retry_delay=s.last_retry_delay,
            down_age=s.down_age,
            retry_in=s.retry_in,
            network_watch=s.network_watch,
            proved=s.proved,
            stale=s.stale,
            stale_reason=s.stale_reason,
            stale_resubscribes=s.stale_resubscribes,
            stalls=s.stalls,
            hedges=s.hedges,
            hedges_won=s.hedges_won,
            hedges_cancelled=s.hedges_cancelled,
            hedges_failed=s.hedges_failed,
            hedging=s.hedging,
            network_probes=s.network_probes,
            network_returns=s.network_returns,
            silence_threshold=s.silence_threshold,
            suspicion=s.suspicion,
        )

    # --- commands -------------------------------------------------------------------------

    async def wait_open(self) -> None:
        """Return once a socket is open; raise ConnectionClosedError if closed for good."""
        while not self.is_open:
            if self._session.state == "closed":
                raise ConnectionClosedError(
                    1000, f"the {self.kind} connection is closed: {self._last_error or 'closed'}"
                )
            await self._changed.wait()

    async def send(self, frame: bytes) -> None:
        """Send one text frame on the current socket: THE one send path.

        Waits for the socket's message limiter (5/s and 100/min, never drops), writes the
        frame and waits until it drained, within the send timeout (1 s by default). Raises
        :class:`TransportError` when no socket is open, :class:`ConnectionClosedError` when
        the socket closes first, and :class:`TransportError` when the frame does not drain in
        time (the socket is then declared dead and replaced).
        """
        sock = self._sock
        if sock is None or self._session.state not in LIVE_STATES:
            raise TransportError(f"the {self.kind} connection is not open ({self.state})")
        wait = sock.limiter.acquire(self._now())
        counters = self._counters
        if wait > 0:
            counters.send_waits += 1
            counters.send_wait_seconds += wait
            await self._hold(sock, wait)
        if sock.closed.is_set():
            raise ConnectionClosedError(sock.close_code, "closed before the frame was sent")
        sock.ws.send_text(frame)
        session = self._session
        session.request_sent(self._now())
        self._wake.set()  # a quiet socket's proof ping goes out now
        if not session.proved:
            sock.handler.awaiting_data = True
        counters.messages_sent += 1
        counters.bytes_sent += len(frame)
        timeout = self.config.timeouts.send
        try:
            async with asyncio.timeout(timeout):
                await sock.ws.drain()
        except TimeoutError as exc:
            self._send_stalled(sock, timeout)
            raise TransportError(
                f"the {self.kind} connection did not drain a frame within {timeout:g} s"
            ) from exc
        if sock.closed.is_set():
            raise ConnectionClosedError(sock.close_code, "closed while the frame was sent")

    async def wait_send_slot(self) -> None:
        """Wait until the message limiter would let a frame go at once; reserve nothing.

        A caller that builds its frame from changing state (the subscription flusher) waits
        here first and builds afterwards, so the frame it then passes to :meth:`send` carries the
        state of that moment rather than the state from before the wait: under Upbit's 5
        messages/s, sending a stale request costs a whole extra message. Returns at once when
        no socket is open (``send`` then raises).
        """
        sock = self._sock
        if sock is None:
            return
        wait = sock.limiter.delay(self._now())
        if wait > 0:
            await self._hold(sock, wait)

    def set_streaming(self, streaming: bool) -> None:
        """Say whether the subscriptions normally stream (turns the data-silence probe on)."""
        self._session.set_streaming(self._now(), streaming=streaming)
        self._wake.set()

    def stream_narrowed(self) -> None:
        """Say that the request just sent lost most streams (see ``Session.stream_narrowed``)."""
        self._session.stream_narrowed(self._now())
        self._wake.set()

    def key_invalid(self, reason: str) -> None:
        """Stop this (private) connection because the key is refused, until :meth:`key_valid`.

        On a connection not started yet, it starts suspended.
        """
        now = self._now()
        if self._session.state == "idle":
            self._session.start(now)
        self._session.key_invalid(now, reason=reason)
        self._after_input()

    def key_valid(self) -> None:
        """Re-open a connection suspended for its key, at once."""
        self._session.key_valid(self._now())
        self._after_input()

    def close(self, *, reason: str = "closed by the user") -> None:
        """Ask the connection to shut down for good; :meth:`run` then returns."""
        self._session.close(self._now(), reason=reason)
        self._after_input()

    async def start(self) -> None:
        """Run the connection in a task this object owns (see :meth:`run`)."""
        if self._task is not None or self._running:
            raise InvalidInputError(f"the {self.kind} connection is already running")
        self._task = asyncio.create_task(self.run(), name=f"{_TASK_PREFIX}:{self.kind}")

    async def aclose(self) -> None:
        """Close the connection and wait until its tasks and socket are gone."""
        self.close()
        grace = self.config.timeouts.close + 1.0
        task = self._task
        if task is not None:
            try:
                async with asyncio.timeout(grace):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._task = None
        elif self._running:
            # Run by someone else's TaskGroup: wait for it to stop, in our error tree.
            try:
                async with asyncio.timeout(grace):
                    await self._finished.wait()
            except TimeoutError as exc:
                raise TransportError(
                    f"the {self.kind} connection did not stop within {grace:g} s"
                ) from exc

    async def __aenter__(self) -> ManagedConnection:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def run(self) -> None:
        """Keep the connection up until :meth:`close`; own every task in one TaskGroup.

        A bug in the driver or a task of its TaskGroup is logged with its traceback, counted
        (``statistics().internal_errors``) and recovered from like a lost socket: the socket is
        aborted and a new one opens after the ordinary backoff (see the module docs). Should the
        recovery itself fail, the error propagates with the session left reconnecting, so a
        supervisor (the manager) may run this again.
        """
        if self._running:
            raise InvalidInputError(f"the {self.kind} connection is already running")
        self._running = True
        self._finished.clear()
        CONNECTION.set(self.kind)  # log records of this task and its children name it
        self._session.allow_hedge(self._can_hedge())
        if isinstance(self._clock, LoopClock):
            self._now = asyncio.get_running_loop().time  # skip the loop lookup per frame
        crashed = False
        try:
            # The one supervisor helper: a restart here is a reconnect, so it waits the
            # session's reconnect delay (its backoff grows while the bug repeats).
            await self._supervisor.run(
                "driver",
                self._run_driver,
                on_crash=self._recover,
                delay=self._retry_delay,
                wait=self._wait_retry,
            )
        except Exception:
            crashed = True
            raise
        finally:
            self._tg = None
            self._running = False
            now = self._now()
            if crashed:
                self._session.internal_error(now, reason="the connection's recovery failed")
            elif self._session.state != "closed":
                self._session.close(now, reason="stopped: the driver was interrupted")
            self._retire_attempt()
            self._drop_spare("the connection stopped", graceful=False)
            self._drop_socket(abort=True)
            self._report()
            self._finished.set()
            self._notify()

    async def _run_driver(self) -> None:
        """Run the driver and its tasks (a bug in them propagates to the supervisor)."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                await self._drive()
        finally:
            self._tg = None

    def _recover(self, exc: Exception) -> None:
        """Let go of the socket after a bug and have the session retry on its backoff."""
        now = self._now()
        reason = f"internal error: {describe_error(exc)}"
        self._record_error(reason, now)
        self._session.internal_error(now, reason=reason)
        self._retire_attempt()
        self._drop_spare("internal error", graceful=False)
        self._drop_socket(abort=True)
        self._report()

    def _retry_delay(self) -> float:
        """Return how long the session waits before it reconnects (0: it does not)."""
        retry_at = self._session.retry_at
        return max(0.0, retry_at - self._now()) if retry_at is not None else 0.0

    async def _wait_retry(self, seconds: float) -> None:
        """Wait ``seconds`` (or until an input) before the driver runs again.

        Waiting here rather than in the driver means a bug that strikes before the driver
        first sleeps cannot become a busy loop: every restart waits the (growing) backoff.
        """
        self._wake.clear()
        await self._sleep(self._now() + seconds)

    def _retire_attempt(self) -> None:
        """Forget the connect attempt in progress; a socket it still opens is aborted."""
        if self._attempt_handler is not None:
            self._attempt_handler.live = False
            self._attempt_handler = None

    # --- the driver -----------------------------------------------------------------------

    async def _drive(self) -> None:
        session = self._session
        now = self._now()
        if session.state == "idle":
            session.start(now)
        while True:
            self._wake.clear()
            now = self._now()
            if self._attempt_handler is None and session.state in _CONNECT_STATES:
                due = session.next_deadline(now)
                if due is not None and due <= now:
                    # Wait for the shared connect limiter before the session hands out the
                    # connect, so the wait never counts against the connect timeout.
                    wait = self._connect_limiter.delay(now)
                    if wait > 0:
                        self._counters.connect_waits += 1
                        self._counters.connect_wait_seconds += wait
                        await self._sleep(now + wait)
                        continue
            for action in session.poll(now):
                self._perform(action, now)
            self._report()
            if session.state == "closed":
                for attempt in self._attempts:
                    attempt.cancel()
                return
            await self._sleep(session.next_deadline(self._now()))

    async def _sleep(self, deadline: float | None) -> None:
        """Sleep until ``deadline`` (None: no deadline) or until an input wakes the driver."""
        if self._wake.is_set():
            return
        if deadline is None:
            await self._wake.wait()
            return
        delay = deadline - self._now()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    def _new_handler(self) -> _Handler:
        """Build the frame handler of one socket with exactly what it needs."""
        return _Handler(
            kind=self.kind,
            counters=self._counters,
            now=self._now,
            frame_received=self._session.frame_received,
            data_received=self._session.data_received,
            on_error_frame=self._error_frame,
            on_recovery=self._after_input,
            on_pong=self._pong,
            on_close=self._socket_closed,
        )

    def _perform(self, action: Action, now: float) -> None:
        match action:
            case SendPing():
                sock = self._sock
                if sock is not None:
                    sock.ws.send_ping()
            case Connect():
                self._connect_limiter.acquire(now)
                handler = self._new_handler()
                self._attempt_handler = handler
                self._track(self._connect(action, handler), f"socket-{action.attempt}")
            case DeclareDead():
                self._record_error(action.reason, now)
                # The connect in progress is abandoned: its outcome is ignored, and a socket it
                # still opens is aborted. It ends by its own timeout (the same as the session's).
                self._retire_attempt()
                self._log_dead(action.reason)
                self._drop_socket(abort=True)
            case CloseSocket():
                sock = self._sock
                # A degraded socket may be blackholed: its closing handshake could hang.
                abort = self._counters.degraded
                self._drop_socket(abort=abort)
                if sock is not None and not abort:
                    assert self._tg is not None
                    self._tg.create_task(
                        self._close_gracefully(sock.ws, action.timeout),
                        name=f"{_TASK_PREFIX}:{self.kind}:close-{sock.generation}",
                    )
            case Resubscribe():
                _log.warning(
                    "%s connection: %s",
                    self.kind,
                    action.reason,
                    extra={"connection": self.kind, "reason": action.reason},
                )
                try:
                    self._listener.on_stale(self)
                except Exception:
                    self._counters.listener_errors += 1
                    _log.exception(
                        "%s connection: listener failed on a stale stream",
                        self.kind,
                        extra={"connection": self.kind},
                    )
            case Stalled():
                self._stalled(action)
            case Hedge():
                self._start_hedge(action)
            case CancelHedge():
                self._drop_spare(action.reason, graceful=True)
            case ProbeNetwork():
                self._start_network_probe(action)
            case WaitBackoff():
                _log.log(
                    logging.DEBUG if self._lasting is not None else logging.INFO,
                    "%s connection: retrying in %.2f s (%s)",
                    self.kind,
                    action.delay,
                    action.reason,
                    extra={
                        "connection": self.kind,
                        "delay": action.delay,
                        "backoff": action.backoff,
                        "reason": action.reason,
                    },
                )
            case _:
                assert_never(action)

    def _track(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` (a connect, a spare, a probe) in the TaskGroup, cancelled on close."""
        assert self._tg is not None
        task = self._tg.create_task(work, name=f"{_TASK_PREFIX}:{self.kind}:{name}")
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    async def _connect_turn(self, wanted: Callable[[], bool]) -> bool:
        """Wait for a slot of the shared connect limiter and take it, while ``wanted()``.

        Returns False, with no slot taken, when ``wanted()`` turns false during a wait.
        """
        limiter = self._connect_limiter
        while (wait := limiter.delay(self._now())) > 0:
            self._counters.connect_waits += 1
            self._counters.connect_wait_seconds += wait
            await asyncio.sleep(wait)
            if not wanted():
                return False
        limiter.acquire(self._now())
        return True

    def _start_network_probe(self, action: ProbeNetwork) -> None:
        """Try the host in a task of its own; the session hears the outcome.

        Also while the host name does not resolve: offline, Windows and macOS answer that
        the name does not exist (the errors ``lasting_problem`` reads as a wrong name), and
        their users' data should come back with the network too. A wrong name costs one
        DNS query a second meanwhile, which resolvers cache.
        """
        self._track(self._probe_network(action), "network-probe")

    async def _probe_network(self, action: ProbeNetwork) -> None:
        """Try a TCP connect to the host for the session's network watch (ProbeNetwork).

        It takes a slot of the shared connect limiter like a connect: however the watch and
        the reconnects interleave, the process opens at most Upbit's 5 connections a second.
        """
        if not await self._connect_turn(lambda: self._session.state == "reconnecting"):
            return  # the wait is over: the probe is moot
        reachable = await tcp_reachable(self.url, connect_timeout=action.timeout)
        _log.debug(
            "%s connection: the host %s a TCP connect",
            self.kind,
            "accepted" if reachable else "did not accept",
            extra={"connection": self.kind, "reachable": reachable},
        )
        self._session.network_probed(self._now(), reachable=reachable)
        self._after_input()

    # --- the hedge ---------------------------------------------------------------------------

    def _can_hedge(self) -> bool:
        """Tell whether the listener can give a spare its request and take a switch."""
        listener = self._listener
        return hasattr(listener, "spare_request") and hasattr(listener, "on_switched")

    def _start_hedge(self, action: Hedge) -> None:
        """Open a spare socket beside the current one (see the module docs)."""
        now = self._now()
        if self._sock is None or self._spare is not None or not self._can_hedge():
            self._session.hedge_failed(now)
            return
        handler = _Handler(
            kind=self.kind,
            counters=self._counters,
            now=self._now,
            frame_received=_ignore_time,
            data_received=self._spare_data,
            on_error_frame=self._error_frame,
            on_recovery=_nothing,
            on_pong=self._spare_pong,
            on_close=self._spare_closed,
        )
        spare = _Spare(handler, message_limiter(self.config.rate_limits))
        self._spare = spare
        _log.info(
            "%s connection: opening a spare socket (hedge): %s",
            self.kind,
            action.reason,
            extra={"connection": self.kind, "reason": action.reason},
        )
        self._track(self._run_spare(spare, action.timeout), f"spare-{self._generation + 1}")

    async def _run_spare(self, spare: _Spare, connect_timeout: float) -> None:
        """Connect the spare (through the shared connect limiter), send it the request, stay.

        Like :meth:`_connect`, the task stays until the socket is gone, so every socket is
        owned by the TaskGroup; cancelled (the connection stops), it aborts the socket.
        """
        # Upbit allows 5 connects/s (section 8.1): a spare waits its turn like a connect.
        if not await self._connect_turn(lambda: spare is self._spare):
            return
        try:
            ws = await self._open(spare.handler, connect_timeout)
        except UpbitWsError as exc:
            self._spare_failed(spare, f"the spare did not connect: {exc}")
            return
        try:
            if spare is not self._spare or not spare.handler.live or ws.closed:
                ws.abort()
                if spare is self._spare:
                    self._spare_failed(spare, "the spare closed during its handshake")
                return
            spare.ws = ws
            self._send_spare_request(spare, ws)
            await ws.wait_closed()
        except asyncio.CancelledError:
            ws.abort()  # the connection stops: the spare must not outlive it
            raise

    def _send_spare_request(self, spare: _Spare, ws: WebSocket) -> None:
        """Send the spare the newest merged request, and a ping on a quiet connection."""
        request_for: Callable[[ManagedConnection], bytes | None] | None = getattr(
            self._listener, "spare_request", None
        )
        try:
            frame = request_for(self) if request_for is not None else None
        except Exception:
            self._counters.listener_errors += 1
            _log.exception(
                "%s connection: listener failed on a spare request",
                self.kind,
                extra={"connection": self.kind},
            )
            self._spare_failed(spare, "the listener failed to build the spare's request")
            return
        if frame is not None:
            # A fresh socket's limiter admits its first message at once.
            spare.limiter.acquire(self._now())
            ws.send_text(frame)
            self._counters.messages_sent += 1
            self._counters.bytes_sent += len(frame)
            spare.handler.awaiting_data = True
        spare.requested = True
        if frame is None or not self._session.streaming:
            # A quiet connection proves the spare with a pong after its request.
            spare.by_pong = True
            ws.send_ping()

    def _spare_data(self, received_at: float) -> None:
        """Take the first data frame of the spare after its request: it proved itself."""
        spare = self._spare
        if spare is not None and spare.requested:
            self._switch_to_spare(spare, "its request was answered with data")

    def _spare_pong(self) -> None:
        """Take a pong on the spare: on a quiet connection, after its request, it proves it."""
        spare = self._spare
        if spare is not None and spare.by_pong:
            self._switch_to_spare(spare, "it answered a ping after its request")

    def _spare_closed(self, handler: _Handler, code: int, reason: str) -> None:
        """Take the close of a spare: a failed hedge (or, once it took over, a lost socket)."""
        spare = self._spare
        if spare is not None and spare.handler is handler:
            frame = handler.error
            why = f"error frame {frame.name}" if frame is not None else f"code {code}"
            self._spare_failed(spare, f"the spare closed before it proved itself ({why})")
        handler.live = False

    def _spare_failed(self, spare: _Spare, reason: str) -> None:
        """Let the spare go and fall back to today's path: the old socket's pong deadline."""
        if spare is not self._spare:
            return
        _log.info(
            "%s connection: hedge failed: %s; waiting for the old socket's pong deadline",
            self.kind,
            reason,
            extra={"connection": self.kind, "reason": reason},
        )
        self._drop_spare(reason, graceful=False)
        self._session.hedge_failed(self._now())
        self._after_input()

    def _adopt_spare(self, ended: UpbitWsError) -> bool:
        """Hand over to the spare when the current socket ended (``ended``) during a hedge.

        Only a spare that is open and was sent its request: it is then where a reconnect would
        be after its connect and request, without the backoff, the connect and the round
        trips. Returns False (nothing done) otherwise, or when the session keeps the ordinary
        path for this end (a refusal, a key problem, a fatal close).
        """
        spare = self._spare
        if (
            spare is None
            or spare.ws is None
            or spare.ws.closed
            or not spare.requested
            or not spare.handler.live
        ):
            return False
        return self._switch_to_spare(spare, f"the old socket ended: {ended}", ended=ended)

    def _switch_to_spare(
        self, spare: _Spare, proof: str, *, ended: UpbitWsError | None = None
    ) -> bool:
        """Make the spare the current socket and abort the old one (a hedge that won).

        The spare proved itself (``ended`` is None: runs on the spare's reader, before the
        frame that proved it is delivered: that frame and every later one go to the listener,
        and nothing more from the old socket does), or the old socket ended with ``ended``
        while the spare was open and requested (:meth:`_adopt_spare`). Returns whether the
        session took the switch; a proved spare it does not take is dropped.
        """
        ws = spare.ws
        session = self._session
        now = self._now()
        since = session.last_frame_at  # the old socket's last data frame: the gap's start
        if ws is None or not (
            session.hedge_switched(now) if ended is None else session.hedge_adopted(now, ended)
        ):
            if ended is None:
                self._drop_spare("the hedge is no longer wanted", graceful=True)
            return False
        self._spare = None
        handler = spare.handler
        handler.promote(
            frame_received=session.frame_received,
            data_received=session.data_received,
            on_recovery=self._after_input,
            on_pong=self._pong,
            on_close=self._socket_closed,
        )
        old = self._sock
        self._generation += 1
        self._sock = _Socket(ws, handler, self._generation, spare.limiter)
        if old is not None:
            # The old socket may be blackholed: no closing handshake (issue #4).
            old.handler.live = False
            old.closed.set()
            old.ws.abort()
        handler.install(self._listener)
        self._after_input()
        _log.warning(
            "%s connection: the spare socket %d took over (%s); socket %d aborted",
            self.kind,
            self._generation,
            proof,
            self._generation - 1,
            extra={"connection": self.kind, "generation": self._generation, "reason": proof},
        )
        on_switched: Callable[[ManagedConnection, float | None], None] | None = getattr(
            self._listener, "on_switched", None
        )
        if on_switched is None:
            return True
        try:
            on_switched(self, since)
        except Exception:
            self._counters.listener_errors += 1
            _log.exception(
                "%s connection: listener failed on a switch to the spare socket",
                self.kind,
                extra={"connection": self.kind},
            )
        return True

    def _drop_spare(self, reason: str, *, graceful: bool) -> None:
        """Let go of the spare socket, if any: closed gracefully if asked, else aborted."""
        spare = self._spare
        if spare is None:
            return
        self._spare = None
        spare.handler.live = False
        ws = spare.ws
        if ws is None:
            return  # still connecting: the task aborts what it opens
        if graceful and self._tg is not None:
            _log.debug(
                "%s connection: closing the spare socket (%s)",
                self.kind,
                reason,
                extra={"connection": self.kind, "reason": reason},
            )
            self._tg.create_task(
                self._close_gracefully(ws, self.config.timeouts.close),
                name=f"{_TASK_PREFIX}:{self.kind}:close-spare",
            )
        else:
            ws.abort()

    def _stalled(self, action: Stalled) -> None:
        """Tell the listener the open private socket lived through a stall (events may be lost).

        ``on_stall(connection, since)`` is optional on a listener: one without it is not told.
        """
        _log.warning(
            "%s connection stalled: %s; events since the last frame may be lost",
            self.kind,
            action.reason,
            extra={"connection": self.kind, "reason": action.reason},
        )
        on_stall = getattr(self._listener, "on_stall", None)
        if on_stall is None:
            return
        try:
            on_stall(self, action.since)
        except Exception:
            self._counters.listener_errors += 1
            _log.exception(
                "%s connection: listener failed on a stall",
                self.kind,
                extra={"connection": self.kind},
            )

    async def _open(self, handler: _Handler, connect_timeout: float) -> WebSocket:
        """Open one socket (a connect or a hedge's spare) with the configured receive buffer.

        A private socket gets a token with a fresh nonce for every connect (section 5); the
        token is never logged.
        """
        headers = None
        if self._credentials is not None:
            token = build_ws_token(self._credentials, nonce=str(uuid.uuid4()))
            headers = {"Authorization": f"Bearer {token}"}
        return await open_websocket(
            self.url,
            handler,
            connect_timeout=connect_timeout,
            headers=headers,
            receive_buffer=self.config.transport.receive_buffer,
        )

    async def _connect(self, action: Connect, handler: _Handler) -> None:
        """Open one socket for ``action``, report the outcome, and stay until the socket ends.

        Staying keeps every socket owned by the TaskGroup until it is really gone, and
        collects how it ended (picows keeps a local protocol error for whoever waits; unread,
        asyncio would report it as never retrieved).
        """
        try:
            ws = await self._open(handler, action.timeout)
        except UpbitWsError as exc:
            if handler is self._attempt_handler:
                self._attempt_handler = None
                now = self._now()
                self._record_error(str(exc), now)
                self._last_failure = exc
                self._announce_lasting(lasting_problem(exc, url=self.url), now)
                self._session.connect_failed(now, exc)
                self._after_input()
                self._check_auth(str(exc), getattr(exc, "name", None))
            return
        try:
            self._opened(ws, handler)
        finally:
            await ws.wait_closed()

    def _opened(self, ws: WebSocket, handler: _Handler) -> None:
        """Take the socket a connect attempt opened, unless the attempt was abandoned."""
        if handler is not self._attempt_handler or not handler.live:
            ws.abort()
            return
        self._attempt_handler = None
        self._last_failure = None
        self._lasting = None
        session = self._session
        session.connected(self._now())
        if session.state not in LIVE_STATES:
            # Closed during the handshake (the close was already reported) or no longer wanted.
            handler.live = False
            ws.abort()
            self._after_input()
            return
        self._generation += 1
        sock = _Socket(ws, handler, self._generation, message_limiter(self.config.rate_limits))
        self._sock = sock
        handler.install(self._listener)
        self._after_input()
        _log.info(
            "%s connection open (socket %d)",
            self.kind,
            self._generation,
            extra={"connection": self.kind, "generation": self._generation, "url": self.url},
        )
        try:
            self._listener.on_open(self)
        except Exception:
            self._counters.listener_errors += 1
            _log.exception(
                "%s connection: listener failed on open", self.kind, extra={"connection": self.kind}
            )

    async def _close_gracefully(self, ws: WebSocket, grace: float) -> None:
        """Close ``ws`` with a closing handshake, aborting it after ``grace`` seconds."""
        try:
            async with asyncio.timeout(grace):
                await ws.close()
        except TimeoutError:
            ws.abort()
        except asyncio.CancelledError:
            ws.abort()  # the connection stops: the socket must not outlive it
            raise

    # --- inputs from the socket -------------------------------------------------------------

    def _pong(self) -> None:
        self._session.pong_received(self._now())
        self._after_input()

    def _error_frame(self, handler: _Handler, payload: bytes) -> None:
        """Read an error frame (section 7) once; Upbit closes the socket right after it.

        It is logged once here, kept for the close that follows (whose cause it is) and handed
        typed to the listener (``on_error``); it never reaches ``on_frame``.
        """
        try:
            error = decode(payload)
        except DecodeError:
            error = None
        if not isinstance(error, ErrorFrame):
            handler.error = None
            self._counters.undecodable_errors += 1
            _log.warning(
                "%s connection: an error frame that does not decode: %r",
                self.kind,
                payload[:200],
                extra={"connection": self.kind},
            )
            return
        handler.error = error
        counters = self._counters
        counters.error_frames += 1
        counters.server_errors[error.name] = counters.server_errors.get(error.name, 0) + 1
        meaning = error_frame_meaning(error.name, connection=self.kind)
        _log.warning(
            "%s connection: Upbit sent error %s: %s (%s); the socket ends here",
            self.kind,
            error.name,
            error.message,
            _MEANINGS[meaning],
            extra={"connection": self.kind, "error_name": error.name, "meaning": meaning},
        )
        listener = handler.listener
        if listener is not None:
            try:
                listener.on_error(error)
            except Exception:
                counters.listener_errors += 1
                _log.exception(
                    "%s connection: listener failed on an error frame",
                    self.kind,
                    extra={"connection": self.kind},
                )
        self._end_after_error(handler, error)

    def _end_after_error(self, handler: _Handler, error: ErrorFrame) -> None:
        """End the open socket an error frame came on now, not at Upbit's close after it.

        Upbit closes the socket 150-800 ms after every error frame, and the subscription is
        gone from the frame on (section 7.3): waiting for that close only delays the reconnect
        (an unsolicited frame then cost more than a plain close). The session takes the frame
        as the socket's end, classified by its name as at the close; the socket is closed in
        the background. A connect attempt's frame still waits for the close.
        """
        sock = self._sock
        if sock is None or sock.handler is not handler:
            return
        handler.error = None
        now = self._now()
        cause = ServerRejectedError(error.name, error.message)
        self._record_error(str(cause), now)
        self._session.closed(now, error=cause)
        self._drop_socket(abort=False)
        assert self._tg is not None
        self._tg.create_task(
            self._close_gracefully(sock.ws, self.config.timeouts.close),
            name=f"{_TASK_PREFIX}:{self.kind}:close-{sock.generation}",
        )
        self._after_input()
        self._check_auth(error.message, error.name)

    def _socket_closed(self, handler: _Handler, code: int, reason: str) -> None:
        """Report a close or reset noticed by the reader, at once."""
        now = self._now()
        error: UpbitWsError
        frame = handler.error
        if frame is not None:
            # The error frame is the cause; classify reads its name (one table).
            error = ServerRejectedError(frame.name, frame.message, close_code=code)
        else:
            error = ConnectionClosedError(code, reason)
        self._record_error(str(error), now)
        sock = self._sock
        if sock is not None and sock.handler is handler:
            sock.close_code = code
            # An error frame may concern the request the spare carries too: no adoption then.
            if frame is None and self._adopt_spare(error):
                handler.live = False
                return
            self._session.closed(now, code=code, error=error)
            self._drop_socket(abort=False)
        elif handler is self._attempt_handler:
            # Closed while the handshake completes: the session counts it as a failed connect.
            self._attempt_handler = None
            self._session.closed(now, code=code, error=error)
        handler.live = False
        self._after_input()
        if frame is not None:
            self._check_auth(frame.message, frame.name)

    def _send_stalled(self, sock: _Socket, timeout: float) -> None:
        """Replace a socket whose write buffer did not drain: the link is stalled."""
        if self._sock is not sock:
            return
        now = self._now()
        reason = f"a frame did not drain within {timeout:g} s"
        self._record_error(reason, now)
        if self._adopt_spare(TransportError(reason)):
            return
        self._session.closed(now, error=TransportError(reason))
        self._log_dead(reason)
        self._drop_socket(abort=True)
        self._after_input()

    # --- plumbing ----------------------------------------------------------------------------

    def _drop_socket(self, *, abort: bool) -> None:
        """Let go of the current socket (aborting it if asked) and tell the listener."""
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        sock.handler.live = False
        sock.closed.set()
        if abort:
            sock.ws.abort()
        try:
            self._listener.on_closed(self)
        except Exception:
            self._counters.listener_errors += 1
            _log.exception(
                "%s connection: listener failed on close",
                self.kind,
                extra={"connection": self.kind},
            )

    async def _hold(self, sock: _Socket, seconds: float) -> None:
        """Wait ``seconds`` for the limiter; raise ConnectionClosedError if the socket ends."""
        try:
            async with asyncio.timeout(seconds):
                await sock.closed.wait()
        except TimeoutError:
            return
        raise ConnectionClosedError(sock.close_code, "closed while waiting for the rate limiter")

    def _after_input(self) -> None:
        """Report what the session did and wake the driver to act on it."""
        self._report()
        self._wake.set()

    def _report(self) -> None:
        """Publish the session's state changes, then follow its state (if it changed)."""
        if self._flush_events():
            self._follow_state()

    def _follow_state(self) -> None:
        """Mirror the session's state where the reader checks it, and wake wait_open()."""
        self._counters.degraded = self._session.state == "degraded"
        self._notify()

    def _flush_events(self) -> bool:
        """Log and publish the session's pending events; return whether there were any."""
        events = self._session.take_events()
        if not events:
            return False
        for event in events:
            level = logging.WARNING if event.new in ("reconnecting", "suspended") else logging.INFO
            if self._lasting is not None and event.new in ("connecting", "reconnecting"):
                level = logging.DEBUG  # announced once by _announce_lasting
            _log.log(
                level,
                "%s connection %s -> %s (%s, attempt %d)",
                event.connection,
                event.old,
                event.new,
                event.reason,
                event.attempt,
                extra={
                    "connection": event.connection,
                    "old_state": event.old,
                    "new_state": event.new,
                    "reason": event.reason,
                    "attempt": event.attempt,
                },
            )
            self._publish(event)
        return True

    def _notify(self) -> None:
        """Wake every :meth:`wait_open` caller to re-check the state."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _check_auth(self, message: str, name: str | None) -> None:
        """Tell the key-health owner when the session suspended because the key was refused."""
        decision = self._session.last_decision
        if (
            self._on_auth_refused is not None
            and decision is not None
            and decision.cause == "auth"
            and self._session.state == "suspended"
        ):
            self._on_auth_refused(name, message)

    @property
    def last_failure(self) -> UpbitWsError | None:
        """Return the exception of the last failed connect (None once a socket opened)."""
        return self._last_failure

    @property
    def lasting_problem(self) -> str | None:
        """Return the failure retrying cannot fix, with its fix, while it lasts (else None)."""
        return self._lasting

    def _announce_lasting(self, problem: str | None, now: float) -> None:
        """Publish and log a lasting problem once (again only if it changes)."""
        if problem is None or problem == self._lasting:
            return
        self._lasting = problem
        _log.error(
            "%s connection cannot work as configured: %s (retrying quietly)",
            self.kind,
            problem,
            extra={"connection": self.kind, "reason": problem},
        )
        self._publish(ConnectionMisconfigured(at=now, connection=self.kind, problem=problem))

    def _record_error(self, reason: str, now: float) -> None:
        self._last_error = reason
        self._last_error_at = now

    def _log_dead(self, reason: str) -> None:
        if self._session.state == "closed":
            # Closing abandons the connect in progress: expected, and the state change to
            # closed is already logged.
            _log.debug(
                "%s connection: abandoning the connect in progress (%s)",
                self.kind,
                reason,
                extra={"connection": self.kind, "reason": reason},
            )
            return
        _log.warning(
            "%s connection declared dead: %s; aborting the socket",
            self.kind,
            reason,
            extra={"connection": self.kind, "reason": reason},
        )


class ConnectionHandle:
    """What a manager shows of one of its connections: read it and wait on it, never send.

    ``ws.public`` and ``ws.private`` are handles. There is no ``send()`` here on purpose: a
    raw request would replace the merged subscription the manager keeps on that socket
    (Upbit replaces the whole subscription on every request, section 3); subscribe through
    ``ws.component(name)`` instead. (A listener given with ``listeners={...}`` owns its
    connection and gets the :class:`ManagedConnection` itself in ``on_open``.)
    """

    __slots__ = ("_conn",)

    def __init__(self, connection: ManagedConnection) -> None:
        self._conn = connection

    def __repr__(self) -> str:
        return repr(self._conn)

    @property
    def kind(self) -> ConnectionKind:
        """Return ``public`` or ``private``."""
        return self._conn.kind

    @property
    def url(self) -> str:
        """Return the WebSocket URL."""
        return self._conn.url

    @property
    def state(self) -> ConnectionState:
        """Return the state (``open``, ``reconnecting``, ``suspended``...)."""
        return self._conn.state

    @property
    def is_open(self) -> bool:
        """Tell whether a socket is open and usable."""
        return self._conn.is_open

    @property
    def generation(self) -> int:
        """Return the number of sockets opened so far."""
        return self._conn.generation

    @property
    def listener(self) -> ConnectionListener:
        """Return the listener frames go to."""
        return self._conn.listener

    @property
    def session(self) -> Session:
        """Return the pure session the connection drives (read it, do not feed it)."""
        return self._conn.session

    def statistics(self) -> ConnectionStatistics:
        """Return a snapshot of the state and counters."""
        return self._conn.statistics()

    async def wait_open(self) -> None:
        """Return once a socket is open; raise ConnectionClosedError if closed for good."""
        await self._conn.wait_open()


def _discard_event(event: Event) -> None:
    """Drop an event (a connection built without a publish callback)."""
