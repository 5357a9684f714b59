"""Real Upbit frames (tests/vectors/frames.jsonl) decode to the values recorded beside them.

The vectors are copied from the shared project folder into the repository so that a clean
checkout can run them; see tests/vectors/README.md for the line format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.core.test_decode import to_simple
from upbit_ws.core.decode import decode, decode_all
from upbit_ws.core.messages import MESSAGE_TYPES, Message

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def _load(name: str) -> list[dict[str, Any]]:
    with (VECTORS / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


FRAMES = _load("frames.jsonl")


def resolve(message: Message, path: str) -> Any:
    """Follow an ``expect`` path: ``a.0.b`` indexes a list, a trailing ``#`` is a length."""
    value: Any = message
    for part in path.split("."):
        if part == "#":
            value = len(value)
        elif part.isdigit():
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value[part]
        else:
            value = getattr(value, part)
    return value


def test_vector_files_are_present_and_well_formed() -> None:
    """Both vector files are in the repository, one JSON object with an expect map per line."""
    assert len(FRAMES) >= 9
    rest = _load("rest.jsonl")
    assert len(rest) >= 14
    for entry in FRAMES:
        assert {"id", "frame", "expect", "kind", "format"} <= set(entry)
    for entry in rest:
        assert {"id", "body", "expect", "endpoint"} <= set(entry)


@pytest.mark.parametrize("vector", FRAMES, ids=[v["id"] for v in FRAMES])
def test_frame_vector_decodes_to_expected_values(vector: dict[str, Any]) -> None:
    """Every expect path of a real frame reads the recorded value from the decoded message."""
    frame = vector["frame"].encode("utf-8")
    message = decode(frame)
    assert decode_all(frame) == [message]
    assert type(message) is MESSAGE_TYPES[vector["expect"]["type"]]
    for path, want in vector["expect"].items():
        got = resolve(message, path)
        assert got == want, f"{vector['id']}: {path} = {got!r}, want {want!r}"


@pytest.mark.parametrize("vector", FRAMES, ids=[v["id"] for v in FRAMES])
def test_frame_vector_in_simple_and_list_forms(vector: dict[str, Any]) -> None:
    """The same real frame in SIMPLE, JSON_LIST and SIMPLE_LIST form gives the same message."""
    frame = vector["frame"].encode("utf-8")
    want = decode(frame)
    simple = to_simple(frame, vector["kind"])
    assert simple != frame
    assert decode(simple) == want
    assert decode_all(b"[" + frame + b"]") == [want]
    assert decode_all(b"[" + simple + b"]") == [want]
