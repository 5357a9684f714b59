"""The relay over a real redis-server and the simulator on loopback: fan-out, takeover, work
queues, fencing and outages. Every wait is on a condition, bounded generously.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
from click.testing import CliRunner

from tests.relay.redis_helpers import SIM_OPTIONS, RedisServer, eventually
from tests.relay.test_codec import TRADE
from upbit_ws.aio.manager import WebSocketManager
from upbit_ws.cli.main import cli
from upbit_ws.core.events import GapEvent
from upbit_ws.core.messages import DataMessage, Trade
from upbit_ws.relay import (
    FeedGap,
    FeedSubscription,
    LeaseAcquired,
    RedisFeed,
    RedisOutage,
    Relay,
    RelayConfig,
    RelayEvent,
)
from upbit_ws.relay.codec import EntryFormatError, decode_entry, encode_messages
from upbit_ws.simulator import Simulator, SimulatorConfig

CODES = ["KRW-BTC", "KRW-ETH"]
LEASE = 1.0


def relay_for(
    server: RedisServer, sim: Simulator, codes: list[str] = CODES, **config: Any
) -> Relay:
    """Return a relay of trades and tickers of ``codes`` with a short lease."""
    return Relay(
        server.url,
        {"trade": codes, "ticker": codes},
        base_url=sim.url,
        config=RelayConfig(**{"lease_seconds": LEASE, **config}),
    )


class Collector:
    """Read a feed subscription's items (data and gaps) in a task this test owns."""

    def __init__(self, sub: FeedSubscription[Any]) -> None:
        self.sub = sub
        self.items: list[Any] = []
        self.task = asyncio.create_task(self._run(sub.items()))

    async def _run(self, source: AsyncIterable[Any]) -> None:
        async for item in source:
            self.items.append(item)

    @property
    def messages(self) -> list[DataMessage]:
        """Return the data messages read so far."""
        return [i for i in self.items if not isinstance(i, FeedGap)]

    async def stop(self) -> None:
        """Close the subscription and wait for the task (the reads end within a block)."""
        await self.sub.aclose()
        done, _ = await asyncio.wait([self.task], timeout=10)
        if not done:
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class LocalCollector:
    """Read a local async iterable (a subscription, an event stream) in a task we own."""

    def __init__(self, source: AsyncIterable[Any]) -> None:
        self.items: list[Any] = []
        self.task = asyncio.create_task(self._run(source))

    async def _run(self, source: AsyncIterable[Any]) -> None:
        async for item in source:
            self.items.append(item)

    async def stop(self) -> None:
        """Cancel the reading task."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def event_log(feed: RedisFeed) -> AsyncIterator[list[RelayEvent]]:
    """Collect upbit:events from the start while the block runs."""
    events: list[RelayEvent] = []

    async def run() -> None:
        async for event in feed.events(start="0"):
            events.append(event)

    task = asyncio.create_task(run())
    try:
        yield events
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=10)


async def _events_until(feed: RedisFeed, kind: type[RelayEvent]) -> AsyncIterator[RelayEvent]:
    """Yield upbit:events from the start up to the first event of ``kind`` (bounded)."""
    async with asyncio.timeout(15):
        async for event in feed.events(start="0"):
            yield event
            if isinstance(event, kind):
                return


def assert_trades_unique_and_ordered(messages: list[DataMessage]) -> None:
    """Trades of each code arrive once each, in the simulator's sequential_id order."""
    by_code: dict[str, list[int]] = {}
    for m in messages:
        # A SNAPSHOT is Upbit sending a trade again after a (re)subscription, not the relay.
        if isinstance(m, Trade) and m.stream_type != "SNAPSHOT":
            by_code.setdefault(m.code, []).append(m.sequential_id)
    for code, ids in by_code.items():
        assert len(ids) == len(set(ids)), f"{code}: a trade arrived twice"
        assert ids == sorted(ids), f"{code}: trades out of order"


def assert_no_duplicates(messages: list[DataMessage]) -> None:
    """No message (trade or ticker) arrives twice."""
    encoded = [msgspec.msgpack.encode(m) for m in messages]
    assert len(encoded) == len(set(encoded)), "a message arrived twice"
    assert_trades_unique_and_ordered(messages)


