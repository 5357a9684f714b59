"""Prometheus metrics of a manager: a collector that reads ``statistics()`` at scrape time.

Needs the ``prometheus`` extra (``pip install 'upbit-ws[prometheus]'``); nothing else in the
library imports this module. The library keeps its own counters on the hot path (plain integer
stores); this collector only reads the snapshots when Prometheus scrapes, so metrics cost
nothing between scrapes::

    from prometheus_client import REGISTRY
    from upbit_ws.observe.prometheus import UpbitCollector

    REGISTRY.register(UpbitCollector(ws))   # or serve_health(ws), which serves /metrics itself

Every metric name is listed with its meaning in ``docs/observability.md``. Latencies are
exported as Prometheus *summaries* (quantiles 0.5, 0.9 and 0.99, ``_count`` and ``_sum``)
because that is what the library keeps: a fixed-bucket sketch summarised as percentiles
(:class:`~upbit_ws.aio.router.LatencySummary`, percentiles accurate to its 20 % buckets). The
exchange-to-client latency is sampled (one frame in
:data:`~upbit_ws.aio.router.LATENCY_SAMPLE_EVERY`), so its ``_count`` counts samples, not
frames. Each registry takes one collector per manager (two would export the same names).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Final, get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import CollectorRegistry

from upbit_ws.aio.keys import KeyStatus
from upbit_ws.aio.router import LatencySummary
from upbit_ws.core.events import ConnectionState
from upbit_ws.observe.health import health_report

if TYPE_CHECKING:
    from upbit_ws.aio.channel import ChannelStatistics
    from upbit_ws.aio.connection import ConnectionStatistics
    from upbit_ws.aio.manager import ManagerStatistics, WebSocketManager

__all__ = ["CONTENT_TYPE", "UpbitCollector", "metrics_text"]

#: The content type of :func:`metrics_text` (the classic text format every Prometheus reads).
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4

_STATES: Final[tuple[str, ...]] = get_args(ConnectionState)
_KEY_STATUSES: Final[tuple[str, ...]] = get_args(KeyStatus)
_QUANTILES: Final = (("0.5", "p50_ms"), ("0.9", "p90_ms"), ("0.99", "p99_ms"))


class UpbitCollector:
    """A Prometheus collector of one manager's snapshots; register it on a registry."""

    def __init__(self, ws: WebSocketManager) -> None:
        self._ws = ws

    def __repr__(self) -> str:
        return f"UpbitCollector({self._ws!r})"

    def collect(self) -> Iterator[Metric]:
        """Read ``statistics()`` and ``health()`` now and yield every metric family."""
        ws = self._ws
        stats = ws.statistics()
        conns = [c for c in (stats.public, stats.private) if c is not None]
        yield _gauge(
            "upbit_ws_healthy",
            "1 when /healthz would answer 200: every connection open and data fresh.",
            [({}, 1.0 if health_report(ws).ok else 0.0)],
        )
        yield from _connections(conns)
        channels = [stats.subscriptions.public]
        if stats.private is not None:
            channels.append(stats.subscriptions.private)
        yield from _channels(channels)
        yield from _subscriptions(stats)
        yield from _manager(stats)


def metrics_text(ws: WebSocketManager) -> bytes:
    """Return the metrics of ``ws`` in the Prometheus text format (one scrape)."""
    registry = CollectorRegistry()
    registry.register(UpbitCollector(ws))
    return generate_latest(registry)


# ---------------------------------------------------------------------------------------------


_Samples = Iterable[tuple[Mapping[str, str], float]]


def _counter(name: str, doc: str, samples: _Samples) -> CounterMetricFamily:
    rows = list(samples)
    labels = sorted(rows[0][0]) if rows else []
    family = CounterMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric([values[k] for k in labels], value)
    return family


def _gauge(name: str, doc: str, samples: _Samples) -> GaugeMetricFamily:
    rows = list(samples)
    labels = sorted(rows[0][0]) if rows else []
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric([values[k] for k in labels], value)
    return family


def _summary(name: str, doc: str, rows: Iterable[tuple[str, LatencySummary]]) -> Metric:
    """A summary in seconds from latency summaries in ms: quantiles, ``_count``, ``_sum``."""
    family = Metric(name, doc, "summary")
    for connection, summary in rows:
        labels = {"connection": connection}
        for quantile, field in _QUANTILES:
            value = getattr(summary, field)
            if value is not None:
                family.add_sample(name, {**labels, "quantile": quantile}, value / 1000.0)
        total = (summary.mean_ms or 0.0) * summary.count / 1000.0
        family.add_sample(name + "_count", labels, float(summary.count))
        family.add_sample(name + "_sum", labels, total)
    return family


