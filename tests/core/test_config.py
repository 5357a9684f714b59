"""Connection configuration: defaults from one table, frozen objects, every problem at once."""

from __future__ import annotations

import dataclasses
import math

import pytest

from upbit_ws import ConfigError
from upbit_ws.core import config as cfg
from upbit_ws.core.config import (
    BackoffConfig,
    ConnectionConfig,
    KeepaliveConfig,
    KeyHealthConfig,
    RateLimits,
    ReconcileConfig,
    Timeouts,
    TransportConfig,
)


def test_defaults_come_from_the_named_constants() -> None:
    """Each config default is the table's named constant, so the docs table cannot drift."""
    c = ConnectionConfig()
    assert c.timeouts.connect == cfg.CONNECT_TIMEOUT == 1.0
    assert c.timeouts.connect_max == cfg.CONNECT_TIMEOUT_MAX == 5.0
    assert c.timeouts.send == cfg.SEND_TIMEOUT == 1.0
    assert c.timeouts.subscription_change == cfg.SUBSCRIPTION_CHANGE_TIMEOUT == 2.0
    assert c.keepalive.ping_interval == cfg.PING_INTERVAL
    assert c.keepalive.quiet_ping_interval == cfg.QUIET_PING_INTERVAL
    assert c.keepalive.pong_timeout == cfg.PONG_TIMEOUT
    assert c.keepalive.silence_probe == cfg.SILENCE_PROBE
    assert c.backoff.first_delay == cfg.BACKOFF_FIRST_DELAY
    assert c.backoff.cap == cfg.BACKOFF_CAP
    assert c.rate_limits.messages_per_minute == cfg.MESSAGES_PER_MINUTE == 100
    assert c.rate_limits.connects_per_second == cfg.CONNECTS_PER_SECOND == 5


def test_default_keepalive_meets_upbit_idle_kill_and_seed() -> None:
    """Pings go out at most every 20 s, well inside Upbit's ~60 s idle kill."""
    assert cfg.PING_INTERVAL <= 20.0
    assert cfg.PING_INTERVAL_MAX * 2 <= 60.0


def test_quiet_ping_interval_is_bounded_and_never_longer_than_the_ping_interval() -> None:
    """quiet_ping_interval is checked like ping_interval; the shorter of the two applies."""
    with pytest.raises(ConfigError) as info:
        KeepaliveConfig(quiet_ping_interval=45.0)
    assert info.value.problems == (
        "keepalive.quiet_ping_interval must be <= 30 s (Upbit drops sockets idle for ~60 s), "
        "got 45.0",
    )
    with pytest.raises(ConfigError, match=r"keepalive\.quiet_ping_interval must be > 0"):
        KeepaliveConfig(quiet_ping_interval=0.0)
    keepalive = KeepaliveConfig()
    assert keepalive.interval(streaming=True) == cfg.PING_INTERVAL
    assert keepalive.interval(streaming=False) == cfg.QUIET_PING_INTERVAL
    short = KeepaliveConfig(ping_interval=2.0, quiet_ping_interval=5.0, silence_probe=1.0)
    assert short.interval(streaming=False) == 2.0


def test_default_backoff_cap_is_in_the_asked_range() -> None:
    """The ordinary backoff cap sits in 20-30 s and the first retry within ~100 ms."""
    assert 20.0 <= cfg.BACKOFF_CAP <= 30.0
    assert cfg.BACKOFF_FIRST_DELAY <= 0.1


def test_configs_are_frozen() -> None:
    """A config object cannot be changed after it is built."""
    c = ConnectionConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.timeouts = Timeouts()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.keepalive.ping_interval = 1.0  # type: ignore[misc]


def test_configs_are_keyword_only() -> None:
    """Options are keyword-only: a positional value is a TypeError, not a silent mix-up."""
    with pytest.raises(TypeError):
        Timeouts(2.0)  # type: ignore[misc]


def test_timeouts_collects_every_problem() -> None:
    """Several bad timeouts are reported together in one ConfigError."""
    with pytest.raises(ConfigError) as info:
        Timeouts(connect=-1.0, send=0.0, close=math.nan, connect_growth=0.5)
    problems = info.value.problems
    assert any(p.startswith("timeouts.connect ") for p in problems)
    assert any(p.startswith("timeouts.send ") for p in problems)
    assert any(p.startswith("timeouts.close ") for p in problems)
    assert any(p.startswith("timeouts.connect_growth ") for p in problems)
    assert len(problems) == 4


def test_connect_max_must_not_be_below_connect() -> None:
    """The connect timeout ceiling cannot be below its starting value."""
    with pytest.raises(ConfigError, match=r"timeouts\.connect_max must be >= connect"):
        Timeouts(connect=3.0, connect_max=2.0)


def test_relations_are_skipped_when_a_field_is_already_bad() -> None:
    """A bad field is reported once, not again through every rule that mentions it."""
    with pytest.raises(ConfigError) as info:
        Timeouts(connect="1")  # type: ignore[arg-type]
    assert info.value.problems == ("timeouts.connect must be a finite number, got '1'",)


