"""Qt objects over the manager: subscriptions and connection state as signals on the GUI thread.

::

    from upbit_ws.qt import WebSocketManager

    ws = WebSocketManager(parent=window)          # mode="auto": qasync if its loop runs
    ws.connection_state.connect(status_bar.show_state)
    ws.start()
    book = ws.component("orderbook_view").subscribe("orderbook", ["KRW-BTC"], depth=15)
    book.batch.connect(view.show_books)           # at most 60 batches a second
    book.update(["KRW-ETH"])                      # one merged request; never blocks the GUI

Every signal is emitted on the thread the objects live in (create them on the GUI thread).
``mode="thread"`` runs the manager on :mod:`upbit_ws.sync`'s background thread (a plain
``QApplication.exec()``); ``mode="qasync"`` runs it on the qasync loop; ``"auto"`` picks qasync
when a qasync loop runs or is set in this thread.

Flow control: each subscription has one pump on the manager's loop that takes what waits in
the subscription's bounded buffer (``batches()``), hands it to the GUI thread and waits until
the GUI has emitted it before taking more, and, with a ``rate``, until the next frame is due.
So nothing queues up between the buffer and the GUI: a GUI that paints slowly leaves messages
in the buffer, where the overflow policy conflates (``latest``) or drops them with a counted
gap, exactly as for an async consumer.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable
from functools import partial
from typing import Any, Final, Literal

from upbit_ws.aio.component import Component as AioComponent
from upbit_ws.aio.component import SubscriptionsView
from upbit_ws.aio.events import EventStream as AioEventStream
from upbit_ws.aio.manager import Health, ManagerStatistics
from upbit_ws.aio.manager import WebSocketManager as AioManager
from upbit_ws.aio.stream import Subscription as AioSubscription
from upbit_ws.aio.stream import SubscriptionStatistics
from upbit_ws.core.auth import Credentials
from upbit_ws.core.buffer import OverflowPolicy
from upbit_ws.core.config import ConnectionConfig
from upbit_ws.core.constants import DEFAULT_BASE_URL
from upbit_ws.core.errors import InvalidInputError
from upbit_ws.core.events import (
    ConnectionStateChanged,
    Event,
    GapEvent,
    KeyExpiringSoon,
    KeyProblem,
    KeyRecovered,
    RequestRejected,
)
from upbit_ws.qt.binding import QCoreApplication, QObject, Signal
from upbit_ws.qt.engine import Engine, QasyncEngine, ThreadEngine, gui_mailbox, qasync_loop
from upbit_ws.sync.loop import STOP_TIMEOUT
from upbit_ws.sync.manager import WebSocketManager as SyncManager

__all__ = ["DEFAULT_MAX_ITEMS", "DEFAULT_RATE", "Component", "Subscription", "WebSocketManager"]

#: Batches a second a throttled subscription emits at most: what a screen paints.
DEFAULT_RATE: Final = 60.0
#: Largest batch handed over at once (the ``latest`` buffers hold up to 1024 codes).
DEFAULT_MAX_ITEMS: Final = 1024

Mode = Literal["auto", "thread", "qasync"]
_Lifecycle = Literal["new", "starting", "running", "closing", "closed"]


def _release(ack: asyncio.Future[None]) -> None:
    if not ack.done():
        ack.set_result(None)


class WebSocketManager(QObject):
    """The manager for a Qt app; see the module docs.

    Takes the asyncio manager's main keywords plus ``mode`` and ``parent``. Signals carry the
    library's typed events; ``connection_state(connection, state, reason)`` is the one a
    status bar needs (every change from ``start()`` on; :attr:`states` keeps the last).
    """

    started = Signal()
    closed = Signal()
    #: An exception from ``start()`` in qasync mode (thread mode raises it from start()).
    failed = Signal(object)
    #: Every system event (:data:`upbit_ws.Event`).
    system_event = Signal(object)
    #: ``(connection, state, reason)``: ``"public"``, ``"open"``, ``"pong timeout"``.
    connection_state = Signal(str, str, str)
    state_changed = Signal(object)
    key_problem = Signal(object)
    key_recovered = Signal(object)
    key_expiring = Signal(object)
    gap = Signal(object)
    request_rejected = Signal(object)

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        credentials: Credentials | None = None,
        config: ConnectionConfig | None = None,
        mode: Mode = "auto",
        close_timeout: float = STOP_TIMEOUT,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        options: dict[str, Any] = {
            "base_url": base_url,
            "credentials": credentials,
            "config": config,
        }
        loop = qasync_loop()
        if mode == "auto":
            mode = "qasync" if loop is not None else "thread"
        self.mode: Literal["thread", "qasync"]
        self._engine: Engine
        if mode == "qasync":
            if loop is None:
                raise InvalidInputError(
                    "mode='qasync' needs a qasync loop: create qasync.QEventLoop(app) and "
                    "asyncio.set_event_loop() it before the manager"
                )
            self.mode = "qasync"
            self._engine = QasyncEngine(AioManager(**options), loop)
        elif mode == "thread":
            self.mode = "thread"
            sync = SyncManager(**options, close_timeout=close_timeout)
            self._engine = ThreadEngine(sync, gui_mailbox())
        else:
            raise InvalidInputError(f"mode must be 'auto', 'thread' or 'qasync', not {mode!r}")
        self.base_url = base_url
        self._lifecycle: _Lifecycle = "new"
        self._start_error: BaseException | None = None
        #: The last state seen per connection, as ``connection_state`` reported it.
        self.states: dict[str, str] = {}
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.close)

    def __repr__(self) -> str:
        return f"<qt.WebSocketManager {self.base_url} {self.mode} {self._lifecycle}>"

    @property
    def aio(self) -> AioManager:
        """Return the asyncio manager (touch it on :attr:`loop` only)."""
        return self._engine.aio

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """Return the loop the manager runs on."""
        return self._engine.loop

    @property
    def running(self) -> bool:
        """Tell whether the manager started and is not closing."""
        return self._lifecycle == "running"

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the manager; ``started`` is emitted when it runs.

        Thread mode returns once the manager started and raises what its start raised;
        qasync mode returns at once and emits ``failed`` on an error.
        """
        if self._lifecycle != "new":
            raise InvalidInputError(f"start() can be called once; the manager is {self._lifecycle}")
        self._lifecycle = "starting"
        try:
            aio = self.aio
            # Subscribed before the start, so the status bar sees it (connecting, open, a key
            # refused at start...).
            stream = self._engine.call(aio.events)
        except BaseException:
            self._lifecycle = "closed"
            raise
        self._engine.spawn(_pump_events(weakref.ref(self), self._engine, stream))
        self._engine.start(self._on_started)
        if self.mode == "thread" and self._start_error is not None:
            raise self._start_error

    def _on_started(self, error: BaseException | None) -> None:
        if error is not None:
            self._start_error = error
            self._lifecycle = "closed"
            if self.mode == "qasync":
                self.failed.emit(error)
            return
        if self._lifecycle != "starting":
            return
        self._lifecycle = "running"
        self.started.emit()

    def close(self) -> None:
        """Close the manager; every subscription ends; ``closed`` is emitted when all stopped.

        Thread mode returns after the background thread stopped; qasync mode at once.
        """
        if self._lifecycle in ("closing", "closed"):
            return
        self._lifecycle = "closing"
        self._engine.close(self._on_closed)

    def _on_closed(self) -> None:
        self._lifecycle = "closed"
        self.closed.emit()

    # --- subscriptions ----------------------------------------------------------------------

    def component(self, name: str) -> Component:
        """Return the handle of component ``name``: ``ws.component("chart").subscribe(...)``."""
        if self._lifecycle != "running":
            raise InvalidInputError(f"the manager is {self._lifecycle}: start() it first")
        aio = self.aio
        return Component(self, self._engine.call(lambda: aio.component(name)))

    def subscriptions(self) -> SubscriptionsView:
        """Return the merged subscription per connection and per component."""
        aio = self.aio
        return self._engine.call(lambda: aio.subscriptions())

    def health(self) -> Health:
        """Return whether each connection is usable now, and the key status."""
        return self._engine.call(self.aio.health)

    def statistics(self) -> ManagerStatistics:
        """Return a snapshot of every part of the manager."""
        return self._engine.call(self.aio.statistics)

    # --- events -----------------------------------------------------------------------------

    def _emit_events(self, batch: list[Event]) -> None:
        for event in batch:
            self.system_event.emit(event)
            if isinstance(event, ConnectionStateChanged):
                self._set_state(event.connection, event.new, event.reason)
                self.state_changed.emit(event)
            elif isinstance(event, KeyProblem):
                self.key_problem.emit(event)
            elif isinstance(event, KeyRecovered):
                self.key_recovered.emit(event)
            elif isinstance(event, KeyExpiringSoon):
                self.key_expiring.emit(event)
            elif isinstance(event, GapEvent):
                self.gap.emit(event)
            elif isinstance(event, RequestRejected):
                self.request_rejected.emit(event)

    def _set_state(self, connection: str, state: str, reason: str) -> None:
        self.states[connection] = state
        self.connection_state.emit(connection, state, reason)


