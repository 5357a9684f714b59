"""Relay throughput: flood -> relay -> Redis -> RedisFeed consumer, beside the local manager.

    .venv/bin/python benchmarks/relay.py [--seconds 5] [--rounds 3] [--types ticker,trade,orderbook]
                                         [--py-spy]

Starts ``upbit-ws simulate --flood --no-limits`` in its own process (docs/simulator.md, flood
mode) and a private ``redis-server`` on a free port (no persistence). Rounds alternate:

* **local**: ``benchmarks/throughput.py``'s library round, the public API in this process,
  ``async for batch in sub.batches()`` per type, counting typed messages;
* **relay**: ``upbit-ws relay`` in its own process (subscribed to the same types and codes)
  appends to Redis; this process reads them back with :class:`upbit_ws.relay.RedisFeed`
  (``batches()`` per type, live from ``$``) and counts typed messages. The relay is started
  before the warm-up and stopped after the window, so its start-up is not measured.

Per round: local msg/s; the stream entries the relay appended per second (Redis's own count
of XADD calls in the window; an entry holds the messages of one stream that one read of the
relay's subscription brought) and the messages per entry; what the consumer read per second
(the relay path); CPU microseconds per message of the local process, the relay, Redis and the
consumer (per message the consumer read: it reads live, so that is what the relay appended);
the load average. The
summary gives medians and the ratio (target: relay path >= 0.5 of local). ``--py-spy`` samples
the relay and the consumer during the first relay round and prints where their time goes
(py-spy from ``.bench-venv/``, installed by ``benchmarks/peers.py``; see hotpath.py).
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
from dataclasses import dataclass
from pathlib import Path

import redis

from hotpath import PY_SPY, analyse
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


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _xadds(client: redis.Redis) -> int:
    """Return how many XADD calls Redis has run (scripts' included)."""
    stats = client.info("commandstats").get("cmdstat_xadd", {})
    return int(stats.get("calls", 0))


@dataclass
class RelayRound:
    """One relay round's figures (rates per second, CPU in µs per message)."""

    consumed: float
    entries: float
    relay_us: float
    redis_us: float
    consumer_us: float
    final: str


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
    args: argparse.Namespace,
    spy: Path | None,
) -> RelayRound:
    """Run the relay in its own process and read its streams back in this one."""
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
    stats = redis.Redis.from_url(redis_url)
    spies: list[asyncio.subprocess.Process] = []
    async with RedisFeed(redis_url) as feed:

        async def consume(kind: str) -> None:
            async for batch in feed.subscribe(kind, CODES).batches():
                counts[kind] += len(batch)

        tasks = [asyncio.create_task(consume(t)) for t in types]
        await asyncio.sleep(args.warmup)
        if spy is not None:
            for name, pid in (("relay", relay.pid), ("consumer", os.getpid())):
                command = [str(PY_SPY), "record", "--format", "raw", "--rate", "250"]
                command += ["--nonblocking", "--pid", str(pid), "--duration"]
                command += [str(int(args.seconds)), "--output", str(spy / f"{name}.raw")]
                spies.append(
                    await asyncio.create_subprocess_exec(
                        *command, stdout=asyncio.subprocess.DEVNULL
                    )
                )
        pids = (relay.pid, redis_pid, os.getpid())
        start, started, xadds = sum(counts.values()), time.perf_counter(), _xadds(stats)
        cpu = [_cpu_seconds(pid) for pid in pids]
        await asyncio.sleep(args.seconds)
        elapsed = time.perf_counter() - started
        consumed = sum(counts.values()) - start
        appended = _xadds(stats) - xadds
        relay_cpu, redis_cpu, consumer_cpu = (
            _cpu_seconds(pid) - before for pid, before in zip(pids, cpu, strict=True)
        )
        relay.terminate()
        final = (await relay.stdout.read()).decode().strip().splitlines()
        await relay.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for process in spies:
        await process.wait()
    stats.close()
    return RelayRound(
        consumed=consumed / elapsed,
        entries=appended / elapsed,
        relay_us=relay_cpu * 1e6 / max(consumed, 1),
        redis_us=redis_cpu * 1e6 / max(consumed, 1),
        consumer_us=consumer_cpu * 1e6 / max(consumed, 1),
        final=final[-1] if final else "(no summary)",
    )


