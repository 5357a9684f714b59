"""Private integrity benchmark (issue #9): forced private faults while orders fill; fills missed?

The simulator runs in its own process (``python -m upbit_ws.cli.simulate``, REST and WebSocket
limits on) and is driven through its control API (docs/simulator.md). One WebSocketManager with
the simulator's key subscribes myOrder (every market) and myAsset and records everything it
receives. Meanwhile one task places orders over REST (market buys, market sells, crossing
limits that fill at once, resting limits cancelled at once) and another forces ``--faults``
private faults in rotation: abort (1006), clean close (1000), blackhole of 1-3 s, an
``INVALID_AUTH`` error frame (the key stays valid), and a stall (a 2 s blackhole after which
orders keep coming, so the socket may survive it).

After the last fault it waits until every gap is reconciled, then reads every order back with
``GET /v1/order`` (the truth) and reports, as a markdown table: fills placed (trades REST
reports), fills delivered live, delivered reconciled, duplicated (any ``(uuid, state,
trade_uuid)`` delivered twice), missed; terminal states missed; whether the subscriber's
balances equal ``GET /v1/accounts``; reconciliation p50/p99 duration (passes after a
resubscription, reads that delivered while private was down, and audits apart) and where a
pass's time goes (the wait for the socket to be subscribed again, the REST read, the REST
pacer's waits inside it, the settle) and how many passes re-read the balances after the settle
or skipped it (no live private message near their read); audits run and their REST calls a
minute, overall (reads during suspensions included) and over ``--steady`` seconds of trading
without faults after the last one.

Usage::

    .venv/bin/python benchmarks/private_integrity.py                 # 100 faults, ~6 minutes
    .venv/bin/python benchmarks/private_integrity.py --faults 10     # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import aiohttp

from upbit_ws import (
    ConnectionStateChanged,
    Credentials,
    MyAsset,
    MyOrder,
    ReconciliationFinished,
    ReconciliationStarted,
    WebSocketManager,
)
from upbit_ws.aio.rest import RestClient
from upbit_ws.aio.router import LatencySummary
from upbit_ws.core.config import ConnectionConfig, KeepaliveConfig
from upbit_ws.core.errors import UpbitWsError
from upbit_ws.core.reconcile import TERMINAL_STATES
from upbit_ws.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY

FAULTS = ("abort", "close", "blackhole", "invalid_auth", "stall")


@contextlib.asynccontextmanager
async def simulator() -> AsyncIterator[str]:
    """Start the simulator process; yield its base URL; stop it afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "upbit_ws.cli.simulate",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        yield line.decode().strip()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


@dataclass
class Seen:
    """What the myOrder/myAsset subscribers received."""

    orders: list[MyOrder] = field(default_factory=list)
    assets: list[MyAsset] = field(default_factory=list)

    async def read(self, sub: Any) -> None:
        async for message in sub:
            if isinstance(message, MyOrder):
                self.orders.append(message)
            else:
                self.assets.append(message)


async def private_id(http: aiohttp.ClientSession, url: str) -> int | None:
    async with http.get(f"{url}/_sim/connections") as answer:
        body = await answer.json()
    ids = [c["id"] for c in body["connections"] if c.get("kind") == "private"]
    return max(ids) if ids else None


async def fault(http: aiohttp.ClientSession, url: str, kind: str, rng: random.Random) -> None:
    conn = await private_id(http, url)
    if conn is None:
        return
    if kind == "abort":
        path, body = "abort", {"connection": conn}
    elif kind == "close":
        path, body = "close", {"connection": conn, "code": 1000}
    elif kind == "blackhole":
        path, body = "blackhole", {"connection": conn, "seconds": rng.uniform(1.0, 3.0)}
    elif kind == "stall":
        path, body = "blackhole", {"connection": conn, "seconds": 2.0}
    else:
        path, body = "error", {"connection": conn, "name": "INVALID_AUTH"}
    async with http.post(f"{url}/_sim/faults/{path}", json=body) as answer:
        answer.raise_for_status()


