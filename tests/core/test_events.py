"""System events: frozen, keyword-only, and round-trip through JSON into the right class."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from upbit_ws.core.events import (
    ConnectionStateChanged,
    Event,
    GapEvent,
    KeyExpiringSoon,
    KeyProblem,
    KeyRecovered,
    RequestRejected,
    SystemEvent,
)

KST = timezone(timedelta(hours=9))

SAMPLES: list[SystemEvent] = [
    ConnectionStateChanged(
        at=1.5, connection="public", old="open", new="degraded", reason="probe", attempt=1
    ),
    KeyProblem(at=2.0, problem="invalid", message="key refused", name="invalid_access_key"),
    KeyRecovered(at=3.0),
    KeyExpiringSoon(
        at=4.0, expires_at=datetime(2026, 11, 1, 12, 0, tzinfo=KST), seconds_left=86400.0
    ),
    RequestRejected(at=5.0, connection="private", name="WRONG_FORMAT", message="Format 오류"),
    GapEvent(
        at=6.0,
        connection="public",
        type="trade",
        code="KRW-BTC",
        reason="overflow",
        since=5.5,
        dropped=12,
        subscriber="chart",
    ),
    GapEvent(
        at=7.0, connection="private", type="myAsset", code=None, reason="reconnect", since=6.0
    ),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_event_round_trips_through_json(event: SystemEvent) -> None:
    """Each event encodes to JSON and decodes back, by its tag, into an equal event."""
    data = msgspec.json.encode(event)
    decoded = msgspec.json.decode(data, type=Event)
    assert decoded == event
    assert type(decoded) is type(event)


def test_tags_are_stable_wire_names() -> None:
    """The ``event`` field names each class, for UIs, JSON lines and the relay."""
    tags = [msgspec.json.decode(msgspec.json.encode(e))["event"] for e in SAMPLES]
    assert tags == [
        "state_changed",
        "key_problem",
        "key_recovered",
        "key_expiring_soon",
        "request_rejected",
        "gap",
        "gap",
    ]


def test_events_are_frozen() -> None:
    """An event cannot be altered after it is emitted."""
    event = SAMPLES[0]
    with pytest.raises(AttributeError):
        event.at = 9.0  # type: ignore[misc]


def test_events_are_keyword_only() -> None:
    """Fields are passed by name: a positional event is a TypeError."""
    with pytest.raises(TypeError):
        KeyRecovered(1.0)  # type: ignore[misc]


def test_unknown_state_is_rejected_on_decode() -> None:
    """Decoding checks the Literal states, so a typo cannot reach a UI."""
    bad = (
        b'{"event":"state_changed","at":1,"connection":"public","old":"open",'
        b'"new":"sleepy","reason":"x","attempt":1}'
    )
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(bad, type=Event)


def test_gap_defaults_mean_unknown() -> None:
    """A reconnect gap has no dropped count (unknown) and no subscriber by default."""
    gap = SAMPLES[-1]
    assert isinstance(gap, GapEvent)
    assert gap.dropped is None
    assert gap.subscriber is None


def test_expiry_keeps_its_timezone() -> None:
    """The key expiry Upbit reports in +09:00 survives the round trip as the same instant."""
    event = SAMPLES[3]
    decoded = msgspec.json.decode(msgspec.json.encode(event), type=Event)
    assert isinstance(decoded, KeyExpiringSoon)
    assert decoded.expires_at == datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
