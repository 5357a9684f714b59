"""Helpers for observability tests: a manager on the simulator with a health server, HTTP GETs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.aio.connection_helpers import FAST, EventLog, fresh_limiter, running_sim
from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.core.auth import Credentials
from upbit_ws.core.config import ConnectionConfig
from upbit_ws.simulator import Simulator

__all__ = ["Observed", "get", "observed"]


@dataclass
class Observed:
    """A simulator, a started manager serving health on a free port, and its event log."""

    sim: Simulator
    ws: WebSocketManager
    log: EventLog

    @property
    def url(self) -> str:
        """Return the health server's base URL."""
        assert self.ws.health_server is not None
        return self.ws.health_server.url


@asynccontextmanager
async def observed(
    *, config: ConnectionConfig = FAST, keys: bool = False, **options: Any
) -> AsyncIterator[Observed]:
    """Run a simulator and a manager with ``health_port=0`` against it; close both after."""
    async with running_sim() as sim:
        ws = WebSocketManager(
            base_url=sim.url,
            credentials=Credentials(*sim.credentials) if keys else None,
            config=config,
            connect_limiter=fresh_limiter(),
            health_port=0,
            **options,
        )
        log = EventLog(ws.events())
        async with ws:
            yield Observed(sim, ws, log)


async def get(url: str) -> tuple[int, str, str]:
    """GET ``url``; return the status, the content type and the body text."""
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return answer.status, answer.content_type, await answer.text()
