"""upbit-ws: always-connected Upbit WebSockets with one merged subscription per connection."""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ConfigError",
    "ConnectionClosedError",
    "DecodeError",
    "InvalidInputError",
    "RateLimitedError",
    "ServerRejectedError",
    "TransportError",
    "UnknownCodeError",
    "UpbitWsError",
    "__version__",
]
