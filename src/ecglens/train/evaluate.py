"""Evaluation of a bundle on caches: thresholds tuned on validation, metrics on test, per dataset.

Evaluating never changes the bundle. Its results (thresholds included) go to its own output folder;
`store_in_bundle` writes the tuned thresholds into the bundle only when asked
(``ecglens evaluate --store-thresholds``), and records which data they came from.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ecglens.bundle.meta import BundleMeta, ThresholdOrigin, store_thresholds
from ecglens.bundle.weights import load_model
from ecglens.data import CacheDataset, Item, split_caches
from ecglens.data.cache import EcgCache, open_caches
from ecglens.labels.challenge import challenge_scoring
from ecglens.metrics import (
    EvaluationResult,
    OutOfScopeTable,
    evaluate_predictions,
    out_of_scope_table,
    tune_thresholds,
)
from ecglens.models import resolve_device
from ecglens.train.loop import predict_dataset
from ecglens.util.atomic import atomic_open, write_text


@dataclass(frozen=True)
class EvaluationReport:
    """Test-split results: the combined set first, then each dataset on its own; the thresholds used."""

    results: tuple[EvaluationResult, ...]
    thresholds: tuple[float, ...]
    threshold_origin: ThresholdOrigin
    out_of_scope: OutOfScopeTable | None = None
    """Decisions on the test records outside the label space (negatives for every class)."""
    not_validated: tuple[tuple[str, str], ...] = ()
    """The bundle's classes that are never decided, with why."""

    @property
    def combined(self) -> EvaluationResult:
        """The result on every test record together."""
        return self.results[0]

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "thresholds": list(self.thresholds),
            "threshold_source": self.threshold_origin.describe(),
            "threshold_origin": {
                "method": self.threshold_origin.method,
                "split": self.threshold_origin.split,
                "datasets": list(self.threshold_origin.datasets),
                "caches": list(self.threshold_origin.caches),
                "n_records": self.threshold_origin.n_records,
            },
            "results": [r.to_dict() for r in self.results],
            "out_of_scope": None if self.out_of_scope is None else self.out_of_scope.to_dict(),
            "not_validated": dict(self.not_validated),
        }

    def to_markdown(self) -> str:
        """Tables in the study's layout plus per-class confusion counts."""
        parts = [f"Thresholds: {self.threshold_origin.describe()}.", ""]
        parts += [f"- {name}: {reason}" for name, reason in self.not_validated]
        if self.out_of_scope is not None:
            parts += ["", "## Records outside the label space", "", self.out_of_scope.to_markdown(), ""]
        for result in self.results:
            parts += [
                result.to_markdown(),
                "",
                "Confusion counts (TP / FP / FN / TN):",
                "",
                "| class | TP | FP | FN | TN |",
                "|---|---|---|---|---|",
            ]
            parts += [f"| {m.name} | {m.tp} | {m.fp} | {m.fn} | {m.tn} |" for m in result.per_class]
            parts.append("")
        return "\n".join(parts)


