"""The seed design's scenarios, over the public API and real sockets against the simulator.

Scenario 1: a coin list (``ticker KRW-*``), an order book (``orderbook KRW-BTC``) and a chart
(``candle.1m KRW-BTC``) share one public connection: one merged request, and each component
receives its own data only. Scenario 2: the order book and the chart switch to ``KRW-ETH`` in
the same instant: one request, the BTC streams stop, ETH reaches both, and the coin list never
notices. Plus: shared codes, reconnects, slow consumers under each policy, unknown codes,
a burst of changes paced by the rate limiter, and private order events.

What went on the wire is read from the simulator (it records every request per connection).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from tests.aio.connection_helpers import FAST, fresh_limiter
from tests.aio.subscription_helpers import SMALL_SIM, next_item, until
from upbit_ws.aio.clock import Clock, LoopClock
from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.core.auth import Credentials
from upbit_ws.core.buffer import Gap
from upbit_ws.core.config import SUBSCRIPTION_CHANGE_TIMEOUT, ConnectionConfig, KeyHealthConfig
from upbit_ws.core.errors import InvalidInputError, UnknownCodeError, UpbitWsError
from upbit_ws.core.events import BufferOverflowed, Event, GapEvent, RequestRejected
from upbit_ws.core.messages import Candle, MyOrder, Orderbook, Ticker
from upbit_ws.simulator import Simulator
from upbit_ws.simulator.connection import SimConnection


@asynccontextmanager
async def running(
    *,
    keys: bool = False,
    config: ConnectionConfig = FAST,
    clock: Clock | None = None,
    **sim_options: Any,
) -> AsyncIterator[tuple[Simulator, WebSocketManager]]:
    """Run a small simulator and a manager on it (fast test timings)."""
    async with Simulator(port=0, **{**SMALL_SIM, **sim_options}) as sim:
        ws = WebSocketManager(
            base_url=sim.url,
            credentials=Credentials(*sim.credentials) if keys else None,
            config=config,
            connect_limiter=fresh_limiter(),
            clock=clock,
        )
        async with ws:
            await asyncio.wait_for(ws.public.wait_open(), 5.0)
            yield sim, ws


def public_sockets(sim: Simulator) -> list[SimConnection]:
    """Return every public connection the simulator accepted, oldest first."""
    return [c for c in sim.connections(include_closed=True) if c.kind == "public"]


def subscribe_requests(conn: SimConnection) -> list[dict[str, Any]]:
    """Return the subscription requests a simulated connection received, parsed."""
    return [r.parsed for r in conn.requests if r.parsed.get("kind") == "subscribe"]


def wire(request: dict[str, Any]) -> set[tuple[str, str, int, bool]]:
    """Return (type, code, depth, realtime-only) per entry of a recorded request."""
    return {(e["type"], e["code"], e["depth"], e["is_only_realtime"]) for e in request["entries"]}


async def take(sub: Any, count: int, within: float = 5.0) -> list[Any]:
    """Return the next ``count`` messages of a subscription."""
    return [await next_item(sub, within) for _ in range(count)]


async def three_components(ws: WebSocketManager) -> tuple[Any, Any, Any]:
    """Subscribe the seed's coin list, order book and chart, and wait for each one's data."""
    coins = ws.component("coin_list").subscribe("ticker", ["KRW-*"])
    book = ws.component("orderbook_view").subscribe("orderbook", ["KRW-BTC"], depth=15)
    chart = ws.component("chart").subscribe("candle.1m", ["KRW-BTC"])
    await take(coins, 1)
    await take(book, 1)
    await take(chart, 1)
    return coins, book, chart


def drain_events(stream: Any) -> list[Event]:
    out: list[Event] = []
    while (event := stream.get_nowait()) is not None:
        out.append(event)
    return out


async def test_scenario_1_three_components_share_one_merged_request() -> None:
    """Coin list, order book and chart: ONE request on the wire, each gets only its data."""
    async with running() as (sim, ws):
        coins, book, chart = await three_components(ws)
        krw = sorted(m for m in ws.subscription_service.markets or () if m.startswith("KRW-"))
        (socket,) = public_sockets(sim)
        (request,) = subscribe_requests(socket)
        assert wire(request) == {
            *(("ticker", code, 30, False) for code in krw),
            ("orderbook", "KRW-BTC", 15, False),
            ("candle.1m", "KRW-BTC", 30, False),
        }
        tickers = await take(coins, 30)
        assert all(isinstance(m, Ticker) and m.code.startswith("KRW-") for m in tickers)
        books = await take(book, 3)
        assert all(isinstance(m, Orderbook) and m.code == "KRW-BTC" for m in books)
        assert {len(m.units) for m in books} == {15}
        candles = await take(chart, 1, within=3.0)
        assert all(isinstance(m, Candle) and m.type == "candle.1m" for m in candles)
        assert all(m.code == "KRW-BTC" for m in candles)
        assert len(subscribe_requests(socket)) == 1


async def test_scenario_2_order_book_and_chart_switch_coin_together() -> None:
    """Both switch to KRW-ETH at once: one request, BTC stops, ETH arrives, coins unaffected."""
    async with running() as (sim, ws):
        coins, book, chart = await three_components(ws)
        events = ws.events()
        (socket,) = public_sockets(sim)
        await until(lambda: ws.subscriptions().public.confirmed != ())
        coins_before = coins.statistics()
        await asyncio.gather(book.update(["KRW-ETH"]), chart.update(["KRW-ETH"]))
        # ETH data reaches both within the seed's subscription-change timeout (2 s).
        eth_book = await next_item(book, SUBSCRIPTION_CHANGE_TIMEOUT)
        eth_candle = await next_item(chart, SUBSCRIPTION_CHANGE_TIMEOUT)
        assert (eth_book.code, eth_candle.code) == ("KRW-ETH", "KRW-ETH")
        assert all(m.code == "KRW-ETH" for m in await take(book, 5))
        first, second = subscribe_requests(socket)
        assert ("orderbook", "KRW-ETH", 15, False) in wire(second)
        assert ("candle.1m", "KRW-ETH", 30, False) in wire(second)
        assert not any(code == "KRW-BTC" for kind, code, _, _ in wire(second) if kind != "ticker")
        # The coin list keeps streaming, realtime-only: no snapshot storm, no gap, no change.
        tickers = {(k, c, rt) for k, c, _, rt in wire(second) if k == "ticker"}
        assert tickers == {(k, c, True) for k, c, _, _ in wire(first) if k == "ticker"}
        await take(coins, 20)
        coins_after = coins.statistics()
        assert coins_after.pushed > coins_before.pushed and coins_after.dropped == 0
        assert coins.codes == tuple(c for _, c, _ in sorted(tickers))
        assert not [e for e in drain_events(events) if isinstance(e, GapEvent)]
        assert len(subscribe_requests(socket)) == 2


async def test_two_components_share_a_code_and_one_leaves() -> None:
    """When one of two holders of KRW-BTC leaves, the other keeps streaming, nothing is sent."""
    async with running() as (sim, ws):
        a = ws.component("a").subscribe("ticker", ["KRW-BTC"])
        b = ws.component("b").subscribe("ticker", ["KRW-BTC", "KRW-ETH"])
        await take(a, 1)
        await take(b, 1)
        (socket,) = public_sockets(sim)
        await until(lambda: len(subscribe_requests(socket)) == 1)
        await ws.component("a").aclose()
        assert a.closed and ws.component("a").subscriptions() == ()
        btc = [m async for m in _codes(b, "KRW-BTC", 3)]
        assert len(btc) == 3
        await until(lambda: ws.subscriptions().public.in_flight is False)
        assert len(subscribe_requests(socket)) == 1  # the merged state did not change


async def _codes(sub: Any, code: str, count: int) -> AsyncIterator[Any]:
    seen = 0
    while seen < count:
        message = await next_item(sub)
        if message.code == code:
            seen += 1
            yield message


async def test_reconnect_restores_everything_with_fresh_snapshots() -> None:
    """After an abort the whole merged set is re-sent with snapshots and every component flows."""
    async with running() as (sim, ws):
        coins, book, chart = await three_components(ws)
        (first,) = public_sockets(sim)
        before = subscribe_requests(first)[-1]
        sim.abort(first.id)
        await until(lambda: len(public_sockets(sim)) == 2)
        second = public_sockets(sim)[1]
        await until(lambda: len(subscribe_requests(second)) == 1)
        (resent,) = subscribe_requests(second)
        assert {(k, c, d) for k, c, d, _ in wire(resent)} == {
            (k, c, d) for k, c, d, _ in wire(before)
        }
        assert not any(rt for *_, rt in wire(resent))  # nothing realtime-only: fresh snapshots
        reopened = ws.statistics().public.opens
        assert reopened == 2
        assert (await next_item(book)).code == "KRW-BTC"
        assert (await next_item(coins)).code.startswith("KRW-")
        assert (await next_item(chart, 3.0)).code == "KRW-BTC"


async def test_slow_consumers_under_each_policy_never_block_the_others() -> None:
    """Stalled consumers lose only per their policy (never_drop: nothing) while others flow."""
    async with running() as (_sim, ws):
        events = ws.events()
        latest = ws.component("slow_coins").subscribe("ticker", ["KRW-*"])
        oldest = ws.component("slow_tape").subscribe("trade", ["KRW-*"], capacity=5)
        never = ws.component("slow_orders").subscribe(
            "trade", ["KRW-*"], policy="never_drop", capacity=5
        )
        live = ws.component("live_tape").subscribe("trade", ["KRW-*"])
        received = [m async for m in _first(live, 40)]
        assert len(received) == 40
        await until(lambda: oldest.statistics().dropped > 0 and never.statistics().overflows > 0)
        assert latest.pending <= len(latest.codes)  # one per code at most: memory bounded
        assert latest.statistics().dropped == 0
        gap = await next_item(oldest.items())
        assert isinstance(gap, Gap) and gap.dropped > 0
        # never_drop keeps every message past its bound: the first one is still there.
        first = await next_item(never.items())
        assert not isinstance(first, Gap)
        assert never.statistics().dropped == 0
        seen = drain_events(events)
        gaps = [e for e in seen if isinstance(e, GapEvent)]
        assert {(e.subscriber, e.reason) for e in gaps} == {("slow_tape", "overflow")}
        loud = [e for e in seen if isinstance(e, BufferOverflowed)]
        assert {e.subscriber for e in loud} == {"slow_orders"}


async def _first(sub: Any, count: int) -> AsyncIterator[Any]:
    for _ in range(count):
        yield await next_item(sub)


async def test_an_unknown_code_is_a_clear_error_naming_close_matches() -> None:
    """A typo raises UnknownCodeError with suggestions instead of Upbit's silence."""
    async with running() as (sim, ws):
        with pytest.raises(UnknownCodeError, match="did you mean") as info:
            ws.component("typo").subscribe("ticker", ["KRW-BTX"])
        assert "KRW-BTC" in info.value.suggestions
        assert ws.subscriptions().components == {}
        assert subscribe_requests(public_sockets(sim)[0]) == []


