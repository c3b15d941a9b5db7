"""Data sources: ``FORMAT:ROOT`` specs, format detection, scanning and batch reading.

A source spec is ``[NAME=]FORMAT:ROOT`` (``ptbxl:/data/ptb-xl``, ``cps=cpsc2018:/data/cpsc``) or a
bare ``ROOT`` whose format is detected. Formats:

- ``ptbxl`` (native layout; its 100 or 500 Hz files, the lowest rate that covers the target rate),
  ``ptbxl100`` and ``ptbxl500`` to force one;
- ``cpsc2018`` (original ``.mat`` + ``REFERENCE.csv``);
- ``challenge`` (every ``.hea`` below ROOT, PhysioNet/CinC Challenge style);
- ``wfdb`` (a single record file, any rate);
- ``clinical`` (every DICOM, HL7 aECG, Philips XML, GE MUSE XML and SCP-ECG file below ROOT: a folder of a
  cart's or an archive's exports; `ecglens.io.clinical`, record ids pseudonymous).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ecglens.io.cpsc2018 import REFERENCE_FILE, is_cpsc2018_root, read_cpsc2018, scan_cpsc2018
from ecglens.io.limits import file_name, regular_file
from ecglens.io.ptbxl import DATABASE_FILE, NATIVE_RATES_HZ, is_ptbxl_root, read_ptbxl, scan_ptbxl
from ecglens.io.record import ReadIssue, Record, RecordError, issue_from
from ecglens.io.refs import RecordRef
from ecglens.io.wfdb_files import read_wfdb
from ecglens.leads import LEAD_NAMES
from ecglens.util.parallel import ordered_map

FORMATS = ("ptbxl", "ptbxl100", "ptbxl500", "cpsc2018", "challenge", "wfdb", "clinical")


@dataclass(frozen=True)
class Source:
    """A dataset root and how to read it."""

    format: str
    root: str
    name: str
    allow_outside_root: bool = False
    """Read signal files that a metadata table places outside ``root`` (refused by default)."""

    def __str__(self) -> str:
        return f"{self.name}={self.format}:{self.root}"


@dataclass(frozen=True)
class ScanResult:
    """Records found in sources, and the ones left out with their reasons."""

    refs: tuple[RecordRef, ...]
    issues: tuple[ReadIssue, ...] = field(default=())


def detect_format(root: str | os.PathLike) -> str:
    """Guess a source's format from the files in it.

    Raises:
        ValueError: when nothing recognisable is there.
    """
    root = Path(root)
    if root.is_file():
        if root.suffix == ".hea":
            return "wfdb"
        raise ValueError(f"{root}: cannot tell the format of a single {root.suffix or 'extensionless'} file")
    if not root.is_dir():
        raise ValueError(f"{root}: no such file or directory")
    if is_ptbxl_root(root):
        return "ptbxl"
    if is_cpsc2018_root(root):
        return "cpsc2018"
    if next(root.rglob("*.hea"), None) is not None:
        return "challenge"
    if next(clinical_files(root), None) is not None:
        return "clinical"
    raise ValueError(
        f"{root}: no ptbxl_database.csv, REFERENCE.csv + .mat files, .hea headers or clinical ECG files "
        "(.xml, .dcm, .scp) found; name the format explicitly as FORMAT:PATH"
    )


def clinical_files(root: Path) -> Iterator[Path]:
    """The files below ``root`` that may be clinical ECG files (by name, or DICOM's magic), in sorted order."""
    from ecglens.io.clinical import is_clinical

    return (path for path in sorted(root.rglob("*")) if path.is_file() and is_clinical(path))


def parse_source(spec: str, force_name: str | None = None) -> Source:
    """Parse ``[NAME=]FORMAT:ROOT`` or a bare root (format detected).

    ``force_name`` names the dataset whatever the spec says (several roots of one dataset join as one).
    """
    name = None
    if "=" in spec.split(":", 1)[0]:
        name, spec = spec.split("=", 1)
    format_name, sep, root = spec.partition(":")
    if sep and format_name not in FORMATS and format_name.isidentifier() and not os.path.exists(spec):
        raise ValueError(f"unknown source format {format_name!r}; FORMAT is one of {', '.join(FORMATS)}")
    if not sep or format_name not in FORMATS:
        format_name, root = detect_format(spec), spec
    root = os.path.expanduser(root)
    if not os.path.exists(root):
        raise ValueError(f"{root}: no such file or directory")
    if force_name is not None:
        name = force_name
    elif name is None:
        if format_name.startswith("ptbxl"):
            name = "ptbxl"
        elif format_name == "cpsc2018":
            name = "cpsc2018"
        else:
            name = Path(root).stem if format_name == "wfdb" else Path(root).resolve().name
    return Source(format=format_name, root=root, name=name)


def ptbxl_rate_for(target_rate_hz: float | None) -> int:
    """The PTB-XL native rate to read for a target rate: the lowest one not below it."""
    if target_rate_hz is None:
        return max(NATIVE_RATES_HZ)
    return next((rate for rate in NATIVE_RATES_HZ if rate >= target_rate_hz), max(NATIVE_RATES_HZ))


def scan_source(source: Source, target_rate_hz: float | None = None) -> ScanResult:
    """List a source's records (cheap: reads index tables and checks files exist)."""
    if source.format.startswith("ptbxl"):
        rate = int(source.format[5:]) if source.format != "ptbxl" else ptbxl_rate_for(target_rate_hz)
        refs, issues = scan_ptbxl(source.root, rate, dataset=source.name, allow_outside_root=source.allow_outside_root)
    elif source.format == "cpsc2018":
        refs, issues = scan_cpsc2018(source.root, dataset=source.name)
    elif source.format == "challenge":
        refs, issues = [], []
        for header in sorted(Path(source.root).rglob("*.hea")):
            try:  # a name that is not UTF-8 is that record's issue: it could be written nowhere
                refs.append(RecordRef(file_name(str(header), str(header)), source.name, header.stem, "wfdb"))
            except RecordError as error:
                issues.append(ReadIssue(error.path, error.reason, source.name))
    elif source.format == "clinical":
        refs, issues = _scan_clinical(source)
    elif source.format == "wfdb":
        path = source.root if source.root.endswith(".hea") else source.root + ".hea"
        refs, issues = [RecordRef(path, source.name, Path(path).stem, "wfdb")], []
    else:
        raise ValueError(f"unknown format {source.format!r}; expected one of {', '.join(FORMATS)}")
    return ScanResult(tuple(refs), tuple(issues))


def _scan_clinical(source: Source) -> tuple[list[RecordRef], list[ReadIssue]]:
    """A folder of clinical exports: one reference per file, its id a pseudonym of its path (no file name, which
    often holds the patient's, reaches an output)."""
    from ecglens.io.clinical import display_name
    from ecglens.util.pseudonym import pseudonym

    refs, issues = [], []
    for path in clinical_files(Path(source.root)):
        record_id = pseudonym(str(path.resolve()))
        try:
            refs.append(RecordRef(file_name(str(path), str(path)), source.name, record_id, "clinical"))
        except RecordError as error:
            issues.append(ReadIssue(display_name(path, record_id=record_id), error.reason, source.name))
    return refs, issues


_CHALLENGE_IDS = re.compile(r"^(HR|A)(\d+)$")
"""Challenge 2020/2021 file names that are recordings of a database ecglens also reads natively: ``HR`` + PTB-XL's
ecg_id (its 500 Hz files), ``A`` + the CPSC 2018 record number (the same names as the original release)."""


def recording_key(ref: RecordRef) -> str | None:
    """What identifies a recording across formats: PTB-XL's ecg_id or the CPSC 2018 record name; None for
    records that exist in one format only (Challenge sources other than PTB-XL and CPSC, single files)."""
    return recording_key_for(ref.reader, ref.record_id, ref.path)


def recording_key_for(reader: str, record_id: str, path: str) -> str | None:
    """`recording_key` from a record's reader (``ptbxl``, ``cpsc2018``, ``wfdb``), id and file path."""
    if reader == "ptbxl":
        return f"ptbxl/{int(record_id)}"
    if reader == "cpsc2018":
        return f"cpsc2018/{record_id}"
    match = _CHALLENGE_IDS.match(Path(path).stem) if reader == "wfdb" else None
    if match is None:
        return None
    return f"ptbxl/{int(match.group(2))}" if match.group(1) == "HR" else f"cpsc2018/A{int(match.group(2)):04d}"


def scan_sources(sources: Iterable[Source], target_rate_hz: float | None = None) -> ScanResult:
    """Scan several sources; record ids must be unique within each dataset name.

    A recording that two sources hold in different formats (a PTB-XL record native and as the Challenge's
    ``HR`` file, a CPSC 2018 record original and in the Challenge's form) is kept once, from the native
    source (PTB-XL's or CPSC 2018's own files), else the first source that has it; the other copies are
    listed as issues.
    """
    refs: list[RecordRef] = []
    issues: list[ReadIssue] = []
    for source in sources:
        result = scan_source(source, target_rate_hz)
        refs.extend(result.refs)
        issues.extend(result.issues)
    seen: set[tuple[str, str]] = set()
    recordings: dict[str, RecordRef] = {}
    unique: list[RecordRef] = []
    for ref in refs:
        key = (ref.dataset, ref.record_id)
        if key in seen:
            issues.append(ReadIssue(ref.path, f"duplicate record id {ref.record_id!r}", ref.dataset))
            continue
        recording = recording_key(ref)
        if recording is not None and recording in recordings:
            first = recordings[recording]
            if ref.reader != "wfdb" and first.reader == "wfdb":  # the native copy replaces the Challenge's
                unique[unique.index(first)] = ref
                recordings[recording] = ref
                seen.add(key)
                ref, first = first, ref
            issues.append(
                ReadIssue(
                    ref.path,
                    f"the same recording as {first.dataset} record {first.record_id} "
                    f"({recording}), kept from that source",
                    ref.dataset,
                )
            )
            continue
        seen.add(key)
        if recording is not None:
            recordings[recording] = ref
        unique.append(ref)
    return ScanResult(tuple(unique), tuple(issues))


_READERS: dict[str, Callable[[RecordRef, tuple[str, ...]], Record]] = {
    "ptbxl": read_ptbxl,
    "cpsc2018": read_cpsc2018,
    "wfdb": lambda ref, leads: read_wfdb(ref.path, dataset=ref.dataset, wanted_leads=leads),
    "clinical": lambda ref, leads: _read_clinical_ref(ref, leads),
}


def _read_clinical_ref(ref: RecordRef, wanted_leads: tuple[str, ...]) -> Record:
    from ecglens.io.clinical import read_clinical

    return read_clinical(ref.path, wanted_leads, dataset=ref.dataset, record_id=ref.record_id)


def read_ref(ref: RecordRef, wanted_leads: tuple[str, ...] = LEAD_NAMES) -> Record:
    """Read the record a `RecordRef` points at.

    Raises:
        RecordError: naming the file and what is wrong with it.
    """
    try:
        return _READERS[ref.reader](ref, wanted_leads)
    except RecordError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise RecordError(ref.path, f"{type(error).__name__}: {error}") from None


RECORD_SUFFIXES = (".hea", ".mat", ".csv", ".npy", ".edf", ".xml", ".dcm", ".scp")


def unnamed_dicom(path: Path) -> bool:
    """Whether a file without a record's suffix is DICOM by its magic: PACS exports name files ``IM0001`` or by
    their UID (``1.2.840.113619.2.55.3``), so a folder scan sniffs names without a suffix or with a numeric one.
    DICOMDIR, a medium's index, is no record."""
    if path.name.upper() == "DICOMDIR" or not (path.suffix == "" or path.suffix[1:].isdigit()):
        return False
    from ecglens.io.clinical import is_clinical

    return is_clinical(path)


DATASET_TABLES = frozenset({REFERENCE_FILE.lower(), DATABASE_FILE, "scp_statements.csv", "ludb.csv"})
"""Lower-case names of the datasets' own tables (CPSC 2018's labels, PTB-XL's database and statements, LUDB's
table): a folder scan passes them over as the tables they are, never as unreadable records."""


def is_dataset_table(path: str | os.PathLike) -> bool:
    """Whether a file found in a folder is one of the datasets' tables (`DATASET_TABLES`), not a record."""
    return Path(path).name.lower() in DATASET_TABLES


def read_record(
    path: str | os.PathLike,
    wanted_leads: tuple[str, ...] = LEAD_NAMES,
    sampling_rate_hz: float | None = None,
    lead_order: tuple[str, ...] = LEAD_NAMES,
    include_identifiers: bool = False,
) -> Record:
    """Read one record file of any supported kind, its leads in the order ``wanted_leads``.

    WFDB ``.hea`` (any rate, Challenge comments), Challenge ``.mat`` (read through its ``.hea``), CPSC 2018
    ``.mat`` (labels from a REFERENCE.csv beside it), EDF, CSV / NumPy files, which need ``sampling_rate_hz``
    and, without a header row, ``lead_order`` (the file's column or row order), and the clinical formats
    (DICOM, HL7 aECG, Philips XML, GE MUSE XML, SCP-ECG: `ecglens.io.clinical`, whose personal data stays
    out unless ``include_identifiers``).
    """
    from ecglens.io.arrays import read_csv_record, read_edf_record, read_npy_record
    from ecglens.io.clinical import is_clinical, read_clinical

    path = Path(path)
    regular_file(path)
    suffix = path.suffix.lower()
    if is_clinical(path) and not (suffix == ".mat" or path.with_suffix(".hea").is_file()):
        return read_clinical(path, wanted_leads, include_identifiers)
    if suffix == ".csv":
        return read_csv_record(path, sampling_rate_hz, lead_order, wanted_leads)
    if suffix == ".npy":
        return read_npy_record(path, sampling_rate_hz, lead_order, wanted_leads)
    if suffix in (".edf", ".bdf"):
        return read_edf_record(path, wanted_leads)
    if suffix == ".dat" and not path.with_suffix(".hea").is_file():
        raise RecordError(str(path), "a WFDB signal file needs its header: no .hea beside it")
    if suffix not in RECORD_SUFFIXES and not path.with_suffix(".hea").is_file():
        expected = ", ".join(RECORD_SUFFIXES)
        raise RecordError(str(path), f"unsupported file type {suffix or '(none)'}; expected {expected}")
    if path.suffix.lower() in (".mat", ".dat") and path.with_suffix(".hea").is_file():
        path = path.with_suffix(".hea")  # a WFDB record's signal file: read it through its header

    if path.suffix == ".mat":
        labels: tuple[tuple[str, float | None], ...] = ()
        reference = path.parent / "REFERENCE.csv"
        if reference.is_file():
            from ecglens.io.cpsc2018 import CONFLICT, read_reference

            codes = read_reference(reference).get(path.stem, ())
            if codes[:1] == (CONFLICT,):
                raise RecordError(
                    str(path), f"{reference.name} lists it twice with different labels ({' '.join(codes[1:])})"
                )
            labels = tuple((code, None) for code in codes)
        ref = RecordRef(str(path), "cpsc2018", path.stem, "cpsc2018", labels, "cpsc" if labels else "none")
        return read_ref(ref, wanted_leads)
    return read_wfdb(path, dataset="wfdb", wanted_leads=wanted_leads)


def _read_or_issue(args: tuple[RecordRef, tuple[str, ...]]) -> Record | ReadIssue:
    ref, leads = args
    try:
        return read_ref(ref, leads)
    except Exception as error:  # one bad file is that record's issue, whatever raised
        return issue_from(error, ref.path, ref.dataset)


def read_many(
    refs: Iterable[RecordRef],
    workers: int = 1,
    strict: bool = False,
    issues: list[ReadIssue] | None = None,
    wanted_leads: tuple[str, ...] = LEAD_NAMES,
    chunksize: int = 8,
) -> Iterator[Record]:
    """Read records in order, in parallel when ``workers > 1``; bad ones go to ``issues``.

    Args:
        refs: records to read.
        workers: worker processes (1 reads in this process).
        strict: raise the first bad record's `RecordError` instead of listing it.
        issues: list that receives a `ReadIssue` for every record left out.
        wanted_leads: leads to read, in order.
        chunksize: records handed to a worker at a time.
    """
    results = ordered_map(_read_or_issue, ((ref, wanted_leads) for ref in refs), workers, chunksize)
    try:
        for result in results:
            if isinstance(result, ReadIssue):
                if strict:
                    raise RecordError(result.path, result.reason)
                if issues is not None:
                    issues.append(result)
                continue
            yield result
    finally:
        results.close()
