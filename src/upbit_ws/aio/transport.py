"""The transport adapter: the only module that imports the WebSocket library (picows).

picows is callback based and lean (benchmarks/README-performance.md: its raw ceiling row).
This module turns it into a small surface the managed connection drives:

* :func:`open_websocket` connects with one overall deadline (TCP, TLS, HTTP upgrade) and
  translates every picows/OS failure into our exception tree, in this one place (a socket that
  drops before the upgrade answer included: picows then returns no listener and no error);
* :class:`FrameHandler` receives data frames, pongs and the close, synchronously on the
  reader (the handler must only decode, route and buffer: never run user code inline); a
  :class:`ReadHandler` takes the data frames per socket read instead (the hot path: what is
  needed once per read is done once per read, and each frame is a view of picows's buffer,
  not a copy);
* each socket's receive buffer is bounded (``TransportConfig.receive_buffer``, default
  :data:`~upbit_ws.core.config.RECEIVE_BUFFER`), which bounds how many messages one read
  decodes before a consumer runs;
* :class:`WebSocket` sends text frames and pings, applies write backpressure through
  :meth:`WebSocket.drain`, and closes either gracefully or by abort. A connection already
  declared dead is aborted: a graceful close on a blackholed socket can hang for its whole
  close timeout (issue #4).

The TCP socket is opened here (picows's ``socket_factory``), so a connect abandoned before the
upgrade answer (our deadline, or a cancelled connect) is cut at once instead of lingering until
picows's own handshake timer. picows logs through an adapter that drops its level-9 records:
at that level it logs the raw upgrade request, which carries the private connection's JWT.

Upbit sends every server frame as BINARY (docs/protocol.md section 1.3); TEXT frames are
passed on too, so a proxy that re-frames them does not break us.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, runtime_checkable

import picows
from picows.url import WSParsedURL, parse_url

from upbit_ws.core.config import RECEIVE_BUFFER
from upbit_ws.core.constants import ABNORMAL_CLOSURE
from upbit_ws.core.errors import (
    AuthError,
    ConnectTimeoutError,
    RateLimitedError,
    TransportError,
    UpbitWsError,
)
from upbit_ws.core.rest_types import parse_retry_after, read_error_body

__all__ = [
    "NO_STATUS_RECEIVED",
    "RECEIVE_BUFFER",
    "FrameHandler",
    "ReadHandler",
    "WebSocket",
    "open_websocket",
]

_log = logging.getLogger("upbit_ws.transport")

#: Close code reported for a close frame that carried no code (RFC 6455 section 7.1.5).
NO_STATUS_RECEIVED: Final = 1005
#: Codes that only report what happened and must never go on the wire (RFC 6455 section 7.4.1);
#: picows reports a close frame without a code as 0.
_NOT_ON_THE_WIRE: Final = frozenset({0, NO_STATUS_RECEIVED, ABNORMAL_CLOSURE, 1015})
_NORMAL_CLOSURE: Final = picows.WSCloseCode.OK
#: How long a graceful close may wait for the peer before the socket is aborted.
_CLOSE_GRACE: Final = 1.0
#: Upbit frames are a few KB; an orderbook of 30 units is about 3 KB. 16 MB is far above any.
_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024

_BINARY: Final = picows.WSMsgType.BINARY
_TEXT: Final = picows.WSMsgType.TEXT
_PONG: Final = picows.WSMsgType.PONG
_PING: Final = picows.WSMsgType.PING
_CLOSE: Final = picows.WSMsgType.CLOSE
#: The largest control frame payload (RFC 6455 section 5.5).
_CONTROL_MAX: Final = 125


class _PicowsLog(logging.LoggerAdapter[logging.Logger]):
    """picows's logger for our sockets, with its level-9 (below DEBUG) records dropped.

    At that level picows logs the raw upgrade request, ``Authorization: Bearer <JWT>`` of the
    private connection included, and every frame; neither belongs in an application's logs
    whatever level the root logger is set to. Everything at DEBUG and above passes unchanged.
    """

    def isEnabledFor(self, level: int) -> bool:
        """Refuse anything below DEBUG; otherwise ask the wrapped logger."""
        return level >= logging.DEBUG and self.logger.isEnabledFor(level)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log a record; a protocol error the peer caused goes to DEBUG.

        The close it causes (1002, 1009, ...) reaches the connection with its code and reason
        and is logged there once, as every close is; picows's own ERROR line for it would be
        a second, louder report of the same event. Errors with a traceback (a failure in our
        callbacks) stay as they are.
        """
        if (
            level >= logging.ERROR
            and not kwargs.get("exc_info")
            and isinstance(msg, str)
            and msg.startswith(_PEER_PROTOCOL_ERROR)
        ):
            level = logging.DEBUG
        super().log(level, msg, *args, **kwargs)


