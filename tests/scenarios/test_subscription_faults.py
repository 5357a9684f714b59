"""The fault catalogue through the real subscription path: components recover, not a test listener.

Each scenario runs a manager with its own subscription service (no ``listeners=``), two
components subscribed, then a named fault. After it, the new socket must carry the full merged
request again, the components must receive data from it, and the trade stream must get its
reconnect gap event. Also: a change made during a reconnect, and a change made while the
request is in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.aio.connection_helpers import FAST, fresh_limiter, our_tasks
from tests.aio.subscription_helpers import (
    HEDGING,
    SMALL_SIM,
    next_item,
    rate_learned,
    requests_of,
    streaming,
    until,
)
from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.core.buffer import Gap
from upbit_ws.core.errors import InvalidInputError, ServerRejectedError
from upbit_ws.core.events import ConnectionStateChanged, GapEvent
from upbit_ws.simulator import Simulator
from upbit_ws.simulator.connection import SimConnection

Fault = Callable[[Simulator], Awaitable[None]]


def newest_public(sim: Simulator) -> SimConnection:
    """Return the simulator's side of the newest public socket."""
    return [c for c in sim.connections(include_closed=True) if c.kind == "public"][-1]


async def requests_on_a_new_socket(sim: Simulator, old: SimConnection) -> list[dict[str, Any]]:
    """Wait for a public socket newer than ``old`` to receive a request; return its requests."""
    await until(lambda: newest_public(sim) is not old and bool(requests_of(newest_public(sim))))
    return requests_of(newest_public(sim))


def entries(request: dict[str, Any]) -> set[tuple[str, str]]:
    """Return (type, code) of each entry of a recorded subscription request."""
    return {(e["type"], e["code"]) for e in request["entries"]}


async def fresh(sub: Any) -> Any:
    """Return a message that arrived after everything already buffered."""
    while sub.pending:
        await next_item(sub)
    return await next_item(sub)


async def _abort(sim: Simulator) -> None:
    sim.abort()


async def _close_1000(sim: Simulator) -> None:
    sim.close(code=1000)


async def _blackhole(sim: Simulator) -> None:
    sim.blackhole(30.0)


async def _dropped_upgrade(sim: Simulator) -> None:
    sim.refuse(0.3, how="stall")
    sim.abort()


async def _server_down(sim: Simulator) -> None:
    sim.refuse(0.4, status=None)
    sim.abort()


async def _restart(sim: Simulator) -> None:
    await sim.restart(down_seconds=0.3)


async def _rate_limited(sim: Simulator) -> None:
    sim.refuse(0.3, how="status", status=429)
    sim.abort()


async def _error_frame(sim: Simulator) -> None:
    sim.inject_error("TOO_MANY_REQUEST")


CATALOGUE: dict[str, Fault] = {
    "abort": _abort,
    "clean-close-1000": _close_1000,
    "blackhole": _blackhole,
    "dropped-upgrade": _dropped_upgrade,
    "server-down": _server_down,
    "restart": _restart,
    "http-429": _rate_limited,
    "error-frame": _error_frame,
}


