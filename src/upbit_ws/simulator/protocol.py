"""Client request parsing and validation, with Upbit's error names and Korean messages.

A request is one JSON array whose objects are found by key in any order (section 2.1): a
ticket object, type objects, an optional format object, or a ``LIST_SUBSCRIPTIONS`` method
object. Errors follow the table of section 7.2; the server sends them and closes (7.3).
Unknown and lowercase codes are not errors: they are kept here and silently ignored by the
server (section 2.4).

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, cast, get_args

import orjson

from upbit_ws.core.constants import (
    DATA_TYPES,
    DEFAULT_ORDERBOOK_DEPTH,
    ORDERBOOK_DEPTHS,
    PRIVATE_TYPES,
    Format,
)
from upbit_ws.simulator.config import SimulatorConfig

__all__ = [
    "ALL_CODES",
    "MESSAGES",
    "Entry",
    "ErrorName",
    "ListSubscriptions",
    "Ping",
    "Request",
    "RequestError",
    "Subscribe",
    "list_result",
    "parse_request",
    "unsupported_type",
]

PathKind = Literal["public", "private"]
ErrorName = Literal[
    "INVALID_AUTH",
    "WRONG_FORMAT",
    "NO_TICKET",
    "NO_TYPE",
    "NO_CODES",
    "INVALID_PARAM",
    "TOO_MANY_REQUEST",
]

#: KR host messages of section 7.2. ``TOO_MANY_REQUEST`` on an open connection is not
#: documented anywhere (section 8.1 [UNSURE]); its text here is the simulator's own.
MESSAGES: Final[Mapping[str, str]] = {
    "INVALID_AUTH": "인증 정보가 올바르지 않습니다.",
    "WRONG_FORMAT": "Format 이 맞지 않습니다.",
    "NO_TICKET": "티켓이 존재하지 않거나, 유효하지 않습니다.",
    "NO_TYPE": "type 필드가 존재하지 않습니다.",
    "NO_CODES": "codes 필드가 존재하지 않습니다.",
    "EMPTY_CODES": "codes 필드가 비어 있습니다.",
    "TOO_MANY_REQUEST": "요청 수 제한을 초과했습니다.",
}
_FORMATS: Final = frozenset(get_args(Format))
_SNAPSHOT_KEYS: Final = ("is_only_snapshot", "isOnlySnapshot")
_REALTIME_KEYS: Final = ("is_only_realtime", "isOnlyRealtime")
#: myOrder without codes (or with ``[]``) means every market (section 2.2).
ALL_CODES: Final = "*"


@dataclass(frozen=True, slots=True)
class Entry:
    """One (type, code) of a subscription, with its options."""

    type: str
    code: str
    raw_code: str
    depth: int = DEFAULT_ORDERBOOK_DEPTH
    level: float = 0.0
    only_snapshot: bool = False
    only_realtime: bool = False


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A subscription request: it replaces the connection's whole set and format (3.1)."""

    ticket: str
    entries: tuple[Entry, ...]
    format: Format


@dataclass(frozen=True, slots=True)
class ListSubscriptions:
    """A LIST_SUBSCRIPTIONS query (3.3); ``format`` changes the stream format when given."""

    ticket: str
    format: Format | None


@dataclass(frozen=True, slots=True)
class Ping:
    """The literal text ``PING`` (section 6)."""


@dataclass(frozen=True, slots=True)
class RequestError:
    """A request Upbit would refuse: the error frame to send, then close 1000 (7.3)."""

    name: ErrorName
    message: str


Request = Subscribe | ListSubscriptions | Ping | RequestError


def _error(name: ErrorName, message_key: str | None = None) -> RequestError:
    return RequestError(name, MESSAGES[message_key or name])


def unsupported_type(type_name: object) -> RequestError:
    """Return the INVALID_PARAM error for an unsupported ``type`` (section 7.2)."""
    return RequestError("INVALID_PARAM", f"{type_name} 은 지원하지 않는 타입입니다.")


def parse_request(data: str | bytes, *, path: PathKind, config: SimulatorConfig) -> Request:
    """Parse one client frame into a request or the error Upbit would answer."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return _error("WRONG_FORMAT")
    if data == "PING":
        return Ping()
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        # Text that is neither PING nor JSON ("hello") is WRONG_FORMAT (section 7.2, PROBE).
        return _error("WRONG_FORMAT")
    if not isinstance(parsed, list) or not parsed:
        return _error("WRONG_FORMAT")
    if not all(isinstance(item, dict) for item in parsed):
        return _error("WRONG_FORMAT")
    objects = cast(list[dict[str, object]], parsed)
    return _parse_objects(objects, path=path, config=config)


def _parse_objects(
    objects: list[dict[str, object]], *, path: PathKind, config: SimulatorConfig
) -> Request:
    tickets = [o["ticket"] for o in objects if "ticket" in o]
    if not tickets:
        return _error("NO_TICKET")
    ticket = tickets[0]
    # Current docs say String; an older page typed it Long, so integers pass too (2.1).
    if isinstance(ticket, bool) or not isinstance(ticket, str | int) or ticket == "":
        return _error("NO_TICKET")
    fmt: Format | None = None
    for obj in objects:
        if "format" in obj:
            value = obj["format"]
            if not isinstance(value, str) or value not in _FORMATS:
                return _error("WRONG_FORMAT")
            fmt = cast(Format, value)
    methods = [o["method"] for o in objects if "method" in o]
    if methods:
        if methods[0] != "LIST_SUBSCRIPTIONS":
            return _error("WRONG_FORMAT")
        return ListSubscriptions(ticket=str(ticket), format=fmt)
    type_objects = [o for o in objects if not ({"ticket", "format", "method"} & o.keys())]
    if not type_objects:
        return _error("NO_TYPE")
    entries: list[Entry] = []
    for obj in type_objects:
        result = _parse_type_object(obj, path=path, config=config)
        if isinstance(result, RequestError):
            return result
        entries.extend(result)
    # A code repeated with the same options is one subscription, not two streams.
    unique = tuple(dict.fromkeys(entries))
    # Leaving the format object out gives DEFAULT (section 2.1, PROBE).
    return Subscribe(ticket=str(ticket), entries=unique, format=fmt or "DEFAULT")


def _flag(obj: Mapping[str, object], keys: tuple[str, ...], *, camel: bool) -> bool | None:
    """Return the flag's value (snake case, and camel case when accepted), None if malformed."""
    for key in keys if camel else keys[:1]:
        if key in obj:
            value = obj[key]
            if not isinstance(value, bool):
                return None
            if value:
                return True
    return False


