"""Behaviours the reference marks [UNSURE]: defaults and the alternatives the config offers."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.simulator.conftest import MakeSim
from tests.simulator.helpers import (
    client,
    closed_without_frame,
    recv_json,
    recv_until,
    request,
    rest_headers,
    settle,
    token,
)
from upbit_ws.simulator import Simulator

T = {"ticket": "k"}
LIST = request(T, {"method": "LIST_SUBSCRIPTIONS"})


async def test_same_seed_same_frames(make_sim: MakeSim) -> None:
    """Two simulators with the same seed send the same bytes for the same simulated time."""
    streams = []
    for _ in range(2):
        async with make_sim(seed=42) as sim, client(sim.ws_url) as ws:
            await ws.send(request(T, {"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"]}))
            await settle(sim, 1)
            await sim.advance(3.0)
            await ws.send(LIST)
            frames = []
            while b"LIST_SUBSCRIPTIONS" not in (data := await ws.recv()):
                frames.append(data)
            streams.append(frames)
    assert len(streams[0]) > 5
    assert streams[0] == streams[1]


async def test_both_flags_default_sends_nothing(make_sim: MakeSim) -> None:
    """is_only_snapshot and is_only_realtime together send nothing by default; 'both' sends all."""
    both = {
        "type": "trade",
        "codes": ["KRW-BTC"],
        "is_only_snapshot": True,
        "is_only_realtime": True,
    }
    async with make_sim() as sim, client(sim.ws_url) as ws:
        await ws.send(request(T, both))
        await settle(sim, 1)
        await sim.advance(3.0)
        await ws.send(LIST)
        _, frames = await recv_until(ws, lambda f: "method" in f)
        assert frames == []
    async with make_sim(both_flags="both") as sim, client(sim.ws_url) as ws:
        await ws.send(request(T, both))
        assert (await recv_json(ws))["stream_type"] == "SNAPSHOT"


async def test_resnapshot_existing_codes_can_be_turned_off(make_sim: MakeSim) -> None:
    """By default a resubscribe re-sends SNAPSHOTs of kept codes; the knob turns that off."""
    sub = request(T, {"type": "ticker", "codes": ["KRW-BTC"]})
    for resnapshot, expected in ((True, ["SNAPSHOT"]), (False, [])):
        async with make_sim(resnapshot_existing=resnapshot) as sim, client(sim.ws_url) as ws:
            await ws.send(sub)
            await recv_json(ws)
            await ws.send(sub)
            await ws.send(LIST)
            _, frames = await recv_until(ws, lambda f: "method" in f)
            assert [f["stream_type"] for f in frames] == expected


async def test_list_batch_and_echo_knobs(make_sim: MakeSim) -> None:
    """list_batch packs objects into one *_LIST frame; LIST echoes suffixes and flags if asked."""
    async with (
        make_sim(list_batch=3, list_echo_depth_suffix=True, list_echo_flags=True) as sim,
        client(sim.ws_url) as ws,
    ):
        codes = ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
        await ws.send(request(T, {"type": "ticker", "codes": codes}, {"format": "JSON_LIST"}))
        await settle(sim, 1)
        frame = await recv_json(ws)
        # The three snapshots are queued by one request, so they leave in one frame.
        assert isinstance(frame, list) and [f["code"] for f in frame] == codes
        book = {"type": "orderbook", "codes": ["KRW-BTC.5"], "is_only_realtime": True}
        await ws.send(request(T, book, {"format": "DEFAULT"}))
        await ws.send(LIST)
        listed, _ = await recv_until(ws, lambda f: isinstance(f, dict) and "method" in f)
        assert listed["result"] == [
            {"type": "orderbook", "codes": ["KRW-BTC.5"], "level": 0, "is_only_realtime": True}
        ]


async def test_stale_frames_after_resubscribe(make_sim: MakeSim) -> None:
    """With the knob on, a frame of the old set arrives after the new request (section 3.2)."""
    async with make_sim(stale_frames_after_resubscribe=1) as sim, client(sim.ws_url) as ws:
        await ws.send(request(T, {"type": "ticker", "codes": ["KRW-BTC"]}))
        await recv_json(ws)
        await ws.send(request(T, {"type": "ticker", "codes": ["KRW-ETH"]}))
        stale = await recv_json(ws)
        fresh = await recv_json(ws)
        assert (stale["code"], stale["stream_type"]) == ("KRW-BTC", "REALTIME")
        assert (fresh["code"], fresh["stream_type"]) == ("KRW-ETH", "SNAPSHOT")


async def test_camel_case_flags_ignored_when_disabled(make_sim: MakeSim) -> None:
    """With accept_camel_case_flags off, isOnlyRealtime is ignored and a SNAPSHOT comes."""
    async with make_sim(accept_camel_case_flags=False) as sim, client(sim.ws_url) as ws:
        await ws.send(request(T, {"type": "ticker", "codes": ["KRW-BTC"], "isOnlyRealtime": True}))
        assert (await recv_json(ws))["stream_type"] == "SNAPSHOT"


async def test_unsupported_level_is_silent(make_sim: MakeSim) -> None:
    """A level on a BTC market or off the allowed list gives no data and no error (KR host)."""
    async with make_sim() as sim, client(sim.ws_url) as ws:
        await ws.send(
            request(T, {"type": "orderbook", "codes": ["BTC-ETH", "KRW-BTC"], "level": 7})
        )
        await ws.send(LIST)
        listed, frames = await recv_until(ws, lambda f: "method" in f)
        assert frames == [] and listed["result"] == []


async def test_binary_requests_accepted_or_refused(make_sim: MakeSim) -> None:
    """Binary request frames are served by default; with the knob off they are WRONG_FORMAT."""
    sub = request(T, {"type": "ticker", "codes": ["KRW-BTC"]}).encode()
    async with make_sim() as sim, client(sim.ws_url) as ws:
        await ws.send(sub)
        assert (await recv_json(ws))["type"] == "ticker"
    async with make_sim(accept_binary_requests=False) as sim, client(sim.ws_url) as ws:
        await ws.send(sub)
        assert (await recv_json(ws))["error"]["name"] == "WRONG_FORMAT"


async def _drive_market(sim: Simulator, *, seconds: float) -> None:
    """Step the manual clock every 50 ms of loop time for ``seconds``: frames keep flowing."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end and sim.connections():
        await sim.advance(0.5)
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("mode", ["both", "inbound"])
async def test_idle_mode_decides_whether_outbound_frames_count(
    make_sim: MakeSim, mode: str
) -> None:
    """idle_mode='both' counts the server's data frames as activity; 'inbound' does not (6)."""
    timeout = 0.4
    async with (
        make_sim(idle_timeout=timeout, idle_mode=mode) as sim,
        client(sim.ws_url, ping_interval=None) as ws,
    ):
        await ws.send(request(T, {"type": "orderbook", "codes": ["KRW-BTC", "KRW-ETH"]}))
        await settle(sim, 1)
        conn = sim.connections()[0]
        await _drive_market(sim, seconds=2 * timeout)
        assert conn.counters.frames_by_type["orderbook"] > 5
        if mode == "both":
            assert conn.open
        else:
            async with asyncio.timeout(3):
                await sim.wait_for(lambda: not conn.open)
            assert conn.closed_reason == "idle"


