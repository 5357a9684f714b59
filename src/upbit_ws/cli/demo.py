"""``upbit-ws demo``: the seed's three components against the embedded simulator.

On a terminal it runs the Textual dashboard (:mod:`upbit_ws.cli.dashboard.app`). Without one
(``make demo`` in CI, output piped to a file), or with ``--plain``, it prints the plain stream
below and exits 0.

The simulator starts in this process; a :class:`~upbit_ws.aio.manager.WebSocketManager` connects
to it and three components subscribe through the public API, sharing one public connection:

* ``coin_list``: ``ticker`` for every KRW market (``KRW-*``), shown as the top movers;
* ``orderbook_view``: ``orderbook`` of the selected coin (depth 15), shown as best bid and ask;
* ``chart``: ``candle.1m`` of the selected coin, shown as its latest 1-minute candle.

About once a second each component prints one compact line. Every quarter of the run the
selected coin switches (the seed's scenario 2: the order book and the chart change together,
one merged request, the coin list keeps streaming). At 60% of the run the simulator drops the
connection without a close frame; status lines show the drop and the recovery while the
component lines carry on. At the end it prints the merged subscription (with Upbit's own
LIST_SUBSCRIPTIONS answer) and the statistics, and exits 0.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Final

import click

from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.core.events import (
    BufferOverflowed,
    ConnectionStateChanged,
    Event,
    GapEvent,
    RequestRejected,
)
from upbit_ws.core.messages import Candle, Orderbook, Ticker
from upbit_ws.simulator import Simulator

__all__ = ["demo"]

#: The coins the demo selects in turn (always listed and busy in the simulator).
COINS: Final = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL")
_MOVERS: Final = 3


@dataclass
class _View:
    """What the three components have received so far (the demo's model)."""

    started: float
    selected: str = COINS[0]
    tickers: dict[str, Ticker] = field(default_factory=dict)
    ticker_updates: int = 0
    shown_updates: int = 0
    book: Orderbook | None = None
    candle: Candle | None = None
    reconnecting_at: float | None = None

    def stamp(self) -> str:
        return f"[{time.monotonic() - self.started:5.1f}s]"


def _price(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.4g}"


def _coin_line(view: _View) -> str:
    tickers = view.tickers
    movers = sorted(tickers.values(), key=lambda t: abs(t.signed_change_rate), reverse=True)
    shown = "  ".join(f"{t.code} {t.signed_change_rate * 100:+.2f}%" for t in movers[:_MOVERS])
    fresh, view.shown_updates = view.ticker_updates - view.shown_updates, view.ticker_updates
    return (
        f"{view.stamp()} coin_list  {len(tickers):3d} KRW markets, {fresh:4d} updates  "
        f"top movers: {shown or '-'}"
    )


def _book_line(view: _View) -> str:
    book = view.book
    if book is None or book.code != view.selected:
        return f"{view.stamp()} orderbook  {view.selected}  waiting for the first book"
    bid, ask = book.best_bid, book.best_ask
    spread = f" spread {_price(ask - bid)}" if bid is not None and ask is not None else ""
    return (
        f"{view.stamp()} orderbook  {book.code}  bid {_price(bid)} / ask {_price(ask)}"
        f"{spread}  ({len(book.units)} levels)"
    )


def _chart_line(view: _View) -> str:
    candle = view.candle
    if candle is None or candle.code != view.selected:
        return f"{view.stamp()} chart      {view.selected}  waiting for the first 1m candle"
    return (
        f"{view.stamp()} chart      {candle.code}  1m {candle.candle_date_time_kst[11:16]} KST  "
        f"O {_price(candle.opening_price)} H {_price(candle.high_price)} "
        f"L {_price(candle.low_price)} C {_price(candle.trade_price)}  "
        f"vol {candle.candle_acc_trade_volume:.4f}"
    )


async def _read_coins(sub: Any, view: _View) -> None:
    async for batch in sub.batches():
        view.ticker_updates += len(batch)
        for ticker in batch:
            view.tickers[ticker.code] = ticker


async def _read_book(sub: Any, view: _View) -> None:
    async for book in sub:
        view.book = book


async def _read_chart(sub: Any, view: _View) -> None:
    async for candle in sub:
        view.candle = candle


async def _watch(events: Any, view: _View) -> None:
    """Print a status line for connection changes, gaps and rejections as they happen."""
    async for event in events:
        line = _status(event, view)
        if line:
            click.echo(f"{view.stamp()} status     {line}")


def _status(event: Event, view: _View) -> str | None:
    if isinstance(event, ConnectionStateChanged):
        if event.new == "reconnecting":
            view.reconnecting_at = event.at
            return f"{event.connection} connection lost ({event.reason}); reconnecting"
        if event.new == "open" and view.reconnecting_at is not None:
            took = (event.at - view.reconnecting_at) * 1000
            view.reconnecting_at = None
            return (
                f"{event.connection} connection open again after {took:.0f} ms; "
                "the merged subscription is re-sent, components keep their streams"
            )
        if event.new == "open":
            return f"{event.connection} connection open"
        if event.new in ("degraded", "suspended"):
            return f"{event.connection} connection {event.new} ({event.reason})"
        return None
    if isinstance(event, GapEvent):
        return f"gap in {event.type} ({event.reason}): frames sent while the socket was down"
    if isinstance(event, RequestRejected):
        return f"Upbit rejected a request: {event.name}: {event.message}"
    if isinstance(event, BufferOverflowed):
        return f"{event.subscriber} reads {event.type} too slowly ({event.depth} waiting)"
    return None


async def _switch(book: Any, chart: Any, view: _View, code: str) -> None:
    """Switch the order book and the chart to ``code`` in the same instant (scenario 2)."""
    old = view.selected
    view.selected = code
    started = time.perf_counter()
    await asyncio.gather(book.update([code]), chart.update([code]))
    click.echo(f"{view.stamp()} switch     {old} -> {code} (order book and chart, one request)")
    seen_book = seen_chart = False
    async with asyncio.timeout(3.0):
        while not (seen_book and seen_chart):
            await asyncio.sleep(0.005)
            if not seen_book and view.book is not None and view.book.code == code:
                seen_book = True
                book_ms = (time.perf_counter() - started) * 1000
                click.echo(
                    f"{view.stamp()} switch     order book shows {code} after {book_ms:.0f} ms"
                )
            if not seen_chart and view.candle is not None and view.candle.code == code:
                seen_chart = True
                chart_ms = (time.perf_counter() - started) * 1000
                click.echo(f"{view.stamp()} switch     chart shows {code} after {chart_ms:.0f} ms")


async def _script(
    sim: Simulator, ws: WebSocketManager, subs: tuple[Any, Any, Any], seconds: float, view: _View
) -> None:
    """Print the component lines once a second; switch coins; inject one abort."""
    _coins, book, chart = subs
    switch_every = max(1.0, seconds / 4)
    abort_at = seconds * 0.6
    next_switch = switch_every
    aborted = False
    coin_index = 0
    deadline = view.started + seconds
    next_print = view.started + 1.0
    while (now := time.monotonic()) < deadline:
        await asyncio.sleep(max(0.0, min(next_print, deadline) - now))
        elapsed = time.monotonic() - view.started
        for line in (_coin_line(view), _book_line(view), _chart_line(view)):
            click.echo(line)
        next_print += 1.0
        if not aborted and elapsed >= abort_at:
            aborted = True
            click.echo(
                f"{view.stamp()} fault      injecting a connection abort "
                "(the server drops every socket without a close frame)"
            )
            sim.abort()
        elif elapsed >= next_switch and elapsed + 1.0 < seconds:
            next_switch += switch_every
            coin_index = (coin_index + 1) % len(COINS)
            try:
                await _switch(book, chart, view, COINS[coin_index])
            except TimeoutError:
                click.echo(f"{view.stamp()} switch     still waiting for {COINS[coin_index]}")
    del ws


async def _summary(ws: WebSocketManager) -> None:
    click.echo("")
    click.echo("merged subscription (ours, and Upbit's LIST_SUBSCRIPTIONS answer):")
    try:
        view = await ws.list_subscriptions()
    except Exception as exc:  # the demo must still print what it knows and exit 0
        click.echo(f"  (Upbit did not answer: {exc})")
        click.echo(str(ws.subscriptions()))
    else:
        click.echo(str(view))
    stats = ws.statistics()
    subs = stats.subscriptions.public
    router = subs.router
    click.echo("")
    click.echo("statistics:")
    click.echo(
        f"  public connection   {stats.public.state}, opens {stats.public.opens}, "
        f"reconnects {stats.public.reconnects}, frames {stats.public.frames_received:,}, "
        f"bytes {stats.public.bytes_received:,}"
    )
    by_type = ", ".join(f"{k} {v:,}" for k, v in router.messages_by_type.items())
    click.echo(f"  messages by type    {by_type}")
    latency = router.latency
    if latency.p50_ms is not None and latency.p99_ms is not None:
        click.echo(
            f"  exchange latency    p50 {latency.p50_ms:.1f} ms, p99 {latency.p99_ms:.1f} ms "
            f"(frame timestamp to receipt, sampled)"
        )
    change = subs.change_latency
    if change.p50_ms is not None and change.max_ms is not None:
        click.echo(
            f"  change latency      p50 {change.p50_ms:.1f} ms, max {change.max_ms:.1f} ms "
            f"over {change.count} changes"
        )
    click.echo(
        f"  requests            {subs.requests_sent} sent for {subs.changes} changes, "
        f"{subs.rejections} rejected, {router.unwanted} in-flight frames dropped, "
        f"{router.duplicate_snapshots} duplicate snapshots suppressed, "
        f"{router.decode_errors} decode errors"
    )
    for sub in stats.subscriptions.subscriptions:
        click.echo(
            f"  {sub.component:<15} {sub.type:<10} {sub.codes:3d} codes  policy {sub.policy:<11}"
            f" pushed {sub.pushed:,} delivered {sub.delivered:,} conflated {sub.conflated:,}"
            f" dropped {sub.dropped}"
        )


async def _demo(seconds: float, seed: int) -> None:
    async with Simulator(port=0, seed=seed) as sim:
        click.echo(f"simulator  {sim.url} (in-process, {sim.config.krw_markets} KRW markets)")
        async with WebSocketManager(base_url=sim.url) as ws:
            events = ws.events()
            view = _View(started=time.monotonic())
            coins = ws.component("coin_list").subscribe("ticker", ["KRW-*"])
            book = ws.component("orderbook_view").subscribe("orderbook", [COINS[0]], depth=15)
            chart = ws.component("chart").subscribe("candle.1m", [COINS[0]])
            click.echo(
                "components coin_list: ticker KRW-* | orderbook_view: orderbook "
                f"{COINS[0]} depth 15 | chart: candle.1m {COINS[0]}"
            )
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_read_coins(coins, view))
                tg.create_task(_read_book(book, view))
                tg.create_task(_read_chart(chart, view))
                tg.create_task(_watch(events, view))
                await _script(sim, ws, (coins, book, chart), seconds, view)
                await _summary(ws)
                for sub in (coins, book, chart):
                    await sub.aclose()
                await events.aclose()