def _per_connection(
    conns: list[ConnectionStatistics], field: str
) -> list[tuple[dict[str, str], float]]:
    return [({"connection": c.connection}, float(getattr(c, field))) for c in conns]


_CONNECTION_COUNTERS: Final = (
    ("upbit_ws_connects_total", "connects", "Connect attempts."),
    ("upbit_ws_connection_opens_total", "opens", "Sockets opened."),
    ("upbit_ws_reconnects_total", "reconnects", "Sockets opened after the first."),
    ("upbit_ws_connection_failures_total", "failures", "Sockets or connects that failed."),
    (
        "upbit_ws_connections_declared_dead_total",
        "declared_dead",
        "Sockets declared dead by keepalive (no pong) or a connect timeout, then aborted.",
    ),
    (
        "upbit_ws_hedges_total",
        "hedges",
        "Spare sockets opened beside one under suspicion (a hedge, issue #9).",
    ),
    ("upbit_ws_hedges_won_total", "hedges_won", "Spare sockets that took over (proved first)."),
    (
        "upbit_ws_hedges_cancelled_total",
        "hedges_cancelled",
        "Spare sockets closed because the old socket answered (or ended) first.",
    ),
    (
        "upbit_ws_hedges_failed_total",
        "hedges_failed",
        "Spare sockets that failed to connect or prove themselves (the pong deadline decided).",
    ),
    (
        "upbit_ws_network_probes_total",
        "network_probes",
        "TCP probes of the host during long reconnect waits after unreached connects.",
    ),
    (
        "upbit_ws_network_returns_total",
        "network_returns",
        "Reconnect waits ended early because a probe found the host reachable again.",
    ),
    ("upbit_ws_pings_sent_total", "pings_sent", "WebSocket pings sent."),
    ("upbit_ws_pongs_received_total", "pongs_received", "WebSocket pongs received."),
    ("upbit_ws_frames_received_total", "frames_received", "Frames received (every kind)."),
    ("upbit_ws_bytes_received_total", "bytes_received", "Payload bytes received."),
    (
        "upbit_ws_connection_error_frames_total",
        "error_frames",
        "Error frames seen on the sockets, before the subscription layer too (by name: "
        "upbit_ws_error_frames_total).",
    ),
    ("upbit_ws_messages_sent_total", "messages_sent", "Frames sent (subscription requests)."),
    ("upbit_ws_bytes_sent_total", "bytes_sent", "Payload bytes sent."),
    (
        "upbit_ws_send_limiter_waits_total",
        "send_waits",
        "Sends held back by the per-connection message limiter (5/s, 100/min).",
    ),
    (
        "upbit_ws_send_limiter_wait_seconds_total",
        "send_wait_seconds",
        "Seconds sends waited for the message limiter.",
    ),
    (
        "upbit_ws_connect_limiter_waits_total",
        "connect_waits",
        "Connects of this connection held back by the process-wide connect limiter.",
    ),
    (
        "upbit_ws_connect_limiter_wait_seconds_total",
        "connect_wait_seconds",
        "Seconds this connection's connects waited for the connect limiter.",
    ),
    (
        "upbit_ws_listener_errors_total",
        "listener_errors",
        "Exceptions raised by the subscription layer on a frame, open or close (bugs).",
    ),
    (
        "upbit_ws_connection_internal_errors_total",
        "internal_error_count",
        "Bugs in the connection's own code it recovered from.",
    ),
)