async def place_orders(rest: RestClient, placed: list[str], stop: asyncio.Event) -> None:
    """Place a mix of orders that all end, about four a second, until ``stop``."""
    i = 0
    while not stop.is_set():
        kind = i % 4
        i += 1
        try:
            if kind == 0:
                order = await rest.place_order(
                    market="KRW-BTC", side="bid", ord_type="price", price="10000"
                )
            elif kind == 1:
                order = await rest.place_order(
                    market="KRW-BTC", side="ask", ord_type="market", volume="0.0002"
                )
            elif kind == 2:
                order = await rest.place_order(
                    market="KRW-BTC",
                    side="bid",
                    ord_type="limit",
                    volume="0.0001",
                    price="500000000",
                )
            else:
                order = await rest.place_order(
                    market="KRW-BTC", side="bid", ord_type="limit", volume="0.001", price="10000000"
                )
                placed.append(order.uuid)
                await rest.cancel_order(uuid=order.uuid)
                await asyncio.sleep(0.25)
                continue
        except UpbitWsError as exc:
            print(f"order not placed: {exc}", file=sys.stderr)
            await asyncio.sleep(0.5)
            continue
        placed.append(order.uuid)
        await asyncio.sleep(0.25)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    config = ConnectionConfig()
    if args.quiet_ping is not None:
        config = replace(
            config,
            keepalive=replace(config.keepalive, quiet_ping_interval=args.quiet_ping),
        )
    if args.audit_interval is not None:
        interval = None if args.audit_interval == "off" else float(args.audit_interval)
        config = replace(config, reconcile=replace(config.reconcile, audit_interval=interval))
    assert isinstance(config.keepalive, KeepaliveConfig)
    async with simulator() as url, aiohttp.ClientSession() as http:
        ws = WebSocketManager(
            base_url=url,
            credentials=Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
            config=config,
        )
        began = time.monotonic()
        async with ws:
            events = ws.events(queue_size=100_000)
            seen = Seen()
            orders = ws.component("bot").subscribe("myOrder")
            assets = ws.component("wallet").subscribe("myAsset")
            readers = [asyncio.create_task(seen.read(s)) for s in (orders, assets)]
            await ws.wait_ready(20)
            async with RestClient(url, credentials=ws.rest.credentials) as rest:
                placed: list[str] = []
                stop = asyncio.Event()
                placer = asyncio.create_task(place_orders(rest, placed, stop))
                started = time.monotonic()
                done = Counter[str]()
                for n in range(args.faults):
                    kind = FAULTS[n % len(FAULTS)]
                    await fault(http, url, kind, rng)
                    done[kind] += 1
                    await asyncio.sleep(rng.uniform(1.5, 3.0))
                elapsed = time.monotonic() - started
                # Steady trading without faults: what the audit costs when nothing is wrong.
                integrity = ws.integrity
                assert integrity is not None
                before = integrity.statistics()
                steady_from = time.monotonic()
                await asyncio.sleep(args.steady)
                after = integrity.statistics()
                steady_minutes = (time.monotonic() - steady_from) / 60.0
                stop.set()
                await placer
            # Quiesce: one more gap-free interval, then wait until no pass runs or waits.
            integrity = ws.integrity
            assert integrity is not None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                stats = integrity.statistics()
                settled = not stats.in_progress and not stats.pending
                if settled and ws.private is not None and ws.private.is_open:
                    break
                await asyncio.sleep(0.2)  # a benchmark may poll: nothing here is asserted
            await asyncio.sleep(2.0)  # live frames in flight land
            for _ in range(600):
                if not (integrity.statistics().in_progress or integrity.statistics().pending):
                    break
                await asyncio.sleep(0.2)
            truth = {u: await ws.rest.order(uuid=u) for u in placed}
            accounts = {a.currency: (a.balance, a.locked) for a in await ws.rest.accounts()}
            collected: list[Any] = []
            while (event := events.get_nowait()) is not None:
                collected.append(event)
            for task in readers:
                task.cancel()
            rec_stats = integrity.statistics()
            key_stats = ws.statistics().key
            minutes = (time.monotonic() - began) / 60.0
    keys = [(m.uuid, m.state, m.trade_uuid) for m in seen.orders]
    counts = Counter(keys)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    fills_placed = sum(len(o.trades) for o in truth.values())
    fill_keys = {(u, "trade", t.uuid) for u, o in truth.items() for t in o.trades}
    live = {(m.uuid, m.state, m.trade_uuid) for m in seen.orders if not m.reconciled}
    reconciled = {(m.uuid, m.state, m.trade_uuid) for m in seen.orders if m.reconciled}
    terminal = {(u, o.state, None) for u, o in truth.items() if o.state in TERMINAL_STATES}
    view: dict[str, tuple[Decimal, Decimal]] = {}
    for message in seen.assets:
        for row in message.assets:
            view[row.currency] = (row.balance, row.locked)
    zero = (Decimal(0), Decimal(0))
    wrong = sorted(
        c for c in set(view) | set(accounts) if view.get(c, zero) != accounts.get(c, zero)
    )
    durations = [e.duration for e in collected if isinstance(e, ReconciliationFinished)]
    causes = Counter(e.cause for e in collected if isinstance(e, ReconciliationStarted))
    # Passes never overlap: each Finished closes the Started before it. A gap's delivery that
    # began while private was not open is the quiet read of an outage (a suspended key), not
    # the pass after the resubscription.
    by_cause: dict[str, list[float]] = {}
    cause = ""
    private_open = False
    for e in collected:
        if isinstance(e, ConnectionStateChanged) and e.connection == "private":
            private_open = e.new in ("open", "degraded")
        elif isinstance(e, ReconciliationStarted):
            cause = e.cause if e.cause == "audit" else ("gap" if private_open else "outage")
        elif isinstance(e, ReconciliationFinished):
            by_cause.setdefault(cause, []).append(e.duration)
    gap_durations = by_cause.get("gap", [])
    audit_durations = by_cause.get("audit", [])
    outage_durations = by_cause.get("outage", [])
    return {
        "faults": dict(done),
        "seconds": round(elapsed, 1),
        "orders": len(truth),
        "fills_placed": fills_placed,
        "fills_live": len(fill_keys & live),
        "fills_reconciled": len(fill_keys & reconciled - live),
        "duplicated": duplicated,
        "fills_missed": len(fill_keys - live - reconciled),
        "terminal_states": len(terminal),
        "terminal_missed": len(terminal - live - reconciled),
        "balances_equal_rest": not wrong,
        "balances_wrong": wrong,
        "passes": rec_stats.passes,
        "passes_by_cause": dict(causes),
        "retries": rec_stats.retries,
        "reconciled_messages": rec_stats.messages_delivered,
        "live_suppressed": rec_stats.reconciler.live_suppressed,
        "reconcile_p50_s": round(percentile(durations, 0.5), 3),
        "reconcile_p99_s": round(percentile(durations, 0.99), 3),
        "gap_pass_p50_s": round(percentile(gap_durations, 0.5), 3),
        "gap_pass_p99_s": round(percentile(gap_durations, 0.99), 3),
        "gap_pass_max_s": round(max(gap_durations, default=float("nan")), 3),
        "outage_reads": len(outage_durations),
        "outage_read_p50_s": round(percentile(outage_durations, 0.5), 3),
        "outage_read_max_s": round(max(outage_durations, default=float("nan")), 3),
        "gap_passes": len(gap_durations),
        "audit_pass_p50_s": round(percentile(audit_durations, 0.5), 3),
        "audit_pass_max_s": round(max(audit_durations, default=float("nan")), 3),
        "phases_ms": {
            name: _phase(getattr(rec_stats, name))
            for name in ("subscribe_wait", "read", "pacing_wait", "settle")
        },
        "audits": rec_stats.audits,
        "audits_found": rec_stats.gaps.get("audit", 0),
        "audit_failures": rec_stats.audit_failures,
        "audit_requests": rec_stats.audit_requests,
        "audit_requests_per_min": round(rec_stats.audit_requests / minutes, 1),
        "steady_seconds": args.steady,
        "steady_audits": after.audits - before.audits,
        "steady_audit_requests_per_min": round(
            (after.audit_requests - before.audit_requests) / max(steady_minutes, 1e-9), 1
        ),
        "steady_audits_found": after.gaps.get("audit", 0) - before.gaps.get("audit", 0),
        # getattr: the counters arrived with the conditional settle; older builds lack them.
        "balance_rereads": getattr(rec_stats, "balance_rereads", None),
        "rereads_skipped": getattr(rec_stats, "rereads_skipped", None),
        "held": rec_stats.held,
        "hold_timeouts": rec_stats.hold_timeouts,
        "invalid_auth_rechecks_valid": key_stats.rechecks_valid if key_stats else None,
        "key_problems": sum(1 for e in collected if type(e).__name__ == "KeyProblem"),
    }


