"""What every command shares: run a coroutine, turn a user's mistake into one line, quit on ^C.

A mistake (a bad code, missing credentials, an unreachable URL, a port in use) must read as one
clear line on stderr with a non-zero exit, never a traceback. :func:`run` does that for the
library's own errors and the operating system's; a command raises :class:`click.ClickException`
(or :class:`click.UsageError`) for what it checks itself. Ctrl-C ends a command with exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click

from upbit_ws.core.errors import UpbitWsError

__all__ = ["InputError", "OneLineCommand", "interruptible", "quiet_logging", "run"]

T = TypeVar("T")


class InputError(click.ClickException):
    """The user's input is wrong: one line on stderr, exit 2 (click's usage-error status)."""

    exit_code = 2


class OneLineCommand(click.Command):
    """A command whose usage errors are one line (``Error: ...``), not click's usage block."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse the arguments; a bad one raises :class:`InputError` naming ``--help``."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise InputError(
                f"{_one_line(exc.format_message())} (see upbit-ws {info_name} --help)"
            ) from None


def quiet_logging(*, verbose: bool) -> None:
    """Show the library's log lines only with ``-v`` (a command says what matters itself)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.CRITICAL,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


def run(main: Coroutine[Any, Any, T]) -> T | None:
    """Run ``main``; a library or OS error becomes one line and exit 1, Ctrl-C exit 0."""
    try:
        return asyncio.run(main)
    except KeyboardInterrupt:
        return None
    except click.ClickException:
        raise
    except UpbitWsError as exc:
        raise click.ClickException(_one_line(str(exc))) from None
    except OSError as exc:
        raise click.ClickException(_one_line(f"{exc.strerror or exc}")) from None


async def interruptible(work: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run ``work(stop)``; SIGINT and SIGTERM set ``stop`` so it can end cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            continue
        handled.append(signum)
    try:
        return await work(stop)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def _one_line(text: str) -> str:
    return " ".join(text.split())
