"""The one supervisor: restart after a bug on the core backoff, one record type, one policy."""

from __future__ import annotations

import asyncio
import logging

import pytest

from upbit_ws.aio.supervisor import INTERNAL_ERRORS_KEPT, InternalError, Supervisor
from upbit_ws.core.config import BackoffConfig

#: Restart delays of a few ms, so the tests wait on counters rather than on time.
QUICK = BackoffConfig(first_delay=0.001, cap=0.005, rate_limited_floor=0.005, blocked_floor=0.005)


class Bug(Exception):
    """A bug planted in a part."""


async def test_a_part_is_restarted_until_it_returns_and_each_bug_is_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each bug is logged with its traceback and kept as an InternalError; the part reruns."""
    runs = 0

    async def part() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise Bug(f"run {runs}")

    sup = Supervisor("test", config=QUICK)
    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(sup.run("part", part), 2)
    assert runs == 3
    assert sup.errors == (InternalError("part", "Bug: run 1"), InternalError("part", "Bug: run 2"))
    assert sup.count == 2
    assert [r.exc_info is not None for r in caplog.records] == [True, True]


async def test_a_part_without_progress_is_given_up_and_with_progress_is_not() -> None:
    """give_up_after counts failures in a row; progress in between starts the count over."""
    runs = 0
    work = 0
    gave_up: list[BaseException] = []

    async def part() -> None:
        nonlocal runs, work
        runs += 1
        if runs % 2 == 0:
            work += 1  # every other run does useful work before it fails
        if runs < 8:
            raise Bug(str(runs))

    sup = Supervisor("test", config=QUICK)
    await asyncio.wait_for(
        sup.run("part", part, progress=lambda: work, give_up_after=3, on_give_up=gave_up.append),
        2,
    )
    assert runs == 8 and gave_up == []

    async def hopeless() -> None:
        raise Bug("always")

    await asyncio.wait_for(
        sup.run(
            "hopeless", hopeless, progress=lambda: 0, give_up_after=3, on_give_up=gave_up.append
        ),
        2,
    )
    assert [str(e) for e in gave_up] == ["always"]
    assert sum(e.part == "hopeless" for e in sup.errors) == 3


async def test_stopping_ends_the_wait_for_a_restart() -> None:
    """Once the owner is stopping, a part that failed is not restarted."""
    stopping = asyncio.Event()
    runs = 0

    async def part() -> None:
        nonlocal runs
        runs += 1
        stopping.set()
        raise Bug("while closing")

    sup = Supervisor("test", config=BackoffConfig(first_delay=30.0, cap=60.0), stopping=stopping)
    await asyncio.wait_for(sup.run("part", part), 2)
    assert runs == 1


async def test_only_the_newest_records_are_kept() -> None:
    """A repeating bug keeps at most INTERNAL_ERRORS_KEPT records; the count goes on."""
    runs = 0

    async def part() -> None:
        nonlocal runs
        runs += 1
        if runs <= INTERNAL_ERRORS_KEPT + 5:
            raise Bug(str(runs))

    tiny = BackoffConfig(
        first_delay=0.0001, cap=0.0001, rate_limited_floor=0.0001, blocked_floor=0.0001
    )
    sup = Supervisor("test", config=tiny)
    await asyncio.wait_for(sup.run("part", part), 5)
    assert len(sup.errors) == INTERNAL_ERRORS_KEPT and sup.count == INTERNAL_ERRORS_KEPT + 5
    assert sup.errors[-1].error == f"Bug: {INTERNAL_ERRORS_KEPT + 5}"
