"""A reduced demo run: every step completes and the report has every section filled."""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from ecglens.cli import main


@pytest.mark.slow
def test_reduced_demo_writes_a_full_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-records", "160", "--epochs", "1", "--model", "resnet_tiny"]) == 0
    html = (out / "report.html").read_text()
    for heading in (
        "Summary",
        "Test metrics",
        "Training",
        "What each synthetic class looks like",
        "Grad-CAM",
        "Population lead importance",
        "Faithfulness of the explanations",
        "Explanations among the waves, and the measurements",
        "Robustness",
        "Timings",
        "Configuration",
    ):
        assert f"<h2>{heading}" in html
    # training curve, one ECG per class, Grad-CAM figures, the heatmap and the faithfulness curves
    assert html.count("data:image/png;base64") >= 1 + 9 + 1 + 2
    # no fragment of the report was escaped into visible markup (text such as "p < 0.001" is escaped, as it must be)
    assert re.search(r"&lt;/?[a-zA-Z!]", html) is None
    assert "n/a" not in html.split("Faithfulness of the explanations")[1].split("<h2>")[0][:200]
    summary = json.loads((out / "report.json").read_text())
    assert summary["evaluation"]["results"][0]["n_records"] > 0
    waves = summary["explanations"]["waves"]  # neurokit2 is in the test extra: the section is computed
    assert waves["unavailable"] is None and waves["measurements"] and (out / "waves" / "waves.html").is_file()
    assert "href='waves/waves.html'" in html and "QTc Bazett (ms)" in html
    assert (out / "evaluation" / "metrics.csv").is_file()
    kinds = [c["kind"] for c in summary["robustness"]["conditions"] if "filtered" not in c["family"]]
    assert kinds == [
        "clean",
        "gaussian",
        "muscle",
        "missing",
        "reversal",
        "crop",
        "random",
        "pgd",
        "smooth",
        "pgd-band",
    ]
    filtered = [c["kind"] for c in summary["robustness"]["conditions"] if "filtered" in c["family"]]
    assert filtered == ["clean", "random", "pgd", "smooth", "pgd-band"]  # each also after the 0.5-40 Hz filter
    assert (out / "robustness" / "adversarial_example.png").is_file()
    # The finished demo removed the records and the resume state, and kept what the docs' commands use.
    assert not (out / "records").exists() and not (out / "run" / "state").exists()
    assert (out / "cache100" / "spec.json").is_file() and (out / "run" / "best" / "bundle.json").is_file()
    assert "--keep-all keeps them" in capsys.readouterr().err
    # A second run on the pruned folder reuses the cache and the trained model, and writes the report again.
    assert main(["demo", "--out", str(out), "--n-records", "160", "--epochs", "1", "--model", "resnet_tiny"]) == 0
    again = capsys.readouterr().err
    assert "reusing the cache" in again and "reusing the trained model" in again and "generating" not in again
    assert json.loads((out / "report.json").read_text())["training_log"] == summary["training_log"]
    assert not (out / "records").exists()


def _finished_demo(out: Path) -> None:
    """The layout a finished demo leaves before pruning, in small files (log.csv as `fit` writes it)."""
    for name in ("records/S00001.dat", "records/COMPLETE", "cache100/spec.json", "run/state/state.json"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"x" * 2000)
    (out / "records" / "COMPLETE").write_text(json.dumps({"AF": 3, "NORM": 5}))
    (out / "class_counts.json").write_text(json.dumps({"AF": 3, "NORM": 5}))
    (out / "run" / "best").mkdir()
    (out / "run" / "best" / "bundle.json").write_text("{}")
    (out / "run" / "log.csv").write_text(
        "epoch,train_loss,val_loss,val_macro_auc,seconds,val_macro_auprc,val_fmax,lr\n"
        "1,0.5,0.4,0.70,10.0,0.3,0.4,0.001\n"
        "2,0.4,0.3,0.80,12.0,,,0.001\n"
        "3,0.3,0.35,0.75,14.0,0.5,0.6,0.001\n"
    )
    (out / "report.html").write_text("<html></html>")


def test_a_finished_demo_keeps_the_cache_model_and_reports_and_removes_what_regenerates(tmp_path):
    from ecglens.studies.demo import prune_demo

    _finished_demo(tmp_path)
    result = prune_demo(tmp_path)
    assert not (tmp_path / "records").exists() and not (tmp_path / "run" / "state").exists()
    for kept in ("cache100/spec.json", "run/best/bundle.json", "run/log.csv", "report.html", "class_counts.json"):
        assert (tmp_path / kept).is_file(), kept
    assert [name for name, _ in result.removed] == ["records", "run/state"]
    assert {name for name, _ in result.kept} == {"cache100", "class_counts.json", "report.html", "run"}
    assert f"{tmp_path} holds 0 MB" in result.lines()[-1]
    again = prune_demo(tmp_path)  # pruning twice removes nothing more, and says so
    assert again.removed == () and again.lines()[0].startswith("nothing to remove")


def test_a_pruned_demo_reruns_without_generating_preparing_or_training_again(tmp_path, monkeypatch):
    from ecglens.studies import demo

    _finished_demo(tmp_path)
    demo.prune_demo(tmp_path)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished step ran again")

    for name in ("write_cohort", "build_cache", "fit"):
        monkeypatch.setattr(demo, name, must_not_run)
    config = demo.DemoConfig.sized(8, 100.0, epochs=3, model="resnet_tiny", device="cpu", seed=0)
    synth = demo.SynthConfig(8, 500.0, 10.0, seed=0)
    assert demo._generate(synth, tmp_path, tmp_path / "cache100", progress=False) == {"AF": 3, "NORM": 5}
    demo._prepare(tmp_path, tmp_path / "cache100", config, progress=False)
    result = demo._train(tmp_path / "run", tmp_path / "cache100", config, progress=False)
    assert (result.best_epoch, result.best_val_macro_auc, result.epochs_run) == (2, 0.80, 3)
    assert result.best_bundle == str(tmp_path / "run" / "best") and result.seconds_per_epoch == 12.0
    assert result.log[1].val_macro_auprc is None and result.log[2].val_fmax == 0.6
    # a run that stopped before its last epoch is not taken as finished: training goes on
    with pytest.raises(AssertionError, match="ran again"):
        demo._train(
            tmp_path / "run", tmp_path / "cache100", replace(config, train=replace(config.train, epochs=4)), False
        )


def test_the_documented_demo_figures_match_the_demo_defaults():
    import re

    import numpy as np
    import pandas as pd

    from conftest import REPO_ROOT
    from ecglens.data import assign_splits
    from ecglens.studies.demo import DemoConfig

    readme = (REPO_ROOT / "README.md").read_text()
    documented = readme + "".join(page.read_text() for page in (REPO_ROOT / "docs").glob("*.md"))
    config = DemoConfig()
    index = pd.DataFrame(
        {
            "record_id": [f"S{i:05d}" for i in range(1, config.n_records + 1)],
            "dataset": "synthetic",
            "fold": np.nan,
            "patient_id": None,
        }
    )
    n_test = int((assign_splits(index, config.train.split) == "test").sum())
    assert f"generate {config.n_records:,} records" in readme
    assert re.search(rf"on {n_test} test records", documented), n_test
    assert f"for {config.train.epochs} epochs" in documented
    explained = f"{config.explain_population} records (population) and {config.explain_faithfulness} (faithfulness)"
    assert explained in documented
