"""GCRA rate limiting over an injected clock: window bounds, minimal waits, shared connects."""

from __future__ import annotations

import bisect

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from upbit_ws import ConfigError
from upbit_ws.core.config import RateLimits
from upbit_ws.core.ratelimit import (
    Gcra,
    LimiterChain,
    LimiterStatistics,
    connect_limiter,
    message_limiter,
)

# Gaps between arrivals: many zero gaps (bursts), some small, some long idle stretches.
gaps = st.lists(
    st.one_of(
        st.just(0.0),
        st.floats(min_value=0.0, max_value=0.5),
        st.floats(min_value=0.0, max_value=90.0),
    ),
    min_size=1,
    max_size=250,
)


def _admit_all(limiter: Gcra | LimiterChain, arrivals: list[float]) -> list[float]:
    now = 0.0
    admitted = []
    for gap in arrivals:
        now += gap
        admitted.append(now + limiter.acquire(now))
    return admitted


def _max_in_window(times: list[float], length: float) -> int:
    """Return the most events in any half-open window [t, t + length) starting at an event."""
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, t + length) - i for i, t in enumerate(ordered))


def _reference_earliest(part: Gcra, admitted: list[float], now: float) -> float:
    """Brute-force GCRA: event k may go at max_j(t_j + (k - j) * T) - tau, and not before now."""
    k = len(admitted)
    bound = max((t_j + (k - j) * part.interval for j, t_j in enumerate(admitted)), default=-1e18)
    return max(now, bound - part.tolerance)


@settings(max_examples=200, deadline=None)
@given(gaps)
@example([0.0] * 200)
@example([0.0] * 2 + [0.2625] * 150)
def test_message_limiter_never_exceeds_upbit_windows(arrivals: list[float]) -> None:
    """No 1 s window holds more than 5 admitted messages and no 60 s window more than 100."""
    admitted = _admit_all(message_limiter(), arrivals)
    assert _max_in_window(admitted, 1.0) <= 5
    assert _max_in_window(admitted, 60.0) <= 100


@settings(max_examples=200, deadline=None)
@given(gaps, st.data())
def test_message_limiter_waits_no_longer_than_gcra_requires(
    arrivals: list[float], data: st.DataObject
) -> None:
    """Each admission is at the earliest instant every part's GCRA bound allows, no later."""
    chain = message_limiter(
        RateLimits(
            message_burst=data.draw(st.integers(1, 5)),
            minute_burst=data.draw(st.integers(1, 100)),
        )
    )
    now = 0.0
    admitted: list[float] = []
    previous = -1.0
    for gap in arrivals:
        now += gap
        expected = max(_reference_earliest(part, admitted, now) for part in chain.parts)
        predicted = chain.delay(now)
        wait = chain.acquire(now)
        assert wait >= 0.0
        assert wait == pytest.approx(predicted, abs=1e-9)
        assert now + wait == pytest.approx(expected, rel=1e-12, abs=1e-9)
        assert now + wait >= previous  # admissions keep their order
        previous = now + wait
        admitted.append(now + wait)


@settings(max_examples=200, deadline=None)
@given(
    gaps,
    st.integers(1, 20),
    st.floats(min_value=0.01, max_value=100.0),
    st.data(),
)
def test_window_bound_holds_for_any_limit_and_burst(
    arrivals: list[float], limit: int, period: float, data: st.DataObject
) -> None:
    """Gcra.window(limit, period, burst) never admits more than limit in any period window."""
    burst = data.draw(st.integers(1, limit))
    gcra = Gcra.window(limit=limit, period=period, burst=burst)
    scaled = [gap * period for gap in arrivals]
    admitted = _admit_all(gcra, scaled)
    # A hair under the period absorbs float rounding of sums like 0.2 + 0.2 + ...
    assert _max_in_window(admitted, period * (1 - 1e-9)) <= limit


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["public", "private"]), gaps.map(sum)), max_size=60))
def test_shared_connect_limiter_bounds_all_connections_together(
    attempts: list[tuple[str, float]],
) -> None:
    """Connects from every connection together stay within 5 per second."""
    shared = connect_limiter()
    now = 0.0
    admitted = []
    for _connection, gap in attempts:
        now += gap % 3.0
        admitted.append(now + shared.acquire(now))
    if admitted:
        assert _max_in_window(admitted, 1.0) <= 5


