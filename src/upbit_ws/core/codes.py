"""Market codes: normalisation, shape checks, depth suffixes, wildcards and close matches.

Upbit silently ignores lowercase and unknown codes (docs/protocol.md section 2.4: no error, no
data), so every code the library sends goes through :func:`normalize_code` first, and codes are
checked against the market list (``GET /v1/market/all``, section 9.1) with :func:`check_codes`
so a typo becomes a clear :class:`~upbit_ws.UnknownCodeError` instead of Upbit's silence.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Collection, Iterable
from typing import Final

from upbit_ws.core.errors import InvalidInputError, UnknownCodeError

__all__ = [
    "check_codes",
    "close_matches",
    "expand_wildcard",
    "is_wildcard",
    "normalize_code",
    "split_depth",
]

# QUOTE-BASE: the quote is letters (KRW, BTC, USDT, SGD, IDR, THB), the base letters and digits
# (KRW-1INCH exists). Section 2.4; regional quotes from section 1.2.
_CODE_RE: Final = re.compile(r"[A-Z][A-Z0-9]*-[A-Z0-9]+")
# A wildcard keeps the QUOTE-BASE shape with ``*`` allowed on either side, e.g. ``KRW-*``.
_WILDCARD_RE: Final = re.compile(r"[A-Z0-9*]+-[A-Z0-9*]+")
_DEPTH_RE: Final = re.compile(r"[0-9]+")


def normalize_code(code: str) -> str:
    """Return ``code`` stripped and upper-cased, after checking it has the ``QUOTE-BASE`` shape.

    Raises :class:`~upbit_ws.InvalidInputError` naming the problem and the fix. An orderbook
    depth suffix (``KRW-BTC.15``) is not a code: use :func:`split_depth` for those.
    """
    if not isinstance(code, str):
        raise InvalidInputError(f"a market code must be a string like 'KRW-BTC', not {code!r}")
    text = code.strip().upper()
    if _CODE_RE.fullmatch(text):
        return text
    if "." in text:
        raise InvalidInputError(
            f"market code {code!r} carries a depth suffix; only orderbook codes may, "
            "pass the depth separately (e.g. depth=15) or use split_depth()"
        )
    if "*" in text:
        raise InvalidInputError(
            f"market code {code!r} is a wildcard; expand it against the market list first "
            "(expand_wildcard)"
        )
    raise InvalidInputError(
        f"market code {code!r} is not of the form QUOTE-BASE, e.g. 'KRW-BTC' or 'USDT-ETH' "
        "(quote currency first, then the coin, letters and digits only)"
    )


def split_depth(code: str) -> tuple[str, int | None]:
    """Split an orderbook code into its normalised market code and its ``.N`` depth, if any.

    ``"krw-btc.15"`` gives ``("KRW-BTC", 15)`` and ``"KRW-BTC"`` gives ``("KRW-BTC", None)``.
    The depth is not checked against Upbit's allowed values here (see
    :data:`~upbit_ws.core.constants.ORDERBOOK_DEPTHS`); a suffix that is not a positive integer
    raises :class:`~upbit_ws.InvalidInputError`.
    """
    if not isinstance(code, str):
        raise InvalidInputError(f"a market code must be a string like 'KRW-BTC', not {code!r}")
    base, dot, suffix = code.strip().rpartition(".")
    if not dot:
        return normalize_code(code), None
    if not _DEPTH_RE.fullmatch(suffix) or int(suffix) == 0:
        raise InvalidInputError(
            f"orderbook code {code!r} has a bad depth suffix {suffix!r}; "
            "write it as e.g. 'KRW-BTC.15' (1, 5, 15 or 30 units)"
        )
    return normalize_code(base), int(suffix)


def close_matches(code: str, known: Iterable[str], n: int = 3) -> tuple[str, ...]:
    """Return up to ``n`` listed codes that look like ``code``, closest first.

    A reversed code (``BTC-KRW`` for ``KRW-BTC``, a common slip since other exchanges write the
    coin first) comes first when listed; then :func:`difflib.get_close_matches` on the
    upper-cased text.
    """
    if n <= 0:
        return ()
    listed = [k for k in known if isinstance(k, str)]
    text = code.strip().upper() if isinstance(code, str) else ""
    found: list[str] = []
    quote, dash, base = text.partition("-")
    if dash:
        flipped = f"{base}-{quote}"
        if flipped in listed:
            found.append(flipped)
    for match in difflib.get_close_matches(text, listed, n=n, cutoff=0.6):
        if match not in found and match != text:
            found.append(match)
    return tuple(found[:n])


def check_codes(codes: Iterable[str], known: Collection[str]) -> tuple[str, ...]:
    """Normalise ``codes`` and check each against the listed markets ``known``.

    Returns the normalised codes in order, without duplicates. The first code not listed
    raises :class:`~upbit_ws.UnknownCodeError` carrying close matches, because Upbit would
    otherwise send nothing for it and say nothing (section 2.4).
    """
    if isinstance(codes, str):
        raise InvalidInputError(f"codes must be a list of market codes, not the string {codes!r}")
    out: dict[str, None] = {}
    for code in codes:
        norm = normalize_code(code)
        if norm not in known:
            raise UnknownCodeError(norm, close_matches(norm, known))
        out[norm] = None
    return tuple(out)


def is_wildcard(code: str) -> bool:
    """Tell whether ``code`` is a wildcard pattern such as ``KRW-*`` (it contains ``*``)."""
    return isinstance(code, str) and "*" in code


def expand_wildcard(pattern: str, known: Iterable[str]) -> tuple[str, ...]:
    """Return the listed codes matching ``pattern`` (``KRW-*``, ``*-BTC``), sorted.

    Matching is case-insensitive on the pattern; listed codes are compared as given (Upbit
    lists them upper case). A pattern without the ``QUOTE-BASE`` shape raises
    :class:`~upbit_ws.InvalidInputError`. No match gives an empty tuple: a quote currency can
    be empty for a while, and new listings are followed by re-expanding.
    """
    if not isinstance(pattern, str):
        raise InvalidInputError(f"a wildcard must be a string like 'KRW-*', not {pattern!r}")
    text = pattern.strip().upper()
    if not _WILDCARD_RE.fullmatch(text):
        raise InvalidInputError(
            f"wildcard {pattern!r} is not of the form QUOTE-BASE with '*', e.g. 'KRW-*'"
        )
    return tuple(sorted(k for k in set(known) if fnmatch.fnmatchcase(k, text)))
