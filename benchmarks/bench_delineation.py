"""Delineation against LUDB's cardiologists, and the measurements it gives against theirs, by cross-validation.

Usage: python benchmarks/bench_delineation.py [--ludb DIR] [--methods net,prominence,dwt] [--cv DIR] [--limit N]
                                              [--json PATH]

For every record of LUDB in ``--ludb`` (default ``$ECGLENS_DATA/ludb/data``) and every delineation method:
per wave boundary (P, QRS and T onsets and offsets), over all leads, the sensitivity and positive predictive
value within 150 ms of the cardiologists' marks and the mean and SD of the error (found minus marked, ms),
counting only the span each lead's marks cover (the cardiologists leave the first and last beats
unmarked); overall and per subgroup: wide QRS (the cardiologists' global QRS >= 120 ms; and >= 140 ms, the
issue's goal), no P waves (no lead has a P mark: atrial fibrillation, flutter, paced), paced (ludb.csv's
``Cardiac pacing``). Then the global measurements (heart rate, PR, QRS, QT) computed by one rule
(``ecglens.waves.measure``) from the cardiologists' marks and from the
delineation: mean absolute difference, bias and SD, per subgroup. And the time per record (delineation plus
measurement, one torch thread; ``--threads``).

``net`` is the learned delineator (``net-floors``: the same network, its waves grown by
``ecglens.waves.net.LUDB_FLOORS``, which fit LUDB's global rule but not the carts; not the default). With
``--cv DIR`` (the output of ``python -m ecglens.train.delineator --ludb DIR --folds 5 --out DIR``) every record
is delineated by the network of the fold that held it out, so the scores are cross-validated; without it the
shipped network is used, which was trained on these very records (its scores there are training scores, not an
estimate). neurokit2's methods have nothing to train: their score on a fold is their score on its records.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEASURED = ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms")
AXIS_GOAL_DEG = 15.0
GROUPS = ("all", "wide QRS", "QRS >= 140 ms", "no P waves", "paced")
PUBLISHED = [
    (
        "Kalyakulina et al., LUDB (IEEE Access 8:186181, 2020), wavelet algorithm, all 200 records, 150 ms",
        {"P onset": "-2.7 +- 10.2", "QRS onset": "-8.1 +- 7.7", "T offset": "5.7 +- 15.5"},
        "Se/PPV 96-99.9 % across boundaries",
    ),
    (
        "Moskalenko, Zolotykh & Osipov, Deep Learning for ECG Segmentation (arXiv:2001.04689, 2020), U-Net on LUDB",
        {},
        "F1 >= 97.8 % (P), 99.5 % (T), 99.9 % (QRS) onsets and offsets",
    ),
]


def _records(folder: Path, limit: int | None) -> list[Path]:
    headers = sorted(folder.glob("*.hea"), key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)
    return headers[:limit] if limit else headers


def _paced(folder: Path) -> set[str]:
    table = next((p for p in (folder / "ludb.csv", folder.parent / "ludb.csv") if p.is_file()), None)
    if table is None:
        return set()
    with table.open(newline="") as handle:
        return {row["ID"].strip() for row in csv.DictReader(handle) if row.get("Cardiac pacing", "").strip()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = Path(os.environ.get("ECGLENS_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--ludb", type=Path, default=data / "ludb" / "data")
    parser.add_argument("--methods", default="net,prominence,dwt")
    parser.add_argument("--cv", type=Path, default=None, help="Fold networks and cv.json (ecglens.train.delineator).")
    parser.add_argument("--limit", type=int, default=None, help="The first N records only.")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on 2 shared cores, 2 threads wait on each other).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Write the numbers here too.")
    args = parser.parse_args()
    if not args.ludb.is_dir():
        print(f"error: no LUDB records at {args.ludb} (set ECGLENS_DATA or --ludb)", file=sys.stderr)
        return 1
    import torch

    torch.set_num_threads(args.threads)
    from ecglens.io import read_record
    from ecglens.waves.delineate import delineate
    from ecglens.waves.ludb import read_ludb_marks
    from ecglens.waves.match import TOLERANCE_S, BoundaryScore, score_marks
    from ecglens.waves.measure import measure
    from ecglens.waves.net import LUDB_FLOORS, delineate_net, read_weights

    headers = _records(args.ludb, args.limit)
    records = [(h.stem, read_record(h), read_ludb_marks(h)) for h in headers]
    paced = _paced(args.ludb)
    groups: dict[str, set[str]] = {g: set() for g in GROUPS}
    truth = {}
    for name, record, marks in records:
        truth[name] = measure(marks, record.signal).to_dict()
        groups["all"].add(name)
        if (truth[name]["qrs_ms"] or 0) >= 120:
            groups["wide QRS"].add(name)
        if (truth[name]["qrs_ms"] or 0) >= 140:
            groups["QRS >= 140 ms"].add(name)
        if not any(len(lead.of("P")) for lead in marks.leads):
            groups["no P waves"].add(name)
        if name in paced:
            groups["paced"].add(name)
    fold_models = {}
    if args.cv is not None:
        cv = json.loads((args.cv / "cv.json").read_text())
        fold_models = {
            name: read_weights(args.cv / f"fold_{fold}.safetensors") for name, fold in cv["assignment"].items()
        }
        folds = sorted(set(cv["assignment"].values()))
        members = {f: sorted((n for n, k in cv["assignment"].items() if k == f), key=int) for f in folds}
        print(
            f"{len(folds)} record-disjoint folds: "
            + "; ".join(f"fold {f}: {', '.join(m[:3])}, ..." for f, m in members.items())
        )
    print(
        f"{len(records)} LUDB records ({args.ludb}); tolerance {TOLERANCE_S * 1000:.0f} ms; "
        + ", ".join(f"{g}: {len(v)}" for g, v in groups.items())
    )
    results = {}
    for method in args.methods.split(","):
        totals: dict[str, dict[str, BoundaryScore]] = {g: {} for g in GROUPS}
        differences: dict[str, dict[str, list[float]]] = {g: {m: [] for m in MEASURED} for g in GROUPS}
        pr_without_p, seconds, axis_off = 0, [], []
        for name, record, marks in records:
            started = time.perf_counter()
            if method in ("net", "net-floors"):  # net-floors: the network's waves grown by LUDB_FLOORS
                model = fold_models.get(name)
                floors = LUDB_FLOORS if method == "net-floors" else None
                found = delineate_net(
                    record.signal, record.sampling_rate_hz, record.lead_names, model=model, floors=floors
                )
            else:
                found = delineate(record.signal, record.sampling_rate_hz, record.lead_names, method)
            ours = measure(found, record.signal).to_dict()
            seconds.append(time.perf_counter() - started)
            scores = score_marks(marks, found)
            for group, members in groups.items():
                if name not in members:
                    continue
                for boundary, score in scores.items():
                    got = totals[group].get(boundary)
                    totals[group][boundary] = got + score if got else score
                for m in MEASURED:
                    if ours[m] is not None and truth[name][m] is not None:
                        differences[group][m].append(ours[m] - truth[name][m])
            pr_without_p += name in groups["no P waves"] and ours["pr_ms"] is not None
            if ours["qrs_axis_deg"] is not None and truth[name]["qrs_axis_deg"] is not None:
                axis_off.append(abs((ours["qrs_axis_deg"] - truth[name]["qrs_axis_deg"] + 180) % 360 - 180))
        how = {"net": "", "net-floors": ", waves grown by LUDB_FLOORS (not the default)"}
        origin = (
            " (cross-validated: each record by its held-out fold's network)"
            if fold_models
            else " (shipped weights: TRAINING records, not an estimate)"
        )
        label = f"learned U-Net{how[method]}{origin}" if method in how else f"neurokit2 {method}"
        results[method] = _print_method(label, totals, differences, seconds, pr_without_p, len(groups["no P waves"]))
        within = sum(a <= AXIS_GOAL_DEG for a in axis_off)
        print(
            f"QRS axis within {AXIS_GOAL_DEG:g} deg of the one from the cardiologists' global QRS window: "
            f"{within} of {len(axis_off)} records (goal: 85 %); median difference {statistics.median(axis_off):.1f} deg"
        )
        results[method]["qrs_axis_within_15_deg"] = [within, len(axis_off)]
    _print_published()
    if args.json:
        args.json.write_text(
            json.dumps({"groups": {g: sorted(v, key=int) for g, v in groups.items()}, "methods": results}, indent=1)
        )
    return 0


def _print_method(
    label: str, totals: dict, differences: dict, seconds: list[float], pr_without_p: int, n_no_p: int
) -> dict:
    import numpy as np

    def fmt(value: float | None, pattern: str) -> str:
        return "n/a" if value is None else format(value, pattern)

    per_record = statistics.median(seconds) * 1000
    print(
        f"\n## {label}: delineation + measurement {per_record:.0f} ms per record (median), "
        f"{max(seconds) * 1000:.0f} ms at most (goal <= 100 ms: {'met' if per_record <= 100 else 'NOT met'})"
    )
    out: dict = {"ms_per_record_median": per_record, "ms_per_record_max": max(seconds) * 1000, "groups": {}}
    for group, scores in totals.items():
        if not scores:
            continue
        print(f"### {group}")
        print(f"{'boundary':<12} {'marked':>7} {'found':>7} {'Se':>7} {'PPV':>7} {'error mean +- SD (ms)':>24}")
        rows = {}
        for name, score in scores.items():
            marked = score.true_positives + score.false_negatives
            found = score.true_positives + score.false_positives
            error = f"{fmt(score.mean_ms, '+.1f')} +- {fmt(score.sd_ms, '.1f')}"
            print(
                f"{name:<12} {marked:>7} {found:>7} {fmt(score.sensitivity, '.3f'):>7} {fmt(score.ppv, '.3f'):>7} "
                f"{error:>24}"
            )
            rows[name] = {
                "marked": marked,
                "found": found,
                "se": score.sensitivity,
                "ppv": score.ppv,
                "mean_ms": score.mean_ms,
                "sd_ms": score.sd_ms,
            }
        print("measurement - cardiologists' (global rule): MAE, bias +- SD, records")
        measured = {}
        for m, values in differences[group].items():
            if values:
                v = np.asarray(values)
                sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
                print(f"  {m:<16} {np.abs(v).mean():7.1f}  {v.mean():+7.1f} +- {sd:.1f}  {len(v)}")
                measured[m] = {"mae": float(np.abs(v).mean()), "bias": float(v.mean()), "sd": sd, "n": len(v)}
        out["groups"][group] = {"boundaries": rows, "measurements": measured}
    print(f"records without P waves given a PR interval: {pr_without_p} of {n_no_p}")
    out["pr_on_records_without_p"] = pr_without_p
    return out


def _print_published() -> None:
    print("\n## Published (their own records and protocols; not cross-validated on this half)")
    for source, errors, detection in PUBLISHED:
        shown = ", ".join(f"{k} {v} ms" for k, v in errors.items())
        print(f"- {source}: {shown + '; ' if shown else ''}{detection}")


if __name__ == "__main__":
    sys.exit(main())