def _connections(conns: list[ConnectionStatistics]) -> Iterator[Metric]:
    yield _gauge(
        "upbit_ws_connection_state",
        "1 for the state each connection is in, 0 for the others.",
        [
            ({"connection": c.connection, "state": state}, 1.0 if c.state == state else 0.0)
            for c in conns
            for state in _STATES
        ],
    )
    yield _gauge(
        "upbit_ws_connection_state_seconds",
        "Seconds each connection has been in its current state.",
        _per_connection(conns, "state_age"),
    )
    yield _gauge(
        "upbit_ws_connection_uptime_seconds",
        "Seconds the current socket has been open (0 without one).",
        _per_connection(conns, "uptime"),
    )
    yield _gauge(
        "upbit_ws_connection_last_frame_age_seconds",
        "Seconds since the last frame or pong on the current socket (absent without one).",
        [
            ({"connection": c.connection}, c.last_frame_age)
            for c in conns
            if c.last_frame_age is not None
        ],
    )
    yield _gauge(
        "upbit_ws_connection_down_seconds",
        "Seconds the connection has had no usable socket: the whole outage, where the state's"
        " age restarts at every attempt (0 while it has one).",
        [({"connection": c.connection}, c.down_age or 0.0) for c in conns],
    )
    yield _gauge(
        "upbit_ws_connection_retry_in_seconds",
        "Seconds until the next connect while a retry waits (absent otherwise).",
        [({"connection": c.connection}, c.retry_in) for c in conns if c.retry_in is not None],
    )
    yield _gauge(
        "upbit_ws_connect_timeout_seconds",
        "Timeout of the next connect attempt (grows after connect timeouts).",
        _per_connection(conns, "connect_timeout"),
    )
    for name, field, doc in _CONNECTION_COUNTERS:
        yield _counter(name, doc, _per_connection(conns, field))
    yield _counter(
        "upbit_ws_connection_failures_by_cause_total",
        "Failures by cause (closed, transport, timeout, dns, tls, rate_limited, auth, ...);"
        " each is followed by a reconnect unless the cause is fatal.",
        [
            ({"connection": c.connection, "cause": cause}, float(n))
            for c in conns
            for cause, n in sorted(c.failures_by_cause.items())
        ],
    )
    yield _counter(
        "upbit_ws_error_frames_total",
        "Error frames from Upbit by error name (INVALID_AUTH, WRONG_FORMAT, ...).",
        [
            ({"connection": c.connection, "name": name}, float(n))
            for c in conns
            for name, n in sorted(c.server_errors.items())
        ],
    )


def _channels(channels: list[ChannelStatistics]) -> Iterator[Metric]:
    routers = [(ch.connection, ch.router) for ch in channels]
    yield _counter(
        "upbit_ws_data_messages_total",
        "Data frames routed to subscribers, by type (ticker, trade, orderbook, candle.1m...).",
        [
            ({"connection": conn, "type": kind}, float(n))
            for conn, r in routers
            for kind, n in r.messages_by_type.items()
        ],
    )
    yield _counter(
        "upbit_ws_data_bytes_total",
        "Bytes of the data frames routed to subscribers, by type.",
        [
            ({"connection": conn, "type": kind}, float(n))
            for conn, r in routers
            for kind, n in r.bytes_by_type.items()
        ],
    )
    yield _counter(
        "upbit_ws_frames_discarded_total",
        "Frames decoded but delivered to nobody: unwanted (in flight after a change),"
        " duplicate_snapshot, unknown_type.",
        [
            ({"connection": conn, "reason": reason}, float(n))
            for conn, r in routers
            for reason, n in (
                ("unwanted", r.unwanted),
                ("duplicate_snapshot", r.duplicate_snapshots),
                ("unknown_type", r.unknown_types),
            )
        ],
    )
    yield _counter(
        "upbit_ws_keepalive_frames_total",
        'Keep-alive answers ({"status":"UP"}) received.',
        [({"connection": conn}, float(r.keepalives)) for conn, r in routers],
    )
    yield _counter(
        "upbit_ws_decode_errors_total",
        "Frames the decoder could not parse.",
        [({"connection": conn}, float(r.decode_errors)) for conn, r in routers],
    )
    yield _summary(
        "upbit_ws_exchange_latency_seconds",
        "Receive time minus the frame's exchange timestamp (sampled, realtime frames).",
        [(conn, r.latency) for conn, r in routers],
    )
    yield _gauge(
        "upbit_ws_exchange_latency_max_seconds",
        "Largest exchange-to-client latency sampled.",
        [
            ({"connection": conn}, r.latency.max_ms / 1000.0)
            for conn, r in routers
            if r.latency.max_ms is not None
        ],
    )
    yield _counter(
        "upbit_ws_clock_skew_samples_total",
        "Latency samples below zero (the exchange clock ahead of this host), counted as 0.",
        [({"connection": conn}, float(r.clock_skew_samples)) for conn, r in routers],
    )
    yield _summary(
        "upbit_ws_subscription_change_latency_seconds",
        "From a subscription change to the first frame of a stream it added.",
        [(ch.connection, ch.change_latency) for ch in channels],
    )
    for name, field, doc in (
        ("upbit_ws_subscription_changes_total", "changes", "Book changes that woke the flusher."),
        (
            "upbit_ws_subscription_requests_total",
            "requests_sent",
            "Merged subscription requests sent.",
        ),
        (
            "upbit_ws_subscription_rejections_total",
            "rejections",
            "Requests Upbit refused as malformed.",
        ),
        (
            "upbit_ws_subscription_send_failures_total",
            "send_failures",
            "Requests that could not be written (socket gone).",
        ),
        (
            "upbit_ws_reconnect_gaps_total",
            "reconnect_gaps",
            "Gaps marked on event streams (trade, candle, myOrder...) because a socket dropped.",
        ),
    ):
        yield _counter(
            name, doc, [({"connection": ch.connection}, getattr(ch, field)) for ch in channels]
        )
    yield _gauge(
        "upbit_ws_subscription_desired_streams",
        "Streams (type, code) wanted on the connection: the merged subscription.",
        [({"connection": ch.connection}, float(ch.desired_streams)) for ch in channels],
    )
    yield _gauge(
        "upbit_ws_subscription_confirmed_streams",
        "Streams the last applied request on the current socket carries.",
        [({"connection": ch.connection}, float(ch.confirmed_streams)) for ch in channels],
    )


