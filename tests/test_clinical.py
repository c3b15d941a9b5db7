"""Clinical ECG files in (DICOM, HL7 aECG, Philips XML, GE MUSE XML, SCP-ECG), personal data kept out of every
output, hostile files refused by name within bounded time and memory, and the one-page PDF report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinical_files import (
    aecg_xml,
    dicom_ecg,
    hostile_clinical_files,
    muse_xml,
    read_in_a_fresh_process,
    sierra_103_xml,
)
from ecglens.io import RecordError, read_record
from ecglens.leads import LEAD_NAMES

pytest.importorskip("ecgdatakit", reason="clinical files need pip install 'ecglens[clinical]'")

MUSE = "muse/MUSE_20200923_093504_79000_example.xml"
PHILIPS_104 = "philips/3191723_ZZDEMOPTONLY_1-04_orig.xml"
CHECKED = {
    # file: format, rate (Hz), samples, lead, its min and max (mV), each checked by hand outside ecgdatakit:
    "aecg/Example aECG.xml": ("hl7-aecg", 500, 5000, "I", -0.305, 0.415),  # lead I's <digits> x scale 2.5 uV
    "dicom/anonymous_ecg.dcm": ("dicom", 1000, 10000, "II", -0.20875, 1.1375),  # pydicom's int16 x 1.25 uV
    MUSE: ("ge-muse-xml", 500, 5000, "I", -0.19032, 0.49288),  # lead I's base64 int16 x 4.88 uV
    "scp/Example.scp": ("scp-ecg", 500, 5000, "I", -0.305, 0.415),  # the same recording as the aECG example
    # Philips XLI compression is not decodable by hand: its scale is checked by the 1-mV pulse (next test)
    "philips/129DYPRG.XML": ("philips-xml", 500, 5264, None, None, None),
    PHILIPS_104: ("philips-xml", 500, 5300, None, None, None),
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(CHECKED))
def test_every_shared_clinical_file_reads_as_checked_by_hand(shared_data, name):
    fmt, rate, n, lead, low, high = CHECKED[name]
    record = read_record(shared_data / "clinical" / name)
    assert (record.file_format, record.sampling_rate_hz, record.n_samples) == (fmt, rate, n)
    assert record.lead_names == LEAD_NAMES and record.signal.dtype == np.float32
    assert re.fullmatch(r"ecg-[0-9a-f]{12}", record.record_id) and record.record_id in record.source_path
    if lead is not None:
        trace = record.signal[LEAD_NAMES.index(lead)]
        assert float(trace.min()) == pytest.approx(low, abs=1e-5) and float(trace.max()) == pytest.approx(
            high, abs=1e-5
        )


@pytest.mark.realdata
def test_the_philips_calibration_pulse_is_one_millivolt_and_is_cut(shared_data):
    from ecgdatakit import FileParser

    path = shared_data / "clinical" / PHILIPS_104
    parsed = FileParser.parse(path)
    raw = np.stack([lead.to_physical().convert_units("mV").samples for lead in parsed.leads])
    assert raw.shape[1] == 5500 and np.all(raw[:, 5350:5450] == 1.0)  # 200 ms at 1 mV on every lead: the scale
    record = read_record(path)
    assert record.n_samples == 5300 and np.abs(record.signal[:, -50:]).max() < 1.0  # the pulse is not an ECG


@pytest.mark.realdata
def test_the_muse_limb_leads_are_derived_and_said_so(shared_data):
    record = read_record(shared_data / "clinical" / MUSE)
    assert record.derived_leads == ("III", "aVR", "aVL", "aVF")
    lead = {name: record.signal[i].astype(np.float64) for i, name in enumerate(LEAD_NAMES)}
    assert np.abs(lead["III"] - (lead["II"] - lead["I"])).max() < 0.002  # 2 uV
    assert np.abs(lead["aVR"] + (lead["I"] + lead["II"]) / 2).max() < 0.002
    assert np.abs(lead["aVL"] - (lead["I"] - lead["II"] / 2)).max() < 0.002
    assert np.abs(lead["aVF"] - (lead["II"] - lead["I"] / 2)).max() < 0.002


def test_a_generated_muse_file_reads_and_derives_without_shared_data(tmp_path):
    path = tmp_path / "export.xml"
    path.write_text(muse_xml(), encoding="latin-1")
    record = read_record(path)
    assert record.derived_leads == ("III", "aVR", "aVL", "aVF") and record.n_samples == 5000
    i, ii, iii = (record.signal[LEAD_NAMES.index(name)] for name in ("I", "II", "III"))
    assert np.abs(iii - (ii - i)).max() < 0.002
    dicom = read_record(dicom_ecg(tmp_path / "ecg.dcm"))
    assert dicom.file_format == "dicom" and dicom.signal.shape == (12, 5000)


@pytest.mark.realdata
def test_the_files_own_statements_are_kept_but_never_a_name(shared_data):
    path = shared_data / "clinical" / MUSE
    hidden = read_record(path)
    assert hidden.statements == (
        "Sinus bradycardia with sinus arrhythmia with 1st degree A-V block",
        "Otherwise normal ECG",
    )
    assert hidden.identifiers == () and hidden.patient_id.startswith("pt-")
    shown = read_record(path, include_identifiers=True)
    assert "Confirmed by Garg, Ruchira M.D." in shown.statements and ("last name", "MUSE") in shown.identifiers
    assert shown.record_id == path.stem and shown.patient_id == "201700237"
    # one patient, two files (the aECG and SCP examples): one pseudonymous patient id, two record ids
    aecg, scp = (read_record(shared_data / "clinical" / n) for n in ("aecg/Example aECG.xml", "scp/Example.scp"))
    assert aecg.patient_id == scp.patient_id and aecg.record_id != scp.record_id


def _personal_data(shared_data: Path) -> list[str]:
    """Every name, id, date and free text of the shared files (as the library reads them), and their file names,
    in the spellings an output could hold."""
    from ecgdatakit import FileParser

    from ecglens.io.clinical import identifiers_of

    values: set[str] = {"Garg", "Ruchira"}  # the over-reader named in a MUSE statement
    for path in (shared_data / "clinical").rglob("*.*"):
        parsed = FileParser.parse(path)
        values.add(path.stem)
        for field, value in identifiers_of(parsed):
            if field in ("birth date", "acquired"):
                day = value[:10]
                y, m, d = day.split("-")
                values |= {day, f"{y}{m}{d}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}.{m}.{y}"}
            else:
                values |= {value, *value.split()}
    # short or numeric-only values would match unrelated numbers (a probability 0.9999): names of 4+ letters,
    # numbers of 6+ digits, every date; "Heart" (of the place "Heart Station #1", still grepped whole) is also a
    # word of the journals the criteria cite (Eur Heart J)
    generic = {"Lead", "Heart"}
    return sorted(v for v in values if (len(v) >= 6 if v.isdigit() else len(v) >= 4) and v not in generic)


def _outputs(folder: Path) -> str:
    """Every text a run wrote: text files as they are, PDFs through pdftotext."""
    texts = []
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".json", ".jsonl", ".csv", ".md", ".html", ".txt", ".log", ".tsv"):
            texts.append(path.read_text(errors="replace"))
        elif path.suffix == ".pdf":
            texts.append(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout)
            texts.append(path.read_bytes().decode("latin-1"))  # the PDF's own metadata
    return "\n".join(texts)


def _ecglens(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ecglens.cli", "--threads", "1", *args], capture_output=True, text=True, timeout=600
    )


def _found(texts: str, values: list[str]) -> list[str]:
    return [v for v in values if re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", texts)]


@pytest.mark.realdata
@pytest.mark.slow
def test_no_output_of_a_run_holds_a_name_or_a_date_unless_asked(shared_data, tmp_path):
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext absent: apt-get install poppler-utils")
    folder = shared_data / "clinical"
    values = _personal_data(shared_data)
    assert {"ZZDEMOPTONLY", "TESTONE", "Clark", "1953-05-08", "Garg"} <= set(values)
    out = tmp_path / "out"
    predict = _ecglens(
        "predict", str(folder), "--measurements", "--explain", "gradcam", "--report", "pdf", "--out", str(out / "p")
    )
    assert predict.returncode == 0, predict.stderr[-2000:]
    summary = _ecglens("data", "summary", f"clinical:{folder}", "--out", str(out / "s"))
    prepare = _ecglens("data", "prepare", f"clinical:{folder}", "--out", str(out / "c"), "--sampling-rate", "100")
    assert summary.returncode == 0 and prepare.returncode == 0, summary.stderr + prepare.stderr
    rows = [json.loads(line) for line in (out / "p" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and len(list((out / "p" / "reports").glob("*.pdf"))) == 6  # not a vacuous grep
    assert any("Otherwise normal ECG" in row["file_statements"] for row in rows)
    everything = _outputs(out) + "".join(run.stdout + run.stderr for run in (predict, summary, prepare))
    assert "RESEARCH USE ONLY" in everything and "6 records" in (out / "s" / "summary.md").read_text()
    assert _found(everything, values) == []
    # asked for: the same run keeps them, so the grep above can fail
    shown = _ecglens(
        "predict", str(folder / "philips"), "--include-identifiers", "--report", "pdf", "--out", str(tmp_path / "i")
    )
    assert shown.returncode == 0
    assert {"ZZDEMOPTONLY", "1950-01-01"} <= set(_found(_outputs(tmp_path / "i"), values))


@pytest.mark.realdata
def test_serve_scores_an_uploaded_clinical_file_under_a_pseudonym(shared_data, tiny_run):
    from fastapi.testclient import TestClient

    from ecglens.serve import ServeConfig, create_app

    path = shared_data / "clinical" / PHILIPS_104
    with TestClient(create_app(ServeConfig(tiny_run.bundle, "cpu")), base_url="http://127.0.0.1") as client:
        response = client.post("/api/predict", files=[("files", (path.name, path.read_bytes()))])
        assert response.status_code == 200, response.text
        body = response.json()
        report = client.get(f"/api/results/{body['id']}/report.pdf", params={"method": "gradcam"})
        unknown = client.get("/api/results/nothing/report.pdf")
    assert re.fullmatch(r"ecg-[0-9a-f]{12}", body["record_id"]) and body["file_format"] == "philips-xml"
    assert body["file_statements"][0].startswith("SINUS RHYTHM") and "ZZDEMOPTONLY" not in response.text
    assert report.status_code == 200 and report.headers["content-type"] == "application/pdf"
    assert (
        report.content.startswith(b"%PDF") and f'filename="{body["record_id"]}' in report.headers["content-disposition"]
    )
    assert b"ZZDEMOPTONLY" not in report.content and unknown.status_code == 404


HOSTILE = [
    "xml_billion_laughs",
    "xml_external_entity",
    "xml_bad_base64",
    "xml_lying_count",
    "xml_wrong_lead_codes",
    "dcm_gigabyte_declared",
    "dcm_ct_image",
    "dcm_no_waveform",
    "dcm_deflated_bomb",
    "dcm_negative_sensitivity",
    "xml_xli_bomb",
    "xml_aecg_nan_scale",
    "xml_muse_negative_scale",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_clinical_file_is_a_named_error_in_bounded_time_and_memory(tmp_path, name):
    path, words = hostile_clinical_files(tmp_path)[name]
    outcome, seconds, peak = read_in_a_fresh_process(path)
    assert outcome.startswith(("RecordError", "RecordTooLarge")) and words in outcome, outcome
    assert path.stem not in outcome  # named by its pseudonym
    assert seconds < 5 and peak < 500, (seconds, peak)


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("keep", [40, 3000, 30000])
def test_a_truncated_scp_file_is_a_named_error_in_bounded_time_and_memory(shared_data, tmp_path, keep):
    path = tmp_path / "cut.scp"
    path.write_bytes((shared_data / "clinical" / "scp" / "Example.scp").read_bytes()[:keep])
    outcome, seconds, peak = read_in_a_fresh_process(path)
    assert outcome.startswith("RecordError") and "SCP-ECG" in outcome and "declares" in outcome, outcome
    assert seconds < 5 and peak < 500


BAD_SCALES = {
    "NaN": "not finite",
    "inf": "not finite",
    "1e400": "not finite",
    "abc": "not a number",
    "-2.5": "negative: it would invert the signal",
    "0": "is 0",
    "1e300": "is above 1e+06 units per count",
}
BAD_ORIGINS = {"NaN": "not finite", "1e400": "not finite", "abc": "not a number"}


def _scaled_file(tmp_path: Path, kind: str, scale: str = "", origin: str = "") -> Path:
    """A generated clinical file of ``kind`` whose scale (or origin) is written as ``scale`` (``origin``)."""
    if kind == "aecg":
        path = tmp_path / "scaled.xml"
        path.write_text(aecg_xml(n=1000, scale=scale or "2.5", origin=origin or "0"))
    elif kind == "muse":
        path = tmp_path / "scaled.xml"
        path.write_text(muse_xml(n=1000).replace(">4.88<", f">{scale or '4.88'}<"), encoding="latin-1")
    elif kind == "philips":
        path = tmp_path / "scaled.xml"
        samples = np.random.default_rng(0).normal(0, 100, 12 * 5000).astype("<i2").tobytes()
        path.write_text(sierra_103_xml(samples, resolution=scale or "5", compressed=False))
    else:
        keyword = "ChannelBaseline" if origin else "ChannelSensitivity"
        path = dicom_ecg(tmp_path / "scaled.dcm", n=1000, scales={keyword: origin or scale})
    return path


@pytest.mark.parametrize("kind", ["aecg", "muse", "philips", "dicom"])
@pytest.mark.parametrize("scale", sorted(BAD_SCALES))
def test_a_scale_that_is_not_a_finite_positive_number_is_refused_by_name(tmp_path, kind, scale):
    # issue 35: aECG read NaN/inf/abc as 1 uV, and aECG, MUSE and DICOM applied a negative scale (an inverted ECG)
    with pytest.raises(RecordError, match="scale") as caught:
        read_record(_scaled_file(tmp_path, kind, scale=scale))
    assert BAD_SCALES[scale] in caught.value.reason, caught.value.reason


@pytest.mark.parametrize("kind", ["aecg", "dicom"])
@pytest.mark.parametrize("origin", sorted(BAD_ORIGINS))
def test_an_origin_that_is_not_a_finite_number_is_refused_by_name(tmp_path, kind, origin):
    # issue 35: aECG's <origin value="1e400"> was ignored (read as 0)
    with pytest.raises(RecordError, match="origin") as caught:
        read_record(_scaled_file(tmp_path, kind, origin=origin))
    assert BAD_ORIGINS[origin] in caught.value.reason, caught.value.reason


def test_a_clinical_file_larger_than_the_limit_is_refused_unread(tmp_path):
    from ecglens.io.clinical import MAX_FILE_BYTES
    from ecglens.io.record import RecordTooLarge

    path = tmp_path / "huge.xml"
    with open(path, "wb") as handle:
        handle.write(b"<RestingECG>")
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(RecordTooLarge, match="more than a clinical ECG file may be"):
        read_record(path)


def _mutated(data: bytes, edits: list[tuple[int, int]], cut: float) -> bytes:
    out = bytearray(data[: max(1, int(len(data) * cut))])
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out)


_EDITS = st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=20)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=_EDITS, cut=st.floats(0.0, 1.0), kind=st.sampled_from(["xml", "dcm"]))
def test_fuzzed_clinical_files_raise_only_named_errors(tmp_path, edits, cut, kind):
    source = tmp_path / f"source.{kind}"
    if kind == "xml":
        source.write_text(muse_xml(n=1000), encoding="latin-1")
    else:
        dicom_ecg(source, n=1000)
    path = tmp_path / f"fuzzed.{kind}"
    path.write_bytes(_mutated(source.read_bytes(), edits, cut))
    try:
        record = read_record(path)
    except RecordError:
        return
    assert np.isfinite(record.signal).all() and record.lead_names == LEAD_NAMES


def test_without_the_extra_a_clinical_file_names_it(tmp_path, monkeypatch):
    from ecglens.io.clinical import ClinicalUnavailable

    path = tmp_path / "export.xml"
    path.write_text(muse_xml(), encoding="latin-1")
    monkeypatch.setitem(sys.modules, "ecgdatakit", None)  # as if not installed
    with pytest.raises(ClinicalUnavailable, match=r"pip install 'ecglens\[clinical\]'") as caught:
        read_record(path)
    assert isinstance(caught.value, RecordError) and "export" not in caught.value.path  # a batch's named issue


def test_pseudonyms_are_keyed_stable_and_keep_their_key_private(tmp_path, monkeypatch):
    from ecglens.util import pseudonym as module

    first = module.pseudonym("/exports/SMITH_JOHN.xml")
    assert first == module.pseudonym("/exports/SMITH_JOHN.xml") and re.fullmatch(r"ecg-[0-9a-f]{12}", first)
    monkeypatch.setenv(module.SALT_ENV, "another key")
    assert module.pseudonym("/exports/SMITH_JOHN.xml") != first  # keyed: a guessed path cannot be confirmed
    monkeypatch.delenv(module.SALT_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    module._salt.cache_clear()
    try:
        made = module.pseudonym("x")
        key = tmp_path / "ecglens" / "id-salt"
        assert key.is_file() and (key.stat().st_mode & 0o777) == 0o600 and len(key.read_bytes()) == 32
        module._salt.cache_clear()
        assert module.pseudonym("x") == made  # the same key next run
    finally:
        module._salt.cache_clear()


@pytest.mark.realdata
def test_the_one_page_report_is_a4_with_the_ecg_at_true_scale(shared_data, tmp_path):
    if shutil.which("pdfinfo") is None:
        pytest.skip("pdfinfo absent: apt-get install poppler-utils")
    from ecglens.cli import main

    out = tmp_path / "out"
    assert (
        main(["predict", str(shared_data / "clinical" / MUSE), "--measurements", "--report", "pdf", "--out", str(out)])
        == 0
    )
    (pdf,) = (out / "reports").glob("*.pdf")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert re.search(r"Pages:\s+1\n", info) and "841.89 x 595.276 pts (A4)" in info
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
    for words in (
        "RESEARCH USE ONLY",
        "Decisions (fused rule)",
        "the model's probability / threshold",
        "(by criteria)",
        "Measurements",
        "QTc Bazett",
        "The file's own statement",
        "Sinus bradycardia",
        "derived from I and II",
        "25 mm/s",
        "The recording at its own 500 Hz",  # the cart's recording, not the model's 100-Hz input
        "0.5-150 Hz filter",
    ):
        assert words in " ".join(text.split()), words
    page = tmp_path / "page"
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(page)], check=True)
    from PIL import Image

    image = np.asarray(Image.open(f"{page}-1.png").convert("L"))
    assert (
        image.shape[1] == 585 and abs(image.shape[0] - 413) <= 1 and (image < 100).mean() > 0.005
    )  # a drawn page, not a blank one


def test_the_page_draws_the_recording_at_its_rate_over_the_span_the_model_scored():
    from types import SimpleNamespace

    from ecglens.io.record import Record
    from ecglens.preprocess import baseline_drift_mv
    from ecglens.report.pdf import page_trace

    rate, seconds = 500.0, 12.0
    t = np.arange(int(rate * seconds)) / rate
    signal = np.zeros((12, t.size), np.float32)
    signal[:, (t % 1.0) < 0.01] = 1.0  # a 10-ms spike every second: lost at the model's 100 Hz, kept here
    drifting = signal + 3.0 * np.sin(2 * np.pi * 0.1 * t).astype(np.float32)  # several mV of baseline drift
    record = Record("r", "test", drifting[::-1], rate, tuple(reversed(LEAD_NAMES)))  # the file's own lead order
    meta = SimpleNamespace(sampling_rate_hz=100.0, lead_names=LEAD_NAMES, policy=SimpleNamespace(name="original"))
    scored = SimpleNamespace(record=record, input=SimpleNamespace(n_samples=1000, signal=np.zeros((12, 1000))))
    trace = page_trace(scored, meta)
    assert trace.rate == 500 and trace.signal.shape == (12, 5000)  # the last 10 s: the span the input holds
    assert trace.input_start_s == pytest.approx(0.0) and "500 Hz" in trace.what and "display" in trace.what
    assert "0.5-150 Hz" in trace.what
    assert baseline_drift_mv(drifting, rate).max() > 2 and baseline_drift_mv(trace.signal, rate).max() < 0.2
    assert trace.signal[0].max() > 0.5  # the spikes survive the display filter
    band = np.zeros(1000)
    band[500:510] = 1  # 5.00-5.10 s of the input
    mapped = trace.at_rate(band, 100.0)
    assert np.flatnonzero(mapped)[[0, -1]].tolist() == [2498, 2547]  # the same 100 ms at 500 Hz (rounded ends)
    assert mapped.sum() == pytest.approx(band.sum())  # a sum over a span is kept
    assert page_trace(SimpleNamespace(record=None, input=scored.input), meta).rate == 100  # no recording: the input


def test_the_display_filter_keeps_an_st_elevation():
    from ecglens.preprocess import display_filter

    rate = 500.0
    t = np.arange(5000) / rate
    beat = t % 1.0  # 60 bpm: QRS 0.20-0.30 s, ST raised 0.2 mV from 0.30 to 0.45 s, T to 0.70 s
    signal = np.where((beat >= 0.2) & (beat < 0.3), 1.5 * np.sin(np.pi * (beat - 0.2) / 0.1), 0.0)
    signal = signal + np.where((beat >= 0.3) & (beat < 0.45), 0.2, 0.0)
    signal = signal + np.where((beat >= 0.45) & (beat < 0.7), 0.2 + 0.3 * np.sin(np.pi * (beat - 0.45) / 0.25), 0.0)
    shown = display_filter(np.tile(signal, (12, 1)), rate)[0]
    st = [shown[int((k + 0.38) * rate)] - shown[int((k + 0.15) * rate)] for k in range(2, 8)]  # ST minus PR
    assert np.median(st) == pytest.approx(0.2, rel=0.1)  # the level a cardiologist reads, within 10 %


def test_a_drifting_baseline_is_a_named_warning():
    from ecglens.predict import assess_quality

    rate = 500.0
    t = np.arange(5000) / rate
    signal = np.zeros((12, t.size), np.float32)
    signal[:, (t % 1.0) < 0.04] = 1.0
    signal[8] += (2.5 * t / 10).astype(np.float32)  # V3 climbs 2.5 mV over 10 s
    warnings = assess_quality(signal, rate, LEAD_NAMES, 10.0).warnings
    (drift,) = [w for w in warnings if "drift" in w]
    assert drift == "baseline drift over 2 mV (its median per second moves): V3 2.3 mV"  # that lead alone
    signal[8] -= (1.5 * t / 10).astype(np.float32)  # 1 mV over 10 s: no warning
    assert not any("drift" in w for w in assess_quality(signal, rate, LEAD_NAMES, 10.0).warnings)


def test_the_page_prints_tall_voltages_at_half_standard_rather_than_clipping_them():
    from ecglens.report.pdf import _gain

    rng = np.random.default_rng(0)
    normal = rng.normal(0, 0.05, (12, 1000))
    normal[:, ::100] = 1.2  # R waves of 1.2 mV: 10 mm/mV
    gain, placed = _gain(normal, 100.0, LEAD_NAMES)
    assert gain == 10 and -placed.y_low * gain <= 141 - 12
    upright = normal.copy()
    upright[:, ::100] = 1.6  # 1.6-mV R waves: the usual room around each row would not fit, rows drawn closer do
    gain, placed = _gain(upright, 100.0, LEAD_NAMES)
    assert gain == 10 and -placed.y_low * gain <= 141 - 12
    assert all(row.half_up > 1.6 for row in placed.rows)  # nothing clipped
    tall = normal.copy()
    tall[LEAD_NAMES.index("V2"), 50::100] = -3.5  # LVH: deep S in V1-V3 would not fit at 10 mm/mV
    tall[LEAD_NAMES.index("V3"), 50::100] = -4.0
    gain, placed = _gain(tall, 100.0, LEAD_NAMES)
    assert gain == 5 and -placed.y_low * gain <= 141 - 12
    assert all(row.half_down < placed.max_half for row in placed.rows)  # nothing clipped
    huge = normal.copy()
    huge[:, 50::100] = -9.0  # beyond any page: half standard, rows capped to fit, clipping marked
    gain, placed = _gain(huge, 100.0, LEAD_NAMES)
    assert gain == 5 and -placed.y_low * gain <= 141 - 12 + 1e-9


def test_hostile_statements_never_lose_the_batch_and_are_printed_as_written(tmp_path):
    """U+FEFF, invalid and valid mathtext, and a 5,000-character statement in a GE MUSE file: the batch completes
    (exit 0, every record's PDF), and each statement is on the page as plain text, the long one cut."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext absent: apt-get install poppler-utils")
    from ecglens.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    hostile = (
        "Sinus\ufeff rhythm",
        "Invalid mathtext ... $$ $x^2$",
        r"Valid mathtext $\frac{a}{b}$ here",
        "LONG " + "lorem ipsum dolor " * 280,
    )
    (folder / "hostile.xml").write_text(muse_xml(statements=hostile), encoding="utf-8")
    (folder / "plain.xml").write_text(muse_xml(statements=("Normal sinus rhythm",)), encoding="latin-1")
    out = tmp_path / "out"
    assert main(["--quiet", "predict", str(folder), "--report", "pdf", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and (out / "issues.csv").read_text().splitlines() == ["path,reason"]
    (page,) = [  # the hostile record's page
        text
        for pdf in (out / "reports").glob("*.pdf")
        if "Sinus" in (text := subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout)
    ]
    assert "Sinus rhythm" in page and "\ufeff" not in page
    assert "$$ $x^2$" in page and r"$\frac{a}{b}$" in page and 10 < page.count("lorem") < 60
    assert not (out / "predictions.partial.jsonl").exists()


@pytest.mark.realdata
def test_the_muse_first_degree_av_block_decided_snr_is_flagged(shared_data, tmp_path):
    """GE MUSE file, cart PR 330 ms: the starter decides SNR; the criteria meet first-degree AV block and say so."""
    pytest.importorskip("neurokit2", reason="measurements need pip install 'ecglens[waves]'")
    from ecglens.cli import main

    out = tmp_path / "out"
    assert main(["-q", "predict", str(shared_data / "clinical" / MUSE), "--measurements", "--out", str(out)]) == 0
    row = json.loads((out / "predictions.jsonl").read_text())
    assert "IAVB" in row["criteria"]["met"] and row["criteria"]["classes"]["IAVB"]["status"] == "met"
    if "SNR" in row["decisions"]:
        flag = ": SNR; criteria: first-degree AV block (PR "
        assert any(f.startswith(("model" + flag, "fused" + flag)) for f in row["disagreements"])


def test_a_statements_control_characters_never_reach_the_terminal_the_csv_or_the_map(tmp_path, capsys):
    """Review of #35: a line feed in a statement forged a table row in the terminal, ESC and U+202E reached
    predictions.csv raw, a statement opening with '=' was a spreadsheet formula, and an earlier batch's private
    map stayed beside a later batch's results."""
    pytest.importorskip("ecgdatakit")
    import pandas as pd

    from ecglens.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    statements = ("Sinus rhythm\nFORGED ROW", "Normal \x1b[2J ECG \u202eevil", "=HYPERLINK(1)")
    utf8 = {"SpecificCharacterSet": "ISO_IR 192"}
    dicom_ecg(folder / "a.dcm", statements=statements, fields=utf8)  # DICOM text may hold any character
    out = tmp_path / "out"
    assert main(["-q", "--threads", "1", "predict", str(folder), "--out", str(out), "--pseudonym-map"]) == 0
    assert (out / "pseudonyms.private.csv").exists()
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\u202e" not in printed
    assert not any(line.startswith("FORGED ROW") for line in printed.splitlines())
    row = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert row["file_statements"] == ["Sinus rhythm FORGED ROW", "Normal [2J ECG evil", "=HYPERLINK(1)"]
    cell = pd.read_csv(out / "predictions.csv", keep_default_na=False).loc[0, "file_statements"]
    assert "\x1b" not in cell and "\u202e" not in cell and not cell.startswith("=")
    assert main(["-q", "--threads", "1", "predict", str(folder), "--out", str(out)]) == 0  # no map asked this time
    assert not (out / "pseudonyms.private.csv").exists()


HEMODYNAMIC = "1.2.840.10008.5.1.4.1.1.9.2.1"


def test_a_hemodynamic_waveform_of_the_12_leads_reads_as_an_ecg_and_one_of_pressures_does_not(tmp_path):
    """Some systems store a resting ECG as Hemodynamic Waveform Storage: its 12 channels labelled Lead I ... V6
    make it an ECG; the same class holding pressures is still refused, saying why."""
    import pydicom

    record = read_record(dicom_ecg(tmp_path / "hemodynamic.dcm", sop=HEMODYNAMIC), include_identifiers=True)
    assert record.file_format == "dicom" and record.lead_names == LEAD_NAMES and record.signal.shape == (12, 5000)
    dataset = pydicom.dcmread(tmp_path / "hemodynamic.dcm")
    for channel in dataset.WaveformSequence[0].ChannelDefinitionSequence[6:]:
        channel.ChannelSourceSequence[0].CodeMeaning = "Aortic pressure"
    dataset.save_as(tmp_path / "pressures.dcm")
    with pytest.raises(RecordError, match="Hemodynamic Waveform Storage\\) without the 12 leads, not an ECG"):
        read_record(tmp_path / "pressures.dcm")


@pytest.mark.realdata
def test_an_scp_error_names_its_format_once(shared_data, tmp_path):
    path = tmp_path / "cut.scp"
    path.write_bytes((shared_data / "clinical" / "scp" / "Example.scp").read_bytes()[:3000])
    with pytest.raises(RecordError) as caught:
        read_record(path)
    assert str(caught.value).count("SCP-ECG") == 1 and "SCP-ECG record declares" in str(caught.value)


def test_a_folder_scan_finds_dicom_files_without_a_suffix(tmp_path):
    """PACS exports name files IM0001 or by their UID: a folder given to predict finds them by DICOM's magic (not
    only through clinical:DIR); the medium's DICOMDIR and a text file without a suffix are no records."""
    from ecglens.predict import find_record_files

    (tmp_path / "export").mkdir()
    for name in ("IM0001", "1.2.826.0.1.3680043.8.498.1", "DICOMDIR"):
        dicom_ecg(tmp_path / "export" / name)
    (tmp_path / "export" / "README").write_text("not a record")
    found = find_record_files([tmp_path / "export"])
    assert [p.name for p in found] == ["1.2.826.0.1.3680043.8.498.1", "IM0001"]
    assert all(read_record(p).file_format == "dicom" for p in found)
