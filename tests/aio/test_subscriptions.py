"""The subscription service over real loopback sockets against the simulator.

What the simulator received (it records every request per connection) is the ground truth
for what went on the wire; what components got is read from their subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

import orjson
import pytest
from aiohttp import web

from tests.aio.connection_helpers import FAST, fresh_limiter, running_sim
from tests.aio.subscription_helpers import (
    MARKETS,
    SMALL_SIM,
    Stack,
    attached_service,
    next_item,
    requests_of,
    stack,
)
from upbit_ws.aio.connection import ManagedConnection
from upbit_ws.aio.markets import MarketList
from upbit_ws.aio.rest import RestClient
from upbit_ws.aio.subscriptions import SubscriptionService
from upbit_ws.core.auth import Credentials
from upbit_ws.core.config import KeepaliveConfig, SubscriptionConfig, Timeouts
from upbit_ws.core.errors import (
    ConfigError,
    InvalidInputError,
    ServerRejectedError,
    TransportError,
    UnknownCodeError,
)
from upbit_ws.core.events import GapEvent, RequestRejected
from upbit_ws.simulator import Simulator


def entries(request: dict[str, object]) -> set[tuple[object, ...]]:
    """Return (type, code, realtime-only) for each entry of a recorded request."""
    return {
        (e["type"], e["code"], e["is_only_realtime"])
        for e in request["entries"]  # type: ignore[attr-defined]
    }


async def wait_requests(st: Stack, count: int) -> list[dict[str, object]]:
    await st.until(lambda: len(requests_of(st.sim_public())) >= count)
    return requests_of(st.sim_public())


async def test_changes_made_together_leave_as_one_request() -> None:
    """Two components subscribing in the same instant produce ONE request carrying both."""
    async with stack() as st:
        book = st.service.component("book").subscribe("orderbook", ["KRW-BTC"])
        chart = st.service.component("chart").subscribe("candle.1m", ["KRW-BTC"])
        await next_item(book)
        await next_item(chart)
        (request,) = await wait_requests(st, 1)
        assert entries(request) == {
            ("orderbook", "KRW-BTC", False),
            ("candle.1m", "KRW-BTC", False),
        }


async def test_streams_already_flowing_are_resent_realtime_only() -> None:
    """Adding a stream re-sends the flowing ones with is_only_realtime (no snapshot storm)."""
    async with stack() as st:
        coins = st.service.component("coins").subscribe("ticker", ["KRW-BTC", "KRW-ETH"])
        await next_item(coins)
        await st.until(lambda: st.service.statistics().public.confirmed_streams == 2)
        trades = st.service.component("tape").subscribe("trade", ["KRW-XRP"])
        await next_item(trades)
        _, second = await wait_requests(st, 2)
        assert entries(second) == {
            ("ticker", "KRW-BTC", True),
            ("ticker", "KRW-ETH", True),
            ("trade", "KRW-XRP", False),
        }


async def test_unknown_codes_raise_with_close_matches_and_send_nothing() -> None:
    """A typo raises UnknownCodeError naming close matches; Upbit would have said nothing."""
    async with stack() as st:
        comp = st.service.component("a")
        with pytest.raises(UnknownCodeError) as info:
            comp.subscribe("ticker", ["KRW-BTC", "KRW-BTX"])
        assert info.value.code == "KRW-BTX"
        assert "KRW-BTC" in info.value.suggestions
        with pytest.raises(UnknownCodeError) as flipped:
            comp.subscribe("trade", ["BTC-KRW"])
        assert flipped.value.suggestions[0] == "KRW-BTC"
        with pytest.raises(InvalidInputError, match="credentials"):
            comp.subscribe("myOrder", ["KRW-BTC"])  # no private connection in this stack
        with pytest.raises(InvalidInputError):
            comp.subscribe("orderbook", ["KRW-BTC.15"])  # the depth is an option
        with pytest.raises(InvalidInputError):
            comp.subscribe("myAsset", ["KRW-BTC"])
        with pytest.raises(InvalidInputError):
            comp.subscribe("ticker", [])
        with pytest.raises(InvalidInputError):
            comp.subscribe("tickers", ["KRW-BTC"])
        with pytest.raises(InvalidInputError):
            comp.subscribe("orderbook", ["KRW-BTC"], depth=20)
        assert comp.subscriptions() == ()
        assert st.service.subscriptions().public.desired == ()
        assert requests_of(st.sim_public()) == []


async def test_lowercase_codes_and_wildcards_are_normalised_and_expanded() -> None:
    """'krw-btc' becomes KRW-BTC; KRW-* expands to every listed KRW market."""
    async with stack() as st:
        markets = st.service.markets
        assert markets is not None
        krw = sorted(m for m in markets if m.startswith("KRW-"))
        sub = st.service.component("coins").subscribe("ticker", ["krw-*"])
        other = st.service.component("x").subscribe("trade", [" krw-eth "])
        assert sub.codes == tuple(krw) and other.codes == ("KRW-ETH",)
        await next_item(sub)
        (request,) = await wait_requests(st, 1)
        assert {c for t, c, _ in entries(request) if t == "ticker"} == set(krw)


async def test_a_market_list_refresh_adds_new_listings_and_drops_delisted_ones() -> None:
    """Wildcards are re-expanded when the list changes, and the new set goes on the wire."""
    async with stack() as st:
        sub = st.service.component("coins").subscribe("ticker", ["KRW-*"])
        await next_item(sub)
        markets = st.service.markets
        assert markets is not None
        delisted = "KRW-XRP"
        st.service.set_markets((markets - {delisted}) | {"KRW-NEWCOIN"})
        assert "KRW-NEWCOIN" in sub.codes and delisted not in sub.codes
        requests = await wait_requests(st, 2)
        codes = {c for _, c, _ in entries(requests[-1])}
        assert "KRW-NEWCOIN" in codes and delisted not in codes
        assert await st.service.refresh_markets()  # the simulator's list comes back
        assert delisted in sub.codes and "KRW-NEWCOIN" not in sub.codes


async def test_a_delisting_keeps_explicit_codes_that_were_checked_before() -> None:
    """A refresh drops delisted codes from wildcards but never fails a checked subscription."""
    service = attached_service("public")
    sub = service.component("coins").subscribe("ticker", ["KRW-*", "BTC-ETH"])
    service.set_markets(set(MARKETS) - {"KRW-XRP", "BTC-ETH"})
    assert not sub.closed
    assert sub.codes == ("BTC-ETH", "KRW-BTC", "KRW-ETH", "KRW-SOL")


async def test_a_wildcard_before_the_market_list_waits_for_it() -> None:
    """Without a list, a wildcard subscribes to nothing yet and expands when the list arrives."""
    service = attached_service("public", markets=None)
    sub = service.component("coins").subscribe("ticker", ["KRW-*"])
    assert sub.codes == ()
    service.set_markets(MARKETS)
    assert sub.codes == ("KRW-BTC", "KRW-ETH", "KRW-SOL", "KRW-XRP")


async def test_a_market_list_that_failed_is_retried_as_soon_as_a_socket_opens() -> None:
    """Offline at start, the list fails to load and KRW-* waits for it while the retries back
    off (here from 30 s). A socket that opens proves the network is back: the channel's
    on_opened hook (retry_if_failed) loads it at once instead."""
    async with running_sim() as sim:
        sim.refuse(1.0, status=None)  # the port (REST too) goes away for 1 s
        async with RestClient(sim.url) as rest:
            markets = MarketList(
                rest,
                markets=None,
                refresh_every=300.0,
                on_change=lambda old, new: None,
                retry_first=30.0,
            )
            assert not await markets.load(wait=2.0)
            runner = asyncio.create_task(markets.run())
            try:
                async with asyncio.timeout(10):  # the backoff alone: 30 s
                    while markets.codes is None:
                        markets.retry_if_failed()  # as each (re)connect attempt would
                        await asyncio.sleep(0.1)
            finally:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
    assert markets.codes is not None and "KRW-BTC" in markets.codes
    assert markets.statistics().failures >= 1


async def test_leaving_everything_quiesces_the_socket_without_closing_it() -> None:
    """With nothing wanted, one is_only_snapshot request stops the streams; the socket stays."""
    async with stack() as st:
        sub = st.service.component("a").subscribe("trade", ["KRW-BTC"])
        await next_item(sub)
        generation = st.public.generation
        await sub.aclose()
        requests = await wait_requests(st, 2)
        last = requests[-1]["entries"]
        assert [(e["type"], e["is_only_snapshot"]) for e in last] == [("ticker", True)]  # type: ignore[index]
        assert st.public.is_open and st.public.generation == generation
        stats = st.service.statistics().public
        assert stats.quiesce_requests == 1
        again = st.service.component("b").subscribe("trade", ["KRW-ETH"])
        assert (await next_item(again)).code == "KRW-ETH"


async def test_upbit_is_asked_what_it_streams_with_list_subscriptions() -> None:
    """list_subscriptions() returns Upbit's LIST_SUBSCRIPTIONS answer beside ours."""
    async with stack() as st:
        sub = st.service.component("book").subscribe("orderbook", ["KRW-BTC"], depth=15)
        await next_item(sub)
        view = await st.service.list_subscriptions()
        assert view.public.server is not None
        assert [(s.type, s.codes) for s in view.public.server] == [("orderbook", ("KRW-BTC",))]
        assert view.private.server is None  # no private connection in this stack
        assert "upbit  orderbook KRW-BTC" in str(view)
        kinds = [r.parsed.get("kind") for r in st.sim_public().requests]
        assert kinds == ["subscribe", "list_subscriptions"]


