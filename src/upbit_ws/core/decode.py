"""Decode Upbit server frames (DEFAULT, SIMPLE, JSON_LIST, SIMPLE_LIST) into typed messages.

Hot path: a DEFAULT ticker, trade, orderbook, myOrder or myAsset frame is decoded by one
``msgspec`` call into a tagged union over ``type`` (no Python dispatch per frame). Everything
else takes a slower path that reads a small envelope first: candles (nine ``type`` values
share one class, which a tagged union cannot express), SIMPLE frames (twin structs with the
abbreviated keys of docs/protocol.md section 4, converted to the public class), list formats
(section 2.5), ``{"status":"UP"}`` (section 6), error frames (section 7), LIST_SUBSCRIPTIONS
replies (section 3.3), unknown types, and frames with an unusual key order or whitespace.

Only :class:`~upbit_ws.DecodeError` ever escapes, whatever the input: for bytes that are not
JSON, and for JSON of the wrong shape (a ticker without ``code``, a bare number...). An error
frame is a message (:class:`~upbit_ws.core.messages.ErrorFrame`), not an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

import msgspec
from msgspec.structs import astuple

from upbit_ws.core.errors import DecodeError
from upbit_ws.core.messages import (
    CANDLE_TYPE_NAMES,
    SIMPLE_KEYS,
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

__all__ = ["DECODE_FAILURES", "Frame", "decode", "decode_all", "decode_data"]

#: What the decoders accept: a frame's payload as received (Upbit sends binary frames).
Frame: TypeAlias = bytes | bytearray | memoryview | str

# What a decode attempt can raise on hostile input: malformed JSON or schema mismatch
# (msgspec.DecodeError, ValidationError), nesting deeper than msgspec's limit
# (RecursionError), value conversions that overflow, and a non-frame argument (TypeError or
# LookupError from slicing it). Each is either re-classified by the slow path or turned into
# DecodeError there; nothing else is caught.
_DECODE_FAILURES: Final = (
    msgspec.DecodeError,
    RecursionError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
)
#: What :func:`decode_data` may raise (public name of the tuple above).
DECODE_FAILURES: Final = _DECODE_FAILURES

_LIST_METHOD: Final = "LIST_SUBSCRIPTIONS"
_SIMPLE_HEAD: Final = b'{"ty":'


# ---------------------------------------------------------------------------------------------
# SIMPLE twins: same attribute names and types as the public classes, abbreviated wire keys.


def _twin(
    public: type[msgspec.Struct],
    keys: Mapping[str, str],
    *,
    tag: str | None = None,
    nested: Mapping[str, Any] | None = None,
) -> type[msgspec.Struct]:
    """Build a struct that reads ``public``'s fields from SIMPLE keys (section 4 tables)."""
    fields: list[tuple[str, Any, Any]] = []
    for info in msgspec.structs.fields(public):
        kind = (nested or {}).get(info.name, info.type)
        if info.default is msgspec.NODEFAULT:
            fields.append((info.name, kind, msgspec.NODEFAULT))
        else:
            fields.append((info.name, kind, info.default))
    options: dict[str, Any] = {"frozen": True, "kw_only": True, "gc": False}
    if tag is not None:
        options |= {"tag_field": "ty", "tag": tag}
    rename = {name: keys[name] for name, _, _ in fields if name in keys}
    return msgspec.defstruct(
        f"_Simple{public.__name__}",
        [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in fields],
        rename=rename,
        **options,
    )


_SimpleUnit = _twin(OrderbookUnit, SIMPLE_KEYS["orderbook_units"])
_SimpleAsset = _twin(AssetBalance, SIMPLE_KEYS["assets"])
_SimpleSubscribed = _twin(SubscribedType, SIMPLE_KEYS["result"])
_SimpleTicker = _twin(Ticker, SIMPLE_KEYS["ticker"], tag="ticker")
_SimpleTrade = _twin(Trade, SIMPLE_KEYS["trade"], tag="trade")
_SimpleOrderbook = _twin(
    Orderbook,
    SIMPLE_KEYS["orderbook"],
    tag="orderbook",
    nested={"orderbook_units": tuple[_SimpleUnit, ...]},  # type: ignore[valid-type]
)
_SimpleCandle = _twin(Candle, SIMPLE_KEYS["candle"])
_SimpleMyOrder = _twin(MyOrder, SIMPLE_KEYS["myOrder"], tag="myOrder")
_SimpleMyAsset = _twin(
    MyAsset,
    SIMPLE_KEYS["myAsset"],
    tag="myAsset",
    nested={"assets": tuple[_SimpleAsset, ...]},  # type: ignore[valid-type]
)


