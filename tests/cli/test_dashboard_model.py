"""The dashboard's model and renderers, without Textual: what the panels are drawn from."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("rich")

from upbit_ws.cli.dashboard.model import (
    CANDLES_SHOWN,
    ConnectionStatus,
    DashboardModel,
    sort_codes,
)
from upbit_ws.cli.dashboard.render import (
    FALL,
    RISE,
    _bar,
    change_text,
    connection_text,
    price_text,
    volume_text,
)
from upbit_ws.core.events import ConnectionStateChanged
from upbit_ws.core.messages import Candle, Ticker


def ticker(
    code: str,
    *,
    signed_change_rate: float = 0.0,
    trade_price: float = 100.0,
    acc_trade_price_24h: float = 1e9,
) -> Ticker:
    """Return a ticker with the fields the coin list shows."""
    return Ticker(
        code=code,
        opening_price=trade_price,
        high_price=trade_price,
        low_price=trade_price,
        trade_price=trade_price,
        prev_closing_price=trade_price,
        change="RISE" if signed_change_rate > 0 else "FALL" if signed_change_rate < 0 else "EVEN",
        change_price=0.0,
        signed_change_price=0.0,
        change_rate=abs(signed_change_rate),
        signed_change_rate=signed_change_rate,
        trade_volume=1.0,
        acc_trade_volume=1.0,
        acc_trade_price=trade_price,
        trade_date="20260730",
        trade_time="070000",
        trade_timestamp=0,
        ask_bid="BID",
        acc_ask_volume=0.0,
        acc_bid_volume=1.0,
        timestamp=0,
        acc_trade_price_24h=acc_trade_price_24h,
    )


def candle(code: str, *, kst: str = "2026-07-30T16:00:00", trade_price: float = 100.0) -> Candle:
    """Return a 1-minute candle of ``code`` for the minute ``kst``."""
    return Candle(
        type="candle.1m",
        code=code,
        candle_date_time_utc=kst,
        candle_date_time_kst=kst,
        opening_price=10.0,
        high_price=max(10.0, trade_price),
        low_price=min(10.0, trade_price),
        trade_price=trade_price,
        candle_acc_trade_volume=1.0,
        candle_acc_trade_price=1.0,
        timestamp=0,
    )


def changed(at: float, old: Any, new: Any, reason: str = "") -> ConnectionStateChanged:
    """Return a public state change event."""
    return ConnectionStateChanged(
        at=at, connection="public", old=old, new=new, reason=reason, attempt=1
    )


def test_recovery_time_runs_from_leaving_open_to_open_again() -> None:
    """open -> reconnecting -> connecting -> open: recovered_in is the outage, logged once."""
    model = DashboardModel(selected="KRW-BTC")
    model.on_event(changed(1.0, "connecting", "open"))
    assert model.connection("public").recovered_in is None
    model.on_event(changed(5.0, "open", "reconnecting", "1006"))
    model.on_event(changed(5.1, "reconnecting", "connecting"))
    model.on_event(changed(5.25, "connecting", "open"))
    status = model.connection("public")
    assert status.state == "open"
    assert status.recovered_in == pytest.approx(0.25)
    assert "public open -> reconnecting (1006)" in model.log[-3]
    assert model.log[-1].endswith("public connecting -> open after 250 ms")


def test_a_probe_is_not_an_outage() -> None:
    """open -> degraded -> open (a silence probe answered) is no recovery to report."""
    model = DashboardModel(selected="KRW-BTC")
    model.on_event(changed(1.0, "open", "degraded", "no data"))
    model.on_event(changed(1.2, "degraded", "open"))
    assert model.connection("public").recovered_in is None


def test_an_outage_under_way_shows_its_length_and_the_next_try() -> None:
    down = ConnectionStatus(
        "public", state="reconnecting", down_for=43.2, retry_in=12.5, network_watch=True
    )
    line = connection_text(down, now=100.0, latency_ms=None).plain
    assert "down 43.2 s, next try in 12.5 s or when the network is back" in line
    connecting = ConnectionStatus("public", state="connecting", down_for=43.9)
    line = connection_text(connecting, now=100.0, latency_ms=None).plain
    assert "down 43.9 s" in line and "next try" not in line
    healthy = ConnectionStatus("public", state="open")
    assert "down" not in connection_text(healthy, now=100.0, latency_ms=2.0).plain


def test_only_the_selected_coins_candles_are_drawn_and_the_newest_kept() -> None:
    """Candles of another code are ignored; one bar per minute, at most CANDLES_SHOWN."""
    model = DashboardModel(selected="KRW-ETH")
    model.add_candle(candle("KRW-BTC"))
    assert not model.bars
    for minute in range(CANDLES_SHOWN + 5):
        hhmm = f"{minute // 60:02d}:{minute % 60:02d}"
        for price in (10.0, 12.0):
            model.add_candle(candle("KRW-ETH", kst=f"2026-01-01T{hhmm}:00", trade_price=price))
    bars = model.chart_bars()
    assert len(bars) == CANDLES_SHOWN
    assert bars[-1].minute == "2026-01-01T00:44" and bars[-1].close == 12.0
    model.select("KRW-XRP")
    assert model.bars == {} and model.book is None


def test_sort_orders() -> None:
    """change, volume and price sort largest first; code sorts A-Z."""
    tickers = {
        "KRW-A": ticker("KRW-A", signed_change_rate=0.01, trade_price=5.0, acc_trade_price_24h=3.0),
        "KRW-B": ticker("KRW-B", signed_change_rate=0.03, trade_price=1.0, acc_trade_price_24h=1.0),
        "KRW-C": ticker(
            "KRW-C", signed_change_rate=-0.02, trade_price=9.0, acc_trade_price_24h=2.0
        ),
    }
    assert sort_codes(tickers, "change") == ["KRW-B", "KRW-A", "KRW-C"]
    assert sort_codes(tickers, "volume") == ["KRW-A", "KRW-C", "KRW-B"]
    assert sort_codes(tickers, "price") == ["KRW-C", "KRW-A", "KRW-B"]
    assert sort_codes(tickers, "code") == ["KRW-A", "KRW-B", "KRW-C"]


def test_frames_per_second_over_the_last_two_seconds() -> None:
    """The public frame counter sampled over time gives the rate; the age restarts on a move."""
    model = DashboardModel(selected="KRW-BTC")
    for i in range(11):
        model.sample_frames(10.0 + i * 0.25, "public", 100 * i, 0)
    assert model.frames_per_second() == pytest.approx(400.0)
    model.sample_frames(13.0, "public", 1000, 0)
    assert model.connection("public").last_frame_at == 12.5


def test_formats() -> None:
    """Prices keep their tick's decimals, values read in 억, a rise is red and a fall blue."""
    assert price_text(110_835_000) == "110,835,000"
    assert price_text(410.2) == "410.2"
    assert price_text(12.34) == "12.34"
    assert price_text(0.02078) == "0.02078"
    assert price_text(None) == "-"
    assert volume_text(1_223_900_000_00) == "1,223.9억"
    assert volume_text(5_000_000) == "5백만"
    assert str(change_text(ticker("KRW-A", signed_change_rate=0.0123)).style) == RISE
    assert str(change_text(ticker("KRW-A", signed_change_rate=-0.01)).style) == FALL


def test_depth_bars_are_bounded_and_keep_thin_levels_visible() -> None:
    """The biggest size fills the width; a size 1/100 of it still shows (square-root scale)."""
    assert _bar(50.0, 50.0, 6) == "██████"
    assert 0 < len(_bar(0.5, 50.0, 6)) <= 6
    assert _bar(0.0, 50.0, 6) == ""
