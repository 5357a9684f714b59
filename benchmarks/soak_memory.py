"""Attribute the chaos soak's memory growth to the code that allocated what stayed alive.

Usage (from the repository root)::

    .venv/bin/python benchmarks/soak_memory.py                 # 600 s, first snapshot at 150 s
    .venv/bin/python benchmarks/soak_memory.py --seconds 1800 --warm-up 300 --seed 20240601

It runs the chaos soak of ``make soak`` (tests/scenarios/chaos.py: the simulator in its own
process, random faults, components, orders) in this process under ``tracemalloc``, takes a
snapshot after the warm-up and then one a minute (each after ``gc.collect()``), and charges
every byte alive in a snapshot to the innermost frame of our own code in its traceback: a
module of ``src/upbit_ws`` (the library) or of ``tests/`` (the soak's own bookkeeping: its
ledger keeps every order event to check exactly-once delivery). What a module holds at one
instant depends on what the random components subscribe to then (a coin list of 200 tickers
comes and goes), so the table gives each module's range and its least-squares slope per hour
over all snapshots: a leak is a steady slope, state is a range. RSS (less tracemalloc's own
bookkeeping) beside the traced total shows the allocator's share, which no object owns.

tracemalloc slows the process by a factor of two to three; the faults and recoveries still
happen, but this run's timings are not the soak's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scenarios.chaos import ChaosSoak, rss_mb  # noqa: E402

#: This script, as ``owner`` names it.
SELF = str(Path(__file__).resolve().relative_to(ROOT))
#: Frames kept per allocation: enough to climb out of msgspec, asyncio and aiohttp to our code.
FRAMES = 16


def owner(trace: tracemalloc.Traceback) -> str:
    """Return the module of our code nearest to the allocation, or where it happened."""
    for frame in reversed(trace):  # tracemalloc orders oldest first: start at the innermost
        path = Path(frame.filename)
        for top in ("src", "tests", "benchmarks"):
            base = ROOT / top
            if path.is_relative_to(base):
                return str(path.relative_to(ROOT))
    return f"elsewhere: {Path(trace[-1].filename).name}" if len(trace) else "unknown"


def by_owner(snapshot: tracemalloc.Snapshot) -> dict[str, int]:
    """Return {module: bytes allocated and alive} in ``snapshot``."""
    out: dict[str, int] = defaultdict(int)
    for stat in snapshot.statistics("traceback"):
        out[owner(stat.traceback)] += stat.size
    return out


def slope(points: list[tuple[float, float]]) -> float:
    """Return the least-squares slope of (x, y) points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


async def run(seconds: float, warm_up: float, every: float, seed: int) -> None:
    """Run the soak; after ``warm_up`` take a snapshot every ``every`` s; print the trends."""
    soak = ChaosSoak(seed=seed, seconds=seconds, progress=None, sample_every=60.0, line_every=60.0)
    task = asyncio.create_task(soak.run())
    await asyncio.sleep(warm_up)
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    series: list[tuple[float, dict[str, int], float]] = []  # (hours, by module, RSS MB)
    start = time.monotonic()
    while not task.done() and time.monotonic() - start < seconds - warm_up - every / 2:
        gc.collect()
        rows = by_owner(tracemalloc.take_snapshot().filter_traces(ignore))
        # RSS without tracemalloc's own bookkeeping, which grows with the blocks it traces.
        rss = rss_mb() - tracemalloc.get_tracemalloc_memory() / 2**20
        series.append(((time.monotonic() - start) / 3600.0, rows, rss))
        await asyncio.sleep(every)
    result = await task
    faults = sum(result.lines[-1]["faults"].values()) if result.lines else 0
    window = series[-1][0] * 3600.0 if series else 0.0
    print(f"\nseed {seed}: {len(series)} snapshots over {window:.0f} s, {faults} faults")
    modules = {name for _, rows, _ in series for name in rows}
    table = []
    for name in modules:
        sizes = [rows.get(name, 0) / 1024 for _, rows, _ in series]
        trend = slope([(hours, size) for (hours, _, _), size in zip(series, sizes, strict=True)])
        table.append((name, min(sizes), max(sizes), sizes[-1] - sizes[0], trend))
    table.sort(key=lambda row: -abs(row[4]))
    print("\n| allocated by | KB min - max | KB last - first | KB per hour (slope) |")
    print("| --- | ---: | ---: | ---: |")
    for name, low, high, change, trend in table[:20]:
        print(f"| `{name}` | {low:.0f} - {high:.0f} | {change:+.0f} | {trend:+.0f} |")
    # The script's own allocations (its snapshots' leftovers) are shown but not in the total.
    totals = [
        sum(size for name, size in rows.items() if name != SELF) / 1024 for _, rows, _ in series
    ]
    rss = [r * 1024 for _, _, r in series]
    for label, values in (("**traced total** (less this script)", totals), ("RSS*", rss)):
        trend = slope([(h, v) for (h, _, _), v in zip(series, values, strict=True)])
        change = values[-1] - values[0]
        print(f"| {label} | {min(values):.0f} - {max(values):.0f} | {change:+.0f} | {trend:+.0f} |")
    print(
        "\n*RSS less tracemalloc's own bookkeeping; the snapshots' millions of short-lived"
        " objects fragment the allocator, so it grows faster here than in `make soak`."
    )
    print(f"\nload average {os.getloadavg()}")


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--warm-up", type=float, default=150.0)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between snapshots")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    tracemalloc.start(FRAMES)
    asyncio.run(run(args.seconds, args.warm_up, args.every, args.seed))


if __name__ == "__main__":
    main()