async def stored_entries(raw: aioredis.Redis, key: str) -> list[tuple[bytes, DataMessage]]:
    """Return (entry id, message) for each data message a stream holds, in order (an entry
    holds a batch; gap markers are left out)."""
    out: list[tuple[bytes, DataMessage]] = []
    for entry_id, fields in await raw.xrange(key):
        for field, payload in fields.items():
            got = decode_entry(key.split(":")[1], field, payload)
            if isinstance(got, list):
                out.extend((entry_id, message) for message in got)
    return out


async def stored_messages(raw: aioredis.Redis, key: str) -> list[DataMessage]:
    """Return the data messages a stream holds, in order."""
    return [message for _, message in await stored_entries(raw, key)]


def per_stream(messages: list[DataMessage]) -> dict[tuple[str, str | None], list[DataMessage]]:
    """Group messages by (type, code), keeping their order."""
    out: dict[tuple[str, str | None], list[DataMessage]] = {}
    for m in messages:
        out.setdefault((m.type, m.code), []).append(m)
    return out


async def test_every_relayed_message_reaches_two_consumers_in_order(
    redis_server: RedisServer, sim: Simulator
) -> None:
    """Every message the relay received reaches two consumers, each stream in relay order."""
    async with RedisFeed(redis_server.url) as feed_a, RedisFeed(redis_server.url) as feed_b:
        readers = [
            Collector(feed.subscribe(kind, CODES, start="0"))
            for feed in (feed_a, feed_b)
            for kind in ("trade", "ticker")
        ]
        relay = relay_for(redis_server, sim)
        async with relay:
            await eventually(lambda: relay.statistics().received >= 40, what="40 messages")
        stats = relay.statistics()
        assert stats.dropped == 0 and stats.buffered == 0
        assert stats.received >= 40
        got_a = lambda: len(readers[0].messages) + len(readers[1].messages)  # noqa: E731
        got_b = lambda: len(readers[2].messages) + len(readers[3].messages)  # noqa: E731
        await eventually(lambda: got_a() == stats.received, what="consumer A to get everything")
        await eventually(lambda: got_b() == stats.received, what="consumer B to get everything")
        for reader in readers:
            await reader.stop()
        a = per_stream(readers[0].messages + readers[1].messages)
        b = per_stream(readers[2].messages + readers[3].messages)
        assert a == b
        assert {t for t, _ in a} == {"trade", "ticker"}
        async with aioredis.Redis.from_url(redis_server.url) as raw:
            for (kind, code), messages in a.items():
                # The order each consumer saw is the order the relay appended.
                appended = await stored_messages(raw, f"upbit:{kind}:{code}")
                assert messages == appended
        assert_no_duplicates(readers[0].messages + readers[1].messages)


@pytest.fixture
async def busy_sim() -> AsyncIterator[Simulator]:
    """A simulator whose KRW-BTC trades about 100 times a second, several per tick, so the
    relays' reads bring several trades and their stream entries hold batches."""
    async with Simulator(SimulatorConfig(**SIM_OPTIONS, trades_per_second=100.0)) as simulator:
        yield simulator


