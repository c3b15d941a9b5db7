"""Delineation against LUDB's cardiologists, and the measurements it gives against theirs.

Usage: python benchmarks/bench_delineation.py [--ludb DIR] [--methods prominence,dwt] [--limit N]

For every record of LUDB in ``--ludb`` (default ``$ECGLENS_DATA/ludb/data``) and every delineation method:
per wave boundary (P, QRS and T onsets and offsets), over all leads, the sensitivity and positive predictive
value within 150 ms of the cardiologists' marks and the mean and SD of the error (found minus marked, ms),
counting only the span each lead's marks cover (the cardiologists leave the first and last beats unmarked).
Then the global measurements (heart rate, PR, QRS, QT, QTc Bazett) computed by one rule from the
cardiologists' marks and from the delineation, with their mean absolute difference, and the time per record.

Published figures are not printed beside ours: the LUDB paper (Kalyakulina et al., IEEE Access 8:186181, 2020)
and neurokit2's delineation papers report theirs per method and tolerance; compare with them there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOALS = {"sensitivity": 0.95, "ppv": 0.95, "qrs_ms": 15.0, "pr_ms": 15.0}
MEASURED = ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms")


def _records(folder: Path, limit: int | None) -> list[Path]:
    headers = sorted(folder.glob("*.hea"), key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)
    return headers[:limit] if limit else headers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = Path(os.environ.get("ECGLENS_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--ludb", type=Path, default=data / "ludb" / "data")
    parser.add_argument("--methods", default="prominence,dwt")
    parser.add_argument("--limit", type=int, default=None, help="The first N records only.")
    args = parser.parse_args()
    if not args.ludb.is_dir():
        print(f"error: no LUDB records at {args.ludb} (set ECGLENS_DATA or --ludb)", file=sys.stderr)
        return 1
    from ecglens.io import read_record
    from ecglens.waves.delineate import delineate
    from ecglens.waves.ludb import read_ludb_marks
    from ecglens.waves.match import TOLERANCE_S, BoundaryScore
    from ecglens.waves.measure import measure
    from ecglens.waves.segments import segment_labels, wave_shares

    headers = _records(args.ludb, args.limit)
    records = [(read_record(h), read_ludb_marks(h)) for h in headers]
    print(f"{len(records)} LUDB records ({args.ludb}); tolerance {TOLERANCE_S * 1000:.0f} ms; one process")
    for method in args.methods.split(","):
        totals: dict[str, BoundaryScore] = {}
        differences: dict[str, list[float]] = {name: [] for name in MEASURED}
        seconds = []
        from ecglens.waves.match import score_marks

        for record, marks in records:
            started = time.perf_counter()
            found = delineate(record.signal, record.sampling_rate_hz, record.lead_names, method)
            labels = segment_labels(found, record.signal.shape[1])  # and one map placed among the waves
            wave_shares(record.signal, labels, record.lead_names, "LBBB", "signal")
            seconds.append(time.perf_counter() - started)
            for name, score in score_marks(marks, found).items():
                totals[name] = totals[name] + score if name in totals else score
            ours, theirs = measure(found, record.signal).to_dict(), measure(marks, record.signal).to_dict()
            for name in MEASURED:
                if ours[name] is not None and theirs[name] is not None:
                    differences[name].append(abs(ours[name] - theirs[name]))
        _print_method(method, totals, differences, seconds)
    return 0


def _print_method(method: str, totals: dict, differences: dict[str, list[float]], seconds: list[float]) -> None:
    def fmt(value: float | None, pattern: str) -> str:
        return "n/a" if value is None else format(value, pattern)

    worst = max(seconds)
    print(
        f"\n## neurokit2, method {method}: delineation + one map placed among the waves, "
        f"{statistics.median(seconds) * 1000:.0f} ms per record (median), {worst * 1000:.0f} ms at most "
        f"(goal <= 1000 ms: {'met' if worst <= 1.0 else 'NOT met'})"
    )
    print(f"{'boundary':<12} {'marked':>7} {'found':>7} {'Se':>7} {'PPV':>7} {'error mean +- SD (ms)':>24}")
    for name, score in totals.items():
        marked = score.true_positives + score.false_negatives
        found = score.true_positives + score.false_positives
        error = f"{fmt(score.mean_ms, '+.1f')} +- {fmt(score.sd_ms, '.1f')}"
        print(
            f"{name:<12} {marked:>7} {found:>7} {fmt(score.sensitivity, '.3f'):>7} {fmt(score.ppv, '.3f'):>7} "
            f"{error:>24}"
        )
    qrs_ok = all(
        (totals[b].sensitivity or 0) >= GOALS["sensitivity"] and (totals[b].ppv or 0) >= GOALS["ppv"]
        for b in ("QRS onset", "QRS offset")
    )
    print(f"goal QRS onset/offset Se and PPV >= 0.95: {'met' if qrs_ok else 'NOT met'}")
    print("measurement, |delineation - cardiologists| (both by ecglens's global rule): mean (median), records")
    for name, values in differences.items():
        if values:
            goal = (
                f"  goal <= {GOALS[name]:g} ms: {'met' if statistics.mean(values) <= GOALS[name] else 'NOT met'}"
                if name in GOALS
                else ""
            )
            print(f"  {name:<16} {statistics.mean(values):7.1f} ({statistics.median(values):.1f}), {len(values)}{goal}")


if __name__ == "__main__":
    sys.exit(main())
