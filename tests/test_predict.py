"""Prediction on new files: every input format agrees, lead order is read, bad files are listed, ONNX agrees."""

import json

import numpy as np
import pytest

import ecglens
from conftest import known_signal, write_bad_corpus, write_challenge_mat, write_cpsc_mat, write_wfdb
from ecglens.cli import main
from ecglens.leads import LEAD_NAMES
from ecglens.predict import predict_files, quality_warnings


@pytest.fixture
def bundle(tiny_run):
    return tiny_run.bundle


@pytest.fixture
def signal():
    return known_signal(2500, seed=42)  # 5 s at 500 Hz, mV, 1-uV steps


def _write_edf(path, signal, rate):
    import pyedflib

    writer = pyedflib.EdfWriter(str(path), len(LEAD_NAMES), file_type=pyedflib.FILETYPE_EDFPLUS)
    headers = []
    for name in LEAD_NAMES:
        headers.append(
            {
                "label": f"ECG {name}",
                "dimension": "uV",
                "sample_frequency": rate,
                "physical_max": 5000.0,
                "physical_min": -5000.0,
                "digital_max": 32767,
                "digital_min": -32768,
            }
        )
    writer.setSignalHeaders(headers)
    writer.writeSamples([row * 1000.0 for row in signal])
    writer.close()


def test_every_format_gives_the_same_prediction(bundle, signal, tmp_path):
    write_wfdb(tmp_path, "wfdb", signal, fs=500)
    write_challenge_mat(tmp_path, "challenge", signal)
    write_cpsc_mat(tmp_path, "A0001", signal)
    np.savetxt(tmp_path / "header.csv", signal.T, delimiter=",", header=",".join(LEAD_NAMES), comments="")
    order = [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6]
    np.savetxt(tmp_path / "plain.csv", signal[order].T, delimiter=",")
    np.save(tmp_path / "array.npy", signal.T)
    _write_edf(tmp_path / "record.edf", signal, 500)
    predictor = ecglens.load_bundle(bundle)
    reference = predictor.predict(signal, 500, LEAD_NAMES)
    paths = [tmp_path / n for n in ("wfdb.hea", "challenge.hea", "A0001.mat", "header.csv", "array.npy", "record.edf")]
    predictions, issues = predict_files(predictor, paths, sampling_rate_hz=500, progress=False)
    assert issues == [] and len(predictions) == 6
    plain, _ = predict_files(
        predictor,
        [tmp_path / "plain.csv"],
        sampling_rate_hz=500,
        lead_order=tuple(LEAD_NAMES[i] for i in order),
        progress=False,
    )
    for prediction in [*predictions, *plain]:
        for name, p in reference.probabilities.items():
            assert prediction.probabilities[name] == pytest.approx(p, abs=2e-4), (prediction.source, name)


def test_shuffled_leads_in_a_file_give_the_same_prediction(bundle, signal, tmp_path):
    order = np.random.default_rng(0).permutation(12)
    write_wfdb(tmp_path, "shuffled", signal[order], lead_names=[LEAD_NAMES[i].upper() for i in order])
    predictor = ecglens.load_bundle(bundle)
    shuffled, _ = predict_files(predictor, [tmp_path / "shuffled.hea"], progress=False)
    reference = predictor.predict(signal[order], 500, [LEAD_NAMES[i] for i in order])
    direct = predictor.predict(signal, 500)
    for name in direct.probabilities:
        assert shuffled[0].probabilities[name] == pytest.approx(direct.probabilities[name], abs=1e-6)
        assert reference.probabilities[name] == pytest.approx(direct.probabilities[name], abs=1e-6)
    assert json.loads(direct.to_json())["decisions"] == list(direct.decisions)


def test_bad_files_are_listed_and_never_stop_the_batch(bundle, tmp_path):
    expected = write_bad_corpus(tmp_path)
    (tmp_path / "notes.txt").write_text("not an ECG")
    predictions, issues = predict_files(ecglens.load_bundle(bundle), [tmp_path, tmp_path / "notes.txt"], progress=False)
    assert [p.record_id for p in predictions] == ["good"]
    reasons = {issue.path.rsplit("/", 1)[-1].split(".")[0]: issue.reason for issue in issues}
    assert set(expected) | {"notes"} == set(reasons)
    assert "unsupported file type .txt" in reasons["notes"]