@pytest.mark.parametrize("keeps_alive", [False, True])
async def test_status_frames_count_as_activity_only_when_configured(
    make_sim: MakeSim, *, keeps_alive: bool
) -> None:
    """One PING does not keep a socket alive by default; status_keeps_alive=True makes it so."""
    timeout = 0.4
    async with (
        make_sim(idle_timeout=timeout, status_interval=0.05, status_keeps_alive=keeps_alive) as sim,
        client(sim.ws_url, ping_interval=None) as ws,
    ):
        await ws.send("PING")
        await settle(sim, 1)
        conn = sim.connections()[0]
        loop = asyncio.get_running_loop()
        start = loop.time()
        if keeps_alive:
            while loop.time() - start < 2 * timeout:
                await recv_json(ws)
            assert conn.open
        else:
            await closed_without_frame(ws)
            assert conn.closed_reason == "idle"
        assert conn.counters.frames_by_type["status"] >= 3


async def test_ping_counts_as_message_when_configured(make_sim: MakeSim) -> None:
    """With ping_counts_as_message, text PINGs use up the message limit (section 14 q5)."""
    limits = {"messages_per_second": 2, "rate_window_second": 30.0}
    async with make_sim(**limits, ping_counts_as_message=True) as sim, client(sim.ws_url) as ws:
        for _ in range(3):
            await ws.send("PING")
        error, _ = await recv_until(ws, lambda f: "error" in f)  # a status may come first
        assert error["error"]["name"] == "TOO_MANY_REQUEST"
        assert sim.statistics().messages_over_limit == 1
    async with make_sim(**limits) as sim, client(sim.ws_url) as ws:
        for _ in range(3):
            await ws.send("PING")
        await ws.send(LIST)
        _, before = await recv_until(ws, lambda f: f.get("method") == "LIST_SUBSCRIPTIONS")
        assert all(f == {"status": "UP"} for f in before)
        assert sim.statistics().messages_over_limit == 0


async def test_my_asset_delay_counts_from_the_first_my_asset_subscription(
    make_sim: MakeSim, http: aiohttp.ClientSession
) -> None:
    """myAsset flows my_asset_start_delay after the first myAsset subscription, not the connect."""
    delay = 0.3
    async with make_sim(my_asset_start_delay=delay) as sim:
        headers = {"Authorization": f"Bearer {token(*sim.credentials)}"}
        async with client(sim.private_ws_url, additional_headers=headers) as ws:
            loop = asyncio.get_running_loop()
            await ws.send(request(T, {"type": "myOrder"}))
            await settle(sim, 1)
            await asyncio.sleep(delay + 0.05)  # the socket and its first request are older
            subscribed = loop.time()
            await ws.send(request(T, {"type": "myOrder"}, {"type": "myAsset"}))
            await settle(sim, 2)
            settled = loop.time()
            await _market_buy(http, sim)
            assert loop.time() - subscribed < delay, "the order came too late to tell"
            await ws.send(LIST)
            _, frames = await recv_until(ws, lambda f: f.get("method") == "LIST_SUBSCRIPTIONS")
            assert frames and {f["type"] for f in frames} == {"myOrder"}
            await asyncio.sleep(max(0.0, settled + delay - loop.time()))
            await _market_buy(http, sim)
            asset, _ = await recv_until(ws, lambda f: f.get("type") == "myAsset")
            assert asset["stream_type"] == "REALTIME"


