"""A sparse stream on a healthy connection: what the library reports about it, and what it does.

    .venv/bin/python benchmarks/sparse.py [--type trade] [--codes KRW-1INCH] [--seconds 100]
    .venv/bin/python benchmarks/sparse.py --no-resnapshot      # Upbit not re-sending snapshots
    .venv/bin/python benchmarks/sparse.py --type ticker --codes KRW-DOT,KRW-1INCH \
        --narrow-from 'KRW-*' --rounds 6                          # a busy stream narrowed

One subscription (``--type`` for ``--codes``) through the public API against the embedded
simulator with its default market model, in which the busiest markets trade several times a
second and the quietest about once every 20 s. Nothing is injected: every ``degraded`` spell,
spare socket (hedge), stale resubscribe and reconnect counted here is a false alarm, which an
app watching ``ws.events()`` or ``/healthz`` would see, and each spare or reconnect is a
connect that counts against Upbit's limits.

``--no-resnapshot`` runs the simulator with ``resnapshot_existing=False``: a resubscribe gets
no new SNAPSHOT for codes already subscribed (docs/protocol.md section 3.2 leaves open what
Upbit does), so the stale check's resubscribe of a quiet market goes unanswered.

``--narrow-from CODES --rounds N``: N times, the subscription starts on those codes (a busy
stream: its rate is learned) for 8 s, then switches to ``--codes`` for 6 s (``--seconds`` is
ignored), so the counts show how the narrower stream's first silences are judged.

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


async def run(
    kind: str,
    codes: list[str],
    seconds: float,
    *,
    resnapshot: bool,
    narrow_from: list[str] | None = None,
    rounds: int = 1,
) -> dict[str, Any]:
    """Subscribe for ``seconds`` (or ``rounds`` narrowings) and return what happened."""
    async with (
        Simulator(seed=7, resnapshot_existing=resnapshot) as sim,
        WebSocketManager(base_url=sim.url) as ws,
    ):
        loop = asyncio.get_running_loop()
        changes: list[str] = []
        messages = 0
        first = narrow_from or codes
        sub = ws.component("sparse").subscribe(kind, first)  # type: ignore[call-overload]

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
        if narrow_from is None:
            await asyncio.sleep(seconds)
        for index in range(rounds if narrow_from else 0):
            if index:
                await sub.update(narrow_from)
            await asyncio.sleep(8.0)
            changes.append(f"{loop.time() - start:7.2f} s  narrowed to {','.join(codes)}")
            await sub.update(codes)
            await asyncio.sleep(6.0)
        stats = ws.public.statistics()
        for task in tasks:
            task.cancel()
        return {
            "messages": messages,
            "degraded": sum(" -> degraded" in line for line in changes),
            "narrowings": rounds if narrow_from else 0,
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
    parser.add_argument("--narrow-from", help="comma-separated codes to start each round on")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    codes = args.codes.split(",")
    narrow = args.narrow_from.split(",") if args.narrow_from else None
    result = asyncio.run(
        run(
            args.type,
            codes,
            args.seconds,
            resnapshot=not args.no_resnapshot,
            narrow_from=narrow,
            rounds=args.rounds,
        )
    )
    shape = (
        f"{args.rounds} x {args.narrow_from} then {args.codes}"
        if narrow
        else f"{args.codes} for {args.seconds:g} s"
    )
    print(
        f"{args.type} {shape}"
        f"{' (no resnapshot)' if args.no_resnapshot else ''}: {result['messages']} messages, "
        f"{result['degraded']} degraded spells, {result['spares']} spare sockets, "
        f"{result['stale_resubscribes']} stale resubscribes, {result['reconnects']} reconnects"
    )
    for line in result["changes"]:
        print("  " + line)


if __name__ == "__main__":
    main()
