"""Evaluation metrics on numpy arrays (no torch, no training code).

F1-optimal thresholds, per-class scores (precision, recall, F1, AUC, AUPRC, accuracy, expected calibration
error, Brier score) with intervals, and the set-level scores the field compares models with: macro AUC and
AUPRC, Fmax (the PTB-XL benchmark's sample-centred maximum F1) and the PhysioNet/CinC Challenge 2021 score
(restricted to the classes a label space shares with the Challenge, see `ecglens.labels.challenge`).

A class with no positive (or no negative) record in a split has no AUC; it is reported as such
(``None`` with a note), never as 0 or NaN, and averages are taken over the classes that have one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from ecglens.classes import CLASS_NAMES
from ecglens.labels.challenge import ChallengeScoring

METRICS = ("precision", "recall", "f1", "auc", "auprc", "accuracy")
MIN_POSITIVES = 10
"""Below this many positives a class's metrics (AUC above all) rest on too few records: they are flagged."""
LOW_THRESHOLD = 0.05
"""Thresholds below this (or at 0 or 1) are flagged: decisions at such probabilities are fragile."""
CALIBRATION_GAP = 0.2
"""A threshold whose calibrated meaning (the positive rate of records scored near it) differs from it by more
than this is flagged: the score there is not the probability it looks like."""
MIN_NEAR_THRESHOLD = 10
"""Records needed near a threshold (in its reliability bin) before its calibrated meaning is judged."""
RELIABILITY_BINS = 10
CI_NOTE = (
    "95 % intervals: Wilson score intervals for precision, recall and accuracy (not degenerate on "
    "small sets); bootstrap percentile intervals over records for F1, AUC and AUPRC."
)
FMAX_NOTE = (
    "Fmax: the PTB-XL benchmark's sample-centred maximum F1 over thresholds 0, 0.01, ..., 1 shared by "
    "all classes (precision averaged over records with a positive call, recall over records with a "
    "label); it needs no tuned threshold."
)


def wilson_interval(successes: float, n: float, z: float = 1.959964) -> tuple[float, float] | None:
    """Wilson score interval of a proportion ``successes / n`` (None when ``n`` is 0).

    Unlike the bootstrap, it does not collapse to a point for 0 of 3 or 3 of 3.
    """
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def threshold_flag(threshold: float) -> str:
    """Why a decision threshold deserves a second look, or an empty string."""
    if threshold <= 0.0:
        return "threshold at 0: every record is positive"
    if threshold >= 1.0:
        return "threshold at 1: no record can be positive"
    if threshold < LOW_THRESHOLD:
        return f"threshold below {LOW_THRESHOLD:g}: decisions at near-zero probability"
    return ""


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = 15) -> np.ndarray:
    """Per-class expected calibration error: over equal-width probability bins, the record-weighted mean of
    |fraction positive - mean probability| (Guo et al. 2017, for each class's binary decision)."""
    y_true, y_prob = np.asarray(y_true, np.float64), np.asarray(y_prob, np.float64)
    bins = np.minimum((y_prob * n_bins).astype(int), n_bins - 1)
    errors = np.zeros(y_true.shape[1])
    for c in range(y_true.shape[1]):
        positives = np.bincount(bins[:, c], weights=y_true[:, c], minlength=n_bins)
        confidence = np.bincount(bins[:, c], weights=y_prob[:, c], minlength=n_bins)
        errors[c] = np.abs(positives - confidence).sum() / max(len(y_true), 1)
    return errors


def brier_scores(y_true: np.ndarray, y_prob: np.ndarray) -> np.ndarray:
    """Per-class Brier score: mean squared difference of probability and label (0 is perfect)."""
    return np.mean((np.asarray(y_prob, np.float64) - np.asarray(y_true, np.float64)) ** 2, axis=0)


