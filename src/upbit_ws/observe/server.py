"""The health HTTP server: ``GET /healthz`` (JSON, 200 or 503) and ``GET /metrics``.

Opt-in, and bound to 127.0.0.1 unless asked otherwise::

    async with WebSocketManager(health_port=0) as ws:     # 0 picks a free port
        print(ws.health_server.url)                        # http://127.0.0.1:PORT

    async with serve_health(ws, port=9465) as server:      # or beside any manager
        ...

``/healthz`` answers the verdict of :func:`~upbit_ws.observe.health.health_report`: 200 when
every connection is open and its data fresh, 503 with the reasons otherwise. ``/metrics``
answers the Prometheus text format through :mod:`upbit_ws.observe.prometheus` (the
``prometheus`` extra; without it the endpoint answers 501 saying what to install). Both read
snapshots when asked and do nothing in between.

Health and metrics tell an outsider what the process is subscribed to and how it is doing;
that is for the operator, not the network. Any address that is not loopback (``127.0.0.0/8``,
``::1``, ``localhost``) is refused unless ``allow_public=True`` says it is meant.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Final

from aiohttp import web

from upbit_ws.core.errors import InvalidInputError
from upbit_ws.observe.health import health_report

if TYPE_CHECKING:
    from upbit_ws.aio.manager import WebSocketManager

__all__ = ["DEFAULT_HEALTH_HOST", "HEALTH_PATH", "METRICS_PATH", "HealthServer", "serve_health"]

_log = logging.getLogger("upbit_ws.observe")

DEFAULT_HEALTH_HOST: Final = "127.0.0.1"
HEALTH_PATH: Final = "/healthz"
METRICS_PATH: Final = "/metrics"
_NO_PROMETHEUS: Final = (
    "prometheus-client is not installed: pip install 'upbit-ws[prometheus]' to serve metrics\n"
)


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class HealthServer:
    """Serve ``/healthz`` and ``/metrics`` of one manager; see the module docs.

    ``port`` 0 picks a free port; :attr:`port` and :attr:`url` tell the bound one once
    started. Start and stop with ``async with`` or :meth:`start` / :meth:`aclose`.
    """

    def __init__(
        self,
        ws: WebSocketManager,
        *,
        host: str = DEFAULT_HEALTH_HOST,
        port: int = 0,
        allow_public: bool = False,
    ) -> None:
        if not is_loopback(host) and not allow_public:
            raise InvalidInputError(
                f"refusing to serve health and metrics on {host!r}, which is not a loopback "
                "address: pass allow_public=True to expose them to the network"
            )
        if not 0 <= port <= 65535:
            raise InvalidInputError(f"port must be 0..65535, got {port}")
        self._ws = ws
        self.host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        where = self.url if self._runner is not None else "not serving"
        return f"<HealthServer {where}>"

    @property
    def port(self) -> int:
        """Return the bound port (the asked one before :meth:`start`)."""
        return self._port

    @property
    def url(self) -> str:
        """Return the base URL, ``http://HOST:PORT`` (``/healthz`` and ``/metrics`` below it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    async def start(self) -> HealthServer:
        """Bind and serve; return self. Raise InvalidInputError when the port cannot be bound."""
        if self._runner is not None:
            raise InvalidInputError("the health server is already serving")
        app = web.Application()
        app.router.add_get(HEALTH_PATH, self._healthz)
        app.router.add_get(METRICS_PATH, self._metrics_page)
        app.router.add_get("/", self._index)
        # No access log: a scrape every few seconds would drown the application's own logs.
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise InvalidInputError(
                f"cannot serve health on {self.host}:{self._port}: {exc.strerror or exc}"
            ) from exc
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        _log.info("health and metrics served on %s", self.url, extra={"event": "health_serving"})
        return self

    async def aclose(self) -> None:
        """Stop serving (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> HealthServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _healthz(self, request: web.Request) -> web.Response:
        report = health_report(self._ws)
        return web.json_response(
            report.document, status=report.status, headers={"Cache-Control": "no-store"}
        )

    async def _metrics_page(self, request: web.Request) -> web.Response:
        try:
            from upbit_ws.observe.prometheus import CONTENT_TYPE, metrics_text
        except ImportError:
            return web.Response(status=501, text=_NO_PROMETHEUS)
        return web.Response(
            body=metrics_text(self._ws),
            headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"},
        )

    async def _index(self, request: web.Request) -> web.Response:
        return web.json_response({"health": HEALTH_PATH, "metrics": METRICS_PATH})


def serve_health(
    ws: WebSocketManager,
    host: str = DEFAULT_HEALTH_HOST,
    port: int = 0,
    *,
    allow_public: bool = False,
) -> HealthServer:
    """Return a health server for ``ws``; ``async with serve_health(ws) as server:`` runs it.

    Bound to ``host`` (loopback unless ``allow_public=True``) and ``port`` (0: a free one).
    """
    return HealthServer(ws, host=host, port=port, allow_public=allow_public)
