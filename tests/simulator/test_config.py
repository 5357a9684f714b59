"""SimulatorConfig: frozen, validated all at once, Upbit's behaviour by default."""

from __future__ import annotations

import dataclasses

import pytest

from upbit_ws.core.errors import ConfigError
from upbit_ws.simulator import SimulatorConfig


def test_defaults_are_upbit_behaviour() -> None:
    """Defaults follow the reference: 60 s idle, 10 s status, 5 connects/s, 5 and 100 messages."""
    cfg = SimulatorConfig()
    assert cfg.idle_timeout == 60.0
    assert cfg.status_interval == 10.0
    assert cfg.error_close_delay == pytest.approx(0.15)
    assert cfg.connect_per_second == 5
    assert (cfg.messages_per_second, cfg.messages_per_minute) == (5, 100)
    assert cfg.krw_markets == 200


def test_every_problem_is_reported_at_once() -> None:
    """An invalid config raises ConfigError listing each problem, not only the first."""
    with pytest.raises(ConfigError) as info:
        SimulatorConfig(port=70000, tick_interval=0, messages_per_second=0, fee_rate="x")
    text = " ".join(info.value.problems)
    assert "port" in text and "tick_interval" in text
    assert "messages_per_second" in text and "fee_rate" in text
    assert len(info.value.problems) == 4


def test_config_is_frozen_and_replace_validates() -> None:
    """The config cannot be mutated, and replace() re-validates."""
    cfg = SimulatorConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.port = 1  # type: ignore[misc]
    assert cfg.replace(idle_timeout=None).idle_timeout is None
    with pytest.raises(ConfigError):
        cfg.replace(idle_timeout=-1.0)


def test_secret_not_in_repr() -> None:
    """The secret key never appears in the config's repr."""
    cfg = SimulatorConfig()
    assert cfg.secret_key not in repr(cfg)
