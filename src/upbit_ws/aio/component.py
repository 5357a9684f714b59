"""Components and the merged-subscription view: the public face of the subscription layer.

A *component* is a named part of an application (``"coin_list"``, ``"orderbook_view"``,
``"chart"``, a strategy). ``ws.component(name)`` returns a :class:`Component` handle; every
subscription it makes is reference-counted under that name in the one subscription book, so
components never overwrite each other's subscriptions the way separate Upbit requests do
(docs/protocol.md section 3). ``component.aclose()`` drops all of them at once.

:class:`SubscriptionsView` is what ``ws.subscriptions()`` returns: per connection, the merged
desired state, what Upbit confirmed, the last request sent, and (when asked) Upbit's own
answer to LIST_SUBSCRIPTIONS; and per component, what it holds. ``str(view)`` renders it for a
terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

from upbit_ws.aio.logcontext import log_context
from upbit_ws.aio.stream import Subscription
from upbit_ws.core.book import WantedStream
from upbit_ws.core.buffer import OverflowPolicy
from upbit_ws.core.constants import ConnectionKind
from upbit_ws.core.encode import TypeRequest
from upbit_ws.core.messages import (
    Candle,
    CandleType,
    MyAsset,
    MyOrder,
    Orderbook,
    SubscribedType,
    Ticker,
    Trade,
)

__all__ = [
    "Component",
    "ComponentOwner",
    "ConnectionView",
    "SubscriptionInfo",
    "SubscriptionsView",
]


class ComponentOwner(Protocol):
    """What a :class:`Component` asks of the subscription service."""

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
        """Create a subscription for ``component``."""
        ...

    def subscriptions_of(self, component: str) -> tuple[Subscription[Any], ...]:
        """Return the live subscriptions of ``component``."""
        ...

    def close_component(self, component: str) -> None:
        """Drop every subscription of ``component``."""
        ...


class Component:
    """A named holder of subscriptions; get one with ``ws.component(name)``.

    Handles are cheap: two handles with the same name are the same component.
    """

    __slots__ = ("_owner", "name")

    def __init__(self, owner: ComponentOwner, name: str) -> None:
        self._owner = owner
        self.name = name

    def __repr__(self) -> str:
        return f"<Component {self.name!r} subscriptions={len(self.subscriptions())}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Component):
            return NotImplemented
        return self._owner is other._owner and self.name == other.name

    def __hash__(self) -> int:
        return hash((id(self._owner), self.name))

    @overload
    def subscribe(
        self,
        type: Literal["ticker"],
        codes: Iterable[str],
        *,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[Ticker]: ...

    @overload
    def subscribe(
        self,
        type: Literal["trade"],
        codes: Iterable[str],
        *,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
        backfill: bool = False,
    ) -> Subscription[Trade]: ...

    @overload
    def subscribe(
        self,
        type: Literal["orderbook"],
        codes: Iterable[str],
        *,
        depth: int | None = None,
        level: int | float | None = None,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[Orderbook]: ...

    @overload
    def subscribe(
        self,
        type: CandleType,
        codes: Iterable[str],
        *,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[Candle]: ...

    @overload
    def subscribe(
        self,
        type: Literal["myOrder"],
        codes: Iterable[str] = (),
        *,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[MyOrder]: ...

    @overload
    def subscribe(
        self,
        type: Literal["myAsset"],
        codes: Iterable[str] = (),
        *,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[MyAsset]: ...

    @overload
    def subscribe(
        self,
        type: str,
        codes: Iterable[str] = (),
        *,
        depth: int | None = None,
        level: int | float | None = None,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
        backfill: bool = False,
    ) -> Subscription[Any]: ...

    def subscribe(
        self,
        type: str,
        codes: Iterable[str] = (),
        *,
        depth: int | None = None,
        level: int | float | None = None,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
        backfill: bool = False,
    ) -> Subscription[Any]:
        """Subscribe this component to ``type`` for ``codes`` and return the subscription.

        ``type`` is ``ticker``, ``trade``, ``orderbook``, ``candle.1s`` ... ``candle.240m``,
        ``myOrder`` (codes optional: none means every market) or ``myAsset`` (no codes).
        Codes are upper-cased; ``KRW-*`` style wildcards expand through the market list and
        follow new listings and delistings. ``depth`` (1, 5, 15 or 30; default 30) and
        ``level`` (price grouping, default 0) apply to ``orderbook`` only. ``policy``
        overrides the overflow policy (``latest``, ``drop_oldest``, ``never_drop``) and
        ``capacity`` the buffer bound. ``backfill`` (``trade`` only): after a reconnect,
        the missed trades are fetched from ``GET /v1/trades/ticks`` and delivered in order
        before the live ones, each ``sequential_id`` once; a gap older than that API returns
        stays a :class:`~upbit_ws.Gap` in :meth:`Subscription.items`.

        Raises :class:`~upbit_ws.UnknownCodeError` (with close matches) for a code Upbit does
        not list, and :class:`~upbit_ws.InvalidInputError` for any other bad input. The
        merged request goes out within a few milliseconds, paced by the rate limiter.
        """
        with log_context(component=self.name):
            return self._owner.subscribe_for(
                self.name,
                type,
                codes,
                depth=depth,
                level=level,
                policy=policy,
                capacity=capacity,
                backfill=backfill,
            )

    def subscriptions(self) -> tuple[Subscription[Any], ...]:
        """Return this component's live subscriptions, oldest first."""
        return self._owner.subscriptions_of(self.name)

    async def aclose(self) -> None:
        """Drop every subscription of this component; their iterations end."""
        with log_context(component=self.name):
            self._owner.close_component(self.name)


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """One live subscription as shown in :class:`SubscriptionsView`."""

    sub_id: int
    component: str
    type: str
    requested: tuple[str, ...]
    codes: tuple[str, ...]
    depth: int | None
    level: int | float | None
    policy: OverflowPolicy
    pending: int

    def __str__(self) -> str:
        shown = ",".join(self.requested) if self.requested else "(all)"
        if any("*" in r for r in self.requested):
            shown += f" ({len(self.codes)} codes)"
        options = ""
        if self.type == "orderbook":
            options = f" depth={self.depth}" + (f" level={self.level:g}" if self.level else "")
        return f"{self.type} {shown}{options} [{self.policy}]"


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """The merged subscription of one connection.

    Everything describes the current socket: ``desired`` is the union of every component's
    interest; ``confirmed`` what the last applied request on this socket carries (nothing
    after a reconnect until the fresh request is applied); ``last_request`` the type objects
    of the last request written on this socket; ``applied`` whether that request is the
    confirmed one (not rejected, not replaced while in flight); ``resent`` whether the request
    in flight is the first on a new socket and carries exactly the desired state, made only
    of streams Upbit accepted before (a resubscription after a reconnect, confirmed by no
    data: only a quiet window could confirm it, and ``wait_ready()`` does not wait for it);
    ``server`` Upbit's LIST_SUBSCRIPTIONS answer when it was asked for (else ``None``).
    ``state`` is the connection's state, ``"not open yet"`` before its first socket, and
    ``"detached"`` when no connection carries these types (private without credentials).
    """

    connection: ConnectionKind
    state: str
    desired: tuple[WantedStream, ...]
    confirmed: tuple[WantedStream, ...]
    in_flight: bool
    last_request: tuple[TypeRequest, ...]
    requests_sent: int
    server: tuple[SubscribedType, ...] | None = None
    applied: bool = False
    resent: bool = False

    def lines(self) -> list[str]:
        """Return a compact text rendering, one line per request type object."""
        if self.state == "detached" and not self.desired and not self.requests_sent:
            return [f"{self.connection}: no connection"]
        if self.in_flight and self.resent:
            status = "last request in flight (re-sent, accepted before)"
        elif self.in_flight:
            status = "last request in flight"
        elif self.applied:
            status = "last request applied"
        elif not self.last_request:
            status = "nothing sent on this socket yet"
        else:
            status = "last request not applied"
        head = (
            f"{self.connection} ({self.state}): {len(self.desired)} streams wanted, "
            f"{len(self.confirmed)} confirmed, {status}, "
            f"{self.requests_sent} requests sent"
        )
        out = [head]
        for req in self.last_request:
            out.append("  sent   " + _describe_request(req))
        if self.server is not None:
            if not self.server:
                out.append("  upbit  (nothing subscribed)")
            for item in self.server:
                level = f" level={item.level:g}" if item.level else ""
                out.append(f"  upbit  {item.type} {_codes_text(item.codes)}{level}")
        return out


@dataclass(frozen=True, slots=True)
class SubscriptionsView:
    """What ``ws.subscriptions()`` returns: the merged state per connection and per component."""

    public: ConnectionView
    private: ConnectionView
    components: Mapping[str, tuple[SubscriptionInfo, ...]]

    def __str__(self) -> str:
        out = [*self.public.lines(), *self.private.lines()]
        for name, subs in self.components.items():
            out.append(f"component {name}: " + "; ".join(str(s) for s in subs))
        return "\n".join(out)


def _codes_text(codes: tuple[str, ...]) -> str:
    if len(codes) <= 4:
        return ",".join(codes) or "(all)"
    return f"{','.join(codes[:3])},... ({len(codes)} codes)"


def _describe_request(req: TypeRequest) -> str:
    flags = " realtime-only" if req.is_only_realtime else ""
    flags += " snapshot-only" if req.is_only_snapshot else ""
    level = f" level={req.level:g}" if req.level else ""
    return f"{req.type} {_codes_text(req.codes)}{level}{flags}"
