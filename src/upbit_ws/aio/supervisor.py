"""The one supervisor: restart a part stopped by a bug, on the core backoff, and keep a record.

Network faults never reach a supervisor (the sessions classify and retry them); what does is a
bug in the library's own code. A trader wants the feed back rather than a dead part, so every
part that can be restarted runs under :meth:`Supervisor.run`, with one policy:

* the bug is logged once with its traceback and kept as an :class:`InternalError` (the newest
  :data:`INTERNAL_ERRORS_KEPT`, so a repeating bug cannot grow memory); the same record type
  appears in every snapshot (``statistics().internal_errors``);
* the part restarts after a delay drawn from :class:`~upbit_ws.core.backoff.Backoff` (the
  ``BackoffConfig`` of the connection config: first retry within ~100 ms, growing, capped);
* the delay sequence starts over once the part made progress since its last failure: by
  default it ran at least ``BackoffConfig.reset_after`` seconds, or the part's own
  ``progress`` counter moved (a flusher that sent a request, a market load that answered);
* a part may be given up after ``give_up_after`` failures in a row without progress; its
  owner then ends what depends on it (``on_give_up``), so nobody waits on a dead part.

The parts: each connection's driver (its restart is a reconnect, so it waits the session's
reconnect delay instead: ``delay=``), the subscription flushers and the market-list refresher,
and the manager's key loop and connection runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from upbit_ws.aio.clock import Clock, LoopClock
from upbit_ws.core.backoff import Backoff
from upbit_ws.core.config import BackoffConfig

__all__ = ["INTERNAL_ERRORS_KEPT", "InternalError", "Supervisor", "describe_error"]

_log = logging.getLogger("upbit_ws.supervisor")

#: Internal errors kept per supervisor (the newest; a repeating bug must not grow memory).
INTERNAL_ERRORS_KEPT: Final = 32

#: A part: a coroutine function that runs until it is done (or raises on a bug).
Part = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class InternalError:
    """One bug that stopped a part: which part, and what was raised (``"Type: message"``)."""

    part: str
    error: str

    def __str__(self) -> str:
        return f"{self.part}: {self.error}"


def describe_error(exc: BaseException) -> str:
    """Describe an exception by its leaves (a TaskGroup wraps even its body's in a group)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe_error(leaf) for leaf in exc.exceptions)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Supervisor:
    """Run parts and restart them after bugs; see the module docs for the policy.

    ``owner`` prefixes the log lines (``"public connection"``, ``"manager"``), written to
    ``logger`` (the owner's); ``config`` is the backoff the restart delays come from;
    ``clock`` the shell clock; ``stopping``, when set, ends every wait for a restart at once
    (the owner is closing).
    """

    def __init__(
        self,
        owner: str,
        *,
        config: BackoffConfig | None = None,
        clock: Clock | None = None,
        stopping: asyncio.Event | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.owner = owner
        self._log = logger or _log
        self._config = config or BackoffConfig()
        self._clock: Clock = clock or LoopClock()
        self._stopping = stopping or asyncio.Event()
        self._errors: deque[InternalError] = deque(maxlen=INTERNAL_ERRORS_KEPT)
        self._count = 0

    def __repr__(self) -> str:
        return f"<Supervisor {self.owner} internal_errors={self._count}>"

    @property
    def errors(self) -> tuple[InternalError, ...]:
        """Return the newest internal errors (at most :data:`INTERNAL_ERRORS_KEPT`)."""
        return tuple(self._errors)

    @property
    def count(self) -> int:
        """Return how many internal errors happened in all (kept or not)."""
        return self._count

    async def run(
        self,
        name: str,
        part: Part,
        *,
        progress: Callable[[], int] | None = None,
        give_up_after: int | None = None,
        on_crash: Callable[[Exception], None] | None = None,
        on_restart: Callable[[], None] | None = None,
        on_give_up: Callable[[Exception], None] | None = None,
        delay: Callable[[], float] | None = None,
        wait: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        """Run ``part`` until it returns; restart it after each bug, as the policy says.

        ``progress`` is a counter that grows while the part does useful work (default: the
        part ran ``reset_after`` seconds). ``on_crash`` runs right after a bug is recorded
        (let go of what the part held), ``on_restart`` just before the part runs again.
        ``delay`` replaces the backoff's delay (a connection waits its session's reconnect
        delay) and ``wait`` the sleep (it must return early when the owner has news). After
        ``give_up_after`` failures in a row without progress, ``on_give_up`` runs and this
        returns. Returns at once, without restarting, once ``stopping`` is set.
        """
        backoff = Backoff(self._config)
        failures = 0
        mark = progress() if progress is not None else None
        restarting = False
        while True:
            # Without a progress counter, progress is time run (the clock is read only then).
            started = self._clock.now() if progress is None else 0.0
            try:
                if restarting and on_restart is not None:
                    on_restart()  # part of the restart: a bug in it counts as the part's
                await part()
                return
            except Exception as exc:
                # Network faults never get here (the sessions handle them): this is a bug.
                if progress is not None:
                    moved, mark = progress() != mark, progress()
                else:
                    moved = self._clock.now() - started >= self._config.reset_after
                if moved:
                    backoff.reset()
                    failures = 0
                failures += 1
                self._record(name, exc)
                if on_crash is not None:
                    on_crash(exc)
                if give_up_after is not None and failures >= give_up_after:
                    self._log.error(
                        "%s: the %s stopped by an internal error %d times in a row; giving it up",
                        self.owner,
                        name,
                        failures,
                        exc_info=exc,
                        extra={"part": name},
                    )
                    if on_give_up is not None:
                        on_give_up(exc)
                    return
                pause = delay() if delay is not None else backoff.next_delay()
                self._log.error(
                    "%s: the %s stopped by an internal error; restarting it in %.2f s",
                    self.owner,
                    name,
                    pause,
                    exc_info=exc,
                    extra={"part": name, "delay": pause},
                )
            if self._stopping.is_set():
                return
            await (wait or self._wait)(pause)
            if self._stopping.is_set():
                return
            restarting = True

    def _record(self, name: str, exc: Exception) -> None:
        self._count += 1
        self._errors.append(InternalError(part=name, error=describe_error(exc)))

    async def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the owner starts closing."""
        if seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return
