"""Routing and fan-out: which connection gets which market and account event, encoded once.

The routing table maps ``(type, code)`` to the connections whose live subscription asks for
REALTIME frames of it, so the market model skips building what nobody listens to, and one event
is encoded once per distinct (format, depth, level) however many connections share it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from upbit_ws.simulator.connection import SimConnection
from upbit_ws.simulator.frames import FrameBuilder, encode_object, is_simple_format
from upbit_ws.simulator.market import BookSnapshot, Candle, MarketEvent, TickerSnapshot, Trade
from upbit_ws.simulator.orders import PrivateEvent
from upbit_ws.simulator.protocol import ALL_CODES, Entry

__all__ = ["Router"]

Key = tuple[str, str]


class Router:
    """The realtime routing table and the fan-out of events to connections."""

    def __init__(self, frames: FrameBuilder) -> None:
        self._frames = frames
        self._routes: dict[Key, dict[SimConnection, list[Entry]]] = {}
        self._keys: dict[SimConnection, set[Key]] = {}

    def wants(self, data_type: str, code: str) -> bool:
        """Tell whether any connection wants REALTIME frames of ``(data_type, code)``."""
        return (data_type, code) in self._routes

    def set_routes(self, conn: SimConnection, entries: Iterable[Entry]) -> None:
        """Point the routes of ``conn`` at ``entries``, replacing its old ones atomically."""
        for key in self._keys.pop(conn, set()):
            subscribers = self._routes.get(key)
            if subscribers is not None:
                subscribers.pop(conn, None)
                if not subscribers:
                    del self._routes[key]
        keys: set[Key] = set()
        for entry in entries:
            key = (entry.type, entry.code)
            self._routes.setdefault(key, {}).setdefault(conn, []).append(entry)
            keys.add(key)
        if keys:
            self._keys[conn] = keys

    def encode_event(
        self,
        event: MarketEvent,
        entry: Entry,
        *,
        simple: bool,
        stream: Literal["SNAPSHOT", "REALTIME"],
    ) -> bytes:
        """Encode one market event for one subscription entry."""
        data = event.data
        obj: dict[str, object]
        if isinstance(data, TickerSnapshot):
            obj = self._frames.ticker(data, stream, event.timestamp)
        elif isinstance(data, Trade):
            obj = self._frames.trade(data, stream, event.timestamp)
        elif isinstance(data, BookSnapshot):
            obj = self._frames.orderbook(data, stream, depth=entry.depth, level=entry.level)
        else:
            assert isinstance(data, Candle)
            obj = self._frames.candle(event.type, event.code, data, stream, event.timestamp)
        return encode_object(obj, data_type=event.type, simple=simple)

    def dispatch(self, events: Iterable[MarketEvent]) -> None:
        """Queue each market event on every connection routed to it (not flooding ones)."""
        routes = self._routes
        for event in events:
            subscribers = routes.get((event.type, event.code))
            if not subscribers:
                continue
            cache: dict[tuple[bool, int, float], bytes] = {}
            for conn, entries in subscribers.items():
                if conn.flood:
                    continue
                simple = is_simple_format(conn.format)
                for entry in entries:
                    key = (simple, entry.depth, entry.level)
                    body = cache.get(key)
                    if body is None:
                        body = self.encode_event(event, entry, simple=simple, stream="REALTIME")
                        cache[key] = body
                    conn.send_data(event.type, body)

    def dispatch_private(
        self, events: Iterable[PrivateEvent], connections: Iterable[SimConnection]
    ) -> None:
        """Send myOrder/myAsset events to the subscribed private connections of their key."""
        private = [c for c in connections if c.kind == "private"]
        for event in events:
            encoded: dict[bool, bytes] = {}
            for conn in private:
                if conn.access_key != event.access_key:
                    continue
                if not any(
                    e.type == event.type and e.code in (ALL_CODES, event.code) for e in conn.entries
                ):
                    continue
                simple = is_simple_format(conn.format)
                body = encoded.get(simple)
                if body is None:
                    obj = self._frames.spell_private(event.data)
                    body = encode_object(obj, data_type=event.type, simple=simple)
                    encoded[simple] = body
                conn.send_data(event.type, body)
