"""A simulator on its own thread, for tests of code that blocks (the sync facade, Qt).

The simulator is the real one (``upbit_ws.simulator``), served by an asyncio loop in a
background thread of the test process; tests reach it through :meth:`SimThread.call` and
:meth:`SimThread.until`, which run on that loop. Nothing of the library is patched.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tests.aio.connection_helpers import FAST, SIM_OPTIONS
from upbit_ws.simulator import Simulator, SimulatorConfig
from upbit_ws.simulator.connection import SimConnection
from upbit_ws.sync.loop import LoopThread

__all__ = ["FAST", "SimThread", "library_threads", "sim_thread"]

T = TypeVar("T")


class SimThread:
    """A running simulator and the loop thread that serves it."""

    def __init__(self, sim: Simulator, runner: LoopThread) -> None:
        self.sim = sim
        self.runner = runner
        self.url = sim.url

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the simulator's loop (e.g. ``sim.call(sim.sim.abort)``)."""
        return self.runner.call(fn, *args)

    def until(self, predicate: Callable[[Simulator], bool], *, within: float = 5.0) -> None:
        """Wait until ``predicate(sim)`` holds, checked on the simulator's loop on each change."""

        async def wait() -> None:
            async with asyncio.timeout(within):
                await self.sim.wait_for(lambda: predicate(self.sim))

        self.runner.run(wait())

    def public(self) -> SimConnection:
        """Return the one open public connection."""

        def find() -> SimConnection:
            found = [c for c in self.sim.connections() if c.kind == "public"]
            assert len(found) == 1, found
            return found[0]

        return self.call(find)

    def requests(self) -> list[dict[str, object]]:
        """Return every subscription request the open public connection received, parsed."""
        return self.call(lambda: [r.parsed for r in self.public().requests])


@contextmanager
def sim_thread(**options: Any) -> Iterator[SimThread]:
    """Run a small-market simulator on a background thread; stop it afterwards."""
    runner = LoopThread(name="test-simulator")
    runner.start()
    sim = Simulator(SimulatorConfig(**{**SIM_OPTIONS, **options}))
    try:
        runner.run(sim.start())
        yield SimThread(sim, runner)
    finally:
        runner.stop(sim.stop)


def library_threads() -> list[threading.Thread]:
    """Return the sync facade's threads still alive."""
    return [t for t in threading.enumerate() if t.name == "upbit-ws-sync" and t.is_alive()]
