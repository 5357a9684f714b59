"""What the relay writes to Redis, and how: key names, entry encoding, relay events, config.

Pure: no Redis, no asyncio. Both sides of the relay (:mod:`upbit_ws.relay.relay` writes,
:mod:`upbit_ws.relay.feed` reads) take their formats from here, so they cannot drift apart.

**Keys** (``namespace`` defaults to ``upbit``):

* ``upbit:{type}:{code}``: one stream per data type and market, e.g. ``upbit:trade:KRW-BTC``;
  ``upbit:myAsset`` has no code (myAsset has no market, section 4.6 of docs/protocol.md);
* ``upbit:events``: the relay's events (:class:`RelayEvent`);
* ``upbit:lease:{name}``: the lease two relays of one subscription set compete for, and
  ``upbit:lease:{name}:batch`` the id of the last batch the leader appended (idempotent retry).

**Entries** have one field, whose name is the entry's format (its version):

* ``m2`` (format 2, what the relay writes): the data messages of one stream that one read of
  the relay's subscription brought, as one msgpack array; each message is the array of its
  class's fields in declaration order (``msgspec.structs.astuple``; nested structs such as an
  orderbook's units stay maps), without names or tag: the stream's type says the class, and
  the reader decodes each array with its fields' types (validated) and builds the same class
  (:class:`~upbit_ws.Trade`, ...). Batching cuts Redis's work (one ``XADD`` per entry, not per
  message) and the per-entry costs of both sides; leaving the field names out makes a trade
  148 bytes instead of 368 and a ticker 263 instead of 784, and both sides cheaper
  (benchmarks/README-relay.md). The layout is the message classes' field order, pinned by
  tests/relay/test_codec.py: a change to it is a new format. Consumer groups acknowledge whole
  entries (docs/relay.md, "Consumer groups").
* ``m`` (format 1, written by relays before format 2 and still read): one message.
* ``g``: a :class:`FeedGap` written into the data stream itself, exactly where the data was
  lost, so a reader meets it in band (``items()``).

Any other field is a format this reader does not know (a newer relay's): readers refuse it
with :class:`EntryFormatError`, which says so, instead of misreading it. Events-stream entries
carry ``m`` (one event).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import starmap
from typing import Any, Final, Literal, TypeAlias, cast

import msgspec
from msgspec.structs import astuple, fields

from upbit_ws.core.config import _Checker
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.events import ConnectionKind, ConnectionState
from upbit_ws.core.messages import MESSAGE_TYPES, DataMessage

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAXLEN",
    "DEFAULT_NAMESPACE",
    "DEFAULT_UPSTREAM_CAPACITY",
    "AnyRelayEvent",
    "EntryFormatError",
    "FeedGap",
    "GapCause",
    "Keys",
    "LeaseAcquired",
    "LeaseReleased",
    "RedisOutage",
    "RelayConfig",
    "RelayEvent",
    "UpstreamStateChanged",
    "batch_decoder_for",
    "check_subscriptions",
    "decode_entry",
    "decoder_for",
    "encode_event",
    "encode_gap",
    "encode_message",
    "encode_messages",
    "entry_id_seconds",
]

DEFAULT_NAMESPACE: Final = "upbit"
#: Entries kept per stream (``XADD MAXLEN ~``): about 100,000 trades is minutes of a busy market.
DEFAULT_MAXLEN: Final = 100_000
#: Lease time to live; a standby takes over at most this long after the leader stops renewing.
DEFAULT_LEASE_SECONDS: Final = 3.0
#: Entries the relay holds while Redis is down (and, on a standby, its takeover backlog).
DEFAULT_BUFFER_SIZE: Final = 65_536
#: Most messages one append carries (whole entries: at least one).
DEFAULT_BATCH_SIZE: Final = 8192
#: Bound of each upstream subscription buffer in the relay's manager (drop_oldest, counted).
DEFAULT_UPSTREAM_CAPACITY: Final = 1 << 16

#: Why a stream lost data: Upbit's connection was down (``upstream_reconnect``), the relay's
#: subscription buffer overflowed (``upstream_overflow``), its outbox to Redis overflowed while
#: Redis was down or slower than the feed (``relay_overflow``), or a new leader could not fill
#: the time since the previous one's last append from its own backlog (``takeover``).
GapCause = Literal["upstream_reconnect", "upstream_overflow", "relay_overflow", "takeover"]

# What an entry of the relay's outbox holds: field "m" (one event; one message in format 1),
# "g" (a gap), "m2" (a batch of messages, format 2).
KIND_MESSAGE: Final = 0
KIND_GAP: Final = 1
KIND_BATCH: Final = 2
#: The field of each kind (indexed by kind), as readers see it.
FIELD_MESSAGE: Final = b"m"
FIELD_GAP: Final = b"g"
FIELD_BATCH: Final = b"m2"


class RelayEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="event"):
    """Base of what the relay writes to ``upbit:events``.

    ``at`` is wall-clock Unix seconds (readers are other processes, so the manager's monotonic
    clock means nothing to them); ``relay`` the writing relay's id.
    """

    at: float
    relay: str


class FeedGap(RelayEvent, frozen=True, kw_only=True, tag="gap"):
    """Data of ``type`` (and ``code``; ``None``: every code of the type) may be missing.

    Between ``since`` and ``at`` (Unix seconds) messages were lost for ``cause``; ``dropped``
    counts them when known. Written to ``upbit:events`` and, per affected stream, into the data
    stream at the point of loss.
    """

    type: str | None
    code: str | None
    cause: GapCause
    since: float
    dropped: int | None = None


class UpstreamStateChanged(RelayEvent, frozen=True, kw_only=True, tag="upstream_state"):
    """The leader's connection to Upbit changed state (from ``ConnectionStateChanged``)."""

    connection: ConnectionKind
    old: ConnectionState
    new: ConnectionState
    reason: str


