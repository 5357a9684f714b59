"""A faithful local Upbit: WebSocket, REST, order engine, rate limits and scriptable faults.

``async with Simulator(port=0) as sim:`` serves ``sim.ws_url``, ``sim.private_ws_url`` and
``sim.url`` on 127.0.0.1; see ``docs/simulator.md`` for the behaviours, knobs and control API.
"""

from __future__ import annotations

from upbit_ws.aio.logcontext import install_log_fields
from upbit_ws.simulator.clock import Clock, ManualClock, WallClock
from upbit_ws.simulator.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimulatorConfig
from upbit_ws.simulator.server import Simulator, SimulatorStats

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET_KEY",
    "Clock",
    "ManualClock",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
    "WallClock",
]

install_log_fields()  # the simulator's loggers carry the structured fields too
