"""The blocking facade: the asyncio manager on its own loop in one background thread.

::

    from upbit_ws import sync

    with sync.WebSocketManager() as ws:
        book = ws.component("orderbook_view").subscribe("orderbook", ["KRW-BTC"], depth=15)
        for msg in book:
            ...

There is one engine: :class:`WebSocketManager` builds an :class:`upbit_ws.WebSocketManager`
on a :class:`~upbit_ws.sync.loop.LoopThread` and forwards every call to it on that loop, so
connections, recovery, the merged subscription and the overflow policies are the asyncio
ones. Snapshots (``health()``, ``statistics()``, ``subscriptions()``) are taken on the loop,
so they are consistent.

Shutdown: leaving ``with`` (also by an exception such as ``KeyboardInterrupt`` from Ctrl-C in
a blocked ``get()``), :meth:`WebSocketManager.close`, garbage collection or interpreter exit
(a ``weakref.finalize``) closes the manager, ends every subscription, stops and closes the
loop and joins the thread. ``ws.loop``, ``ws.aio`` and :meth:`WebSocketManager.run` give access
to the asyncio side for what the facade does not wrap (``ws.run(ws.aio.rest.market_all())``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Literal, TypeVar, overload

from upbit_ws.aio.component import Component as AioComponent
from upbit_ws.aio.component import SubscriptionsView
from upbit_ws.aio.events import DEFAULT_EVENT_QUEUE
from upbit_ws.aio.manager import DEFAULT_READY_TIMEOUT, Health, ManagerStatistics
from upbit_ws.aio.manager import WebSocketManager as AioManager
from upbit_ws.core.auth import Credentials
from upbit_ws.core.buffer import OverflowPolicy
from upbit_ws.core.config import ConnectionConfig
from upbit_ws.core.constants import DEFAULT_BASE_URL, check_timeout
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.messages import (
    Candle,
    CandleType,
    MyAsset,
    MyOrder,
    Orderbook,
    Ticker,
    Trade,
)
from upbit_ws.core.ratelimit import ConnectLimiter
from upbit_ws.sync.loop import STOP_TIMEOUT, LoopThread
from upbit_ws.sync.stream import EventStream, Subscription

__all__ = ["Component", "WebSocketManager"]

T = TypeVar("T")


class _Shared:
    """What the facade, its components and the finalizer share (never the facade itself)."""

    __slots__ = ("aio", "runner", "subs")

    def __init__(self, runner: LoopThread) -> None:
        self.runner = runner
        self.aio: AioManager | None = None
        # One blocking wrapper per asyncio subscription, so two handles never race for items.
        self.subs: weakref.WeakValueDictionary[int, Subscription[Any]] = (
            weakref.WeakValueDictionary()
        )

    def wrap(self, aio_sub: Any) -> Subscription[Any]:
        sub = self.subs.get(int(aio_sub.sub_id))
        if sub is None or sub.aio is not aio_sub:
            sub = Subscription(self.runner, aio_sub)
            self.subs[int(aio_sub.sub_id)] = sub
        return sub


def _shutdown(shared: _Shared, timeout: float) -> None:
    """Close the asyncio manager on its loop, then stop the loop and join the thread."""
    aio = shared.aio

    async def last() -> None:
        if aio is not None:
            await aio.aclose()

    runner = shared.runner
    if runner.in_loop_thread():
        # Dropped by code running on the loop itself: the loop cannot join its own thread.
        threading.Thread(
            target=runner.stop, args=(last,), kwargs={"timeout": timeout}, daemon=True
        ).start()
        return
    runner.stop(last, timeout=timeout)


class WebSocketManager:
    """Blocking Upbit WebSockets: the asyncio manager on a background thread; see module docs.

    Takes the asyncio manager's main keywords (``base_url``, ``credentials``, ``config``,
    ``event_queue_size``, ``connect_limiter``, ``ready_timeout``). ``start()`` (or ``with``)
    starts the thread and the manager and returns once the manager's ``start()`` did (with
    ``ready_timeout``: once every wanted connection is ready, see :meth:`wait_ready`).
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        credentials: Credentials | None = None,
        config: ConnectionConfig | None = None,
        event_queue_size: int = DEFAULT_EVENT_QUEUE,
        connect_limiter: ConnectLimiter | None = None,
        close_timeout: float = STOP_TIMEOUT,
        ready_timeout: float | None = None,
    ) -> None:
        self._options: dict[str, Any] = {
            "base_url": base_url,
            "credentials": credentials,
            "config": config,
            "event_queue_size": event_queue_size,
            "connect_limiter": connect_limiter,
            "ready_timeout": ready_timeout,
        }
        self.base_url = base_url
        self.close_timeout = close_timeout
        self._shared = _Shared(LoopThread())
        self._lock = threading.Lock()
        self._started = False
        self._finalizer = weakref.finalize(self, _shutdown, self._shared, close_timeout)

    def __repr__(self) -> str:
        aio = self._shared.aio
        inner = repr(aio) if aio is not None else "not started"
        return f"<sync.WebSocketManager {inner}>"

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread and the manager; raise here what the manager's start raised."""
        with self._lock:
            if self._started:
                raise InvalidInputError("start() can be called once")
            self._started = True
        aio = self._create()
        try:
            self._shared.runner.run(aio.start())
        except BaseException:
            self.close()
            raise

    def _create(self) -> AioManager:
        """Start the loop thread and build the (not started) manager on it, once."""
        with self._lock:
            aio = self._shared.aio
            if aio is not None:
                return aio
            if self.closed:
                raise InvalidInputError("the manager is closed; create a new one")
            runner = self._shared.runner
            runner.start()
            try:
                aio = self._shared.aio = runner.call(lambda: AioManager(**self._options))
            except BaseException:
                self._finalizer()
                raise
            return aio

    def close(self) -> None:
        """Close the manager, end every subscription, stop the loop, join the thread."""
        self._finalizer()

    def __enter__(self) -> WebSocketManager:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Tell whether :meth:`close` ran (or the finalizer did)."""
        return not self._finalizer.alive

    @property
    def loop(self) -> Any:
        """Return the background asyncio loop (closed after :meth:`close`)."""
        return self._shared.runner.loop

    @property
    def thread(self) -> Any:
        """Return the background thread."""
        return self._shared.runner.thread

    @property
    def aio(self) -> AioManager:
        """Return the asyncio manager underneath; touch it only on :attr:`loop` (see run/call).

        Before :meth:`start`, the first use starts the loop thread and builds the manager
        (not started), as :meth:`events` does.
        """
        return self._create()

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run a coroutine on the manager's loop and return its result in this thread."""
        return self._shared.runner.run(coro, timeout=timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the manager's loop and return its result in this thread."""
        return self._shared.runner.call(fn, *args)

    # --- subscriptions and events -----------------------------------------------------------

    def component(self, name: str) -> Component:
        """Return the handle of component ``name``: ``ws.component("chart").subscribe(...)``."""
        return Component(self._shared, self._shared.runner.call(self.aio.component, name))

    def events(self, *, timeout: float | None = None, queue_size: int | None = None) -> EventStream:
        """Return a new blocking stream of system events (state changes, key problems, gaps).

        Events published from this call on are queued (bounded; the oldest is dropped when
        full); call it before :meth:`start` to see the start too. ``timeout`` ends a ``for``
        loop over it after that long without an event.
        """
        check_timeout(timeout)  # before a stream is registered that nobody would read
        aio = self.aio
        stream = self._shared.runner.call(lambda: aio.events(queue_size=queue_size))
        return EventStream(self._shared.runner, stream, timeout)

    def subscriptions(self) -> SubscriptionsView:
        """Return the merged subscription per connection and component."""
        aio = self.aio
        return self._snapshot(lambda: aio.subscriptions())

    def list_subscriptions(self) -> SubscriptionsView:
        """Return :meth:`subscriptions` plus what Upbit says each socket streams (blocks).

        Asks Upbit with LIST_SUBSCRIPTIONS on both connections at once (it counts toward the
        message limit).
        """
        return self.run(self.aio.list_subscriptions())

    # --- snapshots --------------------------------------------------------------------------

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Block until every wanted connection is open and its subscription confirmed.

        As the asyncio :meth:`~upbit_ws.aio.manager.WebSocketManager.wait_ready`, with its
        errors (``NotReadyError``, ``ConfigError``, ``AuthError``).
        """
        aio = self.aio
        self._shared.runner.run(aio.wait_ready(timeout))

    def health(self) -> Health:
        """Return whether each connection is usable now, and the key status."""
        return self._snapshot(self.aio.health)

    def statistics(self) -> ManagerStatistics:
        """Return a snapshot of every part of the manager."""
        return self._snapshot(self.aio.statistics)

    def _snapshot(self, fn: Callable[[], T]) -> T:
        runner = self._shared.runner
        if runner.running:
            return runner.call(fn)
        # Stopped: nothing mutates the manager any more, so read it here.
        runner.thread.join()
        return fn()


class Component:
    """A named holder of subscriptions; get one with ``ws.component(name)``."""

    __slots__ = ("_aio", "_shared")

    def __init__(self, shared: _Shared, aio: AioComponent) -> None:
        self._shared = shared
        self._aio = aio

    def __repr__(self) -> str:
        return f"<sync.Component {self._aio.name!r}>"

    @property
    def name(self) -> str:
        """Return the component's name."""
        return self._aio.name

    @overload
    def subscribe(
        self,
        type: Literal["ticker"],
        codes: Iterable[str],
        *,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[Ticker]: ...

    @overload
    def subscribe(
        self,
        type: Literal["trade"],
        codes: Iterable[str],
        *,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[Trade]: ...

    @overload
    def subscribe(
        self,
        type: Literal["orderbook"],
        codes: Iterable[str],
        *,
        depth: int | None = None,
        level: int | float | None = None,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[Orderbook]: ...

    @overload
    def subscribe(
        self,
        type: CandleType,
        codes: Iterable[str],
        *,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[Candle]: ...

    @overload
    def subscribe(
        self,
        type: Literal["myOrder"],
        codes: Iterable[str] = (),
        *,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[MyOrder]: ...

    @overload
    def subscribe(
        self,
        type: Literal["myAsset"],
        codes: Iterable[str] = (),
        *,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[MyAsset]: ...

    @overload
    def subscribe(
        self,
        type: str,
        codes: Iterable[str] = (),
        *,
        depth: int | None = None,
        level: int | float | None = None,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[Any]: ...

    def subscribe(
        self,
        type: str,
        codes: Iterable[str] = (),
        *,
        depth: int | None = None,
        level: int | float | None = None,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
    ) -> Subscription[Any]:
        """Subscribe to ``type`` for ``codes``; the arguments of ``Component.subscribe``.

        Raises ``UnknownCodeError`` / ``InvalidInputError`` here, in the caller's thread.
        """
        wanted = list(codes)
        aio_sub = self._shared.runner.call(
            lambda: self._aio.subscribe(
                type, wanted, depth=depth, level=level, policy=policy, capacity=capacity
            )
        )
        return self._shared.wrap(aio_sub)

    def subscriptions(self) -> tuple[Subscription[Any], ...]:
        """Return this component's live subscriptions, oldest first."""
        subs = self._shared.runner.call(self._aio.subscriptions)
        return tuple(self._shared.wrap(s) for s in subs)

    def close(self) -> None:
        """Drop every subscription of this component; their iterations end."""
        self._shared.runner.run(self._aio.aclose())
