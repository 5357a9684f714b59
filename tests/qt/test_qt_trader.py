"""examples/qt_trader.py against the simulator: it fills, switches coins with one request,
follows a fault in its status bar, and closing the window stops everything.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from tests.sync.helpers import SimThread, library_threads, sim_thread

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "qt_trader.py"
WAIT_MS = 8000


def load_example() -> ModuleType:
    """Import examples/qt_trader.py as a module."""
    spec = importlib.util.spec_from_file_location("qt_trader", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sim() -> Iterator[SimThread]:
    """A simulator on a background thread."""
    with sim_thread() as running:
        yield running


@pytest.fixture
def window(qtbot: QtBot, sim: SimThread) -> Iterator[Any]:
    """The example window on the simulator, filled (coins listed, KRW-BTC book shown)."""
    win = load_example().TraderWindow(sim.url, mode="thread")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(
        lambda: win.coins.rowCount() >= 10 and win.book_code == "KRW-BTC", timeout=WAIT_MS
    )
    yield win
    win.close()


def entries(request: dict[str, Any]) -> set[tuple[str, str]]:
    """Return the (type, code) pairs of one subscription request the simulator parsed."""
    return {(e["type"], e["code"]) for e in request["entries"]}


def test_selecting_a_coin_switches_the_book_with_one_request(
    qtbot: QtBot, window: Any, sim: SimThread
) -> None:
    """Selecting KRW-ETH sends one request (all tickers + the ETH book) and the book follows."""
    before = len(sim.requests())
    row = window._rows.index("KRW-ETH")
    window.coins.selectRow(row)
    qtbot.waitUntil(lambda: window.book_code == "KRW-ETH", timeout=WAIT_MS)
    requests = sim.requests()
    assert len(requests) == before + 1
    sent = entries(requests[-1])
    assert ("orderbook", "KRW-ETH") in sent and ("orderbook", "KRW-BTC") not in sent
    assert {code for kind, code in sent if kind == "ticker"} == set(window._rows)
    assert window.book.item(0, 1).text() and window.book.item(29, 1).text()


def test_status_bar_follows_a_fault(qtbot: QtBot, window: Any, sim: SimThread) -> None:
    """An injected abort shows in the status bar: reconnecting, then open again."""
    assert window.state_label.text() == "public: open"
    seen = len(window.status_history)
    sim.call(sim.sim.abort)
    qtbot.waitUntil(
        lambda: (
            "public: reconnecting" in window.status_history[seen:]
            and window.status_history[-1] == "public: open"
        ),
        timeout=WAIT_MS,
    )
    assert window.state_label.text() == "public: open"


def test_closing_the_window_stops_everything(qtbot: QtBot, window: Any, sim: SimThread) -> None:
    """close() on the window closes the manager: no thread, loop closed, sockets gone."""
    with qtbot.waitSignal(window.ws.closed, timeout=WAIT_MS):
        window.close()
    assert library_threads() == [] and window.ws.loop.is_closed()
    sim.until(lambda s: not s.connections())


@pytest.mark.parametrize("mode", ["thread", "qasync"])
def test_the_script_runs_and_saves_a_screenshot(sim: SimThread, tmp_path: Path, mode: str) -> None:
    """`qt_trader.py --screenshot` (plain exec() or qasync) fills the window, saves it, exits 0."""
    shot = tmp_path / "window.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--base-url",
            sim.url,
            "--mode",
            mode,
            "--screenshot",
            str(shot),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 10_000
    assert "Traceback" not in result.stderr
