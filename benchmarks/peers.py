"""upbit-ws beside its peers and the raw ceiling, on the simulator's flood, in one run.

    .venv/bin/python benchmarks/peers.py [--rounds 3] [--seconds 5] [--clients a,b,...]

Starts ``upbit-ws simulate --flood --no-limits`` in its own process, then runs each client of
``benchmarks/peer_clients.py`` in its own process, one at a time, ``--rounds`` times in turn
(round-robin, so a burst of load from other work on the machine hits every client alike). All
subscribe to ticker for the same 10 KRW codes, except cryptofeed, which has no Upbit ticker: it
gets trades in SIMPLE format and is compared with a trade ceiling on that same subscription.

The peers are not project dependencies: on first run they are installed, at the versions pinned
in ``PEERS`` below, into ``.bench-venv/`` (gitignored), each with its own ``pip install`` so that
one that fails to install is a row saying why, not a crash; so is one that cannot connect.

The table shows the median of the rounds: messages per second handed to the user, CPU
microseconds per message (CPU time of the client's process tree / messages), peak RSS, and the
ratios to the ceiling of the same subscription and to the fastest peer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PEERS", "main"]

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "benchmarks" / "peer_clients.py"
BENCH_VENV = ROOT / ".bench-venv"

#: Peer name -> (pip requirement, driver name). Pinned: a run is reproducible.
PEERS: dict[str, tuple[str, str]] = {
    "ccxt.pro upbit": ("ccxt==4.5.90", "ccxt"),
    "pyupbit WebSocketManager": ("pyupbit==0.2.34", "pyupbit"),
    "upbit-sdk (official)": ("upbit-sdk==1.1.0", "upbit-sdk"),
    "cryptofeed (trades, SIMPLE)": ("cryptofeed==2.4.1", "cryptofeed"),
}
#: Installed beside the peers for profiling (benchmarks/README-performance.md), never required.
TOOLS = ("py-spy==0.4.3",)

#: Rows of the project's own interpreter: (label, driver, what it is compared with).
OWN = [
    ("raw ceiling (picows + orjson)", "ceiling", "ceiling"),
    ("upbit-ws `async for`", "upbit-ws", "ceiling"),
    ("upbit-ws `batches()`", "upbit-ws-batches", "ceiling"),
    # Only when named in --clients: the same on uvloop (the optional extra upbit-ws[fast]).
    ("upbit-ws `async for`, uvloop", "upbit-ws-uvloop", "ceiling"),
    ("upbit-ws `batches()`, uvloop", "upbit-ws-batches-uvloop", "ceiling"),
    ("trade ceiling (picows + orjson, SIMPLE)", "trade-ceiling", "trade-ceiling"),
]


@dataclass
class Row:
    """One client's rounds."""

    label: str
    driver: str
    python: str
    baseline: str
    peer: bool
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    #: Another checkout whose library this row runs (``--before``): its ``src`` on PYTHONPATH.
    src: str | None = None

    def median(self, key: str) -> float:
        values = [r[key] for r in self.runs if key in r]
        return statistics.median(values) if values else 0.0


