"""Number spellings Upbit really sends, so that clients are tested against all of them.

Upbit's frames mix several spellings of the same kind of number, even within one frame
(docs/protocol.md sections 4 and 15): ``109847000.0`` (trailing ``.0``), ``91154000.00000000``
(8-decimal fixed), Java ``Double.toString`` exponents such as ``1.16539E8`` and ``9.101E-5``,
``0E-8`` for zero, bare integers such as ``91370000``, and long decimals (``myAsset``).
Each helper returns a value ``orjson`` writes verbatim: a plain ``float``/``int`` when orjson's
own shortest spelling is wanted, an :class:`orjson.Fragment` otherwise.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import orjson

__all__ = ["Number", "as_int", "decimal", "fixed8", "java", "plain", "zero_e8"]

Number = float | int | orjson.Fragment

_ZERO_E8: Final = orjson.Fragment(b"0E-8")
# Java's Double.toString uses plain decimals only within [1e-3, 1e7).
_JAVA_LOW: Final = 1e-3
_JAVA_HIGH: Final = 1e7


def plain(value: float) -> float:
    """Return ``value`` as a float: orjson writes ``109847000.0`` or ``9.101e-5``."""
    return float(value)


def as_int(value: float) -> Number:
    """Return an integral value as a bare integer (``91370000``), others as plain floats."""
    return int(value) if float(value).is_integer() else float(value)


def fixed8(value: float) -> orjson.Fragment:
    """Return ``value`` with exactly 8 decimals (``91154000.00000000``), as candles carry."""
    return orjson.Fragment(f"{value:.8f}".encode())


def zero_e8(value: float) -> Number:
    """Return ``0E-8`` for zero (as Upbit spells a zero ``change_price``), else a plain float."""
    return _ZERO_E8 if value == 0 else float(value)


def java(value: float) -> Number:
    """Return Java's ``Double.toString`` spelling: ``1.16539E8``, ``9.101E-5``, ``3050.0``."""
    x = float(value)
    magnitude = abs(x)
    if x == 0 or _JAVA_LOW <= magnitude < _JAVA_HIGH:
        return x
    sign, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    power = len(text) - 1 + exponent
    mantissa = text[0] + "." + (text[1:] or "0")
    return orjson.Fragment(f"{'-' if sign else ''}{mantissa}E{power}".encode())


def decimal(value: Decimal) -> orjson.Fragment:
    """Return a decimal with all its digits (``1386929.37231066771348207123``), as myAsset."""
    text = format(value, "f")
    if "." not in text:
        text += ".0"
    return orjson.Fragment(text.encode())
