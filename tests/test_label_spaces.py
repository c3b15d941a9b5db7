"""Label spaces as data: the built-in tables, one cache under several spaces, models of any output size,
the Challenge score, Fmax and AUPRC, config files and TensorBoard logs."""

import hashlib
import json

import numpy as np
import pytest
from safetensors.torch import load_file

from ecglens.bundle.meta import read_meta
from ecglens.cli import main
from ecglens.data.cache import EcgCache, build_cache
from ecglens.io import parse_source
from ecglens.labels import (
    DROP,
    challenge_scoring,
    challenge_weights,
    load_label_map,
    load_label_space,
    space_names,
)
from ecglens.metrics import challenge_score, evaluate_predictions, fmax_score

# --- the tables --------------------------------------------------------------------------------------------

BENCHMARK_SIZES = {
    "ptbxl-all": 71,
    "ptbxl-diagnostic": 44,
    "ptbxl-subdiagnostic": 23,
    "ptbxl-superdiagnostic": 5,
    "ptbxl-form": 19,
    "ptbxl-rhythm": 12,
    "challenge2021": 26,
    "cpsc9": 9,
}


@pytest.mark.parametrize("space", sorted(BENCHMARK_SIZES))
def test_each_built_in_space_has_its_published_class_count_and_cites_its_source(space):
    label_map = load_label_space(space)
    assert len(label_map.classes) == BENCHMARK_SIZES[space]
    assert label_map.source and all(row.rationale for row in label_map.rows)
    assert {row.target for row in label_map.rows} - {DROP, "companion"} <= set(label_map.classes)
    assert set(space_names()) == set(BENCHMARK_SIZES)


def test_superdiagnostic_classes_are_sorted_as_the_benchmark_binarises_them():
    assert load_label_space("ptbxl-superdiagnostic").classes == ("CD", "HYP", "MI", "NORM", "STTC")


def test_challenge_weights_are_the_published_symmetric_matrix():
    codes, weights = challenge_weights()
    assert len(codes) == 26 and weights.shape == (26, 26)
    assert np.array_equal(weights, weights.T) and np.all(np.diag(weights) == 1.0)
    sinus, af = codes.index("426783006"), codes.index("164889003")
    assert weights[sinus, af] == 0.25  # sinus rhythm vs atrial fibrillation in evaluation-2021's weights.csv
    assert "713427006|59118001" in codes  # an equivalence pair scored as one class


def test_cpsc9_hash_covers_rows_and_conditions_so_caches_of_older_tables_map_anew():
    label_map = load_label_map("strict")
    assert label_map.space == "cpsc9" and label_map.label == "cpsc9"
    assert load_label_space("cpsc9:seed").name == "seed"
    digest = hashlib.sha256()  # rows only, as before label spaces, plus a row's condition where it has one
    for row in sorted(label_map.rows, key=lambda r: (r.vocabulary, r.code)):
        when = f"\t{row.when}" if row.when else ""
        digest.update(f"{row.vocabulary}\t{row.code}\t{row.target}{when}\n".encode())
    assert label_map.sha256 == digest.hexdigest()
    other = load_label_space("ptbxl-superdiagnostic")
    assert other.sha256 != label_map.sha256


def test_a_user_csv_defines_a_new_space_in_first_named_order(tmp_path):
    path = tmp_path / "rhythm3.csv"
    path.write_text(
        "vocabulary,code,description,target,rationale\n"
        "snomed,426783006,sinus rhythm,SINUS,mine\nsnomed,164889003,atrial fibrillation,AFIB,mine\n"
        "snomed,164890007,atrial flutter,AFIB,mine\nsnomed,17338001,vpb,drop,mine\n"
    )
    space = load_label_space(path)
    assert space.space == "rhythm3" and space.classes == ("SINUS", "AFIB")
    assert space.map([("164890007", None)], "snomed").classes == ("AFIB",)
    assert "no table for scp" in space.map([("NORM", 100.0)], "scp").exclusion
    with pytest.raises(ValueError, match="neither one of"):
        load_label_space(tmp_path / "missing.csv")


