"""Scale-out over Redis Streams: one gateway relays Upbit to Redis, many processes read it.

* :class:`Relay` (``upbit-ws relay`` on the command line) subscribes through a
  :class:`~upbit_ws.WebSocketManager` and appends every message to ``upbit:{type}:{code}``;
  two relays of one subscription set share a lease, one streams and the other takes over.
* :class:`RedisFeed` reads them back as the same typed messages, live or from an id, alone or
  in a consumer group (at-least-once, acknowledged after processing).

redis-py is the optional ``redis`` extra; it is imported when a relay or feed is built, not by
``import upbit_ws.relay``. Usage, guarantees and figures: docs/relay.md.
"""

from __future__ import annotations

from upbit_ws.aio.logcontext import install_log_fields
from upbit_ws.relay.codec import (
    FeedGap,
    GapCause,
    Keys,
    LeaseAcquired,
    LeaseReleased,
    RedisOutage,
    RelayConfig,
    RelayEvent,
    UpstreamStateChanged,
)
from upbit_ws.relay.feed import FeedStatistics, FeedSubscription, RedisFeed
from upbit_ws.relay.redis_client import RedisCommandError, RedisUnavailableError
from upbit_ws.relay.relay import Relay, RelayRole, RelayStatistics

install_log_fields()  # this package's loggers carry the structured fields too

__all__ = [
    "FeedGap",
    "FeedStatistics",
    "FeedSubscription",
    "GapCause",
    "Keys",
    "LeaseAcquired",
    "LeaseReleased",
    "RedisCommandError",
    "RedisFeed",
    "RedisOutage",
    "RedisUnavailableError",
    "Relay",
    "RelayConfig",
    "RelayEvent",
    "RelayRole",
    "RelayStatistics",
    "UpstreamStateChanged",
]
