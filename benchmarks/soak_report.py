"""Sum up a chaos soak's progress file and print the markdown table for the README.

Usage: ``.venv/bin/python benchmarks/soak_report.py benchmarks/results/soak-24h.jsonl``
(``--json`` prints the summary as JSON instead).

The soak (tests/scenarios/chaos.py; ``make soak``, ``make soak-24h``) appends one JSON line
per minute to its progress file. Counters in a line are cumulative over every segment (a
resumed run continues the counts); recovery samples and failures are the ones new since the
previous line, so the whole file holds every sample exactly once. RSS and the library's task
count are per segment: each segment is a new process, its own memory.

Stdlib only, so it runs anywhere; the soak test imports :func:`summarize` and
:func:`markdown` to print the same report at the end of a run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["growth", "markdown", "percentile", "read_lines", "slope_per_hour", "summarize"]

#: Seconds of a segment left out of the RSS and task trends: imports, caches, buffers and the
#: allocator's arenas reach their working size first.
WARM_UP_SECONDS = 120.0
#: The availability target of the issue: 99.9 % at one fault per 10 minutes.
TARGET_AVAILABILITY = 0.999
FAULT_PERIOD_OF_TARGET = 600.0


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Return the progress lines of ``path`` (a torn last line, from a kill, is skipped)."""
    lines: list[dict[str, Any]] = []
    if not path.exists():
        return lines
    for text in path.read_text(encoding="utf-8").splitlines():
        if not text.strip():
            continue
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            continue  # a line cut short when the process was killed mid-write
    return lines


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q`` quantile (0-1) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float:
    """Return the least-squares slope of ``(seconds, value)`` points, per hour; 0 if < 2."""
    if len(points) < 2:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 3600.0