async def test_standby_takes_over_within_the_lease(
    redis_server: RedisServer, busy_sim: Simulator
) -> None:
    """Killing the active relay (SIGKILL) hands over within the lease: no loss, no duplicate,
    with entries of several messages on both sides (the old leader's in Redis, the standby's
    backlog)."""
    sim = busy_sim
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "upbit_ws.cli.relay",
        "--redis",
        redis_server.url,
        "--base-url",
        sim.url,
        "--lease",
        str(LEASE),
        "--relay-id",
        "A",
        "trade,ticker",
        "KRW-BTC",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with RedisFeed(redis_server.url) as feed, event_log(feed) as events:
            acquired: Callable[[str], list[LeaseAcquired]] = lambda who: [  # noqa: E731
                e for e in events if isinstance(e, LeaseAcquired) and e.relay == who
            ]
            await eventually(lambda: bool(acquired("A")), what="relay A to lead", within=30)
            reader = Collector(feed.subscribe("trade", ["KRW-BTC"], start="0"))
            standby = Relay(
                redis_server.url,
                {"trade": ["KRW-BTC"], "ticker": ["KRW-BTC"]},
                base_url=sim.url,
                config=RelayConfig(lease_seconds=LEASE),
                relay_id="B",
            )
            async with standby, WebSocketManager(base_url=sim.url) as observer:
                # Ground truth: every trade Upbit (the simulator) sent during the handover.
                truth = observer.component("truth").subscribe(
                    "trade", ["KRW-BTC"], policy="drop_oldest", capacity=1 << 16
                )
                sent = LocalCollector(truth)
                observed = LocalCollector(observer.events())
                await eventually(
                    lambda: standby.statistics().buffered >= 3 and len(reader.messages) >= 3,
                    what="A streaming to the reader and B holding a backlog",
                )
                assert standby.role == "standby"
                loop = asyncio.get_running_loop()
                proc.kill()
                killed_at = loop.time()
                async with asyncio.timeout(LEASE + 10):
                    await standby.wait_role("leader")
                took = loop.time() - killed_at
                before = len(reader.messages)
                await eventually(
                    lambda: len(reader.messages) >= before + 3, what="trades appended by B"
                )
                await reader.stop()
                [taken] = acquired("B")
                assert taken.since is not None
                # The reader's wait: from A's last append to B's first, at most the lease plus
                # one poll of it (a third), plus slack for a loaded machine.
                assert 0 <= taken.at - taken.since <= LEASE * 4 / 3 + 2.0, taken
                assert took <= LEASE * 4 / 3 + 2.0, f"took over after {took:.2f} s"
                got = reader.messages
                assert_no_duplicates(got)
                async with aioredis.Redis.from_url(redis_server.url) as raw:
                    entries = [e for e, _ in await stored_entries(raw, "upbit:trade:KRW-BTC")]
                assert len(set(entries)) < len(entries), "no entry held several trades"
                seen = {m.sequential_id for m in got if isinstance(m, Trade)}
                await sent.stop()
                await observed.stop()
                lost_upstream = any(isinstance(e, FeedGap) for e in events) or any(
                    isinstance(e, GapEvent) for e in observed.items
                )
                first, last = min(seen), max(seen)
                window = {t.sequential_id for t in sent.items if first <= t.sequential_id <= last}
                if not lost_upstream:
                    # B's backlog closed the handover: nothing the simulator sent is missing.
                    assert window <= seen, f"{len(window - seen)} trades lost in the handover"
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_unacked_messages_of_a_dead_consumer_are_redelivered(
    redis_server: RedisServer, sim: Simulator
) -> None:
    """A group consumer that dies before acking has its messages claimed by another one."""
    relay = relay_for(redis_server, sim, codes=["KRW-BTC"])
    async with relay:
        doomed = RedisFeed(redis_server.url)
        sub = doomed.subscribe(
            "trade", ["KRW-BTC"], start="0", group="workers", consumer="w1", claim_idle=0.5
        )
        taken = [await anext(sub) for _ in range(3)]
        assert await sub.ack(taken[0]) == 1
        await doomed.aclose()  # dies with two messages unacknowledged
        unacked = {t.sequential_id for t in taken[1:]}
        # Redis acknowledges whole entries: the first trade is acknowledged for good only if
        # no unacknowledged one shares its entry (at-least-once per entry, docs/relay.md).
        async with aioredis.Redis.from_url(redis_server.url) as raw:
            entry_of = {
                m.sequential_id: entry_id
                for entry_id, m in await stored_entries(raw, "upbit:trade:KRW-BTC")
                if isinstance(m, Trade)
            }
        first_alone = all(entry_of[i] != entry_of[taken[0].sequential_id] for i in unacked)
        async with RedisFeed(redis_server.url) as feed:
            heir = feed.subscribe(
                "trade", ["KRW-BTC"], group="workers", consumer="w2", claim_idle=0.5
            )
            seen: list[int] = []

            async def until_redelivered() -> None:
                async for trade in heir:
                    seen.append(trade.sequential_id)
                    await heir.ack(trade)
                    if unacked <= set(seen):
                        return

            async with asyncio.timeout(15):
                await until_redelivered()
            if first_alone:
                assert taken[0].sequential_id not in seen  # acknowledged: never again
            assert heir.statistics().unacked == 0


