import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecglens.classes import CLASS_NAMES
from ecglens.labels import DROP, builtin_spaces, load_label_map
from ecglens.labels.mapping import ALONE, COMPANION

STUDY_DROPPED = ("ISCIN", "ISCIL", "DIG", "ISCLA", "RVH", "LNGQT", "RAO/RAE", "EL", "ISCAN", "SEHYP", "STACH")


def test_snomed_table_matches_the_issue():
    label_map = load_label_map("strict")
    expected = {
        "426783006": "SNR",
        "164889003": "AF",
        "270492004": "IAVB",
        "164909002": "LBBB",
        "713427006": "RBBB",
        "59118001": "RBBB",
        "284470004": "PAC",
        "63593006": "PAC",
        "164884008": "PVC",
        "427172004": "PVC",
        "429622005": "STD",
        "164931005": "STE",
        "733534002": "LBBB",
        "17338001": "PVC",
    }
    assert {code: label_map.target("snomed", code) for code in expected} == expected
    assert "17338001" in label_map.row("snomed", "427172004").rationale


@pytest.mark.parametrize("profile", ["strict", "broad", "seed"])
def test_snr_means_a_normal_ecg_in_every_vocabulary(profile):
    label_map = load_label_map(profile)
    snomed = [("426783006", None), ("426177001", None)]  # sinus rhythm, sinus bradycardia
    scp = [("NORM", 100.0), ("SBRAD", 0.0)]
    assert label_map.map(snomed, "snomed").classes == label_map.map(scp, "scp").classes == ("SNR",)
    # beside a finding of a class, or one the space does not name, it is not normal
    assert label_map.map([*snomed, ("284470004", None)], "snomed").classes == ("PAC",)
    assert label_map.map([*scp, ("PAC", 100.0)], "scp").classes == ("PAC",)
    infarct = label_map.map([("426783006", None), ("164865005", None)], "snomed")
    assert "SNR" not in infarct.classes and infarct.labelled
    assert "SNR" not in label_map.map([("NORM", 100.0), ("IMI", 50.0)], "scp").classes
    # a low-likelihood statement left out by --min-likelihood no longer stops NORM
    assert label_map.map([("NORM", 80.0), ("IMI", 15.0)], "scp", min_likelihood=50).classes == ("SNR",)


def test_cpsc_codes_map_in_order():
    label_map = load_label_map("strict")
    assert [label_map.target("cpsc", str(i)) for i in range(1, 10)] == list(CLASS_NAMES)


def test_strict_is_one_to_one():
    label_map = load_label_map("strict")
    scp_rows = [row for row in label_map.rows if row.vocabulary == "scp"]
    assert {row.code: row.target for row in scp_rows} == {
        "NORM": "SNR",
        "AFIB": "AF",
        "1AVB": "IAVB",
        "CLBBB": "LBBB",
        "CRBBB": "RBBB",
        "PAC": "PAC",
        "PVC": "PVC",
        "STD_": "STD",
        "STE_": "STE",
        "SR": "SNR",
        "SBRAD": COMPANION,
        "STACH": COMPANION,
        "SARRH": COMPANION,
    }
    out_of_scope = label_map.map([("LVH", 100.0)], "scp")
    assert out_of_scope.classes == () and out_of_scope.labelled and out_of_scope.exclusion.startswith("out of scope")
    assert not label_map.map([], "scp").labelled and not label_map.map([("X", None)], "none").labelled


@pytest.mark.parametrize("code", STUDY_DROPPED)
def test_seed_drops_the_studys_statements(code):
    label_map = load_label_map("seed")
    # the study's sinus tachycardia is a companion of a normal ECG, as in every profile
    assert label_map.target("scp", code) == (COMPANION if code == "STACH" else DROP)
    mapped = label_map.map([(code, 100.0)], "scp")
    assert mapped.classes == () and mapped.labelled
    # A dropped statement next to a mapped one does not remove the record's class.
    assert label_map.map([(code, 100.0), ("AFIB", 0.0)], "scp").classes == ("AF",)


def test_seed_maps_sinus_tachycardia_alike_in_scp_and_snomed():
    """Issue 38: the seed profile's SNOMED table dropped sinus tachycardia while its SCP table keeps STACH as a
    companion of a normal ECG, so the same PTB-XL record got SNR from one file format and nothing from the other."""
    label_map = load_label_map("seed")
    assert label_map.target("snomed", "427084000") == label_map.target("scp", "STACH") == COMPANION
    assert label_map.map([("426783006", None), ("427084000", None)], "snomed").classes == ("SNR",)
    assert label_map.map([("NORM", 100.0), ("STACH", 0.0)], "scp").classes == ("SNR",)


def test_seed_gives_every_other_statement_a_class_with_a_rationale():
    rows = [row for row in load_label_map("seed").rows if row.vocabulary == "scp"]
    assert len(rows) == 71
    assert {row.code for row in rows if row.target == DROP} == set(STUDY_DROPPED) - {"STACH"}
    seed = next(info for info in builtin_spaces() if info.profile == "seed")
    assert "reconstruction" in seed.description and "did not publish" in seed.description
    assert all(row.rationale for row in rows)


def test_multi_hot_and_rhythm_likelihood_zero_counts():
    mapped = load_label_map("strict").map([("AFIB", 0.0), ("CRBBB", 100.0)], "scp", min_likelihood=50)
    assert mapped.classes == ("AF", "RBBB")
    np.testing.assert_array_equal(mapped.multi_hot(), [0, 1, 0, 0, 1, 0, 0, 0, 0])
    assert load_label_map("strict").map([("CRBBB", 20.0)], "scp", min_likelihood=50).classes == ()


def test_user_csv_replaces_a_vocabulary(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("vocabulary,code,description,target,rationale\nscp,LVH,left ventricular hypertrophy,STD,mine\n")
    label_map = load_label_map(path)
    assert label_map.target("scp", "LVH") == "STD" and label_map.target("scp", "NORM") is None
    assert label_map.target("cpsc", "2") == "AF"
    path.write_text("vocabulary,code,description,target,rationale\nscp,LVH,x,HYPER,y\n")
    with pytest.raises(ValueError, match=r"mine\.csv:2.*HYPER"):
        load_label_map(path)


@pytest.mark.parametrize("vocabulary", ["scp", "snomed", "ludb"])
@pytest.mark.parametrize("profile", ["strict", "broad", "seed"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_snr_is_given_exactly_when_nothing_but_companions_stand_beside_a_normal_code(profile, vocabulary, data):
    """A property over random sets of a vocabulary's codes (and codes no table lists): the classes do not depend on
    the order, and SNR is given iff every code is an 'alone' row or a companion and one is an 'alone' row."""
    label_map = load_label_map(profile)
    rows = {row.code: row for row in label_map.rows if row.vocabulary == vocabulary}
    chosen = data.draw(st.lists(st.sampled_from([*rows, "NOT-A-CODE", "999999"]), min_size=1, max_size=6, unique=True))
    shuffled = data.draw(st.permutations(chosen))
    mapped = label_map.map([(code, None) for code in chosen], vocabulary)
    assert label_map.map([(code, None) for code in shuffled], vocabulary).classes == mapped.classes
    kinds = [rows.get(code) for code in chosen]
    quiet = all(row is not None and (row.target == COMPANION or row.when == ALONE) for row in kinds)
    normal = any(row is not None and row.when == ALONE for row in kinds)
    assert ("SNR" in mapped.classes) == (quiet and normal)
    assert mapped.labelled
