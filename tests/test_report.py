"""Rendering: the one figure writer, figures titled with what was explained, writers that stay in their folder."""

import io
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from ecglens.bundle import read_meta
from ecglens.explain.records import RecordExplanation
from ecglens.leads import LEAD_NAMES
from ecglens.predict import Prediction
from ecglens.preprocess import ModelInput
from ecglens.report.ecgpaper import plot_ecg
from ecglens.report.figures import explanation_figure, save_figure
from ecglens.report.outputs import write_predictions, write_record_explanations
from ecglens.report.paths import safe_name


def test_safe_name_keeps_plain_ids_and_neutralises_the_rest():
    assert safe_name("S00012") == "S00012"
    hostile = ["../../../escaped", "/etc/passwd", "a\x00b", "x" * 500, "..", "rec id with spaces"]
    names = [safe_name(text) for text in hostile]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name and "\x00" not in name and not name.startswith(".") and len(name) <= 60


def test_save_figure_writes_atomically_and_closes(tmp_path):
    fig = plt.figure()
    path = save_figure(fig, tmp_path / "sub" / "f.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and not plt.fignum_exists(fig.number)
    assert [p.name for p in path.parent.iterdir()] == ["f.png"]
    buffer = save_figure(plt.figure(), io.BytesIO())
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_plot_ecg_layouts():
    signal = np.random.default_rng(0).normal(0, 0.2, (12, 1000))
    for layout in ("3x4", "12x1"):
        plt.close(plot_ecg(signal, 100, "title", layout=layout, highlight=np.zeros((12, 1000))))
    with pytest.raises(ValueError, match="layout"):
        plot_ecg(signal, 100, layout="6x2")


def _explanation(tiny_run, record_id="S1"):
    meta = read_meta(tiny_run.bundle)
    signal = np.random.default_rng(1).normal(0, 0.2, (12, 2500)).astype(np.float32)
    probabilities = np.linspace(0.05, 0.95, len(meta.class_names))
    item = ModelInput(record_id, signal, "s.hea", None)
    return meta, RecordExplanation(item, "gradcam", 1, meta.class_names[1], probabilities, np.abs(signal))


def test_the_explanation_figure_is_titled_with_the_explained_probabilities(tiny_run):
    meta, explanation = _explanation(tiny_run)
    fig = explanation_figure(explanation, meta)
    title = fig._suptitle.get_text()
    plt.close(fig)
    decided = [f"{n} ({p:.2f})" for n, p, t in zip(meta.class_names, explanation.probabilities, meta.thresholds,
                                                    strict=True) if p >= t]
    assert title.startswith("S1: true unknown | predicted ") and all(d in title for d in decided)


def test_writers_stay_inside_their_folder(tiny_run, tmp_path):
    meta, explanation = _explanation(tiny_run, "../../escaped")
    out = tmp_path / "out"
    paths = write_record_explanations([explanation], meta, out)
    assert all(out in p.parents for p in paths) and not list(tmp_path.glob("escaped*"))
    assert json.loads(paths[0].read_text())[0]["record_id"] == "../../escaped"


def test_predictions_are_strict_json_lines(tmp_path):
    prediction = Prediction("r1", "r1.hea", dict.fromkeys(LEAD_NAMES[:2], 0.25), ("I",), ("short record",), 5.0)
    jsonl, csv_path, issues = write_predictions([prediction], [], LEAD_NAMES[:2], tmp_path)
    assert json.loads(jsonl.read_text().splitlines()[0])["decisions"] == ["I"]
    assert csv_path.read_text().splitlines()[0] == "record_id,source,I,II,decisions,warnings"
    assert issues.read_text().strip() == "path,reason"


def test_grad_cam_is_drawn_per_time_across_every_lead_and_a_blank_map_is_said():
    from ecglens.report.figures import gradcam_figure

    signal = np.random.default_rng(2).normal(0, 0.2, (12, 1000))
    cam = np.zeros((12, 1000))
    cam[:, 400:420] = 1.0
    fig = gradcam_figure(signal, 100, cam, "S1", "PVC")
    ax = fig.axes[0]
    (band,) = [c for c in ax.collections if c.get_facecolor()[0][:3].round(2).tolist() == [0.9, 0.62, 0.0]]
    extent = band.get_paths()[0].get_extents()
    assert (extent.y0, extent.y1) == pytest.approx(ax.get_ylim()) and 3.9 <= extent.x0 <= extent.x1 <= 4.3
    assert "not lead-specific" in fig._suptitle.get_text()
    plt.close(fig)
    blank = gradcam_figure(signal, 100, np.zeros((12, 1000)), "S1", "IAVB", probability=0.12)
    assert "no positive Grad-CAM evidence for IAVB at p=0.12" in blank._suptitle.get_text()
    plt.close(blank)
