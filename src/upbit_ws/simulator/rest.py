"""The REST subset of section 9, in Upbit's shapes, over the same market model as the socket.

Quotation (no auth): ``GET /v1/market/all``, ``/v1/ticker``, ``/v1/orderbook``,
``/v1/trades/ticks``, ``/v1/candles/seconds``, ``/v1/candles/minutes/{unit}``,
``/v1/candles/days``, ``/weeks``, ``/months``; all read the same market model the socket
streams, so a REST ticker, book or candle equals the last streamed one (docs/rest.md).
Exchange (JWT with ``query_hash``): ``GET /v1/accounts``, ``/v1/api_keys``, ``POST /v1/orders``,
``DELETE /v1/order``, ``GET /v1/order``, ``/v1/orders/open``, ``/v1/orders/closed``.
Every ``/v1`` answer carries ``Remaining-Req: group=...; min=...; sec=...`` (section 8.2) and
the group's per-second limit answers 429 when exceeded. Errors are
``{"error":{"name","message"}}`` (section 9.7), unknown paths included. Quotation numbers are
JSON numbers, exchange amounts strings, as Upbit sends them.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, unquote

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from upbit_ws.simulator.auth import ApiKey, AuthFailure, unverified_access_key, verify_token
from upbit_ws.simulator.limits import SlidingWindow
from upbit_ws.simulator.listing import PRICE_SCALE, tick_units
from upbit_ws.simulator.market import Candle, grouped_levels
from upbit_ws.simulator.orders import Order, RestError

if TYPE_CHECKING:
    from upbit_ws.simulator.server import Simulator

__all__ = ["add_rest_routes", "rest_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_MINUTE_UNITS: Final = {1, 3, 5, 10, 15, 30, 60, 240}
_NOT_FOUND: Final = {
    "error": {"name": "not_found", "message": "no Route matched with those values"}
}
_CODE_NOT_FOUND: Final = {"error": {"name": 404, "message": "Code not found"}}
_MISSING: Final = {
    "error": {
        "name": 400,
        "message": "Missing request parameter error. Check the required parameters!",
    }
}
_INVALID: Final = {"error": {"name": 400, "message": "Invalid parameter. Check the parameters!"}}
_KST: Final = 9 * 3600
_CLOSED_SPAN: Final = 7 * 86400.0


def _json(body: object, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _group(request: web.Request) -> tuple[str, bool] | None:
    """Return the rate-limit group of a REST path and whether it is IP-scoped (8.2)."""
    path = request.path
    if not path.startswith("/v1/"):
        return None
    if path == "/v1/market/all":
        return "market", True
    if path.startswith("/v1/candles/"):
        return "candles", True
    if path == "/v1/trades/ticks":
        return "crix-trades", True
    if path.startswith("/v1/ticker"):
        return "ticker", True
    if path.startswith("/v1/orderbook"):
        return "orderbook", True
    if path == "/v1/orders" and request.method == "POST":
        return "order", False
    return "default", False


def rest_middleware(sim: Simulator) -> Middleware:
    """Return the middleware adding ``Remaining-Req``, REST 429 and Upbit-style 404 bodies."""
    windows: dict[tuple[str, str], SlidingWindow] = {}
    cfg = sim.config
    limits = {
        "market": cfg.rest_quotation_per_second,
        "candles": cfg.rest_quotation_per_second,
        "crix-trades": cfg.rest_quotation_per_second,
        "ticker": cfg.rest_quotation_per_second,
        "orderbook": cfg.rest_quotation_per_second,
        "default": cfg.rest_exchange_per_second,
        "order": cfg.rest_order_per_second,
    }

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count the request in its group, refuse it with 429 or pass it on, add headers."""
        group = _group(request)
        headers: dict[str, str] = {}
        if group is not None:
            sim.rest_requests += 1
            sim.notify()  # wake wait_for(lambda: sim.rest_requests >= n)
            name, by_ip = group
            limit = limits[name]
            # Quotation groups count per IP, exchange groups per account (section 8.2).
            scope = (
                request.remote or ""
                if by_ip
                else unverified_access_key(request.headers.get("Authorization")) or ""
            )
            window = windows.setdefault((name, scope), SlidingWindow(limit, cfg.rate_window_second))
            now = asyncio.get_running_loop().time()
            allowed = window.hit(now)
            remaining = window.remaining(now)
            per_second = limit if limit is not None else 30
            sec = per_second if remaining is None else remaining
            headers["Remaining-Req"] = f"group={name}; min={per_second * 60}; sec={sec}"
            if by_ip:
                headers["Limit-By-Ip"] = "Yes"
            if not allowed:
                sim.rest_rate_limited += 1
                refused = _json(
                    {"error": {"name": "too_many_requests", "message": "Too many API requests."}},
                    status=429,
                )
                refused.headers.update(headers)
                return refused
        response: web.StreamResponse
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            response = _json(_NOT_FOUND, status=404)
        except web.HTTPMethodNotAllowed:
            response = _json(_NOT_FOUND, status=404)
        response.headers.update(headers)
        return response

    return middleware


