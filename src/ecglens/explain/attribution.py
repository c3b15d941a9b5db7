"""Grad-CAM and expected-gradients SHAP through captum, plus the study's display transforms."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch
from captum.attr import GradientShap, GuidedGradCam, LayerAttribution, LayerGradCam
from torch import nn


class ProbabilityModel(nn.Module):
    """Wraps a logit model so explanations are of class probabilities (sigmoid outputs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(x))


@contextmanager
def evaluation_mode(model: nn.Module):
    """Put a model in eval mode and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _targets(target: int | Sequence[int], batch: int) -> list[int]:
    if isinstance(target, int | np.integer):
        return [int(target)] * batch
    target = [int(t) for t in target]
    if len(target) != batch:
        raise ValueError(f"{len(target)} targets for a batch of {batch}")
    return target


def gradcam(
    model: nn.Module, x: torch.Tensor, target: int | Sequence[int], layer: nn.Module | None = None, relu: bool = True
) -> np.ndarray:
    """Grad-CAM at the end of the 4th residual stage (``model.layer4``), upsampled to the input length.

    The map has one value per time step; it is repeated over the leads so the result is shaped like
    ``x`` (the study drew one map over all 12 leads). It explains the class logit, the score before the
    output non-linearity, as Grad-CAM is defined (Selvaraju et al. 2017): the probability's map is the same
    times the positive factor sigmoid'(logit), except that this factor underflows to exactly 0 in float32
    for confident predictions, which would leave the most certain records with blank maps.

    Args:
        model: a `ResNet1d` (or any model with the given ``layer``).
        x: batch x leads x samples.
        target: class index, or one per batch item.
        layer: layer to explain at (default ``model.layer4``).
        relu: keep positive evidence only (as Grad-CAM's definition).
    """
    layer = layer if layer is not None else model.get_submodule("layer4")
    with evaluation_mode(model):
        explainer = LayerGradCam(model, layer)
        inputs = x.detach().clone()
        attribution = explainer.attribute(inputs, target=_targets(target, len(x)), relu_attributions=relu)
        upsampled = LayerAttribution.interpolate(attribution, (x.shape[-1],), interpolate_mode="linear")
    return upsampled.detach().expand(-1, x.shape[1], -1).cpu().numpy().copy()


def layer_steps(model: nn.Module, n_leads: int, n_samples: int, layer: nn.Module | None = None) -> int:
    """How many time steps ``layer`` (default ``model.layer4``, where `gradcam` explains) has for an input of
    ``n_leads`` x ``n_samples``: one forward pass of zeros."""
    layer = layer if layer is not None else model.get_submodule("layer4")
    steps: list[int] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: steps.append(int(out.shape[-1])))
    try:
        with evaluation_mode(model), torch.no_grad():
            model(torch.zeros(1, n_leads, n_samples, device=next(model.parameters()).device))
    finally:
        handle.remove()
    return steps[0]


def at_resolution(values: np.ndarray, steps: int) -> np.ndarray:
    """A per-time map (``... x samples``) with no finer detail than a layer of ``steps`` time steps can have:
    averaged over ``steps`` equal windows, then upsampled back as `gradcam` upsamples its layer (linear)."""
    n_samples = values.shape[-1]
    flat = torch.from_numpy(np.ascontiguousarray(values, np.float32)).reshape(1, -1, n_samples)
    pooled = torch.nn.functional.adaptive_avg_pool1d(flat, steps)
    back = LayerAttribution.interpolate(pooled, (n_samples,), interpolate_mode="linear")
    return back.reshape(values.shape).numpy().astype(values.dtype, copy=False)


def guided_gradcam(
    model: nn.Module, x: torch.Tensor, target: int | Sequence[int], layer: nn.Module | None = None
) -> np.ndarray:
    """Guided Grad-CAM (captum ``GuidedGradCam``): Grad-CAM times guided backpropagation, per lead.

    Grad-CAM alone has one value per time step. Multiplying it, upsampled, by the guided gradient of
    each input sample (Selvaraju et al. 2017, section 3.1) gives a leads x samples map: where in time
    the layer-4 evidence lies and, within it, which leads' samples the class score is sensitive to.
    Like Grad-CAM, it explains the class logit.
    """
    layer = layer if layer is not None else model.get_submodule("layer4")
    with evaluation_mode(model):
        explainer = GuidedGradCam(model, layer)
        inputs = x.detach().clone().requires_grad_()
        with warnings.catch_warnings():  # captum announces its temporary ReLU hooks, which it removes itself
            warnings.filterwarnings("ignore", "Setting backward hooks on ReLU", UserWarning)
            values = explainer.attribute(inputs, target=_targets(target, len(x)), interpolate_mode="linear")
    return values.detach().cpu().numpy().copy()


def gradient_shap(
    model: nn.Module,
    x: torch.Tensor,
    target: int | Sequence[int],
    background: torch.Tensor,
    n_samples: int = 8,
    seed: int = 0,
) -> np.ndarray:
    """SHAP values by expected gradients (captum ``GradientShap``) against a background set.

    For each input, ``n_samples`` (background record, interpolation point) pairs are drawn; the
    attributions add up to f(x) - E f(background) in expectation (checked in the tests).
    """
    if background.shape[1:] != x.shape[1:]:
        raise ValueError(f"background shape {tuple(background.shape[1:])} differs from input {tuple(x.shape[1:])}")
    # captum draws the background records from torch's generator and the interpolation points from NumPy's
    # global one: seed both, and give the caller's streams back untouched
    state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
    torch.manual_seed(seed)
    np.random.seed(seed)
    try:
        with evaluation_mode(model):
            explainer = GradientShap(ProbabilityModel(model))
            values = explainer.attribute(
                x.detach().clone(), baselines=background.detach(), n_samples=n_samples, target=_targets(target, len(x))
            )
    finally:
        torch.random.set_rng_state(state)
        np.random.set_state(numpy_state)
    return values.detach().cpu().numpy()


SHAP_BATCHES = 8
"""At most this many independent batches of expected-gradients samples per record: the spread of their lead sums
gives the standard error of the explanation's sum (batch means), checked against its expectation f(x) - E f(b)."""


def shap_batches(n_samples: int) -> int:
    """How many equal batches ``n_samples`` are drawn in: the largest divisor up to `SHAP_BATCHES` (1: no error
    can be given)."""
    return max(d for d in range(1, min(n_samples, SHAP_BATCHES) + 1) if n_samples % d == 0)


def gradient_shap_with_error(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    background: torch.Tensor,
    n_samples: int = 8,
    seed: int = 0,
) -> tuple[np.ndarray, float | None]:
    """`gradient_shap` of one record (1 x leads x samples) for one class, drawn in `shap_batches` independent
    batches of equal size (captum ``GradientShap``, one seed per batch): the mean map (leads x samples) and the
    Monte-Carlo standard error of its sum over leads and time (the batch sums' spread; None with one batch)."""
    k = shap_batches(n_samples)
    size = n_samples // k
    maps = [gradient_shap(model, x, target, background, size, seed * SHAP_BATCHES + i)[0] for i in range(k)]
    values = np.mean(maps, axis=0)
    sums = np.array([m.sum() for m in maps], np.float64)
    return values, (float(sums.std(ddof=1) / np.sqrt(k)) if k > 1 else None)


def gradient_shap_all_classes(
    model: nn.Module, x: torch.Tensor, background: torch.Tensor, n_classes: int, n_samples: int = 8, seed: int = 0
) -> np.ndarray:
    """SHAP values for every class at once: batch x classes x leads x samples.

    The record is repeated once per class in a single captum call (one forward/backward over a
    batch of classes x samples), which is how all nine classes stay cheap.
    """
    batch = x.shape[0]
    repeated = x.repeat_interleave(n_classes, dim=0)
    targets = list(range(n_classes)) * batch
    values = gradient_shap(model, repeated, targets, background, n_samples, seed)
    return values.reshape(batch, n_classes, *x.shape[1:])


def threshold_map(values: np.ndarray, percentile: float = 95.0) -> np.ndarray:
    """The study's display variant: min-max normalise each map, zero everything below the percentile."""
    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(values.shape[0], -1) if values.ndim > 1 else values[None]
    low = flat.min(axis=1, keepdims=True)
    span = np.maximum(flat.max(axis=1, keepdims=True) - low, 1e-12)
    normalised = (flat - low) / span
    cut = np.percentile(normalised, percentile, axis=1, keepdims=True)
    return np.where(normalised >= cut, normalised, 0.0).reshape(values.shape)


def lead_mass(values: np.ndarray) -> np.ndarray:
    """Absolute attribution summed over time: ... x leads x samples -> ... x leads."""
    return np.abs(values).sum(axis=-1)


EXPLANATION_METHODS = ("gradcam", "guided-gradcam", "shap")
"""Per-record maps: Grad-CAM is per time step; guided Grad-CAM and SHAP are per lead and time."""


def attribute(
    model: nn.Module,
    method: str,
    x: torch.Tensor,
    target: int,
    background: torch.Tensor | None = None,
    n_samples: int = 8,
    seed: int = 0,
) -> np.ndarray:
    """One method's attribution of one record (1 x leads x samples) for one class: leads x samples.

    Args:
        model: the classifier.
        method: one of `EXPLANATION_METHODS`.
        x: the model input, 1 x leads x samples.
        target: class index.
        background: SHAP background shaped like ``x`` per record (records x leads x samples).
        n_samples: expected-gradients samples.
        seed: expected-gradients seed.
    """
    if method == "gradcam":
        return gradcam(model, x, target)[0]
    if method == "guided-gradcam":
        return guided_gradcam(model, x, target)[0]
    if method == "shap":
        if background is None:
            raise ValueError("SHAP needs a background set")
        return gradient_shap(model, x, target, background, n_samples, seed)[0]
    raise ValueError(f"unknown explanation method {method!r}; choose from {', '.join(EXPLANATION_METHODS)}")