def test_quality_warnings():
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 0.3, (12, 5000))
    signal[3] = 0.0
    warnings = quality_warnings(signal, 500, LEAD_NAMES, 10)
    assert warnings == ["flat lead(s): aVR"]
    assert any(
        "microvolts" in w for w in quality_warnings(signal * 1000 + rng.normal(0, 1, signal.shape), 500, LEAD_NAMES, 10)
    )
    assert any("short record" in w for w in quality_warnings(signal[:, :1000] + 0.1, 500, LEAD_NAMES, 10))
    clipped = np.clip(rng.normal(0, 1, (12, 5000)), -1, 1)
    assert any("saturation" in w for w in quality_warnings(clipped, 500, LEAD_NAMES, 10))


@pytest.mark.slow
def test_onnx_export_agrees_with_pytorch(bundle, tmp_path, signal, capsys):
    write_wfdb(tmp_path, "r1", signal, fs=500)
    write_wfdb(tmp_path, "r2", known_signal(7000, seed=3), fs=500)  # another length: dynamic axis
    assert main(["export", "onnx", "--checkpoint", bundle]) == 0
    out = tmp_path / "out"
    for engine in ("torch", "onnx"):
        assert (
            main(["predict", "--checkpoint", bundle, str(tmp_path), "--engine", engine, "--out", str(out / engine)])
            == 0
        )
    rows = {
        engine: [json.loads(line) for line in (out / engine / "predictions.jsonl").read_text().splitlines()]
        for engine in ("torch", "onnx")
    }
    assert len(rows["torch"]) == 2
    for a, b in zip(rows["torch"], rows["onnx"], strict=True):
        for name in a["probabilities"]:
            assert abs(a["probabilities"][name] - b["probabilities"][name]) < 1e-4


def test_predict_cli_with_explanation(bundle, tmp_path, signal, capsys):
    write_wfdb(tmp_path, "one", signal, fs=500)
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                bundle,
                str(tmp_path / "one.hea"),
                "--out",
                str(tmp_path / "o"),
                "--explain",
                "gradcam",
            ]
        )
        == 0
    )
    assert list((tmp_path / "o" / "figures").glob("one_*_gradcam.png"))
    assert (tmp_path / "o" / "predictions.csv").read_text().startswith("record_id,source,status,SNR")


def test_predict_reports_the_labels_a_file_carries(bundle, signal, tmp_path):
    write_challenge_mat(tmp_path, "A1", signal, dx="164889003")  # AF in the Challenge's SNOMED codes
    write_wfdb(tmp_path, "W1", signal, fs=500)  # no diagnoses in the header
    predictions, _ = predict_files(ecglens.load_bundle(bundle), [tmp_path], progress=False)
    truth = {p.record_id: p.true_labels for p in predictions}
    assert truth == {"A1": ("AF",), "W1": None}


@pytest.mark.realdata
def test_a_ptbxl_file_keeps_the_id_the_cache_gives_it(bundle, shared_data, tmp_path):
    from ecglens.io import read_record
    from ecglens.io.ptbxl import scan_ptbxl

    path = shared_data / "ptb-xl" / "records100" / "00000" / "00001_lr.hea"
    refs, _ = scan_ptbxl(shared_data / "ptb-xl", 100)
    assert read_record(path).record_id == "1" == next(r.record_id for r in refs if "00001_lr" in r.path)


def test_a_class_that_is_not_validated_is_never_decided(tiny_run, tmp_path, signal):
    """The tiny bundle saw no STE positive: STE is not validated. With its threshold forced to 0 it would be
    decided for every record; predict (PyTorch and ONNX) and serve show its probability and never decide it."""
    import shutil

    from fastapi.testclient import TestClient

    from ecglens.serve import ServeConfig, create_app

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_run.bundle, bundle)
    meta = json.loads((bundle / "bundle.json").read_text())
    unknown = dict(meta["not_validated"])
    assert "STE" in unknown and "0 training" in unknown["STE"]
    k = meta["class_names"].index("STE")
    meta["thresholds"][k] = 0.0
    (bundle / "bundle.json").write_text(json.dumps(meta))
    (tmp_path / "in").mkdir()
    write_wfdb(tmp_path / "in", "r1", signal, fs=500)
    assert main(["export", "onnx", "--checkpoint", str(bundle)]) == 0
    for engine in ("torch", "onnx"):
        assert (
            main(
                [
                    "predict",
                    "--checkpoint",
                    str(bundle),
                    str(tmp_path / "in"),
                    "--engine",
                    engine,
                    "--out",
                    str(tmp_path / engine),
                ]
            )
            == 0
        )
        (row,) = [json.loads(line) for line in (tmp_path / engine / "predictions.jsonl").read_text().splitlines()]
        assert "STE" not in row["decisions"] and row["probabilities"]["STE"] >= 0.0
        assert row["not_validated"]["STE"] == unknown["STE"]
    with TestClient(create_app(ServeConfig(str(bundle), "cpu")), base_url="http://127.0.0.1") as client:
        body = client.post(
            "/api/predict",
            files=[
                ("files", ("r1.hea", (tmp_path / "in" / "r1.hea").read_bytes())),
                ("files", ("r1.dat", (tmp_path / "in" / "r1.dat").read_bytes())),
            ],
        ).json()
    assert "STE" not in body["decisions"] and "STE" in body["not_validated"]
    # with the class validated (as an older bundle without the field), threshold 0 decides it: the test can fail
    del meta["not_validated"]
    (bundle / "bundle.json").write_text(json.dumps(meta))
    assert "STE" in ecglens.load_bundle(str(bundle)).predict(signal, 500).decisions