async def test_a_burst_of_50_changes_is_paced_and_ends_on_the_final_state() -> None:
    """50 quick changes go out as at most 5 requests a second, the last one the final state."""
    async with running() as (sim, ws):
        book = ws.component("book").subscribe("orderbook", ["KRW-BTC"])
        await take(book, 1)
        markets = sorted(m for m in ws.subscription_service.markets or () if m.startswith("KRW-"))
        targets = [markets[i % len(markets)] for i in range(50)]
        for code in targets:
            await book.update([code])
            await asyncio.sleep(0.01)  # the burst is spread over half a second
        (socket,) = public_sockets(sim)
        final = ("orderbook", targets[-1], 30, False)
        await until(lambda: final in wire(subscribe_requests(socket)[-1]), within=10.0)
        times = [r.at for r in socket.requests if r.parsed.get("kind") == "subscribe"]
        assert len(times) < 50
        busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
        assert busiest <= 5
        assert sim.statistics().messages_over_limit == 0
        assert (await _until_code(book, targets[-1])).code == targets[-1]


async def _until_code(sub: Any, code: str) -> Any:
    while (message := await next_item(sub)).code != code:
        pass
    return message


async def test_private_order_events_reach_my_order_and_my_asset_subscribers() -> None:
    """An order placed through REST comes back as myOrder and myAsset on the private socket."""
    async with running(keys=True) as (sim, ws):
        assert ws.private is not None
        await asyncio.wait_for(ws.private.wait_open(), 5.0)
        orders = ws.component("bot").subscribe("myOrder", ["KRW-BTC"])
        assets = ws.component("wallet").subscribe("myAsset")
        assert orders.policy == assets.policy == "never_drop"
        await until(lambda: ws.subscriptions().private.confirmed != (), within=5.0)
        placed = await ws.rest.place_order(
            market="KRW-BTC", side="bid", ord_type="limit", volume="0.01", price="1000000"
        )
        event = await next_item(orders)
        assert isinstance(event, MyOrder) and event.uuid == placed.uuid
        assert (await next_item(assets)).type == "myAsset"
        private_requests = [
            r.parsed
            for c in sim.connections(include_closed=True)
            if c.kind == "private"
            for r in c.requests
            if r.parsed.get("kind") == "subscribe"
        ]
        assert {(e["type"], e["code"]) for e in private_requests[-1]["entries"]} == {
            ("myOrder", "KRW-BTC"),
            ("myAsset", "*"),
        }


