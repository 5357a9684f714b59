"""Flood mode: pre-encoded WebSocket frames written straight to the transport.

Throughput benchmarks need a server that out-runs the client. Sending one message at a time
through aiohttp costs microseconds per frame; instead, whole server frames (unmasked: a 2-10
byte header and the payload, RFC 6455 section 5.2) are built once for the connection's current
subscription, concatenated into a chunk of about a megabyte, and the same chunk is written to
the transport again and again, pausing while the socket's write buffer is above its high-water
mark (asyncio flow control through aiohttp's ``drain``).

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["FloodChunk", "build_chunk", "server_frame"]

_FIN_BINARY: Final = 0x82


def server_frame(payload: bytes) -> bytes:
    """Return one unmasked, final BINARY frame carrying ``payload`` (RFC 6455 5.2)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _FIN_BINARY, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", _FIN_BINARY, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_BINARY, 127, size)
    return header + payload


@dataclass(frozen=True, slots=True)
class FloodChunk:
    """A ready-to-write run of whole frames: ``frames`` messages in ``data``."""

    data: bytes
    frames: int
    #: Frames per data type in one chunk (for the statistics).
    by_type: tuple[tuple[str, int], ...]


def build_chunk(
    payloads: Sequence[tuple[str, bytes]],
    weights: Sequence[float],
    *,
    frames: int,
    chunk_bytes: int,
    seed: int,
) -> FloodChunk:
    """Pick ``frames`` payloads by weight, frame them, and repeat them up to ``chunk_bytes``.

    ``payloads`` are (type, body) pairs; ``weights`` one per pair. The pick is seeded so
    that benchmark runs are comparable.
    """
    if not payloads:
        return FloodChunk(b"", 0, ())
    rng = random.Random(seed)
    picked = rng.choices(range(len(payloads)), weights=weights, k=frames)
    pool = [server_frame(payloads[i][1]) for i in picked]
    types = [payloads[i][0] for i in picked]
    parts: list[bytes] = []
    counts: dict[str, int] = {}
    size = 0
    index = 0
    while size < chunk_bytes or index < len(pool):
        frame = pool[index % len(pool)]
        parts.append(frame)
        kind = types[index % len(pool)]
        counts[kind] = counts.get(kind, 0) + 1
        size += len(frame)
        index += 1
    return FloodChunk(b"".join(parts), index, tuple(sorted(counts.items())))
