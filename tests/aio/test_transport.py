"""The picows transport adapter over real loopback sockets, against a small aiohttp server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import WSMsgType, web

from upbit_ws.aio.transport import WebSocket, open_websocket, tcp_reachable
from upbit_ws.core.errors import (
    AuthError,
    ConnectTimeoutError,
    RateLimitedError,
    TransportError,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorder:
    """A FrameHandler that records what arrives and signals each arrival."""

    frames: list[bytes] = field(default_factory=list)
    pongs: int = 0
    closed: tuple[int, str] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_frame(self, payload: bytes) -> None:
        self.frames.append(payload)
        self.changed.set()

    def on_pong(self) -> None:
        self.pongs += 1
        self.changed.set()

    def on_close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.changed.set()

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def serve(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        await runner.cleanup()


async def echo_binary(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            if msg.data == "close":
                await ws.close(code=1000)
            elif msg.data == "abort":
                assert request.transport is not None
                request.transport.abort()
            else:
                await ws.send_bytes(msg.data.encode())
    return ws


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async for url in serve(echo_binary):
        yield url


async def test_text_out_binary_in(echo_url: str) -> None:
    """A text request goes out and the server's binary frame arrives as bytes."""
    rec = Recorder()
    ws = await open_websocket(echo_url, rec, connect_timeout=2)
    ws.send_text(b'[{"ticket":"t"}]')
    await rec.until(lambda: bool(rec.frames))
    assert rec.frames == [b'[{"ticket":"t"}]']
    await ws.close()


async def test_ping_gets_pong(echo_url: str) -> None:
    """A protocol ping is answered and reported through on_pong."""
    rec = Recorder()
    ws = await open_websocket(echo_url, rec, connect_timeout=2)
    ws.send_ping()
    await rec.until(lambda: rec.pongs == 1)
    await ws.close()


async def test_server_close_reports_code(echo_url: str) -> None:
    """A close frame from the server is reported with its code."""
    rec = Recorder()
    ws = await open_websocket(echo_url, rec, connect_timeout=2)
    ws.send_text(b"close")
    await rec.until(lambda: rec.closed is not None)
    assert rec.closed is not None and rec.closed[0] == 1000
    assert ws.closed


async def test_server_abort_reports_1006(echo_url: str) -> None:
    """A socket dropped without a close frame is reported at once as 1006."""
    rec = Recorder()
    ws = await open_websocket(echo_url, rec, connect_timeout=2)
    ws.send_text(b"abort")
    await rec.until(lambda: rec.closed is not None)
    assert rec.closed == (1006, "")
    with pytest.raises(TransportError):
        ws.send_text(b"x")


async def test_local_abort_does_not_wait(echo_url: str) -> None:
    """Aborting closes the socket without a closing handshake."""
    rec = Recorder()
    ws: WebSocket = await open_websocket(echo_url, rec, connect_timeout=2)
    ws.abort()
    async with asyncio.timeout(1):
        await ws.wait_closed()
    assert rec.closed is not None and rec.closed[0] == 1006