_SUBSCRIPTION_GAUGES: Final = (
    ("upbit_ws_subscription_queue_depth", "depth", "Messages waiting in the buffer."),
    ("upbit_ws_subscription_queue_capacity", "capacity", "The buffer's bound."),
    (
        "upbit_ws_subscription_queue_high_water",
        "high_water",
        "Most messages the buffer ever held at once.",
    ),
)
_SUBSCRIPTION_COUNTERS: Final = (
    ("upbit_ws_subscription_messages_pushed_total", "pushed", "Messages put in the buffer."),
    ("upbit_ws_subscription_messages_delivered_total", "delivered", "Messages taken out."),
    (
        "upbit_ws_subscription_messages_dropped_total",
        "dropped",
        "Messages dropped by the overflow policy (drop_oldest) or an overflow.",
    ),
    (
        "upbit_ws_subscription_messages_conflated_total",
        "conflated",
        "Messages replaced by a newer one of the same code (policy latest).",
    ),
    ("upbit_ws_subscription_gaps_total", "gaps", "Gap markers delivered to the consumer."),
    (
        "upbit_ws_subscription_overflows_total",
        "overflows",
        "Times the buffer was full when a message arrived.",
    ),
)


def _subscriptions(stats: ManagerStatistics) -> Iterator[Metric]:
    subs = stats.subscriptions.subscriptions

    def rows(field: str) -> list[tuple[dict[str, str], float]]:
        return [
            (
                {
                    "subscription": str(s.sub_id),
                    "component": s.component,
                    "type": s.type,
                    "connection": s.connection,
                    "policy": s.policy,
                },
                float(getattr(s, field)),
            )
            for s in subs
        ]

    for name, field, doc in _SUBSCRIPTION_GAUGES:
        yield _gauge(name, doc, rows(field))
    for name, field, doc in _SUBSCRIPTION_COUNTERS:
        yield _counter(name, doc, rows(field))
    yield _gauge(
        "upbit_ws_subscriptions",
        "Live subscriptions.",
        [({}, float(len(subs)))],
    )


def _manager(stats: ManagerStatistics) -> Iterator[Metric]:
    limiter = stats.connect_limiter
    yield _counter(
        "upbit_ws_connect_limiter_admitted_total",
        "Connects admitted by the process-wide connect limiter (5/s).",
        [({}, float(limiter.acquired))],
    )
    yield _counter(
        "upbit_ws_connect_limiter_delayed_total",
        "Connects the process-wide connect limiter made wait.",
        [({}, float(limiter.delayed))],
    )
    yield _counter(
        "upbit_ws_connect_limiter_delay_seconds_total",
        "Seconds connects waited for the process-wide connect limiter.",
        [({}, limiter.total_delay)],
    )
    yield _gauge(
        "upbit_ws_connect_limiter_max_delay_seconds",
        "Longest wait the process-wide connect limiter imposed.",
        [({}, limiter.max_delay)],
    )
    events = stats.events
    yield _counter(
        "upbit_ws_events_published_total",
        "System events published (state changes, key problems, gaps).",
        [({}, float(events.published))],
    )
    yield _counter(
        "upbit_ws_events_dropped_total",
        "System events dropped because an events() reader fell behind.",
        [({}, float(events.dropped))],
    )
    markets = stats.subscriptions.markets
    yield _gauge(
        "upbit_ws_markets",
        "Codes in the market list (KRW-* expansion, code checks).",
        [({}, float(markets.markets))] if markets.markets is not None else [],
    )
    yield from _reconciliation(stats)
    key = stats.key
    if key is None:
        return
    yield _gauge(
        "upbit_ws_api_key_status",
        "1 for the API key's status, 0 for the others.",
        [({"status": s}, 1.0 if key.status == s else 0.0) for s in _KEY_STATUSES],
    )
    yield _counter(
        "upbit_ws_api_key_checks_total", "API key checks (GET /v1/api_keys).", [({}, key.checks)]
    )
    yield _counter(
        "upbit_ws_api_key_check_failures_total",
        "API key checks that could not reach an answer.",
        [({}, float(key.check_failures))],
    )
    if key.expires_at is not None:
        yield _gauge(
            "upbit_ws_api_key_expiry_timestamp_seconds",
            "When the API key expires (Unix time).",
            [({}, key.expires_at.timestamp())],
        )


