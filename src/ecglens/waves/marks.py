"""Wave marks: for each lead, the P waves, QRS complexes and T waves as (onset, peak, offset) sample indices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

WAVES = ("P", "QRS", "T")
"""The waves a delineation marks, in the order of a beat."""
BOUNDARIES = tuple(f"{wave} {edge}" for wave in WAVES for edge in ("onset", "offset"))
"""The six boundaries whose timing is measured: ``P onset``, ``P offset``, ``QRS onset``, ..."""
OK = "ok"


@dataclass(frozen=True)
class LeadWaves:
    """One lead's waves: an n x 3 integer array (onset, peak, offset; -1 where unknown) per wave kind.

    ``status`` is ``ok`` or why the lead's marks cannot be trusted (a failed delineation, no P waves, ...);
    ``notes`` say what is missing without making the lead unusable (``no P wave found``).
    """

    lead: str
    waves: dict[str, np.ndarray] = field(repr=False)
    status: str = OK
    notes: tuple[str, ...] = ()

    def of(self, kind: str) -> np.ndarray:
        """The n x 3 marks of one wave kind (empty when none)."""
        return self.waves.get(kind, np.zeros((0, 3), np.int64))

    def boundary(self, name: str) -> np.ndarray:
        """The known samples of one boundary (``QRS onset``, ``T offset``, ...), sorted."""
        kind, edge = name.rsplit(" ", 1)
        column = self.of(kind)[:, 0 if edge == "onset" else 2]
        return np.sort(column[column >= 0])

    @property
    def span(self) -> tuple[int, int] | None:
        """First and last marked sample of any wave (None without marks): where a reference annotates."""
        marked = [m[m >= 0] for m in self.waves.values() if m.size]
        values = np.concatenate(marked) if marked else np.zeros(0, np.int64)
        return (int(values.min()), int(values.max())) if values.size else None


@dataclass(frozen=True)
class WaveMarks:
    """A record's wave marks per lead, at ``sampling_rate_hz``, and who made them."""

    sampling_rate_hz: float
    leads: tuple[LeadWaves, ...]
    source: str

    @property
    def lead_names(self) -> tuple[str, ...]:
        """The leads, in order."""
        return tuple(lead.lead for lead in self.leads)

    def lead(self, name: str) -> LeadWaves:
        """One lead's waves (KeyError when the record has no such lead)."""
        for lead in self.leads:
            if lead.lead == name:
                return lead
        raise KeyError(name)

    def at_rate(self, sampling_rate_hz: float) -> WaveMarks:
        """The same marks at another sampling rate (sample indices scaled and rounded; unknown stays -1)."""
        ratio = sampling_rate_hz / self.sampling_rate_hz

        def scaled(marks: np.ndarray) -> np.ndarray:
            return np.where(marks >= 0, np.round(marks * ratio), -1).astype(np.int64)

        leads = tuple(replace(lead, waves={k: scaled(v) for k, v in lead.waves.items()}) for lead in self.leads)
        return WaveMarks(sampling_rate_hz, leads, self.source)

    def usable(self) -> tuple[LeadWaves, ...]:
        """The leads whose marks can be trusted."""
        return tuple(lead for lead in self.leads if lead.status == OK)


def waves_from_triplets(
    kinds: Sequence[str], onsets: Sequence[int], peaks: Sequence[int], offsets: Sequence[int]
) -> dict[str, np.ndarray]:
    """Group (kind, onset, peak, offset) rows into `LeadWaves.waves`, sorted by onset."""
    out: dict[str, np.ndarray] = {}
    for kind in WAVES:
        rows = [(a, p, b) for k, a, p, b in zip(kinds, onsets, peaks, offsets, strict=True) if k == kind]
        rows.sort()
        out[kind] = np.asarray(rows, np.int64).reshape(-1, 3)
    return out
