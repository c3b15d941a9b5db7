"""The heart's waves: LUDB's marks read, delineation against them, the measurements an ECG report prints, and
where an explanation's evidence falls among the waves (with its plausibility for a class)."""

import math
import re

import numpy as np
import pytest

from ecglens.waves.marks import LeadWaves, WaveMarks, waves_from_triplets
from ecglens.waves.match import match_times, score_marks
from ecglens.waves.measure import RESOLUTION, measure, qtc_bazett, qtc_fridericia
from ecglens.waves.segments import OUTSIDE, SEGMENTS, expected_evidence, segment_labels, wave_shares

RATE = 500.0
N = 5000


def _beats(with_p: bool = True, n_beats: int = 8, rr: int = 500) -> dict[str, np.ndarray]:
    """Beats every ``rr`` samples: P 100-150, QRS 200-245 (peak 220), T 350-450 after each beat's start."""
    kinds, onsets, peaks, offsets = [], [], [], []
    for b in range(n_beats):
        start = 300 + b * rr
        waves = [("P", 100, 125, 150), ("QRS", 200, 220, 245), ("T", 350, 400, 450)]
        for kind, on, top, off in waves if with_p else waves[1:]:
            kinds.append(kind)
            onsets.append(start + on)
            peaks.append(start + top)
            offsets.append(start + off)
    return waves_from_triplets(kinds, onsets, peaks, offsets)


def _marks(with_p: bool = True, leads: tuple[str, ...] = ("I", "II", "aVF")) -> WaveMarks:
    return WaveMarks(RATE, tuple(LeadWaves(lead, _beats(with_p)) for lead in leads), "hand-built")


def test_qtc_formulas_on_hand_values():
    assert qtc_bazett(400, 1.0) == qtc_fridericia(400, 1.0) == 400
    assert qtc_bazett(400, 0.64) == pytest.approx(500.0)
    assert qtc_fridericia(400, 0.729) == pytest.approx(400 / 0.9)


def test_a_qtc_on_a_wide_qrs_or_a_fast_or_slow_rate_carries_its_caveat():
    """A cardiologist's review: a QTc of 520 ms on a complete LBBB, or Bazett's at 130 bpm, was flagged long with
    no word that the wide QRS or the rate makes it so (Rautaharju et al. 2009)."""
    from ecglens.waves.measure import qtc_caveats

    assert qtc_caveats(90.0, 70.0, 400.0, 60 / 70) == []
    (wide,) = qtc_caveats(150.0, 70.0, 480.0, 60 / 70)
    assert "QRS of 150 ms" in wide and "JT 330 ms" in wide
    (fast,) = qtc_caveats(90.0, 130.0, 300.0, 60 / 130)
    assert "over-corrects above 100 bpm" in fast and f"{qtc_fridericia(300.0, 60 / 130):.0f} ms" in fast
    (slow,) = qtc_caveats(90.0, 40.0, 480.0, 1.5)
    assert "under-corrects below 50 bpm" in slow
    assert qtc_caveats(150.0, 130.0, None, 60 / 130) == []
    import dataclasses

    noted = dataclasses.replace(measure(_marks()), notes=("2 premature beat(s) left out", wide, fast))
    assert wide in noted.line() and fast in noted.line()  # not only the first note: the terminal's line


def test_hand_built_marks_give_the_hand_computed_measurements():
    measured = measure(_marks())
    assert measured.heart_rate_bpm == pytest.approx(60.0)  # one beat every 500 samples at 500 Hz
    assert measured.pr_ms == pytest.approx(200.0)  # P onset 100 to QRS onset 200: 100 samples
    assert measured.qrs_ms == pytest.approx(90.0)
    assert measured.qt_ms == pytest.approx(500.0)
    assert measured.qtc_bazett_ms == pytest.approx(500.0) and "qtc_bazett_ms" in measured.outside_normal()
    assert measured.rr_sd_ms == pytest.approx(0.0)


def test_at_100_hz_the_intervals_step_is_stated_beside_them():
    """At 100 Hz a boundary falls on a 10-ms grid: the record's notes and its measurement line say so; at 500 Hz
    (2 ms) they do not."""
    fine = measure(_marks())
    assert not any(note.startswith(RESOLUTION) for note in fine.notes)
    at_100 = WaveMarks(100.0, _marks().leads, "hand-built")
    coarse = measure(at_100)
    assert coarse.notes[-1] == "resolution: 100 Hz, every interval in 10-ms steps"
    assert coarse.line().endswith("; resolution: 100 Hz, every interval in 10-ms steps")
    assert coarse.pr_ms == pytest.approx(1000.0)  # the same 100 samples: 1 s at 100 Hz


def test_a_wave_grows_over_its_probable_edges_and_none_is_created():
    """With floors (LUDB_FLOORS: not the default), the network's QRS reaches as far as its probability stays above
    the floor, on both sides; a T wave only forward (its end, the QT's); a run above the floor with no wave in it
    creates none. Without them each sample is its most likely class."""
    from ecglens.waves.net import CLASSES, LUDB_FLOORS, labels_of

    qrs, t = CLASSES.index("QRS"), CLASSES.index("T")
    probability = np.zeros((1, len(CLASSES), 100), np.float32)
    probability[0, 0] = 1.0
    probability[0, :, 10:20] = 0.0
    probability[0, qrs, 10:20] = 1.0  # a QRS the most likely class finds
    probability[0, qrs, 5:10] = probability[0, qrs, 20:25] = 0.3  # its probable edges
    probability[0, 0, 5:10] = probability[0, 0, 20:25] = 0.7
    probability[0, t, 40:50] = 1.0  # a T wave
    probability[0, 0, 40:50] = 0.0
    probability[0, t, 35:40] = probability[0, t, 50:58] = 0.3  # probable before and after it
    probability[0, 0, 35:40] = probability[0, 0, 50:58] = 0.7
    probability[0, qrs, 70:80] = 0.3  # probable, but no QRS is there
    probability[0, 0, 70:80] = 0.7
    assert LUDB_FLOORS["QRS"] < 0.3 and LUDB_FLOORS["T"] < 0.3
    plain, grown = labels_of(probability)[0], labels_of(probability, LUDB_FLOORS)[0]
    assert np.flatnonzero(plain == qrs).tolist() == list(range(10, 20))
    assert np.flatnonzero(grown == qrs).tolist() == list(range(5, 25))  # both sides
    assert np.flatnonzero(grown == t).tolist() == list(range(40, 58))  # forward only
    assert not (grown[70:80] == qrs).any()


