"""``ecglens leads`` on a cohort whose AF evidence lies only in V1 and V2: the explanation ranks those leads
first, the reduced-lead models train on one split, and the report says what it compares."""

import json
import re

import numpy as np
import pytest

from conftest import write_challenge_mat
from ecglens.cli import main
from ecglens.data import SplitSpec
from ecglens.data.cache import build_cache
from ecglens.io import parse_source
from ecglens.studies.leads import EINTHOVEN_NOTE, parse_subsets, run_lead_study, write_lead_study
from ecglens.train.loop import TrainConfig, fit


@pytest.fixture(scope="module")
def v1_v2_cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("leads")
    records = root / "records"
    records.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(1000) / 100  # 10-s records at 100 Hz, the length the crop policy trains on
    for i in range(120):
        signal = rng.normal(0, 0.05, (12, 1000))
        af = i % 2 == 0
        if af:  # the class's evidence: 1-mV, 8-Hz bursts in V1 and V2 only
            signal[6:8] += np.sin(2 * np.pi * 8 * t) * (np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6)) > 0.3)
        write_challenge_mat(records, f"L{i:03d}", signal, fs=100, dx="164889003" if af else "426783006")
    cache = root / "cache"
    build_cache([parse_source(f"challenge:{records}")], cache, 100, workers=1, progress=False)
    config = TrainConfig(model="resnet_tiny", epochs=6, batch_size=16, lr=3e-3, split=SplitSpec(0))
    bundle = fit([cache], root / "twelve", config, progress=False).best_bundle
    return cache, bundle, config


def test_the_shapley_ranking_puts_the_evidence_leads_first(v1_v2_cohort, tmp_path):
    cache, bundle, config = v1_v2_cohort
    study = run_lead_study(
        [cache], tmp_path / "study", config=config, checkpoint=bundle, train=False, n_shapley=12, progress=False
    )
    af = next(r for r in study.rankings if r.class_name == "AF")
    assert set(af.order[:2]) == {"V1", "V2"}, af.order
    assert sorted(study.shares, key=lambda lead: -study.shares[lead])[:2] in (["V1", "V2"], ["V2", "V1"])
    paths = write_lead_study(study, tmp_path / "study")
    html = (tmp_path / "study" / "leads.html").read_text()
    assert "Einthoven" in html and "the study reads" in html and "ecglens&#39;s rank of that lead" in html
    assert {p.name for p in paths} >= {"leads.json", "leads.csv", "lead_ranking.csv", "leads.html"}


@pytest.mark.slow
def test_reduced_lead_models_train_on_the_same_split_and_are_compared(v1_v2_cohort, tmp_path, capsys):
    cache, bundle, _ = v1_v2_cohort
    out = tmp_path / "study"
    assert (
        main(
            [
                "-q",
                "leads",
                "--data",
                str(cache),
                "--out",
                str(out),
                "--subsets",
                "2,limb6",
                "--subset",
                "V1,V2",
                "--checkpoint",
                bundle,
                "--model",
                "resnet_tiny",
                "--epochs",
                "4",
                "--batch-size",
                "16",
                "--lr",
                "3e-3",
                "--n-shapley",
                "12",
                "--bootstrap",
                "20",
            ]
        )
        == 0
    )
    study = json.loads((out / "leads.json").read_text())
    names = {s["name"]: s for s in study["subsets"]}
    assert set(names) == {"2", "limb6", "V1+V2", "greedy2", "greedy3"}
    assert names["greedy2"]["leads"] in (["V1", "V2"], ["V2", "V1"])
    splits = {name: (out / "runs" / name / "splits.csv").read_text() for name in ("2", "V1+V2")}
    assert splits["2"] == splits["V1+V2"]  # one split for every subset
    # The evidence is in V1/V2: the model given V1, V2 beats the one given I, II.
    assert names["V1+V2"]["result"]["macro_auc"] > names["2"]["result"]["macro_auc"]
    assert study["greedy"][0]["size"] == 2 and "Spearman rho" in capsys.readouterr().out
    html = (out / "leads.html").read_text()
    assert "Measured: I, II macro AUC" in html
    assert not re.search(r"\d\.\d{5,}", html)  # every number on the page is rounded for a reader
    assert main(["leads", "--data", str(cache), "--out", str(tmp_path / "x"), "--no-train"]) == 1
    assert "--no-train needs --checkpoint" in capsys.readouterr().err


def test_lead_sets_are_parsed_and_the_einthoven_fact_is_stated():
    subsets = dict(parse_subsets("12,limb6,4,3,2,singles", ["I,II,V1"]))
    assert subsets["4"] == ("I", "II", "III", "V2") and subsets["3"] == ("I", "II", "V2")
    assert subsets["2"] == ("I", "II")
    assert subsets["V1"] == ("V1",) and subsets["I+II+V1"] == ("I", "II", "V1") and len(subsets) == 5 + 12 + 1
    with pytest.raises(ValueError, match="unknown lead set"):
        parse_subsets("5")
    assert "aVF = II - I/2" in EINTHOVEN_NOTE


@pytest.mark.slow
def test_the_lead_study_never_chooses_on_the_test_split(v1_v2_cohort, tmp_path, monkeypatch):
    """Run the study twice, the second time with test scores turned upside down: nothing it chooses (the best
    subset of a size, the Spearman correlation) changes, and it never explains test records."""
    from dataclasses import replace

    import ecglens.studies.leads as lead_study

    cache, bundle, config = v1_v2_cohort
    asked = []
    explain_inputs = lead_study.split_inputs
    monkeypatch.setattr(
        lead_study,
        "split_inputs",
        lambda caches, meta, split, *rest, **options: (
            asked.append(split),
            explain_inputs(caches, meta, split, *rest, **options),
        )[1],
    )
    evaluate = lead_study.evaluate_bundle

    def upside_down(*args, **kwargs):  # each test macro AUC x becomes 1 - x: the test ranking inverted
        report = evaluate(*args, **kwargs)
        combined = replace(report.combined, macro_auc=1 - report.combined.macro_auc)
        return replace(report, results=(combined, *report.results[1:]))

    options = {
        "subsets": parse_subsets("2", ["V1,V2"]),
        "config": replace(config, epochs=3),
        "checkpoint": bundle,
        "n_shapley": 8,
        "n_bootstrap": 10,
        "greedy_sizes": (2,),
        "progress": False,
    }
    plain = run_lead_study([cache], tmp_path / "plain", **options)
    monkeypatch.setattr(lead_study, "evaluate_bundle", upside_down)
    inverted = run_lead_study([cache], tmp_path / "inverted", **options)
    assert asked and "test" not in asked
    tested = {s.name: s.result.macro_auc for s in plain.subsets}
    assert {s.name: s.result.macro_auc for s in inverted.subsets} != tested  # the test scores did change
    assert plain.greedy[0].best_measured == inverted.greedy[0].best_measured
    assert plain.spearman == inverted.spearman and plain.coalition_spearman == inverted.coalition_spearman
