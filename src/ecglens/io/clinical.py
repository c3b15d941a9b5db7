"""Clinical ECG files: DICOM 12-lead waveforms, HL7 aECG, Philips Sierra XML (1.03, 1.04), GE MUSE XML and
SCP-ECG, read through ecgdatakit (Apache-2.0; defusedxml for every XML, bounds-checked binary decoders) with
pydicom for DICOM: ``pip install 'ecglens[clinical]'``. The format is told from the file's content.

What a reader adds to the library's parse:

- the same `Record` as every other reader: mV, canonical lead names, the file's own rate;
- a GE MUSE file stores 8 leads: III = II - I, aVR = -(I + II)/2, aVL = I - II/2 and aVF = II - I/2 are
  derived (Einthoven, Goldberger) and named in ``Record.derived_leads``;
- a trailing calibration pulse (Philips writes 11 s: the ECG, then zeros and a 1-mV pulse on every lead) is
  cut, so it is never scored as a heartbeat;
- the file's own interpretation is kept as ``Record.statements``, apart from ecglens's output;
- **personal data stays in the file**: the record id is a keyed hash of the file path
  (`ecglens.util.pseudonym`), the patient id a keyed hash of itself (the same patient keeps one id, so splits
  keep a patient's records together), ages above 89 read as 90, and names, birth and acquisition dates,
  identifiers and free text are dropped, and so is any statement that could identify a person (its file's
  names, ids and dates in any written form, its staff, dates, telephone numbers, signature phrases: see
  `ecglens.io.deidentify`), counted in ``Record.statements_left_out``. Errors name the file by its pseudonym.
  ``include_identifiers=True`` (``--include-identifiers``) keeps all of it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import unicodedata
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ecglens.io.clinical_bounds import bounded_source
from ecglens.io.deidentify import parse_day, scrubber, staff_fields
from ecglens.io.limits import check_length, check_rate, check_values, regular_file
from ecglens.io.record import Record, RecordError, RecordTooLarge, finish_signal
from ecglens.leads import LEAD_NAMES, normalize_lead_name
from ecglens.util.pseudonym import pseudonym

logger = logging.getLogger(__name__)

CLINICAL_FORMATS = {
    "dicom": ("ecgdatakit.parsing.parsers.dicom_waveform", "DICOMWaveformParser", "DICOM waveform"),
    "hl7-aecg": ("ecgdatakit.parsing.parsers.hl7_aecg", "HL7aECGParser", "HL7 aECG"),
    "philips-xml": ("ecgdatakit.parsing.parsers.sierra_xml", "SierraXMLParser", "Philips Sierra XML"),
    "ge-muse-xml": ("ecgdatakit.parsing.parsers.ge_muse_xml", "GEMuseXMLParser", "GE MUSE XML"),
    "scp-ecg": ("ecgdatakit.parsing.parsers.scp_ecg", "SCPECGParser", "SCP-ECG"),
}
"""Format id (as written in outputs) -> ecgdatakit's parser module, class and the format's name."""
CLINICAL_SUFFIXES = (".xml", ".dcm", ".scp")
MAX_FILE_BYTES = 32 * 2**20
"""A clinical ECG file is read whole; 32 MiB holds 12 leads for over 5 minutes at 1 kHz as XML text."""
EXTRA = "pip install 'ecglens[clinical]'"
_DERIVED = {
    "III": lambda i, ii: ii - i,
    "aVR": lambda i, ii: -(i + ii) / 2,
    "aVL": lambda i, ii: i - ii / 2,
    "aVF": lambda i, ii: ii - i / 2,
}


class ClinicalUnavailable(RecordError):
    """ecgdatakit (or pydicom, for DICOM) is not installed: the file's issue (and the CLI's one line) names the
    extra to install."""


def is_clinical(path: str | Path) -> bool:
    """Whether a file is one of the clinical kinds by its name (``.xml``, ``.dcm``, ``.scp``) or, for a regular
    file, DICOM's magic."""
    path = Path(path)
    if path.suffix.lower() in CLINICAL_SUFFIXES:
        return True
    if not path.is_file():  # never open a FIFO or a device to sniff it: it could block for ever
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _parser(path: Path, header: bytes, where: str) -> tuple[str, str, Any] | None:
    """The format id, name and ecgdatakit parser class of a file, told from its content; None when none fits."""
    try:
        importlib.import_module("ecgdatakit")
    except ImportError:
        raise ClinicalUnavailable(
            where, f"clinical ECG files (DICOM, HL7 aECG, Philips, GE MUSE, SCP-ECG) need {EXTRA}"
        ) from None
    for format_id, (module, name, label) in CLINICAL_FORMATS.items():
        parser = getattr(importlib.import_module(module), name)
        try:
            if parser.can_parse(path, header):
                if format_id == "dicom" and importlib.util.find_spec("pydicom") is None:
                    raise ClinicalUnavailable(where, f"DICOM ECG files need pydicom: {EXTRA}")
                return format_id, label, parser
        except ClinicalUnavailable:
            raise
        except Exception:  # a sniffer that trips on this file's header: not its format
            continue
    return None