def _ensure_peer(requirement: str) -> str | None:
    """Install ``requirement`` into the benchmark venv once; return an error text or None."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(BENCH_VENV)], capture_output=True, text=True
        )
        if made.returncode != 0:
            return f"could not create {BENCH_VENV.name}: {made.stderr.strip()[-200:]}"
    stamp = BENCH_VENV / f".ok-{requirement}"
    if stamp.exists():
        return None
    print(f"installing {requirement} into {BENCH_VENV.name}/ (first run only) ...", flush=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", requirement],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        lines = [x for x in done.stderr.splitlines() if x.startswith("ERROR")] or [done.stderr]
        return f"install failed: {lines[-1].strip()[:200]}"
    stamp.touch()
    return None


def _run_driver(row: Row, base: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one client process; return its JSON line (or an error dict)."""
    command = [row.python, str(DRIVER), row.driver, "--base", base]
    command += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    budget = args.warmup * 5 + args.seconds + 60
    env = None
    if row.src is not None:
        env = {**os.environ, "PYTHONPATH": str(Path(row.src) / "src")}
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: a timeout kills its children too
    )
    try:
        out, err = process.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"error": f"no result within {budget:.0f} s"}
    finally:
        # Whatever it left behind (pyupbit's reader process) goes with the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    tail = (err.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {process.returncode}: {tail[:200]}"}


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(rows: list[Row]) -> list[str]:
    by_driver = {row.driver: row for row in rows}

    def rate(row: Row) -> float:
        return row.median("rate")

    ticker_peers = [r for r in rows if r.peer and r.baseline == "ceiling" and r.runs]
    fastest = max(ticker_peers, key=rate, default=None)
    lines = [
        "| client | msg/s | CPU µs/msg | peak RSS MB | msg/s / ceiling | CPU efficiency / ceiling "
        "| msg/s / fastest peer | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        if not row.runs:
            lines.append(f"| {row.label} | - | - | - | - | - | - | {row.error or 'no run'} |")
            continue
        ours = rate(row)
        base = by_driver.get(row.baseline)
        to_base = ours / rate(base) if base and base.runs and rate(base) else None
        # ceiling's CPU µs per message / this client's: how much of the CPU budget per message
        # the client needs beyond the ceiling, whatever share of a core the machine gave it.
        efficiency = None
        if base and base.runs and row.median("cpu_us"):
            efficiency = base.median("cpu_us") / row.median("cpu_us")
        to_fast = None
        if fastest is not None and rate(fastest) and row.baseline == "ceiling":
            to_fast = ours / rate(fastest)
        notes = []
        if row.peer and row is fastest:
            notes.append("fastest peer")
        if row.baseline != "ceiling":
            notes.append("trades, SIMPLE: compare with the trade ceiling")
        if "parsed_rate" in row.runs[0]:
            parsed = row.median("parsed_rate")
            cpu = row.median("cpu_per_parsed")
            notes.append(f"parsed {parsed:,.0f} msg/s inside ccxt ({cpu:.1f} µs each)")
        dropped = sum(r.get("dropped", 0) for r in row.runs)
        if row.driver.startswith("upbit-ws"):
            notes.append(f"dropped {dropped}")
        batches = sum(r.get("batches", 0) for r in row.runs)
        if batches:
            size = sum(r.get("batched_messages", 0) for r in row.runs) / batches
            notes.append(f"mean batch {size:.1f} messages")
        if base is not None and base is not row and len(base.runs) == len(row.runs) > 1:
            # Same round, same minute of machine load: the paired ratios show the noise.
            paired = [r["rate"] / b["rate"] for r, b in zip(row.runs, base.runs, strict=True)]
            notes.append("per round " + ", ".join(f"{x:.2f}" for x in paired))
        failed = len([r for r in row.runs if "error" in r])
        if failed:
            notes.append(f"{failed} failed round(s)")
        lines.append(
            f"| {row.label} | {ours:,.0f} | {row.median('cpu_us'):.1f} "
            f"| {row.median('rss_mb'):.0f} | {_fmt_ratio(to_base)} | {_fmt_ratio(efficiency)} "
            f"| {_fmt_ratio(to_fast)} "
            f"| {'; '.join(notes)} |"
        )
    return lines


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    """Run every client, print the per-round lines and the median table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--clients", default="", help="comma-separated driver names (default all)")
    parser.add_argument("--no-install", action="store_true", help="skip peers not yet installed")
    parser.add_argument(
        "--before",
        metavar="CHECKOUT",
        help="also run the upbit-ws rows on the library of this checkout (its src/), in turn",
    )
    args = parser.parse_args()

    rows = [Row(label, driver, sys.executable, base, False) for label, driver, base in OWN]
    peer_python = str(BENCH_VENV / "bin" / "python")
    for label, (_requirement, driver) in PEERS.items():
        base = "trade-ceiling" if driver == "cryptofeed" else "ceiling"
        rows.append(Row(label, driver, peer_python, base, True))
    if args.clients:
        wanted = set(args.clients.split(","))
        rows = [r for r in rows if r.driver in wanted]
    else:  # the uvloop rows need the optional extra: only when named
        rows = [r for r in rows if not r.driver.endswith("-uvloop")]
    if args.before:
        before = [
            Row(
                f"{r.label} at {args.before}",
                r.driver,
                r.python,
                r.baseline,
                False,
                src=args.before,
            )
            for r in rows
            if r.driver.startswith("upbit-ws")
        ]
        rows += before
    for row in rows:
        if not row.peer:
            continue
        requirement = next(req for req, drv in PEERS.values() if drv == row.driver)
        stamp = BENCH_VENV / f".ok-{requirement}"
        if args.no_install and not stamp.exists():
            row.error = "not installed (--no-install)"
        else:
            row.error = _ensure_peer(requirement)
    if not args.no_install:
        for tool in TOOLS:
            _ensure_peer(tool)  # optional: a failure only means no py-spy

    server = subprocess.Popen(
        [sys.executable, "-m", "upbit_ws.cli.simulate", "--port", "0", "--flood", "--no-limits"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        print(f"server      {base} (separate process, flood mode, no limits)")
        print("subscribed  ticker x 10 KRW codes, DEFAULT (cryptofeed: trade, SIMPLE)")
        print(f"rounds      {args.rounds} x {args.seconds:g} s after {args.warmup:g} s warm-up")
        print(f"machine     {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, ", end="")
        print(f"load average {_load_average()} at start")
        print()
        started = time.monotonic()
        for index in range(1, args.rounds + 1):
            for row in rows:
                if row.error is not None:
                    continue
                got = _run_driver(row, base, args)
                if "error" in got:
                    print(f"round {index}  {row.label:<30} ERROR {got['error']}", flush=True)
                    if not row.runs and index == args.rounds:
                        row.error = got["error"]
                    continue
                got["rate"] = got["messages"] / got["seconds"]
                got["cpu_us"] = got["cpu"] * 1e6 / max(1, got["messages"])
                got["rss_mb"] = got["rss_kb"] / 1024
                if "parsed" in got:
                    got["parsed_rate"] = got["parsed"] / got["seconds"]
                    got["cpu_per_parsed"] = got["cpu"] * 1e6 / max(1, got["parsed"])
                row.runs.append(got)
                print(
                    f"round {index}  {row.label[:30]:<30} {got['rate']:>10,.0f} msg/s "
                    f"{got['cpu_us']:>7.1f} µs/msg  {got['rss_mb']:>5.0f} MB  "
                    f"CPU {got['cpu'] / got['seconds'] * 100:>3.0f}% of a core",
                    flush=True,
                )
            for row in rows:
                if not row.runs and row.error is None and index == args.rounds:
                    row.error = "no successful round"
        print()
        print(f"median of {args.rounds} rounds ({time.monotonic() - started:.0f} s; ", end="")
        print(f"load average {_load_average()} at the end)")
        print()
        print("\n".join(_table(rows)))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
