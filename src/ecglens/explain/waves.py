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
"""Where the waves come from: ``auto`` (neurokit2 on the scored input) or ``ludb`` (the cardiologists' marks
beside the record's header; ``auto`` for a record without them)."""
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
        labels = {per_lead: segment_labels(marks, item.signal.shape[1], per_lead) for per_lead in (True, False)}
        for method in methods:
            explained = explain_inputs(
                model, meta, [item], method, class_name, background, probabilities=probabilities[i : i + 1]
            )
            for explanation in explained:
                codes = labels[method in LEAD_RESOLVED]
                shares = wave_shares(explanation.values, codes, meta.lead_names, explanation.class_name, method)
                out.append(WaveExplanation(explanation, marks, codes, shares, measured))
    return out


@dataclass(frozen=True)
class PlausibilityRow:
    """One class and method over records: mean plausibility with a 95 % bootstrap interval, mean chance,
    and the mean share per segment."""

    class_name: str
    method: str
    n: int
    plausibility: float | None
    interval: tuple[float, float] | None
    chance: float | None
    shares: dict[str, float]


def plausibility_table(
    explained: Sequence[WaveExplanation], n_boot: int = 1000, seed: int = 0
) -> list[PlausibilityRow]:
    """Per class and method: the mean plausibility (an interval from 2 records on), chance and segment profile."""
    groups: dict[tuple[str, str], list[WaveShares]] = {}
    for item in explained:
        groups.setdefault((item.shares.class_name, item.shares.method), []).append(item.shares)
    rng = np.random.default_rng(seed)
    rows = []
    for (name, method), shares in sorted(groups.items()):
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
                len(shares),
                float(values.mean()) if len(values) else None,
                interval,
                float(np.mean(chances)) if chances else None,
                {seg: float(np.mean([s.shares[seg] for s in shares])) for seg in SEGMENTS},
            )
        )
    return rows
