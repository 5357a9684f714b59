"""Faults and introspection, through the control HTTP API and the Python API."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.simulator.conftest import MakeSim
from tests.simulator.helpers import client, closed_without_frame, recv_json, request, settle
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.simulator import Simulator

TICKER = request({"ticket": "t"}, {"type": "ticker", "codes": ["KRW-BTC"]}, {"format": "SIMPLE"})


async def _control(http: aiohttp.ClientSession, sim: Simulator, path: str, body: Any = None) -> Any:
    async with http.post(f"{sim.url}/_sim{path}", json=body or {}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_abort_drops_without_close_frame(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """POST /_sim/faults/abort drops connections with no close frame (1006 at the client)."""
    async with client(sim.ws_url) as ws:
        await ws.send(TICKER)
        await recv_json(ws)
        assert await _control(http, sim, "/faults/abort") == {"ok": True, "affected": 1}
        await closed_without_frame(ws)


async def test_abort_one_connection_by_id(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Aborting one connection id leaves the others streaming."""
    async with client(sim.ws_url) as first, client(sim.ws_url) as second:
        await first.send(TICKER)
        await second.send(TICKER)
        await recv_json(first)
        await recv_json(second)
        ids = [c.id for c in sim.connections()]
        await _control(http, sim, "/faults/abort", {"connection": ids[0]})
        await closed_without_frame(first)
        await second.send(request({"ticket": "t"}, {"method": "LIST_SUBSCRIPTIONS"}))
        assert "mthd" in await recv_json(second)


async def test_clean_close_with_code(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """POST /_sim/faults/close closes cleanly with the given code (default 1000)."""
    async with client(sim.ws_url) as ws:
        await settle_connections(sim, 1)
        await _control(http, sim, "/faults/close", {"code": 4001})
        await ws.wait_closed()
        assert ws.close_code == 4001
    async with client(sim.ws_url) as ws:
        await settle_connections(sim, 1)
        assert sim.close() == 1
        await ws.wait_closed()
        assert ws.close_code == 1000


async def settle_connections(sim: Simulator, count: int) -> None:
    """Wait until the simulator has ``count`` open connections."""
    async with asyncio.timeout(3):
        await sim.wait_for(lambda: len(sim.connections()) == count)


async def test_blackhole_stops_frames_and_pongs(
    make_sim: MakeSim, http: aiohttp.ClientSession
) -> None:
    """A blackhole sends no frame and no pong for N s; afterwards frames and pongs flow again."""
    async with make_sim(status_interval=0.05) as sim, client(sim.ws_url, ping_interval=None) as ws:
        await ws.send("PING")
        assert await recv_json(ws) == {"status": "UP"}
        received = 1
        conn = sim.connections()[0]
        loop = asyncio.get_running_loop()
        # Set and read on the server's own loop in one step: no time passes in between.
        assert sim.blackhole(0.4) == 1
        until = conn.blackhole_until
        sent_before = conn.counters.frames_by_type["status"]
        pong = await ws.ping()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.25):
                await asyncio.shield(pong)
        # Statuses sent before the blackhole may still be in flight; the next one is sent
        # only once the blackhole is over.
        while received <= sent_before:
            assert await recv_json(ws) == {"status": "UP"}
            received += 1
        assert await recv_json(ws) == {"status": "UP"}
        assert loop.time() >= until
        assert conn.counters.dropped_blackhole > 0
        async with asyncio.timeout(2):
            await (await ws.ping())
        # The control API sets the same fault.
        answer = await _control(http, sim, "/faults/blackhole", {"seconds": 0.01})
        assert answer == {"ok": True, "affected": 1} and conn.blackhole_until > until


