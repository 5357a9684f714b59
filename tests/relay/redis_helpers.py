"""A private redis-server per test: on a free loopback port, no persistence, in a temp dir.

The tests never touch a system Redis (Debian's package may start one on 6379). When
``redis-server`` is not installed they skip, saying how ``make test`` installs it.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import pytest

from upbit_ws.simulator import Simulator, SimulatorConfig

__all__ = ["SIM_OPTIONS", "RedisServer", "eventually", "free_port", "redis_or_skip"]

SIM_OPTIONS: Final[dict[str, Any]] = {"krw_markets": 20, "btc_markets": 3, "usdt_markets": 3}
#: A loaded 2-core machine: every wait is bounded, and generously.
WITHIN: Final = 15.0


def redis_or_skip() -> str:
    """Return the redis-server executable, or skip the test with the reason."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip(
            "redis-server is not installed: `make test` installs Debian's package when run as "
            "root (apt-get install redis-server)"
        )
    return exe


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process that a test can stop and start again on the same port."""

    def __init__(self, exe: str, workdir: Path) -> None:
        self.exe = exe
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (no RDB, no AOF: a restart loses everything, like a fresh host)."""
        self._proc = subprocess.Popen(
            [
                self.exe,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        """Kill the server at once (SIGKILL: no chance to save or say goodbye)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=10)
            self._proc = None

    def pause(self) -> None:
        """Stop the server in its tracks (SIGSTOP): connections stay open, nothing answers."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    async def ready(self) -> None:
        """Wait until the server answers PING."""

        async def pings() -> bool:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            try:
                writer.write(b"PING\r\n")
                await writer.drain()
                return (await reader.readline()).startswith(b"+PONG")
            except OSError:
                return False
            finally:
                writer.close()

        await eventually(pings, what=f"redis-server on port {self.port} to answer")


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], *, what: str, within: float = WITHIN
) -> None:
    """Wait until ``check()`` holds, polled every 20 ms, for at most ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                result = check()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {within:g} s waiting for {what}") from None


def sim_config() -> SimulatorConfig:
    """Return a small simulator market whose KRW-BTC trades several times a second."""
    return SimulatorConfig(**SIM_OPTIONS)


async def start_sim() -> Simulator:
    """Start a simulator (the caller stops it)."""
    sim = Simulator(sim_config())
    await sim.start()
    return sim