async def test_a_rejected_request_falls_back_to_the_last_accepted_subscription() -> None:
    """An error frame on a request in flight, twice in a row: the last good state, loudly.

    The bad request asks for an orderbook grouping level the host does not support: the KR
    host sends nothing for it, the Indonesia host answers WRONG_FORMAT and closes (section
    2.3). The simulator behaves like KR, so it is told to answer the next two subscription
    requests with WRONG_FORMAT as they arrive (the Indonesia answer, while each request is
    in flight on the client: a socket that is refused streams nothing that could confirm
    it). The first rejection may be spurious (issue #9), so the same state is sent again;
    rejected again, the planner falls back and the subscription that added the refused
    stream fails with ServerRejectedError.
    """
    # Long confirmation windows keep the bad request in flight until the error comes.
    config = replace(
        FAST,
        timeouts=Timeouts(subscription_change=30.0),
        subscriptions=SubscriptionConfig(confirm_quiet=30.0),
    )
    async with stack(service_options={"config": config}) as st:
        coins = st.service.component("coins").subscribe("ticker", ["KRW-BTC"])
        await next_item(coins)
        await st.until(lambda: st.service.statistics().public.confirmed_streams == 1)
        first_socket = st.sim_public()
        st.sim.reject_requests(2, name="WRONG_FORMAT")
        book = st.service.component("book").subscribe("orderbook", ["KRW-BTC"], level=12345)
        await st.until(lambda: any(isinstance(e, RequestRejected) for e in st.events))
        (rejected,) = [e for e in st.events if isinstance(e, RequestRejected)]
        assert (rejected.connection, rejected.name) == ("public", "WRONG_FORMAT")
        assert len(requests_of(first_socket)) == 2
        await st.until(lambda: st.sim_public() is not first_socket)
        (again,) = await wait_requests(st, 1)
        # Rejected once: the same state goes out again on the new socket.
        assert len(entries(again)) == 2 and ("ticker", "KRW-BTC", False) in entries(again)
        second_socket = st.sim_public()
        with pytest.raises(ServerRejectedError):
            await next_item(book)
        await st.until(lambda: st.sim_public() is not second_socket)
        (resent,) = await wait_requests(st, 1)
        # Upbit last accepted ticker KRW-BTC; the state rejected twice is not sent again.
        assert entries(resent) == {("ticker", "KRW-BTC", False)}
        assert (await next_item(coins)).code == "KRW-BTC"
        assert st.service.statistics().public.rejections == 2


