"""The Textual dashboard of ``upbit-ws demo``, driven headless by Textual's pilot.

Each test runs a small simulator, a manager on it (with the simulator's key pair, so both
connections show) and the app in ``run_test()``; it waits on conditions (polled every 50 ms,
generous bounds for a loaded machine), never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

pytest.importorskip("textual")
pytest.importorskip("textual_plotext")

from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import DataTable

from tests.aio.connection_helpers import fresh_limiter
from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.cli.dashboard.app import DashboardApp, HelpScreen
from upbit_ws.core.auth import Credentials
from upbit_ws.simulator import Simulator

#: A small market keeps the tests light; KRW-BTC and KRW-ETH are always listed and busy.
SIM_OPTIONS: dict[str, Any] = {"krw_markets": 20, "btc_markets": 3, "usdt_markets": 3}
#: Generous bound for anything the dashboard should show (a loaded 2-core machine).
WITHIN = 30.0


@asynccontextmanager
async def dashboard() -> AsyncIterator[tuple[Simulator, DashboardApp, Pilot[None]]]:
    """Run a simulator, a manager with both connections, and the app under the pilot."""
    async with Simulator(port=0, **SIM_OPTIONS) as sim:
        ws = WebSocketManager(
            base_url=sim.url,
            credentials=Credentials(*sim.credentials),
            connect_limiter=fresh_limiter(),
        )
        async with ws:
            app = DashboardApp(ws, sim=sim, history=5)
            async with app.run_test(size=(170, 48)) as pilot:
                yield sim, app, pilot


async def until(pilot: Pilot[None], predicate: Callable[[], bool], what: str) -> None:
    """Let the app run until ``predicate()`` holds; fail naming ``what`` after WITHIN s."""
    try:
        async with asyncio.timeout(WITHIN):
            while not predicate():
                await pilot.pause(0.05)
    except TimeoutError:
        raise AssertionError(f"the dashboard never showed {what} within {WITHIN} s") from None


async def streaming(app: DashboardApp, pilot: Pilot[None]) -> None:
    """Wait until every component has data on screen and Upbit answered LIST_SUBSCRIPTIONS."""
    table = app.query_one("#coins", DataTable)
    await until(pilot, lambda: table.row_count == 20, "a row for each of the 20 KRW markets")
    await until(pilot, lambda: app.shown.get("book", "").startswith("KRW-BTC KRW-BTC 15"), "book")
    await until(pilot, lambda: app.shown.get("chart", "").startswith("KRW-BTC"), "the chart")
    await until(pilot, lambda: bool(app.model.bars), "a candle")
    await until(pilot, lambda: "upbit  ticker" in app.shown.get("subs", ""), "Upbit's answer")


def subscribe_requests(sim: Simulator) -> list[dict[str, Any]]:
    """Return every subscription request the public sockets received so far, oldest first."""
    sockets = [c for c in sim.connections(include_closed=True) if c.kind == "public"]
    return [r.parsed for c in sockets for r in c.requests if r.parsed.get("kind") == "subscribe"]


async def test_dashboard_renders_every_panel_with_live_data() -> None:
    """Coin list, 15-level book, chart, both connections, LIST answer and statistics show."""
    async with dashboard() as (_sim, app, pilot):
        await streaming(app, pilot)
        table = app.query_one("#coins", DataTable)
        row = table.get_row("KRW-BTC")
        assert row[0] == "KRW-BTC" and str(row[2]).replace(",", "").isdigit()
        assert str(row[3]).endswith("%")
        await until(pilot, lambda: "private ● open" in app.shown["status"], "private open")
        status = app.shown["status"]
        assert "public  ● open" in status and "last frame" in status and "reconnects" in status
        subs = app.shown["subs"]
        assert "upbit  orderbook KRW-BTC" in subs and "upbit  candle.1m KRW-BTC" in subs
        assert "upbit  myOrder" in subs
        assert "frames/s" in app.shown["stats"] and "change latency" in app.shown["stats"]
        updates = app.model.ticker_updates
        await until(pilot, lambda: app.model.ticker_updates > updates, "more tickers")


async def test_selecting_a_coin_sends_one_request_and_switches_both_views() -> None:
    """Enter on KRW-ETH: ONE request on the wire, book and chart show ETH, tickers go on."""
    async with dashboard() as (sim, app, pilot):
        await streaming(app, pilot)
        before = len(subscribe_requests(sim))
        reconnects = app.ws.statistics().public.reconnects
        table = app.query_one("#coins", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("KRW-ETH"), animate=False)
        await pilot.press("enter")
        await until(pilot, lambda: app.shown["book"].startswith("KRW-ETH KRW-ETH 15"), "ETH book")
        await until(pilot, lambda: app.shown["chart"].startswith("KRW-ETH"), "the ETH chart")
        await until(pilot, lambda: bool(app.model.bars), "an ETH candle")
        updates = app.model.ticker_updates
        await until(pilot, lambda: app.model.ticker_updates > updates, "tickers after")
        requests = subscribe_requests(sim)
        # One request for the switch; a reconnect a loaded machine might cause re-sends one more.
        reconnected = app.ws.statistics().public.reconnects - reconnects
        assert len(requests) == before + 1 + reconnected
        entries = {(e["type"], e["code"]) for e in requests[-1]["entries"]}
        assert ("orderbook", "KRW-ETH") in entries and ("candle.1m", "KRW-ETH") in entries
        assert ("orderbook", "KRW-BTC") not in entries
        assert ("ticker", "KRW-BTC") in entries  # the coin list never stopped
        assert all(c.code == "KRW-ETH" for c in [app.model.book] if c is not None)


async def test_abort_key_shows_reconnecting_then_open() -> None:
    """Key a drops every socket: the log shows the drop, the status bar the recovery."""
    async with dashboard() as (_sim, app, pilot):
        await streaming(app, pilot)
        await pilot.press("a")

        def since_fault() -> str:
            log = app.shown.get("log", "")
            return log[log.index("fault: abort") :] if "fault: abort" in log else ""

        await until(pilot, lambda: "public open -> reconnecting" in since_fault(), "the drop")
        # The log panel redraws 4 times a second, the status bar at once on a state change.
        await until(pilot, lambda: "public connecting -> open after" in since_fault(), "reopen")
        await until(
            pilot,
            lambda: (
                "public  ● open" in app.shown["status"]
                and app.model.connection("public").reconnects >= 1
            ),
            "public open again in the status bar",
        )
        log = since_fault()
        assert log.index("public open -> reconnecting") < log.index("public connecting -> open")
        recovered = app.model.connection("public").recovered_in
        assert recovered is not None and recovered > 0


async def test_help_key_shows_the_keys_and_any_key_closes_it() -> None:
    """? opens the key list over the dashboard; the next key closes it."""
    async with dashboard() as (_sim, app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.press("x")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "the help closed")


async def test_sort_key_orders_the_coin_list_by_the_next_key() -> None:
    """s cycles change -> 24 h value: the first row is then the busiest market."""
    async with dashboard() as (_sim, app, pilot):
        await streaming(app, pilot)
        table = app.query_one("#coins", DataTable)
        table.focus()
        await pilot.press("s")
        assert app.sort_key == "volume"
        tickers = app.model.tickers

        def top() -> str:
            return str(table.coordinate_to_cell_key(Coordinate(0, 0)).row_key.value)

        def busiest() -> str:
            return max(tickers, key=lambda c: tickers[c].acc_trade_price_24h or 0.0)

        await until(pilot, lambda: top() == busiest(), "the busiest market first")
