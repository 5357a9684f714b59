"""Private integrity: no fill is ever lost, none is delivered twice (issue #9, private half).

One :class:`PrivateIntegrity` per manager with credentials. It owns the pure
:class:`~upbit_ws.core.reconcile.Reconciler` and wires it into the private subscription path:

* **Live.** The private router passes every myOrder/myAsset message through
  ``reconciler.live`` before delivering it (:meth:`~upbit_ws.aio.router.Router.set_gate`), so
  an event already delivered by a reconciliation is not delivered again. The public router has
  no gate: its hot path is untouched.
* **Gaps.** Every private gap opens a reconciliation: a reconnect (from the last frame before
  the loss, :mod:`upbit_ws.aio.channel`), a stall the socket lived through (a ping answered
  late or never while frames came, :mod:`upbit_ws.core.session`), a ``never_drop`` overflow of
  a myOrder/myAsset subscription. A gap waits until the socket carries the subscription again
  (events from then on arrive live), then :func:`~upbit_ws.aio.reconcile.reconcile_private`
  reads REST from the gap's start (wall clock, less a skew margin), paced under Upbit's limits
  (``Remaining-Req``) and retried until it succeeds.
* **Delivery.** The rebuilt messages (``reconciled=True``) go, in time order, through the
  router's routes to the same subscribers (codes filters and buffer policies apply). Each
  ``(uuid, state, trade_uuid)`` reaches a subscriber at most once across live and reconciled
  delivery. Live messages are never held back, so a reconciled message may follow a newer
  live one; within one order no state goes backwards past what was delivered.
* **Events.** :class:`~upbit_ws.core.events.ReconciliationStarted` when a pass begins,
  :class:`~upbit_ws.core.events.ReconciliationFinished` when everything it rebuilt is
  delivered, including the balances read again ``settle`` seconds later: from then on the
  subscribers' view equals what REST said. Gaps that open while a pass runs are merged into one
  next pass from the earliest start, never lost.
* **Lifecycle.** :meth:`PrivateIntegrity.run` is one task of the manager's TaskGroup; cancel
  it to stop (a pass in progress stops with it; nothing else is left running).

docs/rest.md, "Reconciliation", describes it for users.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from upbit_ws.aio.channel import Channel
from upbit_ws.aio.clock import Clock
from upbit_ws.aio.reconcile import DEFAULT_SKEW_MARGIN, reconcile_private
from upbit_ws.aio.rest import RestClient
from upbit_ws.aio.router import LatencyHistogram, LatencySummary
from upbit_ws.core.errors import UpbitWsError
from upbit_ws.core.events import (
    BufferOverflowed,
    Event,
    ReconcileCause,
    ReconciliationFinished,
    ReconciliationStarted,
)
from upbit_ws.core.messages import MyAsset, MyOrder
from upbit_ws.core.reconcile import ReconcileInput, Reconciler, ReconcilerStatistics

__all__ = ["DEFAULT_SETTLE", "PrivateIntegrity", "PrivateIntegrityStatistics"]

_log = logging.getLogger("upbit_ws.reconcile")

#: Seconds after a pass before the balances are read once more: a live myAsset frame in flight
#: during the first read may be older than it, and the second read corrects it.
DEFAULT_SETTLE: Final = 0.5


@dataclass(frozen=True, slots=True)
class PrivateIntegrityStatistics:
    """Private reconciliation: whether a pass runs now, and counts so far.

    ``in_progress`` is true from ``ReconciliationStarted`` to ``ReconciliationFinished``;
    ``since_wall`` is then the start of the gap being repaired (epoch seconds). ``pending``
    says a gap waits for the next pass. ``gaps`` counts gaps by cause; ``passes`` the passes
    finished, ``retries`` the failed REST passes retried, ``orders_read`` the orders REST
    returned, ``messages_delivered`` the reconciled messages delivered. ``duration`` summarises
    pass durations in ms. ``reconciler`` holds the pure reconciler's counters (live messages
    passed and suppressed).
    """

    in_progress: bool
    since_wall: float | None
    pending: bool
    gaps: dict[str, int]
    passes: int
    retries: int
    orders_read: int
    messages_delivered: int
    last_duration: float | None
    duration: LatencySummary
    reconciler: ReconcilerStatistics


class PrivateIntegrity:
    """Reconcile the private subscriptions over REST after every gap; see the module docs.

    ``channel`` is the private connection's subscription channel (its router gets the gate
    and its gaps come here); ``rest`` a signed REST client; ``publish`` receives the events;
    ``clock`` is the shell clock (monotonic and wall). ``settle`` and ``margin`` are passed to
    :func:`~upbit_ws.aio.reconcile.reconcile_private`.
    """

    def __init__(
        self,
        rest: RestClient,
        channel: Channel,
        *,
        publish: Callable[[Event], None],
        clock: Clock,
        settle: float = DEFAULT_SETTLE,
        margin: timedelta = DEFAULT_SKEW_MARGIN,
        reconciler: Reconciler | None = None,
    ) -> None:
        self._rest = rest
        self._channel = channel
        self._publish = publish
        self._clock = clock
        self._settle = settle
        self._margin = margin
        self.reconciler = reconciler or Reconciler()
        channel.router.set_gate(self.reconciler.live)
        channel.on_gap = self.gap
        self._wake = asyncio.Event()
        # The earliest start of the gaps not repaired yet, and the cause of that gap.
        self._pending: tuple[float, ReconcileCause] | None = None
        self._current: float | None = None  # since_wall of the pass in progress
        self._gaps: dict[str, int] = {}
        self._passes = 0
        self._retries = 0
        self._orders_read = 0
        self._delivered = 0
        self._last_duration: float | None = None
        self._durations = LatencyHistogram()

    def __repr__(self) -> str:
        state = "reconciling" if self._current is not None else "idle"
        return f"<PrivateIntegrity {state} passes={self._passes}>"

    # --- gaps ----------------------------------------------------------------------------

    def gap(self, cause: ReconcileCause, since: float) -> None:
        """Note a private gap that began at ``since`` (monotonic); a pass will repair it."""
        self._gaps[cause] = self._gaps.get(cause, 0) + 1
        pending = self._pending
        if pending is None or since < pending[0]:
            self._pending = (since, cause)
        self._wake.set()

    def overflowed(self, event: BufferOverflowed) -> None:
        """Take a ``never_drop`` overflow; a myOrder/myAsset one is a private gap."""
        if event.connection == "private":
            self.gap("overflow", event.at)

    @property
    def in_progress(self) -> bool:
        """Tell whether a reconciliation pass is running now."""
        return self._current is not None

    # --- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Repair gaps one pass at a time, forever (cancel to stop)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending is None:
                continue
            # Events from the moment the request is on the socket arrive live; the pass
            # reads REST after that, so nothing falls between the two.
            await self._channel.subscribed.wait()
            pending, self._pending = self._pending, None
            if pending is None:
                continue
            await self._pass(*pending)

    async def _pass(self, since: float, cause: ReconcileCause) -> None:
        clock = self._clock
        started = clock.now()
        since_wall = clock.wall() - (started - since)
        self._current = since_wall
        self._publish(
            ReconciliationStarted(
                at=started, connection="private", since=since, since_wall=since_wall, cause=cause
            )
        )
        _log.info(
            "private reconciliation started (%s gap of %.1f s)",
            cause,
            started - since,
            extra={"connection": "private", "cause": cause},
        )
        attempts = 1
        read = 0
        delivered = 0

        def retried(exc: UpbitWsError, delay: float) -> None:
            nonlocal attempts
            attempts += 1
            self._retries += 1

        def took(data: ReconcileInput) -> None:
            nonlocal read
            read = len(data.orders)

        def deliver(batch: list[MyOrder | MyAsset]) -> None:
            nonlocal delivered
            router = self._channel.router
            for message in batch:
                router.deliver_reconciled(message)
            delivered += len(batch)

        try:
            await reconcile_private(
                self._rest,
                self.reconciler,
                since=datetime.fromtimestamp(since_wall, UTC),
                margin=self._margin,
                wall_clock=lambda: datetime.fromtimestamp(clock.wall(), UTC),
                on_retry=retried,
                settle=self._settle,
                deliver=deliver,
                on_read=took,
            )
        finally:
            self._current = None
        duration = clock.now() - started
        self._passes += 1
        self._orders_read += read
        self._delivered += delivered
        self._last_duration = duration
        self._durations.add(duration * 1000.0)
        self._publish(
            ReconciliationFinished(
                at=clock.now(),
                connection="private",
                since_wall=since_wall,
                orders_read=read,
                messages_delivered=delivered,
                duration=duration,
                attempts=attempts,
            )
        )

    # --- views -------------------------------------------------------------------------

    def statistics(self) -> PrivateIntegrityStatistics:
        """Return a snapshot: a pass in progress, counts, durations."""
        return PrivateIntegrityStatistics(
            in_progress=self._current is not None,
            since_wall=self._current,
            pending=self._pending is not None,
            gaps=dict(self._gaps),
            passes=self._passes,
            retries=self._retries,
            orders_read=self._orders_read,
            messages_delivered=self._delivered,
            last_duration=self._last_duration,
            duration=self._durations.summary(),
            reconciler=self.reconciler.statistics(),
        )
