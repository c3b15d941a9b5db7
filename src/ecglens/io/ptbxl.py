"""PTB-XL in its native layout (``ptbxl_database.csv``, ``scp_statements.csv``, ``records100/500``).

Facts kept next to the reader (PTB-XL 1.0.3, Wagner et al. 2020):
- ``scp_codes`` is a dict literal of SCP statement -> likelihood; rhythm statements (SR, AFIB, ...) nearly
  always carry 0.0 (in the shared sample, 1,205 of 1,205 SR; 12 of about 1,440 rhythm statements carry another
  value: a few AFIB, AFLT, PACE, PSVT and STACH), so for them presence of the key is what counts.
- ``strat_fold`` 1-10 is the recommended patient-wise split (9 validation, 10 test).
- ``sex`` is 0 for male and 1 for female; ages over 89 are written as 300.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pandas as pd

from ecglens.io.limits import file_name, inside, integer, number, regular_file
from ecglens.io.record import ReadIssue, Record, RecordError, parse_age
from ecglens.io.refs import RecordRef
from ecglens.io.wfdb_files import read_wfdb
from ecglens.leads import LEAD_NAMES

NATIVE_RATES_HZ = (100, 500)
DATABASE_FILE = "ptbxl_database.csv"


def is_ptbxl_root(root: str | os.PathLike) -> bool:
    """True when ``root`` holds ``ptbxl_database.csv``."""
    return Path(root, DATABASE_FILE).is_file()


def _optional(value: object) -> str | float | None:
    """A table cell as text or a number; None when empty (NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, float | str) else str(value)


def scan_ptbxl(
    root: str | os.PathLike, sampling_rate_hz: int = 500, dataset: str = "ptbxl", allow_outside_root: bool = False
) -> tuple[list[RecordRef], list[ReadIssue]]:
    """List the records of a PTB-XL root at one of its native rates (100 or 500 Hz).

    Every row is checked on its own: a row whose waveform files are missing, whose file name points
    outside ``root`` (unless ``allow_outside_root``), or whose fields do not parse (``strat_fold``,
    ``patient_id``, ``sex``, ``age``, ``scp_codes``) is returned as that row's issue, never raised.
    """
    if sampling_rate_hz not in NATIVE_RATES_HZ:
        raise ValueError(f"PTB-XL comes at 100 or 500 Hz, not {sampling_rate_hz}")
    root = Path(root)
    database_path = root / DATABASE_FILE
    if not database_path.exists():
        raise RecordError(str(database_path), "ptbxl_database.csv is missing")
    regular_file(database_path)  # a FIFO in its place would block the read forever
    try:
        table = pd.read_csv(database_path, index_col="ecg_id")
    except FileNotFoundError:
        raise RecordError(str(database_path), "ptbxl_database.csv is missing") from None
    except (ValueError, pd.errors.ParserError) as error:
        raise RecordError(str(database_path), f"unreadable database table ({error})") from None
    column = "filename_lr" if sampling_rate_hz == 100 else "filename_hr"
    for needed in ("scp_codes", "strat_fold", column):
        if needed not in table.columns:
            raise RecordError(str(database_path), f"column {needed!r} is missing")
    refs, issues = [], []
    for ecg_id, row in table.iterrows():
        where = f"{database_path}#ecg_id={ecg_id}"
        try:
            refs.append(_row_ref(root, ecg_id, row, column, where, dataset, sampling_rate_hz, allow_outside_root))
        except RecordError as error:
            issues.append(ReadIssue(error.path, error.reason, dataset))
    return refs, issues


def _row_ref(
    root: Path,
    ecg_id: object,
    row: pd.Series,
    column: str,
    where: str,
    dataset: str,
    rate: int,
    allow_outside_root: bool,
) -> RecordRef:
    """One database row as a `RecordRef`, every field checked.

    Raises:
        RecordError: naming the row and the field.
    """
    record_id = str(integer(where, ecg_id, "ecg_id", low=0))
    base = root / file_name(where, row[column], column)
    if not allow_outside_root and not inside(base, root):
        raise RecordError(
            where, f"{column} {row[column]!r} points outside the dataset root (pass --allow-outside-root to read it)"
        )
    if not base.with_suffix(".hea").is_file() or not base.with_suffix(".dat").is_file():
        raise RecordError(str(base) + ".hea", f"waveform file missing at {rate} Hz")
    try:
        codes = ast.literal_eval(str(row["scp_codes"]))
        if not isinstance(codes, dict):
            raise ValueError
        labels = tuple((str(k), number(where, v, f"scp_codes likelihood of {k}")) for k, v in codes.items())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise RecordError(where, f"scp_codes {str(row['scp_codes'])[:80]!r} is not a dict of numbers") from None
    patient = _optional(row.get("patient_id"))
    sex = _optional(row.get("sex"))
    if sex is not None:  # PTB-XL: 0 male, 1 female
        sex = "male" if integer(where, sex, "sex", 0, 1) == 0 else "female"
    return RecordRef(
        path=str(base) + ".hea",
        dataset=dataset,
        record_id=record_id,
        reader="ptbxl",
        raw_labels=labels,
        label_vocabulary="scp",
        patient_id=None if patient is None else str(integer(where, patient, "patient_id", low=0)),
        age=parse_age(where, _optional(row.get("age"))),
        sex=sex,
        fold=integer(where, row["strat_fold"], "strat_fold", 1, 10),
    )


def read_ptbxl(ref: RecordRef, wanted_leads: tuple[str, ...] = LEAD_NAMES) -> Record:
    """Read one PTB-XL waveform; labels and demographics come from the database row."""
    record = read_wfdb(ref.path, dataset=ref.dataset, wanted_leads=wanted_leads)
    return ref.with_signal(record.signal, record.sampling_rate_hz, wanted_leads)