async def test_old_frames_in_flight_after_a_resubscribe_are_dropped_and_counted() -> None:
    """Frames of the replaced request (section 3.2) never reach the component."""
    async with stack(sim_options={"stale_frames_after_resubscribe": 3}) as st:
        book = st.service.component("book").subscribe("orderbook", ["KRW-BTC"])
        await next_item(book)
        await book.update(["KRW-ETH"])
        for _ in range(5):
            assert (await next_item(book)).code == "KRW-ETH"
        assert st.service.statistics().public.router.unwanted >= 1


async def test_change_latency_is_measured_to_the_first_frame_of_the_new_stream() -> None:
    """A switch is confirmed by data, and its latency lands in the statistics."""
    async with stack() as st:
        book = st.service.component("book").subscribe("orderbook", ["KRW-BTC"])
        await next_item(book)
        await book.update(["KRW-ETH"])
        while (await next_item(book)).code != "KRW-ETH":
            pass
        await st.until(lambda: st.service.statistics().public.change_latency.count == 2)
        stats = st.service.statistics().public
        assert stats.confirmed_by_data == 2
        assert stats.change_latency.max_ms is not None and stats.change_latency.max_ms < 2_000


async def test_a_reconnect_sends_everything_fresh_and_reports_gaps_for_event_streams() -> None:
    """After an abort the full set goes again with snapshots; trade and candle get Gap events."""
    async with stack() as st:
        tape = st.service.component("tape").subscribe("trade", ["KRW-BTC"])
        chart = st.service.component("chart").subscribe("candle.1m", ["KRW-BTC"])
        coins = st.service.component("coins").subscribe("ticker", ["KRW-BTC"])
        await next_item(coins)
        first = st.sim_public()
        st.sim.abort(first.id)
        await st.until(lambda: st.sim_public() is not first)
        (request,) = await wait_requests(st, 1)
        assert entries(request) == {
            ("trade", "KRW-BTC", False),
            ("candle.1m", "KRW-BTC", False),
            ("ticker", "KRW-BTC", False),
        }
        gaps = sorted((e.type, e.reason) for e in st.events if isinstance(e, GapEvent))
        assert gaps == [("candle.1m", "reconnect"), ("trade", "reconnect")]
        assert (await next_item(tape)).code == "KRW-BTC"
        assert (await next_item(chart)).code == "KRW-BTC"


