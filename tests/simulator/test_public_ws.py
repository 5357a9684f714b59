"""Public WebSocket over real sockets, checked against docs/protocol.md sections 2-7."""

from __future__ import annotations

import asyncio
import itertools
import math

import aiohttp
import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from tests.simulator.conftest import MakeSim
from tests.simulator.helpers import (
    client,
    closed_without_frame,
    recv_json,
    recv_until,
    request,
    settle,
)
from upbit_ws.simulator import Simulator

T = {"ticket": "test"}


async def test_docs_example_with_plain_websockets_client(sim: Simulator) -> None:
    """The docs' example request gets binary DEFAULT frames, snapshots first, for each type."""
    async with client(sim.ws_url) as ws:
        await ws.send(
            request(
                {"ticket": "test-1"},
                {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]},
                {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True},
                {"type": "orderbook", "codes": ["KRW-BTC.15"], "level": 10000},
                {"type": "candle.1m", "codes": ["KRW-BTC"]},
                {"format": "DEFAULT"},
            )
        )
        snapshots = [await recv_json(ws) for _ in range(4)]
        assert [(f["type"], f["code"]) for f in snapshots] == [
            ("ticker", "KRW-BTC"),
            ("ticker", "KRW-ETH"),
            ("orderbook", "KRW-BTC"),
            ("candle.1m", "KRW-BTC"),
        ]
        assert all(f["stream_type"] == "SNAPSHOT" for f in snapshots)
        book = snapshots[2]
        assert len(book["orderbook_units"]) == 15 and book["level"] == 10000
        # KRW-BTC's book is deep: 15 real buckets of 10,000 KRW, no zero padding (4.3 sample).
        units = book["orderbook_units"]
        assert all(u["ask_price"] and u["bid_price"] for u in units)
        assert all(u["ask_size"] > 0 and u["bid_size"] > 0 for u in units)
        asks = [u["ask_price"] for u in units]
        bids = [u["bid_price"] for u in units]
        assert all(p % 10000 == 0 for p in asks + bids)
        assert asks == sorted(set(asks)) and bids == sorted(set(bids), reverse=True)
        ticker = snapshots[0]
        for key in ("trade_price", "acc_trade_volume_24h", "trade_date", "change", "timestamp"):
            assert key in ticker
        assert len(ticker["trade_date"]) == 8 and len(ticker["trade_time"]) == 6
        await sim.advance(3.0)
        trade, _ = await recv_until(ws, lambda f: f["type"] == "trade")
        assert trade["stream_type"] == "REALTIME" and trade["code"] == "KRW-BTC"
        assert len(trade["trade_date"]) == 10 and trade["trade_time"][2] == ":"


async def test_only_snapshot_and_only_realtime(sim: Simulator) -> None:
    """is_only_snapshot sends one SNAPSHOT and nothing after; is_only_realtime no SNAPSHOT."""
    async with client(sim.ws_url) as ws:
        await ws.send(
            request(
                T,
                {"type": "ticker", "codes": ["KRW-BTC"], "is_only_snapshot": True},
                {"type": "trade", "codes": ["KRW-BTC"], "isOnlyRealtime": True},
            )
        )
        first = await recv_json(ws)
        assert (first["type"], first["stream_type"]) == ("ticker", "SNAPSHOT")
        await sim.advance(3.0)
        trade = await recv_json(ws)
        assert (trade["type"], trade["stream_type"]) == ("trade", "REALTIME")
        await sim.advance(3.0)
        await ws.send(request(T, {"method": "LIST_SUBSCRIPTIONS"}))
        _, before = await recv_until(ws, lambda f: "method" in f)
        assert all(f["type"] == "trade" for f in before)


async def test_new_request_replaces_subscription_and_format(sim: Simulator) -> None:
    """A second request replaces the whole set and the format (section 3)."""
    async with client(sim.ws_url) as ws:
        await ws.send(request(T, {"type": "trade", "codes": ["KRW-BTC"]}))
        assert (await recv_json(ws))["code"] == "KRW-BTC"
        await ws.send(request(T, {"type": "trade", "codes": ["KRW-ETH"]}, {"format": "SIMPLE"}))
        snapshot, _ = await recv_until(ws, lambda f: f.get("st") == "SNAPSHOT")
        assert snapshot["cd"] == "KRW-ETH" and snapshot["ty"] == "trade"
        await sim.advance(5.0)
        await ws.send(request(T, {"method": "LIST_SUBSCRIPTIONS"}))
        listed, frames = await recv_until(ws, lambda f: "mthd" in f)
        assert frames and all(f["cd"] == "KRW-ETH" for f in frames)
        assert listed == {
            "mthd": "LIST_SUBSCRIPTIONS",
            "rslt": [{"ty": "trade", "cds": ["KRW-ETH"]}],
            "tckt": "test",
        }


