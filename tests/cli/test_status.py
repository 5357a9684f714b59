"""``upbit-ws status``: exit 0 healthy, 1 unhealthy, 2 unreachable, against real endpoints."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

from click.testing import CliRunner, Result

from tests.aio.connection_helpers import FAST, fresh_limiter, manager_in_a_long_outage
from tests.observe.helpers import observed
from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.cli.main import cli
from upbit_ws.observe import serve_health


async def status(*args: str) -> Result:
    """Run ``upbit-ws status ARGS`` with click's runner in a thread (the loop keeps serving)."""
    return await asyncio.to_thread(CliRunner().invoke, cli, ["status", *args])


def free_port() -> int:
    """Return a loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_healthy_exits_0_and_says_so() -> None:
    """A running manager's endpoint: exit 0, HEALTHY, the connection and its subscription."""
    async with observed() as o:
        o.ws.component("chart").subscribe("ticker", ["KRW-BTC"])
        await o.log.state("public", "open")
        async with asyncio.timeout(5):
            while not o.ws.subscriptions().public.confirmed:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        result = await status(o.url)
        as_json = await status(o.url + "/healthz", "--json")
    assert result.exit_code == 0, result.output
    assert "HEALTHY" in result.output and "UNHEALTHY" not in result.output
    assert "public" in result.output and "ticker KRW-BTC" in result.output
    assert as_json.exit_code == 0 and json.loads(as_json.output)["ok"] is True


async def test_unhealthy_exits_1_with_the_reason() -> None:
    """A manager that is not running: exit 1, UNHEALTHY, and why (also with --json)."""
    ws = WebSocketManager(config=FAST, connect_limiter=fresh_limiter())
    async with serve_health(ws) as server:
        result = await status(server.url)
        as_json = await status(server.url, "--json")
    await ws.aclose()
    assert result.exit_code == 1, result.output
    assert "UNHEALTHY" in result.output and "  ! " in result.output
    assert as_json.exit_code == 1 and json.loads(as_json.output)["ok"] is False


async def test_an_outage_says_how_long_and_when_the_next_connect_is() -> None:
    """A host refusing connects: how long the connection has been down (the outage, where the
    state's own age restarts at every attempt), when it connects next, and that the network
    is watched meanwhile; in the reasons, the lines and the JSON."""
    async with manager_in_a_long_outage() as ws:
        stats = ws.public.statistics()
        health = ws.health().connections[0]
        async with serve_health(ws) as server:
            result = await status(server.url)
            as_json = await status(server.url, "--json")
    assert stats.down_age is not None and stats.down_age > stats.state_age
    assert health.down_since is not None and health.retry_in is not None
    assert result.exit_code == 1, result.output
    assert "connection reconnecting, down for " in result.output
    assert "next connect in " in result.output and "or when the host answers" in result.output
    (conn,) = json.loads(as_json.output)["connections"]
    assert conn["down_seconds"] >= conn["state_seconds"]
    assert conn["retry_in_seconds"] > 9.0 and conn["network_watch"] is True


async def test_unreachable_exits_2_with_one_line_from_the_console_script() -> None:
    """Nothing listening: the installed command exits 2 with one clear line, no traceback."""
    url = f"http://127.0.0.1:{free_port()}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from upbit_ws.cli.main import main; main()",
        "status",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "cannot connect" in lines[0] and url in lines[0]
    assert out == b""


async def test_something_else_answering_exits_2() -> None:
    """An HTTP server that is no health endpoint (404 page) is reported as such, exit 2."""
    ws = WebSocketManager(config=FAST, connect_limiter=fresh_limiter())
    async with serve_health(ws) as server:
        result = await status(server.url + "/nothing-here")
    await ws.aclose()
    assert result.exit_code == 2
    assert "not a health document" in result.output
