"""Outage benchmark: how long after the network comes back does the data?

A network outage longer than a few seconds walks the reconnect backoff up to its cap (20 s by
default): without help, the next connect after the network returns may be up to a cap away.
The library watches such a wait with bare TCP connects to the host (``BackoffConfig.
network_probe``, 1 s; ``core/session.py``) and connects as soon as one succeeds after one that
failed.

Two public ManagedConnections, same simulator, same subscription (KRW-BTC ticker, orderbook,
trade), the library's defaults except that the second has the watch off
(``network_probe=None``, the behaviour before it). For each outage length the simulator closes
its listening socket (connects are refused, as with a server or route that is down) and drops
every socket, then listens again after the outage. Measured per connection: from the moment the
port listens again to the first frame on the new socket, and the connects and probes each
made during the outage.

Usage::

    .venv/bin/python benchmarks/outage.py                        # 5, 15, 30, 60 s x 3, ~9 min
    .venv/bin/python benchmarks/outage.py --outages 10 --trials 2
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time

from recovery import Slot, add_output_options, finish, wait_open  # a sibling script
from upbit_ws.aio.connection import ManagedConnection
from upbit_ws.core.config import BackoffConfig, ConnectionConfig
from upbit_ws.simulator import Simulator, SimulatorConfig

#: The two configurations side by side: the defaults, and the defaults without the watch.
CONFIGS: dict[str, ConnectionConfig] = {
    "watch": ConnectionConfig(),
    "no watch": ConnectionConfig(backoff=BackoffConfig(network_probe=None)),
}


async def one_outage(
    sim: Simulator,
    conns: dict[str, ManagedConnection],
    slots: dict[str, Slot],
    seconds: float,
) -> dict[str, dict[str, float]]:
    """Run one outage of ``seconds``; return, per configuration, lag, connects and probes."""
    loop = asyncio.get_running_loop()
    for name, conn in conns.items():
        await wait_open(conn, slots[name], sim)
    before = {name: conn.statistics() for name, conn in conns.items()}
    waiters = {name: slots[name].expect_frame_after(c.generation) for name, c in conns.items()}
    down_at = loop.time()
    sim.refuse(seconds, status=None)  # the listening socket goes away for `seconds`
    sim.abort()
    back_at = down_at + seconds
    async with asyncio.timeout(seconds + 60.0):
        frames = {name: await waiter for name, waiter in waiters.items()}
    figures: dict[str, dict[str, float]] = {}
    for name, conn in conns.items():
        after = conn.statistics()
        figures[name] = {
            "lag": frames[name] - back_at,
            "connects": after.connects - before[name].connects,
            "probes": after.network_probes - before[name].network_probes,
            "returns": after.network_returns - before[name].network_returns,
        }
    return figures


async def run(args: argparse.Namespace) -> dict[str, object]:
    """Run every outage length ``args.trials`` times; print a table, return the figures."""
    began = time.perf_counter()
    rows: dict[str, dict[str, list[dict[str, float]]]] = {}
    async with Simulator(SimulatorConfig(krw_markets=20, btc_markets=3, usdt_markets=3)) as sim:
        slots = {name: Slot(i) for i, name in enumerate(CONFIGS)}
        conns = {
            name: ManagedConnection("public", url=sim.ws_url, config=config, listener=slots[name])
            for name, config in CONFIGS.items()
        }
        for conn in conns.values():
            await conn.start()
        for seconds in args.outages:
            for trial in range(args.trials):
                figures = await one_outage(sim, conns, slots, seconds)
                for name, one in figures.items():
                    rows.setdefault(f"{seconds:g}", {}).setdefault(name, []).append(one)
                if args.verbose:
                    print(f"outage {seconds:g} s, trial {trial + 1}: {figures}")
                await asyncio.sleep(args.settle)
        for conn in conns.values():
            await conn.aclose()
    print(
        "| outage | trials | network back to data, watch: p50 / max | without: p50 / max "
        "| connects during it, watch / without | probes (watch) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    summary: dict[str, object] = {}
    for seconds, by_name in rows.items():
        cells = []
        for name in CONFIGS:
            lags = [one["lag"] for one in by_name[name]]
            cells.append((statistics.median(lags), max(lags)))
        connects = [statistics.fmean(one["connects"] for one in by_name[n]) for n in CONFIGS]
        probes = statistics.fmean(one["probes"] for one in by_name["watch"])
        lags = " | ".join(f"{p50:.2f} s / {top:.2f} s" for p50, top in cells)
        print(
            f"| {seconds} s | {len(by_name['watch'])} | {lags} "
            f"| {connects[0]:.1f} / {connects[1]:.1f} | {probes:.1f} |"
        )
        summary[seconds] = by_name
    wall = time.perf_counter() - began
    print(f"wall time {wall:.0f} s")
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "trials": args.trials,
        "outages": summary,
        "wall_s": wall,
    }


def main() -> None:
    """Parse the options, run, and write JSON with --json."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--outages", type=float, nargs="+", default=[5.0, 15.0, 30.0, 60.0], help="seconds"
    )
    parser.add_argument("--trials", type=int, default=3, help="outages of each length")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds of data between two outages"
    )
    add_output_options(parser)
    finish(parser.parse_args(), run)


if __name__ == "__main__":
    main()
