"""Explanations placed among the heart's waves: for each record, its waves (a delineation of the scored input,
or LUDB's cardiologist marks when asked for and present), each method's map for each explained class, the
share of its positive evidence per segment (P, PR, QRS, ST, T, rest) and its plausibility for the class
(`ecglens.waves.segments`); and over records, per class and method, the mean plausibility with a bootstrap
interval and the mean segment profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from ecglens.bundle.meta import BundleMeta
from ecglens.explain.inputs import Background
from ecglens.explain.records import RecordExplanation, explain_inputs, probabilities_of
from ecglens.preprocess import ModelInput
from ecglens.waves.marks import WaveMarks
from ecglens.waves.measure import Measurements, measure
from ecglens.waves.segments import SEGMENTS, WaveShares, segment_labels, wave_shares

MARKS = ("auto", "ludb")
"""Where the waves come from: ``auto`` (the default delineator on the scored input) or ``ludb`` (the
cardiologists' marks beside the record's header; ``auto`` for a record without them)."""
LEAD_RESOLVED = ("guided-gradcam", "shap")


@dataclass(frozen=True)
class WaveExplanation:
    """One record's explanation of one class by one method, with its waves, segment codes and shares."""

    explanation: RecordExplanation
    marks: WaveMarks
    labels: np.ndarray
    shares: WaveShares
    measurements: Measurements


def record_marks(item: ModelInput, sampling_rate_hz: float, lead_names: Sequence[str], source: str) -> WaveMarks:
    """The waves of a scored input at the model's rate: LUDB's marks (``source='ludb'``, when its annotation files
    sit beside the record's header), else a delineation of the input itself."""
    from ecglens.waves.delineate import delineate

    header = Path(item.source) if item.source else None
    if source == "ludb" and header is not None and header.with_suffix(".ii").exists():
        from ecglens.waves.ludb import read_ludb_marks

        marks = read_ludb_marks(header).at_rate(sampling_rate_hz)
        return WaveMarks(marks.sampling_rate_hz, tuple(marks.lead(lead) for lead in lead_names), marks.source)
    return delineate(item.signal, sampling_rate_hz, lead_names)


def explain_waves(
    model: nn.Module,
    meta: BundleMeta,
    inputs: Sequence[ModelInput],
    methods: Sequence[str],
    class_name: str | None = None,
    background: Background | None = None,
    marks_source: str = "auto",
) -> list[WaveExplanation]:
    """Every method's explanation of each input (for its decided classes, or ``class_name``), placed among the
    input's waves. Grad-CAM, a map per time step, is placed among the global waves (every lead alike); the
    lead-resolved methods among each lead's own."""
    if marks_source not in MARKS:
        raise ValueError(f"unknown source of waves {marks_source!r}; choose from {', '.join(MARKS)}")
    probabilities = probabilities_of(model, inputs)
    source = marks_source if meta.policy.name == "crop" else "auto"  # a cut or padded input: its own waves
    out = []
    for i, item in enumerate(inputs):
        marks = record_marks(item, meta.sampling_rate_hz, meta.lead_names, source)
        measured = measure(marks, item.signal)
        labels = method_labels(marks, item.signal.shape[1])
        for method in methods:
            explained = explain_inputs(
                model, meta, [item], method, class_name, background, probabilities=probabilities[i : i + 1]
            )
            for explanation in explained:
                codes, shares = among_waves(explanation, labels, meta.lead_names)
                out.append(WaveExplanation(explanation, marks, codes, shares, measured))
    return out


def method_labels(marks: WaveMarks, n_samples: int) -> dict[bool, np.ndarray]:
    """The segment codes of an input (`segment_labels`): by each lead's own waves (key True) and by the global
    waves on every lead (key False)."""
    return {per_lead: segment_labels(marks, n_samples, per_lead) for per_lead in (True, False)}


def among_waves(
    explanation: RecordExplanation, labels: dict[bool, np.ndarray], lead_names: Sequence[str]
) -> tuple[np.ndarray, WaveShares]:
    """An explanation's segment codes and shares: a lead-resolved method's map among each lead's own waves,
    Grad-CAM's (one value per time step) among the global waves."""
    codes = labels[explanation.method in LEAD_RESOLVED]
    return codes, wave_shares(explanation.values, codes, lead_names, explanation.class_name, explanation.method)


