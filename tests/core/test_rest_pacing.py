"""The REST pacing policy: per-group limits and the server's Remaining-Req, over injected time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upbit_ws.core.rest_pacing import (
    GroupLimit,
    RemainingRequests,
    RestPacer,
    group_of,
    parse_remaining_req,
)


def test_groups_follow_upbits_table() -> None:
    """Each path falls in the group Upbit counts it in; unknown exchange calls are default."""
    assert group_of("GET", "/v1/market/all") == "market"
    assert group_of("GET", "/v1/candles/minutes/1") == "candles"
    assert group_of("GET", "/v1/trades/ticks") == "crix-trades"
    assert group_of("GET", "/v1/ticker") == "ticker"
    assert group_of("GET", "/v1/orderbook") == "orderbook"
    assert group_of("POST", "/v1/orders") == "order"
    assert group_of("DELETE", "/v1/orders/open") == "order-cancel-all"
    assert group_of("GET", "/v1/orders/closed") == "default"
    assert group_of("DELETE", "/v1/order") == "default"


def test_remaining_req_parses_generically() -> None:
    """Any group name parses; missing fields or junk give None."""
    assert parse_remaining_req("group=default; min=1800; sec=29") == RemainingRequests(
        "default", 29, 1800
    )
    assert parse_remaining_req("group=origin; sec=0") == RemainingRequests("origin", 0, None)
    assert parse_remaining_req("group=x; sec=many") is None
    assert parse_remaining_req("") is None


def test_server_says_none_left_waits_for_the_window() -> None:
    """sec=0 holds the group until one window after the answer, then lets one go."""
    pacer = RestPacer({"market": GroupLimit(10)})
    pacer.sent("market", 0.0)
    pacer.observed("market", RemainingRequests("market", 0, 600), 0.05)
    assert pacer.delay("market", 0.1) == pytest.approx(0.95)
    assert pacer.delay("market", 1.05) == 0.0


def test_429_blocks_for_retry_after() -> None:
    """A refusal blocks the group for Retry-After (or one window) and is counted."""
    pacer = RestPacer()
    pacer.refused("default", 10.0, 3.0)
    assert pacer.delay("default", 10.0) == 3.0
    assert pacer.delay("default", 13.0) == 0.0
    pacer.refused("ticker", 20.0)
    assert pacer.delay("ticker", 20.5) == 0.5
    assert pacer.statistics().refused == 2


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 12),
    gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=80),
    server=st.lists(st.integers(0, 12), max_size=80),
)
def test_obeying_delay_never_exceeds_the_limit(
    limit: int, gaps: list[float], server: list[int]
) -> None:
    """A caller that waits as told never sends more than the limit in any window."""
    pacer = RestPacer({"g": GroupLimit(limit, 1.0)})
    now = 0.0
    sent: list[float] = []
    for i, gap in enumerate(gaps):
        now += gap
        wait = pacer.delay("g", now)
        assert wait >= 0
        now += wait
        assert pacer.delay("g", now) == 0.0
        pacer.sent("g", now)
        sent.append(now)
        if i < len(server):
            # The answer comes back a little later and says what is left (never above limit).
            pacer.observed("g", RemainingRequests("g", min(server[i], limit), None), now)
    for start in sent:
        inside = [t for t in sent if start <= t < start + 1.0 - 1e-9]
        assert len(inside) <= limit


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 0.3), st.integers(0, 5)), min_size=1, max_size=60))
def test_server_remaining_is_respected(answers: list[tuple[float, int]]) -> None:
    """After the server says k left, at most k more go before its window ends."""
    pacer = RestPacer({"g": GroupLimit(100, 1.0)})
    now = 0.0
    for gap, left in answers:
        now += gap
        now += pacer.delay("g", now)
        pacer.sent("g", now)
        pacer.observed("g", RemainingRequests("g", left, None), now)
        said_at, budget = now, left
        extra = 0
        probe = now
        while probe < said_at + 1.0 - 1e-9 and extra <= budget + 1:
            wait = pacer.delay("g", probe)
            if wait > 0:
                break
            pacer.sent("g", probe)
            extra += 1
            probe += 0.001
        assert extra <= budget
        now = probe
