"""A reduced demo run: every step completes and the report has every section filled."""

import json

import pytest

from ecglens.cli import main


@pytest.mark.slow
def test_reduced_demo_writes_a_full_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-records", "160", "--epochs", "1", "--model", "resnet_tiny"]) == 0
    html = (out / "report.html").read_text()
    for heading in ("Summary", "Test metrics", "Training", "What each synthetic class looks like", "Grad-CAM",
                    "Population lead importance", "Faithfulness of the explanations", "Timings", "Configuration"):
        assert f"<h2>{heading}" in html
    # training curve, one ECG per class, Grad-CAM figures, the heatmap and the faithfulness curves
    assert html.count("data:image/png;base64") >= 1 + 9 + 1 + 2
    assert "n/a" not in html.split("Faithfulness of the explanations")[1].split("<h2>")[0][:200]
    summary = json.loads((out / "report.json").read_text())
    assert summary["evaluation"]["results"][0]["n_records"] > 0
    assert (out / "evaluation" / "metrics.csv").is_file()
    # A second run reuses every finished step.
    assert main(["demo", "--out", str(out), "--n-records", "160", "--epochs", "1", "--model", "resnet_tiny"]) == 0
