"""Every class's criteria (`ecglens.criteria.table`) evaluated on a record's measurements, and where they disagree
with the model's decisions.

A criterion is ``met``, ``not met`` or ``not assessable`` (a value it reads was not measured: the reason says
which and why). A class is met when every one of its criteria is (one of a group of alternatives suffices), not
met when one fails, and not assessable otherwise. Each criterion keeps the values that decided it as a line a
reader checks ("PR 338 ms > 200 ms") and as numbers (`CriterionResult.values`, `CriteriaResult.features`), so that
a later model can read them as features.

Sex and age pick the thresholds that depend on them (ST elevation in V2-V3, the QTc limit). Where the record
does not say, the lowest threshold that could apply is used, the most sensitive one (a flag asks a person to
look; it decides nothing), and the result says so in its ``notes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ecglens.classes import CLASS_NAMES
from ecglens.criteria.table import (
    CLASS_TITLES,
    GLOBAL_MEASUREMENTS,
    Criterion,
    contiguous_pairs,
    criteria_table,
    lead_thresholds,
)
from ecglens.waves.leads import LeadMeasurements
from ecglens.waves.measure import NO_P_WAVES, RESOLUTION, Measurements

MET, NOT_MET, NOT_ASSESSABLE = "met", "not met", "not assessable"
STATUSES = (MET, NOT_MET, NOT_ASSESSABLE)
NORMAL_CLASS = "SNR"
NONE_OTHER = "snr.none_other"
"""The normal class's criterion that no abnormal class's criteria are met."""
NOT_EVALUATED = "criteria not evaluated: the record has no measurements (predict --measurements)"
"""What a prediction without measurements says in place of its criteria."""
MORPHOLOGY_NOT_MEASURED = (
    "the premature beat's own P wave and QRS width are not measured yet: atrial or ventricular cannot be told"
)


@dataclass(frozen=True)
class CriterionResult:
    """One criterion on one record: its status, the line a reader checks, and the numbers behind it.

    ``values``: the measured value per lead (``global`` for a global measurement; None where not measured);
    ``thresholds``: the threshold each was compared with (``low`` and ``high`` for ``between``); ``leads_met``:
    the leads that met it."""

    id: str
    class_name: str
    description: str
    status: str
    line: str
    values: dict[str, float | None]
    thresholds: dict[str, float]
    defining: bool
    source: str
    leads_met: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Plain data for JSON (values rounded to 0.001)."""
        return {
            "id": self.id,
            "description": self.description,
            "status": self.status,
            "line": self.line,
            "values": {k: None if v is None else round(v, 3) for k, v in self.values.items()},
            "thresholds": self.thresholds,
            "leads_met": list(self.leads_met),
            "defining": self.defining,
            "source": self.source,
        }


@dataclass(frozen=True)
class ClassCriteria:
    """One class's criteria on one record: ``status``, and ``line``: what decided it (the met criteria's lines
    when met, the failed ones' when not, the reasons when not assessable)."""

    class_name: str
    status: str
    line: str
    criteria: tuple[CriterionResult, ...]
    caveat: str = ""
    """Why the class is not assessed on this record although its values were measured (ST on a wide QRS): a
    decision of the class is shown with it."""

    @property
    def title(self) -> str:
        """The class in words (``first-degree AV block``)."""
        return CLASS_TITLES[self.class_name]

    def defining_failures(self) -> tuple[CriterionResult, ...]:
        """The defining criteria that are not met (a decision of the class they contradict)."""
        return tuple(c for c in self.criteria if c.defining and c.status == NOT_MET)

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "status": self.status,
            "title": self.title,
            "line": self.line,
            "criteria": [c.to_dict() for c in self.criteria],
        }


@dataclass(frozen=True)
class CriteriaResult:
    """Every class's criteria on one record, with the sex and age that chose the thresholds, and ``notes`` (how a
    threshold was chosen where sex or age is unknown)."""

    classes: tuple[ClassCriteria, ...]
    sex: str | None
    age: float | None
    notes: tuple[str, ...] = ()

    def of(self, class_name: str) -> ClassCriteria:
        """One class's criteria."""
        return next(c for c in self.classes if c.class_name == class_name)

    def met(self) -> tuple[str, ...]:
        """The classes whose criteria are met, in class order."""
        return tuple(c.class_name for c in self.classes if c.status == MET)

    def features(self) -> dict[str, float | None]:
        """Numbers a model can read: each criterion's status (1 met, 0 not met, None not assessable) as
        ``<id>``, and each value it read as ``<id>:<lead>`` (``global`` for a global measurement)."""
        out: dict[str, float | None] = {}
        for result in self.classes:
            for c in result.criteria:
                out[c.id] = {MET: 1.0, NOT_MET: 0.0}.get(c.status)
                out.update({f"{c.id}:{where}": value for where, value in c.values.items()})
        return out

    def line(self) -> str:
        """``criteria met: IAVB (PR 338 ms > 200 ms)`` or ``criteria met: none``."""
        met = [f"{c.class_name} ({c.line})" for c in self.classes if c.status == MET]
        return "criteria met: " + ("; ".join(met) if met else "none")

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "met": list(self.met()),
            "sex": self.sex,
            "age": self.age,
            "notes": list(self.notes),
            "classes": {c.class_name: c.to_dict() for c in self.classes},
        }


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.0f}"


