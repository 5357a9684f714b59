"""ManagedConnection over real loopback sockets against the simulator."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from tests.aio.connection_helpers import (
    FAST,
    EventLog,
    SubscribingListener,
    fresh_limiter,
    our_tasks,
    running_sim,
    sim_connection,
    sim_until,
)
from tests.aio.test_transport import accept_upgrade, raw_server
from upbit_ws.aio.connection import (
    ConnectionListener,
    ManagedConnection,
    NullListener,
    shared_connect_limiter,
)
from upbit_ws.aio.events import EventHub
from upbit_ws.core.auth import Credentials
from upbit_ws.core.config import KeepaliveConfig, RateLimits, TransportConfig
from upbit_ws.core.errors import ConnectionClosedError, InvalidInputError, TransportError
from upbit_ws.core.events import ConnectionStateChanged
from upbit_ws.core.ratelimit import LimiterStatistics, SharedConnectLimiter
from upbit_ws.simulator import Simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """Run a wall-clock simulator."""
    async with running_sim() as running:
        yield running


def public(
    sim: Simulator, listener: ConnectionListener | None = None, hub: EventHub | None = None
) -> ManagedConnection:
    """Build a public connection to ``sim`` with the fast test timings."""
    return ManagedConnection(
        "public",
        url=sim.ws_url,
        config=FAST,
        listener=listener,
        connect_limiter=fresh_limiter(),
        publish=hub.publish if hub is not None else None,
    )


async def test_opens_subscribes_and_delivers_frames(sim: Simulator) -> None:
    """A started connection opens, on_open sees nothing sent yet, and frames reach the listener."""
    hub = EventHub()
    log = EventLog(hub.subscribe())
    listener = SubscribingListener()
    async with public(sim, listener, hub) as conn:
        await asyncio.wait_for(conn.wait_open(), 2)
        assert conn.is_open and conn.state == "open" and conn.generation == 1
        await listener.next_frame()
        await listener.next_frame()
        assert listener.opens == 1 and listener.sent_before_open == [0]
        served = sim_connection(sim, "public")
        assert {(e.type, e.code) for e in served.entries} == {
            ("ticker", "KRW-BTC"),
            ("orderbook", "KRW-BTC"),
            ("trade", "KRW-BTC"),
        }
        stats = conn.statistics()
        assert stats.frames_received >= 2 and stats.bytes_received > 0
        assert stats.messages_sent == 1 and stats.opens == 1 and stats.reconnects == 0
    assert log.states("public") == [
        ("idle", "connecting"),
        ("connecting", "open"),
        ("open", "closed"),
    ]
    assert listener.closes == 1
    await listener.aclose()


async def test_reader_notices_a_reset_at_once(sim: Simulator) -> None:
    """An abort is reported by the reader (not by keepalive) and a new socket replaces it."""
    hub = EventHub()
    log = EventLog(hub.subscribe())
    quiet = replace(FAST, keepalive=KeepaliveConfig(ping_interval=30.0, silence_probe=30.0))
    conn = ManagedConnection(
        "public", url=sim.ws_url, config=quiet, connect_limiter=fresh_limiter(), publish=hub.publish
    )
    async with conn:
        await asyncio.wait_for(conn.wait_open(), 2)
        sim.abort()
        # Keepalive would take 30 s; the reader's close report makes this immediate.
        down = await log.state("public", "reconnecting", within=1.0)
        assert "1006" in down.reason
        await log.state("public", "open", within=2.0)
        assert conn.generation == 2
        assert conn.statistics().reconnects == 1


async def test_send_waits_for_the_message_limiter(sim: Simulator) -> None:
    """Back-to-back sends beyond the burst wait (never dropped) and stay under Upbit's limit."""
    listener = SubscribingListener()
    async with public(sim, listener) as conn:
        await asyncio.wait_for(conn.wait_open(), 2)
        await sim_until(sim, lambda: sim.requests_received >= 1)
        for _ in range(3):
            await conn.send(listener.request)
        await sim_until(sim, lambda: sim.requests_received >= 4)
        stats = conn.statistics()
        # The burst is 2: of three back-to-back sends at least one waits, two if the one from
        # on_open still counts (how long ago it went depends on the machine's load).
        assert stats.messages_sent == 4 and 1 <= stats.send_waits <= 2
        assert stats.send_wait_seconds > 0
        assert sim.messages_over_limit == 0
        assert conn.is_open
    await listener.aclose()