def _reconciliation(stats: ManagerStatistics) -> Iterator[Metric]:
    """Private reconciliation (docs/rest.md, "Reconciliation"): in progress, passes, counts."""
    rec = stats.reconciliation
    if rec is None:
        return
    yield _gauge(
        "upbit_ws_reconciliation_in_progress",
        "1 while a private REST reconciliation runs.",
        [({}, 1.0 if rec.in_progress else 0.0)],
    )
    yield _counter(
        "upbit_ws_reconciliation_gaps_total",
        "Private gaps that asked for a reconciliation, by cause.",
        [({"cause": cause}, float(n)) for cause, n in sorted(rec.gaps.items())],
    )
    yield _counter(
        "upbit_ws_reconciliation_passes_total",
        "Private reconciliation passes finished.",
        [({}, float(rec.passes))],
    )
    yield _counter(
        "upbit_ws_reconciliation_retries_total",
        "Private reconciliation passes retried after a failed REST read.",
        [({}, float(rec.retries))],
    )
    yield _counter(
        "upbit_ws_reconciled_messages_total",
        "myOrder/myAsset messages rebuilt from REST and delivered (reconciled=True).",
        [({}, float(rec.messages_delivered))],
    )
    yield _counter(
        "upbit_ws_reconciliation_suppressed_total",
        "Live myOrder messages suppressed: a reconciliation had delivered them already.",
        [({}, float(rec.reconciler.live_suppressed))],
    )
    yield _summary(
        "upbit_ws_reconciliation_duration_seconds",
        "Duration of private reconciliation passes.",
        [("private", rec.duration)],
    )
    yield _counter(
        "upbit_ws_reconciliation_audits_total",
        "Quiet private REST audits run, by outcome (found: it delivered missed events).",
        [
            ({"outcome": "found"}, float(rec.gaps.get("audit", 0))),
            ({"outcome": "failed"}, float(rec.audit_failures)),
            ({"outcome": "run"}, float(rec.audits)),
        ],
    )
    yield _counter(
        "upbit_ws_reconciliation_audit_requests_total",
        "REST calls made by private audits.",
        [({}, float(rec.audit_requests))],
    )
    if rec.watermark is not None:
        yield _gauge(
            "upbit_ws_reconciliation_watermark_timestamp_seconds",
            "Unix time up to which the private state is verified over REST.",
            [({}, rec.watermark)],
        )
    yield _gauge(
        "upbit_ws_reconciliation_tracked_orders",
        "Orders the reconciler remembers for de-duplication (unfinished, recently finished).",
        [({}, float(rec.reconciler.tracked_orders))],
    )
    yield _counter(
        "upbit_ws_reconciliation_forgotten_orders_total",
        "Finished orders the reconciler let go: past finished_retention and the watermark.",
        [({}, float(rec.reconciler.forgotten_orders))],
    )
    yield _counter(
        "upbit_ws_reconciliation_balance_rereads_total",
        "Passes by whether they read the balances again after the settle (live traffic near).",
        [
            ({"outcome": "reread"}, float(rec.balance_rereads)),
            ({"outcome": "skipped"}, float(rec.rereads_skipped)),
        ],
    )
    yield _counter(
        "upbit_ws_reconciliation_held_total",
        "Live myOrder/myAsset messages held while a pass read REST (delivered after it).",
        [({}, float(rec.held))],
    )
    yield _counter(
        "upbit_ws_reconciliation_hold_releases_total",
        "Holds released before their pass's read was delivered, by reason.",
        [
            ({"reason": "timeout"}, float(rec.hold_timeouts)),
            ({"reason": "limit"}, float(rec.hold_overflows)),
        ],
    )