def _spy_report(spy: Path, top: int = 12) -> None:
    for name in ("relay", "consumer"):
        raw = spy / f"{name}.raw"
        if not raw.exists():
            print(f"{name}: no py-spy samples ({PY_SPY} missing? run benchmarks/peers.py)")
            continue
        total, _, functions = analyse(raw)
        print(f"\n{name}: where the samples went ({total:,} samples, self time)\n")
        print("| function | share |")
        print("| --- | ---: |")
        for function, n in functions.most_common(top):
            print(f"| `{function}` | {n / total * 100:.1f}% |")


async def _run(
    args: argparse.Namespace, server: subprocess.Popen[str], redis_url: str, redis_pid: int
) -> None:
    assert server.stdout is not None
    base = server.stdout.readline().strip()
    types = args.types.split(",")
    local: list[float] = []
    rounds: list[RelayRound] = []
    print(f"server      {base} (separate process, flood mode, no limits)")
    print(f"redis       {redis_url} (separate process, no persistence)")
    print(f"subscribed  {','.join(types)} x {len(CODES)} codes")
    print(f"rounds      {args.rounds} x {args.seconds:g} s after {args.warmup:g} s warm-up")
    print(f"machine     {os.cpu_count()} CPUs, load average {_load()} at the start")
    print()
    print(
        "| round | local msg/s | local µs/msg | relay entries/s | msg/entry | consumer msg/s "
        "| consumer / local | relay µs/msg | Redis µs/msg | consumer µs/msg | load |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(1, args.rounds + 1):
            before = _cpu_seconds(os.getpid())
            started = time.perf_counter()
            rate, _ = await library_round(base, types, args.warmup, args.seconds)
            # Warm-up included on both sides of the quotient: a slight overestimate.
            local_us = (
                (_cpu_seconds(os.getpid()) - before)
                * 1e6
                / max(rate * (time.perf_counter() - started), 1)
            )
            spy = Path(tmp) if args.py_spy and index == 1 else None
            got = await relay_round(base, redis_url, redis_pid, types, args, spy)
            local.append(rate)
            rounds.append(got)
            print(
                f"| {index} | {rate:,.0f} | {local_us:.1f} | {got.entries:,.0f} "
                f"| {got.consumed / max(got.entries, 1):.1f} | {got.consumed:,.0f} "
                f"| {got.consumed / rate:.2f} | {got.relay_us:.1f} "
                f"| {got.redis_us:.1f} | {got.consumer_us:.1f} | {_load()} |"
            )
        if args.py_spy:
            _spy_report(Path(tmp))
    print()
    consumed = statistics.median(r.consumed for r in rounds)
    entries = statistics.median(r.entries for r in rounds)
    ratio = consumed / statistics.median(local)
    paired = statistics.median(r.consumed / rate for r, rate in zip(rounds, local, strict=True))
    print(
        f"median      local {statistics.median(local):,.0f}  relay entries/s {entries:,.0f}  "
        f"consumer {consumed:,.0f}  ratio of the medians {ratio:.2f}  "
        f"median of the rounds' ratios {paired:.2f}"
    )
    for got in rounds:
        print(f"relay       {got.final}")
    verdict = "met" if min(ratio, paired) >= 0.5 else "NOT met"
    print(f"target      relay path (consumer) >= 0.50 x local, both medians: {verdict}")


def main() -> None:
    """Run the relay benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--types", default="ticker,trade,orderbook")
    parser.add_argument("--py-spy", action="store_true", help="profile the first relay round")
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
