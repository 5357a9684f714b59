"""Readiness and fail-fast misconfiguration (issue 15), over loopback sockets and the simulator."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from tests.aio.connection_helpers import (
    FAST,
    EventLog,
    fresh_limiter,
    running_sim,
    sim_connection,
    sim_until,
)
from upbit_ws.aio.manager import WebSocketManager, websocket_urls
from upbit_ws.aio.rest import RestClient
from upbit_ws.core.auth import Credentials
from upbit_ws.core.config import SubscriptionConfig
from upbit_ws.core.errors import AuthError, ConfigError, InvalidInputError, NotReadyError
from upbit_ws.core.events import ConnectionMisconfigured, ConnectionStateChanged
from upbit_ws.simulator import Simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """Run a wall-clock simulator."""
    async with running_sim() as running:
        yield running


def manager(base_url: str, **options: object) -> WebSocketManager:
    """Build a manager with the fast test timings."""
    return WebSocketManager(
        base_url=base_url,
        config=FAST,
        connect_limiter=fresh_limiter(),
        **options,  # type: ignore[arg-type]
    )


def free_port() -> int:
    """Return a loopback port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_wait_ready_returns_once_open_and_confirmed(sim: Simulator) -> None:
    """wait_ready() returns when public and private are open and the subscription applied."""
    ws = manager(sim.url, credentials=Credentials(*sim.credentials))
    async with ws:
        sub = ws.component("view").subscribe("ticker", ["KRW-BTC"])
        await ws.wait_ready(timeout=10)
        view = ws.subscriptions()
        assert set(view.public.confirmed) == set(view.public.desired) != set()
        assert ws.public.is_open and ws.private is not None and ws.private.is_open
        health = ws.health()
        assert health.ok and all(c.reason is None for c in health.connections)
        await sub.aclose()


async def test_a_private_resubscription_is_ready_without_the_quiet_window(sim: Simulator) -> None:
    """After a private reconnect, the re-sent myOrder/myAsset request counts once it is sent.

    Nothing but a quiet window can confirm a private request (no snapshot, no data). The first
    one waits it out (``confirm_quiet``, long here); after the socket is replaced, the same
    streams go out again and ``wait_ready()`` returns while that request is still in flight.
    """
    config = replace(FAST, subscriptions=SubscriptionConfig(confirm_quiet=4.0))
    ws = WebSocketManager(
        base_url=sim.url,
        config=config,
        connect_limiter=fresh_limiter(),
        credentials=Credentials(*sim.credentials),
    )
    async with ws:
        orders = ws.component("bot").subscribe("myOrder")
        assets = ws.component("wallet").subscribe("myAsset")
        await ws.wait_ready(timeout=15)  # the first request: the whole quiet window
        assert not ws.subscriptions().private.resent
        first = sim_connection(sim, "private")
        sim.abort(first.id)

        def resubscribed() -> bool:
            return any(
                c.kind == "private" and c.id != first.id and c.entries for c in sim.connections()
            )

        await sim_until(sim, resubscribed, within=15)
        await ws.wait_ready(timeout=1.0)  # well inside the 4 s window
        view = ws.subscriptions().private
        assert view.in_flight and view.resent  # ready before the window confirmed it
        await orders.aclose()
        await assets.aclose()


async def test_ready_timeout_makes_start_wait(sim: Simulator) -> None:
    """With ready_timeout, health is ok as soon as ``async with`` returns (private too)."""
    async with manager(sim.url, credentials=Credentials(*sim.credentials), ready_timeout=10) as ws:
        assert ws.health().ok


async def test_handshake_404_raises_config_error_at_start(sim: Simulator) -> None:
    """A WebSocket path that answers 404 fails start() at once with the fix, not a timeout."""
    sim.refuse(60, how="status", status=404)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(ConfigError) as info:
        async with manager(sim.url, ready_timeout=30):
            pass
    assert "404" in str(info.value) and "https://api.upbit.com" in str(info.value)
    assert loop.time() - began < 20  # raised on the failure, not when ready_timeout ran out


