"""One record's one-page report as a DICOM Encapsulated PDF (SOP class 1.2.840.10008.5.1.4.1.1.104.1), made with
pydicom, for a PACS to file beside the ECG it reads.

Identity and study, by `ecglens.io.record.Record.dicom_header`:

- **with identifiers** and a DICOM source: the source's patient (name, id, issuer, birth date, sex) and study
  (Study Instance UID, date, time, accession number, study id, referring physician) copied as written, and the
  source waveform named in the Source Instance Sequence: a PACS files the report in the ECG's own study;
- **without identifiers**: no name, no date, no accession number; the Patient ID is the record's pseudonym and the
  study, series and instance UIDs of the source are replaced by UIDs made from their keyed hashes (the reader
  does it: a UID often holds the acquisition date and time, such as ``1.3.76.13.65829.2.20130125082826...``).
  Such a file is readable by any DICOM tool but a PACS cannot match it to its patient: it is for research, and
  says so only by what it lacks;
- a source that is not DICOM gives a new Study Instance UID (the same for a record on every run: made from the
  record id), and with identifiers the patient id, name and birth date the file carried.

The new series and instance UIDs are pydicom's (``generate_uid``), new on every run, as each run makes a new
object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ecglens.export.codes import ECG_PANEL
from ecglens.util.atomic import atomic_open

if TYPE_CHECKING:
    from pydicom import Dataset

    from ecglens.predict import Prediction

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
SERIES_NUMBER = 9901
"""The series number of ecglens's reports in a study (a high number, after the cart's own series)."""


def encapsulated_pdf(
    pdf: bytes,
    prediction: Prediction,
    source: Mapping[str, str],
    model_label: str,
    include_identifiers: bool = False,
    patient_key: str | None = None,
) -> Dataset:
    """The Encapsulated PDF dataset of one record's report, with its file meta.

    Args:
        pdf: the one-page report (`ecglens.report.pdf`).
        prediction: the record's result (its decisions make the document title).
        source: the source file's DICOM header as the reader kept it (`Record.dicom_header`), empty for another
            format.
        model_label: how the model is named (the manufacturer's model name).
        include_identifiers: copy the source's patient and study attributes (with a DICOM source) or the file's
            patient id, name and birth date (another format).
        patient_key: the pseudonymous patient id, or None: a keyed hash of the record's path (never its file name).
    """
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = generate_uid()
    _patient_and_study(ds, prediction, source, include_identifiers, patient_key)
    _series_and_equipment(ds, model_label)
    _document(ds, pdf, prediction, source, include_identifiers)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def write_encapsulated_pdf(path: str | os.PathLike, dataset: Dataset) -> Path:
    """``dataset`` as a DICOM Part 10 file (preamble, DICM, file meta) at ``path``, whole or not at all (an archive
    commits it with its record)."""
    with atomic_open(path, "wb") as handle:
        dataset.save_as(handle, enforce_file_format=True)
    return Path(path)


def _patient_and_study(
    ds: Dataset,
    prediction: Prediction,
    source: Mapping[str, str],
    include_identifiers: bool,
    patient_key: str | None,
) -> None:
    from pydicom.uid import generate_uid

    from ecglens.util.pseudonym import pseudonym

    known = (prediction.identifiers or {}) if include_identifiers else {}
    ds.PatientName = source.get("PatientName", "") if include_identifiers else ""
    keyed = patient_key or pseudonym(prediction.source or prediction.record_id, "record")  # never a file's name
    ds.PatientID = source.get("PatientID") or known.get("patient id") or keyed
    if include_identifiers and not source.get("PatientName") and known.get("last name"):
        ds.PatientName = "^".join(p for p in (known.get("last name", ""), known.get("first name", "")) if p)
    birth = source.get("PatientBirthDate") or known.get("birth date", "").replace("-", "")
    ds.PatientBirthDate = birth if include_identifiers else ""
    ds.PatientSex = source.get("PatientSex", "") if include_identifiers else ""
    if source.get("IssuerOfPatientID"):
        ds.IssuerOfPatientID = source["IssuerOfPatientID"]
    ds.StudyInstanceUID = source.get("StudyInstanceUID") or generate_uid(entropy_srcs=[prediction.record_id])
    for keyword in ("StudyDate", "StudyTime", "AccessionNumber", "StudyID", "ReferringPhysicianName"):
        setattr(ds, keyword, source.get(keyword, ""))  # type 2: present, empty when not copied


def _series_and_equipment(ds: Dataset, model_label: str) -> None:
    from pydicom.uid import generate_uid

    ds.Modality = "DOC"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = SERIES_NUMBER
    ds.SeriesDescription = "ecglens machine reading"
    ds.Manufacturer = "ecglens"
    ds.ManufacturerModelName = model_label[:64]
    ds.ConversionType = "WSD"  # a workstation made it (SC Equipment module)


def _document(
    ds: Dataset, pdf: bytes, prediction: Prediction, source: Mapping[str, str], include_identifiers: bool
) -> None:
    from pydicom import Dataset

    now = datetime.now()
    ds.InstanceNumber = 1
    ds.ContentDate = now.strftime("%Y%m%d") if include_identifiers else ""  # a date, personal without identifiers
    ds.ContentTime = now.strftime("%H%M%S") if include_identifiers else ""
    ds.AcquisitionDateTime = ""
    ds.BurnedInAnnotation = "YES" if include_identifiers else "NO"
    ds.DocumentTitle = document_title(prediction)
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = ECG_PANEL[0], "LN", ECG_PANEL[1]
    ds.ConceptNameCodeSequence = [concept]
    if source.get("SeriesInstanceUID"):
        related = Dataset()
        related.StudyInstanceUID = ds.StudyInstanceUID
        related.SeriesInstanceUID = source["SeriesInstanceUID"]
        related.PurposeOfReferenceCodeSequence = []
        ds.RelatedSeriesSequence = [related]  # the ECG's own series, which this report reads
    if source.get("SOPInstanceUID") and source.get("SOPClassUID"):
        referenced = Dataset()
        referenced.ReferencedSOPClassUID = source["SOPClassUID"]
        referenced.ReferencedSOPInstanceUID = source["SOPInstanceUID"]
        ds.SourceInstanceSequence = [referenced]
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)


def document_title(prediction: Prediction) -> str:
    """``ECG machine reading: IAVB`` (64 characters at most, DICOM's LO)."""
    shown = prediction.status if prediction.status != "ok" else ", ".join(prediction.decisions) or "no class decided"
    return f"ECG machine reading: {shown}"[:64]
