"""Private integrity: no fill is ever lost, none is delivered twice (issue #9, private half).

One :class:`PrivateIntegrity` per manager with credentials. It owns the pure
:class:`~upbit_ws.core.reconcile.Reconciler` and wires it into the private subscription path:

* **Live.** The private router passes every myOrder/myAsset message through the gate
  (:meth:`~upbit_ws.aio.router.Router.set_gate`): ``reconciler.live`` decides whether it is
  new, so an event already delivered by a reconciliation is not delivered again. The public
  router has no gate: its hot path is untouched.
* **Gaps.** Every private gap opens a reconciliation: a reconnect (from the last frame before
  the loss, :mod:`upbit_ws.aio.channel`), a stall the socket lived through (a ping answered
  late or never while frames came, :mod:`upbit_ws.core.session`), a ``never_drop`` overflow of
  a myOrder/myAsset subscription. A gap waits until the socket carries the subscription again
  (events from then on arrive live), then :func:`~upbit_ws.aio.reconcile.reconcile_private`
  reads REST from the earlier of the gap's start and the **watermark** (wall clock, less a
  skew margin), paced under Upbit's limits (``Remaining-Req``) and retried until it succeeds.
  While the socket stays down (a suspended key, an outage) the same quiet read runs every
  audit interval, so the pass that follows the resubscription has little left to read.
* **Watermark and audit.** The watermark is the time up to which the account's private state
  is verified: when the last successful read began (at start, when the key check had just
  read REST). A blackhole that no ping noticed leaves no gap, so while the reconciler knows
  unfinished orders, or a private frame came within ``audit_after_traffic`` seconds, an
  **audit** reads REST from the watermark every ``audit_interval`` seconds
  (:func:`~upbit_ws.aio.reconcile.audit_private`; :class:`~upbit_ws.core.config.ReconcileConfig`).
  An audit that finds nothing publishes nothing; one that delivers messages is a pass of
  cause ``audit`` (events, a warning, statistics).
* **Time order.** From the moment a gap is noticed until its pass has delivered what the main
  read rebuilt, the gate holds live myOrder/myAsset messages (bounded by ``hold_limit``, never
  dropped); the reconciled messages go first, then the held ones through ``reconciler.live``.
  If the read takes longer than ``hold_timeout`` after the pass began (REST refusing), the
  held messages are released (logged, counted) and order is kept again from the pass on.
* **Delivery.** The rebuilt messages (``reconciled=True``) go, in time order, through the
  router's routes to the same subscribers (codes filters and buffer policies apply). Each
  ``(uuid, state, trade_uuid)`` reaches a subscriber at most once across live and reconciled
  delivery; within one order no state goes backwards past what was delivered.
* **Events.** :class:`~upbit_ws.core.events.ReconciliationStarted` when a pass begins,
  :class:`~upbit_ws.core.events.ReconciliationFinished` when everything it rebuilt is
  delivered, including the balances read again ``settle`` seconds later when live private
  messages came from ``settle`` seconds before the pass to the end of its read (a frame older
  than the read may then land after it; :meth:`PrivateIntegrity._settle_needed`): from then
  on the subscribers' view equals what REST said. A pass on a silent socket skips that wait.
  Gaps that open while a pass runs are merged into one next pass from the earliest start,
  never lost.
* **Lifecycle.** :meth:`PrivateIntegrity.run` is one task of the manager's TaskGroup; cancel
  it to stop (a pass in progress stops with it; nothing else is left running).

docs/rest.md, "Reconciliation", describes it for users.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from upbit_ws.aio.channel import Channel
from upbit_ws.aio.clock import Clock
from upbit_ws.aio.reconcile import (
    DEFAULT_AUDIT_GRACE,
    DEFAULT_SKEW_MARGIN,
    RECONCILE_BACKOFF,
    audit_private,
    reconcile_private,
    settle_balances,
)
from upbit_ws.aio.rest import RestClient
from upbit_ws.aio.router import LatencyHistogram, LatencySummary
from upbit_ws.core.backoff import Backoff
from upbit_ws.core.config import ReconcileConfig
from upbit_ws.core.errors import InvalidInputError, UpbitWsError
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

#: Seconds after a pass before the balances are read once more, when live private messages came
#: near its read: a live myAsset frame in flight during the first read may be older than it,
#: and the second read corrects it.
DEFAULT_SETTLE: Final = 0.5

#: A held live message: the message, its frame size and its receive time (monotonic).
_Held = tuple[Any, int, float]


@dataclass(frozen=True, slots=True)
class PrivateIntegrityStatistics:
    """Private reconciliation: whether a pass runs now, and counts so far.

    ``in_progress`` is true from ``ReconciliationStarted`` to ``ReconciliationFinished``;
    ``since_wall`` is then the start of the gap being repaired (epoch seconds). ``pending``
    says a gap waits for the next pass. ``gaps`` counts gaps by cause (``audit``: audits that
    found missed events); ``passes`` the passes finished, ``retries`` the failed REST passes
    retried, ``orders_read`` the orders REST returned, ``messages_delivered`` the reconciled
    messages delivered. ``duration`` summarises pass durations in ms; ``subscribe_wait``,
    ``read``, ``pacing_wait`` and ``settle`` split them (ms): from the gap to the pass's start
    (the socket subscribed again; not part of ``duration``), the main REST read, the part of
    it spent waiting for the REST pacer, and the balance re-read after it. ``watermark`` is
    the epoch time up to which the private state is verified; ``audits`` counts audits run,
    ``audit_failures`` the ones whose read failed, ``audit_requests`` the REST calls they
    made. ``held`` counts live messages held during passes, ``hold_timeouts`` the holds
    released because the read took longer than ``hold_timeout``, ``hold_overflows`` the
    holds released at ``hold_limit``. ``balance_rereads`` counts passes that read the balances
    again ``settle`` seconds after their read (live private messages came near it),
    ``rereads_skipped`` the passes that ended without (none came). ``reconciler`` holds the
    pure reconciler's counters.
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
    subscribe_wait: LatencySummary | None = None
    read: LatencySummary | None = None
    pacing_wait: LatencySummary | None = None
    settle: LatencySummary | None = None
    watermark: float | None = None
    audits: int = 0
    audit_failures: int = 0
    audit_requests: int = 0
    held: int = 0
    hold_timeouts: int = 0
    hold_overflows: int = 0
    balance_rereads: int = 0
    rereads_skipped: int = 0


