"""The chaos soak engine: random faults, random components, orders, and a check after each fault.

One run (a *segment*) starts ``upbit-ws simulate`` in its own process (Upbit is another
machine: the memory measured is the library's alone) and a :class:`~upbit_ws.WebSocketManager`
in this one, then repeats until its time is up:

1. a calm period of a few seconds: components subscribe, switch codes and close at random (the
   seed's coin list, an order book that switches coins, a chart, a trade tape, a bot on
   myOrder/myAsset) and orders are placed over REST (``ws.rest``) and fill at once, or rest
   far from the market until cancelled;
2. one fault drawn from a shuffled bag of every kind (so a short run still meets each kind):
   abort, clean close, blackhole, error frame (each on public, private or both), a 429 or 418
   refusal of handshakes around an abort, a server restart, the API key revoked and restored;
   sometimes an order is placed while the connection is down;
3. the checks, once the fault is recovered: every wanted connection reopened and confirmed, every
   public component has data from the new socket, Upbit's LIST_SUBSCRIPTIONS equals the merged
   set this test computes itself within 1 s, and (private) every order event the exchange has
   (``GET /v1/order`` with trades) was delivered exactly once and the balances last delivered
   equal ``GET /v1/accounts``.

Recovery of a fault is timed from its injection (``lost``: the data the app did not get) and
from the moment the server stopped preventing recovery (``recovery``: a refusal's end, the key's
restore, the end of a restart's downtime). Availability is the time outside fault windows over
the total.

The private checks need private reconciliation (``ReconciliationFinished`` in ``upbit_ws``):
without it a private reconnect loses the order events of the gap, as designed before it. The
engine measures them either way and reports whether they were asserted.

Progress goes out as one JSON line per minute (see ``benchmarks/soak_report.py`` for the
fields); a segment started on an existing progress file continues its counts.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import os
import random
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, cast

import aiohttp
from benchmarks.soak_report import read_lines

import upbit_ws
from tests.aio.connection_helpers import fresh_limiter, our_tasks
from upbit_ws import (
    ConnectionStateChanged,
    Credentials,
    MyAsset,
    MyOrder,
    SubscribedType,
    Subscription,
    UpbitWsError,
    WebSocketManager,
)
from upbit_ws.core.config import BackoffConfig, ConnectionConfig, KeyHealthConfig
from upbit_ws.core.rest_types import RestOrder
from upbit_ws.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY

__all__ = ["RECONCILIATION", "ChaosSoak", "SoakResult", "rss_mb"]

_log = logging.getLogger("tests.soak")
T = TypeVar("T")

#: ``ReconciliationFinished`` when this build reconciles private gaps, else None.
RECONCILIATION: type[Any] | None = getattr(upbit_ws, "ReconciliationFinished", None)

#: Keepalive stays at the defaults (a blackhole is found by the real probe). Backoff floors,
#: the key check and the cap are shortened so a 429, a 418 and a key restore each recover in a
#: second or two instead of the production 5 s, 30 s and 60 s: the soak measures the library's
#: recovery path, not the waiting it is told to do.
CONFIG = ConnectionConfig(
    backoff=BackoffConfig(
        cap=1.0, rate_limited_floor=0.5, blocked_floor=1.0, blocked_cap=2.0, auth_retry=1.0
    ),
    key_health=KeyHealthConfig(check_interval=0.5),
)
FAULT_KINDS = (
    "abort",
    "close",
    "blackhole",
    "error",
    "refuse_429",
    "refuse_418",
    "restart",
    "key_revoke",
)
#: Faults during which REST still works, so an order can be placed inside the outage.
_REST_UP_DURING = frozenset({"abort", "close", "blackhole", "error", "refuse_429", "refuse_418"})
_TERMINAL = frozenset({"done", "cancel", "prevented"})
#: How long a fault may take to recover before it counts as not recovered.
RECOVERY_LIMIT = 60.0
#: The issue's bound: Upbit's LIST_SUBSCRIPTIONS equals the wanted set within this.
LIST_WITHIN = 1.0
PUBLIC_SLOTS = ("coin_list", "orderbook_view", "chart", "tape")
_TYPES = {
    "coin_list": "ticker",
    "orderbook_view": "orderbook",
    "chart": "candle.1s",
    "tape": "trade",
}
OrderKey = tuple[str, str | None]  # (state, trade_uuid) of one order


def rss_mb() -> float:
    """Return this process's resident set size in MB, after a full collection."""
    gc.collect()
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc 2.33 and later): the malloc heap's own accounting."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    try:
        libc = ctypes.CDLL(None)
        function = libc.mallinfo2
    except (OSError, AttributeError):
        return None  # not glibc, or older than 2.33
    function.restype = _MallInfo2
    function.argtypes = []
    return cast("Callable[[], _MallInfo2]", function)


_MALLINFO2 = _mallinfo2()


