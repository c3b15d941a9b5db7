"""A reduced demo run: every step completes and the report has every section filled."""

import json

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
    assert "&lt;" not in html  # no fragment of the report was escaped into visible markup
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
    # A second run reuses every finished step.
    assert main(["demo", "--out", str(out), "--n-records", "160", "--epochs", "1", "--model", "resnet_tiny"]) == 0


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
