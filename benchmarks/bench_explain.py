"""Explanation speed and accuracy.

Usage:
  python benchmarks/bench_explain.py speed [--population 200]
  python benchmarks/bench_explain.py accuracy BUNDLE CACHE [--n 10]

``speed`` times each method per record for the study's ResNet-34 (10-s inputs at 100 and 500 Hz, weights
do not change the cost), and the population analysis (SHAP for all 9 classes, 4 expected-gradients
samples, 100 background records) over ``--population`` records of 10 s at 500 Hz.

``accuracy`` measures each fast estimator against a converged reference on a trained bundle: SHAP lead
masses with 4 samples against 64, the population matrix likewise, and sampled lead Shapley values
(16 orders) against the exact 4,096-coalition values.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ecglens.classes import CLASS_NAMES
from ecglens.explain.attribution import gradcam, gradient_shap_all_classes, lead_mass
from ecglens.explain.inputs import Background
from ecglens.explain.lead_shapley import exact_lead_shapley, sampled_lead_shapley
from ecglens.explain.population import population_importance
from ecglens.leads import LEAD_NAMES
from ecglens.models import create_model
from ecglens.preprocess import ModelInput


def _time(function, repeats: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def speed(population: int) -> None:
    torch.manual_seed(0)
    model = create_model("resnet34").eval()
    for rate in (100, 500):
        x = torch.randn(1, 12, 10 * rate)
        background = torch.randn(100, 12, 10 * rate)
        print(f"10 s at {rate} Hz, ResNet-34, seconds per record:")
        print(f"  Grad-CAM, one class:                  {_time(lambda x=x: gradcam(model, x, 0), 3):8.2f}")
        print(f"  SHAP, all 9 classes, 4 samples:       "
              f"{_time(lambda x=x, b=background: gradient_shap_all_classes(model, x, b, 9, 4)):8.2f}")
        print(f"  lead Shapley, sampled (16 orders):    {_time(lambda x=x: sampled_lead_shapley(model, x[0])):8.2f}")
        if rate == 100:
            exact = _time(lambda x=x: exact_lead_shapley(model, x[0]))
            print(f"  lead Shapley, exact (4,096 coalitions): {exact:6.2f}")
    if population:
        rng = np.random.default_rng(0)
        inputs = [ModelInput(str(i), rng.normal(0, 0.3, (12, 5000)).astype(np.float32),
                             labels=(rng.random(9) < 0.2).astype(np.float32)) for i in range(population)]
        background = Background(tuple(rng.normal(0, 0.3, (100, 12, 5000)).astype(np.float32)))
        start = time.perf_counter()
        population_importance(model, inputs, background, CLASS_NAMES, LEAD_NAMES, n_samples=4, progress=True)
        minutes = (time.perf_counter() - start) / 60
        print(f"population analysis, {population} records of 10 s at 500 Hz, 9 classes: {minutes:.1f} min")


def accuracy(bundle: str, cache: str, n: int) -> None:
    from ecglens.explain.inputs import open_caches, split_inputs, training_background
    from ecglens.predict import Predictor

    loaded = Predictor(bundle, device="cpu")
    model, meta = loaded.model, loaded.meta
    caches = open_caches([cache], meta)
    inputs = split_inputs(caches, meta, "test", n)
    background = training_background(caches, meta, 100)
    fast, reference = [], []
    for item in inputs:
        x = torch.from_numpy(item.signal)[None]
        base = background.tensor(item.n_samples)
        fast.append(lead_mass(gradient_shap_all_classes(model, x, base, 9, 4, seed=1)[0]))
        reference.append(lead_mass(gradient_shap_all_classes(model, x, base, 9, 64, seed=2)[0]))
    fast, reference = np.array(fast), np.array(reference)
    per_record = np.abs(fast - reference).sum(axis=2) / reference.sum(axis=2)
    print(f"SHAP lead mass, 4 vs 64 samples, per record and class: median relative L1 error "
          f"{np.median(per_record):.3f} (90th percentile {np.percentile(per_record, 90):.3f})")
    a = population_importance(model, inputs, background, meta.class_names, meta.lead_names, 4, seed=1,
                              progress=False)
    b = population_importance(model, inputs, background, meta.class_names, meta.lead_names, 64, seed=2,
                              progress=False)
    rows = np.asarray(a.counts) > 0
    print(f"population matrix over {n} records, 4 vs 64 samples: max abs difference "
          f"{np.nanmax(np.abs(a.matrix[rows] - b.matrix[rows])) * 100:.2f} percentage points")
    errors = []
    for item in inputs[: min(3, n)]:
        x = torch.from_numpy(item.signal)
        exact = exact_lead_shapley(model, x)
        sampled = sampled_lead_shapley(model, x, n_permutations=16)
        errors.append(np.abs(sampled - exact).max() / max(np.abs(exact).max(), 1e-9))
    print(f"lead Shapley, 16 orders vs exact: max error {np.max(errors):.3f} of the largest exact value "
          f"({len(errors)} records)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("speed", "accuracy"))
    parser.add_argument("bundle", nargs="?")
    parser.add_argument("cache", nargs="?")
    parser.add_argument("--population", type=int, default=200)
    parser.add_argument("--n", type=int, default=10)
    args = parser.parse_args()
    if args.what == "speed":
        speed(args.population)
    else:
        accuracy(args.bundle, args.cache, args.n)


if __name__ == "__main__":
    main()
