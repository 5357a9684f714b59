"""The Qt tests again under PyQt6: the bridge supports both bindings through one shim.

The suite's own run uses PySide6 (the ``qt`` extra); PyQt6 is in the development tools so that
its path through ``upbit_ws.qt.binding`` (``pyqtSignal``/``pyqtSlot`` under PySide6's names) is
run too. One Python process loads one binding, so this runs ``tests/qt`` in a child process
with ``QT_API=pyqt6`` (our shim and qasync) and ``PYTEST_QT_API=pyqt6`` (pytest-qt).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Set in the child: the child's run of this file does nothing.
RERUN = "UPBIT_WS_QT_RERUN"


@pytest.mark.skipif(os.environ.get(RERUN) == "1", reason="this is the PyQt6 run itself")
@pytest.mark.timeout(240)
def test_the_qt_tests_pass_under_pyqt6() -> None:
    """Every test in tests/qt passes with PyQt6 loaded, and PyQt6 is what they loaded."""
    env = {**os.environ, "QT_API": "pyqt6", "PYTEST_QT_API": "pyqt6", RERUN: "1"}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    probe = subprocess.run(
        [sys.executable, "-c", "from upbit_ws.qt import binding as b; print(b.QtCore.__name__)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert probe.stdout.strip() == "PyQt6.QtCore", probe.stderr
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "tests/qt",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=220,
        check=False,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ("import PyQt6.QtCore", "PyQt6.QtCore"),
        ("import qasync", "PyQt6.QtCore"),  # qasync tries PyQt6 before PySide6
        ("import PySide6.QtCore", "PySide6.QtCore"),
        ("pass", "PySide6.QtCore"),  # nothing imported yet: the qt extra's binding
    ],
)
def test_the_binding_already_imported_wins(first: str, expected: str) -> None:
    """Without QT_API, upbit_ws.qt uses the binding the app (or qasync) loaded first.

    With both bindings installed, loading the other one beside it fails at import (their Qt
    libraries differ) or worse: one process, one binding.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("QT_API", "PYTEST_QT_API")}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    code = f"{first}\nfrom upbit_ws.qt import binding as b\nprint(b.QtCore.__name__)"
    probe = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == expected, probe.stderr
