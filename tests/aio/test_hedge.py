"""The hedge over real sockets (issue 9): a spare socket replaces one under suspicion.

Each test runs a manager with its own subscription service against the simulator on
127.0.0.1: the spare gets the newest merged request through the shared connect limiter, takes
over when it proves itself (the gap from the old socket's last frame, nothing delivered
twice), is closed cleanly when the old socket answers first, and falls back to the ordinary
pong deadline when it fails. No sleeping: every wait is for the event or state expected.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from tests.aio.connection_helpers import FAST, EventLog, fresh_limiter, our_tasks, sim_until
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
from upbit_ws.core.config import ConnectionConfig
from upbit_ws.core.events import ConnectionStateChanged, GapEvent, ReconciliationFinished
from upbit_ws.simulator import Simulator
from upbit_ws.simulator.connection import SimConnection

#: For tests that hold the spare back on purpose (frames delayed by the simulator): a pong
#: deadline (5 s) and a close timeout (3 s) well beyond those delays, so that a loaded machine
#: cannot turn the hold into a declared-dead socket or an aborted close.
PATIENT = replace(
    HEDGING,
    keepalive=replace(HEDGING.keepalive, ping_interval=10.0, pong_timeout=5.0),
    timeouts=replace(HEDGING.timeouts, close=3.0),
)


@asynccontextmanager
async def busy(
    config: ConnectionConfig = HEDGING, **options: Any
) -> AsyncIterator[tuple[Simulator, WebSocketManager, EventLog, Any, Any]]:
    """:func:`streaming`, once the public stream's rate is learned (its bound under the ceiling)."""
    async with streaming(config=config, **options) as stack:
        await rate_learned(stack[1], config)
        yield stack


def publics(sim: Simulator) -> list[SimConnection]:
    """Return the simulator's public sockets, oldest first, closed ones included."""
    return [c for c in sim.connections(include_closed=True) if c.kind == "public"]


def entries(request: dict[str, Any]) -> set[tuple[str, str]]:
    """Return (type, code) of each entry of a recorded subscription request."""
    return {(e["type"], e["code"]) for e in request["entries"]}


def took_over(event: ConnectionStateChanged, connection: str = "public") -> bool:
    """Tell whether ``event`` is a spare socket taking over ``connection``."""
    return event.connection == connection and event.new == "open"


async def test_a_blackhole_is_hedged_the_spare_takes_over_once_without_duplicates() -> None:
    """Silence past the threshold opens a spare; it takes over at its first data frame.

    A reconnect that overlapped: degraded -> open with a reason that says so, generation 2,
    one failure and one open more; the old socket is aborted; the spare carries the one
    merged request (not sent twice); the trade gap runs from the old socket's last frame, in
    band and as an event; no trade is delivered twice.
    """
    async with busy() as (sim, ws, log, _book, tape):
        items = tape.items()
        seen: list[int] = []
        while len(seen) < 2:  # the tape flows before the fault
            item = await next_item(items, within=5.0)
            if not isinstance(item, Gap):
                seen.append(item.sequential_id)
        old = publics(sim)[0]
        before = ws.public.statistics()
        sim.blackhole(30.0, old.id)
        degraded = await log.state("public", "degraded", within=5)
        assert "hedge" in degraded.reason
        opened = await log.wait_for(ConnectionStateChanged, took_over, within=5)
        assert opened.old == "degraded" and opened.reason.startswith("hedged"), opened
        assert ("degraded", "reconnecting") not in log.states("public")
        stats = ws.public.statistics()
        assert stats.generation == 2 and stats.state == "open"
        assert stats.hedges == 1 and stats.hedges_won == 1 and stats.hedges_cancelled == 0
        assert stats.opens == before.opens + 1 and stats.failures == before.failures + 1
        assert stats.declared_dead == before.declared_dead + 1
        spare = publics(sim)[-1]
        assert spare is not old and len(publics(sim)) == 2
        requests = requests_of(spare)
        assert len(requests) == 1, "the spare's request was sent again after the takeover"
        assert entries(requests[0]) == {("orderbook", "KRW-BTC"), ("trade", "KRW-BTC")}
        assert not any(e["is_only_realtime"] for e in requests[0]["entries"])
        # The old socket was aborted (no close frame): a closing handshake could hang.
        await sim_until(sim, lambda: old.closed_reason is not None)
        gap = await log.wait_for(GapEvent, within=5)
        assert (gap.type, gap.reason) == ("trade", "reconnect")
        assert gap.since <= degraded.at - FAST.keepalive.silence_floor + 1e-6
        while not isinstance(item := await next_item(items, within=5.0), Gap):
            seen.append(item.sequential_id)
        assert item.since == gap.since
        for _ in range(3):  # the spare's trades flow on
            item = await next_item(items, within=5.0)
            assert not isinstance(item, Gap)
            seen.append(item.sequential_id)
        assert len(seen) == len(set(seen)), "a trade was delivered twice"
        await until(lambda: "last request applied" in str(ws.subscriptions()))
        assert ws.statistics().subscriptions.internal_errors == ()