def _phase(summary: LatencySummary | None) -> str:
    """Show a phase's p50 / p99 / max in ms (bucket bounds, 20% wide)."""
    if summary is None or not summary.count:
        return "-"
    return f"{summary.p50_ms:.0f} / {summary.p99_ms:.0f} / {summary.max_ms:.0f}"


def table(r: dict[str, Any]) -> str:
    rows = [
        ("private faults forced", sum(r["faults"].values())),
        ("of which", ", ".join(f"{k} {v}" for k, v in r["faults"].items())),
        ("orders placed (all ended)", r["orders"]),
        ("fills placed (REST)", r["fills_placed"]),
        ("fills delivered live", r["fills_live"]),
        ("fills delivered reconciled", r["fills_reconciled"]),
        ("events duplicated", r["duplicated"]),
        ("fills missed", r["fills_missed"]),
        ("terminal states missed", f"{r['terminal_missed']} of {r['terminal_states']}"),
        ("final balances equal GET /v1/accounts", "yes" if r["balances_equal_rest"] else "NO"),
        ("reconciliation passes (by cause)", f"{r['passes']} ({r['passes_by_cause']})"),
        ("passes retried", r["retries"]),
        ("reconciliation p50 / p99", f"{r['reconcile_p50_s']} s / {r['reconcile_p99_s']} s"),
        (
            f"passes after a resubscription ({r['gap_passes']}) p50 / p99 / max",
            f"{r['gap_pass_p50_s']} s / {r['gap_pass_p99_s']} s / {r['gap_pass_max_s']} s",
        ),
        (
            f"reads that delivered while private was down ({r['outage_reads']}) p50 / max",
            f"{r['outage_read_p50_s']} s / {r['outage_read_max_s']} s",
        ),
        (
            "audits that delivered p50 / max",
            f"{r['audit_pass_p50_s']} s / {r['audit_pass_max_s']} s",
        ),
        (
            "passes that read the balances again after the settle (skipped it)",
            f"{r['balance_rereads']} ({r['rereads_skipped']})",
        ),
        ("pass phases p50 / p99 / max (ms)", ""),
        *((f"  {k}", v) for k, v in r["phases_ms"].items()),
        (
            "audits run (found something, failed)",
            f"{r['audits']} ({r['audits_found']}, {r['audit_failures']})",
        ),
        (
            "audit REST calls (per minute)",
            f"{r['audit_requests']} ({r['audit_requests_per_min']}/min, "
            f"{r['audit_requests'] / max(1, r['audits']):.1f} per audit)",
        ),
        (
            f"steady trading {r['steady_seconds']:g} s, no faults: audits (found), REST calls",
            f"{r['steady_audits']} ({r['steady_audits_found']}), "
            f"{r['steady_audit_requests_per_min']}/min",
        ),
        ("live messages held (hold timeouts)", f"{r['held']} ({r['hold_timeouts']})"),
        ("INVALID_AUTH re-checked valid", r["invalid_auth_rechecks_valid"]),
    ]
    out = ["| Measure | Value |", "| --- | --- |"]
    out += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--faults", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--quiet-ping",
        type=float,
        default=None,
        help="KeepaliveConfig.quiet_ping_interval (default: the library's 2.5 s)",
    )
    parser.add_argument(
        "--audit-interval",
        default=None,
        help="ReconcileConfig.audit_interval in seconds, or 'off' (default: the library's 10 s)",
    )
    parser.add_argument(
        "--steady",
        type=float,
        default=60.0,
        help="seconds of trading without faults after them, to measure the audit's cost",
    )
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(table(report))
    if args.json:
        print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
