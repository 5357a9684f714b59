"""Blocking upbit-ws: the asyncio manager on its own loop in one background thread.

For scripts and threaded applications that do not run asyncio::

    from upbit_ws import sync

    with sync.WebSocketManager() as ws:
        coins = ws.component("coin_list").subscribe("ticker", ["KRW-*"])
        for ticker in coins:
            print(ticker.code, ticker.trade_price)

``sub.get(timeout=1.0)``, ``sub.get_batch()``, ``sub.update(codes)``, ``sub.close()``,
``ws.events(timeout=...)``, ``ws.health()``, ``ws.statistics()`` and ``ws.subscriptions()``
mirror the asyncio API; see ``docs/desktop.md``.
"""

from __future__ import annotations

from upbit_ws.aio.logcontext import install_log_fields
from upbit_ws.sync.manager import Component, WebSocketManager
from upbit_ws.sync.stream import EndOfStream, EventStream, Subscription

install_log_fields()  # this package's loggers carry the structured fields too

__all__ = ["Component", "EndOfStream", "EventStream", "Subscription", "WebSocketManager"]

install_log_fields()  # this package's own logger carries the structured fields too