def status_handler(status: int, body: bytes, headers: dict[str, str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers=headers)

    return handler


async def test_handshake_429_is_rate_limited() -> None:
    """HTTP 429 at the upgrade becomes RateLimitedError with the server's Retry-After."""
    async for url in serve(status_handler(429, b"", {"Retry-After": "3"})):
        with pytest.raises(RateLimitedError) as info:
            await open_websocket(url, Recorder(), connect_timeout=2)
        assert (info.value.status, info.value.retry_after) == (429, 3.0)


async def test_handshake_418_is_blocked() -> None:
    """HTTP 418 at the upgrade becomes RateLimitedError with status 418."""
    async for url in serve(status_handler(418, b"", {})):
        with pytest.raises(RateLimitedError) as info:
            await open_websocket(url, Recorder(), connect_timeout=2)
        assert info.value.status == 418 and info.value.retry_after is None


async def test_handshake_401_is_auth_error_without_token() -> None:
    """HTTP 401 becomes AuthError naming Upbit's error, and the bearer token is not in it."""
    body = b'{"error":{"name":"invalid_access_key","message":"Invalid access key"}}'
    async for url in serve(status_handler(401, body, {"Content-Type": "application/json"})):
        with pytest.raises(AuthError) as info:
            await open_websocket(
                url, Recorder(), connect_timeout=2, headers={"Authorization": "Bearer SECRET.TOKEN"}
            )
        assert info.value.name == "invalid_access_key"
        assert "SECRET" not in str(info.value) and "SECRET" not in repr(info.value)


async def test_other_status_is_transport_error() -> None:
    """Any other refused upgrade is a TransportError carrying the status."""
    async for url in serve(status_handler(503, b"down", {})):
        with pytest.raises(TransportError) as info:
            await open_websocket(url, Recorder(), connect_timeout=2)
        assert info.value.status == 503


async def test_refused_port_is_transport_error() -> None:
    """A refused TCP connect becomes TransportError."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(TransportError):
        await open_websocket(f"ws://127.0.0.1:{port}/ws", Recorder(), connect_timeout=2)


async def test_a_host_name_the_resolver_cannot_encode_is_transport_error() -> None:
    """IDNA refuses a label over 63 characters with a UnicodeError: translated, so the
    connection retries it like any failed connect instead of a bug in its driver."""
    with pytest.raises(TransportError, match="host name is invalid"):
        await open_websocket(
            "ws://" + "a" * 70 + ".com/websocket/v1", Recorder(), connect_timeout=2
        )


async def test_silent_server_times_out() -> None:
    """A server that accepts TCP but never answers the upgrade raises ConnectTimeoutError."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectTimeoutError) as info:
            await open_websocket(f"ws://127.0.0.1:{port}/ws", Recorder(), connect_timeout=0.2)
        assert info.value.timeout == 0.2
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_tcp_reachable_says_whether_the_host_accepts_without_a_request() -> None:
    """The network watch's probe: True while the port listens, and it sends no request (the
    server reads EOF, not an upgrade); False once the port refuses or the name is unknown."""
    received: list[bytes] = []
    read = asyncio.Event()

    async def read_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read())
        read.set()
        writer.close()

    server = await asyncio.start_server(read_all, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"wss://127.0.0.1:{port}/websocket/v1"
    try:
        assert await tcp_reachable(url, connect_timeout=2.0)
        async with asyncio.timeout(5):
            await read.wait()
        assert received == [b""]
    finally:
        server.close()
        await server.wait_closed()
    assert not await tcp_reachable(url, connect_timeout=2.0)
    assert not await tcp_reachable("wss://no-such-host.invalid/websocket/v1", connect_timeout=2.0)
    too_long = "wss://" + "a" * 70 + ".com/websocket/v1"  # IDNA refuses a 70-character label
    assert not await tcp_reachable(too_long, connect_timeout=2.0)
    assert not await tcp_reachable("not a url", connect_timeout=2.0)


# --- a scripted server on raw TCP, for what aiohttp will not do ---------------------------------

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def read_upgrade(reader: asyncio.StreamReader) -> bytes:
    """Read the client's upgrade request and return its Sec-WebSocket-Key."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return value.strip()
    raise AssertionError(f"no Sec-WebSocket-Key in {head!r}")


async def accept_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the upgrade request and answer 101."""
    key = await read_upgrade(reader)
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    await writer.drain()


async def read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one (masked) client frame; return its opcode and unmasked payload."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    mask = await reader.readexactly(4)
    data = await reader.readexactly(length)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def raw_server(script: Script) -> AsyncIterator[str]:
    """Serve ``script`` on 127.0.0.1 and yield its ws:// URL."""
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"ws://127.0.0.1:{port}/ws"


async def test_drop_during_upgrade_is_transport_error() -> None:
    """A TCP connection dropped before the upgrade answer raises TransportError, not a bug."""

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_upgrade(reader)
        writer.transport.abort()

    rec = Recorder()
    async for url in raw_server(drop):
        with pytest.raises(TransportError, match="closed during the websocket handshake"):
            await open_websocket(url, rec, connect_timeout=2)
    assert rec.closed is None  # no socket was ever handed out, so no close to report


async def test_cancelled_connect_cuts_the_half_open_socket() -> None:
    """A connect cancelled before the upgrade answer ends its TCP socket at once."""
    asked = asyncio.Event()
    gone = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_upgrade(reader)
        asked.set()
        await reader.read()  # returns at EOF: the client let the socket go
        gone.set()
        writer.close()

    async for url in raw_server(never_answer):
        connect = asyncio.create_task(open_websocket(url, Recorder(), connect_timeout=30))
        await asyncio.wait_for(asked.wait(), 2)
        connect.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connect
        # picows's own handshake timer would hold the socket for the whole 30 s.
        await asyncio.wait_for(gone.wait(), 2)


async def test_protocol_error_during_close_does_not_escape() -> None:
    """A bad frame from the peer while our close waits ends the socket; close() does not raise."""

    async def garbage_after_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await accept_upgrade(reader, writer)
        opcode, _ = await read_client_frame(reader)
        assert opcode == 0x8
        writer.write(b"\x83\x00")  # reserved opcode 3: a protocol error for the client
        await writer.drain()
        await reader.read()
        writer.close()

    rec = Recorder()
    async for url in raw_server(garbage_after_close):
        ws = await open_websocket(url, rec, connect_timeout=2)
        async with asyncio.timeout(2):
            await ws.close()
        assert ws.closed and rec.closed is not None


async def test_close_without_code_is_answered_with_1000() -> None:
    """A server close without a code is reported as 1005 and answered with 1000 on the wire."""
    replies: list[tuple[int, bytes]] = []
    answered = asyncio.Event()

    async def close_without_code(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await accept_upgrade(reader, writer)
        writer.write(b"\x88\x00")
        await writer.drain()
        replies.append(await read_client_frame(reader))
        answered.set()
        writer.close()

    rec = Recorder()
    async for url in raw_server(close_without_code):
        ws = await open_websocket(url, rec, connect_timeout=2)
        await rec.until(lambda: rec.closed is not None)
        await ws.wait_closed()
        await asyncio.wait_for(answered.wait(), 2)
        assert rec.closed == (1005, "")
        assert replies == [(0x8, (1000).to_bytes(2, "big"))]


async def test_close_we_started_is_not_answered_again() -> None:
    """The server's answer to our close frame gets no second close frame from us."""
    seen: list[tuple[int, bytes]] = []
    finished = asyncio.Event()

    async def answer_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer)
        seen.append(await read_client_frame(reader))
        writer.write(b"\x88\x02" + (1000).to_bytes(2, "big"))
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                seen.append(await read_client_frame(reader))
        finished.set()
        writer.close()

    rec = Recorder()
    async for url in raw_server(answer_close):
        ws = await open_websocket(url, rec, connect_timeout=2)
        await ws.close()
        await asyncio.wait_for(finished.wait(), 2)
        assert rec.closed == (1000, "")
    assert seen == [(0x8, (1000).to_bytes(2, "big"))]


def _peer_breaks_protocol(frame: bytes) -> Script:
    """Return a script that upgrades, sends ``frame`` (a protocol violation) and waits."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer)
        writer.write(frame)
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await read_client_frame(reader)
        writer.close()

    return script


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x83\x00", 1002),  # reserved opcode 3
        (b"\x82\x7f" + (20 * 1024 * 1024).to_bytes(8, "big"), 1009),  # a 20 MB frame
    ],
    ids=["bad-opcode", "frame-too-big"],
)
async def test_a_protocol_error_of_the_peer_is_reported_with_its_close_code(
    frame: bytes, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 16.11: a bad opcode closes with 1002, a 20 MB frame 1009 (not 1006), quietly."""
    rec = Recorder()
    with caplog.at_level(logging.DEBUG):
        async for url in raw_server(_peer_breaks_protocol(frame)):
            ws = await open_websocket(url, rec, connect_timeout=2)
            await rec.until(lambda: rec.closed is not None)
            await ws.wait_closed()
    assert rec.closed is not None
    assert rec.closed[0] == code and rec.closed[1].startswith("protocol error")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("WS parser error" in r.getMessage() for r in caplog.records)  # at DEBUG


# --- reads: the per-read hot path (ReadHandler) ------------------------------------------------


@dataclass
class ReadRecorder(Recorder):
    """A ReadHandler: records each read's frames and counts, and what arrived inside a read."""

    reads: list[tuple[int, int]] = field(default_factory=list)
    reading: bool = False
    nested_reads: int = 0
    pongs_inside_a_read: int = 0
    failures: int = 0
    fail_on: bytes | None = None

    def begin_read(self) -> Callable[[memoryview], None]:
        if self.reading:
            self.nested_reads += 1
        self.reading = True
        return self._take

    def _take(self, payload: memoryview) -> None:
        data = bytes(payload)
        if data == self.fail_on:
            raise ValueError("a bug in the handler")
        self.frames.append(data)
        self.changed.set()

    def end_read(self, frames: int, nbytes: int) -> None:
        self.reading = False
        self.reads.append((frames, nbytes))
        self.changed.set()

    def take_failed(self) -> None:
        self.failures += 1

    def on_pong(self) -> None:
        if self.reading:
            self.pongs_inside_a_read += 1
        super().on_pong()


def _server_frame(opcode: int, payload: bytes) -> bytes:
    if len(payload) < 126:
        return bytes([0x80 | opcode, len(payload)]) + payload
    assert len(payload) < 1 << 16
    return bytes([0x80 | opcode, 126]) + len(payload).to_bytes(2, "big") + payload


def _sends_at_once(*frames: bytes) -> Script:
    """Return a script that upgrades, writes ``frames`` in one write, then waits."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer)
        writer.write(b"".join(frames))
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await read_client_frame(reader)
        writer.close()

    return script


async def test_a_read_handler_gets_each_frame_once_and_every_read_ends() -> None:
    """Frames go to the function begin_read returned; end_read counts them; a pong ends a read."""
    data = [b'{"n":1}', b'{"n":22}', b'{"n":333}']
    script = _sends_at_once(
        _server_frame(0x2, data[0]),
        _server_frame(0x2, data[1]),
        _server_frame(0xA, b""),  # an unsolicited pong between data frames
        _server_frame(0x2, data[2]),
    )
    rec = ReadRecorder()
    async for url in raw_server(script):
        ws = await open_websocket(url, rec, connect_timeout=2)
        await rec.until(lambda: sum(n for n, _ in rec.reads) == 3 and rec.pongs == 1)
        assert rec.frames == data
        assert sum(size for _, size in rec.reads) == sum(len(d) for d in data)
        assert not rec.reading and rec.nested_reads == 0
        assert rec.pongs_inside_a_read == 0  # the data frames before the pong were ended first
        await ws.close()


async def test_long_and_short_data_frames_and_control_frames_are_told_apart() -> None:
    """Frames over 125 bytes (never a control frame) and short ones, around pings and pongs."""
    long = [b'{"n":"' + bytes([97 + i]) * (120 + 60 * i) + b'"}' for i in range(3)]
    short = [b'{"status":"UP"}', b"x" * 125]
    script = _sends_at_once(
        _server_frame(0x2, long[0]),
        _server_frame(0x2, short[0]),
        _server_frame(0xA, b"p" * 125),  # an unsolicited pong of the largest control size
        _server_frame(0x1, long[1]),
        _server_frame(0x9, b"ping"),  # answered by picows, not a frame for the handler
        _server_frame(0x2, short[1]),
        _server_frame(0x2, long[2]),
    )
    rec = ReadRecorder()
    async for url in raw_server(script):
        ws = await open_websocket(url, rec, connect_timeout=2)
        await rec.until(lambda: sum(n for n, _ in rec.reads) == 5 and rec.pongs == 1)
        assert rec.frames == [long[0], short[0], long[1], short[1], long[2]]
        assert sum(size for _, size in rec.reads) == sum(map(len, long + short))
        assert rec.pongs_inside_a_read == 0 and rec.nested_reads == 0
        await ws.close()


async def test_a_failing_frame_is_reported_and_the_read_goes_on() -> None:
    """An exception taking one frame goes to take_failed; the next frames still arrive."""
    script = _sends_at_once(*(_server_frame(0x2, p) for p in (b"a", b"bad", b"c")))
    rec = ReadRecorder(fail_on=b"bad")
    async for url in raw_server(script):
        ws = await open_websocket(url, rec, connect_timeout=2)
        await rec.until(lambda: sum(n for n, _ in rec.reads) == 3)
        assert rec.frames == [b"a", b"c"] and rec.failures == 1
        assert not ws.closed
        await ws.close()


async def test_the_receive_buffer_bounds_the_socket_buffer(echo_url: str) -> None:
    """receive_buffer sets SO_RCVBUF before connecting (Linux reports twice the value)."""
    rec = Recorder()
    ws = await open_websocket(echo_url, rec, connect_timeout=2, receive_buffer=32 * 1024)
    sock = ws._transport.underlying_transport.get_extra_info("socket")
    assert 32 * 1024 <= sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) <= 64 * 1024
    await ws.close()
