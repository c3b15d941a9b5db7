"""Faithfulness, measured: deletion/insertion curves, localisation against ground truth, sanity check.

Deletion replaces the most attributed samples by the baseline (zeros: 0 mV) step by step; insertion
starts from the baseline and puts them back. Each curve is drawn beside the same procedure in a random
order, so "better than random" is visible.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from torch import nn

from ecglens.bundle import BundleMeta
from ecglens.explain.attribution import attribute, evaluation_mode
from ecglens.explain.inputs import Background
from ecglens.explain.shards import map_shards
from ecglens.models import model_device
from ecglens.preprocess import ModelInput


@dataclass(frozen=True)
class Curves:
    """Class probability as the top-k fraction of the input is deleted / inserted."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray

    @staticmethod
    def area(curve: np.ndarray, fractions: np.ndarray) -> float:
        """Area under a curve over fractions 0..1 (trapezoids)."""
        return float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(fractions)))

    def areas(self) -> dict[str, float]:
        """Areas of the four curves (deletion: lower is more faithful; insertion: higher)."""
        return {name: self.area(getattr(self, name), self.fractions)
                for name in ("deletion", "insertion", "random_deletion", "random_insertion")}


@torch.no_grad()
def deletion_insertion(model: nn.Module, x: torch.Tensor, target: int, attribution: np.ndarray,
                       baseline: torch.Tensor | None = None, steps: int = 10, unit: str = "sample",
                       seed: int = 0) -> Curves:
    """Replace the most attributed samples (or leads) by the baseline, step by step, and back.

    Args:
        model: classifier (probabilities are recorded).
        x: one record, leads x samples.
        target: class index.
        attribution: leads x samples (``unit='sample'``) or leads (``unit='lead'``).
        baseline: replacement values (zeros by default).
        steps: number of equal fractions from 0 to 1.
        unit: rank single samples or whole leads.
        seed: seed of the random ordering used as reference.
    """
    baseline = torch.zeros_like(x) if baseline is None else baseline
    scores = np.asarray(attribution, dtype=np.float64)
    if unit == "lead":
        scores = np.repeat(scores.reshape(-1, 1), x.shape[1], axis=1) + 0.0
    order = np.argsort(-scores.ravel(), kind="stable")
    random_order = np.random.default_rng(seed).permutation(order.size)
    fractions = np.linspace(0, 1, steps + 1)
    counts = np.round(fractions * order.size).astype(int)
    if unit == "lead":
        lead_counts = np.round(fractions * x.shape[0]).astype(int) * x.shape[1]
        counts = lead_counts
        by_lead = np.argsort(-np.asarray(attribution).ravel(), kind="stable")
        order = (by_lead[:, None] * x.shape[1] + np.arange(x.shape[1])[None, :]).ravel()
        random_lead = np.random.default_rng(seed).permutation(x.shape[0])
        random_order = (random_lead[:, None] * x.shape[1] + np.arange(x.shape[1])[None, :]).ravel()
    flat_x, flat_base = x.reshape(-1), baseline.reshape(-1)

    def curve(ranking: np.ndarray, delete: bool) -> np.ndarray:
        batch = []
        for count in counts:
            chosen = torch.as_tensor(ranking[:count], dtype=torch.long)
            if delete:
                item = flat_x.clone()
                item[chosen] = flat_base[chosen]
            else:
                item = flat_base.clone()
                item[chosen] = flat_x[chosen]
            batch.append(item.reshape(x.shape))
        with evaluation_mode(model):
            device = next(model.parameters()).device
            return torch.sigmoid(model(torch.stack(batch).to(device)))[:, target].float().cpu().numpy()

    return Curves(fractions, curve(order, True), curve(order, False), curve(random_order, True),
                  curve(random_order, False))


def localisation(attribution: np.ndarray, mask: np.ndarray) -> tuple[float | None, bool | None]:
    """AUROC of attribution values against a ground-truth evidence mask, and the pointing game.

    The pointing game is a hit when the most attributed point lies inside the mask. Both are None
    when the mask is empty or covers everything.
    """
    truth = np.asarray(mask, bool).ravel()
    values = np.asarray(attribution, np.float64).ravel()
    if truth.all() or not truth.any():
        return None, None
    return float(roc_auc_score(truth, values)), bool(truth[int(np.argmax(values))])


