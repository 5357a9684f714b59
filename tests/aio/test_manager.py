"""WebSocketManager lifecycle, URLs, snapshots and events, against the simulator."""

from __future__ import annotations

import asyncio
import gc
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from tests.aio.connection_helpers import (
    FAST,
    EventLog,
    SubscribingListener,
    fresh_limiter,
    our_tasks,
    running_sim,
)
from upbit_ws.aio.connection import NullListener
from upbit_ws.aio.manager import WebSocketManager, websocket_urls
from upbit_ws.aio.rest import RestClient
from upbit_ws.core.auth import Credentials
from upbit_ws.core.config import KeyHealthConfig
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.events import ConnectionStateChanged, KeyProblem
from upbit_ws.simulator import Simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """Run a wall-clock simulator."""
    async with running_sim() as running:
        yield running


def manager(sim: Simulator, *, keys: bool = True, **options: object) -> WebSocketManager:
    """Build a manager for ``sim`` with the fast test timings (and the sim's key if asked)."""
    credentials = Credentials(*sim.credentials) if keys else None
    return WebSocketManager(
        base_url=sim.url,
        credentials=credentials,
        config=FAST,
        connect_limiter=fresh_limiter(),
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("base", "public", "private"),
    [
        (
            "https://api.upbit.com",
            "wss://api.upbit.com/websocket/v1",
            "wss://api.upbit.com/websocket/v1/private",
        ),
        (
            "http://127.0.0.1:8080/",
            "ws://127.0.0.1:8080/websocket/v1",
            "ws://127.0.0.1:8080/websocket/v1/private",
        ),
        (
            "https://sg-api.upbit.com/",
            "wss://sg-api.upbit.com/websocket/v1",
            "wss://sg-api.upbit.com/websocket/v1/private",
        ),
    ],
)
def test_websocket_urls_derive_from_base_url(base: str, public: str, private: str) -> None:
    """The WebSocket URLs follow the REST base: https -> wss, http -> ws, Upbit's paths."""
    assert websocket_urls(base) == (public, private)


@pytest.mark.parametrize("base", ["ftp://x", "api.upbit.com", "https://api.upbit.com/?a=1"])
def test_bad_base_url_is_refused(base: str) -> None:
    """A base URL that is not http(s) with a host is a clear input error."""
    with pytest.raises(InvalidInputError):
        websocket_urls(base)


def test_default_base_url_is_upbit() -> None:
    """Without base_url the manager talks to api.upbit.com over TLS."""
    ws = WebSocketManager()
    assert ws.public.url == "wss://api.upbit.com/websocket/v1"
    assert ws.private is None and ws.keys is None
    assert ws.rest.base_url == "https://api.upbit.com"


async def test_start_opens_public_and_private(sim: Simulator) -> None:
    """start() opens both connections; health is ok and statistics describe them."""
    ws = manager(sim)
    log = EventLog(ws.events())
    async with ws:
        await log.state("public", "open")
        await log.state("private", "open", since=0)  # may come before public's
        health = ws.health()
        assert health.ok and health.key == "valid"
        assert [c.connection for c in health.connections] == ["public", "private"]
        stats = ws.statistics()
        assert stats.public.state == "open" and stats.private is not None
        assert stats.private.state == "open" and stats.key is not None
        assert stats.key.status == "valid" and stats.internal_errors == ()
        assert stats.connect_limiter.acquired >= 2
        assert ws.connection("private") is ws.private
    assert ws.public.state == "closed" and ws.private is not None
    assert ws.private.state == "closed"
    assert not ws.health().ok


async def test_without_credentials_there_is_no_private(sim: Simulator) -> None:
    """No credentials: public only, no key checks, no private connection at all."""
    ws = manager(sim, keys=False)
    async with ws:
        await asyncio.wait_for(ws.public.wait_open(), 2)
        assert ws.private is None and ws.keys is None
        assert [c.connection for c in ws.health().connections] == ["public"]
        assert ws.health().key is None
        with pytest.raises(InvalidInputError):
            ws.connection("private")
        with pytest.raises(InvalidInputError):
            await ws.check_key()
    assert all(c.kind == "public" for c in sim.connections(include_closed=True))


async def test_refused_key_at_start_keeps_private_suspended(sim: Simulator) -> None:
    """A key refused at start: KeyProblem, private suspended without connecting, public open."""
    sim.revoke_key()
    ws = manager(sim)
    log = EventLog(ws.events())
    async with ws:
        problem = await log.wait_for(KeyProblem)
        assert problem.name == "invalid_access_key"
        await log.state("private", "suspended")
        await log.state("public", "open")
        assert ws.private is not None and ws.private.state == "suspended"
        assert not ws.health().ok and ws.health().key == "invalid"
    assert not any(c.kind == "private" for c in sim.connections(include_closed=True))


async def test_unreachable_key_check_still_opens_private(sim: Simulator) -> None:
    """A key check that cannot reach Upbit is not a key problem: private opens anyway."""
    credentials = Credentials(*sim.credentials)
    async with RestClient("http://127.0.0.1:1", credentials=credentials, timeout=1) as rest:
        ws = WebSocketManager(
            base_url=sim.url,
            credentials=credentials,
            config=FAST,
            rest=rest,
            connect_limiter=fresh_limiter(),
        )
        log = EventLog(ws.events())
        async with ws:
            await log.state("private", "open")
            assert ws.health().key == "unknown"
        assert not any(isinstance(e, KeyProblem) for e in log.drain())


async def test_listener_plugs_in_per_connection(sim: Simulator) -> None:
    """A listener given for public gets its frames; the manager adds no subscription itself."""
    listener = SubscribingListener()
    ws = manager(sim, keys=False, listeners={"public": listener})
    async with ws:
        await listener.until(lambda: listener.frames >= 2)
        assert ws.public.listener is listener
    await listener.aclose()


