"""Scoring with a model outside training: class probabilities of inputs of any length."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ecglens.preprocess import batches_by_length


def model_device(model: nn.Module) -> torch.device:
    """The device a model's parameters are on."""
    return next(model.parameters()).device


@torch.no_grad()
def class_probabilities(model: nn.Module, signals: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """Sigmoid outputs (records x classes) of leads x samples inputs of any lengths, batching equal lengths.

    The model's train/eval mode is restored afterwards.
    """
    device = model_device(model)
    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    try:
        for chunk in batches_by_length([s.shape[-1] for s in signals], batch_size):
            batch = torch.from_numpy(np.stack([signals[i] for i in chunk])).to(device)
            probabilities = torch.sigmoid(model(batch)).float().cpu().numpy()
            if out is None:
                out = np.zeros((len(signals), probabilities.shape[1]), np.float32)
            out[chunk] = probabilities
    finally:
        model.train(was_training)
    return out if out is not None else np.zeros((0, 0), np.float32)