async def test_statistics_and_view_describe_the_merged_state() -> None:
    """statistics() and subscriptions() show book, channels, markets and components."""
    async with stack() as st:
        st.service.component("coins").subscribe("ticker", ["KRW-*"])
        st.service.component("book").subscribe("orderbook", ["KRW-BTC"], depth=5)
        await st.until(lambda: st.service.statistics().public.confirmed_streams > 0)
        stats = st.service.statistics()
        assert stats.book.components == 2
        assert stats.markets.markets is not None and stats.markets.loads == 1
        assert len(stats.subscriptions) == 2
        view = st.service.subscriptions()
        assert set(view.components) == {"coins", "book"}
        text = str(view)
        assert "orderbook KRW-BTC.5" in text and "component coins: ticker KRW-*" in text


async def test_service_timings_are_validated_all_at_once() -> None:
    """Bad subscription timings raise one ConfigError listing each problem."""
    with pytest.raises(ConfigError) as info:
        SubscriptionConfig(coalesce=-1, confirm_quiet=0)
    assert "coalesce" in str(info.value) and "confirm_quiet" in str(info.value)
    assert len(info.value.problems) == 2


async def test_a_service_runs_once_and_stops_cleanly() -> None:
    """start() twice is misuse; aclose() ends its tasks and the subscriptions."""
    service = attached_service("public")
    sub = service.component("a").subscribe("trade", ["KRW-BTC"])
    await service.start()
    with pytest.raises(InvalidInputError):
        await service.start()
    await service.aclose()
    async with asyncio.timeout(1):
        assert [m async for m in sub] == []


async def test_a_silent_new_stream_is_confirmed_and_counted_after_the_change_timeout() -> None:
    """A level Upbit ignores silently (BTC market, section 2.3) is counted as a silent change."""
    config = replace(FAST, timeouts=Timeouts(subscription_change=0.3))
    async with stack(service_options={"config": config}) as st:
        markets = st.service.markets or frozenset()
        btc_market = min(m for m in markets if m.startswith("BTC-"))
        st.service.component("book").subscribe("orderbook", [btc_market], level=1000)
        stats = st.service.statistics
        await st.until(lambda: stats().public.silent_changes == 1, within=5.0)
        assert stats().public.confirmed_streams == 1
        assert stats().public.confirmed_by_data == 0


