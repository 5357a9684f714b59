"""The control HTTP API under ``/_sim/``: faults, keys, clock, flood and introspection.

Every fault the Python API offers is one POST away, so scenarios can be scripted from another
process (``curl -XPOST localhost:PORT/_sim/faults/abort``). Bodies are JSON objects; an
omitted ``connection`` means every open connection. Answers are JSON: ``{"ok": true,
"affected": N}`` for faults, or the requested data. See ``docs/simulator.md`` for the table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import web

from upbit_ws.simulator.clock import ManualClock

if TYPE_CHECKING:
    from upbit_ws.simulator.server import Simulator

__all__ = ["CONTROL_PREFIX", "add_control_routes"]

CONTROL_PREFIX: Final = "/_sim"
_MALFORMED_KINDS: Final = ("garbage", "truncated", "text", "not_object")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _BadRequest(Exception):
    """A control request with missing or invalid fields."""


def _json(body: object, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _BadRequest("body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise _BadRequest("body must be a JSON object")
    return body


def _number(body: dict[str, Any], name: str, *, default: float | None = None) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _BadRequest(f"{name} must be a non-negative number")
    return float(value)


def _conn(body: dict[str, Any]) -> int | None:
    value = body.get("connection")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadRequest("connection must be an integer id")
    return value


def add_control_routes(app: web.Application, sim: Simulator) -> None:
    """Serve the control API on ``app``."""

    def route(method: str, path: str, action: Callable[[web.Request, dict[str, Any]], Any]) -> None:
        """Register ``action(request, body)`` under ``/_sim{path}`` with JSON in and out."""

        async def handler(request: web.Request) -> web.StreamResponse:
            """Run the action; map bad input to 400 and unknown ids to 404."""
            try:
                body = await _body(request) if method == "POST" else {}
                result = action(request, body)
                if isinstance(result, Awaitable):
                    result = await result
            except _BadRequest as exc:
                return _json({"ok": False, "error": str(exc)}, status=400)
            except KeyError as exc:
                return _json({"ok": False, "error": f"unknown connection or key {exc}"}, status=404)
            if isinstance(result, web.StreamResponse):
                return result
            if isinstance(result, int) and not isinstance(result, bool):
                return _json({"ok": True, "affected": result})
            return _json(result if result is not None else {"ok": True})

        app.router.add_route(method, CONTROL_PREFIX + path, handler)

    route("POST", "/faults/abort", lambda r, b: sim.abort(_conn(b)))
    route(
        "POST",
        "/faults/close",
        lambda r, b: sim.close(_conn(b), code=int(_number(b, "code", default=1000))),
    )
    route("POST", "/faults/blackhole", lambda r, b: sim.blackhole(_number(b, "seconds"), _conn(b)))
    route("POST", "/faults/delay", lambda r, b: sim.delay(_number(b, "ms"), _conn(b)))
    route("POST", "/faults/error", lambda r, b: _error(sim, b))
    route("POST", "/faults/malformed", lambda r, b: _malformed(sim, b))
    route("POST", "/faults/refuse", lambda r, b: _refuse(sim, b))
    route("POST", "/faults/restart", lambda r, b: _restart(sim, r, b))
    route(
        "POST",
        "/flood",
        lambda r, b: sim.set_flood(enabled=bool(b.get("enabled", True)), conn_id=_conn(b)),
    )
    route("POST", "/keys/revoke", lambda r, b: sim.revoke_key(b.get("access_key")))
    route("POST", "/keys/restore", lambda r, b: sim.restore_key(b.get("access_key")))
    route(
        "POST",
        "/keys/expire",
        lambda r, b: sim.expire_key(
            b.get("access_key"), in_seconds=_number(b, "in_seconds", default=0)
        ),
    )
    route(
        "POST",
        "/orders/fill",
        lambda r, b: _fill(sim, b),
    )
    route("POST", "/clock/advance", lambda r, b: _advance(sim, b))
    route(
        "GET",
        "/connections",
        lambda r, b: {
            "connections": [
                c.describe(with_requests=False)
                for c in sim.connections(include_closed=r.query.get("closed") == "true")
            ]
        },
    )
    route(
        "GET", "/connections/{id}", lambda r, b: sim.connection(_id(r)).describe(with_requests=True)
    )
    route("GET", "/stats", lambda r, b: dataclasses.asdict(sim.statistics()))
    route("GET", "/health", lambda r, b: {"status": "UP", "url": sim.url})


def _fill(sim: Simulator, body: dict[str, Any]) -> dict[str, object]:
    volume = body.get("volume")
    try:
        events = sim.fill_order(str(body.get("uuid")), str(volume) if volume is not None else None)
    except (ValueError, ArithmeticError) as exc:
        raise _BadRequest(str(exc)) from exc
    return {"ok": True, "events": events}


def _id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError as exc:
        raise _BadRequest("connection id must be an integer") from exc


def _error(sim: Simulator, body: dict[str, Any]) -> int:
    name = body.get("name", "WRONG_FORMAT")
    message = body.get("message")
    if not isinstance(name, str) or not (message is None or isinstance(message, str)):
        raise _BadRequest("name and message must be strings")
    return sim.inject_error(name, message, _conn(body))


def _malformed(sim: Simulator, body: dict[str, Any]) -> int:
    kind = body.get("kind", "garbage")
    if kind not in _MALFORMED_KINDS:
        raise _BadRequest(f"kind must be one of {', '.join(_MALFORMED_KINDS)}")
    return sim.send_malformed(_conn(body), kind=kind)


def _refuse(sim: Simulator, body: dict[str, Any]) -> dict[str, object]:
    seconds = _number(body, "seconds")
    status = body.get("status", 503)
    how = body.get("how", "tcp" if status is None else "status")
    if how not in ("status", "stall", "tcp"):
        raise _BadRequest("how must be status, stall or tcp")
    if status is None:
        status = 503
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise _BadRequest("status must be an HTTP error status (400-599) or null (tcp)")
    sim.refuse(seconds, how=how, status=status)
    return {"ok": True}


async def _restart(
    sim: Simulator, request: web.Request, body: dict[str, Any]
) -> web.StreamResponse:
    down = _number(body, "down_seconds", default=0)
    # Answer first, then restart, sparing this request's own connection.
    response = _json({"ok": True})
    await response.prepare(request)
    await response.write_eof()
    sim.spawn(sim.restart(down_seconds=down, spare=request.transport), name="sim-restart")
    return response


async def _advance(sim: Simulator, body: dict[str, Any]) -> dict[str, object]:
    if not isinstance(sim.clock, ManualClock):
        raise _BadRequest("the simulator runs on the wall clock; start it with a manual clock")
    await sim.advance(_number(body, "seconds"))
    return {"ok": True, "now": sim.clock.now()}