def _converter(
    public: type[Message], nested: tuple[str, type[msgspec.Struct]] | None = None
) -> Callable[[Any], Message]:
    """Return a function building ``public`` from its twin (same field order, by design).

    Positional construction from ``astuple`` is one C call each; ``msgspec.convert`` with
    ``from_attributes`` measured 5-9x slower for a ticker (see benchmarks/README-decode.md).
    """
    if nested is None:
        return lambda twin: public(*astuple(twin))
    names = [info.name for info in msgspec.structs.fields(public)]
    index, inner = names.index(nested[0]), nested[1]

    def convert(twin: Any) -> Message:
        values = list(astuple(twin))
        values[index] = tuple([inner(*astuple(row)) for row in values[index]])
        return public(*values)

    return convert


#: SIMPLE twin class -> function building the public message from it.
_FROM_SIMPLE: Final[dict[type[msgspec.Struct], Callable[[Any], Message]]] = {
    _SimpleTicker: _converter(Ticker),
    _SimpleTrade: _converter(Trade),
    _SimpleOrderbook: _converter(Orderbook, ("orderbook_units", OrderbookUnit)),
    _SimpleCandle: _converter(Candle),
    _SimpleMyOrder: _converter(MyOrder),
    _SimpleMyAsset: _converter(MyAsset, ("assets", AssetBalance)),
}


class _ErrorBody(msgspec.Struct, frozen=True, gc=False):
    # REST sometimes sends a numeric name (section 9.7); keep the frame, stringify it.
    name: str | int
    message: str = ""


class _Envelope(msgspec.Struct, frozen=True, gc=False):
    """The keys that say what a frame is; everything else is skipped unparsed."""

    type: str | None = None
    ty: str | None = None
    error: _ErrorBody | None = None
    status: str | None = None
    method: str | None = None
    mthd: str | None = None


class _ListReply(msgspec.Struct, frozen=True, gc=False):
    result: tuple[SubscribedType, ...] = ()
    # Older docs typed the ticket as a Long (section 2.1).
    ticket: str | int | None = None


class _SimpleListReply(msgspec.Struct, frozen=True, gc=False, rename={"result": "rslt"}):
    result: tuple[_SimpleSubscribed, ...] = ()  # type: ignore[valid-type]
    tckt: str | int | None = None


# ---------------------------------------------------------------------------------------------
# Decoders, built once.

_HotDefault: TypeAlias = Ticker | Trade | Orderbook | MyOrder | MyAsset
_DEFAULT: Final = msgspec.json.Decoder(_HotDefault)
_DEFAULT_LIST: Final = msgspec.json.Decoder(list[_HotDefault])
# The twins are built at runtime, so mypy sees their union as Any.
_SIMPLE_UNION: Any = (
    _SimpleTicker | _SimpleTrade | _SimpleOrderbook | _SimpleMyOrder | _SimpleMyAsset
)
_SIMPLE: Final = msgspec.json.Decoder(_SIMPLE_UNION)

#: The hot path's decoder: msgspec's own ``decode`` for a DEFAULT data frame (ticker, trade,
#: orderbook, myOrder, myAsset) from any buffer, one C call and no wrapper. It raises one of
#: :data:`DECODE_FAILURES` for anything else (SIMPLE, candles, control and error frames,
#: garbage): the caller then hands the frame to :func:`decode`, which reads every frame.
decode_data: Final[Callable[[Frame], Message]] = _DEFAULT.decode
_SIMPLE_LIST: Final = msgspec.json.Decoder(list[_SIMPLE_UNION])
_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_OBJECT: Final = msgspec.json.Decoder(dict[str, Any])
_LIST_REPLY: Final = msgspec.json.Decoder(_ListReply)
_SIMPLE_LIST_REPLY: Final = msgspec.json.Decoder(_SimpleListReply)


