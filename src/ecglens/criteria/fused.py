"""The fused decision: per class, the model's logit and a handful of the class's measured criteria values combined by
a small logistic model fit and thresholded on a bundle's validation split (``scripts/build_fused.py``); a class the
model cannot know decided by its guideline criteria alone (``by criteria``).

It ships beside a bundle as data, ``fused.json`` (never a pickle): per class its rule (``fused``, ``criteria`` or
``model``), its features' definitions, their imputation, scaling and coefficients, and its threshold. A feature is
read from `CriteriaResult.features` (each criterion's measured values, flattened) by one of `OPERATIONS`; a value
that is not measured is imputed and, where the fit saw missing values, flagged by an indicator with its own
coefficient. `read_fused` refuses a malformed file with a `FusedDecisionError` that names what is wrong.

Decision rules a prediction can be made by (`DECISION_RULES`): ``model`` (the model's probabilities at the bundle's
thresholds, exactly as without this file), ``criteria`` (every class decided by its criteria: met or not) and
``fused``. Under ``fused``, a record without measurements falls back to the model and says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecglens.classes import CLASS_NAMES
from ecglens.criteria.evaluate import NORMAL_CLASS, CriteriaResult
from ecglens.criteria.table import contiguous_pairs

FUSED_FILE = "fused.json"
FORMAT = "ecglens-fused-1"
DECISION_RULES = ("fused", "model", "criteria")
CLASS_RULES = ("fused", "criteria", "model")
"""A class's rule under the fused decision: its logistic model, its criteria alone (``by criteria``: a class the
model cannot know), or the model alone (where validation preferred it)."""
OPERATIONS = ("logit", "value", "max", "min", "outside", "contiguous_high", "contiguous_low", "status")
"""How a feature reads the flattened criteria features (``keys``):

- ``logit``: the model's logit for the class (no keys);
- ``value``: the first key's value; ``max`` / ``min``: the largest / smallest measured value of the keys;
- ``outside``: how far the first key's value lies outside ``low..high`` (0 inside);
- ``contiguous_high``: over the pairs of contiguous leads (`contiguous_pairs`) both measured among the keys
  ``<criterion>:<lead>``, the largest value reached in both leads of a pair (ST elevation in two contiguous leads);
- ``contiguous_low``: likewise, the lowest value reached in both (ST depression in two contiguous leads);
- ``status``: a criterion's status, 1 met, 0 not met (not assessable: missing).
"""
LOGIT_CLIP = 1e-6
EXCLUDES = {"PAC": "AF", "STD": "LBBB"}
"""Under the fused and the criteria rules, a class not decided beside another: a premature atrial contraction is
not defined in atrial fibrillation (no regular atrial rhythm for a beat to come early in; a cardiologist's review
found PAC decided beside AF); ST depression beside left bundle branch block is the block's own secondary
repolarisation ("ST and T waves usually opposite in direction to QRS", Surawicz et al. 2009, AHA/ACCF/HRS
recommendations part III; the ST thresholds of the Fourth Universal Definition of MI do not apply, and
Sgarbossa-type criteria are not assessed here). The model's own decisions are kept as they are
(``model_decisions``), and the page says what the model alone decided."""
EXCLUSION_REASONS = {
    "PAC": "a premature atrial beat is not defined in atrial fibrillation",
    "STD": "the block's own secondary ST changes; concordant ST depression (Sgarbossa) is not assessed",
}
"""Why each class of `EXCLUDES` is not decided beside the other: the line a disagreement prints."""


class FusedDecisionError(ValueError):
    """A fused-decision file that cannot be used: unreadable, of another format, or malformed (the message names
    the file and what is wrong)."""


@dataclass(frozen=True)
class FusedFeature:
    """One feature of a class's logistic model: how it is read (``op``, ``keys``, ``low``/``high`` for
    ``outside``), what replaces a missing value (``impute``), its scaling (``(x - mean) / scale``), its
    coefficient, and the coefficient of its missing-value indicator (None: the fit saw no missing value)."""

    name: str
    op: str
    keys: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    impute: float = 0.0
    mean: float = 0.0
    scale: float = 1.0
    coef: float = 0.0
    missing_coef: float | None = None

    def read(self, logit: float, features: Mapping[str, float | None]) -> float | None:
        """The feature's raw value on a record (None when not measured)."""
        if self.op == "logit":
            return logit
        values = [features.get(key) for key in self.keys]
        known = [float(v) for v in values if v is not None and math.isfinite(v)]
        if self.op in ("value", "status"):
            first = values[0] if values else None
            return None if first is None or not math.isfinite(first) else float(first)
        if self.op == "max":
            return max(known) if known else None
        if self.op == "min":
            return min(known) if known else None
        if self.op == "outside":
            first = values[0] if values else None
            if first is None or not math.isfinite(first):
                return None
            low = -math.inf if self.low is None else self.low
            high = math.inf if self.high is None else self.high
            return max(low - float(first), float(first) - high, 0.0)
        by_lead = {key.rsplit(":", 1)[-1]: features.get(key) for key in self.keys}
        reached = []
        for pair in contiguous_pairs():
            a, b = sorted(pair)
            va, vb = by_lead.get(a), by_lead.get(b)
            if va is None or vb is None:
                continue
            reached.append(min(va, vb) if self.op == "contiguous_high" else max(va, vb))
        if not reached:
            return None
        return max(reached) if self.op == "contiguous_high" else min(reached)

    def term(self, logit: float, features: Mapping[str, float | None]) -> float:
        """Its contribution to the class's log-odds."""
        value = self.read(logit, features)
        missing = value is None
        x = (self.impute if value is None else value) - self.mean
        out = self.coef * x / self.scale
        if self.missing_coef is not None:
            out += self.missing_coef * float(missing)
        return out

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "name": self.name,
            "op": self.op,
            "keys": list(self.keys),
            "low": self.low,
            "high": self.high,
            "impute": self.impute,
            "mean": self.mean,
            "scale": self.scale,
            "coef": self.coef,
            "missing_coef": self.missing_coef,
        }


