"""The criteria table: per class, each measurable criterion a cardiologist applies, with its threshold, the leads it
reads and its guideline source (``criteria/tables/criteria.csv``); the thresholds that depend on sex and age
(``lead_thresholds.csv``) and the contiguous lead groups (``contiguous.csv``), each row with its source.

The tables are data: `criteria_table`, `lead_thresholds` and `contiguous_pairs` read and validate them once, and a
table that names an unknown class, lead, measurement or operator, or lacks a source, is a `CriteriaTableError`.
"""

from __future__ import annotations

import csv
import functools
import itertools
from dataclasses import dataclass
from importlib import resources

from ecglens.classes import CLASS_NAMES
from ecglens.leads import LEAD_NAMES
from ecglens.waves.leads import LEAD_FIELDS

OPERATORS = (">", ">=", "<", "<=", "==", "between")
"""How a measured value is compared with its threshold (``between``: ``low..high``, both included)."""
COUNTS = ("all", "any", "2 contiguous")
"""How a per-lead criterion combines its leads: every lead listed, at least one, or two contiguous leads."""
GLOBAL_MEASUREMENTS = {
    "heart_rate_bpm": ("HR", "bpm"),
    "pr_ms": ("PR", "ms"),
    "qrs_ms": ("QRS", "ms"),
    "qtc_bazett_ms": ("QTc", "ms"),
    "qrs_axis_deg": ("QRS axis", "deg"),
    "rr_cv": ("RR variation (SD / median RR)", ""),
    "rr_irregularity": ("RR irregularity (median beat-to-beat change / median RR)", ""),
    "p_waves": ("P waves", ""),
    "premature_beats": ("premature beats", ""),
    "premature_morphology": ("premature beat's morphology", ""),
    "abnormal_classes_met": ("abnormal classes met", ""),
}
"""The global measurements a criterion may read, with their short names and units: `ecglens.waves.measure`'s, and
those derived from them (``rr_cv``: the RR standard deviation over the median RR, which one premature beat
raises; ``rr_irregularity``: `ecglens.waves.measure.rr_irregularity`, which leaves isolated premature beats out;
``p_waves``: 1 when P waves
precede most QRS complexes, 0 when not; ``premature_morphology``: atrial or ventricular, not measured yet;
``abnormal_classes_met``: how many of the other classes' criteria are met)."""
DERIVED_LEAD_MEASUREMENTS = {
    "r_dominance_mv": "R minus max(Q, S)",
    "s_minus_r_ms": "S minus R duration",
}
"""Per-lead measurements derived from `ecglens.waves.leads.LEAD_FIELDS`."""
LEAD_LABELS = {
    "st_j_mv": "ST at J",
    "st_60_mv": "ST at J+60 ms",
    "q_mv": "q amplitude",
    "s_ms": "S duration",
    "r_prime_mv": "R' amplitude",
    "r_peak_time_ms": "R-peak time",
    **DERIVED_LEAD_MEASUREMENTS,
}
CLASS_TITLES = {
    "SNR": "sinus rhythm, normal ECG",
    "AF": "atrial fibrillation",
    "IAVB": "first-degree AV block",
    "LBBB": "complete left bundle branch block",
    "RBBB": "complete right bundle branch block",
    "PAC": "premature atrial contraction",
    "PVC": "premature ventricular contraction",
    "STD": "ST depression",
    "STE": "ST elevation",
}
"""What each class means, in words a report prints."""


class CriteriaTableError(ValueError):
    """A criteria table row is malformed (an unknown class, lead, measurement or operator, no source)."""


@dataclass(frozen=True)
class Criterion:
    """One measurable criterion of a class (a row of ``criteria.csv``).

    ``leads`` is empty for a global measurement; ``count`` says how a per-lead criterion combines its leads
    (`COUNTS`). Criteria sharing a ``group`` are alternatives (one of them suffices); the class needs every other
    criterion. A ``defining`` criterion is the one whose failure contradicts a decision of the class."""

    id: str
    class_name: str
    description: str
    measurement: str
    operator: str
    threshold: float | tuple[float, float] | str
    unit: str
    leads: tuple[str, ...]
    count: str
    group: str
    defining: bool
    source: str

    @property
    def label(self) -> str:
        """The measurement's short name (``PR``, ``ST at J``)."""
        if self.measurement in GLOBAL_MEASUREMENTS:
            return GLOBAL_MEASUREMENTS[self.measurement][0]
        return LEAD_LABELS.get(self.measurement, self.measurement)


@dataclass(frozen=True)
class LeadThreshold:
    """A threshold of a criterion that depends on the leads, sex and age (a row of ``lead_thresholds.csv``):
    ``sex`` ``male``/``female``; ``age`` ``any``, ``>=40`` or ``<40``; ``leads`` empty for a global criterion."""

    criterion: str
    leads: tuple[str, ...]
    sex: str
    age: str
    threshold: float
    source: str

    def applies(self, sex: str, age: float) -> bool:
        """Whether the row applies to a person of this sex and age."""
        if sex != self.sex:
            return False
        if self.age == "any":
            return True
        bound = float(self.age.lstrip("<>="))
        return age >= bound if self.age.startswith(">=") else age < bound


def _text(name: str) -> str:
    return resources.files("ecglens.criteria").joinpath(f"tables/{name}").read_text()


def _threshold(row_id: str, operator: str, text: str) -> float | tuple[float, float] | str:
    try:
        if operator == "between":
            low, high = (float(part) for part in text.split(".."))
            if low > high:
                raise ValueError
            return low, high
        return float(text)
    except ValueError:
        if operator == "==" and text.isalpha():
            return text  # a category (``atrial``)
        raise CriteriaTableError(f"criterion {row_id}: threshold {text!r} does not fit operator {operator!r}") from None


