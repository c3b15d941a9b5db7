"""The `Record` every reader returns, and the errors readers raise."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ecglens.leads import LEAD_NAMES, inverted_lead, lead_order
from ecglens.util.progress import printable

logger = logging.getLogger(__name__)

VOCABULARIES = ("scp", "snomed", "cpsc", "ludb", "none")


class RecordError(ValueError):
    """A record cannot be read; the message names the file and what is wrong with it."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class RecordTooLarge(RecordError):
    """A record that declares more data than ecglens decodes (`ecglens.io.limits.check_values`); refused before
    anything is allocated from it."""


@dataclass(frozen=True)
class ReadIssue:
    """A record left out of a batch, with the reason (for reports)."""

    path: str
    reason: str
    dataset: str = ""

    def __post_init__(self) -> None:
        # A file name with undecodable bytes or control characters must not stop the report that lists it.
        for name in ("path", "reason", "dataset"):
            object.__setattr__(self, name, printable(getattr(self, name)))


@dataclass(frozen=True)
class Record:
    """One 12-lead ECG in physical units.

    Attributes:
        record_id: identifier unique within its dataset (file stem, or PTB-XL ecg_id).
        dataset: name of the source (``ptbxl``, ``cpsc2018``, ``challenge/<folder>``, ...).
        signal: float32 array, leads x samples, in millivolts, leads in ``lead_names`` order.
        sampling_rate_hz: samples per second.
        lead_names: canonical lead names (see `ecglens.leads.LEAD_NAMES`).
        raw_labels: the source's own label codes with a likelihood where the source has one
            (PTB-XL SCP statements), else None.
        label_vocabulary: ``scp``, ``snomed``, ``cpsc`` or ``none``.
        patient_id: patient identifier where the source gives one.
        age: age in years, or None.
        sex: ``"male"``, ``"female"`` or None.
        fold: the source's own split fold (PTB-XL ``strat_fold``), or None.
        source_path: file the signal was read from (a clinical file's pseudonymous name unless its
            identifiers were asked for).
        statements: the file's own interpretation (a cart's or an over-reader's statements), kept apart
            from anything ecglens decides.
        derived_leads: leads the reader computed from others (a GE MUSE file stores 8 leads: III, aVR, aVL
            and aVF come from I and II).
        file_format: the clinical format the file was read as (``dicom``, ``hl7-aecg``, ``philips-xml``,
            ``ge-muse-xml``, ``scp-ecg``); empty for the research formats.
        identifiers: personal data from a clinical file (name, patient id, birth date, free text), present
            only when the reader was asked for it (``--include-identifiers``).
        file_measurements: the measurements the file itself carries (a cart's: heart rate, PR, QRS, QT, QTc,
            axes), under `ecglens.waves.measure.Measurements`'s names, to show beside ecglens's own.
        statements_left_out: how many of the file's own statements were left out of ``statements`` because
            they could identify a person (`ecglens.io.deidentify`); 0 when identifiers were asked for.
        dicom_header: a DICOM file's study, series and instance UIDs and SOP class as (keyword, value), for the
            DICOM objects filed beside it (`ecglens.export.dicom`): its own UIDs with identifiers, otherwise
            UIDs made from a keyed hash of them (one source study keeps one pseudonymous UID); with identifiers
            also its patient and study attributes as written. Empty for the other formats.
    """

    record_id: str
    dataset: str
    signal: np.ndarray = field(repr=False)
    sampling_rate_hz: float
    lead_names: tuple[str, ...] = LEAD_NAMES
    raw_labels: tuple[tuple[str, float | None], ...] = ()
    label_vocabulary: str = "none"
    patient_id: str | None = None
    age: float | None = None
    sex: str | None = None
    fold: int | None = None
    source_path: str = ""
    statements: tuple[str, ...] = ()
    derived_leads: tuple[str, ...] = ()
    file_format: str = ""
    identifiers: tuple[tuple[str, str], ...] = ()
    file_measurements: tuple[tuple[str, float], ...] = ()
    statements_left_out: int = 0
    dicom_header: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.signal.ndim != 2 or self.signal.shape[0] != len(self.lead_names):
            raise RecordError(
                self.source_path or self.record_id,
                f"signal shape {self.signal.shape} does not match {len(self.lead_names)} leads",
            )
        if self.label_vocabulary not in VOCABULARIES:
            raise ValueError(f"unknown label vocabulary {self.label_vocabulary!r}")
        from ecglens.io.limits import MAX_ABS_MV, check_length, check_rate

        where = self.source_path or self.record_id
        check_rate(where, self.sampling_rate_hz)
        check_length(where, self.n_samples, self.sampling_rate_hz)
        peak = float(np.max(np.abs(self.signal))) if self.signal.size else 0.0
        if not peak <= MAX_ABS_MV:  # NaN fails too
            raise RecordError(
                where, f"sample of {peak:.3g} mV is beyond {MAX_ABS_MV:g} mV: wrong units or a damaged file"
            )

    @property
    def n_samples(self) -> int:
        """Number of samples per lead."""
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sampling_rate_hz

    @property
    def label_codes(self) -> tuple[str, ...]:
        """The raw label codes without likelihoods."""
        return tuple(code for code, _ in self.raw_labels)


