"""Splits and datasets: seeded folds, and evaluation items that are exactly the model inputs predict scores."""

import numpy as np
import pytest
import torch

from ecglens.cache import EcgCache
from ecglens.data import CacheDataset, LengthBucketSampler, SplitSpec, assign_splits, split_caches
from ecglens.preprocess import InputSpec, LengthPolicy, model_input


def test_splits_are_seeded_and_follow_folds(tiny_run):
    index = EcgCache(tiny_run.cache).index
    a, b = assign_splits(index, SplitSpec(seed=1)), assign_splits(index, SplitSpec(seed=1))
    assert (a == b).all() and set(a) == {"train", "val", "test"}
    assert (assign_splits(index, SplitSpec(seed=2)) != a).any()
    fixed = index.assign(fold=[(i % 10) + 1 for i in range(len(index))])
    splits = assign_splits(fixed)
    assert (splits[fixed["fold"] == 10] == "test").all() and (splits[fixed["fold"] == 9] == "val").all()


def test_split_spec_is_checked():
    with pytest.raises(ValueError, match="must differ"):
        SplitSpec(0, 9, 9)
    with pytest.raises(ValueError, match="1 to 10"):
        SplitSpec(0, 0, 10)


def test_length_policies(tiny_run):
    caches = [EcgCache(tiny_run.cache)]
    items = split_caches(caches).train
    original = CacheDataset(caches, items, LengthPolicy.original(), train=False)
    x, _ = original[0]
    n = caches[0].lengths[items[0].row]
    assert x.shape == (12, 7500) and torch.all(x[:, : 7500 - n] == 0)
    np.testing.assert_array_equal(x[:, 7500 - n :].numpy(), caches[0].signal(items[0].row))
    crop = CacheDataset(caches, items, LengthPolicy("crop", 1.0), train=True)
    assert crop[0][0].shape == (12, 250)
    whole = CacheDataset(caches, items, LengthPolicy("crop", 1.0), train=False)
    assert whole[0][0].shape == (12, n)


@pytest.mark.parametrize("policy", [LengthPolicy("crop", 10.0), LengthPolicy.original()])
def test_evaluation_items_are_the_model_inputs(tiny_run, policy):
    cache = EcgCache(tiny_run.cache)
    items = split_caches([cache]).test
    dataset = CacheDataset([cache], items, policy, train=False)
    spec = InputSpec(cache.spec.lead_names, cache.sampling_rate_hz, policy)
    for i, item in enumerate(items):
        expected = model_input(cache.signal(item.row), cache.sampling_rate_hz, cache.spec.lead_names, spec)
        np.testing.assert_array_equal(dataset[i][0].numpy(), expected)


def test_bucket_sampler_batches_equal_lengths(tiny_run):
    cache = EcgCache(tiny_run.cache)
    dataset = CacheDataset([cache], split_caches([cache]).train, LengthPolicy(), train=False)
    sampler = LengthBucketSampler(dataset, 4)
    assert sorted(i for batch in sampler for i in batch) == list(range(len(dataset)))
    assert all(len({dataset.length(i) for i in batch}) == 1 and len(batch) <= 4 for batch in sampler)
