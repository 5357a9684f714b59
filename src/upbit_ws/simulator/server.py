"""The :class:`Simulator`: a local Upbit on one aiohttp port, with faults you can script.

WebSocket (``/websocket/v1``, ``/websocket/v1/private``), REST (``/v1/...``) and the control
API (``/_sim/...``) share one port, like ``api.upbit.com``. The market model runs on one clock
(wall clock by default; a :class:`~upbit_ws.simulator.clock.ManualClock` lets tests step it
with :meth:`Simulator.advance`). Usage::

    async with Simulator(port=0) as sim:
        sim.ws_url, sim.private_ws_url, sim.url, sim.credentials
        sim.abort()                      # drop every connection without a close frame

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from aiohttp import web

from upbit_ws.core.errors import InvalidInputError
from upbit_ws.simulator.auth import KeyStore
from upbit_ws.simulator.clock import Clock, ManualClock, WallClock
from upbit_ws.simulator.config import SimulatorConfig
from upbit_ws.simulator.connection import ConnectionKind, SimConnection
from upbit_ws.simulator.dispatch import Router
from upbit_ws.simulator.frames import FrameBuilder
from upbit_ws.simulator.limits import ConnectLimiter
from upbit_ws.simulator.market import MarketEvent, MarketModel
from upbit_ws.simulator.orders import OrderEngine, PrivateEvent
from upbit_ws.simulator.protocol import MESSAGES, Entry

__all__ = ["MalformedKind", "RefuseHow", "Simulator", "SimulatorStats"]

logger = logging.getLogger(__name__)

MalformedKind = Literal["garbage", "truncated", "text", "not_object"]
#: How a refuse fault refuses handshakes: an HTTP status, silence, or no listening socket.
RefuseHow = Literal["status", "stall", "tcp"]
_MALFORMED: Final[dict[str, bytes]] = {
    "garbage": b"\x00\xffnot json at all\xfe",
    "truncated": b'{"type":"ticker","code":"KRW-BTC","trade_price":1098',
    "text": b'{"type":"ticker","code":"KRW-BTC"}',
    "not_object": b"12345",
}
_HISTORY: Final = 1000


@dataclass(frozen=True, slots=True)
class SimulatorStats:
    """A snapshot of the simulator's counters."""

    connections_open: int
    connections_accepted: int
    connections_refused: dict[str, int]
    frames_sent: dict[str, int]
    errors_sent: dict[str, int]
    requests_received: int
    messages_over_limit: int
    rest_requests: int
    rest_rate_limited: int


