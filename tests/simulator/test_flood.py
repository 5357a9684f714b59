"""Flood mode: pre-encoded frames of the subscription, written as fast as the socket drains."""

from __future__ import annotations

import aiohttp
import orjson

from tests.simulator.conftest import MakeSim
from tests.simulator.helpers import client, request, settle
from upbit_ws.simulator.flood import build_chunk, server_frame

SUB = request(
    {"ticket": "f"},
    {"type": "ticker", "codes": ["KRW-BTC"]},
    {"type": "trade", "codes": ["KRW-ETH"]},
)


def test_server_frame_headers() -> None:
    """Server frames are unmasked FIN+BINARY with 7-bit, 16-bit or 64-bit lengths (RFC 6455)."""
    assert server_frame(b"x" * 5)[:2] == b"\x82\x05"
    assert server_frame(b"x" * 300)[:4] == b"\x82\x7e\x01\x2c"
    assert server_frame(b"x" * 70000)[:2] == b"\x82\x7f"


def test_chunk_holds_whole_frames() -> None:
    """A chunk is a run of whole frames, at least chunk_bytes long, with per-type counts."""
    chunk = build_chunk(
        [("trade", b"{}"), ("ticker", b"[]")], [1, 1], frames=10, chunk_bytes=1024, seed=0
    )
    assert len(chunk.data) >= 1024 and len(chunk.data) == chunk.frames * 4
    assert sum(n for _, n in chunk.by_type) == chunk.frames


async def test_flood_mode_streams_valid_subscribed_frames(make_sim: MakeSim) -> None:
    """With flood on, a client gets a torrent of valid frames of exactly its subscription."""
    async with make_sim(flood=True) as sim, client(sim.ws_url) as ws:
        await ws.send(SUB)
        seen = set()
        for _ in range(5000):
            data = await ws.recv()
            assert isinstance(data, bytes)
            frame = orjson.loads(data)
            seen.add((frame["type"], frame["code"]))
        assert seen == {("ticker", "KRW-BTC"), ("trade", "KRW-ETH")}
        assert sim.connections()[0].counters.flood_frames >= 5000


async def test_flood_toggled_over_control_api(
    make_sim: MakeSim, http: aiohttp.ClientSession
) -> None:
    """POST /_sim/flood switches a connection to flood mode and back."""
    async with make_sim() as sim, client(sim.ws_url) as ws:
        await ws.send(SUB)
        await settle(sim, 1)
        async with http.post(f"{sim.url}/_sim/flood", json={"enabled": True}) as resp:
            assert (await resp.json())["affected"] == 1
        for _ in range(3000):
            await ws.recv()
        async with http.post(f"{sim.url}/_sim/flood", json={"enabled": False}) as resp:
            assert resp.status == 200
        assert not sim.connections()[0].flood