def test_booleans_are_not_numbers() -> None:
    """True is rejected where seconds or counts are expected."""
    with pytest.raises(ConfigError) as info:
        RateLimits(connects_per_second=True)
    assert "rate_limits.connects_per_second" in str(info.value)


def test_connect_timeout_grows_to_its_ceiling() -> None:
    """The connect timeout doubles after each timeout and stops at 5 s."""
    t = Timeouts()
    seq = [t.connect]
    for _ in range(5):
        seq.append(t.next_connect_timeout(seq[-1]))
    assert seq == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_keepalive_rejects_ping_interval_near_idle_kill() -> None:
    """A ping interval above 30 s is refused: Upbit kills idle sockets at ~60 s."""
    with pytest.raises(ConfigError, match="ping_interval must be <= 30"):
        KeepaliveConfig(ping_interval=45.0)


def test_keepalive_relations() -> None:
    """The pong deadline must be shorter than the ping interval, the probe not longer."""
    with pytest.raises(ConfigError) as info:
        KeepaliveConfig(ping_interval=5.0, pong_timeout=5.0, silence_probe=6.0)
    assert len(info.value.problems) == 2


def test_backoff_validation_collects_everything() -> None:
    """Jitter, factor and floors are all checked in one pass."""
    with pytest.raises(ConfigError) as info:
        BackoffConfig(jitter=1.0, factor=0.5, first_delay=30.0, cap=20.0, blocked_floor=900.0)
    text = str(info.value)
    for field in ("jitter", "factor", "first_delay", "blocked_floor"):
        assert f"backoff.{field}" in text


def test_rate_limit_burst_cannot_exceed_limit() -> None:
    """A burst larger than the window's limit is refused."""
    with pytest.raises(ConfigError, match=r"rate_limits\.message_burst must be <="):
        RateLimits(message_burst=6)


def test_connection_config_checks_group_types() -> None:
    """Passing the wrong object for a group is a ConfigError naming the group."""
    with pytest.raises(ConfigError, match="keepalive must be a KeepaliveConfig"):
        ConnectionConfig(keepalive=Timeouts())  # type: ignore[arg-type]


def test_from_mapping_reports_every_group_at_once() -> None:
    """Problems in several groups, unknown groups and unknown fields come in one error."""
    with pytest.raises(ConfigError) as info:
        ConnectionConfig.from_mapping(
            {
                "timeouts": {"connect": -1, "nope": 1},
                "keepalive": {"ping_interval": 100},
                "backoff": {"jitter": 2},
                "bogus": {},
            }
        )
    text = str(info.value)
    for needle in (
        "timeouts.connect ",
        "timeouts.nope is not a setting",
        "keepalive.ping_interval",
        "backoff.jitter",
        "unknown group 'bogus'",
    ):
        assert needle in text
    assert len(info.value.problems) == 5


def test_from_mapping_builds_a_valid_config() -> None:
    """A correct mapping builds the config with the given values and defaults elsewhere."""
    c = ConnectionConfig.from_mapping({"keepalive": {"ping_interval": 10}, "key_health": {}})
    assert c.keepalive.ping_interval == 10
    assert c.keepalive.pong_timeout == cfg.PONG_TIMEOUT
    assert c.key_health == KeyHealthConfig()


def test_from_mapping_rejects_a_non_mapping_group() -> None:
    """A group given as a scalar is reported, not crashed on."""
    with pytest.raises(ConfigError, match="backoff must be a mapping"):
        ConnectionConfig.from_mapping({"backoff": 3})  # type: ignore[dict-item]


def test_config_error_is_an_invalid_input_error() -> None:
    """Config problems can be caught as ValueError too (the caller's input is wrong)."""
    with pytest.raises(ValueError):
        KeyHealthConfig(check_interval=0)


def test_transport_receive_buffer_is_bounded_or_left_to_the_kernel() -> None:
    """receive_buffer: bytes from 16 KiB to 64 MiB, or None (kernel autotuning); else one error."""
    assert ConnectionConfig().transport.receive_buffer == cfg.RECEIVE_BUFFER == 512 * 1024
    assert TransportConfig(receive_buffer=None).receive_buffer is None
    assert TransportConfig(receive_buffer=cfg.RECEIVE_BUFFER_MIN).receive_buffer == 16 * 1024
    for bad in (100, 128 * 1024 * 1024, 1.5e5, True, "512k"):
        with pytest.raises(ConfigError, match=r"transport\.receive_buffer must be None or"):
            TransportConfig(receive_buffer=bad)  # type: ignore[arg-type]
    built = ConnectionConfig.from_mapping({"transport": {"receive_buffer": 131072}})
    assert built.transport.receive_buffer == 128 * 1024


def test_reconcile_finished_retention_is_a_positive_number_of_seconds() -> None:
    """finished_retention defaults to 10 minutes; zero, negative or not a number is one error."""
    assert ReconcileConfig().finished_retention == cfg.FINISHED_RETENTION == 600.0
    assert ReconcileConfig(finished_retention=0.1).finished_retention == 0.1
    for bad in (0, -1.0, math.nan, True, "10m"):
        with pytest.raises(ConfigError, match=r"reconcile\.finished_retention must be"):
            ReconcileConfig(finished_retention=bad)  # type: ignore[arg-type]
