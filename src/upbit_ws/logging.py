"""Logging helpers: structured fields on every record, a JSON formatter for log shippers.

Every record the library logs carries ``connection``, ``component`` and ``event`` (see
:mod:`upbit_ws.aio.logcontext`). :func:`json_formatter` renders one JSON object per line;
:func:`text_formatter` a plain line that shows the fields. Details: ``docs/observability.md``.
"""

from __future__ import annotations

from upbit_ws.aio.logcontext import FIELDS, LogFields, install_log_fields
from upbit_ws.observe.logs import TEXT_FORMAT, JsonFormatter, json_formatter, text_formatter

__all__ = [
    "FIELDS",
    "TEXT_FORMAT",
    "JsonFormatter",
    "LogFields",
    "install_log_fields",
    "json_formatter",
    "text_formatter",
]
