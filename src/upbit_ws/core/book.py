"""The subscription book: who wants which stream, merged into one desired state per connection.

Upbit replaces a connection's whole subscription on every request and has no add and no
unsubscribe (docs/protocol.md section 3), so the union of what every component wants must be
owned in one place. This is that place. It is pure bookkeeping: no I/O, no clock. The asyncio
shell calls it; :mod:`upbit_ws.core.planner` turns its desired state into requests, and the
shell's router asks it who receives a frame.

Model:

* A *component* (a name such as ``"chart"``) holds any number of *subscriptions*, each with an
  integer handle (:data:`SubId`) returned by :meth:`SubscriptionBook.subscribe`.
* A subscription is one data type, a set of codes and, for ``orderbook`` only, a ``depth``
  (units per frame, 1/5/15/30, default 30; section 2.3) and a ``level`` (price grouping unit,
  default 0 = native tick; section 2.3).
* Interest is counted per stream key ``(type, code, level)``; the book keeps, per key, which
  subscriptions want it and at what depth. A key with no holder is removed at once, so nothing
  leaks when the last holder leaves.
* The desired state of a connection is the union of its keys, as sorted
  :class:`WantedStream` values; orderbook depths merge to the largest requested.

Codes arrive already normalised and checked against the market list (the shell expands
``KRW-*`` first), but the book re-checks their shape so that misuse is an
:class:`~upbit_ws.InvalidInputError` and never a corrupt state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NewType, cast

from upbit_ws.core.codes import normalize_code
from upbit_ws.core.constants import (
    DATA_TYPES,
    DEFAULT_ORDERBOOK_DEPTH,
    ORDERBOOK_DEPTHS,
    PRIVATE_TYPES,
    ConnectionKind,
    DataType,
    check_connection,
)
from upbit_ws.core.errors import InvalidInputError

__all__ = [
    "ALL_CODES",
    "BookStatistics",
    "StreamKey",
    "SubId",
    "Subscription",
    "SubscriptionBook",
    "WantedStream",
    "connection_of",
]

#: The handle of one subscription, unique for the life of a book.
SubId = NewType("SubId", int)

#: The code of a stream that is not about one market: ``myOrder`` for all markets (sent without
#: ``codes``, section 2.2) and ``myAsset`` (which must not carry ``codes``, section 2.2).
ALL_CODES: Final = "*"

#: ``(type, code, level)``: what a frame is routed by. ``level`` is the orderbook grouping unit
#: (0 = native) and ``None`` for every other type.
StreamKey = tuple[DataType, str, int | float | None]

_TYPE_RANK: Final[dict[str, int]] = {t: i for i, t in enumerate(DATA_TYPES)}


def connection_of(type: DataType) -> ConnectionKind:
    """Return the connection that carries ``type``: ``"private"`` for myOrder/myAsset."""
    if type not in _TYPE_RANK:
        raise InvalidInputError(f"unknown data type {type!r}; use one of {', '.join(DATA_TYPES)}")
    return "private" if type in PRIVATE_TYPES else "public"


@dataclass(frozen=True, slots=True)
class Subscription:
    """One subscription as the book holds it.

    ``codes`` is sorted and without duplicates; for ``myOrder`` an empty ``codes`` means all
    markets, for ``myAsset`` it is always empty, for public types it means "nothing for now"
    (for example a wildcard that matched no listed market yet). ``depth`` and ``level`` are set
    for ``orderbook`` only (defaults filled in) and ``None`` otherwise.
    """

    sub_id: SubId
    component: str
    type: DataType
    codes: tuple[str, ...]
    depth: int | None
    level: int | float | None

    @property
    def connection(self) -> ConnectionKind:
        """Return the connection that carries this subscription."""
        return connection_of(self.type)


@dataclass(frozen=True, slots=True)
class WantedStream:
    """One merged stream a connection must carry: the unit of the desired state.

    ``code`` is :data:`ALL_CODES` for ``myOrder`` on all markets and for ``myAsset``.
    ``depth`` is the largest depth any live subscriber asked for (orderbook only), ``level``
    the grouping unit (orderbook only, 0 = native). Two values are equal exactly when the same
    request object would carry them, so a changed depth is a different stream.
    """

    type: DataType
    code: str
    level: int | float | None = None
    depth: int | None = None

    @property
    def key(self) -> StreamKey:
        """Return the routing key ``(type, code, level)`` of this stream."""
        return (self.type, self.code, self.level)

    def sort_key(self) -> tuple[int, int | float, str]:
        """Return the canonical order: data type order of the wire constants, level, code."""
        return (_TYPE_RANK[self.type], self.level or 0, self.code)

    def __str__(self) -> str:
        if self.type != "orderbook":
            return f"{self.type} {self.code}"
        depth = "" if self.depth in (None, DEFAULT_ORDERBOOK_DEPTH) else f".{self.depth}"
        level = f" level={self.level:g}" if self.level else ""
        return f"orderbook {self.code}{depth}{level}"


@dataclass(frozen=True, slots=True)
class BookStatistics:
    """A snapshot of the book's size, for dashboards and metrics."""

    version: int
    components: int
    subscriptions: int
    public_streams: int
    private_streams: int