#: How picows's log line for a bad frame from the peer begins (picows 2.x).
_PEER_PROTOCOL_ERROR: Final = "WS parser error"
_PICOWS_LOG: Final = _PicowsLog(logging.getLogger("picows.client"))


#: What a socket is opened and connected with: family, type, protocol and address.
_Target = tuple[socket.AddressFamily, socket.SocketKind, int, tuple[Any, ...]]


def _numeric_address(host: str, port: int) -> list[_Target]:
    """Return the address of a literal IP host without asking the resolver (a thread hop)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return []
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, (str(ip), port))]


class _Dialer:
    """The socket factory picows connects through, so an abandoned connect can be cut.

    Resolves and connects like ``loop.create_connection`` (addresses in order) and keeps the
    sockets it made: :meth:`cut` ends any that is still open, whether picows already wraps it
    in a transport (it then sees EOF and goes away) or not. ``receive_buffer`` sets the
    socket's ``SO_RCVBUF`` (see :data:`RECEIVE_BUFFER`).
    """

    __slots__ = ("_receive_buffer", "_sockets")

    def __init__(self, receive_buffer: int | None = None) -> None:
        self._receive_buffer = receive_buffer
        self._sockets: list[socket.socket] = []

    async def __call__(self, url: WSParsedURL) -> socket.socket:
        """Return a connected non-blocking TCP socket to ``url``'s host and port."""
        host, port = url.host, url.port
        loop = asyncio.get_running_loop()
        infos: list[_Target] = _numeric_address(host, port) or [
            (family, kind, proto, address)
            for family, kind, proto, _, address in await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        ]
        if not infos:
            raise OSError(f"getaddrinfo returned no address for {host}")
        error: OSError | None = None
        for family, kind, proto, address in infos:
            sock = socket.socket(family, kind, proto)
            self._sockets.append(sock)
            try:
                if self._receive_buffer:
                    # Before connecting: the TCP window scale is agreed in the handshake.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._receive_buffer)
                sock.setblocking(False)
                await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        assert error is not None
        raise error

    def cut(self) -> None:
        """End every socket still open (the peer sees it go; picows notices EOF)."""
        for sock in self._sockets:
            if sock.fileno() != -1:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


async def tcp_reachable(url: str, *, connect_timeout: float) -> bool:
    """Tell whether ``url``'s host accepts a TCP connection within ``connect_timeout`` s.

    Resolves and connects as a WebSocket connect would, then closes at once: no TLS, no HTTP
    request, nothing a server counts as a request. The reconnect's network watch uses it
    (``BackoffConfig.network_probe``). A name that does not resolve, a refused or unreachable
    host and no answer in time all read as False; so does a URL that cannot be parsed or a
    name that cannot be encoded (a label over 63 characters), which no connect reaches either.
    """
    dialer = _Dialer()
    try:
        async with asyncio.timeout(connect_timeout):
            sock = await dialer(parse_url(url))
    except (OSError, TimeoutError, ValueError, picows.WSError):
        return False
    sock.close()
    return True


