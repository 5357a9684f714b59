"""Recovery benchmark: abort -> next delivered frame, and blackhole start -> next frame.

Runs the embedded simulator and several public ManagedConnections with the library's DEFAULT
configuration (keepalive, backoff, timeouts, the process-wide connect limiter). Each
connection subscribes KRW-BTC ticker + orderbook + trade (with a unique ticket, so its
simulator connection can be found) and then serves as a trial slot:

* abort trial: the simulator drops the connection without a close frame (TCP reset, what
  Upbit's idle kill looks like); the time runs from the abort to the first frame the listener
  receives on the new socket;
* blackhole trial: the simulator stops sending anything on the connection, pongs included
  (a stalled link); the time runs from the start of the stall to the first frame on the new
  socket. The connection must notice the stall by itself (data-silence probe, pong deadline);
* quiet blackhole trial: the same stall on a *private* connection subscribed to myOrder,
  which is quiet (no data-silence probe: only its periodic ping can find the stall); the time
  runs from the start of the stall to the replacement socket's open (there is no next frame to
  wait for on a quiet stream). Each stall starts at a random point between two pings.

* flapping trials (``flap-1``, ``flap-2``, ``flap-5``; issue #9): the simulator drops a public
  connection (abort) after every 1, 2 or 5 s of healthy data, again and again, without waiting
  for any reset time; the time runs from each abort to the first frame on the new socket. A
  backoff that grew with every drop (the old 10 s reset rule) shows here; one that resets on
  every socket that delivered data does not. The largest backoff step seen is reported too.

Except for flapping, trials on one connection are spaced so that its socket has been open for
longer than the backoff reset time (10 s) before the next fault: every trial measures recovery
of a *healthy* connection, as in production, not a reconnect storm. Slots are staggered so that
trials of different connections never overlap in their connect phase.

Usage::

    .venv/bin/python benchmarks/recovery.py                 # 50 trials per kind, ~4 minutes
    .venv/bin/python benchmarks/recovery.py --trials 10 --slots 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from upbit_ws.aio.connection import ManagedConnection
from upbit_ws.core.auth import Credentials
from upbit_ws.core.config import ConnectionConfig
from upbit_ws.core.encode import TypeRequest, encode_request
from upbit_ws.core.errors import TransportError
from upbit_ws.core.messages import ErrorFrame
from upbit_ws.simulator import Simulator, SimulatorConfig

Fault = Literal["abort", "blackhole", "quiet-blackhole", "flap-1", "flap-2", "flap-5"]
FAULTS: tuple[Fault, ...] = ("abort", "blackhole", "quiet-blackhole", "flap-1", "flap-2", "flap-5")
#: Seconds of healthy data between two drops of a flapping network.
FLAP_PERIOD: dict[Fault, float] = {"flap-1": 1.0, "flap-2": 2.0, "flap-5": 5.0}
TYPES = (
    TypeRequest("ticker", ("KRW-BTC",)),
    TypeRequest("orderbook", ("KRW-BTC",)),
    TypeRequest("trade", ("KRW-BTC",)),
)
QUIET_TYPES = (TypeRequest("myOrder", ()),)


class Slot:
    """One connection's listener: subscribes on open, timestamps frames per socket.

    A ``quiet`` slot (private, myOrder) resolves a trial on the replacement socket's open.
    """

    def __init__(self, index: int, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.ticket = f"bench-{'quiet-' if quiet else ''}{index}"
        self.request = encode_request(QUIET_TYPES if quiet else TYPES, ticket=self.ticket)
        self.generation = 0
        self.opened_at = 0.0
        self.gaps: list[float] = []
        self._last = 0.0
        self._want_generation = 0
        self._first_frame: asyncio.Future[float] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def on_open(self, connection: ManagedConnection) -> None:
        """Send the subscription on the new socket."""
        self.generation = connection.generation
        self.opened_at = asyncio.get_running_loop().time()
        self._last = 0.0
        waiter = self._first_frame
        quiet_trial = self.quiet and waiter is not None and not waiter.done()
        if quiet_trial and waiter is not None and self.generation >= self._want_generation:
            waiter.set_result(self.opened_at)
        task = asyncio.get_running_loop().create_task(self._send(connection))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, connection: ManagedConnection) -> None:
        # The socket may go away again before the send; on_open comes for the next one.
        with contextlib.suppress(TransportError):
            await connection.send(self.request)

    def on_frame(self, payload: bytes, received_at: float) -> None:
        """Record the gap to the previous frame; resolve a waiting trial on a new socket."""
        if self._last:
            self.gaps.append(received_at - self._last)
        self._last = received_at
        waiter = self._first_frame
        if waiter is not None and not waiter.done() and self.generation >= self._want_generation:
            waiter.set_result(received_at)

    def on_error(self, error: ErrorFrame) -> None:
        """Nothing to do: the connection logged it and reconnects after the close."""

    def on_closed(self, connection: ManagedConnection) -> None:
        """Nothing to do: the connection reconnects by itself."""

    def spare_request(self, connection: ManagedConnection) -> bytes:
        """Give a spare socket (a hedge, ``core/session.py``) the same request."""
        return self.request

    def on_switched(self, connection: ManagedConnection, since: float | None) -> None:
        """A spare socket took over (a hedge): it carries the request already; as an open."""
        self.generation = connection.generation
        self.opened_at = asyncio.get_running_loop().time()
        self._last = 0.0
        waiter = self._first_frame
        quiet_trial = self.quiet and waiter is not None and not waiter.done()
        if quiet_trial and waiter is not None and self.generation >= self._want_generation:
            waiter.set_result(self.opened_at)

    def expect_frame_after(self, generation: int) -> asyncio.Future[float]:
        """Return a future resolved with the receive time of the first frame on a newer socket.

        For a quiet slot: with the open time of the newer socket.
        """
        self._want_generation = generation + 1
        self._first_frame = asyncio.get_running_loop().create_future()
        return self._first_frame


@dataclass
class Result:
    """Recovery times of one fault kind, in seconds."""

    fault: Fault
    samples: list[float] = field(default_factory=list)
    max_backoff_step: int = 0

    def summary(self) -> dict[str, float]:
        """Return count, p50, p99, max and mean."""
        ordered = sorted(self.samples)
        n = len(ordered)

        def pct(p: float) -> float:
            return ordered[min(n - 1, max(0, round(p * n + 0.5) - 1))]

        return {
            "trials": n,
            "p50": pct(0.50),
            "p99": pct(0.99),
            "max": ordered[-1],
            "mean": statistics.fmean(ordered),
            "max_backoff_step": self.max_backoff_step,
        }


async def wait_open(conn: ManagedConnection, slot: Slot, sim: Simulator) -> int:
    """Wait until ``conn`` is open and subscribed; return its simulator connection id."""
    await asyncio.wait_for(conn.wait_open(), 10)
    async with asyncio.timeout(10):
        await sim.wait_for(lambda: any(c.ticket == slot.ticket for c in sim.connections()))
    # The newest: a spare socket (a hedge) carries the same ticket as the one it replaced.
    return max(c.id for c in sim.connections() if c.ticket == slot.ticket)


@dataclass(frozen=True)
class Plan:
    """When one slot runs its trials: ``trials`` faults from ``start_at``, ``spacing`` apart."""

    fault: Fault
    trials: int
    start_at: float
    spacing: float


async def run_slot(
    index: int,
    conn: ManagedConnection,
    slot: Slot,
    sim: Simulator,
    plan: Plan,
    result: Result,
    progress: Callable[[str], None],
) -> None:
    """Run the planned faults of one kind on one connection, each on a healthy socket."""
    loop = asyncio.get_running_loop()
    fault, trials, start_at, spacing = plan.fault, plan.trials, plan.start_at, plan.spacing
    phase = random.Random(index)  # reproducible stall phases
    for trial in range(trials):
        await asyncio.wait_for(conn.wait_open(), 10)
        # Wait until this socket is older than the backoff reset time and it is our turn.
        due = max(start_at + trial * spacing, slot.opened_at + spacing)
        if fault == "quiet-blackhole":
            # Only the periodic ping finds this stall, so where the stall falls between two
            # pings decides the time; a fixed schedule would always hit the same phase.
            due += phase.uniform(0.0, conn.config.keepalive.interval(streaming=False))
        await asyncio.sleep(max(0.0, due - loop.time()))
        sim_id = await wait_open(conn, slot, sim)
        frame = slot.expect_frame_after(conn.generation)
        started = loop.time()
        if fault == "abort":
            sim.abort(sim_id)
        else:  # blackhole, quiet-blackhole
            sim.blackhole(60.0, sim_id)
        received = await asyncio.wait_for(frame, 30)
        result.samples.append(received - started)
        progress(f"{fault} slot {index} trial {trial + 1}: {received - started:.3f} s")


async def run_flapping_slot(
    index: int,
    conn: ManagedConnection,
    slot: Slot,
    sim: Simulator,
    plan: Plan,
    result: Result,
    progress: Callable[[str], None],
) -> None:
    """Drop the connection after every ``FLAP_PERIOD`` seconds of data, ``trials`` times."""
    loop = asyncio.get_running_loop()
    period = FLAP_PERIOD[plan.fault]
    await asyncio.sleep(max(0.0, plan.start_at - loop.time()))
    for trial in range(plan.trials):
        sim_id = await wait_open(conn, slot, sim)
        await asyncio.sleep(period)  # healthy data flows meanwhile
        sim_id = await wait_open(conn, slot, sim)
        frame = slot.expect_frame_after(conn.generation)
        started = loop.time()
        sim.abort(sim_id)
        received = await asyncio.wait_for(frame, 30)
        result.samples.append(received - started)
        step = conn.statistics().backoff_step
        result.max_backoff_step = max(result.max_backoff_step, step)
        progress(
            f"{plan.fault} slot {index} trial {trial + 1}: {received - started:.3f} s "
            f"(backoff step {step})"
        )


async def measure(
    fault: Fault, *, sim: Simulator, trials: int, slots: int, spacing: float, verbose: bool
) -> tuple[Result, list[float]]:
    """Run ``trials`` faults of one kind spread over ``slots`` connections."""
    config = ConnectionConfig()  # the defaults under test
    result = Result(fault)
    quiet = fault == "quiet-blackhole"
    listeners = [Slot(i, quiet=quiet) for i in range(slots)]
    if quiet:
        conns = [
            ManagedConnection(
                "private",
                url=sim.private_ws_url,
                config=config,
                credentials=Credentials(*sim.credentials),
                listener=listener,
            )
            for listener in listeners
        ]
    else:
        conns = [
            ManagedConnection("public", url=sim.ws_url, config=config, listener=listener)
            for listener in listeners
        ]
    per_slot = [trials // slots + (1 if i < trials % slots else 0) for i in range(slots)]

    def progress(text: str) -> None:
        if verbose:
            print(text, file=sys.stderr)

    loop = asyncio.get_running_loop()
    for conn in conns:
        await conn.start()
    for conn, listener in zip(conns, listeners, strict=True):
        await wait_open(conn, listener, sim)
    flapping = fault in FLAP_PERIOD
    start = loop.time() + (0.0 if flapping else spacing)
    runner = run_flapping_slot if flapping else run_slot
    async with asyncio.TaskGroup() as tg:
        for i, (conn, listener) in enumerate(zip(conns, listeners, strict=True)):
            if per_slot[i]:
                offset = i * (FLAP_PERIOD.get(fault, spacing)) / slots
                plan = Plan(fault, per_slot[i], start + offset, spacing)
                tg.create_task(runner(i, conn, listener, sim, plan, result, progress))
    for conn in conns:
        await conn.aclose()
    gaps = [gap for listener in listeners for gap in listener.gaps]
    return result, gaps


def gap_summary(gaps: list[float]) -> dict[str, float]:
    """Return the mean, p50, p99 and max gap between frames of one subscription."""
    ordered = sorted(gaps)
    return {
        "frames": len(ordered) + 1,
        "mean": statistics.fmean(ordered),
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max": ordered[-1],
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    """Run both measurements, print a table and return the figures."""
    sim_config = SimulatorConfig(krw_markets=20, btc_markets=3, usdt_markets=3)
    began = time.perf_counter()
    report: dict[str, object] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "config": "ConnectionConfig() defaults",
        "spacing_s": args.spacing,
        "slots": args.slots,
    }
    async with Simulator(sim_config) as sim:
        results = {}
        all_gaps: list[float] = []
        for fault in args.faults:
            result, gaps = await measure(
                fault,
                sim=sim,
                trials=args.trials,
                slots=args.slots,
                spacing=args.spacing,
                verbose=args.verbose,
            )
            results[fault] = result.summary()
            if fault != "quiet-blackhole":  # a quiet stream has no frame gaps to speak of
                all_gaps.extend(gaps)
    report["recovery_s"] = results
    if all_gaps:
        report["frame_gap_s"] = gap_summary(all_gaps)
    report["wall_s"] = time.perf_counter() - began
    print(
        f"{'fault':<16} {'trials':>6} {'p50 s':>8} {'p99 s':>8} {'max s':>8} {'mean s':>8} "
        f"{'step':>5}"
    )
    for fault, figures in results.items():
        print(
            f"{fault:<16} {figures['trials']:>6.0f} {figures['p50']:>8.3f} "
            f"{figures['p99']:>8.3f} {figures['max']:>8.3f} {figures['mean']:>8.3f} "
            f"{figures['max_backoff_step']:>5.0f}"
        )
    gap = report.get("frame_gap_s")
    if isinstance(gap, dict):
        print(
            f"simulator frame gap on the subscription (KRW-BTC ticker+orderbook+trade): "
            f"mean {gap['mean'] * 1000:.0f} ms, p50 {gap['p50'] * 1000:.0f} ms, "
            f"p99 {gap['p99'] * 1000:.0f} ms, max {gap['max'] * 1000:.0f} ms"
        )
    print(f"wall time {report['wall_s']:.0f} s")
    return report


def main() -> None:
    """Parse the options, run, and write JSON with --json."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--trials", type=int, default=50, help="trials per fault kind")
    parser.add_argument("--slots", type=int, default=10, help="connections running trials")
    parser.add_argument(
        "--spacing", type=float, default=10.5, help="seconds between faults on one connection"
    )
    parser.add_argument(
        "--faults",
        nargs="+",
        choices=FAULTS,
        default=list(FAULTS),
        help="fault kinds to measure (default: all)",
    )
    add_output_options(parser)
    finish(parser.parse_args(), run)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--json`` (write the figures there too) and ``--verbose`` (every trial)."""
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--verbose", action="store_true", help="print every trial")


def finish(
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, object]]],
) -> None:
    """Run ``run(args)``, then write its figures to ``--json`` when asked."""
    # Each trial logs its reconnects as warnings; keep the table readable unless asked.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR)
    report = asyncio.run(run(args))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)


if __name__ == "__main__":
    main()
