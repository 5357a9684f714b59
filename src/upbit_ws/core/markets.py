"""When a freshly loaded market list may replace the known one: a pure policy.

``GET /v1/market/all`` (section 9.1) is the list codes are checked against and ``KRW-*`` style
wildcards expand against. Upbit never delists half its markets at once, so an empty answer,
or one shorter than :data:`MIN_SHARE` of the known list, is taken for a glitch of the REST
side and not taken, unless the same short list comes back :data:`ACCEPT_AFTER` refreshes in a
row (then it is the truth). No clock, no I/O: the shell feeds it each loaded list.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["ACCEPT_AFTER", "MIN_SHARE", "MarketListPolicy", "Verdict"]

#: A refreshed list shorter than this share of the known one is suspect.
MIN_SHARE: Final = 0.5
#: A suspect (short, non-empty) list is taken once it came back this many refreshes in a row.
ACCEPT_AFTER: Final = 3


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to take a loaded list; ``repeated`` > 0 when a suspect list was taken at last.

    ``reason`` says why a list is not taken (``None`` when it is).
    """

    take: bool
    repeated: int = 0
    reason: str | None = None


class MarketListPolicy:
    """Judge each loaded market list against the known one (see the module docs)."""

    __slots__ = ("_accept_after", "_min_share", "_seen", "_suspect")

    def __init__(self, *, min_share: float = MIN_SHARE, accept_after: int = ACCEPT_AFTER) -> None:
        self._min_share = min_share
        self._accept_after = accept_after
        self._suspect: frozenset[str] | None = None
        self._seen = 0

    def judge(self, known: frozenset[str] | None, codes: frozenset[str]) -> Verdict:
        """Return whether ``codes`` (just loaded) may replace ``known`` (None: no list yet)."""
        if codes and (known is None or len(codes) >= len(known) * self._min_share):
            self._forget()
            return Verdict(take=True)
        if codes:
            if codes == self._suspect:
                self._seen += 1
            else:
                self._suspect, self._seen = codes, 1
            if self._seen >= self._accept_after:
                seen = self._seen
                self._forget()
                return Verdict(take=True, repeated=seen)
        known_text = "no list" if known is None else f"{len(known)} codes"
        return Verdict(
            take=False,
            reason=f"GET /v1/market/all answered {len(codes)} codes against {known_text} known",
        )

    def _forget(self) -> None:
        self._suspect, self._seen = None, 0