def _leads(row_id: str, text: str, allowed: tuple[str, ...] = LEAD_NAMES) -> tuple[str, ...]:
    if text == "global":
        return ()
    leads = tuple(text.split(";"))
    unknown = [lead for lead in leads if lead not in allowed]
    if unknown or len(set(leads)) != len(leads):
        raise CriteriaTableError(f"{row_id}: unknown or repeated leads {';'.join(unknown) or text}")
    return leads


def parse_criteria(text: str) -> tuple[Criterion, ...]:
    """Criteria from the text of a criteria table, validated (`CriteriaTableError` names the bad row)."""
    out: list[Criterion] = []
    for row in csv.DictReader(text.splitlines()):
        row_id = row.get("id") or "?"
        if None in row or any(value is None for value in row.values()):
            raise CriteriaTableError(f"criterion {row_id}: the row does not have the table's columns")
        if row["class"] not in CLASS_NAMES:
            raise CriteriaTableError(f"criterion {row_id}: unknown class {row['class']!r}")
        if row["operator"] not in OPERATORS:
            raise CriteriaTableError(f"criterion {row_id}: unknown operator {row['operator']!r}")
        leads = _leads(f"criterion {row_id}", row["leads"])
        known = GLOBAL_MEASUREMENTS if not leads else (*LEAD_FIELDS, *DERIVED_LEAD_MEASUREMENTS)
        if row["measurement"] not in known:
            where = "global" if not leads else "per-lead"
            raise CriteriaTableError(f"criterion {row_id}: unknown {where} measurement {row['measurement']!r}")
        if bool(leads) != (row["count"] in COUNTS) or (not leads and row["count"]):
            raise CriteriaTableError(f"criterion {row_id}: count {row['count']!r} does not fit leads {row['leads']!r}")
        if row["defining"] not in ("yes", "no"):
            raise CriteriaTableError(f"criterion {row_id}: defining must be yes or no, not {row['defining']!r}")
        if not row["source"].strip() or not row["description"].strip():
            raise CriteriaTableError(f"criterion {row_id}: no description or no source")
        if any(c.id == row_id for c in out):
            raise CriteriaTableError(f"criterion {row_id}: listed twice")
        threshold = _threshold(row_id, row["operator"], row["threshold"])
        out.append(
            Criterion(
                row_id,
                row["class"],
                row["description"],
                row["measurement"],
                row["operator"],
                threshold,
                row["unit"],
                leads,
                row["count"],
                row["group"],
                row["defining"] == "yes",
                row["source"],
            )
        )
    for name in CLASS_NAMES:
        if not any(c.class_name == name and c.defining for c in out):
            raise CriteriaTableError(f"class {name} has no defining criterion")
    return tuple(out)


@functools.cache
def criteria_table() -> tuple[Criterion, ...]:
    """The criteria table (``criteria/tables/criteria.csv``), validated, in its order."""
    return parse_criteria(_text("criteria.csv"))


@functools.cache
def lead_thresholds() -> tuple[LeadThreshold, ...]:
    """The sex- and age-specific thresholds (``criteria/tables/lead_thresholds.csv``), validated."""
    ids = {c.id for c in criteria_table()}
    out = []
    for row in csv.DictReader(_text("lead_thresholds.csv").splitlines()):
        where = f"lead threshold of {row['criterion']}"
        if row["criterion"] not in ids:
            raise CriteriaTableError(f"{where}: no such criterion")
        if row["sex"] not in ("male", "female") or row["age"] not in ("any", ">=40", "<40"):
            raise CriteriaTableError(f"{where}: sex {row['sex']!r} or age {row['age']!r} not understood")
        if not row["source"].strip():
            raise CriteriaTableError(f"{where}: no source")
        leads = _leads(where, row["leads"])
        out.append(
            LeadThreshold(row["criterion"], leads, row["sex"], row["age"], float(row["threshold"]), row["source"])
        )
    return tuple(out)


@dataclass(frozen=True)
class ContiguousGroup:
    """Leads that face one region of the heart (a row of ``contiguous.csv``): ``adjacent`` pairs are neighbours in
    the listed order, ``all`` pairs any two of them."""

    name: str
    leads: tuple[str, ...]
    pairs: str
    source: str


@functools.cache
def contiguous_groups() -> tuple[ContiguousGroup, ...]:
    """The contiguous lead groups (``criteria/tables/contiguous.csv``), validated."""
    out = []
    for row in csv.DictReader(_text("contiguous.csv").splitlines()):
        leads = _leads(f"contiguous group {row['group']}", row["leads"], (*LEAD_NAMES, "-aVR"))
        if row["pairs"] not in ("adjacent", "all") or not row["source"].strip():
            raise CriteriaTableError(f"contiguous group {row['group']}: pairs {row['pairs']!r} or no source")
        out.append(ContiguousGroup(row["group"], leads, row["pairs"], row["source"]))
    return tuple(out)


@functools.cache
def contiguous_pairs() -> frozenset[frozenset[str]]:
    """Every pair of contiguous leads (`contiguous_groups`)."""
    pairs = set()
    for group in contiguous_groups():
        leads = group.leads
        if group.pairs == "adjacent":
            pairs |= {frozenset(pair) for pair in itertools.pairwise(leads)}
        else:
            pairs |= {frozenset((a, b)) for i, a in enumerate(leads) for b in leads[i + 1 :]}
    return frozenset(p for p in pairs if "-aVR" not in p)