def _parse_type_object(
    obj: Mapping[str, object], *, path: PathKind, config: SimulatorConfig
) -> list[Entry] | RequestError:
    if "type" not in obj:
        return _error("NO_TYPE")
    type_name = obj["type"]
    if not isinstance(type_name, str) or type_name not in DATA_TYPES:
        return unsupported_type(type_name)
    private = type_name in PRIVATE_TYPES
    if private and path == "public":
        # Private types are served only on /websocket/v1/private (section 1.1).
        if config.private_on_public == "invalid_auth":
            return _error("INVALID_AUTH")
        if config.private_on_public == "unsupported_type":
            return unsupported_type(type_name)
        return []
    if not private and path == "private" and config.public_on_private == "unsupported_type":
        return unsupported_type(type_name)
    camel = config.accept_camel_case_flags
    only_snapshot = _flag(obj, _SNAPSHOT_KEYS, camel=camel)
    only_realtime = _flag(obj, _REALTIME_KEYS, camel=camel)
    if only_snapshot is None or only_realtime is None:
        return _error("WRONG_FORMAT")
    level = 0.0
    if type_name == "orderbook" and "level" in obj:
        raw_level = obj["level"]
        if isinstance(raw_level, bool) or not isinstance(raw_level, int | float) or raw_level < 0:
            return _error("WRONG_FORMAT")
        level = float(raw_level)
    if type_name == "myAsset":
        # myAsset takes no codes; sending some is WRONG_FORMAT (section 2.2, DOC-myasset).
        if "codes" in obj:
            return _error("WRONG_FORMAT")
        return [Entry(type=type_name, code=ALL_CODES, raw_code=ALL_CODES)]
    if "codes" not in obj:
        if type_name == "myOrder":
            return [Entry(type=type_name, code=ALL_CODES, raw_code=ALL_CODES)]
        return _error("NO_CODES")
    codes = obj["codes"]
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        return _error("WRONG_FORMAT")
    if not codes:
        if type_name == "myOrder":
            return [Entry(type=type_name, code=ALL_CODES, raw_code=ALL_CODES)]
        return _error("INVALID_PARAM", "EMPTY_CODES")
    entries: list[Entry] = []
    for raw in cast(list[str], codes):
        code, depth = raw, DEFAULT_ORDERBOOK_DEPTH
        if type_name == "orderbook":
            code, depth = _split_depth(raw)
        entries.append(
            Entry(
                type=type_name,
                code=code,
                raw_code=raw,
                depth=depth,
                level=level,
                only_snapshot=only_snapshot,
                only_realtime=only_realtime,
            )
        )
    return entries


def _split_depth(raw: str) -> tuple[str, int]:
    """Split ``KRW-BTC.15``: 1/5/15/30 are honoured, any other number gives 30 (2.3)."""
    code, dot, suffix = raw.rpartition(".")
    if not dot or not suffix.isdigit():
        return raw, DEFAULT_ORDERBOOK_DEPTH
    depth = int(suffix)
    return code, depth if depth in ORDERBOOK_DEPTHS else DEFAULT_ORDERBOOK_DEPTH


def list_result(
    entries: tuple[Entry, ...], *, known: Mapping[str, object], config: SimulatorConfig
) -> list[dict[str, object]]:
    """Build LIST_SUBSCRIPTIONS ``result`` items from the live entries (section 3.3).

    Entries are grouped by type (and ``level`` for orderbook), in request order. Codes the
    server ignored (unknown, lowercase) are not listed. Echoing ``.N`` suffixes and
    ``is_only_*`` flags is [UNSURE] and off by default.
    """
    groups: dict[tuple[str, float, bool, bool], list[str]] = {}
    for e in entries:
        if e.code != ALL_CODES and e.code not in known:
            continue
        flags = (e.only_snapshot, e.only_realtime) if config.list_echo_flags else (False, False)
        key = (e.type, e.level if e.type == "orderbook" else -1.0, *flags)
        code = e.raw_code if config.list_echo_depth_suffix else e.code
        bucket = groups.setdefault(key, [])
        if code != ALL_CODES and code not in bucket:
            bucket.append(code)
    out: list[dict[str, object]] = []
    for (type_name, level, snap, real), codes in groups.items():
        item: dict[str, object] = {"type": type_name}
        if codes or type_name == "myOrder":
            item["codes"] = codes
        if type_name == "orderbook":
            item["level"] = int(level) if level.is_integer() else level
        if snap:
            item["is_only_snapshot"] = True
        if real:
            item["is_only_realtime"] = True
        out.append(item)
    return out
