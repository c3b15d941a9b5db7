"""Guideline criteria beside the model: the table as data with its sources, each criterion at and around its
threshold on hand-built measurements, and the disagreements with the model's decisions."""

from __future__ import annotations

import dataclasses

import pytest

from ecglens.classes import CLASS_NAMES
from ecglens.criteria import (
    MET,
    NOT_ASSESSABLE,
    NOT_MET,
    CriteriaTableError,
    criteria_table,
    disagreements,
    disputed,
    evaluate,
)
from ecglens.criteria.table import contiguous_pairs, lead_thresholds, parse_criteria
from ecglens.leads import LEAD_NAMES
from ecglens.waves.leads import LeadMeasurements
from ecglens.waves.measure import NO_P_WAVES, Measurements


def lead(name: str, **values) -> LeadMeasurements:
    """A lead of a normal narrow complex (qR, small s), ST on the baseline, overridden by ``values``."""
    base = dict(
        st_j_mv=0.0,
        st_60_mv=0.0,
        q_mv=0.05,
        q_ms=20.0,
        r_mv=1.0,
        r_ms=40.0,
        s_mv=0.2,
        s_ms=20.0,
        r_prime_mv=0.0,
        r_peak_time_ms=35.0,
        p_mv=0.1,
        t_mv=0.3,
        qrs_area_mv_ms=20.0,
    )
    return LeadMeasurements(lead=name, **{**base, **values})


def measured(leads: dict[str, dict] | None = None, **values) -> Measurements:
    """A normal sinus ECG's measurements (HR 70, PR 160, QRS 90, QTc 410, axis 40), overridden by ``values``;
    ``leads``: per-lead overrides."""
    base = dict(
        heart_rate_bpm=70.0,
        rr_sd_ms=20.0,
        pr_ms=160.0,
        qrs_ms=90.0,
        qt_ms=380.0,
        qtc_bazett_ms=410.0,
        qtc_fridericia_ms=400.0,
        p_axis_deg=50.0,
        qrs_axis_deg=40.0,
        t_axis_deg=40.0,
        n_beats=12,
        source="hand-built",
    )
    per_lead = tuple(lead(name, **(leads or {}).get(name, {})) for name in LEAD_NAMES)
    return Measurements(**{**base, "leads": per_lead, **values})


def test_the_table_covers_every_class_with_a_source_and_a_defining_criterion():
    table = criteria_table()
    assert {c.class_name for c in table} == set(CLASS_NAMES)
    assert all(c.source.strip() for c in table)
    assert all(any(c.defining for c in table if c.class_name == name) for name in CLASS_NAMES)
    assert any("Surawicz" in c.source and "e235-e240" in c.source for c in table if c.class_name == "LBBB")
    assert any("Thygesen" in c.source for c in table if c.class_name == "STE")
    assert all(row.source for row in lead_thresholds())
    assert frozenset(("V2", "V3")) in contiguous_pairs() and frozenset(("II", "aVF")) in contiguous_pairs()
    assert frozenset(("I", "II")) not in contiguous_pairs() and frozenset(("V1", "V3")) not in contiguous_pairs()


@pytest.mark.parametrize(
    "row, message",
    [
        ("x.1,XYZ,d,pr_ms,>,200,ms,global,,,yes,s", "unknown class"),
        ("x.1,IAVB,d,pr_ms,=>,200,ms,global,,,yes,s", "unknown operator"),
        ("x.1,IAVB,d,pq_ms,>,200,ms,global,,,yes,s", "unknown global measurement"),
        ("x.1,IAVB,d,st_j_mv,>,0.1,mV,V7,all,,yes,s", "unknown or repeated leads"),
        ("x.1,IAVB,d,pr_ms,>,200,ms,global,,,yes,", "no source"),
        ("x.1,IAVB,d,pr_ms,>,two hundred,ms,global,,,yes,s", "does not fit operator"),
    ],
)
def test_a_malformed_table_row_is_a_named_error(row, message):
    header = "id,class,description,measurement,operator,threshold,unit,leads,count,group,defining,source"
    with pytest.raises(CriteriaTableError, match=message):
        parse_criteria(f"{header}\n{row}\n")


def test_normal_measurements_meet_snr_and_nothing_else():
    result = evaluate(measured(), "male", 50)
    assert result.met() == ("SNR",)
    assert disagreements(("SNR",), result) == ()