#: Confirmation windows long enough that a request stays in flight until the test acts.
SLOW_CONFIRM = replace(
    FAST,
    timeouts=Timeouts(subscription_change=30.0),
    subscriptions=SubscriptionConfig(confirm_quiet=30.0),
)


@pytest.mark.parametrize("name", ["TOO_MANY_REQUEST", "WRONG_FORMAT"])
async def test_an_error_answering_a_removal_never_unsubscribes_the_rest(name: str) -> None:
    """Review #2: an error frame while a removal is in flight; the rest is re-sent after it.

    ``TOO_MANY_REQUEST`` does not say the request was malformed, so it is no rejection at
    all; ``WRONG_FORMAT`` does, but every stream of the removal was accepted before, so the
    planner does not remember it. Either way the new socket gets ``ticker KRW-BTC``.
    """
    async with stack(service_options={"config": SLOW_CONFIRM}) as st:
        a = st.service.component("a").subscribe("ticker", ["KRW-BTC"])
        b = st.service.component("b").subscribe("ticker", ["KRW-ETH"])
        await next_item(a)
        first_socket = st.sim_public()
        await st.until(lambda: st.service.statistics().public.router.routes == 2)
        # The first request is confirmed by its data; the removal then stays in flight.
        await st.until(lambda: not st.service.statistics().public.in_flight)
        await b.aclose()
        await st.until(lambda: len(requests_of(first_socket)) == 2)
        assert st.service.statistics().public.in_flight
        st.sim.inject_error(name, conn_id=first_socket.id)
        await st.until(lambda: st.sim_public() is not first_socket)
        (resent,) = await wait_requests(st, 1)
        assert entries(resent) == {("ticker", "KRW-BTC", False)}
        while a.pending:
            await next_item(a)
        assert (await next_item(a)).code == "KRW-BTC"
        stats = st.service.statistics().public
        rejected = [e for e in st.events if isinstance(e, RequestRejected)]
        if name == "TOO_MANY_REQUEST":
            assert (stats.rejections, stats.other_errors, rejected) == (0, 1, [])
        else:
            assert (stats.rejections, stats.other_errors, len(rejected)) == (1, 0, 1)
            assert stats.planner.rejections_ignored == 1


async def test_a_late_joiner_to_a_stream_nobody_cached_gets_a_fresh_snapshot() -> None:
    """Review #4: the last holder left, its route was let go, then someone joins again.

    The removal still waits in the coalescing window, so the desired state does not change
    and nothing cached can seed the newcomer: the next request must send the quiet ticker
    again without is_only_realtime so that Upbit sends its snapshot.
    """
    quiet = "BTC-XRP"
    config = replace(FAST, subscriptions=SubscriptionConfig(coalesce=0.5))
    async with stack(
        sim_options={"quiet_trades_per_second": 0.001}, service_options={"config": config}
    ) as st:
        busy = st.service.component("busy").subscribe("orderbook", ["KRW-BTC"])
        first = st.service.component("first").subscribe("ticker", [quiet])
        assert (await next_item(first)).code == quiet
        await next_item(busy)
        await st.until(lambda: not st.service.statistics().public.in_flight)
        await first.aclose()
        # A busy frame arrives first, so the router lets the quiet route go.
        await st.until(lambda: st.service.statistics().public.router.routes == 1)
        late = st.service.component("late").subscribe("ticker", [quiet])
        assert late.pending == 0  # nothing cached to seed it with
        snapshot = await next_item(late, 3.0)
        assert (snapshot.code, snapshot.stream_type) == (quiet, "SNAPSHOT")
        last = requests_of(st.sim_public())[-1]
        assert ("ticker", quiet, False) in entries(last)
        assert ("orderbook", "KRW-BTC", True) in entries(last)
        assert st.service.statistics().public.planner.snapshots_requested == 1


