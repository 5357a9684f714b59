"""KeyHealth against the simulator's GET /v1/api_keys: refusals, recovery, expiry, no secrets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.aio.connection_helpers import running_sim
from upbit_ws.aio.keys import KeyHealth
from upbit_ws.aio.rest import RestClient
from upbit_ws.core.auth import Credentials
from upbit_ws.core.config import KeyHealthConfig
from upbit_ws.core.errors import ConfigError
from upbit_ws.core.events import Event, KeyExpiringSoon, KeyProblem, KeyRecovered
from upbit_ws.simulator import Simulator

DAY = 86400.0


class FakeClock:
    """A monotonic clock the test moves by hand (for the once-a-day expiry warning)."""

    def __init__(self) -> None:
        self.value = 1000.0

    def now(self) -> float:
        """Return the current value."""
        return self.value

    def wall(self) -> float:
        """Return an epoch time moving with the value."""
        return 1_700_000_000.0 + self.value


@dataclass
class Harness:
    """A KeyHealth with recorded events and private-connection commands."""

    sim: Simulator
    keys: KeyHealth
    clock: FakeClock
    events: list[Event] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    valid: int = 0


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """Run a wall-clock simulator."""
    async with running_sim() as running:
        yield running


@pytest.fixture
async def harness(sim: Simulator) -> AsyncIterator[Harness]:
    """Return a KeyHealth watching the simulator's default key."""
    credentials = Credentials(*sim.credentials)
    async with RestClient(sim.url, credentials=credentials) as rest:
        clock = FakeClock()
        box: list[Harness] = []

        def on_valid() -> None:
            box[0].valid += 1

        events: list[Event] = []
        invalid: list[str] = []
        keys = KeyHealth(
            rest,
            credentials=credentials,
            config=KeyHealthConfig(check_interval=0.05),
            publish=events.append,
            on_invalid=invalid.append,
            on_valid=on_valid,
            clock=clock,
        )
        box.append(Harness(sim, keys, clock, events, invalid))
        yield box[0]


async def test_valid_key_is_quiet(harness: Harness) -> None:
    """A working key far from expiry produces no event and reads its expiry."""
    assert await harness.keys.check() == "valid"
    assert harness.events == [] and harness.invalid == [] and harness.valid == 0
    stats = harness.keys.statistics()
    assert stats.checks == 1 and stats.expires_at is not None and stats.last_check_error is None


async def test_revoked_key_suspends_and_restored_key_resumes(harness: Harness) -> None:
    """A revoked key gives one KeyProblem and suspends; restoring gives KeyRecovered and resumes."""
    harness.sim.revoke_key()
    assert await harness.keys.check() == "invalid"
    assert await harness.keys.check() == "invalid"
    problems = [e for e in harness.events if isinstance(e, KeyProblem)]
    assert len(problems) == 1
    assert problems[0].problem == "invalid" and problems[0].name == "invalid_access_key"
    assert harness.invalid and all("invalid_access_key" in r for r in harness.invalid)
    assert not harness.keys.usable
    harness.sim.restore_key()
    assert await harness.keys.check() == "valid"
    assert [type(e) for e in harness.events] == [KeyProblem, KeyRecovered]
    assert harness.valid == 1 and harness.keys.usable
    assert harness.keys.statistics().recoveries == 1


async def test_expired_key_is_its_own_problem(harness: Harness) -> None:
    """An expired key is reported as expired (Upbit's expired_access_key)."""
    harness.sim.expire_key(in_seconds=0)
    assert await harness.keys.check() == "expired"
    (problem,) = harness.events
    assert isinstance(problem, KeyProblem)
    assert problem.problem == "expired" and problem.name == "expired_access_key"


async def test_expiry_warning_once_a_day(harness: Harness) -> None:
    """A key expiring within 7 days warns once, not at every check, and again a day later."""
    harness.sim.expire_key(in_seconds=3 * DAY)
    for _ in range(3):
        assert await harness.keys.check() == "valid"
    warnings = [e for e in harness.events if isinstance(e, KeyExpiringSoon)]
    assert len(warnings) == 1
    assert 3 * DAY - 60 < warnings[0].seconds_left <= 3 * DAY
    harness.clock.value += DAY
    await harness.keys.check()
    assert len([e for e in harness.events if isinstance(e, KeyExpiringSoon)]) == 2


async def test_unreachable_rest_is_not_a_key_problem() -> None:
    """A key check that cannot reach Upbit changes nothing and emits no event."""
    events: list[Event] = []
    invalid: list[str] = []
    credentials = Credentials("A" * 40, "B" * 40)
    async with RestClient("http://127.0.0.1:1", credentials=credentials, timeout=1) as rest:
        keys = KeyHealth(
            rest,
            credentials=credentials,
            publish=events.append,
            on_invalid=invalid.append,
            on_valid=lambda: None,
        )
        assert await keys.check() == "unknown"
    assert events == [] and invalid == [] and keys.usable
    stats = keys.statistics()
    assert stats.check_failures == 1 and stats.last_check_error is not None


