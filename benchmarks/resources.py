"""Resources at normal load: a realistic app's CPU share and memory, and what growth costs.

    .venv/bin/python benchmarks/resources.py [--seconds 20] [--trades-per-second 100]

Starts the simulator in its own process at its normal (non-flood) pace, with the market
model's two rate knobs raised so that the app below receives about 1,000 messages per second:
``trades_per_second`` 20 for the busiest markets and ``quiet_trades_per_second`` 6 for the
tail (the simulator's defaults, 8 and 0.05, give about 100 msg/s; tickers come at most once per
100 ms tick per market, so the tail's rate is what moves the total). Each measurement then runs
in a fresh process of its own:

* **import**: RSS of a bare interpreter, of one that ran ``import asyncio``, and of one that
  also ran ``from upbit_ws import WebSocketManager`` (the import cost alone);
* **app**: one ``WebSocketManager``, one component with ticker for every KRW market
  (``KRW-*``), one with the KRW-BTC orderbook, one with KRW-BTC 1-minute candles, each consumer
  an ``async for``; after a warm-up, the process's CPU time over ``--seconds`` as a share of one
  core (target < 1%), the message rate, and the RSS (target < 50 MB);
* **connections**: RSS with one manager, then with each of ``--extra`` more managers (each its
  own public connection, ticker for one code): the RSS cost of each extra connection;
* **codes**: one manager, ticker then trade subscriptions grown 100 KRW codes at a time: the
  RSS cost of each extra 100 subscribed codes (messages flowing and consumed all along).

RSS is VmRSS after ``gc.collect()`` and a short settle; each figure is one process's, so the
machine's other work does not enter it, but CPU share does: the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["main"]

_SETTLE = 2.0


def _rss_kb(key: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _settled_rss_kb() -> int:
    gc.collect()
    return _rss_kb()


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _krw_codes(base: str) -> list[str]:
    with urllib.request.urlopen(base + "/v1/market/all", timeout=10) as answer:
        markets = json.loads(answer.read())
    return [m["market"] for m in markets if m["market"].startswith("KRW-")]


# --- the measured processes -------------------------------------------------------------------


_RSS_SNIPPET = """
import gc, json, time
t = time.perf_counter()
{imports}
t = time.perf_counter() - t
gc.collect()
rss = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmRSS:")][0]
print(json.dumps({{"rss": rss, "s": t}}))
"""


def _import_rss(imports: str) -> dict[str, Any]:
    """RSS (kB) and import time of a fresh interpreter that runs only ``imports``."""
    code = _RSS_SNIPPET.format(imports=imports or "pass")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def measure_imports() -> dict[str, Any]:
    """RSS of a bare interpreter, with asyncio, and with upbit_ws imported (fresh processes)."""
    bare = _import_rss("")
    with_asyncio = _import_rss("import asyncio")
    ours = _import_rss("import asyncio\nfrom upbit_ws import WebSocketManager")
    return {
        "bare": bare["rss"],
        "asyncio": with_asyncio["rss"],
        "upbit_ws": ours["rss"],
        "s": ours["s"] - with_asyncio["s"],
    }


async def child_app(base: str, warmup: float, seconds: float) -> dict[str, Any]:
    """The realistic app: ticker for every KRW code, one orderbook, one candle."""
    from upbit_ws import WebSocketManager

    counts = {"ticker": 0, "orderbook": 0, "candle": 0}

    async def consume(kind: str, sub: Any) -> None:
        async for _msg in sub:
            counts[kind] += 1

    async with WebSocketManager(base_url=base) as ws:
        subs = {
            "ticker": ws.component("prices").subscribe("ticker", ["KRW-*"]),
            "orderbook": ws.component("book").subscribe("orderbook", ["KRW-BTC"]),
            "candle": ws.component("chart").subscribe("candle.1m", ["KRW-BTC"]),
        }
        tasks = [asyncio.create_task(consume(k, s)) for k, s in subs.items()]
        await asyncio.sleep(warmup)
        n0, c0, t0 = sum(counts.values()), _cpu(), time.perf_counter()
        f0 = ws.statistics().public.frames_received
        per0 = dict(counts)
        await asyncio.sleep(seconds)
        n1, c1, t1 = sum(counts.values()), _cpu(), time.perf_counter()
        f1 = ws.statistics().public.frames_received
        rss = _settled_rss_kb()
        out = {
            "codes": len(subs["ticker"].codes),
            "rate": (n1 - n0) / (t1 - t0),
            "rates": {k: (counts[k] - per0[k]) / (t1 - t0) for k in counts},
            "cpu_share": (c1 - c0) / (t1 - t0),
            "cpu_us": (c1 - c0) * 1e6 / max(1, n1 - n0),
            # Frames off the wire (the raw client's count): the ticker buffer conflates.
            "frames": (f1 - f0) / (t1 - t0),
            "cpu_us_frame": (c1 - c0) * 1e6 / max(1, f1 - f0),
            "rss": rss,
            "peak": _rss_kb("VmHWM"),
            "dropped": sum(s.statistics().dropped for s in subs.values()),
        }
        for task in tasks:
            task.cancel()
    return out


async def child_raw(base: str, warmup: float, seconds: float) -> dict[str, Any]:
    """The floor: the same subscription on a raw picows socket, each frame parsed by orjson.

    The ceiling client of ``benchmarks/peer_clients.py`` (picows receive, ``orjson.loads`` of
    the frame's memoryview, the dict freed at once), subscribed to what the app subscribes
    to, in one request: no routing, no buffer, no consumer task.
    """
    import orjson
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    codes = _krw_codes(base)
    counts = [0]

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.BINARY:
                orjson.loads(frame.get_payload_as_memoryview())
                counts[0] += 1
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()

    request = [
        {"ticket": "raw"},
        {"type": "ticker", "codes": codes},
        {"type": "orderbook", "codes": ["KRW-BTC"]},
        {"type": "candle.1m", "codes": ["KRW-BTC"]},
    ]
    url = base.replace("http://", "ws://") + "/websocket/v1"
    transport, _ = await ws_connect(Listener, url)
    transport.send(WSMsgType.TEXT, orjson.dumps(request))
    await asyncio.sleep(warmup)
    n0, c0, t0 = counts[0], _cpu(), time.perf_counter()
    await asyncio.sleep(seconds)
    n1, c1, t1 = counts[0], _cpu(), time.perf_counter()
    transport.disconnect()
    return {
        "codes": len(codes),
        "rate": (n1 - n0) / (t1 - t0),
        "frames": (n1 - n0) / (t1 - t0),
        "cpu_share": (c1 - c0) / (t1 - t0),
        "cpu_us": (c1 - c0) * 1e6 / max(1, n1 - n0),
        "cpu_us_frame": (c1 - c0) * 1e6 / max(1, n1 - n0),
        "rss": _settled_rss_kb(),
        "peak": _rss_kb("VmHWM"),
    }


async def _drain(sub: Any) -> None:
    async for _msg in sub:
        pass


async def child_connections(base: str, extra: int) -> dict[str, Any]:
    """RSS with one manager, then with each extra manager (its own public connection)."""
    from upbit_ws import WebSocketManager

    managers: list[Any] = []
    tasks: list[asyncio.Task[None]] = []
    steps: list[int] = []
    for _ in range(extra + 1):
        ws = WebSocketManager(base_url=base)
        await ws.start()
        managers.append(ws)
        sub = ws.component("c").subscribe("ticker", ["KRW-BTC"])
        tasks.append(asyncio.create_task(_drain(sub)))
        await asyncio.sleep(_SETTLE)
        steps.append(_settled_rss_kb())
    for task in tasks:
        task.cancel()
    for ws in managers:
        await ws.aclose()
    return {"steps": steps}


async def child_codes(base: str, step: int) -> dict[str, Any]:
    """RSS as ticker, then trade, subscriptions grow ``step`` KRW codes at a time."""
    from upbit_ws import WebSocketManager

    codes = _krw_codes(base)
    steps: list[tuple[int, int]] = []
    async with WebSocketManager(base_url=base) as ws:
        await asyncio.sleep(_SETTLE)
        steps.append((0, _settled_rss_kb()))
        total = 0
        tasks = []
        for kind in ("ticker", "trade"):
            for start in range(0, len(codes) - step + 1, step):
                sub = ws.component(f"{kind}-{start}").subscribe(kind, codes[start : start + step])
                tasks.append(asyncio.create_task(_drain(sub)))
                total += step
                await asyncio.sleep(_SETTLE)
                steps.append((total, _settled_rss_kb()))
        for task in tasks:
            task.cancel()
    return {"steps": steps}


def _run(main: Any, loop: str) -> Any:
    """Run coroutine ``main`` on asyncio's default loop or on uvloop's (``--loop``)."""
    if loop == "uvloop":
        import uvloop  # the optional extra upbit-ws[fast]

        return uvloop.run(main)
    return asyncio.run(main)


def _child(args: argparse.Namespace) -> None:
    if args.child == "app":
        out = _run(child_app(args.base, args.warmup, args.seconds), args.loop)
    elif args.child == "raw":
        out = asyncio.run(child_raw(args.base, args.warmup, args.seconds))
    elif args.child == "connections":
        out = asyncio.run(child_connections(args.base, args.extra))
    else:
        out = asyncio.run(child_codes(args.base, 100))
    print(json.dumps(out), flush=True)


def _serve(args: argparse.Namespace) -> None:
    """Run the simulator (normal pace, no rate limits) with a busier tail of markets."""
    from upbit_ws.cli.simulate import _serve as serve
    from upbit_ws.simulator import SimulatorConfig

    config = SimulatorConfig().replace(
        port=0,
        trades_per_second=args.trades_per_second,
        quiet_trades_per_second=args.quiet_trades_per_second,
        connect_per_second=None,
        messages_per_second=None,
        messages_per_minute=None,
        rest_quotation_per_second=None,
        rest_exchange_per_second=None,
        rest_order_per_second=None,
    )
    asyncio.run(serve(config))


# --- the parent -------------------------------------------------------------------------------


def _run_child(
    mode: str, base: str, args: argparse.Namespace, loop: str | None = None, src: str | None = None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, "--base", base]
    command += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    command += ["--loop", loop or args.loop]
    command += ["--extra", str(args.extra)]
    env = None
    if src is not None:  # another checkout's library (--before)
        env = {**os.environ, "PYTHONPATH": str(Path(src) / "src")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if not lines:
        raise RuntimeError(f"{mode} failed: {done.stderr.strip()[-500:]}")
    return dict(json.loads(lines[-1]))


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f}"


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _compare_loops(base: str, args: argparse.Namespace) -> None:
    """Run the app child on each loop in turn, ``--compare-loops`` times: paired figures."""
    runs: dict[str, list[dict[str, Any]]] = {"asyncio": [], "uvloop": []}
    print("| run | loop | msg/s | CPU, share of one core | CPU µs/msg | RSS MB |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for index in range(args.compare_loops):
        for loop in ("asyncio", "uvloop"):
            app = _run_child("app", base, args, loop)
            runs[loop].append(app)
            print(
                f"| {index + 1} | {loop} | {app['rate']:,.0f} | {app['cpu_share'] * 100:.2f}% "
                f"| {app['cpu_us']:.1f} | {_mb(app['rss'])} |",
                flush=True,
            )
    print()
    for loop, apps in runs.items():
        share = statistics.median(a["cpu_share"] for a in apps) * 100
        us = statistics.median(a["cpu_us"] for a in apps)
        print(f"median {loop}: {share:.2f}% of a core, {us:.1f} µs/msg")
    print(f"load average at the end: {_load_average()}")


def _pairs(base: str, args: argparse.Namespace) -> None:
    """Run the raw client and the app (and ``--before``'s app) in turn, ``--pairs`` times."""
    clients = [("raw (picows + orjson)", "raw", None), ("upbit-ws", "app", None)]
    if args.before:
        clients.append((f"upbit-ws at {args.before}", "app", args.before))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in clients}
    print(
        "| run | client | frames/s | delivered/s | CPU, share of one core | CPU µs/frame "
        "| RSS MB | load |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for index in range(args.pairs):
        for name, mode, src in clients:
            out = _run_child(mode, base, args, src=src)
            runs[name].append(out)
            print(
                f"| {index + 1} | {name} | {out['frames']:,.0f} | {out['rate']:,.0f} "
                f"| {out['cpu_share'] * 100:.2f}% | {out['cpu_us_frame']:.1f} | {_mb(out['rss'])} "
                f"| {_load_average()} |",
                flush=True,
            )
    print()
    raw = runs[clients[0][0]]
    for name, apps in runs.items():
        share = statistics.median(a["cpu_share"] for a in apps) * 100
        us = statistics.median(a["cpu_us_frame"] for a in apps)
        ratio = statistics.median(
            a["cpu_us_frame"] / r["cpu_us_frame"] for a, r in zip(apps, raw, strict=True)
        )
        print(
            f"median {name}: {share:.2f}% of a core, {us:.1f} µs/frame, "
            f"{ratio:.2f}x the raw client's µs/frame"
        )
    print(f"load average at the end: {_load_average()}")


def _report(base: str, args: argparse.Namespace) -> None:
    imp = measure_imports()
    app = _run_child("app", base, args)
    raw = _run_child("raw", base, args)
    conns = _run_child("connections", base, args)
    codes = _run_child("codes", base, args)

    share = app["cpu_share"] * 100
    print("| measure | value | target |")
    print("| --- | ---: | --- |")
    print(f"| messages received | {app['rate']:,.0f} msg/s | about 1,000 |")
    rates = ", ".join(f"{k} {v:,.1f}/s" for k, v in app["rates"].items())
    print(f"| of which | {rates} | |")
    print(f"| KRW codes on ticker | {app['codes']} | all |")
    verdict = "met" if share < 1 else "NOT met"
    print(f"| CPU, share of one core | {share:.2f}% | < 1% ({verdict}) |")
    print(f"| CPU per message | {app['cpu_us']:.1f} µs | |")
    print(
        f"| CPU per frame off the wire | {app['cpu_us_frame']:.1f} µs "
        f"({app['frames']:,.0f} frames/s; the ticker buffer conflates) | |"
    )
    print(
        f"| the raw client (picows + orjson, same subscription, run next) | "
        f"{raw['cpu_share'] * 100:.2f}% of a core, {raw['cpu_us']:.1f} µs/frame at "
        f"{raw['rate']:,.0f} frames/s; the app {app['cpu_us_frame'] / raw['cpu_us']:.2f}x "
        f"its µs/frame | |"
    )
    verdict = "met" if app["rss"] < 50 * 1024 else "NOT met"
    print(
        f"| RSS of the app | {_mb(app['rss'])} MB (peak {_mb(app['peak'])}) | < 50 MB ({verdict}) |"
    )
    print(f"| RSS of the bare interpreter | {_mb(imp['bare'])} MB | |")
    cost = imp["upbit_ws"] - imp["asyncio"]
    print(
        f"| import cost alone (`from upbit_ws import WebSocketManager`) | "
        f"+{_mb(cost)} MB ({_mb(imp['upbit_ws'])} MB in all), {imp['s'] * 1000:.0f} ms | |"
    )
    steps = conns["steps"]
    deltas = [b - a for a, b in itertools.pairwise(steps)]
    print(
        f"| RSS per extra connection (extra manager) | {statistics.mean(deltas):,.0f} kB "
        f"(mean of {len(deltas)}: {', '.join(str(d) for d in deltas)} kB) | |"
    )
    grow = codes["steps"]
    deltas = [b[1] - a[1] for a, b in itertools.pairwise(grow[1:])]
    first = grow[1][1] - grow[0][1]
    print(
        f"| RSS per extra 100 subscribed codes | {statistics.mean(deltas):,.0f} kB "
        f"(mean of {len(deltas)} steps after the first; the first {first:,} kB) | |"
    )
    print()
    print("RSS steps (codes subscribed -> RSS): ", end="")
    print(", ".join(f"{n} -> {kb:,} kB" for n, kb in grow))
    print(f"dropped by the app's buffers: {app['dropped']} (conflation on: ticker/book default)")
    print(f"load average at the end: {_load_average()}")


def main() -> None:
    """Start the simulator, run each measurement in its own process, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--trades-per-second", type=float, default=20.0)
    parser.add_argument("--quiet-trades-per-second", type=float, default=6.0)
    parser.add_argument("--extra", type=int, default=8, help="extra connections to add")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of the app (uvloop: the optional extra upbit-ws[fast])",
    )
    parser.add_argument(
        "--compare-loops",
        type=int,
        default=0,
        metavar="N",
        help="only the app, N times on each loop in turn (asyncio, uvloop): paired figures",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        metavar="N",
        help="only the app and the raw client, N times in turn: paired CPU figures",
    )
    parser.add_argument(
        "--before",
        metavar="CHECKOUT",
        help="with --pairs: also run the app on the library of this checkout (its src/)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "server":
        _serve(args)
        return
    if args.child:
        _child(args)
        return
    server = subprocess.Popen(
        [
            *(sys.executable, __file__, "--child", "server"),
            *("--trades-per-second", str(args.trades_per_second)),
            *("--quiet-trades-per-second", str(args.quiet_trades_per_second)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        print(f"server      {base} (separate process, normal pace, no rate limits)")
        print(f"market      --trades-per-second {args.trades_per_second:g} (busiest market)")
        print(f"machine     {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, ", end="")
        print(f"load average {_load_average()} at start")
        print()
        if args.pairs:
            _pairs(base, args)
        elif args.compare_loops:
            _compare_loops(base, args)
        else:
            _report(base, args)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
