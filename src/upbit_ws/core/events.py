"""Typed system events for UIs and logs: connection state, API key health, rejections, gaps.

``manager.events()`` yields these. They are frozen msgspec Structs tagged with an ``event``
field, so a UI, the CLI's JSON output or the relay can encode them and decode them back into
the right class (``msgspec.json.decode(data, type=Event)``). ``at_wall`` is the wall clock:
epoch seconds (UTC), stamped when the event is published through a manager's event hub.
``at`` and ``since`` are the shell's monotonic clock in seconds (``loop.time()``, the same
clock the core's ``now`` comes from): use them for durations and ordering, ``at_wall`` to
show or store a time. No event
carries a key, a token or a secret.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from upbit_ws.core.constants import ConnectionKind, DataType

__all__ = [
    "BufferOverflowed",
    "ConnectionKind",
    "ConnectionMisconfigured",
    "ConnectionState",
    "ConnectionStateChanged",
    "Event",
    "GapEvent",
    "GapReason",
    "KeyExpiringSoon",
    "KeyProblem",
    "KeyProblemKind",
    "KeyRecovered",
    "ReconcileCause",
    "ReconciliationFinished",
    "ReconciliationStarted",
    "RequestRejected",
    "SystemEvent",
]

#: States of one managed connection (see :class:`upbit_ws.core.session.Session`).
ConnectionState = Literal[
    "idle", "connecting", "open", "degraded", "reconnecting", "suspended", "closed"
]

#: What is wrong with the API key: refused by Upbit, expired, missing a permission, or the
#: key check itself could not reach Upbit.
KeyProblemKind = Literal["invalid", "expired", "permission", "unreachable"]

#: Why a subscription lost data: its bounded buffer dropped frames, or the connection was down.
GapReason = Literal["overflow", "reconnect"]

#: What opened a private gap that a reconciliation repairs: the socket was replaced
#: (``reconnect``), it went quiet past its pong deadline and came back (``stall``), a
#: myOrder/myAsset ``never_drop`` buffer overflowed (``overflow``), or no gap was noticed and
#: the periodic REST audit found events the socket did not deliver (``audit``).
ReconcileCause = Literal["reconnect", "stall", "overflow", "audit"]


class SystemEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="event"):
    """Base of every system event: ``at`` is when it happened (monotonic seconds).

    ``at_wall`` is the same instant in epoch seconds (UTC wall clock); None on an event that
    did not pass through a manager's event hub (which stamps it).
    """

    at: float
    at_wall: float | None = None


class ConnectionStateChanged(SystemEvent, frozen=True, kw_only=True, tag="state_changed"):
    """A connection moved from ``old`` to ``new`` state.

    ``reason`` says why in a few words (``"pong timeout"``, ``"ConnectionResetError: ..."``);
    ``attempt`` is the connect attempt this change belongs to, counted from 1 since the
    connection was last open (0 before the first attempt).
    """

    connection: ConnectionKind
    old: ConnectionState
    new: ConnectionState
    reason: str
    attempt: int


class ConnectionMisconfigured(
    SystemEvent, frozen=True, kw_only=True, tag="connection_misconfigured"
):
    """A connection fails in a way retrying cannot fix: ``problem`` says what, and the fix.

    Published once when such a failure is first seen (a URL that answers 404 to the WebSocket
    handshake, a host that does not resolve), and logged once as a warning; the connection
    keeps retrying quietly (the fix may be outside the process, such as a DNS entry) and
    publishes again only if the problem changes or comes back after an open socket.
    ``wait_ready()`` raises :class:`~upbit_ws.ConfigError` with the same text.
    """

    connection: ConnectionKind
    problem: str


class KeyProblem(SystemEvent, frozen=True, kw_only=True, tag="key_problem"):
    """The API key does not work: the private connection is stopped until it does again.

    ``name`` is Upbit's error name when there was one (``invalid_access_key``,
    ``INVALID_AUTH``...); ``message`` is human text without any part of the key.
    """

    problem: KeyProblemKind
    message: str
    name: str | None = None


class KeyRecovered(SystemEvent, frozen=True, kw_only=True, tag="key_recovered"):
    """The API key works again; the private connection is being re-opened."""


class KeyExpiringSoon(SystemEvent, frozen=True, kw_only=True, tag="key_expiring_soon"):
    """The API key expires soon (Upbit keys last one year and cannot be extended, section 5).

    ``expires_at`` is the expiry Upbit reported (``GET /v1/api_keys``, section 9.2);
    ``seconds_left`` the time left when checked.
    """

    expires_at: datetime
    seconds_left: float


class RequestRejected(SystemEvent, frozen=True, kw_only=True, tag="request_rejected"):
    """Upbit answered a request the library built with an error frame (section 7.2).

    This is a bug report: the library keeps the last accepted subscription and does not send
    the rejected request again. ``name`` and ``message`` are Upbit's.
    """

    connection: ConnectionKind
    name: str
    message: str


class GapEvent(SystemEvent, frozen=True, kw_only=True, tag="gap"):
    """A subscription lost data between ``since`` and ``at``.

    ``reason`` is ``overflow`` when the subscriber's bounded buffer dropped frames (``dropped``
    counts them) or ``reconnect`` when the connection was down (``dropped`` is None: what the
    server sent meanwhile is unknown). ``code`` is None when the gap covers every code of the
    type (``myAsset``); ``subscriber`` names the component whose buffer overflowed, if any.
    """

    connection: ConnectionKind
    type: DataType
    code: str | None
    reason: GapReason
    since: float
    dropped: int | None = None
    subscriber: str | None = None


class BufferOverflowed(SystemEvent, frozen=True, kw_only=True, tag="buffer_overflowed"):
    """A ``never_drop`` subscription's buffer grew past its bound: its consumer is too slow.

    Nothing was lost (the buffer keeps every message and grows); it goes out once per
    overflow episode. ``subscriber`` names the component, ``depth`` is what waited when the
    episode began and ``capacity`` the bound it passed. An application that would rather
    rebuild its order state than read the backlog can reconcile from REST on this event.
    """

    connection: ConnectionKind
    type: DataType
    subscriber: str
    capacity: int
    depth: int


class ReconciliationStarted(SystemEvent, frozen=True, kw_only=True, tag="reconciliation_started"):
    """A private reconciliation began: REST is read for what a gap hid (docs/rest.md).

    ``since`` is where the gap began (the last frame received before it; monotonic seconds,
    comparable with ``at``) and ``since_wall`` the same instant in epoch seconds (UTC).
    ``cause`` says what opened the gap; gaps that open while a pass runs extend the next pass
    (from the earliest start) and publish no event of their own until it begins.
    """

    connection: ConnectionKind
    since: float
    since_wall: float
    cause: ReconcileCause


class ReconciliationFinished(SystemEvent, frozen=True, kw_only=True, tag="reconciliation_finished"):
    """A private reconciliation ended: every myOrder/myAsset message it rebuilt is delivered.

    From this event on, the subscribers' view of orders and balances equals what REST said
    (later changes arrive live). ``orders_read`` counts the orders REST returned,
    ``messages_delivered`` the reconciled messages handed to subscribers (``reconciled=True``),
    ``attempts`` the passes made (more than 1 after a failed REST read), ``duration`` the
    seconds from :class:`ReconciliationStarted` to now.
    """

    connection: ConnectionKind
    since_wall: float
    orders_read: int
    messages_delivered: int
    duration: float
    attempts: int = 1


#: Every system event, for ``msgspec`` decoding and exhaustive ``match`` statements.
Event = (
    ConnectionStateChanged
    | ConnectionMisconfigured
    | KeyProblem
    | KeyRecovered
    | KeyExpiringSoon
    | RequestRejected
    | GapEvent
    | BufferOverflowed
    | ReconciliationStarted
    | ReconciliationFinished
)
