"""Wire names and limits of Upbit's WebSocket API, defined once.

Sources are in ``docs/protocol.md`` (sections 2, 6 and 8).
"""

from __future__ import annotations

from typing import Final, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from upbit_ws.core.errors import ConfigError, InvalidInputError

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
    "check_seconds",
    "check_timeout",
    "websocket_urls",
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


def check_timeout(value: object, *, name: str = "timeout") -> float | None:
    """Return ``value`` as seconds to wait, None for no limit; raise InvalidInputError else.

    The one check of a caller's optional timeout, wherever one is given (see
    :func:`check_seconds`).
    """
    return None if value is None else check_seconds(value, name=name, or_none=True)


def check_seconds(value: object, *, name: str = "timeout", or_none: bool = False) -> float:
    """Return ``value`` as a number of seconds >= 0; raise InvalidInputError otherwise.

    A string, a bool or NaN is refused with a message naming ``name``; infinity is accepted.
    """
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)  # NaN fails ">= 0"
    what = "None (no limit) or " if or_none else ""
    raise InvalidInputError(f"{name} must be {what}a number of seconds >= 0, not {value!r}")


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

#: WebSocket scheme of each accepted REST scheme.
_SCHEMES: Final = {"https": "wss", "http": "ws"}


def _host_problems(host: str, base_url: str) -> list[str]:
    """Return why ``host`` can be no host name or address (empty when it can be one).

    The resolver encodes a name with IDNA first, which refuses an empty label and a label over
    63 characters; without this check the first connect fails with a bare ``UnicodeError``.
    """
    try:
        host.encode("idna")
    except UnicodeError as exc:
        return [
            f"base_url's host {host!r} is not a valid host name ({exc}): give one such as "
            f"api.upbit.com; got {base_url!r}"
        ]
    return []


def websocket_urls(base_url: str) -> tuple[str, str]:
    """Return the (public, private) WebSocket URLs of a REST base URL.

    ``base_url`` is exactly ``https://HOST[:PORT]`` or ``http://HOST[:PORT]`` (one trailing
    ``/`` allowed): ``https://api.upbit.com`` gives ``wss://api.upbit.com/websocket/v1`` and
    ``.../private`` (docs/protocol.md section 1.1); ``http://127.0.0.1:PORT`` (the simulator)
    gives ``ws://...``. Anything else (a ``ws://`` or ``wss://`` scheme, a path such as
    ``/v1`` or ``/websocket/v1``, a query) raises :class:`~upbit_ws.ConfigError` saying the
    base URL to give instead.
    """
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    host = parts.netloc
    fixed = f"https://{host}" if scheme in ("wss", "https") else f"http://{host}"
    problems: list[str] = []
    if scheme in ("ws", "wss"):
        problems.append(
            f"base_url is the REST base, not a WebSocket URL: give {fixed!r} "
            f"(the WebSocket URLs derive from it), not {base_url!r}"
        )
    elif scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise ConfigError(
            [
                "base_url must be https://HOST or http://HOST:PORT, such as "
                f"https://api.upbit.com or http://127.0.0.1:8080 (the simulator); got {base_url!r}"
            ]
        )
    path = parts.path.rstrip("/")
    if path:
        what = (
            "a WebSocket path"
            if path.startswith("/websocket")
            else "an API version"
            if path.rstrip("/").endswith("/v1")
            else "a path"
        )
        problems.append(
            f"base_url must not carry {what} ({path!r}): give {fixed!r}; the library adds "
            f"{PUBLIC_PATH} and the REST paths itself"
        )
    if parts.query or parts.fragment:
        problems.append(f"base_url must not have a query or fragment: give {fixed!r}")
    problems.extend(_host_problems(parts.hostname or "", base_url))
    if problems:
        raise ConfigError(problems)
    public = urlunsplit((_SCHEMES[scheme], host, PUBLIC_PATH, "", ""))
    private = urlunsplit((_SCHEMES[scheme], host, PRIVATE_PATH, "", ""))
    return public, private
