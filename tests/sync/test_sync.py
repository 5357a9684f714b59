"""The blocking facade against a real simulator on real sockets (the simulator on its own thread).

Every wait is bounded (``get(timeout=...)``, the simulator's change notifications); nothing
sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sync.helpers import FAST, SimThread, library_threads, sim_thread
from upbit_ws import (
    ConnectionStateChanged,
    Credentials,
    InvalidInputError,
    Ticker,
    UnknownCodeError,
    sync,
)
from upbit_ws.sync import EndOfStream
from upbit_ws.sync.loop import LoopThread

ROOT = Path(__file__).resolve().parents[2]
WITHIN = 5.0


@pytest.fixture
def sim() -> Iterator[SimThread]:
    """A simulator on a background thread."""
    with sim_thread() as running:
        yield running


@pytest.fixture
def ws(sim: SimThread) -> Iterator[sync.WebSocketManager]:
    """A started blocking manager against the simulator; checks for leaks on the way out."""
    manager = sync.WebSocketManager(base_url=sim.url, config=FAST)
    with manager:
        yield manager
    assert manager.loop.is_closed()
    assert not manager.thread.is_alive()


def first(sub: sync.Subscription[Ticker], code: str) -> Ticker:
    """Return the first message of ``code`` within WITHIN seconds (others are skipped)."""
    deadline = time.monotonic() + WITHIN
    while True:
        msg = sub.get(timeout=max(0.0, deadline - time.monotonic()))
        if msg.code == code:
            return msg


def test_subscribe_get_and_iterate(ws: sync.WebSocketManager) -> None:
    """get() and `for msg in sub` return typed messages of the subscribed code."""
    sub = ws.component("coin_list").subscribe("ticker", ["KRW-BTC"])
    msg = sub.get(timeout=WITHIN)
    assert isinstance(msg, Ticker) and msg.code == "KRW-BTC"
    for n, msg in enumerate(sub):
        assert msg.code == "KRW-BTC"
        if n == 1:
            break
    assert sub.statistics().delivered >= 3


def test_update_sends_one_merged_request(ws: sync.WebSocketManager, sim: SimThread) -> None:
    """update() switches codes: new code arrives, the merged request carries both components."""
    ws.component("coin_list").subscribe("ticker", ["KRW-XRP"])
    book = ws.component("orderbook_view").subscribe("orderbook", ["KRW-BTC"], depth=15)
    assert book.get(timeout=WITHIN).code == "KRW-BTC"
    book.update(["KRW-ETH"])
    assert first(book, "KRW-ETH").code == "KRW-ETH"  # type: ignore[arg-type]
    sim.until(
        lambda s: any(
            "orderbook" in str(r.parsed) and "KRW-ETH" in str(r.parsed)
            for c in s.connections()
            for r in c.requests
        )
    )
    sent = {(e["type"], e["code"]) for e in sim.requests()[-1]["entries"]}  # type: ignore[attr-defined]
    assert {("orderbook", "KRW-ETH"), ("ticker", "KRW-XRP")} <= sent
    assert ("orderbook", "KRW-BTC") not in sent
    assert book.codes == ("KRW-ETH",)


def test_errors_keep_their_type_in_the_callers_thread(ws: sync.WebSocketManager) -> None:
    """An unknown code raises UnknownCodeError here, from subscribe and from update."""
    with pytest.raises(UnknownCodeError) as info:
        ws.component("x").subscribe("ticker", ["KRW-NOPE"])
    assert info.value.code == "KRW-NOPE"
    sub = ws.component("x").subscribe("ticker", ["KRW-BTC"])
    with pytest.raises(UnknownCodeError):
        sub.update(["KRW-NOPE"])
    assert sub.codes == ("KRW-BTC",)
    with pytest.raises(InvalidInputError):
        sub.get_batch(max_items=0)


@pytest.mark.parametrize("timeout", [-1, "1", float("nan"), True])
def test_a_timeout_that_is_no_number_of_seconds_is_refused(
    ws: sync.WebSocketManager, timeout: object
) -> None:
    """get(), get_batch(), events(), run() and wait_ready() say what a timeout must be; a
    string raised TypeError from inside, -1 timed out at once and NaN waited as no limit."""
    sub = ws.component("bad-timeouts").subscribe("ticker", ["KRW-BTC"])
    match = "timeout must be .*a number of seconds >= 0"
    with pytest.raises(InvalidInputError, match=match):
        sub.get(timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=match):
        sub.get_batch(timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=match):
        ws.events(timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=match):
        ws.run(asyncio.sleep(0), timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=match):
        ws.wait_ready(timeout)  # type: ignore[arg-type]
    assert sub.get(timeout=WITHIN).code == "KRW-BTC"  # nothing was lost on the way


def test_get_times_out_and_loses_nothing(sim: SimThread) -> None:
    """get(timeout) raises TimeoutError on a quiet stream; the next event is still delivered."""
    keys = Credentials(*sim.sim.credentials)
    with sync.WebSocketManager(base_url=sim.url, credentials=keys) as ws:
        orders = ws.component("orders").subscribe("myOrder")
        with pytest.raises(TimeoutError):
            orders.get(timeout=0.2)
        events = ws.events()
        # The connections may still be opening: read their events until a quiet moment.
        for _ in range(100):
            try:
                events.get(timeout=0.1)
            except TimeoutError:
                break
        else:
            pytest.fail("the event stream never went quiet")
        sim.call(sim.sim.abort)
        event = events.get(timeout=WITHIN)
        assert isinstance(event, ConnectionStateChanged)


def test_batches_read_what_waits(ws: sync.WebSocketManager) -> None:
    """get_batch() returns 1..max_items messages in one hand-off."""
    sub = ws.component("coin_list").subscribe("ticker", ["KRW-*"])
    seen: set[str] = set()
    deadline = time.monotonic() + WITHIN
    while len(seen) < 5:
        batch = sub.get_batch(max_items=50, timeout=max(0.0, deadline - time.monotonic()))
        assert 1 <= len(batch) <= 50
        seen.update(m.code for m in batch)
    assert all(code.startswith("KRW-") for code in seen)


def test_nothing_is_read_ahead(ws: sync.WebSocketManager) -> None:
    """Only what the caller took leaves the buffer; the rest waits there, under its policy."""
    sub = ws.component("coin_list").subscribe("ticker", ["KRW-*"])
    taken = [sub.get(timeout=WITHIN) for _ in range(5)]
    # A second subscriber of the same frames is the clock: every frame it reads was pushed to
    # the first one too, in the same dispatch.
    clock = ws.component("clock").subscribe("ticker", ["KRW-*"])
    for _ in range(30):
        clock.get(timeout=WITHIN)
    stats = sub.statistics()
    assert stats.delivered == len(taken) == 5
    assert stats.pushed >= 30 and stats.depth >= 1 and stats.policy == "latest"


def test_close_ends_iteration(ws: sync.WebSocketManager) -> None:
    """close() ends `for` at once and get() raises EndOfStream; closing twice is fine."""
    sub = ws.component("x").subscribe("ticker", ["KRW-BTC"])
    sub.get(timeout=WITHIN)
    sub.close()
    sub.close()
    assert list(sub) == []
    with pytest.raises(EndOfStream):
        sub.get(timeout=WITHIN)
    assert ws.component("x").subscriptions() == ()


def test_manager_close_wakes_a_blocked_reader(sim: SimThread) -> None:
    """A thread blocked in `for msg in sub` ends when another thread closes the manager."""
    ws = sync.WebSocketManager(
        base_url=sim.url, config=FAST, credentials=Credentials(*sim.sim.credentials)
    )
    ws.start()
    quiet = ws.component("orders").subscribe("myOrder")
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.extend(quiet), name="test-reader")
    reader.start()
    ws.close()
    reader.join(WITHIN)
    assert not reader.is_alive() and got == []
    assert library_threads() == [] and ws.loop.is_closed() and ws.closed


def test_fault_and_recovery(ws: sync.WebSocketManager, sim: SimThread) -> None:
    """An aborted socket is reported through events() and data flows again after it."""
    sub = ws.component("x").subscribe("ticker", ["KRW-BTC"])
    sub.get(timeout=WITHIN)
    events = ws.events(timeout=WITHIN)
    sim.call(sim.sim.abort)
    states = []
    for event in events:
        if isinstance(event, ConnectionStateChanged):
            states.append(event.new)
            if event.new == "open":
                break
    assert states[0] == "reconnecting" and states[-1] == "open"
    sim.until(lambda s: any(c.entries for c in s.connections()))
    first(sub, "KRW-BTC")
    assert ws.health().ok
    assert ws.statistics().public.reconnects >= 1


def test_no_thread_or_loop_left_after_close(sim: SimThread) -> None:
    """After `with`, and after a start that failed, no thread is left and the loop is closed."""
    before = threading.active_count()
    with sync.WebSocketManager(base_url=sim.url, config=FAST) as ws:
        assert ws.thread.is_alive()
        ws.component("x").subscribe("ticker", ["KRW-BTC"]).get(timeout=WITHIN)
    assert ws.loop.is_closed() and not ws.thread.is_alive()
    assert ws.health().ok is False  # snapshots still work after close
    bad = sync.WebSocketManager(base_url="ftp://nowhere")
    with pytest.raises(InvalidInputError):
        bad.start()
    assert bad.loop.is_closed() and not bad.thread.is_alive()
    assert library_threads() == [] and threading.active_count() == before
    with pytest.raises(InvalidInputError):
        ws.component("late")


def run_child(sim: SimThread, body: str) -> subprocess.Popen[str]:
    """Start a Python process that runs ``body`` against the simulator; URL in ``SIM_URL``."""
    env = {**os.environ, "SIM_URL": sim.url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(body)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


#: A child blocked in get() on a quiet private stream; ``{interrupt}`` is what sends it the
#: SIGINT from inside (nothing: the test does, from outside). If Ctrl-C handling hangs, every
#: thread's stack goes to stderr, which the test's assertion shows (how the loop-thread case
#: was found).
_BLOCKED_CHILD = """
import faulthandler, os, signal, threading
# Ctrl-C as from a terminal: a shell without job control starts background commands with
# SIGINT ignored, and the child would inherit that (the suite run with `&`).
signal.signal(signal.SIGINT, signal.default_int_handler)
from upbit_ws import Credentials, sync
from tests.sync.helpers import FAST
from upbit_ws.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
keys = Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
try:
    with sync.WebSocketManager(base_url=os.environ["SIM_URL"], config=FAST,
                               credentials=keys) as ws:
        orders = ws.component("orders").subscribe("myOrder")
        faulthandler.dump_traceback_later(15, exit=True)
        {interrupt}
        print("blocked", flush=True)
        orders.get()
