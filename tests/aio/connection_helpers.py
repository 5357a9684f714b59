"""Helpers for connection, manager and fault-scenario tests: a subscribing listener, event logs.

Nothing here patches the library: the listener is a real ConnectionListener that subscribes
through ``connection.send()``, and the event log reads a real event stream.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

from upbit_ws.aio.connection import ManagedConnection
from upbit_ws.aio.events import EventStream
from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.core.config import BackoffConfig, ConnectionConfig, KeepaliveConfig, KeyHealthConfig
from upbit_ws.core.encode import TypeRequest, encode_request
from upbit_ws.core.errors import TransportError
from upbit_ws.core.events import ConnectionKind, ConnectionStateChanged, Event
from upbit_ws.core.messages import ErrorFrame
from upbit_ws.core.ratelimit import Gcra, connect_limiter
from upbit_ws.simulator import Simulator, SimulatorConfig
from upbit_ws.simulator.connection import SimConnection

__all__ = [
    "FAST",
    "LONG_WAIT",
    "SIM_OPTIONS",
    "EventLog",
    "SubscribingListener",
    "fresh_limiter",
    "manager_in_a_long_outage",
    "our_tasks",
    "running_sim",
    "sim_connection",
    "sim_until",
]

E = TypeVar("E", bound=Event)

#: A small market keeps the simulator quick to start; KRW-BTC is always among the busy ones.
SIM_OPTIONS: dict[str, Any] = {"krw_markets": 20, "btc_markets": 3, "usdt_markets": 3}

#: Short keepalive and backoff timings for tests that are not about the defaults. The pong
#: deadline stays at the default 1.5 s: the simulator shares the test's event loop, and on a
#: loaded 2-core machine the loop can stall for a few hundred milliseconds, which a shorter
#: deadline would take for a dead socket (an unplanned reconnect in a test about something else).
FAST = ConnectionConfig(
    keepalive=KeepaliveConfig(ping_interval=2.0, pong_timeout=1.5, silence_probe=0.4),
    backoff=BackoffConfig(first_delay=0.02, cap=0.5, rate_limited_floor=0.3, blocked_floor=0.5),
    key_health=KeyHealthConfig(check_interval=3600.0),
)

#: FAST with a backoff whose second wait is 50 s: longer than any test may take, so only the
#: network watch (probing every 0.1 s) can end it within one, and a test can read a
#: connection in one long wait.
LONG_WAIT = replace(
    FAST,
    backoff=BackoffConfig(first_delay=0.05, factor=1000.0, cap=60.0, jitter=0.0, network_probe=0.1),
)

#: What the subscribing listener asks for: busy enough that frames flow several times a second.
REQUEST_TYPES = (
    TypeRequest("ticker", ("KRW-BTC",)),
    TypeRequest("orderbook", ("KRW-BTC",)),
    TypeRequest("trade", ("KRW-BTC",)),
)


@asynccontextmanager
async def manager_in_a_long_outage() -> AsyncIterator[WebSocketManager]:
    """Yield a started manager whose host refuses connects, in its 50 s wait (LONG_WAIT)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    ws = WebSocketManager(
        base_url=f"http://127.0.0.1:{port}", config=LONG_WAIT, connect_limiter=fresh_limiter()
    )
    await ws.start()
    try:
        async with asyncio.timeout(10):
            while (ws.public.statistics().retry_in or 0.0) < 10.0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        yield ws
    finally:
        await ws.aclose()


def fresh_limiter() -> Gcra:
    """Return a connect limiter for one test (the simulator of each test limits on its own)."""
    return connect_limiter()


@asynccontextmanager
async def running_sim(**options: Any) -> AsyncIterator[Simulator]:
    """Run a wall-clock simulator on 127.0.0.1 with a small market."""
    async with Simulator(SimulatorConfig(**{**SIM_OPTIONS, **options})) as sim:
        yield sim


def sim_connection(sim: Simulator, kind: ConnectionKind) -> SimConnection:
    """Return the simulator's open connection of ``kind`` (exactly one must be open)."""
    found = [c for c in sim.connections() if c.kind == kind]
    assert len(found) == 1, f"expected one open {kind} connection, found {found}"
    return found[0]


