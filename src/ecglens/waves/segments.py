"""Where an explanation's evidence falls among the heart's waves, and whether it falls where a cardiologist looks.

Every sample of a lead gets one segment: the P wave, the PR segment (P offset to QRS onset), the QRS complex,
the ST segment (QRS offset to T onset), the T wave, or the rest (the TP baseline); samples outside the span
the marks cover are left out. An explanation's **share** of a segment is its positive evidence there over its
positive evidence in the covered span; the segment's **time share** is the fraction of covered samples it
takes, so share / time share (the lift) above 1 means the method concentrates there.

The **plausibility** of an explanation for a class is its share of evidence in the segments (and leads) a
cardiologist reads for that class (`expected_evidence`, a table with a source per row), beside the share a
map spread evenly over time would put there (its chance level). The **pointing game** (Zhang et al. 2018) asks
only whether the map's largest value lies there.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ecglens.waves.marks import LeadWaves, WaveMarks
from ecglens.waves.measure import global_boundaries

SEGMENTS = ("P", "PR", "QRS", "ST", "T", "rest")
"""The segments of a beat, in order; ``rest`` is the TP baseline."""
OUTSIDE = -1
MAX_GAP_S = {"PR": 0.4, "ST": 0.6}
"""The longest PR and ST segment joined to its waves; a longer gap (a missed wave) is left as rest."""


@dataclass(frozen=True)
class ExpectedEvidence:
    """Where a cardiologist looks for a class: segments, leads (all when empty), what and the source."""

    class_name: str
    segments: tuple[str, ...]
    leads: tuple[str, ...]
    description: str
    source: str


@functools.cache
def expected_evidence() -> dict[str, ExpectedEvidence]:
    """The expected-evidence table (``waves/tables/expected_evidence.csv``), by class."""
    text = resources.files("ecglens.waves").joinpath("tables/expected_evidence.csv").read_text()
    rows = {}
    for row in csv.DictReader(text.splitlines()):
        leads = () if row["leads"] == "all" else tuple(row["leads"].split(";"))
        rows[row["class"]] = ExpectedEvidence(
            row["class"], tuple(row["segments"].split(";")), leads, row["what a cardiologist looks at"], row["source"]
        )
    return rows


def _fill(row: np.ndarray, start: int, stop: int, code: int) -> None:
    if 0 <= start <= stop:
        row[start : stop + 1] = code


def _lead_labels(
    waves: dict[str, list[tuple[int, int]]], span: tuple[int, int] | None, n_samples: int, rate: float
) -> np.ndarray:
    """One row of segment codes from (onset, offset) pairs per wave kind."""
    row = np.full(n_samples, OUTSIDE, np.int64)
    if span is None:
        return row
    row[max(span[0], 0) : min(span[1], n_samples - 1) + 1] = SEGMENTS.index("rest")
    for before, after, gap in (("P", "QRS", "PR"), ("QRS", "T", "ST")):
        starts = sorted(a for a, _ in waves.get(after, []))
        for _, end in waves.get(before, []):
            following = [s for s in starts if s > end]
            if following and following[0] - end <= MAX_GAP_S[gap] * rate:
                _fill(row, end + 1, following[0] - 1, SEGMENTS.index(gap))
    for kind in ("P", "QRS", "T"):
        for start, stop in waves.get(kind, []):
            _fill(row, start, stop, SEGMENTS.index(kind))
    row[: max(span[0], 0)] = OUTSIDE
    row[span[1] + 1 :] = OUTSIDE
    return row


def _pairs(lead: LeadWaves) -> dict[str, list[tuple[int, int]]]:
    return {kind: [(int(a), int(b)) for a, _, b in lead.of(kind) if a >= 0 and b >= a] for kind in ("P", "QRS", "T")}


def segment_labels(marks: WaveMarks, n_samples: int, per_lead: bool = True) -> np.ndarray:
    """Segment codes (indices into `SEGMENTS`, `OUTSIDE` where unmarked), leads x samples in the marks' lead
    order. ``per_lead``: each lead by its own marks (a lead whose marks cannot be trusted takes the global ones);
    else every lead by the global boundaries (the earliest onset and latest offset per beat, as measured)."""
    rate = marks.sampling_rate_hz
    beats = global_boundaries(marks)
    global_waves = {
        kind: [
            (int(a), int(b))
            for beat in beats
            if (a := beat[f"{kind} onset"]) is not None and (b := beat[f"{kind} offset"]) is not None
        ]
        for kind in ("P", "QRS", "T")
    }
    marked = [v for pairs in global_waves.values() for pair in pairs for v in pair]
    global_span = (min(marked), max(marked)) if marked else None
    global_row = _lead_labels(global_waves, global_span, n_samples, rate)
    rows = []
    for lead in marks.leads:
        if per_lead and lead.status == "ok" and lead.span is not None:
            rows.append(_lead_labels(_pairs(lead), lead.span, n_samples, rate))
        else:
            rows.append(global_row)
    return np.stack(rows) if rows else np.zeros((0, n_samples), np.int64)


@dataclass(frozen=True)
class WaveShares:
    """Where one explanation's positive evidence falls: per segment, its share and the segment's time share,
    over all leads and per lead (rows in the marks' lead order); and its plausibility for the class."""

    class_name: str
    method: str
    shares: dict[str, float]
    time_shares: dict[str, float]
    lead_shares: dict[str, dict[str, float]]
    plausibility: float | None
    chance: float | None
    expected: tuple[str, ...]
    pointing: bool | None = None
    """The pointing game: whether the map's largest positive value (in the covered span) lies where a cardiologist
    looks for the class; None when the class has no expected evidence or the map none."""

    @property
    def has_evidence(self) -> bool:
        """Whether the map has any positive evidence among the waves (a Grad-CAM that the ReLU cut to zero has
        none: its shares are all 0 and its plausibility None, and it is counted apart)."""
        return sum(self.shares.values()) > 0

    @property
    def lifts(self) -> dict[str, float | None]:
        """Share over time share per segment (above 1: the method concentrates there)."""
        return {s: (self.shares[s] / t if t > 0 else None) for s, t in self.time_shares.items()}

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "class": self.class_name,
            "method": self.method,
            "shares": self.shares,
            "time_shares": self.time_shares,
            "lifts": self.lifts,
            "lead_shares": self.lead_shares,
            "plausibility": self.plausibility,
            "chance": self.chance,
            "expected": list(self.expected),
            "pointing": self.pointing,
            "has_evidence": self.has_evidence,
        }


