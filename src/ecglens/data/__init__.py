"""From records to model inputs: the cache (`ecglens.data.cache`), dataset summaries (`ecglens.data.summary`),
splits (`ecglens.data.splits`, no torch) and the PyTorch datasets (`ecglens.data.dataset`).

Names are loaded when first used, so reading a bundle's split (`ecglens.bundle`, the inference path) never
imports ``torch.utils.data``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecglens.util.lazy import lazy_exports

if TYPE_CHECKING:
    from ecglens.data.dataset import Augmentation, CacheDataset, EpochSampler, LengthBucketSampler
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

__all__ = [
    "OUT_OF_SCOPE",
    "SPLITS",
    "Augmentation",
    "CacheDataset",
    "EpochSampler",
    "Item",
    "LengthBucketSampler",
    "SplitItems",
    "SplitSpec",
    "assign_splits",
    "records_table",
    "split_caches",
]

__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            ("Augmentation", "CacheDataset", "EpochSampler", "LengthBucketSampler"), "ecglens.data.dataset"
        ),
        **dict.fromkeys(
            (
                "OUT_OF_SCOPE",
                "SPLITS",
                "Item",
                "SplitItems",
                "SplitSpec",
                "assign_splits",
                "records_table",
                "split_caches",
            ),
            "ecglens.data.splits",
        ),
    },
)
