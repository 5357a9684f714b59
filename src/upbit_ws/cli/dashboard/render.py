"""Rich renderables for the dashboard's panels, built from the model and the public snapshots.

Colours follow Upbit's own screens (and Korean convention): a rise is red, a fall blue; the
ask side of the book is blue, the bid side red.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

from rich.table import Table
from rich.text import Text

from upbit_ws.aio.component import ConnectionView, SubscriptionsView
from upbit_ws.aio.manager import ManagerStatistics
from upbit_ws.cli.dashboard.model import RECOVERED_SHOWN, ConnectionStatus, DashboardModel
from upbit_ws.core.messages import Orderbook, Ticker

__all__ = [
    "FALL",
    "RISE",
    "book_table",
    "change_text",
    "connection_text",
    "price_text",
    "statistics_text",
    "subscriptions_text",
    "volume_text",
]

RISE: Final = "#e0474c"
FALL: Final = "#3e7bf6"
EVEN: Final = "grey70"
_ASK_BAR: Final = "#2f5fb8"
_BID_BAR: Final = "#b8343b"
_STATE_STYLE: Final = {
    "open": "bold green",
    "degraded": "bold yellow",
    "connecting": "bold yellow",
    "reconnecting": "bold red",
    "suspended": "bold magenta",
    "closed": "grey50",
    "idle": "grey50",
}


def price_text(value: float | Decimal | None) -> str:
    """Format a KRW price with about the decimals of its tick size, so book levels differ.

    Whole won from 1,000 won up, one decimal from 100, two from 10, three from 1.
    """
    if value is None or value == 0:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.1f}"
    if value >= 10:
        return f"{value:,.2f}"
    if value >= 1:
        return f"{value:,.3f}"
    return f"{value:.4g}"


def volume_text(krw: float) -> str:
    """Format a traded value in KRW with Korean units (백만 = 1e6, 억 = 1e8)."""
    if krw >= 1e8:
        return f"{krw / 1e8:,.1f}억"
    if krw >= 1e6:
        return f"{krw / 1e6:,.0f}백만"
    return f"{krw:,.0f}"


def _trend_style(rate: float) -> str:
    return RISE if rate > 0 else FALL if rate < 0 else EVEN


def change_text(ticker: Ticker) -> Text:
    """Return the signed change rate, coloured red for a rise and blue for a fall."""
    rate = ticker.signed_change_rate
    return Text(f"{rate * 100:+.2f}%", style=_trend_style(rate), justify="right")


def colored_price(ticker: Ticker) -> Text:
    """Return the trade price coloured like its change rate."""
    return Text(
        price_text(ticker.trade_price),
        style=_trend_style(ticker.signed_change_rate),
        justify="right",
    )


def _bar(size: float, biggest: float, width: int) -> str:
    """Return a bar of up to ``width`` cells for ``size``, scaled by the square root.

    A square-root scale keeps thin levels visible beside one very large order (order books
    often have one wall many times bigger than the rest).
    """
    if biggest <= 0 or size <= 0:
        return ""
    cells = min(1.0, math.sqrt(size / biggest)) * width
    full = int(cells)
    eighths = int((cells - full) * 8)
    rest = "▏▎▍▌▋▊▉"[eighths - 1] if full < width and eighths > 0 else ""
    return "█" * full + rest


def size_text(size: float) -> str:
    """Format an order book size in at most 9 characters (fewer decimals for big sizes)."""
    if size >= 100_000:
        return f"{size:,.0f}"
    if size >= 1_000:
        return f"{size:,.1f}"
    return f"{size:,.3f}"


def book_table(book: Orderbook | None, code: str, name: str, *, depth: int = 15) -> Table:
    """Return the order book: asks above (highest first), bids below, each with a depth bar."""
    table = Table(
        box=None,
        padding=0,
        show_edge=False,
        title=Text.assemble((code, "bold"), " · ", name),
    )
    bar_width = 6
    table.add_column("", justify="right", width=bar_width, no_wrap=True)
    table.add_column("ask size", justify="right", width=11, no_wrap=True)
    table.add_column("price", justify="center", width=11, no_wrap=True)
    table.add_column("bid size", justify="left", width=11, no_wrap=True)
    table.add_column("", justify="left", width=bar_width, no_wrap=True)
    if book is None:
        table.add_row("", "", Text("waiting…", style="grey50"), "", "")
        return table
    units = book.units[:depth]
    biggest = max([u.ask_size for u in units] + [u.bid_size for u in units] + [0.0])
    for unit in reversed(units):
        table.add_row(
            Text(_bar(unit.ask_size, biggest, bar_width).rjust(bar_width), style=_ASK_BAR),
            Text(size_text(unit.ask_size) + " ", style="#9cc0ff", justify="right"),
            Text(price_text(unit.ask_price), style=f"bold {FALL}", justify="center"),
            "",
            "",
        )
    for unit in units:
        table.add_row(
            "",
            "",
            Text(price_text(unit.bid_price), style=f"bold {RISE}", justify="center"),
            Text(" " + size_text(unit.bid_size), style="#ffb0b3", justify="left"),
            Text(_bar(unit.bid_size, biggest, bar_width), style=_BID_BAR),
        )
    spread = (
        book.best_ask - book.best_bid
        if book.best_ask is not None and book.best_bid is not None
        else None
    )
    table.caption = (
        f"spread {price_text(spread)} · asks {size_text(book.total_ask_size)} · "
        f"bids {size_text(book.total_bid_size)}"
    )
    return table


def connection_text(status: ConnectionStatus, *, now: float, latency_ms: float | None) -> Text:
    """Return one connection's status: state, last-frame age, latency and reconnects.

    During an outage also how long it has lasted and when the next connect comes.
    """
    style = _STATE_STYLE.get(status.state, "grey50")
    text = Text.assemble(
        (f"{status.kind:<8}", "bold"), ("● ", style), (f"{status.state:<12}", style)
    )
    if (
        status.state == "open"
        and status.recovered_in is not None
        and status.recovered_at is not None
        and now - status.recovered_at < RECOVERED_SHOWN
    ):
        text.append(f"recovered in {status.recovered_in * 1000:,.0f} ms  ", style="green")
    if status.down_for is not None and status.state not in ("open", "degraded"):
        text.append(f"down {status.down_for:.1f} s", style="red")
        if status.retry_in is not None:
            text.append(f", next try in {status.retry_in:.1f} s")
            if status.network_watch:
                text.append(" or when the network is back")
        text.append("  ")
    seen = status.last_frame_at
    age = "-" if seen is None else f"{max(0.0, now - seen):.1f} s"
    latency = "-" if latency_ms is None else f"{latency_ms:.1f} ms"
    text.append(f"│ last frame {age:>7} │ latency {latency:>9} │ reconnects {status.reconnects}")
    return text


def _connection_lines(view: ConnectionView) -> Text:
    text = Text()
    if view.state == "detached" and not view.desired:
        text.append(f"{view.connection}: no connection\n", style="grey50")
        return text
    for i, line in enumerate(view.lines()):
        if i == 0:
            text.append(line + "\n", style="bold")
        elif line.lstrip().startswith("upbit"):
            text.append(line + "\n", style="green")
        else:
            text.append(line + "\n")
    return text


def subscriptions_text(view: SubscriptionsView, *, asked_ago: float | None) -> Text:
    """Return the merged subscription per connection, with Upbit's LIST_SUBSCRIPTIONS answer."""
    text = Text()
    for conn in (view.public, view.private):
        text.append_text(_connection_lines(conn))
    when = "not asked yet" if asked_ago is None else f"asked {asked_ago:.0f} s ago"
    text.append(f"(upbit lines: Upbit's LIST_SUBSCRIPTIONS answer, {when})", style="grey50")
    return text