def display_name(path: str | Path, include_identifiers: bool = False, record_id: str | None = None) -> str:
    """How outputs and errors name a clinical file: its path when identifiers are asked for, else its pseudonym."""
    if include_identifiers:
        return str(path)
    return f"clinical file {record_id or pseudonym(str(Path(path).resolve()))}"


def read_clinical(
    path: str | Path,
    wanted_leads: tuple[str, ...] = LEAD_NAMES,
    include_identifiers: bool = False,
    dataset: str = "clinical",
    record_id: str | None = None,
) -> Record:
    """Read one clinical ECG file (any of `CLINICAL_FORMATS`, told from its content) into a `Record`.

    Raises:
        ClinicalUnavailable: the ``clinical`` extra is not installed.
        RecordError: not one of the formats, too large, damaged or hostile (named, with the file's pseudonym).
    """
    path = Path(path)
    if record_id is None:
        record_id = path.stem if include_identifiers else pseudonym(str(path.resolve()))
    where = display_name(path, include_identifiers, record_id)
    try:
        regular_file(path)
    except RecordError as error:
        raise RecordError(where, error.reason) from None
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise RecordTooLarge(
            where, f"{size / 2**20:.0f} MiB is more than a clinical ECG file may be ({MAX_FILE_BYTES // 2**20} MiB)"
        )
    with path.open("rb") as handle:
        header = handle.read(4096)
    found = _parser(path, header, where)
    if found is None:
        raise RecordError(where, "not a DICOM waveform, HL7 aECG, Philips Sierra XML, GE MUSE XML or SCP-ECG file")
    format_id, label, parser = found
    source = path
    try:
        # declared sizes, compressed streams and scales checked before the library decodes (a deflated DICOM
        # dataset is parsed from a bounded, inflated scratch copy)
        with bounded_source(path, format_id, where) as source:
            if format_id == "dicom":
                _check_sop_class(source, where)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                parsed = parser().parse(source)
    except RecordError:
        raise
    except MemoryError:
        raise RecordTooLarge(where, f"{label}: decoding it needs more memory than this machine has") from None
    except Exception as error:  # the library's named errors and anything a damaged file trips
        message = (str(error) or type(error).__name__).replace(str(source), str(path))
        raise RecordError(where, _labelled(label, _scrubbed(message, path, where))) from None
    for warning in caught:
        logger.warning("%s: %s", where, _scrubbed(str(warning.message), path, where))
    return _record(parsed, format_id, label, where, record_id, dataset, wanted_leads, include_identifiers, path)


ECG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG Waveform Storage",
    "1.2.840.10008.5.1.4.1.1.9.1.3": "Ambulatory ECG Waveform Storage",
}
"""The DICOM storage classes that hold an ECG; a file of any other class (an image, a report) is refused."""
HEMODYNAMIC_WAVEFORM = "1.2.840.10008.5.1.4.1.1.9.2.1"
"""Hemodynamic Waveform Storage: read as an ECG only when one multiplex group holds the 12 standard leads."""


def _check_sop_class(path: Path, where: str) -> None:
    """Refuse a DICOM file that is not an ECG waveform, from its SOP Class UID alone (nothing else is read)."""
    import pydicom

    try:
        header = pydicom.dcmread(path, specific_tags=["SOPClassUID"], stop_before_pixels=True)
        sop = str(header.get("SOPClassUID", "") or header.file_meta.get("MediaStorageSOPClassUID", ""))
    except Exception as error:
        raise RecordError(where, f"DICOM waveform: unreadable header ({type(error).__name__})") from None
    if sop in ECG_SOP_CLASSES or (sop == HEMODYNAMIC_WAVEFORM and _holds_twelve_leads(path)):
        return
    name = getattr(pydicom.uid.UID(sop), "name", "") if sop else ""
    why = " without the 12 leads" if sop == HEMODYNAMIC_WAVEFORM else ""
    raise RecordError(where, f"a DICOM file of class {sop or 'unknown'} ({name or 'no ECG'}){why}, not an ECG waveform")


