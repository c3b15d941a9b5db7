"""The synthetic cohort: each class's mechanism is measurable, masks line up, files are reproducible."""

import hashlib

import numpy as np
import pytest

from ecglens.classes import CLASS_NAMES
from ecglens.io import read_wfdb
from ecglens.labels import load_label_map
from ecglens.leads import LEAD_NAMES
from ecglens.synth.cohort import SynthConfig, generate_record, read_evidence, write_cohort

RATE = 500.0
CONFIG = SynthConfig(n_records=10, sampling_rate_hz=RATE, multi_label_rate=0.0, snr_db=40)


def records_of(name: str, count: int = 5):
    weights = {c: float(c == name) for c in CLASS_NAMES}
    config = SynthConfig(**{**CONFIG.__dict__, "class_weights": weights})
    return [generate_record(i, config) for i in range(count)]


def rr_cv(record) -> float:
    rr = np.diff(record.fiducials["r_peaks"]) / RATE
    return float(rr.std() / rr.mean())


def qrs_ms(record) -> np.ndarray:
    fid = record.fiducials
    return (fid["qrs_offsets"] - fid["qrs_onsets"]) / RATE * 1000


def test_af_rr_is_irregular_and_p_less():
    snr_cv = np.mean([rr_cv(r) for r in records_of("SNR")])
    af = records_of("AF")
    assert np.mean([rr_cv(r) for r in af]) > 3 * snr_cv
    assert all((r.fiducials["p_onsets"] == -1).all() for r in af)
    heart_rates = [60 / np.mean(np.diff(r.fiducials["r_peaks"]) / RATE) for r in records_of("SNR")]
    assert all(55 <= hr <= 105 for hr in heart_rates)


def test_iavb_pr_interval_over_200_ms():
    for name, low, high in (("IAVB", 200, 340), ("SNR", 120, 200)):
        for record in records_of(name):
            fid = record.fiducials
            pr = (fid["qrs_onsets"] - fid["p_onsets"]) / RATE * 1000
            assert (pr > low).all() and (pr < high).all(), (name, pr)


@pytest.mark.parametrize("name", ["LBBB", "RBBB"])
def test_bundle_branch_blocks_have_wide_qrs(name):
    assert all((qrs_ms(r) >= 120).all() for r in records_of(name))
    assert all((qrs_ms(r) < 110).all() for r in records_of("SNR"))


@pytest.mark.parametrize("name, kind", [("PAC", 1), ("PVC", 2)])
def test_premature_beats_come_early(name, kind):
    for record in records_of(name):
        fid = record.fiducials
        rr = np.diff(fid["r_peaks"])
        early = np.flatnonzero(fid["beat_kinds"] == kind)
        assert len(early) >= 1
        for b in early:
            assert rr[b - 1] < 0.8 * np.median(rr)
            if kind == 2:  # PVC: no P wave, compensatory pause
                assert fid["p_onsets"][b] == -1
                assert rr[b - 1] + rr[b] == pytest.approx(2 * np.median(rr), rel=0.15)


@pytest.mark.parametrize("name, sign", [("STD", -1), ("STE", 1)])
def test_st_shift_in_masked_leads(name, sign):
    for record in records_of(name):
        mask = record.masks[0].astype(bool)
        leads = np.flatnonzero(mask.any(axis=1))
        assert 1 <= len(leads) < 12
        fid = record.fiducials
        for lead in leads:
            # ST level (inside the mask) against the PR-segment baseline just before each QRS.
            st = record.signal[lead][mask[lead]].mean()
            baseline = np.mean([record.signal[lead, q - 10 : q - 2].mean() for q in fid["qrs_onsets"] if q > 10])
            assert sign * (st - baseline) > 0.05, (name, LEAD_NAMES[lead], st - baseline)


def test_masks_line_up_with_their_waves():
    record = records_of("PVC", 1)[0]
    fid = record.fiducials
    mask = record.masks[0].astype(bool)
    for b in np.flatnonzero(fid["beat_kinds"] == 2):
        assert mask[:, fid["r_peaks"][b]].all()  # the PVC's R peak is inside its mask in every lead
    sinus = np.flatnonzero(fid["beat_kinds"] == 0)
    assert not mask[:, fid["r_peaks"][sinus]].any()
    iavb = records_of("IAVB", 1)[0]
    p, q = iavb.fiducials["p_onsets"][0], iavb.fiducials["qrs_onsets"][0]
    assert iavb.masks[0][:, p:q].all() and not iavb.masks[0][:, q + 5].any()


def test_written_files_are_read_back_and_reproducible(tmp_path):
    config = SynthConfig(n_records=12, sampling_rate_hz=250, seed=4)
    write_cohort(config, tmp_path / "a", workers=2, progress=False)
    write_cohort(config, tmp_path / "b", workers=1, progress=False)
    for path in sorted((tmp_path / "a").iterdir()):
        twin = tmp_path / "b" / path.name
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(twin.read_bytes()).digest()
    label_map = load_label_map("strict")
    for index in range(12):
        record = read_wfdb(tmp_path / "a" / f"S{index + 1:05d}.hea")
        truth = generate_record(index, config)
        np.testing.assert_allclose(record.signal, np.clip(truth.signal, -32, 32), atol=6e-4)
        assert label_map.map(record.raw_labels, record.label_vocabulary).classes == truth.classes
        evidence = read_evidence(tmp_path / "a" / f"S{index + 1:05d}.hea")
        assert tuple(evidence["classes"]) == truth.classes and evidence["masks"].shape[1:] == (12, 2500)
