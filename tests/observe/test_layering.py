"""Observability stays around the library: core and aio never load it, nor prometheus-client."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Imports every module of upbit_ws.core and upbit_ws.aio (later ones too), then the modules
# named on the command line, and reports which observability modules got loaded.
_PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import upbit_ws.aio, upbit_ws.core
    for package in (upbit_ws.core, upbit_ws.aio):
        for m in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            importlib.import_module(m.name)
    for name in sys.argv[1:]:
        importlib.import_module(name)
    print(json.dumps(sorted(
        m for m in sys.modules
        if m.startswith(("upbit_ws.observe", "prometheus_client"))
    )))
    """
)


def loaded(*extra: str) -> list[str]:
    """Return the observability modules loaded by importing core, aio and ``extra``."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[str] = json.loads(done.stdout)
    return result


def test_core_and_aio_import_no_observability() -> None:
    """Importing upbit_ws, its core and its asyncio shell loads neither observe nor Prometheus."""
    assert loaded() == []


def test_observe_loads_prometheus_client_only_for_metrics() -> None:
    """upbit_ws.observe (health, logs) works without prometheus-client; the collector needs it."""
    without = loaded("upbit_ws.observe", "upbit_ws.logging")
    assert "upbit_ws.observe" in without
    assert not any(m.startswith("prometheus_client") for m in without)
    assert "prometheus_client" in loaded("upbit_ws.observe.prometheus")