async def test_a_quiet_stream_s_repeated_snapshot_confirms_the_reconnect_s_request() -> None:
    """After a reconnect, a quiet code's snapshot equals the last message delivered, so the
    subscriber does not get it again; it still proves that Upbit serves the stream. Before,
    the suppressed snapshot did not count: the request stayed in flight for the whole change
    timeout and the log said Upbit sent nothing for the "new" streams (an unknown code?)."""
    quiet = "BTC-XRP"
    config = replace(FAST, timeouts=Timeouts(subscription_change=3.0))
    async with stack(sim_options={"quiet_trades_per_second": 0.0}, connection_config=config) as st:
        sub = st.service.component("quiet").subscribe("ticker", [quiet])
        assert (await next_item(sub)).stream_type == "SNAPSHOT"
        await st.until(lambda: not st.service.statistics().public.in_flight)
        before = st.service.statistics().public
        first = st.sim_public()
        st.sim.abort()
        await st.until(lambda: st.sim_public() is not first and bool(st.sim_public().requests))
        await st.until(lambda: not st.service.statistics().public.in_flight, within=5.0)
        after = st.service.statistics().public
        assert after.router.duplicate_snapshots == before.router.duplicate_snapshots + 1
        assert after.confirmed_by_data == before.confirmed_by_data + 1
        assert after.silent_changes == before.silent_changes == 0
        assert sub.pending == 0  # the repeated snapshot is still not delivered twice


#: Keepalive slow enough that a blackholed socket outlives the test.
PATIENT = replace(FAST, keepalive=KeepaliveConfig(ping_interval=30.0, pong_timeout=5.0))


async def test_list_subscriptions_answers_are_matched_by_their_ticket() -> None:
    """Review M7: Upbit echoes the LIST request's ticket (section 3.3); answers go by it."""
    async with stack(connection_config=PATIENT) as st:
        st.sim.blackhole(30.0)  # the simulator's own answers never come
        ask = st.service.listener("public")
        first = asyncio.create_task(st.service.list_subscriptions())
        await st.until(lambda: st.service.statistics().public.list_requests == 1)
        second = asyncio.create_task(st.service.list_subscriptions())
        await st.until(lambda: len(st.sim_public().requests) == 2)
        tickets = [r.parsed["ticket"] for r in st.sim_public().requests]
        # The answers arrive in the other order, each naming what it answers.
        for ticket, code in ((tickets[1], "KRW-ETH"), (tickets[0], "KRW-BTC")):
            body = {"method": "LIST_SUBSCRIPTIONS", "result": [{"type": "ticker", "codes": [code]}]}
            ask.on_frame(orjson.dumps({**body, "ticket": ticket}), 0.0)
        one, two = await asyncio.wait_for(asyncio.gather(first, second), 2.0)
        assert one.public.server is not None and two.public.server is not None
        assert one.public.server[0].codes == ("KRW-BTC",)
        assert two.public.server[0].codes == ("KRW-ETH",)


async def test_a_pending_list_question_ends_with_an_error_when_the_service_closes() -> None:
    """Review S3: closing the service fails a waiting LIST question, never cancels the caller."""
    async with stack(connection_config=PATIENT) as st:
        st.sim.blackhole(30.0)
        asking = asyncio.create_task(st.service.list_subscriptions())
        await st.until(lambda: st.service.statistics().public.list_requests == 1)
        await st.service.aclose()
        with pytest.raises(TransportError, match="closed before Upbit answered"):
            await asyncio.wait_for(asking, 2.0)
        assert not asking.cancelled()


async def test_the_view_describes_the_current_socket_not_the_last_one() -> None:
    """Review M2: while reconnecting, the view shows nothing sent and nothing applied."""
    async with stack() as st:
        coins = st.service.component("coins").subscribe("ticker", ["KRW-BTC"])
        await next_item(coins)
        await st.until(lambda: "last request applied" in str(st.service.subscriptions()))
        st.sim.refuse(30.0, how="status", status=503)
        st.sim.abort()
        await st.until(lambda: st.public.state == "reconnecting")
        view = st.service.subscriptions().public
        assert view.lines()[0].startswith("public (reconnecting): 1 streams wanted, 0 confirmed")
        assert "nothing sent on this socket yet" in view.lines()[0]
        assert (view.last_request, view.confirmed, view.applied) == ((), (), False)


