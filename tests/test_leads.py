import pytest

from ecglens.leads import LEAD_NAMES, LeadError, canonical_leads, lead_order, normalize_lead_name


def test_aliases_normalise_to_one_spelling():
    assert normalize_lead_name("AVR") == normalize_lead_name("avr") == normalize_lead_name(" aVR ") == "aVR"
    assert normalize_lead_name("v6") == "V6"
    assert normalize_lead_name("vx") is None


def test_lead_order_reorders_and_names_missing_leads():
    shuffled = list(reversed(["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]))
    order = lead_order(shuffled)
    assert [shuffled[i] for i in order][:4] == ["I", "II", "III", "AVR"]
    with pytest.raises(LeadError, match="V5, V6"):
        lead_order(list(LEAD_NAMES[:10]))


def test_canonical_leads_rejects_unknown():
    assert canonical_leads(["ii", "v1"]) == ("II", "V1")
    with pytest.raises(LeadError, match="MLII"):
        canonical_leads(["MLII"])
