"""The background event loop: one thread that runs one asyncio loop for a blocking facade.

:class:`LoopThread` owns the thread and the loop. Callers in any other thread hand work to it
with :meth:`LoopThread.call` (a plain function, run on the loop) and :meth:`LoopThread.run` (a
coroutine); both block until the result is back and raise the loop side's exception, with its
original type, in the caller's thread.

Ctrl-C: the kernel hands a process's SIGINT to any thread that does not block it, and when it
picks a thread other than the main one Python only sets a flag that the main thread acts on
when it next runs Python code, which an untimed lock wait never does (the caller would hang in
``get()`` for ever). So the loop thread blocks SIGINT and SIGTERM from its first line (and the
threads it starts, such as the resolver's, inherit that): a Ctrl-C goes to a thread that can
act on it, and interrupts a caller blocked in ``get()`` at once. Should one still land on
another thread (one of the application's), callers wait on a ``concurrent.futures.Future`` (a
condition variable underneath) in slices of ``SIGNAL_SLICE`` seconds and so come back to the
interpreter, which acts on the flag. :func:`wait_result` and
:meth:`~upbit_ws.sync.handoff.Handoff.take` wait that way.

:meth:`LoopThread.stop` runs a last coroutine (the manager's ``aclose()``), cancels whatever
is still scheduled, shuts down async generators and the default executor, stops and closes
the loop and joins the thread. The thread is a daemon so an application that forgets to close
cannot hang the interpreter at exit (CPython joins non-daemon threads *before* ``atexit``
runs); the facade registers a ``weakref.finalize`` that stops it at exit or when the facade is
garbage collected.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Literal, TypeVar

from upbit_ws.aio.logcontext import install_log_fields
from upbit_ws.core.constants import check_timeout
from upbit_ws.core.errors import InvalidInputError

__all__ = ["LEFT_TO_THE_MAIN_THREAD", "SIGNAL_SLICE", "STOP_TIMEOUT", "LoopThread", "wait_result"]

T = TypeVar("T")

_log = logging.getLogger("upbit_ws.sync")
install_log_fields()  # a logger made after the package's call needs its own

#: How long :meth:`LoopThread.stop` waits for the last coroutine and the loop's shutdown.
STOP_TIMEOUT: Final = 10.0
#: The longest a blocked caller waits in one piece (see the module docs: a Ctrl-C delivered
#: to another thread is acted on by the main thread within this).
SIGNAL_SLICE: Final = 0.1
#: What the loop thread blocks, so that the kernel hands them to a thread that can act on them
#: (the main thread runs Python's handlers): Ctrl-C, and the stop a service manager sends.
LEFT_TO_THE_MAIN_THREAD: Final = frozenset({signal.SIGINT, signal.SIGTERM})


def wait_result(future: concurrent.futures.Future[T], timeout: float | None) -> T:
    """Return ``future.result(timeout)``, waiting in slices so that Ctrl-C gets through.

    Raises ``TimeoutError`` when ``timeout`` (seconds; None: for ever) passes first, and the
    future's own exception when it has one.
    """
    timeout = check_timeout(timeout)
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        left = SIGNAL_SLICE if end is None else min(SIGNAL_SLICE, end - time.monotonic())
        done, _ = concurrent.futures.wait((future,), timeout=max(0.0, left))
        if done:
            return future.result()
        if end is not None and time.monotonic() >= end:
            raise TimeoutError(f"no result within {timeout:g} s")


_State = Literal["new", "running", "stopping", "stopped"]


class LoopThread:
    """One daemon thread running one asyncio event loop; see the module docs."""

    def __init__(self, *, name: str = "upbit-ws-sync") -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._state: _State = "new"
        self._lock = threading.Lock()
        self._started = threading.Event()

    def __repr__(self) -> str:
        return f"<LoopThread {self.name} {self._state}>"

    @property
    def thread(self) -> threading.Thread:
        """Return the background thread."""
        return self._thread

    @property
    def running(self) -> bool:
        """Tell whether the loop accepts work (started and not stopping)."""
        return self._state == "running"

    def in_loop_thread(self) -> bool:
        """Tell whether the caller runs on the loop's thread."""
        return threading.current_thread() is self._thread

    def start(self) -> None:
        """Start the thread and wait until its loop runs."""
        with self._lock:
            if self._state != "new":
                raise InvalidInputError(f"the loop thread can start once; it is {self._state}")
            self._state = "running"
        self._thread.start()
        self._started.wait()

    def _main(self) -> None:
        if hasattr(signal, "pthread_sigmask"):  # POSIX; Windows delivers Ctrl-C its own way
            signal.pthread_sigmask(signal.SIG_BLOCK, LEFT_TO_THE_MAIN_THREAD)
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        try:
            self.loop.run_forever()
        finally:
            self._finish()

    def _finish(self) -> None:
        """Cancel what is left, shut the loop's parts down and close it (on the thread)."""
        loop = self.loop
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    # --- handing work over ------------------------------------------------------------------

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; return a future the caller can wait on."""
        self._check_running(coro)
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and return its result here (its exception is raised here).

        ``timeout`` bounds the wait (``TimeoutError``; the coroutine is then cancelled). If the
        wait is interrupted (Ctrl-C), the coroutine is cancelled too.
        """
        if self.in_loop_thread():
            coro.close()
            raise InvalidInputError("run() waits for the loop; it cannot be called on the loop")
        try:
            timeout = check_timeout(timeout)  # before the coroutine runs with nobody waiting
        except InvalidInputError:
            coro.close()
            raise
        future = self.submit(coro)
        try:
            return wait_result(future, timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise
        except BaseException:
            future.cancel()
            raise

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop's thread and return its result here."""
        if self.in_loop_thread():
            return fn(*args)
        if self._state != "running":
            raise InvalidInputError(f"the manager's loop is {self._state}: nothing can run on it")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(work)
        return wait_result(future, None)

    def call_soon(self, fn: Callable[..., object], *args: Any) -> bool:
        """Schedule ``fn(*args)`` on the loop without waiting; False when the loop is gone."""
        if self._state not in ("running", "stopping"):
            return False
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed between the check and the call
            return False
        return True

    def _check_running(self, coro: Awaitable[Any]) -> None:
        if self._state != "running":
            if isinstance(coro, Coroutine):
                coro.close()
            raise InvalidInputError(f"the manager's loop is {self._state}: nothing can run on it")

    # --- shutdown ---------------------------------------------------------------------------

    def stop(
        self,
        last: Callable[[], Coroutine[Any, Any, None]] | None = None,
        *,
        timeout: float = STOP_TIMEOUT,
    ) -> None:
        """Run ``last()`` on the loop, then stop and close the loop and join the thread.

        Idempotent; safe at interpreter exit. Not callable from the loop's own thread.
        """
        if self.in_loop_thread():
            raise InvalidInputError("stop() joins the loop thread; it cannot run on that thread")
        with self._lock:
            state = self._state
            if state in ("stopping", "stopped"):
                joining = state == "stopping"
            else:
                self._state = "stopping"
                joining = False
        if state == "new":
            self.loop.close()
            self._state = "stopped"
            return
        if joining or state == "stopped":
            self._thread.join(timeout)
            return
        try:
            if last is not None:
                future = asyncio.run_coroutine_threadsafe(last(), self.loop)
                try:
                    wait_result(future, timeout)
                except concurrent.futures.TimeoutError:
                    _log.warning("closing took longer than %.1f s; cancelling it", timeout)
                    future.cancel()
                except Exception:
                    _log.exception("closing the manager failed")
        finally:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
            if self._thread.is_alive():
                _log.error("the loop thread %s did not stop within %.1f s", self.name, timeout)
            self._state = "stopped"
