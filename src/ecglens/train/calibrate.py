"""Calibrated probabilities: per-class temperature scaling fitted on the validation split (Guo et al. 2017).

Each class's logit is divided by a temperature T > 0 chosen to minimise the binary cross-entropy on the
bundle's validation split; T > 1 softens over-confident outputs. Scaling keeps every class's ranking, so
AUCs do not change; thresholds are tuned again on the calibrated validation probabilities (F1-optimal),
because a threshold is a probability. The bundle stores the temperatures and the model applies them, so
predict, explain, serve and the ONNX export all give calibrated probabilities.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from ecglens.bundle.meta import NEVER_DECIDED, ThresholdOrigin, store_thresholds
from ecglens.bundle.weights import load_model
from ecglens.data import split_caches
from ecglens.data.cache import open_caches
from ecglens.metrics import (
    NORMAL_CLASSES,
    brier_scores,
    expected_calibration_error,
    sensitivity_threshold,
    tune_thresholds,
)
from ecglens.models import resolve_device
from ecglens.train.evaluate import predict_items

T_RANGE = (0.05, 20.0)


def fit_temperatures(y_true: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Per-class temperatures minimising the binary cross-entropy of ``sigmoid(logits / T)``.

    A class whose validation labels are all equal cannot be fitted; its temperature stays 1.
    """
    y_true, logits = np.asarray(y_true, np.float64), np.asarray(logits, np.float64)
    temperatures = np.ones(y_true.shape[1])
    for c in range(y_true.shape[1]):
        y, z = y_true[:, c], logits[:, c]
        if y.min() == y.max():
            continue

        def loss(log_t: float, y=y, z=z) -> float:
            scaled = z / np.exp(log_t)
            return float(np.mean(np.logaddexp(0, scaled) - y * scaled))  # BCE with logits, stable

        fitted = minimize_scalar(loss, bounds=tuple(np.log(T_RANGE)), method="bounded", options={"xatol": 1e-4})
        temperatures[c] = float(np.exp(fitted.x))
    return temperatures


