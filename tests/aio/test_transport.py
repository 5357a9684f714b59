"""The picows transport adapter over real loopback sockets, against a small aiohttp server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import WSMsgType, web

from upbit_ws.aio.transport import WebSocket, open_websocket
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
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
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