class FrameHandler(Protocol):
    """What a connection implements to receive from a :class:`WebSocket`.

    Every method runs synchronously on the reader; none may block or await.
    """

    def on_frame(self, payload: bytes) -> None:
        """Take one data frame (binary or text) as bytes."""

    def on_pong(self) -> None:
        """Note that a pong arrived (liveness)."""

    def on_close(self, code: int, reason: str) -> None:
        """Note that the socket is gone; ``code`` is 1006 when no close frame came.

        A close frame without a code is reported as 1005 (RFC 6455 section 7.1.5). A socket
        this side closed because the peer broke the protocol (a bad opcode: 1002, a frame
        over the size limit: 1009) is reported with the code sent to the peer.
        """


@runtime_checkable
class ReadHandler(FrameHandler, Protocol):
    """A :class:`FrameHandler` that takes frames per socket read (the hot path).

    picows parses every frame of one socket read in one go and marks the last one
    (``WSFrame.last_in_buffer``), so what is needed once per read (the clock, proof of life,
    counters) is done once per read instead of once per frame. :meth:`on_frame` is then not
    called.
    """

    def begin_read(self) -> Callable[[memoryview], None]:
        """Start a read; return the function that takes each data frame's payload.

        The payload is a view of picows's read buffer, valid until :meth:`end_read` returns
        (picows moves its buffer only after the read's last frame): decode it, copy it, or
        keep it until then. An exception it raises goes to :meth:`take_failed`.
        """
        ...

    def end_read(self, frames: int, nbytes: int) -> None:
        """End the read: it held ``frames`` data frames of ``nbytes`` payload bytes.

        Called before picows moves its buffer, so the payloads taken are still valid here; an
        exception it raises goes to :meth:`take_failed`.
        """

    def take_failed(self) -> None:
        """Report that taking a frame raised (called inside the ``except`` block)."""


class _Listener(picows.WSListener):
    """Bridge from picows callbacks to a :class:`FrameHandler`."""

    __slots__ = ("_close_code", "_close_reason", "_handler", "_writable", "closing")

    def __init__(self, handler: FrameHandler) -> None:
        self._handler = handler
        self._close_code = ABNORMAL_CLOSURE
        self._close_reason = ""
        self._writable = asyncio.Event()
        self._writable.set()
        #: We started a graceful close (so a close frame we sent is not a protocol error).
        self.closing = False

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is _BINARY or msg_type is _TEXT:
            self._handler.on_frame(frame.get_payload_as_bytes())
        elif msg_type is _PONG:
            self._handler.on_pong()
        elif msg_type is _CLOSE:
            code = frame.get_close_code()
            self._close_code = code.value or NO_STATUS_RECEIVED
            self._close_reason = frame.get_close_reason() or ""
            if not transport.is_close_frame_sent:
                # Answer the close handshake (RFC 6455 section 5.5.1) with the peer's code,
                # except one that must never be sent (a close without a code gets 1000); a
                # close answering ours needs no answer.
                reply = _NORMAL_CLOSURE if code.value in _NOT_ON_THE_WIRE else code
                transport.send_close(reply)
            transport.disconnect()
        # PING is answered by picows itself (enable_auto_pong); other opcodes are ignored.

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self._writable.set()
        code, reason = self._close_code, self._close_reason
        if code == ABNORMAL_CLOSURE and not self.closing:
            # No close frame came, and we did not close: a close frame picows sent is the
            # one it answered a protocol error of the peer with; that code is the cause.
            handshake = transport.close_handshake
            sent = handshake.sent if handshake is not None else None
            if sent is not None:
                code = sent.code.value
                reason = f"protocol error: {sent.reason or sent.code.name}"
        self._handler.on_close(code, reason)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()


