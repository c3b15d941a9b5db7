"""How well the measured QRS duration (and PR) separates bundle branch blocks (and AV block) on PTB-XL.

Usage: python benchmarks/bench_qrs_ptbxl.py [--ptbxl DIR] [--limit N] [--method net]

For every PTB-XL record in ``--ptbxl`` (default ``$ECGLENS_DATA/ptb-xl``) at 500 Hz (the shared sample holds
``records500`` for ecg_id <= 500) and at 100 Hz (the same records' ``records100``), the record's measurements
(`ecglens.waves.delineate.measurements_of`, the default delineator), then the AUC of:

- the QRS duration for complete LBBB (SCP ``CLBBB``) against every other record, and for complete RBBB
  (``CRBBB``);
- the PR interval for first-degree AV block (``1AVB``);

each with its count of positives and a bootstrap 95 % interval (1,000 resamples, seed 0), and the median QRS of
CLBBB, CRBBB and NORM records. Nothing is tuned here: the measurement rule is fixed; these records were never
used to build it (the delineator was trained on LUDB). Records without a value (no PR without conducted P
waves) are counted apart, never dropped silently.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TARGETS = (("CLBBB", "qrs_ms"), ("CRBBB", "qrs_ms"), ("1AVB", "pr_ms"))


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _interval(scores: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    values = []
    for _ in range(1000):
        pick = rng.integers(0, len(labels), len(labels))
        if labels[pick].any() and not labels[pick].all():
            values.append(_auc(scores[pick], labels[pick]))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = Path(os.environ.get("ECGLENS_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--ptbxl", type=Path, default=data / "ptb-xl")
    parser.add_argument("--limit", type=int, default=None, help="The first N records at 500 Hz only.")
    parser.add_argument("--method", default=None, help="Delineation method (default: the package's default).")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from ecglens.io import read_record
    from ecglens.leads import LEAD_NAMES
    from ecglens.waves.delineate import measurements_of

    table = pd.read_csv(args.ptbxl / "ptbxl_database.csv", index_col="ecg_id")
    ids = [i for i in table.index if (args.ptbxl / f"{table.loc[i, 'filename_hr']}.hea").exists()][: args.limit]
    codes = {i: set(ast.literal_eval(table.loc[i, "scp_codes"])) for i in ids}
    print(f"PTB-XL records with a 500-Hz file: {len(ids)}")
    for column, rate in (("filename_hr", 500), ("filename_lr", 100)):
        values: dict[str, list[float | None]] = {"qrs_ms": [], "pr_ms": []}
        started = time.perf_counter()
        for i in ids:
            record = read_record(args.ptbxl / f"{table.loc[i, column]}.hea")
            measured = measurements_of(record.signal, record.sampling_rate_hz, LEAD_NAMES, method=args.method)
            values["qrs_ms"].append(measured.qrs_ms)
            values["pr_ms"].append(measured.pr_ms)
        seconds = (time.perf_counter() - started) / max(1, len(ids))
        print(f"\n## {rate} Hz ({1000 / rate:.0f} ms per sample), {seconds * 1000:.0f} ms per record (read + measure)")
        for name in ("CLBBB", "CRBBB", "NORM"):
            qrs = [q for q, i in zip(values["qrs_ms"], ids, strict=True) if name in codes[i] and q is not None]
            print(f"median QRS of {name}: {np.median(qrs):.0f} ms (n={len(qrs)})" if qrs else f"{name}: none")
        rng = np.random.default_rng(0)
        for code, measure in TARGETS:
            pairs = [(v, code in codes[i]) for v, i in zip(values[measure], ids, strict=True)]
            known = np.array([v for v, _ in pairs if v is not None], float)
            labels = np.array([y for v, y in pairs if v is not None], bool)
            missing = sum(v is None for v, _ in pairs)
            missing_pos = sum(v is None and y for v, y in pairs)
            if labels.sum() < 2:
                print(f"{code} by {measure}: {int(labels.sum())} positives with a value: no AUC")
                continue
            low, high = _interval(known, labels, rng)
            print(
                f"{code} by {measure}: AUC {_auc(known, labels):.3f} (95 % CI {low:.3f}-{high:.3f}), "
                f"{int(labels.sum())} positives of {len(labels)} records with a value; "
                f"{missing} without a value ({missing_pos} of them positives)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
