"""The Textual dashboard: the seed's screens over one :class:`~upbit_ws.WebSocketManager`.

Three components subscribe through the public API, exactly as an application would::

    coin_list       ticker     KRW-*            (every KRW market, live, sortable)
    orderbook_view  orderbook  <selected> depth 15
    chart           candle.1m  <selected>

Selecting a coin in the list (Enter or a click) is the seed's scenario 2: the order book and
the chart switch to it together, and the library sends ONE merged request while the coin list
keeps streaming. The status bar shows each connection's state, the age of its last frame, its
exchange latency and its reconnects; a panel shows the merged subscription per connection with
Upbit's own LIST_SUBSCRIPTIONS answer; another the statistics. With the embedded simulator,
keys inject faults (``a`` abort, ``b`` blackhole, ``e`` error frame, ``r`` restart) so you can
watch recovery happen; ``?`` lists every key.

The subscription readers only write into the :class:`~.model.DashboardModel`; timers redraw
from it (the tables about 10 times a second, the panels 4 times), so a fast stream never
starves the UI. The app does not own the manager or the simulator: whoever runs it opens and
closes them (:func:`run_dashboard` does, for ``upbit-ws demo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any, ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

from upbit_ws.aio.component import SubscriptionsView
from upbit_ws.aio.logcontext import install_log_fields
from upbit_ws.aio.manager import ManagerStatistics, WebSocketManager
from upbit_ws.aio.stream import Subscription
from upbit_ws.cli.dashboard.model import SORT_KEYS, Bar, DashboardModel, SortKey, sort_codes
from upbit_ws.cli.dashboard.model import volume_24h as _volume_24h
from upbit_ws.cli.dashboard.render import (
    book_table,
    change_text,
    colored_price,
    connection_text,
    statistics_text,
    subscriptions_text,
    volume_text,
)
from upbit_ws.core.auth import Credentials
from upbit_ws.core.errors import UpbitWsError
from upbit_ws.core.events import ConnectionStateChanged
from upbit_ws.core.messages import Candle, Orderbook, Ticker
from upbit_ws.simulator import Simulator

__all__ = ["DashboardApp", "HelpScreen", "run_dashboard"]

_log = logging.getLogger("upbit_ws.dashboard")
install_log_fields()  # this logger carries the structured fields too

#: Seconds between redraws of the coin list, the order book and the chart.
TABLE_INTERVAL: Final = 0.1
#: Seconds between redraws of the status bar and the panels (they read statistics()).
PANEL_INTERVAL: Final = 0.25
#: Seconds between re-sorts of the coin list (a list that reorders 10 times a second is
#: unreadable; the cursor stays on its coin across a re-sort).
SORT_INTERVAL: Final = 1.0
#: Seconds between LIST_SUBSCRIPTIONS questions when nothing changed (each costs one of
#: Upbit's 100 messages a minute per connection).
ASK_INTERVAL: Final = 15.0
#: How long the blackhole fault keeps the server silent on the sockets open at the time.
BLACKHOLE_SECONDS: Final = 30.0
#: How long the restart fault keeps the server down.
RESTART_DOWN_SECONDS: Final = 1.0
#: Minute candles of history read over REST when a coin is selected.
HISTORY_CANDLES: Final = 30

_SORT_BY_COLUMN: Final[dict[str, SortKey]] = {
    "price": "price",
    "change": "change",
    "volume": "volume",
}

KEYS_HELP: Final = """\
[b]Keys[/b]

  [b]↑ ↓[/b], [b]PgUp PgDn[/b]  move in the coin list
  [b]Enter[/b] or click   select the coin: the order book and the chart switch
                  with ONE merged request, the coin list keeps streaming
  [b]s[/b]               sort the coin list by change, 24 h value, price, code
                  (or click a column header)

[b]Faults[/b] (the embedded simulator injects them; watch the status bar and the log)

  [b]a[/b]  abort       drop every socket without a close frame (a network reset)
  [b]b[/b]  blackhole   the server goes silent on the open sockets for 30 s:
                keepalive notices the stall and replaces the socket
  [b]e[/b]  error frame an Upbit error frame, then the server closes the socket
  [b]r[/b]  restart     the server goes down for 1 s and comes back

  [b]?[/b]  this help      [b]q[/b]  quit