async def test_the_old_socket_answering_first_cancels_the_hedge_and_closes_the_spare() -> None:
    """A muted stream (pings answered) opens a spare; the pong wins; the spare closes cleanly.

    The old socket's pong comes 0.3 s late, so the spare is open and has the merged request
    by then; new sockets' frames come 1.5 s late, so it cannot prove itself first. It is
    closed with a close frame (1000), not aborted. Nothing is lost, so no gap; the connection
    stays on socket 1.
    """
    async with busy(config=PATIENT) as (sim, ws, log, _book, _tape):
        old = publics(sim)[0]
        sim.delay(1500)  # new sockets (the spare) get their frames late
        sim.delay(300, old.id)
        sim.mute(old.id, sticky=True)
        degraded = await log.state("public", "degraded", within=5)
        assert "hedge" in degraded.reason
        back = await log.state("public", "open", within=5)
        assert back.reason == "pong received"
        await sim_until(sim, lambda: len(publics(sim)) == 2)
        spare = publics(sim)[-1]
        await sim_until(sim, lambda: spare.closed_reason is not None, within=5)
        assert spare.ws.close_code == 1000, spare.closed_reason
        assert len(requests_of(spare)) == 1  # it had the merged request
        stats = ws.public.statistics()
        assert stats.generation == 1 and stats.hedges_cancelled == 1 and stats.hedges_won == 0
        assert not any(isinstance(e, GapEvent) for e in log.drain())


async def test_a_spare_slower_than_the_pong_deadline_still_takes_over() -> None:
    """New sockets' frames come 2 s late (a long link), past the old socket's 1.5 s pong
    deadline: the old socket waits for the spare instead of being declared dead (which would
    drop the spare and start a reconnect behind it); the spare takes over, no reconnecting.
    """
    config = replace(HEDGING, timeouts=replace(HEDGING.timeouts, connect=4.0))
    async with busy(config=config) as (sim, ws, log, _book, _tape):
        old = publics(sim)[0]
        sim.delay(2000)  # new sockets (the spare) get their frames late
        sim.delay(0, old.id)
        sim.blackhole(30.0, old.id)
        degraded = await log.state("public", "degraded", within=5)
        assert "hedge" in degraded.reason
        opened = await log.wait_for(ConnectionStateChanged, took_over, within=10)
        assert opened.reason.startswith("hedged"), opened
        assert opened.at - degraded.at > FAST.keepalive.pong_timeout
        assert ("degraded", "reconnecting") not in log.states("public")
        stats = ws.public.statistics()
        assert stats.hedges_won == 1 and stats.generation == 2 and len(publics(sim)) == 2


async def test_a_spare_that_cannot_connect_falls_back_to_the_pong_deadline() -> None:
    """Handshakes refused (503) while the socket is blackholed: today's path replaces it."""
    async with busy() as (sim, ws, log, book, _tape):
        old = publics(sim)[0]
        sim.refuse(2.0, how="status", status=503)
        sim.blackhole(30.0, old.id)
        await log.state("public", "degraded", within=5)
        dead = await log.state("public", "reconnecting", within=5)
        assert dead.reason == f"no pong within {FAST.keepalive.pong_timeout:g} s"
        assert ws.public.statistics().hedges_failed == 1
        await log.state("public", "open", within=10)
        assert (await next_item(book, within=5.0)).code == "KRW-BTC"


