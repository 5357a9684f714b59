"""Helpers for simulator tests: a plain client's view of frames, tokens and REST auth."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlencode

import jwt
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from upbit_ws.simulator import Simulator

__all__ = [
    "client",
    "closed_without_frame",
    "recv_json",
    "recv_until",
    "request",
    "rest_headers",
    "settle",
    "token",
]


def client(url: str, **options: Any) -> connect:
    """Open a plain websockets client; unbounded queue so unread frames never stall closing."""
    return connect(url, max_queue=None, **options)


async def settle(sim: Simulator, requests: int) -> None:
    """Wait until the simulator has received ``requests`` request frames in total."""
    async with asyncio.timeout(3):
        await sim.wait_for(lambda: sim.requests_received >= requests)


def request(*objects: dict[str, Any]) -> str:
    """Return a request frame: a JSON array of the given objects."""
    return orjson.dumps(list(objects)).decode()


async def recv_json(ws: ClientConnection, *, within: float = 2.0) -> Any:
    """Receive one frame, check it is BINARY (as Upbit sends every frame), parse it."""
    async with asyncio.timeout(within):
        data = await ws.recv()
    assert isinstance(data, bytes), f"expected a binary frame, got text {data!r}"
    return orjson.loads(data)


async def recv_until(
    ws: ClientConnection, predicate: Callable[[Any], bool], *, within: float = 3.0
) -> tuple[Any, list[Any]]:
    """Receive frames until one satisfies ``predicate``; return it and those before it."""
    seen: list[Any] = []
    async with asyncio.timeout(within):
        while True:
            frame = await recv_json(ws, within=within)
            if predicate(frame):
                return frame, seen
            seen.append(frame)


async def closed_without_frame(ws: ClientConnection, *, within: float = 3.0) -> None:
    """Read until the connection drops and check no close frame came (1006 at the client)."""
    async with asyncio.timeout(within):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as exc:
            assert exc.rcvd is None, f"expected no close frame, got {exc.rcvd}"
            return


def token(
    access_key: str,
    secret_key: str,
    *,
    algorithm: str = "HS256",
    nonce: str | None = None,
    **claims: Any,
) -> str:
    """Sign a JWT the way Upbit clients do (section 5)."""
    payload = {"access_key": access_key, "nonce": nonce or str(uuid.uuid4()), **claims}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(payload, secret_key, algorithm=algorithm)


def rest_headers(
    credentials: tuple[str, str], params: dict[str, Any] | list[tuple[str, Any]] | None = None
) -> dict[str, str]:
    """Return an Authorization header with ``query_hash`` over the unencoded query (section 5)."""
    claims: dict[str, Any] = {}
    if params:
        query = unquote(urlencode(params, doseq=False))
        claims = {
            "query_hash": hashlib.sha512(query.encode()).hexdigest(),
            "query_hash_alg": "SHA512",
        }
    return {"Authorization": f"Bearer {token(*credentials, **claims)}"}