def test_challenge_scoring_is_restricted_to_shared_classes_and_says_so():
    cpsc9 = challenge_scoring(load_label_space("cpsc9"))
    assert cpsc9.defined and cpsc9.names == ("SNR", "AF", "IAVB", "LBBB", "RBBB", "PAC", "PVC")
    assert "not comparable" in cpsc9.note
    assert challenge_scoring(load_label_space("challenge2021")).note == "all 26 Challenge 2021 scored classes"
    superdiagnostic = challenge_scoring(load_label_space("ptbxl-superdiagnostic"))
    assert not superdiagnostic.defined and "no sinus-rhythm class" in superdiagnostic.note


# --- PTB-XL records against a hand reading of scp_statements.csv --------------------------------------------

# (ecg_id, task, classes): each record's scp_codes in ptbxl_database.csv read by hand through
# scp_statements.csv as the benchmark aggregates them (every likelihood counts):
HAND_READ = [
    (1, "ptbxl-superdiagnostic", ("NORM",)),  # NORM 100 (NORM); LVOLT form only; SR rhythm only
    (45, "ptbxl-superdiagnostic", ("CD", "HYP")),  # IRBBB (CD), RAO/RAE 50 and RVH 35 (HYP)
    (50, "ptbxl-superdiagnostic", ("CD", "MI")),  # LMI at likelihood 15 still counts (MI), IVCD (CD)
    (103, "ptbxl-superdiagnostic", ("CD", "MI")),  # IMI 15 (MI), LAFB (CD); ABQRS form, STACH rhythm
    (106, "ptbxl-superdiagnostic", ("HYP", "MI")),  # ASMI (MI), LVH 15 (HYP); ABQRS form
    (141, "ptbxl-superdiagnostic", ("CD", "STTC")),  # 1AVB (CD), NDT (STTC)
    (102, "ptbxl-subdiagnostic", ("ISCA", "_AVB")),  # ISCAL -> ISCA, 1AVB -> _AVB
    (103, "ptbxl-rhythm", ("STACH",)),  # STACH, likelihood 0 (rhythm statements carry none)
]


@pytest.mark.slow
@pytest.mark.realdata
def test_superdiagnostic_labels_of_known_ptbxl_records_match_a_hand_reading(shared_data, tmp_path):
    cache_path = tmp_path / "ptbxl"
    build_cache([parse_source(f"ptbxl:{shared_data / 'ptb-xl'}")], cache_path, 100, workers=2, progress=False)
    cache = EcgCache(cache_path)
    row_of = {str(r): k for k, r in enumerate(cache.index["record_id"])}
    checked = 0
    for ecg_id, space, expected in HAND_READ:
        label_map = load_label_space(space)
        labels = cache.labels(label_map)[row_of[str(ecg_id)]]
        assert tuple(np.asarray(label_map.classes)[labels > 0]) == expected, ecg_id
        checked += 1
    assert checked == len(HAND_READ)
    # The same cache still serves its own nine classes, from the stored columns, without preparing again.
    assert cache.labels().shape[1] == 9 and cache.labels(load_label_map("strict")) is cache.labels()


# --- metrics against hand-computed cases and known properties -----------------------------------------------


def test_challenge_score_hand_case_and_its_normalisation():
    scoring = challenge_scoring(load_label_space("cpsc9"))  # SNR (normal), AF, IAVB, ... (7 shared)
    truth = np.zeros((2, 9))
    truth[0, 1] = 1  # record 0: AF
    truth[1, 0] = 1  # record 1: sinus rhythm
    assert challenge_score(truth, truth, scoring) == pytest.approx(1.0)  # perfect
    normal = np.zeros_like(truth)
    normal[:, 0] = 1
    assert challenge_score(truth, normal, scoring) == pytest.approx(0.0)  # always the normal class
    # By hand: decide AF for both records. Record 0: AF->AF 1.0; record 1: labels {SNR}, outputs {AF}: each
    # of the 2 classes in the union gets 1/2 credit, SNR->AF weight 0.25: 0.125. Observed 1.125. Correct:
    # 1 + 1 = 2. Always normal: record 0 AF->SNR 0.5 x 0.25 = 0.125, record 1 SNR->SNR 1: 1.125.
    af = np.zeros_like(truth)
    af[:, 1] = 1
    assert challenge_score(truth, af, scoring) == pytest.approx((1.125 - 1.125) / (2 - 1.125))
    # STD/STE are not scored: deciding them changes nothing.
    noisy = truth.copy()
    noisy[:, 7:] = 1
    assert challenge_score(truth, noisy, scoring) == pytest.approx(1.0)


