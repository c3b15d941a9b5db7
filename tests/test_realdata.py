"""Readers and mapping against the shared real sample records (skipped when absent)."""

import numpy as np
import pytest

from ecglens.io import parse_source, read_many, read_wfdb, scan_source
from ecglens.labels import load_label_map

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize(
    "spec, min_records, rate",
    [
        ("ptbxl100:{d}/ptb-xl", 1499, 100),
        ("ptbxl500:{d}/ptb-xl", 353, 500),
        ("cpsc2018:{d}/cpsc2018", 10, 500),
        ("challenge:{d}/challenge/cpsc2018", 14, 500),
        ("challenge:{d}/challenge/cpsc2018-extra", 36, 500),
        ("challenge:{d}/challenge/ptb-xl", 36, 500),
        ("challenge:{d}/challenge/ptb", 10, 1000),
    ],
)
def test_every_shared_record_loads_in_mv(shared_data, spec, min_records, rate):
    scan = scan_source(parse_source(spec.format(d=shared_data)))
    issues = []
    records = list(read_many(scan.refs, workers=2, issues=issues))
    assert issues == [] and len(records) >= min_records
    for record in records:
        assert record.signal.shape[0] == 12 and record.sampling_rate_hz == rate
        assert record.duration_s >= 6.0 - 1e-9
        # mV scale: QRS peaks of a few mV, never volts or microvolts.
        peak = np.percentile(np.abs(record.signal), 99.9)
        assert 0.05 < peak < 20, (record.record_id, peak)
    if spec.startswith("ptbxl"):
        assert all(r.duration_s == 10.0 for r in records)


def test_challenge_hr00001_equals_native_00001_hr(shared_data):
    challenge = read_wfdb(shared_data / "challenge" / "ptb-xl" / "HR00001.hea")
    native = read_wfdb(shared_data / "ptb-xl" / "records500" / "00000" / "00001_hr.hea")
    np.testing.assert_array_equal(challenge.signal, native.signal)


@pytest.mark.parametrize("profile", ["strict", "broad", "seed"])
def test_twin_records_get_the_same_classes_from_scp_and_snomed(shared_data, profile):
    """The 8 recordings the shared data holds natively (SCP) and as Challenge HR files (SNOMED). HR00003's file
    codes a first-degree AV block that PTB-XL's statements for ecg 3 do not (NORM, SR): the sources disagree,
    so it is the one pair allowed to differ, and by that class only."""
    label_map = load_label_map(profile)
    native = {int(ref.record_id): ref for ref in scan_source(parse_source(f"ptbxl100:{shared_data}/ptb-xl")).refs}
    twins = 0
    for ref in scan_source(parse_source(f"challenge:{shared_data}/challenge/ptb-xl")).refs:
        ecg_id = int(ref.record_id[2:])
        if ecg_id not in native:
            continue
        twins += 1
        scp = label_map.map(native[ecg_id].raw_labels, "scp").classes
        snomed = label_map.map(read_wfdb(ref.path).raw_labels, "snomed").classes
        if ecg_id == 3:
            assert (scp, snomed) == (("SNR",), ("IAVB",))
        else:
            assert scp == snomed, (ecg_id, scp, snomed)
    assert twins == 8
    # 599: anteroseptal infarction, prolonged PR, sinus rhythm: never SNR in either vocabulary
    assert "SNR" not in label_map.map(native[599].raw_labels, "scp").classes


def test_missing_500hz_rows_are_reported_not_fatal(shared_data):
    scan = scan_source(parse_source(f"ptbxl500:{shared_data}/ptb-xl"))
    assert len(scan.refs) + len(scan.issues) == 1499
    assert all("waveform file missing at 500 Hz" in issue.reason for issue in scan.issues)


def test_cpsc_original_labels_from_reference(shared_data):
    scan = scan_source(parse_source(f"{shared_data}/cpsc2018"))
    labels = {ref.record_id: ref.raw_labels for ref in scan.refs}
    assert labels["A1980"] == (("6", None),) and labels["A1983"] == (("1", None),)


def test_a_recording_held_in_two_formats_is_kept_once(shared_data):
    from ecglens.io.sources import scan_sources

    scan = scan_sources(
        [parse_source(f"ptbxl100:{shared_data}/ptb-xl"), parse_source(f"challenge:{shared_data}/challenge/ptb-xl")]
    )
    dropped = sorted(i.path.rsplit("/", 1)[-1] for i in scan.issues if "same recording" in i.reason)
    # HR00001-HR00007 and HR00599 are ecg_ids of the native sample; HR06000 and later are not
    assert dropped == [f"HR{n:05d}.hea" for n in (1, 2, 3, 4, 5, 6, 7, 599)]
    assert len(scan.refs) == 1499 + 36 - 8


def test_ludb_diagnoses_map_to_the_nine_classes_and_score_as_an_external_set(shared_data, tiny_run, tmp_path):
    """LUDB's free-text diagnoses (its headers' comments) are a vocabulary of their own; no model trains on LUDB,
    so it is an external test set: ``evaluate --external`` scores every labelled record, out-of-scope ones too."""
    import json

    from ecglens.cli import main

    record = read_wfdb(shared_data / "ludb" / "data" / "7.hea")  # sinus rhythm, single PAC, LVH, STEMI ...
    assert record.label_vocabulary == "ludb" and ("Atrial extrasystole", None) in record.raw_labels
    assert load_label_map("strict").map(record.raw_labels, "ludb").classes == ("PAC", "STE")
    counts: dict[str, int] = {}
    for header in sorted((shared_data / "ludb" / "data").glob("*.hea")):
        mapped = load_label_map("strict").map(read_wfdb(header).raw_labels, "ludb")
        for name in mapped.classes or ("out of scope",):
            counts[name] = counts.get(name, 0) + 1
    assert counts == {
        "out of scope": 66,
        "SNR": 11,
        "AF": 8,
        "IAVB": 6,
        "STE": 5,
        "PVC": 4,
        "LBBB": 2,
        "RBBB": 1,
        "PAC": 1,
    }
    data = tmp_path / "ludb"
    data.mkdir()
    for n in range(1, 40, 2):
        for suffix in (".hea", ".dat"):
            (data / f"{n}{suffix}").symlink_to(shared_data / "ludb" / "data" / f"{n}{suffix}")
    assert (
        main(
            [
                "data",
                "prepare",
                f"ludb=challenge:{data}",
                "--sampling-rate",
                "250",
                "--out",
                str(tmp_path / "cache"),
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                tiny_run.bundle,
                "--data",
                str(tmp_path / "cache"),
                "--external",
                "--out",
                str(tmp_path / "eval"),
                "--bootstrap",
                "10",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["results"][0]["n_records"] == 20 and report["out_of_scope"]["n_records"] > 0
    assert report["results"][0]["name"] == "external, every record (all)"  # never called a test split
