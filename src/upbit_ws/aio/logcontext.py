"""Structured log fields: which connection, which component, which event a record is about.

Every record the library logs carries three attributes, so a formatter can print them
(``%(connection)s``) and a log shipper can index them (:class:`upbit_ws.logging.JsonFormatter`):

=============  ==================================================================================
``connection``  ``"public"`` or ``"private"`` when the record is about one connection, else None
``component``   the application component (``ws.component(name)``) the record is about, else None
``event``       a short name of what happened: a call's ``extra={"event": ...}``, else the
                logger's name below ``upbit_ws`` (``"connection"``, ``"keys"``, ``"router"``)
=============  ==================================================================================

A call that passes one of them in ``extra`` wins. Otherwise ``connection`` and ``component``
come from two context variables, set where the work starts: a connection's driver
(:meth:`~upbit_ws.aio.connection.ManagedConnection.run`) sets ``connection`` in its task, and
asyncio copies the context into every task created afterwards, and picows runs a socket's
callbacks in the context of the task that opened it, so the connect attempts, the socket reader
and the routing of its frames log with it too. A component's calls (``subscribe``, ``update``,
``aclose``) set ``component`` for as long as they run.

:class:`LogFields` is the :class:`logging.Filter` that fills the fields in. It sits on every
``upbit_ws`` logger: :func:`install_log_fields` puts it there and is called when ``upbit_ws``,
``upbit_ws.simulator`` and ``upbit_ws.observe`` are imported (a test checks that no library
logger is missed). Filters run only when a record is made, never on the hot path otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

__all__ = [
    "COMPONENT",
    "CONNECTION",
    "FIELDS",
    "LogFields",
    "fill_log_fields",
    "install_log_fields",
    "log_context",
]

#: The connection (``"public"``/``"private"``) the current task works for.
CONNECTION: Final[ContextVar[str | None]] = ContextVar("upbit_ws_connection", default=None)
#: The application component whose call is running.
COMPONENT: Final[ContextVar[str | None]] = ContextVar("upbit_ws_component", default=None)
#: The attributes every library record carries.
FIELDS: Final = ("connection", "component", "event")

_ROOT: Final = "upbit_ws"
_PREFIX: Final = _ROOT + "."


def fill_log_fields(record: logging.LogRecord) -> None:
    """Add ``connection``, ``component`` and ``event`` to ``record`` where it lacks them."""
    fields = record.__dict__
    if "connection" not in fields:
        fields["connection"] = CONNECTION.get()
    if "component" not in fields:
        fields["component"] = COMPONENT.get()
    if "event" not in fields:
        name = record.name
        fields["event"] = name[len(_PREFIX) :] if name.startswith(_PREFIX) else name


class LogFields(logging.Filter):
    """Fill in the structured fields of every record that passes; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields (see :func:`fill_log_fields`) and let the record through."""
        fill_log_fields(record)
        return True


_FILTER: Final = LogFields()


def install_log_fields() -> None:
    """Put :class:`LogFields` on the ``upbit_ws`` logger and every existing logger below it.

    Idempotent; loggers created later need another call (the packages that create loggers
    call it when imported).
    """
    names = [_ROOT] + [n for n in logging.root.manager.loggerDict if n.startswith(_PREFIX)]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, LogFields) for f in logger.filters):
            logger.addFilter(_FILTER)


@contextmanager
def log_context(*, component: str) -> Iterator[None]:
    """Mark records logged inside the block (and tasks it starts) with ``component``."""
    token = COMPONENT.set(component)
    try:
        yield
    finally:
        COMPONENT.reset(token)
