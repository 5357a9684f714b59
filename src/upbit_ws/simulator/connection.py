"""One simulated WebSocket connection: its state, its single write path and its faults.

Every outbound frame (data, ``{"status":"UP"}``, errors, pongs, closes) goes through one queue
and one writer task, so ordering holds and faults apply to all of it: a delay holds every frame,
a blackhole drops every frame including pongs (a stalled link), an abort kills the TCP
connection without a close frame (the 1006 that Upbit's idle kill produces, section 6).

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aiohttp import web

from upbit_ws.core.constants import Format
from upbit_ws.simulator.config import SimulatorConfig
from upbit_ws.simulator.flood import FloodChunk
from upbit_ws.simulator.frames import STATUS_UP, error_frame, is_list_format, wrap_list
from upbit_ws.simulator.limits import SlidingWindow
from upbit_ws.simulator.protocol import Entry

__all__ = ["ConnectionKind", "RequestRecord", "SimConnection"]

logger = logging.getLogger(__name__)

ConnectionKind = Literal["public", "private"]
ItemKind = Literal["data", "control", "pong", "close", "raw"]
_RAW_KEEP: Final = 65_536
#: Received frames remembered per connection (the oldest are forgotten first).
_REQUESTS_KEPT: Final = 10_000


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One frame a connection received: the raw text and what the server made of it."""

    at: float
    raw: str
    parsed: dict[str, object]


@dataclass(slots=True)
class _Item:
    ready_at: float
    kind: ItemKind
    label: str
    payload: bytes
    code: int = 1000


@dataclass(slots=True)
class _Counters:
    frames_by_type: Counter[str] = field(default_factory=Counter)
    errors_sent: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0
    dropped_blackhole: int = 0
    dropped_muted: int = 0
    flood_frames: int = 0


