"""Rendering: the one figure writer, figures titled with what was explained, writers that stay in their folder."""

import dataclasses
import io
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from ecglens.bundle.meta import read_meta
from ecglens.explain.records import RecordExplanation
from ecglens.leads import LEAD_NAMES
from ecglens.predict import Prediction
from ecglens.preprocess import ModelInput
from ecglens.report.ecgpaper import LEAD_IN_S, MAX_HALF_MV, plot_ecg, segment_sums
from ecglens.report.figures import explanation_figure, save_figure
from ecglens.report.outputs import write_record_explanations
from ecglens.report.paths import safe_name
from ecglens.report.predictions import write_predictions


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
    decided = [
        f"{n} ({explanation.probabilities[meta.class_names.index(n)]:.2f})"
        for n in meta.decisions(explanation.probabilities)
    ]
    assert title.startswith("S1: true unknown | decided ") and all(d in title for d in decided)


def test_a_title_never_calls_a_not_validated_class_decided():
    """Issue 38: LUDB 108's title listed STE (0.03) among the predictions although the starter never decides STE,
    and a Philips file's Grad-CAM title listed "LBBB (0.99)"."""
    from ecglens.report.figures import label_title

    names = ("SNR", "LBBB", "STE")
    title = label_title("108", None, np.array([0.02, 0.99, 0.03]), (), names, ("LBBB", "STE"))
    never = "(not validated: never decided)"
    assert title == f"108: true unknown | decided none; highest LBBB 0.99 {never}, STE 0.03 {never}"
    assert label_title("r", None, np.array([0.9, 0.1, 0.2]), ("SNR",), names) == "r: true unknown | decided SNR (0.90)"


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
    header = "record_id,source,status,I,II,decisions,decision_rule,decided_by,true_labels,warnings"
    assert csv_path.read_text().splitlines()[0] == header
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
    start = LEAD_IN_S  # the calibration pulse comes first
    assert (extent.y0, extent.y1) == pytest.approx(ax.get_ylim())
    assert start + 3.9 <= extent.x0 <= extent.x1 <= start + 4.3
    assert "not lead-specific" in fig._suptitle.get_text()
    plt.close(fig)
    blank = gradcam_figure(signal, 100, np.zeros((12, 1000)), "S1", "IAVB", probability=0.12)
    assert "no positive Grad-CAM evidence for IAVB at p=0.12" in blank._suptitle.get_text()
    plt.close(blank)


def _traces(fig):
    """The drawn ECG traces (black lines longer than the calibration pulse), as (x, y) arrays."""
    lines = fig.axes[0].lines
    return [line.get_xydata() for line in lines if line.get_color() == "black" and len(line.get_xdata()) > 10]


def test_rows_grow_with_the_amplitude_and_clipping_beyond_the_cap_is_marked():
    signal = np.zeros((12, 1000))
    signal[7, 500] = -2.51  # PTB-XL 1677's V2 S wave: drawn whole, no longer cut at about -1.45 mV
    fig = plot_ecg(signal, 100, "deep S", layout="12x1")
    v2 = _traces(fig)[7]
    assert v2[:, 1].max() - v2[:, 1].min() == pytest.approx(2.51, abs=1e-6)
    assert "clipped" not in fig._suptitle.get_text()
    plt.close(fig)
    signal[7, 500] = -9.0  # beyond the cap: clipped, with a marker and a word in the subtitle
    fig = plot_ecg(signal, 100, "huge S", layout="12x1")
    markers = [line for line in fig.axes[0].lines if line.get_marker() == "v"]
    assert markers and "clipped at 4 mV" in fig._suptitle.get_text()
    assert np.ptp(_traces(fig)[7][:, 1]) == pytest.approx(MAX_HALF_MV - 0.05, abs=1e-6)
    plt.close(fig)


def test_every_row_starts_with_a_one_millivolt_calibration_pulse():
    fig = plot_ecg(np.zeros((12, 1000)), 100, layout="3x4")
    pulses = [line.get_xydata() for line in fig.axes[0].lines if len(line.get_xdata()) == 6]
    assert len(pulses) == 4  # three rows of four leads and the rhythm strip
    assert all(np.ptp(p[:, 1]) == pytest.approx(1.0) and p[:, 0].max() < LEAD_IN_S for p in pulses)
    plt.close(fig)


