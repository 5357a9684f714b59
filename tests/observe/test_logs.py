"""Structured logs: the fields every library record carries, the JSON lines, and no secrets."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager

import upbit_ws
from tests.aio.connection_helpers import sim_connection
from tests.aio.subscription_helpers import next_item
from tests.observe.helpers import observed
from upbit_ws.aio.logcontext import CONNECTION, LogFields, install_log_fields, log_context
from upbit_ws.core.auth import Credentials, build_rest_token, build_ws_token
from upbit_ws.core.messages import MyOrder
from upbit_ws.logging import json_formatter, text_formatter

FIELDS = ("connection", "component", "event")


class Capture(logging.Handler):
    """Keep every record, and render each with the plain, the text and the JSON formatters."""

    def __init__(self) -> None:
        super().__init__(level=1)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.json_lines: list[str] = []
        self._formatters = (
            logging.Formatter(logging.BASIC_FORMAT),
            text_formatter(),
        )
        self._json = json_formatter()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record and its renderings (made now, in the logging call's context)."""
        self.records.append(record)
        self.lines.extend(f.format(record) for f in self._formatters)
        self.json_lines.append(self._json.format(record))


@contextmanager
def capture_everything() -> Iterator[Capture]:
    """Capture every record of every logger at every level (below DEBUG too) for the block."""
    root = logging.getLogger()
    handler = Capture()
    level = root.level
    root.addHandler(handler)
    root.setLevel(1)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_every_library_logger_adds_the_fields() -> None:
    """Every upbit_ws logger, in every module, has the LogFields filter once imported."""
    for module in pkgutil.walk_packages(upbit_ws.__path__, "upbit_ws."):
        importlib.import_module(module.name)
    loggers = [
        logging.getLogger(name)
        for name in logging.root.manager.loggerDict
        if name == "upbit_ws" or name.startswith("upbit_ws.")
    ]
    assert len(loggers) >= 8
    missing = [lg.name for lg in loggers if not any(isinstance(f, LogFields) for f in lg.filters)]
    assert missing == []


def test_fields_come_from_extra_context_or_logger_name() -> None:
    """extra wins; else the context variables; event defaults to the logger's short name."""
    logger = logging.getLogger("upbit_ws.observe_test")
    install_log_fields()
    with capture_everything() as cap:
        logger.warning("plain")
        token = CONNECTION.set("private")
        try:
            with log_context(component="chart"):
                logger.warning("in context")
        finally:
            CONNECTION.reset(token)
        logger.warning("explicit", extra={"event": "gap", "connection": "public"})
    plain, inside, explicit = (r for r in cap.records if r.name == "upbit_ws.observe_test")
    assert (plain.connection, plain.component, plain.event) == (None, None, "observe_test")  # type: ignore[attr-defined]
    assert (inside.connection, inside.component) == ("private", "chart")  # type: ignore[attr-defined]
    assert (explicit.connection, explicit.event) == ("public", "gap")  # type: ignore[attr-defined]


async def test_connection_records_name_their_connection_and_json_is_one_object_per_line() -> None:
    """A running manager's records carry the fields; every JSON line is one parsable object."""
    with capture_everything() as cap:
        async with observed() as o:
            sub = o.ws.component("chart").subscribe("ticker", ["KRW-BTC"])
            await next_item(sub)
            o.sim.abort()
            await o.log.state("public", "reconnecting")
            await o.log.state("public", "open")
    ours = [r for r in cap.records if r.name.startswith("upbit_ws.")]
    assert ours and all(all(hasattr(r, f) for f in FIELDS) for r in ours)
    conn = [r for r in ours if r.name == "upbit_ws.connection"]
    assert len(conn) >= 4 and all(r.connection == "public" for r in conn)  # type: ignore[attr-defined]
    picows = [r for r in cap.records if r.name.startswith("picows")]
    assert picows, "picows logs at INFO when a socket opens"
    docs = [json.loads(line) for line in cap.json_lines]
    assert all("\n" not in line for line in cap.json_lines)
    assert all({"time", "level", "logger", "message", *FIELDS} <= set(d) for d in docs)
    states = [d for d in docs if d["logger"] == "upbit_ws.connection" and "new_state" in d]
    assert {d["new_state"] for d in states} >= {"connecting", "open", "reconnecting"}
    # picows logs from the socket's callbacks, which run in the connection's context.
    assert any(d["logger"].startswith("picows") and d["connection"] == "public" for d in docs)


async def test_no_secret_or_jwt_in_any_record_or_rendered_line() -> None:
    """A full private stream at every log level never logs the secret key or any JWT."""
    with capture_everything() as cap:
        async with observed(keys=True) as o:
            assert o.ws.private is not None
            await asyncio.wait_for(o.ws.private.wait_open(), 5)
            orders = o.ws.component("bot").subscribe("myOrder", ["KRW-BTC"])
            assets = o.ws.component("wallet").subscribe("myAsset")
            async with asyncio.timeout(5):
                while not o.ws.subscriptions().private.confirmed:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            placed = await o.ws.rest.place_order(
                market="KRW-BTC", side="bid", ord_type="limit", volume="0.01", price="1000000"
            )
            event = await next_item(orders)
            assert isinstance(event, MyOrder) and event.uuid == placed.uuid
            await next_item(assets)
            await o.ws.check_key()
            # A second private socket: a second handshake with a fresh token.
            fault = o.log.mark()
            o.sim.abort(sim_connection(o.sim, "private").id)
            await o.log.state("private", "reconnecting", since=fault)
            await o.log.state("private", "open", since=fault)
            # Everything was enabled, down to picows's level 9 that would print the upgrade.
            assert logging.getLogger("upbit_ws.connection").isEnabledFor(logging.DEBUG)
            assert logging.getLogger("picows.client").isEnabledFor(9)
            access, secret = o.sim.credentials
            key = o.sim.keys.get(access)
            assert key is not None
            nonces = list(key.nonce_order)
    credentials = Credentials(access, secret)
    tokens = [build_ws_token(credentials, nonce=n) for n in nonces]
    tokens += [build_rest_token(credentials, nonce=n) for n in nonces]
    assert len(nonces) >= 4  # two handshakes, the key checks, the order
    forbidden = [secret, access, "eyJ", *tokens, *(t.rsplit(".", 1)[1] for t in tokens)]
    raw = [f"{r.getMessage()} {r.__dict__!r}" for r in cap.records]
    for text in raw + cap.lines + cap.json_lines:
        for secret_text in forbidden:
            assert secret_text not in text, f"{secret_text[:6]}... leaked in: {text[:300]}"


def test_text_formatter_shows_a_dash_for_a_missing_field_and_leaves_the_record_alone() -> None:
    """The plain line reads [public/-]; the record keeps None for the JSON formatter."""
    record = logging.LogRecord("upbit_ws.router", logging.WARNING, __file__, 1, "hi", None, None)
    record.connection = "public"
    line = text_formatter().format(record)
    assert "[public/-] router: hi" in line
    assert record.component is None  # type: ignore[attr-defined]
    assert json.loads(json_formatter().format(record))["component"] is None