@dataclass(frozen=True)
class CalibrationReport:
    """Temperatures, and validation calibration before and after (per class and their mean)."""

    class_names: tuple[str, ...]
    temperatures: tuple[float, ...]
    ece_before: tuple[float, ...]
    ece_after: tuple[float, ...]
    brier_before: tuple[float, ...]
    brier_after: tuple[float, ...]
    thresholds_before: tuple[float, ...]
    thresholds_after: tuple[float, ...]
    n_val: int

    def to_dict(self) -> dict:
        """Plain data for JSON (and the bundle's metrics)."""
        return {
            "method": "per-class temperature scaling, BCE on the validation split",
            "n_val": self.n_val,
            "classes": [
                {
                    "class": name,
                    "temperature": t,
                    "ece_before": eb,
                    "ece_after": ea,
                    "brier_before": bb,
                    "brier_after": ba,
                    "threshold_before": hb,
                    "threshold_after": ha,
                }
                for name, t, eb, ea, bb, ba, hb, ha in zip(
                    self.class_names,
                    self.temperatures,
                    self.ece_before,
                    self.ece_after,
                    self.brier_before,
                    self.brier_after,
                    self.thresholds_before,
                    self.thresholds_after,
                    strict=True,
                )
            ],
            "mean_ece_before": float(np.mean(self.ece_before)),
            "mean_ece_after": float(np.mean(self.ece_after)),
        }

    def to_markdown(self) -> str:
        """The per-class table."""
        lines = [
            f"Temperature scaling on {self.n_val} validation records (ECE: 15 equal-width bins).",
            "",
            "| class | T | ECE before | ECE after | Brier before | Brier after | threshold before | after |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in self.to_dict()["classes"]:
            lines.append(
                f"| {row['class']} | {row['temperature']:.2f} | {row['ece_before']:.3f} | "
                f"{row['ece_after']:.3f} | {row['brier_before']:.3f} | {row['brier_after']:.3f} | "
                f"{row['threshold_before']:.3f} | {row['threshold_after']:.3f} |"
            )
        lines.append(
            f"| **mean** | | {np.mean(self.ece_before):.3f} | {np.mean(self.ece_after):.3f} | "
            f"{np.mean(self.brier_before):.3f} | {np.mean(self.brier_after):.3f} | | |"
        )
        return "\n".join(lines)


CHANCE_P = 0.05
"""A class whose validation scores do not rank its positives above its negatives at this level (one-sided
Mann-Whitney U test: H0, an AUC of 0.5) is not validated: its threshold would be a guess (an F1-optimal
threshold on a ranking not shown better than chance falls to near zero and decides the class on most records)."""


def chance_classes(
    class_names: Sequence[str], y_val: np.ndarray, scores: np.ndarray, skip: Sequence[str] = ()
) -> tuple[tuple[str, str], ...]:
    """The classes (outside ``skip``) whose validation AUC is not shown to be better than chance (`CHANCE_P`), each
    with its reason: never decided by the model."""
    from scipy.stats import mannwhitneyu
    from sklearn.metrics import roc_auc_score

    out = []
    for k, name in enumerate(class_names):
        positives, negatives = scores[y_val[:, k] == 1, k], scores[y_val[:, k] == 0, k]
        if name in skip or not len(positives) or not len(negatives):
            continue
        p = float(mannwhitneyu(positives, negatives, alternative="greater").pvalue)
        if p > CHANCE_P:
            auc = float(roc_auc_score(y_val[:, k], scores[:, k]))
            out.append(
                (
                    name,
                    f"not validated: its validation AUC, {auc:.3f} over {len(positives)} positives, is not shown to be "
                    f"better than chance (one-sided Mann-Whitney p = {p:.2f} > {CHANCE_P:g}); {NEVER_DECIDED}",
                )
            )
    return tuple(out)


def calibrate_bundle(
    bundle: str | os.PathLike,
    cache_paths: Sequence[str | os.PathLike],
    device: str = "auto",
    batch_size: int = 64,
    normal_sensitivity: float | None = None,
) -> CalibrationReport:
    """Fit temperatures on the bundle's validation split of ``cache_paths``, retune its thresholds on the
    calibrated probabilities, and store both in the bundle (with the report in its metrics). A class whose
    validation AUC is not shown to be better than chance is marked not validated (`chance_classes`): never decided.

    Thresholds are F1-optimal; with ``normal_sensitivity``, the normal class's (SNR) is instead the highest
    with at least that validation sensitivity: "normal" is said as rarely as that floor allows, so fewer
    abnormal ECGs (those outside the classes above all) are called normal.

    Raises:
        ValueError: the validation split of these caches is empty.
    """
    torch_device = resolve_device(device)
    model, meta = load_model(bundle, torch_device)
    model.set_temperature(np.ones(len(meta.class_names)))  # fit from the raw logits, whatever is stored
    caches = open_caches(cache_paths, meta.sampling_rate_hz)
    val_items = split_caches(caches, meta.split, label_map=meta.label_map).val
    if not val_items:
        raise ValueError("the validation split of these caches is empty: nothing to calibrate on")
    y_val, logits = predict_items(model, meta, caches, val_items, batch_size, torch_device, logits=True)
    temperatures = fit_temperatures(y_val, logits)
    before = 1 / (1 + np.exp(-logits.astype(np.float64)))
    after = 1 / (1 + np.exp(-logits.astype(np.float64) / temperatures))
    thresholds = tune_thresholds(y_val, after)
    method = "F1-optimal on calibrated probabilities"
    normal = next((k for k, name in enumerate(meta.class_names) if name in NORMAL_CLASSES), None)
    if normal_sensitivity is not None and normal is not None:
        chosen = sensitivity_threshold(y_val[:, normal], after[:, normal], normal_sensitivity)
        if chosen is not None:
            thresholds[normal] = chosen
            method += f"; {meta.class_names[normal]}: the highest with validation sensitivity >= {normal_sensitivity:g}"
    report = CalibrationReport(
        meta.class_names,
        tuple(map(float, temperatures)),
        tuple(map(float, expected_calibration_error(y_val, before))),
        tuple(map(float, expected_calibration_error(y_val, after))),
        tuple(map(float, brier_scores(y_val, before))),
        tuple(map(float, brier_scores(y_val, after))),
        tuple(map(float, meta.thresholds)),
        tuple(map(float, thresholds)),
        len(val_items),
    )
    datasets = sorted({str(caches[i.cache].index["dataset"].iloc[i.row]) for i in val_items})
    origin = ThresholdOrigin(method, "val", tuple(datasets), tuple(str(c.path) for c in caches), len(val_items))
    store_thresholds(
        bundle,
        report.thresholds_after,
        origin,
        {"calibration": report.to_dict()},
        temperatures=tuple(report.temperatures),
        not_validated=chance_classes(meta.class_names, y_val, after, skip=[n for n, _ in meta.not_validated]),
    )
    return report