class Component:
    """A named holder of subscriptions; get one with ``ws.component(name)``."""

    __slots__ = ("_aio", "_manager")

    def __init__(self, manager: WebSocketManager, aio: AioComponent) -> None:
        self._manager = manager
        self._aio = aio

    def __repr__(self) -> str:
        return f"<qt.Component {self._aio.name!r}>"

    @property
    def name(self) -> str:
        """Return the component's name."""
        return self._aio.name

    def subscribe(
        self,
        type: str,
        codes: Iterable[str] = (),
        *,
        depth: int | None = None,
        level: int | float | None = None,
        policy: OverflowPolicy | None = None,
        capacity: int | None = None,
        rate: float | None = DEFAULT_RATE,
        max_items: int = DEFAULT_MAX_ITEMS,
    ) -> Subscription:
        """Subscribe (the arguments of ``Component.subscribe``) and return a Qt subscription.

        ``rate`` (per second) throttles: ``batch(list)`` is emitted at most that often with
        what waited; ``rate=None`` emits ``message(msg)`` for every message as it comes.
        Raises ``UnknownCodeError`` / ``InvalidInputError`` here.
        """
        if rate is not None and not rate > 0:
            raise InvalidInputError(f"rate must be > 0 batches a second or None, not {rate!r}")
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise InvalidInputError(f"max_items must be an integer >= 1, not {max_items!r}")
        wanted = list(codes)
        aio = self._manager._engine.call(
            lambda: self._aio.subscribe(
                type, wanted, depth=depth, level=level, policy=policy, capacity=capacity
            )
        )
        return Subscription(self._manager, aio, rate=rate, max_items=max_items)

    def close(self) -> None:
        """Drop every subscription of this component (their ``ended`` signals follow)."""
        self._manager._engine.spawn(self._aio.aclose())