def heap_sample() -> dict[str, float]:
    """Split the process's memory by who holds it, to tell a leak from the allocator's share.

    ``py_blocks``: blocks Python's small-object allocator hands out now (objects alive, not
    what its arenas keep); ``objects``: objects the collector tracks. From glibc's malloc
    (absent elsewhere): ``malloc_used_mb`` in use, ``malloc_free_mb`` free but kept in its
    heaps (fragmentation, or room kept after a peak), ``malloc_mmap_mb`` in blocks mapped on
    their own. RSS growing while these stay level is pymalloc's arenas or a library's own
    allocator; ``malloc_free_mb`` growing with ``malloc_used_mb`` level is fragmentation.
    """
    out: dict[str, float] = {
        "py_blocks": sys.getallocatedblocks(),
        "objects": len(gc.get_objects()),
    }
    if _MALLINFO2 is not None:
        info = _MALLINFO2()
        out["malloc_used_mb"] = round(info.uordblks / 2**20, 2)
        out["malloc_free_mb"] = round(info.fordblks / 2**20, 2)
        out["malloc_mmap_mb"] = round(info.hblkhd / 2**20, 2)
    return out


class Signal:
    """Wake waiters whenever something changed (a message, an event); they re-check."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def until(self, predicate: Callable[[], bool], *, within: float) -> None:
        """Wait until ``predicate()`` holds, re-checked on every notification."""
        async with asyncio.timeout(within):
            while not predicate():
                self._event.clear()
                await self._event.wait()


class RemoteSimulator:
    """``upbit-ws simulate`` in its own process, driven over its control HTTP API."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self._http = http

    async def post(self, path: str, **body: Any) -> dict[str, Any]:
        """POST one control request (``/_sim/...``) and require an ok answer."""
        async with self._http.post(f"{self.url}/_sim/{path}", json=body) as response:
            answer: dict[str, Any] = await response.json()
        assert response.status == 200 and answer.get("ok"), (path, answer)
        return answer

    async def connections(self) -> list[dict[str, Any]]:
        """Return the simulator's open connections (id, kind, subscription...)."""
        async with self._http.get(f"{self.url}/_sim/connections") as response:
            answer: dict[str, Any] = await response.json()
        return list(answer["connections"])


@asynccontextmanager
async def remote_simulator(
    seed: int, *, subscribe_delay: float = 0.0
) -> AsyncIterator[RemoteSimulator]:
    """Start the simulator process, read its URL from its first line, stop it afterwards.

    Rate limits are off: 429 and 418 come from the refuse fault, at the times this engine picks.
    """
    command = ["-m", "upbit_ws.cli.simulate", "--port", "0", "--no-limits", "--seed", str(seed)]
    if subscribe_delay:
        command += ["--subscribe-delay", str(subscribe_delay)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        async with aiohttp.ClientSession() as http:
            yield RemoteSimulator(line.decode().strip(), http)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


@dataclass
class Live:
    """One live subscription of a component, with the arrival times of its batches."""

    slot: str
    component: str
    sub: Subscription[Any]
    type: str
    codes: tuple[str, ...]
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=4096))
    last_at: float = 0.0
    messages: int = 0


@dataclass
class Fault:
    """One injected fault: its kind, target and the times recovery is measured from."""

    kind: str
    target: str  # public, private or both
    injected_at: float
    end_at: float  # when the server stopped preventing recovery
    affected: frozenset[str]


_FINISHED_KEPT = 5_000


class Ledger:
    """What the permanent private subscriptions delivered: order events and balances."""

    def __init__(self) -> None:
        self.seen: dict[str, Counter[OrderKey]] = {}
        #: Orders whose events were all checked; any later event for them is a duplicate. The
        #: last 5,000 (over two hours of the soak's orders), filled from the start with
        #: placeholders of a uuid's size: the soak's own memory is level from the first minute,
        #: so the RSS trend shows the library's.
        self.finished: deque[str] = deque(
            (f"{n:036d}" for n in range(_FINISHED_KEPT)), maxlen=_FINISHED_KEPT
        )
        self._finished_set: set[str] = set(self.finished)
        self.missed: set[tuple[str, str, str | None]] = set()
        self.duplicates: list[tuple[str, str, str | None]] = []
        self.late = 0
        self.balances: dict[str, tuple[Decimal, Decimal]] = {}
        self.reconciled_messages = 0

    def order(self, msg: MyOrder) -> None:
        if msg.reconciled:
            self.reconciled_messages += 1
        key = (msg.state, msg.trade_uuid)
        full = (msg.uuid, *key)
        if full in self.missed:  # it came after all: late, not missed
            self.missed.discard(full)
            self.late += 1
            return
        if msg.uuid in self._finished_set:
            self.duplicates.append(full)
            return
        counts = self.seen.setdefault(msg.uuid, Counter())
        counts[key] += 1
        if counts[key] > 1:
            self.duplicates.append(full)

    def asset(self, msg: MyAsset) -> None:
        if msg.reconciled:
            self.reconciled_messages += 1
        for item in msg.assets:
            self.balances[item.currency] = (item.balance, item.locked)

    def finish(self, uuid: str) -> None:
        """Forget a checked order's events (memory stays bounded), remembering its uuid."""
        self.seen.pop(uuid, None)
        if len(self.finished) == self.finished.maxlen:
            self._finished_set.discard(self.finished[0])
        self.finished.append(uuid)
        self._finished_set.add(uuid)


