"""Hand items from the loop thread to a blocked caller, one request at a time.

A :class:`Handoff` lets a caller in another thread take the next item of an async source (a
subscription's ``__anext__``, its ``batches()``, an event stream) without a queue in front of
the source's own bounded buffer: nothing is fetched until a caller asks, and at most one item
is ever outside the buffer (the one being handed over). Overflow policies therefore apply
exactly as for an async consumer: while the caller works on a message, newer ones wait in the
subscription's buffer and are conflated or dropped there, by its policy.

How a request travels (measured in ``benchmarks/sync_handoff.py``, which is faster than
``asyncio.run_coroutine_threadsafe(anext(sub))`` per message):

1. the caller, holding the condition, records what to fetch and wakes the pump with
   ``loop.call_soon_threadsafe(event.set)`` (one self-pipe write);
2. one long-lived pump task on the loop awaits the fetch (no task per message) and puts the
   result, a value, the end of the stream or an exception, in the one-item slot, then
   notifies the condition;
3. the caller takes it. A caller that times out leaves its request outstanding: the item it
   brings stays in the slot for the next call, so nothing is lost.

The end of the stream and an exception stay in the slot: every later call sees them too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar, cast

from upbit_ws.core.constants import check_timeout
from upbit_ws.sync.loop import SIGNAL_SLICE, LoopThread

__all__ = ["END", "Ended", "Handoff"]

R = TypeVar("R")


class Ended:
    """The marker a :class:`Handoff` returns when its source has ended."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


#: The end of a source (it raised ``StopAsyncIteration`` or the loop shut down).
END: Final = Ended()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_EMPTY: Final = object()


class Handoff:
    """Take items of an async source from another thread; see the module docs."""

    def __init__(self, runner: LoopThread, *, name: str) -> None:
        self._runner = runner
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._slot: object = _EMPTY
        self._asked = False
        self._fetch: Callable[[], Awaitable[Any]] | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._ended = False

    def __repr__(self) -> str:
        return f"<Handoff {self._name} asked={self._asked} ended={self._ended}>"

    def take(self, fetch: Callable[[], Awaitable[R]], timeout: float | None) -> R | Ended:
        """Return the next item ``fetch()`` gives on the loop, or END; raise its exception.

        ``timeout`` (seconds, None waits for ever) raises ``TimeoutError`` when nothing came;
        one that is no number >= 0 raises InvalidInputError.
        """
        timeout = check_timeout(timeout)
        with self._cond:
            idle = self._slot is _EMPTY and not self._asked and not self._ended
            if idle and not self._ask(fetch):
                self._ended = True
            if not self._wait(timeout):
                raise TimeoutError(f"nothing arrived within {timeout:g} s")
            item = self._slot
            if item is END:
                return END
            if isinstance(item, _Failure):
                raise item.error
            self._slot = _EMPTY
            return cast(R, item)

    def _wait(self, timeout: float | None) -> bool:
        """Wait (holding the condition) until an item is ready; False when ``timeout`` passed.

        In slices of ``SIGNAL_SLICE``, so that a Ctrl-C the kernel handed to a thread other
        than the main one still interrupts a blocked caller (see :mod:`upbit_ws.sync.loop`).
        """
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SIGNAL_SLICE if end is None else min(SIGNAL_SLICE, end - time.monotonic())
            if self._cond.wait_for(self._ready, max(0.0, left)):
                return True
            if end is not None and time.monotonic() >= end:
                return False

    def _ready(self) -> bool:
        if self._slot is _EMPTY and self._ended and not self._asked:
            self._slot = END
        return self._slot is not _EMPTY

    def _ask(self, fetch: Callable[[], Awaitable[Any]]) -> bool:
        """Send a request to the pump (starting it on first use); False if the loop is gone."""
        self._fetch = fetch
        self._asked = True
        if self._runner.call_soon(self._on_loop_ask):
            return True
        self._asked = False
        return False

    # --- on the loop ------------------------------------------------------------------------

    def _on_loop_ask(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._pump(), name=f"upbit-ws-sync:{self._name}"
            )
        assert self._wake is not None
        self._wake.set()

    async def _pump(self) -> None:
        assert self._wake is not None
        wake = self._wake
        try:
            while True:
                await wake.wait()
                wake.clear()
                fetch = self._fetch
                assert fetch is not None
                try:
                    result: object = await fetch()
                except (StopAsyncIteration, asyncio.CancelledError):
                    self._put(END)
                    return
                except BaseException as exc:  # handed to the caller, raised there
                    self._put(_Failure(exc))
                    return
                self._put(result)
        finally:
            # Cancelled while idle (the loop shuts down): waiting callers see the end.
            with self._cond:
                self._ended = True
                self._asked = False
                self._cond.notify_all()

    def _put(self, result: object) -> None:
        with self._cond:
            self._slot = result
            self._asked = False
            if result is END or isinstance(result, _Failure):
                self._ended = True
            self._cond.notify_all()
