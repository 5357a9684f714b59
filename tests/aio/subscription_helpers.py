"""Helpers for subscription-layer tests: frame builders and a stack over the simulator.

Frames are built from the library's own message classes and encoded to DEFAULT JSON, so they
are exactly what Upbit's DEFAULT format looks like to the decoder. The stack is the real
subscription service attached to a real managed connection over loopback to the simulator:
nothing is patched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import msgspec

from tests.aio.connection_helpers import FAST, EventLog, fresh_limiter, our_tasks, sim_until
from upbit_ws.aio.connection import ManagedConnection
from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.aio.rest import RestClient
from upbit_ws.aio.subscriptions import SubscriptionService
from upbit_ws.core.auth import Credentials
from upbit_ws.core.config import ConnectionConfig
from upbit_ws.core.constants import ConnectionKind
from upbit_ws.core.events import Event
from upbit_ws.core.messages import (
    Candle,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    Ticker,
    Trade,
)
from upbit_ws.core.ratelimit import Gcra
from upbit_ws.simulator import Simulator
from upbit_ws.simulator.connection import SimConnection

__all__ = [
    "MARKETS",
    "SMALL_SIM",
    "Stack",
    "attached_service",
    "candle",
    "my_asset",
    "my_order",
    "next_item",
    "orderbook",
    "requests_of",
    "stack",
    "streaming",
    "ticker",
    "trade",
    "until",
]

T = TypeVar("T")

#: A small market list for tests that do not touch the network.
MARKETS = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "BTC-ETH", "USDT-BTC")
#: A small simulator (quick to start); KRW-BTC, KRW-ETH, KRW-XRP are always listed and busy.
SMALL_SIM: dict[str, Any] = {"krw_markets": 20, "btc_markets": 3, "usdt_markets": 3}

#: FAST with a 2 s silence ceiling. The stream of :func:`streaming` (an orderbook and a trade
#: tape of KRW-BTC) has a p99 read gap of about 0.2 s, under a third of this ceiling: a busy
#: stream, whose silence past its threshold (4 x p99: 0.8 s) hedges at once
#: (core/session.py). Under FAST's 0.4 s ceiling the same silence is not news: it is probed,
#: and hedged when the probe goes unanswered.
HEDGING = replace(FAST, keepalive=replace(FAST.keepalive, silence_probe=2.0))
_TS = 1_785_397_200_000


def _encode(message: msgspec.Struct) -> bytes:
    return msgspec.json.encode(message)


def ticker(
    code: str, price: float = 100.0, *, stream: str = "REALTIME", ts: int = _TS, seq: int = 0
) -> bytes:
    """Return a DEFAULT ticker frame."""
    return _encode(
        Ticker(
            code=code,
            opening_price=price,
            high_price=price,
            low_price=price,
            trade_price=price,
            prev_closing_price=price,
            change="EVEN",
            change_price=0.0,
            signed_change_price=0.0,
            change_rate=0.0,
            signed_change_rate=0.0,
            trade_volume=1.0,
            acc_trade_volume=1.0 + seq,
            acc_trade_price=price,
            trade_date="20260730",
            trade_time="070000",
            trade_timestamp=_TS + seq,
            ask_bid="BID",
            acc_ask_volume=0.0,
            acc_bid_volume=1.0,
            timestamp=ts,
            stream_type=stream,  # type: ignore[arg-type]
        )
    )


def trade(code: str, seq: int, *, stream: str = "REALTIME", ts: int = _TS) -> bytes:
    """Return a DEFAULT trade frame with ``sequential_id`` ``seq``."""
    return _encode(
        Trade(
            code=code,
            trade_price=100.0,
            trade_volume=1.0,
            ask_bid="ASK",
            prev_closing_price=100.0,
            change="EVEN",
            change_price=0.0,
            trade_date="2026-07-30",
            trade_time="07:00:00",
            trade_timestamp=_TS + seq,
            timestamp=ts,
            sequential_id=seq,
            stream_type=stream,  # type: ignore[arg-type]
        )
    )


def orderbook(
    code: str,
    units: int = 30,
    *,
    level: float | None = 0.0,
    stream: str = "REALTIME",
    ts: int = _TS,
    bid: float = 99.0,
) -> bytes:
    """Return a DEFAULT orderbook frame with ``units`` rows."""
    rows = tuple(
        OrderbookUnit(ask_price=bid + 1 + i, bid_price=bid - i, ask_size=1.0, bid_size=2.0)
        for i in range(units)
    )
    return _encode(
        Orderbook(
            code=code,
            timestamp=ts,
            total_ask_size=float(units),
            total_bid_size=2.0 * units,
            orderbook_units=rows,
            level=level,
            stream_type=stream,  # type: ignore[arg-type]
        )
    )


def candle(type: str, code: str, *, price: float = 100.0, stream: str = "REALTIME") -> bytes:
    """Return a DEFAULT candle frame of ``type`` (``candle.1m``...)."""
    return _encode(
        Candle(
            type=type,  # type: ignore[arg-type]
            code=code,
            candle_date_time_utc="2026-07-30T07:00:00",
            candle_date_time_kst="2026-07-30T16:00:00",
            opening_price=price,
            high_price=price,
            low_price=price,
            trade_price=price,
            candle_acc_trade_volume=1.0,
            candle_acc_trade_price=price,
            timestamp=_TS,
            stream_type=stream,  # type: ignore[arg-type]
        )
    )


def my_order(code: str, uuid: str = "u-1") -> bytes:
    """Return a DEFAULT myOrder frame."""
    return _encode(
        MyOrder(
            code=code,
            uuid=uuid,
            ask_bid="BID",
            order_type="limit",
            state="wait",
            timestamp=_TS,
            stream_type="REALTIME",
        )
    )


def my_asset() -> bytes:
    """Return a DEFAULT myAsset frame."""
    return _encode(
        MyAsset(
            asset_uuid="a-1",
            assets=(),
            asset_timestamp=_TS,
            timestamp=_TS,
            stream_type="REALTIME",
        )
    )


async def next_item(iterator: Any, within: float = 5.0) -> Any:
    """Return the next item of an async iterator, failing after ``within`` seconds."""
    async with asyncio.timeout(within):
        return await anext(iterator)


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (checked every few ms), failing after ``within``.

    The one polling helper: the conditions span the simulator, the sockets and the service,
    so there is no one event to wait on; the check is cheap and the deadline makes a miss
    fail loudly.
    """
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def attached_service(
    *kinds: ConnectionKind, markets: tuple[str, ...] | None = MARKETS, **options: Any
) -> SubscriptionService:
    """Return a service (market list ``markets``) attached to unstarted connections of ``kinds``.

    ``markets=None`` gives a service that has no market list yet.

    As a manager builds it (both kinds: one with credentials); nothing is opened, so frames
    are fed to the channels by hand.
    """
    service = SubscriptionService(markets=markets, **options)
    for kind in kinds or ("public", "private"):
        credentials = Credentials("A" * 40, "B" * 40) if kind == "private" else None
        service.attach(
            ManagedConnection(
                kind,
                url="ws://127.0.0.1:9",
                credentials=credentials,
                connect_limiter=fresh_limiter(),
            )
        )
    return service


