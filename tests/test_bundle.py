"""Bundles: evaluation never rewrites them, thresholds change only on purpose and say where they came from,
older bundles still load, nothing is unpickled."""

import json

import pytest
import torch

from ecglens.bundle.meta import BundleError, ThresholdOrigin, read_meta, store_thresholds
from ecglens.bundle.weights import load_model
from ecglens.cli import main
from ecglens.data import SplitSpec


def _copy(bundle, tmp_path):
    import shutil

    return shutil.copytree(bundle, tmp_path / "bundle")


def test_evaluate_leaves_the_bundle_unchanged(tiny_run, tmp_path, capsys):
    bundle = _copy(tiny_run.bundle, tmp_path)
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(bundle),
                "--data",
                str(tiny_run.cache),
                "--bootstrap",
                "5",
                "--out",
                str(tmp_path / "evaluation"),
            ]
        )
        == 0
    )
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
    assert (tmp_path / "evaluation" / "evaluation.json").is_file()
    assert "bundle is unchanged" in capsys.readouterr().out


def test_store_thresholds_writes_them_with_their_origin(tiny_run, tmp_path):
    bundle = _copy(tiny_run.bundle, tmp_path)
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(bundle),
                "--data",
                str(tiny_run.cache),
                "--bootstrap",
                "5",
                "--out",
                str(tmp_path / "evaluation"),
                "--store-thresholds",
            ]
        )
        == 0
    )
    meta = read_meta(bundle)
    evaluation = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert list(meta.thresholds) == evaluation["thresholds"]
    assert meta.threshold_origin.method == "F1-optimal" and meta.threshold_origin.split == "val"
    assert meta.threshold_origin.caches == (str(tiny_run.cache),) and meta.threshold_origin.n_records > 0
    assert "test" in meta.metrics


def test_training_records_its_thresholds_origin_and_split(tiny_run):
    meta = read_meta(tiny_run.bundle)
    assert meta.threshold_origin.method == "F1-optimal"
    assert meta.threshold_origin.n_records == meta.training_data.n_val
    assert meta.split == SplitSpec(0, 9, 10) and meta.training_data.datasets == ("data",)
    assert "F1-optimal on the val split of data" in meta.threshold_origin.describe()


def test_store_thresholds_checks_the_count(tiny_run, tmp_path):
    bundle = _copy(tiny_run.bundle, tmp_path)
    with pytest.raises(BundleError, match="3 thresholds for 9 classes"):
        store_thresholds(bundle, (0.5, 0.5, 0.5), ThresholdOrigin())


def test_version_1_bundles_still_load(tiny_run, tmp_path):
    bundle = _copy(tiny_run.bundle, tmp_path)
    data = json.loads((bundle / "bundle.json").read_text())
    split = data["training_data"].pop("split")
    data["training_data"].update(
        seed=split["seed"], val_fold=7, test_fold=8, train_config=data["training_data"].pop("config")
    )
    del data["threshold_origin"]
    data["bundle_version"] = 1
    (bundle / "bundle.json").write_text(json.dumps(data))
    _, meta = load_model(bundle)
    assert meta.split == SplitSpec(0, 7, 8)
    assert meta.threshold_origin.method == "unknown" and "older ecglens" in meta.threshold_origin.describe()


def test_bundle_never_unpickles_and_validates(tiny_run, tmp_path):
    bundle = _copy(tiny_run.bundle, tmp_path)
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["thresholds"] = [0.5]
    (bundle / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="thresholds"):
        load_model(bundle)
    (bundle / "bundle.json").write_text("[1, 2]")
    with pytest.raises(BundleError, match="JSON object"):
        load_model(bundle)
    bundle = _copy(tiny_run.bundle, tmp_path / "again")
    torch.save({"evil": 1}, bundle / "model.safetensors")  # a pickle where safetensors belongs
    with pytest.raises(BundleError, match="safetensors"):
        load_model(bundle)