def _holds_twelve_leads(path: Path) -> bool:
    """Whether one multiplex group of a DICOM waveform has a channel for each of the 12 standard leads, named by
    its channel source (``Lead I (Einthoven)``, ``Lead aVR``) or its label: some systems store a resting ECG as
    Hemodynamic Waveform Storage."""
    import pydicom

    try:
        groups = pydicom.dcmread(path, specific_tags=["WaveformSequence"]).get("WaveformSequence") or []
        for group in groups:
            names = {_channel_lead(channel) for channel in group.get("ChannelDefinitionSequence") or []}
            if set(LEAD_NAMES) <= names:
                return True
    except Exception:  # an unreadable waveform header: not shown to be an ECG
        return False
    return False


def _channel_lead(channel: Any) -> str | None:
    """A DICOM channel's canonical lead name (`ecglens.leads`), or None: ``Lead I (Einthoven)`` -> ``I``."""
    sources = channel.get("ChannelSourceSequence") or []
    text = str(sources[0].get("CodeMeaning", "") if sources else "") or str(channel.get("ChannelLabel", "") or "")
    text = re.sub(r"\(.*?\)", "", text).strip()
    return normalize_lead_name(re.sub(r"^lead\s+", "", text, flags=re.IGNORECASE))


def _labelled(label: str, message: str) -> str:
    """A library's message after the format's name, unless it begins with it already ("SCP-ECG record declares
    ...", never "SCP-ECG: SCP-ECG record declares ...")."""
    return message if message.lower().startswith(label.lower()) else f"{label}: {message}"


SHORT_STEM = 6
"""A file name (or stem) shorter than this is replaced in a library's message only as a whole token: ``M.xml``'s
stem ``M`` must not turn "Malformed" into "clinical file ecg-...alformed"."""


def _scrubbed(message: str, path: Path, where: str) -> str:
    """A library's message with the file's path and name replaced, in one pass, by how outputs name it
    (``where``): its paths wherever they occur, its name and stem where they stand as a token of their own
    (a long name anywhere: it is the file's, however it is quoted). When ``where`` is the path itself
    (identifiers asked for), the message is left as the library wrote it: replacing the name by the path it
    is already a part of would repeat the folder and the suffix."""
    if message and where != str(path):
        names = {str(path), str(path.resolve()), str(path.absolute()), path.name, path.stem} - {""}
        alternatives = []
        for text in sorted(names, key=len, reverse=True):
            token = re.escape(text)
            if "/" not in text and len(text) < SHORT_STEM:
                token = rf"(?<![^\W_]){token}(?![^\W_])"
            alternatives.append(token)
        message = re.sub("|".join(alternatives), lambda _: where, message)
    return message.splitlines()[0][:300] if message else message


def _record(
    parsed: Any,
    format_id: str,
    label: str,
    where: str,
    record_id: str,
    dataset: str,
    wanted_leads: tuple[str, ...],
    include_identifiers: bool,
    path: Path | None = None,
) -> Record:
    signal, names, rate = _signal(parsed.leads, label, where)
    signal = _cut_calibration_tail(signal, rate, where)  # before deriving: a derived lead holds no pulse
    signal, names, derived = _derive_limb_leads(signal, names)
    check_length(where, signal.shape[1], rate)
    signal = finish_signal(where, signal, names, wanted_leads)
    personal = identifiers_of(parsed)
    statements, left_out = statements_of(parsed), 0
    if not include_identifiers:
        staff = staff_fields(path, format_id) if path is not None else []
        days = [day for day in map(parse_day, (parsed.patient.birth_date, parsed.recording.date)) if day]
        statements, left_out = scrubber([*personal, *staff, *_more_names(parsed)], days).keep(statements)
    if left_out:  # counted, never silently gone
        logger.info("%s: %d of the file's statements left out as possibly identifying", where, left_out)
    patient = parsed.patient
    patient_id = str(patient.patient_id or "").strip()
    age = patient.age if isinstance(patient.age, int | float) and patient.age >= 0 else None
    return Record(
        record_id=record_id,
        dataset=dataset,
        signal=signal,
        sampling_rate_hz=rate,
        lead_names=tuple(wanted_leads),
        patient_id=(patient_id if include_identifiers else pseudonym(patient_id, "pt")) if patient_id else None,
        age=None if age is None else float(age if include_identifiers else min(age, 90)),
        sex={"M": "male", "F": "female"}.get(str(patient.sex or "").strip().upper()[:1]),
        source_path=where,
        statements=statements,
        derived_leads=tuple(name for name in derived if name in wanted_leads),
        file_format=format_id,
        identifiers=tuple(personal) if include_identifiers else (),
        file_measurements=measurements_of_file(parsed),
        statements_left_out=left_out,
        dicom_header=dicom_header(path, include_identifiers) if format_id == "dicom" and path is not None else (),
    )