@pytest.mark.parametrize("pr, status", [(200.0, NOT_MET), (201.0, MET), (338.0, MET)])
def test_first_degree_av_block_is_a_pr_above_200_ms(pr, status):
    result = evaluate(measured(pr_ms=pr))
    assert result.of("IAVB").status == status
    if status == MET:
        assert result.of("IAVB").line == f"PR {pr:.0f} ms > 200 ms"
        assert result.of("SNR").status == NOT_MET


def test_without_p_waves_iavb_is_not_assessable_and_says_why():
    result = evaluate(measured(pr_ms=None, notes=(NO_P_WAVES,)))
    assert result.of("IAVB").status == NOT_ASSESSABLE
    assert result.of("IAVB").line == "no P waves: PR not measured"


def lbbb_leads() -> dict[str, dict]:
    wide_r = dict(q_mv=0.0, q_ms=0.0, r_mv=1.2, r_ms=110.0, s_mv=0.0, s_ms=0.0, r_peak_time_ms=80.0)
    return {name: wide_r for name in ("I", "aVL", "V5", "V6")} | {"V1": dict(r_mv=0.1, s_mv=1.5, s_ms=90.0)}


def rbbb_leads() -> dict[str, dict]:
    rsr = dict(r_mv=0.3, r_ms=30.0, s_mv=0.4, s_ms=30.0, r_prime_mv=0.8, r_peak_time_ms=90.0)
    wide_s = dict(s_mv=0.5, s_ms=60.0, r_ms=40.0)
    return {"V1": rsr, "V2": rsr, "I": wide_s, "V6": wide_s}


@pytest.mark.parametrize("qrs, status", [(119.0, NOT_MET), (120.0, MET)])
def test_lbbb_needs_a_qrs_of_120_ms_with_its_morphology(qrs, status):
    assert evaluate(measured(lbbb_leads(), qrs_ms=qrs)).of("LBBB").status == status
    assert evaluate(measured(qrs_ms=qrs)).of("LBBB").status == NOT_MET  # a wide QRS without the morphology


def test_lbbb_fails_on_a_q_wave_in_v6_and_on_a_short_r_peak_time():
    leads = lbbb_leads()
    with_q = leads | {"V6": leads["V6"] | dict(q_mv=0.1, q_ms=20.0)}
    assert evaluate(measured(with_q, qrs_ms=140.0)).of("LBBB").status == NOT_MET
    early = leads | {"V5": leads["V5"] | dict(r_peak_time_ms=60.0)}
    result = evaluate(measured(early, qrs_ms=140.0)).of("LBBB")
    assert result.status == NOT_MET and "R-peak time V5 60" in result.line


@pytest.mark.parametrize("qrs, status", [(119.0, NOT_MET), (120.0, MET)])
def test_rbbb_needs_a_qrs_of_120_ms_with_its_morphology(qrs, status):
    assert evaluate(measured(rbbb_leads(), qrs_ms=qrs)).of("RBBB").status == status
    assert evaluate(measured(qrs_ms=qrs)).of("RBBB").status == NOT_MET


def test_rbbb_s_wave_longer_than_r_suffices_instead_of_40_ms():
    leads = rbbb_leads()
    short_but_longer = dict(s_mv=0.5, s_ms=35.0, r_ms=25.0)
    assert evaluate(measured(leads | {"I": short_but_longer}, qrs_ms=130)).of("RBBB").status == MET
    neither = dict(s_mv=0.5, s_ms=35.0, r_ms=40.0)
    assert evaluate(measured(leads | {"I": neither}, qrs_ms=130)).of("RBBB").status == NOT_MET
    rs = dict(r_mv=0.2, s_mv=1.0, r_prime_mv=0.0, r_peak_time_ms=90.0)
    no_r_prime = leads | {"V1": rs, "V2": rs}
    assert evaluate(measured(no_r_prime, qrs_ms=130)).of("RBBB").status == NOT_MET


def test_rbbb_a_wide_dominant_r_in_v1_suffices_instead_of_an_r_prime():
    """Surawicz et al. 2009: in a minority of patients a wide, often notched R wave is seen in V1 or V2 instead of
    an rSR'. A cardiologist's review found such records (PTB-XL validation 680, CPSC Q0027) not met."""
    wide_r = dict(r_mv=1.2, s_mv=0.1, r_prime_mv=0.0, r_peak_time_ms=90.0)
    leads = rbbb_leads() | {"V1": wide_r, "V2": wide_r}
    result = evaluate(measured(leads, qrs_ms=140)).of("RBBB")
    assert result.status == MET and "V1 1.1" in result.line