def test_fmax_and_auprc_hand_cases_and_properties():
    truth = np.array([[1, 0], [0, 1], [1, 1], [0, 1]])
    assert fmax_score(truth, truth.astype(float))[0] == pytest.approx(1.0)
    scores = np.array([[0.9, 0.2], [0.3, 0.6], [0.8, 0.4], [0.1, 0.7]])
    # By hand at t = 0.35: calls {0}, {1}, {0,1}, {1}: every call right, every label found but record 2's
    # class 1 (0.4 >= 0.35 is found too): precision 1, recall 1 -> Fmax 1 at some t in (0.3, 0.4].
    value, threshold = fmax_score(truth, scores)
    assert value == pytest.approx(1.0) and 0.3 < threshold <= 0.4
    result = evaluate_predictions(truth, scores, np.array([0.5, 0.5]), class_names=("A", "B"), n_bootstrap=0)
    assert result.per_class[0].auprc == pytest.approx(1.0)
    # Class B: positives score 0.6, 0.4, 0.7, the negative 0.2: ranking is perfect, so AP is 1 as well.
    assert result.macro_auprc == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    random_truth = rng.random((4000, 3)) < 0.2
    random = evaluate_predictions(random_truth, rng.random((4000, 3)), np.full(3, 0.5), n_bootstrap=0)
    assert all(abs(m.auprc - 0.2) < 0.03 for m in random.per_class)  # random scores: AUPRC ~ prevalence
    assert all(abs(m.auc - 0.5) < 0.05 for m in random.per_class)


def test_a_threshold_far_from_its_calibrated_meaning_is_flagged():
    rng = np.random.default_rng(1)
    truth = (rng.random((2000, 1)) < 0.5).astype(float)
    # Underconfident scores: every record scores 0.1-0.2, yet half are positive; a threshold of 0.13 looks
    # like "13 % likely" but the records scored near it are about 50 % positive.
    scores = np.where(truth > 0, 0.15, 0.12) + rng.normal(0, 0.01, truth.shape)
    result = evaluate_predictions(truth, np.clip(scores, 0, 1), np.array([0.13]), class_names=("X",), n_bootstrap=0)
    assert any("not a calibrated probability" in flag for flag in result.per_class[0].flags)
    calibrated = evaluate_predictions(
        truth, np.where(truth > 0, 0.95, 0.05), np.array([0.5]), class_names=("X",), n_bootstrap=0
    )
    assert not calibrated.per_class[0].flags


# --- end to end: any label space, config files, TensorBoard -------------------------------------------------