def test_a_folders_dataset_tables_are_passed_over_never_read_as_records(tmp_path):
    from ecglens.predict import find_record_files

    write_cpsc_mat(tmp_path, "A0001", known_signal(5000) * 1000)
    (tmp_path / "REFERENCE.csv").write_text("Recording,First_label\nA0001,1\n")
    (tmp_path / "ludb.csv").write_text("ID,Rhythms\n1,Sinus rhythm\n")
    (tmp_path / "other.csv").write_text("I,II\n0.1,0.2\n")  # a CSV record stays a record
    assert [p.name for p in find_record_files([tmp_path])] == ["A0001.mat", "other.csv"]


def test_noise_is_not_interpretable_with_no_measurements_and_no_decision(bundle, signal, tmp_path, capsys):
    """Gaussian noise (12 leads, 0.3 mV) was measured (HR 92, PR 188, QRS 96) and decided (AF 0.70)."""
    import pandas as pd

    pytest.importorskip("neurokit2", reason="measurements need pip install 'ecglens[waves]'")
    noise = np.random.default_rng(7).normal(0, 0.3, (12, 5000))
    refused = ecglens.load_bundle(bundle).predict(noise, 500)
    assert refused.status == "not interpretable" and refused.decisions == () and refused.probabilities == {}
    assert any("no repeatable beats" in reason for reason in refused.reasons), refused.reasons
    write_wfdb(tmp_path, "noise", noise, fs=500)
    write_wfdb(tmp_path, "ecg", signal, fs=500)
    out = tmp_path / "out"
    assert main(["-q", "predict", str(tmp_path / "noise.hea"), str(tmp_path / "ecg.hea"), "--measurements",
                 "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "2 predicted (1 not interpretable: no measurements, no decisions), 0 unreadable" in printed
    rows = {r["record_id"]: r for r in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}
    assert rows["noise"]["status"] == "not interpretable" and rows["noise"]["decisions"] == []
    assert rows["noise"]["measurements"] is None and "no repeatable beats" in " ".join(rows["noise"]["reasons"])
    assert rows["ecg"]["status"] == "ok" and rows["ecg"]["measurements"]["heart_rate_bpm"] is not None
    table = pd.read_csv(out / "predictions.csv").set_index("record_id")
    assert table.loc["noise", "status"] == "not interpretable"
    assert "no repeatable beats" in table.loc["noise", "warnings"]


def test_a_heart_rate_warning_reaches_the_predictions_warnings(bundle, tmp_path, monkeypatch):
    pytest.importorskip("neurokit2", reason="measurements need pip install 'ecglens[waves]'")
    import pandas as pd

    from ecglens.synth.beats import regular_rhythm
    from ecglens.waves import delineate

    monkeypatch.setattr(delineate, "SHORT_REFRACTORY_S", delineate.REFRACTORY_S)  # the detector left at 110 bpm
    monkeypatch.setattr(delineate, "DEFAULT_METHOD", "prominence")  # (the U-Net finds all 220 beats itself)
    write_wfdb(tmp_path, "fast", np.round(regular_rhythm(220, 10.0, 500.0), 3), fs=500)
    assert main(["-q", "predict", str(tmp_path / "fast.hea"), "--measurements", "--out", str(tmp_path / "o")]) == 0
    row = json.loads((tmp_path / "o" / "predictions.jsonl").read_text())
    assert any(w.startswith("heart rate uncertain: 110 bpm") for w in row["warnings"]), row["warnings"]
    assert "heart rate uncertain" in pd.read_csv(tmp_path / "o" / "predictions.csv").loc[0, "warnings"]
