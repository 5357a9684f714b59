"""A blocking script, no asyncio: KRW-BTC trades, the order book now and then, a coin switch.

.venv/bin/python examples/blocking.py [--base-url http://127.0.0.1:PORT] [--count 10]
"""
# ruff: noqa: T201  (an example prints)

import argparse
import os

from upbit_ws import sync

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--base-url", default=os.environ.get("UPBIT_BASE_URL", "https://api.upbit.com"))
parser.add_argument("--count", type=int, default=10, help="trades to print")
args = parser.parse_args()

with sync.WebSocketManager(base_url=args.base_url) as ws:
    tape = ws.component("tape").subscribe("trade", ["KRW-BTC"])
    book = ws.component("book").subscribe("orderbook", ["KRW-BTC"], depth=5)
    for n, trade in enumerate(tape, 1):
        print(
            f"trade {trade.code} {trade.ask_bid} {trade.trade_volume:.4f} @ {trade.trade_price:,}"
        )
        if n % 5 == 0:
            top = book.get(timeout=5)  # the newest book: order books conflate per code
            print(f"book  {top.code} bid {top.best_bid:,} / ask {top.best_ask:,}")
        if n == args.count:
            break
    book.update(["KRW-ETH"])  # one merged request; the tape keeps streaming
    print(f"book  {book.get(timeout=5).code} after the switch; healthy: {ws.health().ok}")
