"""Robustness benchmarks: the time of a full report, and whether the defences buy robustness.

Usage:
  python benchmarks/bench_robustness.py report --checkpoint BUNDLE --data CACHE [--split test] [--n 200]
  python benchmarks/bench_robustness.py defences --data CACHE [--epochs 4] [--model resnet18] [--work DIR]

``report`` runs the full ``ecglens robustness`` suite (6 noise kinds x 5 SNRs, 25 faults, FGSM / PGD / L2 PGD /
smooth PGD / band-limited PGD / random noise at 5, 10, 25, 50 uV, each also after the 0.5-40 Hz filter, flipping
budgets of the smooth attack on 10 records decided positive and 10 decided negative per class) and prints its
wall time, per-stage numbers and the key results.

``defences`` trains the same model three times on the same split and seed (strat_fold 1-6 train, 7
validation, 8 test: the shared sample holds folds 1-8 only): the default training, ``--augment noise,faults``
and ``--adversarial pgd:25``; then scores each under the quick robustness suite on the test split and prints
clean macro AUC beside AUC under each family (mean over its conditions) and under PGD at 10 and 50 uV.
It also trains the default once more with seed 1 and scores that second model on the first one's PGD inputs
(does the attack transfer?).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ecglens.data import SplitSpec
from ecglens.perturb import default_suite
from ecglens.robustness import run_robustness
from ecglens.train.loop import TrainConfig, fit


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def report(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    result = run_robustness(
        args.checkpoint, [args.data], args.split, args.n, default_suite(), device="cpu", progress=False
    )
    seconds = time.perf_counter() - started
    print(
        f"full robustness report: {result.n_records} {args.split} records at {result.sampling_rate_hz:g} Hz, "
        f"{len(result.conditions)} conditions, {seconds:.0f} s ({seconds / 60:.1f} min)"
    )
    print(f"clean macro AUC {result.clean.macro_auc:.3f}")
    for family in ("noise", "faults", "filtered", "adversarial", "adversarial, then filtered"):
        rows = [c for c in result.conditions if c.family == family]
        for c in rows:
            auc = "n/a" if c.macro_auc is None else f"{c.macro_auc:.3f}"
            changed = "" if c.changed is None else f"{c.changed:.0%}"
            print(f"  {family:<11} {c.label:<42} macro AUC {auc}  decisions changed {changed} {c.note}")
    for spectrum in result.spectra:
        print(f"  {spectrum.label} at {spectrum.eps_uv:g} uV: {spectrum.share_above_40hz:.1%} of its power above 40 Hz")
    print(
        "flipping budget (smooth PGD), median read from the survival curve, all / decided + / decided -: "
        + ", ".join(
            f"{f.name} {f.median_text()} / {f.median_text(True)} / {f.median_text(False)}" for f in result.flip_budgets
        )
    )
    for reason in result.left_out:
        print(f"  left out: {reason}")


def defences(args: argparse.Namespace) -> None:
    work = Path(args.work)
    base = TrainConfig(model=args.model, epochs=args.epochs, lr=args.lr, split=SplitSpec(0, 7, 8), device="cpu")
    variants = {
        "default": base,
        "augmented (noise, faults)": replace(base, augment=("noise", "faults")),
        "adversarial (PGD 25 uV)": replace(base, adversarial="pgd:25"),
    }
    print(f"{args.model}, {args.epochs} epochs, lr {args.lr:g}, test fold 8; quick robustness suite")
    print("| training | train s | clean macro AUC | noise (mean) | faults (mean) | PGD 10 uV | PGD 50 uV |")
    print("|---|---|---|---|---|---|---|")
    bundles = {}
    for name, config in {**variants, "seed 1": replace(base, seed=1, split=base.split)}.items():
        run = work / name.split()[0]
        started = time.perf_counter()
        bundles[name] = fit([args.data], run, config, progress=False, resume=(run / "state").is_dir()).best_bundle
        if name == "seed 1":
            break
        trained = time.perf_counter() - started
        robust = run_robustness(
            bundles[name],
            [args.data],
            "test",
            None,
            default_suite(quick=True),
            budgets_uv=(10.0, 50.0),
            n_flip=0,
            pgd_steps=10,
            attacks=("pgd",),
            device="cpu",
            progress=False,
        )
        by = {(c.kind, c.level): c.macro_auc for c in robust.conditions}
        print(
            f"| {name} | {trained:.0f} | {robust.clean.macro_auc:.3f} | "
            f"{_mean(c.macro_auc for c in robust.conditions if c.family == 'noise'):.3f} | "
            f"{_mean(c.macro_auc for c in robust.conditions if c.family == 'faults'):.3f} | "
            f"{by[('pgd', 10.0)]:.3f} | {by[('pgd', 50.0)]:.3f} |"
        )
    transfer = run_robustness(
        bundles["default"],
        [args.data],
        "test",
        None,
        (),
        budgets_uv=(10.0, 50.0),
        n_flip=0,
        pgd_steps=10,
        attacks=("pgd",),
        transfer_bundle=bundles["seed 1"],
        device="cpu",
        progress=False,
    )
    print(
        "transfer (PGD made on the default model, seed 0; scored by the same training with seed 1): "
        + "; ".join(
            f"{c.label}: macro AUC {c.macro_auc:.3f}" + ("" if c.changed is None else f", {c.changed:.0%} changed")
            for c in transfer.transfer
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("report")
    one.add_argument("--checkpoint", required=True)
    one.add_argument("--data", required=True)
    one.add_argument("--split", default="test")
    one.add_argument("--n", type=int, default=200)
    two = sub.add_parser("defences")
    two.add_argument("--data", required=True)
    two.add_argument("--epochs", type=int, default=4)
    two.add_argument("--model", default="resnet18")
    two.add_argument("--lr", type=float, default=1e-3)
    two.add_argument("--work", default="bench-defences")
    args = parser.parse_args()
    report(args) if args.command == "report" else defences(args)


if __name__ == "__main__":
    main()
