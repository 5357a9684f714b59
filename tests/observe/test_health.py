"""The health endpoint over real sockets: verdicts, the manager hook, loopback-only binding."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from tests.aio.connection_helpers import (
    FAST,
    fresh_limiter,
    our_tasks,
    running_sim,
    sim_connection,
    sim_until,
)
from tests.observe.helpers import get, observed
from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.core.config import KeepaliveConfig
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.observe import serve_health
from upbit_ws.observe.server import is_loopback

#: A long pong deadline keeps the suspected socket ``degraded`` for 3 s before it is replaced,
#: so the test reads the endpoint inside that window without racing the replacement; no hedge
#: (a spare socket would take over within milliseconds: the spell would be too short to read).
SLOW_DEATH = replace(
    FAST,
    keepalive=KeepaliveConfig(ping_interval=5.0, pong_timeout=3.0, silence_probe=0.4, hedge=False),
)


async def healthz(url: str) -> tuple[int, dict[str, Any]]:
    """GET ``url/healthz``; return the status and the JSON document."""
    status, content_type, body = await get(url + "/healthz")
    assert content_type == "application/json"
    return status, json.loads(body)


async def test_healthz_is_503_during_a_blackhole_and_200_after_recovery() -> None:
    """A blackholed socket turns /healthz 503 before it is replaced, and 200 once data flows."""
    async with observed(config=SLOW_DEATH) as o:
        o.ws.component("chart").subscribe("ticker", ["KRW-BTC"])
        await o.log.state("public", "open")
        status, doc = await healthz(o.url)
        assert status == 200 and doc["ok"] is True and doc["reasons"] == []
        first = sim_connection(o.sim, "public")
        o.sim.blackhole(60.0, first.id)
        await o.log.state("public", "degraded", within=5)
        status, doc = await healthz(o.url)
        assert o.ws.public.generation == 1, "the socket was replaced before the check"
        assert status == 503 and doc["ok"] is False
        assert "degraded" in str(doc["reasons"]) and "probed" in str(doc["reasons"])
        await o.log.state("public", "reconnecting", within=5)
        await o.log.state("public", "open", within=5)
        status, doc = await healthz(o.url)
        assert status == 200, doc
        public = doc["connections"][0]
        assert public["socket"] == 2 and public["reconnects"] == 1
        assert public["subscription"]["desired"] == {"ticker": ["KRW-BTC"]}


async def test_healthz_is_503_while_a_stream_is_stale() -> None:
    """Issue #9 item 2: data stops while pongs flow: 503 naming the stale stream, then 200."""
    config = replace(
        FAST,
        keepalive=replace(FAST.keepalive, stale_after=1.0),
        timeouts=replace(FAST.timeouts, subscription_change=5.0),
    )
    async with observed(config=config) as o:
        o.ws.component("chart").subscribe("ticker", ["KRW-BTC"])
        await o.log.state("public", "open")
        first = sim_connection(o.sim, "public")
        o.sim.mute(first.id, sticky=True)
        await sim_until(o.sim, lambda: len(first.requests) >= 2, within=10)  # the resubscribe
        status, doc = await healthz(o.url)
        assert o.ws.public.generation == 1, "the socket was replaced before the check"
        assert status == 503 and "stale" in str(doc["reasons"]), doc
        await o.log.state("public", "reconnecting", within=10)
        await o.log.state("public", "open", within=5)


async def test_healthz_reports_each_connection_and_the_key() -> None:
    """With keys, the document lists public and private, the key status and last frame ages."""
    async with observed(keys=True) as o:
        await o.log.state("public", "open", since=0)
        await o.log.state("private", "open", since=0)
        status, doc = await healthz(o.url)
        assert status == 200, doc
        conns = {c["connection"]: c for c in doc["connections"]}
        assert set(conns) == {"public", "private"}
        assert all(c["state"] == "open" and c["ok"] for c in conns.values())
        assert all(c["last_frame_age_seconds"] is not None for c in conns.values())
        assert all(c["since"].endswith("+00:00") for c in conns.values())
        assert doc["key"]["status"] == "valid"


async def test_healthz_is_503_before_start_and_names_why() -> None:
    """A manager that is not running is unhealthy, and the reason says so."""
    async with running_sim() as sim:
        ws = WebSocketManager(base_url=sim.url, config=FAST, connect_limiter=fresh_limiter())
        async with serve_health(ws) as server:
            status, doc = await healthz(server.url)
        assert status == 503
        assert any("not running" in r or "idle" in r for r in doc["reasons"])
        await ws.aclose()


async def test_health_port_binds_a_free_loopback_port_and_stops_with_the_manager() -> None:
    """health_port=0 serves on 127.0.0.1 at a port readable once started; aclose stops it."""
    async with running_sim() as sim:
        ws = WebSocketManager(
            base_url=sim.url, config=FAST, connect_limiter=fresh_limiter(), health_port=0
        )
        server = ws.health_server
        assert server is not None and server.port == 0
        async with ws:
            assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
            status, _, body = await get(server.url + "/")
            assert status == 200 and "/metrics" in body
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(server.url + "/healthz")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.com"])
async def test_a_public_address_is_refused_unless_asked(host: str) -> None:
    """Binding anything but loopback raises InvalidInputError naming allow_public."""
    ws = WebSocketManager(config=FAST, connect_limiter=fresh_limiter())
    with pytest.raises(InvalidInputError, match="allow_public=True"):
        serve_health(ws, host=host)
    await ws.aclose()


async def test_allow_public_binds_every_interface() -> None:
    """allow_public=True binds 0.0.0.0, reachable through loopback."""
    ws = WebSocketManager(config=FAST, connect_limiter=fresh_limiter())
    async with serve_health(ws, host="0.0.0.0", allow_public=True) as server:
        status, _, _ = await get(f"http://127.0.0.1:{server.port}/healthz")
        assert status == 503  # not started: unhealthy, but served
    await ws.aclose()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("myhost", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    """Only 127.0.0.0/8, ::1 and the name localhost count as loopback."""
    assert is_loopback(host) is loopback


async def test_a_port_in_use_is_a_clear_error() -> None:
    """Binding a port already taken raises InvalidInputError, not a bare OSError."""
    ws = WebSocketManager(config=FAST, connect_limiter=fresh_limiter())
    async with serve_health(ws) as taken:
        with pytest.raises(InvalidInputError, match="cannot serve health"):
            await serve_health(ws, port=taken.port).start()
    await ws.aclose()


async def test_a_manager_whose_health_port_is_taken_fails_to_start_cleanly() -> None:
    """start() raises InvalidInputError for a taken health port and leaves no task behind."""
    async with running_sim() as sim:
        holder = WebSocketManager(base_url=sim.url, config=FAST, connect_limiter=fresh_limiter())
        async with serve_health(holder) as taken:
            ws = WebSocketManager(
                base_url=sim.url,
                config=FAST,
                connect_limiter=fresh_limiter(),
                health_port=taken.port,
            )
            with pytest.raises(InvalidInputError, match="cannot serve health"):
                await ws.start()
        await holder.aclose()
    assert our_tasks() == []