async def test_an_error_frame_on_the_spare_is_a_failed_hedge() -> None:
    """The spare's request answered with an error frame (then a close): the hedge failed.

    The frame is counted and logged but never reaches the subscription layer as a rejection
    of the current socket's request; the blackholed socket is replaced by today's path.
    """
    async with busy() as (sim, ws, log, book, _tape):
        old = publics(sim)[0]
        sim.reject_requests(1, name="WRONG_FORMAT")
        sim.blackhole(30.0, old.id)
        await log.state("public", "degraded", within=5)
        await log.state("public", "reconnecting", within=5)
        stats = ws.public.statistics()
        assert stats.hedges_failed == 1 and stats.server_errors == {"WRONG_FORMAT": 1}
        assert ws.statistics().subscriptions.public.rejections == 0
        await log.state("public", "open", within=10)
        assert (await next_item(book, within=5.0)).code == "KRW-BTC"


async def test_a_change_made_during_the_hedge_reaches_the_new_socket() -> None:
    """The spare takes over with its request; a change made meanwhile follows on it at once."""
    async with busy(config=PATIENT) as (sim, ws, log, book, _tape):
        old = publics(sim)[0]
        sim.delay(1500)  # the spare proves itself 1.5 s after its request
        sim.delay(0, old.id)
        sim.blackhole(30.0, old.id)
        await log.state("public", "degraded", within=5)
        await sim_until(sim, lambda: len(publics(sim)) == 2 and bool(requests_of(publics(sim)[1])))
        assert ws.public.generation == 1  # the spare has its request; the old socket is current
        await book.update(["KRW-ETH"])
        opened = await log.wait_for(ConnectionStateChanged, took_over, within=5)
        assert opened.reason.startswith("hedged"), opened
        spare = publics(sim)[1]
        await sim_until(sim, lambda: len(requests_of(spare)) == 2)
        first, second = requests_of(spare)
        assert entries(first) == {("orderbook", "KRW-BTC"), ("trade", "KRW-BTC")}
        assert entries(second) == {("orderbook", "KRW-ETH"), ("trade", "KRW-BTC")}
        while (await next_item(book, within=5.0)).code != "KRW-ETH":
            pass
        await until(lambda: "last request applied" in str(ws.subscriptions()))


async def test_the_spare_waits_for_the_shared_connect_limiter() -> None:
    """Upbit allows 5 connects/s (docs/protocol.md section 8.1): a spare waits like a connect."""
    limiter = fresh_limiter()
    async with busy(limiter=limiter) as (sim, ws, log, _book, _tape):
        old = publics(sim)[0]
        waits = ws.public.statistics().connect_waits
        loop = asyncio.get_running_loop()

        async def spend() -> None:
            """Keep the limiter 0.3 s behind (the silence takes 0.8 s to notice): a connect
            must wait, even if this task runs late on a loaded machine."""
            while True:
                while limiter.delay(loop.time()) < 0.3:
                    limiter.acquire(loop.time())
                await asyncio.sleep(0.01)

        spender = asyncio.create_task(spend())
        try:
            await until(lambda: limiter.delay(loop.time()) > 0)
            sim.blackhole(30.0, old.id)
            await log.state("public", "degraded", within=5)
        finally:
            spender.cancel()
        await log.wait_for(ConnectionStateChanged, took_over, within=5)
        assert ws.public.statistics().connect_waits > waits


async def test_closing_during_a_hedge_leaves_no_socket_or_task() -> None:
    """aclose() while the spare waits for its data: every socket closes, every task ends."""
    async with Simulator(port=0, **SMALL_SIM) as sim:
        ws = WebSocketManager(base_url=sim.url, config=PATIENT, connect_limiter=fresh_limiter())
        log = EventLog(ws.events())
        async with ws:
            book = ws.component("book").subscribe("orderbook", ["KRW-BTC"])
            await next_item(book)
            await rate_learned(ws, PATIENT)
            old = publics(sim)[0]
            sim.delay(10_000)  # the spare never proves itself before the close
            sim.delay(0, old.id)
            sim.blackhole(30.0, old.id)
            await log.state("public", "degraded", within=5)
            await sim_until(sim, lambda: len(publics(sim)) == 2 and publics(sim)[1].open)
            assert ws.public.statistics().hedging
        assert our_tasks() == []
        await sim_until(sim, lambda: not any(c.open for c in sim.connections()))