def tune_thresholds(y_true: np.ndarray, y_prob: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per-class thresholds that maximise F1 on the given (validation) data.

    Exact over every distinct score (``precision_recall_curve``) rather than the original's grid of
    100 values. A class without positives keeps ``default``.
    """
    thresholds = np.full(y_true.shape[1], default, dtype=np.float64)
    for k in range(y_true.shape[1]):
        if y_true[:, k].sum() == 0:
            continue
        precision, recall, candidates = precision_recall_curve(y_true[:, k], y_prob[:, k])
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        thresholds[k] = float(candidates[int(np.argmax(f1[:-1]))])
    return thresholds


def sensitivity_threshold(y_true: np.ndarray, y_prob: np.ndarray, floor: float) -> float | None:
    """The highest threshold whose sensitivity on the given (validation) data is at least ``floor``: the most
    specific operating point that still finds that share of the positives. None without positives."""
    positives = np.sort(np.asarray(y_prob)[np.asarray(y_true) > 0.5])[::-1]
    if not len(positives):
        return None
    needed = int(np.ceil(floor * len(positives)))
    return float(positives[max(needed, 1) - 1])


def _scores(y_true: np.ndarray, y_prob: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    tp = float(np.sum(y_pred & y_true))
    fp = float(np.sum(y_pred & ~y_true))
    fn = float(np.sum(~y_pred & y_true))
    tn = float(np.sum(~y_pred & ~y_true))
    has_both = 0 < y_true.sum() < len(y_true)
    positives = bool(y_true.any())  # without positives, precision/recall/F1/AUC are undefined, not 0
    return {
        "precision": (tp / (tp + fp) if tp + fp else 0.0) if positives else None,
        "recall": tp / (tp + fn) if positives else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if positives else None,
        "auc": float(roc_auc_score(y_true, y_prob)) if has_both else None,
        "auprc": float(average_precision_score(y_true, y_prob)) if positives else None,
        "accuracy": (tp + tn) / len(y_true) if len(y_true) else None,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


@dataclass(frozen=True)
class ClassMetrics:
    """Scores of one class on one split (None where undefined, with ``note`` saying why)."""

    name: str
    n_positive: int
    threshold: float
    precision: float | None
    recall: float | None
    f1: float | None
    auc: float | None
    accuracy: float | None
    tp: int
    fp: int
    fn: int
    tn: int
    note: str = ""
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    auprc: float | None = None
    ece: float | None = None
    """Expected calibration error over 15 equal-width bins."""
    brier: float | None = None
    positive_rate_at_threshold: float | None = None
    """Fraction positive among the records scored in the threshold's reliability bin (its calibrated meaning)."""
    n_at_threshold: int = 0

    @property
    def flags(self) -> tuple[str, ...]:
        """Warnings a reader must see beside the numbers: few positives, a fragile threshold, a threshold whose
        calibrated meaning is far from its value."""
        flags = []
        if 0 < self.n_positive < MIN_POSITIVES:
            flags.append(f"only {self.n_positive} positives: metrics and AUC interval unreliable")
        if flag := threshold_flag(self.threshold):
            flags.append(flag)
        rate = self.positive_rate_at_threshold
        if (
            rate is not None
            and self.n_at_threshold >= MIN_NEAR_THRESHOLD
            and abs(rate - self.threshold) > CALIBRATION_GAP
        ):
            flags.append(
                f"threshold {self.threshold:.2f} is not a calibrated probability: {rate:.0%} of the "
                f"{self.n_at_threshold} records scored near it are positive"
            )
        return tuple(flags)


@dataclass(frozen=True)
class ReliabilityCurve:
    """One class's reliability diagram: per equal-width probability bin, how many records fell in it, their
    mean predicted probability and the fraction that were positive (None for an empty bin)."""

    name: str
    threshold: float
    counts: tuple[int, ...]
    mean_probability: tuple[float | None, ...]
    fraction_positive: tuple[float | None, ...]

    def at_threshold(self) -> tuple[float | None, int]:
        """The positive rate and record count of the bin the threshold falls in (`ClassMetrics` fields)."""
        k = min(int(self.threshold * len(self.counts)), len(self.counts) - 1) if 0 <= self.threshold <= 1 else None
        if k is None:
            return None, 0
        return self.fraction_positive[k], self.counts[k]


def reliability_curves(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    class_names: Sequence[str],
    thresholds: Sequence[float] | np.ndarray,
    n_bins: int = RELIABILITY_BINS,
) -> tuple[ReliabilityCurve, ...]:
    """Per-class reliability diagrams over ``n_bins`` equal-width bins of predicted probability."""
    y_true, y_prob = np.asarray(y_true, np.float64), np.asarray(y_prob, np.float64)
    bins = np.minimum((y_prob * n_bins).astype(int), n_bins - 1)
    curves = []
    for c, name in enumerate(class_names):
        counts = np.bincount(bins[:, c], minlength=n_bins)
        sums = np.bincount(bins[:, c], weights=y_prob[:, c], minlength=n_bins)
        hits = np.bincount(bins[:, c], weights=y_true[:, c], minlength=n_bins)
        curves.append(
            ReliabilityCurve(
                name,
                float(thresholds[c]),
                tuple(int(n) for n in counts),
                tuple(float(s / n) if n else None for s, n in zip(sums, counts, strict=True)),
                tuple(float(h / n) if n else None for h, n in zip(hits, counts, strict=True)),
            )
        )
    return tuple(curves)


def fmax_score(y_true: np.ndarray, y_prob: np.ndarray, steps: int = 101) -> tuple[float | None, float | None]:
    """The sample-centred F-max of the PTB-XL benchmark (Strodthoff et al. 2021, after CAFA): the best, over
    thresholds shared by all classes, harmonic mean of precision averaged over records with at least one
    positive call and recall averaged over records with at least one label. Returns (Fmax, its threshold);
    (None, None) when no record has a label."""
    truth = np.asarray(y_true) > 0.5
    prob = np.asarray(y_prob, np.float64)
    labelled = truth.any(axis=1)
    if not labelled.any():
        return None, None
    best, best_threshold = 0.0, None
    for threshold in np.linspace(0.0, 1.0, steps):
        pred = prob >= threshold
        called = pred.any(axis=1)
        if not called.any():
            continue
        hits = (pred & truth).sum(axis=1)
        precision = float(np.mean(hits[called] / pred[called].sum(axis=1)))
        recall = float(np.mean(hits[labelled] / truth[labelled].sum(axis=1)))
        if precision + recall > 0 and (f := 2 * precision * recall / (precision + recall)) > best:
            best, best_threshold = f, float(threshold)
    return float(best), best_threshold


def challenge_score(y_true: np.ndarray, y_pred: np.ndarray, scoring: ChallengeScoring) -> float | None:
    """The PhysioNet/CinC Challenge 2021 score of binary decisions on the classes ``scoring`` covers.

    Each record spreads one unit of credit over the classes positive in its labels or decisions; the reward
    matrix weighs each (label, decision) pair. Normalised so that always deciding sinus rhythm only scores 0
    and deciding exactly the labels scores 1 (Reyna et al. 2021). None where the space has no such score.
    """
    if not scoring.defined:
        return None
    columns = list(scoring.columns)
    labels = np.asarray(y_true)[:, columns] > 0.5
    outputs = np.asarray(y_pred)[:, columns].astype(bool)

    def reward(decisions: np.ndarray) -> float:
        spread = np.maximum((labels | decisions).sum(axis=1), 1)
        confusion = (labels / spread[:, None]).T @ decisions.astype(np.float64)
        return float(np.sum(scoring.weights * confusion))

    normal_only = np.zeros_like(labels)
    normal_only[:, scoring.normal] = True
    correct, inactive = reward(labels), reward(normal_only)
    if correct == inactive:
        return 0.0
    return (reward(outputs) - inactive) / (correct - inactive)


@dataclass(frozen=True)
class EvaluationResult:
    """Per-class and average metrics of a model on a set of records, plus the set-level scores."""

    name: str
    n_records: int
    per_class: tuple[ClassMetrics, ...]
    average: dict[str, float | None]
    average_ci95: dict[str, tuple[float, float]]
    macro_auc: float | None
    n_bootstrap: int
    fmax: float | None = None
    fmax_threshold: float | None = None
    challenge_score: float | None = None
    challenge_note: str = ""
    reliability: tuple[ReliabilityCurve, ...] = ()

    @property
    def macro_auprc(self) -> float | None:
        """Macro average of the per-class AUPRC (classes with positives)."""
        return self.average.get("auprc")

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EvaluationResult:
        """Inverse of `to_dict` (results reused from a JSON file)."""

        def intervals(values: dict) -> dict[str, tuple[float, float]]:
            return {k: (float(v[0]), float(v[1])) for k, v in values.items()}

        per_class = tuple(ClassMetrics(**{**m, "ci95": intervals(m.get("ci95", {}))}) for m in data["per_class"])
        reliability = tuple(
            ReliabilityCurve(
                c["name"],
                c["threshold"],
                tuple(c["counts"]),
                tuple(c["mean_probability"]),
                tuple(c["fraction_positive"]),
            )
            for c in data.get("reliability", ())
        )
        return cls(
            name=data["name"],
            n_records=int(data["n_records"]),
            per_class=per_class,
            average=dict(data["average"]),
            average_ci95=intervals(data.get("average_ci95", {})),
            macro_auc=data["macro_auc"],
            n_bootstrap=int(data["n_bootstrap"]),
            fmax=data.get("fmax"),
            fmax_threshold=data.get("fmax_threshold"),
            challenge_score=data.get("challenge_score"),
            challenge_note=data.get("challenge_note", ""),
            reliability=reliability,
        )

    def set_scores(self) -> dict[str, float | None]:
        """The set-level scores: macro AUC and AUPRC, Fmax, Challenge score (None where undefined)."""
        return {
            "macro_auc": self.macro_auc,
            "macro_auprc": self.macro_auprc,
            "fmax": self.fmax,
            "challenge_score": self.challenge_score,
        }

    def class_metrics(self, name: str) -> ClassMetrics:
        """The metrics of one class by name."""
        for metrics in self.per_class:
            if metrics.name == name:
                return metrics
        raise KeyError(name)

    def table_rows(self) -> list[dict]:
        """One row per class plus the average row (for CSV)."""
        rows = []
        for metrics in self.per_class:
            row = {
                "set": self.name,
                "class": metrics.name,
                "n_positive": metrics.n_positive,
                "threshold": metrics.threshold,
            }
            row.update({m: getattr(metrics, m) for m in METRICS})
            row.update({f"{m}_ci_low": metrics.ci95.get(m, (None, None))[0] for m in METRICS})
            row.update({f"{m}_ci_high": metrics.ci95.get(m, (None, None))[1] for m in METRICS})
            row.update(
                {
                    "ece": metrics.ece,
                    "brier": metrics.brier,
                    "tp": metrics.tp,
                    "fp": metrics.fp,
                    "fn": metrics.fn,
                    "tn": metrics.tn,
                    "note": metrics.note,
                    "flags": "; ".join(metrics.flags),
                }
            )
            rows.append(row)
        average = {"set": self.name, "class": "average", "n_positive": sum(m.n_positive for m in self.per_class)}
        average.update(self.average)
        average.update({"fmax": self.fmax, "challenge_score": self.challenge_score})
        rows.append(average)
        return rows

    def to_markdown(self) -> str:
        """The study's Table 2/3 layout: per class P, R, F1, AUC, accuracy, then the average row."""

        def cell(value, interval=None):
            if value is None:
                return "n/a"
            return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")

        lines = [
            f"### {self.name} ({self.n_records} records; macro AUC {cell(self.macro_auc)}, macro AUPRC "
            f"{cell(self.macro_auprc)}, Fmax {cell(self.fmax)}, Challenge score {cell(self.challenge_score)})",
            "",
            "| class | n+ | threshold | precision | recall | F1 | AUC | AUPRC | accuracy | ECE | Brier |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for m in self.per_class:
            cells = [cell(getattr(m, k), m.ci95.get(k)) for k in METRICS] + [cell(m.ece), cell(m.brier)]
            note = "".join(f" ({text})" for text in (m.note, *m.flags) if text)
            lines.append(f"| {m.name}{note} | {m.n_positive} | {m.threshold:.3f} | " + " | ".join(cells) + " |")
        cells = [cell(self.average.get(k), self.average_ci95.get(k)) for k in METRICS]
        lines.append("| **average** | | | " + " | ".join(cells) + " | | |")
        lines += ["", FMAX_NOTE]
        if self.challenge_note:
            lines.append(f"Challenge score: {self.challenge_note}.")
        if self.n_bootstrap:
            lines += [
                "",
                f"Brackets: {CI_NOTE} ({self.n_bootstrap} bootstrap resamples; the average row's are all bootstrap).",
            ]
            missing = [k for k in METRICS if self.average.get(k) is not None and k not in self.average_ci95]
            if missing:
                lines.append(
                    f"No interval for the average {', '.join(missing)}: a class has too few positives to be defined "
                    "in 90 % of the resamples, and an average over fewer classes in some is not the one shown."
                )
        return "\n".join(lines)


def _macro(per_class: list[dict[str, float | None]]) -> dict[str, float | None]:
    out = {}
    for metric in METRICS:
        values = [value for row in per_class if (value := row[metric]) is not None]
        out[metric] = float(np.mean(values)) if values else None
    return out


def evaluate_predictions(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    thresholds: np.ndarray,
    name: str = "test",
    class_names: Sequence[str] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    challenge: ChallengeScoring | None = None,
    never: Sequence[str] = (),
) -> EvaluationResult:
    """Score probabilities against targets under fixed thresholds.

    Args:
        y_true: records x classes, 0/1.
        y_prob: records x classes probabilities.
        thresholds: per-class decision thresholds (tuned on other data).
        name: label of the evaluated set.
        class_names: column names (default: the nine CPSC classes for nine columns, else ``class 1``, ...).
        n_bootstrap: bootstrap resamples of records for 95 % intervals (0 for none).
        seed: bootstrap seed.
        challenge: how the label space maps onto the Challenge 2021 classes (no Challenge score without it).
        never: classes that are not validated: never decided, so their decision metrics are those of no
            decision at all (AUC still measures their probabilities), and their note says so.
    """
    truth = np.asarray(y_true) > 0.5
    prob = np.asarray(y_prob, dtype=np.float64)
    pred = prob >= np.asarray(thresholds)[None, :]
    class_names = _default_names(truth.shape[1]) if class_names is None else class_names
    pred[:, np.isin(np.asarray(class_names), list(never))] = False
    if len(class_names) != truth.shape[1]:
        raise ValueError(f"{len(class_names)} class names for {truth.shape[1]} columns")
    per_class_scores = [_scores(truth[:, k], prob[:, k], pred[:, k]) for k in range(truth.shape[1])]
    intervals, average_interval = _bootstrap_intervals(truth, prob, pred, n_bootstrap, seed, per_class_scores)
    ece = expected_calibration_error(truth, prob)
    brier = brier_scores(truth, prob)
    curves = reliability_curves(truth, prob, class_names, thresholds)
    per_class = []
    for k, name_k in enumerate(class_names):
        scores = per_class_scores[k]
        if n_bootstrap:
            intervals[k].update(_wilson_intervals(scores))
        n_positive = int(truth[:, k].sum())
        calibration = (float(ece[k]), float(brier[k])) if len(truth) else (None, None)
        note = _class_note(n_positive, len(truth), name_k in never)
        per_class.append(
            _class_metrics(name_k, n_positive, float(thresholds[k]), scores, note, intervals[k], calibration, curves[k])
        )
    average = _macro(per_class_scores)
    fmax, fmax_threshold = fmax_score(truth, prob)
    return EvaluationResult(
        name,
        len(truth),
        tuple(per_class),
        average,
        average_interval,
        average["auc"],
        n_bootstrap,
        fmax,
        fmax_threshold,
        None if challenge is None else challenge_score(truth, pred, challenge),
        "" if challenge is None else challenge.note,
        curves,
    )


def _class_metrics(
    name: str,
    n_positive: int,
    threshold: float,
    scores: Mapping[str, float | None],
    note: str,
    ci95: dict[str, tuple[float, float]],
    calibration: tuple[float | None, float | None],
    curve: ReliabilityCurve,
) -> ClassMetrics:
    """One class's row from its scores at its threshold, its intervals, calibration and reliability curve."""
    tp, fp, fn, tn = (int(scores[count] or 0) for count in ("tp", "fp", "fn", "tn"))
    rate, n_at = curve.at_threshold()
    return ClassMetrics(
        name=name,
        n_positive=n_positive,
        threshold=threshold,
        precision=scores["precision"],
        recall=scores["recall"],
        f1=scores["f1"],
        auc=scores["auc"],
        accuracy=scores["accuracy"],
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        note=note,
        ci95=ci95,
        auprc=scores["auprc"],
        ece=calibration[0],
        brier=calibration[1],
        positive_rate_at_threshold=rate,
        n_at_threshold=n_at,
    )


def _default_names(n: int) -> tuple[str, ...]:
    """The nine CPSC classes for nine columns, else ``class 1``, ``class 2``, ..."""
    return CLASS_NAMES if n == len(CLASS_NAMES) else tuple(f"class {k + 1}" for k in range(n))


def _bootstrap_intervals(
    truth: np.ndarray,
    prob: np.ndarray,
    pred: np.ndarray,
    n_bootstrap: int,
    seed: int,
    full: list[dict[str, float | None]] | None = None,
) -> tuple[list[dict[str, tuple[float, float]]], dict[str, tuple[float, float]]]:
    """95 % percentile intervals of F1, AUC and AUPRC per class (when at least 90 % of the resamples define
    them) and of every macro average, over ``n_bootstrap`` resamples of the records (none from one record).

    A macro average's interval is over the same classes as its value on the whole set (``full``: each class's
    scores there), in every resample: it is given when at least 90 % of the resamples define every one of them,
    else there is none (a class with too few positives, missing from more than a tenth of the resamples, would
    otherwise drop out of some of them, or, drawn conditionally, keep its one positive in all and look certain).
    """
    n_classes = truth.shape[1]
    intervals: list[dict[str, tuple[float, float]]] = [{} for _ in range(n_classes)]
    average_interval: dict[str, tuple[float, float]] = {}
    if not n_bootstrap or len(truth) <= 1:
        return intervals, average_interval
    rng = np.random.default_rng(seed)
    samples: list[list[dict]] = []
    for _ in range(n_bootstrap):
        pick = rng.integers(0, len(truth), len(truth))
        samples.append([_scores(truth[pick, k], prob[pick, k], pred[pick, k]) for k in range(n_classes)])
    for k in range(n_classes):
        for metric in ("f1", "auc", "auprc"):
            values = [s[k][metric] for s in samples if s[k][metric] is not None]
            if len(values) >= 0.9 * n_bootstrap:
                intervals[k][metric] = (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
    full = full if full is not None else [_scores(truth[:, k], prob[:, k], pred[:, k]) for k in range(n_classes)]
    for metric in METRICS:
        kept = [k for k in range(n_classes) if full[k][metric] is not None]  # the value's own class set
        values = [float(np.mean([s[k][metric] for k in kept])) for s in samples if kept and _defines(s, kept, metric)]
        if len(values) >= 0.9 * n_bootstrap:
            average_interval[metric] = (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
    return intervals, average_interval


def _defines(scores: Sequence[Mapping[str, float | None]], kept: Sequence[int], metric: str) -> bool:
    """Whether a resample's per-class scores define ``metric`` for every class in ``kept``."""
    return all(scores[k][metric] is not None for k in kept)


def _wilson_intervals(scores: Mapping[str, float | None]) -> dict[str, tuple[float, float]]:
    """Wilson intervals of precision, recall and accuracy from a class's confusion counts (where defined)."""
    tp, fp, fn, tn = (scores[c] or 0 for c in ("tp", "fp", "fn", "tn"))
    out = {}
    for metric, (hits, n) in {
        "precision": (tp, tp + fp),
        "recall": (tp, tp + fn),
        "accuracy": (tp + tn, tp + fp + fn + tn),
    }.items():
        wilson = wilson_interval(hits, n)
        if wilson is not None and scores[metric] is not None:
            out[metric] = wilson
    return out


def _class_note(n_positive: int, n_records: int, never: bool) -> str:
    """What a class's row must say: a set without positives or negatives, a class never decided."""
    note = ""
    if n_positive == 0:
        note = "no positives in this set"
    elif n_positive == n_records:
        note = "no negatives in this set"
    if never:
        note = "; ".join(filter(None, ["not validated: never decided", note]))
    return note


NORMAL_CLASSES = ("SNR", "NORM", "NSR")
"""Names a label space gives its normal class (cpsc9, the PTB-XL benchmark, the Challenge 2021)."""


@dataclass(frozen=True)
class OutOfScopeTable:
    """What a model decides on records with none of its classes (e.g. an infarction for the nine classes).

    Attributes:
        n_records: out-of-scope records scored.
        decided: per class, (records decided as it, share, 95 % Wilson interval or None).
        normal: the normal class's name, or None when the space has none.
        any_class: records with at least one decision.
    """

    n_records: int
    decided: tuple[tuple[str, int, float | None, tuple[float, float] | None], ...]
    normal: str | None
    any_class: int

    @property
    def false_normal(self) -> tuple[int, float | None, tuple[float, float] | None] | None:
        """Records called normal, their share and interval: the false-normal rate (None without a normal class)."""
        return next(((k, share, ci) for name, k, share, ci in self.decided if name == self.normal), None)

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        rate = self.false_normal
        return {
            "n_records": self.n_records,
            "normal_class": self.normal,
            "any_class": self.any_class,
            "false_normal_rate": None if rate is None else rate[1],
            "false_normal_interval": None if rate is None or rate[2] is None else list(rate[2]),
            "decided": [
                {"class": name, "records": k, "share": share, "interval": None if ci is None else list(ci)}
                for name, k, share, ci in self.decided
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> OutOfScopeTable:
        """Inverse of `to_dict`."""
        rows = tuple(
            (
                str(r["class"]),
                int(r["records"]),
                r["share"],
                None if r["interval"] is None else (float(r["interval"][0]), float(r["interval"][1])),
            )
            for r in data["decided"]
        )
        return cls(int(data["n_records"]), rows, data.get("normal_class"), int(data.get("any_class", 0)))

    def to_markdown(self) -> str:
        """The table, its false-normal rate first."""
        if not self.n_records:
            return "No out-of-scope records were scored (none in the test split, or left out by --in-scope-only)."

        def cell(k: int, share: float | None, ci: tuple[float, float] | None) -> str:
            text = f"{k} ({share:.1%})" if share is not None else str(k)
            return text + (f" [{ci[0]:.1%}-{ci[1]:.1%}]" if ci is not None else "")

        lines = [
            f"Out-of-scope records (statements that name none of the classes): {self.n_records}; decided as "
            f"some class: {self.any_class} ({self.any_class / self.n_records:.1%}).",
            "",
        ]
        rate = self.false_normal
        if rate is not None:
            lines += [f"**False-normal rate** (out-of-scope records called {self.normal}): {cell(*rate)}", ""]
        lines += ["| class | records decided as it (share) [95 % Wilson] |", "|---|---|"]
        lines += [f"| {name} | {cell(k, share, ci)} |" for name, k, share, ci in self.decided]
        return "\n".join(lines)


def out_of_scope_table(y_true: np.ndarray, decisions: np.ndarray, class_names: Sequence[str]) -> OutOfScopeTable:
    """The `OutOfScopeTable` of the records of ``y_true`` (records x classes) with no positive class.

    Args:
        y_true: targets.
        decisions: boolean decisions, records x classes (a class that is not validated never decided).
        class_names: the classes in order.
    """
    outside = ~np.asarray(y_true).astype(bool).any(axis=1)
    picked = np.asarray(decisions).astype(bool)[outside]
    n = int(outside.sum())
    rows = []
    for k, name in enumerate(class_names):
        hits = int(picked[:, k].sum()) if n else 0
        rows.append((str(name), hits, hits / n if n else None, wilson_interval(hits, n)))
    normal = next((name for name in class_names if name in NORMAL_CLASSES), None)
    return OutOfScopeTable(n, tuple(rows), normal, int(picked.any(axis=1).sum()) if n else 0)