@dataclass(frozen=True)
class PlausibilityRow:
    """One class and method over records: mean plausibility with a 95 % bootstrap interval, mean chance,
    and the mean share per segment, over the ``n`` explanations less the ``n_without_evidence`` maps with no
    positive evidence among the waves (counted, and left out of every mean; shares None when all are)."""

    class_name: str
    method: str
    n: int
    plausibility: float | None
    interval: tuple[float, float] | None
    chance: float | None
    shares: dict[str, float] | None
    n_without_evidence: int = 0

    def top_segment(self) -> str:
        """``QRS (41%)``: the segment with the largest mean share (``none`` when no map has evidence)."""
        if self.shares is None:
            return "none"
        top = max(self.shares, key=lambda segment: self.shares[segment] if self.shares else 0.0)
        return f"{top} ({self.shares[top]:.0%})"

    def to_dict(self) -> dict:
        """Plain data: one row of ``plausibility.csv``."""
        return {
            "class": self.class_name,
            "method": self.method,
            "n": self.n,
            "plausibility": self.plausibility,
            "interval": None if self.interval is None else list(self.interval),
            "chance": self.chance,
            "without_evidence": self.n_without_evidence,
            **{f"share_{seg}": None if self.shares is None else self.shares[seg] for seg in SEGMENTS},
        }

    @classmethod
    def from_dict(cls, data: dict) -> PlausibilityRow:
        """The row back from `to_dict`."""
        interval = data["interval"]
        return cls(
            data["class"],
            data["method"],
            data["n"],
            data["plausibility"],
            None if interval is None else (interval[0], interval[1]),
            data["chance"],
            None if data["share_P"] is None else {seg: data[f"share_{seg}"] for seg in SEGMENTS},
            data["without_evidence"],
        )


def plausibility_table(
    explained: Sequence[WaveExplanation | WaveShares], n_boot: int = 1000, seed: int = 0
) -> list[PlausibilityRow]:
    """Per class and method: the mean plausibility (an interval from 2 records on), chance and segment profile,
    over the maps with positive evidence among the waves (the others counted)."""
    groups: dict[tuple[str, str], list[WaveShares]] = {}
    for item in explained:
        one = item.shares if isinstance(item, WaveExplanation) else item
        groups.setdefault((one.class_name, one.method), []).append(one)
    rng = np.random.default_rng(seed)
    rows = []
    for (name, method), every in sorted(groups.items()):
        shares = [s for s in every if s.has_evidence]
        values = np.array([s.plausibility for s in shares if s.plausibility is not None], np.float64)
        chances = [s.chance for s in shares if s.chance is not None]
        interval = None
        if len(values) > 1:
            means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
            interval = (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))
        rows.append(
            PlausibilityRow(
                name,
                method,
                len(every),
                float(values.mean()) if len(values) else None,
                interval,
                float(np.mean(chances)) if chances else None,
                {seg: float(np.mean([s.shares[seg] for s in shares])) for seg in SEGMENTS} if shares else None,
                len(every) - len(shares),
            )
        )
    return rows


@dataclass(frozen=True)
class WavesSummary:
    """A study's explanations among the waves, as it saves and reloads them: the model and methods, the
    plausibility per class and method, each explained record's measurements and the page with every figure;
    or, where delineation is not installed, why there is none."""

    model: str
    methods: tuple[str, ...]
    n_records: int
    table: tuple[PlausibilityRow, ...]
    measurements: tuple[tuple[str, Measurements], ...]
    waves_source: str
    page: str | None
    unavailable: str | None = None

    @classmethod
    def of(
        cls,
        model: str,
        methods: Sequence[str],
        n_records: int,
        explained: Sequence[WaveExplanation],
        table: Sequence[PlausibilityRow],
        page: Path,
    ) -> WavesSummary:
        """The summary of ``explain_waves``'s output, its `plausibility_table` and the ``waves.html`` written."""
        measured = {item.explanation.input.record_id: item.measurements for item in explained}
        sources = sorted({item.marks.source for item in explained})
        return cls(
            model,
            tuple(methods),
            n_records,
            tuple(table),
            tuple(measured.items()),
            ", ".join(sources) or "none",
            str(page),
        )

    def to_dict(self) -> dict:
        """Plain data for a study's JSON."""
        return {
            "model": self.model,
            "methods": list(self.methods),
            "n_records": self.n_records,
            "table": [row.to_dict() for row in self.table],
            "measurements": [{"record_id": rid, **m.to_dict()} for rid, m in self.measurements],
            "waves_source": self.waves_source,
            "page": self.page,
            "unavailable": self.unavailable,
        }

    @classmethod
    def from_dict(cls, data: dict) -> WavesSummary:
        """The summary back from `to_dict`."""
        return cls(
            data["model"],
            tuple(data["methods"]),
            data["n_records"],
            tuple(PlausibilityRow.from_dict(row) for row in data["table"]),
            tuple((m["record_id"], Measurements.from_dict(m)) for m in data["measurements"]),
            data["waves_source"],
            data["page"],
            data["unavailable"],
        )

    @classmethod
    def missing(cls, model: str, methods: Sequence[str], why: str) -> WavesSummary:
        """No summary, and why (delineation is not installed)."""
        return cls(model, tuple(methods), 0, (), (), "none", None, why)
