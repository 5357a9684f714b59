"""A small aiohttp REST client for what a WebSocket manager needs from Upbit's REST API.

Market list (code expansion and validation), API-key health, and the reconciliation reads
(accounts, open/closed orders, one order, trade ticks, minute candles). Private calls are
signed with a fresh JWT per request, with ``query_hash`` when the request has parameters
(upbit-protocol.md section 5). Failures are translated into our exception tree here:

===============================  =========================================================
HTTP answer                      raised
===============================  =========================================================
401 / 403                        :class:`AuthError` with Upbit's error name
429 / 418                        :class:`RateLimitedError` (``retry_after`` when sent)
other 4xx / 5xx                  :class:`ServerRejectedError` with name, message, status
body of the wrong shape          :class:`DecodeError`
network failure or timeout       :class:`TransportError`
===============================  =========================================================
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import aiohttp
import orjson

from upbit_ws.core.auth import Credentials, QueryValue, build_rest_token, query_string
from upbit_ws.core.constants import DEFAULT_BASE_URL
from upbit_ws.core.errors import (
    AuthError,
    InvalidInputError,
    RateLimitedError,
    ServerRejectedError,
    TransportError,
)
from upbit_ws.core.rest_types import (
    Account,
    ApiKeyInfo,
    MarketInfo,
    MinuteCandle,
    RestOrder,
    TradeTick,
    decode_rest,
    parse_retry_after,
    read_error_body,
)

__all__ = ["DEFAULT_REST_TIMEOUT", "RemainingRequests", "RestClient", "parse_remaining_req"]

T = TypeVar("T")
Params = dict[str, QueryValue]

#: Whole-request deadline for one REST call, in seconds.
DEFAULT_REST_TIMEOUT: Final = 5.0
_MINUTE_UNITS: Final = frozenset({1, 3, 5, 10, 15, 30, 60, 240})


@dataclass(frozen=True, slots=True)
class RemainingRequests:
    """One ``Remaining-Req: group=...; min=...; sec=...`` header (section 8.2)."""

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


def _new_nonce() -> str:
    return str(uuid.uuid4())


class RestClient:
    """Call Upbit's REST API (or the simulator's) with typed results.

    Use as ``async with RestClient(base_url, credentials=...) as rest:``; private calls need
    credentials and raise :class:`InvalidInputError` without them.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        credentials: Credentials | None = None,
        timeout: float = DEFAULT_REST_TIMEOUT,
        nonce_factory: Callable[[], str] = _new_nonce,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._nonce_factory = nonce_factory
        self._session: aiohttp.ClientSession | None = None
        #: The latest ``Remaining-Req`` seen per group.
        self.remaining: dict[str, RemainingRequests] = {}

    def __repr__(self) -> str:
        signed = "signed" if self._credentials is not None else "public only"
        return f"<RestClient {self.base_url} {signed}>"

    @property
    def credentials(self) -> Credentials | None:
        """Return the credentials private calls are signed with."""
        return self._credentials

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- quotation (no auth) ----------------------------------------------------------------

    async def market_all(self, *, is_details: bool = False) -> list[MarketInfo]:
        """Return every listed market (``GET /v1/market/all``)."""
        params: Params = {"is_details": "true"} if is_details else {}
        return await self._get("/v1/market/all", params, list[MarketInfo], private=False)

    async def trades_ticks(
        self,
        market: str,
        *,
        count: int = 200,
        cursor: int | None = None,
        days_ago: int | None = None,
        to: str | None = None,
    ) -> list[TradeTick]:
        """Return recent trades of ``market``, newest first (``GET /v1/trades/ticks``)."""
        if not 1 <= count <= 500:
            raise InvalidInputError(f"count must be 1..500, got {count}")
        params: Params = {"market": market, "count": count, "to": to}
        params.update(cursor=cursor, days_ago=days_ago)
        return await self._get("/v1/trades/ticks", params, list[TradeTick], private=False)

    async def candles_minutes(
        self, unit: int, market: str, *, count: int = 200, to: str | None = None
    ) -> list[MinuteCandle]:
        """Return minute candles of ``market``, newest first (``GET /v1/candles/minutes/N``)."""
        if unit not in _MINUTE_UNITS:
            raise InvalidInputError(f"unit must be one of {sorted(_MINUTE_UNITS)}, got {unit}")
        params: Params = {"market": market, "count": count, "to": to}
        path = f"/v1/candles/minutes/{unit}"
        return await self._get(path, params, list[MinuteCandle], private=False)

    # -- exchange (signed) --------------------------------------------------------------------

    async def api_keys(self) -> list[ApiKeyInfo]:
        """Return the account's API keys and their expiry (``GET /v1/api_keys``)."""
        return await self._get("/v1/api_keys", {}, list[ApiKeyInfo], private=True)

    async def accounts(self) -> list[Account]:
        """Return balances (``GET /v1/accounts``)."""
        return await self._get("/v1/accounts", {}, list[Account], private=True)

    async def open_orders(
        self,
        *,
        market: str | None = None,
        states: Sequence[Literal["wait", "watch"]] = (),
        page: int = 1,
        limit: int = 100,
        order_by: Literal["asc", "desc"] = "desc",
    ) -> list[RestOrder]:
        """Return open orders (``GET /v1/orders/open``)."""
        params: Params = {"market": market, "states": list(states) or None, "page": page}
        params.update(limit=limit, order_by=order_by)
        return await self._get("/v1/orders/open", params, list[RestOrder], private=True)

    async def closed_orders(
        self,
        *,
        market: str | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        limit: int = 100,
        order_by: Literal["asc", "desc"] = "desc",
    ) -> list[RestOrder]:
        """Return finished orders, optionally since ``start_time`` (``GET /v1/orders/closed``)."""
        params: Params = {"market": market, "start_time": start_time, "end_time": end_time}
        params.update(limit=limit, order_by=order_by)
        return await self._get("/v1/orders/closed", params, list[RestOrder], private=True)

    async def order(self, *, uuid: str | None = None, identifier: str | None = None) -> RestOrder:
        """Return one order by ``uuid`` or ``identifier`` (``GET /v1/order``)."""
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
        body: Params = {"market": market, "side": side, "ord_type": ord_type, "volume": volume}
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
        if private:
            if self._credentials is None:
                raise InvalidInputError(
                    f"{path} needs API credentials: pass credentials=Credentials(...) "
                    "or set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY"
                )
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
            # Send exactly the text the query hash covers (section 5); yarl percent-encodes it.
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
        if remaining is not None:
            parsed = parse_remaining_req(remaining)
            if parsed is not None:
                self.remaining[parsed.group] = parsed
        if status >= 400:
            raise _error_for(status, payload, retry_after, f"{method} {path}")
        return decode_rest(payload, kind)


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
