"""Which label profile the starter should train on: ``strict`` against ``broad``, chosen on validation.

Usage (from the repository root, ``../shared/data`` beside it, or ``ECGLENS_DATA``):
  python benchmarks/bench_profile.py [--epochs 12] [--work /tmp/ecglens-bench-profile] [--bootstrap 1000]

The question (first-degree AV block): under ``strict``, PTB-XL's statement LPR ("prolonged PR interval", PR
> 200 ms) maps to nothing, so a record coded LPR without 1AVB is an IAVB *negative*, although PR > 200 ms is
the definition of first-degree AV block (Kusumoto et al. 2018, ACC/AHA/HRS guideline on bradycardia and cardiac
conduction delay). ``broad`` maps it to IAVB. The shared PTB-XL sample holds 48 LPR records, 30 of them without 1AVB.

For each profile it builds one cache per source the starter is built from (listed in ``starter.json``, 100
Hz), trains one network the way the starter's members are trained (ResNet-34, 10-s crops, Adam 1e-4, batch
32, seed 0, the best epoch by validation macro AUC under the profile's own labels), calibrates it on
validation, and then scores **both** networks on the validation part under **both** label sets: IAVB's AUC,
sensitivity and specificity at the network's own threshold, and macro AUC, each with a bootstrap interval.
The test part is not scored: it chooses nothing here.

The rule printed at the end: the profile whose network has the higher validation IAVB AUC under the
``broad`` labels (the ones that follow the definition), unless its macro AUC under those labels, over the
classes both networks decide (not-validated classes left out: a class with one validation positive and never
decided must not choose), is lower by more than 0.01. The first version of this script took the macro over all
nine outputs, and STE's single validation positive decided it; both macros are printed. Fewer epochs than
the starter's 30 keep the run near 15 minutes on 2 cores; the figure depends on that setting (and on one
seed), and the run prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ECGLENS_DATA", REPO.parent / "shared" / "data"))
PROFILES = ("strict", "broad")


def _interval(metric: object, key: str) -> str:
    ci = getattr(metric, "ci95", {}).get(key)
    return "" if ci is None else f" ({ci[0]:.2f}-{ci[1]:.2f})"


def member_config(epochs: int):
    """The starter's member recipe (ResNet-34, 10-s crops, Adam 1e-4, batch 32, seed 0, PTB-XL folds 7 and 8
    held out, CPU) for ``epochs``: the benchmarks that train a network train it so."""
    from ecglens.data import SplitSpec
    from ecglens.preprocess import LengthPolicy
    from ecglens.train.loop import TrainConfig

    return TrainConfig(
        model="resnet34",
        epochs=epochs,
        batch_size=32,
        lr=1e-4,
        seed=0,
        policy=LengthPolicy("crop", 10.0),
        split=SplitSpec(0, 7, 8),
        device="cpu",
        workers=0,
    )


def _macro(values: list[float | None]) -> float | None:
    """The mean of defined AUCs (None when any is undefined: the class set would differ)."""
    return None if any(v is None for v in values) else float(np.mean(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ecglens-bench-profile"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    import torch

    from ecglens.bundle.meta import starter_manifest
    from ecglens.bundle.weights import load_model
    from ecglens.data import split_caches
    from ecglens.data.cache import build_cache, open_caches
    from ecglens.io import parse_source
    from ecglens.metrics import evaluate_predictions
    from ecglens.train.calibrate import calibrate_bundle
    from ecglens.train.evaluate import predict_items
    from ecglens.train.loop import fit

    if not DATA.is_dir():
        print(f"error: no shared data at {DATA} (set ECGLENS_DATA)", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    manifest = starter_manifest()
    work = Path(args.work)
    caches: dict[str, list[Path]] = {}
    for profile in PROFILES:
        caches[profile] = []
        for i, spec in enumerate(manifest.sources):
            path = work / profile / f"cache-{i}"
            if not path.is_dir():
                build_cache([parse_source(spec.format(d=DATA))], path, 100, profile, progress=False)
            caches[profile].append(path)
    config = member_config(args.epochs)
    bundles = {}
    for profile in PROFILES:
        run_dir = work / profile / "run"
        result = fit(caches[profile], run_dir, config, progress=False, resume=(run_dir / "state").is_dir())
        calibrate_bundle(result.best_bundle, caches[profile], device="cpu", normal_sensitivity=0.90)
        bundles[profile] = result.best_bundle
        print(f"trained on {profile}: best epoch by validation macro AUC, {time.perf_counter() - started:.0f} s")
    device = torch.device("cpu")
    rows = []
    summary: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    per_class: dict[tuple[str, str], dict[str, float | None]] = {}
    never: set[str] = set()
    label_maps = {profile: load_model(bundle, device)[1].label_map for profile, bundle in bundles.items()}
    for trained, bundle in bundles.items():
        model, own = load_model(bundle, device)
        for labels in PROFILES:  # a bundle maps the caches' codes by its own profile: score by the other's map too
            meta = replace(own, label_space=label_maps[labels])
            opened = open_caches(caches[labels], meta.sampling_rate_hz)
            val = split_caches(opened, meta.split, label_map=meta.label_map).val
            y, p = predict_items(model, meta, opened, val, 64, device)
            result = evaluate_predictions(
                y, p, np.asarray(meta.thresholds), "val", meta.class_names, n_bootstrap=args.bootstrap
            )
            iavb = result.class_metrics("IAVB")
            spec = iavb.tn / max(iavb.tn + iavb.fp, 1)
            auc = "n/a" if iavb.auc is None else f"{iavb.auc:.3f}{_interval(iavb, 'auc')}"
            sens = "n/a" if iavb.recall is None else f"{iavb.recall:.2f} ({iavb.tp}/{iavb.tp + iavb.fn})"
            macro = "n/a" if result.macro_auc is None else f"{result.macro_auc:.3f}"
            low_high = result.average_ci95.get("auc")
            if low_high is not None:
                macro += f" ({low_high[0]:.3f}-{low_high[1]:.3f})"
            rows.append(
                f"| {trained} | {labels} | {iavb.n_positive} | {auc} | {sens} | "
                f"{spec:.2f} ({iavb.tn}/{iavb.tn + iavb.fp}) | {macro} |"
            )
            summary[(trained, labels)] = (iavb.auc, result.macro_auc)
            per_class[(trained, labels)] = {m.name: m.auc for m in result.per_class}
            never |= {name for name, _ in own.not_validated}
    print(
        f"\nValidation part (PTB-XL strat_fold 7 and the seeded folds of the other sources), one ResNet-34 per "
        f"profile, {args.epochs} epochs, seed 0; thresholds each network's own (calibrated on its validation "
        f"labels); {args.bootstrap} bootstrap resamples.\n"
    )
    print(
        "| trained on | scored against | IAVB positives | IAVB AUC (95 %) | IAVB sensitivity | IAVB specificity "
        "| macro AUC (95 %) |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    names = list(per_class[("strict", "broad")])
    print("\nPer-class validation AUC under the broad labels (where the macro difference comes from):\n")
    print("| trained on | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for trained in PROFILES:
        aucs = per_class[(trained, "broad")]
        print(f"| {trained} | " + " | ".join("n/a" if aucs[n] is None else f"{aucs[n]:.3f}" for n in names) + " |")
    decided = [n for n in names if n not in never]
    s_auc, s_all = summary[("strict", "broad")]
    b_auc, b_all = summary[("broad", "broad")]
    s_macro, b_macro = (_macro([per_class[(trained, "broad")][n] for n in decided]) for trained in ("strict", "broad"))
    print(
        f"\nmacro AUC under the broad labels, all nine outputs: strict {s_all:.3f}, broad {b_all:.3f}; over the "
        f"classes both networks decide ({', '.join(decided)}): strict {s_macro:.3f}, broad {b_macro:.3f}"
    )
    if None in (s_auc, b_auc, s_macro, b_macro):
        print("\nchoice: undefined (a class without positives on validation)")
        return 1
    choice = "broad" if b_auc > s_auc and b_macro >= s_macro - 0.01 else "strict"  # type: ignore[operator]
    print(
        f"\nchoice (validation, broad labels): {choice}: IAVB AUC {b_auc:.3f} (trained on broad) vs {s_auc:.3f} "
        f"(strict); macro AUC over the decided classes {b_macro:.3f} vs {s_macro:.3f}.  "
        f"{time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
