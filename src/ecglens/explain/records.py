"""Explaining records: probabilities, the classes to explain, and the attributions, in one loop.

Every per-record explanation in ecglens (``explain gradcam|guided-gradcam|shap``, ``predict --explain``, the report's
Grad-CAM examples, the web viewer) comes from `explain_inputs`, on `ecglens.preprocess.ModelInput`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ecglens.bundle.meta import BundleMeta
from ecglens.explain.attribution import attribute
from ecglens.explain.inputs import Background
from ecglens.explain.lead_shapley import LeadGame, exact_lead_shapley, sampled_lead_shapley
from ecglens.models import class_probabilities, model_device
from ecglens.preprocess import ModelInput


@dataclass(frozen=True)
class RecordExplanation:
    """One record's attribution for one class, with the input and probabilities it explains.

    Attributes:
        input: the model input that was scored and explained.
        method: ``gradcam``, ``guided-gradcam`` or ``shap``.
        class_index: index of the explained class among the bundle's classes.
        class_name: the explained class.
        probabilities: the model's class probabilities on ``input`` (all classes).
        values: leads x samples attribution (Grad-CAM's one map per time step repeated over the leads).
    """

    input: ModelInput
    method: str
    class_index: int
    class_name: str
    probabilities: np.ndarray
    values: np.ndarray

    @property
    def probability(self) -> float:
        """The explained class's probability."""
        return float(self.probabilities[self.class_index])


def probabilities_of(model: nn.Module, inputs: Sequence[ModelInput], batch_size: int = 32) -> np.ndarray:
    """Class probabilities (records x classes) of model inputs of any lengths."""
    return class_probabilities(model, [item.signal for item in inputs], batch_size)


def targets_for(meta: BundleMeta, probabilities: np.ndarray, class_name: str | None = None) -> list[int]:
    """The classes to explain: the named one, else every predicted class, else the most probable.

    Raises:
        ValueError: an unknown class name.
    """
    if class_name is not None:
        if class_name not in meta.class_names:
            raise ValueError(f"unknown class {class_name!r}; choose from {', '.join(meta.class_names)}")
        return [meta.class_names.index(class_name)]
    predicted = [meta.class_names.index(name) for name in meta.decisions(probabilities)]
    return predicted or [int(np.argmax(probabilities))]


def explain_inputs(
    model: nn.Module,
    meta: BundleMeta,
    inputs: Sequence[ModelInput],
    method: str,
    class_name: str | None = None,
    background: Background | None = None,
    n_samples: int = 8,
    probabilities: np.ndarray | None = None,
    seed: int = 0,
) -> list[RecordExplanation]:
    """Explain each input for the classes `targets_for` picks (or ``class_name``).

    Args:
        model: the bundle's model (as loaded by `ecglens.predict.Predictor`).
        meta: the bundle's metadata (class names, thresholds).
        inputs: model inputs, exactly as scored.
        method: ``gradcam``, ``guided-gradcam`` or ``shap``.
        class_name: explain this class only.
        background: SHAP background (required for ``shap``).
        n_samples: expected-gradients samples per class.
        probabilities: the probabilities already computed for ``inputs`` (records x classes); computed here
            when None.
        seed: expected-gradients seed.
    """
    if method == "shap" and background is None:
        raise ValueError("SHAP needs a background set (training-split records of a cache)")
    if probabilities is None:
        probabilities = probabilities_of(model, inputs)
    device = model_device(model)
    out = []
    for item, p in zip(inputs, probabilities, strict=True):
        x = torch.from_numpy(item.signal)[None].to(device)
        base = background.tensor(item.n_samples, device) if background is not None and method == "shap" else None
        for target in targets_for(meta, p, class_name):
            values = attribute(model, method, x, target, base, n_samples, seed)
            out.append(RecordExplanation(item, method, target, meta.class_names[target], np.asarray(p), values))
    return out


@dataclass(frozen=True)
class LeadShapleyTable:
    """Lead Shapley values of one record: ``values[player, class]`` (efficiency: columns add up to
    f(all leads) - f(no lead)). ``lead_names`` are the players: the leads, or `LIMB_PLAYER` and the others."""

    input: ModelInput
    values: np.ndarray
    lead_names: tuple[str, ...]
    class_names: tuple[str, ...]
    exact: bool
    baseline: str


def lead_shapley_tables(
    model: nn.Module,
    meta: BundleMeta,
    inputs: Sequence[ModelInput],
    baseline: str = "zeros",
    background: Background | None = None,
    n_permutations: int | None = None,
    limb_as_one: bool = False,
) -> list[LeadShapleyTable]:
    """Lead Shapley values (players x classes) of each record: exact, or sampled with ``n_permutations`` orders.

    Args:
        baseline: what an absent lead becomes, one of `BASELINES` (see `ecglens.explain.lead_shapley`):
            ``conditional`` and ``mean`` need the background.
        limb_as_one: the model's limb leads are one player.
    """
    game = LeadGame.of(meta.lead_names, baseline, limb_as_one)
    if baseline != "zeros" and background is None:
        raise ValueError(f"the {baseline!r} baseline needs a background set")
    device = model_device(model)
    tables = []
    for item in inputs:
        x = torch.from_numpy(item.signal).to(device)
        mean = None if background is None else background.mean(item.n_samples, device)
        values = (
            sampled_lead_shapley(model, x, mean, n_permutations, game=game)
            if n_permutations
            else exact_lead_shapley(model, x, mean, game=game)
        )
        tables.append(LeadShapleyTable(item, values, game.player_names, meta.class_names, not n_permutations, baseline))
    return tables
