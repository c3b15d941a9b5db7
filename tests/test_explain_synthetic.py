"""Explanations of a model trained on the synthetic cohort, where the evidence is known."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from ecglens.classes import CLASS_INDEX, CLASS_NAMES
from ecglens.cli import main
from ecglens.data.cache import build_cache, open_caches
from ecglens.explain import gradcam
from ecglens.explain.inputs import split_inputs
from ecglens.explain.records import probabilities_of
from ecglens.io import parse_source
from ecglens.predict import Predictor
from ecglens.preprocess import LengthPolicy
from ecglens.synth.cohort import SynthConfig, write_cohort
from ecglens.train.loop import TrainConfig, fit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    weights = dict.fromkeys(CLASS_NAMES, 0.0) | {"SNR": 1.0, "PVC": 1.5, "AF": 0.5}
    config = SynthConfig(n_records=360, sampling_rate_hz=100, seed=7, multi_label_rate=0.0, class_weights=weights)
    write_cohort(config, root / "records", workers=2, progress=False)
    build_cache(
        [parse_source(f"synthetic=challenge:{root / 'records'}")], root / "cache", 100, workers=1, progress=False
    )
    train_config = TrainConfig(model="resnet_tiny", epochs=8, lr=3e-3, seed=0, policy=LengthPolicy("crop", 10.0))
    result = fit([root / "cache"], root / "run", train_config, progress=False)
    return result.best_bundle, root / "cache"


def test_gradcam_peak_falls_inside_the_pvc_beat(trained):
    bundle, cache = trained
    loaded = Predictor(bundle, device="cpu")
    caches = open_caches([cache], loaded.meta.sampling_rate_hz)
    pvc = CLASS_INDEX["PVC"]
    hits, total, chance = 0, 0, []
    inputs = split_inputs(caches, loaded.meta, "test") + split_inputs(caches, loaded.meta, "val")
    for item, probabilities in zip(inputs, probabilities_of(loaded.model, inputs), strict=True):
        if item.labels[pvc] < 0.5 or probabilities[pvc] < 0.5:
            continue
        cam = gradcam(loaded.model, torch.from_numpy(item.signal)[None], pvc)[0, 0]
        mask = item.evidence["PVC"].any(axis=0)
        # The PVC beat: its QRS (the mask) widened by 150 ms each side, Grad-CAM's resolution being
        # 32 input samples (320 ms at 100 Hz) at the 4th stage.
        beat = np.convolve(mask.astype(float), np.ones(31), "same") > 0
        total += 1
        hits += bool(beat[int(np.argmax(cam))])
        chance.append(beat.mean())  # where a peak at a random time would land
    assert total >= 5
    # Most peaks land in the beat, far more often than at random (chance: the beat's share of the record,
    # about 0.1). Training seeds 0-3 give 0.67-0.96 of peaks in the beat.
    assert hits / total > 0.5, (hits, total)
    assert binomtest(hits, total, float(np.mean(chance)), alternative="greater").pvalue < 1e-6


def test_explain_commands_write_their_outputs(trained, tmp_path, capsys):
    bundle, cache = trained
    common = ["--checkpoint", bundle, "--data", str(cache), "--out", str(tmp_path)]
    assert main(["explain", "gradcam", *common, "--n", "2"]) == 0
    assert (
        main(["explain", "guided-gradcam", *common, "--n", "1", "--class", "PVC", "--format", "svg", "--style", "bw"])
        == 0
    )
    assert main(["explain", "shap", *common, "--n", "1", "--background", "8", "--n-samples", "2"]) == 0
    assert main(["explain", "lead-shapley", *common, "--n", "1", "--sampled", "4", "--class", "PVC"]) == 0
    assert (
        main(
            [
                "explain",
                "population",
                *common,
                "--n",
                "8",
                "--background",
                "8",
                "--n-samples",
                "2",
                "--group-by",
                "true",
                "--check-records",
                "1",
            ]
        )
        == 0
    )
    assert main(["explain", "faithfulness", *common, "--n", "4", "--background", "8", "--steps", "4"]) == 0
    assert len(list(tmp_path.glob("*_gradcam.png"))) >= 2 and list(tmp_path.glob("*_shap.png"))
    assert list(tmp_path.glob("*_PVC_guided-gradcam.svg"))
    population = json.loads((tmp_path / "population.json").read_text())
    rows = [row for row, n in zip(population["views"]["signed"]["shares"], population["counts"], strict=True) if n]
    assert rows and all(abs(sum(abs(v) for v in row) - 1) < 1e-6 for row in rows)
    assert population["grouping"] == "true" and population["shapley_agreement"]["n_records"] == 1
    assert "rank agreement with exact lead Shapley" in capsys.readouterr().out
    faith = json.loads((tmp_path / "faithfulness.json").read_text())
    assert {row["method"] for row in faith["rows"]} == {"gradcam", "shap"}
    assert (tmp_path / "population.png").is_file() and (tmp_path / "faithfulness_curves.png").is_file()


def test_a_synthetic_only_bundle_says_so_on_real_files_and_shows_synthetic_examples(trained, tmp_path):
    from conftest import known_signal, write_wfdb
    from ecglens.bundle.meta import SYNTHETIC_WARNING, read_meta
    from ecglens.predict import predict_files
    from ecglens.serve.examples import make_examples

    bundle, cache = trained
    assert read_meta(bundle).training_data.synthetic_only
    predictor = Predictor(bundle, device="cpu")
    real = write_wfdb(tmp_path, "real", known_signal(1000), fs=100)  # no .evidence.npz: not from the cohort
    synthetic = next(Path(str(cache)).parent.joinpath("records").glob("*.hea"))
    predictions, _ = predict_files(predictor, [real, synthetic], progress=False)
    assert predictions[0].warnings[0] == SYNTHETIC_WARNING
    assert SYNTHETIC_WARNING not in predictions[1].warnings
    examples = make_examples(read_meta(bundle))
    assert examples and all(e.source == "synthetic" and e.description.startswith("synthetic") for e in examples)
