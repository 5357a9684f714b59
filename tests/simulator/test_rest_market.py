"""Quotation REST: shapes of section 9, consistency with the socket, Remaining-Req and 429."""

from __future__ import annotations

import aiohttp
import pytest

from tests.simulator.conftest import MakeSim
from tests.simulator.helpers import client, recv_until, request, rest_headers, settle
from upbit_ws.simulator import Simulator


async def test_market_all_with_and_without_details(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """/v1/market/all lists every market; is_details=true adds market_event (section 9.1)."""
    async with http.get(f"{sim.url}/v1/market/all") as resp:
        plain = await resp.json()
        assert resp.headers["Remaining-Req"].startswith("group=market; min=600; sec=")
    assert plain[0] == {"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin"}
    assert len(plain) == len(sim.model.listing)
    async with http.get(f"{sim.url}/v1/market/all", params={"is_details": "true"}) as resp:
        detailed = await resp.json()
    event = detailed[0]["market_event"]
    assert set(event) == {"warning", "caution"}
    assert set(event["caution"]) == {
        "PRICE_FLUCTUATIONS", "TRADING_VOLUME_SOARING", "DEPOSIT_AMOUNT_SOARING",
        "GLOBAL_PRICE_DIFFERENCES", "CONCENTRATION_OF_SMALL_ACCOUNTS",
    }  # fmt: skip


async def test_trades_ticks_match_socket_and_page_by_cursor(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """REST ticks are the socket's trades, newest first; cursor pages by sequential_id (9.5)."""
    async with client(sim.ws_url) as ws:
        await ws.send(
            request(
                {"ticket": "t"}, {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True}
            )
        )
        await settle(sim, 1)
        await sim.advance(3.0)
        await ws.send(request({"ticket": "t"}, {"method": "LIST_SUBSCRIPTIONS"}))
        _, frames = await recv_until(ws, lambda f: "method" in f)
    ws_ids = [f["sequential_id"] for f in frames]
    assert len(ws_ids) >= 3
    url = f"{sim.url}/v1/trades/ticks"
    async with http.get(url, params={"market": "KRW-BTC", "count": "500"}) as resp:
        ticks = await resp.json()
        assert resp.headers["Remaining-Req"].startswith("group=crix-trades;")
    rest_ids = [t["sequential_id"] for t in ticks]
    assert set(ws_ids) <= set(rest_ids)
    stamps = [t["timestamp"] for t in ticks]
    assert stamps == sorted(stamps, reverse=True)
    first = ticks[0]
    assert set(first) == {
        "market", "trade_date_utc", "trade_time_utc", "timestamp", "trade_price", "trade_volume",
        "prev_closing_price", "change_price", "ask_bid", "sequential_id",
    }  # fmt: skip
    async with http.get(url, params={"market": "KRW-BTC", "count": "2"}) as resp:
        page1 = await resp.json()
    cursor = str(page1[-1]["sequential_id"])
    async with http.get(url, params={"market": "KRW-BTC", "count": "2", "cursor": cursor}) as resp:
        page2 = await resp.json()
    assert [t["sequential_id"] for t in page1 + page2] == rest_ids[:4]


async def test_candles_match_socket(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """REST minute candles are the socket's candles (same window, same close)."""
    async with client(sim.ws_url) as ws:
        await ws.send(request({"ticket": "t"}, {"type": "candle.1m", "codes": ["KRW-BTC"]}))
        await settle(sim, 1)
        await sim.advance(5.0)
        await ws.send(request({"ticket": "t"}, {"method": "LIST_SUBSCRIPTIONS"}))
        _, frames = await recv_until(ws, lambda f: "method" in f)
    last = frames[-1]
    params = {"market": "KRW-BTC", "count": "3"}
    async with http.get(f"{sim.url}/v1/candles/minutes/1", params=params) as resp:
        candles = await resp.json()
    newest = candles[0]
    assert newest["candle_date_time_utc"] == last["candle_date_time_utc"]
    assert newest["trade_price"] == last["trade_price"]
    assert newest["unit"] == 1
    async with http.get(f"{sim.url}/v1/candles/minutes/7", params=params) as resp:
        assert resp.status == 400


async def test_rest_errors_in_upbit_shape(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Unknown path, unknown market and missing market give Upbit's error bodies (9.7)."""
    async with http.get(f"{sim.url}/v1/nothing") as resp:
        assert resp.status == 404
        assert await resp.json() == {
            "error": {"name": "not_found", "message": "no Route matched with those values"}
        }
    async with http.get(f"{sim.url}/v1/trades/ticks", params={"market": "KRW-NOPE"}) as resp:
        assert resp.status == 404
        assert await resp.json() == {"error": {"name": 404, "message": "Code not found"}}
    async with http.get(f"{sim.url}/v1/trades/ticks") as resp:
        assert resp.status == 400


async def test_rest_rate_limit_answers_429(make_sim: MakeSim, http: aiohttp.ClientSession) -> None:
    """Past the group's per-second limit REST answers 429, and sec counts down (section 8.2)."""
    async with make_sim(rest_quotation_per_second=3, rate_window_second=30.0) as sim:
        secs = []
        for _ in range(3):
            async with http.get(f"{sim.url}/v1/market/all") as resp:
                assert resp.status == 200
                secs.append(resp.headers["Remaining-Req"].rsplit("sec=", 1)[1])
        assert secs == ["2", "1", "0"]
        async with http.get(f"{sim.url}/v1/market/all") as resp:
            assert resp.status == 429
            assert (await resp.json())["error"]["name"] == "too_many_requests"
        assert sim.statistics().rest_rate_limited == 1


#: 2026-07-30 00:00:20 UTC: with a minute of history, the trades span two UTC days.
_AFTER_MIDNIGHT = 1_785_369_620.0


async def test_trades_ticks_to_and_days_ago(make_sim: MakeSim, http: aiohttp.ClientSession) -> None:
    """Ticks cover one UTC day: days_ago picks an earlier one, to keeps trades before a time."""
    async with make_sim(
        start_time=_AFTER_MIDNIGHT, history_seconds=60.0, trades_per_second=5.0
    ) as sim:
        url = f"{sim.url}/v1/trades/ticks"

        async def ticks(**params: str) -> list[dict[str, object]]:
            async with http.get(url, params={"market": "KRW-BTC", "count": "500", **params}) as r:
                assert r.status == 200, await r.text()
                body: list[dict[str, object]] = await r.json()
                return body

        today = await ticks()
        assert today and {t["trade_date_utc"] for t in today} == {"2026-07-30"}
        assert [t["timestamp"] for t in today] == sorted(
            (t["timestamp"] for t in today), reverse=True
        )
        yesterday = await ticks(days_ago="1")
        assert yesterday and {t["trade_date_utc"] for t in yesterday} == {"2026-07-29"}
        assert str(yesterday[0]["trade_time_utc"]) >= "23:59:00"
        for spelling in ("00:00:10", "000010"):
            early = await ticks(to=spelling)
            assert early == [t for t in today if str(t["trade_time_utc"]) < "00:00:10"]
            assert early and early[0] != today[0]
        late = await ticks(days_ago="1", to="23:59:30")
        assert late == [t for t in yesterday if str(t["trade_time_utc"]) < "23:59:30"]
        assert await ticks(days_ago="7") == []  # no trades that old
        for bad in ({"days_ago": "8"}, {"days_ago": "0"}, {"to": "25:00:00"}, {"to": "noon"}):
            async with http.get(url, params={"market": "KRW-BTC", **bad}) as resp:
                assert resp.status == 400, bad


async def test_ticker_and_orderbook_equal_the_last_streamed(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """REST ticker and book snapshots are what the socket last streamed (one market model)."""
    async with client(sim.ws_url) as ws:
        await ws.send(
            request(
                {"ticket": "t"},
                {"type": "ticker", "codes": ["KRW-BTC"]},
                {"type": "orderbook", "codes": ["KRW-BTC.5"]},
            )
        )
        await settle(sim, 1)
        await sim.advance(3.0)
        await ws.send(request({"ticket": "t"}, {"method": "LIST_SUBSCRIPTIONS"}))
        _, frames = await recv_until(ws, lambda f: "method" in f)
    ticker = [f for f in frames if f.get("type") == "ticker"][-1]
    book = [f for f in frames if f.get("type") == "orderbook"][-1]
    async with http.get(f"{sim.url}/v1/ticker", params={"markets": "KRW-BTC,KRW-ETH"}) as resp:
        assert resp.status == 200
        assert resp.headers["Remaining-Req"].startswith("group=ticker;")
        rest_tickers = await resp.json()
    assert [t["market"] for t in rest_tickers] == ["KRW-BTC", "KRW-ETH"]
    rest_ticker = rest_tickers[0]
    for name in ("trade_price", "acc_trade_price", "trade_timestamp", "signed_change_rate"):
        assert float(rest_ticker[name]) == float(ticker[name]), name
    assert "code" not in rest_ticker and "trade_date_kst" in rest_ticker
    params = {"markets": "KRW-BTC", "count": "5"}
    async with http.get(f"{sim.url}/v1/orderbook", params=params) as resp:
        assert resp.headers["Remaining-Req"].startswith("group=orderbook;")
        (rest_book,) = await resp.json()
    assert rest_book["market"] == "KRW-BTC" and rest_book["timestamp"] == book["timestamp"]
    assert rest_book["orderbook_units"] == [
        {k: float(v) for k, v in unit.items()} for unit in book["orderbook_units"]
    ]
    assert rest_book["total_ask_size"] == pytest.approx(float(book["total_ask_size"]))


async def test_orderbook_level_and_count_rules(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """count outside 1-30 gives 30 rows; an unsupported level answers an empty list."""
    url = f"{sim.url}/v1/orderbook"
    async with http.get(url, params={"markets": "KRW-BTC", "count": "99"}) as resp:
        (book,) = await resp.json()
    assert len(book["orderbook_units"]) == 30 and book["level"] == 0
    async with http.get(url, params={"markets": "KRW-BTC", "level": "7"}) as resp:
        assert resp.status == 200 and await resp.json() == []
    async with http.get(url, params={"markets": "KRW-BTC,krw-eth"}) as resp:
        assert resp.status == 404
        assert await resp.json() == {"error": {"name": 404, "message": "Code not found"}}
    async with http.get(url) as resp:
        assert resp.status == 400


async def test_day_week_month_candles_agree_with_the_ticker(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """Today's day candle is the ticker's day; weeks and months contain it; seconds stream."""
    await sim.advance(5.0)
    async with http.get(f"{sim.url}/v1/ticker", params={"markets": "KRW-BTC"}) as resp:
        (ticker,) = await resp.json()
    params = {"market": "KRW-BTC", "count": "3"}
    got = {}
    for kind in ("seconds", "days", "weeks", "months"):
        async with http.get(f"{sim.url}/v1/candles/{kind}", params=params) as resp:
            assert resp.status == 200, kind
            assert resp.headers["Remaining-Req"].startswith("group=candles;")
            got[kind] = await resp.json()
    day = got["days"][0]
    for name in ("opening_price", "high_price", "low_price", "trade_price", "prev_closing_price"):
        assert day[name] == ticker[name], name
    assert day["candle_acc_trade_price"] == ticker["acc_trade_price"]
    assert day["change_price"] == pytest.approx(ticker["signed_change_price"])
    for kind in ("weeks", "months"):
        period = got[kind][0]
        assert period["first_day_of_period"] <= day["candle_date_time_utc"][:10]
        assert (
            period["high_price"] >= day["high_price"]
            and period["trade_price"] == day["trade_price"]
        )
    second = got["seconds"][0]
    assert "unit" not in second and second["trade_price"] == ticker["trade_price"]


async def test_closed_orders_span_at_most_seven_days(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """/v1/orders/closed takes ISO or epoch-ms bounds and refuses a span over 7 days."""
    now_ms = int(sim.wall_time() * 1000)
    week_ms = 7 * 86_400_000
    ok = {"start_time": str(now_ms - week_ms), "end_time": str(now_ms)}
    status, body = await _signed_get(http, sim, "/v1/orders/closed", ok)
    assert status == 200 and body == []
    too_long = {"start_time": str(now_ms - week_ms - 1000), "end_time": str(now_ms)}
    status, _ = await _signed_get(http, sim, "/v1/orders/closed", too_long)
    assert status == 400


async def _signed_get(
    http: aiohttp.ClientSession, sim: Simulator, path: str, params: dict[str, str]
) -> tuple[int, object]:
    headers = rest_headers(sim.credentials, params)
    async with http.get(f"{sim.url}{path}", params=params, headers=headers) as resp:
        return resp.status, await resp.json()
