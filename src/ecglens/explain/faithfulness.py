"""Faithfulness, measured: deletion/insertion curves, localisation against ground truth, sanity check."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from torch import nn

from ecglens.explain.attribution import evaluation_mode


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