@dataclass(frozen=True)
class FusedClass:
    """One class's rule: ``fused`` (``intercept`` + the features' terms, decided at ``threshold`` on the
    probability), ``criteria`` (decided when the class's criteria are met) or ``model``."""

    name: str
    rule: str
    features: tuple[FusedFeature, ...] = ()
    intercept: float = 0.0
    threshold: float = 0.5

    def probability(self, logit: float, features: Mapping[str, float | None]) -> float:
        """The fused probability of the class on a record."""
        z = self.intercept + sum(f.term(logit, features) for f in self.features)
        return float(1.0 / (1.0 + math.exp(-min(max(z, -500.0), 500.0))))

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "rule": self.rule,
            "intercept": self.intercept,
            "threshold": self.threshold,
            "features": [f.to_dict() for f in self.features],
        }


@dataclass(frozen=True)
class FusedOutcome:
    """A record's decisions under one rule: ``decisions``, ``decided_by`` (per decided class: ``model``,
    ``fused`` or ``by criteria``), ``rule`` (the record's rule: ``fused``, ``model``, ``criteria``, or ``model (no
    measurements)``) and ``probabilities`` (the fused probability of each class a logistic model decides)."""

    decisions: tuple[str, ...]
    decided_by: dict[str, str]
    rule: str
    probabilities: dict[str, float] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    """Classes its rule would have decided but left out beside another (`EXCLUDES`): class -> the other class."""

    def exclusion_lines(self) -> tuple[str, ...]:
        """``fused: STD not decided beside LBBB (the block's own secondary ST changes; ...)``, one per exclusion."""
        return tuple(
            f"{self.rule}: {name} not decided beside {other} ({EXCLUSION_REASONS.get(name, 'excluded by the rule')})"
            for name, other in self.excluded.items()
        )