def growth(values: Sequence[float]) -> float:
    """Return median of the last quarter minus median of the first quarter (0 if < 4 values).

    Medians of quarters, not first and last sample: one sample taken while a reconnect holds
    a snapshot burst in flight must not read as a trend.
    """
    if len(values) < 4:
        return 0.0
    quarter = max(1, len(values) // 4)
    return statistics.median(values[-quarter:]) - statistics.median(values[:quarter])


def _merge_samples(lines: Iterable[dict[str, Any]], key: str) -> dict[str, list[float]]:
    merged: dict[str, list[float]] = {}
    for line in lines:
        for kind, values in line.get(key, {}).items():
            merged.setdefault(kind, []).extend(values)
    return merged


def _segments(lines: Sequence[dict[str, Any]], warm_up: float) -> list[dict[str, Any]]:
    by_segment: dict[int, list[dict[str, Any]]] = {}
    for line in lines:
        by_segment.setdefault(int(line["segment"]), []).append(line)
    out = []
    for segment, seg_lines in sorted(by_segment.items()):
        warm = [ln for ln in seg_lines if ln["segment_elapsed"] >= warm_up] or seg_lines[-1:]
        rss = [(ln["segment_elapsed"], ln["rss_mb"]) for ln in warm]
        tasks = [(ln["segment_elapsed"], float(ln["tasks"])) for ln in warm]
        # Where the memory is (tests/scenarios/chaos.py heap_sample), in lines that have it.
        heaped = [ln for ln in warm if "heap" in ln]
        heap = {
            key: {
                "first": heaped[0]["heap"][key],
                "last": heaped[-1]["heap"][key],
                "per_hour": slope_per_hour(
                    [(ln["segment_elapsed"], float(ln["heap"][key])) for ln in heaped]
                ),
            }
            for key in (heaped[-1]["heap"] if heaped else {})
        }
        out.append(
            {
                "segment": segment,
                "seed": seg_lines[0].get("seed"),
                "seconds": seg_lines[-1]["segment_elapsed"],
                "finished": bool(seg_lines[-1].get("final")),
                "rss_mb_first": seg_lines[0]["rss_mb"],
                "rss_mb_after_warm_up": warm[0]["rss_mb"],
                "rss_mb_last": seg_lines[-1]["rss_mb"],
                "rss_mb_growth": growth([v for _, v in rss]),
                "rss_mb_per_hour": slope_per_hour(rss),
                "tasks_min": min(int(v) for _, v in tasks),
                "tasks_max": max(int(v) for _, v in tasks),
                "tasks_growth": growth([v for _, v in tasks]),
                "tasks_per_hour": slope_per_hour(tasks),
                "load_average": seg_lines[-1].get("load_average"),
                "heap": heap,
            }
        )
    return out


def summarize(
    lines: Sequence[dict[str, Any]], *, warm_up: float = WARM_UP_SECONDS
) -> dict[str, Any]:
    """Return the cumulative summary of a soak's progress lines (every segment)."""
    if not lines:
        raise ValueError("no progress lines: the soak has not written any yet")
    last = lines[-1]
    lost = _merge_samples(lines, "lost")
    recovery = _merge_samples(lines, "recovery")
    faults: dict[str, int] = last["faults"]
    recovered: dict[str, int] = last["recovered"]
    total_faults = sum(faults.values())
    elapsed = float(last["elapsed"])
    down = float(last["down_seconds"])
    lost_per_fault = down / total_faults if total_faults else 0.0
    kinds = {}
    for kind in sorted(faults):
        kinds[kind] = {
            "injected": faults[kind],
            "recovered": recovered.get(kind, 0),
            "lost_p50": percentile(lost.get(kind, []), 0.5),
            "lost_p99": percentile(lost.get(kind, []), 0.99),
            "recovery_p50": percentile(recovery.get(kind, []), 0.5),
            "recovery_p99": percentile(recovery.get(kind, []), 0.99),
        }
    by_target = _merge_samples(lines, "lost_by_target")
    failures = [f for line in lines for f in line.get("failures", [])]
    library = [v for values in recovery.values() for v in values]
    library_per_fault = statistics.fmean(library) if library else 0.0
    return {
        "segments": len({line["segment"] for line in lines}),
        "elapsed_seconds": elapsed,
        "faults_injected": total_faults,
        "faults_recovered": sum(recovered.values()),
        "kinds": kinds,
        "lost_by_target": {
            key: {
                "n": len(v),
                "p50": percentile(v, 0.5),
                "p99": percentile(v, 0.99),
            }
            for key, v in sorted(by_target.items())
        },
        "down_seconds": down,
        "availability": 1.0 - down / elapsed if elapsed > 0 else math.nan,
        "lost_seconds_per_fault": lost_per_fault,
        # What the measured loss per fault gives at the one fault per 10 minutes.
        "availability_at_one_fault_per_10_min": 1.0 - lost_per_fault / FAULT_PERIOD_OF_TARGET,
        # The same counting only the library's part: from the moment the server let it
        # recover (a refusal's end, the key's restore, a restart's downtime over).
        "recovery_seconds_per_fault": library_per_fault,
        "availability_at_one_fault_per_10_min_library": 1.0
        - library_per_fault / FAULT_PERIOD_OF_TARGET,
        "list_checks": last["list_checks"],
        "list_mismatches": last["list_mismatches"],
        "list_latency_p99": percentile(
            [v for line in lines for v in line.get("list_latency", [])], 0.99
        ),
        "unplanned_drops": last["unplanned_drops"],
        "suspicions": last.get("suspicions", 0),
        "private": last["private"],
        "per_segment": _segments(lines, warm_up),
        "failures": failures,
    }


def _s(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def markdown(summary: dict[str, Any]) -> str:
    """Return the summary as the markdown tables the README shows."""
    hours = summary["elapsed_seconds"] / 3600
    private = summary["private"]
    out = [
        f"Chaos soak: {hours:.2f} h in {summary['segments']} segment(s), "
        f"{summary['faults_injected']} faults injected, {summary['faults_recovered']} recovered.",
        "",
        "| fault | injected | recovered | lost p50 (s) | lost p99 (s) | recovery p50 (s) "
        "| recovery p99 (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, k in summary["kinds"].items():
        out.append(
            f"| {kind} | {k['injected']} | {k['recovered']} | {_s(k['lost_p50'])} "
            f"| {_s(k['lost_p99'])} | {_s(k['recovery_p50'])} | {_s(k['recovery_p99'])} |"
        )
    if summary["lost_by_target"]:
        out += ["", "| fault on | n | lost p50 (s) | lost p99 (s) |", "| --- | --- | --- | --- |"]
        for key, t in summary["lost_by_target"].items():
            out.append(f"| {key} | {t['n']} | {_s(t['p50'])} | {_s(t['p99'])} |")
    target = summary["availability_at_one_fault_per_10_min"]
    verdict = "met" if target >= TARGET_AVAILABILITY else "NOT met"
    library = summary["availability_at_one_fault_per_10_min_library"]
    library_verdict = "met" if library >= TARGET_AVAILABILITY else "NOT met"
    out += [
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| availability at the soak's fault rate | {summary['availability'] * 100:.3f} % |",
        f"| lost data per fault (mean) | {summary['lost_seconds_per_fault']:.3f} s |",
        f"| availability at one fault per 10 min (target 99.9 %) | {target * 100:.3f} % "
        f"({verdict}) |",
        f"| the same, library's part only (mean {summary['recovery_seconds_per_fault']:.3f} s "
        f"from the server allowing recovery) | {library * 100:.3f} % ({library_verdict}) |",
        f"| LIST_SUBSCRIPTIONS checks / mismatches | {summary['list_checks']} / "
        f"{summary['list_mismatches']} (p99 {_s(summary['list_latency_p99'])} s to match) |",
        f"| drops not caused by a fault | {summary['unplanned_drops']} |",
        f"| suspicions outside a fault (open -> degraded: a probe or a hedge, no drop) | "
        f"{summary['suspicions']} |",
        f"| private orders / order events checked | {private['orders']} / "
        f"{private['events_checked']} |",
        f"| private events missed / duplicated / late | {private['missed']} / "
        f"{private['duplicated']} / {private['late']}"
        + ("" if private["asserted"] else " (not asserted: no reconciliation in this build)")
        + " |",
        f"| balance checks / mismatches | {private['balance_checks']} / "
        f"{private['balance_mismatches']} |",
        f"| reconciliations seen / messages reconciled | {private['reconciliations']} / "
        f"{private['reconciled_messages']} |",
        "",
        "| segment | seed | minutes | RSS MB first / after warm-up / last | RSS growth MB "
        "| RSS MB/h | library tasks min-max | tasks growth | load average |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for seg in summary["per_segment"]:
        load = seg.get("load_average")
        load_text = " ".join(f"{x:.2f}" for x in load) if load else "-"
        out.append(
            f"| {seg['segment']} | {seg['seed']} | {seg['seconds'] / 60:.1f} "
            f"| {seg['rss_mb_first']:.1f} / {seg['rss_mb_after_warm_up']:.1f} / "
            f"{seg['rss_mb_last']:.1f} | {seg['rss_mb_growth']:+.2f} "
            f"| {seg['rss_mb_per_hour']:+.2f} | {seg['tasks_min']}-{seg['tasks_max']} "
            f"| {seg['tasks_growth']:+.1f} | {load_text} |"
        )
    heaped = [seg for seg in summary["per_segment"] if seg.get("heap")]
    if heaped:
        out += [
            "",
            "| segment | heap after warm-up -> last (per hour) |",
            "| --- | --- |",
        ]
        for seg in heaped:
            parts = [
                f"{key} {v['first']:g} -> {v['last']:g} ({v['per_hour']:+.2f}/h)"
                if key.endswith("_mb")
                else f"{key} {v['first']:,} -> {v['last']:,} ({v['per_hour']:+,.0f}/h)"
                for key, v in seg["heap"].items()
            ]
            out.append(f"| {seg['segment']} | {'; '.join(parts)} |")
    if summary["failures"]:
        out += ["", f"{len(summary['failures'])} failure(s):"]
        out += [f"- {f}" for f in summary["failures"][:20]]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report of the progress file named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="the soak's progress file (JSON lines)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    lines = read_lines(args.file)
    if not lines:
        print(f"{args.file}: no progress lines", file=sys.stderr)
        return 1
    summary = summarize(lines)
    print(json.dumps(summary, indent=2) if args.json else markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