def test_a_run_repeats_exactly_from_its_saved_config_and_logs_to_tensorboard(tiny_run, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = tmp_path / "first"
    assert (
        main(
            [
                "-q",
                "train",
                "--data",
                str(tiny_run.cache),
                "--out",
                str(first),
                "--model",
                "resnet_tiny",
                "--epochs",
                "2",
                "--batch-size",
                "8",
                "--label-space",
                "challenge2021",
                "--tensorboard",
            ]
        )
        == 0
    )
    meta = read_meta(first / "best")
    assert meta.class_names == load_label_space("challenge2021").classes and meta.model.n_classes == 26
    assert meta.label_space.space == "challenge2021" and meta.label_space.rows  # the tables travel
    stored = json.loads((first / "best" / "bundle.json").read_text())["label_space"]
    assert stored["space"] == "challenge2021" and len(stored["rows"]) == len(meta.label_space.rows)
    events = EventAccumulator(str(first / "tensorboard"))
    events.Reload()
    assert {"loss/train", "loss/val", "val/macro_auprc", "val/fmax", "lr"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2]
    again = tmp_path / "again"
    assert main(["-q", "train", "--config", str(first / "config.json"), "--out", str(again)]) == 0
    a, b = load_file(first / "best" / "model.safetensors"), load_file(again / "best" / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert (first / "log.csv").read_text().split("\n")[0] == (again / "log.csv").read_text().split("\n")[0]


def test_config_files_take_the_flags_names_and_flags_override_them(tiny_run, tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'data = ["{tiny_run.cache}"]\nmodel = "resnet_tiny"\nepochs = 3\nbatch-size = 8\n'
        'label-space = "cpsc9"\nleads = "I,II,V1"\n'
    )
    out = tmp_path / "run"
    assert main(["-q", "train", "--config", str(toml), "--out", str(out), "--epochs", "1"]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["epochs"] == 1 and saved["batch_size"] == 8 and saved["lead_names"] == ["I", "II", "V1"]
    assert read_meta(out / "best").lead_names == ("I", "II", "V1")
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 1\nlearning_rate: 0.1\n")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "x"), "--data", str(tiny_run.cache)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown option(s) learning_rate" in err
    assert main(["train", "--config", str(toml), "--out", str(tmp_path / "y"), "--label-space", "nope"]) == 1
    assert "label space 'nope'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ptbxl_cache(tmp_path_factory):
    from conftest import shared_data_dir

    root = shared_data_dir()
    if root is None or not (root / "ptb-xl").is_dir():
        pytest.skip("shared PTB-XL sample not found (../shared/data or $ECGLENS_DATA)")
    path = tmp_path_factory.mktemp("ptbxl") / "cache"
    build_cache([parse_source(f"ptbxl:{root / 'ptb-xl'}")], path, 100, workers=2, progress=False)
    return path


@pytest.mark.slow
@pytest.mark.realdata
def test_superdiagnostic_end_to_end_has_five_outputs_everywhere(ptbxl_cache, shared_data, tmp_path, capsys):
    import onnx

    # The sample holds folds 1-8: the default validation fold 9 is empty, and that is one line before training.
    assert main(["train", "--data", str(ptbxl_cache), "--out", str(tmp_path / "x"), "--model", "resnet_tiny"]) == 1
    assert "validation split is empty: fold 9" in capsys.readouterr().err
    run = tmp_path / "run"
    assert (
        main(
            [
                "-q",
                "train",
                "--data",
                str(ptbxl_cache),
                "--out",
                str(run),
                "--label-space",
                "ptbxl-superdiagnostic",
                "--model",
                "resnet_tiny",
                "--epochs",
                "1",
                "--val-fold",
                "7",
                "--test-fold",
                "8",
            ]
        )
        == 0
    )
    bundle = run / "best"
    classes = ["CD", "HYP", "MI", "NORM", "STTC"]
    assert list(read_meta(bundle).class_names) == classes
    assert (
        main(
            [
                "-q",
                "evaluate",
                "--checkpoint",
                str(bundle),
                "--data",
                str(ptbxl_cache),
                "--bootstrap",
                "20",
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["results"][0]
    assert [m["name"] for m in evaluation["per_class"]] == classes
    assert evaluation["fmax"] is not None and evaluation["challenge_score"] is None
    assert "no sinus-rhythm class" in evaluation["challenge_note"]
    assert (tmp_path / "eval" / "reliability.png").stat().st_size > 10_000
    assert "Fmax" in (tmp_path / "eval" / "evaluation.html").read_text()
    assert main(["-q", "export", "onnx", "--checkpoint", str(bundle)]) == 0
    assert onnx.load(str(bundle / "model.onnx")).graph.output[0].type.tensor_type.shape.dim[1].dim_value == 5
    record = shared_data / "ptb-xl" / "records100" / "00000" / "00001_lr.hea"
    for engine in ("torch", "onnx"):
        out = tmp_path / f"pred_{engine}"
        assert (
            main(["-q", "predict", "--checkpoint", str(bundle), "--engine", engine, str(record), "--out", str(out)])
            == 0
        )
        header = (out / "predictions.csv").read_text().splitlines()[0].split(",")
        assert header[3:8] == classes
    assert (
        main(
            [
                "-q",
                "explain",
                "gradcam",
                "--checkpoint",
                str(bundle),
                "--data",
                str(ptbxl_cache),
                "--n",
                "1",
                "--out",
                str(tmp_path / "cam"),
            ]
        )
        == 0
    )
    cams = json.loads((tmp_path / "cam" / "gradcam.json").read_text())
    assert cams and {item["class"] for item in cams} <= set(classes)
