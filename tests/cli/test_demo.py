"""``upbit-ws demo``: runs the seed's components against the embedded simulator and exits 0."""

from __future__ import annotations

import subprocess
import sys

_RUN = "from upbit_ws.cli.main import main; main()"


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``upbit-ws demo`` in its own process (it configures logging and runs its own loop)."""
    return subprocess.run(
        [sys.executable, "-c", _RUN, "demo", *args],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )


def test_demo_prints_each_component_the_switches_the_recovery_and_a_summary() -> None:
    """A short demo exits 0 with component lines, a coin switch, abort and recovery, a summary."""
    result = run_demo("--seconds", "4")
    out = result.stdout
    assert result.returncode == 0, result.stderr
    lines = out.splitlines()
    for tag in ("coin_list", "orderbook", "chart"):
        assert sum(f"] {tag} " in line for line in lines) >= 3, tag
    assert any("KRW markets" in line and "top movers: KRW-" in line for line in lines)
    assert any("orderbook  KRW-BTC  bid" in line for line in lines)
    assert any("switch     KRW-BTC -> KRW-ETH" in line for line in lines)
    assert any("order book shows KRW-ETH after" in line for line in lines)
    assert any("fault      injecting a connection abort" in line for line in lines)
    assert any("connection lost" in line for line in lines)
    assert any("open again after" in line for line in lines)
    assert "merged subscription" in out and "upbit  ticker" in out
    assert "statistics:" in out and "reconnects 1" in out
    assert "Traceback" not in result.stderr


def test_demo_refuses_a_too_short_run() -> None:
    """--seconds below 2 is a usage error (exit 2), not a crash."""
    result = run_demo("--seconds", "1")
    assert result.returncode == 2
    assert "at least 2 seconds" in result.stderr
