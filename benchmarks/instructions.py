"""Instructions per message of the library's hot path, counted by valgrind (repeatable).

    .venv/bin/python benchmarks/instructions.py [--rounds 10] [--modes decode,async-for,batches]
    PYTHONPATH=<another checkout>/src .venv/bin/python benchmarks/instructions.py   # before/after

CPU time per message on a shared machine moves by 20-40% from run to run (README-performance.md);
an instruction count does not. Each mode runs in its own process under ``valgrind
--tool=callgrind`` with instrumentation off until the measured part: 1,000 ticker frames (10
KRW codes, DEFAULT format, ~900 bytes each) handed as memoryviews to the public connection's
router exactly as the transport hands a socket read over (``Router.taker``), then read by the
consumer, ``--rounds`` times after two unmeasured rounds. No socket, no event-loop wake-ups, no
picows parsing: only what the library adds per message, and the decode it cannot avoid.

* ``decode``: msgspec's decode of each frame, the message freed at once: the floor;
* ``async-for``: router (decode, lookup, counters, push) then ``await sub.__anext__()`` for
  each message;
* ``batches``: the same, read with ``sub.batches()`` (256 at a time).

Instruction counts ignore cache misses: a message freed long after it was decoded costs
more time than its count says (the flood benchmarks show that). Needs ``valgrind`` on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from peer_clients import CODES as PEER_CODES  # a sibling script, standard library only

ROOT = Path(__file__).resolve().parent
CODES = PEER_CODES  # the peers' subscription (benchmarks/peer_clients.py)
FRAMES = 1000
MODES = ("decode", "async-for", "batches")


def _frames() -> list[bytes]:
    """Return FRAMES realistic REALTIME ticker frames spread over CODES."""
    sys.path.insert(0, str(ROOT))
    from decode import build_frames  # benchmarks/decode.py

    tickers = [
        f for f in build_frames(FRAMES * 4, simple=False) if f.startswith(b'{"type":"ticker"')
    ]
    out = []
    for index, frame in enumerate(tickers[:FRAMES]):
        data = orjson.loads(frame)
        data["code"] = CODES[index % len(CODES)]
        data["stream_type"] = "REALTIME"
        out.append(orjson.dumps(data))
    return out


def _instrument(on: bool) -> None:
    """Turn callgrind's instrumentation on or off for this process."""
    command = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
    subprocess.run(command, capture_output=True, check=False)


async def _child(mode: str, rounds: int) -> None:
    import msgspec

    from upbit_ws.aio.connection import ManagedConnection
    from upbit_ws.aio.subscriptions import SubscriptionService
    from upbit_ws.core.messages import MyAsset, MyOrder, Orderbook, Ticker, Trade

    decode = msgspec.json.Decoder(Ticker | Trade | Orderbook | MyOrder | MyAsset).decode

    views = [memoryview(f) for f in _frames()]
    service = SubscriptionService(markets=tuple(CODES))
    service.attach(ManagedConnection("public", url="ws://127.0.0.1:9"))
    sub: Any = service.component("bench").subscribe(
        "ticker", CODES, policy="drop_oldest", capacity=1 << 17
    )
    router = service.listener("public").router
    batches = sub.batches()

    def other(payload: memoryview) -> None:
        raise RuntimeError("a frame left the fast path")

    def failed() -> None:
        raise RuntimeError("a delivery failed")

    for index in range(rounds + 2):
        if index == 2:
            _instrument(True)
        if mode == "decode":
            for view in views:
                decode(view)
            continue
        if hasattr(router, "taker"):
            take = router.taker(0.0, other)
            for view in views:
                take(view)
            if hasattr(router, "end_read"):  # the read's frames are routed when it ends
                router.end_read(failed)
        else:  # a library from before the per-read path: bytes, one call per frame
            for view in views:
                router.route(view.tobytes(), 0.0)
        if mode == "batches":
            got = 0
            while got < FRAMES:
                got += len(await anext(batches))
        else:
            for _ in range(FRAMES):
                await anext(sub)
    _instrument(False)


def _measure(mode: str, rounds: int) -> int:
    """Return the instructions per message of ``mode`` (valgrind in a child process)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [
                *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
                f"--callgrind-out-file={out}",
                *(sys.executable, __file__, "--child", mode, "--rounds", str(rounds)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{mode}: valgrind failed: {done.stderr.strip()[-300:]}")
    return int(found.group(1)) // (rounds * FRAMES)


def main() -> None:
    """Measure each mode and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child, args.rounds))
        return
    import upbit_ws

    print(f"library     {Path(upbit_ws.__file__).parent}")
    print(f"rounds      {args.rounds} x {FRAMES} ticker frames, 10 codes\n")
    rows = {mode: _measure(mode, args.rounds) for mode in args.modes.split(",")}
    floor = rows.get("decode")
    print("| mode | instructions / message | above the decode |")
    print("| --- | ---: | ---: |")
    for mode, count in rows.items():
        above = "-" if floor is None or mode == "decode" else f"{count - floor:,}"
        print(f"| {mode} | {count:,} | {above} |")


if __name__ == "__main__":
    main()