class Subscription(QObject):
    """One subscription as a QObject: ``message`` or ``batch`` signals on the GUI thread.

    ``ended(error)`` is emitted once when it ends (``None`` after ``close()`` or a shutdown);
    ``updated()`` / ``error(exception)`` answer :meth:`update`.
    """

    message = Signal(object)
    batch = Signal(list)
    updated = Signal()
    error = Signal(object)
    ended = Signal(object)

    def __init__(
        self,
        manager: WebSocketManager,
        aio: AioSubscription[Any],
        *,
        rate: float | None,
        max_items: int,
    ) -> None:
        super().__init__(manager)
        self._engine = manager._engine
        self._aio = aio
        self.rate = rate
        self.max_items = max_items
        self._engine.spawn(
            _pump_subscription(weakref.ref(self), self._engine, aio, rate=rate, max_items=max_items)
        )

    def __repr__(self) -> str:
        return repr(self._aio).replace("<Subscription", "<qt.Subscription", 1)

    @property
    def aio(self) -> AioSubscription[Any]:
        """Return the asyncio subscription (touch it on the manager's loop only)."""
        return self._aio

    @property
    def codes(self) -> tuple[str, ...]:
        """Return the resolved market codes."""
        return self._aio.codes

    @property
    def type(self) -> str:
        """Return the data type."""
        return self._aio.type

    @property
    def closed(self) -> bool:
        """Tell whether the subscription ended."""
        return self._aio.closed

    def update(self, codes: Iterable[str]) -> None:
        """Replace the codes (one merged request); ``updated`` or ``error`` follows."""
        wanted = list(codes)
        weak, aio, engine = weakref.ref(self), self._aio, self._engine

        async def run() -> None:
            try:
                await aio.update(wanted)
            except Exception as exc:
                engine.to_gui(partial(_emit, weak, "error", exc))
                return
            engine.to_gui(partial(_emit, weak, "updated"))

        engine.spawn(run())

    def close(self) -> None:
        """Unsubscribe; ``ended(None)`` follows."""
        self._engine.spawn(self._aio.aclose())

    def statistics(self) -> SubscriptionStatistics:
        """Return a snapshot of the subscription's buffer counters."""
        return self._engine.call(self._aio.statistics)

    def _deliver(self, batch: list[Any]) -> None:
        if self.rate is None:
            for message in batch:
                self.message.emit(message)
        else:
            self.batch.emit(batch)


