"""The WebSocket endpoints: handshake checks, the read loop and request handling.

Handshake (sections 5 and 8.1): refuse faults, the 5 connects/s limit (429, then 418 with a
growing block), and on ``/private`` the JWT check (HTTP 401, or an ``INVALID_AUTH`` frame then
close, by configuration). After the upgrade: binary frames only, no greeting and no ack; each
valid request atomically replaces the subscription and format and triggers SNAPSHOTs (section
3); ``PING`` starts the 10 s ``{"status":"UP"}`` cycle (section 6); errors are sent and the
socket closed 1000 about 150 ms later (section 7.3).

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Final

from aiohttp import WSMsgType, web

from upbit_ws.core.constants import PRIVATE_PATH, PUBLIC_PATH
from upbit_ws.simulator.auth import AuthFailure, unverified_access_key, verify_token
from upbit_ws.simulator.connection import ConnectionKind, SimConnection
from upbit_ws.simulator.flood import build_chunk
from upbit_ws.simulator.frames import (
    is_list_format,
    is_simple_format,
    list_subscriptions_object,
    wrap_list,
)
from upbit_ws.simulator.listing import PRICE_SCALE, tick_units
from upbit_ws.simulator.market import CANDLE_UNITS, MarketEvent, Trade
from upbit_ws.simulator.protocol import (
    MESSAGES,
    Entry,
    ListSubscriptions,
    Ping,
    RequestError,
    Subscribe,
    list_result,
    parse_request,
)

if TYPE_CHECKING:
    from upbit_ws.simulator.server import Simulator

__all__ = ["add_websocket_routes", "allowed_levels", "rebuild_flood"]

_MAX_REQUEST_BYTES: Final = 1 << 20
_LEVEL_STEPS: Final = (1, 10, 100, 1000, 10000)


def add_websocket_routes(app: web.Application, sim: Simulator) -> None:
    """Serve the public and private WebSocket paths on ``app``."""

    async def public(request: web.Request) -> web.StreamResponse:
        """Serve ``/websocket/v1``."""
        return await _handle(sim, request, "public")

    async def private(request: web.Request) -> web.StreamResponse:
        """Serve ``/websocket/v1/private``."""
        return await _handle(sim, request, "private")

    app.router.add_get(PUBLIC_PATH, public)
    app.router.add_get(PRIVATE_PATH, private)


def _rate_headers(remaining: int | None) -> dict[str, str]:
    # The upgrade response carries these even though the docs say WS has none (8.1, PROBE).
    sec = 3 if remaining is None else remaining
    return {"Remaining-Req": f"group=websocket; min=300; sec={sec}", "Limit-By-Ip": "Yes"}


async def _handle(sim: Simulator, request: web.Request, kind: ConnectionKind) -> web.StreamResponse:
    loop = asyncio.get_running_loop()
    status = sim.refusing()
    if status == 0:
        # A stalled handshake: no answer until the refusal ends, then the socket is dropped.
        sim.count_refused("stall")
        await sim.wait_for(lambda: sim.refusing() is None)
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=503)
    if status is not None:
        sim.count_refused(str(status))
        return web.json_response(
            {"error": {"name": status, "message": "Service Unavailable"}}, status=status
        )
    authorization = request.headers.get("Authorization")
    scope = f"ip:{request.remote}"
    if kind == "private":
        # Private connects are limited per account ("pocket"), public ones per IP (8.1).
        scope = f"key:{unverified_access_key(authorization) or request.remote}"
    decision = sim.connect_limiter(scope).check(loop.time())
    if decision.status != 101:
        sim.count_refused(str(decision.status))
        name = "too_many_requests" if decision.status == 429 else "blocked"
        return web.json_response(
            {"error": {"name": name, "message": "Too many requests"}},
            status=decision.status,
            headers=_rate_headers(0),
        )
    auth_failure: AuthFailure | None = None
    access_key: str | None = None
    if kind == "private":
        verdict = verify_token(authorization, keys=sim.keys, now=sim.wall_time())
        if isinstance(verdict, AuthFailure):
            auth_failure = verdict
            if sim.config.auth_failure == "handshake":
                sim.count_refused("401")
                return web.json_response(
                    {"error": {"name": verdict.name, "message": verdict.message}}, status=401
                )
        else:
            access_key = verdict.access_key
    ws: web.WebSocketResponse = web.WebSocketResponse(
        autoping=False, max_msg_size=_MAX_REQUEST_BYTES
    )
    if not ws.can_prepare(request).ok:
        return web.json_response(
            {"error": {"name": "not_found", "message": "no Route matched with those values"}},
            status=404,
        )
    ws.headers.update(_rate_headers(decision.remaining))
    await ws.prepare(request)
    conn = sim.open_connection(kind=kind, ws=ws, request=request, access_key=access_key)
    if auth_failure is not None:
        conn.fail("INVALID_AUTH", MESSAGES["INVALID_AUTH"])
    try:
        async for msg in ws:
            conn.touch_in()
            if msg.type == WSMsgType.PING:
                conn.send_pong(msg.data)
            elif msg.type == WSMsgType.TEXT:
                _on_frame(sim, conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                if sim.config.accept_binary_requests:
                    _on_frame(sim, conn, msg.data)
                else:
                    # Clients send requests as text (1.3); a refused binary frame is malformed.
                    sim.set_routes(conn, ())
                    conn.fail("WRONG_FORMAT", MESSAGES["WRONG_FORMAT"])
    finally:
        await sim.close_connection(conn)
    return ws


def _describe(request: object) -> dict[str, object]:
    """Turn a parsed request into JSON-able data for introspection."""
    if isinstance(request, Subscribe):
        return {
            "kind": "subscribe",
            "ticket": request.ticket,
            "format": request.format,
            "entries": [
                {
                    "type": e.type,
                    "code": e.code,
                    "depth": e.depth,
                    "level": e.level,
                    "is_only_snapshot": e.only_snapshot,
                    "is_only_realtime": e.only_realtime,
                }
                for e in request.entries
            ],
        }
    if isinstance(request, ListSubscriptions):
        return {"kind": "list_subscriptions", "ticket": request.ticket, "format": request.format}
    if isinstance(request, Ping):
        return {"kind": "ping"}
    assert isinstance(request, RequestError)
    return {"kind": "error", "name": request.name, "message": request.message}


def _on_frame(sim: Simulator, conn: SimConnection, data: str | bytes) -> None:
    if conn.closing:
        return
    request = parse_request(data, path=conn.kind, config=sim.config)
    raw = data if isinstance(data, str) else data.decode("utf-8", "replace")
    conn.record(raw, _describe(request))
    sim.requests_received += 1
    sim.notify()
    counted = not isinstance(request, Ping) or sim.config.ping_counts_as_message
    if counted and not _within_message_limit(sim, conn):
        return
    if isinstance(request, Ping):
        conn.start_status()
    elif isinstance(request, RequestError):
        # The old subscription does not survive an error (section 3.2, 7.3).
        sim.set_routes(conn, ())
        conn.fail(request.name, request.message)
    elif isinstance(request, ListSubscriptions):
        _list_subscriptions(sim, conn, request)
    elif (rejection := sim.take_rejection(conn)) is not None:
        # Fault knob: a spurious error frame answers a valid request (issue #9).
        sim.set_routes(conn, ())
        conn.fail(*rejection)
    else:
        if conn.muted == "until_request":
            conn.muted = None
        delay = sim.config.subscribe_delay
        if delay > 0:
            # Equal delays keep the requests' order (call_later is FIFO for equal times).
            asyncio.get_running_loop().call_later(delay, _subscribe_later, sim, conn, request)
        else:
            _subscribe(sim, conn, request)


def _subscribe_later(sim: Simulator, conn: SimConnection, request: Subscribe) -> None:
    """Apply a request ``subscribe_delay`` after it came, unless the socket is gone."""
    if conn.open and not conn.closing:
        _subscribe(sim, conn, request)


def _within_message_limit(sim: Simulator, conn: SimConnection) -> bool:
    """Apply 5 messages/s and 100/min (section 8.1); return whether to process the frame."""
    now = asyncio.get_running_loop().time()
    ok_second = conn.second_window.remaining(now) != 0
    ok_minute = conn.minute_window.remaining(now) != 0
    if ok_second and ok_minute:
        conn.second_window.hit(now)
        conn.minute_window.hit(now)
        return True
    sim.messages_over_limit += 1
    action = sim.config.message_excess
    if action == "error_close":
        sim.set_routes(conn, ())
        conn.fail("TOO_MANY_REQUEST", MESSAGES["TOO_MANY_REQUEST"])
        return False
    return action == "ignore"


def _list_subscriptions(sim: Simulator, conn: SimConnection, request: ListSubscriptions) -> None:
    """Answer LIST_SUBSCRIPTIONS without touching the subscription (section 3.3)."""
    if request.format is not None:
        # A format in this request changes the stream format from then on (DOC-list note).
        conn.format = request.format
    result = list_result(conn.entries, known=sim.model.states, config=sim.config)
    body = list_subscriptions_object(request.ticket, result, simple=is_simple_format(conn.format))
    conn.send_control(
        "list_subscriptions", wrap_list([body]) if is_list_format(conn.format) else body
    )


def allowed_levels(sim: Simulator, code: str) -> frozenset[float]:
    """Return the grouping levels a market supports: KRW markets only, multiples of the tick."""
    state = sim.model.states[code]
    if state.info.quote != "KRW":
        return frozenset({0.0})
    tick = tick_units("KRW", round(state.info.base_price * PRICE_SCALE)) / PRICE_SCALE
    return frozenset({0.0, *(tick * step for step in _LEVEL_STEPS)})


def _served(sim: Simulator, entry: Entry) -> bool:
    """Tell whether an entry produces data: unknown/lowercase codes and bad levels do not."""
    if entry.type in ("myOrder", "myAsset"):
        return True
    if entry.code not in sim.model.states:
        return False  # silently ignored, no error (section 2.4)
    if entry.type == "orderbook" and entry.level:
        # An unsupported level gives no data and no error on the KR host (section 2.3).
        return entry.level in allowed_levels(sim, entry.code)
    return True


def _flags(sim: Simulator, entry: Entry) -> tuple[bool, bool]:
    """Return (send snapshot, send realtime) for an entry."""
    if entry.only_snapshot and entry.only_realtime:
        mode = sim.config.both_flags
        return mode in ("snapshot", "both"), mode in ("realtime", "both")
    return not entry.only_realtime, not entry.only_snapshot


def _subscribe(sim: Simulator, conn: SimConnection, request: Subscribe) -> None:
    """Replace the subscription and format atomically, then send SNAPSHOTs (section 3)."""
    old = {(e.type, e.raw_code) for e in conn.entries}
    _send_stale(sim, conn, request)
    served = tuple(e for e in request.entries if _served(sim, e))
    conn.ticket = request.ticket
    conn.format = request.format
    conn.entries = served
    if any(e.type == "myAsset" for e in served):
        conn.start_my_asset()
    realtime = [e for e in served if _flags(sim, e)[1] and e.type not in ("myOrder", "myAsset")]
    sim.set_routes(conn, realtime)
    if conn.flood:
        rebuild_flood(sim, conn)
    simple = is_simple_format(conn.format)
    for entry in served:
        if not _flags(sim, entry)[0] or entry.type in ("myOrder", "myAsset"):
            continue
        if not sim.config.resnapshot_existing and (entry.type, entry.raw_code) in old:
            continue
        event = _snapshot_event(sim, entry)
        if event is not None:
            body = sim.encode_event(event, entry, simple=simple, stream="SNAPSHOT")
            conn.send_data(entry.type, body)


def _send_stale(sim: Simulator, conn: SimConnection, request: Subscribe) -> None:
    """Fault knob: let a few frames of the old subscription arrive after the new request.

    On the wire 0-2 frames of the old set still arrive after a resubscribe (section 3.2,
    PROBE); ``stale_frames_after_resubscribe`` reproduces that for clients to cope with.
    """
    budget = sim.config.stale_frames_after_resubscribe
    new = {(e.type, e.code) for e in request.entries}
    simple = is_simple_format(conn.format)
    for entry in conn.entries:
        if budget <= 0:
            return
        if (entry.type, entry.code) in new or entry.type in ("myOrder", "myAsset"):
            continue
        event = _snapshot_event(sim, entry)
        if event is not None:
            conn.send_data(
                entry.type, sim.encode_event(event, entry, simple=simple, stream="REALTIME")
            )
            budget -= 1


def _snapshot_event(sim: Simulator, entry: Entry) -> MarketEvent | None:
    """Build the SNAPSHOT source of an entry from the model's current state (section 4)."""
    state = sim.model.states[entry.code]
    now_ms = int(sim.wall_time() * 1000)
    if entry.type == "ticker":
        ticker = state.ticker()
        return None if ticker is None else MarketEvent("ticker", entry.code, now_ms, ticker)
    if entry.type == "trade":
        trade = state.last_trade
        return None if trade is None else MarketEvent("trade", entry.code, now_ms, trade)
    if entry.type == "orderbook":
        return MarketEvent("orderbook", entry.code, now_ms, state.book())
    if entry.type in CANDLE_UNITS:
        # The candle snapshot is the latest existing candle, however old (section 4.4).
        candle = sim.model.latest_candle(entry.code, entry.type)
        if candle is None:
            return None
        return MarketEvent(entry.type, entry.code, candle.timestamp, candle)
    return None


