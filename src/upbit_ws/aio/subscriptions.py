"""The subscription service: one merged request per connection, many components, no lost updates.

Upbit replaces a connection's whole subscription on every request and has no unsubscribe
(docs/protocol.md section 3), so the union of what every component wants is owned here:

* **Book and planner.** Components subscribe through :class:`~upbit_ws.aio.component.Component`;
  interest is reference-counted in :class:`~upbit_ws.core.book.SubscriptionBook`, and
  :class:`~upbit_ws.core.planner.SubscriptionPlanner` turns it into one full request per
  connection (streams already flowing go ``is_only_realtime``, new ones get their snapshot,
  everything gets a fresh snapshot after a reconnect).
* **Flushing.** Each connection has one flusher task. A change wakes it; it waits a short
  coalescing window (``SubscriptionConfig.coalesce``, 5 ms) so that changes made together (scenario
  2: the order book and the chart switch coin in the same instant) leave as ONE request, then
  sends the *latest* desired state through ``connection.send`` (the one rate-limited send
  path: 5 messages/s and 100/min, section 8.1). A change made while a send waits for the
  limiter is not lost: the flusher plans again after every send and the next request carries
  it. Nothing queues intermediate states: a plan is always computed from the book as it is.
* **Confirmation.** Upbit acknowledges nothing (section 1.3). A request counts as applied at
  the first frame of a stream it added (the subscription-change latency is measured from the
  change to that frame) or, when it added nothing, after a quiet window
  (``SubscriptionConfig.confirm_quiet``, 1 s) without an error frame (JKorf and the SDK wait
  about 1 s). A request whose new public streams show no frame within
  ``Timeouts.subscription_change`` (2 s) is confirmed anyway (no error came) but counted as
  *silent* and logged: Upbit ignores unknown codes and unsupported levels without a word.
* **Rejection.** An error frame naming a malformed request (``INVALID_PARAM``,
  ``WRONG_FORMAT``, ``NO_*``; section 7.2) while a request is in flight means Upbit refused it
  and closes the socket (7.3): a :class:`~upbit_ws.core.events.RequestRejected` event goes
  out. One rejection may be spurious (issue #9), so the same state goes out again after the
  reconnect (paced by its backoff); rejected again in a row, the planner marks it rejected and
  falls back to the part Upbit last accepted, and the subscriptions that added the refused
  streams end with :class:`~upbit_ws.core.errors.ServerRejectedError` (their iterators raise
  it), so one bad stream does not stop everyone and its consumer does not wait forever.
  Other error names (``INVALID_AUTH``: the key; ``TOO_MANY_REQUEST``) say nothing against the
  request, and the current state goes out again after the reconnect.
* **Late joiners.** A new subscriber to a stream already flowing gets the stream's last
  message at once; when there is none cached, the next request asks Upbit for the stream's
  snapshot again (see :mod:`upbit_ws.aio.channel`).
* **Empty desired state.** An empty request cannot be sent (section 7.2) and there is no
  unsubscribe. This service keeps the socket (no reconnect, no connect-limit use) and, on the
  public connection, sends a replacement request for a single ``ticker`` of one listed market
  with ``is_only_snapshot`` (section 2.2): Upbit answers with one frame (dropped as unwanted by
  the router) and then stays silent. On the private connection the old subscription is left in
  place (order events are rare) and its frames are dropped as unwanted. The silence probe is
  turned off meanwhile (``set_streaming(False)``).
* **Codes.** Codes are upper-cased and checked against the market list
  (:mod:`upbit_ws.aio.markets`: ``GET /v1/market/all``, section 9.1, cached and refreshed every
  ``SubscriptionConfig.market_refresh`` seconds); ``KRW-*`` style wildcards expand against it,
  and each refresh re-expands them so new listings join and delisted markets leave. A refresh
  that returns an empty list, or fewer than half the markets known, is treated as an anomaly
  of the REST answer (:class:`~upbit_ws.core.markets.MarketListPolicy`): the previous list
  stays (counted in ``statistics().markets.anomalies`` and logged), unless the same short list
  comes back on three refreshes in a row. An unknown code
  raises :class:`~upbit_ws.UnknownCodeError` naming the close matches, instead of Upbit's
  silence (section 2.4). Before the list is first loaded, explicit codes are accepted on their
  shape and checked when it arrives (a subscription with an unknown one then ends with the
  error), and wildcards wait for it.
* **Gaps.** A :class:`~upbit_ws.core.events.GapEvent` event goes out when a consumer reaches an
  overflow gap in its buffer (``reason="overflow"``; ``never_drop`` buffers have none: they
  grow past their bound instead, and each such episode is logged once, counted and published
  as a :class:`~upbit_ws.core.events.BufferOverflowed` event), and after every reconnect for each
  trade, candle, myOrder and myAsset stream (``reason="reconnect"``: what Upbit sent while the
  socket was down is lost; tickers and order books are whole states and the fresh snapshot
  repairs them).
* **LIST_SUBSCRIPTIONS.** ``list_subscriptions()`` sends it on both connections at
  once, through the same rate-limited path (it counts toward the limit, section 3.3), and
  returns Upbit's answers beside the merged state.
* **Private types.** ``myOrder`` and ``myAsset`` need the private connection, which runs only
  with API keys: subscribing without one raises :class:`~upbit_ws.InvalidInputError` at once.
  Their events are not states, so the ``latest`` policy (which merges messages per code) is
  refused for them.
* **Independence.** Each connection's flusher and the market-list refresher run as separate
  parts under the one supervisor (:mod:`upbit_ws.aio.supervisor`): an internal error in one
  is logged, kept in ``statistics().internal_errors`` and the part restarts after a delay
  from the core backoff; the other parts never notice. A flusher that fails five times in a
  row without sending a request in between is given up, and the subscriptions of its
  connection end with an :class:`~upbit_ws.UpbitWsError` instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from upbit_ws.aio.channel import Channel, ChannelStatistics
from upbit_ws.aio.clock import Clock, LoopClock
from upbit_ws.aio.component import (
    Component,
    SubscriptionInfo,
    SubscriptionsView,
)
from upbit_ws.aio.connection import ManagedConnection
from upbit_ws.aio.markets import FIRST_LOAD_TIMEOUT, MarketList, MarketListStatistics
from upbit_ws.aio.rest import RestClient
from upbit_ws.aio.stream import Subscription, SubscriptionStatistics
from upbit_ws.aio.supervisor import InternalError, Supervisor, describe_error
from upbit_ws.core.book import (
    BookStatistics,
    StreamKey,
    SubId,
    SubscriptionBook,
    connection_of,
)
from upbit_ws.core.buffer import OVERFLOW_POLICIES, Gap, OverflowPolicy, default_policy
from upbit_ws.core.codes import close_matches, expand_wildcard, is_wildcard, normalize_code
from upbit_ws.core.config import ConnectionConfig
from upbit_ws.core.constants import (
    CONNECTIONS,
    PRIVATE_TYPES,
    ConnectionKind,
    DataType,
    check_connection,
)
from upbit_ws.core.encode import check_level, unsupported_level
from upbit_ws.core.errors import (
    InvalidInputError,
    UnknownCodeError,
    UpbitWsError,
)
from upbit_ws.core.events import BufferOverflowed, Event, GapEvent
from upbit_ws.core.messages import Change, SubscribedType, Trade
from upbit_ws.core.planner import SubscriptionPlanner
from upbit_ws.core.rest_types import TradeTick

__all__ = [
    "ChannelStatistics",
    "MarketListStatistics",
    "SubscriptionService",
    "SubscriptionServiceStatistics",
]

_log = logging.getLogger("upbit_ws.subscriptions")
#: Markets per ``GET /v1/orderbook/instruments`` request (keeps the URL short).
_INSTRUMENTS_PER_REQUEST: Final = 100

#: Crashes in a row, without progress in between, before a flusher is given up.
_MAX_CRASHES: Final = 5
#: Trades fetched per /v1/trades/ticks call to fill a reconnect gap (the most one call gives).
_BACKFILL_PAGE: Final = 500
#: Pages read per code at most for one gap (10,000 trades: about ten minutes of KRW-BTC at its
#: busiest); an older start stays a Gap in front of what was fetched.
_BACKFILL_PAGES: Final = 20
#: Milliseconds in a UTC day: /v1/trades/ticks answers one UTC day at a time (``days_ago``).
_DAY_MS: Final = 86_400_000
#: Seconds subtracted from a gap's start before filtering backfilled trades by their exchange
#: timestamp (clock skew); the duplicates it lets in are dropped by sequential_id.
_BACKFILL_SKEW: Final = 1.0


@dataclass(frozen=True, slots=True)
class SubscriptionServiceStatistics:
    """A snapshot of the whole subscription layer."""

    public: ChannelStatistics
    private: ChannelStatistics
    book: BookStatistics
    markets: MarketListStatistics
    subscriptions: tuple[SubscriptionStatistics, ...]
    overflow_gaps: int
    #: Overflow episodes of never_drop buffers (each grew past its bound; nothing was lost).
    buffer_overflows: int
    #: Internal errors that stopped a flusher or the market refresher (the newest).
    internal_errors: tuple[InternalError, ...] = ()


class SubscriptionService:
    """Own every component's subscriptions and keep one merged request per connection.

    It becomes the :class:`~upbit_ws.aio.connection.ConnectionListener` of each connection
    passed to :meth:`attach`; the types of a connection not attached are refused. ``rest``
    loads the market list (``None``: give ``markets`` instead, or codes are checked on their
    shape only and wildcards cannot expand). ``publish`` receives
    :class:`~upbit_ws.core.events.RequestRejected`, :class:`~upbit_ws.core.events.GapEvent`
    and :class:`~upbit_ws.core.events.BufferOverflowed` events; ``on_overflow`` also receives
    each ``BufferOverflowed`` (the hook for a REST reconciliation of order state). The manager
    calls :meth:`load_markets`, runs :meth:`run` in its TaskGroup and calls :meth:`close`;
    standalone, use :meth:`start` and :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        rest: RestClient | None = None,
        markets: Iterable[str] | None = None,
        publish: Callable[[Event], None] | None = None,
        on_overflow: Callable[[BufferOverflowed], None] | None = None,
        clock: Clock | None = None,
        config: ConnectionConfig | None = None,
    ) -> None:
        config = config or ConnectionConfig()
        timings = config.subscriptions
        self._publish_fn = publish
        self._on_overflow = on_overflow
        self._buffer_overflows = 0
        self._rest = rest
        self._clock: Clock = clock or LoopClock()
        self._now: Callable[[], float] = self._clock.now
        self._rest = rest
        self.backfills = 0
        self.backfill_failures = 0
        self._book = SubscriptionBook()
        self._planner = SubscriptionPlanner(self._book)
        self._sinks: dict[SubId, Subscription[Any]] = {}
        self._markets = MarketList(
            rest,
            markets=markets,
            refresh_every=timings.market_refresh,
            on_change=self._markets_changed,
            clock=self._clock,
        )
        # Subscriptions whose codes could not be checked yet (no market list at the time).
        self._unchecked: set[SubId] = set()
        # Orderbook grouping levels per market (GET /v1/orderbook/instruments); None until
        # loaded. See load_orderbook_levels.
        self._levels: dict[str, tuple[Decimal, ...]] | None = None
        self._channels: dict[ConnectionKind, Channel] = {
            kind: Channel(
                kind,
                book=self._book,
                planner=self._planner,
                sinks=self._sinks,
                now=self._now,
                publish=self._publish,
                coalesce=timings.coalesce,
                confirm_quiet=timings.confirm_quiet,
                change_timeout=config.timeouts.subscription_change,
                markets=lambda: self._markets.codes,
                before_send=self._refresh_wall_offset,
                fail_subscriptions=self._fail_subscriptions,
                # A socket that opens proves the network is back: a market list that failed
                # to load (offline at start: KRW-* waits for it) is retried at once, and so
                # are the orderbook levels.
                on_opened=self._socket_opened,
            )
            for kind in CONNECTIONS
        }
        self._runner: asyncio.Task[None] | None = None
        self._running = False
        self._stopping = asyncio.Event()
        # Set when the orderbook levels should be (re)loaded: they failed at start (offline)
        # and the market list or the network came back since. See _load_levels_when_asked.
        self._levels_wanted = asyncio.Event()
        self._levels_asked = False  # load_orderbook_levels was called (the manager does)
        self._closed = False
        self._overflow_gaps = 0
        self._wall_offset_at = -1.0
        self._supervisor = Supervisor(
            "subscriptions", config=config.backoff, clock=self._clock, logger=_log
        )

    def __repr__(self) -> str:
        markets = "unknown" if self._markets.codes is None else str(len(self._markets.codes))
        return (
            f"<SubscriptionService components={len(self._book.components())} "
            f"subscriptions={len(self._book)} markets={markets}>"
        )

    # -- wiring and lifecycle ----------------------------------------------------------------

    def listener(self, kind: ConnectionKind) -> Channel:
        """Return the :class:`ConnectionListener` of the ``kind`` connection (a plain lookup).

        Looking it up attaches nothing: only :meth:`attach` makes a connection carry this
        service's subscriptions.
        """
        return self._channels[check_connection(kind)]

    def attach(self, connection: ManagedConnection) -> None:
        """Become ``connection``'s listener (before it runs); views then show its state.

        Only the types of an attached connection can be subscribed: a subscription no
        connection carries would be accepted and then never send or deliver anything.
        """
        channel = self.listener(connection.kind)
        connection.set_listener(channel)
        channel.connection = connection

    @property
    def markets(self) -> frozenset[str] | None:
        """Return the cached market codes, or ``None`` before the first load."""
        return self._markets.codes

    async def load_markets(self, *, wait: float = FIRST_LOAD_TIMEOUT) -> bool:
        """Load the market list unless it is known, waiting at most ``wait`` seconds.

        Returns whether a list is known afterwards. A failure is not fatal: :meth:`run`
        retries, and codes are checked once a list arrives.
        """
        return await self._markets.load(wait=wait)

    async def load_orderbook_levels(self, *, wait: float = FIRST_LOAD_TIMEOUT) -> bool:
        """Load every listed market's orderbook grouping levels, waiting at most ``wait`` s.

        Needs the market list. Returns whether the levels are known afterwards; on success,
        every orderbook subscription asking for a level its markets do not support ends with
        :class:`~upbit_ws.InvalidInputError` (Upbit would send nothing for it, docs/protocol.md
        section 2.3). A failure is logged: levels stay unchecked (never silently dropped)
        until :meth:`run` loads them again, once the market list is known or a socket opens.
        """
        self._levels_asked = True  # from now on a failure is retried (see run)
        codes = self._markets.codes
        if not codes or self._rest is None:
            return False
        found: dict[str, tuple[Decimal, ...]] = {}
        ordered = sorted(codes)
        try:
            async with asyncio.timeout(wait):
                for start in range(0, len(ordered), _INSTRUMENTS_PER_REQUEST):
                    chunk = ordered[start : start + _INSTRUMENTS_PER_REQUEST]
                    for item in await self._rest.orderbook_instruments(chunk):
                        found[item.market] = item.supported_levels
        except (UpbitWsError, OSError, TimeoutError) as exc:
            _log.warning(
                "orderbook levels could not be loaded (%s); subscriptions with a level are not "
                "checked against what each market supports",
                describe_error(exc),
            )
            return False
        self.set_orderbook_levels(found)
        return True

    def set_orderbook_levels(self, levels: Mapping[str, Iterable[Decimal | float | str]]) -> None:
        """Take each market's supported levels and fail the subscriptions that ask for others."""
        self._levels = {
            code: tuple(Decimal(str(v)) for v in values) for code, values in levels.items()
        }
        for sub in list(self._sinks.values()):
            if sub.closed or sub.type != "orderbook" or not sub.level:
                continue
            exc = unsupported_level(sub.level, sub.codes, self._levels)
            if exc is not None:
                _log.error("orderbook subscription of %s ended: %s", sub.component, exc)
                self._remove(sub)
                sub._fail(exc)

    async def run(self) -> None:
        """Run the flushers and the market-list refresher until :meth:`close`.

        The manager runs this in its TaskGroup; standalone, use :meth:`start`/:meth:`aclose`.
        """
        if self._running:
            raise InvalidInputError("the subscription service is already running")
        self._running = True
        self._refresh_wall_offset(force=True)
        try:
            async with asyncio.TaskGroup() as tg:
                # One supervised task per part: a bug in one never stops the others (the
                # public and private connections are independent).
                tasks = [
                    tg.create_task(
                        self._supervisor.run(
                            f"{c.kind} flusher",
                            c.run,
                            progress=c.progress,
                            give_up_after=_MAX_CRASHES,
                            on_restart=c.restart,
                            on_give_up=functools.partial(self._give_up, c),
                        ),
                        name=f"upbit-ws:subscriptions:{c.kind}",
                    )
                    for c in self._channels.values()
                ]
                if self._markets.can_load:
                    tasks.append(
                        tg.create_task(
                            self._supervisor.run(
                                "market refresher",
                                self._markets.run,
                                progress=self._markets.progress,
                            ),
                            name="upbit-ws:subscriptions:markets",
                        )
                    )
                if self._rest is not None and self._levels_asked and self._levels is None:
                    tasks.append(
                        tg.create_task(
                            self._supervisor.run("orderbook levels", self._load_levels_when_asked),
                            name="upbit-ws:subscriptions:levels",
                        )
                    )
                await self._stopping.wait()
                for task in tasks:
                    task.cancel()
        finally:
            self._running = False
            self._shut_down()

    def close(self) -> None:
        """End :meth:`run` and every subscription (each after its buffered messages)."""
        self._closed = True
        self._stopping.set()
        if not self._running:
            self._shut_down()

    async def start(self) -> None:
        """Load the market list (up to 5 s) and run the service in a task it owns."""
        if self._runner is not None or self._running:
            raise InvalidInputError("the subscription service is already running")
        await self.load_markets()
        self._runner = asyncio.create_task(self.run(), name="upbit-ws:subscriptions")

    async def aclose(self) -> None:
        """Stop the service started with :meth:`start` and wait for its tasks.

        A call made while another is closing waits for the same end.
        """
        self.close()
        runner = self._runner
        if runner is not None:
            await runner
            self._runner = None

    def _give_up(self, channel: Channel, exc: Exception) -> None:
        """End the subscriptions of a connection whose flusher cannot run."""
        error = UpbitWsError(
            f"the {channel.kind} flusher stopped after repeated internal errors "
            f"({describe_error(exc)}); the {channel.kind} subscriptions cannot be sent "
            "(a bug: see the log)"
        )
        error.__cause__ = exc
        channel.broken = error
        for sub in list(self._sinks.values()):
            if sub.connection == channel.kind:
                del self._sinks[sub.sub_id]
                self._unchecked.discard(sub.sub_id)
                self._book.unsubscribe(sub.sub_id)
                sub._fail(error)

    def _fail_subscriptions(self, sub_ids: Iterable[SubId], error: BaseException) -> None:
        """End the subscriptions ``sub_ids`` with ``error`` (Upbit refused what they added)."""
        for sub_id in sub_ids:
            sub = self._sinks.get(sub_id)
            if sub is not None:
                self._remove(sub)
                sub._fail(error)

    def _shut_down(self) -> None:
        for channel in self._channels.values():
            channel.fail_waiters()
            channel._reset_inflight()
        for sub in self._sinks.values():
            sub._mark_ended()

    # -- the market list ---------------------------------------------------------------------

    async def refresh_markets(self) -> bool:
        """Reload the market list now; return whether it loaded. Re-expands wildcards.

        An empty list, or one shorter than half the known list, is not taken (see the module
        docs) and counts as not loaded.
        """
        return await self._markets.refresh()

    def set_markets(self, codes: Iterable[str]) -> None:
        """Replace the market list and re-resolve every subscription against it."""
        self._markets.set(codes)

    def _socket_opened(self) -> None:
        """A socket opened, so the network works: retry what failed to load without it."""
        self._markets.retry_if_failed()
        if self._levels is None and self._markets.codes:
            self._levels_wanted.set()

    async def _load_levels_when_asked(self) -> None:
        """Load the orderbook levels each time they are wanted, until they are known."""
        while self._levels is None:
            await self._levels_wanted.wait()
            self._levels_wanted.clear()
            await self.load_orderbook_levels()

    def _markets_changed(self, old: frozenset[str] | None, new: frozenset[str]) -> None:
        """Re-resolve wildcards and unchecked codes against a market list just taken."""
        if self._levels is None and new:
            self._levels_wanted.set()  # the first list: the levels can load now
        if old == new and not self._unchecked:
            return
        for sub in list(self._sinks.values()):
            if sub.closed:
                continue
            wildcard = any(is_wildcard(code) for code in sub.requested)
            unchecked = sub.sub_id in self._unchecked
            if not wildcard and not unchecked:
                continue
            try:
                # Codes checked before stay even if delisted since (Upbit then sends nothing
                # for them); codes never checked must be listed now.
                codes_now, _ = self._resolve(sub.type, sub.requested, strict=unchecked)
            except UnknownCodeError as exc:
                self._remove(sub)
                sub._fail(exc)
                continue
            self._unchecked.discard(sub.sub_id)
            self._apply_codes(sub, sub.requested, codes_now)

    # -- components and subscriptions --------------------------------------------------------

    def component(self, name: str) -> Component:
        """Return the handle of component ``name`` (created on its first subscription)."""
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"a component needs a non-empty name, not {name!r}")
        return Component(self, name)

    def subscribe_for(
        self,
        component: str,
        type: str,
        codes: Iterable[str],
        *,
        depth: int | None,
        level: int | float | None,
        policy: OverflowPolicy | None,
        capacity: int | None,
        backfill: bool = False,
    ) -> Subscription[Any]:
        """Create a subscription for ``component`` (see :meth:`Component.subscribe`)."""
        if self._closed:
            raise InvalidInputError("the manager is closed; create a new one to subscribe")
        kind: DataType = _check_type(type)
        channel = self._channels[connection_of(kind)]
        if not channel.attached:
            raise InvalidInputError(_detached_message(kind))
        if channel.broken is not None:
            raise UpbitWsError(str(channel.broken)) from channel.broken
        if policy is None:
            policy = default_policy(kind)
        elif policy not in OVERFLOW_POLICIES:
            raise InvalidInputError(
                f"unknown overflow policy {policy!r}; use one of {', '.join(OVERFLOW_POLICIES)}"
            )
        elif policy == "latest" and kind in PRIVATE_TYPES:
            # Order and balance frames are events, not states: keeping the newest per code
            # would merge away order events without counting a loss.
            raise InvalidInputError(
                f"{kind} events cannot use policy 'latest' (it would merge order events); "
                "use never_drop (the default) or drop_oldest"
            )
        if backfill and kind != "trade":
            raise InvalidInputError(f"backfill applies to trade subscriptions only, not {kind}")
        if level is not None:
            check_level(kind, level)  # a string, NaN or True: said now, not at the next send
        requested = _requested(kind, codes)
        resolved, unchecked = self._resolve(kind, requested)
        if kind == "orderbook" and level and self._levels is not None:
            refused = unsupported_level(level, resolved, self._levels)
            if refused is not None:
                raise refused
        sub_id = self._book.subscribe(component, kind, resolved, depth=depth, level=level)
        held = self._book.subscription(sub_id)
        try:
            sub: Subscription[Any] = Subscription(
                self,
                sub_id=sub_id,
                component=component,
                type=kind,
                requested=requested,
                codes=held.codes,
                depth=held.depth,
                level=held.level,
                policy=policy,
                capacity=capacity,
                backfill=backfill,
            )
        except InvalidInputError:
            self._book.unsubscribe(sub_id)
            raise
        self._sinks[sub_id] = sub
        if unchecked:
            self._unchecked.add(sub_id)
        channel.seed(sub, _keys(sub, held.codes))
        channel.poke(self._now())
        return sub

    def subscriptions_of(self, component: str) -> tuple[Subscription[Any], ...]:
        """Return the live subscriptions of ``component``."""
        return tuple(self._sinks[s.sub_id] for s in self._book.subscriptions(component))

    def close_component(self, component: str) -> None:
        """Drop every subscription of ``component``; their iterations end."""
        removed = self._book.drop_component(component)
        touched: set[ConnectionKind] = set()
        for sub_id in removed:
            sub = self._sinks.pop(sub_id, None)
            self._unchecked.discard(sub_id)
            if sub is not None:
                sub._mark_closed()
                touched.add(sub.connection)
        now = self._now()
        for kind in touched:
            self._channels[kind].poke(now)

    async def update_subscription(self, sub: Subscription[Any], codes: Iterable[str]) -> None:
        """Replace the codes of ``sub`` (see :meth:`Subscription.update`)."""
        if sub.closed or self._sinks.get(sub.sub_id) is not sub:
            raise InvalidInputError(f"{sub!r} is closed; subscribe again instead")
        requested = _requested(sub.type, codes)
        if self._markets.codes is None and any(is_wildcard(c) for c in requested):
            # A wildcard needs the list; wait for the first load rather than send nothing.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_LOAD_TIMEOUT):
                    await self._markets.ready.wait()
            if sub.closed or self._sinks.get(sub.sub_id) is not sub:
                raise InvalidInputError(f"{sub!r} was closed while its codes were resolved")
        resolved, unchecked = self._resolve(sub.type, requested)
        if sub.type == "orderbook" and sub.level and self._levels is not None:
            refused = unsupported_level(sub.level, resolved, self._levels)
            if refused is not None:
                raise refused  # the subscription keeps its codes
        if unchecked:
            self._unchecked.add(sub.sub_id)
        else:
            self._unchecked.discard(sub.sub_id)
        self._apply_codes(sub, requested, resolved)

    def close_subscription(self, sub: Subscription[Any]) -> None:
        """Unsubscribe ``sub``; its iteration ends."""
        self._remove(sub)
        sub._mark_closed()

    async def backfill(self, sub: Subscription[Any], gap: Gap) -> list[Any]:
        """Fetch the trades a reconnect gap of ``sub`` missed (``GET /v1/trades/ticks``).

        Per code, pages of ``_BACKFILL_PAGE`` trades are read back from the newest (paced by
        the REST client) until one reaches the gap's start (less a second of clock skew;
        duplicates are dropped by ``sequential_id`` in the subscription), for at most
        ``_BACKFILL_PAGES`` pages, crossing into the previous UTC day when the gap began
        before midnight. The trades come oldest first. When the pages do not reach back to
        the start, the gap stays in front of them: a gap older than the API returns stays a
        Gap. On any REST failure the gap is all there is.
        """
        rest = self._rest
        if rest is None or gap.since is None:
            return [gap]
        clock = self._clock
        start_ms = (clock.wall() - (clock.now() - gap.since) - _BACKFILL_SKEW) * 1000.0
        trades: list[Trade] = []
        complete = True
        for code in sub.codes:
            try:
                ticks, reached = await _trades_since(rest, code, start_ms, clock.wall() * 1000.0)
            except UpbitWsError as exc:
                self.backfill_failures += 1
                _log.warning(
                    "trade backfill of %s failed (%s); the gap stays a gap",
                    code,
                    exc,
                    extra={"component": sub.component},
                )
                return [gap]
            complete = complete and reached
            trades.extend(_trade_of(t) for t in ticks)
        trades.sort(key=lambda t: (t.trade_timestamp, t.sequential_id))
        self.backfills += 1
        return trades if complete else [gap, *trades]

    def gap_reached(self, sub: Subscription[Any], gap: Gap, since: float) -> None:
        """Publish an overflow gap event when a consumer reaches a gap marker."""
        self._overflow_gaps += 1
        code = sub.codes[0] if len(sub.codes) == 1 else None
        self._publish(
            GapEvent(
                at=self._now(),
                connection=sub.connection,
                type=sub.type,
                code=code,
                reason="overflow",
                since=since,
                dropped=gap.dropped,
                subscriber=sub.component,
            )
        )

    def overflowed(self, sub: Subscription[Any]) -> float:
        """Note the start of an overflow episode of ``sub``; return the time.

        A ``never_drop`` buffer lost nothing but grew past its bound: logged once per
        episode, counted (``statistics().buffer_overflows``), published as a
        :class:`~upbit_ws.core.events.BufferOverflowed` event and handed to ``on_overflow``.
        """
        now = self._now()
        if sub.policy != "never_drop":
            return now
        self._buffer_overflows += 1
        stats = sub.statistics()
        _log.warning(
            "%s: the never_drop buffer of its %s subscription grew past its bound of %d "
            "(%d waiting); nothing is dropped, but the consumer is too slow",
            sub.component,
            sub.type,
            stats.capacity,
            stats.depth,
            extra={"component": sub.component, "data_type": sub.type},
        )
        event = BufferOverflowed(
            at=now,
            connection=sub.connection,
            type=sub.type,
            subscriber=sub.component,
            capacity=stats.capacity,
            depth=stats.depth,
        )
        self._publish(event)
        if self._on_overflow is not None:
            self._on_overflow(event)
        return now

    def _remove(self, sub: Subscription[Any]) -> None:
        if self._sinks.get(sub.sub_id) is not sub:
            return
        del self._sinks[sub.sub_id]
        self._unchecked.discard(sub.sub_id)
        self._book.unsubscribe(sub.sub_id)
        self._channels[sub.connection].poke(self._now())

    def _apply_codes(
        self, sub: Subscription[Any], requested: tuple[str, ...], resolved: tuple[str, ...]
    ) -> None:
        old = set(sub.codes)
        self._book.update(sub.sub_id, resolved)
        codes = self._book.subscription(sub.sub_id).codes
        channel = self._channels[sub.connection]
        new_codes = tuple(c for c in codes if c not in old)
        sub._set_codes(requested, codes)
        if new_codes:
            channel.seed(sub, _keys(sub, new_codes))
        if set(codes) != old:
            channel.poke(self._now())

    def _resolve(
        self, kind: DataType, requested: tuple[str, ...], *, strict: bool = True
    ) -> tuple[tuple[str, ...], bool]:
        """Expand wildcards and check codes; return (codes, whether any is unchecked).

        ``strict=False`` keeps explicit codes the list no longer has (delisted after check).
        """
        markets = self._markets.codes
        out: dict[str, None] = {}
        unchecked = False
        for code in requested:
            if is_wildcard(code):
                if markets is None:
                    expand_wildcard(code, ())  # checks the pattern's shape
                    unchecked = True
                    continue
                out.update(dict.fromkeys(expand_wildcard(code, markets)))
            elif markets is None:
                unchecked = True
                out[code] = None
            elif code not in markets and strict:
                raise UnknownCodeError(code, close_matches(code, markets))
            else:
                out[code] = None
        return tuple(sorted(out)), unchecked

    # -- views and statistics ----------------------------------------------------------------

    def subscriptions(self) -> SubscriptionsView:
        """Return the merged state per connection and per component, from local state."""
        return self._view({})

    async def list_subscriptions(self) -> SubscriptionsView:
        """Return :meth:`subscriptions` with what Upbit itself says each socket streams.

        Asks Upbit (LIST_SUBSCRIPTIONS, section 3.3, through the rate-limited send path) on
        both connections at once and fills ``server`` in for each open connection.
        """
        # Both connections at once: each waits for its own socket's answer.
        kinds = list(self._channels)
        results = await asyncio.gather(
            *(self._channels[kind].ask_server() for kind in kinds), return_exceptions=True
        )
        answers: dict[ConnectionKind, tuple[SubscribedType, ...] | None] = {}
        for kind, result in zip(kinds, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            answers[kind] = result
        return self._view(answers)

    def _view(
        self, server: dict[ConnectionKind, tuple[SubscribedType, ...] | None]
    ) -> SubscriptionsView:
        components: dict[str, tuple[SubscriptionInfo, ...]] = {}
        for name in self._book.components():
            components[name] = tuple(_info(sub) for sub in self.subscriptions_of(name))
        return SubscriptionsView(
            public=self._channels["public"].view(server.get("public")),
            private=self._channels["private"].view(server.get("private")),
            components=components,
        )

    def statistics(self) -> SubscriptionServiceStatistics:
        """Return a snapshot of the book, the channels, the market list and each subscription."""
        return SubscriptionServiceStatistics(
            public=self._channels["public"].statistics(),
            private=self._channels["private"].statistics(),
            book=self._book.statistics(),
            markets=self._markets.statistics(),
            subscriptions=tuple(sub.statistics() for sub in self._sinks.values()),
            overflow_gaps=self._overflow_gaps,
            buffer_overflows=self._buffer_overflows,
            internal_errors=self._supervisor.errors,
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _publish(self, event: Event) -> None:
        if self._publish_fn is not None:
            self._publish_fn(event)

    def _refresh_wall_offset(self, *, force: bool = False) -> None:
        """Recompute monotonic-to-epoch for the latency statistic (at most once a second)."""
        now = self._now()
        if not force and now - self._wall_offset_at < 1.0:
            return
        self._wall_offset_at = now
        offset = self._clock.wall() - now
        for channel in self._channels.values():
            channel.router.wall_offset = offset


async def _trades_since(
    rest: RestClient, code: str, start_ms: float, now_ms: float
) -> tuple[list[TradeTick], bool]:
    """Return the trades of ``code`` from ``start_ms`` on and whether they reach back to it.

    Pages back from the newest trade with ``cursor`` (the last ``sequential_id`` of the page
    before). The API answers one UTC day at a time: a short page holds the day's first trade,
    and the previous day (``days_ago=1``) is read only when the start lies in it. A page that
    brings no trade not seen before (a cursor the server does not honour) ends the paging as
    incomplete instead of looping.
    """
    out: list[TradeTick] = []
    seen: set[int] = set()
    cursor: int | None = None
    days_ago: int | None = None
    for _ in range(_BACKFILL_PAGES):
        page = await rest.trades_ticks(code, count=_BACKFILL_PAGE, cursor=cursor, days_ago=days_ago)
        new = [t for t in page if t.sequential_id not in seen]
        seen.update(t.sequential_id for t in new)
        out.extend(t for t in new if t.timestamp >= start_ms)
        if any(t.timestamp < start_ms for t in new):
            return out, True
        if len(page) < _BACKFILL_PAGE:
            day = page[0].timestamp if page else now_ms - (days_ago or 0) * _DAY_MS
            day_start = day - day % _DAY_MS
            if start_ms >= day_start:
                return out, True
            if days_ago is not None:
                return out, False
            days_ago, cursor = 1, None
            continue
        if not new:
            return out, False
        cursor = page[-1].sequential_id
    return out, False


def _trade_of(tick: TradeTick) -> Trade:
    """Return the trade frame a ``/v1/trades/ticks`` row stands for (signed change split)."""
    delta = tick.change_price
    change: Change = "RISE" if delta > 0 else "FALL" if delta < 0 else "EVEN"
    return Trade(
        code=tick.market,
        trade_price=tick.trade_price,
        trade_volume=tick.trade_volume,
        ask_bid="ASK" if tick.ask_bid == "ASK" else "BID",
        prev_closing_price=tick.prev_closing_price,
        change=change,
        change_price=abs(tick.change_price),
        trade_date=tick.trade_date_utc,
        trade_time=tick.trade_time_utc,
        trade_timestamp=tick.timestamp,
        timestamp=tick.timestamp,
        sequential_id=tick.sequential_id,
    )


def _detached_message(kind: DataType) -> str:
    """Say why no connection will carry a subscription of ``kind``."""
    if kind in PRIVATE_TYPES:
        return (
            f"{kind} needs the private connection, which runs only with API keys: pass "
            "credentials=Credentials(access_key, secret_key) (or Credentials.from_env()) "
            "to WebSocketManager"
        )
    return (
        f"{kind} goes on the public connection, which is not attached to the subscription "
        "service (WebSocketManager(listeners={'public': ...}) replaced it): the request "
        "would never be sent; drop that listener to subscribe"
    )


def _check_type(type: object) -> DataType:
    if not isinstance(type, str):
        raise InvalidInputError(f"a data type is a string such as 'ticker', not {type!r}")
    connection_of(type)  # type: ignore[arg-type]  # raises InvalidInputError naming the types
    return type  # type: ignore[return-value]


def _requested(kind: DataType, codes: Iterable[str]) -> tuple[str, ...]:
    """Normalise what the caller asked for: upper-cased codes and wildcard patterns."""
    if codes is None:
        codes = ()
    if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
        raise InvalidInputError(
            f"{kind}: codes must be a list of market codes such as ['KRW-BTC'], not {codes!r}"
        )
    out: dict[str, None] = {}
    for code in codes:
        if is_wildcard(code):
            out[code.strip().upper()] = None
        else:
            out[normalize_code(code)] = None
    if kind == "myAsset" and out:
        # Section 2.2 / 7.2: codes on myAsset make Upbit answer WRONG_FORMAT and close.
        raise InvalidInputError("myAsset takes no codes (Upbit answers WRONG_FORMAT)")
    if not out and kind not in PRIVATE_TYPES:
        raise InvalidInputError(f"{kind}: give at least one market code, e.g. ['KRW-BTC']")
    return tuple(out)


def _keys(sub: Subscription[Any], codes: Iterable[str]) -> list[StreamKey]:
    level = sub.level if sub.type == "orderbook" else None
    return [(sub.type, code, level) for code in codes]


def _info(sub: Subscription[Any]) -> SubscriptionInfo:
    return SubscriptionInfo(
        sub_id=int(sub.sub_id),
        component=sub.component,
        type=sub.type,
        requested=sub.requested,
        codes=sub.codes,
        depth=sub.depth,
        level=sub.level,
        policy=sub.policy,
        pending=sub.pending,
    )