def test_signed_attributions_are_summed_over_40_ms_with_a_colour_bar():
    values = np.zeros((12, 1000))
    values[1, 300:304] = [0.01, 0.01, 0.01, 0.01]
    values[6, 500] = -0.02
    sums = segment_sums(values, 100)
    assert sums[1, 300] == pytest.approx(0.04) and sums[6, 500] == pytest.approx(-0.02) and sums[6, 504] == 0
    from ecglens.report.figures import attribution_figure

    fig = attribution_figure(np.zeros((12, 1000)), 100, values, "S1", "AF")
    assert len(fig.axes) == 2 and "SHAP value per 40 ms for AF" in fig.axes[1].get_xlabel()
    images = fig.axes[0].get_images()
    assert len(images) == 12 and images[0].norm.vmin == pytest.approx(-0.04)  # symmetric: sign is visible
    plt.close(fig)
    bw = attribution_figure(np.zeros((12, 1000)), 100, values, "S1", "AF", style="bw")
    assert "positive values only" in bw.axes[1].get_xlabel() and bw.axes[0].get_images()[0].norm.vmin == 0
    plt.close(bw)


def test_figures_are_written_at_150_dpi_or_as_svg(tmp_path):
    from ecglens.report.figures import save_figure
    from ecglens.report.html import _png_dpi

    png = save_figure(plot_ecg(np.zeros((12, 1000)), 100), tmp_path / "a.png")
    assert _png_dpi(png.read_bytes()) == pytest.approx(150, abs=0.5)
    svg = save_figure(plot_ecg(np.zeros((12, 1000)), 100, style="bw"), tmp_path / "a.svg")
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()[:1000]


# -- a file's text on a page: plain text, drawable, inside its box; a page that fails costs its record's report ----

HOSTILE_STATEMENTS = (
    "Sinus\ufeff rhythm\u200b \u202ereversed",  # U+FEFF crashed matplotlib's PDF backend (IndexError in track_glyph)
    "Invalid mathtext ... $$ $x^2$",  # stopped the batch (ValueError from the mathtext parser)
    r"Valid mathtext $\frac{a}{b}$ here",  # was drawn as a formula
    "LONG " + "lorem ipsum dolor " * 280,  # 5,000 characters: was drawn over V1-V6 to the page's bottom
)


def test_page_text_drops_what_has_no_glyph_and_clips_with_an_ellipsis():
    from ecglens.report.text import page_lines, page_text

    assert page_text("a\ufeffb\u200bc\u202ed\x00e\ud800f\ue000g\u2028h\n\ti") == "abcdefg h i"
    assert page_text("x" * 500, 300) == "x" * 297 + "..." and len(page_text("y" * 20, 20)) == 20
    lines = page_lines(["one", "two " * 100, "three", "four"], 40, 5)
    assert len(lines) == 5 and lines[0] == "one" and lines[-2].endswith("...") and lines[-1] == "... 2 more"
    assert page_lines(["a", "b"], 40, 5) == ["a", "b"] and page_lines([], 40, 5) == []


def _scored(statements: tuple[str, ...], record_id: str = "ecg-hostile"):
    from ecglens.bundle.meta import starter_path
    from ecglens.predict import Scored

    meta = read_meta(starter_path())
    signal = np.random.default_rng(2).normal(0, 0.2, (12, 1000)).astype(np.float32)
    probabilities = np.full(len(meta.class_names), 0.1)
    prediction = Prediction(
        record_id,
        "ecg-hostile.xml",
        dict(zip(meta.class_names, probabilities.tolist(), strict=True)),
        (),
        duration_s=10.0,
        file_format="ge-muse-xml",
        file_statements=statements,
    )
    return meta, Scored(prediction, ModelInput(record_id, signal, "ecg-hostile.xml", None), probabilities)


def _pdf_words(pdf: bytes, tmp_path) -> list[tuple[str, float, float]]:
    """Every word of a PDF with its left edge and its bottom, in mm from the page's left and top."""
    import html
    import re
    import shutil
    import subprocess

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext absent: apt-get install poppler-utils")
    path = tmp_path / "page.pdf"
    path.write_bytes(pdf)
    boxes = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True).stdout
    pattern = r'<word xMin="(-?[\d.]+)" yMin="-?[\d.]+" xMax="-?[\d.]+" yMax="(-?[\d.]+)">(.*?)</word>'
    return [(html.unescape(w), float(x) * 25.4 / 72, float(y) * 25.4 / 72) for x, y, w in re.findall(pattern, boxes)]


def test_a_hostile_statement_is_plain_text_inside_its_column(tmp_path):
    from ecglens.report.pdf import ECG_TOP_MM, PAGE_MM, record_pdf

    meta, scored = _scored(HOSTILE_STATEMENTS)
    words = _pdf_words(record_pdf(scored, meta, "starter"), tmp_path)
    text = " ".join(w for w, _, _ in words)
    assert "Sinus rhythm reversed" in text and "\ufeff" not in text and "\u202e" not in text
    assert "$$ $x^2$" in text and r"$\frac{a}{b}$" in text  # as written: never a formula
    said = {word for statement in HOSTILE_STATEMENTS for word in statement.split()} | {"...", "more"}
    column = [(w, bottom) for w, x, bottom in words if x >= 194 and (w in said or w.rstrip(".") in said)]
    assert 10 < sum(w == "lorem" for w, _ in column) < 60  # cut, with an ellipsis
    assert max(bottom for _, bottom in column) < PAGE_MM[1] - ECG_TOP_MM  # nothing over the ECG