async def test_a_private_blackhole_is_hedged_after_an_unanswered_ping() -> None:
    """The quiet private socket: a ping unanswered past the suspicion deadline opens a spare,
    which takes over once it answers a ping after its request; the gap reaches reconciliation.
    """
    async with streaming(keys=True) as (sim, ws, log, _book, _tape):
        ws.component("ledger").subscribe("myOrder", [])
        private = ws.private
        assert private is not None
        await log.state("private", "open", since=0)
        await until(lambda: private.statistics().pongs_received >= 2)
        old = next(c for c in sim.connections() if c.kind == "private")
        sim.blackhole(30.0, old.id)
        degraded = await log.state("private", "degraded", within=5)
        assert "no pong" in degraded.reason and "hedge" in degraded.reason
        opened = await log.wait_for(
            ConnectionStateChanged, lambda e: took_over(e, "private"), within=5
        )
        assert opened.reason.startswith("hedged"), opened
        stats = private.statistics()
        assert stats.generation == 2 and stats.hedges_won == 1
        assert stats.suspicion == FAST.keepalive.suspicion_floor  # loopback: the floor
        spare = [c for c in sim.connections() if c.kind == "private"][-1]
        assert spare is not old
        assert "myOrder" in {e["type"] for e in requests_of(spare)[0]["entries"]}
        finished = await log.wait_for(
            ReconciliationFinished, lambda e: e.connection == "private", within=10
        )
        assert finished.at >= opened.at


async def test_a_private_hedge_of_accepted_streams_is_ready_once_it_takes_over() -> None:
    """The spare re-sent exactly what Upbit accepted before and proved itself with a pong:
    the view says so and ``wait_ready()`` holds no longer, as after a reconnect (no data can
    confirm myOrder, and the quiet window would only repeat what the old socket showed).
    """
    config = replace(FAST, subscriptions=replace(FAST.subscriptions, confirm_quiet=3.0))
    async with streaming(keys=True, config=config) as (sim, ws, log, _book, _tape):
        ws.component("ledger").subscribe("myOrder", [])
        private = ws.private
        assert private is not None
        await ws.wait_ready(15.0)  # the first request waits out the quiet window
        await until(lambda: private.statistics().pongs_received >= 2)
        old = next(c for c in sim.connections() if c.kind == "private")
        mark = log.mark()
        sim.blackhole(30.0, old.id)
        await log.wait_for(
            ConnectionStateChanged, lambda e: took_over(e, "private"), since=mark, within=5
        )
        assert private.statistics().hedges_won == 1
        view = ws.subscriptions().private
        assert view.resent and view.in_flight, view
        await ws.wait_ready(0.0)  # ready now, not after the quiet window


async def test_the_old_socket_ending_during_a_hedge_hands_over_to_its_open_spare() -> None:
    """The blackholed socket is reset while its spare is open and was sent the request, but
    has not proved itself yet (its frames come 1.5 s late): the spare takes over, unproved, as
    a reconnect's socket would be right after its request. No reconnect, no third socket: the
    connect, the backoff and the round trips a reconnect would add are saved. The gap runs
    from the old socket's last frame and the spare's data flows on.
    """
    async with busy(config=PATIENT) as (sim, ws, log, _book, tape):
        items = tape.items()
        while isinstance(await next_item(items, within=5.0), Gap):
            pass  # the tape flows before the fault
        old = publics(sim)[0]
        before = ws.public.statistics()
        sim.delay(1500)  # the spare cannot prove itself before the old socket ends
        sim.delay(0, old.id)
        sim.blackhole(30.0, old.id)
        degraded = await log.state("public", "degraded", within=5)
        assert "hedge" in degraded.reason
        await sim_until(sim, lambda: len(publics(sim)) == 2 and bool(requests_of(publics(sim)[1])))
        assert ws.public.generation == 1
        sim.abort(old.id)  # a reset: no close frame, no error frame
        opened = await log.wait_for(ConnectionStateChanged, took_over, within=5)
        assert opened.old == "degraded" and "its spare took over" in opened.reason, opened
        assert ("degraded", "reconnecting") not in log.states("public")
        stats = ws.public.statistics()
        assert stats.generation == 2 and stats.hedges_won == 1 and stats.hedges_cancelled == 0
        assert stats.connects == before.connects + 1  # the spare's, and no other
        assert stats.opens == before.opens + 1 and stats.failures == before.failures + 1
        gap = await log.wait_for(GapEvent, within=5)
        assert (gap.type, gap.reason) == ("trade", "reconnect")
        assert gap.since <= degraded.at
        while not isinstance(item := await next_item(items, within=5.0), Gap):
            pass
        assert item.since == gap.since
        trade = await next_item(items, within=5.0)  # the spare's data, 1.5 s late
        assert not isinstance(trade, Gap)
        assert len(publics(sim)) == 2, "a reconnect opened a third socket"
        spare = publics(sim)[1]
        assert len(requests_of(spare)) == 1 and spare.open
        await until(lambda: "last request applied" in str(ws.subscriptions()))


