"""A miniature reproduce on two synthetic sources posing as CPSC and PTB-XL (different rates and noise)."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from ecglens.classes import CLASS_NAMES
from ecglens.cli import main
from ecglens.synth.cohort import SynthConfig, write_cohort

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    write_cohort(
        SynthConfig(n_records=100, sampling_rate_hz=500, seed=1, snr_db=25), root / "a", workers=1, progress=False
    )
    write_cohort(
        SynthConfig(n_records=100, sampling_rate_hz=250, seed=2, snr_db=12), root / "b", workers=1, progress=False
    )
    return root


def _args(sources, out):
    return [
        "reproduce",
        "--quick",
        "--cpsc",
        f"challenge:{sources / 'a'}",
        "--ptbxl",
        f"challenge:{sources / 'b'}",
        "--out",
        str(out),
        "--epochs",
        "2",
        "--model",
        "resnet_tiny",
    ]


def _tables(out):
    return {name: pd.read_csv(out / f"{name}.csv") for name in ("table2", "table3")}


def test_reproduce_fills_the_tables_and_resumes_after_a_kill(sources, tmp_path):
    clean = tmp_path / "clean"
    assert main(_args(sources, clean)) == 0
    tables = _tables(clean)
    assert list(tables["table2"]["class"]) == [*CLASS_NAMES, "average"]
    assert tables["table3"].shape == (10, 1 + 3 * 6)
    # like with like: Table 3's Original column is Original on CPSC's test split, as in the study's Table 3
    for metric in ("auc", "f1"):
        pd.testing.assert_series_equal(
            tables["table3"][f"Original {metric}"], tables["table2"][f"CPSC {metric}"], check_names=False
        )
    summary = json.loads((clean / "results.json").read_text())
    # Every empty cell is a class without positives in that test set, and is marked so.
    for key, value in summary["results"].items():
        for metrics in value["results"][0]["per_class"]:
            if metrics["auc"] is None:
                assert metrics["note"], (key, metrics["name"])
    assert tables["table2"].iloc[-1].drop("class").notna().all()
    html = (clean / "report.html").read_text()
    assert "Table 2" in html and "Table 3" in html and html.count("data:image/png") >= 4
    # every evaluation carries its out-of-scope table (the synthetic cohort has no record outside the classes)
    assert all(value["out_of_scope"]["n_records"] == 0 for value in summary["results"].values())
    assert "records name none of the classes" in html
    scores = pd.read_csv(clean / "set_scores.csv")  # the field's set-level scores, for every evaluation
    assert {"macro_auc", "macro_auprc", "fmax", "challenge_score"} <= set(scores.columns)
    assert scores["fmax"].notna().all() and scores["challenge_score"].notna().all()
    assert "Set-level scores" in html and "restricted to the 7 classes cpsc9 shares" in html
    # Figures 6-8 checked with numbers: Ours_2's maps among each test record's waves, and the measurements
    waves = summary["waves"]
    assert waves["model"] == "Ours_2" and waves["unavailable"] is None and waves["n_records"] > 0
    assert {row["method"] for row in waves["table"]} <= {"gradcam", "guided-gradcam"} and waves["table"]
    assert len(waves["measurements"]) >= 1 and "heart_rate_bpm" in waves["measurements"][0]
    assert "Figures 6-8 checked" in html and "href='waves/waves.html'" in html
    assert (clean / "waves" / "waves.html").is_file() and (clean / "results" / "waves.json").is_file()

    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "ecglens.cli", *_args(sources, killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (killed / "runs" / "ours1" / "state").is_dir() and time.time() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "report.html").exists()
    assert main(_args(sources, killed)) == 0
    again = _tables(killed)
    for name in tables:
        pd.testing.assert_frame_equal(tables[name], again[name])
    assert json.loads((killed / "results.json").read_text())["waves"]["table"] == waves["table"]