def test_a_record_id_in_a_figure_title_is_plain_text(tmp_path):
    fig = plot_ecg(np.zeros((12, 1000)), 100, "rec$$ $x^2$\ufeff")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="pdf")  # the PDF backend: where U+FEFF and invalid mathtext failed
    plt.close(fig)
    assert "rec$$ $x^2$" in " ".join(w for w, _, _ in _pdf_words(buffer.getvalue(), tmp_path))


def test_a_page_that_fails_is_its_records_issue_and_the_batch_goes_on(tmp_path, monkeypatch, capsys):
    import csv

    from conftest import known_signal, page_fails_for, write_wfdb
    from ecglens import cli

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("fails", "fine"):
        write_wfdb(folder, name, known_signal(5000))
    page_fails_for(monkeypatch, "fails", "the page could not be drawn\nsecond line")
    out = tmp_path / "out"
    assert cli.main(["--quiet", "predict", str(folder), "--report", "pdf", "--out", str(out)]) == 0
    assert [p.name for p in (out / "reports").glob("*.pdf")] == ["fine.pdf"]
    with (out / "predictions.csv").open() as handle:
        assert sorted(row["record_id"] for row in csv.DictReader(handle)) == ["fails", "fine"]
    with (out / "issues.csv").open() as handle:
        (issue,) = list(csv.DictReader(handle))
    assert issue["path"].endswith("fails.hea")
    assert issue["reason"] == "report not written: RuntimeError: the page could not be drawn"
    assert "report not written" in capsys.readouterr().err
    assert not (out / "predictions.partial.jsonl").exists()


def _snr_with_first_degree_av_block():
    """The starter's page inputs for a record decided SNR whose measured PR is 338 ms."""
    from ecglens.waves.measure import Measurements

    meta, scored = _scored((), "ecg-iavb")
    measured = Measurements(70.0, 20.0, 338.0, 90.0, 380.0, 410.0, 400.0, 50.0, 40.0, 40.0, 12, "hand-built")
    prediction = dataclasses.replace(scored.prediction, decisions=("SNR",)).with_measurements(measured, 60.0)
    return meta, dataclasses.replace(scored, prediction=prediction)


FLAG = "model: SNR; criteria: first-degree AV block (PR 338 ms > 200 ms)"


def test_snr_decided_beside_a_met_iavb_criterion_is_flagged_in_json_csv_and_the_terminal(tmp_path):
    from ecglens.commands.common import Written
    from ecglens.commands.predict import PredictRun
    from ecglens.report.predictions import write_predictions

    meta, scored = _snr_with_first_degree_av_block()
    prediction = scored.prediction
    write_predictions([prediction], [], meta.class_names, tmp_path)
    row = json.loads((tmp_path / "predictions.jsonl").read_text())
    assert row["disagreements"] == [FLAG] and row["criteria"]["met"] == ["IAVB"]
    assert row["criteria"]["classes"]["IAVB"]["criteria"][0]["line"] == "PR 338 ms > 200 ms"
    import pandas as pd

    table = pd.read_csv(tmp_path / "predictions.csv")
    assert table.loc[0, "criteria_met"] == "IAVB" and table.loc[0, "disagreements"] == FLAG
    lines = PredictRun((prediction,), (), (), Written(())).lines()
    decided = next(i for i, line in enumerate(lines) if "SNR (0.10)" in line)
    assert lines[decided + 1].strip() == f"DISAGREEMENT: {FLAG}"  # right under the decision
    assert any("criteria met: IAVB (PR 338 ms > 200 ms)" in line for line in lines)


def test_snr_decided_beside_a_met_iavb_criterion_is_flagged_on_the_page_in_red(tmp_path):
    from ecglens.report.pdf import record_page, record_pdf

    meta, scored = _snr_with_first_degree_av_block()
    words = " ".join(w for w, _, _ in _pdf_words(record_pdf(scored, meta, "starter"), tmp_path))
    assert "criteria disagree: model: SNR; criteria:" in words and "AV block (PR 338 ms >" in words  # "fi": a ligature
    assert "DECIDED (disputed)" in words
    fig = record_page(scored, meta, "starter")
    flagged = [t for t in fig.texts if "first-degree AV block" in t.get_text()]
    assert [" ".join(t.get_text().split()) for t in flagged] == [f"criteria disagree: {FLAG}"]
    assert flagged[0].get_color() == "#b00000"


