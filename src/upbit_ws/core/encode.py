"""Request frames: pure functions that build what the client sends to Upbit.

A request is one TEXT frame holding a JSON array ``[{ticket}, {type objects...}, {format}]``
(docs/protocol.md section 2.1), and each request replaces the connection's whole subscription
(section 3), so callers always pass the full desired set. Inputs are validated here, because
Upbit answers most mistakes with an error frame and a closed socket (section 7.3) and some
(lowercase or unknown codes, section 2.4) with silence.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import msgspec
import orjson

from upbit_ws.core.codes import normalize_code, split_depth
from upbit_ws.core.constants import (
    DATA_TYPES,
    FORMATS,
    ORDERBOOK_DEPTHS,
    PUBLIC_TYPES,
    DataType,
    Format,
)
from upbit_ws.core.errors import InvalidInputError

__all__ = [
    "TypeRequest",
    "check_level",
    "encode_list_subscriptions",
    "encode_request",
    "new_ticket",
    "normalize_request",
    "orderbook_code",
    "unsupported_level",
]

_DATA_TYPE_SET: Final = frozenset(DATA_TYPES)
_FORMAT_SET: Final = frozenset(FORMATS)


class TypeRequest(msgspec.Struct, frozen=True):
    """One data-type object of a request: a type, its codes and its options.

    ``codes`` may carry an orderbook ``.N`` depth suffix (``KRW-BTC.15``, section 2.3);
    ``level`` is the orderbook price-grouping unit (orderbook only); ``is_only_snapshot`` and
    ``is_only_realtime`` restrict a public stream to its snapshot or its realtime frames
    (section 2.2). ``codes`` is empty for ``myAsset`` (Upbit rejects codes there) and may be
    empty for ``myOrder`` (all markets). The value is not validated when built;
    :func:`normalize_request` and :func:`encode_request` do that.
    """

    type: DataType
    codes: tuple[str, ...] = ()
    level: int | float | None = None
    is_only_snapshot: bool = False
    is_only_realtime: bool = False


def orderbook_code(code: str, depth: int) -> str:
    """Return the orderbook code asking for ``depth`` units: ``("KRW-BTC", 15)`` -> ``KRW-BTC.15``.

    Upbit only honours 1, 5, 15 and 30 and silently gives 30 for anything else (section 2.3),
    so other depths raise :class:`~upbit_ws.InvalidInputError`.
    """
    _check_depth(depth, code)
    return f"{normalize_code(code)}.{depth}"


def _check_depth(depth: object, code: str) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth not in ORDERBOOK_DEPTHS:
        allowed = ", ".join(map(str, ORDERBOOK_DEPTHS))
        raise InvalidInputError(
            f"orderbook depth {depth!r} for {code!r} is not supported; Upbit allows {allowed} "
            "and silently sends 30 units for anything else"
        )


def normalize_request(request: TypeRequest) -> TypeRequest:
    """Return ``request`` validated, with codes upper-cased and duplicates removed.

    Raises :class:`~upbit_ws.InvalidInputError` saying what to change when the request would
    make Upbit answer with an error frame (then close the socket) or silently send nothing.
    """
    if not isinstance(request, TypeRequest):
        raise InvalidInputError(f"expected a TypeRequest, got {type(request).__name__}")
    kind = request.type
    if kind not in _DATA_TYPE_SET:
        known = ", ".join(DATA_TYPES)
        raise InvalidInputError(f"unknown data type {kind!r}; use one of {known}")
    public = kind in PUBLIC_TYPES
    if isinstance(request.codes, str) or not isinstance(request.codes, tuple | list):
        raise InvalidInputError(
            f"{kind}: codes must be a tuple of market codes, not {request.codes!r}"
        )
    if request.is_only_snapshot and request.is_only_realtime:
        raise InvalidInputError(
            f"{kind}: is_only_snapshot and is_only_realtime are both set; "
            "set one (or neither, for a snapshot followed by realtime frames)"
        )
    if not public and (request.is_only_snapshot or request.is_only_realtime):
        raise InvalidInputError(
            f"{kind}: is_only_snapshot/is_only_realtime apply to public types only"
        )
    if request.level is not None:
        check_level(kind, request.level)
    if kind == "myAsset":
        if request.codes:
            # Section 2.2 / 7.2: codes on myAsset make Upbit answer WRONG_FORMAT and close.
            raise InvalidInputError("myAsset takes no codes (Upbit answers WRONG_FORMAT)")
        return request
    if public and not request.codes:
        # Section 2.2 / 7.2: missing codes is NO_CODES, an empty list INVALID_PARAM.
        raise InvalidInputError(f"{kind}: give at least one market code")
    seen: dict[str, None] = {}
    for code in request.codes:
        if kind == "orderbook":
            base, depth = split_depth(code)
            if depth is not None:
                _check_depth(depth, code)
                base = f"{base}.{depth}"
            seen[base] = None
        else:
            seen[normalize_code(code)] = None
    codes = tuple(seen)
    if codes == request.codes:
        return request
    return msgspec.structs.replace(request, codes=codes)


def unsupported_level(
    level: float | None, codes: Iterable[str], supported: Mapping[str, Sequence[Decimal]]
) -> InvalidInputError | None:
    """Return the error for an orderbook ``level`` some of ``codes`` do not honour, else None.

    ``supported`` maps each market to the levels ``GET /v1/orderbook/instruments`` lists for
    it (docs/protocol.md section 2.3: Upbit sends nothing, and no error, for a level a market
    does not support). Level 0 (the native tick) and None are always honoured. A market the
    instrument data does not cover is reported too: its levels cannot be known. A level that
    is no finite number >= 0 (a string, True, NaN) is reported as such.
    """
    if level is None:
        return None
    try:
        check_level("orderbook", level)
    except InvalidInputError as exc:
        return exc
    if not level:
        return None
    wanted = Decimal(str(level))
    bad: list[str] = []
    for code in codes:
        base = code.split(".", 1)[0]
        levels = supported.get(base)
        if levels is None:
            bad.append(f"{base} (Upbit publishes no grouping levels for it)")
        elif wanted not in levels:
            shown = ", ".join(f"{v.normalize():f}" for v in sorted(levels)) or "none"
            bad.append(f"{base} (supported: {shown})")
    if not bad:
        return None
    return InvalidInputError(
        f"orderbook level {level:g} is not supported by {'; '.join(bad)}; Upbit would send "
        "nothing for it. Pick a supported level (0 = the native tick) per "
        "GET /v1/orderbook/instruments"
    )


def check_level(kind: str, level: object) -> None:
    """Raise InvalidInputError unless ``level`` is a finite number >= 0 on an orderbook."""
    if kind != "orderbook":
        raise InvalidInputError(f"{kind}: level applies to orderbook only")
    ok = (
        not isinstance(level, bool)
        and isinstance(level, int | float)
        and math.isfinite(level)
        and level >= 0
    )
    if not ok:
        raise InvalidInputError(
            f"orderbook level {level!r} must be a finite number >= 0 (0 = native tick size)"
        )


def _type_object(request: TypeRequest) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": request.type}
    if request.codes:
        obj["codes"] = list(request.codes)
    if request.level is not None:
        obj["level"] = request.level
    # Snake case is what current docs and the official SDK send and what the probe saw honoured
    # (section 2.2, [CONFLICT] option spelling); only sent when true.
    if request.is_only_snapshot:
        obj["is_only_snapshot"] = True
    if request.is_only_realtime:
        obj["is_only_realtime"] = True
    return obj


def _check_ticket(ticket: object) -> str:
    if not isinstance(ticket, str) or not ticket.strip():
        raise InvalidInputError(
            "ticket must be a non-empty string (Upbit answers NO_TICKET); use new_ticket()"
        )
    try:
        ticket.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError("ticket is not valid Unicode text; use new_ticket()") from exc
    return ticket


def _check_format(fmt: object) -> Format:
    if fmt not in _FORMAT_SET:
        raise InvalidInputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return fmt


def encode_request(
    types: Sequence[TypeRequest], *, ticket: str, format: Format = "DEFAULT"
) -> bytes:
    """Build one subscription request frame (UTF-8 JSON bytes, to send as a TEXT frame).

    The frame is ``[{"ticket":...}, {type objects...}, {"format":...}]``. It replaces the
    connection's whole subscription (section 3), so ``types`` must be the full desired set.
    Every type object is checked with :func:`normalize_request`; an empty ``types`` raises
    :class:`~upbit_ws.InvalidInputError` (to stop everything, close the socket instead).
    """
    tk = _check_ticket(ticket)
    fmt = _check_format(format)
    if isinstance(types, TypeRequest) or not types:
        raise InvalidInputError(
            "a request needs at least one TypeRequest (pass a list); "
            "Upbit has no unsubscribe, close the connection to stop all streams"
        )
    frame: list[dict[str, Any]] = [{"ticket": tk}]
    frame.extend(_type_object(normalize_request(t)) for t in types)
    frame.append({"format": fmt})
    return orjson.dumps(frame)


def encode_list_subscriptions(*, ticket: str, format: Format | None = None) -> bytes:
    """Build a LIST_SUBSCRIPTIONS request frame (section 3.3).

    ``format``, when given, also switches the connection's stream format from then on
    (DOC-list note), so leave it ``None`` unless that is intended.
    """
    frame: list[dict[str, Any]] = [
        {"ticket": _check_ticket(ticket)},
        {"method": "LIST_SUBSCRIPTIONS"},
    ]
    if format is not None:
        frame.append({"format": _check_format(format)})
    return orjson.dumps(frame)


def new_ticket() -> str:
    """Return a fresh ticket: a random UUID4 string, as the docs recommend (section 2.1)."""
    return str(uuid.uuid4())
