"""The Qt bridge against the simulator: signals on the GUI thread, throttling, state, shutdown.

Both engines: the manager on the sync facade's thread under a plain Qt event loop, and on a
qasync loop. Waits are qtbot.waitSignal / waitUntil with bounds; nothing sleeps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from tests.sync.helpers import FAST, SimThread, library_threads, sim_thread
from upbit_ws import Credentials, GapEvent, KeyProblem, Orderbook, Ticker, UnknownCodeError
from upbit_ws.qt import WebSocketManager

WAIT_MS = 5000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim() -> Iterator[SimThread]:
    """A simulator on a background thread."""
    with sim_thread() as running:
        yield running


@pytest.fixture
def ws(qtbot: QtBot, sim: SimThread) -> Iterator[WebSocketManager]:
    """A started thread-mode Qt manager; checks on the way out that everything stopped."""
    manager = WebSocketManager(base_url=sim.url, config=FAST, mode="thread")
    manager.start()
    yield manager
    with qtbot.waitSignal(manager.closed, timeout=WAIT_MS):
        manager.close()
    assert library_threads() == [] and manager.loop.is_closed()


class Recorder:
    """Slots that keep what they received and whether they ran on the GUI (main) thread."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.off_gui_thread = 0
        self.times: list[float] = []

    def __call__(self, *args: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.off_gui_thread += 1
        self.times.append(time.monotonic())
        self.items.append(args[0] if len(args) == 1 else args)


def test_messages_arrive_on_the_gui_thread(qtbot: QtBot, ws: WebSocketManager) -> None:
    """rate=None emits message(msg) per message, every one on the GUI thread."""
    assert ws.mode == "thread"
    sub = ws.component("ticker_view").subscribe("ticker", ["KRW-BTC"], rate=None)
    got = Recorder()
    sub.message.connect(got)
    qtbot.waitUntil(lambda: len(got.items) >= 3, timeout=WAIT_MS)
    assert got.off_gui_thread == 0
    assert all(isinstance(m, Ticker) and m.code == "KRW-BTC" for m in got.items)


def test_batches_are_throttled_to_the_rate(qtbot: QtBot, ws: WebSocketManager) -> None:
    """With rate=20, batch(list) comes at most about 20 times a second, on the GUI thread."""
    sub = ws.component("coin_list").subscribe("ticker", ["KRW-*"], rate=20.0)
    got = Recorder()
    sub.batch.connect(got)
    qtbot.waitUntil(lambda: len(got.items) >= 8, timeout=WAIT_MS)
    span = got.times[-1] - got.times[0]
    # n batches need n-1 frame intervals, less the first hand-off's latency (a bound, not a hope).
    assert len(got.items) - 1 <= span * 20.0 + 2
    assert got.off_gui_thread == 0
    assert all(isinstance(m, Ticker) for batch in got.items for m in batch)


def test_update_and_errors_come_back_as_signals(qtbot: QtBot, ws: WebSocketManager) -> None:
    """update() never blocks: updated() then the new code; a bad code gives error(exc)."""
    book = ws.component("book").subscribe("orderbook", ["KRW-BTC"], depth=15, rate=None)
    got = Recorder()
    book.message.connect(got)
    with qtbot.waitSignal(book.updated, timeout=WAIT_MS):
        book.update(["KRW-ETH"])
    qtbot.waitUntil(
        lambda: any(isinstance(m, Orderbook) and m.code == "KRW-ETH" for m in got.items),
        timeout=WAIT_MS,
    )
    with qtbot.waitSignal(book.error, timeout=WAIT_MS) as blocker:
        book.update(["KRW-NOPE"])
    assert isinstance(blocker.args[0], UnknownCodeError)
    with pytest.raises(UnknownCodeError):
        ws.component("book").subscribe("orderbook", ["KRW-NOPE"])


def test_connection_state_follows_a_fault(
    qtbot: QtBot, ws: WebSocketManager, sim: SimThread
) -> None:
    """After an abort, connection_state reports reconnecting, then open again, on the GUI thread."""
    ws.component("x").subscribe("ticker", ["KRW-BTC"])
    qtbot.waitUntil(lambda: ws.states.get("public") == "open", timeout=WAIT_MS)
    got = Recorder()
    ws.connection_state.connect(got)
    sim.call(sim.sim.abort)
    qtbot.waitUntil(lambda: bool(got.items) and got.items[-1][1] == "open", timeout=WAIT_MS)
    states = [state for connection, state, _reason in got.items if connection == "public"]
    assert states[0] == "reconnecting" and states[-1] == "open"
    assert got.off_gui_thread == 0


def test_close_ends_subscriptions_and_stops_the_thread(qtbot: QtBot, sim: SimThread) -> None:
    """close() emits ended(None) for each subscription and closed(); no thread is left."""
    ws = WebSocketManager(base_url=sim.url, config=FAST, mode="thread")
    ws.start()
    sub = ws.component("x").subscribe("ticker", ["KRW-BTC"])
    with qtbot.waitSignals([ws.closed, sub.ended], timeout=WAIT_MS):
        ws.close()
    assert library_threads() == [] and ws.loop.is_closed()


QASYNC_SCENARIO = """
import asyncio, os, threading
import qasync
from upbit_ws.qt import WebSocketManager
from upbit_ws.qt.binding import QtWidgets
from tests.sync.helpers import FAST

app = QtWidgets.QApplication([])
loop = qasync.QEventLoop(app)
asyncio.set_event_loop(loop)
gui = threading.current_thread()
messages, states, off_gui = [], [], []

def on_message(msg):
    off_gui.append(threading.current_thread() is not gui)
    messages.append(msg)
    if len(messages) >= 3:
        three.set()

async def scenario():
    global three
    three = asyncio.Event()
    ws = WebSocketManager(base_url=os.environ["SIM_URL"], config=FAST)
    ws.connection_state.connect(lambda _c, state, _r: states.append(state))
    started, closed = asyncio.Event(), asyncio.Event()
    ws.started.connect(started.set)
    ws.closed.connect(closed.set)
    ws.start()
    await asyncio.wait_for(started.wait(), 5)
    sub = ws.component("x").subscribe("ticker", ["KRW-BTC"], rate=None)
    sub.message.connect(on_message)
    await asyncio.wait_for(three.wait(), 5)
    ws.close()
    await asyncio.wait_for(closed.wait(), 5)
    return ws

with loop:
    ws = loop.run_until_complete(scenario())
threads = [t.name for t in threading.enumerate() if t.name == "upbit-ws-sync"]
print(ws.mode, threads, any(off_gui), "open" in states, len(messages) >= 3)
"""


def test_qasync_mode_runs_on_the_gui_loop(sim: SimThread) -> None:
    """Under a running qasync loop, auto mode uses it: no thread, signals on the GUI thread.

    In its own process: a qasync loop leaves Qt state behind that later tests must not share.
    """
    env = {
        **os.environ,
        "SIM_URL": sim.url,
        "PYTHONPATH": str(ROOT),
        "QT_QPA_PLATFORM": "offscreen",
    }
    result = subprocess.run(
        [sys.executable, "-c", QASYNC_SCENARIO],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "qasync [] False True True", result.stderr


def test_key_problem_at_start_reaches_the_gui(qtbot: QtBot, sim: SimThread) -> None:
    """A key refused at start emits key_problem (on the GUI thread); public still opens."""
    sim.call(sim.sim.revoke_key)
    ws = WebSocketManager(
        base_url=sim.url, config=FAST, credentials=Credentials(*sim.sim.credentials), mode="thread"
    )
    got = Recorder()
    ws.key_problem.connect(got)
    try:
        ws.start()
        qtbot.waitUntil(lambda: bool(got.items), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: ws.states.get("public") == "open", timeout=WAIT_MS)
    finally:
        ws.close()
    assert isinstance(got.items[0], KeyProblem) and got.items[0].problem == "invalid"
    assert got.off_gui_thread == 0


def test_gap_signal_on_overflow(qtbot: QtBot, ws: WebSocketManager) -> None:
    """A slow frame rate over a tiny drop_oldest buffer loses trades: gap(GapEvent) says so."""
    tape = ws.component("tape").subscribe(
        "trade", ["KRW-BTC", "KRW-ETH", "KRW-XRP"], policy="drop_oldest", capacity=1, rate=2.0
    )
    with qtbot.waitSignal(ws.gap, timeout=WAIT_MS) as blocker:
        pass
    gap = blocker.args[0]
    assert isinstance(gap, GapEvent) and gap.reason == "overflow" and gap.subscriber == "tape"
    assert tape.statistics().dropped >= 1
