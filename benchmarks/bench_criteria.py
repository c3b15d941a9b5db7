"""The model alone, the guideline criteria alone and the fused decision, side by side, per class: AUC, sensitivity
and specificity at the shipped thresholds (bootstrap 95 % intervals, with the counts beside every figure), the
false-normal rate (split into abnormal records of the nine classes, out-of-scope records not coded normal, and
PTB-XL records coded NORM beside a minor finding that keeps them out of scope), on records no fit or threshold
saw:

(a) the starter's test part (its own split; nothing here is tuned);
(b) LUDB, external (never used by the starter or the fused fit), its diagnoses mapped by ecglens's label table
    ``src/ecglens/labels/tables/ludb.csv``: sinus rhythm with nothing but sinus-rate variants and the axis -> SNR,
    atrial fibrillation -> AF, I degree AV block -> IAVB, complete LBBB / RBBB -> LBBB / RBBB, atrial / ventricular
    extrasystole -> PAC / PVC, STEMI -> STE; every other diagnosis (flutter, incomplete blocks, hypertrophy,
    ischaemia without STEMI, pacing, ...) names no class: such a record is out of scope, a negative for all nine;
(c) the Challenge-format sources (CPSC 2018, CPSC-Extra, PTB, the Challenge's PTB-XL): the starter trains on a
    part of each, so no Challenge source is wholly unused; their records in the test part are the ones no training
    or fit saw (a subset of (a));
and the shared clinical files: the file's own statement beside each rule's decisions.

Usage (from the repository root, ``../shared/data`` beside it, or ``ECGLENS_DATA``):
  python benchmarks/bench_criteria.py [--work /tmp/fused-work] [--bootstrap 1000] [--markdown FILE]

Each record is read, scored and measured once as ``predict --measurements`` does (cached under ``--work`` by
``scripts/fused_rows.py``); the fused decision is the shipped ``src/ecglens/starter/fused.json`` (fit on validation
only, ``scripts/build_fused.py``). Records that are not interpretable get no decision from any rule and are left
out (counted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import fused_rows  # noqa: E402

RULES = ("model", "criteria", "fused")
CHALLENGE = ("cpsc2018", "cpsc2018-extra", "ptb", "ptb-xl")


def scores_and_decisions(rows: list[dict], meta, fused) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per rule: scores (records x classes, higher: more likely) and decisions (records x classes)."""
    from ecglens.train.fused import criteria_score

    names = list(meta.class_names)
    p = np.array([r["probabilities"] for r in rows])
    features = [r.get("features") or {} for r in rows]
    measured = [r.get("features") is not None for r in rows]
    model_decided = np.array([meta.decided(x) for x in p])
    crit_score = np.column_stack([criteria_score(n, features) for n in names])
    crit_decided = np.array([[n in (r.get("met") or ()) for n in names] for r in rows])
    fused_score = np.zeros_like(p)
    fused_decided = np.zeros_like(model_decided)
    for i, r in enumerate(rows):
        outcome = fused.decide_from(
            r["probabilities"],
            r["decisions"],
            features[i] if measured[i] else None,
            r.get("met") if measured[i] else None,
            names,
        )
        fused_decided[i] = [n in outcome.decisions for n in names]
        for c, n in enumerate(names):
            rule = fused.of(n).rule
            if rule == "fused" and n in outcome.probabilities:
                fused_score[i, c] = outcome.probabilities[n]
            elif rule == "criteria":
                fused_score[i, c] = crit_score[i, c]
            else:
                fused_score[i, c] = p[i, c]
    return {
        "model": (p, model_decided),
        "criteria": (crit_score, crit_decided),
        "fused": (fused_score, fused_decided),
    }


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if y.min() == y.max():
        return None
    s = np.where(np.isfinite(s), s, -1e12)
    return float(roc_auc_score(y, s))


def _interval(values: list[float]) -> tuple[float, float] | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))) if len(values) > 10 else None


def class_metrics(y: np.ndarray, score: np.ndarray, decided: np.ndarray, n_boot: int, rng) -> dict:
    """AUC, sensitivity and specificity at the decisions, with bootstrap intervals and counts."""
    pos, neg = y == 1, y == 0
    out = {
        "n_pos": int(pos.sum()),
        "n_neg": int(neg.sum()),
        "tp": int((decided & pos).sum()),
        "tn": int((~decided & neg).sum()),
        "auc": _auc(y, score),
        "sens": float(decided[pos].mean()) if pos.any() else None,
        "spec": float((~decided[neg]).mean()) if neg.any() else None,
    }
    boots: dict[str, list] = {"auc": [], "sens": [], "spec": []}
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        yb, sb, db = y[i], score[i], decided[i]
        boots["auc"].append(_auc(yb, sb))
        boots["sens"].append(float(db[yb == 1].mean()) if (yb == 1).any() else None)
        boots["spec"].append(float((~db[yb == 0]).mean()) if (yb == 0).any() else None)
    out.update({f"{k}_ci": _interval(v) for k, v in boots.items()})
    return out


def _fmt(value, ci=None, digits=2) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}"
    return text + (f" ({ci[0]:.{digits}f}-{ci[1]:.{digits}f})" if ci else "")


