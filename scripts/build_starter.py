"""Build the starter model shipped inside ecglens (``src/ecglens/starter/``) from the shared real records.

Usage (from the repository root, with ``../shared/data`` beside it):
  python scripts/build_starter.py                     # the shipped model: writes src/ecglens/starter/ and MODEL_CARD.md
  python scripts/build_starter.py --work /tmp/s --out /tmp/s/starter --sources challenge:../shared/data/challenge/ptb \\
      --model resnet_tiny --epochs 1                  # a small rebuild (the test does this)

What it does, with every choice fixed here so a rebuild on this CPU gives the same bits (same seeds, and one
thread: ``--threads 1``; at two, CPU kernels sometimes sum gradients in another order, see the README):
1. one cache per source at 100 Hz, label profile ``broad`` (``benchmarks/bench_profile.py``'s choice on
   validation), from every labelled real record of the shared data: PTB-XL native, CPSC 2018 original,
   the Challenge-format CPSC 2018, CPSC-Extra, PTB-XL and PTB;
2. one split of them all, fixed before training: PTB-XL's strat_fold 7 validation and 8 test (the sample
   holds folds 1-8); datasets without folds get seeded folds, 7 and 8 likewise. A recording two sources
   hold (the Challenge's ``HR`` files are PTB-XL records) is used once, from the native files; records whose
   statements name none of the nine classes (an infarction, LVH, ...) are kept as negatives for every class;
3. ``--members`` networks (the study's ResNet-34, 10-s random crops and augmentation, Adam, batch 32, the
   best epoch by validation macro AUC), seeds ``--seed``, ``--seed`` + 1, ...;
4. candidates: the first network alone, and the ensemble of all of them (one bundle, their mean logit);
   each calibrated on validation (per-class temperatures; thresholds F1-optimal, SNR's the highest with
   validation sensitivity >= ``--normal-sensitivity``); the candidate with the best validation macro AUC
   is shipped (a tie goes to fewer members). The test part is scored for every candidate but chooses nothing;
5. the test part: per-class AUC and F1 with bootstrap CIs, ECE, the out-of-scope table (false-normal rate);
6. the package files: fp16 weights (safetensors), ``bundle.json``, a SHAP background of 32 training records
   (``background.safetensors``, fp16), ``starter.json`` (checksum, sources, data, build, reference
   predictions of three shared records) and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ECGLENS_DATA", REPO.parent / "shared" / "data"))
SOURCES = (
    "ptbxl=ptbxl100:{d}/ptb-xl",
    "cpsc2018=cpsc2018:{d}/cpsc2018",
    "cpsc2018=challenge:{d}/challenge/cpsc2018",
    "cpsc2018-extra=challenge:{d}/challenge/cpsc2018-extra",
    "ptb-xl=challenge:{d}/challenge/ptb-xl",
    "ptb=challenge:{d}/challenge/ptb",
)
EXTERNAL = "ludb=challenge:{d}/ludb/data"
"""LUDB: never trained on; scored whole as the cross-dataset estimate (its diagnoses mapped by ``ludb.csv``)."""
REFERENCE_RECORDS = (
    "ptb-xl/records100/00000/00004_lr.hea",
    "challenge/cpsc2018/A0001.hea",
    "challenge/cpsc2018-extra/Q0001.hea",
)
NAME = "ecglens-starter-3"
PROFILE_NOTES = {
    "broad": """- **Label profile: `broad`, chosen on validation.** PTB-XL's LPR (PR > 200 ms) is first-degree AV block by
  definition (Kusumoto et al. 2018), yet under `strict` a record coded LPR alone is an IAVB negative (30 of the
  shared sample's 48 LPR records); `broad` maps it, subendocardial injury (STD) and ventricular aneurysm (STE)
  to their classes (`src/ecglens/labels/tables/scp_broad.csv`). `python benchmarks/bench_profile.py` (one
  ResNet-34 per profile, 12 epochs, seed 0, both scored on validation under the broad labels) gives IAVB AUC
  0.757 (0.65-0.86) trained on strict and 0.798 (0.69-0.89) on broad (12 positives, overlapping intervals);
  macro AUC over the seven classes both networks decide 0.818 and 0.815. Its rule, fixed before it ran (broad
  if IAVB's AUC is higher and that macro at most 0.01 lower), chooses broad, so this build trains on broad.
  One seed and overlapping intervals make this weak evidence. The test numbers below are under the broad
  labels (an LPR record is an IAVB positive) and are **not comparable** with ecglens-starter-2's, which were
  under strict (an LPR record was a negative).
""",
    "strict": """- **Label profile: `strict`.** PTB-XL's LPR (PR > 200 ms) is first-degree AV block by definition (Kusumoto
  et al. 2018), yet under `strict` a record coded LPR alone is an IAVB negative (30 of the shared sample's 48
  LPR records), here and in every table of this card. `python benchmarks/bench_profile.py` chooses `broad`;
  the shipped starter is built on it.
""",
}
"""The card's note on the label profile (``benchmarks/bench_profile.py``'s numbers), by profile."""
BACKGROUND_RECORDS = 32
LICENCES = (
    "PTB-XL 1.0.3 (Wagner et al. 2020, PhysioNet): CC BY 4.0",
    "PhysioNet/CinC Challenge 2020/2021 training data (Perez Alday et al. 2020; Reyna et al. 2021): CC BY 4.0",
    "CPSC 2018 (Liu et al. 2018): free for research use",
)


def build(args: argparse.Namespace) -> dict:
    from ecglens.bundle.meta import read_meta
    from ecglens.bundle.weights import load_model, save_ensemble
    from ecglens.data import CacheDataset, SplitSpec, split_caches
    from ecglens.data.cache import EcgCache, build_cache
    from ecglens.io import parse_source
    from ecglens.metrics import brier_scores, evaluate_predictions, expected_calibration_error
    from ecglens.preprocess import LengthPolicy
    from ecglens.train.calibrate import calibrate_bundle
    from ecglens.train.evaluate import evaluate_bundle
    from ecglens.train.loop import TrainConfig, fit, predict_dataset

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    work = Path(args.work)
    if work.exists() and not args.keep_work:
        shutil.rmtree(work)
    sources = [parse_source(spec.format(d=DATA)) for spec in (args.sources or SOURCES)]
    reports = [
        build_cache([source], work / f"cache-{i}", 100, args.label_profile, workers=args.threads, progress=False)
        for i, source in enumerate(sources)
    ]
    caches = [EcgCache(work / f"cache-{i}") for i in range(len(sources))]
    paths = [cache.path for cache in caches]
    split = SplitSpec(args.seed, 7, 8)
    config = TrainConfig(
        model=args.model,
        epochs=args.epochs,
        batch_size=32,
        lr=args.lr,
        seed=args.seed,
        policy=LengthPolicy("crop", 10.0),
        split=split,
        device="cpu",
        workers=0,
    )
    runs = []
    for seed in range(args.seed, args.seed + args.members):
        run = work / f"run-seed{seed}"
        runs.append(fit(paths, run, replace(config, seed=seed), progress=False, resume=(run / "state").is_dir()))
        calibrate_bundle(runs[-1].best_bundle, paths, device="cpu", normal_sensitivity=args.normal_sensitivity)
    candidates = {f"1 network (seed {args.seed})": runs[0].best_bundle}
    if args.members > 1:
        ensemble = work / "ensemble"
        save_ensemble([r.best_bundle for r in runs], ensemble)
        calibrate_bundle(ensemble, paths, device="cpu", normal_sensitivity=args.normal_sensitivity)
        candidates[f"ensemble of {args.members} (seeds {args.seed}-{args.seed + args.members - 1})"] = str(ensemble)
    splits = split_caches(caches, split, label_map=read_meta(runs[0].best_bundle).label_map)
    external = None
    if (DATA / "ludb" / "data").is_dir() and not args.sources:
        build_cache(
            [parse_source(EXTERNAL.format(d=DATA))],
            work / "external-ludb",
            100,
            args.label_profile,
            workers=args.threads,
            progress=False,
        )
        external = work / "external-ludb"
    scores = {}
    for name, bundle in candidates.items():
        model, meta = load_model(bundle)
        dataset = CacheDataset(caches, splits.val, config.policy, False, label_map=meta.label_map)
        y_val, p_val = predict_dataset(model, dataset, 64, "cpu")
        val = evaluate_predictions(y_val, p_val, np.asarray(meta.thresholds), "val", meta.class_names, n_bootstrap=0)
        test = evaluate_bundle(bundle, paths, n_bootstrap=args.bootstrap, device="cpu", retune=False)
        scores[name] = {
            "bundle": bundle,
            "val_macro_auc": val.macro_auc,
            "test": test,
            "external": None
            if external is None
            else evaluate_bundle(bundle, [external], n_bootstrap=args.bootstrap, device="cpu", external=True),
        }
    chosen = max(scores, key=lambda n: (round(scores[n]["val_macro_auc"], 4), -list(scores).index(n)))
    bundle = scores[chosen]["bundle"]
    model, model_meta = load_model(bundle)
    dataset = CacheDataset(caches, splits.test, config.policy, False, label_map=model_meta.label_map)
    y_test, p_test = predict_dataset(model, dataset, 64, "cpu")
    return {
        "sources": list(args.sources or SOURCES),
        "label_profile": args.label_profile,
        "bundle": bundle,
        "caches": caches,
        "meta": model_meta,
        "evaluation": scores[chosen]["test"],
        "chosen": chosen,
        "candidates": scores,
        "calibration": model_meta.metrics["calibration"],
        "test_ece": expected_calibration_error(y_test, p_test).tolist(),
        "test_brier": brier_scores(y_test, p_test).tolist(),
        "counts": _counts(splits, model_meta.class_names),
        "splits": splits,
        "cache_reports": reports,
        "runs": runs,
        "config": config,
        "normal_sensitivity": args.normal_sensitivity,
        "seconds": time.perf_counter() - started,
    }


def _counts(splits, class_names) -> dict:
    """Records, out-of-scope records and positives per class, per split and dataset."""
    table = splits.table
    out = {}
    for name in ("train", "val", "test"):
        rows = table[table["split"] == name]
        classes = rows["classes"].fillna("").str.split(";")
        out[name] = {
            "records": len(rows),
            "by_dataset": rows["dataset"].value_counts().sort_index().to_dict(),
            "out_of_scope": splits.out_of_scope(name),
            "positives": {c: int(classes.map(lambda cs, c=c: c in cs).sum()) for c in class_names},
        }
    out["duplicates"] = int((table["split"] == "duplicate").sum())
    out["unlabelled"] = int((table["scope"] == "unlabelled").sum())
    return out


def package(built: dict, out: Path) -> dict:
    """Write the package files: fp16 weights, bundle.json, starter.json; returns the manifest."""
    from ecglens.bundle.meta import META_FILE, STARTER_MANIFEST, WEIGHTS_FILE
    from ecglens.explain.inputs import save_background, training_background
    from ecglens.predict import Predictor

    out.mkdir(parents=True, exist_ok=True)
    state = load_file(str(Path(built["bundle"]) / WEIGHTS_FILE))
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    # one metadata key: safetensors writes its metadata map in an order that changes from run to run
    save_file(half, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    (out / WEIGHTS_FILE).chmod(0o644)  # package data every user can read
    shutil.copyfile(Path(built["bundle"]) / META_FILE, out / META_FILE)
    background = training_background(built["caches"], built["meta"], BACKGROUND_RECORDS, built["config"].seed)
    save_background(background, out, int(built["config"].policy.window(100)))  # SHAP without the training cache
    digest = hashlib.sha256((out / WEIGHTS_FILE).read_bytes()).hexdigest()
    manifest = {
        "name": NAME,
        "weights_sha256": digest,
        "weights_dtype": "float16",
        "weights_bytes": (out / WEIGHTS_FILE).stat().st_size,
        "summary": f"{_architecture(built['meta'])}, 9 CPSC classes, 100 Hz, trained on "
        f"{built['counts']['train']['records']:,} real ECGs of the PTB-XL and CPSC 2018 samples",
        "notice": "research use only, not for clinical decisions",
        "licences": list(LICENCES),
        "sources": list(built["sources"]),
        "label_profile": built["label_profile"],
        "counts": built["counts"],
        "build": {
            "command": "python scripts/build_starter.py",
            "seconds": round(built["seconds"], 1),
            "epochs": built["config"].epochs,
            "lr": built["config"].lr,
            "seed": built["config"].seed,
            "members": built["meta"].model.members,
            "chosen": built["chosen"],
            "best_epochs": [r.best_epoch for r in built["runs"]],
            "threads": torch.get_num_threads(),
            "train_seconds": round(sum(row.seconds for r in built["runs"] for row in r.log), 1),
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
        },
        "reference_predictions": [],
    }
    (out / STARTER_MANIFEST).write_text(json.dumps(manifest, indent=2))
    predictor = Predictor(out, "cpu")  # the fp16 file as users load it
    from ecglens.io import read_record

    for relative in REFERENCE_RECORDS:
        path = DATA / relative
        if path.is_file():
            (scored,) = predictor.score_records([read_record(path)])
            manifest["reference_predictions"].append(
                {
                    "record": relative,
                    "probabilities": [float(p) for p in scored.probabilities],
                    "decisions": list(scored.prediction.decisions),
                }
            )
    (out / STARTER_MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _architecture(meta) -> str:
    name = "ResNet-34 (Zhang et al. 2020)" if meta.model.name == "resnet34" else meta.model.name
    return name if meta.model.members == 1 else f"An ensemble of {meta.model.members} {name} networks"


def _cell(value, interval=None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.3f}"
    return text + (f" ({interval[0]:.2f}-{interval[1]:.2f})" if interval else "")


def _rate(rate) -> str:
    if rate is None or rate[1] is None:
        return "n/a (no out-of-scope test record)"
    return f"{rate[1]:.1%} ({rate[2][0]:.1%}-{rate[2][1]:.1%})"


def _external(built: dict) -> str:
    """The card's cross-dataset section: the chosen model on LUDB, which no step of the build saw."""
    report = built["candidates"][built["chosen"]]["external"]
    if report is None:
        return "### Cross-dataset\nNot measured: LUDB was not found beside the sources."
    result, outside = report.combined, report.out_of_scope
    low, high = result.average_ci95.get("auc", (float("nan"), float("nan")))
    rows = [
        f"| {m.name} | {m.n_positive} | {_cell(m.auc, m.ci95.get('auc'))} | {_cell(m.recall, m.ci95.get('recall'))} |"
        for m in result.per_class
        if m.n_positive
    ]
    return f"""### Cross-dataset: LUDB, never seen
Every shared source but LUDB is in training, so LUDB (Lobachevsky University, Nizhny Novgorod; 100 records
here, 500 Hz read at 100 Hz) is the external test: its cardiologists' diagnoses mapped by `ludb.csv`, every
record scored at the shipped thresholds. {result.n_records} records, {outside.n_records} of them out of scope.
Macro AUC {result.macro_auc:.3f} ({low:.3f}-{high:.3f}) over the classes with positives; false-normal rate
{_rate(outside.false_normal)}; SNR sensitivity {_cell(result.class_metrics("SNR").recall)}.

| class | LUDB positives | AUC | recall at the threshold |
|---|---|---|---|
{chr(10).join(rows)}

The study reports a large gap between CPSC 2018 and PTB-XL (its Table 2); LUDB's few positives per class
make its intervals wide."""