def _expected_mask(labels: np.ndarray, lead_names: Sequence[str], expected: ExpectedEvidence | None) -> np.ndarray:
    mask = np.zeros(labels.shape, bool)
    if expected is None:
        return mask
    codes = [SEGMENTS.index(s) for s in expected.segments]
    rows = [i for i, lead in enumerate(lead_names) if not expected.leads or lead in expected.leads]
    mask[rows] = np.isin(labels[rows], codes)
    return mask


def wave_shares(
    values: np.ndarray, labels: np.ndarray, lead_names: Sequence[str], class_name: str, method: str
) -> WaveShares:
    """The shares of an explanation map (leads x samples; a per-time map repeated over the leads is fine) over the
    segments of ``labels`` (`segment_labels`), and its plausibility for ``class_name``."""
    positive = np.clip(np.asarray(values, np.float64), 0, None)
    covered = labels != OUTSIDE
    total = float(positive[covered].sum())
    n_covered = int(covered.sum())

    def share(mask: np.ndarray) -> float:
        return float(positive[mask].sum() / total) if total > 0 else 0.0

    shares = {s: share(labels == k) for k, s in enumerate(SEGMENTS)}
    time_shares = {s: (float((labels == k).sum() / n_covered) if n_covered else 0.0) for k, s in enumerate(SEGMENTS)}
    lead_shares = {}
    for i, lead in enumerate(lead_names):
        row_total = float(positive[i][covered[i]].sum())
        lead_shares[lead] = {
            s: (float(positive[i][labels[i] == k].sum() / row_total) if row_total > 0 else 0.0)
            for k, s in enumerate(SEGMENTS)
        }
    expected = expected_evidence().get(class_name)
    mask = _expected_mask(labels, lead_names, expected)
    plausibility = share(mask) if expected is not None and total > 0 else None
    chance = float(mask.sum() / n_covered) if expected is not None and n_covered else None
    pointing = None
    if plausibility is not None:
        inside = np.where(covered, positive, 0.0)
        pointing = bool(mask[inside == inside.max()].any())
    return WaveShares(
        class_name,
        method,
        shares,
        time_shares,
        lead_shares,
        plausibility,
        chance,
        () if expected is None else expected.segments,
        pointing,
    )
