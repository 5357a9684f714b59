"""Instructions per message of the library's hot path, counted by valgrind (repeatable).

    .venv/bin/python benchmarks/instructions.py [--rounds 10] [--modes decode,async-for,batches]
    PYTHONPATH=<another checkout>/src .venv/bin/python benchmarks/instructions.py   # before/after
    .venv/bin/python benchmarks/instructions.py --cache --read 250   # cache misses, smaller reads
    .venv/bin/python benchmarks/instructions.py --codes 200 --policy latest --read 24 \
        --book-every 100   # shaped like the normal-load app (resources.py)

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
* ``batches``: the same, read with ``sub.batches()`` (256 at a time);
* ``transport`` (only when named): each frame goes through the transport's picows listener
  first (``aio/transport.py``'s ``_ReadListener``, a picows test frame, then the router as the
  connection hands it over), then ``async for``. picows marks every test frame the last of its
  read, so here each frame is a read of its own (``--read`` does not apply).

``--codes 200 --policy latest --read 24 --book-every 100`` shapes it like the normal-load app
of ``benchmarks/resources.py`` (every KRW code, the ticker's default conflating buffer, reads
of about 24 frames, an orderbook frame in about one read of four, each consumer after each
read); the default is the flood of ``peers.py``.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from peer_clients import CODES as PEER_CODES  # a sibling script, standard library only

ROOT = Path(__file__).resolve().parent
CODES = PEER_CODES  # the peers' subscription (benchmarks/peer_clients.py)
FRAMES = 1000
MODES = ("decode", "async-for", "batches")
#: Also measurable (``--modes``): ``transport``, see the module docs.
EXTRA_MODES = ("transport",)


def _codes(count: int) -> list[str]:
    """Return ``count`` market codes: the peers' ten, then made-up KRW codes."""
    return (CODES + [f"KRW-X{i:03d}" for i in range(max(0, count - len(CODES)))])[:count]


def _frames(codes: list[str]) -> list[bytes]:
    """Return FRAMES realistic REALTIME ticker frames spread over ``codes``."""
    sys.path.insert(0, str(ROOT))
    from decode import build_frames  # benchmarks/decode.py

    tickers = [
        f for f in build_frames(FRAMES * 4, simple=False) if f.startswith(b'{"type":"ticker"')
    ]
    out = []
    for index, frame in enumerate(tickers[:FRAMES]):
        data = orjson.loads(frame)
        data["code"] = codes[index % len(codes)]
        data["stream_type"] = "REALTIME"
        out.append(orjson.dumps(data))
    return out


def _instrument(on: bool) -> None:
    """Turn callgrind's instrumentation on or off for this process."""
    command = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
    subprocess.run(command, capture_output=True, check=False)


def _book_frame() -> bytes:
    """Return a REALTIME orderbook frame of KRW-BTC (15 units)."""
    sys.path.insert(0, str(ROOT))
    from decode import build_frames  # benchmarks/decode.py

    frame = next(f for f in build_frames(8, simple=False) if f.startswith(b'{"type":"orderbook"'))
    data = orjson.loads(frame)
    data["code"] = "KRW-BTC"
    data["stream_type"] = "REALTIME"
    return orjson.dumps(data)


async def _child(
    mode: str, rounds: int, read: int, ncodes: int, policy: str, book_every: int
) -> None:
    import msgspec

    from upbit_ws.aio.connection import ManagedConnection
    from upbit_ws.aio.subscriptions import SubscriptionService
    from upbit_ws.core.messages import MyAsset, MyOrder, Orderbook, Ticker, Trade

    decode = msgspec.json.Decoder(Ticker | Trade | Orderbook | MyOrder | MyAsset).decode

    codes = _codes(ncodes)
    frames = _frames(codes)
    if book_every:  # an orderbook frame among the tickers now and then (normal load)
        for index in range(book_every - 1, len(frames), book_every):
            frames[index] = _book_frame()
    views = [memoryview(f) for f in frames]
    service = SubscriptionService(markets=tuple(codes))
    service.attach(ManagedConnection("public", url="ws://127.0.0.1:9"))
    capacity = 1 << 17 if policy != "latest" else None  # latest: the default bound, 1,024 codes
    sub: Any = service.component("bench").subscribe(
        "ticker", codes, policy=policy, capacity=capacity
    )
    book: Any = None  # the orderbook's own component (--book-every)
    if book_every:
        book = service.component("book").subscribe("orderbook", ["KRW-BTC"])
    router = service.listener("public").router
    batches = sub.batches()

    def other(payload: memoryview) -> None:
        raise RuntimeError("a frame left the fast path")

    def failed() -> None:
        raise RuntimeError("a delivery failed")

    # The transport counts each read's payload bytes as it parses the frames (not measured).
    reads = [
        (views[i : i + read], sum(map(len, views[i : i + read]))) for i in range(0, FRAMES, read)
    ]
    listen = _listener(router, frames, other, failed) if mode == "transport" else None
    for index in range(rounds + 2):
        if index == 2:
            _instrument(True)
        if listen is not None:
            for frame in listen[1]:
                listen[0](None, frame)
                while sub.pending:
                    await anext(sub)
            continue
        if mode == "decode":
            for view in views:
                decode(view)
            continue
        for chunk, nbytes in reads:
            if hasattr(router, "taker"):
                take = router.taker(0.0, other)
                for view in chunk:
                    take(view)
                if hasattr(router, "end_read"):  # the read's frames are routed when it ends
                    router.end_read(nbytes, failed)
            else:  # a library from before the per-read path: bytes, one call per frame
                for view in chunk:
                    router.route(view.tobytes(), 0.0)
            while book is not None and book.pending:
                await anext(book)
            if policy == "latest" or book_every:  # take whatever the read left
                while sub.pending:
                    await (anext(batches) if mode == "batches" else anext(sub))
            elif mode == "batches":
                got = 0
                while got < len(chunk):
                    got += len(await anext(batches))
            else:
                for _ in chunk:
                    await anext(sub)
    _instrument(False)


