"""Population-level lead importance: the study's lead x class SHAP heatmaps (Figures 2-5)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecglens.explain.attribution import gradient_shap_all_classes, lead_mass
from ecglens.explain.inputs import Background
from ecglens.explain.shards import map_shards
from ecglens.models import model_device
from ecglens.preprocess import ModelInput


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
    class_names: tuple[str, ...]
    lead_names: tuple[str, ...]
    n_samples: int = 4
    seconds: float = 0.0

    def average(self) -> np.ndarray:
        """The average row: mean share of each lead over the classes that have records."""
        rows = self.matrix[np.asarray(self.counts) > 0]
        return rows.mean(axis=0) if len(rows) else np.full(len(self.lead_names), np.nan)

    def relative(self) -> np.ndarray:
        """Each class's lead shares divided by the average share of the same lead over all classes.

        Absolute SHAP mass grows with a lead's amplitude, so large leads (aVR, V1-V2) lead every class
        in `matrix`. The ratio removes what is common to all classes: above 1, the class relies on the
        lead more than the classes do on average.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.matrix / self.average()[None, :]

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        relative = self.relative()
        return {"class_names": list(self.class_names), "lead_names": list(self.lead_names),
                "matrix": np.where(np.isnan(self.matrix), None, self.matrix).tolist(),
                "relative_to_average": np.where(np.isfinite(relative), relative, None).tolist(),
                "average": self.average().tolist(), "counts": list(self.counts), "n_samples": self.n_samples,
                "seconds": self.seconds}


def population_importance(model: nn.Module, inputs: Sequence[ModelInput], background: Background,
                          class_names: Sequence[str], lead_names: Sequence[str], n_samples: int = 4, seed: int = 0,
                          progress: bool = True, store: str | Path | None = None,
                          job: Mapping | None = None) -> PopulationImportance | None:
    """Expected-gradients SHAP for every record and class, aggregated into the lead x class matrix.

    Args:
        model: the classifier.
        inputs: model inputs with labels (records of any length; each is explained whole, as scored).
        background: the SHAP background (fitted to each record's length).
        class_names: the model's classes.
        lead_names: the model's input leads.
        n_samples: expected-gradients samples per record and class (see the benchmark for the error).
        seed: sampling seed (record i uses ``seed + i``, whichever process explains it).
        progress: show a progress bar.
        store: folder for finished shards: resumable, and required under ``torchrun`` (records are
            spread over the processes; see `ecglens.explain.shards`).
        job: what identifies this job's shards besides ``n_samples`` and ``seed`` (checkpoint, records,
            background); `ecglens.explain.shards.finish` with the same ``store`` and ``job`` removes them.

    Returns:
        The result on rank 0 (always, outside torchrun); None on the other ranks.
    """
    started = time.perf_counter()
    n_classes, n_leads = len(class_names), len(lead_names)
    device = model_device(model)

    def compute(first: int, items: Sequence[ModelInput]) -> dict[str, np.ndarray]:
        mass = np.zeros((len(items), n_classes, n_leads))
        for j, item in enumerate(items):
            x = torch.from_numpy(item.signal)[None].to(device)
            values = gradient_shap_all_classes(model, x, background.tensor(item.n_samples, device), n_classes,
                                               n_samples, seed + first + j)
            mass[j] = lead_mass(values[0])
        labels = np.stack([item.labels for item in items]) > 0.5
        return {"mass": mass, "labels": labels}

    job = None if store is None else {"method": "population-shap", "n_samples": n_samples, "seed": seed, **(job or {})}
    arrays = map_shards(compute, inputs, store, job, desc="SHAP", progress=progress)
    if arrays is None:
        return None
    mass = arrays.get("mass", np.zeros((0, n_classes, n_leads)))
    labels = arrays.get("labels", np.zeros((0, n_classes), bool))
    raw = np.full((n_classes, n_leads), np.nan)
    counts = []
    for c in range(n_classes):
        members = labels[:, c]
        counts.append(int(members.sum()))
        if members.any():
            raw[c] = mass[members, c].mean(axis=0)
    with np.errstate(invalid="ignore"):
        matrix = raw / raw.sum(axis=1, keepdims=True)
    return PopulationImportance(matrix, tuple(counts), raw, tuple(class_names), tuple(lead_names), n_samples,
                                time.perf_counter() - started)
