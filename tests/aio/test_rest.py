"""The REST client against the simulator's REST API over real loopback sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from upbit_ws.aio.rest import RestClient, parse_remaining_req
from upbit_ws.aio.subscriptions import _trades_since
from upbit_ws.core.auth import Credentials
from upbit_ws.core.errors import (
    AuthError,
    InvalidInputError,
    RateLimitedError,
    UnknownCodeError,
)
from upbit_ws.core.rest_pacing import DEFAULT_GROUP_LIMITS, GroupLimit, RestPacer
from upbit_ws.core.rest_types import (
    Account,
    ApiKeyInfo,
    DayCandle,
    MarketInfo,
    MinuteCandle,
    PeriodCandle,
    RestOrder,
    RestOrderbook,
    RestTicker,
    SecondCandle,
    TradeTick,
    decode_rest,
)
from upbit_ws.simulator import ManualClock, Simulator, SimulatorConfig

VECTORS = Path(__file__).parent.parent / "vectors" / "rest.jsonl"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0) as sim:
        yield sim


@pytest.fixture
async def rest(sim: Simulator) -> AsyncIterator[RestClient]:
    async with RestClient(sim.url, credentials=Credentials(*sim.credentials)) as rest:
        yield rest


async def test_market_all_lists_krw_btc_usdt(rest: RestClient) -> None:
    """The market list has about 200 KRW markets plus BTC- and USDT- ones, with details."""
    markets = await rest.market_all(is_details=True)
    codes = {m.market for m in markets}
    assert "KRW-BTC" in codes and "KRW-ETH" in codes
    assert sum(code.startswith("KRW-") for code in codes) >= 150
    assert any(code.startswith("BTC-") for code in codes)
    assert any(code.startswith("USDT-") for code in codes)
    assert all(m.market_event is not None for m in markets)
    assert "Remaining-Req" not in rest.remaining  # stored by group name, not header name
    assert "market" in rest.remaining


async def test_api_keys_and_accounts_are_signed(rest: RestClient, sim: Simulator) -> None:
    """Signed calls pass the simulator's JWT check and return typed, exact values."""
    keys = await rest.api_keys()
    assert [k.access_key for k in keys] == [sim.credentials[0]]
    accounts = await rest.accounts()
    krw = next(a for a in accounts if a.currency == "KRW")
    assert isinstance(krw.balance, Decimal) and krw.balance > 0


async def test_signed_query_with_array_params(rest: RestClient) -> None:
    """A signed query with `states[]` arrays carries a query_hash the server accepts."""
    assert await rest.open_orders(market="KRW-BTC", states=["wait", "watch"]) == []


async def test_order_roundtrip(rest: RestClient) -> None:
    """A limit order far from the market rests, is listed open, then cancelled."""
    markets = {m.market for m in await rest.market_all()}
    assert "KRW-BTC" in markets
    placed = await rest.place_order(
        market="KRW-BTC", side="bid", ord_type="limit", volume="0.01", price="10000000"
    )
    assert placed.state == "wait" and placed.side == "bid"
    opened = await rest.open_orders(market="KRW-BTC")
    assert [o.uuid for o in opened] == [placed.uuid]
    fetched = await rest.order(uuid=placed.uuid)
    assert fetched.uuid == placed.uuid
    await rest.cancel_order(uuid=placed.uuid)
    assert await rest.open_orders(market="KRW-BTC") == []


async def test_trades_ticks_newest_first(rest: RestClient, sim: Simulator) -> None:
    """Trade ticks come newest first with integer sequential ids."""
    ticks = await rest.trades_ticks("KRW-BTC", count=5)
    assert ticks, "the simulator seeds recent trades"
    stamps = [t.timestamp for t in ticks]
    assert stamps == sorted(stamps, reverse=True)
    assert all(isinstance(t.sequential_id, int) for t in ticks)


async def test_wrong_secret_is_auth_error_without_secret(sim: Simulator) -> None:
    """A bad signature raises AuthError naming Upbit's error, never echoing the secret."""
    bad = Credentials(sim.credentials[0], "not-the-secret-0123456789")
    async with RestClient(sim.url, credentials=bad) as rest:
        with pytest.raises(AuthError) as info:
            await rest.accounts()
    assert info.value.status == 401 and info.value.name
    assert "not-the-secret" not in str(info.value)