class SubscriptionBook:
    """Reference-counted interest of many components, merged per connection.

    Every mutation that changes who wants what bumps :attr:`version`, so a router can rebuild
    its O(1) index lazily.
    """

    def __init__(self) -> None:
        self._next_id = 1
        #: The change counter: it grows on every change of interest. A plain attribute, not a
        #: property: the router compares it on every frame.
        self.version = 0
        self._subs: dict[SubId, Subscription] = {}
        self._by_component: dict[str, dict[SubId, None]] = {}
        # Live interest per stream key: the subscriptions holding it and the depth each asked
        # for (None for non-orderbook). Keys with no holder are deleted at once.
        self._interest: dict[StreamKey, dict[SubId, int | None]] = {}
        self._wanted_cache: dict[ConnectionKind, tuple[int, tuple[WantedStream, ...]]] = {}

    # -- mutations -------------------------------------------------------------------------

    def subscribe(
        self,
        component: str,
        type: DataType,
        codes: Iterable[str] = (),
        *,
        depth: int | None = None,
        level: int | float | None = None,
    ) -> SubId:
        """Register ``component``'s interest in ``type`` for ``codes`` and return its handle.

        ``depth`` and ``level`` apply to ``orderbook`` only. Raises
        :class:`~upbit_ws.InvalidInputError` for an unknown type, a malformed code, codes on
        ``myAsset``, or an option on a type that has none.
        """
        if not isinstance(component, str) or not component:
            raise InvalidInputError(f"component must be a non-empty name, not {component!r}")
        kind = _check_type(type)
        norm_depth, norm_level = _check_options(kind, depth, level)
        norm_codes = _check_codes(kind, codes)
        sub_id = SubId(self._next_id)
        self._next_id += 1
        sub = Subscription(sub_id, component, kind, norm_codes, norm_depth, norm_level)
        self._subs[sub_id] = sub
        self._by_component.setdefault(component, {})[sub_id] = None
        self._add_interest(sub)
        self.version += 1
        return sub_id

    def update(self, sub_id: SubId, codes: Iterable[str]) -> None:
        """Replace the codes of subscription ``sub_id`` (its type and options stay)."""
        sub = self._get(sub_id)
        norm_codes = _check_codes(sub.type, codes)
        if norm_codes == sub.codes:
            return
        self._remove_interest(sub)
        new = Subscription(sub_id, sub.component, sub.type, norm_codes, sub.depth, sub.level)
        self._subs[sub_id] = new
        self._add_interest(new)
        self.version += 1

    def unsubscribe(self, sub_id: SubId) -> None:
        """Remove subscription ``sub_id``; an unknown or already removed id is misuse."""
        sub = self._get(sub_id)
        self._drop(sub)
        self.version += 1

    def drop_component(self, component: str) -> tuple[SubId, ...]:
        """Remove every subscription of ``component`` and return their ids (maybe none)."""
        held = self._by_component.get(component)
        if not held:
            return ()
        removed = tuple(held)
        for sub_id in removed:
            self._drop(self._subs[sub_id])
        self.version += 1
        return removed

    # -- queries -----------------------------------------------------------------------------

    def subscription(self, sub_id: SubId) -> Subscription:
        """Return subscription ``sub_id``; raises InvalidInputError when it is not live."""
        return self._get(sub_id)

    def subscriptions(self, component: str | None = None) -> tuple[Subscription, ...]:
        """Return the live subscriptions, of one component or of all, in creation order."""
        if component is None:
            return tuple(self._subs.values())
        return tuple(self._subs[s] for s in self._by_component.get(component, ()))

    def components(self) -> tuple[str, ...]:
        """Return the names of the components holding at least one subscription."""
        return tuple(self._by_component)

    def wanted(self, connection: ConnectionKind) -> tuple[WantedStream, ...]:
        """Return the merged desired state of ``connection``, in canonical (sorted) order.

        This is the union of every live subscription on that connection: orderbook depth is
        the largest requested per (code, level), and ``myOrder`` for all markets absorbs the
        per-market ``myOrder`` interest (section 2.2: no codes means all markets).
        """
        check_connection(connection)
        cached = self._wanted_cache.get(connection)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        private = connection == "private"
        all_orders = ("myOrder", ALL_CODES, None) in self._interest
        streams: list[WantedStream] = []
        for (kind, code, level), holders in self._interest.items():
            if (kind in PRIVATE_TYPES) != private:
                continue
            if kind == "myOrder" and all_orders and code != ALL_CODES:
                continue
            depth = _merged_depth(holders) if kind == "orderbook" else None
            streams.append(WantedStream(kind, code, level, depth))
        streams.sort(key=WantedStream.sort_key)
        result = tuple(streams)
        self._wanted_cache[connection] = (self.version, result)
        return result

    def subscribers(
        self, type: DataType, code: str | None = None, level: int | float | None = None
    ) -> dict[SubId, int | None]:
        """Return which subscriptions want frames of ``(type, code, level)``, with their depth.

        The depth is what each subscriber asked for (orderbook only; the router truncates the
        merged book to it), ``None`` for other types. ``level`` defaults to 0 for orderbook
        (Indonesia frames carry no ``level`` key, section 15). A ``myOrder`` frame also goes to
        subscribers of all markets; ``myAsset`` has no code, so ``code`` is ignored for it.
        """
        if type not in _TYPE_RANK:
            return {}
        if type == "myAsset":
            code = ALL_CODES
        key_level = _routing_level(type, level)
        found = dict(self._interest.get((type, code or ALL_CODES, key_level), {}))
        if type == "myOrder" and code not in (None, ALL_CODES):
            found.update(self._interest.get(("myOrder", ALL_CODES, None), {}))
        return found

    def routing_table(self) -> dict[StreamKey, dict[SubId, int | None]]:
        """Return a copy of the whole interest index, for a router rebuilding its lookup.

        Keys are ``(type, code, level)``; ``myOrder`` for all markets and ``myAsset`` use
        :data:`ALL_CODES` as code, so a router looks up the frame's code first and then, for
        ``myOrder``, ``ALL_CODES`` (or calls :meth:`subscribers`, which does both).
        """
        return {key: dict(holders) for key, holders in self._interest.items()}

    def refcounts(self) -> dict[tuple[str, DataType, str, int | None, int | float | None], int]:
        """Return reference counts per ``(component, type, code, depth, level)``.

        A component holding two subscriptions to the same stream counts 2. ``myOrder`` for all
        markets and ``myAsset`` count under :data:`ALL_CODES`.
        """
        counts: dict[tuple[str, DataType, str, int | None, int | float | None], int] = {}
        for sub in self._subs.values():
            for key in _keys_of(sub):
                entry = (sub.component, sub.type, key[1], sub.depth, sub.level)
                counts[entry] = counts.get(entry, 0) + 1
        return counts

    def statistics(self) -> BookStatistics:
        """Return a snapshot of the book's size."""
        return BookStatistics(
            version=self.version,
            components=len(self._by_component),
            subscriptions=len(self._subs),
            public_streams=len(self.wanted("public")),
            private_streams=len(self.wanted("private")),
        )

    def __len__(self) -> int:
        return len(self._subs)

    def __repr__(self) -> str:
        return (
            f"<SubscriptionBook version={self.version} components={len(self._by_component)} "
            f"subscriptions={len(self._subs)} streams={len(self._interest)}>"
        )

    # -- internals ---------------------------------------------------------------------------

    def _get(self, sub_id: SubId) -> Subscription:
        try:
            return self._subs[sub_id]
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"unknown subscription id {sub_id!r}: never issued or already unsubscribed"
            ) from exc

    def _drop(self, sub: Subscription) -> None:
        self._remove_interest(sub)
        del self._subs[sub.sub_id]
        held = self._by_component[sub.component]
        del held[sub.sub_id]
        if not held:
            del self._by_component[sub.component]

    def _add_interest(self, sub: Subscription) -> None:
        for key in _keys_of(sub):
            self._interest.setdefault(key, {})[sub.sub_id] = sub.depth

    def _remove_interest(self, sub: Subscription) -> None:
        for key in _keys_of(sub):
            holders = self._interest[key]
            del holders[sub.sub_id]
            if not holders:
                del self._interest[key]