async def test_groups_acknowledge_whole_entries(redis_server: RedisServer) -> None:
    """An entry holds several messages: Redis acknowledges it once all of them are; a consumer
    that dies with part of an entry unacknowledged has the whole entry delivered again, and
    an entry acknowledged in full never comes back."""
    t1, t2, t3 = _trades(3)
    key = "upbit:trade:KRW-BTC"
    async with aioredis.Redis.from_url(redis_server.url) as raw:
        first = await raw.xadd(key, {"m2": encode_messages([t1])})
        second = await raw.xadd(key, {"m2": encode_messages([t2, t3])})
        doomed = RedisFeed(redis_server.url)
        sub = doomed.subscribe(
            "trade", ["KRW-BTC"], start="0", group="g", consumer="w1", claim_idle=0.3
        )
        async with asyncio.timeout(15):
            got = [await anext(sub) for _ in range(3)]
        assert got == [t1, t2, t3]
        assert await sub.ack(got[0], got[1]) == 2  # both; in Redis only the first entry
        assert sub.statistics().unacked == 1
        pending = await raw.xpending_range(key, "g", min="-", max="+", count=10)
        assert [p["message_id"] for p in pending] == [second]
        await doomed.aclose()  # dies with t3 unacknowledged
        async with RedisFeed(redis_server.url) as feed:
            heir = feed.subscribe("trade", ["KRW-BTC"], group="g", consumer="w2", claim_idle=0.3)
            async with asyncio.timeout(15):
                again = [await anext(heir) for _ in range(2)]
            assert again == [t2, t3]  # the whole second entry, t2 included; t1 never again
            assert await heir.ack() == 2
            assert (await raw.xpending(key, "g"))["pending"] == 0
        assert first != second


async def test_a_restarted_consumer_gets_its_own_unacked_messages_first(
    redis_server: RedisServer, sim: Simulator
) -> None:
    """A consumer that starts again under its name first gets back what it had not acked."""
    relay = relay_for(redis_server, sim, codes=["KRW-BTC"])
    async with relay:
        async with RedisFeed(redis_server.url) as first_life:
            sub = first_life.subscribe("trade", ["KRW-BTC"], start="0", group="g", consumer="w")
            taken = [await anext(sub) for _ in range(2)]
        async with RedisFeed(redis_server.url) as second_life:
            sub = second_life.subscribe("trade", ["KRW-BTC"], group="g", consumer="w")
            again = [await anext(sub) for _ in range(2)]
            assert again == taken
            assert await sub.ack() == 2


async def test_a_relay_that_lost_its_lease_never_appends(
    redis_server: RedisServer, sim: Simulator
) -> None:
    """With its lease taken, a relay stops appending at once and resumes without duplicates."""
    relay = relay_for(redis_server, sim, codes=["KRW-BTC"])
    async with relay, aioredis.Redis.from_url(redis_server.url) as raw:
        await eventually(lambda: relay.role == "leader", what="the relay to lead")
        await eventually(lambda: relay.statistics().appended >= 5, what="the relay to append a few")
        await raw.set("upbit:lease:relay", "intruder")  # another holder, no expiry
        await eventually(lambda: relay.role == "standby", what="the relay to step down")
        length = await raw.xlen("upbit:trade:KRW-BTC")
        received = relay.statistics().received
        await eventually(
            lambda: relay.statistics().received >= received + 5, what="more upstream messages"
        )
        assert await raw.xlen("upbit:trade:KRW-BTC") == length
        await raw.delete("upbit:lease:relay")
        await eventually(lambda: relay.role == "leader", what="the relay to lead again")

        async def grew() -> bool:
            return int(await raw.xlen("upbit:trade:KRW-BTC")) > length

        await eventually(grew, what="appends to resume")
        assert_no_duplicates(await stored_messages(raw, "upbit:trade:KRW-BTC"))