Colours as on Upbit: a rise is red, a fall blue; asks blue, bids red.
[dim]Press any key to close.[/dim]"""


class HelpScreen(ModalScreen[None]):
    """The key list, shown over the dashboard; any key closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static {
        width: 84; height: auto; padding: 1 2;
        border: round $accent; background: $surface;
    }
    """

    def compose(self) -> ComposeResult:
        """Show the keys."""
        yield Static(KEYS_HELP, id="help-text")

    def on_key(self) -> None:
        """Close on any key."""
        self.dismiss()

    def on_click(self) -> None:
        """Close on a click."""
        self.dismiss()


class DashboardApp(App[None]):
    """The live dashboard over ``ws`` (and ``sim``, whose faults the keys inject).

    ``coin`` is the coin selected at start. ``history`` reads that many minutes of candles
    over REST when a coin is selected (0: the chart fills from the stream alone).
    """

    TITLE = "upbit-ws"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 2; padding: 0 1; background: $boost; }
    #main { height: 1fr; }
    #coins { width: 62; border: round $primary-darken-2; }
    #middle { width: 50; }
    #book { height: auto; border: round $primary-darken-2; padding: 0 1; }
    #log { height: 1fr; min-height: 4; border: round $primary-darken-2; padding: 0 1; }
    #side { width: 1fr; min-width: 40; }
    #chart { height: 1fr; min-height: 10; border: round $primary-darken-2; }
    #subs { height: auto; max-height: 12; border: round $primary-darken-2; padding: 0 1; }
    #stats { height: auto; border: round $primary-darken-2; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Keys"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("a", "fault('abort')", "Abort"),
        Binding("b", "fault('blackhole')", "Blackhole"),
        Binding("e", "fault('error')", "Error frame"),
        Binding("r", "fault('restart')", "Restart"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        ws: WebSocketManager,
        *,
        sim: Simulator | None = None,
        coin: str = "KRW-BTC",
        history: int = HISTORY_CANDLES,
    ) -> None:
        super().__init__()
        self.ws = ws
        self.sim = sim
        self.history = history
        self.model = DashboardModel(selected=coin)
        self.sort_key: SortKey = "change"
        self._coins: Subscription[Ticker] | None = None
        self._book: Subscription[Orderbook] | None = None
        self._chart: Subscription[Candle] | None = None
        self._extra: list[Subscription[Any]] = []
        self._drawn_book: tuple[str, int] = ("", -1)
        self._drawn_chart: tuple[str, int] = ("", -1)
        self._drawn_log = -1
        #: What each coin-list row shows now: (name, price, change rate, 24 h value).
        self._rows_drawn: dict[str, tuple[str, float, float, float]] = {}
        self._order: list[str] = []
        self._asked: SubscriptionsView | None = None
        self._asked_at: float | None = None
        self._ask_now = asyncio.Event()
        self._asked_for: tuple[int, int, int, int] | None = None
        self._switching: asyncio.Lock = asyncio.Lock()
        #: Plain text of what the panels show now (for tests and the plain fallback).
        self.shown: dict[str, str] = {}

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Lay out the status bar, coin list, order book, chart and panels."""
        yield Static(id="status")
        with Horizontal(id="main"):
            table: DataTable[Any] = DataTable(id="coins", cursor_type="row")
            table.border_title = "coin_list · ticker KRW-*"
            yield table
            with Vertical(id="middle"):
                book = Static(id="book")
                book.border_title = "orderbook_view · orderbook depth 15"
                yield book
                log = Static(id="log")
                log.border_title = "events"
                yield log
            with Vertical(id="side"):
                chart = PlotextPlot(id="chart")
                chart.border_title = "chart · candle.1m"
                yield chart
                subs = Static(id="subs")
                subs.border_title = "merged subscription per connection"
                yield subs
                stats = Static(id="stats")
                stats.border_title = "statistics"
                yield stats
        yield Footer()

    def on_mount(self) -> None:
        """Subscribe the three components, start the readers and the redraw timers."""
        # Held, not queried on each redraw: a query searches the active screen, which is the
        # help screen while it shows (and nothing while the app shuts down).
        self._table: DataTable[Any] = self.query_one("#coins", DataTable)
        self._status_w = self.query_one("#status", Static)
        self._book_w = self.query_one("#book", Static)
        self._chart_w = self.query_one("#chart", PlotextPlot)
        self._subs_w = self.query_one("#subs", Static)
        self._stats_w = self.query_one("#stats", Static)
        self._log_w = self.query_one("#log", Static)
        table = self._table
        table.add_column("code", key="code", width=10)
        table.add_column("name", key="name", width=8)
        table.add_column("price", key="price", width=11)
        table.add_column("change", key="change", width=7)
        table.add_column("24h value", key="volume", width=9)
        code = self.model.selected
        ws = self.ws
        self._coins = ws.component("coin_list").subscribe("ticker", ["KRW-*"])
        self._book = ws.component("orderbook_view").subscribe("orderbook", [code], depth=15)
        self._chart = ws.component("chart").subscribe("candle.1m", [code])
        if ws.private is not None:
            self._extra.append(ws.component("orders").subscribe("myOrder"))
        self.model.note(f"components subscribed; {code} selected")
        self._read_coins(self._coins)
        self._read_book(self._book)
        self._read_chart(self._chart)
        self._read_events()
        self._ask_server()
        self._load_names()
        self._load_history(code)
        self.set_interval(TABLE_INTERVAL, self._draw_tables)
        self.set_interval(PANEL_INTERVAL, self._draw_panels)
        self.set_interval(SORT_INTERVAL, self._resort)
        self._draw_panels()

    async def on_unmount(self) -> None:
        """Unsubscribe the components (the manager stays open; its owner closes it)."""
        for sub in (self._coins, self._book, self._chart, *self._extra):
            if sub is not None:
                with contextlib.suppress(UpbitWsError):
                    await sub.aclose()

    # --- readers: they only write the model ---------------------------------------------

    @work(group="feeds", exit_on_error=True)
    async def _read_coins(self, sub: Subscription[Ticker]) -> None:
        async for batch in sub.batches():
            self.model.add_tickers(batch)

    @work(group="feeds", exit_on_error=True)
    async def _read_book(self, sub: Subscription[Orderbook]) -> None:
        async for book in sub:
            self.model.set_book(book)

    @work(group="feeds", exit_on_error=True)
    async def _read_chart(self, sub: Subscription[Candle]) -> None:
        async for candle in sub:
            self.model.add_candle(candle)

    @work(group="feeds", exit_on_error=True)
    async def _read_events(self) -> None:
        async for event in self.ws.events():
            self.model.on_event(event)
            if isinstance(event, ConnectionStateChanged):
                # Drawn at once: a fast recovery would otherwise fall between two redraws.
                self._draw_status()

    @work(group="rest", exit_on_error=False)
    async def _load_names(self) -> None:
        with contextlib.suppress(UpbitWsError, TimeoutError):
            async with asyncio.timeout(10):
                markets = await self.ws.rest.market_all()
            self.model.names.update({m.market: m.korean_name for m in markets})
            for code in self.model.names:
                self.model.dirty.add(code)

    @work(group="rest", exit_on_error=False)
    async def _load_history(self, code: str) -> None:
        if self.history <= 0:
            return
        try:
            async with asyncio.timeout(10):
                candles = await self.ws.rest.candles_minutes(1, code, count=self.history)
        except (UpbitWsError, TimeoutError) as exc:
            self.model.note(f"chart history of {code} not loaded: {exc}")
            return
        if code == self.model.selected:
            self.model.add_history(
                Bar(
                    c.candle_date_time_kst[:16],
                    c.opening_price,
                    c.high_price,
                    c.low_price,
                    c.trade_price,
                    c.candle_acc_trade_volume,
                )
                for c in candles
            )

    @work(group="ask", exit_on_error=False)
    async def _ask_server(self) -> None:
        """Ask Upbit what each connection streams: after a change, a reconnect, or a while."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ASK_INTERVAL):
                    await self._ask_now.wait()
            self._ask_now.clear()
            try:
                async with asyncio.timeout(5):
                    self._asked = await self.ws.list_subscriptions()
                self._asked_at = loop.time()
            except (UpbitWsError, TimeoutError):
                continue  # a socket is down; the next open asks again

    # --- selection (scenario 2) ---------------------------------------------------------

    async def select_coin(self, code: str) -> None:
        """Switch the order book and the chart to ``code`` with one merged request."""
        async with self._switching:
            if code == self.model.selected or self._book is None or self._chart is None:
                return
            old = self.model.selected
            self.model.select(code)
            self._draw_tables()
            # Both updates land in the same coalescing window: one request on the wire.
            await asyncio.gather(self._book.update([code]), self._chart.update([code]))
            self.model.note(f"selected {code} (was {old}): order book and chart, one request")
            self._load_history(code)

    @on(DataTable.RowSelected, "#coins")
    async def _row_selected(self, message: DataTable.RowSelected) -> None:
        code = message.row_key.value
        if code is not None:
            await self.select_coin(code)

    @on(DataTable.HeaderSelected, "#coins")
    def _header_selected(self, message: DataTable.HeaderSelected) -> None:
        self.sort_key = _SORT_BY_COLUMN.get(message.column_key.value or "", "code")
        self._resort()

    # --- actions ------------------------------------------------------------------------

    def action_help(self) -> None:
        """Show the keys."""
        self.push_screen(HelpScreen())

    def action_cycle_sort(self) -> None:
        """Sort the coin list by the next key."""
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self._resort()

    async def action_fault(self, kind: str) -> None:
        """Inject a simulator fault: ``abort``, ``blackhole``, ``error`` or ``restart``."""
        sim = self.sim
        if sim is None:
            self.notify("faults need the embedded simulator", severity="warning")
            return
        if kind == "abort":
            sim.abort()
            self.model.note("fault: abort (every socket dropped without a close frame)")
        elif kind == "blackhole":
            sim.blackhole(BLACKHOLE_SECONDS)
            self.model.note(
                f"fault: blackhole (the server goes silent for {BLACKHOLE_SECONDS:.0f} s)"
            )
        elif kind == "error":
            sim.inject_error("INVALID_REQUEST", "fault injected from the dashboard")
            self.model.note("fault: error frame (then the server closes the socket)")
        elif kind == "restart":
            self.model.note(f"fault: restart (the server is down for {RESTART_DOWN_SECONDS:.0f} s)")
            self._restart(sim)
        self._drawn_log = -1

    @work(group="faults", exit_on_error=False)
    async def _restart(self, sim: Simulator) -> None:
        await sim.restart(down_seconds=RESTART_DOWN_SECONDS)

    # --- drawing ------------------------------------------------------------------------

    def _draw_tables(self) -> None:
        self._draw_coins()
        self._draw_book()
        self._draw_chart()

    def _draw_coins(self) -> None:
        model = self.model
        if not model.dirty:
            return
        table = self._table
        dirty, model.dirty = model.dirty, set()
        added = False
        for code in dirty:
            ticker = model.tickers.get(code)
            if ticker is None:
                continue
            name = model.names.get(code, "")[:4]
            drawn = (name, ticker.trade_price, ticker.signed_change_rate, _volume_24h(ticker))
            before = self._rows_drawn.get(code)
            if before is None:
                table.add_row(
                    code,
                    name,
                    colored_price(ticker),
                    change_text(ticker),
                    Text(volume_text(drawn[3]), justify="right"),
                    key=code,
                )
                added = True
            elif before != drawn:
                if before[0] != name:
                    table.update_cell(code, "name", name)
                table.update_cell(code, "price", colored_price(ticker))
                table.update_cell(code, "change", change_text(ticker))
                table.update_cell(code, "volume", Text(volume_text(drawn[3]), justify="right"))
            self._rows_drawn[code] = drawn
        table.border_subtitle = f"{len(model.tickers)} markets · sorted by {self.sort_key}"
        if added:
            self._resort()

    def _resort(self) -> None:
        table = self._table
        if not table.row_count:
            return
        order = sort_codes(self.model.tickers, self.sort_key)
        order = [c for c in order if c in self._rows_drawn]
        if order == self._order:
            return
        cursor_key: str | None = None
        if table.cursor_row >= 0 and table.row_count:
            with contextlib.suppress(Exception):
                cursor_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        rank = {code: i for i, code in enumerate(order)}
        table.sort("code", key=lambda code: rank.get(code, len(rank)))
        self._order = order
        if cursor_key is not None and cursor_key in rank:
            table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
        table.border_subtitle = f"{len(order)} markets · sorted by {self.sort_key}"

    def _draw_book(self) -> None:
        model = self.model
        state = (model.selected, model.book_updates if model.book is not None else -1)
        if state == self._drawn_book:
            return
        self._drawn_book = state
        name = model.names.get(model.selected, "")
        self._book_w.update(book_table(model.book, model.selected, name))
        book = model.book
        self.shown["book"] = f"{model.selected} " + (
            f"{book.code} {len(book.units)} levels" if book is not None else "waiting"
        )

    def _draw_chart(self) -> None:
        model = self.model
        state = (model.selected, model.candle_updates + len(model.bars))
        if state == self._drawn_chart:
            return
        self._drawn_chart = state
        widget = self._chart_w
        bars = model.chart_bars()
        plt: Any = widget.plt  # plotext is untyped
        plt.clear_data()
        plt.clear_figure()
        widget.border_title = f"chart · candle.1m {model.selected}"
        if bars:
            xs = list(range(len(bars)))
            plt.candlestick(
                xs,
                {
                    "Open": [b.open for b in bars],
                    "Close": [b.close for b in bars],
                    "High": [b.high for b in bars],
                    "Low": [b.low for b in bars],
                },
                colors=[(224, 71, 76), (62, 123, 246)],
            )
            step = max(1, len(bars) // 6)
            plt.xticks(xs[::step], [b.minute[11:16] for b in bars[::step]])
            last = bars[-1]
            plt.title(f"{model.selected} 1m  close {last.close:,.0f}  ({len(bars)} candles, KST)")
        else:
            plt.title(f"{model.selected}: waiting for the first candle")
        widget.refresh()
        self.shown["chart"] = f"{model.selected} {len(bars)} bars"

    def _draw_status(self, stats: ManagerStatistics | None = None) -> None:
        now = asyncio.get_running_loop().time()
        stats = stats or self.ws.statistics()
        lines: list[Text] = []
        channels = {"public": stats.subscriptions.public, "private": stats.subscriptions.private}
        for conn in (stats.public, stats.private):
            if conn is None:
                continue
            status = self.model.connection(conn.connection)
            self.model.sample_frames(now, conn.connection, conn.frames_received, conn.reconnects)
            status.state = conn.state
            status.down_for = conn.down_age
            status.retry_in = conn.retry_in
            status.network_watch = conn.network_watch
            latency = channels[conn.connection].router.latency.p50_ms
            lines.append(connection_text(status, now=now, latency_ms=latency))
        text = Text("\n").join(lines)
        self._status_w.update(text)
        self.shown["status"] = text.plain

    def _ask_when_settled(self, local: SubscriptionsView, stats: ManagerStatistics) -> None:
        """Ask Upbit again once a new request (a change, a reconnect) is no longer in flight."""
        if local.public.in_flight or local.private.in_flight:
            return
        sent = (
            stats.public.generation,
            local.public.requests_sent,
            stats.private.generation if stats.private is not None else 0,
            local.private.requests_sent,
        )
        if sent != self._asked_for:
            self._asked_for = sent
            self._ask_now.set()

    def _draw_panels(self) -> None:
        stats = self.ws.statistics()
        self._draw_status(stats)
        now = asyncio.get_running_loop().time()
        local = self.ws.subscriptions()
        self._ask_when_settled(local, stats)
        asked = self._asked
        if asked is not None:
            local = dataclasses.replace(
                local,
                public=dataclasses.replace(local.public, server=asked.public.server),
                private=dataclasses.replace(local.private, server=asked.private.server),
            )
        ago = None if self._asked_at is None else now - self._asked_at
        subs = subscriptions_text(local, asked_ago=ago)
        self._subs_w.update(subs)
        self.shown["subs"] = subs.plain
        panel = statistics_text(stats, self.model)
        self._stats_w.update(panel)
        self.shown["stats"] = panel.plain
        if self.model.log_version != self._drawn_log:
            self._drawn_log = self.model.log_version
            log = self._log_w
            height = max(1, log.size.height or 9)
            lines = list(self.model.log)[-height:]
            log.update(Text("\n".join(lines)))
            self.shown["log"] = "\n".join(self.model.log)


async def run_dashboard(*, seed: int, history_minutes: int, private: bool = True) -> None:
    """Run the embedded simulator, a manager on it and the dashboard until the user quits."""
    async with Simulator(port=0, seed=seed, history_seconds=history_minutes * 60.0) as sim:
        credentials = Credentials(*sim.credentials) if private else None
        async with WebSocketManager(base_url=sim.url, credentials=credentials) as ws:
            app = DashboardApp(ws, sim=sim, history=min(history_minutes, 200))
            await app.run_async()
