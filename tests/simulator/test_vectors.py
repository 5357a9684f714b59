"""Conformance: the simulator's frames and REST bodies have the keys of real Upbit captures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.simulator.helpers import client, recv_json, request, rest_headers
from upbit_ws.simulator import Simulator

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (VECTORS / name).read_text().splitlines() if line]


# The JKorf orderbook fixture was trimmed (no level, no stream_type); real frames carry both.
FRAMES = [v for v in _load("frames.jsonl") if v["id"] != "fixture-orderbook-jkorf"]


@pytest.mark.parametrize("vector", FRAMES, ids=[v["id"] for v in FRAMES])
async def test_frame_keys_match_real_frames(sim: Simulator, vector: dict[str, Any]) -> None:
    """A DEFAULT frame of the same type carries exactly the keys of the real frame."""
    real = json.loads(vector["frame"])
    async with client(sim.ws_url) as ws:
        await ws.send(request({"ticket": "v"}, {"type": real["type"], "codes": [real["code"]]}))
        ours = await recv_json(ws)
    assert set(ours) == set(real)
    if real["type"] == "orderbook":
        assert set(ours["orderbook_units"][0]) == set(real["orderbook_units"][0])


REST = {v["id"]: v for v in _load("rest.jsonl")}


async def test_rest_ticks_keys_match(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """/v1/trades/ticks items carry the keys of the real capture."""
    real = json.loads(REST["rest-trades-ticks-maxt"]["body"])[0]
    async with http.get(f"{sim.url}/v1/trades/ticks", params={"market": "KRW-BTC"}) as resp:
        ours = (await resp.json())[0]
    assert set(ours) == set(real)


async def test_rest_market_all_keys_match(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """/v1/market/all?is_details=true rows carry the keys of the KR capture."""
    real = json.loads(REST["rest-market-all-kr-capture"]["body"])[0]
    async with http.get(f"{sim.url}/v1/market/all", params={"is_details": "true"}) as resp:
        ours = (await resp.json())[0]
    assert set(ours) == set(real)
    assert set(ours["market_event"]["caution"]) == set(real["market_event"]["caution"])


async def test_order_bodies_keys_match(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Limit (wait), market buy (cancel) and market sell (done) bodies have the real keys."""

    async def post(body: dict[str, str]) -> dict[str, Any]:
        headers = rest_headers(sim.credentials, body)
        async with http.post(f"{sim.url}/v1/orders", json=body, headers=headers) as resp:
            assert resp.status == 201
            return dict(await resp.json())

    async def get(uuid: str) -> dict[str, Any]:
        headers = rest_headers(sim.credentials, {"uuid": uuid})
        async with http.get(f"{sim.url}/v1/order", params={"uuid": uuid}, headers=headers) as resp:
            return dict(await resp.json())

    limit = await post(
        {
            "market": "KRW-BTC",
            "side": "bid",
            "volume": "0.0005",
            "price": "10000000",
            "ord_type": "limit",
        }
    )
    buy = await get(
        (await post({"market": "KRW-BTC", "side": "bid", "price": "10000", "ord_type": "price"}))[
            "uuid"
        ]
    )
    sell = await get(
        (await post({"market": "KRW-BTC", "side": "ask", "volume": "0.001", "ord_type": "market"}))[
            "uuid"
        ]
    )
    expected = {
        "rest-orders-uuids-upbeat": limit,
        "rest-order-market-buy-cancel-upbeat": buy,
        "rest-order-market-sell-done-upbeat": sell,
    }
    for vector_id, ours in expected.items():
        real = json.loads(REST[vector_id]["body"])
        real = real[0] if isinstance(real, list) else real
        assert set(ours) == set(real), vector_id
        assert ours["state"] == real["state"], vector_id
        if "trades" in real:
            assert set(ours["trades"][0]) == set(real["trades"][0])
    accounts_real = json.loads(REST["rest-accounts-upbeat"]["body"])[0]
    async with http.get(f"{sim.url}/v1/accounts", headers=rest_headers(sim.credentials)) as resp:
        assert set((await resp.json())[0]) == set(accounts_real)