def _compare(value: float, operator: str, threshold: float | tuple[float, float] | str) -> bool:
    if isinstance(threshold, tuple):
        return threshold[0] <= value <= threshold[1]
    if isinstance(threshold, str):
        return False
    return {
        ">": value > threshold,
        ">=": value >= threshold,
        "<": value < threshold,
        "<=": value <= threshold,
        "==": math.isclose(value, threshold, abs_tol=1e-9),
    }[operator]


def _condition(operator: str, threshold: float | tuple[float, float] | str, unit: str) -> str:
    unit = f" {unit}" if unit and unit != "beats" else ""
    if isinstance(threshold, tuple):
        return f"within {_number(threshold[0])} to {_number(threshold[1])}{unit}"
    if isinstance(threshold, str):
        return f"== {threshold}"
    return f"{operator} {_number(threshold)}{unit}"


def _global_value(criterion: Criterion, m: Measurements, others_met: int) -> tuple[float | None, str]:
    """A global measurement's value, or None and why it is missing."""
    name = criterion.measurement
    label = GLOBAL_MEASUREMENTS[name][0]
    no_p = any(note.startswith(NO_P_WAVES) for note in m.notes)
    if name == "p_waves":
        return (None, "too few beats to tell P waves") if m.n_beats < 2 else (0.0 if no_p else 1.0, "")
    if name == "premature_beats":
        return float(m.premature_beats), ""
    if name == "premature_morphology":
        return None, MORPHOLOGY_NOT_MEASURED
    if name == "abnormal_classes_met":
        return float(others_met), ""
    if name == "rr_cv":
        if m.rr_sd_ms is None or not m.heart_rate_bpm:
            return None, "RR variation not measured (fewer than three beats)"
        return m.rr_sd_ms / (60000.0 / m.heart_rate_bpm), ""
    if name == "rr_irregularity" and m.rr_irregularity is None:
        return None, "RR irregularity not measured (fewer than three RR intervals between normal beats)"
    value = getattr(m, name)
    if value is not None:
        return float(value), ""
    if name == "pr_ms" and no_p:
        return None, "no P waves: PR not measured"
    why = [note for note in m.notes if not note.startswith(RESOLUTION)]
    return None, f"{label} not measured" + (f" ({why[0]})" if why else "")


def _lead_value(lead: LeadMeasurements, name: str) -> float | None:
    if name == "r_dominance_mv":  # a QS or Qr complex is not a dominant R
        return lead.r_mv - max(lead.q_mv, lead.s_mv)
    if name == "s_minus_r_ms":
        return lead.s_ms - lead.r_ms
    value = getattr(lead, name)
    return None if value is None else float(value)


def _sensitive(criterion: Criterion, lead: str | None, sex: str | None, age: float | None) -> tuple[float | None, str]:
    """The sex- and age-specific threshold of a criterion (in a lead), or None where none is listed; where sex or
    age is unknown, the lowest of those that could apply, and a note saying so."""
    rows = [r for r in lead_thresholds() if r.criterion == criterion.id and (lead in r.leads if r.leads else not lead)]
    if not rows:
        return None, ""
    if sex is not None and age is not None:
        chosen = [r.threshold for r in rows if r.applies(sex, age)]
        return (chosen[0], "") if chosen else (None, "")
    possible = [r for r in rows if sex is None or r.sex == sex]
    possible = [r for r in possible if age is None or r.age == "any" or r.applies(r.sex, age)]
    if not possible:
        return None, ""
    lowest = min(r.threshold for r in possible)
    if len({r.threshold for r in possible}) == 1:
        return lowest, ""
    by_sex = sex is None and len({r.sex for r in possible}) > 1
    by_age = age is None and any(r.age != "any" for r in possible)
    unknown = " and ".join(name for name, used in (("sex", by_sex), ("age", by_age)) if used)
    where = f" in {', '.join(rows[0].leads)}" if rows[0].leads else ""
    return (
        lowest,
        f"{criterion.id}: {unknown} unknown: the lowest threshold{where} used, {_number(lowest)} {criterion.unit}",
    )