def add_rest_routes(app: web.Application, sim: Simulator) -> None:
    """Serve the REST endpoints on ``app``."""
    rest = _Rest(sim)
    app.router.add_get("/v1/market/all", rest.market_all)
    app.router.add_get("/v1/ticker", rest.ticker)
    app.router.add_get("/v1/orderbook", rest.orderbook)
    app.router.add_get("/v1/orderbook/instruments", rest.orderbook_instruments)
    app.router.add_get("/v1/trades/ticks", rest.trades_ticks)
    app.router.add_get("/v1/candles/seconds", rest.candles_seconds)
    app.router.add_get("/v1/candles/minutes/{unit}", rest.candles_minutes)
    app.router.add_get("/v1/candles/days", rest.candles_days)
    app.router.add_get("/v1/candles/weeks", rest.candles_weeks)
    app.router.add_get("/v1/candles/months", rest.candles_months)
    app.router.add_get("/v1/accounts", rest.accounts)
    app.router.add_get("/v1/api_keys", rest.api_keys)
    app.router.add_post("/v1/orders", rest.create_order)
    app.router.add_delete("/v1/order", rest.cancel_order)
    app.router.add_get("/v1/order", rest.get_order)
    app.router.add_get("/v1/orders/open", rest.open_orders)
    app.router.add_get("/v1/orders/closed", rest.closed_orders)


def _iso_kst(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch) + _KST, UTC).strftime("%Y-%m-%dT%H:%M:%S+09:00")


def _parse_time(text: str) -> float | None:
    """Parse a REST ``to``/``start_time``: ISO 8601 (naive means UTC) or epoch ms (DOC-rest)."""
    if text.isdigit():
        return int(text) / 1000
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _time_of_day_ms(text: str | None) -> int | None:
    """Parse a ticks ``to`` (``HHmmss`` or ``HH:mm:ss``, UTC) into ms of the day; -1 if bad."""
    if text is None or text == "":
        return None
    digits = text.replace(":", "") if len(text) == 8 and text[2] == text[5] == ":" else text
    if len(digits) != 6 or not digits.isdigit():
        return -1
    hours, minutes, seconds = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    if hours > 23 or minutes > 59 or seconds > 59:
        return -1
    return ((hours * 60 + minutes) * 60 + seconds) * 1000


def _int(value: str | None, *, default: int) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        return None


def _query_string(params: list[tuple[str, str]]) -> str:
    """Join params unencoded, arrays as ``states[]=a&states[]=b`` (section 5)."""
    return "&".join(f"{k}={v}" for k, v in params)


