"""Exchange REST and the order engine: REST shapes, validation, auth, myOrder/myAsset events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection

from tests.simulator.helpers import (
    client,
    recv_json,
    recv_until,
    request,
    rest_headers,
    settle,
    token,
)
from upbit_ws.simulator import Simulator


@asynccontextmanager
async def private(sim: Simulator) -> AsyncIterator[ClientConnection]:
    """Open a private socket subscribed to myOrder and myAsset."""
    headers = {"Authorization": f"Bearer {token(*sim.credentials)}"}
    async with client(sim.private_ws_url, additional_headers=headers) as ws:
        before = sim.requests_received
        await ws.send(request({"ticket": "p"}, {"type": "myOrder"}, {"type": "myAsset"}))
        await settle(sim, before + 1)
        yield ws


async def _post(
    http: aiohttp.ClientSession, sim: Simulator, body: dict[str, Any]
) -> tuple[int, Any]:
    headers = rest_headers(sim.credentials, body)
    async with http.post(f"{sim.url}/v1/orders", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def _get(
    http: aiohttp.ClientSession, sim: Simulator, path: str, params: dict[str, str] | None = None
) -> tuple[int, Any]:
    headers = rest_headers(sim.credentials, params)
    async with http.get(f"{sim.url}{path}", params=params, headers=headers) as resp:
        return resp.status, await resp.json()


def _best(sim: Simulator, side: str) -> Decimal:
    state = sim.model.states["KRW-BTC"]
    price = (state.asks if side == "ask" else state.bids)[0][0]
    return Decimal(price) / Decimal(100_000_000)


async def test_accounts_and_api_keys(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """/v1/accounts has string amounts; /v1/api_keys shows the expiry in KST (9.2, 9.3)."""
    status, accounts = await _get(http, sim, "/v1/accounts")
    assert status == 200
    krw = next(a for a in accounts if a["currency"] == "KRW")
    assert krw == {
        "currency": "KRW", "balance": "100000000", "locked": "0", "avg_buy_price": "0",
        "avg_buy_price_modified": True, "unit_currency": "KRW",
    }  # fmt: skip
    status, keys = await _get(http, sim, "/v1/api_keys")
    assert status == 200
    assert keys[0]["access_key"] == sim.credentials[0]
    assert keys[0]["expire_at"].endswith("+09:00")


async def test_limit_order_rest_shape_events_and_cancel(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A resting limit bid: REST shape, wait/cancel myOrder, myAsset lock/unlock, open/closed."""
    price = str(_best(sim, "bid") - 100_000)
    async with private(sim) as ws:
        status, order = await _post(
            http, sim, {"market": "KRW-BTC", "side": "bid", "volume": "0.001", "price": price,
                        "ord_type": "limit", "identifier": "my-1"}
        )  # fmt: skip
        assert status == 201
        assert order["side"] == "bid" and order["ord_type"] == "limit" and order["state"] == "wait"
        assert all(isinstance(v, str) for k, v in order.items() if k != "trades_count")
        assert order["created_at"].endswith("+09:00") and "time_in_force" not in order
        asset = await recv_json(ws)
        assert asset["type"] == "myAsset" and asset["assets"][0]["currency"] == "KRW"
        assert asset["assets"][0]["locked"] > 0
        wait = await recv_json(ws)
        assert (wait["type"], wait["state"], wait["identifier"]) == ("myOrder", "wait", "my-1")
        assert wait["ask_bid"] == "BID" and wait["trade_uuid"] is None and wait["is_maker"] is None
        status, open_orders = await _get(http, sim, "/v1/orders/open", {"market": "KRW-BTC"})
        assert [o["uuid"] for o in open_orders] == [order["uuid"]]
        headers = rest_headers(sim.credentials, {"identifier": "my-1"})
        async with http.delete(
            f"{sim.url}/v1/order", params={"identifier": "my-1"}, headers=headers
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["state"] == "wait"
        cancel, _ = await recv_until(ws, lambda f: f["type"] == "myOrder")
        assert cancel["state"] == "cancel"
        status, closed = await _get(http, sim, "/v1/orders/closed", {"state": "cancel"})
        assert [o["uuid"] for o in closed] == [order["uuid"]]


async def test_market_buy_ends_in_cancel(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A market buy ('price') fills at once and ends 'cancel' without volume keys (vectors)."""
    async with private(sim) as ws:
        status, order = await _post(
            http, sim, {"market": "KRW-BTC", "side": "bid", "price": "10000", "ord_type": "price"}
        )
        assert status == 201
        states = []
        while len(states) < 3:
            frame = await recv_json(ws)
            if frame["type"] == "myOrder":
                states.append(frame["state"])
                if frame["state"] == "trade":
                    assert frame["is_maker"] is False and frame["trade_uuid"]
                    assert frame["volume"] is None
        assert states == ["wait", "trade", "cancel"]
    status, body = await _get(http, sim, "/v1/order", {"uuid": order["uuid"]})
    assert body["state"] == "cancel" and body["ord_type"] == "price"
    assert "volume" not in body and "remaining_volume" not in body and "executed_funds" not in body
    assert len(body["trades"]) == 1 and body["trades"][0]["side"] == "bid"


async def test_market_sell_done_shape(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A market sell ends 'done' with no price and no executed_funds keys (vectors)."""
    status, order = await _post(
        http, sim, {"market": "KRW-BTC", "side": "ask", "volume": "0.01", "ord_type": "market"}
    )
    assert status == 201
    status, body = await _get(http, sim, "/v1/order", {"uuid": order["uuid"]})
    assert body["state"] == "done" and "price" not in body and "executed_funds" not in body
    assert body["executed_volume"] == "0.01" and body["remaining_volume"] == "0"


async def test_resting_order_fills_when_walk_crosses(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A limit ask at the best ask rests, then fills as maker once trades reach its price."""
    price = str(_best(sim, "ask"))
    async with private(sim) as ws:
        status, order = await _post(
            http,
            sim,
            {
                "market": "KRW-BTC",
                "side": "ask",
                "volume": "0.001",
                "price": price,
                "ord_type": "limit",
            },
        )
        assert status == 201
        for _ in range(200):
            if sim.engine.orders[order["uuid"]].state == "done":
                break
            await sim.advance(0.5)
        trade, _ = await recv_until(ws, lambda f: f["type"] == "myOrder" and f["state"] == "trade")
        assert trade["is_maker"] is True and trade["price"] == float(price)
        done, _ = await recv_until(ws, lambda f: f["type"] == "myOrder")
        assert done["state"] == "done"


async def test_order_validation_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Bad orders get Upbit's REST error names: min total, funds, tick, params, market."""

    def limit(volume: str, price: str, market: str = "KRW-BTC") -> dict[str, str]:
        return {
            "market": market,
            "side": "bid",
            "volume": volume,
            "price": price,
            "ord_type": "limit",
        }

    cases = [
        (limit("0.00001", "100000000"), 400, "under_min_total_bid"),
        (limit("100", "100000000"), 400, "insufficient_funds_bid"),
        (limit("0.001", "100000001"), 400, "invalid_price_bid"),
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "limit"}, 400, "validation_error"),
        (limit("1", "1", market="KRW-NOPE"), 404, "market_does_not_exist"),
    ]
    for body, status, name in cases:
        got_status, got = await _post(http, sim, body)
        assert (got_status, got["error"]["name"]) == (status, name)


async def test_rest_auth_failures(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A wrong query_hash, a missing token and a revoked key get 401 with section 9.7 names."""
    params = {"market": "KRW-BTC"}
    headers = rest_headers(sim.credentials, {"market": "KRW-ETH"})
    async with http.get(f"{sim.url}/v1/orders/open", params=params, headers=headers) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["name"] == "invalid_query_payload"
    async with http.get(f"{sim.url}/v1/accounts") as resp:
        assert resp.status == 401
    sim.revoke_key()
    async with http.get(f"{sim.url}/v1/accounts", headers=rest_headers(sim.credentials)) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["name"] == "invalid_access_key"


async def test_fill_order_fills_part_of_a_resting_order(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """sim.fill_order fills part of a resting limit order (trade, still wait), then the rest."""
    async with private(sim) as ws:
        status, order = await _post(
            http,
            sim,
            {
                "market": "KRW-BTC",
                "side": "bid",
                "volume": "0.002",
                "price": "10000000",
                "ord_type": "limit",
            },
        )
        assert status == 201
        uuid = order["uuid"]
        async with http.post(
            f"{sim.url}/_sim/orders/fill", json={"uuid": uuid, "volume": "0.001"}
        ) as resp:
            assert resp.status == 200
        trade, _ = await recv_until(ws, lambda f: f["type"] == "myOrder" and f["state"] == "trade")
        assert trade["executed_volume"] == 0.001 and trade["remaining_volume"] == 0.001
        _, body = await _get(http, sim, "/v1/order", {"uuid": uuid})
        assert body["state"] == "wait" and len(body["trades"]) == 1
        sim.fill_order(uuid)  # the rest
        done, _ = await recv_until(ws, lambda f: f["type"] == "myOrder" and f["state"] == "done")
        assert done["executed_volume"] == 0.002
    async with http.post(f"{sim.url}/_sim/orders/fill", json={"uuid": uuid}) as resp:
        assert resp.status == 400  # finished: nothing rests any more