def test_burst_goes_at_once_then_the_pace_applies() -> None:
    """Two messages go at once, the third waits for the sustained 4-per-1.05 s pace."""
    chain = message_limiter()
    assert chain.acquire(0.0) == 0.0
    assert chain.acquire(0.0) == 0.0
    assert chain.acquire(0.0) == pytest.approx(1.05 / 4)


def test_waiting_callers_queue_in_order() -> None:
    """Reserved slots stack up: later callers at the same instant wait longer, never drop."""
    gcra = Gcra(rate=5, period=1.0)
    waits = [gcra.acquire(10.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.2, 0.4, 0.6])


def test_idle_limiter_admits_at_once() -> None:
    """After a quiet spell longer than the window the full burst is available again."""
    gcra = Gcra.window(limit=5, period=1.0, burst=3)
    for _ in range(10):
        gcra.acquire(0.0)
    assert gcra.delay(100.0) == 0.0
    assert [gcra.acquire(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert gcra.acquire(100.0) > 0.0


def test_delay_does_not_reserve() -> None:
    """Asking for the delay leaves the limiter unchanged."""
    gcra = Gcra(rate=1, period=1.0)
    gcra.acquire(0.0)
    assert gcra.delay(0.0) == gcra.delay(0.0) == pytest.approx(1.0)
    assert gcra.statistics().acquired == 1


def test_now_going_backwards_never_admits_into_the_past() -> None:
    """A smaller now than seen before is treated as the latest time seen."""
    gcra = Gcra(rate=1, period=1.0)
    assert gcra.acquire(5.0) == 0.0
    assert gcra.acquire(1.0) == pytest.approx(1.0)


def test_statistics_count_waits() -> None:
    """Statistics report admissions, how many waited, and the total and longest wait."""
    gcra = Gcra(rate=2, period=1.0)
    for _ in range(3):
        gcra.acquire(0.0)
    assert gcra.statistics() == LimiterStatistics(
        acquired=3, delayed=2, total_delay=pytest.approx(1.5), max_delay=pytest.approx(1.0)
    )
    chain = message_limiter()
    chain.acquire(0.0)
    assert chain.statistics().acquired == 1


@pytest.mark.parametrize(
    ("kwargs", "count"),
    [
        ({"rate": 0, "period": 1.0}, 1),
        ({"rate": 1, "period": -1.0, "burst": 0}, 2),
        ({"rate": float("inf"), "period": float("nan"), "burst": True}, 3),
    ],
)
def test_bad_limiter_settings_are_config_errors(kwargs: dict[str, object], count: int) -> None:
    """Impossible rates, periods and bursts are all reported at once."""
    with pytest.raises(ConfigError) as info:
        Gcra(**kwargs)  # type: ignore[arg-type]
    assert len(info.value.problems) == count


def test_window_rejects_burst_above_limit() -> None:
    """A window limiter cannot burst past its own limit."""
    with pytest.raises(ConfigError, match="burst must be between 1 and limit"):
        Gcra.window(limit=5, period=1.0, burst=6)


def test_empty_chain_is_refused() -> None:
    """A chain with no limiter would admit anything; it is a config error."""
    with pytest.raises(ConfigError):
        LimiterChain(())


def test_reprs_name_the_pace() -> None:
    """Reprs show rate, period and burst for logs."""
    assert repr(Gcra(rate=5, period=1.0, burst=2)) == "Gcra(rate=5, period=1, burst=2)"
    assert repr(message_limiter()).startswith("LimiterChain(Gcra(rate=4, period=1.05")