def test_lbbb_accepts_an_rs_pattern_in_v5_v6_but_needs_qs_or_rs_in_v1():
    """Surawicz et al. 2009: an occasional RS pattern in V5-V6. A cardiologist's review: without V5-V6 dominance,
    "dominant R in I and aVL" alone is a hemiblock; LBBB needs QS or rS in V1 (Strauss et al. 2011), and an rSr'
    or a dominant R there is not LBBB."""
    leads = lbbb_leads()
    rs = leads["V5"] | dict(r_mv=0.5, s_mv=0.9)
    assert evaluate(measured(leads | {"V5": rs}, qrs_ms=150.0)).of("LBBB").status == MET
    right = leads | {"aVL": rs}  # R not dominant in aVL: not the LBBB pattern
    assert evaluate(measured(right, qrs_ms=150.0)).of("LBBB").status == NOT_MET
    dominant_v1 = leads | {"V1": dict(r_mv=1.0, s_mv=0.3, q_mv=0.0)}
    result = evaluate(measured(dominant_v1, qrs_ms=150.0)).of("LBBB")
    assert result.status == NOT_MET and "V1 0.7" in result.line
    qs_v1 = leads | {"V1": dict(q_mv=1.2, r_mv=0.0, s_mv=0.0)}
    assert evaluate(measured(qs_v1, qrs_ms=150.0)).of("LBBB").status == MET


def test_a_qs_complex_is_not_a_dominant_r():
    """A cardiologist's review: R minus S read a QS or Qr V1 (q 0.76 mV, r 0.06 mV, a complete LBBB or a septal
    infarct) as a dominant R and met RBBB's V1 pattern."""
    qr = dict(q_mv=0.76, r_mv=0.06, s_mv=0.0, r_prime_mv=0.0, r_peak_time_ms=90.0)
    leads = rbbb_leads() | {"V1": qr, "V2": qr}
    assert evaluate(measured(leads, qrs_ms=140)).of("RBBB").status == NOT_MET


def test_ste_needs_two_contiguous_leads_at_0_1_mv():
    contiguous = {"II": dict(st_j_mv=0.1), "aVF": dict(st_j_mv=0.12)}
    result = evaluate(measured(contiguous), "male", 60).of("STE")
    assert result.status == MET and "II 0.1" in result.line and "aVF 0.12" in result.line
    below = {"II": dict(st_j_mv=0.09), "aVF": dict(st_j_mv=0.12)}
    assert evaluate(measured(below), "male", 60).of("STE").status == NOT_MET
    apart = {"I": dict(st_j_mv=0.2), "III": dict(st_j_mv=0.2), "V1": dict(st_j_mv=0.2), "V6": dict(st_j_mv=0.2)}
    result = evaluate(measured(apart), "male", 60).of("STE")
    assert result.status == NOT_MET and "no two contiguous" in result.line


def test_st_criteria_are_not_assessed_on_a_wide_qrs():
    """A cardiologist's review: complete LBBB's secondary ST elevation in V1-V3 was decided STE by criteria (a
    false STEMI) and its discordant depression in I, aVL, V5, V6 flagged the model for not deciding STD."""
    down = dict(st_j_mv=-0.2, st_60_mv=-0.2)
    lbbb_st = {"V1": dict(st_j_mv=0.3), "V2": dict(st_j_mv=0.4), "V5": down, "V6": down}
    wide = evaluate(measured(lbbb_st, qrs_ms=150.0), "male", 60)
    for name in ("STE", "STD"):
        assert wide.of(name).status == NOT_ASSESSABLE and "QRS 150 ms" in wide.of(name).line
    narrow = evaluate(measured(lbbb_st, qrs_ms=119.0), "male", 60)
    assert narrow.of("STE").status == MET and narrow.of("STD").status == MET