class _ReadListener(_Listener):
    """Bridge to a :class:`ReadHandler`: data frames taken per read, no copy, one call each.

    A frame over 125 bytes is taken as data without reading its opcode (see
    :meth:`on_ws_frame`); a fragment of a fragmented message (Upbit sends none) is then taken
    too, and fails to decode as the message's first fragment always did.
    """

    __slots__ = ("_bytes", "_frames", "_reads", "_take")

    def __init__(self, handler: ReadHandler) -> None:
        super().__init__(handler)
        self._reads = handler
        #: The function taking the current read's frames (None between reads).
        self._take: Callable[[memoryview], None] | None = None
        self._frames = 0
        self._bytes = 0

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        size = frame.payload_size
        # A frame over 125 bytes is a data frame: control frames are never longer (RFC 6455
        # section 5.5; picows closes the socket on one that is). Reading the opcode costs a
        # conversion to a Python enum (about 0.1 us), so only short frames pay for it.
        if size <= _CONTROL_MAX:
            msg_type = frame.msg_type
            if msg_type is not _BINARY and msg_type is not _TEXT:
                if self._take is not None:
                    self._end_read()  # a control frame ends the data frames before it
                super().on_ws_frame(transport, frame)
                return
        take = self._take
        if take is None:
            take = self._take = self._reads.begin_read()
        self._frames += 1
        self._bytes += size
        try:
            take(frame.get_payload_as_memoryview())
        except Exception:
            self._reads.take_failed()
        if frame.last_in_buffer:
            self._end_read()

    def _end_read(self) -> None:
        self._take = None
        frames, nbytes = self._frames, self._bytes
        self._frames = self._bytes = 0
        try:
            self._reads.end_read(frames, nbytes)
        except Exception:
            self._reads.take_failed()


