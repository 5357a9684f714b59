"""The one module that imports a Qt binding: PySide6 or PyQt6, under PySide6's names.

``QT_API=pyside6`` or ``QT_API=pyqt6`` (the variable qasync reads too) picks the binding;
otherwise the one already imported (by the app, or by qasync), else PySide6 when it is
installed, else PyQt6. Everything in :mod:`upbit_ws.qt` and the
examples imports Qt from here, so one binding is ever loaded. PyQt6's ``pyqtSignal`` and
``pyqtSlot`` are exported as ``Signal`` and ``Slot``. Types follow PySide6, the binding the
``qt`` extra installs and the tests run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import TYPE_CHECKING, Final

__all__ = [
    "API",
    "QCoreApplication",
    "QObject",
    "QThread",
    "QTimer",
    "Qt",
    "QtCore",
    "QtGui",
    "QtWidgets",
    "Signal",
    "Slot",
]

_KNOWN: Final = ("pyside6", "pyqt6")


def choose_api() -> str:
    """Return ``pyside6`` or ``pyqt6``: ``QT_API`` if set, else the binding already imported,
    else the first one installed.

    One process must load one binding: with both installed, an app (or qasync, which tries
    PyQt6 before PySide6) that imported PyQt6 first would otherwise get PySide6 beside it.
    """
    wanted = os.environ.get("QT_API", "").strip().lower()
    if wanted:
        if wanted not in _KNOWN:
            raise ImportError(f"QT_API must be one of {', '.join(_KNOWN)}, not {wanted!r}")
        return wanted
    for api, module in (("pyside6", "PySide6"), ("pyqt6", "PyQt6")):
        if module in sys.modules:
            return api
    for api, module in (("pyside6", "PySide6"), ("pyqt6", "PyQt6")):
        if importlib.util.find_spec(module) is not None:
            return api
    raise ImportError(
        "upbit_ws.qt needs PySide6 or PyQt6: pip install 'upbit-ws[qt]' (PySide6) or PyQt6"
    )


#: The binding in use: ``pyside6`` or ``pyqt6``.
API: Final[str] = choose_api()

if TYPE_CHECKING:
    from PySide6 import QtCore, QtGui, QtWidgets
    from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot
else:
    if API == "pyside6":
        from PySide6 import QtCore, QtGui, QtWidgets
        from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot
    else:
        from PyQt6 import QtCore, QtGui, QtWidgets
        from PyQt6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer
        from PyQt6.QtCore import pyqtSignal as Signal
        from PyQt6.QtCore import pyqtSlot as Slot
