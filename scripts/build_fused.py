"""Fit the starter's fused decision (`ecglens.criteria.fused`) on its validation split only, and write it beside the
starter as data: ``src/ecglens/starter/fused.json``.

Usage (from the repository root, ``../shared/data`` beside it, or ``ECGLENS_DATA``):
  python scripts/build_fused.py [--work /tmp/fused-work] [--out src/ecglens/starter/fused.json]

1. The starter's validation records (its own split: ``scripts/fused_rows.py``), each read, scored and measured as
   ``predict --measurements`` does (cached under ``--work``); no test record is read.
2. Per class (`ecglens.train.fused.fit_fused`): an L2 logistic model on the model's logit and the class's criteria
   features; the rule (fused or the model alone) chosen by out-of-fold AUC within validation; the threshold
   F1-optimal on the out-of-fold probabilities (SNR's: sensitivity >= 0.90); classes the model cannot know
   decided by their criteria.
3. The default decision: ``fused`` when, on validation (out-of-fold), it beats the model on the macro AUC of the
   classes the model decides and does not raise the false-normal rate; else ``model``. What validation said is
   written into the file's ``origin`` and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fused_rows

REPO = Path(__file__).resolve().parents[1]


def fit(rows: list[dict], class_names, thresholds, not_validated) -> tuple[dict, list[str]]:
    """The fused decision's plain data fit on the validation rows among ``rows`` (each row's ``part``; any other
    part, the test part above all, is left out unread) and the lines that say what validation said."""
    from ecglens.train.fused import fit_fused

    ok = [r for r in rows if r.get("part") == "val" and r.get("status") == "ok" and r.get("truth") is not None]
    truth = np.array([r["truth"] for r in ok])
    probabilities = np.array([r["probabilities"] for r in ok])
    features = [r.get("features") for r in ok]
    decision, verdicts, oof = fit_fused(class_names, truth, probabilities, features, not_validated)
    from sklearn.metrics import roc_auc_score

    validated = [i for i, n in enumerate(class_names) if n not in not_validated and truth[:, i].any()]
    model_auc = float(np.mean([roc_auc_score(truth[:, i], probabilities[:, i]) for i in validated]))
    fused_auc = float(np.mean([roc_auc_score(truth[:, i], oof[class_names[i]]) for i in validated]))
    cut = np.asarray(thresholds)
    model_decided = (probabilities >= cut) & ~np.isin(class_names, list(not_validated))
    fused_decided = np.zeros_like(model_decided)
    met = [set(r.get("met") or ()) for r in ok]
    for i, name in enumerate(class_names):
        spec = decision.of(name)
        if spec.rule == "fused":
            fused_decided[:, i] = oof[name] >= next(v.threshold for v in verdicts if v.name == name)
        elif spec.rule == "criteria":
            fused_decided[:, i] = [name in m for m in met]
        else:
            fused_decided[:, i] = model_decided[:, i]
    snr = class_names.index("SNR")
    others = np.delete(np.arange(len(class_names)), snr)
    fused_decided[:, snr] &= ~fused_decided[:, others].any(axis=1)  # normal_excludes
    for name, beside in decision.excludes.items():  # PAC not decided beside AF
        fused_decided[:, class_names.index(name)] &= ~fused_decided[:, class_names.index(beside)]
    abnormal = truth[:, snr] == 0

    def false_normal(decided: np.ndarray) -> float:
        return float(decided[abnormal, snr].mean())

    def sensitivity(decided: np.ndarray) -> float:
        return float(np.mean([decided[truth[:, i] == 1, i].mean() for i in validated]))

    verdict = {
        "classes_compared": [class_names[i] for i in validated],
        "model_macro_auc": model_auc,
        "fused_macro_auc_out_of_fold": fused_auc,
        "model_false_normal_rate": false_normal(model_decided),
        "fused_false_normal_rate_out_of_fold": false_normal(fused_decided),
        "model_mean_sensitivity": sensitivity(model_decided),
        "fused_mean_sensitivity_out_of_fold": sensitivity(fused_decided),
    }
    better = (
        fused_auc > model_auc and verdict["fused_false_normal_rate_out_of_fold"] <= verdict["model_false_normal_rate"]
    )
    data = decision.to_dict()
    data["default"] = "fused" if better else "model"
    data["origin"] = {
        "command": "python scripts/build_fused.py",
        "split": "val",
        "n_records": len(ok),
        "method": "per class an L2 logistic regression (scikit-learn, C=1, standardised features, missing values "
        "imputed with the validation median and flagged) on the model's logit and the class's criteria features; "
        "the rule (fused or model) by out-of-fold AUC (stratified 5-fold within validation); thresholds F1-optimal "
        "on the out-of-fold probabilities (SNR: sensitivity >= 0.90); classes the model cannot know decided by "
        "their criteria; coefficients fit on all validation records. No test record was read.",
        "classes": {v.name: v.to_dict() for v in verdicts},
        "validation": verdict,
        "default_because": (
            "on validation (out-of-fold) the fused decision's macro AUC is above the model's and its false-normal "
            "rate is not higher"
            if better
            else "on validation the fused decision did not beat the model (macro AUC and false-normal rate)"
        ),
    }
    lines = [
        f"validation: {len(ok)} records; macro AUC over {', '.join(verdict['classes_compared'])}: model "
        f"{model_auc:.3f}, fused (out-of-fold) {fused_auc:.3f}; false-normal rate: model "
        f"{verdict['model_false_normal_rate']:.1%}, fused {verdict['fused_false_normal_rate_out_of_fold']:.1%}; "
        f"mean sensitivity: model {verdict['model_mean_sensitivity']:.3f}, fused "
        f"{verdict['fused_mean_sensitivity_out_of_fold']:.3f}",
        *(
            f"  {v.name}: {v.rule} ({v.n_positive} positives; model AUC "
            f"{'n/a' if v.model_auc is None else f'{v.model_auc:.3f}'}, fused out-of-fold "
            f"{'n/a' if v.fused_oof_auc is None else f'{v.fused_oof_auc:.3f}'}): {v.why}"
            for v in verdicts
        ),
        f"default decision: {data['default']} ({data['origin']['default_because']})",
    ]
    return data, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/fused-work", help="where the measured rows are cached")
    parser.add_argument("--out", default=str(REPO / "src" / "ecglens" / "starter" / "fused.json"))
    args = parser.parse_args()
    from ecglens.bundle.meta import read_meta, resolve_bundle
    from ecglens.criteria.fused import fused_from_dict

    meta = read_meta(resolve_bundle("starter"))
    rows = fused_rows.load_rows("val", Path(args.work))
    data, lines = fit(rows, list(meta.class_names), meta.thresholds, [n for n, _ in meta.not_validated])
    fused_from_dict(data, args.out, meta.class_names)  # what predict will read, checked before it is written
    Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