DICOM_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
DICOM_IDENTITY = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
)
"""The patient and study attributes a DICOM object needs to be filed with its patient's study in a PACS, copied
from the source file only with identifiers."""


def dicom_header(path: Path, include_identifiers: bool) -> tuple[tuple[str, str], ...]:
    """A DICOM file's UIDs and SOP class (header only), as `Record.dicom_header` keeps them.

    Without identifiers each UID is replaced by one made from its keyed hash (`ecglens.util.pseudonym`; PS3.15's
    basic profile replaces UIDs too): the same source study always gets the same UID, which no one without the
    key can trace back to the source. Empty when the header cannot be read again."""
    import pydicom
    from pydicom.uid import generate_uid

    identity = DICOM_IDENTITY if include_identifiers else ()
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[*DICOM_UIDS, "SOPClassUID", *identity])
    except Exception:  # read once by the library already; a second look that fails costs the references only
        return ()
    out = [("SOPClassUID", str(header.get("SOPClassUID", "") or ""))]
    for keyword in DICOM_UIDS:
        uid = str(header.get(keyword, "") or "")
        if uid and not include_identifiers:
            uid = generate_uid(entropy_srcs=[pseudonym(uid, "uid")])
        out.append((keyword, uid))
    out += [(keyword, str(header.get(keyword, "") or "")) for keyword in identity]
    return tuple((keyword, value) for keyword, value in out if value)


FILE_MEASUREMENTS = {
    "heart_rate": "heart_rate_bpm",
    "pr_interval": "pr_ms",
    "qrs_duration": "qrs_ms",
    "qt_interval": "qt_ms",
    "qtc_bazett": "qtc_bazett_ms",
    "qtc_fridericia": "qtc_fridericia_ms",
    "p_axis": "p_axis_deg",
    "qrs_axis": "qrs_axis_deg",
    "t_axis": "t_axis_deg",
}
"""ecgdatakit's global measurements -> ecglens's names (`ecglens.waves.measure.Measurements`)."""


def measurements_of_file(parsed: Any) -> tuple[tuple[str, float], ...]:
    """The measurements the file carries (its cart's), under ecglens's names; a finite number or left out."""
    out = []
    for theirs, ours in FILE_MEASUREMENTS.items():
        value = getattr(parsed.measurements, theirs, None)
        if isinstance(value, int | float) and np.isfinite(value) and not isinstance(value, bool):
            out.append((ours, float(value)))
    return tuple(out)


def _signal(leads: list[Any], label: str, where: str) -> tuple[np.ndarray, list[str], float]:
    """The rhythm leads in mV (leads x samples, cut to the shortest), their names and their common rate."""
    if not leads:
        raise RecordError(where, f"{label}: the file holds no rhythm waveform")
    rates = sorted({float(lead.sampling_rate) for lead in leads})
    if len(rates) != 1:
        raise RecordError(where, f"{label}: leads at different rates ({', '.join(f'{r:g}' for r in rates)} Hz)")
    rate = rates[0]
    check_rate(where, rate)
    n = min(len(lead.samples) for lead in leads)
    check_values(where, n * len(leads))
    rows = []
    for lead in leads:
        try:
            physical = lead.to_physical().convert_units("mV")
        except Exception as error:  # uncalibrated counts, an unknown unit
            raise RecordError(where, f"{label}: lead {lead.label}: {error}") from None
        rows.append(np.asarray(physical.samples[:n], dtype=np.float64))
    if any(len(lead.samples) != n for lead in leads):
        logger.warning("%s: leads of different lengths, all cut to the shortest (%d samples)", where, n)
    names = [normalize_lead_name(str(lead.label)) or str(lead.label) for lead in leads]
    return np.stack(rows), names, rate