def predict_items(
    model: torch.nn.Module,
    meta: BundleMeta,
    caches: Sequence[EcgCache],
    items: Sequence[Item],
    batch_size: int,
    device: torch.device,
    logits: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Targets (in the bundle's label space) and probabilities (or logits) of cache items, as the bundle
    takes its input."""
    dataset = CacheDataset(caches, items, meta.policy, False, meta.lead_names, label_map=meta.label_map)
    return predict_dataset(model, dataset, batch_size, device, logits=logits)


def evaluate_bundle(
    bundle: str | os.PathLike,
    cache_paths: Sequence[str | os.PathLike],
    n_bootstrap: int = 1000,
    device: str = "auto",
    batch_size: int = 64,
    retune: bool = True,
    threshold_cache_paths: Sequence[str | os.PathLike] | None = None,
    external: bool = False,
) -> EvaluationReport:
    """Tune thresholds on the validation split of ``cache_paths`` and score the test split.

    The splits are rebuilt with the split spec stored in the bundle, so a record the model was trained
    on never lands in the test split. With ``retune`` false the bundle's own thresholds are used; with
    ``threshold_cache_paths`` the thresholds come from those caches' validation split instead (the
    study's Original protocol tunes on CPSC and tests on PTB-XL too). With ``external``, the caches are a
    dataset the bundle never saw: every labelled record is scored, at the bundle's own thresholds. The bundle
    is not modified.
    """
    torch_device = resolve_device(device)
    model, meta = load_model(bundle, torch_device)
    caches = open_caches(cache_paths, meta.sampling_rate_hz)
    label_map = meta.label_map
    splits = split_caches(caches, meta.split, label_map=label_map)
    if external:
        splits = replace(splits, test=splits.train + splits.val + splits.test, val=())
        retune = False
    if not splits.test:
        raise ValueError("the test split of these caches is empty")
    thresholds, origin = np.asarray(meta.thresholds), meta.threshold_origin
    if threshold_cache_paths is not None:
        threshold_caches = open_caches(threshold_cache_paths, meta.sampling_rate_hz)
        val_items = split_caches(threshold_caches, meta.split, label_map=label_map).val
    else:
        threshold_caches, val_items = caches, splits.val
    if retune and val_items:
        thresholds, origin = _tuned(model, meta, threshold_caches, val_items, batch_size, torch_device)
    y_test, p_test = predict_items(model, meta, caches, splits.test, batch_size, torch_device)
    datasets = np.array([str(caches[item.cache].index["dataset"].iloc[item.row]) for item in splits.test])
    part = "external, every record" if external else "test"  # what the records are, in every table's title
    score = functools.partial(
        evaluate_predictions,
        thresholds=thresholds,
        class_names=meta.class_names,
        n_bootstrap=n_bootstrap,
        challenge=challenge_scoring(label_map),
        never=[name for name, _ in meta.not_validated],
    )
    results = [score(y_test, p_test, name=f"{part} (all)")]
    if len(set(datasets)) > 1:  # and each dataset alone
        results += [
            score(y_test[datasets == name], p_test[datasets == name], name=f"{part} ({name})")
            for name in sorted(set(datasets))
        ]
    return EvaluationReport(
        tuple(results),
        tuple(float(t) for t in thresholds),
        origin,
        out_of_scope_table(y_test, meta.decided(p_test, thresholds), meta.class_names),
        meta.not_validated,
    )


def _tuned(
    model: torch.nn.Module,
    meta: BundleMeta,
    caches: Sequence[EcgCache],
    val_items: Sequence[Item],
    batch_size: int,
    device: torch.device,
) -> tuple[np.ndarray, ThresholdOrigin]:
    """F1-optimal thresholds on the validation items, and where they came from."""
    y_val, p_val = predict_items(model, meta, caches, val_items, batch_size, device)
    datasets = sorted({str(caches[i.cache].index["dataset"].iloc[i.row]) for i in val_items})
    origin = ThresholdOrigin("F1-optimal", "val", tuple(datasets), tuple(str(c.path) for c in caches), len(val_items))
    return tune_thresholds(y_val, p_val), origin


def write_report(report: EvaluationReport, out: str | os.PathLike) -> list[Path]:
    """Write ``evaluation.json``, ``metrics.csv``, ``evaluation.md`` and ``out_of_scope.csv`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "evaluation.json", json.dumps(report.to_dict(), indent=2))
    rows = [row for result in report.results for row in result.table_rows()]
    with atomic_open(out / "metrics.csv", newline="") as handle:
        pd.DataFrame(rows).to_csv(handle, index=False)
    write_text(out / "evaluation.md", "# Evaluation\n\n" + report.to_markdown())
    written = [out / "evaluation.json", out / "metrics.csv", out / "evaluation.md"]
    if report.out_of_scope is not None:
        with atomic_open(out / "out_of_scope.csv", newline="") as handle:
            pd.DataFrame(report.out_of_scope.to_dict()["decided"]).to_csv(handle, index=False)
        written.append(out / "out_of_scope.csv")
    return written


def store_in_bundle(bundle: str | os.PathLike, report: EvaluationReport) -> BundleMeta:
    """Write the report's thresholds (with their origin) and its test metrics into the bundle, on purpose."""
    return store_thresholds(bundle, report.thresholds, report.threshold_origin, {"test": report.to_dict()})
