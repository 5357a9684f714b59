"""The core stays pure: importing any upbit_ws.core module pulls in no I/O or event loop."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Not "_socket": msgspec's C extension loads that low-level module itself at import time;
# what must stay out is the socket module the I/O libraries build on.
FORBIDDEN = ("asyncio", "picows", "aiohttp", "socket", "ssl", "websockets", "redis")

# Runs in a fresh interpreter. The package is registered without executing
# upbit_ws/__init__.py, which re-exports the asyncio shell; then every module found in
# upbit_ws/core (so modules added later are covered too) is imported, plus any extra module
# named on the command line (used to show the check can fail).
_PROBE = textwrap.dedent(
    """
    import importlib, importlib.util, json, pkgutil, sys, types

    spec = importlib.util.find_spec("upbit_ws")
    package = types.ModuleType("upbit_ws")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["upbit_ws"] = package
    before = set(sys.modules)
    core = importlib.import_module("upbit_ws.core")
    names = sorted(m.name for m in pkgutil.iter_modules(core.__path__))
    for name in names + sys.argv[1:]:
        importlib.import_module(name if "." in name else "upbit_ws.core." + name)
    print(json.dumps({"modules": names, "loaded": sorted(set(sys.modules) - before)}))
    """
)


def _offenders(*extra: str) -> tuple[list[str], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *extra],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    loaded: list[str] = result["loaded"]
    return result["modules"], sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)


def test_core_modules_import_no_io_or_event_loop() -> None:
    """No upbit_ws.core module (including future ones) imports asyncio, sockets or I/O libs."""
    modules, offenders = _offenders()
    assert {"codes", "decode", "encode", "errors", "messages"} <= set(modules)
    assert offenders == [], f"importing upbit_ws.core.* loaded {offenders}"


def test_probe_sees_a_forbidden_import() -> None:
    """The same probe reports asyncio once something imports it (the check can fail)."""
    _, offenders = _offenders("asyncio.events")
    assert "asyncio" in offenders
