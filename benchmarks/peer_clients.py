"""One client of ``benchmarks/peers.py``, run in its own process; prints one JSON line.

    python benchmarks/peer_clients.py CLIENT --base http://127.0.0.1:PORT [--seconds 5]

Run by ``peers.py`` with the project's interpreter (``ceiling``, ``trade-ceiling``,
``upbit-ws``, ``upbit-ws-batches``) or with the benchmark virtualenv's (the peers). Only the
standard library is imported at the top: each driver imports its own client. Every client
subscribes to the same thing (ticker for ``--codes``; the ``cryptofeed`` and ``trade-ceiling``
drivers to trades in SIMPLE format) on the simulator at ``--base``, and counts where the client
hands its own message object to the user. After ``--warmup`` seconds the driver samples the
count and the CPU time of its process tree (this process and its children: pyupbit reads the
socket in a child process), waits ``--seconds``, samples again and prints::

    {"client": ..., "messages": N, "seconds": S, "cpu": C, "rss_kb": K, "note": ...}

``rss_kb`` is the peak resident set (VmHWM) of the process tree, summed. A driver that cannot
connect prints ``{"error": ...}`` instead. How each peer is pointed at the simulator is written
in its driver below (and in README-performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]

CODES = [
    "KRW-BTC",
    "KRW-ETH",
    "KRW-XRP",
    "KRW-SOL",
    "KRW-DOGE",
    "KRW-ADA",
    "KRW-TRX",
    "KRW-AVAX",
    "KRW-LINK",
    "KRW-DOT",
]

_TICKS = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """Return ``pid`` and its descendants (Linux /proc scan)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(parents.get(current, ()))
    return out