class _Rest:
    """Request handlers bound to one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    # --- quotation ---------------------------------------------------------------------

    async def market_all(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/market/all`` (section 9.1)."""
        details = request.query.get("is_details", "false").lower() == "true"
        out: list[dict[str, object]] = []
        for info in self.sim.model.listing:
            item: dict[str, object] = {
                "market": info.market,
                "korean_name": info.korean_name,
                "english_name": info.english_name,
            }
            if details:
                names = (
                    "PRICE_FLUCTUATIONS",
                    "TRADING_VOLUME_SOARING",
                    "DEPOSIT_AMOUNT_SOARING",
                    "GLOBAL_PRICE_DIFFERENCES",
                    "CONCENTRATION_OF_SMALL_ACCOUNTS",
                )
                item["market_event"] = {
                    "warning": info.warning,
                    "caution": dict(zip(names, info.caution, strict=True)),
                }
            out.append(item)
        return _json(out)

    def _markets(self, request: web.Request) -> list[str] | web.Response:
        """Read ``markets=A,B``: 400 when missing, 404 when any code is not listed (9.7)."""
        raw = request.query.get("markets", "")
        codes = [c.strip() for c in raw.split(",") if c.strip()]
        if not codes:
            return _json(_MISSING, status=400)
        if any(c not in self.sim.model.states for c in codes):
            return _json(_CODE_NOT_FOUND, status=404)
        return list(dict.fromkeys(codes))

    async def ticker(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/ticker?markets=...``: the ticker the stream would send now, REST-shaped."""
        codes = self._markets(request)
        if isinstance(codes, web.Response):
            return codes
        now_ms = int(self.sim.wall_time() * 1000)
        body: list[dict[str, object]] = []
        for code in codes:
            t = self.sim.model.states[code].ticker()
            if t is None:
                continue
            trade = t.trade
            price, prev = trade.price, t.prev_close
            diff = (price - prev) / PRICE_SCALE
            rate = round(abs(price - prev) / prev, 10) if prev else 0.0
            moment = datetime.fromtimestamp(trade.timestamp / 1000, UTC)
            kst = moment + timedelta(seconds=_KST)
            body.append(
                {
                    "market": code,
                    "trade_date": moment.strftime("%Y%m%d"),
                    "trade_time": moment.strftime("%H%M%S"),
                    "trade_date_kst": kst.strftime("%Y%m%d"),
                    "trade_time_kst": kst.strftime("%H%M%S"),
                    "trade_timestamp": trade.timestamp,
                    "opening_price": t.open / PRICE_SCALE,
                    "high_price": t.high / PRICE_SCALE,
                    "low_price": t.low / PRICE_SCALE,
                    "trade_price": price / PRICE_SCALE,
                    "prev_closing_price": prev / PRICE_SCALE,
                    "change": "RISE" if price > prev else "FALL" if price < prev else "EVEN",
                    "change_price": abs(diff),
                    "change_rate": rate,
                    "signed_change_price": diff,
                    "signed_change_rate": rate if diff >= 0 else -rate,
                    "trade_volume": trade.volume / PRICE_SCALE,
                    "acc_trade_price": t.acc_price,
                    "acc_trade_price_24h": t.acc_price_24h,
                    "acc_trade_volume": t.acc_volume,
                    "acc_trade_volume_24h": t.acc_volume_24h,
                    "highest_52_week_price": t.high_52w / PRICE_SCALE,
                    "highest_52_week_date": t.high_52w_date,
                    "lowest_52_week_price": t.low_52w / PRICE_SCALE,
                    "lowest_52_week_date": t.low_52w_date,
                    "timestamp": now_ms,
                }
            )
        return _json(body)

    async def orderbook(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/orderbook?markets=...&count=&level=``: the book the stream would send now.

        ``count`` outside 1-30 falls back to 30; a ``level`` the market does not support
        answers an empty list (KRW markets group, others only 0).
        """
        from upbit_ws.simulator.websocket import allowed_levels

        codes = self._markets(request)
        if isinstance(codes, web.Response):
            return codes
        depth = _int(request.query.get("count"), default=30)
        if depth is None or not 1 <= depth <= 30:
            depth = 30
        try:
            level = float(request.query.get("level") or 0)
        except ValueError:
            return _json(_INVALID, status=400)
        body: list[dict[str, object]] = []
        for code in codes:
            if level and level not in allowed_levels(self.sim, code):
                return _json([])
            book = self.sim.model.states[code].book()
            asks: tuple[tuple[int, int], ...] | list[tuple[int, int]] = book.asks
            bids: tuple[tuple[int, int], ...] | list[tuple[int, int]] = book.bids
            if level > 0:
                asks, bids = grouped_levels(book, step=round(level * PRICE_SCALE), depth=depth)
            units: list[dict[str, float]] = []
            total_ask = total_bid = 0
            for i in range(depth):
                ask_p, ask_s = asks[i] if i < len(asks) else (0, 0)
                bid_p, bid_s = bids[i] if i < len(bids) else (0, 0)
                total_ask += ask_s
                total_bid += bid_s
                units.append(
                    {
                        "ask_price": ask_p / PRICE_SCALE,
                        "bid_price": bid_p / PRICE_SCALE,
                        "ask_size": ask_s / PRICE_SCALE,
                        "bid_size": bid_s / PRICE_SCALE,
                    }
                )
            body.append(
                {
                    "market": code,
                    "timestamp": book.timestamp,
                    "total_ask_size": total_ask / PRICE_SCALE,
                    "total_bid_size": total_bid / PRICE_SCALE,
                    "orderbook_units": units,
                    "level": int(level) if level.is_integer() else level,
                }
            )
        return _json(body)

    async def orderbook_instruments(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/orderbook/instruments``: tick size and the levels the socket honours."""
        from upbit_ws.simulator.websocket import allowed_levels

        codes = self._markets(request)
        if isinstance(codes, web.Response):
            return codes
        body: list[dict[str, object]] = []
        for code in codes:
            info = self.sim.model.states[code].info
            tick = tick_units(info.quote, round(info.base_price * PRICE_SCALE))
            levels = sorted(allowed_levels(self.sim, code))
            body.append(
                {
                    "market": code,
                    "quote_currency": info.quote,
                    "tick_size": _decimal_text(tick / PRICE_SCALE),
                    "supported_levels": [_decimal_text(level) for level in levels],
                }
            )
        return _json(body)

    async def trades_ticks(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/trades/ticks`` (9.5): one UTC day, newest first.

        ``days_ago`` (1-7) picks an earlier day than the newest trade's, ``to`` keeps trades
        before that time of day ([UNSURE] whether Upbit's ``to`` is exclusive; candles' is),
        ``cursor`` pages by ``sequential_id``.
        """
        market = request.query.get("market")
        if not market:
            return _json(_MISSING, status=400)
        if market not in self.sim.model.states:
            return _json(_CODE_NOT_FOUND, status=404)
        count = _int(request.query.get("count"), default=1)
        cursor = _int(request.query.get("cursor"), default=0)
        days_ago = _int(request.query.get("days_ago"), default=0)
        before_ms = _time_of_day_ms(request.query.get("to"))
        if count is None or cursor is None or count < 1 or before_ms == -1:
            return _json(_INVALID, status=400)
        if days_ago is None or (request.query.get("days_ago") and not 1 <= days_ago <= 7):
            return _json(_INVALID, status=400)  # the range is 1..7 (section 9.5)
        trades = self.sim.model.trades(
            market,
            count=min(count, 500),
            cursor=cursor or None,
            days_ago=days_ago,
            before_ms=before_ms,
        )
        body = []
        for t in trades:
            moment = datetime.fromtimestamp(t.timestamp / 1000, UTC)
            body.append(
                {
                    "market": t.market,
                    "trade_date_utc": moment.strftime("%Y-%m-%d"),
                    "trade_time_utc": moment.strftime("%H:%M:%S"),
                    "timestamp": t.timestamp,
                    "trade_price": t.price / PRICE_SCALE,
                    "trade_volume": t.volume / PRICE_SCALE,
                    "prev_closing_price": t.prev_closing_price / PRICE_SCALE,
                    # REST's change_price is signed, the socket's is not (section 15).
                    "change_price": (t.price - t.prev_closing_price) / PRICE_SCALE,
                    "ask_bid": t.ask_bid,
                    "sequential_id": t.sequential_id,
                }
            )
        return _json(body)

    def _candle_query(self, request: web.Request) -> tuple[str, int, float | None] | web.Response:
        """Read ``market``, ``count`` (over 200 gives 200, section 9.6) and ``to`` (exclusive)."""
        market = request.query.get("market")
        if not market:
            return _json(_MISSING, status=400)
        if market not in self.sim.model.states:
            return _json(_CODE_NOT_FOUND, status=404)
        count = _int(request.query.get("count"), default=1)
        if count is None or count < 1:
            return _json(_INVALID, status=400)
        to: float | None = None
        if "to" in request.query:
            to = _parse_time(request.query["to"])
            if to is None:
                return _json(_INVALID, status=400)
        return market, min(count, 200), to

    async def candles_seconds(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/candles/seconds``: the streamed ``candle.1s`` candles, newest first."""
        query = self._candle_query(request)
        if isinstance(query, web.Response):
            return query
        market, count, to = query
        candles = self.sim.model.candles(market, "candle.1s", count=count, to=to)
        return _json([_candle_body(market, c) for c in candles])

    async def candles_minutes(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/candles/minutes/{unit}``: newest first, ``to`` exclusive (section 9.6)."""
        unit = _int(request.match_info["unit"], default=0)
        if unit not in _MINUTE_UNITS:
            return _json(_INVALID, status=400)
        query = self._candle_query(request)
        if isinstance(query, web.Response):
            return query
        market, count, to = query
        candles = self.sim.model.candles(market, f"candle.{unit}m", count=count, to=to)
        return _json([{**_candle_body(market, c), "unit": unit} for c in candles])

    async def candles_days(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/candles/days``: UTC days; today's equals the streamed ticker's day."""
        query = self._candle_query(request)
        if isinstance(query, web.Response):
            return query
        market, count, to = query
        days = self._days(market)
        body: list[dict[str, object]] = []
        for i in range(len(days) - 1, -1, -1):
            day, prev_close = days[i]
            if to is not None and day.start >= to:
                continue
            change = (day.close - prev_close) / PRICE_SCALE
            item = _candle_body(market, day)
            item["prev_closing_price"] = prev_close / PRICE_SCALE
            item["change_price"] = change
            item["change_rate"] = round(change * PRICE_SCALE / prev_close, 10) if prev_close else 0
            body.append(item)
            if len(body) >= count:
                break
        return _json(body)

    async def candles_weeks(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/candles/weeks``: weeks from Monday 00:00 UTC, built from the days."""
        return await self._periods(request, week=True)

    async def candles_months(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/candles/months``: calendar months (UTC), built from the days."""
        return await self._periods(request, week=False)

    async def _periods(self, request: web.Request, *, week: bool) -> web.StreamResponse:
        query = self._candle_query(request)
        if isinstance(query, web.Response):
            return query
        market, count, to = query
        periods: list[Candle] = []
        for day, _prev in self._days(market):
            moment = datetime.fromtimestamp(day.start, UTC)
            first = moment - timedelta(days=moment.weekday()) if week else moment.replace(day=1)
            _merge(periods, day, int(first.timestamp()))
        body: list[dict[str, object]] = []
        for period in reversed(periods):
            if to is not None and period.start >= to:
                continue
            item = _candle_body(market, period)
            item["first_day_of_period"] = datetime.fromtimestamp(period.start, UTC).strftime(
                "%Y-%m-%d"
            )
            body.append(item)
            if len(body) >= count:
                break
        return _json(body)

    def _days(self, market: str) -> list[tuple[Candle, int]]:
        """Return (day candle, previous close) pairs, oldest first.

        Past days aggregate the 240-minute candles (they nest in UTC days); the current day is
        the ticker's day (open, high, low, last price, accumulated volume and value), so a
        REST day candle and the streamed ticker agree.
        """
        state = self.sim.model.states[market]
        days: list[Candle] = []
        for c in self.sim.model.candles(market, "candle.240m", count=10**9, to=None)[::-1]:
            _merge(days, c, c.start // 86400 * 86400)
        trade = state.last_trade
        if trade is not None and trade.timestamp // 86_400_000 == state.day:
            today = Candle(
                start=state.day * 86400,
                open=state.open,
                high=state.high,
                low=state.low,
                close=state.last_price,
                volume=state.acc_volume,
                acc_price=state.acc_price,
                timestamp=trade.timestamp,
            )
            if days and days[-1].start == today.start:
                days[-1] = today
            else:
                days.append(today)
        out: list[tuple[Candle, int]] = []
        for i, day in enumerate(days):
            if day.start == state.day * 86400:
                prev = state.prev_close
            else:
                prev = days[i - 1].close if i else day.open
            out.append((day, prev))
        return out

    # --- exchange ----------------------------------------------------------------------

    async def _params(self, request: web.Request) -> tuple[list[tuple[str, str]], str | None]:
        """Return the request's parameters and the unencoded string ``query_hash`` covers."""
        params = [(k, v) for k, v in parse_qsl(request.query_string, keep_blank_values=True)]
        if request.method == "POST" and request.can_read_body:
            raw = await request.read()
            if raw:
                if request.content_type == "application/json":
                    try:
                        body = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        body = None
                    if isinstance(body, dict):
                        for key, value in body.items():
                            values = value if isinstance(value, list) else [value]
                            name = f"{key}[]" if isinstance(value, list) else key
                            params.extend((name, _scalar(v)) for v in values)
                    query = _query_string(params)
                else:
                    params.extend(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
                    query = unquote(raw.decode("utf-8"))
                return params, query or None
        return params, unquote(request.query_string) or None

    async def _auth(
        self, request: web.Request
    ) -> tuple[ApiKey, list[tuple[str, str]]] | web.Response:
        params, query = await self._params(request)
        verdict = verify_token(
            request.headers.get("Authorization"),
            keys=self.sim.keys,
            now=self.sim.wall_time(),
            query=query,
        )
        if isinstance(verdict, AuthFailure):
            return _json({"error": {"name": verdict.name, "message": verdict.message}}, status=401)
        return verdict, params

    async def accounts(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/accounts`` (section 9.3)."""
        auth = await self._auth(request)
        if isinstance(auth, web.Response):
            return auth
        return _json(self.sim.engine.accounts_body(auth[0].access_key))

    async def api_keys(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/api_keys``: the calling key and its expiry in KST (section 9.2)."""
        auth = await self._auth(request)
        if isinstance(auth, web.Response):
            return auth
        key = auth[0]
        return _json([{"access_key": key.access_key, "expire_at": _iso_kst(key.expire_at)}])

    async def create_order(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/orders``: 201 and the order in REST shape, then myOrder/myAsset events."""
        auth = await self._auth(request)
        if isinstance(auth, web.Response):
            return auth
        key, params = auth
        result, events = self.sim.engine.create(
            key.access_key, dict(params), now=self.sim.wall_time()
        )
        if isinstance(result, RestError):
            return _json(result.body(), status=result.status)
        body = self.sim.engine.rest_body(result, with_trades=False)
        self.sim.dispatch_private(events)
        return _json(body, status=201)

    async def cancel_order(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /v1/order`` by ``uuid`` or ``identifier``."""
        auth = await self._auth(request)
        if isinstance(auth, web.Response):
            return auth
        key, params = auth
        values = dict(params)
        result, events, body = self.sim.engine.cancel(
            key.access_key,
            uuid=values.get("uuid"),
            identifier=values.get("identifier"),
            now=self.sim.wall_time(),
        )
        if isinstance(result, RestError):
            return _json(result.body(), status=result.status)
        self.sim.dispatch_private(events)
        return _json(body)

    async def get_order(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/order`` by ``uuid`` or ``identifier``, with its ``trades``."""
        auth = await self._auth(request)
        if isinstance(auth, web.Response):
            return auth
        key, params = auth
        values = dict(params)
        if not values.get("uuid") and not values.get("identifier"):
            return _json(
                RestError(400, "validation_error", "잘못된 API 요청입니다.").body(), status=400
            )
        order = self.sim.engine.find(
            key.access_key, uuid=values.get("uuid"), identifier=values.get("identifier")
        )
        if order is None:
            return _json(
                RestError(404, "order_not_found", "주문을 찾지 못했습니다.").body(), status=404
            )
        return _json(self.sim.engine.rest_body(order, with_trades=True))

    async def open_orders(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/orders/open`` (section 9.4): market, state or states[], page, limit."""
        return await self._list_orders(request, closed=False)

    async def closed_orders(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/orders/closed``: market, state or states[], start/end time, limit."""
        return await self._list_orders(request, closed=True)

    async def _list_orders(self, request: web.Request, *, closed: bool) -> web.StreamResponse:
        auth = await self._auth(request)
        if isinstance(auth, web.Response):
            return auth
        key, params = auth
        single = dict(params)
        states = [v for k, v in params if k == "states[]"]
        bad = RestError(400, "validation_error", "잘못된 API 요청입니다.")
        if "state" in single and states:
            return _json(bad.body(), status=400)
        if "state" in single:
            states = [single["state"]]
        allowed = {"done", "cancel"} if closed else {"wait", "watch"}
        if any(s not in allowed for s in states):
            return _json(bad.body(), status=400)
        limit = _int(single.get("limit"), default=100)
        page = _int(single.get("page"), default=1)
        cap = 1000 if closed else 100
        if limit is None or page is None or not 1 <= limit <= cap or page < 1:
            return _json(bad.body(), status=400)
        engine = self.sim.engine
        orders: list[Order] = (
            engine.closed_orders(key.access_key) if closed else engine.open_orders(key.access_key)
        )
        if single.get("market"):
            orders = [o for o in orders if o.market == single["market"]]
        if states:
            orders = [o for o in orders if o.state in states]
        bounds: dict[str, float] = {}
        for bound in ("start_time", "end_time"):
            if bound in single:
                moment = _parse_time(single[bound])
                if moment is None:
                    return _json(bad.body(), status=400)
                bounds[bound] = moment
        if closed:
            # Closed orders are searched by creation time over at most 7 days (DOC-rest).
            begin, end = bounds.get("start_time"), bounds.get("end_time")
            if begin is None and end is None:
                end = self.sim.wall_time()
            if begin is None:
                assert end is not None
                begin = end - _CLOSED_SPAN
            if end is None:
                end = begin + _CLOSED_SPAN
            if end - begin > _CLOSED_SPAN or end < begin:
                return _json(bad.body(), status=400)
            bounds = {"start_time": begin, "end_time": end}
        if "start_time" in bounds:
            orders = [o for o in orders if o.created_at >= bounds["start_time"]]
        if "end_time" in bounds:
            orders = [o for o in orders if o.created_at <= bounds["end_time"]]
        if single.get("order_by", "desc") == "desc":
            orders = orders[::-1]
        start = (page - 1) * limit if not closed else 0
        page_orders = orders[start : start + limit]
        return _json([engine.rest_body(o, with_trades=False) for o in page_orders])


def _decimal_text(value: float) -> str:
    """Spell a level or tick as Upbit does in strings: plain digits, no exponent."""
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _merge(out: list[Candle], part: Candle, start: int) -> None:
    """Add ``part`` (in time order) into the candle of ``out`` starting at ``start``."""
    if out and out[-1].start == start:
        last = out[-1]
        last.high = max(last.high, part.high)
        last.low = min(last.low, part.low)
        last.close = part.close
        last.volume += part.volume
        last.acc_price += part.acc_price
        last.timestamp = part.timestamp
    else:
        out.append(
            Candle(
                start=start,
                open=part.open,
                high=part.high,
                low=part.low,
                close=part.close,
                volume=part.volume,
                acc_price=part.acc_price,
                timestamp=part.timestamp,
            )
        )


def _candle_body(market: str, c: Candle) -> dict[str, object]:
    """Return the fields every REST candle shares (section 9.6), numbers as JSON numbers."""
    utc = datetime.fromtimestamp(c.start, UTC)
    kst = datetime.fromtimestamp(c.start + _KST, UTC)
    return {
        "market": market,
        "candle_date_time_utc": utc.strftime("%Y-%m-%dT%H:%M:%S"),
        "candle_date_time_kst": kst.strftime("%Y-%m-%dT%H:%M:%S"),
        "opening_price": c.open / PRICE_SCALE,
        "high_price": c.high / PRICE_SCALE,
        "low_price": c.low / PRICE_SCALE,
        "trade_price": c.close / PRICE_SCALE,
        "timestamp": c.timestamp,
        "candle_acc_trade_price": c.acc_price,
        "candle_acc_trade_volume": c.volume,
    }


def _scalar(value: object) -> str:
    """Spell a JSON body value as clients hash it: ``str()``, booleans as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