def statistics_text(stats: ManagerStatistics, model: DashboardModel) -> Text:
    """Return the small statistics panel: frames/s, drops, change and exchange latency."""
    channel = stats.subscriptions.public
    router = channel.router
    subs = stats.subscriptions.subscriptions
    dropped = sum(s.dropped for s in subs)
    conflated = sum(s.conflated for s in subs)
    change = channel.change_latency
    exchange = router.latency
    rows = [
        ("frames/s", f"{model.frames_per_second():,.0f}"),
        ("frames", f"{stats.public.frames_received:,}"),
        ("dropped", f"{dropped:,}  (conflated {conflated:,})"),
        ("stale in flight", f"{router.unwanted:,}"),
        (
            "change latency",
            "-"
            if change.p50_ms is None or change.max_ms is None
            else f"{change.p50_ms:.1f} ms p50, max {change.max_ms:.1f}",
        ),
        (
            "exchange lat.",
            "-"
            if exchange.p50_ms is None or exchange.p99_ms is None
            else f"{exchange.p50_ms:.1f} ms p50, p99 {exchange.p99_ms:.1f}",
        ),
        ("requests", f"{channel.requests_sent:,} for {channel.changes} changes"),
    ]
    text = Text()
    for i, (label, value) in enumerate(rows):
        text.append(f"{label:<16}", style="grey70")
        text.append(value + ("\n" if i < len(rows) - 1 else ""))
    return text