async def test_relay_and_consumer_recover_from_a_redis_restart(
    redis_server: RedisServer, sim: Simulator
) -> None:
    """Redis killed and restarted empty: the relay counts its drops, reports the gap in band,
    and both it and the consumer carry on by themselves."""
    relay = relay_for(redis_server, sim, buffer_size=16)
    async with relay, RedisFeed(redis_server.url) as feed:
        local = LocalCollector(relay.events())
        reader = Collector(feed.subscribe("ticker", CODES, start="0"))
        await eventually(lambda: len(reader.messages) >= 3, what="tickers before the outage")
        redis_server.stop()
        await eventually(lambda: relay.statistics().dropped > 0, what="the relay to drop")
        redis_server.start()
        await redis_server.ready()
        gap_at = lambda: next(  # noqa: E731
            (i for i, x in enumerate(reader.items) if isinstance(x, FeedGap)), None
        )
        await eventually(lambda: gap_at() is not None, what="an in-band gap after the restart")
        index = gap_at()
        assert index is not None
        await eventually(lambda: len(reader.items) >= index + 4, what="tickers after the gap")
        gap = reader.items[index]
        assert isinstance(gap, FeedGap) and gap.cause == "relay_overflow"
        assert gap.dropped is not None and gap.dropped > 0 and gap.since <= gap.at
        assert reader.sub.statistics().reconnects > 0
        stats = relay.statistics()
        assert stats.redis_errors > 0 and stats.role == "leader"
        await reader.stop()
        # The relay's own events say the same, and how long Redis was away.
        outage = lambda: [e for e in local.items if isinstance(e, RedisOutage)]  # noqa: E731
        await eventually(lambda: bool(outage()), what="the outage among the relay's events")
        [report] = outage()
        assert report.since < report.at and report.retries > 0 and report.dropped > 0
        overflow = [e for e in local.items if isinstance(e, FeedGap)]
        assert any(g.cause == "relay_overflow" and g.dropped for g in overflow)
        events = [e async for e in _events_until(feed, RedisOutage)]
        assert any(isinstance(e, FeedGap) and e.cause == "relay_overflow" for e in events)
        await local.stop()


def test_cli_says_what_is_wrong_in_one_line() -> None:
    """Bad input exits 2 and an unreachable Redis exits 1, each with one line, no traceback."""
    runner = CliRunner()
    cases = [
        (["relay", "--redis", "redis://127.0.0.1:6390", "trades", "KRW-BTC"], 2, "unknown type"),
        (["relay", "--redis", "localhost:6379", "trade", "KRW-BTC"], 2, "Redis URL"),
        (["relay", "--redis", "redis://127.0.0.1:6390", "--lease", "0", "trade", "X"], 2, "lease"),
        (
            ["relay", "--redis", "redis://127.0.0.1:6390", "--buffer-size", "0", "trade", "X"],
            2,
            "buffer_size",
        ),
        (["relay", "--redis", "redis://127.0.0.1:1", "trade", "KRW-BTC"], 1, "unavailable"),
    ]
    for args, status, words in cases:
        result = runner.invoke(cli, args)
        assert result.exit_code == status, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], result.output
        assert "Traceback" not in result.output


#: How long closing may take while Redis does not answer: the relay's flush wait, the
#: cancellation, the lease release and the client's close are each bounded (2-4 s), plus
#: slack for a loaded machine.
CLOSE_BOUND = 25.0


async def test_closing_never_hangs_while_redis_is_stopped(
    redis_server: RedisServer, sim: Simulator
) -> None:
    """With redis-server stopped (SIGSTOP: sockets open, no answers) in the middle of appends
    and reads, the relay and the feed both close within bounds, and the reader ends."""
    relay = relay_for(redis_server, sim)
    feed = RedisFeed(redis_server.url)
    reader = Collector(feed.subscribe("ticker", CODES, start="0"))
    await relay.start()
    try:
        await eventually(lambda: len(reader.messages) >= 3, what="tickers before the pause")
        redis_server.pause()
        received = relay.statistics().received
        await eventually(
            lambda: relay.statistics().received >= received + 5, what="messages Redis cannot take"
        )
        async with asyncio.timeout(CLOSE_BOUND):
            await relay.aclose()
            await reader.sub.aclose()
            await feed.aclose()
            await asyncio.wait([reader.task])
        assert relay.role == "closed"
        assert reader.task.done() and not reader.task.cancelled()
    finally:
        redis_server.resume()
        await relay.aclose()
        await reader.stop()


