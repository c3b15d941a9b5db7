"""The fused decision (issue 37): fit on validation only, classes the model cannot know decided by their criteria,
a malformed coefficients file refused by name, and ``--decision model`` the model's decisions untouched."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ecglens.bundle.meta import starter_path
from ecglens.classes import CLASS_NAMES
from ecglens.criteria.fused import FusedDecisionError, bundle_fused, fused_from_dict, read_fused

REPO = Path(__file__).resolve().parents[1]


def _build_fused():
    spec = importlib.util.spec_from_file_location("build_fused", REPO / "scripts" / "build_fused.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(part: str, n: int, seed: int) -> list[dict]:
    """Crafted measured rows: PR drives IAVB, RR variation AF, QRS RBBB; the model's probabilities are noisy."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        truth = [0] * len(CLASS_NAMES)
        kind = i % 6
        truth[{0: 0, 1: 1, 2: 2, 3: 4, 4: 6, 5: 7}[kind]] = 1
        pr = 240 + rng.normal(0, 15) if kind == 2 else 160 + rng.normal(0, 15)
        qrs = 140 + rng.normal(0, 8) if kind == 3 else 95 + rng.normal(0, 8)
        features = {
            "iavb.pr:global": pr,
            "snr.pr:global": pr,
            "af.irregular:global": 0.25 if kind == 1 else 0.03 + rng.random() * 0.05,
            "af.no_p:global": 0.0 if kind == 1 else 1.0,
            "snr.p_waves:global": 0.0 if kind == 1 else 1.0,
            "rbbb.qrs:global": qrs,
            "lbbb.qrs:global": qrs,
            "snr.qrs:global": qrs,
            "snr.none_other:global": float(kind != 0),
            "pvc.premature:global": float(kind == 4),
            "pac.premature:global": float(kind == 4),
            "snr.no_premature:global": float(kind == 4),
        }
        probabilities = np.clip(np.array(truth) * 0.3 + rng.random(len(CLASS_NAMES)) * 0.5, 0.01, 0.99)
        rows.append(
            {
                "part": part,
                "record": f"{part}-{i}",
                "status": "ok",
                "truth": truth,
                "out_of_scope": False,
                "probabilities": probabilities.tolist(),
                "decisions": [],
                "features": features,
                "met": ["IAVB"] if pr > 200 else [],
            }
        )
    return rows


def test_the_fused_decision_is_fit_without_touching_the_test_split():
    build = _build_fused()
    val, test = _rows("val", 120, 0), _rows("test", 60, 1)
    thresholds, unknown = [0.5] * len(CLASS_NAMES), ["LBBB", "STE"]
    fitted, _ = build.fit(val + test, list(CLASS_NAMES), thresholds, unknown)
    for row in test:  # every test label changed: the opposite of what it was
        row["truth"] = [1 - t for t in row["truth"]]
        row["features"] = {k: -v for k, v in row["features"].items()}
    refitted, _ = build.fit(val + test, list(CLASS_NAMES), thresholds, unknown)
    assert json.dumps(refitted, sort_keys=True) == json.dumps(fitted, sort_keys=True)
    assert fitted["origin"]["split"] == "val" and fitted["origin"]["n_records"] == len(val)
    decision = fused_from_dict(fitted)  # what predict reads
    assert decision.of("IAVB").rule in ("fused", "model") and decision.of("STE").rule == "criteria"


def test_the_starter_ships_a_fused_decision_fit_on_validation():
    decision = bundle_fused(starter_path())
    assert decision is not None
    assert decision.origin["split"] == "val"
    assert decision.default in ("fused", "model")
    assert {c.name for c in decision.classes} == set(CLASS_NAMES)


def test_a_class_the_model_cannot_know_is_decided_by_criteria():
    decision = bundle_fused(starter_path())
    assert decision is not None
    assert decision.of("STE").rule == "criteria" and decision.of("LBBB").rule == "criteria"
    probabilities = [0.9, *([0.01] * (len(CLASS_NAMES) - 1))]  # the model: SNR, and STE at 0.01
    outcome = decision.decide_from(probabilities, ["SNR"], {}, ["STE"], list(CLASS_NAMES))
    assert "STE" in outcome.decisions
    assert outcome.decided_by["STE"] == "by criteria"
    assert "SNR" not in outcome.decisions  # the normal class excludes the others
    assert outcome.rule == "fused"
    not_met = decision.decide_from(probabilities, ["SNR"], {}, [], list(CLASS_NAMES))
    assert "STE" not in not_met.decisions


