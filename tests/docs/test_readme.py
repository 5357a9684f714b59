"""The README stays true: its opening commands and its code example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_demo_and_test() -> None:
    """The first code block is `make demo` then `make test`, and both targets exist."""
    first = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first is not None
    commands = [line.split("#")[0].strip() for line in first.group(1).splitlines()]
    assert commands[:2] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_example_runs() -> None:
    """The README's Python example runs against the simulator and prints what it promises."""
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block is not None
    out = subprocess.run(
        [sys.executable, "-c", block.group(1)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("KRW-")
    assert lines[2] == "KRW-ETH"
    assert "orderbook KRW-ETH" in out.stdout


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    """`make docs` stays clean: the API reference builds from the docstrings with no warning."""
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "api" / "manager" / "index.html").read_text(encoding="utf-8").count(
        "WebSocketManager"
    ) > 3
    manager = (tmp_path / "api" / "manager" / "index.html").read_text(encoding="utf-8")
    events = (tmp_path / "api" / "events" / "index.html").read_text(encoding="utf-8")
    for name in ("wait_ready", "ready_timeout", "since_wall", "ConnectionStatistics"):
        assert name in manager, name
    for name in ("NotReadyError", "ConnectionMisconfigured", "at_wall"):
        assert name in events, name


def test_readme_rest_example_runs() -> None:
    """The README's REST example runs against the simulator with the methods it names."""
    section = README.split("## REST client", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    out = subprocess.run(
        [sys.executable, "-c", block.group(1)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ticker KRW-BTC ") and lines[1].startswith("book KRW-BTC ")
    assert any(line.startswith("account KRW ") for line in lines)
    assert lines[-1] == "order wait True"
    named = re.findall(r"`(\w+)`", section.split("```", 2)[2].split("##", 1)[0])
    from upbit_ws.aio.rest import RestClient

    for name in named:
        if name.islower() and not name.startswith("_"):
            assert hasattr(RestClient, name), name


def test_readme_names_every_command() -> None:
    """The command table lists every registered `upbit-ws` command and no other."""
    from upbit_ws.cli.main import cli

    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `upbit-ws ([a-z]+)", section, re.M))
    assert named == set(cli.commands)