@dataclass
class Totals:
    """Counters carried over segments (the cumulative fields of a progress line)."""

    elapsed: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    recovered: Counter[str] = field(default_factory=Counter)
    down_seconds: float = 0.0
    list_checks: int = 0
    list_mismatches: int = 0
    unplanned_drops: int = 0
    #: open -> degraded outside a fault: a silence probe or a hedge on a healthy socket (a
    #: false suspicion: data kept flowing on the old socket until a spare took over).
    suspicions: int = 0
    private: dict[str, Any] = field(
        default_factory=lambda: {
            "orders": 0,
            "events_checked": 0,
            "missed": 0,
            "duplicated": 0,
            "late": 0,
            "balance_checks": 0,
            "balance_mismatches": 0,
            "reconciliations": 0,
            "reconciled_messages": 0,
            "asserted": RECONCILIATION is not None,
        }
    )
    segment: int = 1

    @classmethod
    def resume(cls, lines: list[dict[str, Any]]) -> Totals:
        """Continue the counts of the last progress line, as the next segment."""
        if not lines:
            return cls()
        last = lines[-1]
        totals = cls(
            elapsed=float(last["elapsed"]),
            faults=Counter(last["faults"]),
            recovered=Counter(last["recovered"]),
            down_seconds=float(last["down_seconds"]),
            list_checks=int(last["list_checks"]),
            list_mismatches=int(last["list_mismatches"]),
            unplanned_drops=int(last["unplanned_drops"]),
            suspicions=int(last.get("suspicions", 0)),  # lines before the hedge lack it
            segment=int(last["segment"]) + 1,
        )
        for key, value in last["private"].items():
            if key != "asserted":
                totals.private[key] = value
        # A resumed file mixes builds only if someone switched branches: say so honestly.
        totals.private["asserted"] = bool(last["private"]["asserted"]) and (
            RECONCILIATION is not None
        )
        return totals


@dataclass
class SoakResult:
    """What one segment returns: its progress lines (all segments) and its own facts."""

    lines: list[dict[str, Any]]
    seed: int
    segment: int
    seconds: float
    samples: list[tuple[float, float, int]]  # (segment seconds, RSS MB, library tasks)
    failures: list[str]
    kinds_seen: set[str]
    internal_errors: tuple[Any, ...]
    decode_errors: int
    leaked_tasks: list[str]
    private_missed: int
    private_duplicated: int
    balance_mismatches: int


