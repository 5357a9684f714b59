"""Qt tests run offscreen: no display, same code paths (pytest-qt's qapp and qtbot)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
