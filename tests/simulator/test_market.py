"""The market model: seeded, chunk-independent, Upbit-shaped listings, books and candles."""

from __future__ import annotations

import itertools

from upbit_ws.simulator import SimulatorConfig
from upbit_ws.simulator.listing import PRICE_SCALE, build_listing, tick_units
from upbit_ws.simulator.market import CANDLE_UNITS, Candle, MarketModel, Trade


def _everything(_type: str, _code: str) -> bool:
    return True


def _run(cfg: SimulatorConfig, steps: list[float]) -> list[object]:
    model = MarketModel(cfg, start=cfg.start_time)
    events: list[object] = []
    for t in steps:
        events += model.advance_to(cfg.start_time + t, _everything)
    return events


def test_same_seed_same_events_however_chunked() -> None:
    """The same seed and simulated time give the same events, in one step or many."""
    cfg = SimulatorConfig(krw_markets=30, btc_markets=3, usdt_markets=3)
    one = _run(cfg, [5.0])
    many = _run(cfg, [0.1 * k for k in range(1, 51)])
    assert one == many
    assert len(one) > 50


def test_different_seed_different_walk() -> None:
    """Another seed gives another random walk."""
    cfg = SimulatorConfig(krw_markets=30, btc_markets=3, usdt_markets=3)
    assert _run(cfg, [3.0]) != _run(cfg.replace(seed=1), [3.0])


def test_listing_has_real_krw_markets_and_other_quotes() -> None:
    """About 200 KRW markets with real tickers first, plus BTC- and USDT- markets."""
    listing = build_listing(krw=200, btc=30, usdt=20)
    markets = [m.market for m in listing]
    assert markets[:3] == ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
    assert sum(m.startswith("KRW-") for m in markets) == 200
    assert sum(m.startswith("BTC-") for m in markets) == 30
    assert sum(m.startswith("USDT-") for m in markets) == 20
    assert len(set(markets)) == len(markets)
    assert all(m.korean_name and m.english_name for m in listing)
    assert markets == [m.market for m in build_listing(krw=200, btc=30, usdt=20)]


def test_krw_tick_sizes_follow_price_bands() -> None:
    """KRW tick sizes grow with price (1,000 KRW at BTC prices, 1 KRW around 1,000)."""
    assert tick_units("KRW", 100_000_000 * PRICE_SCALE) == 1000 * PRICE_SCALE
    assert tick_units("KRW", 3_050 * PRICE_SCALE) == 1 * PRICE_SCALE
    assert tick_units("BTC", 5000) == 1


def test_books_are_ordered_and_uncrossed() -> None:
    """Asks ascend, bids descend, and the best ask is above the best bid, all along the walk."""
    cfg = SimulatorConfig(krw_markets=20, btc_markets=3, usdt_markets=3)
    model = MarketModel(cfg, start=cfg.start_time)
    for k in range(1, 40):
        model.advance_to(cfg.start_time + k * 0.25, _everything)
        for state in model.states.values():
            asks = [p for p, _ in state.asks]
            bids = [p for p, _ in state.bids]
            assert asks == sorted(asks)
            assert bids == sorted(bids, reverse=True)
            if asks and bids:
                assert asks[0] > bids[0]


def test_sequential_ids_exceed_two_to_the_53() -> None:
    """Trade ids look like Upbit's (timestamp * 10000 + n) and exceed 2**53 (section 15)."""
    cfg = SimulatorConfig(krw_markets=10, btc_markets=1, usdt_markets=1)
    model = MarketModel(cfg, start=cfg.start_time)
    model.advance_to(cfg.start_time + 2, _everything)
    trade = model.states["KRW-BTC"].last_trade
    assert trade is not None
    assert trade.sequential_id > 2**53
    assert trade.sequential_id // 10_000 == trade.timestamp


def test_candles_at_most_once_per_interval() -> None:
    """A candle type goes out at most once per candle_min_interval per code (section 4.4)."""
    cfg = SimulatorConfig(krw_markets=10, btc_markets=1, usdt_markets=1, trades_per_second=50)
    model = MarketModel(cfg, start=cfg.start_time)
    events = model.advance_to(cfg.start_time + 10, _everything)
    times = [e.timestamp for e in events if e.type == "candle.1m" and e.code == "KRW-BTC"]
    assert len(times) >= 5
    assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
    quiet = cfg.replace(trades_per_second=0.0, quiet_trades_per_second=0.0)
    model = MarketModel(quiet, start=quiet.start_time)
    events = model.advance_to(quiet.start_time + 5, _everything)
    assert not [e for e in events if e.type.startswith("candle.")]