class WebSocket:
    """One open WebSocket connection; created by :func:`open_websocket`."""

    __slots__ = ("_listener", "_transport", "url")

    def __init__(self, url: str, transport: picows.WSTransport, listener: _Listener) -> None:
        self.url = url
        self._transport = transport
        self._listener = listener

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<WebSocket {self.url} {state}>"

    @property
    def closed(self) -> bool:
        """Tell whether the socket is gone (or going)."""
        return bool(self._transport.is_disconnected) or bool(self._transport.is_close_frame_sent)

    def send_text(self, data: bytes) -> None:
        """Queue one TEXT frame (Upbit requests are text, section 1.3)."""
        if self.closed:
            raise TransportError("cannot send: the connection is closed")
        self._transport.send(_TEXT, data)

    def send_ping(self) -> None:
        """Queue one protocol ping; the pong arrives through :meth:`FrameHandler.on_pong`."""
        if not self.closed:
            self._transport.send_ping()

    async def drain(self) -> None:
        """Wait until the socket's write buffer is below its high-water mark."""
        await self._listener._writable.wait()

    def abort(self) -> None:
        """Drop the socket at once, without a closing handshake (for a connection declared dead)."""
        self._transport.disconnect(graceful=False)

    async def close(self, code: int = 1000) -> None:
        """Close with a closing handshake, aborting if the peer does not finish it in time."""
        self._listener.closing = True
        if not self._transport.is_disconnected:
            if not self._transport.is_close_frame_sent:
                self._transport.send_close(picows.WSCloseCode(code))
            try:
                async with asyncio.timeout(_CLOSE_GRACE):
                    await self.wait_closed()
            except TimeoutError:
                self.abort()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the socket is fully gone; never raise for what ended it."""
        try:
            await self._transport.wait_disconnected()
        except Exception as exc:
            # picows re-raises here whatever ended the socket: a local protocol error (the peer
            # sent a bad frame, perhaps during our close) or a failure in one of our callbacks.
            # picows logged it already, and the socket is gone either way: the close was
            # reported through FrameHandler.on_close, so nothing is left to do.
            _log.debug("websocket %s ended with %r", self.url, exc)


async def open_websocket(
    url: str,
    handler: FrameHandler,
    *,
    connect_timeout: float,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    receive_buffer: int | None = RECEIVE_BUFFER,
) -> WebSocket:
    """Open a WebSocket to ``url`` within ``connect_timeout`` seconds, or raise one of our errors.

    ``wss://`` URLs verify the server certificate (the default context of :mod:`ssl`) unless a
    context is given. ``receive_buffer`` is the socket's ``SO_RCVBUF`` (:data:`RECEIVE_BUFFER`;
    ``None`` leaves the system's autotuning). Failures are translated here and only here:

    ====================================  ==============================================
    what happened                         raised
    ====================================  ==============================================
    no answer in ``connect_timeout``      :class:`ConnectTimeoutError`
    HTTP 429 / 418 on the upgrade         :class:`RateLimitedError` (``retry_after`` read)
    HTTP 401 / 403 on the upgrade         :class:`AuthError` (Upbit's error name read)
    any other refused upgrade             :class:`TransportError` with ``status``
    closed before the upgrade answer      :class:`TransportError`
    refused, reset, DNS, TLS (OSError)    :class:`TransportError`
    a host name IDNA cannot encode        :class:`TransportError`
    ====================================  ==============================================

    A socket that closes right after the upgrade is returned closed; ``handler.on_close`` has
    then been called already. Whatever fails (or a cancellation), the TCP socket is cut at
    once.
    """
    if ssl_context is None and url.startswith("wss://"):
        ssl_context = ssl.create_default_context()
    dialer = _Dialer(receive_buffer)
    try:
        try:
            async with asyncio.timeout(connect_timeout):
                transport, listener = await picows.ws_connect(
                    lambda: _listener(handler),
                    url,
                    ssl_context=ssl_context,
                    websocket_handshake_timeout=connect_timeout,
                    logger_name=_PICOWS_LOG,
                    socket_factory=dialer,
                    enable_auto_ping=False,  # the session owns keepalive (core/session.py)
                    enable_auto_pong=True,
                    max_frame_size=_MAX_FRAME_SIZE,
                    extra_headers=dict(headers) if headers else None,
                    max_redirects=0,
                )
        except BaseException:
            dialer.cut()  # a half-open socket must not linger (timeout, cancellation, error)
            raise
    except TimeoutError as exc:
        raise ConnectTimeoutError(connect_timeout) from exc
    except picows.WSHandshakeError as exc:
        raise _handshake_error(url, exc) from exc
    except picows.WSError as exc:
        raise TransportError(f"websocket protocol error while connecting to {url}: {exc}") from exc
    except UpbitWsError:
        raise
    except OSError as exc:
        raise TransportError(f"cannot connect to {url}: {exc.__class__.__name__}: {exc}") from exc
    except UnicodeError as exc:  # the resolver's IDNA encoding refused the host name
        raise TransportError(f"cannot connect to {url}: the host name is invalid: {exc}") from exc
    if not isinstance(listener, _Listener):
        # The TCP connection dropped before the upgrade answer: picows then ends its handshake
        # wait without an error and without a listener.
        raise TransportError(f"connection to {url} closed during the websocket handshake")
    return WebSocket(url, transport, listener)


def _listener(handler: FrameHandler) -> _Listener:
    """Return the picows listener for ``handler``: per read when it can, else per frame."""
    if isinstance(handler, ReadHandler):
        return _ReadListener(handler)
    return _Listener(handler)


def _handshake_error(url: str, exc: picows.WSHandshakeError) -> UpbitWsError:
    """Translate a refused HTTP upgrade into our error for its status."""
    response = exc.response
    if response is None:
        return TransportError(f"websocket handshake with {url} failed: {exc}")
    status = int(response.status)
    body = response.body or exc.raw_body or b""
    if status in (429, 418):
        return RateLimitedError(
            status, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    name, message = read_error_body(body) or (None, "")
    if status in (401, 403):
        text = f"API key refused at the websocket handshake (HTTP {status})"
        if name:
            text += f": {name}: {message}"
        return AuthError(
            text + "; check the key, its permissions and allowed IPs", name=name, status=status
        )
    return TransportError(
        f"websocket handshake with {url} refused with HTTP {status}", status=status
    )
