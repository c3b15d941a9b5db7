"""Population-level lead importance: the study's lead x class SHAP heatmaps (Figures 2-5)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ecglens.classes import CLASS_NAMES
from ecglens.explain.attribution import gradient_shap_all_classes, lead_mass
from ecglens.leads import LEAD_NAMES


@dataclass(frozen=True)
class PopulationImportance:
    """SHAP mass per lead for each class, normalised per class (rows sum to 1).

    ``matrix[c, l]`` is the mean over records labelled with class c of the absolute SHAP value of
    class c summed over the time steps of lead l, divided by the row's sum. Classes without a record
    have a row of NaN and ``counts[c] == 0``.
    """

    matrix: np.ndarray
    counts: tuple[int, ...]
    raw_mass: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES
    lead_names: tuple[str, ...] = LEAD_NAMES
    n_samples: int = 4
    seconds: float = 0.0

    def average(self) -> np.ndarray:
        """The average row: mean share of each lead over the classes that have records."""
        rows = self.matrix[np.asarray(self.counts) > 0]
        return rows.mean(axis=0) if len(rows) else np.full(len(self.lead_names), np.nan)

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {"class_names": list(self.class_names), "lead_names": list(self.lead_names),
                "matrix": np.where(np.isnan(self.matrix), None, self.matrix).tolist(),
                "average": self.average().tolist(), "counts": list(self.counts), "n_samples": self.n_samples,
                "seconds": self.seconds}


def population_importance(model: nn.Module, inputs: torch.Tensor, labels: np.ndarray, background: torch.Tensor,
                          n_samples: int = 4, seed: int = 0, progress: bool = True,
                          lead_names: tuple[str, ...] = LEAD_NAMES) -> PopulationImportance:
    """Expected-gradients SHAP for every record and class, aggregated into the lead x class matrix.

    Args:
        model: the classifier.
        inputs: records x leads x samples (one fixed-length window per record).
        labels: records x classes multi-hot; a record counts for the classes it is labelled with.
        background: background records for the expectation (same shape per record).
        n_samples: expected-gradients samples per record and class (see the benchmark for the error).
        seed: sampling seed.
        progress: show a progress bar.
        lead_names: names of the input leads.
    """
    import time

    started = time.perf_counter()
    n_classes = labels.shape[1]
    mass = np.zeros((len(inputs), n_classes, inputs.shape[1]))
    for i in tqdm(range(len(inputs)), desc="SHAP", unit="rec", disable=not progress, file=sys.stderr):
        values = gradient_shap_all_classes(model, inputs[i : i + 1], background, n_classes, n_samples, seed + i)
        mass[i] = lead_mass(values[0])
    labels = np.asarray(labels) > 0.5
    raw = np.full((n_classes, inputs.shape[1]), np.nan)
    counts = []
    for c in range(n_classes):
        members = labels[:, c]
        counts.append(int(members.sum()))
        if members.any():
            raw[c] = mass[members, c].mean(axis=0)
    matrix = raw / raw.sum(axis=1, keepdims=True)
    return PopulationImportance(matrix, tuple(counts), raw, CLASS_NAMES[:n_classes], tuple(lead_names), n_samples,
                                time.perf_counter() - started)