async def test_send_raises_when_socket_closes_during_limiter_wait(sim: Simulator) -> None:
    """A send held by the limiter fails with ConnectionClosedError when the socket goes."""
    async with public(sim) as conn:
        await asyncio.wait_for(conn.wait_open(), 2)
        await conn.send(b"PING")
        await conn.send(b"PING")
        held = asyncio.create_task(conn.send(b"PING"))
        await asyncio.sleep(0)
        sim.abort()
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(held, 2)


async def test_send_without_open_socket_raises(sim: Simulator) -> None:
    """Sending when no socket is open is an error, not a silent drop or an endless wait."""
    conn = public(sim)
    with pytest.raises(TransportError, match="not open"):
        await conn.send(b"PING")


async def test_wait_open_raises_when_closed_for_good(sim: Simulator) -> None:
    """wait_open() fails once the connection is closed for good."""
    conn = public(sim)
    async with conn:
        await asyncio.wait_for(conn.wait_open(), 2)
    assert conn.state == "closed" and not conn.is_open
    with pytest.raises(ConnectionClosedError):
        await conn.wait_open()


async def test_private_signs_a_fresh_token_per_connect(sim: Simulator) -> None:
    """Each private connect carries a new JWT: the simulator refuses a reused nonce."""
    hub = EventHub()
    log = EventLog(hub.subscribe())
    conn = ManagedConnection(
        "private",
        url=sim.private_ws_url,
        config=FAST,
        credentials=Credentials(*sim.credentials),
        connect_limiter=fresh_limiter(),
        publish=hub.publish,
    )
    async with conn:
        await asyncio.wait_for(conn.wait_open(), 2)
        assert sim_connection(sim, "private").access_key == sim.credentials[0]
        assert not conn.session.streaming  # myOrder/myAsset are quiet: no silence probe
        sim.abort()
        await log.state("private", "reconnecting")
        await log.state("private", "open")
    assert sim.statistics().connections_refused == {}
    assert conn.statistics().opens == 2


def test_kinds_and_credentials_are_checked() -> None:
    """Private needs credentials, public refuses them, and the kind is one of the two."""
    creds = Credentials("A" * 20, "B" * 20)
    with pytest.raises(InvalidInputError):
        ManagedConnection("private", url="ws://127.0.0.1:1/websocket/v1/private")
    with pytest.raises(InvalidInputError):
        ManagedConnection("public", url="ws://127.0.0.1:1/websocket/v1", credentials=creds)
    with pytest.raises(InvalidInputError):
        ManagedConnection("other", url="ws://127.0.0.1:1")  # type: ignore[arg-type]


class RaisingListener(SubscribingListener):
    """A listener with a bug in its frame handler."""

    def on_frame(self, payload: bytes, received_at: float) -> None:
        """Count the frame, then fail."""
        super().on_frame(payload, received_at)
        raise ValueError("listener bug")


async def test_listener_bug_does_not_drop_the_socket(sim: Simulator) -> None:
    """A listener raising on frames is counted and logged; the socket stays up."""
    listener = RaisingListener()
    async with public(sim, listener) as conn:
        await asyncio.wait_for(conn.wait_open(), 2)
        await listener.until(lambda: listener.frames >= 3)
        stats = conn.statistics()
        assert stats.listener_errors >= 3 and stats.generation == 1 and conn.is_open
    await listener.aclose()


async def test_null_listener_turns_silence_probe_off(sim: Simulator) -> None:
    """With nothing subscribed the connection is not probed for data silence."""
    hub = EventHub()
    log = EventLog(hub.subscribe())
    async with public(sim, NullListener(), hub) as conn:
        await asyncio.wait_for(conn.wait_open(), 2)
        assert not conn.session.streaming
    assert ("open", "degraded") not in log.states("public")


async def test_set_listener_only_before_start(sim: Simulator) -> None:
    """The listener is fixed once the connection runs."""
    conn = public(sim)
    listener = SubscribingListener()
    conn.set_listener(listener)
    assert conn.listener is listener
    async with conn:
        with pytest.raises(InvalidInputError):
            conn.set_listener(NullListener())