def randomized_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of the model with every parameter re-initialised (the cascading-randomisation endpoint)."""
    clone = copy.deepcopy(model)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in clone.modules():
            if hasattr(module, "reset_parameters") and module is not clone:
                module.reset_parameters()
    finally:
        torch.random.set_rng_state(generator_state)
    return clone.eval()


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two attribution maps (flattened); 0 when either is constant."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0  # a constant map carries no ranking: no agreement with the other
    return float(spearmanr(a, b).statistic)


@dataclass(frozen=True)
class FaithfulnessRow:
    """Means over the records of one class for one method (None where nothing was measured)."""

    method: str
    class_name: str
    n: int
    deletion: float | None
    insertion: float | None
    random_deletion: float | None
    random_insertion: float | None
    localisation_auroc: float | None
    pointing_game: float | None
    sanity_rank_correlation: float | None

    @property
    def deletion_worse_than_random(self) -> bool:
        """A deletion curve above the random order's: the attribution ranks samples worse than chance."""
        return self.deletion is not None and self.random_deletion is not None and self.deletion > self.random_deletion


@dataclass(frozen=True)
class FaithfulnessResult:
    """Per method and class: deletion/insertion areas (and random references), localisation, sanity."""

    rows: tuple[FaithfulnessRow, ...]
    fractions: np.ndarray
    mean_curves: dict[str, dict[str, np.ndarray]]
    n_records: int
    seconds: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {"rows": [{**asdict(row), "deletion_worse_than_random": row.deletion_worse_than_random}
                         for row in self.rows], "fractions": self.fractions.tolist(),
                "n_records": self.n_records, "seconds": self.seconds, "notes": list(self.notes),
                "mean_curves": {m: {k: v.tolist() for k, v in c.items()} for m, c in self.mean_curves.items()}}

    def to_markdown(self) -> str:
        """The faithfulness and localisation table."""
        def cell(value):
            return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"

        lines = ["| method | class | n | deletion AUC (random) | insertion AUC (random) | localisation AUROC | "
                 "pointing game | rank corr. with random model |", "|---|---|---|---|---|---|---|---|"]
        for row in self.rows:
            flag = " (worse than random)" if row.deletion_worse_than_random else ""
            lines.append(
                f"| {row.method} | {row.class_name} | {row.n} | {cell(row.deletion)} "
                f"({cell(row.random_deletion)}){flag} | {cell(row.insertion)} ({cell(row.random_insertion)}) | "
                f"{cell(row.localisation_auroc)} | {cell(row.pointing_game)} | "
                f"{cell(row.sanity_rank_correlation)} |")
        lines += ["", "Deletion: lower is more faithful; insertion: higher. Deleted samples become 0 mV. "
                  "Localisation is against the synthetic ground-truth evidence masks. The last column compares "
                  "attributions with those of the same network with re-initialised weights: near 0 means the "
                  "explanation depends on what was learned."]
        return "\n".join(lines + [f"- {note}" for note in self.notes])


_CURVES = ("deletion", "insertion", "random_deletion", "random_insertion")


