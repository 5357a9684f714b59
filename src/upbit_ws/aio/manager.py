"""The manager: the public and private connections, the key-health loop, events, snapshots.

:class:`WebSocketManager` is the façade an application holds::

    async with WebSocketManager(credentials=Credentials.from_env()) as ws:
        async for event in ws.events(): ...

``start()`` opens the public connection at once and, when credentials are given, checks the
API key (``GET /v1/api_keys``) and opens the private connection unless the key is refused; the
key is then checked every minute. The two connections are fully independent: each has its own
session, socket, backoff and tasks, and a fault on one never touches the other (they share only
the process-wide connect limiter, because Upbit counts connects per IP and account, section
8.1). Every task is owned: one root task holds a TaskGroup with each connection's
:meth:`~upbit_ws.aio.connection.ManagedConnection.run` and the key loop, and ``aclose()`` ends
them all and leaves nothing behind; so does a ``start()`` that fails or is cancelled.

A bug that stops a part (never a network fault: the sessions handle those) is logged with its
traceback, kept in ``statistics().internal_errors``, and the part is restarted after a backoff
that grows while the bug repeats, because a trader wants the feed kept up (the one supervisor
of :mod:`upbit_ws.aio.supervisor`, as for every part that restarts). A connection
recovers from bugs in its own driver by itself; the manager restarts it only if that recovery
fails too. The subscription service supervises its own parts; the manager does not restart
its run, whose end ends every subscription, so no consumer waits on a stream nobody feeds.

The subscription layer (:class:`~upbit_ws.aio.subscriptions.SubscriptionService`) is each
connection's :class:`~upbit_ws.aio.connection.ConnectionListener` unless ``listeners={...}``
replaces it for a connection, whose types then cannot be subscribed (nothing would send
them): ``ws.component(name).subscribe(...)`` adds interest, and the service keeps one merged
request per connection. It publishes rejected requests and gaps as events. ``start()`` loads
the market list (code checks, ``KRW-*`` expansion) while the public connection opens and the
key is checked; the flushers start as soon as the list is known, whatever the key check is
doing.

With credentials, :class:`~upbit_ws.aio.private.PrivateIntegrity` reconciles the private
subscriptions over REST after every private gap (a reconnect, a stall, a ``never_drop``
overflow), audits them quietly while orders are open or private frames flow
(``config.reconcile``), and publishes ``ReconciliationStarted``/``ReconciliationFinished``; it
runs as one more part of the TaskGroup (docs/rest.md, "Reconciliation").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from upbit_ws.aio.clock import Clock, LoopClock
from upbit_ws.aio.component import Component, SubscriptionsView
from upbit_ws.aio.connection import (
    ConnectionHandle,
    ConnectionListener,
    ConnectionStatistics,
    ManagedConnection,
    shared_connect_limiter,
)
from upbit_ws.aio.events import DEFAULT_EVENT_QUEUE, EventHub, EventHubStatistics, EventStream
from upbit_ws.aio.keys import KeyHealth, KeyHealthStatistics, KeyStatus
from upbit_ws.aio.private import PrivateIntegrity, PrivateIntegrityStatistics
from upbit_ws.aio.rest import RestClient
from upbit_ws.aio.subscriptions import SubscriptionService, SubscriptionServiceStatistics
from upbit_ws.aio.supervisor import InternalError, Supervisor
from upbit_ws.core.auth import Credentials
from upbit_ws.core.config import ConnectionConfig
from upbit_ws.core.constants import (
    DEFAULT_BASE_URL,
    check_connection,
    check_seconds,
    websocket_urls,
)
from upbit_ws.core.errors import AuthError, ConfigError, InvalidInputError, NotReadyError
from upbit_ws.core.events import BufferOverflowed, ConnectionKind, ConnectionState
from upbit_ws.core.ratelimit import ConnectLimiter, LimiterStatistics
from upbit_ws.core.session import LIVE_STATES

if TYPE_CHECKING:
    from upbit_ws.observe.server import HealthServer

__all__ = [
    "DEFAULT_READY_TIMEOUT",
    "ConnectionHealth",
    "Health",
    "ManagerStatistics",
    "WebSocketManager",
    "websocket_urls",
]

_log = logging.getLogger("upbit_ws.manager")

#: Extra time ``aclose()`` gives the tasks beyond the close timeout before cancelling them.
_SHUTDOWN_SLACK: Final = 1.0
#: How long :meth:`WebSocketManager.wait_ready` waits by default, in seconds.
DEFAULT_READY_TIMEOUT: Final = 10.0
#: How often wait_ready re-checks (confirmation publishes no event), in seconds.
_READY_POLL: Final = 0.02
_Lifecycle = Literal["new", "running", "closing", "closed"]
#: One part the manager runs: a connection's run() or the key loop.
_Part = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class ConnectionHealth:
    """Whether one connection is usable: ``ok`` when a socket is open (or being probed).

    ``since_wall`` is when it entered ``state``, in epoch seconds (UTC wall clock); ``since``
    is the same instant on the shell's monotonic clock (``loop.time()`` seconds, comparable
    only with other monotonic times of this process). ``reason`` describes now: why the
    connection is not usable (its last failure, or a stream gone stale: no data past
    ``KeepaliveConfig.stale_after`` while pings are answered, being resubscribed), None while
    it is ok. ``down_since`` / ``down_since_wall``: since when no socket has been usable (the
    start of an outage, which ``since`` is not: every attempt changes the state), None while
    one is. ``retry_in``: seconds until the next connect while a retry waits, else None.
    """

    connection: ConnectionKind
    ok: bool
    state: ConnectionState
    since: float
    reason: str | None
    since_wall: float = 0.0
    #: Private: a REST reconciliation runs now (its subscribers' view is being repaired).
    reconciling: bool = False
    down_since: float | None = None
    down_since_wall: float | None = None
    retry_in: float | None = None


@dataclass(frozen=True, slots=True)
class Health:
    """Whether the manager is healthy: every connection it runs is ok.

    ``key`` is the API key status (None without credentials). ``at_wall`` is when the
    snapshot was taken, in epoch seconds (UTC); ``at`` the same on the monotonic clock.
    """

    ok: bool
    connections: tuple[ConnectionHealth, ...]
    key: KeyStatus | None
    at: float = 0.0
    at_wall: float = 0.0


@dataclass(frozen=True, slots=True)
class ManagerStatistics:
    """A snapshot of the manager: each connection, the key checks, events, connect limiter.

    ``connect_limiter`` is the process-wide limiter the connections share. ``internal_errors``
    lists the newest bugs that stopped a part (at most 32).
    """

    public: ConnectionStatistics
    private: ConnectionStatistics | None
    key: KeyHealthStatistics | None
    events: EventHubStatistics
    connect_limiter: LimiterStatistics
    internal_errors: tuple[InternalError, ...]
    #: The subscription layer: book, requests, routing, buffers, market list.
    subscriptions: SubscriptionServiceStatistics
    #: Private reconciliation (None without credentials): in progress, passes, counts.
    reconciliation: PrivateIntegrityStatistics | None = None


class WebSocketManager:
    """Keep Upbit's public and private WebSockets connected; see the module docs.

    ``base_url`` is Upbit's REST base (the WebSocket URLs derive from it, see
    :func:`websocket_urls`); ``credentials`` turn the private connection and the key checks on.
    ``config`` holds every timing and limit (the defaults table of
    :mod:`upbit_ws.core.config`). ``listeners`` replace the subscription layer as the listener
    of a connection kind (that kind then refuses subscriptions); ``rest`` replaces the REST
    client (it is then not closed by the manager);
    ``event_queue_size`` bounds each :meth:`events` stream; ``connect_limiter`` replaces the
    process-wide connect limiter; ``clock`` is the shell clock seam. ``health_port`` serves
    ``/healthz`` and ``/metrics`` on 127.0.0.1 while the manager runs (0: a free port; see
    :attr:`health_server`; ``upbit_ws.observe``, loaded only when asked). ``ready_timeout``
    makes :meth:`start` (and so ``async with``) wait until every wanted connection is open and
    its subscription confirmed, as :meth:`wait_ready` does, and fail with its errors: a
    misconfiguration (:class:`~upbit_ws.ConfigError`), a refused key
    (:class:`~upbit_ws.AuthError`) or a timeout (:class:`~upbit_ws.NotReadyError`); the
    manager is closed before the error propagates. Without it, ``start()`` returns while the
    sockets open and such problems are one :class:`~upbit_ws.ConnectionMisconfigured` or
    :class:`~upbit_ws.KeyProblem` event and one log line each.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        credentials: Credentials | None = None,
        config: ConnectionConfig | None = None,
        listeners: Mapping[ConnectionKind, ConnectionListener] | None = None,
        rest: RestClient | None = None,
        event_queue_size: int = DEFAULT_EVENT_QUEUE,
        connect_limiter: ConnectLimiter | None = None,
        clock: Clock | None = None,
        health_port: int | None = None,
        ready_timeout: float | None = None,
    ) -> None:
        if credentials is not None and not isinstance(credentials, Credentials):
            raise InvalidInputError("credentials must be a Credentials (or None)")
        listeners = listeners or {}
        for key in listeners:
            check_connection(key)
        public_url, private_url = websocket_urls(base_url)
        self.base_url = base_url
        if ready_timeout is not None and not ready_timeout > 0:
            raise ConfigError(
                [f"ready_timeout must be a positive number of seconds, got {ready_timeout!r}"]
            )
        #: When set, start() (and ``async with``) ends with :meth:`wait_ready` of this timeout.
        self.ready_timeout = ready_timeout
        self.config = config or ConnectionConfig()
        self._clock: Clock = clock or LoopClock()
        self._hub = EventHub(queue_size=event_queue_size, clock=self._clock)
        self._limiter: ConnectLimiter = connect_limiter or shared_connect_limiter(
            self.config.rate_limits
        )
        self._own_rest = rest is None
        self._rest = rest or RestClient(base_url, credentials=credentials)
        self._subs = SubscriptionService(
            rest=self._rest,
            publish=self._hub.publish,
            on_overflow=self._overflowed,
            clock=self._clock,
            config=self.config,
        )
        user_listeners = listeners
        self._public = ManagedConnection(
            "public",
            url=public_url,
            config=self.config,
            listener=user_listeners.get("public"),
            connect_limiter=self._limiter,
            publish=self._hub.publish,
            clock=self._clock,
        )
        self._private: ManagedConnection | None = None
        self._keys: KeyHealth | None = None
        self._integrity: PrivateIntegrity | None = None
        self._integrity_task: asyncio.Task[None] | None = None
        if credentials is not None:
            self._private = ManagedConnection(
                "private",
                url=private_url,
                config=self.config,
                credentials=credentials,
                listener=user_listeners.get("private"),
                connect_limiter=self._limiter,
                publish=self._hub.publish,
                on_auth_refused=self._auth_refused,
                clock=self._clock,
            )
            self._keys = KeyHealth(
                self._rest,
                credentials=credentials,
                config=self.config.key_health,
                publish=self._hub.publish,
                on_invalid=self._suspend_private,
                on_valid=self._resume_private,
                clock=self._clock,
            )
        elif "private" in user_listeners:
            raise InvalidInputError("a private listener needs credentials")
        self._public_handle = ConnectionHandle(self._public)
        self._private_handle = (
            ConnectionHandle(self._private) if self._private is not None else None
        )
        # The subscription service carries the subscriptions of every connection whose
        # listener the caller did not replace; the others refuse subscriptions (nothing
        # would send them).
        for conn in (self._public, self._private):
            if conn is not None and conn.kind not in user_listeners:
                self._subs.attach(conn)
        if self._private is not None and "private" not in user_listeners:
            self._integrity = PrivateIntegrity(
                self._rest,
                self._subs.listener("private"),
                publish=self._hub.publish,
                clock=self._clock,
                config=self.config.reconcile,
            )
        self._lifecycle: _Lifecycle = "new"
        self._root: asyncio.Task[None] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._closed = asyncio.Event()
        self._key_task: asyncio.Task[None] | None = None
        self._supervisor = Supervisor(
            "manager",
            config=self.config.backoff,
            clock=self._clock,
            stopping=self._stopping,
            logger=_log,
        )
        #: The health/metrics HTTP server when ``health_port`` was given (observability hook).
        self.health_server: HealthServer | None = None
        if health_port is not None:
            from upbit_ws.observe.server import HealthServer  # opt-in: loaded only when asked

            self.health_server = HealthServer(self, port=health_port)

    def __repr__(self) -> str:
        private = self._private.state if self._private is not None else "none"
        return (
            f"<WebSocketManager {self.base_url} {self._lifecycle} "
            f"public={self._public.state} private={private}>"
        )

    # --- parts ------------------------------------------------------------------------------

    @property
    def public(self) -> ConnectionHandle:
        """Return the public connection (market data), to read and wait on."""
        return self._public_handle

    @property
    def private(self) -> ConnectionHandle | None:
        """Return the private connection (myOrder, myAsset), or None without credentials."""
        return self._private_handle

    def connection(self, connection: ConnectionKind) -> ConnectionHandle:
        """Return the ``connection`` (public or private); private needs credentials."""
        if check_connection(connection) == "public":
            return self._public_handle
        if self._private_handle is None:
            raise InvalidInputError("no private connection: the manager has no credentials")
        return self._private_handle

    @property
    def rest(self) -> RestClient:
        """Return the REST client (signed when the manager has credentials)."""
        return self._rest

    @property
    def integrity(self) -> PrivateIntegrity | None:
        """Return the private reconciliation, or None without credentials."""
        return self._integrity

    @property
    def keys(self) -> KeyHealth | None:
        """Return the API key health watcher, or None without credentials."""
        return self._keys

    # --- events -----------------------------------------------------------------------------

    def events(self, *, queue_size: int | None = None) -> EventStream:
        """Return a new stream of system events (state changes, key problems, gaps...).

        Events published from this call on are queued (bounded; the oldest is dropped when a
        slow reader lets it fill); the stream ends when the manager closes.
        """
        return self._hub.subscribe(queue_size=queue_size)

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> WebSocketManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open public at once; check the key and open private unless the key is refused.

        Returns once the key check and the market list load are done (each bounded by its
        timeout; they run side by side), and, when the manager was built with
        ``ready_timeout``, once :meth:`wait_ready` returned. If it fails or is cancelled before
        that (a timeout around ``async with``), it closes everything it started before the
        error propagates.
        """
        if self._lifecycle != "new":
            raise InvalidInputError(f"start() can be called once; the manager is {self._lifecycle}")
        self._lifecycle = "running"
        try:
            if self.health_server is not None:
                await self.health_server.start()
            self._root = asyncio.create_task(self._supervise(), name="upbit-ws:manager")
            await self._ready.wait()
            self._spawn(self._public.run, "public")
            async with asyncio.TaskGroup() as tg:
                if self._private is not None and self._keys is not None:
                    tg.create_task(self._start_private(), name="upbit-ws:start:private")
                tg.create_task(self._start_subscriptions(), name="upbit-ws:start:subscriptions")
            if self.ready_timeout is not None:
                await self.wait_ready(self.ready_timeout)
        except BaseException:
            await self.aclose()
            raise

    async def _start_private(self) -> None:
        """Check the key, then run private and the key loop."""
        assert self._private is not None and self._keys is not None
        # A refused key suspends private before it ever connects (on_invalid); a check that
        # cannot reach Upbit is not a key problem, so private opens anyway.
        await self._keys.check()
        if self._lifecycle != "running":
            return
        self._spawn(self._private.run, "private")
        self._key_task = self._spawn(self._keys.run, "keys")
        if self._integrity is not None:
            self._integrity_task = self._spawn(self._integrity.run, "reconcile")

    async def _start_subscriptions(self) -> None:
        """Load the market list (at most a few seconds), then run the flushers."""
        # The first request then already has KRW-* expanded; sockets open meanwhile.
        await self._subs.load_markets()
        # Then the orderbook levels each market honours (level checks, docs/protocol.md 2.3).
        await self._subs.load_orderbook_levels()
        if self._lifecycle != "running":
            return
        # Not restarted after a bug: its run ends every subscription on the way out.
        self._spawn(self._subs.run, "subscriptions", restart=False)

    async def aclose(self) -> None:
        """Close both connections, stop the key checks and wait until every task is gone.

        Idempotent; a call made while another is closing waits for that one to finish.
        """
        if self._lifecycle in ("closing", "closed"):
            await self._closed.wait()
            return
        started = self._lifecycle == "running"
        self._lifecycle = "closing"
        try:
            if started:
                await self._stop()
        finally:
            try:
                if self.health_server is not None:
                    await self.health_server.aclose()
                await self._release()
            finally:
                self._lifecycle = "closed"
                self._closed.set()

    async def _release(self) -> None:
        """End the subscriptions and event streams and close the REST client if it is ours."""
        self._subs.close()
        self._hub.close()
        if self._own_rest:
            await self._rest.aclose()

    async def check_key(self) -> KeyStatus:
        """Check the API key now (as the periodic loop does) and return its status."""
        if self._keys is None:
            raise InvalidInputError("no credentials: there is no key to check")
        return await self._keys.check()

    # --- subscriptions ----------------------------------------------------------------------

    def component(self, name: str) -> Component:
        """Return the handle of component ``name``: ``ws.component("chart").subscribe(...)``."""
        return self._subs.component(name)

    def subscriptions(self) -> SubscriptionsView:
        """Return the merged subscription per connection and per component (local state)."""
        return self._subs.subscriptions()

    async def list_subscriptions(self) -> SubscriptionsView:
        """Return :meth:`subscriptions` plus what Upbit says each socket streams.

        Asks Upbit with LIST_SUBSCRIPTIONS on both connections at once (it counts toward the
        message limit). A connection with no socket open reports ``server=None``. If the socket
        asked is replaced by a hedge's spare before it answers, the spare is asked within the
        same deadline (``Timeouts.subscription_change``); a socket that closed with none open
        behind it, or no answer by the deadline, raises :class:`~upbit_ws.TransportError`.
        """
        return await self._subs.list_subscriptions()

    @property
    def subscription_service(self) -> SubscriptionService:
        """Return the subscription layer (book, routers, flushers, market list)."""
        return self._subs

    # --- snapshots --------------------------------------------------------------------------

    def statistics(self) -> ManagerStatistics:
        """Return a snapshot of every part."""
        return ManagerStatistics(
            public=self._public.statistics(),
            private=self._private.statistics() if self._private is not None else None,
            key=self._keys.statistics() if self._keys is not None else None,
            events=self._hub.statistics(),
            connect_limiter=self._limiter.statistics(),
            internal_errors=self._supervisor.errors,
            subscriptions=self._subs.statistics(),
            reconciliation=(self._integrity.statistics() if self._integrity is not None else None),
        )

    def health(self) -> Health:
        """Return whether each connection is usable now, and the key status."""
        now, wall = self._clock.now(), self._clock.wall()
        reconciling = self._integrity is not None and self._integrity.in_progress
        connections = tuple(
            _health(conn, now, wall, reconciling=reconciling and conn.kind == "private")
            for conn in (self._public, self._private)
            if conn is not None
        )
        return Health(
            ok=self._lifecycle == "running" and all(c.ok for c in connections),
            connections=connections,
            key=self._keys.status if self._keys is not None else None,
            at=now,
            at_wall=wall,
        )

    # --- readiness --------------------------------------------------------------------------

    # The timeout is part of the answer (NotReadyError names what was not ready when it ran
    # out), which an outer asyncio.timeout could not give.
    async def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:  # noqa: ASYNC109
        """Wait until every wanted connection is open and its subscription confirmed.

        Wanted: public always, private when the manager has credentials. Confirmed: the
        connection's merged request is applied (see :mod:`upbit_ws.aio.subscriptions`); a
        connection nobody subscribed on yet only needs its socket. After a reconnect, a
        request that re-sends exactly the streams Upbit accepted before, and that no data can
        confirm (private: myOrder, myAsset), counts once it is on the socket: Upbit
        acknowledges nothing, so the quiet window (``confirm_quiet``, 1 s) would only repeat
        what the earlier socket showed; an error frame still ends that socket, and the state
        goes out again on the next. Raises at once, without
        waiting out ``timeout``, when a failure cannot fix itself:
        :class:`~upbit_ws.ConfigError` for a URL that answers 404 to the WebSocket handshake or
        a host that does not resolve, :class:`~upbit_ws.AuthError` for an API key Upbit
        refused. Raises :class:`~upbit_ws.NotReadyError` naming what is still not ready when
        ``timeout`` seconds pass, and :class:`~upbit_ws.InvalidInputError` if the manager is
        not running or ``timeout`` is no number >= 0.
        """
        timeout = check_seconds(timeout)
        if self._lifecycle != "running":
            raise InvalidInputError(
                f"wait_ready() needs a running manager; it is {self._lifecycle}"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            problems = self._readiness()
            if not problems:
                return
            left = deadline - loop.time()
            if left <= 0:
                raise NotReadyError(problems, timeout=timeout)
            # Confirmation has no event of its own: re-check at a short, bounded period.
            await asyncio.sleep(min(_READY_POLL, left))

    def _readiness(self) -> list[str]:
        """Return what is not ready yet; raise for what will not fix itself."""
        if self._lifecycle != "running":
            raise NotReadyError([f"the manager is {self._lifecycle}"], timeout=0.0)
        if self._keys is not None and self._keys.status in ("invalid", "expired", "permission"):
            detail = self._keys.statistics().last_check_error
            raise AuthError(
                f"API key refused ({self._keys.status})"
                + (f": {detail}" if detail else "")
                + "; check the key, its permissions and its allowed IP addresses",
            )
        lasting = [
            f"{conn.kind}: {conn.lasting_problem}"
            for conn in (self._public, self._private)
            if conn is not None and conn.lasting_problem is not None and not conn.is_open
        ]
        if lasting:
            raise ConfigError(lasting)
        problems: list[str] = []
        view = self._subs.subscriptions()
        for conn in (self._public, self._private):
            if conn is None:
                continue
            if not conn.is_open:
                stats = conn.statistics()
                why = f" ({stats.last_error})" if stats.last_error else ""
                problems.append(f"{conn.kind}: {stats.state}{why}")
                continue
            cview = view.public if conn.kind == "public" else view.private
            desired = set(cview.desired)
            if cview.resent:
                continue  # a resubscription of accepted streams: on the socket is applied
            if desired and (cview.in_flight or desired != set(cview.confirmed)):
                done = len(desired & set(cview.confirmed))
                problems.append(
                    f"{conn.kind}: subscription not confirmed yet ({done} of {len(desired)} "
                    "streams)"
                )
        return problems

    # --- internals --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Hold the TaskGroup that owns every task of the manager until :meth:`aclose`.

        Cancelled from outside instead (``asyncio.run`` ending without ``aclose()``), it still
        releases what the manager holds: the REST client's HTTP session and its sockets.
        """
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._ready.set()
                await self._stopping.wait()
        finally:
            self._tg = None
            if not self._stopping.is_set():
                await self._release()

    def _spawn(
        self, part: Callable[[], Coroutine[Any, Any, None]], name: str, *, restart: bool = True
    ) -> asyncio.Task[None]:
        assert self._tg is not None
        return self._tg.create_task(self._guard(part, name, restart), name=f"upbit-ws:{name}")

    async def _guard(self, part: _Part, name: str, restart: bool) -> None:
        """Run one part under the manager's supervisor (see :mod:`upbit_ws.aio.supervisor`).

        Public and private must stay independent, so a bug touches only the part it happened
        in. A part that must not restart is recorded and logged, then left stopped.
        """
        await self._supervisor.run(name, part, give_up_after=None if restart else 1)

    async def _stop(self) -> None:
        self._subs.close()
        self._public.close(reason="manager closed")
        if self._private is not None:
            self._private.close(reason="manager closed")
        if self._key_task is not None:
            self._key_task.cancel()
        if self._integrity_task is not None:
            self._integrity_task.cancel()
        self._stopping.set()
        root = self._root
        if root is None:
            return
        grace = self.config.timeouts.close + _SHUTDOWN_SLACK
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(root)
        except TimeoutError:
            _log.warning("manager tasks did not stop within %.1f s; cancelling them", grace)
            root.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await root

    def _overflowed(self, event: BufferOverflowed) -> None:
        if self._integrity is not None:
            self._integrity.overflowed(event)

    def _auth_refused(self, name: str | None, message: str) -> None:
        if self._keys is not None:
            self._keys.report_refused(name, message)

    def _suspend_private(self, reason: str) -> None:
        if self._private is not None and self._lifecycle in ("new", "running"):
            self._private.key_invalid(reason)

    def _resume_private(self) -> None:
        if self._private is not None and self._lifecycle == "running":
            self._private.key_valid()


def _health(
    conn: ManagedConnection, now: float, wall: float, *, reconciling: bool = False
) -> ConnectionHealth:
    stats = conn.statistics()
    ok = stats.state in LIVE_STATES and not stats.stale
    return ConnectionHealth(
        connection=conn.kind,
        ok=ok,
        state=stats.state,
        since=stats.state_since,
        # The last failure explains a connection that is down; once open again it is history
        # (statistics().last_error keeps it). A stale stream is not ok and says so.
        reason=stats.stale_reason if stats.stale else (None if ok else stats.last_error),
        since_wall=wall - (now - stats.state_since),
        reconciling=reconciling,
        down_since=None if stats.down_age is None else now - stats.down_age,
        down_since_wall=None if stats.down_age is None else wall - stats.down_age,
        retry_in=stats.retry_in,
    )
