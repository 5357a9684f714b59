"""upbit-ws: always-connected Upbit WebSockets with one merged subscription per connection.

The names here are the public surface (pinned by ``tests/test_public_api.py``)::

    from upbit_ws import WebSocketManager, Credentials

    async with WebSocketManager(credentials=Credentials.from_env()) as ws:
        coins = ws.component("coin_list").subscribe("ticker", ["KRW-*"])
        async for ticker in coins:
            ...

Everything else is reachable from its module: ``upbit_ws.core`` (the pure, sans-I/O core),
``upbit_ws.aio`` (the asyncio shell) and ``upbit_ws.simulator`` (a local Upbit for tests and
demos, kept out of this import so ``import upbit_ws`` does not load a server).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from upbit_ws.aio.component import (
    Component,
    ConnectionView,
    SubscriptionInfo,
    SubscriptionsView,
)
from upbit_ws.aio.connection import ConnectionHandle
from upbit_ws.aio.events import EventStream
from upbit_ws.aio.logcontext import install_log_fields as _install_log_fields
from upbit_ws.aio.manager import ConnectionHealth, Health, ManagerStatistics, WebSocketManager
from upbit_ws.aio.stream import Subscription, SubscriptionStatistics
from upbit_ws.core.auth import Credentials
from upbit_ws.core.buffer import Gap, OverflowPolicy
from upbit_ws.core.config import (
    BackoffConfig,
    ConnectionConfig,
    KeepaliveConfig,
    KeyHealthConfig,
    RateLimits,
    ReconcileConfig,
    SubscriptionConfig,
    Timeouts,
    TransportConfig,
)
from upbit_ws.core.decode import decode, decode_all
from upbit_ws.core.errors import (
    AuthError,
    ConfigError,
    ConnectionClosedError,
    ConnectTimeoutError,
    DecodeError,
    InvalidInputError,
    NotReadyError,
    RateLimitedError,
    ServerRejectedError,
    TransportError,
    UnknownCodeError,
    UpbitWsError,
)
from upbit_ws.core.events import (
    BufferOverflowed,
    ConnectionMisconfigured,
    ConnectionStateChanged,
    Event,
    GapEvent,
    KeyExpiringSoon,
    KeyProblem,
    KeyRecovered,
    ReconciliationFinished,
    ReconciliationStarted,
    RequestRejected,
)
from upbit_ws.core.messages import (
    AssetBalance,
    Candle,
    ErrorFrame,
    KeepAlive,
    Message,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    SubscribedType,
    SubscriptionList,
    Ticker,
    Trade,
    UnknownMessage,
)

try:
    #: The installed distribution's version: the one version string, from pyproject.toml.
    __version__ = _version("upbit-ws")
except _PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AssetBalance",
    "AuthError",
    "BackoffConfig",
    "BufferOverflowed",
    "Candle",
    "Component",
    "ConfigError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ConnectionConfig",
    "ConnectionHandle",
    "ConnectionHealth",
    "ConnectionMisconfigured",
    "ConnectionStateChanged",
    "ConnectionView",
    "Credentials",
    "DecodeError",
    "ErrorFrame",
    "Event",
    "EventStream",
    "Gap",
    "GapEvent",
    "Health",
    "InvalidInputError",
    "KeepAlive",
    "KeepaliveConfig",
    "KeyExpiringSoon",
    "KeyHealthConfig",
    "KeyProblem",
    "KeyRecovered",
    "ManagerStatistics",
    "Message",
    "MyAsset",
    "MyOrder",
    "NotReadyError",
    "Orderbook",
    "OrderbookUnit",
    "OverflowPolicy",
    "RateLimitedError",
    "RateLimits",
    "ReconcileConfig",
    "ReconciliationFinished",
    "ReconciliationStarted",
    "RequestRejected",
    "ServerRejectedError",
    "SubscribedType",
    "Subscription",
    "SubscriptionConfig",
    "SubscriptionInfo",
    "SubscriptionList",
    "SubscriptionStatistics",
    "SubscriptionsView",
    "Ticker",
    "Timeouts",
    "Trade",
    "TransportConfig",
    "TransportError",
    "UnknownCodeError",
    "UnknownMessage",
    "UpbitWsError",
    "WebSocketManager",
    "__version__",
    "decode",
    "decode_all",
]

# Every library logger (all made by the imports above) adds connection/component/event fields.
_install_log_fields()