async def test_the_view_before_the_first_socket_does_not_say_no_connection() -> None:
    """Review M2: an attached connection that has not opened yet is not 'no connection'."""
    service = attached_service("public")
    service.component("coins").subscribe("ticker", ["KRW-BTC"])
    head = service.subscriptions().public.lines()[0]
    assert head.startswith("public (idle): 1 streams wanted, 0 confirmed")
    assert "nothing sent on this socket yet" in head
    attached = SubscriptionService(markets=MARKETS)
    attached.attach(ManagedConnection("public", url="ws://127.0.0.1:9", config=FAST))
    assert attached.subscriptions().public.lines()[0].startswith("public (idle): 0 streams")


async def test_a_detached_connection_refuses_subscriptions_and_looking_it_up_attaches_nothing() -> (
    None
):
    """Issue 16.4: a type whose connection is not attached is refused; listener() is a lookup."""
    service = SubscriptionService(markets=MARKETS)
    service.listener("public")
    with pytest.raises(InvalidInputError, match="not attached"):
        service.component("coins").subscribe("ticker", ["KRW-BTC"])
    assert service.subscriptions().public.desired == ()


async def test_list_subscriptions_asks_both_connections_at_once() -> None:
    """Review M7: the private question goes out while the public one still waits."""
    async with Simulator(port=0, **SMALL_SIM) as sim, RestClient(sim.url) as rest:
        service = SubscriptionService(rest=rest, config=FAST)
        public = ManagedConnection(
            "public", url=sim.ws_url, config=PATIENT, connect_limiter=fresh_limiter()
        )
        private = ManagedConnection(
            "private",
            url=sim.private_ws_url,
            config=PATIENT,
            credentials=Credentials(*sim.credentials),
            connect_limiter=fresh_limiter(),
        )
        service.attach(public)
        service.attach(private)
        await service.start()
        async with public, private:
            await asyncio.wait_for(public.wait_open(), 5.0)
            await asyncio.wait_for(private.wait_open(), 5.0)
            (pub,) = [c for c in sim.connections() if c.kind == "public"]
            sim.blackhole(30.0, conn_id=pub.id)  # public never answers
            asking = asyncio.create_task(service.list_subscriptions())

            def private_asked() -> bool:
                return any(c.kind == "private" and c.requests for c in sim.connections())

            async with asyncio.timeout(1.0):  # well before the public answer times out (2 s)
                await sim.wait_for(private_asked)
            asking.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asking
        await service.aclose()


async def test_an_empty_or_truncated_market_list_keeps_the_known_one() -> None:
    """Review S6: a refresh answering [] or a fraction of the list does not empty wildcards."""
    listed = [f"KRW-C{i:02d}" for i in range(20)]
    served: list[list[str]] = [listed]

    async def market_all(request: web.Request) -> web.Response:
        return web.json_response(
            [{"market": m, "korean_name": m, "english_name": m} for m in served[0]]
        )

    app = web.Application()
    app.router.add_get("/v1/market/all", market_all)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with RestClient(f"http://127.0.0.1:{port}") as rest:
            service = attached_service("public", markets=None, rest=rest)
            assert await service.refresh_markets()
            coins = service.component("coins").subscribe("ticker", ["KRW-*"])
            assert len(coins.codes) == 20
            for short in ([], listed[:3]):
                served[0] = short
                assert not await service.refresh_markets()
                assert len(coins.codes) == 20 and service.markets == frozenset(listed)
            stats = service.statistics().markets
            assert (stats.loads, stats.anomalies) == (1, 2)
            assert stats.last_error is not None and "kept the known list" in stats.last_error
            served[0] = listed[:15]  # an ordinary delisting is taken at once
            assert await service.refresh_markets()
            assert len(coins.codes) == 15
            served[0] = listed[:3]  # a drastic cut is taken only when it persists
            assert not await service.refresh_markets()
            assert not await service.refresh_markets()
            assert await service.refresh_markets()
            assert coins.codes == tuple(listed[:3])
    finally:
        await runner.cleanup()
