"""Boundaries found against reference boundaries, within a tolerance: the scores delineators are published with
(sensitivity, positive predictive value, error mean and SD; LUDB's paper uses a 150-ms tolerance)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecglens.waves.marks import BOUNDARIES, WaveMarks

TOLERANCE_S = 0.150


@dataclass(frozen=True)
class BoundaryScore:
    """One boundary kind over records and leads: matches, misses, extras and the matched errors (ms)."""

    boundary: str
    true_positives: int
    false_negatives: int
    false_positives: int
    errors_ms: tuple[float, ...]

    @property
    def sensitivity(self) -> float | None:
        """Reference boundaries found within the tolerance."""
        n = self.true_positives + self.false_negatives
        return self.true_positives / n if n else None

    @property
    def ppv(self) -> float | None:
        """Boundaries found that match a reference boundary."""
        n = self.true_positives + self.false_positives
        return self.true_positives / n if n else None

    @property
    def mean_ms(self) -> float | None:
        """Mean signed error, found minus reference."""
        return float(np.mean(self.errors_ms)) if self.errors_ms else None

    @property
    def sd_ms(self) -> float | None:
        """Standard deviation of the signed error."""
        return float(np.std(self.errors_ms, ddof=1)) if len(self.errors_ms) > 1 else None

    def __add__(self, other: BoundaryScore) -> BoundaryScore:
        return BoundaryScore(
            self.boundary,
            self.true_positives + other.true_positives,
            self.false_negatives + other.false_negatives,
            self.false_positives + other.false_positives,
            self.errors_ms + other.errors_ms,
        )


def match_times(reference: np.ndarray, found: np.ndarray, tolerance: float) -> tuple[list[tuple[int, int]], int, int]:
    """One-to-one pairs (reference index, found index) within ``tolerance``, closest pairs first; and the
    numbers of unmatched reference and found times."""
    pairs = sorted(
        (abs(float(f) - float(r)), i, j)
        for i, r in enumerate(reference)
        for j, f in enumerate(found)
        if abs(float(f) - float(r)) <= tolerance
    )
    used_r, used_f, matched = set(), set(), []
    for _, i, j in pairs:
        if i not in used_r and j not in used_f:
            used_r.add(i)
            used_f.add(j)
            matched.append((i, j))
    return matched, len(reference) - len(matched), len(found) - len(matched)


def score_marks(reference: WaveMarks, found: WaveMarks, tolerance_s: float = TOLERANCE_S) -> dict[str, BoundaryScore]:
    """Every boundary kind of ``found`` against ``reference``, lead by lead, within the span the reference marks
    (a reference leaves the first and last beats of a record unmarked: a boundary found there is not an
    error). Leads the delineator could not use count as misses."""
    rate = reference.sampling_rate_hz
    tolerance = tolerance_s * rate
    scores = {name: BoundaryScore(name, 0, 0, 0, ()) for name in BOUNDARIES}
    for ref_lead in reference.leads:
        span = ref_lead.span
        if span is None:
            continue
        try:
            lead = found.lead(ref_lead.lead)
        except KeyError:
            continue
        for name in BOUNDARIES:
            truth = ref_lead.boundary(name)
            times = lead.boundary(name)
            times = times[(times >= span[0] - tolerance) & (times <= span[1] + tolerance)]
            matched, missed, extra = match_times(truth, times, tolerance)
            errors = tuple(float(times[j] - truth[i]) * 1000 / rate for i, j in matched)
            scores[name] = scores[name] + BoundaryScore(name, len(matched), missed, extra, errors)
    return scores