@pytest.mark.parametrize(
    "sex, age, st, status",
    [
        ("male", 45, 0.19, NOT_MET),
        ("male", 45, 0.2, MET),
        ("male", 35, 0.2, NOT_MET),
        ("male", 35, 0.25, MET),
        ("female", 35, 0.14, NOT_MET),
        ("female", 70, 0.15, MET),
        (None, None, 0.15, MET),  # unknown: the lowest threshold of V2-V3 (women's 0.15 mV)
        ("male", None, 0.19, NOT_MET),  # a man of unknown age: men's lowest, 0.2 mV
        ("male", None, 0.2, MET),
    ],
)
def test_ste_in_v2_v3_by_sex_and_age(sex, age, st, status):
    result = evaluate(measured({"V2": dict(st_j_mv=st), "V3": dict(st_j_mv=st)}), sex, age)
    assert result.of("STE").status == status
    if sex is None or age is None:
        assert any("unknown" in note and "lowest" in note for note in result.notes)


def test_std_needs_half_a_millimetre_in_two_contiguous_leads_persisting_60_ms():
    depressed = {name: dict(st_j_mv=-0.05, st_60_mv=-0.06) for name in ("V5", "V6")}
    assert evaluate(measured(depressed)).of("STD").status == MET
    shallow = {name: dict(st_j_mv=-0.04, st_60_mv=-0.06) for name in ("V5", "V6")}
    assert evaluate(measured(shallow)).of("STD").status == NOT_MET
    upsloping = {name: dict(st_j_mv=-0.1, st_60_mv=0.0) for name in ("V5", "V6")}
    assert evaluate(measured(upsloping)).of("STD").status == NOT_MET


def test_af_is_irregular_rr_without_p_waves():
    irregular = dict(pr_ms=None, notes=(NO_P_WAVES,), heart_rate_bpm=90.0, rr_sd_ms=120.0, rr_irregularity=0.2)
    result = evaluate(measured(**irregular))
    assert result.of("AF").status == MET and result.of("SNR").status == NOT_MET
    regular = irregular | dict(rr_sd_ms=30.0, rr_irregularity=0.03)  # no P waves, regular (flutter, junctional)
    assert evaluate(measured(**regular)).of("AF").status == NOT_MET
    assert evaluate(measured(rr_sd_ms=120.0, rr_irregularity=0.2)).of("AF").status == NOT_MET  # P waves present


def test_af_irregularity_is_not_one_premature_beat():
    # One premature beat and its pause raise the RR standard deviation (18 % of the RR here) but not the median
    # beat-to-beat change that leaves premature beats out: an isolated extrasystole is not irregularly irregular.
    one_early = dict(pr_ms=None, notes=(NO_P_WAVES,), heart_rate_bpm=90.0, rr_sd_ms=120.0, rr_irregularity=0.04)
    af = evaluate(measured(**one_early)).of("AF")
    assert af.status == NOT_MET
    assert "RR irregularity" in af.line
    unmeasured = evaluate(measured(**(one_early | dict(rr_irregularity=None)))).of("AF")
    assert "fewer than three RR intervals" in unmeasured.line


def test_a_premature_beat_is_pac_or_pvc_not_assessable_and_says_why():
    result = evaluate(measured(premature_beats=2))
    for name in ("PAC", "PVC"):
        assert result.of(name).status == NOT_ASSESSABLE
        assert "atrial or ventricular cannot be told" in result.of(name).line
    assert result.of("SNR").status == NOT_MET
    assert evaluate(measured()).of("PAC").status == NOT_MET


def test_qtc_limit_follows_sex_and_unknown_takes_the_lower():
    assert evaluate(measured(qtc_bazett_ms=455.0), "female", 50).of("SNR").status == MET
    assert evaluate(measured(qtc_bazett_ms=455.0), "male", 50).of("SNR").status == NOT_MET
    assert evaluate(measured(qtc_bazett_ms=455.0)).of("SNR").status == NOT_MET


def test_without_per_lead_measurements_lead_criteria_are_not_assessable():
    result = evaluate(dataclasses.replace(measured(), leads=()))
    assert result.of("STE").status == NOT_ASSESSABLE and "no per-lead" in result.of("STE").line
    assert result.of("LBBB").status == NOT_MET  # its QRS of 90 ms decides without the leads


def test_each_criterion_keeps_its_numbers_for_a_later_model():
    features = evaluate(measured(pr_ms=338.0)).features()
    assert features["iavb.pr"] == 1.0 and features["iavb.pr:global"] == 338.0
    assert features["ste.j_point:V2"] == 0.0 and features["pac.morphology"] is None
    payload = evaluate(measured(pr_ms=338.0)).to_dict()
    assert payload["met"] == ["IAVB"] and payload["classes"]["IAVB"]["criteria"][0]["values"] == {"global": 338.0}


