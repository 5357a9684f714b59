"""Soak: the whole library under a rotation of every fault, through the public API.

The seed's components (coin list, an order book view that keeps switching coins, a chart), a
trade tape and a myOrder stream run against the simulator while faults rotate: abort, clean
close, blackhole, error frame, server restart, key revoked and restored. After every fault the
test waits until each public component receives fresh data and the private connection is open
again; at the end it checks that nothing leaked (tasks) and that memory stayed flat.

The simulator runs in its own process (``upbit-ws simulate``; faults over its control HTTP
API), as Upbit is another machine: the memory measured is the library's alone, not the
simulator's market history filling up.

``make test`` runs one pass over the faults; ``make soak`` runs the long one
(``UPBIT_WS_SOAK_SECONDS``, default 600 s).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from tests.aio.connection_helpers import fresh_limiter, our_tasks
from upbit_ws import ConnectionStateChanged, Credentials, Subscription, WebSocketManager
from upbit_ws.aio.events import EventStream
from upbit_ws.core.config import BackoffConfig, ConnectionConfig, KeyHealthConfig
from upbit_ws.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY

SOAK_SECONDS = float(os.environ.get("UPBIT_WS_SOAK_SECONDS", "600"))
#: Keepalive stays at the defaults (the blackhole is found by the real probe); the backoff
#: cap and the key check are shortened so that one pass fits in a few seconds.
CONFIG = ConnectionConfig(
    backoff=BackoffConfig(cap=1.0, rate_limited_floor=0.5, blocked_floor=1.0, auth_retry=1.0),
    key_health=KeyHealthConfig(check_interval=0.5),
)
COINS = ("KRW-BTC", "KRW-ETH", "KRW-XRP")
PUBLIC = ("coins", "book", "tape")


class RemoteSimulator:
    """``upbit-ws simulate`` in its own process, driven over its control HTTP API."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self._http = http

    async def fault(self, path: str, **body: Any) -> None:
        """POST one control request (``/_sim/...``) and require an ok answer."""
        async with self._http.post(f"{self.url}/_sim/{path}", json=body) as response:
            answer = await response.json()
        assert response.status == 200 and answer.get("ok"), (path, answer)


@asynccontextmanager
async def remote_simulator() -> AsyncIterator[RemoteSimulator]:
    """Start the simulator process, read its URL from its first line, stop it afterwards."""
    command = ["-m", "upbit_ws.cli.simulate", "--port", "0", "--no-limits"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        async with aiohttp.ClientSession() as http:
            yield RemoteSimulator(line.decode().strip(), http)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


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
    """Return this process's current resident set size in MB, after a full collection."""
    gc.collect()
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


Fault = Callable[[], Awaitable[str]]


def fault_rotation(sim: RemoteSimulator, events: EventStream) -> list[Fault]:
    """Return the faults, each injecting itself and naming what it did."""

    async def abort() -> str:
        await sim.fault("faults/abort")
        return "abort"

    async def clean_close() -> str:
        await sim.fault("faults/close", code=1000)
        return "close 1000"

    async def blackhole() -> str:
        await sim.fault("faults/blackhole", seconds=4.0)
        return "blackhole"

    async def error_frame() -> str:
        await sim.fault("faults/error", name="WRONG_FORMAT")
        return "error frame"

    async def restart() -> str:
        await sim.fault("faults/restart", down_seconds=0.3)
        return "restart"

    async def key_revoked() -> str:
        await sim.fault("keys/revoke")
        async with asyncio.timeout(10):
            async for event in events:  # the key check must notice and suspend private
                if isinstance(event, ConnectionStateChanged) and (
                    (event.connection, event.new) == ("private", "suspended")
                ):
                    break
        await sim.fault("keys/restore")
        return "key revoked and restored"

    return [abort, clean_close, blackhole, error_frame, restart, key_revoked]


async def run_soak(seconds: float | None) -> dict[str, Any]:
    """Run the components under rotating faults; one pass when ``seconds`` is None."""
    async with remote_simulator() as sim:
        ws = WebSocketManager(
            base_url=sim.url,
            credentials=Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
            config=CONFIG,
            connect_limiter=fresh_limiter(),
        )
        tally = Tally()
        async with ws, asyncio.TaskGroup() as group:
            subs = {
                "coins": ws.component("coin_list").subscribe("ticker", ["KRW-*"]),
                "book": ws.component("orderbook_view").subscribe(
                    "orderbook", ["KRW-BTC"], depth=15
                ),
                "chart": ws.component("chart").subscribe("candle.1s", ["KRW-BTC"]),
                "tape": ws.component("tape").subscribe("trade", ["KRW-BTC"]),
                "orders": ws.component("bot").subscribe("myOrder"),
            }
            for name, sub in subs.items():
                group.create_task(consume(name, sub, tally))
            await tally.until_all_grow(PUBLIC, within=15)
            assert ws.private is not None
            await asyncio.wait_for(ws.private.wait_open(), 10)
            loop = asyncio.get_running_loop()
            deadline = None if seconds is None else loop.time() + seconds
            faults = fault_rotation(sim, ws.events())
            done: list[str] = []
            coin_cycle = itertools.cycle(COINS[1:] + COINS[:1])
            rss: list[float] = []
            for fault in itertools.cycle(faults):
                if len(done) % len(faults) == 0:
                    rss.append(rss_mb())  # once per pass over the faults
                    if deadline is None and done:
                        break
                if deadline is not None and loop.time() >= deadline:
                    break
                done.append(await fault())
                await subs["book"].update([next(coin_cycle)])
                await tally.until_all_grow(PUBLIC, within=15)
                await asyncio.wait_for(ws.private.wait_open(), 15)
            stats = ws.statistics()
            result = {
                "faults": done,
                "counts": dict(tally.counts),
                "rss_mb_per_pass": [round(x, 1) for x in rss],
                "internal_errors": stats.internal_errors,
                "decode_errors": stats.subscriptions.public.router.decode_errors,
                "public_state": ws.public.state,
            }
            for sub in subs.values():
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
    print(result)  # noqa: T201 - the soak's report, shown with -s
    assert len(result["faults"]) >= 12
    assert result["internal_errors"] == ()
    assert result["leaked_tasks"] == []
    rss = result["rss_mb_per_pass"]
    # After the first pass (warm-up: imports, caches, buffers at their working size), the
    # library's memory must not keep growing pass after pass. Run with pytest's log capture
    # off (make soak does): it keeps every log record, and each fault logs a few.
    assert rss[-1] - rss[1] < 3.0, rss
