"""Explanation speed and accuracy.

Usage:
  python benchmarks/bench_explain.py speed [--population 200] [--target 0.05]
  python benchmarks/bench_explain.py accuracy BUNDLE CACHE [--n 40] [--target 0.05]
  python benchmarks/bench_explain.py waves [BUNDLE] [--n 100]
  python benchmarks/bench_explain.py population500 [--population 200] [--epochs 4] [--target 0.05]

``speed`` times each method per record for the study's ResNet-34 (10-s inputs at 100 and 500 Hz; weights
do not change the cost), then the population analysis over ``--population`` records of 10 s at 500 Hz with
100 background records, in one run: the implementation before signed SHAP (expected gradients for all 9
classes, 4 samples per record, the record repeated once per class in one captum call) against today's
(signed values with their Monte-Carlo error, each record explained for the classes of its group only, one
forward pass per sample shared by them, a control variate, and samples drawn until the mean standard error
is at most ``--target`` of the mean absolute cell, at most 32 per record). The model is untrained and the
records are noise with random labels (about 1.4 classes per record, as PTB-XL): the error it reaches is
that of this model, so ``accuracy`` measures it on a trained bundle and real records.

``accuracy`` runs the population on a bundle's test records as ``explain population`` does (grouped by the
decided classes, target error, at most 128 samples), reports the samples it needed, the error reached, the
rank agreement with exact lead Shapley (limb leads as one player), the control variate's gain on the spread of
repeated estimates, and sampled lead Shapley (16 orders) against the exact 4,096-coalition values.

``population500`` measures population SHAP at 500 Hz on a trained model: it prepares the shared PTB-XL sample's
500-Hz records (``$ECGLENS_DATA/ptb-xl``) once, trains the study's ResNet-34 on them at 500 Hz for ``--epochs``
(10-s crops, Adam 1e-4, batch 32; a small model, trained here because no 500-Hz bundle ships), and runs the
population over ``--population`` records of every split (a cost and error figure, not an evaluation: the
sample holds about 350 records at 500 Hz, too few for 200 test records), grouped by the decided classes, with
100 training records as background, up to 128 samples per record and the target error: the minutes, the samples,
the error reached, and the cost of one sample (the profile that bounds it).

``waves`` explains the shared LUDB records (``$ECGLENS_DATA/ludb/data``, the first ``--n``) with BUNDLE (default
the starter) for the classes it decides, by Grad-CAM, guided Grad-CAM and SHAP, places each explanation among
the cardiologists' wave marks and among neurokit2's delineation, and prints per class and method the mean
plausibility under both beside the chance level, and how well the two agree (Spearman over explanations).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ecglens.classes import CLASS_NAMES
from ecglens.explain.attribution import gradcam, gradient_shap_all_classes
from ecglens.explain.inputs import Background
from ecglens.explain.lead_shapley import exact_lead_shapley, sampled_lead_shapley
from ecglens.explain.population import expected_gradient_samples, population_importance, record_estimates
from ecglens.leads import LEAD_NAMES
from ecglens.models import create_model
from ecglens.preprocess import ModelInput


def _time(function, repeats: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def speed(population: int, target: float) -> None:
    torch.manual_seed(0)
    model = create_model("resnet34").eval()
    rng = np.random.default_rng(0)
    for rate in (100, 500):
        x = torch.randn(1, 12, 10 * rate)
        background = torch.randn(100, 12, 10 * rate)
        print(f"10 s at {rate} Hz, ResNet-34, seconds per record:")
        print(f"  Grad-CAM, one class:                          {_time(lambda x=x: gradcam(model, x, 0), 3):8.2f}")
        print(
            f"  SHAP before, all 9 classes, 4 samples:        "
            f"{_time(lambda x=x, b=background: gradient_shap_all_classes(model, x, b, 9, 4)):8.2f}"
        )
        for classes in ((0,), (0, 1), tuple(range(9))):
            seconds = _time(
                lambda x=x, b=background, c=classes: expected_gradient_samples(
                    model, x[0], b, 8, np.random.default_rng(0), classes=c
                )
            )
            print(f"  SHAP now, {len(classes)} class(es), per sample:            {seconds / 8:8.3f}")
        sampled = _time(lambda x=x: sampled_lead_shapley(model, x[0]))
        print(f"  lead Shapley, sampled (16 orders):            {sampled:8.2f}")
        if rate == 100:
            exact = _time(lambda x=x: exact_lead_shapley(model, x[0]))
            print(f"  lead Shapley, exact (4,096 coalitions):       {exact:8.2f}")
    if population:
        labels = [(rng.random(9) < 0.15).astype(np.float32) for _ in range(population)]
        for row in labels:
            if not row.any():
                row[rng.integers(9)] = 1.0
        inputs = [
            ModelInput(str(i), rng.normal(0, 0.3, (12, 5000)).astype(np.float32), labels=labels[i])
            for i in range(population)
        ]
        background = Background(tuple(rng.normal(0, 0.3, (100, 12, 5000)).astype(np.float32)))
        start = time.perf_counter()
        tensor = background.tensor(5000)
        for i, item in enumerate(inputs):
            gradient_shap_all_classes(model, torch.from_numpy(item.signal)[None], tensor, 9, 4, seed=i)
        before = time.perf_counter() - start
        print(
            f"population, {population} records of 10 s at 500 Hz, 9 classes, before (4 samples, all classes, no "
            f"error): {before / 60:.1f} min"
        )
        start = time.perf_counter()
        result = population_importance(
            model,
            inputs,
            background,
            CLASS_NAMES,
            LEAD_NAMES,
            grouping="true",
            target_error=target,
            max_samples=32,
            progress=True,
        )
        now = time.perf_counter() - start
        print(
            f"population now, target {target:.0%}: {now / 60:.1f} min; {result.total_samples} samples "
            f"({result.samples} per record on average), error reached {result.relative_error():.1%}; "
            f"{before / now:.2f}x the speed of before"
        )
        fixed = population_importance(
            model, inputs[:20], background, CLASS_NAMES, LEAD_NAMES, 4, grouping="true", progress=False
        )
        print(f"  (with 4 samples, as before, the error would be {fixed.relative_error():.1%} on 20 records)")


def _population(model, meta, inputs, background, target: float, **options):
    """Population SHAP as ``explain population`` runs it on a bundle (grouped by the decided classes, the target
    error, at most 128 samples a record), and its wall time in seconds."""
    start = time.perf_counter()
    result = population_importance(
        model,
        inputs,
        background,
        meta.class_names,
        meta.lead_names,
        decide=meta.decided,
        target_error=target,
        max_samples=128,
        progress=True,
        never=dict(meta.not_validated),
        **options,
    )
    return result, time.perf_counter() - start


def accuracy(bundle: str, cache: str, n: int, target: float) -> None:
    from ecglens.data.cache import open_caches
    from ecglens.explain.inputs import split_inputs, training_background
    from ecglens.predict import Predictor

    loaded = Predictor(bundle, device="cpu")
    model, meta = loaded.model, loaded.meta
    caches = open_caches([cache], meta.sampling_rate_hz)
    inputs = split_inputs(caches, meta, "test", n)
    background = training_background(caches, meta, 100)
    result, seconds = _population(model, meta, inputs, background, target, agreement_records=3)
    print(
        f"population of {len(inputs)} test records (grouped by decided class; rows {result.counts}): "
        f"{seconds:.0f} s, {result.total_samples} samples ({result.samples} per explained record on average); "
        f"error {result.relative_error():.1%} of the mean |cell| (target {target:.0%}); absolute view "
        f"{result.relative_error('absolute'):.1%} at {result.absolute_samples} samples"
    )
    for note in result.notes:
        print(f"  note: {note}")
    agreement = result.agreement
    if agreement is not None and agreement.mean_spearman is not None:
        print(
            f"rank agreement with exact lead Shapley (limb leads as one, conditional baseline): mean Spearman "
            f"{agreement.mean_spearman:.2f} over {agreement.n_pairs} (record, class) pairs: "
            + ", ".join(f"{v:.2f}" for v in agreement.per_pair)
        )
    # the control variate's gain: the spread of 12 independent 16-sample estimates of the same record, with and
    # without it (the same samples), and the error each reports
    lines = []
    for item in inputs[:3]:
        x = torch.from_numpy(item.signal)
        tensor = background.tensor(item.n_samples)
        with torch.no_grad():
            reference = torch.sigmoid(model(tensor)).numpy()
            c = int(np.argmax(torch.sigmoid(model(x[None]))[0].numpy()))
        runs = [
            expected_gradient_samples(
                model, x, tensor, 16, np.random.default_rng([9, k]), classes=[c], background_probabilities=reference
            )
            for k in range(12)
        ]
        adjusted = [run.estimate() for run in runs]
        plain = [record_estimates(run.total[None], run.squares[None], np.array([run.n])) for run in runs]
        spread = [np.std([m[0, c] for m, _ in est], axis=0, ddof=1).mean() for est in (adjusted, plain)]
        reported = [np.sqrt(np.mean([v[0, c] for _, v in est], axis=0) / 16).mean() for est in (adjusted, plain)]
        lines.append(
            f"  {item.record_id} ({meta.class_names[c]}): spread with / without {spread[0]:.4f} / "
            f"{spread[1]:.4f} ({(spread[1] / spread[0]) ** 2:.2f}x fewer samples for the same error); "
            f"reported SE {reported[0]:.4f} / {reported[1]:.4f}"
        )
    print("control variate, 12 runs of 16 samples per record:\n" + "\n".join(lines))
    errors = []
    for item in inputs[: min(3, n)]:
        x = torch.from_numpy(item.signal)
        exact = exact_lead_shapley(model, x)
        sampled = sampled_lead_shapley(model, x, n_permutations=16)
        errors.append(np.abs(sampled - exact).max() / max(np.abs(exact).max(), 1e-9))
    print(
        f"lead Shapley, 16 orders vs exact: max error {np.max(errors):.3f} of the largest exact value "
        f"({len(errors)} records)"
    )


def waves(bundle: str | None, n: int) -> None:
    import os
    from pathlib import Path

    from scipy.stats import spearmanr

    from ecglens.explain.inputs import required_background
    from ecglens.explain.waves import explain_waves, plausibility_table
    from ecglens.predict import Predictor

    data = Path(os.environ.get("ECGLENS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    headers = sorted((data / "ludb" / "data").glob("*.hea"), key=lambda p: int(p.stem))[:n]
    predictor = Predictor(bundle or "starter", "cpu")
    from ecglens.explain.inputs import file_inputs

    inputs = file_inputs([str(h) for h in headers], predictor.meta)
    background = required_background(predictor.meta, (), 100, predictor.bundle)
    methods = ("gradcam", "guided-gradcam", "shap")
    started = time.perf_counter()
    found = {
        source: explain_waves(predictor.model, predictor.meta, inputs, methods, None, background, source, ())
        for source in ("ludb", "auto")
    }
    seconds = time.perf_counter() - started
    tables = {source: {(r.class_name, r.method): r for r in plausibility_table(found[source])} for source in found}
    print(
        f"{len(inputs)} LUDB records, {len(found['ludb'])} explanations (decided classes x 3 methods), "
        f"{seconds:.0f} s for both sources"
    )
    print(f"{'class':<6} {'method':<15} {'n':>3} {'cardiologists':>14} {'neurokit2':>10} {'chance':>7}")
    for key, row in tables["ludb"].items():
        other = tables["auto"].get(key)
        auto = "n/a" if other is None or other.plausibility is None else f"{other.plausibility:.2f}"
        print(f"{key[0]:<6} {key[1]:<15} {row.n:>3} {row.plausibility or 0:>14.2f} {auto:>10} {row.chance or 0:>7.2f}")
    pairs = [
        (a.shares.plausibility, b.shares.plausibility)
        for a, b in zip(found["ludb"], found["auto"], strict=True)
        if a.shares.plausibility is not None and b.shares.plausibility is not None
    ]
    first, second = np.array(pairs).T
    print(
        f"agreement over {len(pairs)} explanations: Spearman {spearmanr(first, second).statistic:.2f}, "
        f"mean |difference| {np.mean(np.abs(first - second)):.3f}"
    )
    _shap_spread(predictor, inputs[:20], background)


def _shap_spread(predictor, inputs, background, seeds: int = 4) -> None:
    """The Monte-Carlo spread of SHAP's plausibility: each explanation repeated with other sampling seeds."""
    from ecglens.explain.records import explain_inputs, probabilities_of
    from ecglens.explain.waves import record_marks
    from ecglens.waves.segments import segment_labels, wave_shares

    meta, spreads = predictor.meta, []
    probabilities = probabilities_of(predictor.model, inputs)
    for i, item in enumerate(inputs):
        marks = record_marks(item, meta.sampling_rate_hz, meta.lead_names, "ludb")
        labels = segment_labels(marks, item.signal.shape[1])
        runs = [
            [
                wave_shares(e.values, labels, meta.lead_names, e.class_name, "shap").plausibility
                for e in explain_inputs(
                    predictor.model,
                    meta,
                    [item],
                    "shap",
                    None,
                    background,
                    probabilities=probabilities[i : i + 1],
                    seed=seed,
                )
            ]
            for seed in range(seeds)
        ]
        spreads += list(np.std(np.array(runs, np.float64), axis=0, ddof=1))
    print(
        f"SHAP's Monte-Carlo spread (8 samples per explanation, {seeds} seeds, {len(spreads)} explanations of the "
        f"first {len(inputs)} records): SD of plausibility median {np.median(spreads):.3f}, mean "
        f"{np.mean(spreads):.3f}, max {np.max(spreads):.3f}; a class mean over n explanations varies by about "
        "the mean SD / sqrt(n)"
    )


