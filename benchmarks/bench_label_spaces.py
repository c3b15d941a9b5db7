"""The PTB-XL superdiagnostic task on the shared PTB-XL sample, beside the PTB-XL benchmark's published figures.

Usage:
  python benchmarks/bench_label_spaces.py [PTBXL_ROOT] [--epochs 30] [--work DIR]

Prepares the sample at 100 Hz (the benchmark's rate) once, trains the study's ResNet-34 with
``--label-space ptbxl-superdiagnostic`` (Adam 1e-4, batch 32; strat_fold 1-6 train, 7 validation, 8 test:
the sample holds folds 1-8 only), evaluates on fold 8 with 1000 bootstrap resamples, and prints macro AUC,
macro AUPRC and Fmax with 95 % intervals, per-class AUC, beside the full-data macro AUCs that Strodthoff et
al. 2021 publish for the same task (trained on folds 1-8 of all 21,799 records, tested on fold 10). The
benchmark's leaderboard publishes macro AUC only. The sample is about 7 % of PTB-XL and its test fold a
different one, so the levels are not comparable; the table is there to place the run, not to rank it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ecglens.data import SplitSpec
from ecglens.data.cache import build_cache
from ecglens.io import parse_source
from ecglens.train.evaluate import evaluate_bundle
from ecglens.train.loop import TrainConfig, fit

PUBLISHED = {  # Strodthoff et al. 2021 (doi:10.1109/JBHI.2020.3022989), leaderboard of helme/ecg_ptbxl_benchmarking
    "resnet1d_wang": "0.930(05)",
    "xresnet1d101": "0.928(05)",
    "lstm": "0.927(05)",
    "fcn_wang": "0.925(06)",
    "inception1d": "0.921(06)",
    "lstm_bidir": "0.921(06)",
    "Wavelet+NN": "0.874(07)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", nargs="?", default="../shared/data/ptb-xl")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--work", default="bench-label-spaces")
    args = parser.parse_args()
    work = Path(args.work)
    cache = work / "ptbxl100"
    started = time.perf_counter()
    build_cache([parse_source(f"ptbxl:{args.root}")], cache, 100.0, "strict", progress=False)
    config = TrainConfig(epochs=args.epochs, label_space="ptbxl-superdiagnostic", split=SplitSpec(0, 7, 8))
    result = fit([cache], work / "run", config, progress=False, resume=(work / "run" / "state").is_dir())
    trained = time.perf_counter() - started
    report = evaluate_bundle(result.best_bundle, [cache], n_bootstrap=1000, device="cpu")
    test = report.combined

    def interval(name: str) -> str:
        low, high = test.average_ci95.get(name, (np.nan, np.nan))
        return f"[{low:.3f}, {high:.3f}]"

    print(
        f"ptbxl-superdiagnostic, ResNet-34, 100 Hz, {args.epochs} epochs, best epoch {result.best_epoch}; "
        f"{trained:.0f} s to prepare and train; test fold 8: {test.n_records} records"
    )
    print()
    print("| model (data) | macro AUC | macro AUPRC | Fmax |")
    print("|---|---|---|---|")
    print(
        f"| ecglens ResNet-34 (shared sample, 7 % of PTB-XL; test fold 8) | {test.macro_auc:.3f} "
        f"{interval('auc')} | {test.macro_auprc:.3f} {interval('auprc')} | {test.fmax:.3f} |"
    )
    for model, auc in PUBLISHED.items():
        print(
            f"| {model} (Strodthoff et al. 2021, full PTB-XL; test fold 10) | {auc} | not published | not published |"
        )
    print()
    print("| class | n+ | AUC | AUPRC | ECE |")
    print("|---|---|---|---|---|")
    for m in test.per_class:
        low, high = m.ci95.get("auc", (np.nan, np.nan))
        print(f"| {m.name} | {m.n_positive} | {m.auc:.3f} [{low:.3f}, {high:.3f}] | {m.auprc:.3f} | {m.ece:.3f} |")


if __name__ == "__main__":
    main()
