"""A small Qt trading window: KRW coin list, 15-level order book, connection state.

    .venv/bin/python examples/qt_trader.py [--base-url http://127.0.0.1:PORT] [--mode auto]

Two components share one connection: ``coin_list`` (ticker of every KRW market, painted at
most 60 times a second) and ``orderbook_view`` (the selected coin's book, 15 levels).
Selecting a coin calls ``book.update([code])``: the library sends one merged request carrying
both, and the coin list never notices. The status bar follows the connection state.
``--mode qasync`` runs the manager on a qasync loop instead of a background thread;
``--screenshot PATH`` saves the window once the book is filled, then quits.
"""
# ruff: noqa: T201  (an example prints)

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import sys
from typing import Any

from upbit_ws import Orderbook, Ticker
from upbit_ws.qt import WebSocketManager
from upbit_ws.qt.binding import QtCore, QtGui, QtWidgets

LEVELS = 15
STATE_COLORS = {"open": "#1b7f3b", "degraded": "#b26a00", "reconnecting": "#b00020"}
RISE, FALL = QtGui.QColor("#c62828"), QtGui.QColor("#1565c0")  # Upbit: red up, blue down


def _price(price: float) -> str:
    return f"{price:,.0f}" if price >= 1e5 else f"{price:,.8g}"