async def test_a_connection_with_a_listener_of_its_own_refuses_subscriptions(
    sim: Simulator,
) -> None:
    """Issue 16.4: with public's listener replaced, subscribe() raises instead of hanging."""
    listener = NullListener()
    ws = manager(sim, keys=False, listeners={"public": listener})
    async with ws:
        with pytest.raises(InvalidInputError, match="not attached"):
            ws.component("coins").subscribe("ticker", ["KRW-BTC"])
        assert ws.public.listener is listener
        assert ws.subscriptions().public.desired == ()


def test_private_listener_needs_credentials() -> None:
    """Giving a private listener without credentials is a mistake reported at once."""
    with pytest.raises(InvalidInputError):
        WebSocketManager(listeners={"private": SubscribingListener()})


async def test_lifecycle_rules(sim: Simulator) -> None:
    """start() once; aclose() is idempotent; event streams end; no task of ours survives."""
    ws = manager(sim)
    stream = ws.events()
    await ws.start()
    with pytest.raises(InvalidInputError):
        await ws.start()
    await ws.aclose()
    await ws.aclose()
    assert our_tasks() == []
    async with asyncio.timeout(1):
        seen = [event async for event in stream]  # ends: aclose() ended the stream
    # The state changes up to "closed" were delivered before the end, for every connection.
    last: dict[str, str] = {}
    for event in seen:
        if isinstance(event, ConnectionStateChanged):
            last[event.connection] = event.new
    assert last and set(last.values()) == {"closed"}


async def test_a_second_aclose_waits_for_the_first(sim: Simulator) -> None:
    """Issue 16.11: aclose() called while another is closing returns only once all is gone."""
    ws = manager(sim)
    await ws.start()
    first = asyncio.create_task(ws.aclose())
    await asyncio.sleep(0)  # the first call is closing now
    await ws.aclose()
    assert our_tasks() == []
    assert "closed" in repr(ws)
    await first


def test_leaving_the_loop_without_aclose_releases_the_http_session() -> None:
    """Issue 16.11: a loop that ends without aclose() leaves no HTTP session or socket open."""

    async def main(box: list[WebSocketManager]) -> None:
        async with running_sim() as sim:
            ws = manager(sim, keys=False)
            box.append(ws)
            await ws.start()
            ws.component("coins").subscribe("ticker", ["KRW-BTC"])
            await asyncio.wait_for(ws.public.wait_open(), 5)
        # Leaves without ws.aclose(): the runner cancels what is left.

    box: list[WebSocketManager] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with asyncio.Runner() as runner:
            runner.run(main(box))
        del box
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


async def test_aclose_without_start(sim: Simulator) -> None:
    """A manager closed before it started just releases its REST client and event streams."""
    ws = manager(sim)
    stream = ws.events()
    await ws.aclose()
    assert [event async for event in stream] == []
    with pytest.raises(InvalidInputError):
        await ws.start()


async def test_no_secret_in_reprs_or_snapshots(sim: Simulator) -> None:
    """The secret never appears in the manager's repr, statistics or health."""
    ws = manager(sim)
    async with ws:
        await asyncio.wait_for(ws.public.wait_open(), 2)
        secret = sim.credentials[1]
        for text in (repr(ws), repr(ws.statistics()), repr(ws.health()), repr(ws.rest)):
            assert secret not in text


async def test_cancelled_start_closes_everything_it_started() -> None:
    """start() cut short (a timeout around async with) leaves no task of ours and no socket."""
    held = 0
    accepted = asyncio.Event()
    all_gone = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal held
        held += 1
        accepted.set()
        await reader.read()  # until the client lets the connection go
        held -= 1
        if held == 0:
            all_gone.set()
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        ws = WebSocketManager(
            base_url=f"http://127.0.0.1:{port}",
            credentials=Credentials("A" * 20, "B" * 20),
            config=FAST,
            connect_limiter=fresh_limiter(),
        )
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5), ws:
                pytest.fail("start() cannot finish against a host that never answers")
        assert accepted.is_set()  # REST and WebSocket connects were under way
        assert our_tasks() == []
        assert ws.public.state == "closed"
        assert ws.private is not None and ws.private.state == "closed"
        await asyncio.wait_for(all_gone.wait(), 2)  # every socket (REST, WebSocket) let go


class InjectedBug(Exception):
    """A failure no library code expects: stands for a bug."""


async def test_a_part_stopped_by_a_bug_is_restarted(sim: Simulator) -> None:
    """A bug that ends the key loop is logged and kept, and the loop runs again after a backoff."""
    nonces = 0
    restarted = asyncio.Event()

    def nonce() -> str:
        """Fail the second REST signature: the first key check works, the loop's first fails."""
        nonlocal nonces
        nonces += 1
        if nonces == 2:
            raise InjectedBug("nonce source broke")
        if nonces == 4:  # a check after the restarted loop's first one
            restarted.set()
        return str(uuid.uuid4())

    credentials = Credentials(*sim.credentials)
    config = replace(FAST, key_health=KeyHealthConfig(check_interval=0.05))
    async with RestClient(sim.url, credentials=credentials, nonce_factory=nonce) as rest:
        ws = WebSocketManager(
            base_url=sim.url,
            credentials=credentials,
            config=config,
            rest=rest,
            connect_limiter=fresh_limiter(),
        )
        async with ws:
            await asyncio.wait_for(restarted.wait(), 3)
            assert [str(e) for e in ws.statistics().internal_errors] == [
                "keys: InjectedBug: nonce source broke"
            ]
            assert ws.health().key == "valid"
