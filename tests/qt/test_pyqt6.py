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