class ChaosSoak:
    """One segment of the chaos soak; see the module docs."""

    def __init__(
        self,
        *,
        seed: int,
        seconds: float,
        progress: Path | None = None,
        sample_every: float = 60.0,
        line_every: float = 60.0,
        min_faults: int = 0,
        subscribe_delay: float = 0.0,
    ) -> None:
        self.seed = seed
        self.seconds = seconds
        #: The simulator's ``subscribe_delay``: Upbit starts a subscription 150-650 ms after
        #: its request (docs/protocol.md section 1.3); 0 (the default) measures the library
        #: alone, a value in that range what a recovery costs against Upbit.
        self.subscribe_delay = subscribe_delay
        self.progress = progress
        self.sample_every = sample_every
        self.line_every = line_every
        self.min_faults = min_faults
        self.rng = random.Random(seed)
        previous = read_lines(progress) if progress is not None else []
        self.totals = Totals.resume(previous)
        #: The last line of the segments before, for their private counters.
        self.previous_line: dict[str, Any] | None = previous[-1] if previous else None
        #: The progress lines, kept in memory only when there is no progress file to read them
        #: back from: a line is about 250 objects, which over hours would be the soak's own
        #: memory growth (about 15,000 blocks an hour) in the RSS trend meant for the library.
        self.lines: list[dict[str, Any]] = []
        del previous
        self.signal = Signal()
        self.live: dict[str, Live] = {}
        self.ledger = Ledger()
        self.opens: dict[str, deque[float]] = {
            "public": deque(maxlen=64),
            "private": deque(maxlen=64),
        }
        self.reconciled_at: deque[float] = deque(maxlen=64)
        self.suspended = asyncio.Event()
        self.in_fault = False
        self.unplanned: list[str] = []
        self.orders: dict[str, float] = {}  # uuid -> placed at; not yet fully checked
        self.resting: list[str] = []
        self.failures: list[str] = []
        self.kinds_seen: set[str] = set()
        self.samples: list[tuple[float, float, int]] = []
        self._new_lost: dict[str, list[float]] = {}
        self._new_lost_target: dict[str, list[float]] = {}
        self._new_recovery: dict[str, list[float]] = {}
        self._new_list_latency: list[float] = []
        self._new_failures: list[str] = []
        self._bag: list[str] = []
        self._start = 0.0
        self._krw: tuple[str, ...] = ()
        self._coins: tuple[str, ...] = ()
        self._group: asyncio.TaskGroup | None = None

    # --- the run ---------------------------------------------------------------------------

    async def run(self) -> SoakResult:
        """Run the segment for ``seconds`` (what is left of them when resuming)."""
        loop = asyncio.get_running_loop()
        budget = self.seconds - self.totals.elapsed if self.progress is not None else self.seconds
        async with remote_simulator(self.seed, subscribe_delay=self.subscribe_delay) as sim:
            ws = WebSocketManager(
                base_url=sim.url,
                credentials=Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
                config=CONFIG,
                connect_limiter=fresh_limiter(),
            )
            async with ws, asyncio.TaskGroup() as group:
                self._group = group
                watcher = group.create_task(self._watch(ws))
                await self._setup(ws)
                self._start = loop.time()
                last_sample = last_line = -1e9
                faults = 0
                while loop.time() - self._start < budget or faults < self.min_faults:
                    faults += 1
                    await self._calm(ws, self.rng.uniform(1.0, 3.0))
                    await self._one_fault(ws, sim)
                    now = loop.time()
                    if now - last_sample >= self.sample_every:
                        last_sample = now
                        self._sample()
                    if now - last_line >= self.line_every:
                        last_line = now
                        self._write_line(final=False)
                await self._verify_private(ws, final=True)
                self._sample()
                stats = ws.statistics()
                for slot in list(self.live):
                    await self.live[slot].sub.aclose()
                watcher.cancel()
            self._write_line(final=True)
        return SoakResult(
            lines=read_lines(self.progress) if self.progress is not None else self.lines,
            seed=self.seed,
            segment=self.totals.segment,
            seconds=loop.time() - self._start,
            samples=self.samples,
            failures=self.failures,
            kinds_seen=self.kinds_seen,
            internal_errors=stats.internal_errors,
            decode_errors=stats.subscriptions.public.router.decode_errors,
            leaked_tasks=[t.get_name() for t in our_tasks()],
            private_missed=len(self.ledger.missed),
            private_duplicated=len(self.ledger.duplicates),
            balance_mismatches=self._balance_mismatches,
        )

    _balance_mismatches = 0

    async def _setup(self, ws: WebSocketManager) -> None:
        """Subscribe every component and the ledger, and wait until each has data."""
        markets = await ws.rest.market_all()
        self._krw = tuple(m.market for m in markets if m.market.startswith("KRW-"))
        self._coins = self._krw[:5]  # the busy ones: trades and books several times a second
        for slot in PUBLIC_SLOTS:
            self._subscribe(ws, slot)
        ledger = ws.component("ledger")
        self._track("ledger_orders", "ledger", ledger.subscribe("myOrder"), "myOrder", ())
        self._track("ledger_assets", "ledger", ledger.subscribe("myAsset"), "myAsset", ())
        await ws.wait_ready(30)
        await self.signal.until(
            lambda: all(self.live[s].messages > 0 for s in PUBLIC_SLOTS), within=30
        )
        for account in await ws.rest.accounts():  # the subscriber's view starts from REST
            self.ledger.balances[account.currency] = (account.balance, account.locked)

    # --- components --------------------------------------------------------------------------

    def _track(
        self, slot: str, component: str, sub: Subscription[Any], type_: str, codes: tuple[str, ...]
    ) -> None:
        live = Live(slot, component, sub, type_, codes)
        self.live[slot] = live
        assert self._group is not None
        self._group.create_task(self._consume(live))

    async def _consume(self, live: Live) -> None:
        loop = asyncio.get_running_loop()
        async for batch in live.sub.batches():
            now = loop.time()
            live.arrivals.append(now)
            live.last_at = now
            live.messages += len(batch)
            if live.slot == "ledger_orders":
                for msg in batch:
                    self.ledger.order(msg)
            elif live.slot == "ledger_assets":
                for msg in batch:
                    self.ledger.asset(msg)
            self.signal.notify()

    def _subscribe(self, ws: WebSocketManager, slot: str) -> None:
        coin = self.rng.choice(self._coins)
        component = ws.component(slot)
        if slot == "coin_list":
            codes = ("KRW-*",) if self.rng.random() < 0.7 else self._sample_coins()
            self._track(slot, slot, component.subscribe("ticker", codes), "ticker", codes)
        elif slot == "orderbook_view":
            sub: Subscription[Any] = component.subscribe("orderbook", [coin], depth=15)
            self._track(slot, slot, sub, "orderbook", (coin,))
        elif slot == "bot":
            if self.rng.random() < 0.5:
                self._track(slot, slot, component.subscribe("myOrder", [coin]), "myOrder", (coin,))
            else:
                self._track(slot, slot, component.subscribe("myAsset"), "myAsset", ())
        else:
            type_ = _TYPES[slot]
            self._track(slot, slot, component.subscribe(type_, [coin]), type_, (coin,))

    def _sample_coins(self) -> tuple[str, ...]:
        return tuple(sorted(self.rng.sample(self._krw[:20], self.rng.randint(2, 8))))

    async def _component_action(self, ws: WebSocketManager) -> None:
        """Subscribe an absent component, or switch a present one's codes, or close it."""
        slot = self.rng.choice((*PUBLIC_SLOTS, "bot"))
        live = self.live.get(slot)
        if live is None:
            self._subscribe(ws, slot)
            return
        roll = self.rng.random()
        if roll < 0.25:
            await ws.component(live.component).aclose()
            del self.live[slot]
        elif live.type in ("myOrder", "myAsset"):
            return
        elif slot == "coin_list":
            codes = ("KRW-*",) if live.codes != ("KRW-*",) else self._sample_coins()
            await live.sub.update(codes)
            live.codes = codes
        else:
            coin = self.rng.choice([c for c in self._coins if (c,) != live.codes])
            await live.sub.update([coin])
            live.codes = (coin,)

    def wanted(self) -> dict[str, set[tuple[str, str]]]:
        """Return the merged streams per connection, computed here from the components."""
        out: dict[str, set[tuple[str, str]]] = {"public": set(), "private": set()}
        for live in self.live.values():
            streams = out["private" if live.type in ("myOrder", "myAsset") else "public"]
            if not live.codes:
                streams.add((live.type, "*"))
            for code in live.codes:
                codes = self._krw if code == "KRW-*" else (code,)
                streams.update((live.type, c) for c in codes)
        if ("myOrder", "*") in out["private"]:  # all markets include every single one
            out["private"] = {s for s in out["private"] if s[0] != "myOrder" or s[1] == "*"}
        return out

    # --- orders ------------------------------------------------------------------------------

    async def _order_action(self, ws: WebSocketManager) -> None:
        """Place a market buy or sell (fills at once), a resting limit bid, or cancel one."""
        rest = ws.rest
        roll = self.rng.random()
        try:
            if self.resting and (roll < 0.2 or len(self.resting) >= 3):
                uuid = self.resting.pop(self.rng.randrange(len(self.resting)))
                await rest.cancel_order(uuid=uuid)
                return
            if roll < 0.55:
                coin = self.rng.choice(self._coins)
                order = await rest.place_order(
                    market=coin, side="bid", ord_type="price", price="10000"
                )
            elif roll < 0.8:
                order = await rest.place_order(
                    market="KRW-BTC", side="ask", ord_type="market", volume="0.0001"
                )
            else:
                (ticker,) = await rest.ticker("KRW-BTC")
                price = int(ticker.trade_price * 0.6) // 1000 * 1000  # never reached
                order = await rest.place_order(
                    market="KRW-BTC",
                    side="bid",
                    ord_type="limit",
                    volume="0.0001",
                    price=str(price),
                )
                self.resting.append(order.uuid)
        except UpbitWsError as exc:
            # An answer lost in a fault: the order may exist; its events are still delivered,
            # and the balance check covers its effect. Not an error of the library.
            _log.info("order request failed during the soak: %s", type(exc).__name__)
            return
        self.orders[order.uuid] = asyncio.get_running_loop().time()
        self.totals.private["orders"] += 1

    # --- calm and faults ---------------------------------------------------------------------

    async def _calm(self, ws: WebSocketManager, seconds: float) -> None:
        """A few random component changes and orders, spread over ``seconds``."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while loop.time() < until:
            if self.rng.random() < 0.6:
                await self._component_action(ws)
            else:
                await self._order_action(ws)
            # Pacing of the chaos schedule (how often things happen), not a wait for a result.
            await asyncio.sleep(self.rng.uniform(0.1, 0.8))

    def _next_kind(self) -> str:
        if not self._bag:
            self._bag = list(FAULT_KINDS)
            self.rng.shuffle(self._bag)
        return self._bag.pop()

    async def _target_ids(self, sim: RemoteSimulator, target: str) -> list[int | None]:
        if target == "both":
            return [None]
        ids = [c["id"] for c in await sim.connections() if c["kind"] == target and c["open"]]
        return ids or [None]

    async def _inject(self, ws: WebSocketManager, sim: RemoteSimulator, kind: str) -> Fault:
        loop = asyncio.get_running_loop()
        target = self.rng.choice(("public", "private", "both"))
        if kind in ("refuse_429", "refuse_418", "restart"):
            target = "both"
        if kind == "key_revoke":
            target = "private"
        ids = await self._target_ids(sim, target)
        at = loop.time()
        end = at
        if kind == "abort":
            for conn in ids:
                await sim.post("faults/abort", connection=conn)
        elif kind == "close":
            for conn in ids:
                await sim.post("faults/close", connection=conn, code=1000)
        elif kind == "blackhole":
            for conn in ids:
                await sim.post("faults/blackhole", connection=conn, seconds=6.0)
        elif kind == "error":
            for conn in ids:
                await sim.post("faults/error", connection=conn, name="WRONG_FORMAT")
        elif kind in ("refuse_429", "refuse_418"):
            seconds = self.rng.uniform(0.3, 1.5)
            status = 429 if kind == "refuse_429" else 418
            await sim.post("faults/refuse", seconds=seconds, how="status", status=status)
            end = at + seconds
            await sim.post("faults/abort")
        elif kind == "restart":
            down = self.rng.uniform(0.1, 0.5)
            end = at + down
            await sim.post("faults/restart", down_seconds=down)
        elif kind == "key_revoke":
            self.suspended.clear()
            await sim.post("keys/revoke")
            async with asyncio.timeout(RECOVERY_LIMIT):  # the key check notices it
                await self.suspended.wait()
            await sim.post("keys/restore")
            end = loop.time()
        affected = frozenset(("public", "private") if target == "both" else (target,))
        return Fault(kind, target, at, end, affected)

    async def _one_fault(self, ws: WebSocketManager, sim: RemoteSimulator) -> None:
        kind = self._next_kind()
        self.in_fault = True
        try:
            fault = await self._inject(ws, sim, kind)
            self.totals.faults[kind] += 1
            self.kinds_seen.add(kind)
            if kind in _REST_UP_DURING and self.rng.random() < 0.5:
                await self._order_action(ws)  # an order the private socket may not see
            recovered_at = await self._recover(ws, fault)
        finally:
            self.in_fault = False
        if recovered_at is None:
            return
        lost = recovered_at - fault.injected_at
        self.totals.recovered[kind] += 1
        self.totals.down_seconds += lost
        self._new_lost.setdefault(kind, []).append(round(lost, 4))
        by_target = f"{kind} on {fault.target}"
        self._new_lost_target.setdefault(by_target, []).append(round(lost, 4))
        recovery = max(0.0, recovered_at - fault.end_at)
        self._new_recovery.setdefault(kind, []).append(round(recovery, 4))
        await self._check_list(ws, fault)
        await self._verify_private(ws, final=False)

    async def _recover(self, ws: WebSocketManager, fault: Fault) -> float | None:
        """Wait until every affected connection is back and flowing; return when it was."""
        try:
            async with asyncio.timeout(RECOVERY_LIMIT):
                return await self._recovered_at(ws, fault)
        except (TimeoutError, UpbitWsError):
            self._fail(
                f"{fault.kind} on {fault.target} not recovered within {RECOVERY_LIMIT:g} s: "
                f"health {ws.health()}; subscriptions\n{ws.subscriptions()}\n"
                f"components since the fault:\n{self._live_report(fault.injected_at)}"
            )
            return None

    def _live_report(self, since: float) -> str:
        """Say, per live subscription, what reached it after ``since`` (which one starved)."""
        now = asyncio.get_running_loop().time()
        rows = []
        for key, live in sorted(self.live.items()):
            after = sum(1 for at in live.arrivals if at > since)
            ago = f"{now - live.last_at:.2f} s ago" if live.last_at else "never"
            rows.append(
                f"  {key}: {live.type} {','.join(live.codes[:3])} - {after} batches since the "
                f"fault, last {ago}, {live.messages} messages; {live.sub.statistics()}"
            )
        return "\n".join(rows)

    async def _recovered_at(self, ws: WebSocketManager, fault: Fault) -> float:
        loop = asyncio.get_running_loop()
        t0 = fault.injected_at
        opened: dict[str, float] = {}
        for kind in sorted(fault.affected):
            await self.signal.until(
                lambda k=kind: any(at > t0 for at in self.opens[k]), within=RECOVERY_LIMIT
            )
            opened[kind] = next(at for at in self.opens[kind] if at > t0)
        # Every wanted connection open with its merged request applied (confirmed).
        await ws.wait_ready(RECOVERY_LIMIT)
        done = loop.time()
        if "public" in opened:
            after = opened["public"]
            public = [
                live for live in self.live.values() if live.type not in ("myOrder", "myAsset")
            ]
            await self.signal.until(
                lambda: all(live.last_at > after for live in public), within=RECOVERY_LIMIT
            )
            firsts = [next(t for t in live.arrivals if t > after) for live in public]
            done = max([opened["public"], *firsts])
        if "private" in opened:
            done = max(done, opened["private"])
            if RECONCILIATION is not None:  # the gap's events are delivered only after it
                reopened = opened["private"]
                await self.signal.until(
                    lambda: any(at > reopened for at in self.reconciled_at),
                    within=RECOVERY_LIMIT,
                )
                done = max(done, next(at for at in self.reconciled_at if at > reopened))
        return done

    # --- checks ------------------------------------------------------------------------------

    async def _check_list(self, ws: WebSocketManager, fault: Fault) -> None:
        """Upbit's LIST_SUBSCRIPTIONS on both sockets equals the wanted set within 1 s."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.totals.list_checks += 1
        wanted = self.wanted()
        while True:
            try:
                view = await ws.list_subscriptions()
                server = {
                    "public": _server_streams(view.public.server),
                    "private": _server_streams(view.private.server),
                }
            except UpbitWsError as exc:
                server = {"error": {(type(exc).__name__, str(exc))}}
            if _matches(server, wanted):
                self._new_list_latency.append(round(loop.time() - start, 4))
                return
            if loop.time() - start > LIST_WITHIN:
                self.totals.list_mismatches += 1
                missing = {k: sorted(wanted[k] - server.get(k, set()))[:5] for k in wanted}
                extra = {k: sorted(server[k] - wanted.get(k, set()))[:5] for k in server}
                self._fail(
                    f"LIST_SUBSCRIPTIONS differs after {fault.kind} on {fault.target}: "
                    f"missing {missing}, extra {extra}"
                )
                return
            # A request may still be on its way: ask again shortly (LIST counts toward
            # Upbit's message limit, so not in a tight loop).
            await asyncio.sleep(0.25)

    async def _verify_private(self, ws: WebSocketManager, *, final: bool) -> None:
        """Every event of our orders delivered once; the balances delivered equal REST."""
        if not self.orders:
            await self._check_balances(ws, within=5.0 if final else 2.0)
            return
        required: dict[str, set[OrderKey]] = {}
        terminal: set[str] = set()
        for uuid in list(self.orders):
            order = await _retry(lambda u=uuid: ws.rest.order(uuid=u))
            required[uuid] = _order_keys(order)
            if order.state in _TERMINAL:
                terminal.add(uuid)
        # With reconciliation every event must arrive; without it, give live ones a moment.
        within = 10.0 if final else (5.0 if RECONCILIATION is not None else 1.0)

        def delivered() -> bool:
            return all(keys <= set(self.ledger.seen.get(u, ())) for u, keys in required.items())

        with suppress(TimeoutError):
            await self.signal.until(delivered, within=within)
        for uuid, keys in required.items():
            missing = keys - set(self.ledger.seen.get(uuid, ()))
            if uuid in terminal:
                self.totals.private["events_checked"] += len(keys)
                for state, trade in missing:
                    self.ledger.missed.add((uuid, state, trade))
                self.ledger.finish(uuid)
                del self.orders[uuid]
        await self._check_balances(ws, within=within)
        self._sync_private()

    async def _check_balances(self, ws: WebSocketManager, *, within: float) -> None:
        self.totals.private["balance_checks"] += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            accounts = await _retry(ws.rest.accounts)
            rest = {a.currency: (a.balance, a.locked) for a in accounts}
            diff = _balance_diff(rest, self.ledger.balances)
            if not diff:
                return
            left = deadline - loop.time()
            if left <= 0:
                self._balance_mismatches += 1
                self.totals.private["balance_mismatches"] += 1
                if RECONCILIATION is not None:
                    self._fail(f"balances delivered differ from GET /v1/accounts: {diff}")
                return
            # A myAsset may be in flight: wait for the next delivery, then read again.
            before = self.ledger_assets_count
            with suppress(TimeoutError):
                await self.signal.until(
                    lambda b=before: self.ledger_assets_count > b, within=min(left, 1.0)
                )

    @property
    def ledger_assets_count(self) -> int:
        live = self.live.get("ledger_assets")
        return live.messages if live is not None else 0

    def _sync_private(self) -> None:
        p = self.totals.private
        p["missed"] = self._missed_before + len(self.ledger.missed)
        p["duplicated"] = self._duplicated_before + len(self.ledger.duplicates)
        p["late"] = self._late_before + self.ledger.late
        p["reconciled_messages"] = self._reconciled_before + self.ledger.reconciled_messages
        if self.ledger.duplicates and RECONCILIATION is not None:
            self._fail(f"private events delivered twice: {self.ledger.duplicates[-3:]}")

    @property
    def _missed_before(self) -> int:
        return int(self._private_before("missed"))

    @property
    def _duplicated_before(self) -> int:
        return int(self._private_before("duplicated"))

    @property
    def _late_before(self) -> int:
        return int(self._private_before("late"))

    @property
    def _reconciled_before(self) -> int:
        return int(self._private_before("reconciled_messages"))

    def _private_before(self, key: str) -> int:
        return int(self.previous_line["private"][key]) if self.previous_line else 0

    # --- events, samples, progress -----------------------------------------------------------

    async def _watch(self, ws: WebSocketManager) -> None:
        """Record reopens, drops outside faults, key suspensions and reconciliations."""
        async for event in ws.events(queue_size=10_000):
            if isinstance(event, ConnectionStateChanged):
                if event.new == "open":
                    self.opens[event.connection].append(event.at)
                elif event.old in ("open", "degraded") and not self.in_fault:
                    if event.new == "degraded":
                        self.totals.suspicions += 1
                    else:
                        self.totals.unplanned_drops += 1
                    self.unplanned.append(f"{event.connection}: {event.old} -> {event.new}: ")
                    self.unplanned[-1] += event.reason
                    print(f"outside a fault: {self.unplanned[-1]}")  # noqa: T201 - in the log
                if (event.connection, event.new) == ("private", "suspended"):
                    self.suspended.set()
            elif (
                RECONCILIATION is not None
                and isinstance(event, RECONCILIATION)
                and event.connection == "private"
            ):
                self.reconciled_at.append(event.at)
                self.totals.private["reconciliations"] += 1
            self.signal.notify()

    def _sample(self) -> None:
        elapsed = asyncio.get_running_loop().time() - self._start
        self.samples.append((round(elapsed, 1), round(rss_mb(), 2), len(our_tasks())))

    def _fail(self, text: str) -> None:
        elapsed = asyncio.get_running_loop().time() - self._start
        line = f"seed {self.seed} segment {self.totals.segment} at {elapsed:.1f} s: {text}"
        _log.error("soak check failed: %s", line)
        self.failures.append(line)
        self._new_failures.append(line)

    def _write_line(self, *, final: bool) -> None:
        """Append one progress line: cumulative counters and the samples new since the last."""
        loop = asyncio.get_running_loop()
        segment_elapsed = loop.time() - self._start if self._start else 0.0
        rss, tasks = (self.samples[-1][1], self.samples[-1][2]) if self.samples else (rss_mb(), 0)
        t = self.totals
        line = {
            "v": 1,
            "segment": t.segment,
            "seed": self.seed,
            "subscribe_delay": self.subscribe_delay,
            "wall": round(time.time(), 1),
            "elapsed": round(t.elapsed + segment_elapsed, 1),
            "segment_elapsed": round(segment_elapsed, 1),
            "faults": dict(t.faults),
            "recovered": dict(t.recovered),
            "lost": self._new_lost,
            "lost_by_target": self._new_lost_target,
            "recovery": self._new_recovery,
            "down_seconds": round(t.down_seconds, 4),
            "list_checks": t.list_checks,
            "list_mismatches": t.list_mismatches,
            "list_latency": self._new_list_latency,
            "unplanned_drops": t.unplanned_drops,
            "suspicions": t.suspicions,
            "private": dict(t.private),
            "rss_mb": rss,
            "heap": heap_sample(),
            "tasks": tasks,
            "all_tasks": len(asyncio.all_tasks()),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "failures": self._new_failures,
            "final": final,
        }
        self._new_lost, self._new_recovery, self._new_lost_target = {}, {}, {}
        self._new_list_latency, self._new_failures = [], []
        if self.progress is None:
            self.lines.append(line)
        else:
            self.progress.parent.mkdir(parents=True, exist_ok=True)
            with self.progress.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")


