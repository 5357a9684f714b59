"""Serve /healthz and /metrics of a manager streaming from the simulator, with a fault now and then.

For trying the Prometheus side by hand (docs/observability.md): point a Prometheus at
``http://127.0.0.1:PORT/metrics`` and import ``docs/grafana-dashboard.json`` in Grafana.

    python tools/metrics_demo.py --port 9465 --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from upbit_ws import Credentials, WebSocketManager
from upbit_ws.simulator import Simulator, SimulatorConfig


async def consume(sub: object) -> None:
    """Read a subscription forever (slowly enough for its buffer to show some depth)."""
    async for _ in sub:  # type: ignore[attr-defined]
        await asyncio.sleep(0.001)


async def main(port: int, seconds: float) -> None:
    """Run the simulator and a manager with health_port for ``seconds``."""
    async with (
        Simulator(SimulatorConfig(krw_markets=40, btc_markets=3, usdt_markets=3)) as sim,
        WebSocketManager(
            base_url=sim.url, credentials=Credentials(*sim.credentials), health_port=port
        ) as ws,
    ):
        assert ws.health_server is not None
        print(f"serving {ws.health_server.url}/metrics for {seconds:g} s", flush=True)
        subs = [
            ws.component("coin_list").subscribe("ticker", ["KRW-*"]),
            ws.component("orderbook_view").subscribe("orderbook", ["KRW-BTC"], depth=15),
            ws.component("chart").subscribe("candle.1m", ["KRW-BTC"]),
            ws.component("tape").subscribe("trade", ["KRW-BTC", "KRW-ETH"]),
        ]
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(consume(s)) for s in subs]
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            book = subs[1]
            flip = ["KRW-ETH", "KRW-BTC"]
            while loop.time() < end:
                await asyncio.sleep(10)
                await book.update([flip[0]])  # type: ignore[attr-defined]
                flip.reverse()
                sim.abort()  # a dropped socket: one reconnect of cause "closed" per round
            for task in tasks:
                task.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9465)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.port, args.seconds))