@dataclass(frozen=True)
class FusedDecision:
    """A bundle's fused decision (``fused.json``): every class's rule, ``default`` (the rule ``predict`` uses when
    none is asked for: what validation said), ``normal_excludes`` (SNR is not decided beside another class: the
    CPSC normal class excludes the other eight) and ``origin`` (how it was fit: split, records, validation's
    verdict). ``excludes``: a class not decided beside another (`EXCLUDES`)."""

    classes: tuple[FusedClass, ...]
    default: str = "fused"
    normal_excludes: bool = True
    origin: dict = field(default_factory=dict)
    excludes: dict[str, str] = field(default_factory=lambda: dict(EXCLUDES))

    def of(self, name: str) -> FusedClass:
        """One class's rule."""
        return next(c for c in self.classes if c.name == name)

    def scores(
        self, probabilities: Sequence[float], features: Mapping[str, float | None], class_names: Sequence[str]
    ) -> dict[str, float]:
        """The fused probability of every class with a ``fused`` rule."""
        out = {}
        for name, p in zip(class_names, probabilities, strict=True):
            rule = self.of(name)
            if rule.rule == "fused":
                out[name] = rule.probability(_logit(p), features)
        return out

    def decide(
        self,
        probabilities: Sequence[float],
        model_decisions: Sequence[str],
        criteria: CriteriaResult | None,
        class_names: Sequence[str],
        rule: str = "fused",
    ) -> FusedOutcome:
        """The decisions of a record under ``rule``: ``model`` gives back ``model_decisions`` untouched;
        ``criteria`` decides every class whose criteria are met; ``fused`` applies each class's rule (a record
        without criteria falls back to the model)."""
        if criteria is None:
            return self.decide_from(probabilities, model_decisions, None, None, class_names, rule)
        return self.decide_from(probabilities, model_decisions, criteria.features(), criteria.met(), class_names, rule)

    def decide_from(
        self,
        probabilities: Sequence[float],
        model_decisions: Sequence[str],
        features: Mapping[str, float | None] | None,
        met: Sequence[str] | None,
        class_names: Sequence[str],
        rule: str = "fused",
    ) -> FusedOutcome:
        """`decide` on a record's flattened criteria ``features`` and the classes whose criteria are ``met``
        (None for both: not measured)."""
        if rule not in DECISION_RULES:
            raise ValueError(f"decision rule is one of {', '.join(DECISION_RULES)}, not {rule!r}")
        model = tuple(model_decisions)
        if rule == "model":
            return FusedOutcome(model, dict.fromkeys(model, "model"), "model")
        if features is None or met is None:
            if rule == "criteria":
                return FusedOutcome((), {}, "criteria (no measurements)")
            return FusedOutcome(model, dict.fromkeys(model, "model"), "model (no measurements)")
        if rule == "criteria":
            candidates = tuple(n for n in class_names if n in met)
            chosen = self._exclude(candidates)
            excluded = {n: self.excludes[n] for n in candidates if n not in chosen}
            return FusedOutcome(chosen, dict.fromkeys(chosen, "by criteria"), "criteria", excluded=excluded)
        fused = self.scores(probabilities, features, class_names)
        decided_by = {}
        for name in class_names:
            spec = self.of(name)
            if spec.rule == "fused" and fused[name] >= spec.threshold:
                decided_by[name] = "fused"
            elif spec.rule == "criteria" and name in met:
                decided_by[name] = "by criteria"
            elif spec.rule == "model" and name in model:
                decided_by[name] = "model"
        if self.normal_excludes and NORMAL_CLASS in decided_by and len(decided_by) > 1:
            del decided_by[NORMAL_CLASS]
        candidates = tuple(n for n in class_names if n in decided_by)
        decisions = self._exclude(candidates)
        excluded = {n: self.excludes[n] for n in candidates if n not in decisions}
        return FusedOutcome(decisions, {n: decided_by[n] for n in decisions}, "fused", fused, excluded)

    def _exclude(self, decisions: tuple[str, ...]) -> tuple[str, ...]:
        """``decisions`` without a class decided beside the class that excludes it (`EXCLUDES`)."""
        return tuple(n for n in decisions if self.excludes.get(n) not in decisions)

    def to_dict(self) -> dict:
        """Plain data for JSON (``fused.json``)."""
        return {
            "format": FORMAT,
            "default": self.default,
            "normal_excludes": self.normal_excludes,
            "excludes": self.excludes,
            "origin": self.origin,
            "classes": {c.name: c.to_dict() for c in self.classes},
        }


def _logit(p: float) -> float:
    p = min(max(float(p), LOGIT_CLIP), 1 - LOGIT_CLIP)
    return math.log(p / (1 - p))


