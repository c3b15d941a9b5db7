"""Splits and datasets: seeded folds, and evaluation items that are exactly the model inputs predict scores."""

import numpy as np
import pytest
import torch

from ecglens.data import CacheDataset, LengthBucketSampler, SplitSpec, assign_splits, split_caches
from ecglens.data.cache import EcgCache
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


@pytest.mark.realdata
def test_a_joint_split_keeps_twins_and_patients_on_one_side(shared_data, tmp_path):
    """A native PTB-XL cache (ecg 1-12 and 599) and a Challenge one holding two of its recordings (HR00003,
    HR00599), one recording of a patient of the native sample (HR03961, named patient 16193 of ecg 7, fold 7, in
    this database table) and one of nobody known (HR12083)."""
    from dataclasses import replace

    import pandas as pd

    from ecglens.data.cache import EcgCache, build_cache
    from ecglens.io import parse_source
    from ecglens.labels import load_label_map

    native_root, challenge_root = tmp_path / "ptbxl", tmp_path / "challenge"
    native_root.mkdir()
    challenge_root.mkdir()
    table = pd.read_csv(shared_data / "ptb-xl" / "ptbxl_database.csv")
    table = table[table["ecg_id"].isin([*range(1, 13), 599])]
    extra = table[table["ecg_id"] == 7].assign(ecg_id=3961, filename_lr="records100/03000/03961_lr")
    pd.concat([table, extra]).to_csv(native_root / "ptbxl_database.csv", index=False)
    (native_root / "records100").symlink_to(shared_data / "ptb-xl" / "records100")
    for name in ("HR00003", "HR00599", "HR03961", "HR12083"):
        for suffix in (".hea", ".mat"):
            (challenge_root / f"{name}{suffix}").symlink_to(shared_data / "challenge" / "ptb-xl" / f"{name}{suffix}")
    native = replace(parse_source(f"ptbxl100:{native_root}"), allow_outside_root=True)  # records100 is a link
    build_cache([native], tmp_path / "native", 100, workers=1, progress=False)
    build_cache([parse_source(f"ptb-xl=challenge:{challenge_root}")], tmp_path / "hr", 100, workers=1, progress=False)
    caches = [EcgCache(tmp_path / "hr"), EcgCache(tmp_path / "native")]  # the Challenge copy first: native wins
    split = split_caches(caches, SplitSpec(0, 7, 8), label_map=load_label_map("strict"))
    rows = split.table.set_index("record_id")
    assert rows.loc["HR00003", "split"] == rows.loc["HR00599", "split"] == "duplicate"
    assert list(split.twins["recording"]) == ["ptbxl/3"]  # SNR natively, IAVB in the Challenge's file
    assert split.twins.iloc[0][["kept_classes", "other_classes"]].tolist() == ["SNR", "IAVB"]
    used = split.table[split.table["split"].isin(["train", "val", "test"])]
    assert not used["recording"].dropna().duplicated().any()
    assert rows.loc["HR03961", "patient_id"] == rows.loc["7", "patient_id"] == "ptbxl/16193"
    assert rows.loc["HR03961", "split"] == rows.loc["7", "split"] == "val"
    assert pd.isna(rows.loc["HR12083", "patient_id"])
    assert "no patient id is known: 1 records (ptb-xl 1)" in split.notes[0]
    # out of scope (ecg 1: NORM with low voltage; 599: an infarction) kept as negatives, or left out on request
    assert rows.loc["1", "scope"] == rows.loc["599", "scope"] == "out" and rows.loc["1", "split"] == "train"
    assert split.out_of_scope("train") + split.out_of_scope("val") + split.out_of_scope("test") >= 2
    study = split_caches(caches, SplitSpec(0, 7, 8, "excluded"), label_map=load_label_map("strict"))
    assert study.table.set_index("record_id").loc["1", "split"] == "excluded"
    assert len(study.train) + len(study.val) + len(study.test) < len(split.train) + len(split.val) + len(split.test)
