"""``upbit-ws watch TYPE CODE...``: one subscription, shown live as a table or as JSON lines.

Against real Upbit by default; ``--simulator`` runs the embedded simulator, ``--base-url``
points at any other server. ``--json`` prints one JSON object per message on stdout (the
typed message as msgspec encodes it, ``type`` included), for ``jq`` and pipes; otherwise a Rich
table redraws a few times a second from the latest values, so a busy stream never floods the
terminal. ``--count`` and ``--seconds`` bound the run; Ctrl-C ends it with exit 0.

``--private`` (implied by ``myOrder`` and ``myAsset``) opens the private connection with
``Credentials.from_env()`` (``UPBIT_ACCESS_KEY``, ``UPBIT_SECRET_KEY``); with ``--simulator`` it
uses the simulator's built-in key pair instead. Before streaming, the command checks what the
user can fix: the market list must load from the server, the codes must be listed, the key
must be accepted and the connection must open within ``--connect-timeout``; each failure is
one line on stderr and exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import click
import msgspec

from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.aio.stream import Subscription
from upbit_ws.cli.common import InputError, OneLineCommand, interruptible, quiet_logging, run
from upbit_ws.core.auth import Credentials
from upbit_ws.core.constants import DATA_TYPES, DEFAULT_BASE_URL, PRIVATE_TYPES
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.messages import Candle, MyAsset, MyOrder, Orderbook, Ticker, Trade

__all__ = ["watch"]

#: Table redraws per second.
REFRESH_PER_SECOND: Final = 8
#: Rows a rolling table (trade, myOrder) keeps.
ROLLING_ROWS: Final = 20
_KEY_REFUSED: Final = frozenset({"invalid", "expired", "permission"})


class _Options(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    codes: tuple[str, ...]
    json: bool
    simulator: bool
    base_url: str
    private: bool
    depth: int | None
    count: int | None
    seconds: float | None
    connect_timeout: float


@click.command(cls=OneLineCommand)
@click.argument("type_", metavar="TYPE", type=click.Choice(DATA_TYPES))
@click.argument("codes", nargs=-1, metavar="CODE...")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per message.")
@click.option(
    "--simulator", is_flag=True, help="Run the embedded simulator and watch it instead of Upbit."
)
@click.option(
    "--base-url",
    "--url",
    "base_url",
    default=DEFAULT_BASE_URL,
    show_default=True,
    metavar="URL",
    help="Upbit's REST base; the WebSocket URLs derive from it.",
)
@click.option(
    "--private",
    is_flag=True,
    help="Open the private connection with UPBIT_ACCESS_KEY/UPBIT_SECRET_KEY "
    "(implied by myOrder and myAsset).",
)
@click.option(
    "--depth", type=click.Choice(["1", "5", "15", "30"]), default=None, help="Orderbook depth."
)
@click.option(
    "--count", type=click.IntRange(min=1), default=None, help="Stop after this many messages."
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this long.",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Give up if the connection is not open within this many seconds.",
)
@click.option("-v", "--verbose", is_flag=True, help="Also show the library's log lines.")
def watch(
    *,
    type_: str,
    codes: tuple[str, ...],
    as_json: bool,
    simulator: bool,
    base_url: str,
    private: bool,
    depth: str | None,
    count: int | None,
    seconds: float | None,
    connect_timeout: float,
    verbose: bool,
) -> None:
    """Watch one data TYPE for CODE... live, as a table or JSON lines.

    \b
    Examples:
      upbit-ws watch ticker KRW-BTC KRW-ETH
      upbit-ws watch ticker 'KRW-*' --json | jq .trade_price
      upbit-ws watch orderbook KRW-BTC --depth 5
      upbit-ws watch trade KRW-BTC --simulator --count 10 --json
      upbit-ws watch myOrder --private

    TYPE is ticker, trade, orderbook, candle.1s ... candle.240m, myOrder or myAsset. Codes
    are Upbit market codes (KRW-BTC; KRW-* for every KRW market); myOrder takes none for
    every market and myAsset takes none. Ctrl-C stops with exit 0.
    """
    if type_ in PRIVATE_TYPES:
        private = True
    if type_ == "myAsset" and codes:
        raise InputError("myAsset takes no codes")
    if type_ not in PRIVATE_TYPES and not codes:
        raise InputError(f"{type_} needs at least one CODE (e.g. KRW-BTC)")
    if depth is not None and type_ != "orderbook":
        raise InputError("--depth applies to orderbook only")
    if simulator and base_url != DEFAULT_BASE_URL:
        raise InputError("give --simulator or --base-url, not both")
    if not as_json and not _has_rich():
        raise InputError(
            "the live table needs rich (pip install 'upbit-ws[dashboard]'); or use --json"
        )
    quiet_logging(verbose=verbose)
    options = _Options(
        type=type_,
        codes=codes,
        json=as_json,
        simulator=simulator,
        base_url=base_url,
        private=private,
        depth=int(depth) if depth is not None else None,
        count=count,
        seconds=seconds,
        connect_timeout=connect_timeout,
    )
    run(interruptible(lambda stop: _watch(options, stop)))


def _has_rich() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


@asynccontextmanager
async def _server(options: _Options) -> AsyncIterator[tuple[str, Credentials | None]]:
    """Yield the base URL and credentials to use (starting the simulator if asked)."""
    if not options.simulator:
        credentials = None
        if options.private:
            try:
                credentials = Credentials.from_env()
            except InvalidInputError as exc:
                raise click.ClickException(str(exc)) from None
            if credentials is None:
                raise click.ClickException(
                    "--private needs UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY in the environment"
                )
        yield options.base_url, credentials
        return
    from upbit_ws.simulator import Simulator

    async with Simulator(port=0) as sim:
        yield sim.url, Credentials(*sim.credentials) if options.private else None


async def _watch(options: _Options, stop: asyncio.Event) -> None:
    async with (
        _server(options) as (base_url, credentials),
        WebSocketManager(base_url=base_url, credentials=credentials) as ws,
    ):
        _check_reachable(ws, base_url)
        _check_key(ws)
        component = ws.component("watch")
        if options.type == "orderbook":
            sub: Subscription[Any] = component.subscribe(
                "orderbook", options.codes, depth=options.depth
            )
        else:
            sub = component.subscribe(options.type, options.codes)
        await _wait_open(ws, options)
        sink: _Sink = _JsonSink() if options.json else _TableSink(options)
        try:
            await _stream(sub, sink, options, stop)
        finally:
            sink.close()


async def _stream(
    sub: Subscription[Any], sink: _Sink, options: _Options, stop: asyncio.Event
) -> None:
    """Feed ``sink`` until ``--count`` messages, ``--seconds``, or a stop signal."""
    async with sub, asyncio.TaskGroup() as tg:
        reader = tg.create_task(_read(sub, sink, options.count))
        waits: list[asyncio.Task[Any]] = [tg.create_task(stop.wait())]
        if options.seconds is not None:
            waits.append(tg.create_task(asyncio.sleep(options.seconds)))
        await asyncio.wait([reader, *waits], return_when=asyncio.FIRST_COMPLETED)
        for task in (reader, *waits):
            task.cancel()


def _check_reachable(ws: WebSocketManager, base_url: str) -> None:
    markets = ws.statistics().subscriptions.markets
    if markets.markets is None:
        raise click.ClickException(
            f"cannot reach {base_url}: {markets.last_error or 'the market list did not load'}"
        )


def _check_key(ws: WebSocketManager) -> None:
    stats = ws.statistics().key
    if stats is not None and stats.status in _KEY_REFUSED:
        why = f": {stats.last_check_error}" if stats.last_check_error else ""
        raise click.ClickException(f"Upbit refused the API key ({stats.status}){why}")


async def _wait_open(ws: WebSocketManager, options: _Options) -> None:
    conn = ws.private if options.type in PRIVATE_TYPES and ws.private is not None else ws.public
    try:
        async with asyncio.timeout(options.connect_timeout):
            await conn.wait_open()
    except TimeoutError:
        reason = conn.statistics().last_error or f"still {conn.state}"
        raise click.ClickException(
            f"the {conn.kind} connection did not open within {options.connect_timeout:g} s: "
            f"{reason}"
        ) from None


async def _read(sub: Subscription[Any], sink: _Sink, count: int | None) -> None:
    seen = 0
    async for batch in sub.batches():
        for msg in batch:
            sink.add(msg)
            seen += 1
            if count is not None and seen >= count:
                sink.flush()
                return
        sink.flush()


class _Sink:
    """Where messages go: JSON lines or the live table."""

    def add(self, msg: Any) -> None:
        """Take one message."""
        raise NotImplementedError

    def flush(self) -> None:
        """Push out what was taken."""

    def close(self) -> None:
        """Finish the output."""


class _JsonSink(_Sink):
    def __init__(self) -> None:
        self._out = sys.stdout.buffer
        self._encoder = msgspec.json.Encoder(decimal_format="number")

    def add(self, msg: Any) -> None:
        self._out.write(self._encoder.encode(msg) + b"\n")

    def flush(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self._out.flush()


class _TableSink(_Sink):
    """A Rich live table redrawn from the latest value per row (rolling for trade, myOrder)."""

    def __init__(self, options: _Options) -> None:
        from rich.console import Console
        from rich.live import Live

        self._options = options
        self._latest: dict[str, Any] = {}
        self._rolling: deque[Any] = deque(maxlen=ROLLING_ROWS)
        self._messages = 0
        self._started = time.monotonic()
        self._console = Console()
        self._live = Live(
            self._render(),
            console=self._console,
            refresh_per_second=REFRESH_PER_SECOND,
            get_renderable=self._render,
        )
        self._live.start()

    def add(self, msg: Any) -> None:
        self._messages += 1
        if isinstance(msg, Trade | MyOrder):
            self._rolling.appendleft(msg)
        elif isinstance(msg, MyAsset):
            for asset in msg.assets:
                self._latest[asset.currency] = asset
        else:
            self._latest[msg.code] = msg

    def close(self) -> None:
        self._live.stop()

    def _render(self) -> Any:
        from rich.table import Table

        opts = self._options
        elapsed = time.monotonic() - self._started
        where = "simulator" if opts.simulator else opts.base_url
        table = Table(
            title=f"{opts.type} {' '.join(opts.codes)}  ·  {where}",
            caption=f"{self._messages:,} messages in {elapsed:.0f} s  ·  Ctrl-C to stop",
            expand=False,
        )
        headers, rows = _rows(opts.type, self._latest, self._rolling)
        for header in headers:
            table.add_column(header, justify="left" if header in _LEFT else "right")
        for row in rows:
            table.add_row(*row)
        return table


_LEFT: Final = frozenset({"code", "time", "side", "state", "currency", "uuid", "type"})


def _rows(
    type_: str, latest: dict[str, Any], rolling: Sequence[Any]
) -> tuple[list[str], list[list[Any]]]:
    from rich.text import Text

    from upbit_ws.cli.dashboard.render import change_text, price_text, volume_text

    if type_ == "ticker":
        tickers: list[Ticker] = [latest[c] for c in sorted(latest)]
        return ["code", "price", "change", "24h value", "time"], [
            [
                t.code,
                price_text(t.trade_price),
                change_text(t),
                volume_text(t.acc_trade_price_24h or t.acc_trade_price),
                _hms(t.trade_time),
            ]
            for t in tickers
        ]
    if type_ == "orderbook":
        books: list[Orderbook] = [latest[c] for c in sorted(latest)]
        return ["code", "bid", "ask", "spread", "bid size", "ask size", "levels"], [
            [
                b.code,
                price_text(b.best_bid),
                price_text(b.best_ask),
                price_text(b.best_ask - b.best_bid)
                if b.best_ask is not None and b.best_bid is not None
                else "-",
                f"{b.total_bid_size:,.3f}",
                f"{b.total_ask_size:,.3f}",
                str(len(b.units)),
            ]
            for b in books
        ]
    if type_ == "trade":
        trades: Sequence[Trade] = rolling
        return ["time", "code", "side", "price", "volume"], [
            [
                t.trade_time,
                t.code,
                Text("buy", style="red") if t.ask_bid == "BID" else Text("sell", style="blue"),
                price_text(t.trade_price),
                f"{t.trade_volume:,.8g}",
            ]
            for t in trades
        ]
    if type_ == "myOrder":
        orders: Sequence[MyOrder] = rolling
        return ["code", "side", "type", "state", "price", "volume", "uuid"], [
            [
                o.code,
                "buy" if o.ask_bid == "BID" else "sell",
                o.order_type,
                o.state,
                price_text(o.price),
                "-" if o.volume is None else f"{o.volume:,.8g}",
                o.uuid[:8],
            ]
            for o in orders
        ]
    if type_ == "myAsset":
        return ["currency", "balance", "locked"], [
            [a.currency, str(a.balance), str(a.locked)] for _, a in sorted(latest.items())
        ]
    candles: list[Candle] = [latest[c] for c in sorted(latest)]
    return ["code", "time", "open", "high", "low", "close", "volume"], [
        [
            c.code,
            c.candle_date_time_kst[11:16] + " KST",
            price_text(c.opening_price),
            price_text(c.high_price),
            price_text(c.low_price),
            price_text(c.trade_price),
            f"{c.candle_acc_trade_volume:,.4f}",
        ]
        for c in candles
    ]


def _hms(hhmmss: str) -> str:
    return f"{hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:6]} UTC" if len(hhmmss) == 6 else hhmmss
