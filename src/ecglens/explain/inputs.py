"""What explanations run on: fixed-length windows of cached or file records, backgrounds, masks."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ecglens.cache import EcgCache
from ecglens.data import Item, split_caches
from ecglens.io import read_record
from ecglens.leads import lead_order
from ecglens.preprocess import resample
from ecglens.train.bundle import BundleMeta, load_model
from ecglens.train.loop import resolve_device


@dataclass(frozen=True)
class ExplainInput:
    """One record prepared for explanation: the first ``window`` samples, zero-padded at the end."""

    record_id: str
    signal: np.ndarray
    labels: np.ndarray | None
    evidence: dict[str, np.ndarray] | None = None


def window_of(signal: np.ndarray, window: int) -> np.ndarray:
    """The first ``window`` samples of a leads x samples array (zero-padded when shorter)."""
    out = np.zeros((signal.shape[0], window), np.float32)
    n = min(window, signal.shape[1])
    out[:, :n] = signal[:, :n]
    return out


class ExplainSession:
    """A loaded bundle with the caches it explains, its window length and its background set."""

    def __init__(self, bundle: str | os.PathLike, cache_paths: Sequence[str | os.PathLike] = (),
                 device: str = "auto"):
        self.device = resolve_device(device)
        self.model, self.meta = load_model(bundle, self.device)
        self.meta: BundleMeta
        self.caches = [EcgCache(path) for path in cache_paths]
        for cache in self.caches:
            if cache.sampling_rate_hz != self.meta.sampling_rate_hz:
                raise ValueError(f"{cache.path}: {cache.sampling_rate_hz:g} Hz, the model expects "
                                 f"{self.meta.sampling_rate_hz:g} Hz")
        self.window = round(self.meta.policy.seconds * self.meta.sampling_rate_hz)
        data = self.meta.training_data
        self.splits = split_caches(self.caches, int(data.get("seed", 0)), val_fold=int(data.get("val_fold", 9)),
                                   test_fold=int(data.get("test_fold", 10))) if self.caches else None

    def _from_item(self, item: Item) -> ExplainInput:
        cache = self.caches[item.cache]
        rows = lead_order(cache.spec.lead_names, self.meta.lead_names)
        signal = window_of(np.asarray(cache.signal(item.row))[rows], self.window)
        row = cache.index.iloc[item.row]
        return ExplainInput(str(row["record_id"]), signal, cache.labels()[item.row],
                            _evidence(str(row["source_path"]), cache.sampling_rate_hz, row["source_sampling_rate_hz"],
                                      self.window))

    def from_split(self, split: str = "test", n: int | None = None, seed: int = 0) -> list[ExplainInput]:
        """Up to ``n`` records of a split (a seeded random choice when the split is larger)."""
        if self.splits is None:
            raise ValueError("no cache given")
        items = list(self.splits[split])
        if n is not None and n < len(items):
            picks = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
            items = [items[i] for i in picks]
        return [self._from_item(item) for item in items]

    def from_ids(self, record_ids: Sequence[str]) -> list[ExplainInput]:
        """Records of the caches by record id."""
        out = []
        for record_id in record_ids:
            found = [Item(c, int(i)) for c, cache in enumerate(self.caches)
                     for i in np.flatnonzero(cache.index["record_id"].astype(str).to_numpy() == record_id)]
            if not found:
                raise ValueError(f"record {record_id!r} is in none of the caches")
            out.append(self._from_item(found[0]))
        return out

    def from_files(self, paths: Sequence[str | os.PathLike]) -> list[ExplainInput]:
        """Records read from files, resampled to the model's rate."""
        out = []
        for path in paths:
            record = read_record(path, self.meta.lead_names)
            signal = resample(record.signal, record.sampling_rate_hz, self.meta.sampling_rate_hz)
            out.append(ExplainInput(record.record_id, window_of(signal, self.window), None,
                                    _evidence(record.source_path, self.meta.sampling_rate_hz,
                                              record.sampling_rate_hz, self.window)))
        return out

    def background(self, n: int = 100, seed: int = 0) -> torch.Tensor:
        """``n`` training-split windows (the SHAP background; the study used 100)."""
        return self.stack(self.from_split("train", n, seed))

    def stack(self, inputs: Sequence[ExplainInput]) -> torch.Tensor:
        """Windows as a batch tensor on the session's device."""
        return torch.from_numpy(np.stack([i.signal for i in inputs])).to(self.device)

    def probabilities(self, x: torch.Tensor) -> np.ndarray:
        """Class probabilities of a batch."""
        with torch.no_grad():
            return torch.sigmoid(self.model(x)).float().cpu().numpy()


def _evidence(source_path: str, rate_hz: float, source_rate_hz: float, window: int) -> dict[str, np.ndarray] | None:
    """Synthetic ground truth next to a record (``.evidence.npz``), at the model's rate, or None."""
    path = Path(source_path.removesuffix(".hea") + ".evidence.npz")
    if not path.is_file():
        return None
    with np.load(path) as data:
        classes = [str(c) for c in data["classes"]]
        masks = data["masks"].astype(bool)
    positions = np.minimum((np.arange(window) * source_rate_hz / rate_hz).astype(int), masks.shape[2] - 1)
    valid = np.arange(window) * source_rate_hz / rate_hz < masks.shape[2]
    return {name: masks[k][:, positions] & valid[None, :] for k, name in enumerate(classes)}
