"""Exact and sampled Shapley values of the 12 leads, for all classes at once from forward passes.

Players are the leads; the value of a coalition S is the class probability with the leads outside S
replaced by a baseline (zeros, or a background mean). Exact values use all 2^n coalitions; the
sampled estimator averages marginal contributions along random (antithetic) lead orders. Both satisfy
efficiency exactly: the lead values add up to f(all leads) - f(no lead).
"""

from __future__ import annotations

from math import factorial

import numpy as np
import torch
from torch import nn

from ecglens.explain.attribution import evaluation_mode


@torch.no_grad()
def _coalition_values(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor, masks: np.ndarray,
                      batch_size: int) -> np.ndarray:
    """Probabilities (coalitions x classes) of one record (leads x samples) under lead masks."""
    out = []
    device = next(model.parameters()).device
    x, baseline = x.to(device), baseline.to(device)
    for start in range(0, len(masks), batch_size):
        keep = torch.as_tensor(masks[start : start + batch_size], dtype=x.dtype, device=device)[:, :, None]
        inputs = keep * x[None] + (1 - keep) * baseline[None]
        out.append(torch.sigmoid(model(inputs)).float().cpu().numpy())
    return np.concatenate(out)


def exact_lead_shapley(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | None = None,
                       batch_size: int = 128) -> np.ndarray:
    """Exact lead Shapley values of one record: leads x classes.

    Args:
        model: the classifier (logits; probabilities are explained).
        x: one record, leads x samples.
        baseline: what an absent lead becomes (leads x samples); zeros by default.
        batch_size: coalitions per forward pass.
    """
    n = x.shape[0]
    baseline = torch.zeros_like(x) if baseline is None else baseline
    codes = np.arange(2**n)
    masks = ((codes[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float32)
    with evaluation_mode(model):
        values = _coalition_values(model, x, baseline, masks, batch_size)
    sizes = masks.sum(axis=1).astype(int)
    weights = np.array([factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)])
    shapley = np.zeros((n, values.shape[1]))
    for lead in range(n):
        without = codes[(codes >> lead) & 1 == 0]
        shapley[lead] = (weights[sizes[without]][:, None] * (values[without | (1 << lead)] - values[without])).sum(0)
    return shapley


def sampled_lead_shapley(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | None = None,
                         n_permutations: int = 16, seed: int = 0, batch_size: int = 128) -> np.ndarray:
    """Permutation-sampling estimate of lead Shapley values (leads x classes), antithetic pairs.

    Each order costs n + 1 forward passes (shared by all classes) and its contributions add up to
    f(all) - f(none) exactly, so efficiency holds for the estimate too.
    """
    n = x.shape[0]
    baseline = torch.zeros_like(x) if baseline is None else baseline
    rng = np.random.default_rng(seed)
    orders = []
    for _ in range((n_permutations + 1) // 2):
        order = rng.permutation(n)
        orders += [order, order[::-1]]
    orders = orders[:n_permutations]
    masks = []
    for order in orders:
        mask = np.zeros(n, np.float32)
        masks.append(mask.copy())
        for lead in order:
            mask[lead] = 1
            masks.append(mask.copy())
    with evaluation_mode(model):
        values = _coalition_values(model, x, baseline, np.array(masks), batch_size)
    values = values.reshape(len(orders), n + 1, -1)
    shapley = np.zeros((n, values.shape[2]))
    for k, order in enumerate(orders):
        contributions = np.diff(values[k], axis=0)
        shapley[order] += contributions
    return shapley / len(orders)
