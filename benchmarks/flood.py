"""Measure the simulator's flood rate with a raw picows client, server in its own process.

    .venv/bin/python benchmarks/flood.py --seconds 10 [--parse] [--types ticker,trade,orderbook]

Starts ``upbit-ws simulate --flood --no-limits`` in a subprocess (its first output line is the
base URL), connects one raw picows client (no library code: the point is the ceiling), sends
one subscription request, and counts messages and bytes for ``--seconds`` after a warm-up.
With ``--parse`` every payload is also parsed with ``orjson`` (the raw ceiling of
README-performance.md: picows receive plus orjson parse). The server must out-run this
reader; the server process's CPU share is printed too, so you can see which side is the
bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["main"]

_CODES = ["KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE", "KRW-ADA", "KRW-TRX", "KRW-AVAX"]


class _Counter(WSListener):  # type: ignore[misc]
    """Count binary frames and bytes; optionally parse each payload."""

    def __init__(self, *, parse: bool) -> None:
        self.parse = parse
        self.messages = 0
        self.bytes = 0
        self.closed = asyncio.get_event_loop().create_future()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """Count one frame (and parse it with ``--parse``)."""
        if frame.msg_type == WSMsgType.BINARY:
            self.messages += 1
            self.bytes += frame.payload_size
            if self.parse:
                orjson.loads(frame.get_payload_as_memoryview())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """Resolve ``closed``."""
        if not self.closed.done():
            self.closed.set_result(None)


def _cpu_seconds(pid: int) -> float:
    """Return user+system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def _run(args: argparse.Namespace, base: str, server_pid: int) -> None:
    url = base.replace("http://", "ws://") + "/websocket/v1"
    types = args.types.split(",")
    request = [{"ticket": "flood-bench"}]
    request += [{"type": t, "codes": _CODES} for t in types]
    request.append({"format": args.format})
    transport, listener = await ws_connect(lambda: _Counter(parse=args.parse), url)
    transport.send(WSMsgType.TEXT, orjson.dumps(request))
    await asyncio.sleep(args.warmup)
    start_msgs, start_bytes = listener.messages, listener.bytes
    start_cpu = _cpu_seconds(server_pid)
    started = time.perf_counter()
    await asyncio.sleep(args.seconds)
    elapsed = time.perf_counter() - started
    msgs = listener.messages - start_msgs
    size = listener.bytes - start_bytes
    server_cpu = (_cpu_seconds(server_pid) - start_cpu) / elapsed
    transport.disconnect()
    print(f"server            {base} (separate process, flood mode)")
    print(f"subscription      {','.join(types)} x {len(_CODES)} codes, format {args.format}")
    print(f"client            raw picows{' + orjson.loads' if args.parse else ''}")
    print(f"duration          {elapsed:.2f} s")
    print(f"messages          {msgs:,} ({msgs / elapsed:,.0f} msg/s)")
    print(f"bytes             {size / elapsed / 1e6:,.1f} MB/s", end=", ")
    print(f"{size / max(1, msgs):.0f} B/msg")
    print(f"server CPU        {server_cpu * 100:.0f}% of one core")


def main() -> None:
    """Run the flood benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--types", default="ticker,trade,orderbook")
    parser.add_argument("--format", default="DEFAULT")
    parser.add_argument("--parse", action="store_true", help="also orjson-parse every payload")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "upbit_ws.cli.simulate", "--port", "0", "--flood", "--no-limits"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        asyncio.run(_run(args, base, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
