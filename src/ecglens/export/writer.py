"""What a ``predict`` batch files for a hospital, written as the records stream by: per record its FHIR Bundle
(``OUT/fhir/<id>.json``) and its DICOM Encapsulated PDF (``OUT/dicom/<id>.dcm``) when asked for, and at the end of
the batch its summary (``OUT/summary.html``, ``OUT/summary.csv``; `ecglens.report.summary`), always."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ecglens.io.record import ReadIssue
from ecglens.predict import Predictor, Scored
from ecglens.report.paths import safe_name
from ecglens.report.summary import SummaryRow, write_summary
from ecglens.util.atomic import atomic_open

FHIR_FOLDER = "fhir"
DICOM_FOLDER = "dicom"


class HospitalWriter:
    """Writes each scored record's FHIR Bundle and DICOM object into ``folder`` (`write`, per record), keeps its
    summary row, and writes the summary at the end (`finish`). A record whose Bundle or object cannot be made is
    its named issue (`issues`); the batch goes on (a disk's error still stops it, as it stops every output)."""

    def __init__(
        self, predictor: Predictor, folder: Path, fhir: bool = False, dicom: bool = False, identifiers: bool = False
    ):
        from ecglens.export.fhir import ClassCodes, ModelIdentity

        _require(fhir, dicom)
        self.folder, self.fhir, self.dicom, self.identifiers = folder, fhir, dicom, identifiers
        self.model = ModelIdentity.of(predictor.bundle, predictor.meta)
        self.classes = ClassCodes.of(predictor.meta)
        self.rows: list[SummaryRow] = []
        self.issues: list[ReadIssue] = []
        self.written: set[Path] = set()
        """The folders written into: ``reports`` (the pages the writer was given), ``fhir``, ``dicom``."""

    def write(self, item: Scored, pdf: Path | None = None) -> None:
        """The record's Bundle and object (with ``pdf``, its one-page report, where one was written)."""
        prediction = item.prediction
        report = pdf.relative_to(self.folder).as_posix() if pdf is not None else ""
        self.written |= {pdf.parent} if pdf is not None else set()
        self.rows.append(SummaryRow.of(prediction, report, self.identifiers))
        try:
            content = pdf.read_bytes() if pdf is not None else None
            if self.fhir:
                self._fhir(item, content)
            if self.dicom and content is not None:
                self._dicom(item, content)
        except OSError:
            raise
        except Exception as error:  # one record's export costs that record's files, never the batch
            reason = f"not exported: {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
            self.issues.append(ReadIssue(prediction.source, reason))

    def finish(self, issues: Sequence[ReadIssue]) -> tuple[Path, ...]:
        """Write the summary (``issues``: the records left out, counted at its top); the summary's files and the
        folders written into (`written`)."""
        summary = write_summary(self.rows, [*issues, *self.issues], self.folder)
        return (*summary, *sorted(self.written, key=lambda folder: (folder.name != "reports", folder.name)))

    def _fhir(self, item: Scored, pdf: bytes | None) -> None:
        from ecglens.export.fhir import fhir_bundle

        bundle = fhir_bundle(item.prediction, self.model, self.classes, pdf, self.identifiers, _patient_key(item))
        path = self.folder / FHIR_FOLDER / f"{safe_name(item.prediction.record_id)}.json"
        with atomic_open(path) as handle:
            json.dump(bundle, handle, indent=1, allow_nan=False)
        self.written.add(path.parent)

    def _dicom(self, item: Scored, pdf: bytes) -> None:
        from ecglens.export.dicom import encapsulated_pdf, write_encapsulated_pdf

        source = dict(item.record.dicom_header) if item.record is not None else {}
        dataset = encapsulated_pdf(pdf, item.prediction, source, self.model.label, self.identifiers, _patient_key(item))
        path = self.folder / DICOM_FOLDER / f"{safe_name(item.prediction.record_id)}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_encapsulated_pdf(path, dataset)
        self.written.add(path.parent)


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