def _evaluate_global(
    criterion: Criterion, m: Measurements, sex: str | None, age: float | None, others_met: int, notes: list[str]
) -> CriterionResult:
    value, why = _global_value(criterion, m, others_met)
    threshold = criterion.threshold
    override, note = _sensitive(criterion, None, sex, age)
    if override is not None:
        threshold = override
    if note:
        notes.append(note)
    thresholds = (
        {"low": threshold[0], "high": threshold[1]}
        if isinstance(threshold, tuple)
        else ({} if isinstance(threshold, str) else {"global": threshold})
    )

    def result(status: str, line: str) -> CriterionResult:
        return _result(criterion, status, line, {"global": value}, thresholds)

    if value is None:
        return result(NOT_ASSESSABLE, why)
    met = _compare(value, criterion.operator, threshold)
    if criterion.measurement == "p_waves":
        return result(MET if met else NOT_MET, "P waves present" if value else "no P waves in most beats")
    unit = f" {criterion.unit}" if criterion.unit and criterion.unit != "beats" else ""
    shown = f"{criterion.label} {_number(value)}{unit}"
    if criterion.measurement in ("premature_beats", "abnormal_classes_met"):
        shown = f"{criterion.label}: {value:.0f}"
        return result(MET if met else NOT_MET, shown)
    condition = _condition(criterion.operator, threshold, criterion.unit)
    return result(MET if met else NOT_MET, f"{shown} {condition}" if met else f"{shown}, not {condition}")


def _result(
    criterion: Criterion,
    status: str,
    line: str,
    values: dict[str, float | None],
    thresholds: dict[str, float],
    leads_met: tuple[str, ...] = (),
) -> CriterionResult:
    """A criterion's result with the numbers behind it (one constructor for global and per-lead criteria)."""
    return CriterionResult(
        criterion.id,
        criterion.class_name,
        criterion.description,
        status,
        line,
        values,
        thresholds,
        criterion.defining,
        criterion.source,
        leads_met,
    )


def _leads_met_line(criterion: Criterion, met: list[str], values: dict[str, float | None], thresholds: dict) -> str:
    shown = ", ".join(f"{lead} {_number(values[lead])}" for lead in met)  # type: ignore[arg-type]
    limits = sorted({thresholds[lead] for lead in met})
    limit = "/".join(_number(t) for t in limits)
    return f"{criterion.label} {criterion.operator} {limit} {criterion.unit} in {shown}".replace("  ", " ")


def _evaluate_leads(
    criterion: Criterion, m: Measurements, sex: str | None, age: float | None, notes: list[str]
) -> CriterionResult:
    by_name = {lead.lead: lead for lead in m.leads}
    values: dict[str, float | None] = {}
    thresholds: dict[str, float] = {}
    for lead in criterion.leads:
        values[lead] = _lead_value(by_name[lead], criterion.measurement) if lead in by_name else None
        override, note = _sensitive(criterion, lead, sex, age)
        thresholds[lead] = override if override is not None else float(criterion.threshold)  # type: ignore[arg-type]
        if note and note not in notes:
            notes.append(note)
    met = [lead for lead, v in values.items() if v is not None and _compare(v, criterion.operator, thresholds[lead])]
    missing = [lead for lead, v in values.items() if v is None]

    def result(status: str, line: str, leads_met: tuple[str, ...] = ()) -> CriterionResult:
        return _result(criterion, status, line, values, thresholds, leads_met)

    if not m.leads:
        return result(NOT_ASSESSABLE, "no per-lead measurements (no representative beat)")
    missing_line = f"{criterion.label} not measured in {', '.join(missing)}"
    if criterion.count == "2 contiguous":
        pairs = [p for p in contiguous_pairs() if p <= set(met)]
        if pairs:
            leads = tuple(lead for lead in criterion.leads if any(lead in p for p in pairs))
            return result(MET, _leads_met_line(criterion, list(leads), values, thresholds) + " (contiguous)", leads)
        open_pairs = [p for p in contiguous_pairs() if p <= set(met) | set(missing) and p & set(missing)]
        if open_pairs and set().union(*open_pairs) <= set(criterion.leads):
            return result(NOT_ASSESSABLE, missing_line)
        alone = f"; only in {', '.join(met)}, no two contiguous" if met else ""
        condition = _condition(criterion.operator, criterion.threshold, criterion.unit)
        return result(NOT_MET, f"{criterion.label} {condition} in no two contiguous leads{alone}", tuple(met))
    if criterion.count == "any":
        if met:
            return result(MET, _leads_met_line(criterion, met, values, thresholds), tuple(met))
        if missing:
            return result(NOT_ASSESSABLE, missing_line)
    else:
        failed = [lead for lead in criterion.leads if lead not in met and lead not in missing]
        if not failed and not missing:
            return result(MET, _leads_met_line(criterion, met, values, thresholds), tuple(met))
        if not failed:
            return result(NOT_ASSESSABLE, missing_line)
        shown = ", ".join(f"{lead} {_number(values[lead])}" for lead in failed)  # type: ignore[arg-type]
        condition = _condition(criterion.operator, criterion.threshold, criterion.unit)
        return result(NOT_MET, f"{criterion.label} {shown}, not {condition}", tuple(met))
    condition = _condition(criterion.operator, criterion.threshold, criterion.unit)
    return result(NOT_MET, f"{criterion.label} {condition} in none of {', '.join(criterion.leads)}")