async def test_the_relay_process_exits_on_sigterm_while_redis_is_stopped(
    redis_server: RedisServer, sim: Simulator
) -> None:
    """``upbit-ws relay`` asked to stop (SIGTERM) while Redis is stopped exits 0 within bounds."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "upbit_ws.cli.relay",
        "--redis",
        redis_server.url,
        "--base-url",
        sim.url,
        "--lease",
        str(LEASE),
        "trade,ticker",
        *CODES,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            await proc.stdout.readline()  # subscribed
        async with aioredis.Redis.from_url(redis_server.url) as raw:

            async def appended() -> bool:
                return int(await raw.xlen("upbit:ticker:KRW-BTC")) > 0

            await eventually(appended, what="the relay to append")
        redis_server.pause()
        proc.terminate()
        async with asyncio.timeout(CLOSE_BOUND):
            status = await proc.wait()
        assert status == 0
    finally:
        redis_server.resume()
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_a_group_consumer_carries_on_after_redis_restarts_empty(
    redis_server: RedisServer, sim: Simulator
) -> None:
    """Redis killed and restarted without its data: the group is gone (NOGROUP); the consumer
    creates it again by itself and gets the trades the relay appends from then on."""
    relay = relay_for(redis_server, sim, codes=["KRW-BTC"])
    async with relay, RedisFeed(redis_server.url) as feed:
        sub = feed.subscribe("trade", ["KRW-BTC"], start="0", group="g", consumer="w")
        reader = Collector(sub)
        await eventually(lambda: len(reader.messages) >= 2, what="trades before the restart")
        redis_server.stop()
        redis_server.start()
        await redis_server.ready()
        before = len(reader.messages)
        await eventually(
            lambda: len(reader.messages) >= before + 3, what="trades after the restart"
        )
        assert sub.statistics().reconnects > 0
        assert await sub.ack() > 0  # the group exists again and holds them as pending
        await reader.stop()
        assert_trades_unique_and_ordered(reader.messages[before:])


async def test_entries_that_do_not_decode_never_end_a_reader(redis_server: RedisServer) -> None:
    """A stranger's (or a newer relay's) entries among the relay's are skipped and counted;
    plain readers, group readers and the events reader carry on, and a group acknowledges them
    so they do not come back."""
    good = [msgspec.msgpack.encode(t) for t in _trades(3)]
    async with aioredis.Redis.from_url(redis_server.url) as raw:
        key = "upbit:trade:KRW-BTC"
        await raw.xadd(key, {"m": good[0]})
        await raw.xadd(key, {"m": b"\xc1 not msgpack"})
        await raw.xadd(key, {"m": good[1]})
        await raw.xadd(key, {"x": b"no such field"})
        await raw.xadd(key, {"m3": b"a newer relay's format"})
        await raw.xadd(key, {"m": good[2]})
        await raw.xadd("upbit:events", {"m": msgspec.msgpack.encode({"event": "from_the_future"})})
        later = LeaseAcquired(at=2.0, relay="r", since=None, refilled=0)
        await raw.xadd("upbit:events", {"m": msgspec.msgpack.encode(later)})
        async with RedisFeed(redis_server.url) as feed:
            plain = feed.subscribe("trade", ["KRW-BTC"], start="0")
            group = feed.subscribe("trade", ["KRW-BTC"], start="0", group="g", consumer="w")
            async with asyncio.timeout(15):
                for sub in (plain, group):
                    got = [await anext(sub) for _ in range(3)]
                    assert [t.sequential_id for t in got] == [1, 2, 3]
                    assert sub.statistics().malformed == 3
                assert await group.ack() == 3
                [event] = [e async for e in _events_until(feed, LeaseAcquired)]
            assert event == later
            pending = await raw.xpending(key, "g")
            assert pending["pending"] == 0  # the strangers were acknowledged too
        # What a reader says of a newer format names it and what to do.
        with pytest.raises(EntryFormatError, match=r"'m3'.*newer relay.*upgrade upbit-ws"):
            decode_entry("trade", b"m3", b"")


def _trades(count: int) -> list[Trade]:
    """Return ``count`` trades of KRW-BTC with sequential ids 1..count (the codec test's trade)."""
    return [
        msgspec.structs.replace(
            TRADE, trade_timestamp=1704067200000 + i, timestamp=1704067200012 + i, sequential_id=i
        )
        for i in range(1, count + 1)
    ]
