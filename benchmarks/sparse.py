"""A sparse stream on a healthy connection: what the library reports about it, and what it does.

    .venv/bin/python benchmarks/sparse.py [--type trade] [--codes KRW-1INCH] [--seconds 100]
    .venv/bin/python benchmarks/sparse.py --no-resnapshot      # Upbit not re-sending snapshots

One subscription (``--type`` for ``--codes``) through the public API against the embedded
simulator with its default market model, in which the busiest markets trade several times a
second and the quietest about once every 20 s. Nothing is injected: every ``degraded`` spell,
spare socket (hedge), stale resubscribe and reconnect counted here is a false alarm, which an
app watching ``ws.events()`` or ``/healthz`` would see, and each spare or reconnect is a
connect that counts against Upbit's limits.

``--no-resnapshot`` runs the simulator with ``resnapshot_existing=False``: a resubscribe gets
no new SNAPSHOT for codes already subscribed (docs/protocol.md section 3.2 leaves open what
Upbit does), so the stale check's resubscribe of a quiet market goes unanswered.

Examples from the issue 9 work (benchmarks/README-recovery.md): ``--type trade --codes
KRW-1INCH`` (a quiet coin, about one trade in 3 s), ``--type candle.1m --codes KRW-DOT``,
``--type trade --codes KRW-DOT`` (~4 trades a second).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.core.events import ConnectionStateChanged
from upbit_ws.simulator import Simulator

__all__ = ["main", "run"]


async def run(kind: str, codes: list[str], seconds: float, *, resnapshot: bool) -> dict[str, Any]:
    """Subscribe for ``seconds`` and return what happened (counts and the state changes)."""
    async with (
        Simulator(seed=7, resnapshot_existing=resnapshot) as sim,
        WebSocketManager(base_url=sim.url) as ws,
    ):
        loop = asyncio.get_running_loop()
        changes: list[str] = []
        messages = 0
        sub = ws.component("sparse").subscribe(kind, codes)  # type: ignore[call-overload]

        async def consume() -> None:
            nonlocal messages
            async for _ in sub:
                messages += 1

        async def watch(start: float) -> None:
            async for event in ws.events():
                if isinstance(event, ConnectionStateChanged) and event.connection == "public":
                    changes.append(
                        f"{event.at - start:7.2f} s  {event.old} -> {event.new}: {event.reason}"
                    )

        start = loop.time()
        tasks = [asyncio.create_task(consume()), asyncio.create_task(watch(start))]
        await asyncio.sleep(seconds)
        stats = ws.public.statistics()
        for task in tasks:
            task.cancel()
        return {
            "messages": messages,
            "degraded": sum(" -> degraded" in line for line in changes),
            "spares": stats.hedges,
            "stale_resubscribes": stats.stale_resubscribes,
            "reconnects": stats.reconnects,
            "changes": changes,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--type", default="trade")
    parser.add_argument("--codes", default="KRW-1INCH", help="comma-separated")
    parser.add_argument("--seconds", type=float, default=100.0)
    parser.add_argument("--no-resnapshot", action="store_true")
    args = parser.parse_args()
    codes = args.codes.split(",")
    result = asyncio.run(run(args.type, codes, args.seconds, resnapshot=not args.no_resnapshot))
    print(
        f"{args.type} {args.codes} for {args.seconds:g} s"
        f"{' (no resnapshot)' if args.no_resnapshot else ''}: {result['messages']} messages, "
        f"{result['degraded']} degraded spells, {result['spares']} spare sockets, "
        f"{result['stale_resubscribes']} stale resubscribes, {result['reconnects']} reconnects"
    )
    for line in result["changes"]:
        print("  " + line)


if __name__ == "__main__":
    main()
