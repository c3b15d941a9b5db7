"""`RecordRef`: a record found by a scan, not yet read (cheap to pass to worker processes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecglens.io.record import Record


@dataclass(frozen=True)
class RecordRef:
    """Where a record lives and what its source table already says about it.

    Metadata fields hold what the dataset's index (PTB-XL database, CPSC REFERENCE.csv) knows;
    readers fill in the rest from the file itself.
    """

    path: str
    dataset: str
    record_id: str
    reader: str
    raw_labels: tuple[tuple[str, float | None], ...] = ()
    label_vocabulary: str = "none"
    patient_id: str | None = None
    age: float | None = None
    sex: str | None = None
    fold: int | None = None

    def with_signal(self, signal: np.ndarray, sampling_rate_hz: float, lead_names: tuple[str, ...]) -> Record:
        """A `Record` built from this reference's metadata and a signal."""
        return Record(
            record_id=self.record_id,
            dataset=self.dataset,
            signal=signal,
            sampling_rate_hz=sampling_rate_hz,
            lead_names=tuple(lead_names),
            raw_labels=self.raw_labels,
            label_vocabulary=self.label_vocabulary,
            patient_id=self.patient_id,
            age=self.age,
            sex=self.sex,
            fold=self.fold,
            source_path=self.path,
        )
