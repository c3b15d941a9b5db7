"""Predictions as files: ``predictions.jsonl`` row by row while a batch runs, ``predictions.csv`` and ``issues.csv``.

No figures here: ``ecglens predict`` without explanations loads no plotting library.
"""

from __future__ import annotations

import csv
import errno
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ecglens.io.record import ReadIssue
from ecglens.predict import Prediction
from ecglens.util.atomic import atomic_open
from ecglens.util.progress import printable
from ecglens.waves.leads import LEAD_FIELDS

MEASUREMENT_COLUMNS = (
    "heart_rate_bpm",
    "rr_sd_ms",
    "pr_ms",
    "qrs_ms",
    "qt_ms",
    "qtc_bazett_ms",
    "qtc_fridericia_ms",
    "p_axis_deg",
    "qrs_axis_deg",
    "qrs_axis_category",
    "t_axis_deg",
)
"""The measurement columns of ``predictions.csv`` (present when ``predict --measurements`` ran, after the columns
``criteria_met`` and ``disagreements``), followed by each lead's (`TableHeader`: ``V1_st_j_mv``, ...)."""


class PredictionLog:
    """``predictions.jsonl`` written row by row while a batch runs.

    Rows go to a hidden partial file, each written whole or not at all (a short write on a full disk is cut back
    to the last complete row), which becomes ``predictions.jsonl`` when the batch ends. When the batch fails (a
    full disk, a fault), the rows written so far are kept as ``predictions.partial.jsonl`` and the error says how
    many and where (``moved_to``: the folder a caller moves that file into, as `ecglens.util.atomic.StagedFolder` does);
    nothing half-written ever takes the final name, and the partial file never ends in half a row.
    """

    PARTIAL_NAME = "predictions.partial.jsonl"

    def __init__(self, out: Path, moved_to: Path | None = None):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / "predictions.jsonl"
        self.partial = self.out / ".predictions.jsonl.partial"
        self.moved_to = Path(moved_to) if moved_to is not None else self.out
        self.handle = open(self.partial, "wb", buffering=0)  # noqa: SIM115 (closed by __exit__)
        self.count = 0
        self.size = 0

    def add(self, prediction: Prediction) -> None:
        """Append one whole row (unbuffered: it is on disk when this returns)."""
        row = (prediction.to_json() + "\n").encode()
        done = 0
        try:
            while done < len(row):
                written = self.handle.write(row[done:])
                if not written:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += written
        except OSError:
            self.handle.truncate(self.size)  # never half a row
            raise
        self.size += len(row)
        self.count += 1

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            self.handle.close()
        except OSError as closing:
            error = error or closing
        if error is None:
            os.replace(self.partial, self.path)
            return
        kept = self.out / self.PARTIAL_NAME
        os.replace(self.partial, kept)
        if isinstance(error, OSError):
            raise OSError(
                error.errno,
                f"{error.strerror or error}; stopped after {self.count} record(s), whose "
                f"rows are in {self.moved_to / self.PARTIAL_NAME}",
                error.filename,
            ) from error


def write_predictions(
    predictions: Sequence[Prediction], issues: Sequence[ReadIssue], class_names: Sequence[str], out: Path
) -> tuple[Path, ...]:
    """``predictions.jsonl`` (through `PredictionLog`), ``predictions.csv`` and ``issues.csv``."""
    with PredictionLog(out) as log:
        for prediction in predictions:
            log.add(prediction)
    return log.path, *write_prediction_tables(predictions, issues, class_names, out)


CLINICAL_COLUMNS = (
    ("file_format", "the clinical format the file was read as"),
    ("file_statements", "the file's own interpretation, ' | ' between statements"),
    ("file_statements_left_out", "how many of the file's statements were left out as possibly identifying"),
    ("derived_leads", "leads the reader computed from others"),
)
"""The columns a batch with clinical files adds to ``predictions.csv`` (and ``identifiers`` when asked for)."""


def _clinical_cell(p: Prediction, name: str) -> str:
    if name == "file_format":
        return p.file_format
    if name == "file_statements":
        return spreadsheet_safe(" | ".join(p.file_statements))
    if name == "file_statements_left_out":
        return str(p.file_statements_left_out)
    if name == "derived_leads":
        return ";".join(p.derived_leads)
    return "; ".join(f"{k}: {v}" for k, v in (p.identifiers or {}).items())


def _criteria_cells(p: Prediction) -> list[str]:
    """``criteria_met`` (``;`` between classes, empty when none; ``not evaluated`` without measurements) and
    ``disagreements`` (`` | `` between them)."""
    met = "not evaluated" if p.criteria is None else ";".join(p.criteria.met())
    return [met if p.status == "ok" else "", " | ".join(p.disagreements)]


PSEUDONYM_MAP = "pseudonyms.private.csv"
"""The private table from pseudonym to input path that ``predict --pseudonym-map`` writes into its output folder."""