def our_tasks() -> list[asyncio.Task[Any]]:
    """Return the library's tasks still alive (they are all named ``upbit-ws...``)."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("upbit-ws") and not t.done()]


async def sim_until(sim: Simulator, predicate: Callable[[], bool], *, within: float = 5.0) -> None:
    """Wait until ``predicate()`` holds, re-checked on every simulator change."""
    async with asyncio.timeout(within):
        await sim.wait_for(predicate)


class SubscribingListener:
    """A ConnectionListener that subscribes to KRW-BTC ticker/orderbook/trade on every open.

    It records what it sees and lets tests wait for frames without sleeping.
    """

    def __init__(self, *, request: bytes | None = None) -> None:
        self.request = request or encode_request(REQUEST_TYPES, ticket="test-listener")
        self.opens = 0
        self.closes = 0
        self.stale = 0
        self.sent_before_open: list[int] = []
        self.frames = 0
        self.last_frame_at = 0.0
        self.error_frames: list[ErrorFrame] = []
        self.send_errors: list[BaseException] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    def on_open(self, connection: ManagedConnection) -> None:
        """Send the fixed request on the new socket, from a task this listener owns."""
        self.opens += 1
        self.sent_before_open.append(connection.statistics().messages_sent)
        task = asyncio.get_running_loop().create_task(self._send(connection))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._notify()

    def on_frame(self, payload: bytes, received_at: float) -> None:
        """Count the frame."""
        self.frames += 1
        self.last_frame_at = received_at
        self._notify()

    def on_error(self, error: ErrorFrame) -> None:
        """Keep the error frame."""
        self.error_frames.append(error)
        self._notify()

    def on_closed(self, connection: ManagedConnection) -> None:
        """Count the close."""
        self.closes += 1
        self._notify()

    def on_stale(self, connection: ManagedConnection) -> None:
        """Send the fixed request again on the same socket."""
        self.stale += 1
        task = asyncio.get_running_loop().create_task(self._send(connection))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._notify()

    async def _send(self, connection: ManagedConnection) -> None:
        try:
            await connection.send(self.request)
        except TransportError as exc:
            self.send_errors.append(exc)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def until(self, predicate: Callable[[], bool], *, within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, re-checked on every open, frame and close."""
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()

    async def next_frame(self, *, within: float = 5.0) -> float:
        """Wait for the next frame and return its receive time."""
        seen = self.frames
        await self.until(lambda: self.frames > seen, within=within)
        return self.last_frame_at

    async def aclose(self) -> None:
        """Cancel sends still in flight."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class EventLog:
    """Read an event stream, keeping every event seen, and wait for the ones a test expects."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.seen: list[Event] = []
        self._cursor = 0  # events before it were returned or passed over

    async def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] = lambda e: True,
        *,
        within: float = 5.0,
        since: int | None = None,
    ) -> E:
        """Return the first event of ``kind`` matching ``predicate`` after the last returned.

        ``since`` (from :meth:`mark`) searches from that point instead, for events whose order
        does not matter to the test.
        """
        index = self._cursor if since is None else since
        async with asyncio.timeout(within):
            while True:
                while index < len(self.seen):
                    event = self.seen[index]
                    index += 1
                    if isinstance(event, kind) and predicate(event):
                        self._cursor = max(self._cursor, index)
                        return event
                self.seen.append(await anext(self.stream))

    def mark(self) -> int:
        """Return a position to search from later with ``since=``: after every event so far."""
        return len(self.drain())

    async def state(
        self,
        connection: ConnectionKind,
        new: str,
        *,
        within: float = 5.0,
        since: int | None = None,
    ) -> ConnectionStateChanged:
        """Return the next state change of ``connection`` into ``new``."""
        return await self.wait_for(
            ConnectionStateChanged,
            lambda e: e.connection == connection and e.new == new,
            within=within,
            since=since,
        )

    def drain(self) -> list[Event]:
        """Take every event already queued into ``seen`` without waiting; return ``seen``."""
        while (event := self.stream.get_nowait()) is not None:
            self.seen.append(event)
        return self.seen

    def states(self, connection: ConnectionKind) -> list[tuple[str, str]]:
        """Return the (old, new) state changes of ``connection`` seen so far."""
        return [
            (e.old, e.new)
            for e in self.drain()
            if isinstance(e, ConnectionStateChanged) and e.connection == connection
        ]
