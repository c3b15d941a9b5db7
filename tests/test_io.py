"""Readers against files the tests write with wfdb.wrsamp and scipy.io.savemat."""

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import known_signal, write_bad_corpus, write_challenge_mat, write_cpsc_mat, write_wfdb
from ecglens.io import RecordError, parse_source, read_many, read_record, read_wfdb, scan_source
from ecglens.leads import LEAD_NAMES


def test_wfdb_dat_record_round_trips_in_mv(tmp_path):
    signal = known_signal()
    header = write_wfdb(tmp_path, "r1", signal, fs=250, comments=["Age: 61", "Sex: Female", "Dx: 164889003,59118001"])
    record = read_wfdb(header)
    assert record.signal.dtype == np.float32 and record.signal.shape == (12, 1000)
    np.testing.assert_allclose(record.signal, signal, atol=1e-6)
    assert record.sampling_rate_hz == 250 and record.age == 61 and record.sex == "female"
    assert record.label_codes == ("164889003", "59118001") and record.label_vocabulary == "snomed"


def test_challenge_mat_with_extension_in_record_line_and_odd_lead_case(tmp_path):
    signal = known_signal(seed=1)
    names = ["I", "II", "III", "AVR", "avl", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    header = write_challenge_mat(
        tmp_path, "E07500", signal, lead_names=names, extension_in_name=True, gain=500.0, baseline=20
    )
    record = read_wfdb(header)
    np.testing.assert_allclose(record.signal, signal, atol=1.1e-3)
    assert record.record_id == "E07500" and record.lead_names == LEAD_NAMES


def test_leads_in_another_order_are_reordered(tmp_path):
    signal = known_signal(seed=2)
    order = [11, 0, 5, 3, 1, 2, 4, 6, 7, 8, 9, 10]
    header = write_wfdb(tmp_path, "shuffled", signal[order], lead_names=[LEAD_NAMES[i] for i in order])
    np.testing.assert_allclose(read_wfdb(header).signal, signal, atol=1e-6)


def test_missing_leads_are_named(tmp_path):
    header = write_wfdb(tmp_path, "ten", known_signal(n_leads=10), lead_names=LEAD_NAMES[:10])
    with pytest.raises(RecordError, match="V5, V6"):
        read_wfdb(header)


def test_lead_subset_can_be_read(tmp_path):
    signal = known_signal()
    header = write_wfdb(tmp_path, "r", signal)
    record = read_wfdb(header, wanted_leads=("II", "V1"))
    np.testing.assert_allclose(record.signal, signal[[1, 6]], atol=1e-6)


def test_cpsc_original_reader_uses_reference_labels(tmp_path):
    signal = known_signal(2500, seed=3)
    write_cpsc_mat(tmp_path, "A0001", signal, age=71, sex="Male")
    (tmp_path / "REFERENCE.csv").write_text("Recording,First_label,Second_label,Third_label\nA0001,2,8,\nA9999,1,,\n")
    source = parse_source(str(tmp_path))
    assert source.format == "cpsc2018"
    scan = scan_source(source)
    assert [r.record_id for r in scan.refs] == ["A0001"] and scan.issues == ()
    record = next(read_many(scan.refs))
    np.testing.assert_allclose(record.signal, signal, atol=1e-6)
    assert record.label_codes == ("2", "8") and record.age == 71 and record.sex == "male"
    assert read_record(tmp_path / "A0001.mat").label_codes == ("2", "8")


def test_bad_corpus_yields_good_records_and_named_issues(tmp_path):
    expected = write_bad_corpus(tmp_path)
    scan = scan_source(parse_source(f"challenge:{tmp_path}"))
    issues = []
    records = list(read_many(scan.refs, workers=2, issues=issues))
    assert [r.record_id for r in records] == ["good"]
    by_name = {Path(issue.path).stem: issue.reason for issue in issues}
    assert set(by_name) == set(expected)
    for name, pattern in expected.items():
        assert re.search(pattern, by_name[name]), (name, by_name[name])


def test_strict_stops_at_first_bad_record(tmp_path):
    write_bad_corpus(tmp_path)
    scan = scan_source(parse_source(f"challenge:{tmp_path}"))
    with pytest.raises(RecordError):
        list(read_many(scan.refs, strict=True))


def test_ptbxl_native_reader(tmp_path):
    (tmp_path / "records100" / "00000").mkdir(parents=True)
    signal = known_signal(1000, seed=4)
    write_wfdb(
        tmp_path / "records100" / "00000",
        "00001_lr",
        signal,
        fs=100,
        lead_names=["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"],
    )
    (tmp_path / "scp_statements.csv").write_text(",description\nNORM,normal ECG\n")
    (tmp_path / "ptbxl_database.csv").write_text(
        "ecg_id,patient_id,age,sex,scp_codes,strat_fold,filename_lr,filename_hr\n"
        "1,15709.0,300.0,1,\"{'NORM': 100.0, 'SR': 0.0}\",3,records100/00000/00001_lr,records500/00000/00001_hr\n"
        "2,13243.0,19.0,0,\"{'AFIB': 0.0}\",10,records100/00000/00002_lr,records500/00000/00002_hr\n"
    )
    scan = scan_source(parse_source(f"ptbxl100:{tmp_path}"))
    assert len(scan.refs) == 1 and "waveform file missing" in scan.issues[0].reason
    record = next(read_many(scan.refs))
    np.testing.assert_allclose(record.signal, signal, atol=1e-6)
    identity = (record.record_id, record.patient_id, record.sex, record.age, record.fold)
    assert identity == ("1", "15709", "female", 90.0, 3)
    assert dict(record.raw_labels) == {"NORM": 100.0, "SR": 0.0}


def test_detect_format_errors_name_the_path(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path)):
        parse_source(str(tmp_path))