def _matches(
    server: dict[str, set[tuple[str, str]]], wanted: dict[str, set[tuple[str, str]]]
) -> bool:
    """Whether Upbit streams what is wanted.

    With nothing wanted on public there is no request that empties a subscription: the
    library sends one ``is_only_snapshot`` ticker request for a single code instead (one
    frame, then quiet; core/planner.py), so Upbit lists that one ticker and nothing else.
    """
    if server.keys() != wanted.keys() or server["private"] != wanted["private"]:
        return False
    if not wanted["public"] and len(server["public"]) == 1:
        ((kind, _code),) = server["public"]
        return kind == "ticker"
    return server["public"] == wanted["public"]


def _server_streams(items: tuple[SubscribedType, ...] | None) -> set[tuple[str, str]]:
    """Turn a LIST_SUBSCRIPTIONS answer into (type, code) pairs; no codes means all."""
    streams: set[tuple[str, str]] = set()
    for item in items or ():
        if not item.codes:
            streams.add((item.type, "*"))
        streams.update((item.type, code) for code in item.codes)
    return streams


def _order_keys(order: RestOrder) -> set[OrderKey]:
    """Return the events the exchange has for an order: each fill, and its current state."""
    keys: set[OrderKey] = {("trade", trade.uuid) for trade in order.trades}
    keys.add((order.state, None))
    return keys


def _balance_diff(
    rest: dict[str, tuple[Decimal, Decimal]], delivered: dict[str, tuple[Decimal, Decimal]]
) -> dict[str, Any]:
    zero = (Decimal(0), Decimal(0))
    return {
        c: {
            "rest": [str(x) for x in rest.get(c, zero)],
            "delivered": [str(x) for x in delivered.get(c, zero)],
        }
        for c in sorted(rest.keys() | delivered.keys())
        if rest.get(c, zero) != delivered.get(c, zero)
    }


async def _retry(call: Callable[[], Awaitable[T]], *, within: float = 30.0) -> T:
    """Call a REST read until it succeeds (a fault may be dropping HTTP connections too)."""
    async with asyncio.timeout(within):
        while True:
            try:
                return await call()
            except UpbitWsError:
                await asyncio.sleep(0.2)
