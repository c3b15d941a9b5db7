"""Fitting the fused decision (`ecglens.criteria.fused`) on a bundle's validation records only.

Per class the model can decide: an L2 logistic regression (scikit-learn, ``C`` = 1 on standardised features) on the
model's logit and the class's criteria features (`FEATURE_SETS`, fixed here before any fit); a missing value is
imputed with the validation median and flagged by an indicator. Its out-of-fold probabilities (stratified 5-fold
cross-validation within validation) choose, per class, whether the fused model or the model alone decides (the
higher out-of-fold AUC) and the fused threshold (F1-optimal, as the model's own; SNR's the highest with sensitivity
>= ``normal_sensitivity``, as the model's); the final coefficients are fit on all of validation. A class the model
cannot know (not validated) is decided by its criteria alone. Nothing here reads a test record: the rows passed in
are all it sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ecglens.criteria.fused import FusedClass, FusedDecision, FusedFeature, feature_matrix

_ST_LEADS = ("I", "II", "III", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _f(name: str, op: str, *keys: str, low: float | None = None, high: float | None = None) -> FusedFeature:
    return FusedFeature(name, op, tuple(keys), low, high)


FEATURE_SETS: dict[str, tuple[FusedFeature, ...]] = {
    "SNR": (
        _f("logit", "logit"),
        _f("abnormal classes met", "value", "snr.none_other:global"),
        _f("P waves", "value", "snr.p_waves:global"),
        _f("PR outside 120-200 ms", "outside", "snr.pr:global", low=120, high=200),
        _f("QRS above 110 ms", "outside", "snr.qrs:global", high=110),
        _f("QTc above 450 ms", "outside", "snr.qtc:global", high=450),
        _f("QRS axis outside -30..90", "outside", "snr.axis:global", low=-30, high=90),
        _f("rate outside 50-100 bpm", "outside", "snr.rate_low:global", low=50, high=100),
        _f("premature beats", "value", "snr.no_premature:global"),
    ),
    "AF": (
        _f("logit", "logit"),
        _f("RR irregularity", "value", "af.irregular:global"),
        _f("P waves", "value", "af.no_p:global"),
    ),
    "IAVB": (_f("logit", "logit"), _f("PR", "value", "iavb.pr:global")),
    "LBBB": (
        _f("logit", "logit"),
        _f("QRS", "value", "lbbb.qrs:global"),
        _f("R-peak time V5-V6", "max", "lbbb.r_peak_time:V5", "lbbb.r_peak_time:V6"),
    ),
    "RBBB": (
        _f("logit", "logit"),
        _f("QRS", "value", "rbbb.qrs:global"),
        _f("R' in V1-V2", "max", "rbbb.r_prime:V1", "rbbb.r_prime:V2"),
        _f("S duration in I and V6", "min", "rbbb.s_wide:I", "rbbb.s_wide:V6"),
    ),
    "PAC": (
        _f("logit", "logit"),
        _f("premature beats", "value", "pac.premature:global"),
        _f("P waves", "value", "af.no_p:global"),
    ),
    "PVC": (
        _f("logit", "logit"),
        _f("premature beats", "value", "pvc.premature:global"),
        _f("QRS", "value", "lbbb.qrs:global"),
    ),
    "STD": (
        _f("logit", "logit"),
        _f("ST at J, two contiguous leads", "contiguous_low", *(f"std.j_point:{lead}" for lead in _ST_LEADS)),
        _f("ST at J+60 ms, two contiguous leads", "contiguous_low", *(f"std.shape:{lead}" for lead in _ST_LEADS)),
    ),
    "STE": (
        _f("logit", "logit"),
        _f("ST at J, two contiguous leads", "contiguous_high", *(f"ste.j_point:{lead}" for lead in _ST_LEADS)),
    ),
}
"""Each class's features: the model's logit and the handful of measured values its criteria read."""

CRITERIA_SCORES: dict[str, tuple[FusedFeature, float]] = {
    "SNR": (_f("abnormal criteria", "value", "snr.none_other:global"), -1.0),
    "AF": (_f("RR irregularity", "value", "af.irregular:global"), 1.0),
    "IAVB": (_f("PR", "value", "iavb.pr:global"), 1.0),
    "LBBB": (_f("QRS", "value", "lbbb.qrs:global"), 1.0),
    "RBBB": (_f("QRS", "value", "rbbb.qrs:global"), 1.0),
    "PAC": (_f("premature beats", "value", "pac.premature:global"), 1.0),
    "PVC": (_f("premature beats", "value", "pvc.premature:global"), 1.0),
    "STD": (FEATURE_SETS["STD"][1], -1.0),
    "STE": (FEATURE_SETS["STE"][1], 1.0),
}
"""The criteria alone as a score (for AUC): each class's main measured value and its sign (higher: more likely);
not measured ranks lowest. Their decisions are the criteria's met / not met."""


