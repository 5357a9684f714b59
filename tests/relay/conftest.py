"""Fixtures of the relay tests: a private redis-server and a simulator per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.relay.redis_helpers import RedisServer, redis_or_skip, sim_config
from upbit_ws.simulator import Simulator


@pytest.fixture
def redis_exe() -> str:
    """The redis-server executable (the test skips without one)."""
    return redis_or_skip()


@pytest.fixture
async def redis_server(redis_exe: str, tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A redis-server of this test only, answering on a free port; killed afterwards."""
    server = RedisServer(redis_exe, tmp_path)
    server.start()
    try:
        await server.ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A wall-clock simulator with a small market on 127.0.0.1."""
    async with Simulator(sim_config()) as simulator:
        yield simulator