def test_disagreements_snr_decided_against_a_met_criterion():
    result = evaluate(measured(pr_ms=338.0))
    assert disagreements(("SNR",), result) == ("model: SNR; criteria: first-degree AV block (PR 338 ms > 200 ms)",)
    fused = disagreements(("SNR",), result, decided_by={"SNR": "fused"}, rule="fused")
    assert fused == ("fused: SNR; criteria: first-degree AV block (PR 338 ms > 200 ms)",)
    assert disputed(("SNR",), result) == ("SNR",)


def test_snr_decided_while_its_own_criteria_fail_is_flagged():
    """A cardiologist's review: SNR decided beside a QRS of 132 ms that meets no block's morphology, a QTc of
    520 ms or a left axis went unflagged; only another class's met criteria flagged it."""
    result = evaluate(measured(qrs_ms=132.0, qtc_bazett_ms=520.0), "male", 60)
    assert result.met() == ()
    (line,) = disagreements(("SNR",), result, decided_by={"SNR": "fused"}, rule="fused")
    assert line.startswith("fused: SNR; criteria: not normal (QRS 132 ms, not <= 110 ms")
    assert "QTc 520 ms, not <= 450 ms" in line
    assert disputed(("SNR",), result) == ("SNR",)
    assert disagreements(("SNR",), evaluate(measured())) == () and disputed(("SNR",), evaluate(measured())) == ()


def test_disagreements_a_decision_whose_defining_criterion_fails():
    result = evaluate(measured(pr_ms=138.0))
    assert disagreements(("IAVB",), result) == ("model: IAVB; criteria: not met (PR 138 ms, not > 200 ms)",)
    wide = evaluate(measured(qrs_ms=100.0))
    flagged = disagreements(("LBBB", "RBBB"), wide)
    assert [line.split(";")[0] for line in flagged] == ["model: LBBB", "model: RBBB"]
    assert all("QRS 100 ms, not >= 120 ms" in line for line in flagged)


def test_disagreements_a_met_class_the_model_did_not_decide():
    result = evaluate(measured(rbbb_leads(), qrs_ms=130.0))
    assert result.met() == ("RBBB",)
    (line,) = disagreements((), result)
    assert (
        line.startswith("criteria: complete right bundle branch block (QRS 130 ms >= 120 ms")
        and "RBBB not decided" in line
    )
    (unknown,) = disagreements((), result, not_validated=("RBBB",))
    assert unknown.endswith("model: RBBB not validated, never decided")
    assert disagreements(("RBBB",), result) == ()


def test_a_decision_whose_non_defining_criteria_fail_is_flagged():
    """A cardiologist's review: a paced record decided RBBB while its RBBB criteria were not met (no V1 pattern,
    no wide S) went unflagged, because only the defining criterion (QRS >= 120 ms) counted."""
    paced = evaluate(measured(qrs_ms=160.0), "male", 60)
    assert paced.of("RBBB").status == NOT_MET and not paced.of("RBBB").defining_failures()
    (line,) = [f for f in disagreements(("RBBB",), paced) if "RBBB" in f]
    assert line.startswith("model: RBBB; criteria: not met (") and "V1" in line
    assert disputed(("RBBB",), paced) == ("RBBB",)


def test_an_st_decision_on_a_wide_qrs_carries_the_caveat_and_ste_stays_assessable_in_rbbb():
    """A cardiologist's review: STD decided by the model on a complete LBBB had no word that its ST criteria are
    not assessable there; and the Fourth Universal Definition excludes LBBB, LVH and pacing, not RBBB."""
    lbbb = evaluate(measured(lbbb_leads(), qrs_ms=162.0), "male", 60)
    (line,) = disagreements(("LBBB", "STD"), lbbb)
    assert line.startswith("model: STD; criteria: not assessable (QRS 162 ms >= 120 ms")
    assert disputed(("LBBB", "STD"), lbbb) == ()
    elevated = dict(st_j_mv=0.3, st_60_mv=0.3)
    rbbb = evaluate(measured(rbbb_leads() | {"V3": elevated, "V4": elevated}, qrs_ms=140.0), "male", 60)
    assert rbbb.of("RBBB").status == MET and rbbb.of("STE").status == MET
    assert rbbb.of("STD").status == NOT_ASSESSABLE  # an RBBB's V1-V3 depression is secondary
