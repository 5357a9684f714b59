"""Reconnect backoff: jittered, capped, never giving up, longer on 429/418, reset when healthy."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upbit_ws.core.backoff import Backoff, BackoffClass
from upbit_ws.core.config import BackoffConfig

configs = st.builds(
    BackoffConfig,
    first_delay=st.floats(min_value=0.001, max_value=1.0),
    factor=st.floats(min_value=1.0, max_value=4.0),
    cap=st.floats(min_value=1.0, max_value=60.0),
    jitter=st.floats(min_value=0.0, max_value=0.99),
    rate_limited_floor=st.floats(min_value=0.001, max_value=1.0),
)


@settings(max_examples=200)
@given(configs, st.integers(0, 2**32 - 1), st.integers(1, 200))
def test_ordinary_delays_stay_within_jittered_envelope(
    config: BackoffConfig, seed: int, count: int
) -> None:
    """Every ordinary delay lies in [envelope * (1 - jitter), envelope] and within [0, cap]."""
    backoff = Backoff(config, rng=random.Random(seed))
    for attempt in range(count):
        top = backoff.envelope(attempt)
        delay = backoff.next_delay()
        assert 0.0 <= delay <= config.cap
        assert top * (1 - config.jitter) - 1e-12 <= delay <= top
    assert backoff.attempt == count


@settings(max_examples=200)
@given(configs, st.integers(0, 10_000))
def test_envelope_never_decreases_and_reaches_cap(config: BackoffConfig, start: int) -> None:
    """The delay envelope is non-decreasing in the attempt and stops at the cap."""
    backoff = Backoff(config)
    tops = [backoff.envelope(n) for n in range(start, start + 50)]
    assert tops == sorted(tops)
    assert all(top <= config.cap for top in tops)
    if config.factor > 1.01:
        assert backoff.envelope(10_000) == config.cap


@settings(max_examples=200)
@given(
    configs,
    st.integers(0, 2**32 - 1),
    st.lists(st.sampled_from(["normal", "rate_limited", "blocked", "auth"]), max_size=40),
)
def test_reset_returns_to_first_retry_range(
    config: BackoffConfig, seed: int, history: list[BackoffClass]
) -> None:
    """After any history of failures, reset() makes the next delay a first retry again."""
    backoff = Backoff(config, rng=random.Random(seed))
    for kind in history:
        backoff.next_delay(kind=kind)
    backoff.reset()
    assert backoff.attempt == 0
    delay = backoff.next_delay()
    assert config.first_delay * (1 - config.jitter) - 1e-12 <= delay <= config.first_delay


@settings(max_examples=200)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.sampled_from(["normal", "rate_limited", "auth"]), min_size=1, max_size=100),
)
def test_delays_never_exceed_cap_without_a_server_wait(
    seed: int, history: list[BackoffClass]
) -> None:
    """Ordinary, rate-limited and auth delays with default config stay within their bounds."""
    config = BackoffConfig()
    backoff = Backoff(config, rng=random.Random(seed))
    for kind in history:
        delay = backoff.next_delay(kind=kind)
        bound = config.auth_retry if kind == "auth" else config.cap
        assert 0.0 <= delay <= bound


def test_first_retry_is_within_100_ms() -> None:
    """The first retry after a failure comes within ~100 ms by default."""
    for seed in range(50):
        assert 0.0 < Backoff(rng=random.Random(seed)).next_delay() <= 0.1


def test_never_gives_up() -> None:
    """After thousands of failures the backoff still hands out capped delays."""
    backoff = Backoff(rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(5000)]
    assert max(delays) <= 20.0
    assert min(delays[-100:]) >= 10.0


def test_same_seed_same_delays() -> None:
    """Randomness only comes through the injected Random: a seed reproduces the sequence."""
    a = Backoff(rng=random.Random(42))
    b = Backoff(rng=random.Random(42))
    assert [a.next_delay() for _ in range(20)] == [b.next_delay() for _ in range(20)]


def test_rate_limited_jumps_to_a_floor_and_stays_there() -> None:
    """After HTTP 429 the wait is at least the floor, and later ordinary waits stay near it."""
    config = BackoffConfig()
    backoff = Backoff(config, rng=random.Random(1))
    backoff.next_delay()
    assert backoff.next_delay(kind="rate_limited") >= config.rate_limited_floor
    assert all(backoff.next_delay() >= config.rate_limited_floor for _ in range(10))


def test_rate_limited_honours_retry_after() -> None:
    """A 429 with Retry-After waits at least that long, even above the cap."""
    backoff = Backoff(rng=random.Random(1))
    assert backoff.next_delay(kind="rate_limited", retry_after=45.0) >= 45.0


def test_blocked_waits_out_the_servers_block() -> None:
    """HTTP 418 with Retry-After waits exactly the server's block time."""
    backoff = Backoff(rng=random.Random(1))
    assert backoff.next_delay(kind="blocked", retry_after=300.0) == 300.0


def test_blocked_without_retry_after_grows_a_floor() -> None:
    """Repeated 418s without Retry-After wait a doubling floor, up to the block cap."""
    config = BackoffConfig()
    backoff = Backoff(config, rng=random.Random(3))
    delays = [backoff.next_delay(kind="blocked") for _ in range(10)]
    floors = [min(config.blocked_cap, config.blocked_floor * 2**n) for n in range(10)]
    for delay, floor in zip(delays, floors, strict=True):
        assert floor <= delay <= config.blocked_cap
    assert delays[-1] == pytest.approx(config.blocked_cap)


def test_block_is_followed_by_capped_ordinary_delays() -> None:
    """After a block, ordinary retries resume at the long end, not at 100 ms."""
    config = BackoffConfig()
    backoff = Backoff(config, rng=random.Random(5))
    backoff.next_delay(kind="blocked")
    assert backoff.next_delay() >= config.cap * (1 - config.jitter)


def test_ordinary_failure_ends_the_blocked_streak() -> None:
    """A 418 after an ordinary failure starts the block floor from the bottom again."""
    config = BackoffConfig(jitter=0.0)
    backoff = Backoff(config)
    backoff.next_delay(kind="blocked")
    backoff.next_delay(kind="blocked")
    backoff.next_delay()
    assert backoff.next_delay(kind="blocked") == config.blocked_floor


def test_auth_waits_the_auth_retry() -> None:
    """A refused key is retried after about auth_retry seconds."""
    config = BackoffConfig()
    delay = Backoff(config, rng=random.Random(9)).next_delay(kind="auth")
    assert config.auth_retry * (1 - config.jitter) <= delay <= config.auth_retry


def test_zero_jitter_is_exact_exponential() -> None:
    """Without jitter the delays are first_delay * factor ** n, capped."""
    backoff = Backoff(BackoffConfig(jitter=0.0, cap=1.0, rate_limited_floor=1.0))
    assert [backoff.next_delay() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_repr_shows_progress() -> None:
    """The repr shows the attempt count and cap."""
    backoff = Backoff()
    backoff.next_delay()
    assert repr(backoff) == "Backoff(attempt=1, cap=20)"