def requests_of(conn: SimConnection) -> list[dict[str, Any]]:
    """Return the subscription requests a simulated connection received, parsed."""
    return [r.parsed for r in conn.requests if r.parsed.get("kind") == "subscribe"]


@dataclass
class Stack:
    """The subscription service on a real public connection to a running simulator."""

    sim: Simulator
    service: SubscriptionService
    public: ManagedConnection
    events: list[Event] = field(default_factory=list)

    def publish(self, event: Event) -> None:
        """Record an event (the service's publish callback)."""
        self.events.append(event)

    def sim_public(self) -> SimConnection:
        """Return the simulator's side of the newest public connection (open or closed)."""
        conns = [c for c in self.sim.connections(include_closed=True) if c.kind == "public"]
        assert conns, "no public connection was ever opened on the simulator"
        return conns[-1]

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (see :func:`until`)."""
        await until(predicate, within)


@asynccontextmanager
async def stack(
    *,
    sim_options: dict[str, Any] | None = None,
    service_options: dict[str, Any] | None = None,
    connection_config: ConnectionConfig = FAST,
) -> AsyncIterator[Stack]:
    """Run a simulator, a REST client, the service and a public connection; tear all down."""
    options = {**SMALL_SIM, **(sim_options or {})}
    async with Simulator(port=0, **options) as sim, RestClient(sim.url) as rest:
        holder: list[Stack] = []

        def publish(event: Event) -> None:
            holder[0].publish(event)

        options = {"config": FAST, **(service_options or {})}
        service = SubscriptionService(rest=rest, publish=publish, **options)
        public = ManagedConnection(
            "public", url=sim.ws_url, config=connection_config, connect_limiter=fresh_limiter()
        )
        service.attach(public)
        st = Stack(sim=sim, service=service, public=public)
        holder.append(st)
        await service.start()
        await public.start()
        try:
            await asyncio.wait_for(public.wait_open(), 5.0)
            yield st
        finally:
            await public.aclose()
            await service.aclose()


async def rate_learned(ws: WebSocketManager, config: ConnectionConfig) -> None:
    """Wait until the public stream's rate is learned: its silence bound under the ceiling."""
    public = ws.public
    ceiling = config.keepalive.silence_probe
    await until(lambda: public.statistics().silence_threshold < ceiling)


@asynccontextmanager
async def streaming(
    *, limiter: Gcra | None = None, keys: bool = False, config: ConnectionConfig = FAST
) -> AsyncIterator[tuple[Simulator, WebSocketManager, EventLog, Any, Any]]:
    """Run a simulator and a manager with a book (orderbook) and a tape (trade) flowing.

    Yields (simulator, manager, event log, book, tape); after the manager closes, no library
    task is left and every socket on the simulator is closed.
    """
    async with Simulator(port=0, **SMALL_SIM) as sim:
        ws = WebSocketManager(
            base_url=sim.url,
            config=config,
            connect_limiter=limiter or fresh_limiter(),
            credentials=Credentials(*sim.credentials) if keys else None,
        )
        log = EventLog(ws.events())
        async with ws:
            book = ws.component("book").subscribe("orderbook", ["KRW-BTC"])
            tape = ws.component("tape").subscribe("trade", ["KRW-BTC"])
            await next_item(book)
            await until(lambda: "last request applied" in str(ws.subscriptions()))
            yield sim, ws, log, book, tape
        assert our_tasks() == []
        await sim_until(sim, lambda: not any(c.open for c in sim.connections()))
