"""Pacing REST calls under Upbit's per-group limits, as a pure policy over an injected ``now``.

Upbit counts REST requests per *group* (docs/rest.md, "Rate limits"): quotation groups
(``market``, ``candles``, ``crix-trades``, ``ticker``, ``orderbook``) allow 10 requests per
second per IP, the exchange ``default`` group 30 per second per account, order creation
(``order``) 8 per second. Every answer carries ``Remaining-Req: group=<name>; min=<n>;
sec=<n>``, where ``sec`` is what is left of the current second (``min`` is deprecated and
fixed). Exceeding a limit answers 429, and going on after that answers 418 with a block.

:class:`RestPacer` combines two views, and a request may go only when both allow it:

* its own sliding window of what this process sent per group (never more than the group's
  limit within one window);
* the server's last ``sec`` count, which also covers requests of other processes on the same
  IP or account: when it says ``sec=k`` at time ``t``, at most ``k`` more requests go before
  ``t + window``.

A 429 blocks the group until ``Retry-After`` (or one window) has passed. The shell asks
:meth:`RestPacer.delay` before each request, sleeps that long, asks again, then calls
:meth:`RestPacer.sent`; it reports each answer with :meth:`RestPacer.observed` or
:meth:`RestPacer.refused`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = [
    "DEFAULT_GROUP_LIMITS",
    "GroupLimit",
    "PacerStatistics",
    "RemainingRequests",
    "RestPacer",
    "group_of",
    "parse_remaining_req",
]


@dataclass(frozen=True, slots=True)
class GroupLimit:
    """At most ``count`` requests per ``window`` seconds."""

    count: int
    window: float = 1.0


#: Upbit's published limits per group (docs/rest.md, "Rate limits").
DEFAULT_GROUP_LIMITS: Final[Mapping[str, GroupLimit]] = MappingProxyType(
    {
        "market": GroupLimit(10),
        "candles": GroupLimit(10),
        "crix-trades": GroupLimit(10),
        "ticker": GroupLimit(10),
        "orderbook": GroupLimit(10),
        "default": GroupLimit(30),
        "order": GroupLimit(8),
        "order-cancel-all": GroupLimit(1, 2.0),
    }
)
_UNKNOWN_GROUP: Final = GroupLimit(10)


@dataclass(frozen=True, slots=True)
class RemainingRequests:
    """One ``Remaining-Req: group=...; min=...; sec=...`` header."""

    group: str
    per_second: int
    per_minute: int | None


def parse_remaining_req(value: str) -> RemainingRequests | None:
    """Parse a ``Remaining-Req`` header generically (group names vary), or return None."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key.strip().lower()] = val.strip()
    if "group" not in fields or "sec" not in fields:
        return None
    try:
        per_minute = int(fields["min"]) if "min" in fields else None
        return RemainingRequests(fields["group"], int(fields["sec"]), per_minute)
    except ValueError:
        return None


def group_of(method: str, path: str) -> str:
    """Return the rate-limit group a request falls in, before any answer names it.

    Quotation paths have their own groups; ``POST /v1/orders`` is ``order``, ``DELETE
    /v1/orders/open`` is ``order-cancel-all``; every other exchange call is ``default``.
    """
    if path == "/v1/market/all":
        return "market"
    if path.startswith("/v1/candles/"):
        return "candles"
    if path == "/v1/trades/ticks":
        return "crix-trades"
    if path.startswith("/v1/ticker"):
        return "ticker"
    if path.startswith("/v1/orderbook"):
        return "orderbook"
    method = method.upper()
    if path == "/v1/orders" and method == "POST":
        return "order"
    if path == "/v1/orders/open" and method == "DELETE":
        return "order-cancel-all"
    return "default"


@dataclass(frozen=True, slots=True)
class PacerStatistics:
    """What the pacer did: requests sent, times it made one wait, 429s, last header per group."""

    sent: int
    waits: int
    wait_seconds: float
    refused: int
    remaining: Mapping[str, RemainingRequests]


@dataclass(slots=True)
class _Group:
    limit: GroupLimit
    sends: deque[float] = field(default_factory=deque)
    server_left: int | None = None
    server_at: float = float("-inf")
    blocked_until: float = float("-inf")


class RestPacer:
    """Decide when the next REST request of a group may go (pure; ``now`` in seconds)."""

    def __init__(self, limits: Mapping[str, GroupLimit] = DEFAULT_GROUP_LIMITS) -> None:
        self._limits = dict(limits)
        self._groups: dict[str, _Group] = {}
        self._remaining: dict[str, RemainingRequests] = {}
        self._sent = 0
        self._waits = 0
        self._wait_seconds = 0.0
        self._refused = 0

    def __repr__(self) -> str:
        return f"<RestPacer groups={sorted(self._groups)} sent={self._sent}>"

    def _group(self, name: str) -> _Group:
        group = self._groups.get(name)
        if group is None:
            group = _Group(self._limits.get(name, _UNKNOWN_GROUP))
            self._groups[name] = group
        return group

    def delay(self, group: str, now: float) -> float:
        """Return how many seconds a request of ``group`` must wait at ``now`` (0: go now)."""
        state = self._group(group)
        window = state.limit.window
        sends = state.sends
        # A send at t counts while now < t + window (the same sum both here and below, so a
        # caller that sleeps exactly the answer finds the send expired).
        while sends and sends[0] + window <= now:
            sends.popleft()
        wait = max(0.0, state.blocked_until - now)
        if len(sends) >= state.limit.count:
            wait = max(wait, sends[len(sends) - state.limit.count] + window - now)
        if state.server_left is not None and now < state.server_at + window:
            since = sum(1 for t in sends if t >= state.server_at)
            if since >= state.server_left:
                wait = max(wait, state.server_at + window - now)
        return wait

    def waited(self, seconds: float) -> None:
        """Count one wait of ``seconds`` the shell slept because of :meth:`delay`."""
        if seconds > 0:
            self._waits += 1
            self._wait_seconds += seconds

    def sent(self, group: str, now: float) -> None:
        """Record that a request of ``group`` went out at ``now``."""
        self._group(group).sends.append(now)
        self._sent += 1

    def observed(self, group: str, remaining: RemainingRequests | None, now: float) -> None:
        """Record an answer's ``Remaining-Req`` for a request paced as ``group``."""
        if remaining is None:
            return
        state = self._group(group)
        self._remaining[remaining.group] = remaining
        # Answers can arrive out of order; a later answer in the same window knows more.
        if now >= state.server_at + state.limit.window or state.server_left is None:
            state.server_left = remaining.per_second
        else:
            state.server_left = min(state.server_left, remaining.per_second)
        state.server_at = now

    def refused(self, group: str, now: float, retry_after: float | None = None) -> None:
        """Record a 429/418 for ``group``: block it for ``retry_after`` or one window."""
        state = self._group(group)
        pause = retry_after if retry_after is not None else state.limit.window
        state.blocked_until = max(state.blocked_until, now + pause)
        state.server_left, state.server_at = 0, now
        self._refused += 1

    @property
    def remaining(self) -> Mapping[str, RemainingRequests]:
        """Return the latest ``Remaining-Req`` seen per group name (as the server names it)."""
        return MappingProxyType(self._remaining)

    def statistics(self) -> PacerStatistics:
        """Return a snapshot of what the pacer did."""
        return PacerStatistics(
            sent=self._sent,
            waits=self._waits,
            wait_seconds=self._wait_seconds,
            refused=self._refused,
            remaining=dict(self._remaining),
        )