def _per_type(classes: Mapping[str, type[msgspec.Struct]]) -> dict[str, msgspec.json.Decoder[Any]]:
    decoders: dict[str, msgspec.json.Decoder[Any]] = {}
    for name, cls in classes.items():
        # myOrder: the SMP guide shows numbers as strings ("0") where captures show numbers
        # (section 4.5 [CONFLICT]); accept both rather than lose an order event.
        decoders[name] = msgspec.json.Decoder(cls, strict=name != "myOrder")
    return decoders


_DEFAULT_BY_TYPE: Final = _per_type(
    {
        "ticker": Ticker,
        "trade": Trade,
        "orderbook": Orderbook,
        **dict.fromkeys(CANDLE_TYPE_NAMES, Candle),
        "myOrder": MyOrder,
        "myAsset": MyAsset,
    }
)
_SIMPLE_BY_TYPE: Final = _per_type(
    {
        "ticker": _SimpleTicker,
        "trade": _SimpleTrade,
        "orderbook": _SimpleOrderbook,
        **dict.fromkeys(CANDLE_TYPE_NAMES, _SimpleCandle),
        "myOrder": _SimpleMyOrder,
        "myAsset": _SimpleMyAsset,
    }
)

# The same, keyed by the type's bytes as they appear in a frame.
_DEFAULT_BY_WIRE: Final = {name.encode(): dec for name, dec in _DEFAULT_BY_TYPE.items()}
_SIMPLE_BY_WIRE: Final = {name.encode(): dec for name, dec in _SIMPLE_BY_TYPE.items()}


# ---------------------------------------------------------------------------------------------
# Public entry points.


def decode(frame: Frame) -> Message:
    """Decode one server frame into its typed message.

    Accepts DEFAULT and SIMPLE frames, control frames (keep-alive, error, LIST_SUBSCRIPTIONS
    reply) and unknown types (as :class:`~upbit_ws.core.messages.UnknownMessage`). A
    JSON_LIST/SIMPLE_LIST array frame holding exactly one message (the only batching ever
    observed, section 2.5) gives that message; an array of any other length raises
    :class:`~upbit_ws.DecodeError`: use :func:`decode_all` on connections in a list format.
    Raises :class:`~upbit_ws.DecodeError`, and nothing else, for anything it cannot decode.
    """
    # A SIMPLE frame starts with its "ty" key; testing that first spares it a failed scan
    # by the DEFAULT decoder, at the cost of one 6-byte compare on DEFAULT frames.
    try:
        if frame[:6] != _SIMPLE_HEAD:
            return _DEFAULT.decode(frame)
        return _from_simple(_SIMPLE.decode(frame))
    except _DECODE_FAILURES:
        pass
    data = _as_bytes(frame)
    if _is_array(data):
        messages = _decode_array(data)
        if len(messages) == 1:
            return messages[0]
        raise DecodeError(
            f"array frame holds {len(messages)} messages; use decode_all() for list formats",
            data,
        )
    return _decode_object(data)


def decode_all(frame: Frame) -> list[Message]:
    """Decode every message of a frame: one for an object frame, each element of an array.

    Works for all four formats (section 2.5); an empty array gives an empty list. Raises
    :class:`~upbit_ws.DecodeError`, and nothing else, for anything it cannot decode.
    """
    try:
        head = frame[:6]
        if head == _SIMPLE_HEAD:
            return [_from_simple(_SIMPLE.decode(frame))]
        if head[:1] != b"[":  # list formats skip a decode attempt bound to fail
            return [_DEFAULT.decode(frame)]
    except _DECODE_FAILURES:
        pass
    data = _as_bytes(frame)
    if _is_array(data):
        return _decode_array(data)
    return [_decode_object(data)]


# ---------------------------------------------------------------------------------------------
# The slow path.


def _as_bytes(frame: object) -> bytes:
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, str):
        try:
            return frame.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DecodeError("text frame is not valid UTF-8", frame) from exc
    if isinstance(frame, bytearray | memoryview):
        return bytes(frame)
    raise DecodeError(f"expected bytes or str, got {type(frame).__name__}", repr(frame))


def _is_array(data: bytes) -> bool:
    head = data[:1]
    if head in b" \t\r\n":  # JSON allows leading whitespace; rare, so only then strip
        head = data.lstrip(b" \t\r\n")[:1]
    return head == b"["


