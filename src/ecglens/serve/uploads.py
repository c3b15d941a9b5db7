"""Uploaded files to a `Record`, safely: fixed file names in a fresh temporary folder, removed afterwards.

The client's file names are never used as paths (only their extension picks the reader, and their stem
becomes the displayed record id); a WFDB header is rewritten to point at the names written here
(`ecglens.io.wfdb_files.retarget_header`). Nothing is unpickled (`.npy` is read with ``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath

from ecglens.io import Record, RecordError, read_record
from ecglens.io.clinical import ClinicalUnavailable, read_clinical
from ecglens.io.limits import MAX_VALUES, value_budget
from ecglens.io.record import RecordTooLarge
from ecglens.io.wfdb_files import ptbxl_ecg_id, retarget_header
from ecglens.leads import LEAD_NAMES
from ecglens.util.pseudonym import pseudonym

SIGNAL_SUFFIXES = (".dat", ".mat")
CLINICAL_SUFFIXES = (".xml", ".dcm", ".scp")
ALLOWED_SUFFIXES = (".hea", *SIGNAL_SUFFIXES, ".edf", ".csv", ".npy", *CLINICAL_SUFFIXES)


class RequestError(ValueError):
    """A request the server refuses (an unreadable upload, an unknown class, explanation or example, too many
    files); ``status`` is the HTTP status it deserves, ``kind`` names the problem."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the client's name (for display and its extension) and its bytes."""

    name: str
    data: bytes

    @property
    def suffix(self) -> str:
        """The lower-case extension of the client's name."""
        return PurePath(self.name.replace("\\", "/")).suffix.lower()

    @property
    def stem(self) -> str:
        """The client's name without folders or extension (a display string, never a path). A name holding a
        character no file system's path may hold on Windows (``<>"|?*``) is no path at all: its slashes are text
        (``<b>x</b>.hea`` is shown as ``<b>x</b>``, escaped, never cut to ``b>``)."""
        if any(char in self.name for char in '<>"|?*'):
            stem = self.name[: -len(self.suffix)] if self.suffix else self.name
        else:
            stem = PurePath(self.name.replace("\\", "/")).stem
        return stem[:120] or "record"


def _layout(uploads: Sequence[Upload]) -> tuple[Upload, Upload | None]:
    """The main file (a header, or a single-file record) and the signal file of a WFDB pair."""
    if not uploads:
        raise RequestError(422, "no_file", "no file uploaded: send the record's file(s) in the 'files' field")
    unknown = [u.name for u in uploads if u.suffix not in ALLOWED_SUFFIXES]
    if unknown:
        raise RequestError(
            415,
            "unknown_format",
            f"unsupported file type of {unknown[0]!r}; expected one of "
            f"{', '.join(ALLOWED_SUFFIXES)} (WFDB .hea with its .dat/.mat, CPSC .mat, EDF, CSV, NumPy, and the "
            "clinical DICOM, HL7 aECG, Philips XML, GE MUSE XML and SCP-ECG files)",
        )
    headers = [u for u in uploads if u.suffix == ".hea"]
    if len(headers) > 1:
        raise RequestError(422, "several_records", "one record per request: got several .hea files")
    if headers:
        signals = [u for u in uploads if u.suffix in SIGNAL_SUFFIXES]
        if len(signals) != 1 or len(uploads) != 2:
            raise RequestError(
                422,
                "missing_signal_file",
                "a WFDB header needs exactly one signal file (.dat or "
                f".mat) uploaded with it; got {len(uploads) - 1} other file(s)",
            )
        return headers[0], signals[0]
    if len(uploads) != 1:
        raise RequestError(
            422, "several_records", "one record per request: send one file, or a .hea with its signal file"
        )
    if uploads[0].suffix == ".dat":
        raise RequestError(422, "missing_header", "a .dat signal file needs its .hea header uploaded with it")
    return uploads[0], None


def read_upload(
    uploads: Sequence[Upload],
    lead_names: tuple[str, ...],
    sampling_rate_hz: float | None = None,
    lead_order: tuple[str, ...] | None = None,
    max_seconds: float = 600.0,
    max_values: int = MAX_VALUES,
) -> Record:
    """Read one record from its uploaded file(s), decoding at most ``max_values`` samples in all (checked from what
    the files declare, before decoding).

    Raises:
        RequestError: the files do not make one readable record (with the HTTP status to answer).
    """
    main, signal = _layout(uploads)
    if main.suffix in (".csv", ".npy") and not sampling_rate_hz:
        raise RequestError(
            422,
            "sampling_rate_required",
            "CSV and NumPy files store no sampling rate: give the 'sampling_rate' field (Hz)",
        )
    with tempfile.TemporaryDirectory(prefix="ecglens-upload-") as scratch:
        folder = Path(scratch)
        if signal is not None:
            text = main.data.decode("ascii", errors="replace")
            (folder / "record.hea").write_text(retarget_header(text, "record", f"record{signal.suffix}"))
            (folder / f"record{signal.suffix}").write_bytes(signal.data)
            path = folder / "record.hea"
        clinical = main.suffix in CLINICAL_SUFFIXES
        # a clinical file's name often holds its patient's: it is named by a pseudonym of its content instead
        name = pseudonym(hashlib.sha256(main.data).hexdigest()) if clinical else main.name
        if signal is None:
            # a clinical file is written under its pseudonym, so a library message naming the scratch file
            # reads as the pseudonym (under "record.xml", every word "record" in a message was replaced)
            path = folder / f"{name if clinical else 'record'}{main.suffix}"
            path.write_bytes(main.data)
        try:
            with value_budget(max_values):
                if clinical:  # named by its content's pseudonym in every line, the server's log included
                    record = read_clinical(path, lead_names, record_id=name, dataset="upload")
                else:
                    record = read_record(path, lead_names, sampling_rate_hz, lead_order or LEAD_NAMES)
        except RecordTooLarge as error:
            raise RequestError(413, "record_too_large", f"{name}: {error.reason}") from None
        except ClinicalUnavailable as error:
            raise RequestError(415, "clinical_formats_not_installed", error.reason) from None
        except RecordError as error:
            raise RequestError(422, "unreadable_record", f"{name}: {error.reason}") from None
    if record.duration_s > max_seconds:
        raise RequestError(
            422,
            "record_too_long",
            f"{name}: {record.duration_s:.0f} s is longer than this server accepts ({max_seconds:g} s)",
        )
    record_id = name if clinical else ptbxl_ecg_id(main.stem) or main.stem  # PTB-XL's 00338_hr is 338, as in the CLI
    return replace(record, record_id=record_id, source_path=name)
