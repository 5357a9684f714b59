"""Run the test suite several times while another process keeps one core busy.

A test that passes on an idle machine and fails when CI shares the cores is a bug; this is how
to find it before CI does. Run it (``make test-stress``) after touching anything that depends on
timing: keepalive, backoff, coalescing, pacing, recovery, or a test that waits for something.

Usage: ``python tools/stress.py [--runs N] [--hogs N] [-- PYTEST ARGS...]``. Exits non-zero when
any run failed, after printing which tests failed in which run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

_HOG = "while True:\n    pass\n"
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def _run_suite(pytest_args: list[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="suite runs (default 5)")
    parser.add_argument("--hogs", type=int, default=1, help="busy-loop processes (default 1)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest after --")
    args = parser.parse_args()

    hogs = [subprocess.Popen([sys.executable, "-c", _HOG]) for _ in range(args.hogs)]
    print(f"{args.hogs} busy loop(s) started: pid {', '.join(str(h.pid) for h in hogs)}")
    failures: dict[int, list[str]] = {}
    try:
        for run in range(1, args.runs + 1):
            code, output, seconds = _run_suite(args.pytest_args)
            summary = output.strip().splitlines()[-1] if output.strip() else "(no output)"
            print(f"run {run}/{args.runs}: exit {code} in {seconds:.0f} s: {summary}", flush=True)
            if code != 0:
                failed = _FAILED.findall(output) or ["(see output)"]
                failures[run] = failed
                log = f".stress-run-{run}.log"
                with open(log, "w", encoding="utf-8") as fh:
                    fh.write(output)
                for name in failed:
                    print(f"    {name}")
                print(f"    full output: {os.path.abspath(log)}")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    if failures:
        print(f"FAILED: {len(failures)} of {args.runs} runs failed under load")
        return 1
    print(f"all {args.runs} runs passed under load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