@pytest.mark.parametrize("fault", list(CATALOGUE), ids=list(CATALOGUE))
async def test_components_recover_from_each_fault(fault: str) -> None:
    """After each named fault the merged request is re-sent and both components get data."""
    # A blackhole of a busy stream (its rate learned, under HEDGING's ceiling) is hedged.
    config = HEDGING if fault == "blackhole" else FAST
    async with streaming(config=config) as (sim, ws, log, book, tape):
        if fault == "blackhole":
            await rate_learned(ws, config)
        first = newest_public(sim)
        await CATALOGUE[fault](sim)
        if fault == "blackhole":
            # A spare socket (a hedge) takes over: a reconnect that overlapped, no
            # ``reconnecting`` spell (tests/aio/test_hedge.py has the details).
            await log.state("public", "degraded", within=3)
            hedged = await log.wait_for(
                ConnectionStateChanged,
                lambda e: e.connection == "public" and e.new == "open",
                within=3,
            )
            assert hedged.reason.startswith("hedged"), hedged
        else:
            await log.state("public", "reconnecting", within=3)
            await log.state("public", "open", within=8)
        await until(
            lambda: newest_public(sim) is not first and bool(requests_of(newest_public(sim)))
        )
        resent = requests_of(newest_public(sim))[0]
        assert entries(resent) == {("orderbook", "KRW-BTC"), ("trade", "KRW-BTC")}
        assert not any(e["is_only_realtime"] for e in resent["entries"])  # fresh snapshots
        assert (await fresh(book)).code == "KRW-BTC"
        assert (await fresh(tape)).code == "KRW-BTC"
        await until(lambda: "last request applied" in str(ws.subscriptions()))
        gaps = [e for e in log.drain() if isinstance(e, GapEvent)]
        assert [(g.type, g.reason) for g in gaps] == [("trade", "reconnect")]
        assert ws.statistics().subscriptions.internal_errors == ()


async def test_a_change_made_during_a_reconnect_goes_out_on_the_new_socket() -> None:
    """Changes made while the socket is down are in the first request of the next one."""
    async with streaming() as (sim, ws, log, book, tape):
        first = newest_public(sim)
        sim.refuse(0.5, how="status", status=503)
        sim.abort()
        await log.state("public", "reconnecting", within=3)
        await book.update(["KRW-ETH"])
        await tape.aclose()
        coins = ws.component("coins").subscribe("ticker", ["KRW-XRP"])
        await log.state("public", "open", within=8)
        await until(
            lambda: newest_public(sim) is not first and bool(requests_of(newest_public(sim)))
        )
        requests = requests_of(newest_public(sim))
        assert entries(requests[0]) == {("orderbook", "KRW-ETH"), ("ticker", "KRW-XRP")}
        assert (await fresh(book)).code == "KRW-ETH"
        assert (await next_item(coins)).code == "KRW-XRP"
        await until(lambda: "last request applied" in str(ws.subscriptions()))


async def test_a_change_made_while_the_request_is_in_flight_is_not_lost() -> None:
    """A change made before Upbit's answer to the request in flight follows in the next one."""
    async with Simulator(port=0, **SMALL_SIM) as sim:
        ws = WebSocketManager(base_url=sim.url, config=FAST, connect_limiter=fresh_limiter())
        async with ws:
            await asyncio.wait_for(ws.public.wait_open(), 5)
            sim.delay(300)  # answers (and data) come 0.3 s late: the request stays in flight
            book = ws.component("book").subscribe("orderbook", ["KRW-BTC"])
            conn = newest_public(sim)
            await until(lambda: len(requests_of(conn)) == 1)
            assert ws.subscriptions().public.in_flight
            await book.update(["KRW-ETH"])  # before any answer to the first request
            await until(lambda: len(requests_of(conn)) == 2)
            assert entries(requests_of(conn)[1]) == {("orderbook", "KRW-ETH")}
            assert (await next_item(book)).code == "KRW-ETH"  # old-code frames are not delivered
            await until(lambda: "last request applied" in str(ws.subscriptions()), within=8)
            view = ws.subscriptions().public
            assert [(w.type, w.code) for w in view.confirmed] == [("orderbook", "KRW-ETH")]


async def test_one_spurious_rejection_does_not_leave_a_valid_subscription_unsent() -> None:
    """Issue #9 item 1: one INVALID_PARAM answering a valid request; it is sent again and flows."""
    async with streaming() as (sim, ws, log, _book, _tape):
        first = newest_public(sim)
        sim.reject_requests(1, name="INVALID_PARAM")
        coins = ws.component("coins").subscribe("ticker", ["KRW-XRP"])
        await log.state("public", "reconnecting", within=3)
        resent = await requests_on_a_new_socket(sim, first)
        assert ("ticker", "KRW-XRP") in entries(resent[0])
        assert (await next_item(coins)).code == "KRW-XRP"
        await until(lambda: "last request applied" in str(ws.subscriptions()))
        server = {(e.type, e.code) for e in newest_public(sim).entries}
        assert ("ticker", "KRW-XRP") in server


