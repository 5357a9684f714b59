"""Rate limits of section 8: connects (429, then 418 with a growing block) and messages."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import InvalidStatus

from tests.simulator.conftest import MakeSim
from tests.simulator.helpers import client, recv_json, request
from upbit_ws.simulator import Simulator
from upbit_ws.simulator.limits import ConnectLimiter, SlidingWindow

LIST = request({"ticket": "t"}, {"method": "LIST_SUBSCRIPTIONS"})


def test_connect_limiter_escalates_and_doubles_block() -> None:
    """Excess handshakes get 429, then 418 with a block that doubles on each repeat."""
    limiter = ConnectLimiter(
        per_second=2, window=1.0, strikes_before_block=2, block=1.0, block_max=60.0, memory=30.0
    )
    statuses = [limiter.check(0.0).status for _ in range(5)]
    assert statuses == [101, 101, 429, 429, 418]
    assert limiter.check(0.5).status == 418
    first = [limiter.check(1.5).status for _ in range(5)]
    assert first == [101, 101, 429, 429, 418]
    blocked = limiter.check(1.6)
    assert blocked.status == 418 and blocked.blocked_for == pytest.approx(1.9)


def test_sliding_window_counts_and_forgets() -> None:
    """A window allows `limit` events per `window` seconds and forgets old ones."""
    window = SlidingWindow(2, 1.0)
    assert window.hit(0.0) and window.hit(0.1) and not window.hit(0.2)
    assert window.remaining(0.5) == 0
    assert window.hit(1.05)
    assert SlidingWindow(None, 1.0).remaining(0.0) is None


async def _status(sim: Simulator) -> int:
    try:
        async with client(sim.ws_url):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_connect_limit_on_handshake(make_sim: MakeSim) -> None:
    """Past the connect limit (3 here; Upbit's is 5/s) the upgrade gets 429, then 418 (8.1)."""
    async with make_sim(
        connect_per_second=3, rate_window_second=30.0, connect_429s_before_block=1
    ) as sim:
        statuses = [await _status(sim) for _ in range(6)]
        assert statuses == [101, 101, 101, 429, 418, 418]
        refused = sim.statistics().connections_refused
        assert refused == {"429": 1, "418": 2}


async def test_connect_limit_disabled(make_sim: MakeSim) -> None:
    """connect_per_second=None disables the handshake limit."""
    async with make_sim(connect_per_second=None) as sim:
        assert [await _status(sim) for _ in range(8)] == [101] * 8


async def test_message_limit_error_close(make_sim: MakeSim) -> None:
    """Past the message limit (2 here; Upbit's is 5/s) an error frame, then close (8.1 [UNSURE])."""
    async with (
        make_sim(messages_per_second=2, rate_window_second=30.0) as sim,
        client(sim.ws_url) as ws,
    ):
        for _ in range(3):
            await ws.send(LIST)
        assert "method" in await recv_json(ws)
        assert "method" in await recv_json(ws)
        error = await recv_json(ws)
        assert error["error"]["name"] == "TOO_MANY_REQUEST"
        await ws.wait_closed()
        assert ws.close_code == 1000
        assert sim.statistics().messages_over_limit == 1


async def test_message_limit_per_minute_and_drop_mode(make_sim: MakeSim) -> None:
    """The per-minute limit applies too; 'drop' ignores the excess frame and stays open."""
    async with (
        make_sim(
            messages_per_second=None,
            messages_per_minute=2,
            message_excess="drop",
            status_interval=0.05,
        ) as sim,
        client(sim.ws_url) as ws,
    ):
        for _ in range(3):
            await ws.send(LIST)
        await ws.send("PING")  # text PING does not count by default (section 14 q5)
        frames = [await recv_json(ws) for _ in range(3)]
        assert ["method" in f for f in frames] == [True, True, False]
        assert frames[2] == {"status": "UP"}


async def test_message_limit_ignore_mode(make_sim: MakeSim) -> None:
    """'ignore' counts the excess but serves it anyway."""
    async with (
        make_sim(messages_per_second=1, rate_window_second=30.0, message_excess="ignore") as sim,
        client(sim.ws_url) as ws,
    ):
        for _ in range(3):
            await ws.send(LIST)
        frames = [await recv_json(ws) for _ in range(3)]
        assert all("method" in f for f in frames)
        await asyncio.sleep(0)
        assert sim.statistics().messages_over_limit == 2