@dataclass(frozen=True)
class ClassFit:
    """What validation said about one class: its positives, the model's AUC, the fused model's out-of-fold AUC,
    the rule chosen and the threshold."""

    name: str
    n_positive: int
    rule: str
    model_auc: float | None
    fused_oof_auc: float | None
    threshold: float | None
    why: str

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "n_positive": self.n_positive,
            "rule": self.rule,
            "model_auc": self.model_auc,
            "fused_oof_auc": self.fused_oof_auc,
            "threshold": self.threshold,
            "why": self.why,
        }


def criteria_score(name: str, features: Sequence[Mapping[str, float | None]]) -> np.ndarray:
    """The criteria-alone score of class ``name`` on records (higher: more likely; not measured: -inf)."""
    feature, sign = CRITERIA_SCORES[name]
    out = np.full(len(features), -np.inf)
    for i, row in enumerate(features):
        value = feature.read(0.0, row)
        if value is not None:
            out[i] = sign * value
    return out


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if y.min() == y.max():
        return None
    finite = np.where(np.isfinite(score), score, np.nanmin(np.where(np.isfinite(score), score, np.nan)) - 1)
    return float(roc_auc_score(y, np.nan_to_num(finite, nan=-1e9)))


def f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The F1-optimal threshold (the midpoint below the chosen score)."""
    order = np.unique(p)[::-1]
    best, best_t = -1.0, 0.5
    for t in order:
        decided = p >= t
        tp = float((decided & (y == 1)).sum())
        f1 = 2 * tp / (decided.sum() + (y == 1).sum()) if tp else 0.0
        if f1 > best:
            best, best_t = f1, float(t)
    below = p[p < best_t]
    return float((best_t + below.max()) / 2) if below.size else best_t


def sensitivity_threshold(y: np.ndarray, p: np.ndarray, sensitivity: float) -> float:
    """The highest threshold with sensitivity >= ``sensitivity``."""
    positives = np.sort(p[y == 1])[::-1]
    k = int(np.ceil(sensitivity * len(positives))) - 1
    return float(positives[max(k, 0)])


def _design(spec: Sequence[FusedFeature], raw: np.ndarray) -> tuple[np.ndarray, list[FusedFeature]]:
    """Impute, flag and standardise raw features: the design matrix and the features with their parameters
    (coefficients still zero)."""
    columns, indicators, fitted = [], [], []
    for j, feature in enumerate(spec):
        x = raw[:, j]
        missing = np.isnan(x)
        impute = float(np.nanmedian(x)) if (~missing).any() else 0.0
        filled = np.where(missing, impute, x)
        mean, scale = float(filled.mean()), float(filled.std()) or 1.0
        columns.append((filled - mean) / scale)
        flag = bool(missing.any() and (~missing).any())
        indicators.append(missing.astype(float) if flag else None)
        fitted.append(
            FusedFeature(
                feature.name,
                feature.op,
                feature.keys,
                feature.low,
                feature.high,
                impute,
                mean,
                scale,
                0.0,
                0.0 if flag else None,
            )
        )
    extra = [c for c in indicators if c is not None]
    return np.column_stack(columns + extra), fitted


def _logistic(x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=2000).fit(x, y)


def fit_class(
    name: str, y: np.ndarray, logits: np.ndarray, features: Sequence[Mapping[str, float | None]], seed: int = 0
) -> tuple[FusedClass, np.ndarray]:
    """One class's logistic model fit on all of the rows, and its out-of-fold probabilities (stratified 5-fold)."""
    from sklearn.model_selection import StratifiedKFold

    spec = FEATURE_SETS[name]
    raw = feature_matrix(spec, logits, features)
    oof = np.zeros(len(y))
    folds = min(5, int(y.sum()), int((1 - y).sum()))
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(raw, y):
        x_train, fitted = _design(spec, raw[train])
        model = _logistic(x_train, y[train])
        part = _with_coefficients(name, fitted, model, 0.5)
        oof[held] = [part.probability(float(logits[i]), features[i]) for i in held]
    x, fitted = _design(spec, raw)
    return _with_coefficients(name, fitted, _logistic(x, y), 0.5), oof


