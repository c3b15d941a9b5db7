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
from ecglens.explain.attribution import attribute, gradient_shap_with_error
from ecglens.explain.inputs import Background
from ecglens.explain.lead_shapley import LeadGame, exact_lead_shapley, sampled_lead_shapley
from ecglens.models import class_probabilities, model_device
from ecglens.preprocess import ModelInput

CONVERGED_WITHIN = 0.2
"""A record's SHAP sum is called converged within this share of its expectation (plus 0.01; `Additivity`)."""
SHAP_UNITS = "probability"
"""What ecglens's SHAP values are in: the class probability (expected gradients of the sigmoid output)."""


@dataclass(frozen=True)
class Additivity:
    """The check that a record's SHAP values add up: their sum over leads and time (``lead_sum``, with its
    Monte-Carlo ``standard_error``, None with one batch of samples) against its expectation, the explained class's
    ``probability`` minus the ``background_mean`` of its probability over the background records (``expected``).
    Values in `SHAP_UNITS`."""

    lead_sum: float
    standard_error: float | None
    probability: float
    background_mean: float
    n_samples: int
    units: str = SHAP_UNITS

    @property
    def expected(self) -> float:
        """What the sum equals in expectation: f(x) - E f(background)."""
        return self.probability - self.background_mean

    @property
    def off_by(self) -> float:
        """How far the sum lies from its expectation, as a share of the expectation's size (plus 0.01)."""
        return abs(self.lead_sum - self.expected) / (abs(self.expected) + 0.01)

    @property
    def converged(self) -> bool:
        """Whether the sum lies within `CONVERGED_WITHIN` of its expectation. The expectation is known exactly, so
        this is the test; the standard error is not: a confident record's saturated output puts its gradient on a
        short stretch of each path, which a few samples can all miss, and then they understate their spread too
        (the starter's RBBB on PTB-XL 269 at 8 samples: 0.226, SE 0.232, against 0.857)."""
        return self.off_by <= CONVERGED_WITHIN

    def line(self) -> str:
        """``SHAP sums to 0.412 (SE 0.210, 16 samples); expected p - background mean = 1.000 - 0.125 = 0.875
        (probability)``, and a warning when the sum is not `converged`."""
        error = "" if self.standard_error is None else f"SE {self.standard_error:.3f}, "
        warning = (
            ""
            if self.converged
            else f"; NOT CONVERGED: {self.off_by:.0%} off its expectation, more samples are needed before reading "
            "these values"
        )
        return (
            f"SHAP sums to {self.lead_sum:.3f} ({error}{self.n_samples} samples); expected p - background mean = "
            f"{self.probability:.3f} - {self.background_mean:.3f} = {self.expected:.3f} ({self.units}){warning}"
        )

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "units": self.units,
            "lead_sum": self.lead_sum,
            "standard_error": self.standard_error,
            "expected": self.expected,
            "probability": self.probability,
            "background_mean": self.background_mean,
            "n_samples": self.n_samples,
            "converged": self.converged,
        }


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
        additivity: SHAP's sum against its expectation (None for the other methods).
    """

    input: ModelInput
    method: str
    class_index: int
    class_name: str
    probabilities: np.ndarray
    values: np.ndarray
    additivity: Additivity | None = None

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
    background_p: dict[int, np.ndarray] | None = None,
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
        background_p: the background's probabilities under ``model`` per input length, kept by a caller that
            explains record by record so they are computed once (filled here).
    """
    if method == "shap" and background is None:
        raise ValueError("SHAP needs a background set (training-split records of a cache)")
    if probabilities is None:
        probabilities = probabilities_of(model, inputs)
    device = model_device(model)
    out = []
    background_p = {} if background_p is None else background_p  # f(b) of the background per input length, once
    for item, p in zip(inputs, probabilities, strict=True):
        x = torch.from_numpy(item.signal)[None].to(device)
        if background is None or method != "shap":
            for target in targets_for(meta, p, class_name):
                values = attribute(model, method, x, target, None, n_samples, seed)
                out.append(RecordExplanation(item, method, target, meta.class_names[target], np.asarray(p), values))
            continue
        base = background.tensor(item.n_samples, device)
        if item.n_samples not in background_p:
            background_p[item.n_samples] = class_probabilities(model, list(base.cpu().numpy()))
        for target in targets_for(meta, p, class_name):
            values, error = gradient_shap_with_error(model, x, target, base, n_samples, seed)
            mean = float(background_p[item.n_samples][:, target].mean())
            check = Additivity(float(values.sum()), error, float(p[target]), mean, n_samples)
            out.append(RecordExplanation(item, method, target, meta.class_names[target], np.asarray(p), values, check))
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