def _combine(class_name: str, results: list[CriterionResult], criteria: list[Criterion]) -> ClassCriteria:
    groups: dict[str, list[CriterionResult]] = {}
    for criterion, result in zip(criteria, results, strict=True):
        groups.setdefault(criterion.group or criterion.id, []).append(result)
    statuses = []
    for members in groups.values():
        found = {r.status for r in members}
        statuses.append(MET if MET in found else NOT_ASSESSABLE if NOT_ASSESSABLE in found else NOT_MET)
    if NOT_MET in statuses:
        status = NOT_MET
        shown = [r for (members, s) in zip(groups.values(), statuses, strict=True) if s == NOT_MET for r in members]
    elif NOT_ASSESSABLE in statuses:
        status = NOT_ASSESSABLE
        shown = [r for r in results if r.status == NOT_ASSESSABLE]
    else:
        status = MET
        shown = [r for r in results if r.status == MET]
    lines = list(dict.fromkeys(r.line for r in shown))
    return ClassCriteria(class_name, status, "; ".join(lines), tuple(results))


ST_CLASSES = ("STE", "STD")
WIDE_QRS_MS = 120.0
"""ST elevation and depression are not assessed on a QRS of 120 ms or more: the Fourth Universal Definition of
Myocardial Infarction (Thygesen et al. 2018) gives its ST thresholds "in the absence of left ventricular
hypertrophy (LVH) and left bundle branch block (LBBB)", and the ST-T of a complete bundle branch block or a
ventricular rhythm goes opposite to the QRS as a matter of course."""


def evaluate(measurements: Measurements, sex: str | None = None, age: float | None = None) -> CriteriaResult:
    """Every class's criteria on a record's measurements. ``sex`` (``male``/``female``) and ``age`` (years) pick
    the thresholds that depend on them; unknown, the lowest that could apply is used and a note says so. The
    normal class is evaluated last: one of its criteria is that no other class's are met."""
    sex = sex if sex in ("male", "female") else None
    age = None if age is None or not math.isfinite(age) else float(age)
    notes: list[str] = []
    by_class: dict[str, ClassCriteria] = {}
    table = criteria_table()
    order = [name for name in CLASS_NAMES if name != NORMAL_CLASS] + [NORMAL_CLASS]
    for name in order:
        criteria = [c for c in table if c.class_name == name]
        others_met = sum(c.status == MET for c in by_class.values())
        results = [
            _evaluate_leads(c, measurements, sex, age, notes)
            if c.leads
            else _evaluate_global(c, measurements, sex, age, others_met, notes)
            for c in criteria
        ]
        wide = (measurements.qrs_ms or 0) >= WIDE_QRS_MS
        rbbb = name == "STE" and "RBBB" in by_class and by_class["RBBB"].status == MET
        if name in ST_CLASSES and wide and not rbbb:
            reason = (
                f"QRS {measurements.qrs_ms:.0f} ms >= {WIDE_QRS_MS:g} ms: the ST changes of a bundle branch block, a "
                "paced or ventricular rhythm are secondary; the Fourth Universal Definition's ST thresholds do not "
                "apply (ST elevation is read where RBBB's criteria are met; Sgarbossa-type criteria are not assessed)"
            )
            results = [replace(r, status=NOT_ASSESSABLE, line=reason) for r in results]
            by_class[name] = replace(_combine(name, results, criteria), caveat=reason)
            continue
        by_class[name] = _combine(name, results, criteria)
    return CriteriaResult(tuple(by_class[name] for name in CLASS_NAMES), sex, age, tuple(dict.fromkeys(notes)))


