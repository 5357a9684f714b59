"""Behaviours the reference marks [UNSURE]: defaults and the alternatives the config offers."""

from __future__ import annotations

from tests.simulator.conftest import MakeSim
from tests.simulator.helpers import client, recv_json, recv_until, request, settle

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
    """list_batch packs several objects per *_LIST frame; LIST echoes suffixes when asked."""
    async with make_sim(list_batch=3, list_echo_depth_suffix=True) as sim, client(sim.ws_url) as ws:
        codes = ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
        await ws.send(request(T, {"type": "ticker", "codes": codes}, {"format": "JSON_LIST"}))
        await settle(sim, 1)
        frame = await recv_json(ws)
        assert isinstance(frame, list) and 1 <= len(frame) <= 3
        await ws.send(
            request(T, {"type": "orderbook", "codes": ["KRW-BTC.5"]}, {"format": "DEFAULT"})
        )
        await ws.send(LIST)
        listed, _ = await recv_until(ws, lambda f: isinstance(f, dict) and "method" in f)
        assert listed["result"][0]["codes"] == ["KRW-BTC.5"]


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
