"""Decode throughput: upbit_ws.decode against orjson.loads and msgspec-to-dict, in one run.

Builds a realistic mix of Upbit frames (ticker, trade, 15- and 30-unit orderbooks for 200 KRW
markets, with the number spellings Upbit uses: ``91361000.0``, ``106691000.00000000``,
``9.101E-5``, ``0E-8``, bare integers) in DEFAULT and SIMPLE format, then times each decoder
over the same frames for several rounds and prints a markdown table (best and median rate).

Run: ``.venv/bin/python benchmarks/decode.py`` (``--rounds``, ``--frames``, ``--markdown FILE``
to also write the table).
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
from typing import Any

import msgspec
import orjson

from upbit_ws.core.decode import decode, decode_all
from upbit_ws.core.messages import SIMPLE_KEYS

Decoder = Callable[[bytes], Any]


def _number(rng: random.Random, value: float, decimals: int) -> str:
    """Spell ``value`` the ways Upbit does: trailing zeros, 8 decimals, exponents, bare ints."""
    if value == 0:
        return rng.choice(["0", "0.0", "0E-8", "0.00000000"])
    if value == int(value) and rng.random() < 0.3:
        return str(int(value))
    if abs(value) < 1e-3 and rng.random() < 0.5:
        return f"{value:.4E}".replace("E-0", "E-")
    if value >= 1e8 and rng.random() < 0.2:
        return f"{value:.5E}".replace("E+0", "E").replace("E+", "E")
    if rng.random() < 0.3:
        return f"{value:.{decimals}f}"
    return repr(float(round(value, decimals)))


def _obj(rng: random.Random, fields: dict[str, Any], decimals: dict[str, int]) -> str:
    parts = []
    for key, value in fields.items():
        if isinstance(value, float):
            parts.append(f'"{key}":{_number(rng, value, decimals.get(key, 8))}')
        elif isinstance(value, list):
            parts.append(f'"{key}":[' + ",".join(value) + "]")
        else:
            parts.append(f'"{key}":{orjson.dumps(value).decode()}')
    return "{" + ",".join(parts) + "}"


def _simple(fields: dict[str, Any], kind: str) -> dict[str, Any]:
    keys = SIMPLE_KEYS[kind]
    return {keys.get(k, k): v for k, v in fields.items()}


def build_frames(count: int, *, simple: bool, seed: int = 7) -> list[bytes]:
    """Return ``count`` frames: ticker, trade, 15-unit and 30-unit orderbooks in equal parts."""
    rng = random.Random(seed)
    codes = [f"KRW-C{i:03d}" for i in range(200)]
    frames: list[bytes] = []
    for i in range(count):
        code = rng.choice(codes)
        price = float(rng.choice([1000, 10000, 109868000, 2715000, 512, 38.5]))
        ts = 1787729042606 + i * 7
        kind = ("ticker", "trade", "orderbook", "orderbook")[i % 4]
        if kind == "ticker":
            f: dict[str, Any] = {
                "type": "ticker",
                "code": code,
                "opening_price": price * 0.99,
                "high_price": price * 1.02,
                "low_price": price * 0.97,
                "trade_price": price,
                "prev_closing_price": price * 0.99,
                "acc_trade_price": rng.uniform(1e8, 1e11),
                "change": rng.choice(["RISE", "EVEN", "FALL"]),
                "change_price": price * 0.01,
                "signed_change_price": price * 0.01,
                "change_rate": 0.006439793,
                "signed_change_rate": 0.006439793,
                "ask_bid": rng.choice(["ASK", "BID"]),
                "trade_volume": rng.uniform(1e-5, 2),
                "acc_trade_volume": rng.uniform(1, 1e4),
                "trade_date": "20260826",
                "trade_time": "072400",
                "trade_timestamp": ts - 2000,
                "acc_ask_volume": rng.uniform(1, 1e4),
                "acc_bid_volume": rng.uniform(1, 1e4),
                "highest_52_week_price": price * 1.6,
                "highest_52_week_date": "2025-10-09",
                "lowest_52_week_price": price * 0.8,
                "lowest_52_week_date": "2026-08-14",
                "market_state": "ACTIVE",
                "is_trading_suspended": False,
                "delisting_date": None,
                "market_warning": "NONE",
                "timestamp": ts,
                "acc_trade_price_24h": rng.uniform(1e8, 1e12),
                "acc_trade_volume_24h": rng.uniform(1, 1e5),
                "stream_type": "REALTIME",
            }
            dec = {"acc_trade_price": 16, "acc_trade_price_24h": 5, "change_rate": 9}
        elif kind == "trade":
            f = {
                "type": "trade",
                "code": code,
                "timestamp": ts,
                "trade_date": "2026-08-26",
                "trade_time": "07:15:54",
                "trade_timestamp": ts - 56,
                "trade_price": price,
                "trade_volume": rng.uniform(1e-5, 2),
                "ask_bid": rng.choice(["ASK", "BID"]),
                "prev_closing_price": price * 0.99,
                "change": "RISE",
                "change_price": price * 0.01,
                "sequential_id": (ts - 56) * 10000 + rng.randrange(10000),
                "best_ask_price": price * 1.001,
                "best_ask_size": rng.uniform(1e-4, 1),
                "best_bid_price": price,
                "best_bid_size": rng.uniform(1e-4, 1),
                "stream_type": "REALTIME",
            }
            dec = {}
        else:
            depth = 15 if i % 8 == 2 else 30
            ukeys = SIMPLE_KEYS["orderbook_units"] if simple else None
            units = []
            for n in range(depth):
                u = {
                    "ask_price": price + n * max(1.0, price * 1e-4),
                    "bid_price": price - (n + 1) * max(1.0, price * 1e-4),
                    "ask_size": rng.uniform(1e-4, 3),
                    "bid_size": rng.uniform(1e-4, 3),
                }
                if ukeys is not None:
                    u = {ukeys[k]: v for k, v in u.items()}
                units.append(_obj(rng, u, {}))
            f = {
                "type": "orderbook",
                "code": code,
                "timestamp": ts,
                "total_ask_size": rng.uniform(1, 50),
                "total_bid_size": rng.uniform(1, 50),
                "orderbook_units": units,
                "level": 0,
                "stream_type": "REALTIME",
            }
            dec = {}
        if simple:
            f = _simple(f, kind)
            dec = {SIMPLE_KEYS[kind].get(k, k): v for k, v in dec.items()}
        frames.append(_obj(rng, f, dec).encode())
    return frames


def rate(fn: Decoder, frames: Sequence[bytes]) -> float:
    """Return messages per second for one pass of ``fn`` over ``frames``."""
    start = time.perf_counter()
    for frame in frames:
        fn(frame)
    return len(frames) / (time.perf_counter() - start)


def measure(
    decoders: dict[str, Decoder], frames: Sequence[bytes], rounds: int
) -> dict[str, list[float]]:
    """Time every decoder ``rounds`` times, interleaved so drift hits all of them alike."""
    rates: dict[str, list[float]] = {name: [] for name in decoders}
    for fn in decoders.values():
        rate(fn, frames[:2000])  # warm up caches and branch predictors
    for _ in range(rounds):
        for name, fn in decoders.items():
            gc.collect()
            rates[name].append(rate(fn, frames))
    return rates


def table(title: str, rates: dict[str, list[float]], baseline: str) -> str:
    """Format one markdown table of best and median rates, with the ratio to ``baseline``."""
    base_best = max(rates[baseline])
    base_median = statistics.median(rates[baseline])
    lines = [
        f"**{title}**",
        "",
        "| decoder | best msg/s | median msg/s | best / orjson | median / orjson |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, values in rates.items():
        best, median = max(values), statistics.median(values)
        lines.append(
            f"| {name} | {best:,.0f} | {median:,.0f} | {best / base_best:.2f} "
            f"| {median / base_median:.2f} |"
        )
    return "\n".join(lines)


def _kind_of(frame: bytes) -> str:
    head = frame[:40].split(b'"')[3].decode()
    if head == "orderbook":
        return f"orderbook {frame.count(b'},{') + 1}"
    return head


def per_kind(default: Sequence[bytes], simple: Sequence[bytes], rounds: int) -> str:
    """Format microseconds per frame by kind: orjson, ours on DEFAULT, ours on SIMPLE."""
    candles = [
        frame.replace(b'"type":"trade"', b'"type":"candle.1m"')
        for frame in build_candles(len(default) // 4)
    ]
    groups: dict[str, tuple[list[bytes], list[bytes]]] = {}
    for d_frame, s_frame in zip(default, simple, strict=True):
        pair = groups.setdefault(_kind_of(d_frame), ([], []))
        pair[0].append(d_frame)
        pair[1].append(s_frame)
    groups["candle.1m"] = (candles, [_to_simple_candle(c) for c in candles])
    lines = [
        "**Per kind, best of rounds (microseconds per frame)**",
        "",
        "| kind | mean bytes | orjson.loads | upbit_ws.decode | ours / orjson time "
        "| SIMPLE: upbit_ws.decode |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in sorted(groups):
        d_frames, s_frames = groups[kind]
        rates = measure({"orjson": orjson.loads, "ours": decode}, d_frames, rounds)
        s_rates = measure({"ours": decode}, s_frames, rounds)
        o_us, d_us, s_us = (1e6 / max(r) for r in (rates["orjson"], rates["ours"], s_rates["ours"]))
        lines.append(
            f"| {kind} | {_mean_size(d_frames):.0f} | {o_us:.2f} | {d_us:.2f} "
            f"| {d_us / o_us:.2f} | {s_us:.2f} |"
        )
    return "\n".join(lines)


def build_candles(count: int, seed: int = 11) -> list[bytes]:
    """Return ``count`` DEFAULT candle.1m frames (a kind outside the tagged-union fast path)."""
    rng = random.Random(seed)
    frames = []
    for i in range(count):
        price = float(rng.choice([109868000, 2715000, 512]))
        f = {
            "type": "trade",  # replaced by the caller; keeps _obj's key order DEFAULT-like
            "code": f"KRW-C{i % 200:03d}",
            "candle_date_time_utc": "2026-07-30T07:45:00",
            "candle_date_time_kst": "2026-07-30T16:45:00",
            "opening_price": price,
            "high_price": price * 1.001,
            "low_price": price * 0.999,
            "trade_price": price,
            "candle_acc_trade_volume": rng.uniform(1e-4, 10),
            "candle_acc_trade_price": rng.uniform(1e3, 1e9),
            "timestamp": 1785397531885 + i,
            "stream_type": "REALTIME",
        }
        frames.append(_obj(rng, f, {"candle_acc_trade_price": 16}).encode())
    return frames


def _to_simple_candle(frame: bytes) -> bytes:
    keys = SIMPLE_KEYS["candle"]
    fields = orjson.loads(frame)
    return orjson.dumps({keys[k]: v for k, v in fields.items()})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (and optionally write) the markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args(argv)

    default = build_frames(args.frames, simple=False)
    simple = build_frames(args.frames, simple=True)
    as_dict = msgspec.json.Decoder()
    for frame in default[:8] + simple[:8]:
        decode(frame)  # fail loudly before timing if a frame does not decode
    header = (
        f"Python {platform.python_version()}, msgspec {msgspec.__version__}, "
        f"orjson {orjson.__version__}, {platform.machine()}, {args.frames:,} frames "
        f"(ticker, trade, 15- and 30-unit orderbooks; mean {_mean_size(default):.0f} B "
        f"DEFAULT, {_mean_size(simple):.0f} B SIMPLE), {args.rounds} rounds"
    )
    out = [header, ""]
    rates = measure(
        {
            "orjson.loads (dict)": orjson.loads,
            "msgspec.json.decode (dict)": as_dict.decode,
            "upbit_ws.decode": decode,
            "upbit_ws.decode_all": decode_all,
        },
        default,
        args.rounds,
    )
    out += [table("DEFAULT format", rates, "orjson.loads (dict)"), ""]
    rates = measure(
        {
            "orjson.loads (dict)": orjson.loads,
            "msgspec.json.decode (dict)": as_dict.decode,
            "upbit_ws.decode": decode,
        },
        simple,
        args.rounds,
    )
    out += [table("SIMPLE format", rates, "orjson.loads (dict)"), ""]
    listed = [b"[" + frame + b"]" for frame in default]
    rates = measure(
        {"orjson.loads (dict)": orjson.loads, "upbit_ws.decode_all": decode_all},
        listed,
        args.rounds,
    )
    out += [table("JSON_LIST format (one message per array)", rates, "orjson.loads (dict)"), ""]
    out += [per_kind(default, simple, args.rounds)]
    text = "\n".join(out)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


def _mean_size(frames: Sequence[bytes]) -> float:
    return sum(map(len, frames)) / len(frames)


if __name__ == "__main__":
    sys.exit(main())
