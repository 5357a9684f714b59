"""Market codes: normalisation, depth suffixes, close matches, checks and wildcards."""

from __future__ import annotations

from typing import Any

import pytest

from upbit_ws import InvalidInputError, UnknownCodeError
from upbit_ws.core.codes import (
    check_codes,
    close_matches,
    expand_wildcard,
    is_wildcard,
    normalize_code,
    split_depth,
)

KNOWN = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-1INCH", "BTC-XRP", "USDT-ETH", "BTC-ETH")


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("KRW-BTC", "KRW-BTC"),
        (" krw-btc\n", "KRW-BTC"),
        ("usdt-eth", "USDT-ETH"),
        ("BTC-XRP", "BTC-XRP"),
        ("krw-1inch", "KRW-1INCH"),
        ("SGD-XRP", "SGD-XRP"),
    ],
)
def test_normalize_upper_cases_and_strips(raw: str, want: str) -> None:
    """Codes are stripped and upper-cased, since Upbit ignores lowercase codes silently."""
    assert normalize_code(raw) == want


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("BTC", "QUOTE-BASE"),
        ("KRW-", "QUOTE-BASE"),
        ("-BTC", "QUOTE-BASE"),
        ("KRW/BTC", "QUOTE-BASE"),
        ("KRW-BTC-X", "QUOTE-BASE"),
        ("1KRW-BTC", "QUOTE-BASE"),
        ("", "QUOTE-BASE"),
        ("KRW-BTC.15", "depth suffix"),
        ("KRW-*", "wildcard"),
    ],
)
def test_normalize_rejects_bad_shapes_with_advice(raw: str, needle: str) -> None:
    """A malformed code raises InvalidInputError saying what shape is expected."""
    with pytest.raises(InvalidInputError, match=needle):
        normalize_code(raw)


def test_normalize_rejects_non_strings() -> None:
    """A non-string code is an input error, not a TypeError."""
    with pytest.raises(InvalidInputError):
        normalize_code(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("KRW-BTC", ("KRW-BTC", None)),
        ("krw-btc.15", ("KRW-BTC", 15)),
        ("KRW-BTC.1", ("KRW-BTC", 1)),
        ("KRW-BTC.20", ("KRW-BTC", 20)),
    ],
)
def test_split_depth(raw: str, want: tuple[str, int | None]) -> None:
    """split_depth separates and normalises the market code and its .N suffix."""
    assert split_depth(raw) == want


@pytest.mark.parametrize("raw", ["KRW-BTC.", "KRW-BTC.x", "KRW-BTC.0", "KRW-BTC.-1", ".15"])
def test_split_depth_rejects_bad_suffix(raw: str) -> None:
    """A suffix that is not a positive integer is an input error."""
    with pytest.raises(InvalidInputError):
        split_depth(raw)


def test_close_matches_puts_reversed_code_first() -> None:
    """A code written coin-first (BTC-KRW) suggests the listed KRW-BTC first."""
    assert close_matches("BTC-KRW", ["KRW-BTC", "KRW-ETH"])[0] == "KRW-BTC"


def test_close_matches_finds_typos() -> None:
    """A typo suggests the nearest listed codes, at most n of them."""
    got = close_matches("KRW-BTCC", KNOWN, n=2)
    assert got[0] == "KRW-BTC"
    assert len(got) <= 2
    assert close_matches("KRW-BTC", KNOWN, n=0) == ()
    assert close_matches("ZZZ-QQQQQQ", KNOWN) == ()


def test_check_codes_normalises_and_dedupes() -> None:
    """Listed codes come back normalised, in order, without duplicates."""
    assert check_codes(["krw-eth", "KRW-BTC", "KRW-ETH"], KNOWN) == ("KRW-ETH", "KRW-BTC")


def test_check_codes_raises_unknown_with_suggestions() -> None:
    """An unlisted code raises UnknownCodeError with close matches."""
    with pytest.raises(UnknownCodeError) as info:
        check_codes(["KRW-BTC", "krw-etj"], KNOWN)
    assert info.value.code == "KRW-ETJ"
    assert "KRW-ETH" in info.value.suggestions


def test_check_codes_refuses_a_bare_string() -> None:
    """A single string (which would iterate as characters) is refused clearly."""
    with pytest.raises(InvalidInputError, match="list"):
        check_codes("KRW-BTC", KNOWN)


@pytest.mark.parametrize(
    ("code", "want"), [("KRW-*", True), ("*-BTC", True), ("KRW-BTC", False), (None, False)]
)
def test_is_wildcard(code: Any, want: bool) -> None:
    """is_wildcard recognises patterns containing '*'."""
    assert is_wildcard(code) is want


def test_expand_wildcard_is_sorted_and_case_insensitive() -> None:
    """A quote wildcard expands to every listed code of that quote, sorted."""
    assert expand_wildcard("krw-*", KNOWN) == ("KRW-1INCH", "KRW-BTC", "KRW-ETH", "KRW-XRP")
    assert expand_wildcard("*-ETH", KNOWN) == ("BTC-ETH", "KRW-ETH", "USDT-ETH")
    assert expand_wildcard("IDR-*", KNOWN) == ()


@pytest.mark.parametrize("pattern", ["*", "KRW*", "KRW-[AB]*", "KRW-?TC"])
def test_expand_wildcard_rejects_bad_patterns(pattern: str) -> None:
    """Only QUOTE-BASE shaped patterns with '*' are accepted."""
    with pytest.raises(InvalidInputError):
        expand_wildcard(pattern, KNOWN)
