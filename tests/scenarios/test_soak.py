"""Soak: the whole library under a rotation of every fault, through the public API.

The seed's components (coin list, order book view that keeps switching coins, chart) plus a
trade tape, myOrder and myAsset run against the simulator while faults rotate: abort, clean
close, blackhole, error frame, server restart, key revoked and restored. After every fault the
test waits for each public component to receive fresh data and for the private connection to
come back; at the end it checks that nothing leaked (tasks) and, on the long run, that memory
stayed flat.

``make test`` runs a short round (one pass over the faults); ``make soak`` runs the long one
(``UPBIT_WS_SOAK_SECONDS``, default 600 s).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import resource
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.aio.connection_helpers import fresh_limiter, our_tasks
from upbit_ws import ConnectionStateChanged, Credentials, Subscription, WebSocketManager
from upbit_ws.aio.events import EventStream
from upbit_ws.core.config import BackoffConfig, ConnectionConfig, KeyHealthConfig
from upbit_ws.simulator import Simulator

SOAK_SECONDS = float(os.environ.get("UPBIT_WS_SOAK_SECONDS", "600"))
#: Keepalive stays at the defaults (the blackhole is found by the real probe); the backoff
#: cap and key check are shortened so that one pass fits in a few seconds.
CONFIG = ConnectionConfig(
    backoff=BackoffConfig(cap=1.0, rate_limited_floor=0.5, blocked_floor=1.0, auth_retry=1.0),
    key_health=KeyHealthConfig(check_interval=0.5),
)
COINS = ("KRW-BTC", "KRW-ETH", "KRW-XRP")


@dataclass
class Tally:
    """How many messages each consumer has read; waiters are woken on every message."""

    counts: dict[str, int] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n
        self.changed.set()

    async def until_all_grow(self, names: tuple[str, ...], *, within: float) -> None:
        """Wait until every consumer in ``names`` has read at least one more message."""
        start = {name: self.counts.get(name, 0) for name in names}
        async with asyncio.timeout(within):
            while any(self.counts.get(n, 0) <= start[n] for n in names):
                self.changed.clear()
                await self.changed.wait()


async def consume(name: str, sub: Subscription[Any], tally: Tally) -> None:
    """Read batches until the subscription ends, counting them."""
    async for batch in sub.batches():
        tally.add(name, len(batch))


def rss_mb() -> float:
    """Return this process's peak resident set size in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


Fault = Callable[[], Awaitable[str]]


def fault_rotation(sim: Simulator, events: EventStream) -> list[Fault]:
    """Return the faults, each injecting itself and naming what it did."""

    async def abort() -> str:
        sim.abort()
        return "abort"

    async def clean_close() -> str:
        sim.close(code=1000)
        return "close 1000"

    async def blackhole() -> str:
        sim.blackhole(4.0)
        return "blackhole"

    async def error_frame() -> str:
        sim.inject_error("WRONG_FORMAT")
        return "error frame"

    async def restart() -> str:
        await sim.restart(down_seconds=0.3)
        return "restart"

    async def key_revoked() -> str:
        sim.revoke_key()
        async with asyncio.timeout(10):
            async for event in events:  # the key check must notice and suspend private
                if isinstance(event, ConnectionStateChanged) and (
                    (event.connection, event.new) == ("private", "suspended")
                ):
                    break
        sim.restore_key()
        return "key revoked and restored"

    return [abort, clean_close, blackhole, error_frame, restart, key_revoked]


async def run_soak(seconds: float | None) -> dict[str, Any]:
    """Run the components under rotating faults; one pass when ``seconds`` is None."""
    async with Simulator(port=0, krw_markets=60, connect_per_second=None) as sim:
        ws = WebSocketManager(
            base_url=sim.url,
            credentials=Credentials(*sim.credentials),
            config=CONFIG,
            connect_limiter=fresh_limiter(),
        )
        tally = Tally()
        async with ws, asyncio.TaskGroup() as group:
            coins = ws.component("coin_list").subscribe("ticker", ["KRW-*"])
            book = ws.component("orderbook_view").subscribe("orderbook", ["KRW-BTC"], depth=15)
            chart = ws.component("chart").subscribe("candle.1s", ["KRW-BTC"])
            tape = ws.component("tape").subscribe("trade", ["KRW-BTC"])
            orders = ws.component("bot").subscribe("myOrder")
            for name, sub in (
                ("coins", coins),
                ("book", book),
                ("chart", chart),
                ("tape", tape),
                ("orders", orders),
            ):
                group.create_task(consume(name, sub, tally))
            public = ("coins", "book", "tape")
            await tally.until_all_grow(public, within=10)
            assert ws.private is not None
            await asyncio.wait_for(ws.private.wait_open(), 10)
            start_rss = rss_mb()
            loop = asyncio.get_running_loop()
            deadline = None if seconds is None else loop.time() + seconds
            faults = fault_rotation(sim, ws.events())
            done: list[str] = []
            coin_cycle = itertools.cycle(COINS[1:] + COINS[:1])
            for fault in itertools.cycle(faults):
                if deadline is None and len(done) == len(faults):
                    break
                if deadline is not None and loop.time() >= deadline:
                    break
                done.append(await fault())
                await book.update([next(coin_cycle)])
                await tally.until_all_grow(public, within=15)
                await asyncio.wait_for(ws.private.wait_open(), 15)
            stats = ws.statistics()
            result = {
                "faults": done,
                "counts": dict(tally.counts),
                "rss_growth_mb": rss_mb() - start_rss,
                "internal_errors": stats.internal_errors,
                "decode_errors": stats.subscriptions.public.router.decode_errors,
                "public_state": ws.public.state,
            }
            for sub in (coins, book, chart, tape, orders):
                await sub.aclose()
        result["leaked_tasks"] = [t.get_name() for t in our_tasks()]
        return result


async def test_soak_one_pass_over_every_fault() -> None:
    """One pass over every fault: each is recovered, components keep receiving, nothing leaks."""
    result = await run_soak(None)
    assert result["faults"] == [
        "abort",
        "close 1000",
        "blackhole",
        "error frame",
        "restart",
        "key revoked and restored",
    ]
    assert result["public_state"] == "open"
    assert result["internal_errors"] == ()
    assert result["decode_errors"] == 0
    assert result["leaked_tasks"] == []


@pytest.mark.soak
@pytest.mark.timeout(SOAK_SECONDS + 120)
async def test_soak_long_run_stays_flat() -> None:
    """For UPBIT_WS_SOAK_SECONDS, every fault recovers, memory stays flat, nothing leaks."""
    result = await run_soak(SOAK_SECONDS)
    assert len(result["faults"]) >= 6
    assert result["internal_errors"] == ()
    assert result["leaked_tasks"] == []
    # ru_maxrss is a high-water mark: steady operation must not keep raising it.
    assert result["rss_growth_mb"] < 20, result
    print(result)  # noqa: T201 - the soak's report, shown with -s