def population500(population: int, epochs: int, target: float, work: str) -> None:
    import os
    from pathlib import Path

    from bench_profile import member_config

    from ecglens.data.cache import build_cache, open_caches
    from ecglens.explain.inputs import split_inputs, training_background
    from ecglens.io import parse_source
    from ecglens.predict import Predictor
    from ecglens.train.loop import fit

    data = Path(os.environ.get("ECGLENS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    cache = Path(work) / "cache500"
    if not cache.is_dir():
        build_cache([parse_source(f"ptbxl500:{data / 'ptb-xl'}")], cache, 500, progress=False)
    started = time.perf_counter()
    config = member_config(epochs)
    run = Path(work) / "run500"
    trained = fit([cache], run, config, progress=False, resume=(run / "state").is_dir())
    print(f"trained a 500-Hz ResNet-34 for {epochs} epochs in {time.perf_counter() - started:.0f} s")
    loaded = Predictor(trained.best_bundle, device="cpu")
    model, meta = loaded.model, loaded.meta
    caches = open_caches([cache], meta.sampling_rate_hz)
    inputs = [item for split in ("train", "val", "test") for item in split_inputs(caches, meta, split)]
    picks = np.sort(np.random.default_rng(0).choice(len(inputs), min(population, len(inputs)), replace=False))
    inputs = [inputs[i] for i in picks]
    background = training_background(caches, meta, 100)
    result, seconds = _population(model, meta, inputs, background, target)
    per_sample = seconds / max(result.total_samples, 1)
    error = result.relative_error()
    print(
        f"population of {len(inputs)} records of 10 s at 500 Hz (rows {result.counts}): {seconds / 60:.1f} min, "
        f"{result.total_samples} samples ({result.samples} per explained record on average), {per_sample:.3f} s a "
        f"sample (a forward and a backward pass for the record's classes); error {error:.1%} of the mean |cell| "
        f"(target {target:.0%})"
    )
    for note in result.notes:
        print(f"  note: {note}")
    if error > target:
        needed = result.total_samples * (error / target) ** 2  # the Monte-Carlo error falls as 1/sqrt(samples)
        print(
            f"  to reach {target:.0%}: about {needed:,.0f} samples (error ~ 1/sqrt(samples)), "
            f"{needed * per_sample / 60:.0f} min at this cost a sample"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("speed", "accuracy", "waves", "population500"))
    parser.add_argument("bundle", nargs="?")
    parser.add_argument("cache", nargs="?")
    parser.add_argument("--population", type=int, default=200)
    parser.add_argument("--n", type=int, default=None, help="Records (accuracy: 40; waves: 100).")
    parser.add_argument("--target", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=4, help="population500: epochs of the 500-Hz model")
    parser.add_argument("--work", default="/tmp/ecglens-bench-population500", help="population500: scratch")
    args = parser.parse_args()
    if args.what == "speed":
        speed(args.population, args.target)
    elif args.what == "population500":
        population500(args.population, args.epochs, args.target, args.work)
    elif args.what == "waves":
        waves(args.bundle, args.n or 100)
    else:
        accuracy(args.bundle, args.cache, args.n or 40, args.target)


if __name__ == "__main__":
    main()
