"""Adversarial perturbations of a multi-label ECG model: FGSM and PGD under L-infinity or L2 budgets.

Neither torchattacks nor the Adversarial Robustness Toolbox fits this model as it is: torchattacks' PGD and
FGSM take single-label class indices with a softmax cross-entropy and clamp inputs to [0, 1] (an image's
range, not millivolts); this model has independent sigmoid outputs and signed mV inputs. So ecglens has a
short PGD (Madry et al. 2018) on the multi-label loss, tested for the properties such an attack must have:
the perturbation stays within its budget, a zero budget changes nothing, and the loss it climbs does not
decrease (each record keeps its best iterate, as APGD does; Croce & Hein 2020).

The loss is the binary cross-entropy of the logits against reference decisions (the model's own clean
decisions, or labels), summed over the attacked classes: raising it pushes every attacked class away from
its reference. Flipping one class's decision is the same attack restricted to that class.

Plain PGD and FGSM under an L-infinity budget make square-wave noise with much of its power above 25 Hz,
which a clinical 0.5-40 Hz filter largely removes (Han et al., Nature Medicine 2020, warn of exactly this):
they are named high-frequency attacks. `shaped_pgd` makes perturbations an ECG could carry: smooth
(`gaussian_smoother`, Han et al.'s SAP with one kernel) or band-limited to 0.5-40 Hz (`band_limiter`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

NORMS = ("linf", "l2")


@dataclass(frozen=True)
class AttackResult:
    """Adversarial inputs and the loss each iteration reached (mean over the batch; index 0 is the start)."""

    inputs: torch.Tensor
    loss_history: tuple[float, ...]


def attack_loss(
    model: nn.Module, x: torch.Tensor, reference: torch.Tensor, classes: Sequence[int] | None = None
) -> torch.Tensor:
    """Per-record BCE of the logits against ``reference`` (0/1), summed over ``classes`` (default all)."""
    logits = model(x).float()
    loss = nn.functional.binary_cross_entropy_with_logits(logits, reference.float(), reduction="none")
    if classes is not None:
        loss = loss[:, list(classes)]
    return loss.sum(dim=1)


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    return delta * (eps / norms).clamp(max=1.0).view(-1, *([1] * (delta.dim() - 1)))


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    reference: torch.Tensor,
    eps: float,
    norm: str = "linf",
    steps: int = 10,
    step_size: float | None = None,
    classes: Sequence[int] | None = None,
    random_start: bool = False,
    generator: torch.Generator | None = None,
    keep_best: bool = True,
) -> AttackResult:
    """Projected gradient ascent on `attack_loss` within an ``eps`` ball around ``x``.

    Args:
        model: the model (put in eval mode for the attack; its mode is restored).
        x: inputs, batch x leads x samples, in mV.
        reference: batch x classes, 0/1: the decisions the attack pushes away from.
        eps: the budget in mV (L-infinity: per sample; L2: over the whole record).
        norm: ``linf`` or ``l2``.
        steps: iterations (1 with ``step_size = eps`` and L-infinity is FGSM).
        step_size: per-iteration step (default 2.5 eps / steps, Madry et al.).
        classes: the classes attacked (default all).
        random_start: start from a uniform point in the L-infinity ball (else from ``x``).
        generator: seeds the random start.
        keep_best: return each record's best iterate (so the loss never decreases); False returns the last.
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose from {', '.join(NORMS)}")
    if eps < 0 or steps < 1:
        raise ValueError("eps must be >= 0 and steps >= 1")
    was_training = model.training
    model.eval()
    x = x.detach()
    reference = reference.detach().to(x.device)
    alpha = 2.5 * eps / steps if step_size is None else step_size
    delta = torch.zeros_like(x)
    if random_start and eps > 0:
        delta = _project((torch.rand(x.shape, generator=generator, device="cpu").to(x) * 2 - 1) * eps, eps, norm)
    try:
        best, best_loss, history = delta.clone(), None, []
        for step_index in range(steps + 1 if eps > 0 else 1):
            last = step_index == steps or eps == 0
            delta.requires_grad_(not last)
            with torch.set_grad_enabled(not last):
                loss = attack_loss(model, x + delta, reference, classes)  # the loss at this iterate, once
            with torch.no_grad():
                if best_loss is None:
                    best_loss = loss.detach()
                else:
                    improved = loss > best_loss if keep_best else torch.ones_like(loss, dtype=torch.bool)
                    best[improved] = delta.detach()[improved]
                    best_loss = torch.where(improved, loss.detach(), best_loss)
                history.append(float(best_loss.mean()))
            if last:
                break
            (grad,) = torch.autograd.grad(loss.sum(), delta)
            with torch.no_grad():
                if norm == "linf":
                    step = alpha * grad.sign()
                else:
                    step = alpha * grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1)
                delta = _project(delta.detach() + step, eps, norm)
    finally:
        model.train(was_training)
    return AttackResult((x + best).detach(), tuple(history))