async def test_a_request_rejected_twice_fails_the_subscription_that_added_it_loudly() -> None:
    """Rejected again in a row: the subscription that added the stream fails; others flow on."""
    async with streaming() as (sim, ws, _log, book, tape):
        sim.reject_requests(2, name="INVALID_PARAM")
        coins = ws.component("coins").subscribe("ticker", ["KRW-XRP"])
        with pytest.raises(ServerRejectedError, match="twice in a row"):
            await next_item(coins, within=10.0)
        await until(lambda: "last request applied" in str(ws.subscriptions()), within=10.0)
        assert (await fresh(book)).code == "KRW-BTC"
        assert (await fresh(tape)).code == "KRW-BTC"
        server = {(e.type, e.code) for e in newest_public(sim).entries}
        assert server == {("orderbook", "KRW-BTC"), ("trade", "KRW-BTC")}


async def test_a_reconnect_puts_a_gap_in_band_for_trade_consumers_of_items() -> None:
    """Issue #9 item 5: items() of a trade subscription reaches a reconnect Gap, then new data."""
    async with streaming() as (sim, _ws, log, _book, tape):
        items = tape.items()
        await next_item(items)
        sim.abort()
        down = await log.state("public", "reconnecting", within=3)
        while not isinstance(item := await next_item(items, within=10.0), Gap):
            pass
        assert item.reason == "reconnect" and item.dropped == 0
        assert item.since is not None and item.since <= down.at
        after = await next_item(items, within=10.0)
        assert not isinstance(after, Gap) and after.code == "KRW-BTC"
        (event,) = [e for e in log.drain() if isinstance(e, GapEvent)]
        assert (event.reason, event.since) == ("reconnect", item.since)


async def test_a_gap_starts_at_the_last_frame_received_not_at_the_detection() -> None:
    """Issue #9 item 3: after a blackhole, GapEvent.since is before the silence was noticed.

    The socket comes under suspicion (``degraded``, a spare socket opens) once it has been
    silent at least ``silence_floor`` since the last frame, so a gap that starts at the last
    frame begins at least that long before the detection, not at the spare's takeover.
    """
    async with streaming() as (sim, _ws, log, _book, tape):
        items = tape.items()
        sim.blackhole(30.0)
        down = await log.state("public", "degraded", within=10)
        event = await log.wait_for(GapEvent, within=10)
        assert event.reason == "reconnect"
        assert event.since <= down.at - FAST.keepalive.silence_floor + 1e-6
        while not isinstance(item := await next_item(items, within=10.0), Gap):
            pass
        assert item.since == event.since


async def take_backfilled(items: Any, delivered: list[Any], *, until_ms: float) -> None:
    """Append trades from ``items`` to ``delivered`` up to ``until_ms``; a Gap fails."""
    while delivered[-1].trade_timestamp < until_ms:
        item = await next_item(items, within=10.0)
        assert not isinstance(item, Gap), "the backfill should have covered the gap"
        delivered.append(item)


def check_backfilled(delivered: list[Any], recorded: list[Any]) -> int:
    """Check order and uniqueness, and that every trade the exchange recorded between the
    first and the last delivered one was delivered; return how many that was."""
    ids = [t.sequential_id for t in delivered]
    assert len(ids) == len(set(ids)), "a trade was delivered twice"
    stamps = [t.trade_timestamp for t in delivered]
    assert stamps == sorted(stamps), "trades out of order"
    wanted = {t.sequential_id for t in recorded if stamps[0] < t.timestamp < stamps[-1]}
    assert wanted <= set(ids), f"missed {len(wanted - set(ids))} trades"
    return len(wanted)