def test_every_disagreement_warning_and_measurement_note_is_on_the_page_whole(tmp_path):
    """A reviewer found the QTc caveat cut and a disagreement behind "... 1 more": the flags and the record's notes
    are printed whole (a smaller font when they need it), above the ECG."""
    from ecglens.report.pdf import PAGE_MM, ecg_frame, record_page, record_pdf
    from ecglens.report.text import ELLIPSIS
    from ecglens.waves.measure import NO_P_CAUSES, NO_P_WAVES, page_note

    meta, scored = _snr_with_first_degree_av_block()
    flags = (
        FLAG,
        "criteria: atrial fibrillation (no P waves in most beats; RR irregularity (median beat-to-beat change / "
        "median RR) 0.28 > 0.12); fused: AF not decided",
        "criteria: left bundle branch block (QRS 158 ms >= 120 ms; R-peak time > 60 ms in V5 104, V6 102); STD not "
        "decided beside LBBB: its ST changes are secondary (Surawicz et al. 2009)",
    )
    notes = (
        f"{NO_P_WAVES} (2 of 14 beats): no PR interval or P axis {NO_P_CAUSES}",
        "QTc on a QRS of 158 ms: the wide QRS lengthens the QT (JT 266 ms; Rautaharju et al. 2009)",
        "2 premature or differently conducted beat(s) left out of the intervals",
    )
    p = scored.prediction
    assert p.measurements is not None
    prediction = dataclasses.replace(
        p,
        disagreements=flags,
        warnings=("the two heart-rate estimates differ by 35 %",),
        measurements=dataclasses.replace(p.measurements, notes=notes),
    )
    scored = dataclasses.replace(scored, prediction=prediction)
    shown = " ".join(" ".join(t.get_text().split()) for t in record_page(scored, meta, "starter").texts)
    for flag in flags:
        assert f"criteria disagree: {flag}" in shown
    assert "warnings: the two heart-rate estimates differ by 35 %" in shown
    for note in notes:
        assert page_note(note) in shown
    assert NO_P_CAUSES not in shown  # the page's short form: its PR row reads n/a
    assert ELLIPSIS not in shown and " more" not in shown
    top = ecg_frame(scored, meta).top_mm
    words = _pdf_words(record_pdf(scored, meta, "starter"), tmp_path)
    assert max(bottom for w, x, bottom in words if x < 192 and w == "disagree:") < PAGE_MM[1] - top


def test_the_page_says_which_rule_decided_and_what_the_model_alone_would_have(tmp_path):
    """A cardiologist's review: under the fused rule the page read "the model's probability / threshold" and showed
    AF 0.61 / 0.38 "no" with no hint that the fused rule overrode the model, and LBBB "not validated: never
    decided" although its criteria decide it."""
    from ecglens.report.pdf import record_page

    meta, scored = _snr_with_first_degree_av_block()
    p = scored.prediction
    fused = dataclasses.replace(
        p,
        decisions=("IAVB",),
        decided_by={"IAVB": "fused"},
        decision_rule="fused",
        model_decisions=("AF",),
        not_validated={"LBBB": "too few positives"},
    )
    texts = [t.get_text() for t in record_page(dataclasses.replace(scored, prediction=fused), meta, "starter").texts]
    assert "Decisions (fused rule)" in texts and "the model's probability / threshold" in texts
    assert "no (fused; model: yes)" in texts and "no (by criteria)" in texts
    model = dataclasses.replace(p, not_validated={"LBBB": "too few positives"})
    texts = [t.get_text() for t in record_page(dataclasses.replace(scored, prediction=model), meta, "starter").texts]
    assert "not validated: never decided" in texts and "Decisions" in texts


def test_an_incorrect_example_explains_the_class_it_missed_too(tiny_run, tmp_path):
    """Issue 38: the demo report's "incorrect" examples showed Grad-CAM for the class that was right; the missed
    class was never explained."""
    from ecglens.explain.records import probabilities_of
    from ecglens.predict import Predictor
    from ecglens.preprocess import ModelInput
    from ecglens.report.explanations import gradcam_examples

    predictor = Predictor(tiny_run.bundle, "cpu")
    meta = predictor.meta
    signal = np.random.default_rng(3).normal(0, 0.2, (12, 2500)).astype(np.float32)
    p = probabilities_of(predictor.model, [ModelInput("x", signal)])[0]
    decided = meta.decided(p[None])[0]
    missed = next(i for i, d in enumerate(decided) if not d)
    labels = decided.astype(np.float32)
    labels[missed] = 1.0  # a class the record has and the model did not decide: a wrong record
    figures = gradcam_examples(predictor.model, meta, [ModelInput("w", signal, labels=labels)], tmp_path, 0, 1)
    explained = {f.class_name for f in figures}
    assert meta.class_names[missed] in explained and all(f.kind == "incorrect" for f in figures)
    assert (tmp_path / f"w_{meta.class_names[missed]}_gradcam.png").is_file()
