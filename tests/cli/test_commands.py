"""``upbit-ws watch``, ``bench`` and the mistakes every command reports in one line.

Every command runs through the installed console script in its own process, as a user runs
it; a user's mistake must be one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SCRIPT = str(Path(sys.executable).with_name("upbit-ws"))
#: Generous: a subprocess starting Python, a simulator and a manager on a loaded 2-core box.
TIMEOUT = 90


def upbit_ws(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``upbit-ws`` console script to its end."""
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False, env=env
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the run failed with exactly one line on stderr, and return it."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def env_without_keys() -> dict[str, str]:
    """Return the environment without Upbit API keys."""
    return {k: v for k, v in os.environ.items() if not k.startswith("UPBIT_")}


@contextmanager
def closed_port() -> Iterator[int]:
    """Yield a local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


def test_watch_simulator_json_prints_count_valid_json_lines() -> None:
    """watch ticker --simulator --json --count 5: five JSON tickers of the codes asked, exit 0."""
    result = upbit_ws(
        "watch", "ticker", "KRW-BTC", "krw-eth", "--simulator", "--json", "--count", "5"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    messages = [json.loads(line) for line in lines]
    assert {m["type"] for m in messages} == {"ticker"}
    assert {m["code"] for m in messages} <= {"KRW-BTC", "KRW-ETH"}
    assert all(m["trade_price"] > 0 for m in messages)


def test_watch_orderbook_depth_is_honoured() -> None:
    """watch orderbook --depth 5 --json prints books of five levels."""
    result = upbit_ws(
        "watch", "orderbook", "KRW-BTC", "--depth", "5", "--simulator", "--json", "--count", "2"
    )
    assert result.returncode == 0, result.stderr
    books = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(books) == 2 and {len(b["orderbook_units"]) for b in books} == {5}


def test_watch_table_ends_after_seconds() -> None:
    """Without --json a table is drawn; --seconds ends the run with exit 0."""
    result = upbit_ws("watch", "ticker", "KRW-BTC", "--simulator", "--seconds", "2")
    assert result.returncode == 0, result.stderr
    assert "KRW-BTC" in result.stdout and "messages in" in result.stdout


def test_watch_exits_0_on_ctrl_c() -> None:
    """SIGINT while streaming ends watch cleanly with exit 0 and no traceback."""
    proc = subprocess.Popen(
        [SCRIPT, "watch", "ticker", "KRW-BTC", "--simulator", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until streaming (bounded by the finally)
        assert json.loads(first)["code"] == "KRW-BTC"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("ticker", "KRW-BTCX", "--simulator", "--json"), "unknown market code 'KRW-BTCX'"),
        (("ticker", "--simulator"), "needs at least one CODE"),
        (("tickr", "KRW-BTC"), "'tickr' is not one of"),
        (("ticker", "KRW-BTC", "--count", "0"), "--count"),
        (("myAsset", "KRW-BTC", "--simulator"), "myAsset takes no codes"),
        (("ticker", "KRW-BTC", "--base-url", "not-a-url"), "base_url must be https://HOST"),
    ],
)
def test_watch_bad_input_is_one_line(args: tuple[str, ...], needle: str) -> None:
    """A bad code, type, option or URL: one line naming the problem, non-zero exit."""
    assert needle in one_line_error(upbit_ws("watch", *args))


def test_watch_private_without_credentials_is_one_line() -> None:
    """myOrder against Upbit without UPBIT_* keys: one line naming the variables, exit 1."""
    line = one_line_error(upbit_ws("watch", "myOrder", env=env_without_keys()))
    assert "UPBIT_ACCESS_KEY" in line and "UPBIT_SECRET_KEY" in line


def test_watch_half_set_credentials_is_one_line() -> None:
    """Only UPBIT_ACCESS_KEY set: one line naming the missing variable."""
    env = {**env_without_keys(), "UPBIT_ACCESS_KEY": "abc"}
    line = one_line_error(upbit_ws("watch", "myAsset", env=env))
    assert "UPBIT_SECRET_KEY is not" in line


def test_watch_unreachable_url_is_one_line() -> None:
    """A base URL nothing listens on: one line saying it cannot be reached, exit 1."""
    with closed_port() as port:
        url = f"http://127.0.0.1:{port}"
        result = upbit_ws("watch", "ticker", "KRW-BTC", "--base-url", url, "--json")
    assert f"cannot reach {url}" in one_line_error(result)
    assert result.returncode == 1


def test_simulate_port_in_use_is_one_line() -> None:
    """simulate on a port already taken: one line saying so, exit 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(upbit_ws("simulate", "--port", str(port)))
    assert "address already in use" in line


def test_bench_runs_a_benchmark_and_prints_its_table() -> None:
    """bench --only decode --quick runs benchmarks/decode.py from the checkout: a table, exit 0."""
    result = upbit_ws("bench", "--only", "decode", "--quick")
    assert result.returncode == 0, result.stderr
    assert "## decode" in result.stdout
    assert "| upbit_ws.decode |" in result.stdout


def test_bench_without_benchmarks_is_one_line(tmp_path: Path) -> None:
    """A directory without the benchmark scripts (a wheel install): one line, exit 1."""
    line = one_line_error(upbit_ws("bench", "--dir", str(tmp_path)))
    assert "not part of the installed package" in line


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ((), "watch"),
        (("demo",), "dashboard"),
        (("watch",), "--simulator"),
        (("bench",), "--quick"),
        (("simulate",), "--port"),
    ],
)
def test_every_command_has_help(command: tuple[str, ...], needle: str) -> None:
    """--help on the group and on each command exits 0 and explains its options."""
    result = upbit_ws(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert needle in result.stdout


def test_simulate_bad_subscribe_delay_is_one_line() -> None:
    """A negative --subscribe-delay: one line naming the setting, before anything starts."""
    line = one_line_error(upbit_ws("simulate", "--subscribe-delay", "-1"))
    assert "subscribe_delay must be >= 0" in line
