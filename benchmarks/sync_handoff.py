"""What a blocking reader pays per message: the sync facade's hand-off beside async iteration.

    .venv/bin/python benchmarks/sync_handoff.py [--messages 50000] [--rounds 3]

Starts ``upbit-ws simulate --no-limits`` in its own process. Each row subscribes to trades of
8 codes (``drop_oldest``, a large bound), turns the simulator's flood on until ``--messages``
wait in the subscription's buffer, turns it off, then times draining them: the loop is idle,
so the row measures the reading side alone. One way per row:

* **async for**: ``async for msg in sub`` on the manager's own loop (the baseline);
* **async batches**: ``async for batch in sub.batches()``;
* **sync get (handoff)**: ``sub.get()`` of :mod:`upbit_ws.sync` in the main thread: the
  condition-variable hand-off of ``upbit_ws/sync/handoff.py`` (one long-lived pump task, one
  ``call_soon_threadsafe`` per message);
* **sync run_coroutine_threadsafe**: the alternative, ``ws.run(sub.aio.__anext__())`` per
  message (a task and a concurrent future per message);
* **sync get_batch**: ``sub.get_batch()``, one hand-off per batch (up to 256).

"us/msg" is the wall time per message; "hand-off" is that minus the ``async for`` baseline,
i.e. what crossing threads adds per message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.sync import WebSocketManager as SyncManager

__all__ = ["main"]

CODES = ["KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE", "KRW-ADA", "KRW-TRX", "KRW-AVAX"]
CAPACITY = 1 << 17


def _flood(base: str, *, enabled: bool) -> None:
    """Turn the simulator's flood on or off for every connection (its control API)."""
    body = json.dumps({"enabled": enabled}).encode()
    request = urllib.request.Request(f"{base}/_sim/flood", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _fill(base: str, pending: Callable[[], int], target: int) -> None:
    """Flood until ``target`` messages wait in the subscription's buffer, then stop it."""
    _flood(base, enabled=True)
    deadline = time.monotonic() + 30
    while pending() < target and time.monotonic() < deadline:
        time.sleep(0.05)  # a benchmark, not a test: coarse polling of a counter is fine here
    _flood(base, enabled=False)
    time.sleep(0.3)  # let frames already on the wire land
    assert pending() >= target, f"only {pending()} of {target} messages arrived"


async def _async_drain(base: str, count: int, *, batches: bool) -> float:
    async with WebSocketManager(base_url=base) as ws:
        sub = ws.component("bench").subscribe(
            "trade", CODES, policy="drop_oldest", capacity=CAPACITY
        )
        await asyncio.to_thread(_fill, base, lambda: sub.pending, count)
        got = 0
        started = time.perf_counter()
        if batches:
            async for batch in sub.batches():
                got += len(batch)
                if got >= count:
                    break
        else:
            async for _msg in sub:
                got += 1
                if got >= count:
                    break
        elapsed = time.perf_counter() - started
        await sub.aclose()
    return got / elapsed


def _sync_drain(base: str, count: int, how: str) -> float:
    with SyncManager(base_url=base) as ws:
        sub = ws.component("bench").subscribe(
            "trade", CODES, policy="drop_oldest", capacity=CAPACITY
        )
        take: Callable[[], int]
        if how == "get":

            def take() -> int:
                sub.get()
                return 1
        elif how == "rcts":
            aio = sub.aio

            def take() -> int:
                ws.run(aio.__anext__())
                return 1
        else:

            def take() -> int:
                return len(sub.get_batch())

        _fill(base, lambda: sub.statistics().depth, count)
        got = 0
        started = time.perf_counter()
        while got < count:
            got += take()
        elapsed = time.perf_counter() - started
        sub.close()
    return got / elapsed


ROWS: list[tuple[str, str]] = [
    ("async for", "async"),
    ("async batches", "async-batch"),
    ("sync get (handoff)", "get"),
    ("sync run_coroutine_threadsafe", "rcts"),
    ("sync get_batch", "batch"),
]


def _round(base: str, count: int, how: str) -> float:
    if how == "async":
        return asyncio.run(_async_drain(base, count, batches=False))
    if how == "async-batch":
        return asyncio.run(_async_drain(base, count, batches=True))
    return _sync_drain(base, count, how)


def main() -> None:
    """Run the hand-off benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "upbit_ws.cli.simulate", "--port", "0", "--no-limits"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        rates: dict[str, list[float]] = {how: [] for _, how in ROWS}
        for _ in range(args.rounds):
            for _, how in ROWS:
                rates[how].append(_round(base, args.messages, how))
    finally:
        server.terminate()
        server.wait(timeout=10)
    baseline = 1e6 / statistics.median(rates["async"])
    print(f"{args.messages:,} trades waiting in the buffer, median of {args.rounds} rounds")
    print()
    print("| reader | msg/s | us/msg | hand-off us/msg |")
    print("| --- | ---: | ---: | ---: |")
    for label, how in ROWS:
        rate = statistics.median(rates[how])
        cost = 1e6 / rate
        extra = f"{cost - baseline:.1f}" if how not in ("async", "async-batch") else "-"
        print(f"| {label} | {rate:,.0f} | {cost:.2f} | {extra} |")


if __name__ == "__main__":
    main()