def private_sockets(sim: Simulator) -> list[SimConnection]:
    """Return every private connection the simulator accepted, oldest first."""
    return [c for c in sim.connections(include_closed=True) if c.kind == "private"]


async def test_an_invalid_auth_frame_is_a_key_problem_and_orders_come_back() -> None:
    """Review #2 (private): INVALID_AUTH answering the request is no rejection of it.

    Upbit may refuse a key with a frame after the request (section 5); the key path
    suspends the private socket, the periodic check finds the key good again, and the new
    socket must carry myOrder again so that order events keep coming.
    """
    config = replace(FAST, key_health=KeyHealthConfig(check_interval=0.5))
    async with running(keys=True, config=config) as (sim, ws):
        events = ws.events()
        orders = ws.component("bot").subscribe("myOrder", ["KRW-BTC"])
        await until(lambda: any(subscribe_requests(c) for c in private_sockets(sim)))
        (first,) = private_sockets(sim)
        sim.inject_error("INVALID_AUTH", conn_id=first.id)
        await until(
            lambda: any(subscribe_requests(c) for c in private_sockets(sim) if c is not first),
            within=5.0,
        )
        placed = await ws.rest.place_order(
            market="KRW-BTC", side="bid", ord_type="limit", volume="0.01", price="1000000"
        )
        event = await next_item(orders)
        assert isinstance(event, MyOrder) and event.uuid == placed.uuid
        assert not [e for e in drain_events(events) if isinstance(e, RequestRejected)]
        stats = ws.statistics().subscriptions.private
        assert (stats.rejections, stats.other_errors) == (0, 1)


