"""Log formatters: one JSON object per line for log shippers, and a plain one with the fields.

Every record the library logs carries ``connection``, ``component`` and ``event``
(:mod:`upbit_ws.aio.logcontext`); these formatters print them, and fill them in for records
from other loggers too (picows, aiohttp, the application), so one handler serves all::

    import logging, upbit_ws.logging

    handler = logging.StreamHandler()
    handler.setFormatter(upbit_ws.logging.json_formatter())
    logging.getLogger().addHandler(handler)

A JSON line holds ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``,
the three fields, every ``extra`` the call passed (``reason``, ``attempt``, ``error_name``...),
and ``exception`` (the formatted traceback) when there is one. Values that are not JSON types
are written as their ``str()``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

from upbit_ws.aio.logcontext import FIELDS, fill_log_fields

__all__ = ["TEXT_FORMAT", "JsonFormatter", "json_formatter", "text_formatter"]

#: The plain format of :func:`text_formatter`.
TEXT_FORMAT: Final = (
    "%(asctime)s %(levelname)s %(name)s [%(connection)s/%(component)s] %(event)s: %(message)s"
)

# What every LogRecord has: anything else on a record came from ``extra``.
_STANDARD: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "connection", "component", "event"}
)


class JsonFormatter(logging.Formatter):
    """Format a record as one line of JSON (see the module docs for the keys)."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one JSON object on one line."""
        fill_log_fields(record)
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "connection": record.__dict__["connection"],
            "component": record.__dict__["component"],
            "event": record.__dict__["event"],
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    """The stdlib formatter, with the structured fields filled in (``-`` for none)."""

    def format(self, record: logging.LogRecord) -> str:
        fill_log_fields(record)
        fields = record.__dict__
        if any(fields[name] is None for name in FIELDS):
            # A copy: the record itself keeps None for the other handlers (JSON writes null).
            record = logging.makeLogRecord(fields)
            for name in FIELDS:
                if fields[name] is None:
                    record.__dict__[name] = "-"
        return super().format(record)


def json_formatter() -> JsonFormatter:
    """Return a formatter that renders each record as one JSON object per line."""
    return JsonFormatter()


def text_formatter(fmt: str = TEXT_FORMAT) -> logging.Formatter:
    """Return a plain formatter whose ``fmt`` may name ``%(connection)s`` and the others."""
    return _TextFormatter(fmt)
