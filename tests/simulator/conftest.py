"""Fixtures: simulators on 127.0.0.1 (manual clock unless a test wants the wall clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
import pytest

from upbit_ws.simulator import ManualClock, Simulator, SimulatorConfig

MakeSim = Callable[..., AbstractAsyncContextManager[Simulator]]

#: Small markets keep start-up fast; the listing tests use the full default.
FAST: dict[str, Any] = {"krw_markets": 20, "btc_markets": 3, "usdt_markets": 3}


@pytest.fixture
def make_sim() -> MakeSim:
    """Return a factory: ``async with make_sim(**options) as sim`` (manual clock by default)."""

    @asynccontextmanager
    async def factory(*, wall_clock: bool = False, **options: Any) -> AsyncIterator[Simulator]:
        config = SimulatorConfig(**{**FAST, **options})
        clock = None if wall_clock else ManualClock(config.start_time)
        async with Simulator(config, clock=clock) as sim:
            yield sim

    return factory


@pytest.fixture
async def sim(make_sim: MakeSim) -> AsyncIterator[Simulator]:
    """Return a running simulator on a manual clock with default behaviour."""
    async with make_sim() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return an aiohttp client session."""
    async with aiohttp.ClientSession() as session:
        yield session
