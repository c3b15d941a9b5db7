"""``ecglens leads`` on the shared PTB-XL sample at 100 Hz, sized to about 30 CPU-minutes.

Usage:
  python benchmarks/bench_leads.py --data CACHE [--model resnet18] [--epochs 3] [--work DIR]

Sized down from the study's setting to fit: ResNet-18 instead of ResNet-34, 3 epochs at lr 1e-3 instead of 30
at 1e-4, 60 explained validation records (conditional baseline); every subset (12, limb6, 4, 3, 2, the 12
single leads, and the Shapley-guided best 2 and 3) on strat_fold 1-6 / 7 / 8 with seed 0. Prints the wall and
CPU time, the lead ranking per class beside the study's readings, each subset's macro AUC and both rank
correlations.
"""

from __future__ import annotations

import argparse
import resource
import time

from ecglens.data import SplitSpec
from ecglens.studies.leads import STUDY_READINGS, parse_subsets, run_leads
from ecglens.train.loop import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--work", default="bench-leads")
    args = parser.parse_args()
    started = time.perf_counter()
    config = TrainConfig(model=args.model, epochs=args.epochs, lr=args.lr, split=SplitSpec(0, 7, 8), device="cpu")
    run = run_leads([args.data], args.work, subsets=parse_subsets(), config=config, n_shapley=60, n_bootstrap=200)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"leads: {len(run.study.subsets)} models, {wall / 60:.1f} min wall, "
        f"{(usage.ru_utime + usage.ru_stime) / 60:.1f} CPU-min"
    )
    print("\n".join(run.lines()[:-1]))
    ranks = {r.class_name: r for r in run.study.rankings}
    print("\n| class | the study reads | ecglens rank of that lead | ecglens top 3 |\n|---|---|---|---|")
    for name, lead in STUDY_READINGS:
        if name in ranks:
            print(
                f"| {name} ({ranks[name].n_records} records) | {lead} | {ranks[name].rank(lead)} of 12 | "
                f"{' '.join(ranks[name].order[:3])} |"
            )
        else:
            print(f"| {name} | {lead} | no validation record of the class | |")
    for g in run.study.greedy:  # chosen on validation; the test macro AUC is reported once
        print(
            f"greedy {g.size}: {g.greedy_leads} validation / test macro AUC {g.greedy_val_macro_auc} / "
            f"{g.greedy_macro_auc}; best measured on validation {g.best_measured} "
            f"{g.best_measured_val_macro_auc} / {g.best_measured_macro_auc}"
        )


if __name__ == "__main__":
    main()