def _keys_of(sub: Subscription) -> list[StreamKey]:
    if sub.type == "myAsset" or (sub.type == "myOrder" and not sub.codes):
        return [(sub.type, ALL_CODES, None)]
    return [(sub.type, code, sub.level) for code in sub.codes]


def _merged_depth(holders: dict[SubId, int | None]) -> int:
    # Upbit sends one book per (code, level) connection-wide, so the largest depth wins and the
    # router truncates it for each subscriber (section 2.3).
    return max((d for d in holders.values() if d is not None), default=DEFAULT_ORDERBOOK_DEPTH)


def _routing_level(type: DataType, level: int | float | None) -> int | float | None:
    if type != "orderbook":
        return None
    if level is None or isinstance(level, bool) or not isinstance(level, int | float):
        return 0
    return _canonical_level(level)


def _canonical_level(level: int | float) -> int | float:
    # 10000 and 10000.0 are one grouping unit; keep integral values as int so the request
    # carries a bare number as the docs' examples do (section 2.2).
    if isinstance(level, float) and level.is_integer():
        return int(level)
    return level


def _check_type(type: object) -> DataType:
    if isinstance(type, str) and type in _TYPE_RANK:
        return cast(DataType, type)
    raise InvalidInputError(f"unknown data type {type!r}; use one of {', '.join(DATA_TYPES)}")