class Simulator:
    """A faithful local Upbit: ``async with Simulator(port=0) as sim: ...``.

    ``options`` override fields of ``config`` (``Simulator(port=0, idle_timeout=1.0)``).
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, clock: Clock | None = None, **options: Any
    ) -> None:
        cfg = config or SimulatorConfig()
        if options:
            cfg = cfg.replace(**options)
        self.config = cfg
        self.clock: Clock = clock or WallClock()
        self.model = MarketModel(cfg, start=self.clock.now())
        self.engine = OrderEngine(cfg, self.model)
        self.keys = KeyStore()
        self.keys.add(
            cfg.access_key, cfg.secret_key, expire_at=self.clock.now() + cfg.key_valid_days * 86400
        )
        self.frames = FrameBuilder(number_spelling=cfg.number_spelling)
        self.port = cfg.port
        self._runner: web.AppRunner | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._market_task: asyncio.Task[None] | None = None
        self._next_id = 1
        self._connections: dict[int, SimConnection] = {}
        self._closed: deque[SimConnection] = deque(maxlen=_HISTORY)
        self.router = Router(self.frames)
        self._connect_limiters: dict[str, ConnectLimiter] = {}
        self._refuse_until = 0.0
        self._refuse_status = 503
        self._refuse_how: RefuseHow = "status"
        self._new_delay = 0.0
        self._changed: asyncio.Event | None = None
        self._frames_sent: Counter[str] = Counter()
        self._errors_sent: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self.accepted = 0
        self.requests_received = 0
        self.messages_over_limit = 0
        self.rest_requests = 0
        self.rest_rate_limited = 0
        # Fault knob: the next subscription requests answered with an error frame instead.
        self._reject_requests: list[tuple[int | None, str, str]] = []

    # --- addresses and credentials -----------------------------------------------------

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:PORT`` (REST and control API)."""
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """Return the public WebSocket URL."""
        return f"ws://{self.config.host}:{self.port}/websocket/v1"

    @property
    def private_ws_url(self) -> str:
        """Return the private WebSocket URL."""
        return f"ws://{self.config.host}:{self.port}/websocket/v1/private"

    @property
    def credentials(self) -> tuple[str, str]:
        """Return the default (access_key, secret_key) pair the simulator accepts."""
        return (self.config.access_key, self.config.secret_key)

    @property
    def listening(self) -> bool:
        """Tell whether the port accepts TCP connections (false during a TCP refuse/restart)."""
        return self._tcp is not None

    def __repr__(self) -> str:
        return f"Simulator(url={self.url!r}, connections={len(self._connections)})"

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start serving on ``config.host``/``config.port`` (port 0 picks a free one)."""
        from upbit_ws.simulator.control import add_control_routes
        from upbit_ws.simulator.rest import add_rest_routes, rest_middleware
        from upbit_ws.simulator.websocket import add_websocket_routes

        app = web.Application(middlewares=[rest_middleware(self)])
        add_websocket_routes(app, self)
        add_rest_routes(app, self)
        if self.config.control_api:
            add_control_routes(app, self)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await self._listen(self.config.port)
        if not self.clock.manual:
            self._market_task = asyncio.create_task(self._market_loop(), name="sim-market")

    async def stop(self) -> None:
        """Drop every connection and stop serving."""
        if self._market_task is not None:
            self._market_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._market_task
            self._market_task = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for conn in list(self._connections.values()):
            conn.abort("server stopped")
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _listen(self, port: int) -> None:
        assert self._runner is not None and self._runner.server is not None
        loop = asyncio.get_running_loop()
        self._tcp = await loop.create_server(
            self._runner.server, self.config.host, port, reuse_address=True
        )
        self.port = self._tcp.sockets[0].getsockname()[1]

    def spawn(self, coro: Any, *, name: str) -> None:
        """Run ``coro`` as a task owned (and cancelled on stop) by the simulator."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the market clock --------------------------------------------------------------

    async def _market_loop(self) -> None:
        dt = self.config.tick_interval
        while True:
            self.step(self.clock.now())
            delay = self.model.now + dt - self.clock.now()
            await asyncio.sleep(max(0.0, delay))

    async def advance(self, seconds: float) -> None:
        """Advance a manual clock by ``seconds`` and push the resulting frames."""
        if not isinstance(self.clock, ManualClock):
            raise InvalidInputError(
                "advance() steps a manual clock: build the simulator with "
                "Simulator(clock=ManualClock(start)) to drive time by hand"
            )
        self.clock.advance(seconds)
        self.step(self.clock.now())
        await asyncio.sleep(0)

    def step(self, now: float) -> None:
        """Step the market to ``now`` and route its events and the order engine's."""
        events = self.model.advance_to(now, self.router.wants)
        self.router.dispatch(events)
        self.dispatch_private(self.engine.on_market(now))

    def encode_event(
        self,
        event: MarketEvent,
        entry: Entry,
        *,
        simple: bool,
        stream: Literal["SNAPSHOT", "REALTIME"],
    ) -> bytes:
        """Encode one market event for one subscription entry (SNAPSHOT or REALTIME)."""
        return self.router.encode_event(event, entry, simple=simple, stream=stream)

    def dispatch_private(self, events: Iterable[PrivateEvent]) -> None:
        """Send myOrder/myAsset events to the subscribed private connections of their key."""
        self.router.dispatch_private(events, self._connections.values())

    # --- connections -------------------------------------------------------------------

    def open_connection(
        self,
        *,
        kind: ConnectionKind,
        ws: web.WebSocketResponse,
        request: web.Request,
        access_key: str | None,
    ) -> SimConnection:
        """Register a freshly upgraded connection and start its writer."""
        conn = SimConnection(
            conn_id=self._next_id,
            kind=kind,
            ws=ws,
            request=request,
            config=self.config,
            access_key=access_key,
            on_frame_sent=self._count_frame,
            on_error=self._count_error,
        )
        self._next_id += 1
        conn.delay = self._new_delay
        conn.flood = self.config.flood and kind == "public"
        self._connections[conn.id] = conn
        self.accepted += 1
        conn.start()
        self.notify()
        return conn

    async def close_connection(self, conn: SimConnection) -> None:
        """Forget a connection whose socket is gone."""
        if conn.closed_reason is None:
            conn.closed_reason = "client closed" if conn.ws.closed else "gone"
        self.set_routes(conn, ())
        self._connections.pop(conn.id, None)
        self._closed.append(conn)
        await conn.finish()
        self.notify()

    def set_routes(self, conn: SimConnection, entries: Iterable[Entry]) -> None:
        """Point the realtime routes of ``conn`` at ``entries`` (replacing the old ones)."""
        self.router.set_routes(conn, entries)

    def _count_frame(self, label: str, count: int) -> None:
        self._frames_sent[label] += count

    def _count_error(self, name: str) -> None:
        self._errors_sent[name] += 1

    def count_refused(self, reason: str) -> None:
        """Count a refused handshake by reason (``429``, ``418``, ``401``, ``503``...)."""
        self._refused[reason] += 1
        self.notify()

    def connect_limiter(self, scope: str) -> ConnectLimiter:
        """Return the handshake limiter of a scope (an IP, or a private account)."""
        limiter = self._connect_limiters.get(scope)
        if limiter is None:
            cfg = self.config
            limiter = ConnectLimiter(
                per_second=cfg.connect_per_second,
                window=cfg.rate_window_second,
                strikes_before_block=cfg.connect_429s_before_block,
                block=cfg.connect_block,
                block_max=cfg.connect_block_max,
                memory=cfg.connect_block_memory,
            )
            self._connect_limiters[scope] = limiter
        return limiter

    def refusing(self) -> int | None:
        """Return the status to refuse handshakes with while a refuse fault is active.

        A stalling refusal reports 0: the handshake gets no answer at all.
        """
        if asyncio.get_running_loop().time() < self._refuse_until:
            return 0 if self._refuse_how == "stall" else self._refuse_status
        return None

    def notify(self) -> None:
        """Wake :meth:`wait_for` callers (a connection, request or counter changed)."""
        event = self._changed
        if event is not None:
            event.set()
            self._changed = None

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, re-checked on every change.

        Wrap it in ``asyncio.timeout(...)``: it waits for as long as it takes.
        """
        while not predicate():
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()

    # --- introspection -----------------------------------------------------------------

    def connections(self, *, include_closed: bool = False) -> list[SimConnection]:
        """Return the open connections (and the recently closed ones), oldest first."""
        open_ = list(self._connections.values())
        if not include_closed:
            return open_
        return sorted([*self._closed, *open_], key=lambda c: c.id)

    def connection(self, conn_id: int) -> SimConnection:
        """Return a connection (open or recently closed) by id; raise ``KeyError``."""
        if conn_id in self._connections:
            return self._connections[conn_id]
        for conn in self._closed:
            if conn.id == conn_id:
                return conn
        raise KeyError(conn_id)

    def statistics(self) -> SimulatorStats:
        """Return the counters as a snapshot."""
        return SimulatorStats(
            connections_open=len(self._connections),
            connections_accepted=self.accepted,
            connections_refused=dict(self._refused),
            frames_sent=dict(self._frames_sent),
            errors_sent=dict(self._errors_sent),
            requests_received=self.requests_received,
            messages_over_limit=self.messages_over_limit,
            rest_requests=self.rest_requests,
            rest_rate_limited=self.rest_rate_limited,
        )

    # --- faults ------------------------------------------------------------------------

    def _targets(self, conn_id: int | None) -> list[SimConnection]:
        if conn_id is None:
            return list(self._connections.values())
        conn = self._connections.get(conn_id)
        if conn is None:
            raise KeyError(conn_id)
        return [conn]

    def abort(self, conn_id: int | None = None) -> int:
        """Drop one or every connection without a close frame; return how many."""
        targets = self._targets(conn_id)
        for conn in targets:
            conn.abort("aborted by fault")
        return len(targets)

    def close(self, conn_id: int | None = None, *, code: int = 1000) -> int:
        """Close one or every connection cleanly with ``code``; return how many."""
        targets = self._targets(conn_id)
        for conn in targets:
            conn.close(code)
        return len(targets)

    def blackhole(self, seconds: float, conn_id: int | None = None) -> int:
        """Stop sending and stop answering pings for ``seconds`` on one or every connection."""
        until = asyncio.get_running_loop().time() + seconds
        targets = self._targets(conn_id)
        for conn in targets:
            conn.blackhole_until = until
        return len(targets)

    def delay(self, ms: float, conn_id: int | None = None) -> int:
        """Delay every frame by ``ms`` (0 clears); without an id, new connections too."""
        if conn_id is None:
            self._new_delay = ms / 1000
        targets = self._targets(conn_id)
        for conn in targets:
            conn.delay = ms / 1000
        return len(targets)

    def fill_order(self, uuid: str, volume: str | None = None) -> int:
        """Fill ``volume`` (a decimal string; None: the rest) of a resting limit order now.

        Sends its myOrder ``trade`` (and ``done`` when nothing remains) and myAsset events;
        returns how many events went out. Raises ValueError for an unknown or finished order.
        """
        events = self.engine.fill_part(
            uuid, Decimal(volume) if volume is not None else None, now=self.wall_time()
        )
        self.dispatch_private(events)
        return len(events)

    def inject_error(
        self, name: str = "WRONG_FORMAT", message: str | None = None, conn_id: int | None = None
    ) -> int:
        """Send an error frame and close 1000 shortly after, as Upbit does (section 7.3)."""
        text = message if message is not None else MESSAGES.get(name, name)
        targets = self._targets(conn_id)
        for conn in targets:
            self.set_routes(conn, ())
            conn.fail(name, text)
        return len(targets)

    def reject_requests(
        self,
        count: int = 1,
        *,
        name: str = "INVALID_PARAM",
        message: str | None = None,
        conn_id: int | None = None,
    ) -> None:
        """Answer the next ``count`` subscription requests with an error frame, then close.

        The request is not applied (a spurious rejection of a valid request, issue #9); with
        ``conn_id`` only requests on that connection count, else those on any connection.
        """
        text = message if message is not None else MESSAGES.get(name, name)
        self._reject_requests.extend([(conn_id, name, text)] * count)

    def take_rejection(self, conn: SimConnection) -> tuple[str, str] | None:
        """Return the error a subscription request on ``conn`` must get instead, if any."""
        for index, (target, name, text) in enumerate(self._reject_requests):
            if target is None or target == conn.id:
                del self._reject_requests[index]
                return name, text
        return None

    def mute(self, conn_id: int | None = None, *, sticky: bool = False) -> int:
        """Stop sending data on a connection while it still answers pings (a stale stream).

        The subscription stays listed; a new subscription request un-mutes it unless
        ``sticky`` (then only a new socket streams again).
        """
        targets = self._targets(conn_id)
        for conn in targets:
            conn.muted = "sticky" if sticky else "until_request"
        return len(targets)

    def send_malformed(self, conn_id: int | None = None, *, kind: MalformedKind = "garbage") -> int:
        """Send a frame a client cannot decode (``text`` sends a TEXT frame instead of binary)."""
        targets = self._targets(conn_id)
        for conn in targets:
            if kind == "text":
                conn.send_text(_MALFORMED[kind])
            else:
                conn.send_control("malformed", _MALFORMED[kind])
        return len(targets)

    def set_flood(self, *, enabled: bool, conn_id: int | None = None) -> int:
        """Switch flood mode on or off for one or every public connection."""
        targets = [c for c in self._targets(conn_id) if c.kind == "public"]
        for conn in targets:
            conn.flood = enabled
            conn.flood_dirty = True
            if enabled:
                from upbit_ws.simulator.websocket import rebuild_flood

                rebuild_flood(self, conn)
        return len(targets)

    def refuse(
        self, seconds: float, *, how: RefuseHow | None = None, status: int | None = 503
    ) -> None:
        """Refuse WebSocket handshakes for ``seconds``.

        ``how="status"`` answers them with HTTP ``status``; ``"stall"`` accepts the TCP
        connection but never answers the upgrade (the client's connect timeout must fire),
        aborting it when the refusal ends; ``"tcp"`` closes the listening socket (connection
        refused) and reopens the same port after. REST and the control API keep working
        except with ``"tcp"``. ``status=None`` without ``how`` means ``how="tcp"``.
        """
        if how is None:
            how = "tcp" if status is None else "status"
        if how != "tcp":
            loop = asyncio.get_running_loop()
            self._refuse_until = loop.time() + seconds
            self._refuse_status = status if status is not None else 503
            self._refuse_how = how
            loop.call_at(self._refuse_until, self._refusal_over)
            return
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        self.spawn(self._reopen_after(seconds), name="sim-reopen")

    def _refusal_over(self) -> None:
        """Wake ``wait_for(lambda: sim.refusing() is None)`` once the refusal has ended."""
        if self.refusing() is not None:
            # A timer may fire a hair early (the loop's clock resolution): look again.
            asyncio.get_running_loop().call_at(self._refuse_until, self._refusal_over)
            return
        self.notify()

    async def _reopen_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self._tcp is None and self._runner is not None:
            await self._listen(self.port)
            self.notify()

    async def restart(self, *, down_seconds: float = 0.0, spare: object = None) -> None:
        """Drop every connection and listen again on the same port (after ``down_seconds``).

        ``spare`` is a transport to leave alone (the control request asking for the restart).
        """
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        for conn in list(self._connections.values()):
            conn.abort("restart")
        if self._runner is not None and self._runner.server is not None:
            for handler in self._runner.server.connections:
                transport = handler.transport
                if transport is not None and transport is not spare:
                    transport.abort()
        if down_seconds > 0:
            await asyncio.sleep(down_seconds)
        await self._listen(self.port)
        self.notify()

    # --- keys --------------------------------------------------------------------------

    def add_key(self, access_key: str, secret_key: str, *, valid_for: float = 365 * 86400) -> None:
        """Add an API key pair valid for ``valid_for`` simulated seconds."""
        self.keys.add(access_key, secret_key, expire_at=self.clock.now() + valid_for)

    def revoke_key(self, access_key: str | None = None) -> None:
        """Revoke a key (default: the default key); its next use is refused."""
        self.keys.set_revoked(access_key or self.config.access_key, revoked=True)

    def restore_key(self, access_key: str | None = None) -> None:
        """Undo :meth:`revoke_key`."""
        self.keys.set_revoked(access_key or self.config.access_key, revoked=False)

    def expire_key(self, access_key: str | None = None, *, in_seconds: float = 0.0) -> None:
        """Make a key expire ``in_seconds`` from now on the simulated clock."""
        self.keys.set_expiry(
            access_key or self.config.access_key, expire_at=self.clock.now() + in_seconds
        )

    def wall_time(self) -> float:
        """Return the simulated time (the market clock), in epoch seconds."""
        return self.clock.now() if self.clock.manual else time.time()