def test_candles_only_when_changed() -> None:
    """Each candle event follows a trade of its market and differs from the one before (4.4)."""
    cfg = SimulatorConfig(krw_markets=20, btc_markets=2, usdt_markets=2, trades_per_second=3)
    model = MarketModel(cfg, start=cfg.start_time)
    events = model.advance_to(cfg.start_time + 20, _everything)
    last_trade: dict[str, Trade] = {}
    traded_since: set[tuple[str, str]] = set()
    previous: dict[tuple[str, str], object] = {}
    candles = 0
    for event in events:
        if isinstance(event.data, Trade):
            last_trade[event.code] = event.data
            traded_since.update((event.code, unit) for unit in CANDLE_UNITS)
        elif isinstance(event.data, Candle):
            key = (event.code, event.type)
            assert key in traded_since, f"{key} sent without a trade since its last frame"
            traded_since.discard(key)
            assert event.data != previous.get(key)
            previous[key] = event.data
            assert event.data.timestamp == last_trade[event.code].timestamp
            candles += 1
    assert candles > 50
    # Quiet markets go seconds without a trade, so "always resend" would have shown.
    assert len({code for code, _ in previous}) > 5


def test_unordered_sequential_ids_keep_the_walk() -> None:
    """sequential_ids='unordered' gives the same trades with ids out of order within a ms (15)."""
    cfg = SimulatorConfig(krw_markets=5, btc_markets=1, usdt_markets=1, trades_per_second=1000)
    walks = {}
    for mode in ("ordered", "unordered"):
        model = MarketModel(cfg.replace(sequential_ids=mode), start=cfg.start_time)
        model.advance_to(cfg.start_time + 1, _everything)
        walks[mode] = list(model.states["KRW-BTC"].trades)
    ordered, unordered = walks["ordered"], walks["unordered"]
    assert [(t.timestamp, t.price, t.volume) for t in ordered] == [
        (t.timestamp, t.price, t.volume) for t in unordered
    ]
    ids = [t.sequential_id for t in ordered]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    ids = [t.sequential_id for t in unordered]
    assert len(set(ids)) == len(ids)
    assert all(t.sequential_id // 10_000 == t.timestamp for t in unordered)
    assert any(
        a.timestamp == b.timestamp and a.sequential_id > b.sequential_id
        for a, b in itertools.pairwise(unordered)
    )


def test_trades_cover_one_day_before_a_time() -> None:
    """trades() returns one UTC day (the newest trade's, minus days_ago), before a time of day."""
    midnight = 1_785_369_600.0  # 2026-07-30 00:00:00 UTC
    cfg = SimulatorConfig(
        krw_markets=5, btc_markets=1, usdt_markets=1, start_time=midnight + 10, history_seconds=20
    )
    model = MarketModel(cfg, start=cfg.start_time)
    day_ms = 86_400_000
    today = model.trades("KRW-BTC", count=500)
    yesterday = model.trades("KRW-BTC", count=500, days_ago=1)
    assert today and all(t.timestamp >= midnight * 1000 for t in today)
    assert yesterday and all(t.timestamp < midnight * 1000 for t in yesterday)
    early = model.trades("KRW-BTC", count=500, before_ms=5000)
    assert early == [t for t in today if t.timestamp % day_ms < 5000]
    assert model.trades("KRW-BTC", count=500, days_ago=2) == []


def test_history_seconds_prefills_trades_and_candles() -> None:
    """history_seconds simulates the walk before the start: minute candles exist at once."""
    cfg = SimulatorConfig(krw_markets=10, btc_markets=1, usdt_markets=1, history_seconds=180.0)
    model = MarketModel(cfg, start=cfg.start_time)
    assert model.now <= cfg.start_time
    candles = model.candles("KRW-BTC", "candle.1m", count=10, to=None)
    assert len(candles) >= 3
    assert len(model.trades("KRW-BTC", count=500)) > 100
