"""examples/blocking.py runs against the simulator and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.sync.helpers import sim_thread

ROOT = Path(__file__).resolve().parents[1]


def test_blocking_example_prints_trades_books_and_the_switch() -> None:
    """The blocking script prints 10 trades, two books, the switch to KRW-ETH, and exits 0."""
    with sim_thread() as sim:
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "blocking.py"), "--base-url", sim.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("trade KRW-BTC ") for line in lines) == 10
    assert sum(line.startswith("book  KRW-BTC bid ") for line in lines) == 2
    assert lines[-1] == "book  KRW-ETH after the switch; healthy: True"