def fgsm(
    model: nn.Module, x: torch.Tensor, reference: torch.Tensor, eps: float, classes: Sequence[int] | None = None
) -> AttackResult:
    """The fast gradient sign method (Goodfellow et al. 2015): one L-infinity step of size ``eps``."""
    return pgd(model, x, reference, eps, "linf", steps=1, step_size=eps, classes=classes, keep_best=False)


Shaper = Callable[[torch.Tensor], torch.Tensor]
"""A linear map from a free parameter to a perturbation (batch x leads x samples in, the same shape out)."""


def gaussian_smoother(sigma_samples: float) -> Shaper:
    """Convolution of every lead with a normalised Gaussian kernel of standard deviation ``sigma_samples``
    (radius 4 sigma, zero-padded): the smoothing of Han et al.'s smooth adversarial perturbation (SAP, Nature
    Medicine 2020), with one kernel. Its gain at frequency f is exp(-2 pi^2 sigma^2 f^2)."""
    radius = max(1, math.ceil(4 * sigma_samples))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (t / max(sigma_samples, 1e-6)) ** 2)
    kernel = (kernel / kernel.sum()).float()

    def smooth(theta: torch.Tensor) -> torch.Tensor:
        batch, leads, n = theta.shape
        weight = kernel.to(theta)[None, None, :]
        return nn.functional.conv1d(theta.reshape(batch * leads, 1, n), weight, padding=radius).reshape(theta.shape)

    return smooth


def band_limiter(sampling_rate_hz: float, low_hz: float = 0.5, high_hz: float = 40.0) -> Shaper:
    """Orthogonal projection onto the ``low_hz``-``high_hz`` band: the discrete Fourier coefficients outside it
    are set to zero (the band of the clinical diagnostic filter)."""

    def limit(theta: torch.Tensor) -> torch.Tensor:
        n = theta.shape[-1]
        frequencies = torch.fft.rfftfreq(n, d=1.0 / sampling_rate_hz).to(theta.device)
        keep = ((frequencies >= low_hz) & (frequencies <= high_hz)).to(theta.dtype)
        return torch.fft.irfft(torch.fft.rfft(theta, dim=-1) * keep, n=n, dim=-1)

    return limit


def shaped_pgd(
    model: nn.Module,
    x: torch.Tensor,
    reference: torch.Tensor,
    eps: float,
    shape: Shaper,
    steps: int = 10,
    step_size: float | None = None,
    classes: Sequence[int] | None = None,
) -> AttackResult:
    """PGD whose perturbation is ``shape(theta)``: smooth or band-limited, within an L-infinity budget.

    Sign-gradient ascent on the free parameter theta; after each step theta is scaled so that the perturbation's
    largest absolute value is at most ``eps`` (a linear ``shape`` keeps its form under scaling, so the
    perturbation stays smooth or in band exactly). Each record keeps its best iterate, as `pgd`.

    Args:
        model: the model (eval mode during the attack; its mode is restored).
        x: inputs, batch x leads x samples, in mV.
        reference: batch x classes, 0/1: the decisions pushed away from.
        eps: the L-infinity budget in mV.
        shape: `gaussian_smoother` or `band_limiter` (any linear map).
        steps: iterations.
        step_size: per-iteration step of theta (default 2.5 eps / steps).
        classes: the classes attacked (default all).
    """
    if eps < 0 or steps < 1:
        raise ValueError("eps must be >= 0 and steps >= 1")
    was_training = model.training
    model.eval()
    x, reference = x.detach(), reference.detach().to(x.device)
    alpha = 2.5 * eps / steps if step_size is None else step_size
    theta = torch.zeros_like(x)

    def within_budget(theta: torch.Tensor) -> torch.Tensor:
        peak = shape(theta).abs().flatten(1).amax(dim=1).clamp_min(1e-12)
        return theta * (eps / peak).clamp(max=1.0).view(-1, 1, 1)

    try:
        best, best_loss, history = torch.zeros_like(x), None, []
        for step_index in range(steps + 1 if eps > 0 else 1):
            last = step_index == steps or eps == 0
            theta.requires_grad_(not last)
            with torch.set_grad_enabled(not last):
                delta = shape(theta)
                loss = attack_loss(model, x + delta, reference, classes)
            with torch.no_grad():
                improved = torch.ones_like(loss, dtype=torch.bool) if best_loss is None else loss > best_loss
                best[improved] = delta.detach()[improved]
                best_loss = loss.detach() if best_loss is None else torch.where(improved, loss.detach(), best_loss)
                history.append(float(best_loss.mean()))
            if last:
                break
            (grad,) = torch.autograd.grad(loss.sum(), theta)
            with torch.no_grad():
                theta = within_budget(theta.detach() + alpha * grad.sign())
    finally:
        model.train(was_training)
    return AttackResult((x + best).detach(), tuple(history))
