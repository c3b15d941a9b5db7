"""Evaluation of a bundle on caches: thresholds tuned on validation, metrics on test, per dataset."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecglens.cache import EcgCache
from ecglens.data import CacheDataset, split_caches
from ecglens.train.bundle import load_model, update_meta
from ecglens.train.loop import predict_dataset, resolve_device
from ecglens.train.metrics import EvaluationResult, evaluate_predictions, tune_thresholds


@dataclass(frozen=True)
class EvaluationReport:
    """Test-split results: the combined set first, then each dataset on its own."""

    results: tuple[EvaluationResult, ...]
    thresholds: tuple[float, ...]
    threshold_source: str

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {"thresholds": list(self.thresholds), "threshold_source": self.threshold_source,
                "results": [r.to_dict() for r in self.results]}

    def to_markdown(self) -> str:
        """Tables in the study's layout plus per-class confusion counts."""
        parts = [f"Thresholds: F1-optimal on the {self.threshold_source} split.", ""]
        for result in self.results:
            parts += [result.to_markdown(), "", "Confusion counts (TP / FP / FN / TN):", "",
                      "| class | TP | FP | FN | TN |", "|---|---|---|---|---|"]
            parts += [f"| {m.name} | {m.tp} | {m.fp} | {m.fn} | {m.tn} |" for m in result.per_class]
            parts.append("")
        return "\n".join(parts)


def evaluate_bundle(
    bundle: str | os.PathLike,
    cache_paths: Sequence[str | os.PathLike],
    n_bootstrap: int = 1000,
    device: str = "auto",
    batch_size: int = 64,
    retune: bool = True,
    threshold_cache_paths: Sequence[str | os.PathLike] | None = None,
) -> EvaluationReport:
    """Tune thresholds on the validation split of ``cache_paths`` and score the test split.

    The splits are rebuilt with the seed and folds stored in the bundle, so a record the model was
    trained on never lands in the test split. With ``retune`` false the bundle's own thresholds are used;
    with ``threshold_cache_paths`` the thresholds come from those caches' validation split instead (the
    study's Original protocol tunes on CPSC and tests on PTB-XL too).
    """
    torch_device = resolve_device(device)
    model, meta = load_model(bundle, torch_device)
    caches = [EcgCache(path) for path in cache_paths]
    for cache in caches:
        if cache.sampling_rate_hz != meta.sampling_rate_hz:
            raise ValueError(f"{cache.path}: cache at {cache.sampling_rate_hz:g} Hz, model expects "
                             f"{meta.sampling_rate_hz:g} Hz; prepare a cache at that rate")
    data = meta.training_data
    splits = split_caches(caches, int(data.get("seed", 0)), val_fold=int(data.get("val_fold", 9)),
                          test_fold=int(data.get("test_fold", 10)))
    if not splits.test:
        raise ValueError("the test split of these caches is empty")
    thresholds = np.asarray(meta.thresholds)
    source = "bundle's own validation"
    if threshold_cache_paths is not None:
        threshold_caches = [EcgCache(path) for path in threshold_cache_paths]
        val_items = split_caches(threshold_caches, int(data.get("seed", 0)), val_fold=int(data.get("val_fold", 9)),
                                 test_fold=int(data.get("test_fold", 10))).val
    else:
        threshold_caches, val_items = caches, splits.val
    if retune and val_items:
        val_set = CacheDataset(threshold_caches, val_items, meta.policy, False, meta.lead_names)
        y_val, p_val = predict_dataset(model, val_set, batch_size, torch_device)
        thresholds = tune_thresholds(y_val, p_val)
        source = "validation"
    test_set = CacheDataset(caches, splits.test, meta.policy, False, meta.lead_names)
    y_test, p_test = predict_dataset(model, test_set, batch_size, torch_device)
    datasets = np.array([str(caches[item.cache].index["dataset"].iloc[item.row]) for item in splits.test])
    results = [evaluate_predictions(y_test, p_test, thresholds, "test (all)", n_bootstrap=n_bootstrap)]
    if len(set(datasets)) > 1:
        for name in sorted(set(datasets)):
            pick = datasets == name
            results.append(evaluate_predictions(y_test[pick], p_test[pick], thresholds, f"test ({name})",
                                                n_bootstrap=n_bootstrap))
    return EvaluationReport(tuple(results), tuple(float(t) for t in thresholds), source)


def write_report(report: EvaluationReport, out: str | os.PathLike) -> list[Path]:
    """Write ``evaluation.json``, ``metrics.csv`` and ``evaluation.md`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report.to_dict(), indent=2))
    rows = [row for result in report.results for row in result.table_rows()]
    pd.DataFrame(rows).to_csv(out / "metrics.csv", index=False)
    (out / "evaluation.md").write_text("# Evaluation\n\n" + report.to_markdown())
    return [out / "evaluation.json", out / "metrics.csv", out / "evaluation.md"]


def store_in_bundle(bundle: str | os.PathLike, report: EvaluationReport) -> None:
    """Record the tuned thresholds and test metrics in the bundle's metadata."""
    from ecglens.train.bundle import read_meta

    metrics = dict(read_meta(bundle).metrics)
    metrics["test"] = report.to_dict()
    update_meta(bundle, thresholds=report.thresholds, metrics=metrics)
