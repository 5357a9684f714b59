"""The Korean quick start stays true: the README's example, real commands, the screenshot."""

from __future__ import annotations

import re
from pathlib import Path

from upbit_ws.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
README_KO = (ROOT / "README.ko.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_korean_example_is_the_readme_example() -> None:
    """The Python example is README.md's, character for character (that one is run by a test)."""
    ours = re.search(r"```python\n(.*?)```", README_KO, re.S)
    theirs = re.search(r"```python\n(.*?)```", README, re.S)
    assert ours is not None and theirs is not None
    assert ours.group(1) == theirs.group(1)


def test_korean_quick_start_names_only_real_commands() -> None:
    """Every `upbit-ws NAME` it mentions is a registered command, and every command appears."""
    named = set(re.findall(r"(?:^|`)(?:\.venv/bin/)?upbit-ws ([a-z]+)", README_KO, re.M))
    assert named <= set(cli.commands), named - set(cli.commands)
    assert {"demo", "watch", "simulate", "bench"} <= named
    assert "make demo" in README_KO and "make test" in README_KO


def test_korean_quick_start_shows_the_dashboard_screenshot() -> None:
    """The screenshot it shows is committed."""
    (image,) = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README_KO)
    assert (ROOT / image).is_file()