def _who(name: str, decided_by: Mapping[str, str] | None, rule: str) -> str:
    """Who made (or did not make) a decision of ``name``, as a disagreement line names it."""
    by = (decided_by or {}).get(name, rule)
    return "criteria" if by == "by criteria" else by.split(" ")[0]


def _not_normal(criteria: CriteriaResult) -> list[CriterionResult]:
    """The normal class's own criteria that fail (rate, PR, QRS, QTc, axis, premature beats), apart from its
    defining one (named as any class's), the one that another class's criteria are met, and those reading a
    measurement that a met abnormal class names already (a PR of 338 ms is named once, by IAVB)."""
    reads = {c.id: c.measurement for c in criteria_table()}
    named = {
        reads[r.id]
        for c in criteria.classes
        if c.status == MET and c.class_name != NORMAL_CLASS
        for r in c.criteria
        if r.status == MET
    }
    return [
        c
        for c in criteria.of(NORMAL_CLASS).criteria
        if c.status == NOT_MET and not c.defining and c.id != NONE_OTHER and reads[c.id] not in named
    ]


def disputed(decisions: Sequence[str], criteria: CriteriaResult | None) -> tuple[str, ...]:
    """The decided classes the criteria dispute: SNR on a record that meets an abnormal class's criteria or fails
    one of the normal class's own, and any other class whose criteria are not met."""
    if criteria is None:
        return ()
    out = []
    for name in decisions:
        if name not in CLASS_NAMES:
            continue
        if name == NORMAL_CLASS:
            abnormal = any(c.status == MET and c.class_name != NORMAL_CLASS for c in criteria.classes)
            if abnormal or _not_normal(criteria) or criteria.of(name).defining_failures():
                out.append(name)
        elif criteria.of(name).status == NOT_MET:
            out.append(name)
    return tuple(out)


def disagreements(
    decisions: tuple[str, ...],
    criteria: CriteriaResult,
    not_validated: tuple[str, ...] = (),
    decided_by: Mapping[str, str] | None = None,
    rule: str = "model",
) -> tuple[str, ...]:
    """Where the decisions and the criteria disagree, each a line a report prints, naming what made the decision
    (``model``, ``fused``: per class from ``decided_by``, else the record's ``rule``):

    - SNR decided while an abnormal class's criteria are met:
      ``model: SNR; criteria: first-degree AV block (PR 338 ms > 200 ms)``;
    - SNR decided while one of the normal class's own criteria fails:
      ``fused: SNR; criteria: not normal (QRS 132 ms, not <= 110 ms)``;
    - a class decided whose criteria are not met (its defining one named first where it fails):
      ``model: IAVB; criteria: not met (PR 138 ms, not > 200 ms)``;
    - an ST class decided where its criteria are not assessed (a wide QRS): ``model: STD; criteria: not
      assessable (QRS 162 ms >= 120 ms: ...)``;
    - an abnormal class's criteria are met and neither it nor SNR was decided:
      ``criteria: complete right bundle branch block (...); model: RBBB not decided`` (``not validated, never
      decided`` where the model cannot decide that class).
    """
    out = []
    met = [c for c in criteria.classes if c.status == MET and c.class_name != NORMAL_CLASS]
    if NORMAL_CLASS in decisions:
        who = _who(NORMAL_CLASS, decided_by, rule)
        out += [f"{who}: {NORMAL_CLASS}; criteria: {c.title} ({c.line})" for c in met]
        failing = _not_normal(criteria)
        if failing:
            out.append(f"{who}: {NORMAL_CLASS}; criteria: not normal ({'; '.join(f.line for f in failing)})")
    for name in decisions:
        if name not in CLASS_NAMES:
            continue
        found = criteria.of(name)
        failed = found.defining_failures()
        if failed or (name != NORMAL_CLASS and found.status == NOT_MET):
            lines = "; ".join(f.line for f in failed) if failed else found.line
            out.append(f"{_who(name, decided_by, rule)}: {name}; criteria: not met ({lines})")
        elif found.caveat:
            out.append(f"{_who(name, decided_by, rule)}: {name}; criteria: not assessable ({found.caveat})")
    if NORMAL_CLASS not in decisions:
        for c in met:
            if c.class_name not in decisions:
                why = "not validated, never decided" if c.class_name in not_validated else "not decided"
                out.append(f"criteria: {c.title} ({c.line}); {_who(c.class_name, None, rule)}: {c.class_name} {why}")
    return tuple(out)