def test_p_waves_before_an_irregularly_irregular_rhythm_are_still_p_waves():
    """P waves at a constant PR before every beat of an irregularly irregular rhythm: the PR is withheld (a note
    says so), but the criteria read the P waves as present, so AF's two defining criteria (no distinct P waves;
    irregular RR) stay two and AF is not met on the irregularity alone."""
    from ecglens.criteria import evaluate
    from ecglens.waves.measure import IRREGULAR_PR

    starts = np.cumsum([300, 420, 640, 380, 700, 450, 610, 400, 680, 430])  # RR changing 30-60 % beat to beat
    kinds, onsets, peaks, offsets = [], [], [], []
    for start in starts:
        for kind, on, top, off in (("P", 100, 125, 150), ("QRS", 200, 220, 245), ("T", 350, 400, 450)):
            kinds.append(kind)
            onsets.append(start + on)
            peaks.append(start + top)
            offsets.append(start + off)
    waves = waves_from_triplets(kinds, onsets, peaks, offsets)
    measured = measure(WaveMarks(RATE, tuple(LeadWaves(lead, waves) for lead in ("I", "II", "aVF")), "hand-built"))
    assert measured.pr_ms is None and measured.rr_irregularity > 0.12
    assert any(note.startswith(IRREGULAR_PR) for note in measured.notes)
    af = evaluate(measured).of("AF")
    assert af.status == "not met" and "P waves present" in af.line


def test_a_record_without_p_waves_says_so_instead_of_giving_a_pr_interval():
    measured = measure(_marks(with_p=False))
    assert measured.pr_ms is None and measured.p_axis_deg is None
    assert any("no P wave" in note for note in measured.notes)
    assert measured.qrs_ms == pytest.approx(90.0)  # the other waves are still measured


def test_one_lead_off_by_far_does_not_stretch_the_global_qrs():
    leads = [LeadWaves(lead, _beats()) for lead in ("I", "II", "V1")]
    shifted = _beats()
    shifted["QRS"] = shifted["QRS"] + np.array([-60, 0, 0])  # one lead marks every QRS onset 120 ms early
    measured = measure(WaveMarks(RATE, (*leads, LeadWaves("V2", shifted)), "hand-built"))
    assert measured.qrs_ms == pytest.approx(90.0)


LIMB_VECTORS = {
    "I": (0.0, 1.0),
    "II": (60.0, 1.0),
    "III": (120.0, 1.0),
    "aVR": (-150.0, math.sqrt(3) / 2),
    "aVL": (-30.0, math.sqrt(3) / 2),
    "aVF": (90.0, math.sqrt(3) / 2),
}
"""The hexaxial reference frame: each limb lead's direction (deg) and its lead vector's length (lead I = 1)."""


def _dipole_record(degrees: float, leads: tuple[str, ...]) -> tuple[np.ndarray, WaveMarks]:
    """Limb leads of a heart vector at ``degrees`` during every QRS (the projections a real torso gives), and the
    hand-built marks."""
    marks = WaveMarks(RATE, tuple(LeadWaves(lead, _beats()) for lead in leads), "hand-built")
    signal = np.zeros((len(leads), N))
    for k, lead in enumerate(leads):
        direction, length = LIMB_VECTORS[lead]
        for a, _, b in marks.lead(lead).of("QRS"):  # the onset is the level the area is measured from
            signal[k, a + 1 : b] = length * math.cos(math.radians(degrees - direction))
    return signal, marks


@pytest.mark.parametrize("degrees", [-60.0, 0.0, 60.0, 120.0, -150.0])
def test_the_axis_of_a_hand_built_heart_vector_comes_out_right(degrees):
    signal, marks = _dipole_record(degrees, tuple(LIMB_VECTORS))
    measured = measure(marks, signal)
    assert measured.qrs_axis_deg == pytest.approx(degrees, abs=0.01)  # aVF scaled as sqrt(3)/2 of lead I
    expected = {-60.0: "left axis deviation", 0.0: "normal", 60.0: "normal", 120.0: "right axis deviation"}
    assert measured.qrs_axis_category == expected.get(degrees, "extreme axis deviation")
    without_avf = _dipole_record(degrees, ("I", "II", "III"))  # aVF derived as II - I/2
    assert measure(without_avf[1], without_avf[0]).qrs_axis_deg == pytest.approx(degrees, abs=0.01)


def test_the_axis_uses_every_leads_global_qrs_window():
    signal, marks = _dipole_record(-60.0, tuple(LIMB_VECTORS))
    early = dict(marks.lead("aVF").waves)
    early["QRS"] = early["QRS"] - np.array([0, 0, 30])  # aVF's own QRS ends 60 ms early (before its S wave)
    marks = WaveMarks(RATE, tuple(LeadWaves(w.lead, early if w.lead == "aVF" else w.waves) for w in marks.leads), "x")
    assert measure(marks, signal).qrs_axis_deg == pytest.approx(-60.0, abs=0.01)


def test_the_qtc_limit_is_the_records_sex():
    female, male, unknown = (measure(_marks(), sex=sex) for sex in ("female", "male", None))
    assert female.normal_ranges()["qtc_bazett_ms"] == (350.0, 460.0) and female.qtc_limit() == "460 ms (female)"
    assert male.normal_ranges()["qtc_bazett_ms"] == (350.0, 450.0)
    assert "450" in unknown.qtc_limit() and "460" in unknown.qtc_limit()  # both limits printed when unknown
    assert unknown.to_dict()["qtc_limit"] == unknown.qtc_limit()