class SimConnection:
    """State and send machinery of one accepted WebSocket."""

    def __init__(
        self,
        *,
        conn_id: int,
        kind: ConnectionKind,
        ws: web.WebSocketResponse,
        request: web.Request,
        config: SimulatorConfig,
        access_key: str | None,
        on_frame_sent: Callable[[str, int], None],
        on_error: Callable[[str], None],
    ) -> None:
        self.id = conn_id
        self.kind: ConnectionKind = kind
        self.access_key = access_key
        self.remote = request.remote or ""
        self.opened_at = time.time()
        self.ws = ws
        self._request = request
        self._config = config
        self._loop = asyncio.get_running_loop()
        self._on_frame_sent = on_frame_sent
        self._on_error = on_error
        # Subscription state, swapped atomically by each valid request (section 3).
        self.ticket: str | None = None
        self.format: Format = "DEFAULT"
        self.entries: tuple[Entry, ...] = ()
        self.requests: deque[RequestRecord] = deque(maxlen=_REQUESTS_KEPT)
        self.counters = _Counters()
        self.closing = False
        self.closed_reason: str | None = None
        self.blackhole_until = 0.0
        self.delay = 0.0
        self.flood = False
        # Fault knob (Simulator.mute): data frames are dropped; pongs still go out.
        self.muted: Literal["until_request", "sticky"] | None = None
        self.flood_chunk: FloodChunk | None = None
        self.flood_dirty = True
        self.second_window = SlidingWindow(config.messages_per_second, config.rate_window_second)
        self.minute_window = SlidingWindow(config.messages_per_minute, config.rate_window_minute)
        self.last_in = self._loop.time()
        self.last_out = self.last_in
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._status_handle: asyncio.TimerHandle | None = None
        self._status_tick_index = 0
        self._idle_handle: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[None] | None = None
        # Set by the first myAsset subscription (section 4.6); None: not subscribed yet.
        self._asset_ready_at: float | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer task and the idle timer."""
        self._writer = asyncio.create_task(self._write_loop(), name=f"sim-writer-{self.id}")
        self._arm_idle()

    async def finish(self) -> None:
        """Stop timers and the writer (the socket is gone or going)."""
        for handle in (self._status_handle, self._idle_handle, self._close_handle):
            if handle is not None:
                handle.cancel()
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    @property
    def open(self) -> bool:
        """Tell whether the socket is still usable."""
        return self.closed_reason is None and not self.ws.closed

    # --- inbound -----------------------------------------------------------------------

    def record(self, raw: str, parsed: dict[str, object]) -> None:
        """Remember a received frame for introspection."""
        self.requests.append(RequestRecord(time.time(), raw[:_RAW_KEEP], parsed))

    def touch_in(self) -> None:
        """Note inbound activity (any frame, protocol pings included) for the idle timer."""
        self.last_in = self._loop.time()

    def wake(self) -> None:
        """Wake the writer (new work that is not in the queue, e.g. a flood chunk)."""
        self._wake.set()

    def blackholed(self) -> bool:
        """Tell whether a blackhole fault is active."""
        return self._loop.time() < self.blackhole_until

    # --- outbound ----------------------------------------------------------------------

    def _push(self, item: _Item) -> None:
        if self.closed_reason is not None:
            return
        if len(self._queue) >= self._config.send_queue_limit:
            logger.warning("simulator connection %d: client too slow, dropping it", self.id)
            self.abort("slow_client")
            return
        self._queue.append(item)
        self._wake.set()

    def send_data(self, data_type: str, payload: bytes) -> None:
        """Queue one data object (list formats wrap it when it is written)."""
        if self.closing:
            return
        if self.muted is not None:
            self.counters.dropped_muted += 1
            return
        if data_type == "myAsset":
            ready = self._asset_ready_at
            if ready is None or self._loop.time() < ready:
                return  # myAsset may take a while to start flowing (section 4.6)
        self._push(_Item(self._loop.time(), "data", data_type, payload))

    def send_control(self, label: str, payload: bytes) -> None:
        """Queue a control frame (status, LIST reply, malformed bytes) as is."""
        self._push(_Item(self._loop.time(), "control", label, payload))

    def send_pong(self, payload: bytes) -> None:
        """Queue the answer to a protocol ping (dropped while blackholed)."""
        self._push(_Item(self._loop.time(), "pong", "pong", payload))

    def send_text(self, payload: bytes) -> None:
        """Queue a TEXT frame (a malformed-frame fault: Upbit only sends binary)."""
        self._push(_Item(self._loop.time(), "raw", "text", payload))

    def fail(self, name: str, message: str) -> None:
        """Send an error frame, then close 1000 after ``error_close_delay`` (section 7.3).

        The subscription is gone from this moment: no more data frames are queued.
        """
        if self.closing:
            return
        self.closing = True
        self.counters.errors_sent[name] += 1
        self._on_error(name)
        now = self._loop.time()
        self._push(_Item(now, "control", "error", error_frame(name, message)))
        self._push(_Item(now + self._config.error_close_delay, "close", "close", b"", 1000))

    def close(self, code: int = 1000) -> None:
        """Close cleanly with ``code`` once the frames already queued are out."""
        self.closing = True
        self._push(_Item(self._loop.time(), "close", "close", b"", code))

    def abort(self, reason: str) -> None:
        """Drop the TCP connection at once, without a close frame (client sees 1006)."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self.closing = True
        transport = self._request.transport
        if transport is not None:
            transport.abort()
        self._wake.set()

    def start_my_asset(self) -> None:
        """Start the ``my_asset_start_delay`` clock, at the first myAsset subscription only.

        DOC-myasset: right after the first subscription, data may take minutes to flow (4.6).
        """
        if self._asset_ready_at is None:
            self._asset_ready_at = self._loop.time() + self._config.my_asset_start_delay

    def start_status(self) -> None:
        """Answer a text PING: start this socket's ``{"status":"UP"}`` cycle (section 6).

        Upbit sends the first status on its next server-wide tick (0.6-8.9 s after the PING
        with a 10 s period), then one every period while the socket lives; a PING while the
        cycle runs changes nothing. ``status_start="immediate"`` also answers every PING at
        once (the periodic statuses still follow the tick).
        """
        if self._config.status_start == "immediate":
            self.send_control("status", STATUS_UP)
        if self._status_handle is not None:
            return
        interval = self._config.status_interval
        # The tick is shared: every socket's statuses fall on multiples of the interval.
        self._status_tick_index = math.floor(self._loop.time() / interval) + 1
        self._status_handle = self._loop.call_at(
            self._status_tick_index * interval, self._status_tick
        )

    def _status_tick(self) -> None:
        self.send_control("status", STATUS_UP)
        interval = self._config.status_interval
        # Integer tick numbers keep the grid exact; after a stalled loop, skip missed ticks
        # rather than send a burst.
        index = max(self._status_tick_index + 1, math.floor(self._loop.time() / interval) + 1)
        self._status_tick_index = index
        self._status_handle = self._loop.call_at(index * interval, self._status_tick)

    # --- idle kill ---------------------------------------------------------------------

    def _arm_idle(self, at: float | None = None) -> None:
        timeout = self._config.idle_timeout
        if timeout is None:
            return
        when = at if at is not None else self._loop.time() + timeout
        self._idle_handle = self._loop.call_at(when, self._idle_check)

    def _idle_check(self) -> None:
        timeout = self._config.idle_timeout
        assert timeout is not None
        last = self.last_in
        if self._config.idle_mode == "both":
            last = max(last, self.last_out)
        deadline = last + timeout
        if self._loop.time() >= deadline:
            # Upbit drops idle sockets without a close frame (1006 at the client, section 6).
            self.abort("idle")
        else:
            self._arm_idle(deadline)

    # --- the one write path ------------------------------------------------------------

    async def _write_loop(self) -> None:
        try:
            while self.closed_reason is None:
                if self._queue:
                    item = self._queue[0]
                    wait = item.ready_at + self.delay - self._loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                        continue
                    self._queue.popleft()
                    if not await self._send(item):
                        return
                    continue
                if self.flood and self.flood_chunk is not None and self.flood_chunk.frames:
                    await self._flood_once(self.flood_chunk)
                    continue
                self._wake.clear()
                await self._wake.wait()
        except (ConnectionError, RuntimeError) as exc:
            # The peer went away mid-write; the handler notices through its reader.
            logger.debug("simulator connection %d: write failed: %r", self.id, exc)

    async def _send(self, item: _Item) -> bool:
        """Write one queued item; return ``False`` once the connection is closed."""
        if item.kind == "close":
            self.closed_reason = self.closed_reason or f"closed {item.code}"
            await self.ws.close(code=item.code)
            return False
        if self.blackholed():
            self.counters.dropped_blackhole += 1
            return True
        if item.kind == "pong":
            await self.ws.pong(item.payload)
        elif item.kind == "raw":
            await self.ws.send_str(item.payload.decode("utf-8", "replace"))
        elif item.kind == "data" and is_list_format(self.format):
            batch = [item.payload]
            while (
                len(batch) < self._config.list_batch
                and self._queue
                and self._queue[0].kind == "data"
                and self._queue[0].ready_at + self.delay <= self._loop.time()
            ):
                batch.append(self._queue.popleft().payload)
            body = wrap_list(batch)
            await self.ws.send_bytes(body)
            self._sent(item.label, len(body), count=len(batch))
            return True
        else:
            await self.ws.send_bytes(item.payload)
        self._sent(item.label, len(item.payload))
        return True

    def _sent(self, label: str, size: int, *, count: int = 1) -> None:
        if label != "status" or self._config.status_keeps_alive:
            self.last_out = self._loop.time()
        self.counters.frames_by_type[label] += count
        self.counters.bytes_sent += size
        self._on_frame_sent(label, count)

    async def _flood_once(self, chunk: FloodChunk) -> None:
        """Write one pre-built chunk straight to the transport and wait for it to drain."""
        transport = self._request.transport
        if transport is None or transport.is_closing() or self.ws.closed or self.closing:
            # Nothing may follow a close frame; the handler finishes the connection.
            self.flood = False
            return
        if self.blackholed():
            await asyncio.sleep(0.01)
            return
        transport.write(chunk.data)
        self.last_out = self._loop.time()
        self.counters.flood_frames += chunk.frames
        self.counters.bytes_sent += len(chunk.data)
        for label, count in chunk.by_type:
            self.counters.frames_by_type[label] += count
            self._on_frame_sent(label, count)
        await self._request.writer.drain()

    # --- introspection -----------------------------------------------------------------

    def describe(self, *, with_requests: bool) -> dict[str, Any]:
        """Return a JSON-able description for the control API and tests."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "remote": self.remote,
            "opened_at": self.opened_at,
            "open": self.open,
            "closed_reason": self.closed_reason,
            "ticket": self.ticket,
            "format": self.format,
            "subscription": [
                {
                    "type": e.type,
                    "code": e.code,
                    "raw_code": e.raw_code,
                    "depth": e.depth,
                    "level": e.level,
                    "is_only_snapshot": e.only_snapshot,
                    "is_only_realtime": e.only_realtime,
                }
                for e in self.entries
            ],
            "requests_received": len(self.requests),
            "frames_sent": dict(self.counters.frames_by_type),
            "errors_sent": dict(self.counters.errors_sent),
            "bytes_sent": self.counters.bytes_sent,
            "dropped_blackhole": self.counters.dropped_blackhole,
            "blackholed": self.blackholed(),
            "delay_ms": self.delay * 1000,
            "flood": self.flood,
            "queued": len(self._queue),
        }
        if with_requests:
            out["requests"] = [
                {"at": r.at, "raw": r.raw, "parsed": r.parsed} for r in self.requests
            ]
        return out

    def __repr__(self) -> str:
        return f"SimConnection(id={self.id}, kind={self.kind!r}, open={self.open})"