async def test_list_subscriptions_default_keys_and_no_replace(sim: Simulator) -> None:
    """LIST_SUBSCRIPTIONS answers in DEFAULT keys and leaves the subscription as it was."""
    async with client(sim.ws_url) as ws:
        await ws.send(
            request(T, {"type": "orderbook", "codes": ["KRW-BTC.5"], "is_only_realtime": True})
        )
        await ws.send(
            request({"ticket": "q"}, {"method": "LIST_SUBSCRIPTIONS"}, {"format": "DEFAULT"})
        )
        listed = await recv_json(ws)
        assert listed == {
            "method": "LIST_SUBSCRIPTIONS",
            "result": [{"type": "orderbook", "codes": ["KRW-BTC"], "level": 0}],
            "ticket": "q",
        }
        await sim.advance(1.0)
        book = await recv_json(ws)
        assert book["type"] == "orderbook" and len(book["orderbook_units"]) == 5


@pytest.mark.parametrize("depth", [1, 5, 15, 30])
async def test_orderbook_depth_and_whole_books(sim: Simulator, depth: int) -> None:
    """Every orderbook frame is a whole book of N units; asks ascend and bids descend."""
    async with client(sim.ws_url) as ws:
        await ws.send(request(T, {"type": "orderbook", "codes": [f"KRW-BTC.{depth}"]}))
        for _ in range(3):
            book = await recv_json(ws)
            units = book["orderbook_units"]
            assert len(units) == depth and book["code"] == "KRW-BTC"
            asks = [u["ask_price"] for u in units]
            bids = [u["bid_price"] for u in units]
            assert asks == sorted(asks) and bids == sorted(bids, reverse=True)
            await sim.advance(1.0)


async def test_thin_book_zero_padding(make_sim: MakeSim) -> None:
    """A thin book is padded with zero units up to 30 (section 4.3)."""
    async with make_sim() as sim, client(sim.ws_url) as ws:
        thin = next(
            s.code for s in sim.model.states.values() if len(s.bids) < 30 or len(s.asks) < 30
        )
        await ws.send(request(T, {"type": "orderbook", "codes": [thin]}))
        book = await recv_json(ws)
        units = book["orderbook_units"]
        assert len(units) == 30
        assert any(u["bid_price"] == 0 or u["ask_price"] == 0 for u in units)


async def test_unknown_and_lowercase_codes_are_silent(sim: Simulator) -> None:
    """Unknown and lowercase codes give no error and no data; valid ones still flow."""
    async with client(sim.ws_url) as ws:
        await ws.send(request(T, {"type": "ticker", "codes": ["krw-btc", "KRW-NOPE", "KRW-ETH"]}))
        first = await recv_json(ws)
        assert first["code"] == "KRW-ETH"
        await sim.advance(3.0)
        await ws.send(request(T, {"method": "LIST_SUBSCRIPTIONS"}))
        listed, frames = await recv_until(ws, lambda f: "method" in f)
        assert {f["code"] for f in frames} <= {"KRW-ETH"}
        assert listed["result"] == [{"type": "ticker", "codes": ["KRW-ETH"]}]


@pytest.mark.parametrize(("fmt", "keys"), [("JSON_LIST", "type"), ("SIMPLE_LIST", "ty")])
async def test_list_formats_wrap_objects_in_arrays(sim: Simulator, fmt: str, keys: str) -> None:
    """JSON_LIST and SIMPLE_LIST frames are JSON arrays of objects (section 2.5)."""
    async with client(sim.ws_url) as ws:
        await ws.send(request(T, {"type": "ticker", "codes": ["KRW-BTC"]}, {"format": fmt}))
        frame = await recv_json(ws)
        assert isinstance(frame, list) and len(frame) == 1 and keys in frame[0]


def _next_tick(now: float, interval: float) -> float:
    """Return the first multiple of ``interval`` after ``now`` (the server's status tick)."""
    return (math.floor(now / interval) + 1) * interval


async def test_text_ping_starts_one_status_cycle_on_the_server_tick(make_sim: MakeSim) -> None:
    """PING starts one {"status":"UP"} cycle on the server's next tick; more PINGs add none (6)."""
    interval = 0.2
    async with make_sim(status_interval=interval) as sim, client(sim.ws_url) as ws:
        loop = asyncio.get_running_loop()
        start = loop.time()  # before the PINGs: the cycle starts at or after it
        for _ in range(5):
            await ws.send("PING")
        await settle(sim, 5)
        conn = sim.connections()[0]
        assert await recv_json(ws) == {"status": "UP"}
        first_at = loop.time()
        # Not at once: on the next multiple of the interval (0.6-8.9 s after, with 10 s).
        assert first_at >= _next_tick(start, interval)
        if first_at < _next_tick(start, interval) + interval:
            # Read before the second tick: one status for five PINGs.
            assert conn.counters.frames_by_type["status"] == 1
        assert await recv_json(ws) == {"status": "UP"}
        assert loop.time() >= _next_tick(start, interval) + interval
        assert conn.counters.dropped_blackhole == 0


async def test_status_start_immediate_answers_every_ping(make_sim: MakeSim) -> None:
    """status_start='immediate' answers each PING at once (the knob; Upbit waits for a tick)."""
    async with (
        make_sim(status_start="immediate", status_interval=1000.0) as sim,
        client(sim.ws_url) as ws,
    ):
        for _ in range(3):
            await ws.send("PING")
        # With a long period, all three replies come long before the first tick.
        frames = [await recv_json(ws) for _ in range(3)]
        assert frames == [{"status": "UP"}] * 3
        assert sim.statistics().frames_sent == {"status": 3}