_KINDS = {
    "b": "booleans",
    "c": "complex numbers (the imaginary part would be lost)",
    "U": "text",
    "S": "bytes",
    "O": "Python objects",
}


def not_samples(dtype: np.dtype) -> str | None:
    """Why an array of ``dtype`` cannot be samples of an ECG (a voltage: real integers or floats), or None."""
    if dtype.kind in "iuf" and not dtype.names:
        return None
    return f"holds {_KINDS.get(dtype.kind, 'structured or non-numeric values')} (dtype {dtype}), not real samples"


def numeric_samples(path: str, values: object, what: str = "signal") -> np.ndarray:
    """Samples from a file as float64, refusing what is not a real numeric array (strings, cell arrays,
    structured or complex values), never converting them silently.

    Raises:
        RecordError: naming the array and its type.
    """
    from ecglens.io.limits import check_values

    array = np.asarray(values)
    problem = not_samples(array.dtype)
    if problem is not None:
        raise RecordError(path, f"{what} {problem}")
    check_values(path, array.size, f"{what} holds")  # before the float64 copy
    return array.astype(np.float64)


def finish_signal(
    path: str,
    signal: np.ndarray,
    lead_names: list[str] | tuple[str, ...],
    wanted_leads: tuple[str, ...] = LEAD_NAMES,
) -> np.ndarray:
    """Reorder leads to ``wanted_leads`` and check the samples, as every reader must.

    Args:
        path: file named in errors.
        signal: leads x samples array in mV.
        lead_names: the file's own lead names, any spelling.
        wanted_leads: canonical leads to keep, in order.

    An inverted lead (``-aVR``: see `ecglens.leads.inverted_lead`) is multiplied by -1 and read as its lead, with
    a warning naming the file.

    Raises:
        RecordError: missing leads, no samples, or non-finite values.
    """

    names, signs = list(lead_names), np.ones(len(lead_names))
    for index, name in enumerate(names):
        lead = inverted_lead(str(name))
        if lead is not None:  # -aVR is aVR upside down: invert it back, never read it as aVR
            names[index], signs[index] = lead, -1.0
            logger.warning("%s: lead %s inverted and read as %s", printable(path), name.strip(), lead)
    try:
        order = lead_order(names, wanted_leads)
    except ValueError as error:
        raise RecordError(path, str(error)) from None
    signal = np.ascontiguousarray(signal[order], dtype=np.float32)
    if (signs < 0).any():
        signal *= signs[order, None].astype(np.float32)
    if signal.shape[1] == 0:
        raise RecordError(path, "signal has no samples")
    bad = ~np.isfinite(signal)
    if bad.any():
        leads = [wanted_leads[i] for i in np.flatnonzero(bad.any(axis=1))]
        raise RecordError(path, f"{int(bad.sum())} NaN/infinite sample(s) in lead(s) {', '.join(leads)}")
    return signal


def parse_age(path: str, text: str | float | None) -> float | None:
    """Parse an age field; empty, 'NaN' and 'Unknown' give None, other non-numbers are errors."""
    if text is None:
        return None
    if isinstance(text, float | int):
        value = float(text)
    else:
        text = text.strip()
        if text.lower() in {"", "nan", "unknown", "none", "?"}:
            return None
        try:
            value = float(text)
        except ValueError:
            raise RecordError(path, f"age {text!r} is not a number") from None
    if np.isnan(value):
        return None
    if not 0 <= value <= 300:
        raise RecordError(path, f"age {value:g} is out of range")
    # PTB-XL writes 300 for every patient over 89 (privacy); it means "90 or more".
    return min(value, 90.0)


def parse_sex(text: str | float | None) -> str | None:
    """Normalise sex to 'male'/'female'/None (accepts Male/M/Female/F)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    value = str(text).strip().lower()
    if value in {"male", "m"}:
        return "male"
    if value in {"female", "f"}:
        return "female"
    return None


def issue_from(error: Exception, path: str, dataset: str = "") -> ReadIssue:
    """The named issue of one record that could not be read: its `RecordError`, or any other failure of
    a reader or library on that file (a damaged file must cost that record, never the batch)."""
    if isinstance(error, RecordError):
        return ReadIssue(error.path, error.reason, dataset)
    return ReadIssue(path, f"unreadable ({type(error).__name__}: {error})", dataset)
