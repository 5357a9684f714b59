"""What the numbers rule costs: decoding with Decimal fields against the same with floats.

The rule (docs/rest.md, "Numbers"): market data (ticker, trade, orderbook, candle) decodes to
``float``; money on the trader's account (myOrder, myAsset, REST exchange bodies) to
``Decimal``. This script decodes the same frames into two twins of one message class, one with
``float`` and one with ``Decimal`` for every amount, and prints the per-frame cost of each, for
myOrder (where we pay for Decimal) and ticker (where we chose not to). ``upbit_ws.decode`` is
timed too: the real path, union dispatch included.

Run: ``.venv/bin/python benchmarks/decimal_cost.py`` (``--frames``, ``--rounds``).
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import orjson

from upbit_ws.core.decode import decode
from upbit_ws.core.messages import MyOrder, Ticker


def _twin(cls: type[msgspec.Struct], *, to: type) -> type[msgspec.Struct]:
    """Return ``cls`` with every float/Decimal amount (optional or not) typed as ``to``."""
    amounts = {float, Decimal, float | None, Decimal | None}
    fields: list[tuple[str, Any, Any]] = []
    for info in msgspec.structs.fields(cls):
        kind = info.type
        if kind in amounts:
            kind = to | None if (kind in (float | None, Decimal | None)) else to
        default = info.default
        fields.append((info.name, kind, default))
    spec = [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in fields]
    return msgspec.defstruct(f"{cls.__name__}_{to.__name__}", spec, frozen=True, gc=False)


def _spell(rng: random.Random, value: float) -> str:
    """Spell a number the ways Upbit does (8 decimals, exponent, bare int, long fraction)."""
    pick = rng.random()
    if pick < 0.2:
        return f"{value:.8f}"
    if pick < 0.3:
        return f"{value:.5E}"
    if pick < 0.4:
        return str(int(value))
    return repr(value)


def my_order_frames(count: int, seed: int = 3) -> list[bytes]:
    """Return myOrder frames with realistic amounts (fills of a KRW-BTC limit order)."""
    rng = random.Random(seed)
    frames = []
    for i in range(count):
        price = rng.choice([109868000.0, 2715000.0, 512.0, 38.5])
        volume = round(rng.uniform(0.0001, 3), 8)
        executed = round(volume * rng.random(), 8)
        funds = price * executed
        amounts = {
            "price": price,
            "avg_price": price,
            "volume": volume,
            "remaining_volume": round(volume - executed, 8),
            "executed_volume": executed,
            "reserved_fee": price * volume * 0.0005,
            "remaining_fee": (price * volume - funds) * 0.0005,
            "paid_fee": funds * 0.0005,
            "locked": (price * volume - funds) * 1.0005,
            "executed_funds": funds,
            "trade_fee": funds * 0.0005,
            "prevented_volume": 0.0,
            "prevented_locked": 0.0,
        }
        head = {
            "type": "myOrder",
            "code": "KRW-BTC",
            "uuid": f"ac2dc2a3-fce9-40a2-a4f6-{i:012d}",
            "ask_bid": "BID",
            "order_type": "limit",
            "state": "trade",
            "trade_uuid": f"68315169-fba4-4175-ade3-{i:012d}",
        }
        body = ",".join(
            [orjson.dumps(head).decode()[1:-1]]
            + [f'"{k}":{_spell(rng, v)}' for k, v in amounts.items()]
            + [
                '"trades_count":1,"time_in_force":null,"is_maker":true,"identifier":null,'
                '"smp_type":null,"trade_timestamp":1710751590421,'
                '"order_timestamp":1710751590000,"timestamp":1710751597500,'
                '"stream_type":"REALTIME"'
            ]
        )
        frames.append(("{" + body + "}").encode())
    return frames


def ticker_frames(count: int, seed: int = 5) -> list[bytes]:
    """Return ticker frames (the hot market-data type) with Upbit's spellings."""
    rng = random.Random(seed)
    frames = []
    for i in range(count):
        price = rng.choice([109868000.0, 2715000.0, 512.0, 38.5])
        floats = {
            "opening_price": price * 0.99,
            "high_price": price * 1.02,
            "low_price": price * 0.97,
            "trade_price": price,
            "prev_closing_price": price * 0.98,
            "change_price": price * 0.02,
            "signed_change_price": price * 0.02,
            "change_rate": 0.0204081632,
            "signed_change_rate": 0.0204081632,
            "trade_volume": rng.uniform(0.0001, 2),
            "acc_trade_volume": rng.uniform(100, 9000),
            "acc_trade_price": rng.uniform(1e9, 9e11),
            "acc_ask_volume": rng.uniform(100, 5000),
            "acc_bid_volume": rng.uniform(100, 5000),
            "acc_trade_price_24h": rng.uniform(1e9, 9e11),
            "acc_trade_volume_24h": rng.uniform(100, 9000),
        }
        head = {
            "type": "ticker",
            "code": f"KRW-C{i % 200:03d}",
            "change": "RISE",
            "trade_date": "20260903",
            "trade_time": "120102",
            "trade_timestamp": 1787729042606 + i,
            "ask_bid": "BID",
            "timestamp": 1787729042700 + i,
            "stream_type": "REALTIME",
        }
        body = ",".join(
            [orjson.dumps(head).decode()[1:-1]]
            + [f'"{k}":{_spell(rng, v)}' for k, v in floats.items()]
        )
        frames.append(("{" + body + "}").encode())
    return frames


def _rate(fn: Callable[[bytes], Any], frames: Sequence[bytes]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for frame in frames:
            fn(frame)
        return len(frames) / (time.perf_counter() - start)
    finally:
        gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    """Time each decoder over the same frames, round-robin, and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    orders = my_order_frames(args.frames)
    tickers = ticker_frames(args.frames)
    cases: list[tuple[str, str, Callable[[bytes], Any], Sequence[bytes]]] = [
        ("myOrder", "float twin", msgspec.json.Decoder(_twin(MyOrder, to=float)).decode, orders),
        ("myOrder", "Decimal (MyOrder)", msgspec.json.Decoder(MyOrder).decode, orders),
        ("myOrder", "upbit_ws.decode", decode, orders),
        ("ticker", "float (Ticker)", msgspec.json.Decoder(Ticker).decode, tickers),
        ("ticker", "Decimal twin", msgspec.json.Decoder(_twin(Ticker, to=Decimal)).decode, tickers),
        ("ticker", "upbit_ws.decode", decode, tickers),
    ]
    for _, _, fn, frames in cases:  # warm up and check they decode
        fn(frames[0])
    rates: dict[tuple[str, str], list[float]] = {(k, n): [] for k, n, _, _ in cases}
    for _ in range(args.rounds):
        for kind, name, fn, frames in cases:
            rates[(kind, name)].append(_rate(fn, frames))
    print(
        f"Python {platform.python_version()}, msgspec {msgspec.__version__}, "
        f"{platform.machine()}, {args.frames:,} frames per type, {args.rounds} rounds"
    )
    print()
    print("| frame | decoded into | best msg/s | median msg/s | median µs/frame | time / float |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    base: dict[str, float] = {}
    for kind, name, _, _ in cases:
        best = max(rates[(kind, name)])
        median = statistics.median(rates[(kind, name)])
        if kind not in base:
            base[kind] = median
        ratio = base[kind] / median  # the first case of each kind is its float decoder
        print(
            f"| {kind} | {name} | {best:,.0f} | {median:,.0f} | {1e6 / median:.2f} | {ratio:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
