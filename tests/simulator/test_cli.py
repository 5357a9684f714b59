"""``upbit-ws simulate``: base URL on the first line, clean exit 0 on SIGINT and SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import pytest


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_simulate_prints_url_and_exits_cleanly(signum: signal.Signals) -> None:
    """The first line is http://127.0.0.1:PORT, the server answers there, a signal exits 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "upbit_ws.cli.simulate", "--port", "0", "--seed", "7",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            first = (await proc.stdout.readline()).decode().strip()
        assert first.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http, http.get(f"{first}/_sim/health") as resp:
            assert (await resp.json())["status"] == "UP"
        proc.send_signal(signum)
        async with asyncio.timeout(20):
            await proc.stdout.read()
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
