"""CPSC 2018 in its original layout: ``A*.mat`` MATLAB structs plus ``REFERENCE.csv``.

Each ``.mat`` holds a struct ``ECG`` with ``sex`` ('Male'/'Female'), ``age`` and ``data``
(12 x N, 500 Hz, mV, leads in the standard order). ``REFERENCE.csv`` lists up to three label
codes 1-9 per record (1 Normal, 2 AF, 3 I-AVB, 4 LBBB, 5 RBBB, 6 PAC, 7 PVC, 8 STD, 9 STE).
"""

from __future__ import annotations

import csv
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ecglens.io.limits import MAX_NAME_CHARS, regular_file
from ecglens.io.matfile import load_mat
from ecglens.io.record import ReadIssue, Record, RecordError, finish_signal, numeric_samples, parse_age, parse_sex
from ecglens.io.refs import RecordRef
from ecglens.leads import LEAD_NAMES

SAMPLING_RATE_HZ = 500.0
REFERENCE_FILE = "REFERENCE.csv"


def is_cpsc2018_root(root: str | os.PathLike) -> bool:
    """True when ``root`` holds ``REFERENCE.csv`` and ``.mat`` files."""
    root = Path(root)
    return (root / REFERENCE_FILE).is_file() and any(root.glob("*.mat"))


def read_reference(path: str | os.PathLike) -> dict[str, tuple[str, ...]]:
    """REFERENCE.csv as record name -> label codes ('1'..'9'), first label first.

    A row that cannot be parsed (a field over the CSV module's size limit, a stray quote) costs that row only; a
    record listed twice with different labels maps to `CONFLICT` with both rows' labels, for its scan to name.
    """
    labels: dict[str, tuple[str, ...]] = {}
    try:
        regular_file(path)
        # Undecodable bytes become U+FFFD: the rows they damage name no file here (or carry a label outside
        # 1-9) and so become those records' issues, instead of the whole table failing.
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            lines = iter(handle)
            header = _row(next(lines, ""))
            for line in lines:
                row = dict(zip(header, _row(line), strict=False))
                name = (row.get("Recording") or "").strip()[:MAX_NAME_CHARS]
                if not name:
                    continue
                codes = [row.get(k, "") or "" for k in ("First_label", "Second_label", "Third_label")]
                found = tuple(c.strip() for c in codes if c.strip())
                if name in labels and labels[name] != found:
                    first = labels[name] if labels[name][:1] != (CONFLICT,) else labels[name][1:]
                    found = (CONFLICT, *first, "/", *found)
                labels[name] = found
    except (FileNotFoundError, RecordError):
        raise RecordError(str(path), "REFERENCE.csv is missing or not a regular file") from None
    return labels


CONFLICT = "conflict"
"""Marks a record that REFERENCE.csv lists twice with different labels (`read_reference`)."""


def _row(line: str) -> list[str]:
    """One line of a CSV table; a line the csv module cannot parse is an empty row (that row's loss only)."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return []


def scan_cpsc2018(root: str | os.PathLike, dataset: str = "cpsc2018") -> tuple[list[RecordRef], list[ReadIssue]]:
    """List the ``.mat`` records of a CPSC 2018 root with their REFERENCE.csv labels.

    REFERENCE.csv lists all 6,877 training records; rows without a file here are not issues
    (subsets are normal), but a ``.mat`` file without a REFERENCE row is.
    """
    root = Path(root)
    reference = read_reference(root / REFERENCE_FILE)
    refs, issues = [], []
    for mat_path in sorted(root.glob("*.mat")):
        name = mat_path.stem
        if name not in reference:
            issues.append(ReadIssue(str(mat_path), "no row in REFERENCE.csv", dataset))
            continue
        if reference[name][:1] == (CONFLICT,):
            listed = " ".join(reference[name][1:])
            issues.append(
                ReadIssue(str(mat_path), f"REFERENCE.csv lists it twice with different labels ({listed})", dataset)
            )
            continue
        bad = [c for c in reference[name] if c not in {str(i) for i in range(1, 10)}]
        if bad:
            issues.append(ReadIssue(str(mat_path), f"REFERENCE.csv label(s) {', '.join(bad)} not in 1-9", dataset))
            continue
        refs.append(
            RecordRef(
                path=str(mat_path),
                dataset=dataset,
                record_id=name,
                reader="cpsc2018",
                raw_labels=tuple((code, None) for code in reference[name]),
                label_vocabulary="cpsc",
            )
        )
    return refs, issues


def _field(struct: np.ndarray, name: str) -> object:
    value = struct[name]
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.item()
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype != object:
        value = value.item()
    return value


def read_cpsc2018(ref: RecordRef, wanted_leads: tuple[str, ...] = LEAD_NAMES) -> Record:
    """Read one original CPSC 2018 ``.mat`` record."""
    path = ref.path
    content = load_mat(path)
    if "ECG" not in content:
        raise RecordError(path, "no 'ECG' struct (is this a Challenge .mat? give its .hea instead)")
    struct = content["ECG"][0, 0]
    for name in ("data", "age", "sex"):
        if name not in (struct.dtype.names or ()):
            raise RecordError(path, f"'ECG' struct has no '{name}' field")
    data = numeric_samples(path, _field(struct, "data"), "'ECG.data'")
    if data.ndim != 2 or data.shape[0] != 12:
        raise RecordError(path, f"'ECG.data' has shape {data.shape}, expected 12 x samples")
    age = _field(struct, "age")
    sex = _field(struct, "sex")
    signal = finish_signal(path, data, LEAD_NAMES, wanted_leads)
    record = ref.with_signal(signal, SAMPLING_RATE_HZ, wanted_leads)
    return replace(
        record,
        age=parse_age(path, age if isinstance(age, str | int | float) else None),
        sex=parse_sex(sex if isinstance(sex, str) else None),
    )
