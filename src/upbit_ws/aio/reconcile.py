"""The async driver of private reconciliation: read REST after a gap, rebuild missed events.

:func:`reconcile_private` is what the private subscription path calls after any private gap
(a reconnect, a blackhole, a ``never_drop`` overflow) that began at ``since`` (the time of the
last frame received before it, wall clock). It reads, paced by the client's REST pacer:

1. every open order (``GET /v1/orders/open``, all pages);
2. every order created since ``since`` (minus ``margin``, for clock skew) that is closed
   (``GET /v1/orders/closed``, 7-day windows, paged by creation time);
3. each order seen live in an open state that is in neither list (``GET /v1/order``: an
   order created before the gap and finished during it), and each listed order with fills the
   subscriber has not seen (``GET /v1/order`` carries the fills);
4. balances (``GET /v1/accounts``);

then hands them to the pure :class:`~upbit_ws.core.reconcile.Reconciler` and returns the
missed ``MyOrder``/``MyAsset`` messages, marked ``reconciled=True``, in time order. A failed
read retries the whole pass with the reconnect backoff (429/418 keep their floors) until it
succeeds or the caller cancels; bad input (our bug) is raised at once.

Wiring, in the private subscription path (docs/rest.md, "Reconciliation")::

    reconciler = Reconciler()                 # one per private connection's account
    # on every live myOrder/myAsset message, before delivering it:
    if reconciler.live(message): deliver(message)
    # on a private gap that began at `since`, once the socket is subscribed again:
    for message in await reconcile_private(rest, reconciler, since=since, settle=0.5):
        deliver(message)
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from upbit_ws.aio.clock import utc_now
from upbit_ws.aio.logcontext import install_log_fields
from upbit_ws.aio.rest import RestClient, TimeArg
from upbit_ws.core.backoff import Backoff, BackoffClass
from upbit_ws.core.config import BackoffConfig
from upbit_ws.core.errors import (
    AuthError,
    InvalidInputError,
    RateLimitedError,
    ServerRejectedError,
    UpbitWsError,
)
from upbit_ws.core.messages import MyAsset, MyOrder
from upbit_ws.core.reconcile import ReconcileInput, Reconciler
from upbit_ws.core.rest_types import RestOrder

__all__ = [
    "DEFAULT_AUDIT_GRACE",
    "DEFAULT_SKEW_MARGIN",
    "RECONCILE_BACKOFF",
    "audit_private",
    "reconcile_private",
    "settle_balances",
]

_log = logging.getLogger("upbit_ws.reconcile")
install_log_fields()  # a logger made after the package's call needs its own
T = TypeVar("T")

#: How far before the gap the closed-order search starts: REST times have whole seconds and
#: the local clock may run ahead of Upbit's.
DEFAULT_SKEW_MARGIN: Final = timedelta(seconds=5)
#: How long an audit that found something waits for live frames in flight before it rebuilds.
DEFAULT_AUDIT_GRACE: Final = 1.0
#: Retry schedule of a failed pass: fast at first, capped at 10 s; a refused key every 5 s.
RECONCILE_BACKOFF: Final = BackoffConfig(cap=10.0, auth_retry=5.0)


def _classify(exc: UpbitWsError) -> tuple[BackoffClass, float | None]:
    if isinstance(exc, RateLimitedError):
        return ("blocked" if exc.status == 418 else "rate_limited"), exc.retry_after
    if isinstance(exc, AuthError):
        return "auth", None
    return "normal", None


async def reconcile_private(
    rest: RestClient,
    reconciler: Reconciler,
    *,
    since: TimeArg,
    margin: timedelta = DEFAULT_SKEW_MARGIN,
    backoff: Backoff | None = None,
    wall_clock: Callable[[], datetime] = utc_now,
    on_retry: Callable[[UpbitWsError, float], None] | None = None,
    settle: float = 0.0,
    settle_if: Callable[[], bool] | None = None,
    deliver: Callable[[list[MyOrder | MyAsset]], None] | None = None,
    on_read: Callable[[ReconcileInput], None] | None = None,
) -> list[MyOrder | MyAsset]:
    """Read what a private gap that began at ``since`` hid, and return the missed messages.

    Retries until a whole pass succeeds (cancel the task to stop it); ``on_retry(error,
    delay)`` is told about each failed pass. With ``settle`` > 0 the balances are read once
    more that many seconds after the pass, so that a live balance frame older than the first
    read (in flight during the pass) is corrected too. ``settle_if``, when given, is asked
    once the main read is delivered whether that re-read is needed (the manager's answer: only
    if live private messages came around the read); ``None`` always re-reads. Raises
    :class:`InvalidInputError` at once for bad input (a naive ``since``, no credentials).
    ``deliver(batch)``, when given, gets each batch as soon as it is rebuilt (the orders, then
    the settled balances: a subscriber need not wait out ``settle`` for its fills);
    ``on_read(data)`` sees the pass's REST input.
    """
    start = _as_utc(since) - margin
    retry = backoff if backoff is not None else Backoff(RECONCILE_BACKOFF, rng=random.Random())
    reconciler.begin()
    while True:
        try:
            data = await _read(rest, reconciler, start, wall_clock)
        except InvalidInputError:
            raise
        except UpbitWsError as exc:
            kind, retry_after = _classify(exc)
            delay = retry.next_delay(kind=kind, retry_after=retry_after)
            _log.warning(
                "private reconciliation failed, retrying",
                extra={"error": type(exc).__name__, "detail": str(exc), "delay": delay},
            )
            if on_retry is not None:
                on_retry(exc, delay)
            await asyncio.sleep(delay)
            continue
        messages = reconciler.reconcile(data)
        break
    if on_read is not None:
        on_read(data)
    if deliver is not None:
        deliver(list(messages))
    if settle > 0 and (settle_if is None or settle_if()):
        await asyncio.sleep(settle)
        settled = await settle_balances(rest, reconciler, retry, wall_clock, on_retry)
        messages += settled
        if deliver is not None and settled:
            deliver(settled)
    _log.info(
        "private reconciliation done",
        extra={"orders_read": len(data.orders), "messages": len(messages)},
    )
    return messages


async def settle_balances(
    rest: RestClient,
    reconciler: Reconciler,
    retry: Backoff,
    wall_clock: Callable[[], datetime] = utc_now,
    on_retry: Callable[[UpbitWsError, float], None] | None = None,
) -> list[MyOrder | MyAsset]:
    """Read the balances once more and return the correction, retrying until it succeeds.

    Only a change that arrives live while this read is in flight may be newer than it; frames
    that arrived before it (in flight during an earlier read, older than that read) are
    corrected.
    """
    while True:
        reconciler.begin()
        try:
            accounts = await rest.accounts()
        except InvalidInputError:
            raise
        except UpbitWsError as exc:
            kind, retry_after = _classify(exc)
            delay = retry.next_delay(kind=kind, retry_after=retry_after)
            if on_retry is not None:
                on_retry(exc, delay)
            await asyncio.sleep(delay)
            continue
        taken_at = int(wall_clock().timestamp() * 1000)
        return reconciler.reconcile(ReconcileInput(orders=(), accounts=accounts, taken_at=taken_at))


async def audit_private(
    rest: RestClient,
    reconciler: Reconciler,
    *,
    since: TimeArg,
    margin: timedelta = DEFAULT_SKEW_MARGIN,
    grace: float = DEFAULT_AUDIT_GRACE,
    wall_clock: Callable[[], datetime] = utc_now,
) -> tuple[ReconcileInput, list[MyOrder | MyAsset]]:
    """Read REST once from ``since`` and return what the subscriber missed (usually nothing).

    The quiet periodic check of the private path: one attempt (a failure raises; the next
    audit tries again), no settle. When the read shows something not delivered, it waits
    ``grace`` seconds first, so that live frames still in flight (the socket may trail REST)
    are recorded and not rebuilt; what is still missing then was lost.
    """
    start = _as_utc(since) - margin
    reconciler.begin()
    data = await _read(rest, reconciler, start, wall_clock)
    if not reconciler.pending(data):
        reconciler.end()
        return data, []
    await asyncio.sleep(grace)
    return data, reconciler.reconcile(data)


async def _read(
    rest: RestClient,
    reconciler: Reconciler,
    start: datetime,
    wall_clock: Callable[[], datetime],
) -> ReconcileInput:
    """Make one full pass of reads; any failure aborts the pass.

    One request at a time, the open orders before the closed ones: an order that closes
    between the two reads is then in one list or both, never in neither.
    """
    started_at = int(wall_clock().timestamp() * 1000)
    open_orders = await rest.all_open_orders()
    closed = await rest.closed_orders_since(start)
    orders: dict[str, RestOrder] = {o.uuid: o for o in open_orders}
    for order in closed:
        orders[order.uuid] = order
    wanted = [u for u, o in orders.items() if reconciler.needs_detail(o)]
    wanted += sorted(reconciler.unfinished() - orders.keys())
    for uuid in wanted:
        detail = await _maybe(rest.order(uuid=uuid))
        if detail is not None:
            orders[uuid] = detail
    accounts = await rest.accounts()
    taken_at = int(wall_clock().timestamp() * 1000)
    return ReconcileInput(
        orders=list(orders.values()), accounts=accounts, taken_at=taken_at, started_at=started_at
    )


async def _maybe(call: Awaitable[T]) -> T | None:
    """Return the result, or None when Upbit does not know the order (404)."""
    try:
        return await call
    except ServerRejectedError as exc:
        if exc.status == 404:
            return None
        raise


def _as_utc(value: TimeArg) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInputError("since is a naive datetime; pass an aware one (UTC)")
        return value.astimezone(UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        from upbit_ws.aio.rest import parse_rest_time

        return parse_rest_time(value)
    raise InvalidInputError(f"since must be a datetime, epoch ms or ISO text, not {value!r}")
