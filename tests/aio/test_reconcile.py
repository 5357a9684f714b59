"""Private reconciliation against the simulator: events are lost, REST restores them once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.simulator.helpers import client, request, settle, token
from upbit_ws import decode
from upbit_ws.aio.reconcile import reconcile_private
from upbit_ws.aio.rest import RestClient
from upbit_ws.core.auth import Credentials
from upbit_ws.core.backoff import Backoff
from upbit_ws.core.config import BackoffConfig
from upbit_ws.core.errors import AuthError, UpbitWsError
from upbit_ws.core.messages import AssetBalance, MyAsset, MyOrder
from upbit_ws.core.reconcile import TERMINAL_STATES, Reconciler
from upbit_ws.simulator import ManualClock, Simulator, SimulatorConfig

FAST = {"krw_markets": 20, "btc_markets": 3, "usdt_markets": 3}
Private = MyOrder | MyAsset


@dataclass
class Recorder:
    """A private socket that never drops: what a perfect subscriber would have seen."""

    ws: ClientConnection
    messages: list[Private] = field(default_factory=list)
    last_frame_at: datetime | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Decode every frame into typed messages until the socket closes."""
        with suppress(ConnectionClosed):
            async for frame in self.ws:
                message = decode(frame)
                assert isinstance(message, MyOrder | MyAsset)
                self.messages.append(message)
                self.last_frame_at = datetime.now(UTC)
                self.changed.set()

    async def wait_for(self, predicate: Callable[[list[Private]], bool]) -> None:
        """Wait (bounded) until the recorded messages satisfy ``predicate``."""
        async with asyncio.timeout(5):
            while not predicate(self.messages):
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def recorder(sim: Simulator) -> AsyncIterator[Recorder]:
    """Open a private socket subscribed to myOrder and myAsset, recording in the background."""
    headers = {"Authorization": f"Bearer {token(*sim.credentials)}"}
    async with client(sim.private_ws_url, additional_headers=headers) as ws:
        before = sim.requests_received
        await ws.send(request({"ticket": "r"}, {"type": "myOrder"}, {"type": "myAsset"}))
        await settle(sim, before + 1)
        rec = Recorder(ws)
        task = asyncio.create_task(rec.run())
        try:
            yield rec
        finally:
            await ws.close()
            await task


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0, **FAST) as running:
        yield running


@pytest.fixture
async def rest(sim: Simulator) -> AsyncIterator[RestClient]:
    async with RestClient(sim.url, credentials=Credentials(*sim.credentials)) as client_:
        yield client_


async def place_mix(rest: RestClient, sim: Simulator) -> tuple[list[str], list[str]]:
    """Place market buys and sells, marketable and resting limits; cancel half the resting.

    Returns (every uuid, the uuids left resting). Resting orders sit far below the market so
    that the random walk cannot fill them while the test runs.
    """
    placed: list[str] = []
    resting: list[str] = []
    for i in range(4):
        buy = await rest.place_order(market="krw-btc", side="bid", ord_type="price", price="10000")
        sell = await rest.place_order(
            market="KRW-BTC", side="ask", ord_type="market", volume="0.0002"
        )
        ask = Decimal(sim.model.states["KRW-BTC"].asks[0][0]) / Decimal(100_000_000)
        taker = await rest.place_order(
            market="KRW-BTC", side="bid", ord_type="limit", volume="0.0001", price=f"{ask:f}"
        )
        rests = await rest.place_order(
            market="KRW-BTC", side="bid", ord_type="limit", volume="0.001", price="10000000"
        )
        placed += [buy.uuid, sell.uuid, taker.uuid, rests.uuid]
        if i % 2:
            await rest.cancel_order(uuid=rests.uuid)
        else:
            resting.append(rests.uuid)
    return placed, resting


def settled(placed: list[str], resting: list[str]) -> Callable[[list[Private]], bool]:
    """Return a predicate: every placed order has reached its final state in the recording."""

    def done(messages: list[Private]) -> bool:
        final = {
            m.uuid
            for m in messages
            if isinstance(m, MyOrder) and (m.state in TERMINAL_STATES or m.uuid in resting)
        }
        return final >= set(placed)

    return done


