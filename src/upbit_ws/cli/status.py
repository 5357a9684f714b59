"""``upbit-ws status [URL]``: read a health endpoint and say whether the process is healthy.

``URL`` is what ``serve_health`` or ``WebSocketManager(health_port=...)`` serves: the base
(``http://127.0.0.1:PORT``, ``/healthz`` is added) or the ``/healthz`` URL itself; without it,
the ``UPBIT_WS_HEALTH_URL`` environment variable. Exit status: 0 healthy, 1 unhealthy (the
reasons are printed), 2 unreachable or not a health endpoint (one line on stderr, never a
traceback). ``--json`` prints the endpoint's document as it came.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import click

__all__ = ["status"]

HEALTHY: Final = 0
UNHEALTHY: Final = 1
UNREACHABLE: Final = 2
_HEALTH_PATH: Final = "/healthz"
_CODES_SHOWN: Final = 4


@click.command()
@click.argument("url", required=False, envvar="UPBIT_WS_HEALTH_URL")
@click.option("--json", "as_json", is_flag=True, help="Print the health document as JSON.")
@click.option(
    "--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for an answer."
)
def status(*, url: str | None, as_json: bool, timeout: float) -> None:
    """Read a health endpoint; exit 0 healthy, 1 unhealthy, 2 unreachable."""
    if not url:
        raise click.UsageError("give the health URL (http://127.0.0.1:PORT) or UPBIT_WS_HEALTH_URL")
    target = _health_url(url)
    try:
        code, document = _fetch(target, timeout)
    except _Unreachable as exc:
        click.echo(f"upbit-ws status: {target}: {exc}", err=True)
        click.get_current_context().exit(UNREACHABLE)
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(_render(target, document))
    healthy = code == 200 and document.get("ok") is True
    click.get_current_context().exit(HEALTHY if healthy else UNHEALTHY)


class _Unreachable(Exception):
    """The endpoint did not answer with a health document."""


def _health_url(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    path = parts.path if parts.path not in ("", "/") else _HEALTH_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _fetch(url: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """GET ``url``; return the status and the JSON document (503 carries one too)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise _Unreachable("only http:// and https:// URLs can be read")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            code, body = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read()
    except urllib.error.URLError as exc:
        reason = exc.reason
        raise _Unreachable(
            f"cannot connect: {getattr(reason, 'strerror', None) or reason}"
        ) from exc
    except TimeoutError as exc:
        raise _Unreachable(f"no answer within {timeout:g} s") from exc
    except OSError as exc:
        raise _Unreachable(f"cannot connect: {exc.strerror or exc}") from exc
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise _Unreachable(f"HTTP {code}, and the answer is not a health document") from exc
    if not isinstance(document, dict) or "ok" not in document:
        raise _Unreachable(f"HTTP {code}, and the answer is not a health document")
    return code, document


def _render(url: str, doc: dict[str, Any]) -> str:
    ok = doc.get("ok") is True
    lines = [f"{url}: {'HEALTHY' if ok else 'UNHEALTHY'}"]
    lines += [f"  ! {reason}" for reason in doc.get("reasons", [])]
    for conn in doc.get("connections", []):
        age = conn.get("last_frame_age_seconds")
        heard = f"last frame {age:.2f} s ago" if isinstance(age, int | float) else "no socket"
        lines.append(
            f"  {conn.get('connection', '?'):<8} {conn.get('state', '?'):<12} "
            f"for {conn.get('state_seconds', 0.0):.1f} s, {heard}, "
            f"socket {conn.get('socket', 0)}, {conn.get('reconnects', 0)} reconnects"
        )
        wanted = conn.get("subscription", {}).get("desired", {})
        if wanted:
            lines.append(
                "           subscribed: " + "; ".join(_codes(t, c) for t, c in wanted.items())
            )
        down = conn.get("down_seconds")
        if isinstance(down, int | float):
            retry = conn.get("retry_in_seconds")
            plan = f", next connect in {retry:.1f} s" if isinstance(retry, int | float) else ""
            watch = " or when the host answers" if conn.get("network_watch") else ""
            lines.append(f"           down for {down:.1f} s{plan}{watch}")
        if conn.get("last_error"):
            lines.append(f"           last error: {conn['last_error']}")
    key = doc.get("key")
    if isinstance(key, dict):
        expires = f", expires {key['expires_at']}" if key.get("expires_at") else ""
        lines.append(f"  key      {key.get('status', '?')}{expires}")
    return "\n".join(lines)


def _codes(kind: str, codes: list[str]) -> str:
    shown = ", ".join(codes[:_CODES_SHOWN])
    more = f" (+{len(codes) - _CODES_SHOWN} more)" if len(codes) > _CODES_SHOWN else ""
    return f"{kind} {shown}{more}"
