"""``upbit-ws simulate``: run the local Upbit simulator until interrupted.

The first line printed is the base URL (``http://127.0.0.1:PORT``), flushed at once, so a parent
process (a benchmark, a test, a demo) can read it and connect. SIGINT and SIGTERM stop the
server cleanly with exit status 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from upbit_ws.cli.common import InputError, OneLineCommand, run
from upbit_ws.simulator import Simulator, SimulatorConfig

__all__ = ["simulate"]


@click.command(cls=OneLineCommand)
@click.option("--port", type=int, default=0, show_default=True, help="Port; 0 picks a free one.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--seed", type=int, default=0, show_default=True, help="Market model seed.")
@click.option(
    "--flood",
    is_flag=True,
    help="Every public connection gets pre-encoded frames of its subscription, as fast as the "
    "socket drains (throughput benchmarks).",
)
@click.option(
    "--idle-timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Drop connections silent this long without a close frame; 0 disables.",
)
@click.option("--no-limits", is_flag=True, help="Disable connect, message and REST rate limits.")
@click.option(
    "--auth-failure",
    type=click.Choice(["handshake", "frame"]),
    default="handshake",
    show_default=True,
    help="Refuse bad private tokens with HTTP 401, or with an INVALID_AUTH frame then close.",
)
@click.option(
    "--history",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds of market history to simulate before serving (REST candles and trades).",
)
@click.option(
    "--trades-per-second",
    type=float,
    default=None,
    help="Mean trades per second of the busiest market (default 8).",
)
@click.option(
    "--subscribe-delay",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds before a subscription request takes effect; Upbit's first data came "
    "0.15-0.65 s after a request (docs/protocol.md section 1.3). 0: at once.",
)
def simulate(
    *,
    port: int,
    host: str,
    seed: int,
    flood: bool,
    idle_timeout: float,
    no_limits: bool,
    auth_failure: str,
    history: float,
    trades_per_second: float | None,
    subscribe_delay: float,
) -> None:
    """Run the Upbit simulator (WebSocket, REST, control API on one port) until interrupted."""
    options: dict[str, object] = {
        "port": port,
        "host": host,
        "seed": seed,
        "flood": flood,
        "idle_timeout": idle_timeout if idle_timeout > 0 else None,
        "auth_failure": auth_failure,
        "history_seconds": history,
        "subscribe_delay": subscribe_delay,
    }
    if trades_per_second is not None:
        options["trades_per_second"] = trades_per_second
    if no_limits:
        options.update(
            connect_per_second=None,
            messages_per_second=None,
            messages_per_minute=None,
            rest_quotation_per_second=None,
            rest_exchange_per_second=None,
            rest_order_per_second=None,
        )
    try:
        config = SimulatorConfig().replace(**options)
    except ValueError as exc:
        raise InputError(f"{exc} (see upbit-ws simulate --help)") from None
    # A port in use (or any OS refusal) is one line and exit 1, not a traceback.
    run(_serve(config))


async def _serve(config: SimulatorConfig) -> None:
    """Serve until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Simulator(config) as sim:
        # The base URL goes first and alone on its line: parents parse it.
        print(sim.url, flush=True)
        print(f"public WebSocket  {sim.ws_url}", flush=True)
        print(f"private WebSocket {sim.private_ws_url}", flush=True)
        print("API key           the built-in pair (see docs/simulator.md)", flush=True)
        print(f"control API       {sim.url}/_sim/ (see docs/simulator.md)", flush=True)
        await stop.wait()
    sys.stdout.flush()


if __name__ == "__main__":
    simulate()