def order_keys(messages: list[Private]) -> list[tuple[str, str, str | None]]:
    """Return the (uuid, state, trade_uuid) of every order event, in order."""
    return [(m.uuid, m.state, m.trade_uuid) for m in messages if isinstance(m, MyOrder)]


def last_balances(messages: list[Private]) -> dict[str, tuple[Decimal, Decimal]]:
    """Return the last (balance, locked) per currency the messages show."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for m in messages:
        if isinstance(m, MyAsset):
            for row in m.assets:
                out[row.currency] = (row.balance, row.locked)
    return out


async def rest_balances(rest: RestClient) -> dict[str, tuple[Decimal, Decimal]]:
    """Return the balances ``GET /v1/accounts`` reports."""
    return {a.currency: (a.balance, a.locked) for a in await rest.accounts()}


def check_against_truth(truth: list[Private], delivered: list[Private]) -> None:
    """No event twice; every fill and final state of the truth delivered; each order shown."""
    got = order_keys(delivered)
    assert len(got) == len(set(got)), "an order event was delivered twice"
    wanted = {k for k in order_keys(truth) if k[1] != "wait"}
    assert wanted <= set(got), f"missed: {sorted(wanted - set(got))}"
    assert {k[0] for k in order_keys(truth)} == {k[0] for k in got}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_dropped_events_are_rebuilt_once(sim: Simulator, rest: RestClient, seed: int) -> None:
    """Half the live events lost at random: REST restores every fill, end state and balance."""
    since = datetime.now(UTC)
    async with recorder(sim) as truth:
        placed, resting = await place_mix(rest, sim)
        await truth.wait_for(settled(placed, resting))
    rng = random.Random(seed)
    reconciler = Reconciler()
    delivered: list[Private] = []
    for message in truth.messages:
        if rng.random() < 0.5 and reconciler.live(message):
            delivered.append(message)
    live_count = len(delivered)
    delivered += await reconcile_private(rest, reconciler, since=since)
    rebuilt = delivered[live_count:]
    assert rebuilt and all(m.reconciled for m in rebuilt)
    check_against_truth(truth.messages, delivered)
    exchange = await rest_balances(rest)
    shown = {c: v for c, v in reconciler.balances().items() if v != (0, 0)}
    assert (
        shown == exchange == {c: v for c, v in last_balances(truth.messages).items() if v != (0, 0)}
    )
    # A second pass finds nothing new, and a late live twin is suppressed.
    assert await reconcile_private(rest, reconciler, since=since) == []
    twin = next(m for m in truth.messages if isinstance(m, MyOrder) and m.state == "done")
    assert not reconciler.live(twin)


async def test_order_placed_before_the_gap_and_finished_in_it(
    sim: Simulator, rest: RestClient
) -> None:
    """An order seen open before the gap and cancelled during it is found by uuid."""
    async with recorder(sim) as truth:
        order = await rest.place_order(
            market="KRW-BTC", side="bid", ord_type="limit", volume="0.001", price="10000000"
        )
        await truth.wait_for(lambda ms: order.uuid in {k[0] for k in order_keys(ms)})
        reconciler = Reconciler()
        for message in truth.messages:
            reconciler.live(message)
        since = datetime.now(UTC) + timedelta(seconds=30)  # the closed list cannot see it
        await rest.cancel_order(uuid=order.uuid)
        await truth.wait_for(lambda ms: (order.uuid, "cancel", None) in order_keys(ms))
    rebuilt = await reconcile_private(rest, reconciler, since=since)
    assert [k for k in order_keys(rebuilt)] == [(order.uuid, "cancel", None)]
    exchange = await rest_balances(rest)
    assert {c: v for c, v in reconciler.balances().items() if v != (0, 0)} == exchange


async def test_aborted_private_socket_is_reconciled(sim: Simulator, rest: RestClient) -> None:
    """A private socket aborted while orders fill: reconnect, reconcile, equal the exchange."""
    headers = {"Authorization": f"Bearer {token(*sim.credentials)}"}
    reconciler = Reconciler()
    delivered: list[Private] = []

    async with recorder(sim) as truth:
        async with recorder(sim) as victim:
            first = await rest.place_order(
                market="KRW-BTC", side="bid", ord_type="price", price="10000"
            )
            await victim.wait_for(lambda ms: (first.uuid, "cancel", None) in order_keys(ms))
            for message in victim.messages:
                if reconciler.live(message):
                    delivered.append(message)
            since = victim.last_frame_at
            assert since is not None
            victim_conn = max(c.id for c in sim.connections() if c.kind == "private")
            assert sim.abort(victim_conn) == 1
        placed, resting = await place_mix(rest, sim)  # the victim sees none of these
        async with client(sim.private_ws_url, additional_headers=headers) as ws:
            before = sim.requests_received
            await ws.send(request({"ticket": "v"}, {"type": "myOrder"}, {"type": "myAsset"}))
            await settle(sim, before + 1)
            delivered += await reconcile_private(rest, reconciler, since=since)
        await truth.wait_for(settled([first.uuid, *placed], resting))
    check_against_truth(truth.messages, delivered)
    exchange = await rest_balances(rest)
    assert {c: v for c, v in reconciler.balances().items() if v != (0, 0)} == exchange


async def test_pass_is_retried_until_the_key_works_again(sim: Simulator, rest: RestClient) -> None:
    """A refused key fails the pass; it is retried with backoff and succeeds once restored."""
    failures: list[UpbitWsError] = []
    retried = asyncio.Event()

    def on_retry(error: UpbitWsError, delay: float) -> None:
        failures.append(error)
        retried.set()

    sim.revoke_key()
    backoff = Backoff(
        BackoffConfig(first_delay=0.02, cap=0.05, auth_retry=0.05, rate_limited_floor=0.05)
    )
    task = asyncio.create_task(
        reconcile_private(
            rest, Reconciler(), since=datetime.now(UTC), backoff=backoff, on_retry=on_retry
        )
    )
    async with asyncio.timeout(5):
        await retried.wait()
    sim.restore_key()
    async with asyncio.timeout(5):
        messages = await task
    assert isinstance(failures[0], AuthError)
    assert len(messages) == 1 and isinstance(messages[0], MyAsset)  # the first balances


async def test_rate_limited_pass_waits_and_finishes() -> None:
    """Another client used up the account's REST budget: 429, back off, then succeed."""
    config = SimulatorConfig(**FAST, rest_exchange_per_second=2)
    async with Simulator(config, clock=ManualClock(config.start_time)) as sim:
        creds = Credentials(*sim.credentials)
        async with (
            RestClient(sim.url, credentials=creds) as other,
            RestClient(sim.url, credentials=creds) as rest,
        ):
            await other.api_keys()
            await other.api_keys()
            failures: list[UpbitWsError] = []
            backoff = Backoff(BackoffConfig(first_delay=0.05, cap=0.2, rate_limited_floor=0.2))
            since = datetime.now(UTC)
            messages = await reconcile_private(
                rest,
                Reconciler(),
                since=since,
                backoff=backoff,
                on_retry=lambda error, delay: failures.append(error),
            )
            assert failures and all(f.__class__.__name__ == "RateLimitedError" for f in failures)
            assert isinstance(messages[-1], MyAsset)
            assert rest.statistics().refused >= 1


async def test_settle_corrects_a_stale_balance_frame(sim: Simulator, rest: RestClient) -> None:
    """A live balance frame older than the pass, arriving after it, is corrected by settle."""
    reconciler = Reconciler()
    before = sim.rest_requests
    task = asyncio.create_task(
        reconcile_private(rest, reconciler, since=datetime.now(UTC), settle=0.3)
    )
    async with asyncio.timeout(5):
        await sim.wait_for(lambda: sim.rest_requests >= before + 3)  # open, closed, accounts
    exchange = await rest_balances(rest)
    stale = MyAsset(
        asset_uuid="late",
        assets=(AssetBalance(currency="KRW", balance=Decimal(1), locked=Decimal(0)),),
        asset_timestamp=0,
        timestamp=0,
    )
    assert reconciler.live(stale)  # delivered: it is what the socket said
    async with asyncio.timeout(5):
        messages = await task
    assert isinstance(messages[-1], MyAsset) and messages[-1].reconciled
    assert reconciler.balances()["KRW"] == exchange["KRW"]