def _has_terminal() -> bool:
    """Tell whether both ends of the session are a terminal (a dashboard can be shown)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _has_textual() -> bool:
    """Tell whether the ``dashboard`` extra (textual, textual-plotext) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("textual", "textual_plotext"))


@click.command()
@click.option(
    "--seconds",
    type=float,
    default=20.0,
    show_default=True,
    help="How long the plain stream runs (the dashboard runs until you press q).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Market model seed.")
@click.option(
    "--plain",
    is_flag=True,
    help="Print the plain text stream even on a terminal (the default without one).",
)
@click.option(
    "--history",
    type=click.IntRange(0, 200),
    default=10,
    show_default=True,
    help="Minutes of market history the simulator makes up first, for the dashboard's chart "
    "(each takes it about 0.3 s at start).",
)
@click.option("-v", "--verbose", is_flag=True, help="Also show the library's log lines.")
def demo(*, seconds: float, seed: int, plain: bool, history: int, verbose: bool) -> None:
    """Run the seed's coin list, order book and chart against the embedded simulator.

    On a terminal this is a live dashboard: select a coin with Enter, inject faults with
    a (abort), b (blackhole), e (error frame), r (restart), press ? for the keys and q to quit.
    Without a terminal, or with --plain, it prints a plain stream for --seconds and exits 0.
    """
    if seconds < 2:
        raise click.BadParameter("the demo needs at least 2 seconds", param_hint="--seconds")
    dashboard = not plain and _has_terminal()
    if dashboard and not _has_textual():
        click.echo(
            "the dashboard needs the 'dashboard' extra (pip install 'upbit-ws[dashboard]'); "
            "printing the plain stream",
            err=True,
        )
        dashboard = False
    # Status lines already tell about drops and recoveries; the library's own warnings would
    # repeat them on stderr (and under a dashboard, scribble over it) unless asked for.
    logging.basicConfig(level=logging.INFO if verbose and not dashboard else logging.ERROR)
    if dashboard:
        from upbit_ws.cli.dashboard.app import run_dashboard

        click.echo(f"starting the simulator ({history} minutes of market history)...")
        asyncio.run(run_dashboard(seed=seed, history_minutes=history))
        return
    asyncio.run(_demo(seconds, seed))
