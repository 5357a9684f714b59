"""Observability adapters around the library: health HTTP, Prometheus metrics, JSON logs.

Nothing in ``upbit_ws.core`` or ``upbit_ws.aio`` imports this package (the manager's
``health_port=`` loads it only when asked). :mod:`upbit_ws.observe.prometheus` needs the
``prometheus`` extra and is imported only by whoever scrapes. See ``docs/observability.md``.
"""

from __future__ import annotations

from upbit_ws.aio.logcontext import install_log_fields
from upbit_ws.observe.health import HealthReport, health_report
from upbit_ws.observe.logs import JsonFormatter, json_formatter, text_formatter
from upbit_ws.observe.server import HEALTH_PATH, METRICS_PATH, HealthServer, serve_health

__all__ = [
    "HEALTH_PATH",
    "METRICS_PATH",
    "HealthReport",
    "HealthServer",
    "JsonFormatter",
    "health_report",
    "json_formatter",
    "serve_health",
    "text_formatter",
]

install_log_fields()  # this package's own logger carries the structured fields too