async def _market_buy(http: aiohttp.ClientSession, sim: Simulator) -> None:
    body = {"market": "KRW-BTC", "side": "bid", "price": "10000", "ord_type": "price"}
    headers = rest_headers(sim.credentials, body)
    async with http.post(f"{sim.url}/v1/orders", json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()


@pytest.mark.parametrize(
    ("mode", "error"), [("invalid_auth", "INVALID_AUTH"), ("unsupported_type", "INVALID_PARAM")]
)
async def test_private_on_public_errors(make_sim: MakeSim, mode: str, error: str) -> None:
    """A private type on the public path is INVALID_AUTH, or INVALID_PARAM when configured."""
    async with make_sim(private_on_public=mode) as sim, client(sim.ws_url) as ws:
        await ws.send(request(T, {"type": "myAsset"}, {"type": "ticker", "codes": ["KRW-BTC"]}))
        assert (await recv_json(ws))["error"]["name"] == error


async def test_private_on_public_ignored(make_sim: MakeSim) -> None:
    """private_on_public='ignore' drops the private entry silently and serves the rest."""
    async with make_sim(private_on_public="ignore") as sim, client(sim.ws_url) as ws:
        await ws.send(request(T, {"type": "myOrder"}, {"type": "ticker", "codes": ["KRW-BTC"]}))
        assert (await recv_json(ws))["type"] == "ticker"
        await ws.send(LIST)
        listed, _ = await recv_until(ws, lambda f: "method" in f)
        assert listed["result"] == [{"type": "ticker", "codes": ["KRW-BTC"]}]


async def test_send_queue_limit_drops_a_slow_client(make_sim: MakeSim) -> None:
    """More frames queued than send_queue_limit drop the connection without a close frame."""
    async with make_sim(send_queue_limit=16) as sim, client(sim.ws_url) as ws:
        sim.delay(10_000)  # every frame waits in the queue
        many = [m.market for m in sim.model.listing if m.market.startswith("KRW-")][:20]
        await ws.send(request(T, {"type": "ticker", "codes": many}))
        await closed_without_frame(ws)
    assert sim.connections(include_closed=True)[-1].closed_reason == "slow_client"


async def test_connect_block_max_and_memory(make_sim: MakeSim) -> None:
    """418 blocks double up to connect_block_max; connect_block_memory of quiet resets them."""
    async with make_sim(
        connect_per_second=1,
        connect_429s_before_block=1,
        connect_block=1.0,
        connect_block_max=2.5,
        connect_block_memory=5.0,
    ) as sim:
        limiter = sim.connect_limiter("ip:203.0.113.7")  # decided on explicit times

        def burst(now: float) -> tuple[list[int], float]:
            decisions = [limiter.check(now) for _ in range(3)]
            return [d.status for d in decisions], decisions[-1].blocked_for

        assert burst(0.0) == ([101, 429, 418], 1.0)
        assert burst(1.5) == ([101, 429, 418], 2.0)
        assert burst(4.0) == ([101, 429, 418], 2.5)  # 4.0 capped by connect_block_max
        # More than connect_block_memory after the block ended: the escalation starts over.
        assert burst(6.5 + 5.1) == ([101, 429, 418], 1.0)


async def test_subscribe_delay_holds_a_request_back_but_keeps_order(make_sim: MakeSim) -> None:
    """subscribe_delay: a request's snapshot comes no sooner than the delay after it, two
    requests take effect in the order sent (the second replaces the first), and
    LIST_SUBSCRIPTIONS answers at once, still with the old state."""
    delay = 0.3
    async with make_sim(subscribe_delay=delay) as sim, client(sim.ws_url) as ws:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await ws.send(request(T, {"type": "ticker", "codes": ["KRW-BTC"]}))
        await ws.send(LIST)
        answer, early = await recv_until(ws, lambda f: f.get("method") == "LIST_SUBSCRIPTIONS")
        assert early == [] and not answer["result"]
        await ws.send(request(T, {"type": "ticker", "codes": ["KRW-ETH"]}))
        first, _ = await recv_until(ws, lambda f: f.get("type") == "ticker")
        assert loop.time() - sent >= delay
        assert (first["code"], first["stream_type"]) == ("KRW-BTC", "SNAPSHOT")
        second, _ = await recv_until(
            ws, lambda f: f.get("type") == "ticker" and f["code"] == "KRW-ETH"
        )
        assert second["stream_type"] == "SNAPSHOT"
        await ws.send(LIST)
        answer, _ = await recv_until(ws, lambda f: f.get("method") == "LIST_SUBSCRIPTIONS")
        assert [e["codes"] for e in answer["result"]] == [["KRW-ETH"]]