def score_part(rows: list[dict], meta, fused, n_boot: int, title: str) -> tuple[list[str], dict]:
    """The markdown lines of one part and its summary numbers."""
    names = list(meta.class_names)
    labelled = [r for r in rows if r.get("truth") is not None]
    ok = [r for r in labelled if r.get("status") == "ok"]
    left = len(labelled) - len(ok)
    lines = [f"### {title}", ""]
    if not ok:
        return [*lines, "no labelled interpretable record", ""], {}
    y = np.array([r["truth"] for r in ok])
    outside = np.array([bool(r.get("out_of_scope")) for r in ok])
    by_rule = scores_and_decisions(ok, meta, fused)
    snr = names.index("SNR")
    summary: dict = {}
    lines += [
        f"{len(ok)} records ({int(outside.sum())} out of scope: negatives for every class; {left} not "
        f"interpretable, left out). Figures: value (bootstrap 95 % interval, {n_boot} resamples); "
        "sensitivity as detected/positives, specificity as correct/negatives.",
        "",
        "| class | n positives | rule | AUC | sensitivity | specificity | decided by (fused) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, name in enumerate(names):
        n_pos = int(y[:, c].sum())
        for rule in RULES:
            score, decided = by_rule[rule]
            m = class_metrics(y[:, c], score[:, c], decided[:, c], n_boot, np.random.default_rng(c))
            summary[(rule, name)] = m
            sens = "n/a" if m["sens"] is None else f"{_fmt(m['sens'], m['sens_ci'])} {m['tp']}/{m['n_pos']}"
            spec = "n/a" if m["spec"] is None else f"{_fmt(m['spec'], m['spec_ci'])} {m['tn']}/{m['n_neg']}"
            how = ""
            if rule == "fused":
                how = {"fused": "fused", "criteria": "by criteria", "model": "model"}[fused.of(name).rule]
            if rule == "model" and name in dict(meta.not_validated):
                how = "never decided (not validated)"
            lines.append(
                f"| {name if rule == 'model' else ''} | {n_pos} | {rule} | {_fmt(m['auc'], m['auc_ci'])} | {sens} | "
                f"{spec} | {how} |"
            )
    lines += [
        "",
        "| rule | in-scope macro AUC (classes with positives) | false-normal rate: abnormal called SNR (Wilson) | of "
        "which out of scope | in scope (one of the eight abnormal classes) | out of scope, not coded normal | "
        "out of scope, coded NORM beside minor findings |",
        "|---|---|---|---|---|---|---|",
    ]
    abnormal = y[:, snr] == 0
    coded_norm = np.array([_coded_norm(r) for r in ok]) & outside
    kinds = (abnormal & ~outside, outside & ~coded_norm, coded_norm)
    with_pos = [c for c in range(len(names)) if 0 < y[:, c].sum() < len(y)]
    validated = [c for c in with_pos if names[c] not in dict(meta.not_validated)]
    for rule in RULES:
        score, decided = by_rule[rule]
        macro = float(np.mean([summary[(rule, names[c])]["auc"] for c in with_pos]))
        macro_v = float(np.mean([summary[(rule, names[c])]["auc"] for c in validated]))
        fn = decided[abnormal, snr]
        fo = decided[outside, snr]
        summary[(rule, "macro")] = macro
        summary[(rule, "false_normal")] = float(fn.mean()) if fn.size else None
        split = " | ".join(_rate(decided[kind, snr]) for kind in kinds)
        lines.append(
            f"| {rule} | {macro:.3f} over {len(with_pos)} ({macro_v:.3f} over the {len(validated)} the model "
            f"decides) | {_rate(fn)} | {int(fo.sum())}/{fo.size} | {split} |"
        )
    return [*lines, ""], summary


def _rate(called: np.ndarray) -> str:
    """A share of records called SNR with its 95 % Wilson interval (sound for small counts, 0/n included) and the
    counts (n/a without records)."""
    from ecglens.metrics import wilson_interval

    if not called.size:
        return "n/a"
    hits, n = int(called.sum()), called.size
    return f"{_fmt(hits / n, wilson_interval(hits, n), 3)} {hits}/{n}"


_PTBXL_CODES: dict[str, dict] = {}


def _coded_norm(row: dict) -> bool:
    """Whether a PTB-XL record's own SCP statements include NORM (its cardiologists coded it normal, beside
    whatever minor finding keeps it out of the nine classes: LPR, IRBBB, IVCD, HVOLT, ...)."""
    if row.get("dataset") != "ptbxl":
        return False
    if not _PTBXL_CODES:
        import ast

        import pandas as pd

        table = pd.read_csv(fused_rows.DATA / "ptb-xl" / "ptbxl_database.csv", usecols=["ecg_id", "scp_codes"])
        _PTBXL_CODES.update({str(i): ast.literal_eval(c) for i, c in zip(table.ecg_id, table.scp_codes, strict=True)})
    return "NORM" in _PTBXL_CODES.get(str(row["record"]), {})


def clinical_table(rows: list[dict], meta, fused) -> list[str]:
    """Each clinical file: its own statement beside the three rules' decisions."""
    names = list(meta.class_names)
    lines = [
        "### Shared clinical files: the file's own statement beside each rule",
        "",
        "| file | its own statement | model | criteria | fused (decided by) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(
                f"| {r['record']} | {' / '.join(r.get('statements') or []) or 'none'} | {r.get('status')} | | |"
            )
            continue
        outcome = fused.decide_from(r["probabilities"], r["decisions"], r.get("features"), r.get("met"), names)
        statement = " / ".join(r.get("statements") or []) or "none"
        fused_text = ", ".join(f"{d} ({outcome.decided_by[d]})" for d in outcome.decisions) or "none"
        lines.append(
            f"| {r['record']}/{Path(r['path']).suffix or ''} | {statement[:160]} | "
            f"{', '.join(r['decisions']) or 'none'} | {', '.join(r.get('met') or []) or 'none'} | {fused_text} |"
        )
    return [*lines, ""]


def goals(summary: dict, meta) -> list[str]:
    """Issue 37's goals on the test part, under the shipped default rule."""

    def get(rule, name, key):
        return summary.get((rule, name), {}).get(key) if isinstance(summary.get((rule, name)), dict) else None

    lines = ["### Issue 37's goals on the test part (shipped default: fused)", ""]
    iavb_s, iavb_p = get("fused", "IAVB", "sens"), get("fused", "IAVB", "spec")
    lines.append(
        f"- IAVB sensitivity >= 0.80 at specificity >= 0.95: {_fmt(iavb_s)} at {_fmt(iavb_p)} "
        f"({get('fused', 'IAVB', 'n_pos')} positives)"
    )
    for name in ("LBBB", "RBBB"):
        lines.append(
            f"- {name} sensitivity >= 0.85: {_fmt(get('fused', name, 'sens'))} "
            f"({get('fused', name, 'n_pos')} positives)"
        )
    fn = summary.get(("fused", "false_normal"))
    lines.append(f"- false-normal rate <= 10 %: {'n/a' if fn is None else f'{fn:.1%}'}")
    lines.append(f"- in-scope macro AUC >= 0.93: {summary.get(('fused', 'macro'), float('nan')):.3f}")
    lines.append("- STE and LBBB decided: yes, by criteria (the model cannot know them)")
    return [*lines, ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/fused-work")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument(
        "--card",
        action="store_true",
        help="also write them into the starter's model card (MODEL_CARD.md and its shipped copy), between its "
        "criteria markers",
    )
    args = parser.parse_args()
    from ecglens.bundle.meta import read_meta, resolve_bundle
    from ecglens.criteria.fused import bundle_fused

    bundle = resolve_bundle("starter")
    meta = read_meta(bundle)
    fused = bundle_fused(bundle, meta.class_names)
    if fused is None:
        print("error: the starter ships no fused.json (python scripts/build_fused.py)", file=sys.stderr)
        return 1
    work = Path(args.work)
    test = fused_rows.load_rows("test", work)
    ludb = fused_rows.load_rows("ludb", work)
    clinical = fused_rows.load_rows("clinical", work)
    lines = [
        "Command: `python benchmarks/bench_criteria.py` (thresholds and rules as shipped; fused fit on validation "
        f"only; default decision: {fused.default}).",
        "",
    ]
    part, summary = score_part(test, meta, fused, args.bootstrap, "(a) The starter's test part")
    lines += part + goals(summary, meta)
    lines += score_part(ludb, meta, fused, args.bootstrap, "(b) LUDB, external")[0]
    challenge = [r for r in test if r["dataset"] in CHALLENGE]
    lines += score_part(
        challenge, meta, fused, args.bootstrap, "(c) Challenge-format sources, their records in the test part"
    )[0]
    lines += clinical_table(clinical, meta, fused)
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.card:
        for card in (REPO / "MODEL_CARD.md", bundle / "MODEL_CARD.md"):
            card.write_text(with_card_section(card.read_text(), text))
            print(f"wrote the criteria section of {card}", file=sys.stderr)
    return 0


CARD_START, CARD_END = "<!-- bench_criteria: start -->", "<!-- bench_criteria: end -->"
CARD_TITLE = "## Beside guideline criteria: the model, the criteria and the fused decision"


def with_card_section(card: str, tables: str) -> str:
    """The model card with its criteria section (between `CARD_START` and `CARD_END`, appended when absent)
    replaced by ``tables`` (headings moved one level down)."""
    body = "\n".join(
        [
            CARD_START,
            CARD_TITLE,
            "The model alone, the guideline criteria alone (docs/criteria.md) and the fused decision "
            "(`src/ecglens/starter/fused.json`, fit on validation only), side by side.",
            "",
            tables.replace("\n### ", "\n#### "),
            CARD_END,
        ]
    )
    if CARD_START in card and CARD_END in card:
        before, rest = card.split(CARD_START, 1)
        return before + body + rest.split(CARD_END, 1)[1]
    return card.rstrip("\n") + "\n\n" + body + "\n"


if __name__ == "__main__":
    sys.exit(main())