def model_card(built: dict, manifest: dict) -> str:
    """MODEL_CARD.md, every number from this build: data, test metrics with intervals, the out-of-scope table,
    what was not validated, what was tried, limitations, intended use."""
    meta, evaluation, counts = built["meta"], built["evaluation"], built["counts"]
    combined, outside, build = evaluation.combined, evaluation.out_of_scope, manifest["build"]
    unknown = dict(meta.not_validated)
    unknown_text = "; ".join(
        f"{name} ({reason.removeprefix('not validated: ').split('; never')[0]})" for name, reason in unknown.items()
    )
    unknown_text = unknown_text or "none"
    rows = []
    for i, m in enumerate(combined.per_class):
        decided = "never: not validated" if m.name in unknown else "yes"
        rows.append(
            f"| {m.name} | {counts['train']['positives'][m.name]} | {counts['val']['positives'][m.name]} | "
            f"{m.n_positive} | {_cell(m.auc, m.ci95.get('auc'))} | {_cell(m.recall, m.ci95.get('recall'))} | "
            f"{_cell(m.f1, m.ci95.get('f1'))} | {meta.thresholds[i]:.3f} | {meta.temperatures[i]:.2f} | "
            f"{built['test_ece'][i]:.3f} | {decided} | {'; '.join(m.flags)} |"
        )

    def by(split: str) -> str:
        return ", ".join(f"{d} {n:,}" for d, n in counts[split]["by_dataset"].items())

    auc_low, auc_high = combined.average_ci95.get("auc", (float("nan"), float("nan")))
    rate = outside.false_normal
    snr = combined.class_metrics("SNR")
    tried = []
    for name, score in built["candidates"].items():
        test = score["test"]
        test_rate = test.out_of_scope.false_normal
        mark = "**" if name == built["chosen"] else ""
        ludb = score["external"]
        tried.append(
            f"| {mark}{name}{mark} | {mark}{score['val_macro_auc']:.3f}{mark} | {test.combined.macro_auc:.3f} | "
            f"{_rate(test_rate)} | "
            + ("n/a" if ludb is None else f"{ludb.combined.macro_auc:.3f}, {_rate(ludb.out_of_scope.false_normal)}")
            + " |"
        )
    twins = built["splits"].twins
    twin_lines = (
        "; ".join(
            f"{r.recording}: {r.kept} {r.kept_classes or 'none'} vs {r.other} {r.other_classes or 'none'}"
            for r in twins.itertuples()
        )
        or "none"
    )
    notes = " ".join(built["splits"].notes)
    calibration = built["calibration"]
    goal_auc = "reached" if combined.macro_auc >= 0.93 else "not reached"
    goal_rate = "reached" if rate[1] is not None and rate[1] <= 0.10 and (snr.recall or 0) >= 0.90 else "not reached"
    return f"""# Model card: {NAME}

The starter model shipped inside ecglens: `ecglens predict FILE` and `ecglens serve` use it when no
`--checkpoint` is given, `ecglens.load_bundle("starter")` loads it, `ecglens models --card starter` prints
this card. **Research and education only; not for clinical decisions.** Every number below comes from
`python scripts/build_starter.py`, which wrote this card.

## Model
- {_architecture(meta)}: 12 leads, 9 outputs ({", ".join(meta.class_names)}).{
        " One bundle: the networks are fused into one grouped network whose output is their mean logit, so"
        " Grad-CAM, SHAP and ONNX see one model, and `predict` reports the members' spread per class."
        if meta.model.members > 1
        else ""
    }
- Input: 100 Hz, every record scored whole (10-s random crops in training). 100 Hz because the 500 Hz
  files cover only a third of the shared PTB-XL sample, and 100 Hz trains five times faster on a CPU;
  the PTB-XL benchmark (Strodthoff et al. 2021) also reports its models at 100 Hz.
- Weights in fp16 safetensors ({manifest["weights_bytes"] / 1e6:.0f} MB), SHA-256 `{manifest["weights_sha256"]}`
  (checked when loaded).
- Probabilities calibrated by per-class temperature scaling on validation. Thresholds: {meta.threshold_origin.method}
  ({meta.threshold_origin.n_records} validation records).
- **Classes the model cannot know are never decided**: a class with fewer than 20 training or 5 validation
  positives, or whose validation AUC is not shown to be better than chance (one-sided Mann-Whitney U, p > 0.05), is *not
  validated*; `predict`, `serve` and reports show its probability, greyed, and never a decision. Here:
  {unknown_text}.

## Data
Every labelled real record in `../shared/data`, label profile `{
        built["label_profile"]
    }` (a statement maps to a class only
when it names the same diagnosis; SNR means a normal ECG: PTB-XL's NORM, or SNOMED sinus rhythm, with no
other finding beside it but sinus rate variants), read at 100 Hz: PTB-XL 1.0.3 native sample (strat_fold
1-8), CPSC 2018 original and in the Challenge's form, CPSC-Extra, the Challenge's PTB-XL and PTB.

- **Records outside the nine classes are kept, as negatives for every class**: their statements name
  none of the classes (myocardial infarction, LVH, fascicular blocks, incomplete RBBB, T-wave changes,
  ...). The model learns that they are not normal, and the test part measures how often it calls them so
  (the out-of-scope table below). {counts["unlabelled"]} records without statements were left out.
- {counts["duplicates"]} recordings are held twice (the Challenge's `HR` files of native PTB-XL records); each is used
  once, from the native files, in the native record's split. Copies whose classes differ: {twin_lines}.
- PTB-XL is split by patient (its strat_fold). {notes}
{PROFILE_NOTES.get(built["label_profile"], "")}
| split | records | of which out of scope | by dataset |
|---|---|---|---|
| train | {counts["train"]["records"]:,} | {counts["train"]["out_of_scope"]} | {by("train")} |
| validation (best epoch, temperatures, thresholds, the choice below) | {counts["val"]["records"]:,} | {
        counts["val"]["out_of_scope"]
    } | {by("val")} |
| test (never seen by training or tuning) | {counts["test"]["records"]:,} | {counts["test"]["out_of_scope"]} | {
        by("test")
    } |

Splits were fixed before training: PTB-XL's strat_fold 7 (validation) and 8 (test); datasets without folds
got seeded folds, 7 and 8 likewise.

Licences and attribution: {"; ".join(LICENCES)}.

## Metrics on the test part
{combined.n_records} records (out-of-scope ones as negatives); 95 % intervals in brackets (bootstrap,
{combined.n_bootstrap} resamples, for AUC and F1; Wilson for recall and rates); ECE: expected calibration error
over 15 bins on the test part, after calibration. A class with few test positives has wide intervals and a flag.

**Macro AUC {combined.macro_auc:.3f} ({auc_low:.3f}-{auc_high:.3f})** over the classes with test positives
(goal >= 0.93: {goal_auc}); macro F1 {combined.average.get("f1") or 0:.3f}.

| class | train positives | val positives | test positives | AUC | recall at the threshold | F1 at the threshold | threshold | temperature | ECE | decided | flags |
|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

### ECGs outside the nine classes
{outside.to_markdown()}

**False-normal rate {_rate(rate)} with SNR sensitivity {_cell(snr.recall)}** at the shipped thresholds (goal: at
most 10 % with sensitivity at least 0.90: {goal_rate}).

Calibration on validation (in-sample: the temperatures were fitted there): mean ECE
{calibration["mean_ece_before"]:.3f} before and {calibration["mean_ece_after"]:.3f} after.

{_external(built)}

Built on a 2-core CPU ({build["threads"]} threads, torch {build["torch"]}): {build["train_seconds"] / 60:.0f} min of
training ({build["epochs"]} epochs per network, lr {build["lr"]:g}, seeds from {build["seed"]}, best epochs
{", ".join(map(str, build["best_epochs"]))}; the epochs' times from the runs' logs), and
{build["seconds"] / 60:.0f} min for the invocation that wrote this card (with `--keep-work` it reuses the
finished runs and repeats the rest).

## What was tried, and how it was chosen
Candidates, each calibrated on validation with the same threshold rule; the one with the best validation macro
AUC is shipped (bold). The test part was scored for each but chose nothing. (One rule was added after this
build's test part had been scored: a class ranked not shown better than chance on validation is not validated;
see the not-validated line above and docs/criteria.md.)

| candidate | validation macro AUC | test macro AUC | test false-normal rate | LUDB macro AUC, false-normal rate |
|---|---|---|---|---|
{chr(10).join(tried)}

The goals set for the starter, on the test part: macro AUC >= 0.93 ({goal_auc}); a false-normal rate <= 10 % at SNR
sensitivity >= 0.90 ({goal_rate}). The false-normal rate is the weak point: SNR against
everything else is the hardest distinction to learn from about 1,200 records, and a threshold cannot buy it
(at SNR's validation-chosen threshold the model still calls {_rate(rate)} of the ECGs outside its classes normal).
What would help most, and was not tried for this CPU's time: the whole of PTB-XL (21,799 records);
multi-task training on all PTB-XL statements, which would teach the infarctions and hypertrophies the nine
classes leave out; the PTB-XL benchmark's xresnet1d101 and inception1d; 500 Hz input; a third member (a
3-member fp16 ensemble is about 100 MB, PyPI's file limit). LUDB was kept out of training: it is the external test above (and the
held-out set of the wave delineation checks).

## Limitations
- About {counts["train"]["records"]:,} training records: a small fraction of PTB-XL (21,799) and CPSC 2018 (6,877).
- The populations and devices of two databases (German and Chinese hospitals); nothing is known about
  other populations, devices or filters.
- Classes with few positives are barely learned (see the table); the not-validated ones are never decided.
- Trained on a CPU in minutes, not at GPU scale or with the study's 500 Hz.

## Intended use
Research and education: trying ecglens on real recordings, explanations, comparisons. Not diagnosis, not
triage, not any clinical decision.

<!-- bench_criteria: start -->
## Beside guideline criteria: the model, the criteria and the fused decision
Not measured for this build yet: `python scripts/build_fused.py` fits the fused decision on this build's
validation split, then `python benchmarks/bench_criteria.py --card` writes this section.
<!-- bench_criteria: end -->
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="starter-build", help="scratch folder (replaced)")
    parser.add_argument("--out", default=str(REPO / "src" / "ecglens" / "starter"), help="package folder")
    parser.add_argument("--card", default=str(REPO / "MODEL_CARD.md"), help="model card copy in the repository")
    parser.add_argument("--sources", action="append", help="source specs (default: all shared real data)")
    parser.add_argument("--model", default="resnet34")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--label-profile",
        default="broad",
        help="label profile of every cache (broad: chosen by benchmarks/bench_profile.py on validation)",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=2,
        help="networks trained (seeds --seed, --seed + 1, ...); candidates: the first alone and "
        "their ensemble (2 by default: a 3-member fp16 ensemble is about 100 MB, PyPI's file "
        "limit)",
    )
    parser.add_argument(
        "--normal-sensitivity",
        type=float,
        default=0.90,
        help="SNR's threshold: the highest with this validation sensitivity",
    )
    parser.add_argument(
        "--keep-work",
        action="store_true",
        help="reuse the caches and finish (or reuse) the training run already in --work",
    )
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"error: no shared data at {DATA} (set ECGLENS_DATA)", file=sys.stderr)
        return 1
    built = build(args)
    manifest = package(built, Path(args.out))
    card = model_card(built, manifest)
    (Path(args.out) / "MODEL_CARD.md").write_text(card)
    Path(args.card).write_text(card)
    rate = built["evaluation"].out_of_scope.false_normal
    print(
        f"{NAME}: {built['chosen']}; test macro AUC {built['evaluation'].combined.macro_auc:.3f} on "
        f"{built['evaluation'].combined.n_records} records, false-normal rate {_rate(rate)}; built in "
        f"{built['seconds']:.0f} s; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
