"""From cache to model: splits (`ecglens.data.splits`, no torch) and the PyTorch datasets
(`ecglens.data.dataset`).

The datasets are loaded when first asked for, so reading a bundle's split (`ecglens.bundle`, the inference
path) never imports ``torch.utils.data``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecglens.data.splits import (
    OUT_OF_SCOPE,
    SPLITS,
    Item,
    SplitItems,
    SplitSpec,
    assign_splits,
    records_table,
    split_caches,
)

if TYPE_CHECKING:
    from ecglens.data.dataset import Augmentation, CacheDataset, EpochSampler, LengthBucketSampler

_DATASET = ("Augmentation", "CacheDataset", "EpochSampler", "LengthBucketSampler")

__all__ = ["OUT_OF_SCOPE", "SPLITS", "Augmentation", "CacheDataset", "EpochSampler", "Item", "LengthBucketSampler",
           "SplitItems", "SplitSpec", "assign_splits", "records_table", "split_caches"]


def __getattr__(name: str) -> Any:
    if name in _DATASET:
        from ecglens.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'ecglens.data' has no attribute {name!r}")