async def test_revoked_key_is_auth_error(rest: RestClient, sim: Simulator) -> None:
    """A revoked key makes signed calls fail with AuthError."""
    sim.revoke_key()
    with pytest.raises(AuthError):
        await rest.api_keys()
    sim.restore_key()
    assert await rest.api_keys()


async def test_unknown_market_is_unknown_code_error(rest: RestClient) -> None:
    """An unlisted market raises UnknownCodeError naming close matches, like subscribe."""
    with pytest.raises(UnknownCodeError) as info:
        await rest.trades_ticks("KRW-BTX", count=1)
    assert info.value.code == "KRW-BTX"
    assert "KRW-BTC" in info.value.suggestions
    # Once the list is known, the next typo is caught before any request.
    before = rest.statistics().sent
    with pytest.raises(UnknownCodeError):
        await rest.ticker(["krw-btc", "KRW-BTX"])
    assert rest.statistics().sent == before + 1  # one refresh of the list, no ticker call


async def test_codes_are_normalised_like_subscribe(rest: RestClient, sim: Simulator) -> None:
    """Lower-case codes work (issue 15: candles_minutes(1, "krw-btc")); malformed ones fail."""
    candles = await rest.candles_minutes(1, "krw-btc", count=2)
    assert candles and all(c.market == "KRW-BTC" for c in candles)
    requests = sim.rest_requests
    with pytest.raises(InvalidInputError, match="QUOTE-BASE"):
        await rest.ticker("btc")
    with pytest.raises(InvalidInputError, match="count"):
        await rest.candles_days("KRW-BTC", count=201)
    assert sim.rest_requests == requests  # refused before any request


async def test_private_call_without_credentials_says_what_to_do(sim: Simulator) -> None:
    """A private call without credentials explains how to provide them."""
    async with RestClient(sim.url) as rest:
        with pytest.raises(InvalidInputError, match="UPBIT_ACCESS_KEY"):
            await rest.accounts()


def test_remaining_req_parsing() -> None:
    """Remaining-Req headers parse generically, whatever the group is called."""
    parsed = parse_remaining_req("group=crix-trades; min=600; sec=9")
    assert parsed is not None
    assert (parsed.group, parsed.per_second, parsed.per_minute) == ("crix-trades", 9, 600)
    assert parse_remaining_req("nonsense") is None


REST_KINDS: dict[str, object] = {
    "/v1/market/all": list[MarketInfo],
    "/v1/trades/ticks": list[TradeTick],
    "/v1/accounts": list[Account],
    "/v1/orders/open": list[RestOrder],
    "/v1/orders/uuids": list[RestOrder],
    "/v1/order": RestOrder,
    "/v1/api_keys": list[ApiKeyInfo],
}


def _walk(value: object, path: str) -> object:
    for part in path.split("."):
        if part == "#":
            assert isinstance(value, list | tuple)
            return len(value)
        value = value[int(part)] if isinstance(value, list | tuple) else getattr(value, part)
    return value


def _rest_vectors() -> list[dict[str, object]]:
    rows = [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]
    picked = []
    for row in rows:
        endpoint = str(row.get("endpoint", ""))
        path = endpoint.split()[1].split("?")[0] if " " in endpoint else ""
        if row.get("status") == 200 and path in REST_KINDS:
            row["kind"] = REST_KINDS[path]
            picked.append(row)
    return picked


@pytest.mark.parametrize("row", _rest_vectors(), ids=lambda r: str(r["id"]))
def test_rest_vectors_decode(row: dict[str, object]) -> None:
    """Real REST bodies decode into our types with the fields a correct decoder reads."""
    decoded = decode_rest(str(row["body"]).encode(), row["kind"])  # type: ignore[call-overload]
    expect = row["expect"]
    assert isinstance(expect, dict)
    for path, wanted in expect.items():
        got = _walk(decoded, path) if path != "#" else len(decoded)
        if isinstance(got, Decimal):
            assert got == Decimal(str(wanted)), path
        else:
            assert got == wanted, path


def test_error_bodies_and_retry_after_parse_in_one_place() -> None:
    """Upbit error bodies (numeric names too) and Retry-After parse the same for REST and WS."""
    from upbit_ws.core.rest_types import parse_retry_after, read_error_body

    body = b'{"error":{"name":404,"message":"Code not found"}}'
    assert read_error_body(body) == ("404", "Code not found")
    assert read_error_body(b'{"error":{"message":"no name"}}') is None
    assert read_error_body(b"<html>bad gateway</html>") is None
    assert [parse_retry_after(v) for v in ("3", "0.5", "-1", "nan", "soon", None)] == [
        3.0,
        0.5,
        None,
        None,
        None,
        None,
    ]


