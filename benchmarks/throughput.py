"""End-to-end throughput: socket to typed message in a subscriber, beside the raw ceiling.

    .venv/bin/python benchmarks/throughput.py [--seconds 5] [--rounds 3] [--types ticker,trade]

Starts ``upbit-ws simulate --flood --no-limits`` in its own process (the first line it prints is
the base URL); the simulator then writes pre-encoded frames of each connection's subscription
as fast as the socket drains (docs/simulator.md, flood mode). In this process, rounds alternate:

* **ceiling**: a raw picows client plus ``orjson.loads`` of every payload, no routing (the
  "raw ceiling" of README-performance.md), subscribed to the same types and codes;
* **library**: the public API, ``WebSocketManager(base_url=...)`` with one component per type
  subscribed to the same codes, each consumer reading ``async for batch in sub.batches()``
  (default batch size) and counting the typed messages it receives. Buffers use
  ``drop_oldest`` with a large bound so that no message is conflated away (tickers and books
  conflate by default); any drop is reported.

Each round runs ``--seconds`` after a warm-up; the table shows every round, and the summary
the best and median of each side and their ratio (target: library >= 50% of the ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from upbit_ws.aio.manager import WebSocketManager

__all__ = ["main"]

CODES = ["KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE", "KRW-ADA", "KRW-TRX", "KRW-AVAX"]


class _Ceiling(WSListener):  # type: ignore[misc]
    """Count binary frames and parse each with orjson: the raw ceiling."""

    def __init__(self) -> None:
        self.messages = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.BINARY:
            orjson.loads(frame.get_payload_as_memoryview())
            self.messages += 1
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()


def _cpu_seconds(pid: int) -> float:
    """Return user+system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def ceiling_round(ws_url: str, types: Sequence[str], warmup: float, seconds: float) -> float:
    """Return messages/s of a raw picows + orjson client on the flood."""
    request = [{"ticket": "ceiling"}, *({"type": t, "codes": CODES} for t in types)]
    transport, listener = await ws_connect(_Ceiling, ws_url)
    try:
        transport.send(WSMsgType.TEXT, orjson.dumps(request))
        await asyncio.sleep(warmup)
        start, started = listener.messages, time.perf_counter()
        await asyncio.sleep(seconds)
        return (listener.messages - start) / (time.perf_counter() - started)
    finally:
        transport.disconnect()
        await transport.wait_disconnected()


async def library_round(
    base_url: str,
    types: Sequence[str],
    warmup: float,
    seconds: float,
    *,
    profile: cProfile.Profile | None = None,
) -> tuple[float, int]:
    """Return (messages/s delivered to subscribers, messages dropped) through the public API."""
    counts = dict.fromkeys(types, 0)

    async def consume(kind: str, sub: Any) -> None:
        async for batch in sub.batches():
            counts[kind] += len(batch)

    async with WebSocketManager(base_url=base_url) as ws:
        subs = {
            t: ws.component(f"bench-{t}").subscribe(
                t, CODES, policy="drop_oldest", capacity=1 << 17
            )
            for t in types
        }
        async with asyncio.TaskGroup() as tg:
            for kind, sub in subs.items():
                tg.create_task(consume(kind, sub))
            await asyncio.sleep(warmup)
            start, started = sum(counts.values()), time.perf_counter()
            if profile is not None:
                profile.enable()
            await asyncio.sleep(seconds)
            if profile is not None:
                profile.disable()
            rate = (sum(counts.values()) - start) / (time.perf_counter() - started)
            dropped = sum(sub.statistics().dropped for sub in subs.values())
            for sub in subs.values():
                await sub.aclose()
    return rate, dropped


def _start_server() -> subprocess.Popen[str]:
    """Start the flooding simulator in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "upbit_ws.cli.simulate", "--port", "0", "--flood", "--no-limits"],
        stdout=subprocess.PIPE,
        text=True,
    )


async def _run(args: argparse.Namespace, server: subprocess.Popen[str]) -> None:
    assert server.stdout is not None
    base = server.stdout.readline().strip()
    ws_url = base.replace("http://", "ws://") + "/websocket/v1"
    types = args.types.split(",")
    ceilings: list[float] = []
    library: list[float] = []
    drops = 0
    profile = cProfile.Profile() if args.profile else None
    cpu_start = _cpu_seconds(server.pid)
    wall_start = time.perf_counter()
    print(f"server      {base} (separate process, flood mode, no limits)")
    print(f"subscribed  {','.join(types)} x {len(CODES)} codes, DEFAULT format")
    print(f"rounds      {args.rounds} x {args.seconds:g} s after {args.warmup:g} s warm-up")
    print()
    print("| round | raw ceiling msg/s | library msg/s | library / ceiling |")
    print("| ---: | ---: | ---: | ---: |")
    for index in range(1, args.rounds + 1):
        ceiling = await ceiling_round(ws_url, types, args.warmup, args.seconds)
        rate, dropped = await library_round(base, types, args.warmup, args.seconds, profile=profile)
        ceilings.append(ceiling)
        library.append(rate)
        drops += dropped
        print(f"| {index} | {ceiling:,.0f} | {rate:,.0f} | {rate / ceiling:.2f} |")
    server_cpu = (_cpu_seconds(server.pid) - cpu_start) / (time.perf_counter() - wall_start)
    print()
    for label, pick in (("best", max), ("median", statistics.median)):
        top, ours = pick(ceilings), pick(library)
        print(f"{label:<11} ceiling {top:,.0f}  library {ours:,.0f}  ratio {ours / top:.2f}")
    median = statistics.median(library) / statistics.median(ceilings)
    print(f"dropped     {drops} messages in subscriber buffers (should be 0)")
    print(f"server CPU  {server_cpu * 100:.0f}% of one core over the run")
    verdict = "met" if median >= 0.5 else "NOT met"
    print(f"target      library >= 0.50 x ceiling (median): {verdict}")
    if profile is not None:
        print()
        pstats.Stats(profile).sort_stats("tottime").print_stats(18)


def main() -> None:
    """Run the throughput benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--types", default="ticker,trade,orderbook")
    parser.add_argument("--profile", action="store_true", help="cProfile the library rounds")
    args = parser.parse_args()
    server = _start_server()
    try:
        asyncio.run(_run(args, server))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
