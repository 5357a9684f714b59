"""An aiohttp REST client for Upbit's REST API (or the simulator's), with typed results.

Quotation (no key): market list, current ticker, order book snapshot, recent trades, candles of
seconds, minutes, days, weeks and months. Exchange (signed): API keys, balances, open, closed
and single orders, placing and cancelling. Market codes are normalised and checked the way
``subscribe`` does (:mod:`upbit_ws.core.codes`): ``"krw-btc"`` is sent as ``KRW-BTC``, a
malformed code raises :class:`InvalidInputError` before any request, and an unlisted one
raises :class:`UnknownCodeError` naming close matches. Numbers follow docs/rest.md: quotation
results are ``float``, exchange results exact :class:`~decimal.Decimal`.

Every request is paced under Upbit's per-group limits by :class:`~upbit_ws.core.rest_pacing.
RestPacer`, which reads each answer's ``Remaining-Req`` header (docs/rest.md, "Rate limits").
Private calls are signed with a fresh JWT per request, with ``query_hash`` when the request has
parameters (docs/rest.md, "Signing"). Failures are translated into our exception tree here:

===============================  =========================================================
HTTP answer                      raised
===============================  =========================================================
401 / 403                        :class:`AuthError` with Upbit's error name
429 / 418                        :class:`RateLimitedError` (``retry_after`` when sent)
404 for a market code            :class:`UnknownCodeError` with close matches
other 4xx / 5xx                  :class:`ServerRejectedError` with name, message, status
body of the wrong shape          :class:`DecodeError`
network failure or timeout       :class:`TransportError`
===============================  =========================================================
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal, TypeVar

import aiohttp
import orjson

from upbit_ws.aio.clock import Clock, LoopClock, utc_now
from upbit_ws.core.auth import Credentials, QueryValue, build_rest_token, query_string
from upbit_ws.core.codes import close_matches, normalize_code
from upbit_ws.core.constants import DEFAULT_BASE_URL, websocket_urls
from upbit_ws.core.errors import (
    AuthError,
    InvalidInputError,
    RateLimitedError,
    ServerRejectedError,
    TransportError,
    UnknownCodeError,
)
from upbit_ws.core.rest_pacing import (
    PacerStatistics,
    RemainingRequests,
    RestPacer,
    group_of,
    parse_remaining_req,
)
from upbit_ws.core.rest_types import (
    Account,
    ApiKeyInfo,
    DayCandle,
    MarketInfo,
    MinuteCandle,
    OrderbookInstrument,
    PeriodCandle,
    RestOrder,
    RestOrderbook,
    RestTicker,
    SecondCandle,
    TradeTick,
    decode_rest,
    parse_retry_after,
    read_error_body,
)

__all__ = [
    "CLOSED_ORDERS_WINDOW",
    "DEFAULT_REST_TIMEOUT",
    "RemainingRequests",
    "RestClient",
    "TimeArg",
    "parse_remaining_req",
    "parse_rest_time",
]

T = TypeVar("T")
Params = dict[str, QueryValue]
#: A REST time bound: an aware ``datetime``, epoch milliseconds, or Upbit's ISO 8601 text.
TimeArg = datetime | int | str

#: Whole-request deadline for one REST call, in seconds.
DEFAULT_REST_TIMEOUT: Final = 5.0
#: The longest span one ``GET /v1/orders/closed`` covers (docs/rest.md, "Orders").
CLOSED_ORDERS_WINDOW: Final = timedelta(days=7)
_MINUTE_UNITS: Final = frozenset({1, 3, 5, 10, 15, 30, 60, 240})
_MAX_CANDLES: Final = 200
_OPEN_PAGE: Final = 100
_CLOSED_PAGE: Final = 1000


def parse_rest_time(text: str) -> datetime:
    """Parse a REST timestamp (``2024-03-13T15:26:07+09:00``; naive means UTC) as aware UTC."""
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError as exc:
        raise InvalidInputError(f"not an ISO 8601 time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _time_param(value: TimeArg | None, name: str) -> str | None:
    """Spell a time bound as Upbit takes it: ISO 8601 with a zone, or epoch milliseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a datetime, epoch ms or ISO text, not a bool")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInputError(
                f"{name} is a naive datetime; pass an aware one, e.g. "
                "datetime.now(timezone.utc), so the instant is unambiguous"
            )
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        try:
            parse_rest_time(value)  # Upbit answers 400 to anything else: say so here
        except InvalidInputError:
            raise InvalidInputError(
                f"{name} must be a datetime, epoch ms or ISO 8601 text such as "
                f"'2026-01-02T09:00:00+09:00', not {value!r}"
            ) from None
        return value
    raise InvalidInputError(f"{name} must be a datetime, epoch ms or ISO text, not {value!r}")