async def test_delay_holds_every_frame(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """POST /_sim/faults/delay delays every frame by N ms."""
    async with client(sim.ws_url) as ws:
        await settle_connections(sim, 1)
        await _control(http, sim, "/faults/delay", {"ms": 300})
        loop = asyncio.get_running_loop()
        start = loop.time()
        await ws.send(request({"ticket": "t"}, {"method": "LIST_SUBSCRIPTIONS"}))
        assert (await recv_json(ws))["method"] == "LIST_SUBSCRIPTIONS"
        # Queued at or after ``start``, written 300 ms after it was queued.
        assert loop.time() - start >= 0.3 - 1e-6
        sim.delay(0)


async def test_inject_error_then_close(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """POST /_sim/faults/error sends an Upbit error frame, then close 1000 (section 7.3)."""
    async with client(sim.ws_url) as ws:
        await settle_connections(sim, 1)
        await _control(http, sim, "/faults/error", {"name": "NO_TICKET"})
        error = await recv_json(ws)
        assert error == {
            "error": {"name": "NO_TICKET", "message": "티켓이 존재하지 않거나, 유효하지 않습니다."}
        }
        await ws.wait_closed()
        assert ws.close_code == 1000
    assert sim.statistics().errors_sent == {"NO_TICKET": 1}


async def test_refuse_with_status_then_recover(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """POST /_sim/faults/refuse answers handshakes with the status for N s, then accepts."""
    loop = asyncio.get_running_loop()
    start = loop.time()  # before the call: the refusal starts at or after it
    await _control(http, sim, "/faults/refuse", {"seconds": 0.3, "status": 503})
    with pytest.raises(InvalidStatus) as info:
        async with client(sim.ws_url):
            pass
    assert info.value.response.status_code == 503
    async with asyncio.timeout(3):
        await sim.wait_for(lambda: sim.refusing() is None)
    assert loop.time() - start >= 0.3 - 1e-6
    async with client(sim.ws_url) as ws:
        await ws.send(TICKER)
        assert (await recv_json(ws))["cd"] == "KRW-BTC"


async def test_refuse_tcp_then_reopen(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Refusing by TCP closes the listening socket for N s; the same port reopens after."""
    sim.refuse(0.3, how="tcp")
    with pytest.raises(OSError):
        async with client(sim.ws_url):
            pass
    async with asyncio.timeout(3):
        await sim.wait_for(lambda: sim.listening)
    async with client(sim.ws_url) as ws:
        await ws.send(TICKER)
        assert (await recv_json(ws))["cd"] == "KRW-BTC"


async def test_restart_drops_all_and_listens_again(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """POST /_sim/faults/restart drops every connection and serves again on the same port."""
    port = sim.port
    async with client(sim.ws_url) as ws:
        await ws.send(TICKER)
        await recv_json(ws)
        await _control(http, sim, "/faults/restart", {})
        await closed_without_frame(ws)
    assert sim.port == port
    async with asyncio.timeout(3):
        while True:
            try:
                async with client(sim.ws_url) as again:
                    await again.send(TICKER)
                    assert (await recv_json(again))["cd"] == "KRW-BTC"
                    break
            except OSError:
                await sim.wait_for(lambda: sim.listening)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "not_object"])
async def test_malformed_binary_frame(
    sim: Simulator, http: aiohttp.ClientSession, kind: str
) -> None:
    """POST /_sim/faults/malformed sends a binary frame that is not a valid JSON object."""
    async with client(sim.ws_url) as ws:
        await settle_connections(sim, 1)
        await _control(http, sim, "/faults/malformed", {"kind": kind})
        data = await ws.recv()
        assert isinstance(data, bytes)
        with pytest.raises((orjson.JSONDecodeError, AssertionError)):
            assert isinstance(orjson.loads(data), dict)


async def test_malformed_text_frame(sim: Simulator) -> None:
    """The 'text' malformed kind sends a TEXT frame, which Upbit never does."""
    async with client(sim.ws_url) as ws:
        await settle_connections(sim, 1)
        sim.send_malformed(kind="text")
        assert isinstance(await ws.recv(), str)


async def test_introspection(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Connections are listable with kind, subscription and format; requests raw and parsed."""
    async with client(sim.ws_url) as ws:
        await ws.send(TICKER)
        await recv_json(ws)
        async with http.get(f"{sim.url}/_sim/connections") as resp:
            listed = (await resp.json())["connections"]
        assert len(listed) == 1
        conn = listed[0]
        assert conn["kind"] == "public" and conn["format"] == "SIMPLE" and conn["open"]
        assert conn["subscription"][0]["type"] == "ticker"
        async with http.get(f"{sim.url}/_sim/connections/{conn['id']}") as resp:
            detail = await resp.json()
        assert detail["requests"][0]["raw"] == TICKER
        assert detail["requests"][0]["parsed"]["kind"] == "subscribe"
        async with http.get(f"{sim.url}/_sim/stats") as resp:
            stats = await resp.json()
        assert stats["connections_accepted"] == 1 and stats["frames_sent"]["ticker"] >= 1
        async with http.get(f"{sim.url}/_sim/connections/999") as resp:
            assert resp.status == 404
        async with http.post(f"{sim.url}/_sim/faults/blackhole", json={"seconds": "x"}) as resp:
            assert resp.status == 400


async def test_control_keys_and_clock(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Keys can be revoked and restored, and a manual clock advanced, over the control API."""
    await _control(http, sim, "/keys/revoke", {})
    assert sim.keys.get(sim.credentials[0]).revoked  # type: ignore[union-attr]
    await _control(http, sim, "/keys/restore", {})
    assert not sim.keys.get(sim.credentials[0]).revoked  # type: ignore[union-attr]
    before = sim.clock.now()
    answer = await _control(http, sim, "/clock/advance", {"seconds": 2.5})
    assert answer["now"] == pytest.approx(before + 2.5)


async def test_closed_connections_stay_listable(sim: Simulator) -> None:
    """A closed connection keeps its id, reason and counters for introspection."""
    async with client(sim.ws_url) as ws:
        await ws.send(TICKER)
        await recv_json(ws)
    await settle(sim, 1)
    async with asyncio.timeout(3):
        await sim.wait_for(lambda: not sim.connections())
    closed = sim.connections(include_closed=True)
    assert [c.id for c in closed] == [1] and not closed[0].open
    with pytest.raises(ConnectionClosed):
        await ws.recv()


async def test_refuse_by_stalling_the_handshake(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """how='stall' accepts TCP but never answers the upgrade: the client's timeout fires."""
    await _control(http, sim, "/faults/refuse", {"seconds": 0.5, "how": "stall"})
    with pytest.raises(TimeoutError):
        async with client(sim.ws_url, open_timeout=0.2):
            pass
    assert sim.statistics().connections_refused == {"stall": 1}
    async with asyncio.timeout(3):
        await sim.wait_for(lambda: sim.refusing() is None)
    async with client(sim.ws_url) as ws:
        await ws.send(TICKER)
        assert (await recv_json(ws))["cd"] == "KRW-BTC"


async def test_refuse_status_none_means_tcp(sim: Simulator) -> None:
    """refuse(seconds, status=None) closes the listening socket, like how='tcp'."""
    sim.refuse(0.3, status=None)
    assert not sim.listening
    async with asyncio.timeout(3):
        await sim.wait_for(lambda: sim.listening)


async def test_advance_on_a_wall_clock_is_a_clear_error() -> None:
    """advance() on a wall-clock simulator raises InvalidInputError saying how to get one."""
    async with Simulator(port=0, krw_markets=3, btc_markets=0, usdt_markets=0) as sim:
        with pytest.raises(InvalidInputError, match="ManualClock"):
            await sim.advance(1.0)