async def test_private_types_without_credentials_raise_a_clear_error() -> None:
    """Review #7: myOrder/myAsset without keys fail at once, naming the credentials."""
    async with running() as (_sim, ws):
        for kind in ("myOrder", "myAsset"):
            with pytest.raises(InvalidInputError, match="credentials"):
                ws.component("bot").subscribe(kind)
        assert ws.subscriptions().components == {}
        assert "private: no connection" in str(ws.subscriptions())


class _PlantedBug(Exception):
    """An internal error planted in one flusher by the test's clock."""


class _BuggyClock(LoopClock):
    """The loop clock, except that it raises inside the task named ``task`` ``times`` times.

    The clock is the shell's one injected seam (aio/clock.py); a clock that fails in the
    private flusher's task stands for any bug in that flusher.
    """

    def __init__(self, task: str, times: float) -> None:
        self.task = task
        self.times = times

    def now(self) -> float:
        current = asyncio.current_task()
        if self.times > 0 and current is not None and current.get_name() == self.task:
            self.times -= 1
            raise _PlantedBug(f"planted in {self.task}")
        return super().now()


async def test_a_bug_in_the_private_flusher_is_restarted_and_never_stops_public() -> None:
    """Review S4: the private flusher crashes once; it restarts and public never notices."""
    clock = _BuggyClock("upbit-ws:subscriptions:private", times=1)
    async with running(keys=True, clock=clock) as (sim, ws):
        coins = ws.component("coins").subscribe("ticker", ["KRW-BTC"])
        orders = ws.component("bot").subscribe("myOrder", ["KRW-BTC"])
        await take(coins, 1)
        await until(lambda: clock.times == 0)
        tape = ws.component("tape").subscribe("trade", ["KRW-ETH"])  # public keeps flushing
        assert (await next_item(tape)).code == "KRW-ETH"
        await until(lambda: any(subscribe_requests(c) for c in private_sockets(sim)))
        placed = await ws.rest.place_order(
            market="KRW-BTC", side="bid", ord_type="limit", volume="0.01", price="1000000"
        )
        assert (await next_item(orders)).uuid == placed.uuid
        stats = ws.statistics().subscriptions
        assert len(stats.internal_errors) == 1 and "_PlantedBug" in stats.internal_errors[0].error
        assert (stats.private.flusher_restarts, stats.public.flusher_restarts) == (1, 0)


async def test_a_flusher_that_keeps_failing_ends_its_subscriptions_with_the_error() -> None:
    """Review S4: a private flusher that always fails is given up; its users get an error."""
    clock = _BuggyClock("upbit-ws:subscriptions:private", times=float("inf"))
    async with running(keys=True, clock=clock) as (_sim, ws):
        coins = ws.component("coins").subscribe("ticker", ["KRW-BTC"])
        orders = ws.component("bot").subscribe("myOrder", ["KRW-BTC"])
        with pytest.raises(UpbitWsError, match="repeated internal errors") as info:
            await next_item(orders, 10.0)
        assert isinstance(info.value.__cause__, _PlantedBug)
        with pytest.raises(UpbitWsError, match="repeated internal errors"):
            ws.component("bot").subscribe("myAsset")
        assert (await next_item(coins)).code == "KRW-BTC"  # public untouched
        assert ws.subscriptions().private.desired == ()
        assert len(ws.statistics().subscriptions.internal_errors) == 5