async def test_protocol_ping_answered(sim: Simulator) -> None:
    """A WebSocket protocol ping gets a pong."""
    async with client(sim.ws_url) as ws:
        waiter = await ws.ping()
        async with asyncio.timeout(2):
            await waiter


async def test_error_frame_then_close_1000(make_sim: MakeSim) -> None:
    """An invalid request gets an error frame, then a close 1000 about 150 ms later (7.3)."""
    async with make_sim() as sim, client(sim.ws_url) as ws:
        await ws.send(request(T, {"type": "ticker", "codes": ["KRW-BTC"]}))
        await recv_json(ws)
        loop = asyncio.get_running_loop()
        sent = loop.time()  # before the request: the error is queued at or after it
        await ws.send("hello")
        error = await recv_json(ws)
        assert error == {"error": {"name": "WRONG_FORMAT", "message": "Format 이 맞지 않습니다."}}
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(2):
                while True:
                    await ws.recv()
        assert ws.close_code == 1000
        assert loop.time() - sent >= 0.15 - 1e-6


async def test_idle_connection_dropped_without_close_frame(make_sim: MakeSim) -> None:
    """A silent connection is dropped after idle_timeout with no close frame (1006, section 6)."""
    async with make_sim(idle_timeout=0.3) as sim:
        loop = asyncio.get_running_loop()
        start = loop.time()  # before the connect: the server's idle clock starts after it
        async with client(sim.ws_url, ping_interval=None) as ws:
            await closed_without_frame(ws)
        assert loop.time() - start >= 0.3 - 1e-6
        conns = sim.connections(include_closed=True)
        assert conns[-1].closed_reason == "idle"


async def test_inbound_pings_keep_connection_alive(make_sim: MakeSim) -> None:
    """Inbound protocol pings count as activity: the idle kill does not fire (idle_mode inbound)."""
    timeout = 0.4
    async with (
        make_sim(idle_timeout=timeout, idle_mode="inbound") as sim,
        client(sim.ws_url, ping_interval=None) as ws,
    ):
        loop = asyncio.get_running_loop()
        start = loop.time()
        while loop.time() - start < 2 * timeout:
            async with asyncio.timeout(1):
                await (await ws.ping())
            await asyncio.sleep(0.1)
        assert sim.connections()[0].open


async def test_candle_frames_at_most_once_per_second(make_sim: MakeSim) -> None:
    """candle.* REALTIME frames go out at most once per second per code (section 4.4)."""
    async with make_sim(trades_per_second=40.0) as sim, client(sim.ws_url) as ws:
        await ws.send(
            request(T, {"type": "candle.1s", "codes": ["KRW-BTC"], "is_only_realtime": True})
        )
        await settle(sim, 1)
        await sim.advance(6.0)
        await ws.send(request(T, {"method": "LIST_SUBSCRIPTIONS"}))
        _, frames = await recv_until(ws, lambda f: "method" in f)
        stamps = [f["timestamp"] for f in frames]
        assert 3 <= len(stamps) <= 6
        assert all(b - a >= 1000 for a, b in itertools.pairwise(stamps))


async def test_private_type_on_public_path(sim: Simulator) -> None:
    """myOrder on /websocket/v1 is refused with INVALID_AUTH (private types need /private)."""
    async with client(sim.ws_url) as ws:
        await ws.send(request(T, {"type": "myOrder"}))
        error = await recv_json(ws)
        assert error["error"]["name"] == "INVALID_AUTH"


async def test_number_spellings_mix(make_sim: MakeSim) -> None:
    """DEFAULT frames mix spellings: 8-decimal candles, trailing .0, Java exponents."""
    async with make_sim(trades_per_second=40.0) as sim, client(sim.ws_url) as ws:
        await ws.send(
            request(
                T,
                {"type": "ticker", "codes": ["KRW-BTC"]},
                {"type": "candle.1m", "codes": ["KRW-BTC"]},
            )
        )
        await sim.advance(10.0)
        raw = b""
        async with asyncio.timeout(3):
            while not (b"E8" in raw and b".00000000" in raw and b"0.0," in raw):
                data = await ws.recv()
                assert isinstance(data, bytes)
                raw += data


async def test_docs_example_with_plain_aiohttp_client(sim: Simulator) -> None:
    """A plain aiohttp client, as a new user would write it, gets binary DEFAULT frames."""
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.ws_url) as ws:
        await ws.send_str('[{"ticket":"test"},{"type":"ticker","codes":["KRW-BTC"]}]')
        msg = await ws.receive(timeout=2)
        assert msg.type == aiohttp.WSMsgType.BINARY
        frame = orjson.loads(msg.data)
        assert (frame["type"], frame["code"], frame["stream_type"]) == (
            "ticker",
            "KRW-BTC",
            "SNAPSHOT",
        )