class LeaseAcquired(RelayEvent, frozen=True, kw_only=True, tag="lease_acquired"):
    """``relay`` took the lease and streams from now on.

    ``since`` is when the previous leader last appended (the newest entry of the streams this
    relay writes; ``None`` when they were empty), so ``at - since`` is how long readers waited.
    ``refilled`` counts messages this relay appended from its standby backlog to close that
    wait without loss; streams it could not close get a :class:`FeedGap` (cause ``takeover``).
    """

    since: float | None
    refilled: int


class LeaseReleased(RelayEvent, frozen=True, kw_only=True, tag="lease_released"):
    """``relay`` gave the lease up on a clean exit; a standby takes over at once."""


class RedisOutage(RelayEvent, frozen=True, kw_only=True, tag="redis_outage"):
    """The leading ``relay`` could not append from ``since`` until ``at`` (Unix seconds).

    Written once Redis answers again, after any :class:`FeedGap` (cause ``relay_overflow``)
    the outage caused. ``retries`` counts the failed appends; ``dropped`` the messages lost
    to the full outbox meanwhile (0: the outbox held everything, nothing is missing).
    """

    since: float
    retries: int
    dropped: int


#: Anything on ``upbit:events``.
AnyRelayEvent: TypeAlias = (
    FeedGap | UpstreamStateChanged | LeaseAcquired | LeaseReleased | RedisOutage
)

_ENCODER: Final = msgspec.msgpack.Encoder()
EVENT_DECODER: Final = msgspec.msgpack.Decoder(AnyRelayEvent)
GAP_DECODER: Final = msgspec.msgpack.Decoder(FeedGap)


@dataclass(frozen=True, slots=True)
class Keys:
    """The Redis key names of one namespace (see the module docs)."""

    namespace: str = DEFAULT_NAMESPACE

    def stream(self, type: str, code: str | None) -> str:
        """Return the stream of ``type`` and market ``code`` (``None`` for myAsset)."""
        if code is None:
            return f"{self.namespace}:{type}"
        return f"{self.namespace}:{type}:{code}"

    @property
    def events(self) -> str:
        """Return the events stream."""
        return f"{self.namespace}:events"

    def lease(self, name: str) -> str:
        """Return the lease key of the relay set ``name``."""
        return f"{self.namespace}:lease:{name}"

    def batch(self, name: str) -> str:
        """Return the key holding the id of the last batch the leader of ``name`` appended."""
        return f"{self.namespace}:lease:{name}:batch"


def encode_message(message: DataMessage) -> bytes:
    """Return ``message`` as msgpack, with its ``type`` tag (decode with :func:`decoder_for`)."""
    return _ENCODER.encode(message)


def encode_messages(messages: list[DataMessage]) -> bytes:
    """Return messages of one stream as one msgpack array of field arrays (format ``m2``).

    One encode call for the list, each message as the tuple of its fields (C-level
    ``astuple``): cheaper than a map per message, and a third to a half of its bytes (module
    docs).
    """
    return _ENCODER.encode(list(map(astuple, messages)))


def encode_gap(gap: FeedGap) -> bytes:
    """Return ``gap`` as msgpack (also what the events stream carries)."""
    return _ENCODER.encode(gap)


def encode_event(event: RelayEvent) -> bytes:
    """Return a relay event as msgpack."""
    return _ENCODER.encode(event)


_DECODERS: dict[str, msgspec.msgpack.Decoder[Any]] = {}


def decoder_for(type: str) -> msgspec.msgpack.Decoder[Any]:
    """Return the decoder of one stream entry payload of data ``type`` (cached)."""
    decoder = _DECODERS.get(type)
    if decoder is None:
        cls = MESSAGE_TYPES.get(type)
        if cls is None:
            raise InvalidInputError(
                f"unknown data type {type!r}; expected one of {', '.join(MESSAGE_TYPES)}"
            )
        decoder = _DECODERS[type] = msgspec.msgpack.Decoder(cls)
    return decoder


_BATCH_DECODERS: dict[str, Callable[[bytes], list[Any]]] = {}