def _decode_array(data: bytes) -> list[Message]:
    # Fast path: an array of hot-type messages in one format, decoded in one call.
    try:
        if data[:7] != b'[{"ty":':
            return list(_DEFAULT_LIST.decode(data))
        return [_from_simple(item) for item in _SIMPLE_LIST.decode(data)]
    except _DECODE_FAILURES:
        pass
    # Otherwise element by element (mixed kinds, candles, control frames, whitespace).
    try:
        elements = _RAW_LIST.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"expected a JSON object or array: {exc}", data) from exc
    except _DECODE_FAILURES as exc:
        raise DecodeError(f"not valid JSON: {exc}", data) from exc
    messages: list[Message] = []
    for index, element in enumerate(elements):
        raw = bytes(element)
        try:
            messages.append(_DEFAULT.decode(raw))
        except _DECODE_FAILURES:
            try:
                messages.append(_decode_object(raw))
            except DecodeError as exc:
                # Report against the whole frame: that is what the bug report needs.
                raise DecodeError(f"element {index}: {exc.reason}", data) from exc
    return messages


def _decode_object(data: bytes) -> Message:
    """Decode a frame that missed the hot path; ``data`` should hold one JSON object."""
    # Upbit writes the type first (every capture does): read it from the bytes and decode
    # once, instead of an envelope pass and then a typed pass. Candles land here.
    if data[:9] == b'{"type":"':
        decoder = _DEFAULT_BY_WIRE.get(data[9 : data.find(b'"', 9)])
        if decoder is not None:
            try:
                return decoder.decode(data)  # type: ignore[no-any-return]
            except _DECODE_FAILURES:
                pass  # the envelope pass below says what is wrong
    elif data[:7] == b'{"ty":"':
        decoder = _SIMPLE_BY_WIRE.get(data[7 : data.find(b'"', 7)])
        if decoder is not None:
            try:
                return _from_simple(decoder.decode(data))
            except _DECODE_FAILURES:
                pass
    try:
        env = _ENVELOPE.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"not an Upbit frame: {exc}", data) from exc
    except _DECODE_FAILURES as exc:
        raise DecodeError(f"not valid JSON: {exc}", data) from exc
    if env.type is not None:
        return _typed(data, env.type, _DEFAULT_BY_TYPE, "DEFAULT")
    if env.ty is not None:
        return _typed(data, env.ty, _SIMPLE_BY_TYPE, "SIMPLE")
    if env.error is not None:
        return ErrorFrame(name=str(env.error.name), message=env.error.message)
    if env.status is not None:
        return KeepAlive(status=env.status)
    if env.method is not None or env.mthd is not None:
        return _list_reply(data, env)
    raise DecodeError("JSON object has no type, error, status or method key", data)


def _typed(
    data: bytes, kind: str, decoders: Mapping[str, msgspec.json.Decoder[Any]], fmt: str
) -> Message:
    decoder = decoders.get(kind)
    if decoder is None:
        return UnknownMessage(type=kind, raw=_raw_object(data))
    try:
        message = decoder.decode(data)
    except _DECODE_FAILURES as exc:
        raise DecodeError(f"{fmt} {kind} frame does not match its schema: {exc}", data) from exc
    if fmt == "SIMPLE":
        return _from_simple(message)
    return message  # type: ignore[no-any-return]


def _from_simple(message: msgspec.Struct) -> Message:
    return _FROM_SIMPLE[type(message)](message)


def _list_reply(data: bytes, env: _Envelope) -> Message:
    method = env.method if env.method is not None else env.mthd
    if method != _LIST_METHOD:
        return UnknownMessage(type=str(method), raw=_raw_object(data))
    try:
        if env.method is not None:
            reply = _LIST_REPLY.decode(data)
            result, ticket = reply.result, reply.ticket
        else:
            simple = _SIMPLE_LIST_REPLY.decode(data)
            result = tuple([SubscribedType(*astuple(item)) for item in simple.result])
            ticket = simple.tckt
    except _DECODE_FAILURES as exc:
        raise DecodeError(
            f"LIST_SUBSCRIPTIONS reply does not match its schema: {exc}", data
        ) from exc
    return SubscriptionList(result=result, ticket=None if ticket is None else str(ticket))


def _raw_object(data: bytes) -> dict[str, Any]:
    try:
        return _RAW_OBJECT.decode(data)
    except _DECODE_FAILURES as exc:
        raise DecodeError(f"not a JSON object: {exc}", data) from exc