class PrivateIntegrity:
    """Reconcile the private subscriptions over REST after every gap; see the module docs.

    ``channel`` is the private connection's subscription channel (its router gets the gate
    and its gaps come here); ``rest`` a signed REST client; ``publish`` receives the events;
    ``clock`` is the shell clock (monotonic and wall). ``settle`` and ``margin`` are passed to
    :func:`~upbit_ws.aio.reconcile.reconcile_private`; ``config`` sets the audit and the hold.
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
        config: ReconcileConfig | None = None,
        audit_grace: float = DEFAULT_AUDIT_GRACE,
    ) -> None:
        self._rest = rest
        self._channel = channel
        self._publish = publish
        self._clock = clock
        self._settle = settle
        self._margin = margin
        self._config = config or ReconcileConfig()
        self._grace = audit_grace
        self.reconciler = reconciler or Reconciler()
        channel.router.set_gate(self._gate)
        channel.on_gap = self.gap
        self._wake = asyncio.Event()
        # The earliest start of the gaps not repaired yet, and the cause of that gap.
        self._pending: tuple[float, ReconcileCause] | None = None
        self._pending_noted: float | None = None  # when the first of them was noticed
        self._current: float | None = None  # since_wall of the pass in progress
        # Verified up to (epoch s); when the last read began (monotonic); last live frame.
        self._watermark: float | None = None
        self._last_read: float | None = None
        self._last_try: float | None = None
        self._last_traffic: float | None = None
        # Live messages held while a pass reads (None: not holding), and the hold's deadline.
        self._held: list[_Held] | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        self._gaps: dict[str, int] = {}
        self._passes = 0
        self._attempts = 1  # REST read attempts of the pass or audit in progress
        self._retries = 0
        self._rereads = 0
        self._rereads_skipped = 0
        self._orders_read = 0
        self._delivered = 0
        self._last_duration: float | None = None
        self._durations = LatencyHistogram()
        self._subscribe_wait = LatencyHistogram()
        self._read = LatencyHistogram()
        self._pacing = LatencyHistogram()
        self._settled = LatencyHistogram()
        self._audits = 0
        self._audit_failures = 0
        self._audit_requests = 0
        self._held_count = 0
        self._hold_timeouts = 0
        self._hold_overflows = 0

    def __repr__(self) -> str:
        state = "reconciling" if self._current is not None else "idle"
        return f"<PrivateIntegrity {state} passes={self._passes}>"

    # --- the gate and the hold --------------------------------------------------------

    def _gate(self, message: Any, size: int, received_at: float) -> bool:
        """Pass, suppress or hold one live myOrder/myAsset message (the socket reader)."""
        self._last_traffic = received_at
        held = self._held
        if held is None:
            return self.reconciler.live(message)
        held.append((message, size, received_at))
        self._held_count += 1
        if len(held) >= self._config.hold_limit:
            self._hold_overflows += 1
            _log.warning(
                "%d live private messages held for a reconciliation: released now, before "
                "the REST read they wait for (none is dropped)",
                len(held),
                extra={"connection": "private"},
            )
            self._release()
        return False

    def _hold(self) -> None:
        """Start holding live messages (a gap was noticed), with a deadline."""
        if self._held is None:
            self._held = []
        self._arm_hold()

    def _arm_hold(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        loop = asyncio.get_running_loop()
        self._hold_timer = loop.call_later(self._config.hold_timeout, self._hold_expired)

    def _hold_expired(self) -> None:
        self._hold_timer = None
        if self._held is None:
            return
        if self._pending is not None and not self._channel.subscribed.is_set():
            # No pass can start yet; the bound counts from the pass's start.
            self._arm_hold()
            return
        self._hold_timeouts += 1
        _log.warning(
            "private reconciliation read not done within %g s: %d held live messages "
            "released; reconciled messages may follow newer live ones until the pass ends",
            self._config.hold_timeout,
            len(self._held),
            extra={"connection": "private"},
        )
        self._release()

    def _release(self) -> None:
        """Stop holding: hand each held message to ``reconciler.live``, deliver the new ones."""
        held, self._held = self._held, None
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        if not held:
            return
        router = self._channel.router
        live = self.reconciler.live
        for message, size, received_at in held:
            if live(message):
                router.deliver_live(message, size, received_at)

    # --- gaps ----------------------------------------------------------------------------

    def gap(self, cause: ReconcileCause, since: float) -> None:
        """Note a private gap that began at ``since`` (monotonic); a pass will repair it."""
        self._gaps[cause] = self._gaps.get(cause, 0) + 1
        pending = self._pending
        if pending is None:
            self._pending_noted = self._clock.now()
        if pending is None or since < pending[0]:
            self._pending = (since, cause)
        self._hold()
        self._wake.set()

    def overflowed(self, event: BufferOverflowed) -> None:
        """Take a ``never_drop`` overflow; a myOrder/myAsset one is a private gap."""
        if event.connection == "private":
            self.gap("overflow", event.at)

    @property
    def in_progress(self) -> bool:
        """Tell whether a reconciliation pass is running now."""
        return self._current is not None

    @property
    def watermark(self) -> float | None:
        """Return the epoch time up to which the private state is verified (None: not yet)."""
        return self._watermark

    # --- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Repair gaps one pass at a time and audit between them, forever (cancel to stop)."""
        # The manager starts this right after its key check read REST: verified from here.
        if self._watermark is None:
            self._watermark = self._clock.wall()
            self._last_read = self._clock.now()
        try:
            while True:
                await self._step()
        finally:
            self._release()

    async def _step(self) -> None:
        """Wait for a gap to repair or an audit to run, then do it."""
        if self._pending is not None:
            subscribed = self._channel.subscribed
            # Events from the moment the request is on the socket arrive live; the pass
            # reads REST after that, so nothing falls between the two. Meanwhile the socket
            # is down: read quietly every audit interval, so the pass has little left.
            if await _until(subscribed, self._due()):
                pending, self._pending = self._pending, None
                if pending is not None:
                    await self._pass(*pending)
            else:
                await self._audit(self._pending[1] if self._pending else "audit", grace=0.0)
            return
        if await _until(self._wake, self._due()):
            self._wake.clear()
            return
        if self._audit_wanted():
            if self._channel.subscribed.is_set():
                await self._audit("audit", grace=self._grace)
            else:
                # The socket is down (its gap is noted when it opens again): read what the
                # outage hides now, so the pass after it has only the last seconds to read.
                await self._audit("reconnect", grace=0.0)
        else:
            self._last_try = self._clock.now()

    def _due(self) -> float | None:
        """Return the seconds until the next audit may run (None: audits are off)."""
        interval = self._config.audit_interval
        if interval is None:
            return None
        last = max(self._last_read or 0.0, self._last_try or 0.0)
        return max(0.0, last + interval - self._clock.now())

    def _audit_wanted(self) -> bool:
        """Audit while orders are open or private frames came recently (else nothing moves)."""
        recent = self._last_traffic
        if recent is not None and self._clock.now() - recent < self._config.audit_after_traffic:
            return True
        return bool(self.reconciler.unfinished())

    def _since_wall(self, gap_wall: float | None) -> float:
        """Return where a read starts: the earlier of the gap's start and the watermark."""
        marks = [m for m in (gap_wall, self._watermark) if m is not None]
        return min(marks) if marks else self._clock.wall()

    def _verified(self, data: ReconcileInput) -> None:
        """A read succeeded: move the watermark to when it began, and forget what is behind."""
        if data.started_at is not None:
            self._watermark = max(self._watermark or 0.0, data.started_at / 1000.0)
        self._last_read = self._clock.now()
        self._forget()

    def _forget(self) -> None:
        """Let the reconciler forget the finished orders no read or live frame can bring back.

        A later read starts at the earlier of the watermark and a gap's start, less the skew
        margin; a live frame in flight is far younger than ``finished_retention`` (10 minutes:
        no socket holds a frame that long). Behind both, a finished order's memory serves
        nothing: without this the memory fills to ``max_finished`` (about 9 MB at 10,000
        orders) on a busy account instead of holding the last minutes.
        """
        clock = self._clock
        wall = clock.wall()
        gap = None if self._pending is None else wall - (clock.now() - self._pending[0])
        marks = [self._since_wall(gap), wall - self._config.finished_retention]
        if self._current is not None:
            marks.append(self._current)  # the pass in progress may read again (a retry)
        cutoff = min(marks) - self._margin.total_seconds()
        self.reconciler.forget(int(cutoff * 1000))

    async def _pass(self, since: float, cause: ReconcileCause) -> None:
        clock = self._clock
        started = clock.now()
        since_wall = self._since_wall(clock.wall() - (started - since))
        since = started - (clock.wall() - since_wall)
        if self._pending_noted is not None:
            self._subscribe_wait.add((started - self._pending_noted) * 1000.0)
            self._pending_noted = None
        if self._held is not None:
            self._arm_hold()  # the hold's bound counts from here
        self._current = since_wall
        self._publish(
            ReconciliationStarted(
                at=started, connection="private", since=since, since_wall=since_wall, cause=cause
            )
        )
        _log.info(
            "private reconciliation started (%s gap, reading %.1f s back)",
            cause,
            started - since,
            extra={"connection": "private", "cause": cause},
        )
        self._attempts = 1
        read = 0
        delivered = 0
        read_at: list[float] = []
        waited = self._rest.statistics().wait_seconds

        def took(data: ReconcileInput) -> None:
            nonlocal read
            read = len(data.orders)
            read_at.append(clock.now())
            self._read.add((read_at[0] - started) * 1000.0)
            self._pacing.add((self._rest.statistics().wait_seconds - waited) * 1000.0)
            self._verified(data)

        def deliver(batch: list[MyOrder | MyAsset]) -> None:
            nonlocal delivered
            router = self._channel.router
            for message in batch:
                router.deliver_reconciled(message)
            delivered += len(batch)
            if len(read_at) == 1:
                read_at.append(clock.now())
                # The main read is delivered: the held live messages follow it.
                self._release()
                if self._pending is not None:
                    self._hold()  # a gap noticed during this pass: its pass comes next

        try:
            await reconcile_private(
                self._rest,
                self.reconciler,
                since=datetime.fromtimestamp(since_wall, UTC),
                margin=self._margin,
                wall_clock=lambda: datetime.fromtimestamp(clock.wall(), UTC),
                on_retry=self._retried,
                settle=self._settle,
                settle_if=lambda: self._settle_needed(started),
                deliver=deliver,
                on_read=took,
            )
        finally:
            self._current = None
        if read_at:
            self._settled.add((clock.now() - read_at[0]) * 1000.0)
        self._finish(started, since_wall, read, delivered)

    def _settle_needed(self, started: float) -> bool:
        """Tell whether the pass that began at ``started`` must read the balances again.

        The re-read ``settle`` seconds later corrects a live balance frame that is older than
        the first read: one in flight while it ran, or one REST had not caught up with yet.
        Either needs a live myOrder/myAsset message near the read; the gate stamps every one
        (held ones too), so a socket silent from ``settle`` seconds before the pass until its
        read is delivered has nothing to correct, and the pass ends without the wait: from
        a quiet account's reconnect to ``ReconciliationFinished`` is then the read alone.
        """
        last = self._last_traffic
        needed = last is not None and last >= started - self._settle
        if needed:
            self._rereads += 1
        else:
            self._rereads_skipped += 1
        return needed

    def _retried(self, exc: UpbitWsError, delay: float) -> None:
        """Count a failed REST read that is tried again (``on_retry`` of a pass or an audit)."""
        self._attempts += 1
        self._retries += 1

    async def _audit(self, cause: ReconcileCause, *, grace: float) -> None:
        """Read REST quietly from the watermark; deliver and announce only what was missed."""
        clock = self._clock
        started = clock.now()
        self._last_try = started
        since_wall = self._since_wall(None)
        sent = self._rest.statistics().sent
        self._audits += 1
        try:
            data, messages = await audit_private(
                self._rest,
                self.reconciler,
                since=datetime.fromtimestamp(since_wall, UTC),
                margin=self._margin,
                grace=grace,
                wall_clock=lambda: datetime.fromtimestamp(clock.wall(), UTC),
            )
        except InvalidInputError:
            raise
        except UpbitWsError as exc:
            self._audit_failures += 1
            _log.info(
                "private audit read failed (%s); the next one tries again",
                type(exc).__name__,
                extra={"connection": "private", "error": type(exc).__name__},
            )
            return
        finally:
            self._audit_requests += self._rest.statistics().sent - sent
        self._verified(data)
        if not messages:
            return
        if cause == "audit":
            self._gaps["audit"] = self._gaps.get("audit", 0) + 1
            _log.warning(
                "private audit found %d events the socket did not deliver (a blackhole no "
                "ping noticed); delivering them from REST",
                len(messages),
                extra={"connection": "private", "cause": cause},
            )
        self._current = since_wall
        self._publish(
            ReconciliationStarted(
                at=started,
                connection="private",
                since=started - (clock.wall() - since_wall),
                since_wall=since_wall,
                cause=cause,
            )
        )
        router = self._channel.router
        self._attempts = 1
        try:
            for message in messages:
                router.deliver_reconciled(message)
            delivered = len(messages)
            if self._settle > 0:
                await asyncio.sleep(self._settle)
                retry = Backoff(RECONCILE_BACKOFF, rng=random.Random())
                wall = lambda: datetime.fromtimestamp(clock.wall(), UTC)  # noqa: E731
                settled = await settle_balances(
                    self._rest, self.reconciler, retry, wall, self._retried
                )
                for message in settled:
                    router.deliver_reconciled(message)
                delivered += len(settled)
        finally:
            self._current = None
        self._finish(started, since_wall, len(data.orders), delivered)

    def _finish(self, started: float, since_wall: float, read: int, delivered: int) -> None:
        clock = self._clock
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
                attempts=self._attempts,
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
            subscribe_wait=self._subscribe_wait.summary(),
            read=self._read.summary(),
            pacing_wait=self._pacing.summary(),
            settle=self._settled.summary(),
            watermark=self._watermark,
            audits=self._audits,
            audit_failures=self._audit_failures,
            audit_requests=self._audit_requests,
            held=self._held_count,
            hold_timeouts=self._hold_timeouts,
            hold_overflows=self._hold_overflows,
            balance_rereads=self._rereads,
            rereads_skipped=self._rereads_skipped,
        )


async def _until(event: asyncio.Event, within: float | None) -> bool:
    """Wait until ``event`` is set or ``within`` seconds passed (None: forever); say which."""
    if event.is_set():
        return True
    if within is None:
        await event.wait()
        return True
    try:
        async with asyncio.timeout(within):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
