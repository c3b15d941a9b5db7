"""From cache to model: augmentation and the PyTorch datasets and samplers.

Evaluation items are made by `ecglens.preprocess.model_input`'s length policy (`apply_policy`), training
items by `ecglens.preprocess.random_window`, so the inputs scored here are those `predict` scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ecglens.data.cache import LABEL_COLUMNS, EcgCache
from ecglens.data.splits import Item
from ecglens.labels.mapping import LabelMap
from ecglens.leads import LEAD_NAMES, lead_order
from ecglens.perturb import Perturbation, RandomPerturbation
from ecglens.preprocess import LengthPolicy, apply_policy, batches_by_length, random_window


@dataclass(frozen=True)
class Augmentation:
    """The original code's augmentation, each part applied with ``probability``.

    The published code applies each part when ``np.random.randn() > 0.5``, i.e. with probability
    0.3085; ecglens defaults to 0.5 and says so (pass 0.3085 to match the original).
    """

    probability: float = 0.5
    scale_sigma: float = 0.1
    shift_mv: float = 0.02

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per-lead amplitude scaling N(1, sigma) and per-lead baseline shift U(-shift, shift) mV."""
        n_leads = signal.shape[0]
        if rng.random() < self.probability:
            signal = signal * rng.normal(1.0, self.scale_sigma, (n_leads, 1)).astype(np.float32)
        if rng.random() < self.probability:
            signal = signal + rng.uniform(-self.shift_mv, self.shift_mv, (n_leads, 1)).astype(np.float32)
        return signal


class CacheDataset(Dataset):
    """Records of one or more caches as (signal tensor leads x samples, multi-hot target) pairs.

    Args:
        caches: caches sharing one sampling rate.
        items: which rows to serve.
        policy: the input-length policy.
        train: training mode (random crops, augmentation) or evaluation mode (deterministic).
        lead_names: leads to feed the model, in order (any subset of the cache's leads).
        augmentation: training augmentation, or None.
        seed: with the epoch (`set_epoch`) and item number, seeds each item's randomness, so results
            do not depend on worker processes or ranks.
        label_map: the label space of the targets (None: the caches' own nine classes).
        perturbation: applied to each signal (at the cache's rate, in ``lead_names`` order) with a generator
            seeded by ``seed``, the epoch and the item: `ecglens.perturb.Perturbation` for robustness
            evaluation, `ecglens.perturb.RandomPerturbation` as training augmentation.
    """

    def __init__(
        self,
        caches: Sequence[EcgCache],
        items: Sequence[Item],
        policy: LengthPolicy,
        train: bool,
        lead_names: Sequence[str] = LEAD_NAMES,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        label_map: LabelMap | None = None,
        perturbation: Perturbation | RandomPerturbation | None = None,
    ):
        rates = {cache.sampling_rate_hz for cache in caches}
        if len(rates) != 1:
            raise ValueError(f"caches have different sampling rates: {sorted(rates)}")
        self.caches = list(caches)
        self.items = list(items)
        self.policy = policy
        self.train = train
        self.augmentation = augmentation if train else None
        self.seed = seed
        self.perturbation = perturbation
        self.lead_names = tuple(lead_names)
        self.epoch = 0
        self.sampling_rate_hz = rates.pop()
        self.lead_rows = [np.asarray(lead_order(cache.spec.lead_names, lead_names)) for cache in self.caches]
        self.all_leads = [
            len(rows) == cache.n_leads and bool((rows == np.arange(cache.n_leads)).all())
            for rows, cache in zip(self.lead_rows, self.caches, strict=True)
        ]
        self.window = policy.window(self.sampling_rate_hz)
        n_classes = len(LABEL_COLUMNS) if label_map is None else len(label_map.classes)
        self._labels = (
            np.stack([self.caches[i.cache].labels(label_map)[i.row] for i in self.items])
            if self.items
            else np.zeros((0, n_classes), np.float32)
        )

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops and augmentation for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> np.ndarray:
        """Targets of all items, items x classes."""
        return self._labels

    def length(self, i: int) -> int:
        """Input length of item ``i`` under the policy (for bucketing)."""
        if self.policy.name == "original" or self.train:
            return self.window
        item = self.items[i]
        return int(self.caches[item.cache].lengths[item.row])

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``i`` (of the current epoch), or ``(epoch, i)`` as `EpochSampler` yields it."""
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        item = self.items[i]
        cache = self.caches[item.cache]
        signal = cache.signal(item.row)
        if not self.all_leads[item.cache]:
            signal = signal[self.lead_rows[item.cache]]
        rng = np.random.default_rng([self.seed, epoch, i])
        if not self.train:
            if self.perturbation is not None:
                signal = self.perturbation.apply(signal, self.sampling_rate_hz, self.lead_names, rng)
            out = apply_policy(signal, self.policy, self.sampling_rate_hz)
        else:
            out = random_window(signal, self.policy, self.sampling_rate_hz, rng)
            if self.perturbation is not None:
                out = self.perturbation.apply(out, self.sampling_rate_hz, self.lead_names, rng)
        if self.augmentation is not None:
            out = self.augmentation.apply(out, rng)
        return torch.from_numpy(np.ascontiguousarray(out)), torch.from_numpy(self._labels[i])


class EpochSampler(Sampler[tuple[int, int]]):
    """A sampler's indices paired with the epoch: ``(epoch, i)``.

    DataLoader workers that live across epochs (``persistent_workers``) hold their own copy of the
    dataset, which `CacheDataset.set_epoch` in the main process never reaches; the epoch travels with
    each index instead, so every epoch draws its own crops whatever the number of workers.
    """

    def __init__(self, sampler: Sampler[int]):
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next pass (passed on to a distributed sampler's shuffle)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(i)) for i in self.sampler)

    def __len__(self) -> int:
        if not isinstance(self.sampler, Sized):
            raise TypeError(f"{type(self.sampler).__name__} has no length")
        return len(self.sampler)


class LengthBucketSampler(Sampler[list[int]]):
    """Evaluation batches of items with equal input length (no padding), in a fixed order."""

    def __init__(self, dataset: CacheDataset, batch_size: int):
        lengths = [dataset.length(i) for i in range(len(dataset))]
        self.batches = [chunk.tolist() for chunk in batches_by_length(lengths, batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