def _item(text: str, *, align: Any = None, color: QtGui.QColor | None = None) -> Any:
    item = QtWidgets.QTableWidgetItem(text)
    item.setTextAlignment(
        align or (QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
    )
    if color is not None:
        item.setForeground(color)
    return item


class TraderWindow(QtWidgets.QMainWindow):
    """The coin list, the order book of the selected coin and a status bar."""

    def __init__(self, base_url: str, *, mode: str = "auto", selected: str = "KRW-BTC") -> None:
        super().__init__()
        self.setWindowTitle("upbit-ws Qt trader")
        self.resize(900, 640)
        self.selected = selected
        self.book_code: str | None = None  # the coin the book table shows
        self.status_history: list[str] = []
        self._rows: list[str] = []  # coin table rows, sorted by code

        self.coins = QtWidgets.QTableWidget(0, 4)
        self.coins.setHorizontalHeaderLabels(["Market", "Price", "Change", "Value (24h)"])
        self.coins.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.coins.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.coins.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.coins.verticalHeader().setVisible(False)
        self.coins.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.coins.itemSelectionChanged.connect(self._select)

        self.book_title = QtWidgets.QLabel(f"Order book {selected}")
        self.book = QtWidgets.QTableWidget(2 * LEVELS, 3)
        self.book.setHorizontalHeaderLabels(["Ask size", "Price", "Bid size"])
        self.book.verticalHeader().setVisible(False)
        self.book.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.book.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.book.verticalHeader().setDefaultSectionSize(18)

        right = QtWidgets.QVBoxLayout()
        right.addWidget(self.book_title)
        right.addWidget(self.book)
        layout = QtWidgets.QHBoxLayout()
        layout.addWidget(self.coins, 3)
        layout.addLayout(right, 2)
        central = QtWidgets.QWidget()
        central.setLayout(layout)
        self.setCentralWidget(central)
        self.state_label = QtWidgets.QLabel("public: starting")
        self.info_label = QtWidgets.QLabel("")
        self.statusBar().addWidget(self.state_label)
        self.statusBar().addPermanentWidget(self.info_label)

        self.ws = WebSocketManager(base_url=base_url, mode=mode, parent=self)  # type: ignore[arg-type]
        self.ws.connection_state.connect(self._show_state)
        self.ws.gap.connect(lambda gap: self.info_label.setText(f"gap in {gap.type} {gap.code}"))
        self.ws.started.connect(self._subscribe)
        self.ws.start()

    # --- wiring -------------------------------------------------------------------------------

    def _subscribe(self) -> None:
        """Subscribe both components once the manager runs."""
        self.ticker = self.ws.component("coin_list").subscribe("ticker", ["KRW-*"])
        self.ticker.batch.connect(self._show_tickers)
        self.orderbook = self.ws.component("orderbook_view").subscribe(
            "orderbook", [self.selected], depth=LEVELS
        )
        self.orderbook.batch.connect(self._show_books)

    def _select(self) -> None:
        """Switch the order book to the selected coin: one merged request."""
        rows = self.coins.selectionModel().selectedRows()
        if not rows:
            return
        code = self._rows[rows[0].row()]
        if code != self.selected:
            self.selected = code
            self.book_title.setText(f"Order book {code} (switching...)")
            self.orderbook.update([code])

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        """Closing the window stops the manager: sockets, tasks and its thread."""
        self.ws.close()
        super().closeEvent(event)

    # --- painting -------------------------------------------------------------------------

    def _show_state(self, connection: str, state: str, reason: str) -> None:
        text = f"{connection}: {state}" + (f" ({reason})" if reason and state != "open" else "")
        self.status_history.append(f"{connection}: {state}")
        self.state_label.setText(text)
        color = STATE_COLORS.get(state, "#555555")
        self.state_label.setStyleSheet(f"color: {color}; font-weight: bold")

    def _show_tickers(self, batch: list[Ticker]) -> None:
        for ticker in batch:
            row = self._row_of(ticker.code)
            rate = ticker.signed_change_rate
            color = RISE if rate > 0 else FALL if rate < 0 else None
            value = ticker.acc_trade_price_24h or ticker.acc_trade_price
            self.coins.setItem(row, 1, _item(_price(ticker.trade_price), color=color))
            self.coins.setItem(row, 2, _item(f"{rate * 100:+.2f}%", color=color))
            self.coins.setItem(row, 3, _item(f"{value / 1e6:,.0f}M"))
        self.info_label.setText(f"{len(self._rows)} KRW markets")

    def _row_of(self, code: str) -> int:
        index = bisect.bisect_left(self._rows, code)
        if index == len(self._rows) or self._rows[index] != code:
            self._rows.insert(index, code)
            self.coins.insertRow(index)
            left = QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter
            self.coins.setItem(index, 0, _item(code, align=left))
            if code == self.selected and not self.coins.selectedItems():
                self.coins.selectRow(index)
        return index

    def _show_books(self, batch: list[Orderbook]) -> None:
        books = [b for b in batch if b.code == self.selected]
        if not books:
            return
        book = books[-1]
        units = book.orderbook_units[:LEVELS]
        for i in range(LEVELS):
            ask_row, bid_row = LEVELS - 1 - i, LEVELS + i
            if i < len(units):
                unit = units[i]
                self.book.setItem(ask_row, 0, _item(f"{unit.ask_size:,.4f}", color=FALL))
                self.book.setItem(ask_row, 1, _item(_price(unit.ask_price), color=FALL))
                self.book.setItem(ask_row, 2, _item(""))
                self.book.setItem(bid_row, 0, _item(""))
                self.book.setItem(bid_row, 1, _item(_price(unit.bid_price), color=RISE))
                self.book.setItem(bid_row, 2, _item(f"{unit.bid_size:,.4f}", color=RISE))
        self.book_code = book.code
        self.book_title.setText(f"Order book {book.code}  ({len(units)} levels)")


def main(argv: list[str] | None = None) -> int:
    """Run the window until it is closed (or, with --screenshot, until the book is filled)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-url", default=os.environ.get("UPBIT_BASE_URL", "https://api.upbit.com")
    )
    parser.add_argument("--mode", choices=["auto", "thread", "qasync"], default="auto")
    parser.add_argument("--screenshot", help="save the window to this PNG once filled, then quit")
    args = parser.parse_args(argv)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    loop = None
    if args.mode == "qasync":
        import qasync

        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
    window = TraderWindow(args.base_url, mode=args.mode)
    window.show()
    if args.screenshot:
        timer = QtCore.QTimer(window)

        def shoot() -> None:
            filled = window.book_code and window.book.item(0, 1) and window.coins.selectedItems()
            if filled and window.coins.rowCount() >= 5:
                timer.stop()
                window.coins.scrollToItem(window.coins.selectedItems()[0])
                window.grab().save(args.screenshot)
                print(f"saved {args.screenshot}", flush=True)
                window.close()

        timer.timeout.connect(shoot)
        timer.start(500)
    if loop is not None:
        # The manager closes on the qasync loop: keep it running until that is done.
        app.setQuitOnLastWindowClosed(False)
        with loop:
            closed = asyncio.Event()
            window.ws.closed.connect(closed.set)
            loop.run_until_complete(closed.wait())
        return 0
    window.ws.closed.connect(app.quit)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