def _derive_limb_leads(signal: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    """III, aVR, aVL and aVF from I and II where the file lacks them (GE MUSE stores 8 leads)."""
    missing = [name for name in _DERIVED if name not in names]
    if not missing or "I" not in names or "II" not in names:
        return signal, names, ()
    lead_i, lead_ii = signal[names.index("I")], signal[names.index("II")]
    extra = np.stack([_DERIVED[name](lead_i, lead_ii) for name in missing])
    return np.concatenate([signal, extra]), [*names, *missing], tuple(missing)


def _cut_calibration_tail(signal: np.ndarray, rate: float, where: str) -> np.ndarray:
    """The signal without a trailing calibration block: the stretch at the end where every lead is exactly 0 or
    exactly the same pulse (Philips writes zeros and a 1-mV pulse after the 10-s ECG)."""
    flat = np.all(signal == signal[:1], axis=0)  # every lead holds the same value
    if flat.all() or not flat[-1]:
        return signal
    start = len(flat) - int(np.argmin(flat[::-1]))  # first sample of the trailing run
    tail = signal[0, start:]
    pulse = tail != 0
    if not pulse.any() or not np.allclose(tail[pulse], tail[pulse][0]) or pulse.sum() < 0.05 * rate:
        return signal  # zeros only, or not a pulse: a flat ending, left as it is
    logger.info("%s: calibration pulse at the end (from %.2f s) cut", where, start / rate)
    return signal[:, :start]


def identifiers_of(parsed: Any) -> list[tuple[str, str]]:
    """Every field of a parsed file that identifies a person or dates them: names, ids, birth and acquisition
    dates, free text, the staff and the place."""
    patient, recording = parsed.patient, parsed.recording
    fields: list[tuple[str, Any]] = [
        ("patient name", " ".join(p for p in (patient.first_name, patient.last_name) if p)),
        ("first name", patient.first_name),
        ("last name", patient.last_name),
        ("patient id", patient.patient_id),
        ("birth date", _day(patient.birth_date)),
        ("clinical history", patient.clinical_history),
        ("medications", "; ".join(patient.medications or ())),
        ("acquired", recording.date.isoformat() if recording.date else ""),
        ("technician", recording.technician),
        ("referring physician", recording.referring_physician),
        ("room", recording.room),
        ("location", recording.location),
        ("institution", recording.device.institution),
        ("department", recording.device.department),
        ("interpreter", parsed.interpretation.interpreter),
    ]
    return [(name, str(value).strip()) for name, value in fields if value and str(value).strip()]


def _day(value: Any) -> str:
    """A date or datetime as ``YYYY-MM-DD`` (empty when absent)."""
    if not value:
        return ""
    return (value.date() if hasattr(value, "date") and callable(value.date) else value).isoformat()


def _more_names(parsed: Any) -> list[tuple[str, str]]:
    """Names the library keeps in its raw metadata rather than its fields (a middle name, the DICOM performing
    physician, a MUSE ordering physician), as (kind, value)."""
    meta = parsed.raw_metadata if isinstance(getattr(parsed, "raw_metadata", None), dict) else {}
    out = []
    for key, value in meta.items():
        low = str(key).lower()
        named = "name" in low or "physician" in low or "md" in low
        if isinstance(value, str) and value.strip() and named and low not in ("sop_class_name", "document_type"):
            out.append((f"{low} name" if not low.endswith("id") else low, value))
    return out


def statements_of(parsed: Any) -> tuple[str, ...]:
    """The file's own interpretation, one statement per item (``text (reason)``), all of them: what may be shown
    is decided by `ecglens.io.deidentify.Scrubber`."""
    out = []
    for item in parsed.interpretation.statements:
        text, reason = (item, "") if isinstance(item, str) else (item[0], item[1] if len(item) > 1 else "")
        text, reason = plain_text(text), plain_text(reason)
        statement = f"{text} ({reason})" if reason else text
        if statement:
            out.append(statement)
    return tuple(out)


def plain_text(value: object) -> str:
    """A file's text as one plain line: control and format characters (a line feed that would forge a table row,
    an escape code that would clear a terminal, U+202E that reverses what follows, U+FEFF) dropped, white space
    one space."""
    kept = []
    for char in str(value):
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn"):
            kept.append(char)
    return " ".join("".join(kept).split())
