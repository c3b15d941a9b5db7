"""What a ``predict`` batch files for a hospital, written as the records stream by: per record its FHIR Bundle
(``fhir/<id>.json``) and its DICOM Encapsulated PDF (``dicom/<id>.dcm``) when asked for, and its row of the batch's
summary, written at the end (``OUT/summary.html``, ``OUT/summary.csv``; `ecglens.report.summary`), always."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ecglens.io.record import ReadIssue
from ecglens.predict import Predictor, Scored
from ecglens.report.paths import safe_name
from ecglens.report.summary import SummaryRow, write_summary
from ecglens.util.atomic import atomic_open

FHIR_FOLDER = "fhir"
DICOM_FOLDER = "dicom"
RECORD_FOLDERS = ("reports", FHIR_FOLDER, DICOM_FOLDER)
"""The folders a record's own files go into (its one-page report, its Bundle, its object)."""


@dataclass(frozen=True)
class Filed:
    """What one record came to: its row of the summary, and its issue where its Bundle or object could not be made
    (a row of ``issues.csv``)."""

    row: SummaryRow
    issue: ReadIssue | None = None


class HospitalWriter:
    """Writes each scored record's FHIR Bundle and DICOM object (`write`, per record) and makes its summary row; the
    caller keeps the rows (a plain batch, in memory) or streams them (an archive, beside its rows) and has the
    summary written at the end (`finish`). A record whose Bundle or object cannot be made is its named issue; the
    batch goes on (a disk's error still stops it, as it stops every output)."""

    def __init__(
        self, predictor: Predictor, folder: Path, fhir: bool = False, dicom: bool = False, identifiers: bool = False
    ):
        from ecglens.export.fhir import ClassCodes, ModelIdentity

        _require(fhir, dicom)
        self.folder, self.fhir, self.dicom, self.identifiers = folder, fhir, dicom, identifiers
        self.model = ModelIdentity.of(predictor.bundle, predictor.meta)
        self.classes = ClassCodes.of(predictor.meta)
        self.written: set[str] = set()
        """The folders written into: ``reports`` (the pages the writer was given), ``fhir``, ``dicom``."""

    def write(self, item: Scored, pdf: Path | None = None, folder: Path | None = None) -> Filed:
        """The record's Bundle and object (with ``pdf``, its one-page report, where one was written), under
        ``folder`` (the batch's folder when None; an archive's is the record's pending folder, moved into the batch's
        when the record is committed): its summary row, linking the page by its path below ``folder``."""
        folder = folder or self.folder
        prediction = item.prediction
        report = pdf.relative_to(folder).as_posix() if pdf is not None else ""
        self.written |= {pdf.parent.name} if pdf is not None else set()
        row = SummaryRow.of(prediction, report, self.identifiers)
        try:
            content = pdf.read_bytes() if pdf is not None else None
            if self.fhir:
                self._fhir(item, content, folder)
            if self.dicom and content is not None:
                self._dicom(item, content, folder)
        except OSError:
            raise
        except Exception as error:  # one record's export costs that record's files, never the batch
            reason = f"not exported: {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
            return Filed(row, ReadIssue(prediction.source, reason))
        return Filed(row)

    def finish(self, rows: Iterable[SummaryRow], issues: int) -> tuple[Path, ...]:
        """Write the summary of ``rows`` (read once, as they come; ``issues``: how many files were left out, counted at
        its top); the summary's files and the folders written into (`written`)."""
        summary = write_summary(rows, issues, self.folder)
        return (*summary, *(self.folder / name for name in RECORD_FOLDERS if name in self.written))

    def _fhir(self, item: Scored, pdf: bytes | None, folder: Path) -> None:
        from ecglens.export.fhir import fhir_bundle

        bundle = fhir_bundle(item.prediction, self.model, self.classes, pdf, self.identifiers, _patient_key(item))
        path = folder / FHIR_FOLDER / f"{safe_name(item.prediction.record_id)}.json"
        with atomic_open(path) as handle:
            json.dump(bundle, handle, indent=1, allow_nan=False)
        self.written.add(FHIR_FOLDER)

    def _dicom(self, item: Scored, pdf: bytes, folder: Path) -> None:
        from ecglens.export.dicom import encapsulated_pdf, write_encapsulated_pdf

        source = dict(item.record.dicom_header) if item.record is not None else {}
        dataset = encapsulated_pdf(pdf, item.prediction, source, self.model.label, self.identifiers, _patient_key(item))
        path = folder / DICOM_FOLDER / f"{safe_name(item.prediction.record_id)}.dcm"
        write_encapsulated_pdf(path, dataset)
        self.written.add(DICOM_FOLDER)


def _require(fhir: bool, dicom: bool) -> None:
    """Refuse at the start of a batch, naming the extra, what would otherwise fail on every record.

    Raises:
        ValueError: fhir.resources (``--fhir``) or pydicom (``--dicom``) is not installed.
    """
    import importlib

    for asked, module, option in ((fhir, "fhir.resources", "--fhir"), (dicom, "pydicom", "--dicom")):
        try:
            if asked:
                importlib.import_module(module)
        except ImportError:
            raise ValueError(f"{option} needs {module}: pip install 'ecglens[hospital]'") from None


def _patient_key(item: Scored) -> str | None:
    """The record's pseudonymous patient id (a keyed hash of the file's, `ecglens.io.clinical`), or None."""
    record = item.record
    return record.patient_id if record is not None and record.patient_id else None