def batch_decoder_for(type: str) -> Callable[[bytes], list[Any]]:
    """Return the decoder of a format-2 payload of data ``type``: bytes to messages (cached).

    The arrays decode as tuples of the class's field types (msgspec checks each value), then
    build the class positionally (C-level ``starmap``; the message classes take their fields
    positionally in declaration order, core/messages.py).
    """
    decode_batch = _BATCH_DECODERS.get(type)
    if decode_batch is None:
        decoder_for(type)  # the same check and message for an unknown type
        cls = MESSAGE_TYPES[type]
        row: Any = cast(Any, tuple)[tuple(f.type for f in fields(cls))]
        decode = msgspec.msgpack.Decoder(cast(Any, list)[row]).decode

        def decode_batch(payload: bytes) -> list[Any]:
            return list(starmap(cls, decode(payload)))

        _BATCH_DECODERS[type] = decode_batch
    return decode_batch


class EntryFormatError(InvalidInputError):
    """A stream entry in a format this reader does not know: upgrade upbit-ws where it reads."""

    def __init__(self, field: bytes | str) -> None:
        name = field.decode(errors="replace") if isinstance(field, bytes) else field
        self.field = name
        super().__init__(
            f"stream entry field {name!r} is not a format this reader knows ('m2' and 'm' "
            "messages, 'g' gaps): it was written by a newer relay (upgrade upbit-ws on this "
            "reader) or by something that is not a relay"
        )


def decode_entry(type: str, field: bytes, payload: bytes) -> list[DataMessage] | FeedGap:
    """Return the messages of one stream entry of data ``type``, or its gap marker.

    Raises :class:`EntryFormatError` for an unknown field (format) and ``msgspec.DecodeError``
    for a payload that does not decode.
    """
    if field == FIELD_BATCH:
        return batch_decoder_for(type)(payload)
    if field == FIELD_MESSAGE:
        return [decoder_for(type).decode(payload)]
    if field == FIELD_GAP:
        return GAP_DECODER.decode(payload)
    raise EntryFormatError(field)


def entry_id_seconds(entry_id: str | bytes) -> float:
    """Return the Unix time (seconds) a Redis stream entry id was generated at."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0]) / 1000.0


@dataclass(frozen=True, kw_only=True, slots=True)
class RelayConfig:
    """How a relay writes: keys, lengths, the lease, buffers. Validated, all errors at once.

    ``maxlen`` caps the messages of each stream, about: an entry holds a batch of messages, so
    each append trims its stream to ``maxlen // n`` entries (``XADD MAXLEN ~``), ``n`` the
    messages of the entry appended; Redis trims in whole nodes, and entries of different sizes
    mix, so a stream holds more or fewer for a while (docs/relay.md, "What goes into Redis").
    ``lease_seconds`` is the lease time to live; the leader renews it every third of that.
    ``buffer_size`` bounds the messages held while Redis is down (the oldest entries are dropped
    whole and their messages counted, and a :class:`FeedGap` says so when Redis is back); a
    standby keeps the same number as its takeover backlog. ``batch_size`` caps the messages of
    one append (whole entries: at least one).
    ``upstream_capacity`` bounds each subscription buffer in the relay's manager.
    """

    namespace: str = DEFAULT_NAMESPACE
    lease_name: str = "relay"
    maxlen: int = DEFAULT_MAXLEN
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    buffer_size: int = DEFAULT_BUFFER_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE
    upstream_capacity: int = DEFAULT_UPSTREAM_CAPACITY

    def __post_init__(self) -> None:
        """Validate every field and raise one ConfigError listing all problems."""
        check = _Checker("relay", self)
        for name in ("maxlen", "buffer_size", "batch_size", "upstream_capacity"):
            check.count(name)
        if check.number("lease_seconds"):
            check.rule(
                ("lease_seconds",),
                lambda: self.lease_seconds >= 0.1,
                f"must be >= 0.1 s (renewed every third of it), got {self.lease_seconds!r}",
            )
        for name in ("namespace", "lease_name"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or any(c.isspace() for c in value):
                check.fail(name, f"must be a non-empty string without spaces, got {value!r}")
        check.raise_if_any()

    @property
    def keys(self) -> Keys:
        """Return the key names of this config's namespace."""
        return Keys(self.namespace)

    @property
    def lease_ms(self) -> int:
        """Return the lease time to live in whole milliseconds."""
        return max(1, math.ceil(self.lease_seconds * 1000))


def check_subscriptions(
    subscriptions: Mapping[str, Any],
) -> dict[str, tuple[str, ...]]:
    """Return ``{type: codes}`` with codes upper-cased; raise InvalidInputError on bad input."""
    out: dict[str, tuple[str, ...]] = {}
    problems: list[str] = []
    for type, codes in subscriptions.items():
        if type not in MESSAGE_TYPES:
            problems.append(f"unknown type {type!r} (expected one of {', '.join(MESSAGE_TYPES)})")
            continue
        if isinstance(codes, str):
            codes = [codes]
        normal = tuple(str(c).strip().upper() for c in codes)
        if not normal and type != "myAsset" and type != "myOrder":
            problems.append(f"{type} needs at least one code")
        out[type] = normal
    if not out and not problems:
        problems.append("nothing to relay: give at least one type and its codes")
    if problems:
        raise InvalidInputError("; ".join(problems))
    return out