def test_segments_of_a_hand_built_record_and_the_shares_they_give():
    marks = _marks(leads=("II",))
    labels = segment_labels(marks, N)
    first = 300  # the first beat's start
    assert labels[0, first + 100] == SEGMENTS.index("P") and labels[0, first + 175] == SEGMENTS.index("PR")
    assert labels[0, first + 220] == SEGMENTS.index("QRS") and labels[0, first + 300] == SEGMENTS.index("ST")
    assert labels[0, first + 400] == SEGMENTS.index("T") and labels[0, first + 480] == SEGMENTS.index("rest")
    assert labels[0, 0] == OUTSIDE == labels[0, -1]  # before the first and after the last mark
    on_qrs = (labels == SEGMENTS.index("QRS")).astype(float)
    shares = wave_shares(on_qrs, labels, ("II",), "LBBB", "test")
    assert shares.shares["QRS"] == pytest.approx(1.0) and sum(shares.shares.values()) == pytest.approx(1.0)
    assert shares.lifts["QRS"] == pytest.approx(1 / shares.time_shares["QRS"])
    uniform = wave_shares(np.ones((1, N)), labels, ("II",), "LBBB", "test")
    for segment in SEGMENTS:
        assert uniform.shares[segment] == pytest.approx(uniform.time_shares[segment])


def test_plausibility_is_one_on_the_expected_segments_and_chance_for_a_uniform_map():
    marks = _marks(leads=("I", "II", "V1"))
    labels = segment_labels(marks, N)
    expected = expected_evidence()["IAVB"]
    assert expected.segments == ("P", "PR") and expected.source
    exact = np.isin(labels, [SEGMENTS.index(s) for s in expected.segments]).astype(float)
    assert wave_shares(exact, labels, marks.lead_names, "IAVB", "test").plausibility == pytest.approx(1.0)
    uniform = wave_shares(np.ones(labels.shape), labels, marks.lead_names, "IAVB", "test")
    assert uniform.plausibility == pytest.approx(uniform.chance) and 0 < uniform.chance < 1
    # lead-specific classes count only their leads: RBBB's QRS in V1, not in II
    rbbb = expected_evidence()["RBBB"]
    only_ii = np.zeros(labels.shape)
    only_ii[1] = labels[1] == SEGMENTS.index("QRS")
    assert "II" not in rbbb.leads
    assert wave_shares(only_ii, labels, marks.lead_names, "RBBB", "test").plausibility == 0.0


def test_every_class_has_its_expected_evidence_with_a_source():
    from ecglens.classes import CLASS_NAMES

    table = expected_evidence()
    assert set(table) == set(CLASS_NAMES)
    for row in table.values():
        assert set(row.segments) <= set(SEGMENTS) and len(row.source) > 20


def test_matching_is_one_to_one_within_the_tolerance():
    pairs, missed, extra = match_times(np.array([100, 200, 300]), np.array([105, 110, 290, 500]), 20)
    assert sorted(pairs) == [(0, 0), (2, 2)] and missed == 1 and extra == 2


def test_marks_scored_against_themselves_are_perfect():
    marks = _marks()
    for score in score_marks(marks, marks).values():
        assert score.sensitivity == score.ppv == 1.0 and score.mean_ms == 0.0


@pytest.mark.realdata
def test_ludb_marks_are_read_per_lead(shared_data):
    from ecglens.waves.ludb import read_ludb_marks

    marks = read_ludb_marks(shared_data / "ludb" / "data" / "1.hea")
    assert marks.lead_names == ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    assert marks.sampling_rate_hz == 500
    assert tuple(marks.lead("II").of("QRS")[0]) == (644, 662, 682)  # the first "(", "N", ")" of 1.ii
    assert len(marks.lead("II").of("P")) >= 5 and len(marks.lead("II").of("T")) >= 5


@pytest.mark.realdata
def test_delineation_finds_the_cardiologists_qrs_onsets(shared_data):
    pytest.importorskip("neurokit2", reason="delineation needs pip install 'ecglens[waves]'")
    from ecglens.io import read_record
    from ecglens.waves.delineate import delineate
    from ecglens.waves.ludb import read_ludb_marks

    header = shared_data / "ludb" / "data" / "1.hea"
    record = read_record(header)
    found = delineate(record.signal, record.sampling_rate_hz, record.lead_names)
    score = score_marks(read_ludb_marks(header), found)["QRS onset"]
    assert score.sensitivity >= 0.95 and score.ppv >= 0.95
    assert abs(score.mean_ms) < 20 and score.sd_ms < 40
    measured, marked = measure(found, record.signal), measure(read_ludb_marks(header), record.signal)
    assert math.isclose(measured.heart_rate_bpm, marked.heart_rate_bpm, rel_tol=0.05)


@pytest.mark.realdata
def test_atrial_fibrillation_gives_no_pr_interval(shared_data):
    pytest.importorskip("neurokit2", reason="delineation needs pip install 'ecglens[waves]'")
    from ecglens.io import read_record
    from ecglens.waves.delineate import delineate
    from ecglens.waves.ludb import read_ludb_marks

    header = shared_data / "ludb" / "data" / "101.hea"
    assert "Atrial fibrillation" in header.read_text()
    marked = measure(read_ludb_marks(header))
    assert marked.pr_ms is None and any("no P wave" in n for n in marked.notes)  # the cardiologists mark none
    record = read_record(header)
    assert delineate(record.signal, record.sampling_rate_hz, record.lead_names).leads  # it runs; PR may be found