def _with_coefficients(name: str, fitted: list[FusedFeature], model, threshold: float) -> FusedClass:
    coef = [float(c) for c in model.coef_[0]]
    n = len(fitted)
    flags = iter(coef[n:])
    features = tuple(
        FusedFeature(
            f.name,
            f.op,
            f.keys,
            f.low,
            f.high,
            f.impute,
            f.mean,
            f.scale,
            coef[j],
            None if f.missing_coef is None else next(flags),
        )
        for j, f in enumerate(fitted)
    )
    return FusedClass(name, "fused", features, float(model.intercept_[0]), threshold)


def fit_fused(
    class_names: Sequence[str],
    truth: np.ndarray,
    probabilities: np.ndarray,
    features: Sequence[Mapping[str, float | None] | None],
    not_validated: Sequence[str],
    normal_sensitivity: float = 0.90,
    seed: int = 0,
) -> tuple[FusedDecision, list[ClassFit], dict[str, np.ndarray]]:
    """The fused decision fit on validation rows only: ``truth`` and ``probabilities`` (records x classes), each
    record's flattened criteria features (None: not measured, left out of the fit). Returns the decision (its
    ``default`` still ``fused``: the caller decides from the verdicts), each class's verdict, and the out-of-fold
    scores each class's chosen rule gives (for the caller's comparison)."""
    keep = np.array([f is not None for f in features])
    y_all = np.asarray(truth)[keep].astype(int)
    p_all = np.clip(np.asarray(probabilities)[keep], 1e-6, 1 - 1e-6)
    rows = [f for f in features if f is not None]
    logits = np.log(p_all / (1 - p_all))
    classes, verdicts, oof_scores = [], [], {}
    for c, name in enumerate(class_names):
        y = y_all[:, c]
        n_pos = int(y.sum())
        model_auc = _auc(y, p_all[:, c])
        if name in not_validated:
            classes.append(FusedClass(name, "criteria", ()))
            verdicts.append(
                ClassFit(
                    name,
                    n_pos,
                    "criteria",
                    model_auc,
                    None,
                    None,
                    "the model cannot know it (not validated): decided by its criteria",
                )
            )
            oof_scores[name] = criteria_score(name, rows)
            continue
        fitted, oof = fit_class(name, y, logits[:, c], rows, seed) if n_pos >= 3 else (None, p_all[:, c])
        oof_auc = None if fitted is None else _auc(y, oof)
        if fitted is not None and oof_auc is not None and model_auc is not None and oof_auc > model_auc:
            threshold = sensitivity_threshold(y, oof, normal_sensitivity) if name == "SNR" else f1_threshold(y, oof)
            classes.append(FusedClass(name, "fused", fitted.features, fitted.intercept, threshold))
            why, oof_scores[name] = "out-of-fold AUC above the model's", oof
        else:
            classes.append(FusedClass(name, "model", ()))
            threshold, oof_scores[name] = None, p_all[:, c]
            why = (
                "too few positives to fit"
                if fitted is None
                else "the model's AUC at least the fused model's out-of-fold"
            )
        verdicts.append(ClassFit(name, n_pos, classes[-1].rule, model_auc, oof_auc, threshold, why))
    return FusedDecision(tuple(classes)), verdicts, oof_scores
