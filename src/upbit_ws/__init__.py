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

from upbit_ws.aio.component import Component
from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.aio.stream import Subscription
from upbit_ws.core.auth import Credentials
from upbit_ws.core.buffer import Gap, OverflowPolicy
from upbit_ws.core.config import ConnectionConfig
from upbit_ws.core.decode import decode, decode_all
from upbit_ws.core.errors import (
    AuthError,
    ConfigError,
    ConnectionClosedError,
    ConnectTimeoutError,
    DecodeError,
    InvalidInputError,
    RateLimitedError,
    ServerRejectedError,
    TransportError,
    UnknownCodeError,
    UpbitWsError,
)
from upbit_ws.core.events import (
    BufferOverflowed,
    ConnectionStateChanged,
    Event,
    GapEvent,
    KeyExpiringSoon,
    KeyProblem,
    KeyRecovered,
    RequestRejected,
)
from upbit_ws.core.messages import (
    Candle,
    ErrorFrame,
    Message,
    MyAsset,
    MyOrder,
    Orderbook,
    Ticker,
    Trade,
    UnknownMessage,
)

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BufferOverflowed",
    "Candle",
    "Component",
    "ConfigError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ConnectionConfig",
    "ConnectionStateChanged",
    "Credentials",
    "DecodeError",
    "ErrorFrame",
    "Event",
    "Gap",
    "GapEvent",
    "InvalidInputError",
    "KeyExpiringSoon",
    "KeyProblem",
    "KeyRecovered",
    "Message",
    "MyAsset",
    "MyOrder",
    "Orderbook",
    "OverflowPolicy",
    "RateLimitedError",
    "RequestRejected",
    "ServerRejectedError",
    "Subscription",
    "Ticker",
    "Trade",
    "TransportError",
    "UnknownCodeError",
    "UnknownMessage",
    "UpbitWsError",
    "WebSocketManager",
    "__version__",
    "decode",
    "decode_all",
]
