"""Where the manager runs for a Qt app, and how work crosses between it and the GUI thread.

Two engines, one interface:

* :class:`ThreadEngine`: the manager runs on :mod:`upbit_ws.sync`'s background loop thread and
  the app runs a plain ``QApplication.exec()``. Work goes to the loop with
  ``call_soon_threadsafe``; results come back through a queued Qt signal of a
  :class:`Mailbox` that lives in the GUI thread, so every slot runs there.
* :class:`QasyncEngine`: the manager runs on the qasync loop, which *is* the GUI thread, so
  both directions are plain calls.

:func:`qasync_loop` tells whether a qasync loop runs (or is set) in this thread: that is how
``mode="auto"`` chooses.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from upbit_ws.aio.manager import WebSocketManager as AioManager
from upbit_ws.qt.binding import QObject, Qt, Signal, Slot
from upbit_ws.sync.manager import WebSocketManager as SyncManager

__all__ = ["Engine", "Mailbox", "QasyncEngine", "ThreadEngine", "gui_mailbox", "qasync_loop"]

T = TypeVar("T")


def qasync_loop() -> asyncio.AbstractEventLoop | None:
    """Return the qasync loop running (or set) in this thread, or None."""
    loop = asyncio._get_running_loop()
    if loop is None:
        policy = asyncio.get_event_loop_policy()
        # The loop a qasync app set with set_event_loop() before run_forever() (read without
        # get_event_loop(), which would create one).
        local = getattr(policy, "_local", None)
        loop = getattr(local, "_loop", None)
    if loop is not None and type(loop).__module__.split(".")[0] == "qasync":
        return loop
    return None


class Mailbox(QObject):
    """Runs callables posted from any thread on the thread it lives in (the GUI thread).

    One per GUI thread (:func:`gui_mailbox`), never deleted: work posted to it may hold the
    last reference to a manager, and a QObject must not be deleted inside its own slot.
    """

    posted = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.posted.connect(self._run, Qt.ConnectionType.QueuedConnection)

    @Slot(object)
    def _run(self, work: Callable[[], None]) -> None:
        work()


_MAILBOXES: dict[int, Mailbox] = {}


def gui_mailbox() -> Mailbox:
    """Return the mailbox of the calling (GUI) thread, creating it on first use."""
    ident = threading.get_ident()
    box = _MAILBOXES.get(ident)
    if box is None:
        box = _MAILBOXES[ident] = Mailbox()
    return box


class Engine(Protocol):
    """What the Qt objects need from where the manager runs."""

    loop: asyncio.AbstractEventLoop

    @property
    def aio(self) -> AioManager:
        """Return the asyncio manager."""
        ...

    def start(self, on_done: Callable[[BaseException | None], None]) -> None:
        """Start the manager; call ``on_done(error)`` on the GUI thread when it started."""
        ...

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the loop and return its result (briefly blocks in thread mode)."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` on the loop as a task the engine owns; return at once."""
        ...

    def to_gui(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the GUI thread (from the loop)."""
        ...

    def to_loop(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the loop (from the GUI thread); dropped when the loop is gone."""
        ...

    def close(self, on_done: Callable[[], None]) -> None:
        """Close the manager; call ``on_done`` on the GUI thread when everything stopped."""
        ...


class ThreadEngine:
    """The manager on :mod:`upbit_ws.sync`'s background thread; see the module docs."""

    def __init__(self, manager: SyncManager, mailbox: Mailbox) -> None:
        self.sync = manager
        self.mailbox = mailbox
        self.loop: asyncio.AbstractEventLoop = manager.loop
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def aio(self) -> AioManager:
        """Return the asyncio manager (touch it on the loop only)."""
        return self.sync.aio

    def start(self, on_done: Callable[[BaseException | None], None]) -> None:
        """Start the thread and the manager (blocks the GUI until the manager's start returns)."""
        try:
            self.sync.start()
        except Exception as exc:
            on_done(exc)
            return
        on_done(None)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the loop thread and return its result."""
        result: T = self.sync.call(fn)
        return result

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task on the loop thread."""

        def create() -> None:
            task = self.loop.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        if not self.sync.closed and self.loop.is_running():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(create)
                return
        coro.close()

    def to_gui(self, work: Callable[[], None]) -> None:
        """Post ``work`` to the GUI thread through the mailbox's queued signal."""
        self.mailbox.posted.emit(work)

    def to_loop(self, work: Callable[[], None]) -> None:
        """Schedule ``work`` on the loop thread, if it still runs."""
        if self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(work)

    def close(self, on_done: Callable[[], None]) -> None:
        """Close the manager and join the loop thread (blocks up to its close timeout)."""
        self.sync.close()
        on_done()


class QasyncEngine:
    """The manager on the running qasync loop, in the GUI thread; see the module docs."""

    def __init__(self, manager: AioManager, loop: asyncio.AbstractEventLoop) -> None:
        self._aio = manager
        self.loop = loop
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def aio(self) -> AioManager:
        """Return the asyncio manager."""
        return self._aio

    def start(self, on_done: Callable[[BaseException | None], None]) -> None:
        """Start the manager in a task; ``on_done`` runs when its start() returned."""

        async def run() -> None:
            try:
                await self.aio.start()
            except Exception as exc:
                on_done(exc)
                return
            on_done(None)

        self.spawn(run())

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` now: this is the loop's thread."""
        return fn()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task on the qasync loop."""
        if self.loop.is_closed():
            coro.close()
            return
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def to_gui(self, work: Callable[[], None]) -> None:
        """Run ``work`` now: the loop is the GUI thread."""
        work()

    def to_loop(self, work: Callable[[], None]) -> None:
        """Run ``work`` now: the GUI thread is the loop."""
        work()

    def close(self, on_done: Callable[[], None]) -> None:
        """Close the manager in a task; ``on_done`` runs when it finished."""

        async def run() -> None:
            try:
                await self.aio.aclose()
            finally:
                others = [t for t in self._tasks if t is not asyncio.current_task()]
                for task in others:
                    task.cancel()
                await asyncio.gather(*others, return_exceptions=True)
                on_done()

        if self.loop.is_closed():
            on_done()
            return
        self.spawn(run())