def write_pseudonym_map(rows: Sequence[tuple[str, str]], out: Path) -> Path:
    """``pseudonyms.private.csv`` (``pseudonym,input_path``), readable and writable by its owner only (0600) from
    its creation on: it undoes the pseudonyms, so it is for the user's own tracing and is never to be shared."""
    with atomic_open(out / PSEUDONYM_MAP, newline="", permissions=0o600) as handle:
        writer = csv.writer(handle)
        writer.writerow(["pseudonym", "input_path"])
        writer.writerows((name, printable(path)) for name, path in rows)
    return out / PSEUDONYM_MAP


def spreadsheet_safe(text: str) -> str:
    """A file's text as a CSV cell a spreadsheet shows as text: a cell opening with ``=``, ``+``, ``-``, ``@``
    (a formula, in Excel and LibreOffice) gets a leading apostrophe (OWASP's advice on CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


BASE_COLUMNS = ("record_id", "source", "status")
"""The first columns of ``predictions.csv``; the class probabilities follow, then `AFTER_CLASSES`."""
AFTER_CLASSES = ("decisions", "decision_rule", "decided_by", "true_labels", "warnings")


def table_cells(p: Prediction, class_names: Sequence[str]) -> dict[str, str | float | int]:
    """Every cell a prediction can have in ``predictions.csv``, by column (its measurement, lead, criteria and
    clinical cells included; `table_header` says which columns a batch shows). Plain data: an archive keeps them
    per record and writes the table at its end (`write_table`)."""
    values = {} if p.measurements is None else p.measurements.to_dict()
    leads = values.get("leads") or {}
    cells: dict[str, str | float | int] = {
        "record_id": p.record_id,
        "source": p.source,
        "status": p.status,
        **{n: f"{p.probabilities[n]:.6f}" if n in p.probabilities else "" for n in class_names},
        "decisions": ";".join(p.decisions),
        "decision_rule": p.decision_rule,
        "decided_by": ";".join(f"{name}:{how}" for name, how in p.decided_by.items()),
        "true_labels": "" if p.true_labels is None else ";".join(p.true_labels),
        "warnings": " | ".join([*p.reasons, *p.warnings]),
        **dict(zip(("criteria_met", "disagreements"), _criteria_cells(p), strict=True)),
        **{name: values[name] for name in MEASUREMENT_COLUMNS if values.get(name) is not None},
        **{f"{lead}_{name}": v[name] for lead, v in leads.items() for name in LEAD_FIELDS if v.get(name) is not None},
        **{name: _clinical_cell(p, name) for name, _ in CLINICAL_COLUMNS},
        "identifiers": _clinical_cell(p, "identifiers"),
    }
    return cells


def table_traits(p: Prediction) -> dict:
    """What a prediction adds to ``predictions.csv``'s header (`table_header`): measurements, the leads it
    measured, a clinical format, identifiers."""
    leads = [lead.lead for lead in p.measurements.leads] if p.measurements is not None else []
    return {
        "measured": p.measurements is not None,
        "leads": leads,
        "clinical": bool(p.file_format),
        "identifiers": bool(p.identifiers),
    }


class TableHeader:
    """``predictions.csv``'s columns, grown by each prediction's `table_traits` in table order."""

    def __init__(self, class_names: Sequence[str]):
        self.class_names = list(class_names)
        self.measured = self.clinical = self.identifiers = False
        self.leads: list[str] = []

    def add(self, traits: dict) -> None:
        """Take one prediction's traits into account."""
        self.measured |= traits["measured"]
        self.clinical |= traits["clinical"]
        self.identifiers |= traits["identifiers"]
        self.leads += [lead for lead in traits["leads"] if lead not in self.leads]

    def columns(self) -> list[str]:
        """The header, in its order."""
        measured = list(MEASUREMENT_COLUMNS) if self.measured else []
        clinical = [name for name, _ in CLINICAL_COLUMNS] if self.clinical else []
        return [
            *BASE_COLUMNS,
            *self.class_names,
            *AFTER_CLASSES,
            *(["criteria_met", "disagreements"] if measured else []),
            *measured,
            *(f"{lead}_{name}" for lead in self.leads for name in LEAD_FIELDS),
            *clinical,
            *(["identifiers"] if self.identifiers else []),
        ]


def write_table(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> Path:
    """A CSV table written atomically from rows of cells by column (a missing cell is empty)."""
    with atomic_open(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([row.get(column, "") for column in columns] for row in rows)
    return path


def write_issues(issues: Iterable[ReadIssue], out: Path) -> Path:
    """``issues.csv``: each file left out, with its reason."""
    rows = ({"path": i.path, "reason": i.reason} for i in issues)
    return write_table(out / "issues.csv", ["path", "reason"], rows)


def write_prediction_tables(
    predictions: Sequence[Prediction], issues: Sequence[ReadIssue], class_names: Sequence[str], out: Path
) -> tuple[Path, ...]:
    """``predictions.csv`` and ``issues.csv`` (the JSON Lines come from `PredictionLog` as the batch runs)."""
    header = TableHeader(class_names)
    for p in predictions:
        header.add(table_traits(p))
    write_table(out / "predictions.csv", header.columns(), (table_cells(p, class_names) for p in predictions))
    return out / "predictions.csv", write_issues(issues, out)