def test_pac_is_not_decided_beside_af_nor_std_beside_lbbb():
    """A cardiologist's review found PAC decided beside AF (a premature atrial beat is not defined in atrial
    fibrillation) and STD beside LBBB (the block's own secondary ST changes). The model's own decisions stay as
    they are."""
    decision = bundle_fused(starter_path())
    assert decision is not None and decision.excludes == {"PAC": "AF", "STD": "LBBB"}
    names = list(CLASS_NAMES)
    model = decision.decide_from([0.5] * len(names), ["AF", "PAC"], {}, [], names, "model")
    assert model.decisions == ("AF", "PAC")
    with_af = replace(decision, classes=tuple(replace(c, rule="model") for c in decision.classes))
    assert with_af.decide_from([0.5] * len(names), ["AF", "PAC"], {}, [], names).decisions == ("AF",)
    assert with_af.decide_from([0.5] * len(names), ["PAC"], {}, [], names).decisions == ("PAC",)
    lbbb = with_af.decide_from([0.5] * len(names), ["LBBB", "STD"], {}, [], names)
    assert lbbb.decisions == ("LBBB",) and "STD" not in lbbb.decided_by and lbbb.excluded == {"STD": "LBBB"}
    (line,) = lbbb.exclusion_lines()  # said on the page and the terminal, among the disagreements
    assert line.startswith("fused: STD not decided beside LBBB (the block's own secondary ST changes")
    assert with_af.decide_from([0.5] * len(names), ["STD", "RBBB"], {}, [], names).decisions == ("RBBB", "STD")


def test_a_prediction_says_which_rule_made_each_decision():
    from ecglens.predict import Prediction

    decision = bundle_fused(starter_path())
    names = list(CLASS_NAMES)
    prediction = Prediction("r", "r.hea", dict(zip(names, [0.9, *([0.01] * 8)], strict=True)), ("SNR",))
    no_measurements = prediction.decide(decision, "fused")
    assert no_measurements.decisions == ("SNR",) and no_measurements.decision_rule == "model (no measurements)"
    data = prediction.decide(decision, "model").to_dict()
    assert data["decision_rule"] == "model" and data["decided_by"] == {"SNR": "model"}


def _a_fused_class(data: dict) -> dict:
    """The first class of a fused.json whose rule is its logistic model."""
    return next(spec for spec in data["classes"].values() if spec["rule"] == "fused")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["classes"]["IAVB"].update(rule="magic"), "class IAVB: rule"),
        (lambda d: d["classes"].pop("STE"), "missing: STE"),
        (lambda d: d.update(format="pickle"), "format"),
        (lambda d: _a_fused_class(d).update(threshold=1.5), ": threshold"),
        (lambda d: _a_fused_class(d)["features"][0].update(coef="NaN"), "coef"),
        (lambda d: _a_fused_class(d)["features"][0].update(op="eval"), "op is one of"),
        (lambda d: d.update(excludes={"PAC": "XYZ"}), "excludes"),
    ],
)
def test_loading_refuses_a_malformed_coefficients_file_with_a_named_error(tmp_path, change, named):
    data = json.loads((starter_path() / "fused.json").read_text())
    change(data)
    path = tmp_path / "fused.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FusedDecisionError, match=named):
        read_fused(path)
    path.write_text("{not json")
    with pytest.raises(FusedDecisionError, match="not a readable JSON"):
        read_fused(path)
    assert issubclass(FusedDecisionError, ValueError)  # the CLI shows it as one line


@pytest.mark.realdata
def test_decision_model_reproduces_the_models_decisions_exactly(shared_data, tmp_path):
    from ecglens.commands.predict import run_predict
    from ecglens.predict import Predictor

    files = [shared_data / "ludb" / "data" / f"{n}.hea" for n in (1, 3, 5, 7)]
    files += [shared_data / "clinical" / "philips"]
    run = run_predict(
        "starter", files, tmp_path / "out", device="cpu", progress=False, decision="model", measurements=True
    )
    predictor = Predictor("starter", "cpu")
    assert predictor.decision == bundle_fused(starter_path()).default
    for p in run.predictions:
        expected = predictor.meta.decisions(np.array([p.probabilities[n] for n in CLASS_NAMES]))
        assert p.decisions == expected
        assert p.decision_rule == "model" and p.model_decisions is None
        assert set(p.decided_by.values()) <= {"model"}
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [r["decisions"] for r in rows] == [list(p.decisions) for p in run.predictions]
    fused = run_predict("starter", files, tmp_path / "fused", device="cpu", progress=False)
    assert all(p.decision_rule == "fused" for p in fused.predictions)
    assert all(p.model_decisions == m.decisions for p, m in zip(fused.predictions, run.predictions, strict=True))