def rebuild_flood(sim: Simulator, conn: SimConnection) -> None:
    """Pre-encode the flood chunk for the connection's current subscription and format."""
    kinds = ("ticker", "trade", "orderbook", "candle")
    weights_by_type = dict(zip(kinds, sim.config.flood_mix, strict=True))
    payloads: list[tuple[str, bytes]] = []
    weights: list[float] = []
    simple = is_simple_format(conn.format)
    listed = is_list_format(conn.format)
    per_entry = max(1, sim.config.flood_frames // max(1, len(conn.entries)))
    for entry in conn.entries:
        if entry.code not in sim.model.states:
            continue
        base = _snapshot_event(sim, entry)
        if base is None:
            continue
        weight = weights_by_type["candle" if entry.type.startswith("candle.") else entry.type]
        variants = min(per_entry, 64)
        for i in range(variants):
            data = base.data
            if isinstance(data, Trade):
                # Distinct ids within the pool; the pool itself repeats (docs: flood mode).
                data = dataclasses.replace(data, sequential_id=data.sequential_id + i + 1)
            event = MarketEvent(base.type, base.code, base.timestamp + i, data)
            body = sim.encode_event(event, entry, simple=simple, stream="REALTIME")
            payloads.append((entry.type, wrap_list([body]) if listed else body))
            weights.append(weight / variants)
    conn.flood_chunk = build_chunk(
        payloads,
        weights,
        frames=sim.config.flood_frames,
        chunk_bytes=sim.config.flood_chunk_bytes,
        seed=sim.config.seed,
    )
    conn.flood_dirty = False
    conn.wake()
