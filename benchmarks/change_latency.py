"""Subscription change latency: ``await sub.update([code])`` to the first frame of the new code.

    .venv/bin/python benchmarks/change_latency.py [--changes 300] [--no-background]

Starts ``upbit-ws simulate --no-limits`` in its own process (as Upbit is another machine), then
through the public API runs the seed's components: a coin list (``ticker KRW-*``, 200 markets,
streaming in the background unless ``--no-background``) and an order book view
(``orderbook``, depth 15). The order book switches coin ``--changes`` times, to a different
busy KRW market each time; each sample runs from just before ``await book.update([code])``
to the moment the consumer holds the first ``Orderbook`` of the new code.

What the figure includes: the coalescing window (5 ms by design, so that changes made
together leave as one request), building and sending the merged request, the simulator
applying it, the new code's SNAPSHOT on the wire, decode, routing and the consumer's wake-up.
The simulator sends a new code's orderbook snapshot at once (the book always exists), so its
market emission rate does not enter the figure. What it excludes: Upbit's rate-limit pacing.
Changes come every ``--interval`` seconds and the client's message limits are raised here
(the simulator runs without limits), because a deliberate wait for the next 5/s slot is not
latency; how the limiter paces a burst is pinned by the scenario tests. Upbit itself adds
150-650 ms before the first frame (docs/protocol.md section 1.3).

Target: p99 < 50 ms on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.core.config import ConnectionConfig, RateLimits

__all__ = ["main"]

#: Busy KRW markets of the simulator (always listed); the book cycles through them.
CODES = ["KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE", "KRW-ADA", "KRW-TRX", "KRW-AVAX"]


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _first_of(sub: Any, code: str) -> None:
    """Consume until the first message of ``code``."""
    async for message in sub:
        if message.code == code:
            return


async def _drain(sub: Any) -> None:
    async for _ in sub.batches():
        pass


async def _run(args: argparse.Namespace, base: str) -> None:
    config = ConnectionConfig(
        rate_limits=RateLimits(
            messages_per_second=1000, messages_per_minute=60_000, message_burst=50
        )
    )
    async with WebSocketManager(base_url=base, config=config) as ws:
        book = ws.component("orderbook_view").subscribe("orderbook", ["KRW-BTC"], depth=15)
        async with asyncio.TaskGroup() as tg:
            if args.background:
                coins = ws.component("coin_list").subscribe("ticker", ["KRW-*"])
                tg.create_task(_drain(coins))
            await _first_of(book, "KRW-BTC")
            samples: list[float] = []
            current = "KRW-BTC"
            for index in range(args.changes):
                code = CODES[(index + 1) % len(CODES)]
                if code == current:
                    code = CODES[(index + 2) % len(CODES)]
                await asyncio.sleep(args.interval)
                started = time.perf_counter()
                await book.update([code])
                await asyncio.wait_for(_first_of(book, code), 5.0)
                samples.append((time.perf_counter() - started) * 1000.0)
                current = code
            stats = ws.statistics().subscriptions.public
            await book.aclose()
            if args.background:
                await coins.aclose()
    p50, p90, p99 = (_percentile(samples, q) for q in (0.5, 0.9, 0.99))
    print(f"server          {base} (separate process, no limits)")
    print(f"load            coin list ticker KRW-* streaming: {'yes' if args.background else 'no'}")
    print(f"changes         {len(samples)}, one every {args.interval * 1000:.0f} ms")
    print()
    print("| samples | p50 ms | p90 ms | p99 ms | max ms | mean ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {len(samples)} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {max(samples):.1f} "
        f"| {statistics.fmean(samples):.1f} |"
    )
    print()
    own = stats.change_latency
    print(
        f"library's own statistic (change to first frame, 20% buckets): p50 {own.p50_ms:.1f} ms, "
        f"p99 {own.p99_ms:.1f} ms over {own.count} confirmations; "
        f"{stats.requests_sent} requests for {stats.changes} changes"
    )
    print(f"target          p99 < 50 ms: {'met' if p99 < 50 else 'NOT met'}")


def main() -> None:
    """Run the change-latency benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between changes")
    parser.add_argument("--no-background", dest="background", action="store_false")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "upbit_ws.cli.simulate", "--port", "0", "--no-limits"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        asyncio.run(_run(args, base))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
