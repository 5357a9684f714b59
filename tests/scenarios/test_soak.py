"""Chaos soak: random faults, random components and orders, checked after every recovery.

The engine is tests/scenarios/chaos.py (what it does, what it checks). ``make test`` runs a
60 s segment; ``make soak`` runs ``UPBIT_WS_SOAK_SECONDS`` (default 600); ``make soak-24h``
runs the 24-hour soak in resumable segments (``UPBIT_WS_SOAK_PROGRESS``: a progress file
that a new run continues). ``UPBIT_WS_SOAK_SEED`` replays a run's random choices (the seed is
printed, and named in every failure); the timing of a loaded machine still varies.
``UPBIT_WS_SOAK_SUBSCRIBE_DELAY`` (seconds, default 0) makes the simulator start each
subscription that long after its request, as Upbit does (0.15-0.65 s, docs/protocol.md
section 1.3): 0 measures the library's recovery alone, 0.4 what a recovery costs against Upbit.

Each run is one module fixture shared by two tests: the public and recovery checks, and the
private exactly-once checks, which skip (saying what was measured) when this build has no
private reconciliation.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from pathlib import Path

import pytest
from benchmarks.soak_report import growth, markdown, summarize

from tests.scenarios.chaos import FAULT_KINDS, RECONCILIATION, ChaosSoak, SoakResult

SOAK_SECONDS = float(os.environ.get("UPBIT_WS_SOAK_SECONDS", "600"))
SHORT_SECONDS = 60.0
PROGRESS = os.environ.get("UPBIT_WS_SOAK_PROGRESS")
REPORT = os.environ.get("UPBIT_WS_SOAK_REPORT")
#: The simulator's subscribe_delay (seconds): 0 measures the library alone; Upbit starts a
#: subscription 0.15-0.65 s after its request, so e.g. 0.4 shows a recovery against Upbit.
SUBSCRIBE_DELAY = float(os.environ.get("UPBIT_WS_SOAK_SUBSCRIBE_DELAY", "0"))


def _seed() -> int:
    text = os.environ.get("UPBIT_WS_SOAK_SEED")
    return int(text) if text else random.SystemRandom().randrange(1, 2**31)


def _run(
    seconds: float, *, progress: Path | None, report: Path | None, min_faults: int = 0
) -> SoakResult:
    seed = _seed()
    print(f"\nchaos soak: seed {seed} (UPBIT_WS_SOAK_SEED={seed} replays it), {seconds:g} s")  # noqa: T201
    # Samples often enough for a trend in a short run, once a minute in a long one.
    sample_every = min(60.0, max(3.0, seconds / 20))
    soak = ChaosSoak(
        seed=seed,
        seconds=seconds,
        progress=progress,
        sample_every=sample_every,
        # A progress line a minute in a long run; in a short one, one per sample.
        line_every=60.0 if progress is not None else sample_every,
        min_faults=min_faults,
        subscribe_delay=SUBSCRIBE_DELAY,
    )
    result = asyncio.run(soak.run())
    summary = summarize(result.lines, warm_up=min(120.0, seconds * 0.2))
    print(markdown(summary))  # noqa: T201 - the soak's report, shown with -s
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        payload = {"seed": seed, "summary": summary, "samples": result.samples}
        report.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        print(f"report written to {report}")  # noqa: T201
    return result


@pytest.fixture(scope="module")
def short_soak(tmp_path_factory: pytest.TempPathFactory) -> SoakResult:
    """The 60 s segment of ``make test``; its JSON report goes to a temporary directory."""
    report = Path(REPORT) if REPORT else tmp_path_factory.mktemp("soak") / "soak-60s.json"
    # At least one bag of faults (every kind once), however slow a loaded machine makes it.
    return _run(SHORT_SECONDS, progress=None, report=report, min_faults=len(FAULT_KINDS))


@pytest.fixture(scope="module")
def long_soak() -> SoakResult:
    """The long soak: ``UPBIT_WS_SOAK_SECONDS``, resumable through a progress file."""
    progress = Path(PROGRESS) if PROGRESS else None
    report = Path(REPORT) if REPORT else None
    if report is None and progress is not None:
        report = progress.with_suffix(".report.json")
    return _run(SOAK_SECONDS, progress=progress, report=report)


def check_recovery(result: SoakResult, *, seconds: float, loose_availability: bool) -> None:
    """Every fault recovered, LIST matched, nothing leaked, RSS and tasks flat."""
    summary = summarize(result.lines, warm_up=min(120.0, seconds * 0.2))
    assert result.failures == [], "\n".join(result.failures)
    assert summary["faults_injected"] == summary["faults_recovered"] > 0
    assert summary["list_mismatches"] == 0
    assert result.internal_errors == ()
    assert result.decode_errors == 0
    assert result.leaked_tasks == []
    # Every progress line says where the memory is (tests/scenarios/chaos.py heap_sample).
    assert all(line["heap"]["py_blocks"] > 0 for line in result.lines)
    if loose_availability:
        # Judged loosely here (a loaded 2-core machine slows recoveries); the 99.9 % target
        # is judged in the long run's report. Blackholes alone take ~2.5 s to be noticed.
        assert summary["lost_seconds_per_fault"] < 6.0, summary
    warm = [s for s in result.samples if s[0] >= min(120.0, seconds * 0.2)]
    rss = [s[1] for s in warm]
    tasks = [float(s[2]) for s in warm]
    # Flat memory: a bound noise stays under and leaks break. Python's RSS moves as the
    # allocator's arenas and the snapshot bursts of reconnects come and go: the soak measured
    # +0.16 MB over 60 s and +0.30 MB over 10 minutes after warm-up, so 3 MB is ten times the
    # noise; on top of it 1 MB per hour of run. Keeping every delivered message (a leak per
    # message) grew 4.3 MB in 60 s and fails it; a leak per fault of 100 KB (one kept snapshot
    # of 200 tickers) grows ~20 MB an hour at this fault rate and fails the long runs.
    bound = 3.0 + seconds / 3600
    assert growth(rss) < bound, (rss, bound)
    # Library tasks sampled at steady points (after a recovery and its checks): the median of
    # the last quarter may not exceed the first quarter's by more than 2 (a reconnect or a
    # backfill caught in flight). A task leaked per fault adds one per fault: 15+ here.
    assert growth(tasks) <= 2, tasks


def check_private(result: SoakResult) -> None:
    """Every order event delivered exactly once; balances delivered equal REST."""
    measured = (
        f"measured anyway: {result.private_missed} order events missed, "
        f"{result.private_duplicated} duplicated, {result.balance_mismatches} balance "
        "mismatches"
    )
    if RECONCILIATION is None:
        pytest.skip(
            "upbit_ws has no ReconciliationFinished: private reconciliation is not in this "
            f"build, so a private reconnect loses the gap's order events by design; {measured}"
        )
    assert result.private_missed == 0, measured
    assert result.private_duplicated == 0, measured
    assert result.balance_mismatches == 0, measured


@pytest.mark.xdist_group("short_soak")
@pytest.mark.timeout(SHORT_SECONDS + 240)
def test_chaos_soak_recovers_every_fault(short_soak: SoakResult) -> None:
    """60 s of random faults: each recovered, LIST equals the wanted set, nothing leaks."""
    assert short_soak.kinds_seen == set(FAULT_KINDS)  # the shuffled bag meets every kind
    check_recovery(short_soak, seconds=SHORT_SECONDS, loose_availability=True)


@pytest.mark.xdist_group("short_soak")
@pytest.mark.timeout(SHORT_SECONDS + 240)
def test_chaos_soak_private_events_exactly_once(short_soak: SoakResult) -> None:
    """60 s of random faults: no private event missed or duplicated, balances equal REST."""
    check_private(short_soak)


@pytest.mark.soak
@pytest.mark.timeout(SOAK_SECONDS + 600)
def test_soak_long_run_stays_flat(long_soak: SoakResult) -> None:
    """UPBIT_WS_SOAK_SECONDS of chaos: every fault recovered, memory and tasks flat."""
    check_recovery(long_soak, seconds=long_soak.seconds, loose_availability=False)


@pytest.mark.soak
@pytest.mark.timeout(SOAK_SECONDS + 600)
def test_soak_long_run_private_events_exactly_once(long_soak: SoakResult) -> None:
    """UPBIT_WS_SOAK_SECONDS of chaos: no private event missed or duplicated."""
    check_private(long_soak)
