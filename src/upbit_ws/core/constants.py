"""Wire names and limits of Upbit's WebSocket API, defined once.

Sources are in ``docs/protocol.md`` (sections 2, 6 and 8).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from upbit_ws.core.errors import InvalidInputError

__all__ = [
    "ABNORMAL_CLOSURE",
    "CANDLE_TYPES",
    "CONNECTIONS",
    "DATA_TYPES",
    "DEFAULT_BASE_URL",
    "DEFAULT_ORDERBOOK_DEPTH",
    "FORMATS",
    "ORDERBOOK_DEPTHS",
    "PRIVATE_PATH",
    "PRIVATE_TYPES",
    "PUBLIC_PATH",
    "PUBLIC_TYPES",
    "CandleType",
    "ConnectionKind",
    "DataType",
    "Format",
    "StreamType",
    "check_connection",
]

#: The two independent connections a manager keeps (section 1.1): the one name for them.
ConnectionKind = Literal["public", "private"]
CONNECTIONS: Final[tuple[ConnectionKind, ...]] = ("public", "private")

#: Close code for a socket that went away without a close frame (RFC 6455 section 7.1.5);
#: Upbit's idle kill ends a socket this way (section 6).
ABNORMAL_CLOSURE: Final = 1006


def check_connection(value: object) -> ConnectionKind:
    """Return ``value`` as a :data:`ConnectionKind`; raise InvalidInputError otherwise.

    The one check of a connection name, wherever one is given.
    """
    if value not in CONNECTIONS:
        raise InvalidInputError(f"unknown connection {value!r}; use 'public' or 'private'")
    return value


#: The nine candle intervals (section 4.4).
CandleType = Literal[
    "candle.1s",
    "candle.1m",
    "candle.3m",
    "candle.5m",
    "candle.10m",
    "candle.15m",
    "candle.30m",
    "candle.60m",
    "candle.240m",
]

#: Every subscribable data type, spelled as on the wire (``myOrder``/``myAsset`` are camelCase).
DataType = Literal["ticker", "trade", "orderbook", CandleType, "myOrder", "myAsset"]

DATA_TYPES: Final[tuple[DataType, ...]] = get_args(DataType)
CANDLE_TYPES: Final[tuple[CandleType, ...]] = get_args(CandleType)
PRIVATE_TYPES: Final[frozenset[str]] = frozenset({"myOrder", "myAsset"})
PUBLIC_TYPES: Final[frozenset[str]] = frozenset(DATA_TYPES) - PRIVATE_TYPES

#: The connection-wide response format (section 2.5).
Format = Literal["DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST"]
FORMATS: Final[tuple[Format, ...]] = get_args(Format)

StreamType = Literal["SNAPSHOT", "REALTIME"]

#: Orderbook unit counts allowed by the ``.N`` code suffix since 2025-07-02; anything else
#: (and no suffix) gives 30 (section 2.3).
ORDERBOOK_DEPTHS: Final[tuple[int, ...]] = (1, 5, 15, 30)
DEFAULT_ORDERBOOK_DEPTH: Final = 30

DEFAULT_BASE_URL: Final = "https://api.upbit.com"
PUBLIC_PATH: Final = "/websocket/v1"
PRIVATE_PATH: Final = "/websocket/v1/private"