async def test_a_list_question_to_a_socket_a_spare_replaces_goes_to_the_spare() -> None:
    """list_subscriptions() asked of the blackholed socket, which will never answer: once the
    spare takes over (0.5 s after its request), the question goes to the spare within the same
    deadline, and the answer is what the socket streaming now holds, not an error. (A 5 s
    deadline: the two 0.5 s delays and a loaded machine's hedge fit well inside it.)
    """
    config = replace(PATIENT, timeouts=replace(PATIENT.timeouts, subscription_change=5.0))
    async with busy(config=config) as (sim, ws, log, _book, _tape):
        old = publics(sim)[0]
        sim.delay(500)  # the spare proves itself, and answers, 0.5 s late
        sim.delay(0, old.id)
        sim.blackhole(30.0, old.id)
        await log.state("public", "degraded", within=5)
        asked = ws.statistics().subscriptions.public.list_requests
        view = await ws.list_subscriptions()
        assert ws.public.generation == 2
        server = view.public.server
        assert server is not None
        assert {(s.type, code) for s in server for code in s.codes} == {
            ("orderbook", "KRW-BTC"),
            ("trade", "KRW-BTC"),
        }
        assert ws.statistics().subscriptions.public.list_requests == asked + 2


#: HEDGING with a 1 s suspicion floor: a pong this machine delays under load is no alarm here.
CALM = replace(HEDGING, keepalive=replace(HEDGING.keepalive, suspicion_floor=1.0))


async def test_a_request_that_drops_most_streams_probes_the_rest_quietly() -> None:
    """A book and a tape stream beside a quiet coin's ticker (no trades: no frame after its
    snapshot); their rate is learned. Book and tape close: the request keeps one stream of
    three, so silences are probed quietly until the narrower stream's own reads judge it
    (core/session.py ``stream_narrowed``). Judged by the busy gaps, the first silence was
    news: a degraded spell and a spare connect on a healthy socket."""
    options = {**SMALL_SIM, "quiet_trades_per_second": 0.0}
    async with Simulator(port=0, **options) as sim:
        ws = WebSocketManager(base_url=sim.url, config=CALM, connect_limiter=fresh_limiter())
        log = EventLog(ws.events())
        async with ws:
            coin = "BTC-XRP"  # not a KRW market: trades at 4 x quiet_trades_per_second, 0
            ticker = ws.component("quiet").subscribe("ticker", [coin])
            book = ws.component("book").subscribe("orderbook", ["KRW-BTC"])
            tape = ws.component("tape").subscribe("trade", ["KRW-BTC"])
            await next_item(ticker)
            await rate_learned(ws, CALM)
            first = publics(sim)[-1]
            sent = len(first.requests)
            mark = log.mark()
            await book.aclose()
            await tape.aclose()
            await until(lambda: len(first.requests) > sent)
            pings = ws.public.statistics().pings_sent
            await until(
                lambda: (
                    ws.public.statistics().pongs_received >= pings + 2
                    or ws.public.statistics().hedges > 0
                )
            )
            assert ws.public.statistics().hedges == 0
            assert [e for e in log.drain()[mark:] if isinstance(e, ConnectionStateChanged)] == []