async def test_nonce_clash_is_not_a_key_problem(sim: Simulator) -> None:
    """A REST 401 nonce_used refuses one token, not the key: nothing is suspended."""
    events: list[Event] = []
    invalid: list[str] = []
    credentials = Credentials(*sim.credentials)
    async with RestClient(sim.url, credentials=credentials, nonce_factory=lambda: "same") as rest:
        keys = KeyHealth(
            rest,
            credentials=credentials,
            publish=events.append,
            on_invalid=invalid.append,
            on_valid=lambda: None,
        )
        assert await keys.check() == "valid"
        assert await keys.check() == "valid"  # the simulator answers 401 nonce_used
    assert events == [] and invalid == [] and keys.usable
    stats = keys.statistics()
    assert stats.check_failures == 1 and stats.last_check_error is not None
    assert "nonce_used" in stats.last_check_error


def test_transient_refusal_reported_by_the_connection_is_ignored() -> None:
    """A nonce_used seen at a private handshake is no KeyProblem (the next connect re-signs)."""
    events: list[Event] = []
    keys = KeyHealth(
        RestClient("http://127.0.0.1:1"),
        credentials=Credentials("A" * 40, "B" * 40),
        publish=events.append,
        on_invalid=lambda reason: None,
        on_valid=lambda: None,
        clock=FakeClock(),
    )
    keys.report_refused("nonce_used", "이미 요청한 nonce값이 다시 사용되었습니다.")
    assert events == [] and keys.status == "unknown" and keys.usable


async def test_refusal_seen_by_the_connection(harness: Harness) -> None:
    """A refusal the private socket saw is one KeyProblem; the next good check recovers it."""
    harness.keys.report_refused("INVALID_AUTH", "인증 정보가 올바르지 않습니다.")
    harness.keys.report_refused("INVALID_AUTH", "인증 정보가 올바르지 않습니다.")
    problems = [e for e in harness.events if isinstance(e, KeyProblem)]
    assert len(problems) == 1 and problems[0].name == "INVALID_AUTH"
    # The connection suspended itself; the watcher must not command it again.
    assert harness.invalid == []
    assert await harness.keys.check() == "valid"
    assert isinstance(harness.events[-1], KeyRecovered) and harness.valid == 1


async def test_run_checks_periodically(sim: Simulator) -> None:
    """The loop checks every check_interval seconds until cancelled."""
    credentials = Credentials(*sim.credentials)
    refused = asyncio.Event()
    async with RestClient(sim.url, credentials=credentials) as rest:
        keys = KeyHealth(
            rest,
            credentials=credentials,
            config=KeyHealthConfig(check_interval=0.05),
            publish=lambda event: None,
            on_invalid=lambda reason: refused.set(),
            on_valid=lambda: None,
        )
        task = asyncio.create_task(keys.run())
        try:
            # A second check starts by itself: the loop repeats, it does not check just once.
            async with asyncio.timeout(2):
                await sim.wait_for(lambda: sim.rest_requests >= 2)
            assert keys.status == "valid" and not refused.is_set()
            sim.revoke_key()
            await asyncio.wait_for(refused.wait(), 2)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert keys.statistics().checks >= 2 and keys.status == "invalid"


async def test_a_refused_key_is_checked_more_often_and_private_reopens_soon(
    sim: Simulator,
) -> None:
    """While the key is refused, the loop checks every refused_check_interval (here 0.05 s),
    not every check_interval (an hour here): a restored key is seen within moments."""
    credentials = Credentials(*sim.credentials)
    refused = asyncio.Event()
    restored = asyncio.Event()
    async with RestClient(sim.url, credentials=credentials) as rest:
        keys = KeyHealth(
            rest,
            credentials=credentials,
            config=KeyHealthConfig(check_interval=3600.0, refused_check_interval=0.05),
            publish=lambda event: None,
            on_invalid=lambda reason: refused.set(),
            on_valid=restored.set,
        )
        sim.revoke_key()
        assert await keys.check() == "invalid"  # the manager's check at start
        assert refused.is_set()
        task = asyncio.create_task(keys.run())
        try:
            sim.restore_key()
            await asyncio.wait_for(restored.wait(), 10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert keys.status == "valid" and keys.statistics().checks >= 2


def test_refused_check_interval_is_validated() -> None:
    """A bad refused_check_interval is a ConfigError naming the field."""
    with pytest.raises(ConfigError, match="refused_check_interval"):
        KeyHealthConfig(refused_check_interval=0)


async def test_no_secret_in_events_logs_or_reprs(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the secret nor the full access key shows up in events, logs or reprs."""
    caplog.set_level(logging.DEBUG)
    access, secret = harness.sim.credentials
    harness.sim.expire_key(in_seconds=DAY)
    await harness.keys.check()
    harness.sim.revoke_key()
    await harness.keys.check()
    texts = [repr(e) for e in harness.events] + [r.getMessage() for r in caplog.records]
    texts += [repr(harness.keys), repr(harness.keys.statistics())]
    assert len(harness.events) == 2
    for text in texts:
        assert secret not in text and access not in text