@pytest.mark.realdata
@pytest.mark.slow
def test_explain_waves_places_the_starters_explanations_among_the_cardiologists_marks(shared_data, tmp_path):
    import json

    from ecglens.cli import main

    header = shared_data / "ludb" / "data" / "1.hea"
    out = tmp_path / "waves"
    argv = [
        "-q",
        "explain",
        "waves",
        "--checkpoint",
        "starter",
        "--records",
        f"{header},{header.with_name('101.hea')}",  # both decided PAC: more figures than (class, method) pairs
        "--marks",
        "ludb",
        "--methods",
        "gradcam",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    result = json.loads((out / "waves.json").read_text())
    (first, *_) = result["records"]
    assert first["waves"] == "LUDB cardiologists" and first["method"] == "gradcam"
    assert sum(first["shares"].values()) == pytest.approx(1.0, abs=1e-6) or sum(first["shares"].values()) == 0
    assert 0 <= first["chance"] <= 1 and first["measurements"]["heart_rate_bpm"] == pytest.approx(45.6, abs=1)
    assert {"edge_plausibility", "amplitude_plausibility", "random-model_plausibility"} <= set(first)  # the nulls
    assert {"edge_difference", "random-model_interval"} <= set(result["plausibility"][0])
    assert (out / "plausibility.csv").is_file() and list(out.glob("1_*_gradcam_waves.png"))
    html = (out / "waves.html").read_text()
    assert "Where a cardiologist looks" in html
    figures = list(out.glob("*_waves.png"))
    assert all(f.name in html for f in figures)  # every figure listed, by its file
    pairs = {(r["class"], r["method"]) for r in result["records"]}
    shown = re.findall(r'<img alt="[^"]*" width="\d+" src="([^"]+)">', html)
    assert len(shown) == len(pairs) and "data:image/png" not in html  # one per class and method, linked not copied
    assert all((out / name).is_file() for name in shown)  # each a figure beside the page


@pytest.mark.realdata
def test_predict_reports_the_measurements_of_each_record(shared_data, tmp_path, capsys):
    import json

    import pandas as pd

    from ecglens.cli import main

    pytest.importorskip("neurokit2", reason="measurements need pip install 'ecglens[waves]'")
    header = shared_data / "ludb" / "data" / "1.hea"
    assert main(["-q", "predict", str(header), "--measurements", "--out", str(tmp_path)]) == 0
    assert "HR 46 bpm" in capsys.readouterr().out  # the cardiologists' marks give 45.6 bpm
    row = json.loads((tmp_path / "predictions.jsonl").read_text().splitlines()[0])
    assert row["measurements"]["qtc_formulas"]["bazett"] == "QT / RR^(1/2)"
    assert "heart_rate_bpm" in row["measurements"]["outside_normal"]  # 46 bpm: a sinus bradycardia
    table = pd.read_csv(tmp_path / "predictions.csv")
    assert table.loc[0, "heart_rate_bpm"] == pytest.approx(45.6, abs=1.0)
    assert row["measurements"]["leads"]["V5"]["r_mv"] > 0.3 and table.loc[0, "V5_r_mv"] > 0.3  # per lead, units named
    assert {"V1_st_j_mv", "V6_r_peak_time_ms", "aVF_qrs_area_mv_ms"} <= set(table.columns)
    plain = ["-q", "predict", str(header), "--decision", "model", "--out", str(tmp_path / "plain")]
    assert main(plain) == 0  # the model alone, without --measurements: no measurement columns
    assert "heart_rate_bpm" not in pd.read_csv(tmp_path / "plain" / "predictions.csv").columns


def test_without_neurokit2_delineation_names_the_extra(monkeypatch):
    import sys

    from ecglens.waves.delineate import DelineationUnavailable, delineate

    monkeypatch.setitem(sys.modules, "neurokit2", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(DelineationUnavailable, match=r"pip install 'ecglens\[waves\]'"):
        delineate(np.zeros((12, 5000)), 500.0, ("I", "II"), method="prominence")
    assert issubclass(DelineationUnavailable, ValueError)  # the CLI's one-line error, never a traceback


def test_maps_without_positive_evidence_are_counted_apart_and_left_out_of_the_means():
    from ecglens.explain.waves import PlausibilityRow, plausibility_table

    marks = _marks(leads=("I", "II", "V1"))
    labels = segment_labels(marks, N)
    on_pr = np.isin(labels, [SEGMENTS.index("P"), SEGMENTS.index("PR")]).astype(float)
    placed = wave_shares(on_pr, labels, marks.lead_names, "IAVB", "gradcam")
    cut = wave_shares(-np.ones(labels.shape), labels, marks.lead_names, "IAVB", "gradcam")  # all below the ReLU
    assert placed.has_evidence and not cut.has_evidence and cut.plausibility is None
    (row,) = plausibility_table([placed, cut, placed])
    assert (row.n, row.n_without_evidence) == (3, 1)
    assert row.plausibility == pytest.approx(1.0) and row.shares is not None  # the zero map is not averaged in
    assert row.shares["P"] + row.shares["PR"] == pytest.approx(1.0)
    assert row.chance == pytest.approx(placed.chance)
    (none,) = plausibility_table([cut])
    assert none.shares is None and none.plausibility is None and none.top_segment() == "none"
    assert PlausibilityRow.from_dict(row.to_dict()) == row and PlausibilityRow.from_dict(none.to_dict()) == none


def test_a_study_summary_survives_its_json_and_renders_its_measurements(tmp_path):
    import json

    from ecglens.explain.waves import WavesSummary, plausibility_table
    from ecglens.report.waves import waves_section

    marks = _marks(leads=("I", "II", "V1"))
    labels = segment_labels(marks, N)
    shares = wave_shares(np.ones(labels.shape), labels, marks.lead_names, "SNR", "gradcam")
    measured = measure(marks)
    summary = WavesSummary(
        "Ours_2",
        ("gradcam",),
        1,
        tuple(plausibility_table([shares])),
        (("rec-1", measured),),
        "hand-built",
        str(tmp_path / "waves" / "waves.html"),
    )
    again = WavesSummary.from_dict(json.loads(json.dumps(summary.to_dict())))
    assert again == summary
    html = str(waves_section(again, tmp_path))
    assert "href='waves/waves.html'" in html and "rec-1" in html and "QTc Bazett (ms)" in html
    assert f"<td>{measured.heart_rate_bpm:.0f}</td>" in html
    missing = WavesSummary.missing("the demo model", ("gradcam",), "delineation needs neurokit2")
    assert "Not computed: delineation needs neurokit2" in str(waves_section(missing, tmp_path))


def test_a_flagged_value_never_reads_as_the_edge_of_its_range():
    from ecglens.waves.measure import shown_value

    assert shown_value(450.4, "qtc_bazett_ms") == "450.4"  # outside 350-450: not "450"
    assert shown_value(449.6, "qtc_bazett_ms") == "450" and shown_value(59.6, "heart_rate_bpm") == "59.6"
    assert shown_value(123.4, "pr_ms") == "123" and shown_value(None, "pr_ms") == "n/a"


def _qrs_shape(n: int) -> np.ndarray:
    """A QRS of ``n`` samples: Q -0.1 mV, R 1.0, S -0.3 and R' 0.4, each a quarter of the complex."""
    quarter = n // 4
    parts = [(-0.1, quarter), (1.0, quarter), (-0.3, quarter), (0.4, n - 3 * quarter)]
    return np.concatenate([peak * np.sin(np.linspace(0, np.pi, width)) for peak, width in parts])


def test_per_lead_waves_and_st_levels_of_a_hand_built_record():
    marks = _marks(leads=("I", "V2"))
    signal = np.zeros((2, N))
    for a, _, b in marks.lead("I").of("QRS"):
        signal[:, a : b + 1] = _qrs_shape(b - a + 1)
        signal[1, b + 1 : b + 100] = 0.2  # V2: the ST segment raised by 0.2 mV after every QRS (an injury current)
    for a, _, b in marks.lead("I").of("T"):
        signal[:, a : b + 1] += 0.3 * np.sin(np.linspace(0, np.pi, b - a + 1))
    measured = measure(marks, signal)
    lead_i, v2 = measured.leads
    assert lead_i.st_j_mv == pytest.approx(0.0, abs=0.01) and lead_i.st_60_mv == pytest.approx(0.0, abs=0.01)
    assert v2.st_j_mv == pytest.approx(0.0, abs=0.05)  # the J point is the QRS's last sample, still on the baseline
    assert v2.st_60_mv == pytest.approx(0.2, abs=0.01)  # J+60 ms: 30 samples into the raised segment
    assert (lead_i.q_mv, lead_i.r_mv, lead_i.s_mv, lead_i.r_prime_mv) == pytest.approx((0.1, 1.0, 0.3, 0.4), abs=0.01)
    assert lead_i.r_peak_time_ms == pytest.approx((3 * 11 + 6) * 2, abs=4)  # onset to the R' peak
    assert lead_i.t_mv == pytest.approx(0.3, abs=0.01) and lead_i.p_mv == pytest.approx(0.0, abs=0.01)
    row = measured.to_dict()["leads"]["V2"]
    assert row["st_60_mv"] == pytest.approx(0.2, abs=0.01)
    assert type(measured).from_dict(measured.to_dict()).leads[1].st_60_mv == pytest.approx(0.2, abs=0.01)


def test_a_premature_beat_is_left_out_of_the_intervals_and_counted():
    beats = _beats()
    early = beats["QRS"].copy()
    kinds = {k: v.copy() for k, v in beats.items()}
    kinds["QRS"][4] = early[4] - 200  # the fifth QRS 400 ms early, and 80 ms wider
    kinds["QRS"][4, 2] += 40
    marks = WaveMarks(RATE, tuple(LeadWaves(lead, kinds) for lead in ("I", "II", "aVF")), "hand-built")
    measured = measure(marks)
    assert measured.premature_beats >= 1 and measured.qrs_ms == pytest.approx(90.0)
    assert any("premature" in note for note in measured.notes)


@pytest.mark.parametrize("kind", ["gaussian 0.3 mV", "baseline wander", "powerline 50 Hz", "flat", "spikes"])
def test_what_is_not_an_ecg_has_no_repeatable_beats(kind):
    from ecglens.synth.beats import not_ecgs
    from ecglens.waves.beats import assess_beats

    quality = assess_beats(not_ecgs(np.random.default_rng(0), rate=RATE)[kind], RATE)
    assert not quality.interpretable and quality.reason, quality


@pytest.mark.parametrize("rate_bpm", [30, 70, 150, 220, 250])
@pytest.mark.parametrize("sampling_rate_hz", [100.0, 500.0])
def test_a_clean_rhythm_passes_the_gate_and_its_rate_is_found_twice(rate_bpm, sampling_rate_hz):
    from ecglens.synth.beats import regular_rhythm
    from ecglens.waves.beats import assess_beats, second_rate_bpm

    signal = regular_rhythm(rate_bpm, 10.0, sampling_rate_hz)
    quality = assess_beats(signal, sampling_rate_hz)
    assert quality.interpretable and quality.repeatability > 0.9 and quality.qrs_amplitude_mv > 1.0, quality
    assert second_rate_bpm(signal, sampling_rate_hz) == pytest.approx(rate_bpm, rel=0.03)


@pytest.mark.parametrize("rate_bpm", [30, 70, 150, 220])
def test_the_heart_rate_is_measured_right_up_to_220_bpm(rate_bpm):
    """neurokit2's detector waits 0.3 s after a beat: 220 bpm was measured as 110, with no warning."""
    pytest.importorskip("neurokit2", reason="measurements need pip install 'ecglens[waves]'")
    from ecglens.leads import LEAD_NAMES
    from ecglens.synth.beats import regular_rhythm
    from ecglens.waves.delineate import measurements_of

    measured = measurements_of(regular_rhythm(rate_bpm, 10.0, RATE), RATE, LEAD_NAMES)
    assert measured.heart_rate_bpm == pytest.approx(rate_bpm, rel=0.03)
    assert measured.rate_check_bpm == pytest.approx(rate_bpm, rel=0.03) and measured.rate_warning() is None


def test_a_halved_heart_rate_is_warned(monkeypatch):
    """Where the detector cannot be helped (here its second try is made as blind as its first), the two estimates
    disagree and the measurements say so, first."""
    pytest.importorskip("neurokit2", reason="measurements need pip install 'ecglens[waves]'")
    from ecglens.leads import LEAD_NAMES
    from ecglens.synth.beats import regular_rhythm
    from ecglens.waves import delineate

    monkeypatch.setattr(delineate, "SHORT_REFRACTORY_S", delineate.REFRACTORY_S)
    measured = delineate.measurements_of(regular_rhythm(220, 10.0, RATE), RATE, LEAD_NAMES, method="prominence")
    assert measured.heart_rate_bpm == pytest.approx(110, rel=0.03)
    warning = measured.rate_warning()
    assert warning is not None and "110 bpm" in warning and "221 bpm" in warning
    assert measured.notes[0] == warning and warning in measured.line()
    assert type(measured).from_dict(measured.to_dict()).rate_warning() == warning


@pytest.mark.realdata
@pytest.mark.slow
def test_every_real_record_holds_repeatable_beats(shared_data):
    """The gate refuses none of the project's real records (PTB-XL, CPSC 2018, the Challenge's, LUDB, clinical)."""
    from ecglens.io import read_record
    from ecglens.predict import find_record_files
    from ecglens.waves.beats import assess_beats

    files = find_record_files([shared_data / name for name in ("ptb-xl", "cpsc2018", "challenge", "ludb", "clinical")])
    assert len(files) > 2000
    refused = []
    for path in files:
        record = read_record(path)
        quality = assess_beats(record.signal, record.sampling_rate_hz)
        if not quality.interpretable:
            refused.append(f"{path}: {quality.reason}")
    assert not refused, refused


def _synthetic_beats(rate: float = 500.0, seconds: float = 10.0) -> tuple[np.ndarray, list[float]]:
    """A 12-lead record of normal beats every 0.8 s (sum of Gaussians, `ecglens.synth.beats`), and its R times."""
    from ecglens.synth.beats import NORMAL_AMPLITUDES, Wave, render, to_twelve_leads

    r_times = [0.4 + 0.8 * k for k in range(12)]
    waves = []
    for r in r_times:
        waves += [
            Wave(r - 0.17, 0.022, NORMAL_AMPLITUDES["P"]),
            Wave(r - 0.03, 0.008, NORMAL_AMPLITUDES["Q"]),
            Wave(r, 0.011, NORMAL_AMPLITUDES["R"]),
            Wave(r + 0.03, 0.009, NORMAL_AMPLITUDES["S"]),
            Wave(r + 0.28, 0.045, NORMAL_AMPLITUDES["T"]),
        ]
    return to_twelve_leads(render(waves, int(seconds * rate), rate)), r_times


def test_the_shipped_delineator_loads_and_marks_the_beats_of_a_synthetic_record():
    from ecglens.leads import LEAD_NAMES
    from ecglens.waves.delineate import delineate

    signal, r_times = _synthetic_beats()
    found = delineate(signal, RATE, LEAD_NAMES, method="net")
    assert found.lead_names == LEAD_NAMES and "U-Net" in found.source
    qrs = found.lead("II").of("QRS")
    assert len(qrs) >= len(r_times) - 2  # the first and last beats may touch the record's edges
    assert (qrs[:, 0] < qrs[:, 1]).all() and (qrs[:, 1] < qrs[:, 2]).all()
    peaks_s = qrs[:, 1] / RATE
    assert all(min(abs(p - r) for r in r_times) < 0.04 for p in peaks_s)  # each QRS is one of the beats
    measured = measure(found, signal)
    assert measured.heart_rate_bpm == pytest.approx(75.0, rel=0.03)


def test_the_delineator_is_deterministic_on_cpu():
    from ecglens.leads import LEAD_NAMES
    from ecglens.waves.net import delineate_net, segment, shipped

    signal, _ = _synthetic_beats()
    assert np.array_equal(segment(shipped(), signal, RATE), segment(shipped(), signal, RATE))
    first, again = delineate_net(signal, RATE, LEAD_NAMES), delineate_net(signal, RATE, LEAD_NAMES)
    for a, b in zip(first.leads, again.leads, strict=True):
        assert all(np.array_equal(a.of(kind), b.of(kind)) for kind in ("P", "QRS", "T"))


def test_delineator_weights_that_are_tampered_with_or_too_large_are_refused_by_name(tmp_path):
    from safetensors.numpy import save_file

    from ecglens.waves import net
    from ecglens.waves.net import WEIGHTS, DelineatorWeightsError, read_weights

    assert WEIGHTS.stat().st_size < 2_000_000  # shipped in the package
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(WEIGHTS.read_bytes()[:5000])
    with pytest.raises(DelineatorWeightsError, match="not a readable safetensors"):
        read_weights(truncated)
    not_safetensors = tmp_path / "pickle.safetensors"
    not_safetensors.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)  # a pickle's opening bytes
    with pytest.raises(DelineatorWeightsError):
        read_weights(not_safetensors)
    wrong_shape = tmp_path / "wrong.safetensors"
    save_file(
        {"head.weight": np.zeros((4, 8, 1), np.float32)},
        str(wrong_shape),
        metadata={"config": '{"channels": [8, 16, 32, 64], "kernel_size": 7, "in_channels": 2}'},
    )
    with pytest.raises(DelineatorWeightsError, match="do not fit"):
        read_weights(wrong_shape)
    huge_config = tmp_path / "huge.safetensors"
    save_file(
        {"x": np.zeros(1, np.float32)},
        str(huge_config),
        metadata={"config": '{"channels": [100000, 100000], "kernel_size": 7, "in_channels": 2}'},
    )
    with pytest.raises(DelineatorWeightsError, match="out of range"):
        read_weights(huge_config)
    from safetensors import safe_open
    from safetensors.numpy import load_file

    state = load_file(str(WEIGHTS))
    with safe_open(str(WEIGHTS), framework="np") as handle:
        metadata = handle.metadata()
    state["head.weight"] = np.full_like(state["head.weight"], np.nan)  # same names and shapes, poisoned values
    poisoned = tmp_path / "poisoned.safetensors"
    save_file(state, str(poisoned), metadata=metadata)
    with pytest.raises(DelineatorWeightsError, match="not finite"):
        read_weights(poisoned)
    oversized = tmp_path / "oversized.safetensors"
    with oversized.open("wb") as handle:
        handle.truncate(net.MAX_WEIGHTS_BYTES + 1)
    with pytest.raises(DelineatorWeightsError, match="more than"):
        read_weights(oversized)
    with pytest.raises(DelineatorWeightsError, match="no delineator weights"):
        read_weights(tmp_path / "absent.safetensors")


@pytest.mark.realdata
@pytest.mark.parametrize("record", ["23", "51", "83"])  # complete RBBB, complete LBBB, complete LBBB (ludb.csv)
def test_the_network_measures_a_complete_bundle_branch_block_as_wide(shared_data, record):
    from ecglens.io import read_record
    from ecglens.waves.delineate import delineate

    header = shared_data / "ludb" / "data" / f"{record}.hea"
    assert "Complete" in header.read_text() and "bundle branch block" in header.read_text()
    signal = read_record(header)
    found = delineate(signal.signal, signal.sampling_rate_hz, signal.lead_names, method="net")
    measured = measure(found, signal.signal)
    assert measured.qrs_ms >= 120 and any(note.startswith("QTc on a QRS of") for note in measured.notes)


@pytest.mark.slow
@pytest.mark.realdata
def test_delineator_training_runs_one_epoch_on_four_records(shared_data, tmp_path):
    from ecglens.train.delineator import main
    from ecglens.waves.net import read_weights

    out = tmp_path / "net"
    assert (
        main(
            [
                "--ludb",
                str(shared_data / "ludb" / "data"),
                "--limit",
                "4",
                "--folds",
                "2",
                "--max-epochs",
                "1",
                "--final",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "cv.json").is_file() and (out / "fold_1.safetensors").is_file()
    assert read_weights(out / "delineator.safetensors").config.channels == (8, 16, 32, 64)


def test_p_waves_at_no_constant_pr_give_no_pr_interval():
    """Atrial fibrillation's f waves, marked as P waves at random distances before each QRS, are no conducted P
    waves: no PR, and the note says why (the old rule gave a PR whenever half the beats had a P mark)."""
    beats = _beats()
    scattered = beats["P"].copy()
    shifts = np.array([0, -40, 30, -70, 15, -25, 45, -55])  # samples: PR from 120 to 340 ms, no constant PR
    scattered[:, 0] += shifts
    scattered[:, 2] += shifts
    marks = WaveMarks(RATE, tuple(LeadWaves(lead, {**beats, "P": scattered}) for lead in ("I", "II", "aVF")), "x")
    measured = measure(marks)
    assert measured.pr_ms is None and measured.p_axis_deg is None
    assert any("no P wave at a constant PR" in note for note in measured.notes)


def test_a_premature_beat_does_not_cost_the_pr_interval():
    beats = {k: v.copy() for k, v in _beats().items()}
    beats["QRS"][4] -= np.array([0, 0, -40])  # one wider QRS: left out of the intervals, the PR still measured
    measured = measure(WaveMarks(RATE, tuple(LeadWaves(lead, beats) for lead in ("I", "II", "aVF")), "x"))
    assert measured.premature_beats == 1 and measured.pr_ms == pytest.approx(200.0)


@pytest.mark.realdata
@pytest.mark.parametrize("record", ["51", "93"])
def test_a_real_record_without_p_waves_gets_no_pr_and_a_wide_qrs_measures_wide(shared_data, record):
    """LUDB 51: atrial fibrillation with complete LBBB; 93: atrial fibrillation, paced (the cardiologists mark no
    P wave in either). The shipped delineator was trained on these records: the cross-validated figures are in
    docs/waves.md."""
    import wfdb

    from ecglens.leads import LEAD_NAMES
    from ecglens.waves.delineate import measurements_of

    signal = wfdb.rdrecord(str(shared_data / "ludb" / "data" / record)).p_signal.T
    measured = measurements_of(signal, RATE, LEAD_NAMES)
    assert measured.pr_ms is None and any("no P wave" in note for note in measured.notes)
    assert measured.qrs_ms is not None and measured.qrs_ms >= 120


def test_a_premature_beat_leaves_the_pr_interval_of_the_dominant_beats_measured():
    beats = _beats()
    kinds = {k: v.copy() for k, v in beats.items()}
    kinds["QRS"][4] = beats["QRS"][4] - 200
    kinds["QRS"][4, 2] += 40
    measured = measure(WaveMarks(RATE, tuple(LeadWaves(lead, kinds) for lead in ("I", "II", "aVF")), "hand-built"))
    assert measured.premature_beats >= 1
    assert measured.pr_ms == pytest.approx(200.0)  # a premature beat is no reason to withhold the PR interval


@pytest.mark.realdata
def test_a_first_degree_av_block_outside_the_networks_range_keeps_its_long_pr(shared_data):
    """The GE MUSE example (the cart's PR 330 ms): the network's P onsets wandered 156-236 ms before the QRS and
    gave a PR of 172; neurokit2's steadier P waves give the PR (and say so)."""
    pytest.importorskip("ecgdatakit")
    pytest.importorskip("neurokit2")
    from ecglens.io import read_record
    from ecglens.waves.delineate import measurements_of

    (path,) = (shared_data / "clinical" / "muse").glob("*.xml")
    record = read_record(path)
    measured = measurements_of(record.signal, record.sampling_rate_hz, record.lead_names)
    assert measured.pr_ms == pytest.approx(330, abs=15) and "pr_ms" in measured.outside_normal()
    assert any("PR from neurokit2's P waves" in note for note in measured.notes)


def test_the_pointing_game_asks_whether_the_maps_peak_lies_where_a_cardiologist_looks():
    marks = _marks(leads=("I", "II", "V1"))
    labels = segment_labels(marks, N)
    on_pr = np.isin(labels, [SEGMENTS.index("P"), SEGMENTS.index("PR")]).astype(float)
    peak_on_qrs = on_pr.copy()
    peak_on_qrs[labels == SEGMENTS.index("QRS")] = 2.0  # most evidence on P and PR, but the largest value on QRS
    placed = wave_shares(on_pr, labels, marks.lead_names, "IAVB", "test")
    missed = wave_shares(peak_on_qrs, labels, marks.lead_names, "IAVB", "test")
    assert placed.pointing is True and missed.pointing is False and missed.plausibility > 0
    assert wave_shares(-on_pr, labels, marks.lead_names, "IAVB", "test").pointing is None  # no evidence: no peak


def test_null_maps_know_no_class_and_follow_the_methods_shape():
    from ecglens.explain.waves import signal_map

    rng = np.random.default_rng(0)
    signal = rng.normal(size=(3, 200)).astype(np.float32)
    edge = signal_map(signal, "edge", per_lead=True)
    assert edge.shape == signal.shape and np.allclose(edge[:, 1:-1], np.abs(signal[:, 2:] - signal[:, :-2]) / 2)
    amplitude = signal_map(signal, "amplitude", per_lead=True)
    assert np.allclose(amplitude, np.abs(signal - np.median(signal, axis=1, keepdims=True)))
    assert np.allclose(signal_map(signal + 5.0, "amplitude", per_lead=True), amplitude, atol=1e-5)  # baseline-free
    per_time = signal_map(signal, "edge", per_lead=False)  # Grad-CAM's shape: one value per time step, every lead
    assert np.allclose(per_time[0], edge.sum(axis=0)) and np.allclose(per_time[0], per_time[2])


def test_a_method_is_compared_with_each_null_record_by_record():
    from ecglens.explain.waves import PlausibilityRow, plausibility_table

    marks = _marks(leads=("I", "II", "V1"))
    labels = segment_labels(marks, N)
    on_pr = np.isin(labels, [SEGMENTS.index("P"), SEGMENTS.index("PR")]).astype(float)
    rng = np.random.default_rng(1)
    items = []
    for _ in range(12):  # the method on P and PR with some spill; the null spread evenly with noise
        method = wave_shares(on_pr + 0.05 * rng.random(labels.shape), labels, marks.lead_names, "IAVB", "shap")
        null = wave_shares(1 + 0.1 * rng.random(labels.shape), labels, marks.lead_names, "IAVB", "edge")
        worse = wave_shares(on_pr * 5 + 0.01, labels, marks.lead_names, "IAVB", "amplitude")
        items.append((method, (null, worse)))
    (row,) = plausibility_table(items)
    edge, amplitude = row.null("edge"), row.null("amplitude")
    assert edge is not None and amplitude is not None and edge.n == 12
    assert edge.difference == pytest.approx(row.plausibility - edge.plausibility)
    assert edge.verdict() == "above" and edge.interval[0] > 0 and edge.p_value == pytest.approx(2 / 2**12)
    assert amplitude.verdict() == "below"  # a null that sits on P and PR more tightly than the method
    assert row.pointing == 1.0 and edge.pointing is not None
    assert PlausibilityRow.from_dict(row.to_dict()) == row  # nulls survive plausibility.csv's flat row


def test_few_pairs_get_an_exact_sign_flip_test_and_no_bootstrap_interval():
    from ecglens.explain.waves import compare_with_null, plausibility_table, sign_flip_p

    rng = np.random.default_rng(0)
    assert sign_flip_p(np.array([0.3, 0.2, 0.4, 0.1, 0.5]), rng) == pytest.approx(2 / 32)  # the smallest at n 5
    assert sign_flip_p(np.array([0.3, -0.3]), rng) == pytest.approx(1.0)
    assert sign_flip_p(np.array([1.0, 2.0, -0.5]), rng) == pytest.approx(4 / 8)  # |mean| >= 2.5/3: 4 of 8 patterns
    assert 0 < sign_flip_p(np.full(40, 0.1), rng) < 0.001  # random patterns above 16 pairs, never exactly 0
    marks = _marks(leads=("I",))
    labels = segment_labels(marks, N)
    on_qrs = (labels == SEGMENTS.index("QRS")).astype(float)
    pairs = [
        (
            wave_shares(on_qrs + 0.01, labels, marks.lead_names, "PVC", "shap"),
            wave_shares(np.ones(labels.shape), labels, marks.lead_names, "PVC", "edge"),
        )
        for _ in range(4)
    ]
    few = compare_with_null(pairs, "edge", rng, 200)  # four records far above: a bootstrap would exclude 0
    assert few.n == 4 and few.difference > 0.3 and few.interval is None
    assert few.p_value == pytest.approx(2 / 16) and few.verdict() == "tie"
    (row,) = plausibility_table([(method, (null,)) for method, null in pairs])
    assert row.n == 4 and row.plausibility > 0.3 and row.interval is None  # no undercovering interval either


def test_grad_cams_null_has_no_finer_detail_than_its_layer():
    import torch

    from ecglens.explain.attribution import at_resolution, gradcam, layer_steps
    from ecglens.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("resnet_tiny", 3, 2).eval()
    steps = layer_steps(model, 3, 400)
    gradcam_map = gradcam(model, torch.randn(1, 3, 400), 0)[0]
    spikes = np.zeros((3, 400))
    spikes[:, ::50] = 1.0  # a QRS-like impulse train: full resolution puts all of it on 8 samples
    pooled = at_resolution(spikes, steps)
    assert 1 < steps < 400 and pooled.shape == spikes.shape
    assert pooled.sum() == pytest.approx(spikes.sum(), rel=0.05) and pooled.max() < 0.5
    # the pooled map is as smooth as Grad-CAM's own: no jump between neighbours larger than Grad-CAM can make
    step_ratio = np.abs(np.diff(pooled[0])).max() / pooled[0].max()
    assert step_ratio <= 2.0 * np.abs(np.diff(gradcam_map[0])).max() / max(gradcam_map[0].max(), 1e-9) + 1e-6


def test_the_randomised_model_has_learned_nothing_and_leaves_the_model_alone():
    import torch

    from ecglens.explain.waves import randomised_model
    from ecglens.models.config import ResNetConfig
    from ecglens.models.resnet1d import ResNet1d

    model = ResNet1d(ResNetConfig(layers=(1, 1, 1, 1), width=8)).eval()
    before = [p.detach().clone() for p in model.parameters()]
    random = randomised_model(model, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # the original untouched
    assert not all(torch.equal(a, b) for a, b in zip(model.parameters(), random.parameters(), strict=True))
    again = randomised_model(model, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(random.parameters(), again.parameters(), strict=True))
    assert not random.training


def test_the_measurements_line_names_what_lies_outside_normal_as_a_reader_would():
    from dataclasses import replace

    measured = replace(measure(_marks()), p_axis_deg=76.0)
    assert "P axis 76 deg (0 to 75)" in measured.line()  # never the field's name, p_axis_deg
    assert "p_axis_deg" not in measured.line() and "QRS axis n/a," not in measured.line()
    assert "QRS axis n/a;" in measured.line()  # no unit after a value that is not there