def _as_datetime(value: TimeArg) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInputError("pass an aware datetime (with a time zone)")
        return value.astimezone(UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        return parse_rest_time(value)
    raise InvalidInputError(f"expected a datetime, epoch ms or ISO text, not {value!r}")


def _count(count: int, most: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most:
        raise InvalidInputError(f"count must be an int from 1 to {most}, got {count!r}")
    return count


def _new_nonce() -> str:
    return str(uuid.uuid4())


class RestClient:
    """Call Upbit's REST API (or the simulator's) with typed results, paced under its limits.

    Use as ``async with RestClient(base_url, credentials=...) as rest:``. ``base_url`` follows
    the manager's rule (:func:`~upbit_ws.aio.manager.websocket_urls`: exactly
    ``https://HOST`` or ``http://HOST:PORT``, else :class:`~upbit_ws.ConfigError`). Private
    calls need credentials and raise :class:`InvalidInputError` without them. ``pacer`` may be
    shared by several clients of one process (they then share Upbit's per-IP and per-account
    budget).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        credentials: Credentials | None = None,
        timeout: float = DEFAULT_REST_TIMEOUT,
        nonce_factory: Callable[[], str] = _new_nonce,
        pacer: RestPacer | None = None,
        clock: Clock | None = None,
    ) -> None:
        websocket_urls(base_url)  # the same base URL rule as the manager's (ConfigError)
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._nonce_factory = nonce_factory
        self._session: aiohttp.ClientSession | None = None
        self._pacer = pacer if pacer is not None else RestPacer()
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._pace_locks: dict[str, asyncio.Lock] = {}
        self._known: frozenset[str] | None = None

    def __repr__(self) -> str:
        signed = "signed" if self._credentials is not None else "public only"
        return f"<RestClient {self.base_url} {signed}>"

    @property
    def credentials(self) -> Credentials | None:
        """Return the credentials private calls are signed with."""
        return self._credentials

    @property
    def remaining(self) -> Mapping[str, RemainingRequests]:
        """Return the latest ``Remaining-Req`` seen per group (as the server names it)."""
        return self._pacer.remaining

    def statistics(self) -> PacerStatistics:
        """Return what the pacer did: requests, waits and their total seconds, 429s."""
        return self._pacer.statistics()

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- codes ----------------------------------------------------------------------------------

    async def _code(self, market: str) -> str:
        """Normalise one market code and check it against the cached market list, if any."""
        return (await self._codes([market]))[0]

    async def _codes(self, markets: str | Iterable[str]) -> list[str]:
        items = [markets] if isinstance(markets, str) else list(markets)
        if not items:
            raise InvalidInputError("give at least one market code, e.g. 'KRW-BTC'")
        codes = list(dict.fromkeys(normalize_code(m) for m in items))
        if self._known is not None and any(c not in self._known for c in codes):
            await self.market_all()  # a new listing is not a typo: refresh once, then judge
            for code in codes:
                if code not in self._known:
                    raise UnknownCodeError(code, close_matches(code, self._known))
        return codes

    async def _unknown_code(self, codes: Sequence[str], exc: ServerRejectedError) -> Exception:
        """Turn a quotation 404 ("Code not found") into UnknownCodeError with close matches."""
        if exc.status != 404:
            return exc
        await self.market_all()
        assert self._known is not None
        for code in codes:
            if code not in self._known:
                return UnknownCodeError(code, close_matches(code, self._known))
        return exc

    async def _quote(self, path: str, params: Params, kind: type[T], codes: Sequence[str]) -> T:
        try:
            return await self._get(path, params, kind, private=False)
        except ServerRejectedError as exc:
            raise await self._unknown_code(codes, exc) from exc

    # -- quotation (no auth) ----------------------------------------------------------------

    async def market_all(self, *, is_details: bool = False) -> list[MarketInfo]:
        """Return every listed market (``GET /v1/market/all``); the list is kept to check codes."""
        params: Params = {"is_details": "true"} if is_details else {}
        markets = await self._get("/v1/market/all", params, list[MarketInfo], private=False)
        self._known = frozenset(m.market for m in markets)
        return markets

    async def ticker(self, markets: str | Iterable[str]) -> list[RestTicker]:
        """Return the current ticker of each market (``GET /v1/ticker?markets=...``)."""
        codes = await self._codes(markets)
        params: Params = {"markets": ",".join(codes)}
        return await self._quote("/v1/ticker", params, list[RestTicker], codes)

    async def orderbook(
        self, markets: str | Iterable[str], *, count: int = 30, level: float | str | None = None
    ) -> list[RestOrderbook]:
        """Return an order book snapshot of each market (``GET /v1/orderbook``).

        ``count`` rows per side (1-30). ``level`` groups prices (KRW markets only); Upbit
        answers an empty list for a level the market does not support, which raises
        :class:`InvalidInputError` here rather than returning nothing.
        """
        codes = await self._codes(markets)
        params: Params = {"markets": ",".join(codes), "count": _count(count, 30)}
        if level is not None:
            params["level"] = _level_text(level)
        books = await self._quote("/v1/orderbook", params, list[RestOrderbook], codes)
        if level is not None and not books:
            raise InvalidInputError(
                f"order book level {level!r} is not supported by {', '.join(codes)}: Upbit "
                "groups KRW markets only, by the levels its orderbook policy lists"
            )
        return books

    async def orderbook_instruments(
        self, markets: str | Iterable[str]
    ) -> list[OrderbookInstrument]:
        """Return each market's tick size and supported ``level`` values.

        ``GET /v1/orderbook/instruments``: use it to check an order book ``level`` before
        subscribing (Upbit silently sends nothing for a level a market does not support).
        """
        codes = await self._codes(markets)
        params: Params = {"markets": ",".join(codes)}
        path = "/v1/orderbook/instruments"
        return await self._quote(path, params, list[OrderbookInstrument], codes)

    async def trades_ticks(
        self,
        market: str,
        *,
        count: int = 200,
        cursor: int | None = None,
        days_ago: int | None = None,
        to: str | None = None,
    ) -> list[TradeTick]:
        """Return recent trades of ``market``, newest first (``GET /v1/trades/ticks``).

        ``cursor`` is a ``sequential_id`` to page back from, ``days_ago`` (1-7) an earlier UTC
        day, ``to`` a UTC time of day (``HHmmss``).
        """
        if days_ago is not None and (
            isinstance(days_ago, bool) or not isinstance(days_ago, int) or not 1 <= days_ago <= 7
        ):
            raise InvalidInputError(f"days_ago must be an int from 1 to 7, got {days_ago!r}")
        code = await self._code(market)
        params: Params = {"market": code, "count": _count(count, 500), "to": to}
        params.update(cursor=cursor, days_ago=days_ago)
        return await self._quote("/v1/trades/ticks", params, list[TradeTick], [code])

    async def candles_seconds(
        self, market: str, *, count: int = _MAX_CANDLES, to: TimeArg | None = None
    ) -> list[SecondCandle]:
        """Return one-second candles before ``to``, newest first (``GET /v1/candles/seconds``)."""
        return await self._candles("seconds", market, count, to, list[SecondCandle])

    async def candles_minutes(
        self, unit: int, market: str, *, count: int = _MAX_CANDLES, to: TimeArg | None = None
    ) -> list[MinuteCandle]:
        """Return ``unit``-minute candles before ``to``, newest first (``/v1/candles/minutes/N``).

        ``unit`` is 1, 3, 5, 10, 15, 30, 60 or 240; a minute without trades has no candle.
        """
        if unit not in _MINUTE_UNITS:
            raise InvalidInputError(f"unit must be one of {sorted(_MINUTE_UNITS)}, got {unit}")
        return await self._candles(f"minutes/{unit}", market, count, to, list[MinuteCandle])

    async def candles_days(
        self,
        market: str,
        *,
        count: int = _MAX_CANDLES,
        to: TimeArg | None = None,
        converting_price_unit: str | None = None,
    ) -> list[DayCandle]:
        """Return day candles (00:00 UTC days) before ``to``, newest first."""
        extra: Params = {"converting_price_unit": converting_price_unit}
        return await self._candles("days", market, count, to, list[DayCandle], extra)

    async def candles_weeks(
        self, market: str, *, count: int = _MAX_CANDLES, to: TimeArg | None = None
    ) -> list[PeriodCandle]:
        """Return week candles (from Monday) before ``to``, newest first."""
        return await self._candles("weeks", market, count, to, list[PeriodCandle])

    async def candles_months(
        self, market: str, *, count: int = _MAX_CANDLES, to: TimeArg | None = None
    ) -> list[PeriodCandle]:
        """Return month candles before ``to``, newest first."""
        return await self._candles("months", market, count, to, list[PeriodCandle])

    async def _candles(
        self,
        kind: str,
        market: str,
        count: int,
        to: TimeArg | None,
        result: type[T],
        extra: Params | None = None,
    ) -> T:
        code = await self._code(market)
        params: Params = {"market": code, "count": _count(count, _MAX_CANDLES)}
        params["to"] = _time_param(to, "to")
        params.update(extra or {})
        return await self._quote(f"/v1/candles/{kind}", params, result, [code])

    # -- exchange (signed) --------------------------------------------------------------------

    async def api_keys(self) -> list[ApiKeyInfo]:
        """Return the account's API keys and their expiry (``GET /v1/api_keys``)."""
        return await self._get("/v1/api_keys", {}, list[ApiKeyInfo], private=True)

    async def accounts(self) -> list[Account]:
        """Return balances (``GET /v1/accounts``); a currency at zero may be left out."""
        return await self._get("/v1/accounts", {}, list[Account], private=True)

    async def open_orders(
        self,
        *,
        market: str | None = None,
        states: Sequence[Literal["wait", "watch"]] = (),
        page: int = 1,
        limit: int = _OPEN_PAGE,
        order_by: Literal["asc", "desc"] = "desc",
    ) -> list[RestOrder]:
        """Return one page of open orders (``GET /v1/orders/open``, at most 100 a page)."""
        code = await self._code(market) if market is not None else None
        params: Params = {"market": code, "states": list(states) or None, "page": page}
        params.update(limit=_count(limit, _OPEN_PAGE), order_by=order_by)
        return await self._get("/v1/orders/open", params, list[RestOrder], private=True)

    async def all_open_orders(self, *, market: str | None = None) -> list[RestOrder]:
        """Return every open order (``wait`` and ``watch``), oldest first, following pages."""
        out: dict[str, RestOrder] = {}
        page = 1
        while True:
            batch = await self.open_orders(
                market=market, states=("wait", "watch"), page=page, order_by="asc"
            )
            for order in batch:
                out.setdefault(order.uuid, order)
            if len(batch) < _OPEN_PAGE:
                return list(out.values())
            page += 1

    async def closed_orders(
        self,
        *,
        market: str | None = None,
        states: Sequence[Literal["done", "cancel"]] = (),
        start_time: TimeArg | None = None,
        end_time: TimeArg | None = None,
        limit: int = 100,
        order_by: Literal["asc", "desc"] = "desc",
    ) -> list[RestOrder]:
        """Return finished orders created in a span of at most 7 days (``/v1/orders/closed``).

        Upbit filters by *creation* time: only ``start_time`` covers 7 days from it, only
        ``end_time`` 7 days before it, neither the last 7 days. ``limit`` is 1-1000.
        """
        code = await self._code(market) if market is not None else None
        params: Params = {"market": code, "states": list(states) or None}
        params.update(
            start_time=_time_param(start_time, "start_time"),
            end_time=_time_param(end_time, "end_time"),
            limit=_count(limit, _CLOSED_PAGE),
            order_by=order_by,
        )
        return await self._get("/v1/orders/closed", params, list[RestOrder], private=True)

    async def closed_orders_since(
        self,
        start: TimeArg,
        *,
        end: TimeArg | None = None,
        market: str | None = None,
        page_size: int = _CLOSED_PAGE,
    ) -> list[RestOrder]:
        """Return every closed order created from ``start`` to ``end`` (default: now).

        Walks 7-day windows and pages within each by creation time (``order_by=asc``), so more
        than ``page_size`` (20-1000) orders in a window are all returned; oldest first, each
        uuid once. REST creation times have whole seconds: a full page inside one second is
        completed from the other end (``order_by=desc``), which covers ``2 * page_size``
        orders a second, more than Upbit's order-creation limit lets an account place.
        """
        if not 20 <= page_size <= _CLOSED_PAGE:
            raise InvalidInputError(f"page_size must be 20..{_CLOSED_PAGE}, got {page_size}")
        begin = _as_datetime(start)
        finish = _as_datetime(end) if end is not None else utc_now()
        out: dict[str, RestOrder] = {}

        async def page(lo: datetime, hi: datetime, order_by: Literal["asc", "desc"]) -> int:
            batch = await self.closed_orders(
                market=market,
                start_time=_ms(lo),
                end_time=_ms(hi),
                limit=page_size,
                order_by=order_by,
            )
            for order in batch:
                out.setdefault(order.uuid, order)
            return len(batch)

        cursor = begin
        while cursor <= finish:
            window_end = min(cursor + CLOSED_ORDERS_WINDOW, finish)
            if await page(cursor, window_end, "asc") < page_size:
                if window_end >= finish:
                    break
                cursor = window_end
                continue
            newest = max(parse_rest_time(o.created_at) for o in out.values())
            if newest > cursor:
                cursor = newest
                continue
            # A full page inside one second: take that second from its newest end too.
            second_end = cursor + timedelta(milliseconds=999)
            await page(cursor, min(second_end, finish), "desc")
            cursor = cursor + timedelta(seconds=1)
        return sorted(out.values(), key=lambda o: parse_rest_time(o.created_at))

    async def order(self, *, uuid: str | None = None, identifier: str | None = None) -> RestOrder:
        """Return one order with its fills by ``uuid`` or ``identifier`` (``GET /v1/order``)."""
        if (uuid is None) == (identifier is None):
            raise InvalidInputError("give exactly one of uuid or identifier")
        params: Params = {"uuid": uuid, "identifier": identifier}
        return await self._get("/v1/order", params, RestOrder, private=True)

    async def place_order(
        self,
        *,
        market: str,
        side: Literal["bid", "ask"],
        ord_type: Literal["limit", "price", "market", "best"],
        volume: str | None = None,
        price: str | None = None,
        identifier: str | None = None,
        time_in_force: str | None = None,
    ) -> RestOrder:
        """Place an order (``POST /v1/orders``); amounts are decimal strings, as Upbit wants."""
        code = await self._code(market)
        body: Params = {"market": code, "side": side, "ord_type": ord_type, "volume": volume}
        body.update(price=price, identifier=identifier, time_in_force=time_in_force)
        return await self._request("POST", "/v1/orders", body, RestOrder, private=True, body=True)

    async def cancel_order(
        self, *, uuid: str | None = None, identifier: str | None = None
    ) -> RestOrder:
        """Cancel one order (``DELETE /v1/order``)."""
        if (uuid is None) == (identifier is None):
            raise InvalidInputError("give exactly one of uuid or identifier")
        params: Params = {"uuid": uuid, "identifier": identifier}
        return await self._request("DELETE", "/v1/order", params, RestOrder, private=True)

    # -- plumbing -----------------------------------------------------------------------------

    async def _get(self, path: str, params: Params, kind: type[T], *, private: bool) -> T:
        return await self._request("GET", path, params, kind, private=private)

    async def _pace(self, group: str) -> None:
        """Wait until the pacer lets a request of ``group`` go, and record it as sent."""
        lock = self._pace_locks.get(group)
        if lock is None:
            lock = self._pace_locks[group] = asyncio.Lock()
        async with lock:
            while (wait := self._pacer.delay(group, self._clock.now())) > 0:
                self._pacer.waited(wait)
                await asyncio.sleep(wait)
            self._pacer.sent(group, self._clock.now())

    async def _request(
        self,
        method: str,
        path: str,
        params: Params,
        kind: type[T],
        *,
        private: bool,
        body: bool = False,
    ) -> T:
        params = {key: value for key, value in params.items() if value is not None}
        query = query_string(params)
        headers = {"Accept": "application/json"}
        if private and self._credentials is None:
            raise InvalidInputError(
                f"{path} needs API credentials: pass credentials=Credentials(...) "
                "or set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY"
            )
        group = group_of(method, path)
        await self._pace(group)
        if private:
            assert self._credentials is not None
            # Signed after pacing: the nonce and token are fresh when the request leaves.
            token = build_rest_token(self._credentials, nonce=self._nonce_factory(), query=query)
            headers["Authorization"] = f"Bearer {token}"
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        kwargs: dict[str, Any] = {"headers": headers}
        url = self.base_url + path
        if body:
            kwargs["data"] = orjson.dumps(params)
            headers["Content-Type"] = "application/json"
        elif query:
            # Send exactly the text the query hash covers; yarl percent-encodes it.
            url += "?" + query
        try:
            async with self._session.request(method, url, **kwargs) as response:
                payload = await response.read()
                status = response.status
                remaining = response.headers.get("Remaining-Req")
                retry_after = response.headers.get("Retry-After")
        except TimeoutError as exc:
            raise TransportError(f"{method} {path} timed out") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{method} {path} failed: {exc.__class__.__name__}") from exc
        now = self._clock.now()
        if remaining is not None:
            self._pacer.observed(group, parse_remaining_req(remaining), now)
        if status in (429, 418):
            self._pacer.refused(group, now, parse_retry_after(retry_after))
        if status >= 400:
            raise _error_for(status, payload, retry_after, f"{method} {path}")
        return decode_rest(payload, kind)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _level_text(level: float | str) -> str:
    """Spell an order book level as Upbit wants: integers without a point, fractions plain."""
    if isinstance(level, str):
        try:
            number = Decimal(level)
        except ArithmeticError:
            number = Decimal(-1)
        if not number.is_finite() or number < 0:
            raise InvalidInputError(
                f"order book level must be 0 or a positive number, not {level!r}"
            )
        return level
    if isinstance(level, bool) or not math.isfinite(level) or level < 0:
        raise InvalidInputError(f"order book level must be 0 or a positive number, not {level!r}")
    if float(level).is_integer():
        return str(int(level))
    return format(level, "f").rstrip("0")


def _error_for(status: int, payload: bytes, retry_after: str | None, what: str) -> Exception:
    """Translate an HTTP error answer into our exception for its status."""
    if status in (429, 418):
        return RateLimitedError(status, retry_after=parse_retry_after(retry_after))
    name, message = read_error_body(payload) or (
        "http_error",
        payload[:200].decode("utf-8", "replace"),
    )
    if status in (401, 403):
        return AuthError(
            f"{what} refused the API key (HTTP {status}): {name}: {message}",
            name=name,
            status=status,
        )
    return ServerRejectedError(name, message, status=status)