async def test_handshake_404_is_one_event_and_one_log_line(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Without waiting, a lasting 404 is one event and one log line, not one per retry."""
    sim.refuse(60, how="status", status=404)
    caplog.set_level(logging.INFO, logger="upbit_ws")
    ws = manager(sim.url)
    log = EventLog(ws.events())
    async with ws:
        for _ in range(4):  # several retries of the same failure
            await log.state("public", "reconnecting", within=10)
        events = [e for e in log.drain() if isinstance(e, ConnectionMisconfigured)]
        assert len(events) == 1 and "404" in events[0].problem
    noisy = [
        r
        for r in caplog.records
        if r.name.startswith("upbit_ws.")
        and r.levelno >= logging.INFO
        and "public" in r.message
        and ("retrying" in r.message or "-> reconnecting" in r.message or "404" in r.message)
    ]
    assert len(noisy) == 1, [r.message for r in noisy]
    assert noisy[0].levelno == logging.ERROR


async def test_unresolvable_host_raises_config_error() -> None:
    """A host that does not resolve fails a waiting start() with a ConfigError naming it."""
    try:
        socket.getaddrinfo("nonexistent.invalid", 8080)
    except socket.gaierror as exc:
        if exc.errno not in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)):
            pytest.skip(f"this machine's resolver gives no definite answer ({exc})")
    else:
        pytest.skip("this machine's resolver answers for a .invalid name")
    with pytest.raises(ConfigError, match="does not resolve"):
        async with manager("http://nonexistent.invalid:8080", ready_timeout=30):
            pass


async def test_nothing_listening_times_out_naming_the_failure() -> None:
    """A port with nothing listening may come up later: NotReadyError names the refusal."""
    port = free_port()
    ws = manager(f"http://127.0.0.1:{port}")
    log = EventLog(ws.events())
    async with ws:
        await log.state("public", "reconnecting", within=10)  # a refused connect so far
        with pytest.raises(NotReadyError) as info:
            await ws.wait_ready(timeout=0.5)
    assert info.value.problems and info.value.problems[0].startswith("public: ")
    assert str(port) in str(info.value)
    assert ws.public.statistics().failures >= 1


async def test_refused_key_raises_auth_error_at_start(sim: Simulator) -> None:
    """Keys Upbit refuses fail a waiting start() with AuthError, never a timeout."""
    bad = Credentials("not-a-key", "not-a-secret")
    with pytest.raises(AuthError, match="refused"):
        async with manager(sim.url, credentials=bad, ready_timeout=30):
            pass


async def test_health_reason_describes_now(sim: Simulator) -> None:
    """After a failure the connection opens again: reason is None, statistics keep history."""
    sim.refuse(60, how="status", status=503)
    ws = manager(sim.url)
    log = EventLog(ws.events())
    async with ws:
        await log.wait_for(ConnectionStateChanged, lambda e: e.new == "reconnecting")
        assert ws.health().connections[0].reason is not None  # down: it says why
        sim.refuse(0, how="status", status=503)  # the refusal ends now
        await ws.wait_ready(timeout=10)
        health = ws.health()
        (public,) = health.connections
        assert public.ok and public.reason is None
        assert ws.statistics().public.last_error is not None
        assert abs(health.at_wall - public.since_wall) < 60
        assert public.since <= health.at


@pytest.mark.parametrize(
    ("base", "fix"),
    [
        ("wss://api.upbit.com/websocket/v1", "'https://api.upbit.com'"),
        ("ws://127.0.0.1:8080", "'http://127.0.0.1:8080'"),
        ("https://api.upbit.com/v1", "'https://api.upbit.com'"),
        ("https://api.upbit.com/websocket/v1", "WebSocket path"),
        ("http://127.0.0.1:8080/some/path", "'http://127.0.0.1:8080'"),
        ("https://api.upbit.com/?a=1", "query"),
        ("ftp://x", "https://HOST"),
        # The resolver's IDNA encoding refuses these; the connect failed with a UnicodeError.
        ("https://" + "a" * 70 + ".com", "not a valid host name"),
        ("https://api..upbit.com", "not a valid host name"),
    ],
)
def test_base_url_says_how_to_fix(base: str, fix: str) -> None:
    """base_url takes only http(s)://HOST[:PORT]; anything else is a ConfigError with the fix."""
    with pytest.raises(ConfigError, match="base_url") as info:
        websocket_urls(base)
    assert fix in str(info.value)


def test_base_url_trailing_slash_is_accepted() -> None:
    """A single trailing slash is the documented base URL too."""
    assert websocket_urls("https://api.upbit.com/")[0] == "wss://api.upbit.com/websocket/v1"
    assert websocket_urls("http://[::1]:8080")[0] == "ws://[::1]:8080/websocket/v1"


async def test_unsupported_orderbook_level_raises_at_subscribe(sim: Simulator) -> None:
    """level=7 on KRW-BTC is refused at subscribe time, naming the levels Upbit supports."""
    async with manager(sim.url, ready_timeout=10) as ws:
        (info,) = await ws.rest.orderbook_instruments("KRW-BTC")
        with pytest.raises(InvalidInputError, match="supported: ") as refused:
            ws.component("book").subscribe("orderbook", ["krw-btc"], level=7)
        assert "KRW-BTC" in str(refused.value)
        assert all(f"{v.normalize():f}" in str(refused.value) for v in info.supported_levels)
        good = float(max(info.supported_levels))
        assert good > 0
        sub = ws.component("book").subscribe("orderbook", ["KRW-BTC"], level=good)
        async with asyncio.timeout(10):
            frame = await anext(aiter(sub))
        assert frame.code == "KRW-BTC"
        await sub.aclose()


async def test_a_level_that_is_no_number_is_refused_at_subscribe(sim: Simulator) -> None:
    """Once the instruments are loaded, a string or True reached Decimal() and raised
    decimal.InvalidOperation, and NaN, inf and -1 read as 'not supported by KRW-BTC'."""
    async with manager(sim.url, ready_timeout=10) as ws:
        await ws.rest.orderbook_instruments("KRW-BTC")
        for level in ("x", True, float("nan"), float("inf"), -1):
            with pytest.raises(InvalidInputError, match="must be a finite number >= 0"):
                ws.component("book").subscribe("orderbook", ["KRW-BTC"], level=level)  # type: ignore[arg-type]


@pytest.mark.parametrize("offline_at_start", [False, True])
async def test_level_checked_when_instruments_load(sim: Simulator, offline_at_start: bool) -> None:
    """A subscription made before the levels are known fails loudly once they load. Offline
    at start (the port, REST included, closed for the first second) they could not load and
    stayed unchecked for good, so the level got Upbit's silence; they now load once the
    market list does."""
    if offline_at_start:
        sim.refuse(1.0, status=None)
    ws = manager(sim.url)
    sub = ws.component("book").subscribe("orderbook", ["KRW-BTC"], level=7)
    async with ws:
        with pytest.raises(InvalidInputError, match="level 7 is not supported"):
            async with asyncio.timeout(15):
                await anext(aiter(sub))
        assert ws.subscriptions().public.desired == ()


async def test_update_to_a_market_without_the_level_is_refused(sim: Simulator) -> None:
    """Switching an orderbook with a level to a market lacking it raises; the codes stay."""
    async with manager(sim.url, ready_timeout=10) as ws:
        (krw,) = await ws.rest.orderbook_instruments("KRW-BTC")
        level = float(max(krw.supported_levels))
        sub = ws.component("book").subscribe("orderbook", ["KRW-BTC"], level=level)
        btc_market = next(
            c for c in sorted(ws.subscription_service.markets or ()) if c.startswith("BTC-")
        )
        with pytest.raises(InvalidInputError, match=btc_market):
            await sub.update([btc_market])
        assert sub.codes == ("KRW-BTC",)
        await sub.aclose()


async def test_events_carry_wall_clock_time(sim: Simulator) -> None:
    """Every event from ws.events() has at_wall in epoch seconds beside its monotonic at."""
    ws = manager(sim.url)
    log = EventLog(ws.events())
    before = time.time()
    async with ws:
        opened = await log.state("public", "open")
    after = time.time()
    assert opened.at_wall is not None
    assert before - 1 <= opened.at_wall <= after + 1


async def test_statistics_carry_wall_clock_times(sim: Simulator) -> None:
    """Connection and key statistics give epoch seconds beside their monotonic times."""
    before = time.time()
    async with manager(sim.url, credentials=Credentials(*sim.credentials), ready_timeout=10) as ws:
        stats = ws.statistics()
    after = time.time()
    assert before - 1 <= stats.public.state_since_wall <= after + 1
    assert stats.key is not None and stats.key.last_check_at_wall is not None
    assert before - 1 <= stats.key.last_check_at_wall <= after + 1


def test_rest_client_takes_the_same_base_url() -> None:
    """RestClient refuses the base URLs the manager refuses, with the same fix."""
    with pytest.raises(ConfigError, match=r"'https://api\.upbit\.com'"):
        RestClient("https://api.upbit.com/v1")
    assert RestClient("https://api.upbit.com/").base_url == "https://api.upbit.com"
