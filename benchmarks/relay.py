"""Relay throughput: flood -> relay -> Redis -> RedisFeed consumer, beside the local manager.

    .venv/bin/python benchmarks/relay.py [--seconds 5] [--rounds 3] [--types ticker,trade,orderbook]

Starts ``upbit-ws simulate --flood --no-limits`` in its own process (docs/simulator.md, flood
mode) and a private ``redis-server`` on a free port (no persistence). Rounds alternate:

* **local**: ``benchmarks/throughput.py``'s library round, the public API in this process,
  ``async for batch in sub.batches()`` per type, counting typed messages;
* **relay**: ``upbit-ws relay`` in its own process (subscribed to the same types and codes)
  appends to Redis; this process reads them back with :class:`upbit_ws.relay.RedisFeed`
  (``batches()`` per type, live from ``$``) and counts typed messages. The relay is started
  before the warm-up and stopped after the window, so its start-up is not measured.

The relay path is what one reader process gets end to end, with the simulator, the relay,
Redis and the reader sharing the machine's cores. The summary gives each side's median and
the ratio (target: relay path >= 0.5 of local), plus the relay's own counts (received,
appended, dropped to a full outbox) and the CPU share of the relay and Redis processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from throughput import CODES, library_round
from upbit_ws.relay import RedisFeed

__all__ = ["main"]


def _cpu_seconds(pid: int) -> float:
    """Return user+system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, within: float = 10.0) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


async def relay_round(
    base_url: str,
    redis_url: str,
    redis_pid: int,
    types: Sequence[str],
    warmup: float,
    seconds: float,
) -> tuple[float, str, float, float]:
    """Return (msg/s read back by the consumer, the relay's final line, relay CPU, Redis CPU)."""
    relay = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "upbit_ws.cli.relay",
        "--redis",
        redis_url,
        "--base-url",
        base_url,
        "--maxlen",
        "200000",
        ",".join(types),
        *CODES,
        stdout=asyncio.subprocess.PIPE,
    )
    assert relay.stdout is not None
    await relay.stdout.readline()  # "relay ...: ... -> upbit:* at ..." once subscribed
    counts = dict.fromkeys(types, 0)
    async with RedisFeed(redis_url) as feed:

        async def consume(kind: str) -> None:
            async for batch in feed.subscribe(kind, CODES).batches():
                counts[kind] += len(batch)

        tasks = [asyncio.create_task(consume(t)) for t in types]
        await asyncio.sleep(warmup)
        start, started = sum(counts.values()), time.perf_counter()
        relay_cpu, redis_cpu = _cpu_seconds(relay.pid), _cpu_seconds(redis_pid)
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - started
        rate = (sum(counts.values()) - start) / elapsed
        relay_cpu = (_cpu_seconds(relay.pid) - relay_cpu) / elapsed
        redis_cpu = (_cpu_seconds(redis_pid) - redis_cpu) / elapsed
        relay.terminate()
        final = (await relay.stdout.read()).decode().strip().splitlines()
        await relay.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return rate, final[-1] if final else "(no summary)", relay_cpu, redis_cpu


async def _run(
    args: argparse.Namespace, server: subprocess.Popen[str], redis_url: str, redis_pid: int
) -> None:
    assert server.stdout is not None
    base = server.stdout.readline().strip()
    types = args.types.split(",")
    local: list[float] = []
    relayed: list[float] = []
    print(f"server      {base} (separate process, flood mode, no limits)")
    print(f"redis       {redis_url} (separate process, no persistence)")
    print(f"subscribed  {','.join(types)} x {len(CODES)} codes")
    print(f"rounds      {args.rounds} x {args.seconds:g} s after {args.warmup:g} s warm-up")
    print()
    print("| round | local msg/s | relay path msg/s | relay / local | relay CPU | Redis CPU |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    finals: list[str] = []
    for index in range(1, args.rounds + 1):
        rate, _ = await library_round(base, types, args.warmup, args.seconds)
        rrate, final, relay_cpu, redis_cpu = await relay_round(
            base, redis_url, redis_pid, types, args.warmup, args.seconds
        )
        local.append(rate)
        relayed.append(rrate)
        finals.append(final)
        print(
            f"| {index} | {rate:,.0f} | {rrate:,.0f} | {rrate / rate:.2f} "
            f"| {relay_cpu * 100:.0f}% | {redis_cpu * 100:.0f}% |"
        )
    print()
    ratio = statistics.median(relayed) / statistics.median(local)
    print(
        f"median      local {statistics.median(local):,.0f}  relay path "
        f"{statistics.median(relayed):,.0f}  ratio {ratio:.2f}"
    )
    for final in finals:
        print(f"relay       {final}")
    verdict = "met" if ratio >= 0.5 else "NOT met"
    print(f"target      relay path >= 0.50 x local (median): {verdict}")


def main() -> None:
    """Run the relay benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--types", default="ticker,trade,orderbook")
    args = parser.parse_args()
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("benchmarks/relay.py needs redis-server (Debian: apt-get install redis-server)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        redis = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "upbit_ws.cli.simulate", "--port", "0", "--flood",
             "--no-limits"],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            _wait_listening(port)
            asyncio.run(_run(args, server, f"redis://127.0.0.1:{port}/0", redis.pid))
        finally:
            server.terminate()
            server.wait(timeout=10)
            redis.terminate()
            redis.wait(timeout=10)


if __name__ == "__main__":
    main()
