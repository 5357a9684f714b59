"""The subscription service over real loopback sockets against the simulator.

What the simulator received (it records every request per connection) is the ground truth
for what went on the wire; what components got is read from their subscriptions.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from tests.aio.connection_helpers import FAST
from tests.aio.subscription_helpers import MARKETS, Stack, next_item, requests_of, stack
from upbit_ws.aio.subscriptions import SubscriptionService
from upbit_ws.core.config import SubscriptionConfig, Timeouts
from upbit_ws.core.errors import ConfigError, InvalidInputError, UnknownCodeError
from upbit_ws.core.events import GapEvent, RequestRejected


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
        with pytest.raises(UnknownCodeError):
            comp.subscribe("myOrder", ["KRW-NOPE"])
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
    service = SubscriptionService(markets=MARKETS)
    sub = service.component("coins").subscribe("ticker", ["KRW-*", "BTC-ETH"])
    service.set_markets(set(MARKETS) - {"KRW-XRP", "BTC-ETH"})
    assert not sub.closed
    assert sub.codes == ("BTC-ETH", "KRW-BTC", "KRW-ETH", "KRW-SOL")


async def test_a_wildcard_before_the_market_list_waits_for_it() -> None:
    """Without a list, a wildcard subscribes to nothing yet and expands when the list arrives."""
    service = SubscriptionService()
    sub = service.component("coins").subscribe("ticker", ["KRW-*"])
    assert sub.codes == ()
    service.set_markets(MARKETS)
    assert sub.codes == ("KRW-BTC", "KRW-ETH", "KRW-SOL", "KRW-XRP")


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
    """subscriptions(ask_server=True) returns Upbit's LIST_SUBSCRIPTIONS answer beside ours."""
    async with stack() as st:
        sub = st.service.component("book").subscribe("orderbook", ["KRW-BTC"], depth=15)
        await next_item(sub)
        view = await st.service.subscriptions(ask_server=True)
        assert view.public.server is not None
        assert [(s.type, s.codes) for s in view.public.server] == [("orderbook", ("KRW-BTC",))]
        assert view.private.server is None  # no private connection in this stack
        assert "upbit  orderbook KRW-BTC" in str(view)
        kinds = [r.parsed.get("kind") for r in st.sim_public().requests]
        assert kinds == ["subscribe", "list_subscriptions"]


async def test_a_rejected_request_falls_back_to_the_last_accepted_subscription() -> None:
    """An error frame on a request in flight: RequestRejected, then the last good state.

    The bad request asks for an orderbook grouping level the host does not support: the KR
    host sends nothing for it, the Indonesia host answers WRONG_FORMAT and closes (section
    2.3). The simulator behaves like KR, so the test plays the Indonesia answer with an
    injected error while that request is in flight.
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
        st.service.component("book").subscribe("orderbook", ["KRW-BTC"], level=12345)
        await st.until(lambda: len(requests_of(st.sim_public())) == 2)
        assert st.service.statistics().public.in_flight
        first_socket = st.sim_public()
        st.sim.inject_error("WRONG_FORMAT", conn_id=first_socket.id)
        await st.until(lambda: any(isinstance(e, RequestRejected) for e in st.events))
        (rejected,) = [e for e in st.events if isinstance(e, RequestRejected)]
        assert (rejected.connection, rejected.name) == ("public", "WRONG_FORMAT")
        await st.until(lambda: st.sim_public() is not first_socket)
        (resent,) = await wait_requests(st, 1)
        # Upbit last accepted ticker KRW-BTC; the rejected state is not sent again as is.
        assert entries(resent) == {("ticker", "KRW-BTC", False)}
        assert (await next_item(coins)).code == "KRW-BTC"
        assert st.service.statistics().public.rejections == 1


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
    service = SubscriptionService(markets=MARKETS)
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