def _listener(
    router: Any, frames: list[bytes], other: Any, failed: Any
) -> tuple[Callable[[Any, Any], None], list[Any]]:
    """Return the transport listener's ``on_ws_frame`` wired to ``router``, and picows frames."""
    from picows import WSMsgType
    from picows.picows import _make_test_ws_frame

    from upbit_ws.aio.transport import _ReadListener

    class Reads:
        """What the connection's handler does per read (aio/connection.py), minus accounting."""

        def begin_read(self) -> Any:
            return router.taker(0.0, other)

        def end_read(self, frames: int, nbytes: int) -> None:
            router.end_read(nbytes, failed)

        def take_failed(self) -> None:
            raise RuntimeError("a frame failed")

        def on_frame(self, payload: bytes) -> None:
            raise RuntimeError("a frame left the read path")

        def on_pong(self) -> None:
            pass

        def on_close(self, code: int, reason: str) -> None:
            pass

    listener = _ReadListener(Reads())  # type: ignore[arg-type]
    ws_frames = [_make_test_ws_frame(WSMsgType.BINARY, f, True, False) for f in frames]
    return listener.on_ws_frame, ws_frames


def _measure(mode: str, args: argparse.Namespace) -> list[int]:
    """Return instructions (and with ``--cache`` D1 and LL data misses) per message of ``mode``.

    Callgrind's events with ``--cache-sim=yes``: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw.
    """
    cache = ["--cache-sim=yes"] if args.cache else []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [
                *("valgrind", "--tool=callgrind", "--instr-atstart=no", *cache),
                f"--callgrind-out-file={out}",
                *(sys.executable, __file__, "--child", mode, "--rounds", str(args.rounds)),
                *("--read", str(args.read), "--codes", str(args.codes), "--policy", args.policy),
                *("--book-every", str(args.book_every)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    found = re.search(r"Collected :((?: \d+)+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{mode}: valgrind failed: {done.stderr.strip()[-300:]}")
    events = [int(x) // (args.rounds * FRAMES) for x in found.group(1).split()]
    if not args.cache:
        return events[:1]
    return [events[0], events[4] + events[5], events[7] + events[8]]


def main() -> None:
    """Measure each mode and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--read",
        type=int,
        default=FRAMES,
        help="frames per socket read (then the consumer runs)",
    )
    parser.add_argument(
        "--book-every",
        type=int,
        default=0,
        metavar="N",
        help="every Nth frame an orderbook (its own component), as at normal load",
    )
    parser.add_argument("--codes", type=int, default=len(CODES), help="market codes (10)")
    parser.add_argument(
        "--policy",
        default="drop_oldest",
        choices=("drop_oldest", "latest", "never_drop"),
        help="the subscription's buffer (drop_oldest with a large bound: nothing conflated)",
    )
    parser.add_argument(
        "--cache", action="store_true", help="simulate the caches too: D1 and LL data misses"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(
            _child(args.child, args.rounds, args.read, args.codes, args.policy, args.book_every)
        )
        return
    import upbit_ws

    print(f"library     {Path(upbit_ws.__file__).parent}")
    print(
        f"rounds      {args.rounds} x {FRAMES} ticker frames, {args.codes} codes, "
        f"{args.read} per read, {args.policy}"
        + (f", an orderbook every {args.book_every} frames" if args.book_every else "")
        + "\n"
    )
    rows = {mode: _measure(mode, args) for mode in args.modes.split(",")}
    floor = rows.get("decode")
    misses = " D1 data misses / message | LL data misses / message |" if args.cache else ""
    print("| mode | instructions / message | above the decode |" + misses)
    print("| --- | ---: | ---: |" + (" ---: | ---: |" if args.cache else ""))
    for mode, counts in rows.items():
        above = "-" if floor is None or mode == "decode" else f"{counts[0] - floor[0]:,}"
        extra = "".join(f" {n:,} |" for n in counts[1:])
        print(f"| {mode} | {counts[0]:,} | {above} |{extra}")


if __name__ == "__main__":
    main()
