"""upbit-ws: always-connected Upbit WebSockets with one merged subscription per connection."""

from __future__ import annotations

from upbit_ws.core.decode import decode, decode_all
from upbit_ws.core.errors import (
    AuthError,
    ConfigError,
    ConnectionClosedError,
    DecodeError,
    InvalidInputError,
    RateLimitedError,
    ServerRejectedError,
    TransportError,
    UnknownCodeError,
    UpbitWsError,
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
    SubscriptionList,
    Ticker,
    Trade,
    UnknownMessage,
)

__version__ = "0.1.0"

__all__ = [
    "AssetBalance",
    "AuthError",
    "Candle",
    "ConfigError",
    "ConnectionClosedError",
    "DecodeError",
    "ErrorFrame",
    "InvalidInputError",
    "KeepAlive",
    "Message",
    "MyAsset",
    "MyOrder",
    "Orderbook",
    "OrderbookUnit",
    "RateLimitedError",
    "ServerRejectedError",
    "SubscriptionList",
    "Ticker",
    "Trade",
    "TransportError",
    "UnknownCodeError",
    "UnknownMessage",
    "UpbitWsError",
    "__version__",
    "decode",
    "decode_all",
]
