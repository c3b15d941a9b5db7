"""The shipped starter model on its own test part: macro AUC with its interval, per-class AUC, and the
out-of-scope false-normal rate at the shipped thresholds (with SNR sensitivity beside it).

Usage (from the repository root, ``../shared/data`` beside it, or ``ECGLENS_DATA``):
  python benchmarks/bench_starter.py [--work /tmp/ecglens-bench-starter] [--bootstrap 1000]

It prepares one cache per source the starter was built from (listed in its ``starter.json``) at 100 Hz, splits
them as the build did (the split stored in the bundle: out-of-scope records kept as negatives), and scores the
test part with the bundle's own thresholds: nothing is tuned here. Goals from issue 23: macro AUC >= 0.93 on
that test part, false-normal rate <= 10 % with SNR sensitivity >= 0.90.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ECGLENS_DATA", REPO.parent / "shared" / "data"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ecglens-bench-starter"))
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    from ecglens.bundle.meta import resolve_bundle, starter_manifest
    from ecglens.data.cache import build_cache
    from ecglens.io import parse_source
    from ecglens.train.evaluate import evaluate_bundle

    if not DATA.is_dir():
        print(f"error: no shared data at {DATA} (set ECGLENS_DATA)", file=sys.stderr)
        return 1
    started = time.perf_counter()
    bundle = resolve_bundle("starter")
    manifest = starter_manifest()
    paths = []
    for i, spec in enumerate(manifest.sources):
        path = Path(args.work) / f"cache-{i}"
        build_cache(
            [parse_source(spec.format(d=DATA))], path, 100, manifest.label_profile, progress=False, overwrite=True
        )
        paths.append(path)
    report = evaluate_bundle(bundle, paths, n_bootstrap=args.bootstrap, device="cpu", retune=False)
    result, outside = report.combined, report.out_of_scope
    low, high = result.average_ci95.get("auc", (float("nan"), float("nan")))
    print(
        f"{manifest.name} on its test part: {result.n_records} records, of which {outside.n_records} out of "
        f"scope (negatives for every class); thresholds: {report.threshold_origin.describe()}"
    )
    print(
        f"macro AUC {result.macro_auc:.3f} (95 % bootstrap {low:.3f}-{high:.3f}, {result.n_bootstrap} resamples)"
        "   goal >= 0.93"
    )
    print("| class | test positives | AUC (95 %) | recall at the shipped threshold | decided |")
    print("|---|---|---|---|---|")
    unknown = dict(report.not_validated)
    for m in result.per_class:
        auc = "n/a" if m.auc is None else f"{m.auc:.3f}"
        if m.auc is not None and "auc" in m.ci95:
            auc += f" ({m.ci95['auc'][0]:.2f}-{m.ci95['auc'][1]:.2f})"
        recall = "n/a" if m.recall is None else f"{m.recall:.3f}"
        decided = "never (not validated)" if m.name in unknown else "yes"
        print(f"| {m.name} | {m.n_positive} | {auc} | {recall} | {decided} |")
    rate = outside.false_normal
    snr = result.class_metrics("SNR")
    if rate is not None and rate[1] is not None:
        print(
            f"false-normal rate: {rate[0]} of {outside.n_records} out-of-scope records called SNR = {rate[1]:.1%} "
            f"(95 % Wilson {rate[2][0]:.1%}-{rate[2][1]:.1%})   goal <= 10 %"
        )
    print(f"SNR sensitivity at the shipped threshold: {snr.recall:.3f} ({snr.n_positive} SNR records)   goal >= 0.90")
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