async def test_trade_backfill_fills_a_reconnect_gap_in_order_once() -> None:
    """Issue #9: backfill=True fetches the trades a blackhole missed from /v1/trades/ticks.

    They come in order before the live ones, each sequential_id once, with no Gap left (the
    simulator's history reaches back to the gap's start); every trade the exchange recorded
    between the first and the last delivered one was delivered.
    """
    async with streaming() as (sim, ws, log, _book, _tape):
        tape = ws.component("filled").subscribe("trade", ["KRW-BTC"], backfill=True)
        items = tape.items()
        delivered: list[Any] = [await next_item(items, within=10.0)]
        sim.blackhole(30.0)
        await log.state("public", "open", within=10)  # a spare socket took over (a hedge)
        await take_backfilled(items, delivered, until_ms=sim.wall_time() * 1000.0 + 500)
        recorded = sim.model.trades("KRW-BTC", count=2000)
        check_backfilled(delivered, recorded)


@asynccontextmanager
async def busy_tape(**sim_options: Any) -> AsyncIterator[tuple[Simulator, Any, list[Any]]]:
    """KRW-BTC trading ~250 times a second and a backfill=True trade subscription to it.

    Yields (simulator, the subscription's items(), the trades delivered: the first already).
    """
    busy = {**SMALL_SIM, "trades_per_second": 250.0, "busy_markets": 1, "trade_history": 5000}
    async with Simulator(port=0, **sim_options, **busy) as sim:
        ws = WebSocketManager(base_url=sim.url, config=FAST, connect_limiter=fresh_limiter())
        async with ws:
            tape = ws.component("filled").subscribe("trade", ["KRW-BTC"], backfill=True)
            items = tape.items()
            yield sim, items, [await next_item(items, within=10.0)]
        assert our_tasks() == []


async def filled_across(sim: Simulator, items: Any, delivered: list[Any], *, down: float) -> int:
    """Take trades until 0.5 s after the socket is back (``down`` s from now), check them
    with :func:`check_backfilled` and return how many the gap held."""
    await take_backfilled(items, delivered, until_ms=(sim.wall_time() + down + 0.5) * 1000.0)
    return check_backfilled(delivered, sim.model.trades("KRW-BTC", count=5000))


async def test_trade_backfill_pages_back_over_a_gap_longer_than_one_page() -> None:
    """A gap holding more trades than one /v1/trades/ticks page (500) is filled by paging.

    KRW-BTC trades ~250 times a second and handshakes are refused for 3.5 s after the socket
    drops, so the gap holds ~900 trades: one page reaches back only ~2 s. Every trade the
    exchange recorded between the first and the last delivered one arrives, once, in order,
    with no Gap left in front of them.
    """
    async with busy_tape() as (sim, items, delivered):
        sim.refuse(3.5, how="status", status=503)
        sim.abort()
        missed = await filled_across(sim, items, delivered, down=3.5)
        assert missed > 600, f"the gap should outgrow one page, held {missed} trades"


async def test_trade_backfill_reaches_the_live_trades_when_a_request_takes_time() -> None:
    """Upbit starts a subscription 150-650 ms after the request (docs/protocol.md section 1.3):
    a backfill read at once after the reconnect ends before the live trades begin. The trades
    between the two must not fall through: the backfill reads again once live trades come.
    Only one trade (the snapshot) was delivered before the drop, so the read, which starts a
    second early, also holds older trades: they must not come after it (out of order).
    """
    async with busy_tape(subscribe_delay=0.5) as (sim, items, delivered):
        sim.abort()
        missed = await filled_across(sim, items, delivered, down=0.5)
        assert missed > 100, f"the gap should hold the half second, held {missed} trades"


async def test_backfill_is_for_trade_subscriptions_only() -> None:
    """backfill=True on another type is bad input, raised at once."""
    async with streaming() as (_sim, ws, _log, _book, _tape):
        with pytest.raises(InvalidInputError, match="trade subscriptions only"):
            ws.component("x").subscribe("ticker", ["KRW-BTC"], backfill=True)
