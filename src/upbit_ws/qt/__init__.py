"""Qt bridge (extra ``qt``): subscriptions and connection state as Qt signals on the GUI thread.

``upbit_ws.qt.WebSocketManager`` runs the manager on a background thread for a plain
``QApplication.exec()`` app, or on the qasync loop when one runs; see
:mod:`upbit_ws.qt.manager` and ``docs/desktop.md``. PySide6 or PyQt6, through
:mod:`upbit_ws.qt.binding`.
"""

from __future__ import annotations

from upbit_ws.qt.manager import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_RATE,
    Component,
    Subscription,
    WebSocketManager,
)

__all__ = ["DEFAULT_MAX_ITEMS", "DEFAULT_RATE", "Component", "Subscription", "WebSocketManager"]
