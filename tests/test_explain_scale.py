"""Explanations at scale: shards spread over torchrun processes and resumed after a kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ecglens.commands.explain import SHARDS_DIR, run_faithfulness, run_population
from ecglens.explain.shards import job_folder, map_shards


def _compute(calls: list[int], fail_at: int | None = None):
    def compute(first, items):
        if first == fail_at:
            raise KeyboardInterrupt  # a kill in the middle of the job
        calls.append(first)
        return {"value": np.asarray(items, np.float64) * 2, "first": np.full(len(items), first)}

    return compute


def test_a_killed_job_continues_from_its_finished_shards(tmp_path: Path) -> None:
    items = list(range(50))
    whole = map_shards(_compute([]), items, shard_size=8, progress=False)
    job = {"name": "test"}
    with pytest.raises(KeyboardInterrupt):
        map_shards(_compute([], fail_at=24), items, tmp_path, job, shard_size=8, progress=False)
    assert sorted(p.name for p in job_folder(tmp_path, job).glob("*.npz")) == ["00000.npz", "00001.npz", "00002.npz"]
    calls: list[int] = []
    resumed = map_shards(_compute(calls), items, tmp_path, job, shard_size=8, progress=False)
    assert calls == [24, 32, 40, 48]  # only the missing shards
    for name in whole:
        np.testing.assert_array_equal(resumed[name], whole[name])
    other: list[int] = []
    map_shards(_compute(other), items, tmp_path, {"name": "another"}, shard_size=8, progress=False)
    assert len(other) == 7  # a different job never reads these shards


def test_a_damaged_shard_is_computed_again(tmp_path: Path) -> None:
    items = list(range(20))
    map_shards(_compute([]), items, tmp_path, {"j": 1}, shard_size=8, progress=False)
    (job_folder(tmp_path, {"j": 1}) / "00001.npz").write_bytes(b"PK\x03\x04 truncated")
    calls: list[int] = []
    again = map_shards(_compute(calls), items, tmp_path, {"j": 1}, shard_size=8, progress=False)
    assert calls == [8] and again["value"].tolist() == [2.0 * i for i in items]


def test_population_with_shards_equals_in_memory_and_cleans_up(tiny_run, tmp_path: Path) -> None:
    from ecglens.data.cache import open_caches
    from ecglens.explain.inputs import split_inputs, training_background
    from ecglens.explain.population import population_importance
    from ecglens.predict import Predictor

    predictor = Predictor(tiny_run.bundle, "cpu")
    meta = predictor.meta
    caches = open_caches([tiny_run.cache], meta.sampling_rate_hz)
    background = training_background(caches, meta, 10)
    eager = split_inputs(caches, meta, "train", 20)
    lazy = split_inputs(caches, meta, "train", 20, lazy=True)
    assert [i.record_id for i in eager] == lazy.record_ids
    options = {"progress": False, "grouping": "true", "first_samples": 2, "target_error": 0.01, "max_samples": 4}
    plain = population_importance(predictor.model, eager, background, meta.class_names, meta.lead_names, **options)
    sharded = population_importance(
        predictor.model,
        lazy,
        background,
        meta.class_names,
        meta.lead_names,
        store=tmp_path / "s",
        job={"k": 1},
        **options,
    )
    assert plain.samples == sharded.samples == 4  # a second round was drawn, from shards too
    np.testing.assert_array_equal(sharded.signed, plain.signed)
    np.testing.assert_array_equal(sharded.absolute_se, plain.absolute_se)
    assert sharded.counts == plain.counts
    run = run_population(tiny_run.bundle, [tiny_run.cache], 20, "train", 10, 2, tmp_path / "out", "cpu", progress=False)
    assert run.result is not None and not (tmp_path / "out" / SHARDS_DIR).exists()  # removed once written


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(tiny_run, tmp_path: Path) -> None:
    """``torchrun --nproc-per-node 2`` (gloo on CPU) writes the single-process result, for population SHAP and
    faithfulness; only rank 0 prints."""
    torch.set_num_threads(1)  # the same per-record arithmetic as the 1-thread ranks
    try:
        single = run_population(
            tiny_run.bundle, [tiny_run.cache], 20, "train", 10, 2, tmp_path / "one", "cpu", progress=False
        )
        faith = run_faithfulness(
            tiny_run.bundle, [tiny_run.cache], 20, ("gradcam", "shap"), 4, 10, tmp_path / "one", "cpu", progress=False
        )
    finally:
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [
        "--checkpoint",
        tiny_run.bundle,
        "--data",
        str(tiny_run.cache),
        "--out",
        str(tmp_path / "two"),
        "--device",
        "cpu",
        "--background",
        "10",
    ]
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "ecglens.cli",
        "-q",
        "--threads",
        "1",
        "explain",
    ]
    population = ["population", *common, "--n-records", "20", "--split", "train", "--n-samples", "2"]
    done = subprocess.run([*torchrun, *population], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("records in") == 1  # rank 0 alone reports
    done = subprocess.run(
        [*torchrun, "faithfulness", *common, "--n-records", "20", "--steps", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    two = json.loads((tmp_path / "two" / "population.json").read_text())
    np.testing.assert_allclose(
        np.asarray(two["views"]["signed"]["values"], float), single.result.signed, rtol=1e-12, atol=0
    )
    assert two["counts"] == list(single.result.counts)
    rows = json.loads((tmp_path / "two" / "faithfulness.json").read_text())["rows"]
    assert len(rows) == len(faith.result.rows) > 0
    for row, expected in zip(rows, faith.result.rows, strict=True):
        assert row["method"] == expected.method and row["n"] == expected.n
        np.testing.assert_allclose(row["deletion"], expected.deletion, rtol=1e-12)
        np.testing.assert_allclose(row["sanity_rank_correlation"], expected.sanity_rank_correlation, rtol=1e-12)
    assert not (tmp_path / "two" / SHARDS_DIR).exists()