def _check_options(
    kind: DataType, depth: object, level: object
) -> tuple[int | None, int | float | None]:
    if kind != "orderbook":
        if depth is not None or level is not None:
            raise InvalidInputError(f"{kind}: depth and level apply to orderbook only")
        return None, None
    if depth is None:
        depth = DEFAULT_ORDERBOOK_DEPTH
    if isinstance(depth, bool) or not isinstance(depth, int) or depth not in ORDERBOOK_DEPTHS:
        allowed = ", ".join(map(str, ORDERBOOK_DEPTHS))
        # Section 2.3: anything else silently gives 30 units, so refuse it here instead.
        raise InvalidInputError(f"orderbook depth {depth!r} is not supported; use {allowed}")
    if level is None:
        level = 0
    if (
        isinstance(level, bool)
        or not isinstance(level, int | float)
        or not math.isfinite(level)
        or level < 0
    ):
        raise InvalidInputError(
            f"orderbook level {level!r} must be a finite number >= 0 (0 = native tick size)"
        )
    return depth, _canonical_level(level)


def _check_codes(kind: DataType, codes: object) -> tuple[str, ...]:
    if codes is None:
        codes = ()
    if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
        raise InvalidInputError(f"{kind}: codes must be a list of market codes, not {codes!r}")
    normalised = {normalize_code(code) for code in codes}
    if kind == "myAsset" and normalised:
        # Section 2.2 / 7.2: codes on myAsset make Upbit answer WRONG_FORMAT and close.
        raise InvalidInputError("myAsset takes no codes (Upbit answers WRONG_FORMAT)")
    return tuple(sorted(normalised))