def _number(value: object, where: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FusedDecisionError(f"{where}: a finite number is needed, not {value!r}")
    return float(value)


def _feature(data: object, where: str) -> FusedFeature:
    if not isinstance(data, dict):
        raise FusedDecisionError(f"{where}: a feature is an object, not {type(data).__name__}")
    name, op, keys = data.get("name"), data.get("op"), data.get("keys", [])
    if not isinstance(name, str) or not name:
        raise FusedDecisionError(f"{where}: a feature needs a name")
    where = f"{where} feature {name!r}"
    if op not in OPERATIONS:
        raise FusedDecisionError(f"{where}: op is one of {', '.join(OPERATIONS)}, not {op!r}")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or (op != "logit" and not keys):
        raise FusedDecisionError(f"{where}: keys must be a non-empty list of criteria feature names")
    scale = _number(data.get("scale", 1.0), f"{where} scale")
    if scale is None or scale <= 0:
        raise FusedDecisionError(f"{where}: scale must be positive")
    return FusedFeature(
        name,
        op,
        tuple(keys),
        _number(data.get("low"), f"{where} low", optional=True),
        _number(data.get("high"), f"{where} high", optional=True),
        _number(data.get("impute", 0.0), f"{where} impute") or 0.0,
        _number(data.get("mean", 0.0), f"{where} mean") or 0.0,
        scale,
        _number(data.get("coef"), f"{where} coef") or 0.0,
        _number(data.get("missing_coef"), f"{where} missing_coef", optional=True),
    )


def fused_from_dict(data: object, where: str = FUSED_FILE, class_names: Sequence[str] = CLASS_NAMES) -> FusedDecision:
    """A fused decision from its plain data, checked: every class of ``class_names`` has a known rule, a fused
    class finite coefficients and a threshold in (0, 1); anything else is a `FusedDecisionError`."""
    if not isinstance(data, dict):
        raise FusedDecisionError(f"{where}: not a JSON object")
    if data.get("format") != FORMAT:
        raise FusedDecisionError(f"{where}: format {data.get('format')!r}, expected {FORMAT!r}")
    default = data.get("default", "fused")
    if default not in DECISION_RULES:
        raise FusedDecisionError(f"{where}: default is one of {', '.join(DECISION_RULES)}, not {default!r}")
    classes = data.get("classes")
    if not isinstance(classes, dict):
        raise FusedDecisionError(f"{where}: 'classes' must map each class to its rule")
    missing = [n for n in class_names if n not in classes]
    unknown = [n for n in classes if n not in class_names]
    if missing or unknown:
        raise FusedDecisionError(
            f"{where}: classes do not match the bundle's (missing: {', '.join(missing) or 'none'}; "
            f"unknown: {', '.join(map(str, unknown)) or 'none'})"
        )
    out = []
    for name in class_names:
        spec = classes[name]
        at = f"{where} class {name}"
        if not isinstance(spec, dict) or spec.get("rule") not in CLASS_RULES:
            rule = spec.get("rule") if isinstance(spec, dict) else spec
            raise FusedDecisionError(f"{at}: rule is one of {', '.join(CLASS_RULES)}, not {rule!r}")
        features = spec.get("features", [])
        if not isinstance(features, list):
            raise FusedDecisionError(f"{at}: features must be a list")
        parsed = tuple(_feature(f, at) for f in features)
        threshold = _number(spec.get("threshold", 0.5), f"{at} threshold") or 0.0
        if spec["rule"] == "fused":
            if not parsed:
                raise FusedDecisionError(f"{at}: a fused rule needs its features")
            if not 0.0 < threshold < 1.0:
                raise FusedDecisionError(f"{at}: threshold {threshold} is not a probability in (0, 1)")
        intercept = _number(spec.get("intercept", 0.0), f"{at} intercept") or 0.0
        out.append(FusedClass(name, spec["rule"], parsed, intercept, threshold))
    origin = data.get("origin", {})
    excludes = data.get("excludes", EXCLUDES)
    known = set(class_names)
    if not isinstance(excludes, dict) or not all(k in known and v in known for k, v in excludes.items()):
        raise FusedDecisionError(f"{where}: 'excludes' must map a class to the class it is not decided beside")
    return FusedDecision(
        tuple(out),
        default,
        bool(data.get("normal_excludes", True)),
        origin if isinstance(origin, dict) else {},
        dict(excludes),
    )


def read_fused(path: str | Path, class_names: Sequence[str] = CLASS_NAMES) -> FusedDecision:
    """Read and check a ``fused.json`` (`fused_from_dict`); unreadable or malformed: `FusedDecisionError`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FusedDecisionError(f"{path}: not a readable JSON file ({type(error).__name__}: {error})") from None
    return fused_from_dict(data, str(path), class_names)


def bundle_fused(bundle: str | Path, class_names: Sequence[str] = CLASS_NAMES) -> FusedDecision | None:
    """The fused decision shipped in a bundle's folder, or None when it has none."""
    path = Path(bundle) / FUSED_FILE
    return read_fused(path, class_names) if path.is_file() else None


def feature_matrix(
    spec: Sequence[FusedFeature], logits: np.ndarray, rows: Sequence[Mapping[str, float | None]]
) -> np.ndarray:
    """The raw feature values (records x features; NaN where not measured) of records' logits for one class and
    their flattened criteria features: what a fit reads."""
    out = np.full((len(rows), len(spec)), np.nan)
    for i, (logit, features) in enumerate(zip(logits, rows, strict=True)):
        for j, feature in enumerate(spec):
            value = feature.read(float(logit), features)
            if value is not None:
                out[i, j] = value
    return out
