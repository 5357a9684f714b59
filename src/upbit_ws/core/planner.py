"""The request planner: desired versus confirmed state, as ONE full request per connection.

Every request replaces the connection's whole subscription (docs/protocol.md section 3), so a
plan always carries the complete desired set, never a delta. The planner decides the flags:

* a stream the server is certainly streaming already goes with ``is_only_realtime`` so that a
  change does not cause a snapshot storm; a new stream gets its snapshot (no flag; section
  2.2). A type with both becomes two type objects of the same type (docs example in section
  2.3 shows two ``orderbook`` objects in one request).
* after a reconnect (:meth:`SubscriptionPlanner.connection_lost`) nothing is streaming, so
  everything gets a fresh snapshot (section 3.2: the server keeps nothing across connections).
* orderbook depths are merged by the book to the largest requested and sent as a ``.N`` code
  suffix, omitted for the default 30 (section 2.3); different levels are separate objects;
  level 0 (native) is not sent at all (the Indonesia host errors on a ``level`` it dislikes,
  section 1.2).
* output is deterministic (types in wire-constant order, then level, realtime object before
  snapshot object, sorted codes), so plans compare equal and a no-op change sends nothing.

Confirmation model. Upbit sends no acknowledgement (section 1.3), so the shell tells the
planner what happened:

* :meth:`~SubscriptionPlanner.sent` when the request went out. What is "certainly streaming"
  narrows to what the new request keeps (a stream the request drops stops on the server).
* :meth:`~SubscriptionPlanner.confirmed` when the shell considers it applied: at the first data
  frame of the request, or after a quiet window with no error frame (JKorf and the SDK use
  about 1 s). A confirmation for a plan that is no longer the one in flight is stale and
  ignored (a newer request has replaced it on the server).
* :meth:`~SubscriptionPlanner.rejected` when an error frame saying the request itself was
  malformed answered it (section 7.2: ``INVALID_PARAM``, ``WRONG_FORMAT``, ``NO_*``; the shell
  decides which names count). Upbit then closes the socket (section 7.3), so the shell also
  calls ``connection_lost``. One rejection proves little: a spurious error frame (issue #9:
  one ``INVALID_PARAM`` answering a valid request) must not leave a valid subscription unsent.
  So the first rejection of a desired state is not remembered: the same state goes out again
  on the next socket, paced by the reconnect backoff. Only a state rejected a second time in a
  row (the desired state unchanged in between, nothing confirmed) is remembered and not
  proposed again until the desired state changes; meanwhile the planner falls back to the
  part of the desired state that Upbit last accepted, so one bad subscription does not stop
  every other component's data, and the shell fails the subscriptions that added the refused
  streams (:meth:`~SubscriptionPlanner.last_accepted` says which were accepted). A state made
  only of streams Upbit accepted before cannot be malformed, so a rejection of it is never
  remembered: a desired state that shares any stream with the last accepted one always has a
  non-empty target (section 7.3: do not retry a malformed request as is, forever).
* :meth:`~SubscriptionPlanner.request_snapshot` when a new subscriber joins a stream the
  server is already sending and the shell has no cached message to give it: the next plan
  sends that stream without ``is_only_realtime``, so Upbit sends its snapshot again.
* :meth:`~SubscriptionPlanner.connection_lost` clears what is streaming and what is in flight.

An empty desired state cannot be sent (Upbit rejects a request without type objects, and an
empty ``codes`` list is ``INVALID_PARAM``, section 7.2). When something is still streaming and
nothing is wanted, :meth:`~SubscriptionPlanner.plan_for` returns an empty :class:`Plan`
(``plan.is_empty``). There is no unsubscribe (section 3.2), and closing the socket would cost a
reconnect and a connect-limit slot, so the shell keeps the socket: it sends what quiets the
connection (on public, a one-frame ``is_only_snapshot`` request; on private, nothing, the old
subscription stays and its rare frames are dropped as unwanted), then calls ``sent`` and
``confirmed`` with the empty plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from typing import Final

from upbit_ws.core.book import (
    ALL_CODES,
    StreamKey,
    SubscriptionBook,
    WantedStream,
)
from upbit_ws.core.constants import (
    CONNECTIONS,
    DATA_TYPES,
    DEFAULT_ORDERBOOK_DEPTH,
    PRIVATE_TYPES,
    ConnectionKind,
    DataType,
    check_connection,
)
from upbit_ws.core.encode import TypeRequest, orderbook_code
from upbit_ws.core.errors import InvalidInputError

__all__ = [
    "Plan",
    "PlannerStatistics",
    "SubscriptionPlanner",
    "build_plan",
    "wire_code",
]

_TYPE_RANK: Final[dict[str, int]] = {t: i for i, t in enumerate(DATA_TYPES)}
#: Rejections in a row after which a desired state counts as malformed (issue #9: one error
#: frame answering a valid request happens; the second in a row is believed).
_REJECTIONS_TO_REMEMBER: Final = 2


@dataclass(frozen=True, slots=True)
class Plan:
    """One full request for one connection, and the desired state it realises.

    ``types`` is what goes to :func:`~upbit_ws.core.encode.encode_request`; ``desired`` is the
    canonical desired state (sorted :class:`~upbit_ws.core.book.WantedStream` values) that the
    server streams once the request is applied. An empty plan means "nothing to subscribe":
    its ``types`` are empty and cannot be sent as they are (see the module docstring).
    """

    connection: ConnectionKind
    types: tuple[TypeRequest, ...]
    desired: tuple[WantedStream, ...]

    @property
    def is_empty(self) -> bool:
        """Tell whether there is nothing to subscribe (no request may be sent)."""
        return not self.types

    def snapshot_streams(self) -> tuple[WantedStream, ...]:
        """Return the streams this request asks a snapshot for (not sent ``is_only_realtime``)."""
        realtime = {
            (t.type, t.level or 0, c) for t in self.types if t.is_only_realtime for c in t.codes
        }
        return tuple(
            w
            for w in self.desired
            if w.type in PRIVATE_TYPES or (w.type, w.level or 0, wire_code(w)) not in realtime
        )


@dataclass(frozen=True, slots=True)
class PlannerStatistics:
    """Counters of the planner for one connection."""

    connection: ConnectionKind
    plans_sent: int
    plans_confirmed: int
    plans_rejected: int
    #: Rejections of a state made only of streams Upbit accepted before (not remembered).
    rejections_ignored: int
    #: Streams re-sent with a snapshot for a late joiner that had nothing to be seeded with.
    snapshots_requested: int
    stale_confirmations: int
    connections_lost: int
    streaming: int
    in_flight: bool


@dataclass(slots=True)
class _ConnectionState:
    # Streams the server is certainly sending now: those of the last confirmed request, minus
    # whatever a later request dropped. Only these may go with is_only_realtime.
    streaming: frozenset[WantedStream] = frozenset()
    # The desired state of the last confirmed request since the socket opened; () after a loss.
    confirmed: tuple[WantedStream, ...] = ()
    # The desired state of the last confirmed request ever; survives reconnects. The fallback
    # basis after a rejection.
    last_good: frozenset[WantedStream] = frozenset()
    in_flight: Plan | None = None
    # Desired states Upbit refused, remembered while the book's desired state is unchanged.
    rejected: set[tuple[WantedStream, ...]] = field(default_factory=set)
    rejected_for: tuple[WantedStream, ...] | None = None
    # The desired state rejected once (not yet remembered) and how often in a row.
    strike_for: tuple[WantedStream, ...] | None = None
    strikes: int = 0
    # Streams a new subscriber joined with nothing cached to seed it: the next plan sends
    # them with a snapshot even though the server streams them already.
    resnapshot: set[StreamKey] = field(default_factory=set)
    sent: int = 0
    confirmed_count: int = 0
    rejected_count: int = 0
    ignored_rejections: int = 0
    snapshots_requested: int = 0
    stale: int = 0
    lost: int = 0


def wire_code(stream: WantedStream) -> str:
    """Return the code as sent: orderbook codes carry ``.N`` unless N is the default 30."""
    depth = stream.depth
    if stream.type == "orderbook" and depth is not None and depth != DEFAULT_ORDERBOOK_DEPTH:
        return orderbook_code(stream.code, depth)
    return stream.code


def build_plan(
    connection: ConnectionKind,
    desired: Iterable[WantedStream],
    *,
    streaming: Set[WantedStream] = frozenset(),
) -> Plan:
    """Return the request that realises ``desired``, given the streams already ``streaming``.

    Streams in ``streaming`` go with ``is_only_realtime`` (public types only: private types
    have no snapshot and accept no such flag); the others get their snapshot.
    """
    wants = tuple(sorted(set(desired), key=WantedStream.sort_key))
    groups: dict[tuple[int, int | float, int], list[str]] = {}
    meta: dict[tuple[int, int | float, int], tuple[DataType, int | float | None, bool]] = {}
    for want in wants:
        realtime = want.type not in PRIVATE_TYPES and want in streaming
        # Realtime object (0) before snapshot object (1): a fixed order for comparable plans.
        gkey = (_TYPE_RANK[want.type], want.level or 0, 0 if realtime else 1)
        meta[gkey] = (want.type, want.level if want.level else None, realtime)
        codes = groups.setdefault(gkey, [])
        if want.code != ALL_CODES:
            codes.append(wire_code(want))
    types: list[TypeRequest] = []
    for gkey in sorted(groups):
        kind, wire_level, realtime = meta[gkey]
        # myOrder for all markets and myAsset go without codes (section 2.2); the book never
        # mixes ALL_CODES with per-market myOrder codes.
        types.append(
            TypeRequest(
                type=kind,
                codes=tuple(sorted(groups[gkey])),
                level=wire_level,
                is_only_realtime=realtime,
            )
        )
    return Plan(connection=connection, types=tuple(types), desired=wants)


class SubscriptionPlanner:
    """Turns a :class:`~upbit_ws.core.book.SubscriptionBook` into one request per connection.

    Pure and clock-free; the shell calls :meth:`plan_for` after the book changed (coalesced
    over a few ms and paced by the rate limiter) and reports what happened with :meth:`sent`,
    :meth:`confirmed`, :meth:`rejected` and :meth:`connection_lost`.
    """

    def __init__(self, book: SubscriptionBook) -> None:
        self._book = book
        self._states: dict[ConnectionKind, _ConnectionState] = {
            c: _ConnectionState() for c in CONNECTIONS
        }

    @property
    def book(self) -> SubscriptionBook:
        """Return the book this planner reads."""
        return self._book

    def plan_for(self, connection: ConnectionKind) -> Plan | None:
        """Return the next request for ``connection``, or ``None`` when there is nothing to do.

        ``None`` means the target state equals what was last sent (in flight) or, with
        nothing in flight, what is confirmed, and no stream of it waits for a fresh snapshot
        (:meth:`request_snapshot`). The target is the book's desired state, unless Upbit
        rejected exactly that state; then it is the part of it Upbit last accepted.
        """
        state = self._state(connection)
        desired = self._book.wanted(connection)
        if state.rejected_for is not None and desired != state.rejected_for:
            state.rejected.clear()
            state.rejected_for = None
        target = self._target(state, desired)
        current = state.in_flight.desired if state.in_flight is not None else state.confirmed
        streaming = state.streaming
        resnapshot = state.resnapshot
        if resnapshot:
            streaming = frozenset(w for w in streaming if w.key not in resnapshot)
            if target == current and not any(w.key in resnapshot for w in target):
                return None
        elif target == current:
            return None
        return build_plan(connection, target, streaming=streaming)

    def fresh_plan(self, connection: ConnectionKind) -> Plan:
        """Return the full request a new socket would get now, changing nothing.

        Everything with its snapshot, as after :meth:`connection_lost`: what a spare socket
        opened beside the current one (a hedge, :mod:`upbit_ws.core.session`) is sent.
        """
        state = self._state(connection)
        return build_plan(connection, self._target(state, self._book.wanted(connection)))

    def sent(self, connection: ConnectionKind, plan: Plan) -> None:
        """Record that ``plan`` was sent on ``connection`` and is now in flight."""
        state = self._state(connection)
        self._check_plan(connection, plan)
        # The new request replaces the old one on the server (section 3): whatever it drops
        # stops streaming even before it is confirmed.
        state.streaming = state.streaming.intersection(plan.desired)
        state.in_flight = plan
        state.sent += 1
        if state.resnapshot:
            state.resnapshot.difference_update(w.key for w in plan.snapshot_streams())

    def confirmed(self, connection: ConnectionKind, plan: Plan) -> bool:
        """Record that ``plan`` is applied; return ``False`` (and change nothing) if stale.

        A plan is stale when it is not the one in flight: a newer request replaced it, or the
        connection was lost since.
        """
        state = self._state(connection)
        self._check_plan(connection, plan)
        if state.in_flight is None or state.in_flight != plan:
            state.stale += 1
            return False
        state.in_flight = None
        state.confirmed = plan.desired
        state.streaming = frozenset(plan.desired)
        state.last_good = frozenset(plan.desired)
        state.confirmed_count += 1
        state.strike_for = None
        state.strikes = 0
        return True

    def rejected(self, connection: ConnectionKind, plan: Plan) -> bool:
        """Record that Upbit refused ``plan`` as malformed; return whether it is remembered.

        A remembered state is not proposed again until the book's desired state changes.
        A state made only of streams Upbit accepted before (a subset of the last confirmed
        request) is not remembered: its content was accepted, so the error was about
        something else, and refusing to send it would leave every component without data.
        Any other state is remembered only when rejected a second time in a row: the first
        rejection may be spurious, so the state is sent again (after the reconnect backoff).
        """
        state = self._state(connection)
        self._check_plan(connection, plan)
        if state.in_flight == plan:
            state.in_flight = None
        state.rejected_count += 1
        if state.last_good.issuperset(plan.desired):
            state.ignored_rejections += 1
            return False
        if state.strike_for != plan.desired:
            state.strike_for = plan.desired
            state.strikes = 0
        state.strikes += 1
        if state.strikes < _REJECTIONS_TO_REMEMBER:
            state.ignored_rejections += 1
            return False
        state.rejected.add(plan.desired)
        if state.rejected_for is None:
            state.rejected_for = self._book.wanted(connection)
        return True

    def last_accepted(self, connection: ConnectionKind) -> frozenset[WantedStream]:
        """Return the desired state of the last request Upbit accepted (survives reconnects)."""
        return self._state(connection).last_good

    def request_snapshot(self, connection: ConnectionKind, keys: Iterable[StreamKey]) -> bool:
        """Ask that the streams of ``keys`` get a fresh snapshot with the next request.

        For a new subscriber joining a stream the server already sends, when the shell has no
        cached message to seed it with: sent ``is_only_realtime`` again, the stream would give
        it nothing until the next change, which on a quiet market or a candle can take minutes.
        Returns whether anything changed (some of ``keys`` are streaming public streams); the
        shell then wakes its flusher. Private streams have no snapshot and are ignored.
        """
        state = self._state(connection)
        wanted = set(keys)
        hit = {w.key for w in state.streaming if w.key in wanted and w.type not in PRIVATE_TYPES}
        hit -= state.resnapshot
        if not hit:
            return False
        state.resnapshot |= hit
        state.snapshots_requested += len(hit)
        return True

    def connection_lost(self, connection: ConnectionKind) -> None:
        """Forget what was streaming and in flight: the next plan re-sends everything fresh."""
        state = self._state(connection)
        state.streaming = frozenset()
        state.confirmed = ()
        state.in_flight = None
        state.resnapshot.clear()
        state.lost += 1

    def confirmed_state(self, connection: ConnectionKind) -> tuple[WantedStream, ...]:
        """Return the desired state of the last confirmed request on the current socket."""
        return self._state(connection).confirmed

    def streaming(self, connection: ConnectionKind) -> frozenset[WantedStream]:
        """Return the streams the server is certainly sending (sent ``is_only_realtime``)."""
        return self._state(connection).streaming

    def in_flight(self, connection: ConnectionKind) -> Plan | None:
        """Return the plan sent and not yet confirmed or rejected, if any."""
        return self._state(connection).in_flight

    def statistics(self, connection: ConnectionKind) -> PlannerStatistics:
        """Return the planner's counters for ``connection``."""
        state = self._state(connection)
        return PlannerStatistics(
            connection=connection,
            plans_sent=state.sent,
            plans_confirmed=state.confirmed_count,
            plans_rejected=state.rejected_count,
            rejections_ignored=state.ignored_rejections,
            snapshots_requested=state.snapshots_requested,
            stale_confirmations=state.stale,
            connections_lost=state.lost,
            streaming=len(state.streaming),
            in_flight=state.in_flight is not None,
        )

    def __repr__(self) -> str:
        parts = " ".join(
            f"{c}=streaming:{len(s.streaming)},in_flight:{s.in_flight is not None}"
            for c, s in self._states.items()
        )
        return f"<SubscriptionPlanner {parts}>"

    def _state(self, connection: ConnectionKind) -> _ConnectionState:
        return self._states[check_connection(connection)]

    @staticmethod
    def _check_plan(connection: ConnectionKind, plan: Plan) -> None:
        if not isinstance(plan, Plan) or plan.connection != connection:
            raise InvalidInputError(f"plan {plan!r} is not a plan for the {connection} connection")

    @staticmethod
    def _target(
        state: _ConnectionState, desired: tuple[WantedStream, ...]
    ) -> tuple[WantedStream, ...]:
        if desired not in state.rejected:
            return desired
        # Fall back to what Upbit accepted last and is still wanted (section 7.3: a rejected
        # request must not be retried as is, but other components keep their data). The
        # fallback is a subset of the last accepted state, which rejected() never remembers,
        # so it is never empty while any wanted stream was accepted before.
        return tuple(w for w in desired if w in state.last_good)
