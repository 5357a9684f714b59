"""The market-list plausibility policy: which loaded lists replace the known one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from upbit_ws.core.markets import ACCEPT_AFTER, MarketListPolicy

KNOWN = frozenset(f"KRW-C{i}" for i in range(20))


def test_a_first_list_or_an_ordinary_change_is_taken() -> None:
    """Any non-empty first list is taken; so is a list at least half as long as the known."""
    policy = MarketListPolicy()
    assert policy.judge(None, frozenset({"KRW-BTC"})).take
    assert policy.judge(KNOWN, frozenset(list(KNOWN)[:10])).take


def test_an_empty_or_short_list_is_kept_out_until_it_repeats() -> None:
    """A list under half the known is refused, then taken when it comes back 3 times in a row."""
    policy = MarketListPolicy()
    short = frozenset(list(KNOWN)[:3])
    first = policy.judge(KNOWN, short)
    assert not first.take and first.reason is not None and "3 codes against 20" in first.reason
    assert not policy.judge(KNOWN, short).take
    third = policy.judge(KNOWN, short)
    assert third.take and third.repeated == ACCEPT_AFTER


def test_an_empty_list_is_never_taken() -> None:
    """An empty answer is a glitch however often it comes back."""
    policy = MarketListPolicy()
    assert not any(policy.judge(KNOWN, frozenset()).take for _ in range(10))


def test_a_different_short_list_starts_the_count_over() -> None:
    """Only the same short list, refresh after refresh, counts toward taking it."""
    policy = MarketListPolicy()
    a, b = frozenset(list(KNOWN)[:3]), frozenset(list(KNOWN)[3:6])
    assert not policy.judge(KNOWN, a).take
    assert not policy.judge(KNOWN, a).take
    assert not policy.judge(KNOWN, b).take
    assert not policy.judge(KNOWN, b).take
    assert policy.judge(KNOWN, b).take


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=12))
def test_a_list_taken_is_never_empty(sizes: list[int]) -> None:
    """Whatever the sequence of answers, an empty list is never taken."""
    policy = MarketListPolicy()
    known: frozenset[str] | None = None
    for size in sizes:
        codes = frozenset(f"KRW-C{i}" for i in range(size))
        if policy.judge(known, codes).take:
            assert codes
            known = codes
