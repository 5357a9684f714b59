"""The health verdict served on ``/healthz``: built from ``ws.health()``/``ws.statistics()``.

Healthy means every connection the manager runs is ``open`` (a socket up, its subscription's
data fresh) and the manager itself is running. It is stricter than
:meth:`~upbit_ws.aio.manager.WebSocketManager.health`, which also counts ``degraded`` as usable:
``degraded`` is the session's own word for "suspected: silent past what is normal for its
stream, or a ping unanswered past its suspicion deadline, and being probed" (see
:mod:`upbit_ws.core.session`), so a blackholed socket turns the endpoint unhealthy as soon as
it is suspected, before it is declared dead and replaced. The ordinary silences of a sparse
stream, and those of a stream whose rate is not known yet, are probed without it, and a quiet
private connection (myOrder/myAsset stream nothing
most of the time) has no silence probe: both stay ``open`` while their pings are answered.

The document is plain JSON (see ``docs/observability.md`` for every field); nothing in it is a
secret: the reasons are the connections' ``last_error`` texts, which never carry a key or a
token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from upbit_ws.aio.clock import utc_now
from upbit_ws.core.book import WantedStream

if TYPE_CHECKING:
    from upbit_ws.aio.component import ConnectionView
    from upbit_ws.aio.connection import ConnectionStatistics
    from upbit_ws.aio.manager import WebSocketManager

__all__ = ["HealthReport", "health_report"]

#: Key statuses that stop the private connection (``upbit_ws.aio.keys``).
_KEY_PROBLEMS: Final = frozenset({"invalid", "expired", "permission"})


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A health verdict: ``ok``, the ``reasons`` it is not, and the JSON ``document``."""

    ok: bool
    reasons: tuple[str, ...]
    document: dict[str, Any]

    @property
    def status(self) -> int:
        """Return the HTTP status of this verdict: 200 when healthy, else 503."""
        return 200 if self.ok else 503


def health_report(ws: WebSocketManager) -> HealthReport:
    """Return the health verdict of ``ws`` now (cheap: reads snapshots only)."""
    health = ws.health()
    stats = ws.statistics()
    view = ws.subscriptions()
    reasons: list[str] = []
    connections: list[dict[str, Any]] = []
    for conn in health.connections:
        s = stats.public if conn.connection == "public" else stats.private
        assert s is not None  # health lists private only when the manager runs it
        merged = view.public if conn.connection == "public" else view.private
        if s.state != "open":
            reasons.append(_why(s))
        elif s.stale:
            reasons.append(f"{s.connection} connection: {s.stale_reason}")
        connections.append(_connection(s, merged))
    if not health.ok and not reasons:
        reasons.append("the manager is not running (not started yet, or closed)")
    key: dict[str, Any] | None = None
    if stats.key is not None:
        k = stats.key
        if k.status in _KEY_PROBLEMS:
            reasons.append(f"API key {k.status}")
        key = {
            "status": k.status,
            "expires_at": k.expires_at.isoformat() if k.expires_at is not None else None,
            "checks": k.checks,
            "check_failures": k.check_failures,
            "last_check_error": k.last_check_error,
        }
    ok = not reasons
    document: dict[str, Any] = {
        "status": "healthy" if ok else "unhealthy",
        "ok": ok,
        "reasons": reasons,
        "connections": connections,
        "key": key,
        "internal_errors": len(stats.internal_errors),
    }
    return HealthReport(ok, tuple(reasons), document)


def _why(s: ConnectionStatistics) -> str:
    """Say in one line why a connection that is not ``open`` is not healthy.

    A connection without a usable socket says how long it has been down (the outage, not the
    current attempt) and when it tries next.
    """
    if s.state == "degraded":
        age = s.last_frame_age if s.last_frame_age is not None else s.state_age
        return (
            f"{s.connection} connection degraded for {s.state_age:.1f} s: no data for "
            f"{age:.1f} s, the socket is being probed"
        )
    where = f"{s.connection} connection {s.state}"
    if s.down_age is not None:
        where += f", down for {s.down_age:.1f} s"
    if s.retry_in is not None:
        where += f", next connect in {s.retry_in:.1f} s"
        if s.network_watch:
            where += " or as soon as the host answers again"
    if s.last_error:
        return f"{where}: {s.last_error}"
    return where


def _connection(s: ConnectionStatistics, merged: ConnectionView) -> dict[str, Any]:
    return {
        "connection": s.connection,
        "state": s.state,
        "ok": s.state == "open",
        "since": _wall_clock_ago(s.state_age),
        "state_seconds": round(s.state_age, 3),
        "last_frame_age_seconds": (
            round(s.last_frame_age, 3) if s.last_frame_age is not None else None
        ),
        "uptime_seconds": round(s.uptime, 3),
        "down_seconds": round(s.down_age, 3) if s.down_age is not None else None,
        "retry_in_seconds": round(s.retry_in, 3) if s.retry_in is not None else None,
        "network_watch": s.network_watch,
        "socket": s.generation,
        "reconnects": s.reconnects,
        "frames_received": s.frames_received,
        "last_error": s.last_error,
        "subscription": {
            "desired": _by_type(merged.desired),
            "confirmed": _by_type(merged.confirmed),
            "in_flight": merged.in_flight,
            "requests_sent": merged.requests_sent,
        },
    }


def _wall_clock_ago(seconds: float) -> str:
    """Return the UTC time ``seconds`` ago, ISO 8601 to the millisecond."""
    return (utc_now() - timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def _by_type(streams: Iterable[WantedStream]) -> dict[str, list[str]]:
    """Group streams as ``{"ticker": ["KRW-BTC", ...], "orderbook": [...]}`` (sorted)."""
    out: dict[str, set[str]] = {}
    for stream in streams:
        out.setdefault(stream.type, set()).add(stream.code)
    return {kind: sorted(codes) for kind, codes in sorted(out.items())}