async def test_ticker_is_the_models_current_ticker(rest: RestClient, sim: Simulator) -> None:
    """GET /v1/ticker for several markets returns typed tickers at the model's last price."""
    tickers = await rest.ticker(["krw-btc", "KRW-ETH", "KRW-BTC"])
    assert [t.market for t in tickers] == ["KRW-BTC", "KRW-ETH"]
    btc = tickers[0]
    state = sim.model.states["KRW-BTC"]
    assert isinstance(btc, RestTicker) and isinstance(btc.trade_price, float)
    assert btc.trade_price == state.last_price / 100_000_000
    assert btc.change in ("RISE", "EVEN", "FALL")
    assert len(btc.trade_date_kst) == 8 and len(btc.trade_time) == 6


async def test_orderbook_snapshot_depth_and_level(rest: RestClient, sim: Simulator) -> None:
    """The book snapshot has the asked depth; an unsupported level is an error, not silence."""
    (book,) = await rest.orderbook("krw-btc", count=5)
    assert isinstance(book, RestOrderbook) and book.market == "KRW-BTC"
    assert len(book.units) == 5 and book.level == 0
    best_ask = sim.model.states["KRW-BTC"].asks[0][0] / 100_000_000
    assert book.units[0].ask_price == best_ask
    assert book.units[0].bid_price < book.units[0].ask_price
    with pytest.raises(InvalidInputError, match="level"):
        await rest.orderbook("KRW-BTC", level=7)
    with pytest.raises(InvalidInputError, match="count"):
        await rest.orderbook("KRW-BTC", count=31)
    # Upbit answers these with a bare HTTP 400; said here instead, with what to give.
    for level in ("x", "nan", "-1", float("inf")):
        with pytest.raises(InvalidInputError, match="0 or a positive number"):
            await rest.orderbook("KRW-BTC", level=level)
    assert (await rest.orderbook("KRW-BTC", level="0"))[0].level == 0


async def test_candles_of_every_period(rest: RestClient) -> None:
    """Seconds, minutes, days, weeks and months candles decode, newest first, one market."""
    seconds = await rest.candles_seconds("KRW-BTC", count=3)
    minutes = await rest.candles_minutes(60, "KRW-BTC", count=2)
    days = await rest.candles_days("KRW-BTC", count=2)
    weeks = await rest.candles_weeks("KRW-BTC")
    months = await rest.candles_months("KRW-BTC")
    for kind, candles in [
        (SecondCandle, seconds),
        (MinuteCandle, minutes),
        (DayCandle, days),
        (PeriodCandle, weeks),
        (PeriodCandle, months),
    ]:
        assert candles and all(isinstance(c, kind) and c.market == "KRW-BTC" for c in candles)
        times = [c.candle_date_time_utc for c in candles]
        assert times == sorted(times, reverse=True)
    (ticker,) = await rest.ticker("KRW-BTC")
    assert days[0].trade_price == ticker.trade_price
    assert days[0].prev_closing_price == ticker.prev_closing_price
    assert weeks[0].first_day_of_period <= days[0].candle_date_time_utc[:10]
    assert months[0].first_day_of_period.endswith("-01")
    with pytest.raises(InvalidInputError, match="naive"):
        await rest.candles_days("KRW-BTC", to=datetime(2026, 1, 1))
    with pytest.raises(InvalidInputError, match="ISO 8601 text such as"):
        await rest.candles_days("KRW-BTC", to="yesterday")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert len(await rest.candles_days("KRW-BTC", to=tomorrow, count=1)) == 1  # Upbit's spelling
    with pytest.raises(InvalidInputError, match="days_ago must be an int from 1 to 7"):
        await rest.trades_ticks("KRW-BTC", days_ago=8)


async def test_pacing_keeps_under_the_servers_limit() -> None:
    """Twelve calls against a 3-per-second group: the client waits, the server never says 429."""
    async with Simulator(port=0, krw_markets=20, rest_quotation_per_second=3) as sim:
        async with RestClient(sim.url) as rest:
            for _ in range(12):
                await rest.market_all()
            stats = rest.statistics()
        assert sim.statistics().rest_rate_limited == 0
        assert stats.sent == 12 and stats.waits >= 2 and stats.refused == 0
        assert stats.remaining["market"].per_second < 3


