"""Where the time per message goes: py-spy samples of upbit-ws (and the ceiling) on the flood.

    .venv/bin/python benchmarks/hotpath.py [--seconds 8] [--clients upbit-ws,upbit-ws-batches]

Starts the flood simulator in its own process, then runs each client of
``benchmarks/peer_clients.py`` (ticker for 10 KRW codes) and, once it is past its warm-up,
attaches ``py-spy record`` (installed by ``peers.py`` into ``.bench-venv/``, never a project
dependency) to it for ``--seconds`` at 1 kHz: start-up and imports stay out of the samples.
Each sample is charged to its innermost Python frame (its "self" time; time in C code, such as
msgspec's decoder or picows' frame parser, is charged to the Python frame that called it) and
the frames are grouped into the stages of the hot path. The CPU microseconds per message of the
same process scale the shares into microseconds per message.

With ``--cprofile`` it runs the same clients under cProfile instead (heavier: it inflates the
Python function calls) and prints the calls per message of the top functions.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "benchmarks" / "peer_clients.py"
PY_SPY = ROOT / ".bench-venv" / "bin" / "py-spy"

#: (stage, substrings of "function (file:line)") in the order they are tested.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    (
        "decode (msgspec typed decode, incl. its C time: `Router._take_many` decodes a whole "
        "read in one C-level map, `Router._take_one` a read of one frame)",
        ("upbit_ws/core/decode.py", "Router._take_many (", "Router._take_one ("),
    ),
    ("routing lookup + dedup + latency sample (router.py)", ("upbit_ws/aio/router.py",)),
    (
        "frame hand-off: picows listener, per-read accounting (transport.py, connection.py)",
        ("upbit_ws/aio/transport.py", "upbit_ws/aio/connection.py"),
    ),
    ("buffer append / pop / drain (core/buffer.py)", ("upbit_ws/core/buffer.py",)),
    ("subscription push, wake, wait, next (stream.py)", ("upbit_ws/aio/stream.py",)),
    ("subscription service / other library code", ("upbit_ws/",)),
    (
        "the user's code: ceiling = orjson.loads + free; upbit-ws = loop resumption + "
        "freeing each message",
        ("peer_clients.py",),
    ),
    (
        "event loop: picows frame parsing + socket read (C, under Handle._run), "
        "wakeups, futures, clock",
        ("asyncio/", "selectors.py"),
    ),
]


def stage_of(frame: str) -> str:
    """Return the stage a leaf frame belongs to."""
    for stage, needles in STAGES:
        if any(n in frame for n in needles):
            return stage
    return "other"


def _function(frame: str) -> str:
    """``name (path/file.py:123)`` -> ``name (file.py)``: lines of one function together."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})"


def analyse(raw: Path) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Return (samples, self samples by stage, self samples by function) of a py-spy raw file."""
    stages: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        leaf = stack.split(";")[-1]
        stages[stage_of(leaf)] += n
        functions[_function(leaf)] += n
    return total, stages, functions


def _start_server() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "upbit_ws.cli.simulate", "--port", "0", "--flood", "--no-limits"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def _spy(client: str, base: str, args: argparse.Namespace, out: Path) -> dict[str, object]:
    """Run one client, attach py-spy after its warm-up; return the client's JSON line."""
    warmup = 2.0
    command = [sys.executable, str(DRIVER), client, "--base", base, "--warmup", str(warmup)]
    command += ["--seconds", str(args.seconds + 2)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    time.sleep(warmup + 0.5)
    spy = [str(PY_SPY), "record", "--format", "raw", "--rate", "1000", "--nonblocking"]
    spy += ["--pid", str(process.pid), "--duration", str(int(args.seconds)), "--output", str(out)]
    subprocess.run(spy, capture_output=True, text=True, check=False, timeout=args.seconds + 60)
    stdout, _ = process.communicate(timeout=args.seconds + 60)
    lines = [x for x in stdout.splitlines() if x.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {"error": "no result"}


def _report(client: str, got: dict[str, object], raw: Path, top: int) -> None:
    if not raw.exists():
        print(f"### {client}: no py-spy samples (is .bench-venv/bin/py-spy installed?)\n")
        return
    total, stages, functions = analyse(raw)
    messages = float(got.get("messages", 0) or 0)
    cpu = float(got.get("cpu", 0) or 0)
    us = cpu * 1e6 / messages if messages else 0.0
    rate = messages / float(got.get("seconds", 1) or 1)
    print(f"### {client}: {rate:,.0f} msg/s, {us:.2f} CPU µs/msg, {total:,} samples\n")
    print("| stage | share of samples | µs/msg |")
    print("| --- | ---: | ---: |")
    for stage, n in stages.most_common():
        print(f"| {stage} | {n / total * 100:.1f}% | {us * n / total:.2f} |")
    print()
    print("| function (self time) | share | µs/msg |")
    print("| --- | ---: | ---: |")
    for function, n in functions.most_common(top):
        print(f"| `{function}` | {n / total * 100:.1f}% | {us * n / total:.2f} |")
    print()


def _cprofile(client: str, base: str, args: argparse.Namespace, out: Path) -> None:
    command = [sys.executable, str(DRIVER), client, "--base", base, "--warmup", "2"]
    command += ["--seconds", str(args.seconds), "--cprofile", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.seconds + 60)
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    got = json.loads(lines[-1]) if lines else {}
    messages = int(got.get("messages", 0))
    if not out.exists() or not messages:
        print(f"### {client} (cProfile): no profile ({done.stderr.strip()[-300:]})\n")
        return
    stats = pstats.Stats(str(out))
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    print(f"### {client} (cProfile, {messages:,} messages in the window)\n")
    print("| function | calls per message | self s |")
    print("| --- | ---: | ---: |")
    for (path, line, name), (_cc, calls, self_s, _cum, _callers) in rows[: args.top]:
        where = "/".join(path.split("/")[-2:])
        print(f"| `{name}` ({where}:{line}) | {calls / messages:.2f} | {self_s:.2f} |")
    print()


def main() -> None:
    """Profile each client and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", default="upbit-ws,upbit-ws-batches,ceiling")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--cprofile", action="store_true", help="cProfile instead of py-spy")
    args = parser.parse_args()
    if not args.cprofile and not PY_SPY.exists():
        sys.exit(f"{PY_SPY} is missing: run benchmarks/peers.py once (it installs it)")
    server, base = _start_server()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"server {base} (flood), {os.cpu_count()} CPUs, load average {load}\n")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for client in args.clients.split(","):
                out = Path(tmp) / f"{client}.out"
                if args.cprofile:
                    _cprofile(client, base, args, out)
                else:
                    got = _spy(client, base, args, out)
                    _report(client, got, out, args.top)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
