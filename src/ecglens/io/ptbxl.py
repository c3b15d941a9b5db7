"""PTB-XL in its native layout (``ptbxl_database.csv``, ``scp_statements.csv``, ``records100/500``).

Facts kept next to the reader (PTB-XL 1.0.3, Wagner et al. 2020):
- ``scp_codes`` is a dict literal of SCP statement -> likelihood; rhythm statements (SR, AFIB, ...)
  always carry 0.0, so presence of the key is what counts.
- ``strat_fold`` 1-10 is the recommended patient-wise split (9 validation, 10 test).
- ``sex`` is 0 for male and 1 for female; ages over 89 are written as 300.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pandas as pd

from ecglens.io.record import ReadIssue, Record, RecordError, parse_age
from ecglens.io.refs import RecordRef
from ecglens.io.wfdb_files import read_wfdb
from ecglens.leads import LEAD_NAMES

NATIVE_RATES_HZ = (100, 500)
DATABASE_FILE = "ptbxl_database.csv"


def is_ptbxl_root(root: str | os.PathLike) -> bool:
    """True when ``root`` holds ``ptbxl_database.csv``."""
    return Path(root, DATABASE_FILE).is_file()


def _optional(value: object) -> object | None:
    return None if value is None or (isinstance(value, float) and value != value) else value


def scan_ptbxl(root: str | os.PathLike, sampling_rate_hz: int = 500, dataset: str = "ptbxl"
               ) -> tuple[list[RecordRef], list[ReadIssue]]:
    """List the records of a PTB-XL root at one of its native rates (100 or 500 Hz).

    Rows whose waveform files are missing are returned as issues, not raised.
    """
    if sampling_rate_hz not in NATIVE_RATES_HZ:
        raise ValueError(f"PTB-XL comes at 100 or 500 Hz, not {sampling_rate_hz}")
    root = Path(root)
    database_path = root / DATABASE_FILE
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
        base = root / str(row[column])
        where = f"{database_path}#ecg_id={ecg_id}"
        if not base.with_suffix(".hea").is_file() or not base.with_suffix(".dat").is_file():
            issues.append(ReadIssue(str(base) + ".hea", f"waveform file missing at {sampling_rate_hz} Hz", dataset))
            continue
        try:
            codes = ast.literal_eval(str(row["scp_codes"]))
            if not isinstance(codes, dict):
                raise ValueError
        except (ValueError, SyntaxError):
            issues.append(ReadIssue(where, f"scp_codes {row['scp_codes']!r} is not a dict", dataset))
            continue
        patient = _optional(row.get("patient_id"))
        sex = _optional(row.get("sex"))
        try:
            age = parse_age(where, _optional(row.get("age")))
        except RecordError as error:
            issues.append(ReadIssue(where, error.reason, dataset))
            continue
        refs.append(
            RecordRef(
                path=str(base) + ".hea",
                dataset=dataset,
                record_id=str(ecg_id),
                reader="ptbxl",
                raw_labels=tuple((str(k), float(v)) for k, v in codes.items()),
                label_vocabulary="scp",
                patient_id=None if patient is None else str(int(float(patient))),
                age=age,
                sex=None if sex is None else ("male" if int(float(sex)) == 0 else "female"),
                fold=int(row["strat_fold"]),
            )
        )
    return refs, issues


def read_ptbxl(ref: RecordRef, wanted_leads: tuple[str, ...] = LEAD_NAMES) -> Record:
    """Read one PTB-XL waveform; labels and demographics come from the database row."""
    record = read_wfdb(ref.path, dataset=ref.dataset, wanted_leads=wanted_leads)
    return ref.with_signal(record.signal, record.sampling_rate_hz, wanted_leads)