async def test_a_refused_group_is_held_back() -> None:
    """After a 429 the pacer holds that group back instead of hammering the server."""
    async with (
        Simulator(port=0, krw_markets=20, rest_quotation_per_second=1) as limited,
        RestClient(limited.url) as first,
        RestClient(limited.url) as second,
    ):
        await first.market_all()
        with pytest.raises(RateLimitedError):
            await second.market_all()  # its pacer had not seen the budget spent
        await second.market_all()  # waits out the block, then succeeds
        assert second.statistics().refused == 1 and second.statistics().waits >= 1


async def test_closed_orders_since_pages_past_the_limit() -> None:
    """More closed orders than one page, some within one second: each returned exactly once."""
    config = SimulatorConfig(
        krw_markets=20, btc_markets=3, usdt_markets=3, rest_order_per_second=None
    )
    pacer = RestPacer({**DEFAULT_GROUP_LIMITS, "order": GroupLimit(1000)})
    async with (
        Simulator(config, clock=ManualClock(config.start_time)) as sim,
        RestClient(sim.url, credentials=Credentials(*sim.credentials), pacer=pacer) as rest,
    ):
        start = datetime.fromtimestamp(config.start_time, UTC)
        placed: list[str] = []
        for batch in (9, 9, 9, 30):  # the last 30 share one second: more than a page
            for _ in range(batch):
                order = await rest.place_order(
                    market="KRW-BTC", side="bid", ord_type="price", price="10000"
                )
                placed.append(order.uuid)
            await sim.advance(1.0)
        found = await rest.closed_orders_since(
            start, end=start + timedelta(seconds=10), page_size=20
        )
        assert sorted(o.uuid for o in found) == sorted(placed)
        created = [o.created_at for o in found]
        assert created == sorted(created)
        with pytest.raises(InvalidInputError, match="page_size"):
            await rest.closed_orders_since(start, page_size=5)


async def test_orderbook_instruments_say_which_levels_work(rest: RestClient) -> None:
    """Instruments list each market's tick and levels; a listed level gives a grouped book."""
    btc, usdt = await rest.orderbook_instruments(["krw-btc", "USDT-BTC"])
    assert btc.market == "KRW-BTC" and btc.quote_currency == "KRW" and btc.tick_size > 0
    assert btc.supports(0) and not btc.supports(7)
    assert len(btc.supported_levels) > 1
    assert usdt.supported_levels == (0,) and not usdt.supports(btc.supported_levels[-1])
    level = btc.supported_levels[1]
    (book,) = await rest.orderbook("KRW-BTC", level=float(level), count=3)
    assert book.level == float(level)
    assert all(u.ask_price % float(level) == 0 for u in book.units)


#: 2026-07-30 00:00:20 UTC; with a minute of history the simulator's trades span two UTC days.
_AFTER_MIDNIGHT = 1_785_369_620.0


async def test_backfill_paging_crosses_utc_midnight() -> None:
    """A gap that began before midnight is read from both days (/v1/trades/ticks is per day).

    300 trades/s over the 80 s of history and start give pages of 500 on both sides of the
    day's boundary; every recorded trade from the start on comes back exactly once.
    """
    config = SimulatorConfig(
        krw_markets=5, btc_markets=1, usdt_markets=1, busy_markets=1, trades_per_second=300.0,
        start_time=_AFTER_MIDNIGHT, history_seconds=60.0, trade_history=50_000,
    )  # fmt: skip
    async with (
        Simulator(config, clock=ManualClock(config.start_time)) as sim,
        RestClient(sim.url) as rest,
    ):
        start_ms = (_AFTER_MIDNIGHT - 25.0) * 1000.0  # 23:59:55 the day before
        ticks, reached = await _trades_since(rest, "KRW-BTC", start_ms, _AFTER_MIDNIGHT * 1000.0)
        recorded = [t for t in sim.model.states["KRW-BTC"].trades if t.timestamp >= start_ms]
        assert reached
        assert len(recorded) > 2 * 500, "the test needs more than a page on each side"
        assert sorted(t.sequential_id for t in ticks) == sorted(t.sequential_id for t in recorded)
        days = {t.trade_date_utc for t in ticks}
        assert days == {"2026-07-29", "2026-07-30"}