except KeyboardInterrupt:
    faulthandler.cancel_dump_traceback_later()
    alive = [t.name for t in threading.enumerate() if t.name == "upbit-ws-sync"]
    print("interrupted", alive, ws.loop.is_closed(), flush=True)
"""


def interrupted_child(sim: SimThread, *, interrupt: str = "pass", signal_it: bool) -> None:
    """Run the blocked child, send SIGINT (from here if ``signal_it``), check it ended cleanly."""
    child = run_child(sim, _BLOCKED_CHILD.format(interrupt=interrupt))
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "blocked"
        if signal_it:
            child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert out.strip() == "interrupted [] True"


def test_ctrl_c_in_a_blocked_get_shuts_down(sim: SimThread) -> None:
    """SIGINT while the main thread waits in get() raises KeyboardInterrupt; the thread ends."""
    interrupted_child(sim, signal_it=True)


def test_ctrl_c_handled_by_another_thread_still_interrupts_a_blocked_get(sim: SimThread) -> None:
    """A SIGINT the kernel hands to a thread other than the main one (here one of the app's:
    the library's own block it, below) only sets a flag for the main thread, which an untimed
    lock wait never looks at: get() would hang for ever. The waits come back to the
    interpreter every SIGNAL_SLICE, so KeyboardInterrupt is raised all the same.
    """
    kill = (
        "threading.Timer(0.5, lambda: signal.pthread_kill(threading.get_ident(), "
        "signal.SIGINT)).start()"
    )
    interrupted_child(sim, interrupt=kill, signal_it=False)


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_the_loop_thread_leaves_ctrl_c_to_the_main_thread() -> None:
    """The kernel hands a process's SIGINT to any thread that does not block it, and Python
    acts on it only in the main thread. The loop thread and the threads it starts (the
    resolver's) block SIGINT and SIGTERM, so they reach a thread that acts on them at once.
    """
    runner = LoopThread(name="test-signals")
    runner.start()
    try:
        on_loop = runner.call(signal.pthread_sigmask, signal.SIG_BLOCK, ())
        started_there = runner.run(asyncio.to_thread(signal.pthread_sigmask, signal.SIG_BLOCK, ()))
    finally:
        runner.stop()
    assert {signal.SIGINT, signal.SIGTERM} <= on_loop
    assert {signal.SIGINT, signal.SIGTERM} <= started_there
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, ())  # ours untouched


def test_interpreter_exit_closes_a_forgotten_manager(sim: SimThread) -> None:
    """A manager never closed is closed at interpreter exit: the process ends, cleanly."""
    child = run_child(
        sim,
        """
        import atexit, threading
        state = {}
        def check():  # registered first, so it runs after the library's exit hook
            alive = [t.name for t in threading.enumerate() if t.name == "upbit-ws-sync"]
            print("at exit", alive, state["ws"].loop.is_closed(), flush=True)
        atexit.register(check)
        import os
        from upbit_ws import sync
        ws = state["ws"] = sync.WebSocketManager(base_url=os.environ["SIM_URL"])
        ws.start()
        ws.component("x").subscribe("ticker", ["KRW-BTC"]).get(timeout=5)
        print("streaming", flush=True)
        """,
    )
    try:
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert out.splitlines() == ["streaming", "at exit [] True"], err
    sim.until(lambda s: not s.connections())


def test_blocking_readiness(sim: SimThread) -> None:
    """ready_timeout makes `with` wait for readiness; wait_ready() blocks until confirmed."""
    keys = Credentials(*sim.sim.credentials)
    with sync.WebSocketManager(
        base_url=sim.url, config=FAST, credentials=keys, ready_timeout=WITHIN
    ) as ws:
        assert ws.health().ok
        ws.component("x").subscribe("ticker", ["KRW-BTC"])
        ws.wait_ready(timeout=WITHIN)
        view = ws.subscriptions()
        assert set(view.public.confirmed) == set(view.public.desired) != set()