# The pumps run on the manager's loop and hold the Qt objects only weakly: the last reference
# to a QObject must drop on the GUI thread, where it lives, never on the loop's thread.


async def _pump_events(
    weak: weakref.ref[WebSocketManager], engine: Engine, stream: AioEventStream
) -> None:
    """Hand events to the GUI a batch at a time, each after the last was emitted."""
    loop = asyncio.get_running_loop()
    async for first in stream:
        batch: list[Event] = [first]
        while (more := stream.get_nowait()) is not None:
            batch.append(more)
        ack: asyncio.Future[None] = loop.create_future()
        engine.to_gui(partial(_hand_over, engine, weak, "_emit_events", batch, ack))
        await ack


async def _pump_subscription(
    weak: weakref.ref[Subscription],
    engine: Engine,
    aio: AioSubscription[Any],
    *,
    rate: float | None,
    max_items: int,
) -> None:
    """Hand batches to the GUI, one at a time, at most ``rate`` a second; then ``ended``."""
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate if rate else 0.0
    error: BaseException | None = None
    try:
        async for batch in aio.batches(max_items=max_items):
            taken = loop.time()
            ack: asyncio.Future[None] = loop.create_future()
            engine.to_gui(partial(_hand_over, engine, weak, "_deliver", batch, ack))
            await ack
            if interval:
                delay = taken + interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing to the frame rate
    except Exception as exc:
        error = exc
    engine.to_gui(partial(_emit, weak, "ended", error))


def _hand_over(
    engine: Engine,
    weak: weakref.ref[Any],
    method: str,
    batch: list[Any],
    ack: asyncio.Future[None],
) -> None:
    """On the GUI thread: pass ``batch`` to the object's ``method``, then release the pump."""
    try:
        target = weak()
        if target is not None:
            getattr(target, method)(batch)
    finally:
        engine.to_loop(partial(_release, ack))


def _emit(weak: weakref.ref[Any], signal: str, *args: Any) -> None:
    """On the GUI thread: emit ``signal`` of the object, if it still exists."""
    target = weak()
    if target is not None:
        getattr(target, signal).emit(*args)
