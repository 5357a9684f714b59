"""Scaling: throughput and CPU per message as codes and components grow, on the flood.

    .venv/bin/python benchmarks/scaling.py [--seconds 4] [--rounds 1]

Starts ``upbit-ws simulate --flood --no-limits`` in its own process. Each case runs in a fresh
process of its own (``--child``), one after another:

* **codes**: ticker for 1, 10, 100 and every KRW code, one component reading ``async for``,
  beside the raw ceiling (picows + orjson, ``peer_clients.py ceiling``) on the same codes;
* **components**: ticker for 10 codes, shared by 1, 10 and 100 components, each with its own
  subscription to the same codes and its own ``async for`` consumer: every wire message is
  delivered N times.

Buffers use ``drop_oldest`` with a large bound (tickers conflate by default), so nothing is
conflated away; drops are reported. CPU is the client process's (user + system) over the
measured window. ``wire msg/s`` counts frames off the socket (one component's deliveries),
``deliveries/s`` every message handed to any consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from peer_clients import CODES as PEER_CODES  # a sibling script, standard library only

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
TEN = PEER_CODES  # the peers' subscription (benchmarks/peer_clients.py)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


async def child(base: str, codes: list[str], components: int, warmup: float, seconds: float) -> Any:
    """Run ``components`` consumers of ticker for ``codes``; return the measured window."""
    from upbit_ws import WebSocketManager

    counts = [0] * components

    async def consume(index: int, sub: Any) -> None:
        async for _msg in sub:
            counts[index] += 1

    async with WebSocketManager(base_url=base) as ws:
        subs = [
            ws.component(f"c{i}").subscribe("ticker", codes, policy="drop_oldest", capacity=1 << 17)
            for i in range(components)
        ]
        tasks = [asyncio.create_task(consume(i, s)) for i, s in enumerate(subs)]
        await asyncio.sleep(warmup)
        w0, d0, c0, t0 = counts[0], sum(counts), _cpu(), time.perf_counter()
        await asyncio.sleep(seconds)
        w1, d1, c1, t1 = counts[0], sum(counts), _cpu(), time.perf_counter()
        dropped = sum(s.statistics().dropped for s in subs)
        for task in tasks:
            task.cancel()
    return {"wire": w1 - w0, "deliveries": d1 - d0, "cpu": c1 - c0, "s": t1 - t0, "drop": dropped}


def _krw_codes(base: str) -> list[str]:
    with urllib.request.urlopen(base + "/v1/market/all", timeout=10) as answer:
        markets = json.loads(answer.read())
    return [m["market"] for m in markets if m["market"].startswith("KRW-")]


def _json_line(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return dict(json.loads(lines[-1]))


def _library(base: str, codes: list[str], components: int, args: argparse.Namespace) -> Any:
    command = [sys.executable, __file__, "--child", "--base", base, "--codes", ",".join(codes)]
    command += ["--components", str(components)]
    command += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    return _json_line(command)


def _ceiling(base: str, codes: list[str], args: argparse.Namespace) -> Any:
    command = [sys.executable, str(HERE / "peer_clients.py"), "ceiling", "--base", base]
    command += ["--codes", ",".join(codes)]
    command += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    return _json_line(command)


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _run(base: str, args: argparse.Namespace) -> None:
    krw = _krw_codes(base)
    print("| codes | ceiling msg/s | ceiling µs/msg | upbit-ws msg/s | upbit-ws µs/msg | ", end="")
    print("msg/s / ceiling | µs/msg / ceiling's | dropped |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for codes in (krw[:1], TEN, krw[:100], krw):
        raw = _ceiling(base, codes, args)
        ours = _library(base, codes, 1, args)
        if "error" in raw or "error" in ours:
            print(f"| {len(codes)} | {raw.get('error', '')} {ours.get('error', '')} |")
            continue
        raw_rate, raw_us = raw["messages"] / raw["seconds"], raw["cpu"] * 1e6 / raw["messages"]
        rate, us = ours["wire"] / ours["s"], ours["cpu"] * 1e6 / max(1, ours["wire"])
        print(
            f"| {len(codes)} | {raw_rate:,.0f} | {raw_us:.1f} | {rate:,.0f} | {us:.1f} | "
            f"{rate / raw_rate:.2f} | {us / raw_us:.2f} | {ours['drop']} |",
            flush=True,
        )
    print()
    print("| components (10 codes) | wire msg/s | deliveries/s | CPU µs per wire msg | ", end="")
    print("CPU µs per delivery | dropped |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for components in (1, 10, 100):
        ours = _library(base, TEN, components, args)
        if "error" in ours:
            print(f"| {components} | {ours['error']} |")
            continue
        wire, deliveries = ours["wire"] / ours["s"], ours["deliveries"] / ours["s"]
        print(
            f"| {components} | {wire:,.0f} | {deliveries:,.0f} | "
            f"{ours['cpu'] * 1e6 / max(1, ours['wire']):.1f} | "
            f"{ours['cpu'] * 1e6 / max(1, ours['deliveries']):.2f} | {ours['drop']} |",
            flush=True,
        )


def main() -> None:
    """Start the flood simulator and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--codes", help=argparse.SUPPRESS)
    parser.add_argument("--components", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        got = asyncio.run(
            child(args.base, args.codes.split(","), args.components, args.warmup, args.seconds)
        )
        print(json.dumps(got), flush=True)
        return
    server = subprocess.Popen(
        [sys.executable, "-m", "upbit_ws.cli.simulate", "--port", "0", "--flood", "--no-limits"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        print(f"server      {base} (separate process, flood mode, no limits)")
        print(f"window      {args.seconds:g} s after {args.warmup:g} s warm-up, one run per case")
        print(f"machine     {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, ", end="")
        print(f"load average {_load_average()} at start")
        print()
        _run(base, args)
        print()
        print(f"load average {_load_average()} at the end")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