def tree_cpu() -> float:
    """Return user+system CPU seconds of this process and its live descendants."""
    total = 0.0
    for pid in _tree(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def tree_peak_rss_kb() -> int:
    """Return the summed peak RSS (VmHWM, kB) of this process and its live descendants."""
    total = 0
    for pid in _tree(os.getpid()):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


class Counter:
    """A message count a client's loop bumps and the measurement samples."""

    def __init__(self) -> None:
        self.n = 0
        self.extra = 0  # a second count some drivers keep (messages parsed inside the peer)
        self.batches = 0  # lists handed over by batches()


def _result(client: str, measure: tuple[float, float, int]) -> dict[str, Any]:
    elapsed, cpu, count = measure
    out: dict[str, Any] = {
        "client": client,
        "messages": count,
        "seconds": elapsed,
        "cpu": cpu,
        "rss_kb": tree_peak_rss_kb(),
    }
    return out


async def _measure_async(counter: Counter, warmup: float, seconds: float) -> tuple[float, ...]:
    """Sample count and CPU after the warm-up and again ``seconds`` later."""
    await asyncio.sleep(warmup)
    if counter.n == 0:
        await asyncio.sleep(warmup * 4)  # slow starters (market lists over REST)
        if counter.n == 0:
            raise RuntimeError(f"no message received after {warmup * 5:g} s")
    n0, e0, c0, t0 = counter.n, counter.extra, tree_cpu(), time.perf_counter()
    await asyncio.sleep(seconds)
    n1, e1, c1, t1 = counter.n, counter.extra, tree_cpu(), time.perf_counter()
    return (t1 - t0, c1 - c0, n1 - n0, e1 - e0)


def _measure_sync(counter: Counter, warmup: float, seconds: float) -> tuple[float, ...]:
    time.sleep(warmup)
    if counter.n == 0:
        time.sleep(warmup * 4)
        if counter.n == 0:
            raise RuntimeError(f"no message received after {warmup * 5:g} s")
    n0, e0, c0, t0 = counter.n, counter.extra, tree_cpu(), time.perf_counter()
    time.sleep(seconds)
    n1, e1, c1, t1 = counter.n, counter.extra, tree_cpu(), time.perf_counter()
    return (t1 - t0, c1 - c0, n1 - n0, e1 - e0)


def _ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/websocket/v1"


# --- the ceilings: raw picows receive + orjson parse, no library ------------------------------


async def _raw(args: argparse.Namespace, request: list[dict[str, Any]]) -> tuple[float, ...]:
    import orjson
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    counter = Counter()

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.BINARY:
                orjson.loads(frame.get_payload_as_memoryview())
                counter.n += 1
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()

    transport, _ = await ws_connect(Listener, _ws_url(args.base))
    transport.send(WSMsgType.TEXT, orjson.dumps(request))
    measure = await _measure_async(counter, args.warmup, args.seconds)
    transport.disconnect()
    return measure


def run_ceiling(args: argparse.Namespace) -> tuple[float, ...]:
    """picows + orjson, ticker for the codes, DEFAULT format."""
    request = [{"ticket": "ceiling"}, {"type": "ticker", "codes": args.codes}]
    return asyncio.run(_raw(args, request))


def run_trade_ceiling(args: argparse.Namespace) -> tuple[float, ...]:
    """picows + orjson, trade for the codes, SIMPLE format (what cryptofeed asks for)."""
    request = [{"ticket": "ceiling"}, {"format": "SIMPLE"}, {"type": "trade", "codes": args.codes}]
    return asyncio.run(_raw(args, request))


# --- upbit-ws ---------------------------------------------------------------------------------


async def _upbit_ws(args: argparse.Namespace, *, batches: bool) -> tuple[float, ...]:
    from upbit_ws.aio.manager import WebSocketManager

    counter = Counter()

    async with WebSocketManager(base_url=args.base) as ws:
        # drop_oldest with a large bound: tickers conflate by default, this keeps every one.
        sub = ws.component("bench").subscribe(
            "ticker", args.codes, policy="drop_oldest", capacity=1 << 17
        )

        async def one_by_one() -> None:
            async for _msg in sub:
                counter.n += 1

        async def in_batches() -> None:
            async for batch in sub.batches():
                counter.n += len(batch)
                counter.batches += 1

        task = asyncio.create_task(in_batches() if batches else one_by_one())
        if args.cprofile:  # benchmarks/hotpath.py --cprofile: the measured window only
            import cProfile

            await asyncio.sleep(args.warmup)
            profile = cProfile.Profile()
            profile.enable()
            measure = await _measure_async(counter, 0.0, args.seconds)
            profile.disable()
            profile.dump_stats(args.cprofile)
        else:
            measure = await _measure_async(counter, args.warmup, args.seconds)
        counter.extra = sub.statistics().dropped  # reported as a note
        task.cancel()
        await sub.aclose()
    if batches:
        args.notes["batches"] = counter.batches  # over the whole run, warm-up included
        args.notes["batched_messages"] = counter.n
    return (*measure[:3], counter.extra)


def run_upbit_ws(args: argparse.Namespace) -> tuple[float, ...]:
    """``async for msg in sub``: one typed Ticker at a time."""
    return asyncio.run(_upbit_ws(args, batches=False))


def run_upbit_ws_batches(args: argparse.Namespace) -> tuple[float, ...]:
    """``async for batch in sub.batches()``: lists of typed Tickers."""
    return asyncio.run(_upbit_ws(args, batches=True))


def run_upbit_ws_uvloop(args: argparse.Namespace) -> tuple[float, ...]:
    """``async for msg in sub`` on uvloop (the optional extra upbit-ws[fast])."""
    import uvloop

    return uvloop.run(_upbit_ws(args, batches=False))


def run_upbit_ws_batches_uvloop(args: argparse.Namespace) -> tuple[float, ...]:
    """``sub.batches()`` on uvloop (the optional extra upbit-ws[fast])."""
    import uvloop

    return uvloop.run(_upbit_ws(args, batches=True))


# --- ccxt.pro (ccxt package) ------------------------------------------------------------------


async def _ccxt(args: argparse.Namespace) -> tuple[float, ...]:
    import ccxt.pro as ccxtpro

    counter = Counter()
    # Pointed by URL: the exchange's own ``urls`` option (REST for load_markets, and ws).
    exchange = ccxtpro.upbit(
        {
            "urls": {
                "api": {
                    "public": args.base,
                    "private": args.base,
                    "ws": _ws_url(args.base),
                }
            },
            "enableRateLimit": False,
        }
    )
    original = exchange.handle_ticker

    def counted(client: Any, message: Any) -> Any:
        counter.extra += 1  # every ticker ccxt parses, delivered or not
        return original(client, message)

    exchange.handle_ticker = counted
    await exchange.load_markets()
    symbols = [code.split("-")[1] + "/KRW" for code in args.codes]

    async def loop() -> None:
        while True:
            tickers = await exchange.watch_tickers(symbols)
            counter.n += len(tickers)

    task = asyncio.create_task(loop())
    try:
        return await _measure_async(counter, args.warmup, args.seconds)
    finally:
        task.cancel()
        await exchange.close()


def run_ccxt(args: argparse.Namespace) -> tuple[float, ...]:
    """ccxt.pro upbit ``watch_tickers``; ``parsed`` counts every ticker ccxt parsed."""
    return asyncio.run(_ccxt(args))


# --- pyupbit ----------------------------------------------------------------------------------


def run_pyupbit(args: argparse.Namespace) -> tuple[float, ...]:
    """pyupbit's WebSocketManager (a child process; the user calls ``get()``)."""
    import pyupbit.websocket_api as api
    import websockets

    # pyupbit has no URL option: its URL is a local string in the method. The driver swaps the
    # module's ``websockets`` name for a shim whose ``connect`` ignores the URL it is given and
    # dials the simulator instead; the rest of pyupbit runs unchanged.
    url = _ws_url(args.base)

    class Shim:
        ConnectionClosed = websockets.ConnectionClosed

        @staticmethod
        def connect(_uri: str, **kwargs: Any) -> Any:
            return websockets.connect(url, **kwargs)

    api.websockets = Shim  # type: ignore[assignment]
    counter = Counter()
    manager = api.WebSocketManager("ticker", list(args.codes))

    def loop() -> None:
        while True:
            manager.get()
            counter.n += 1

    threading.Thread(target=loop, daemon=True).start()
    try:
        return _measure_sync(counter, args.warmup, args.seconds)
    finally:
        # Killed after the result (peak RSS of the tree) is taken. Process.kill, not pyupbit's
        # terminate(), which flips ``alive`` so that the reader thread's next get() restarts it.
        args.cleanup.append(manager.kill)


# --- the official SDK (upbit-sdk) -------------------------------------------------------------


async def _sdk(args: argparse.Namespace) -> tuple[float, ...]:
    from upbit import AsyncUpbit

    counter = Counter()
    # Pointed by URL: ``base_url``; the SDK derives ws://HOST/websocket/v1 from it.
    client = AsyncUpbit(base_url=args.base, websocket_base_url=args.base.replace("http", "ws"))

    async def loop() -> None:
        async with client.ws_stream.ticker(list(args.codes)) as stream:
            async for _event in stream:
                counter.n += 1

    task = asyncio.create_task(loop())
    try:
        return await _measure_async(counter, args.warmup, args.seconds)
    finally:
        task.cancel()


def run_sdk(args: argparse.Namespace) -> tuple[float, ...]:
    """The official SDK's ``ws_stream.ticker(codes)`` async iterator."""
    return asyncio.run(_sdk(args))


# --- cryptofeed -------------------------------------------------------------------------------


def run_cryptofeed(args: argparse.Namespace) -> tuple[float, ...]:
    """cryptofeed's Upbit feed, TRADES (it has no Upbit ticker), SIMPLE format, callback count."""
    from cryptofeed import FeedHandler
    from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
    from cryptofeed.defines import TRADES
    from cryptofeed.exchanges import Upbit

    # cryptofeed has no URL option per feed: the driver replaces the Upbit class's two endpoint
    # attributes (websocket, and REST for the market list) with the simulator's URLs. Its
    # WSAsyncConn refuses any address but wss://, so the endpoint says wss://127.0.0.1:PORT and
    # the module's ``connect`` name (websockets' own) is wrapped to dial it as plain ws://.
    Upbit.websocket_endpoints = [WebsocketEndpoint(_ws_url(args.base).replace("ws:", "wss:"))]
    Upbit.rest_endpoints = [RestEndpoint(args.base, routes=Routes("/v1/market/all"))]
    import cryptofeed.connection as connection

    plain_connect = connection.connect

    def loopback_connect(address: str, **kwargs: Any) -> Any:
        return plain_connect(address.replace("wss://", "ws://", 1), **kwargs)

    connection.connect = loopback_connect  # type: ignore[assignment]
    counter = Counter()

    async def on_trade(_trade: Any, _receipt: float) -> None:
        counter.n += 1

    handler = FeedHandler({"log": {"disabled": True}})
    symbols = [code.split("-")[1] + "-KRW" for code in args.codes]
    handler.add_feed(Upbit(symbols=symbols, channels=[TRADES], callbacks={TRADES: on_trade}))
    handler.run(start_loop=False, install_signal_handlers=False)
    loop = asyncio.get_event_loop()
    return loop.run_until_complete(_measure_async(counter, args.warmup, args.seconds))


DRIVERS: dict[str, Callable[[argparse.Namespace], tuple[float, ...]]] = {
    "ceiling": run_ceiling,
    "trade-ceiling": run_trade_ceiling,
    "upbit-ws": run_upbit_ws,
    "upbit-ws-batches": run_upbit_ws_batches,
    "upbit-ws-uvloop": run_upbit_ws_uvloop,
    "upbit-ws-batches-uvloop": run_upbit_ws_batches_uvloop,
    "ccxt": run_ccxt,
    "pyupbit": run_pyupbit,
    "upbit-sdk": run_sdk,
    "cryptofeed": run_cryptofeed,
}


def main() -> None:
    """Run one driver and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("client", choices=sorted(DRIVERS))
    parser.add_argument("--base", required=True, help="simulator base URL (127.0.0.1 only)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--codes", default=",".join(CODES))
    parser.add_argument("--cprofile", help="upbit-ws drivers: cProfile the window into this file")
    args = parser.parse_args()
    args.codes = args.codes.split(",")
    args.cleanup = []
    args.notes = {}
    if not args.base.startswith(("http://127.0.0.1:", "http://localhost:")):
        parser.error("--base must be a loopback URL")
    try:
        measure = DRIVERS[args.client](args)
        out = _result(args.client, (measure[0], measure[1], int(measure[2])))
        if len(measure) > 3 and measure[3]:
            key = "dropped" if args.client.startswith("upbit-ws") else "parsed"
            out[key] = int(measure[3])
    except BaseException as exc:  # a peer that fails is a row, not a crash
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        out = {"client": args.client, "error": detail[:300]}
    if "error" not in out:
        out.update(args.notes)
    for step in args.cleanup:
        step()
    print(json.dumps(out), flush=True)
    sys.stdout.flush()
    os._exit(0)  # peers leave tasks and threads behind; the numbers are out


if __name__ == "__main__":
    main()