def faithfulness(model: nn.Module, meta: BundleMeta, inputs: Sequence[ModelInput], background: Background,
                 methods: Sequence[str] = ("gradcam", "shap"), steps: int = 10, n_samples: int = 8,
                 progress: bool = True, store: str | Path | None = None,
                 job: Mapping | None = None) -> FaithfulnessResult | None:
    """Measure each method on records labelled with a class, for that class.

    For every record and each of its true classes: deletion and insertion curves (against a random
    order), localisation against the evidence mask when the record has one, and the rank correlation
    with the attribution of a randomly re-initialised copy of the model.

    Args:
        model: the classifier.
        meta: its bundle's metadata (class names).
        inputs: model inputs with labels.
        background: the SHAP background.
        methods: attribution methods to measure.
        steps: points of each deletion/insertion curve, beyond the first.
        n_samples: expected-gradients samples of SHAP.
        progress: show a progress bar.
        store: folder for finished shards: resumable, and required under ``torchrun`` (records are spread
            over the processes; see `ecglens.explain.shards`).
        job: what identifies this job's shards besides the options above (checkpoint, records, background);
            `ecglens.explain.shards.finish` with the same ``store`` and ``job`` removes them.

    Returns:
        The result on rank 0 (always, outside torchrun); None on the other ranks.
    """
    started = time.perf_counter()
    random_model = randomized_copy(model)
    device = model_device(model)
    n_points = steps + 1

    def compute(first: int, items: Sequence[ModelInput]) -> dict[str, np.ndarray]:
        rows: dict[str, list] = {key: [] for key in ("record", "method", "target", "areas", "curves", "auroc",
                                                     "pointing", "sanity")}
        for index, item in enumerate(items, first):
            if item.labels is None:
                continue
            x = torch.from_numpy(item.signal)[None].to(device)
            base = background.tensor(item.n_samples, device)
            zeros = torch.zeros_like(x[0])
            for target in np.flatnonzero(item.labels > 0.5):
                name = meta.class_names[target]
                for m, method in enumerate(methods):
                    values = attribute(model, method, x, int(target), base, n_samples, seed=index)
                    shown = values if method == "gradcam" else np.abs(values)
                    curves = deletion_insertion(model, x[0], int(target), shown, zeros, steps, seed=index)
                    auroc, hit = None, None
                    if item.evidence is not None and name in item.evidence:
                        auroc, hit = localisation(values, item.evidence[name])
                    random_values = attribute(random_model, method, x, int(target), base, n_samples, seed=index)
                    areas = curves.areas()
                    rows["record"].append(index)
                    rows["method"].append(m)
                    rows["target"].append(int(target))
                    rows["areas"].append([areas[key] for key in _CURVES])
                    rows["curves"].append([getattr(curves, key) for key in _CURVES])
                    rows["auroc"].append(np.nan if auroc is None else auroc)
                    rows["pointing"].append(np.nan if hit is None else float(hit))
                    rows["sanity"].append(rank_correlation(values, random_values))
        return {"record": np.asarray(rows["record"], np.int64), "method": np.asarray(rows["method"], np.int64),
                "target": np.asarray(rows["target"], np.int64),
                "areas": np.asarray(rows["areas"], np.float64).reshape(-1, len(_CURVES)),
                "curves": np.asarray(rows["curves"], np.float64).reshape(-1, len(_CURVES), n_points),
                "auroc": np.asarray(rows["auroc"], np.float64), "pointing": np.asarray(rows["pointing"], np.float64),
                "sanity": np.asarray(rows["sanity"], np.float64)}

    job = None if store is None else {"method": "faithfulness", "methods": list(methods), "steps": steps,
                                      "n_samples": n_samples, **(job or {})}
    arrays = map_shards(compute, inputs, store, job, desc="faithfulness", progress=progress)
    if arrays is None:
        return None
    fractions = np.linspace(0, 1, n_points)
    rows = []
    method_of = arrays.get("method", np.zeros(0, np.int64))
    target_of = arrays.get("target", np.zeros(0, np.int64))
    for m, target in sorted({(methods[m], t) for m, t in zip(method_of.tolist(), target_of.tolist(), strict=True)}):
        chosen = (method_of == methods.index(m)) & (target_of == target)
        areas = arrays["areas"][chosen]
        auroc, pointing = arrays["auroc"][chosen], arrays["pointing"][chosen]
        located = ~np.isnan(auroc)
        rows.append(FaithfulnessRow(m, meta.class_names[target], int(chosen.sum()), *(_mean(a) for a in areas.T),
                                    _mean(auroc[located]), _mean(pointing[located]),
                                    _mean(arrays["sanity"][chosen])))
    mean_curves = {method: {key: _mean_curve(list(arrays["curves"][method_of == m, k]) if len(method_of) else [],
                                             n_points) for k, key in enumerate(_CURVES)}
                   for m, method in enumerate(methods)}
    notes = ("Grad-CAM maps are one value per time step, repeated over the leads; its localisation is therefore "
             "limited to time.",)
    return FaithfulnessResult(tuple(rows), fractions, mean_curves, len(inputs), time.perf_counter() - started, notes)


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _mean_curve(curves: list[np.ndarray], n_points: int) -> np.ndarray:
    return np.mean(curves, axis=0) if curves else np.full(n_points, np.nan)