async def test_aclose_while_connecting_leaves_nothing_behind() -> None:
    """Closing during a connect that hangs (a server that never answers) ends every task."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes away
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hub = EventHub()
    log = EventLog(hub.subscribe())
    conn = ManagedConnection(
        "public",
        url=f"ws://127.0.0.1:{port}/websocket/v1",
        config=FAST,
        connect_limiter=fresh_limiter(),
        publish=hub.publish,
    )
    async with server:
        await conn.start()
        await log.state("public", "connecting")
        await conn.aclose()
        assert our_tasks() == []
        assert conn.state == "closed"


async def test_closing_during_a_connect_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 16.11: an ordinary close abandons the connect quietly (no 'declared dead')."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hub = EventHub()
    log = EventLog(hub.subscribe())
    conn = ManagedConnection(
        "public",
        url=f"ws://127.0.0.1:{port}/websocket/v1",
        config=FAST,
        connect_limiter=fresh_limiter(),
        publish=hub.publish,
    )
    async with server:
        with caplog.at_level(logging.DEBUG, logger="upbit_ws"):
            await conn.start()
            await log.state("public", "connecting")
            await conn.aclose()
    assert conn.state == "closed"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("abandoning the connect" in r.getMessage() for r in caplog.records)


async def test_a_protocol_error_is_one_quiet_close_with_its_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 16.11: a bad frame ends the socket as 1002, one log line, no stray traceback."""
    served = 0

    async def bad_opcode(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        served += 1
        await accept_upgrade(reader, writer)
        writer.write(b"\x83\x00")  # reserved opcode 3
        await writer.drain()
        await reader.read()
        writer.close()

    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    hub = EventHub()
    log = EventLog(hub.subscribe())
    try:
        async for url in raw_server(bad_opcode):
            conn = ManagedConnection(
                "public", url=url, config=FAST, connect_limiter=fresh_limiter(), publish=hub.publish
            )
            with caplog.at_level(logging.INFO):
                async with conn:
                    await log.state("public", "reconnecting")
                    stats = conn.statistics()
            assert stats.last_error is not None and "1002" in stats.last_error
            gc.collect()  # an unread exception would be reported when its future is freed
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert reported == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    drops = [r for r in caplog.records if "-> reconnecting" in r.getMessage()]
    assert len(drops) >= 1 and "1002" in drops[0].getMessage()


async def test_connect_timeout_is_declared_dead_and_retried() -> None:
    """A connect with no answer is abandoned at the connect timeout and retried."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hub = EventHub()
    log = EventLog(hub.subscribe())
    fast_connect = replace(FAST, timeouts=replace(FAST.timeouts, connect=0.2, connect_max=0.4))
    conn = ManagedConnection(
        "public",
        url=f"ws://127.0.0.1:{port}/websocket/v1",
        config=fast_connect,
        connect_limiter=fresh_limiter(),
        publish=hub.publish,
    )
    async with server, conn:
        failed = await log.state("public", "reconnecting", within=2)
        assert "timed out" in failed.reason
        await log.state("public", "connecting", within=2)
        assert conn.statistics().connect_timeout == pytest.approx(0.4)
    assert our_tasks() == []


def test_shared_connect_limiter_is_one_per_process() -> None:
    """Every connection of the process shares one connect limiter, whatever its settings."""
    looser = RateLimits(connects_per_second=10, connect_burst=2)
    limiter = shared_connect_limiter()
    parts = limiter.parts
    assert shared_connect_limiter(looser) is limiter
    assert limiter.parts == parts  # a looser setting adds nothing: the defaults are stricter


def test_strictest_connect_setting_wins() -> None:
    """Two settings on one shared limiter: every 1 s window holds at most the stricter count."""
    limiter = SharedConnectLimiter()
    limiter.require(RateLimits())  # Upbit: 5/s, 2 at once
    limiter.require(RateLimits(connects_per_second=2, connect_burst=1, margin=0.0))
    limiter.require(RateLimits(connects_per_second=10, connect_burst=2))  # looser: no effect
    assert len(limiter.parts) == 1  # the strict one covers the default too
    admitted = [limiter.acquire(0.0) for _ in range(10)]  # all arrive at 0: admitted at 0 + wait
    assert admitted == sorted(admitted)
    for start in admitted:
        assert sum(start <= t < start + 1.0 for t in admitted) <= 2
    stats = limiter.statistics()
    assert stats.acquired == 10 and stats.delayed == 9


def test_shared_limiter_keeps_both_settings_when_neither_covers_the_other() -> None:
    """A burst-friendly and a slow-steady setting both hold: neither bound is ever exceeded."""
    limiter = SharedConnectLimiter()
    limiter.require(RateLimits(connects_per_second=4, connect_burst=4, margin=0.0))
    limiter.require(RateLimits(connects_per_second=3, connect_burst=1, margin=0.0))
    assert len(limiter.parts) == 2
    admitted = [limiter.acquire(0.0) for _ in range(12)]
    for start in admitted:
        assert sum(start <= t < start + 1.0 for t in admitted) <= 3


async def test_state_events_carry_reason_and_attempt(sim: Simulator) -> None:
    """Published state changes are typed and say why and which attempt."""
    hub = EventHub()
    log = EventLog(hub.subscribe())
    async with public(sim, None, hub) as conn:
        opened = await log.state("public", "open")
        assert isinstance(opened, ConnectionStateChanged)
        assert opened.reason == "connected" and opened.attempt == 1
        assert opened.at <= conn.statistics().state_since + 1e-9


async def test_no_token_or_secret_in_logs_or_repr(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The private handshake's JWT and the secret key appear in no log line or repr."""
    caplog.set_level(logging.DEBUG)
    hub = EventHub()
    log = EventLog(hub.subscribe())
    conn = ManagedConnection(
        "private",
        url=sim.private_ws_url,
        config=FAST,
        credentials=Credentials(*sim.credentials),
        connect_limiter=fresh_limiter(),
        publish=hub.publish,
    )
    async with conn:
        await log.state("private", "open")
        sim.abort()
        await log.state("private", "open")
        texts = [repr(conn), repr(conn.statistics()), *map(repr, log.drain())]
    texts += [record.getMessage() for record in caplog.records]
    assert any("private" in text for text in texts)
    for text in texts:
        assert sim.credentials[1] not in text
        assert "Bearer" not in text and "eyJ" not in text  # no JWT (base64 of '{"')


async def test_no_token_in_logs_at_the_most_verbose_level(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """With logging at level 1, no record of a private connect carries the JWT or the secret."""
    caplog.set_level(1)
    conn = ManagedConnection(
        "private",
        url=sim.private_ws_url,
        config=FAST,
        credentials=Credentials(*sim.credentials),
        connect_limiter=fresh_limiter(),
    )
    async with conn:
        await asyncio.wait_for(conn.wait_open(), 2)
    # picows still logs at DEBUG and above (its connection lines), only not below.
    assert any(record.name.startswith("picows") for record in caplog.records)
    for record in caplog.records:
        text = record.getMessage()
        assert "Bearer" not in text and "eyJ" not in text, (record.name, record.levelno)
        assert sim.credentials[1] not in text


class InjectedBug(Exception):
    """A failure no library code expects: stands for a bug."""


class BuggyConnectLimiter:
    """A ConnectLimiter (the public seam) whose second connect fails with a bug."""

    def __init__(self) -> None:
        self.inner = fresh_limiter()
        self.acquired = 0

    def delay(self, now: float) -> float:
        """Ask the real limiter."""
        return self.inner.delay(now)

    def acquire(self, now: float) -> float:
        """Fail on the second connect; otherwise ask the real limiter."""
        self.acquired += 1
        if self.acquired == 2:
            raise InjectedBug("limiter broke on connect 2")
        return self.inner.acquire(now)

    def statistics(self) -> LimiterStatistics:
        """Return the real limiter's statistics."""
        return self.inner.statistics()


async def test_a_bug_in_the_driver_is_logged_and_the_connection_comes_back(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug escaping the driver is logged with its traceback and counted; a new socket opens."""
    hub = EventHub()
    log = EventLog(hub.subscribe())
    listener = SubscribingListener()
    conn = ManagedConnection(
        "public",
        url=sim.ws_url,
        config=FAST,
        listener=listener,
        connect_limiter=BuggyConnectLimiter(),
        publish=hub.publish,
    )
    async with conn:
        await log.state("public", "open")
        sim.abort()
        bug = await log.wait_for(
            ConnectionStateChanged, lambda e: e.new == "reconnecting" and "internal" in e.reason
        )
        assert bug.reason == "internal error: InjectedBug: limiter broke on connect 2"
        await log.state("public", "open", within=3)
        await listener.until(lambda: listener.opens == 2)
        await listener.next_frame()
        stats = conn.statistics()
        assert stats.generation == 2
        assert [(e.part, e.error) for e in stats.internal_errors] == [
            ("driver", "InjectedBug: limiter broke on connect 2")
        ]
        assert stats.last_error == bug.reason
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].name == "upbit_ws.connection"
    assert errors[0].exc_info is not None  # the traceback is in the log
    await listener.aclose()


async def test_the_configured_receive_buffer_reaches_the_socket(sim: Simulator) -> None:
    """TransportConfig.receive_buffer is the open socket's SO_RCVBUF (Linux reports twice it)."""
    config = replace(FAST, transport=TransportConfig(receive_buffer=32 * 1024))
    conn = ManagedConnection(
        "public", url=sim.ws_url, config=config, connect_limiter=fresh_limiter()
    )
    async with conn:
        await asyncio.wait_for(conn.wait_open(), 5)
        sock = conn._sock
        assert sock is not None
        raw = sock.ws._transport.underlying_transport.get_extra_info("socket")
        assert 32 * 1024 <= raw.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) <= 64 * 1024
