"""Results a hospital files: FHIR Bundles that fhir.resources validates, with LOINC/UCUM Observations and SNOMED CT
conclusions from the label tables; DICOM Encapsulated PDFs that pydicom reads back, in the source DICOM's study;
a batch summary; and nothing personal in any of them unless asked for."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest

from conftest import known_signal, write_wfdb
from ecglens.cli import main
from ecglens.predict import Prediction
from ecglens.waves.measure import Measurements

pytest.importorskip("fhir.resources", reason="FHIR output needs pip install 'ecglens[hospital]'")
pydicom = pytest.importorskip("pydicom", reason="DICOM output needs pydicom")

LOINC_UNITS = {
    "8867-4": "/min",
    "8625-6": "ms",
    "8633-0": "ms",
    "8634-8": "ms",
    "76635-2": "ms",
    "76634-5": "ms",
    "8626-4": "deg",
    "8632-2": "deg",
    "8638-9": "deg",
}
"""Every LOINC code an Observation may carry (its most specific one) and its UCUM unit."""


def _bytes_of(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in sorted(folder.rglob("*")) if p.is_file())


def _resources(bundle: dict, kind: str) -> list[dict]:
    return [entry["resource"] for entry in bundle["entry"] if entry["resource"]["resourceType"] == kind]


def _prediction(decisions: tuple[str, ...], **fields) -> Prediction:
    """A hand-built result: LBBB has two SNOMED CT codes in the tables, STE none; a PR of 338 ms is high."""
    measured = Measurements(70.0, 20.0, 338.0, 90.0, 380.0, 410.0, 400.0, 50.0, 40.0, 40.0, 12, "hand-built")
    probabilities = dict.fromkeys(("SNR", "AF", "IAVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE"), 0.1)
    return Prediction("ecg-0123456789ab", "clinical file ecg-0123456789ab", probabilities, decisions,
                      measurements=measured, decided_by=dict.fromkeys(decisions, "fused"), decision_rule="fused",
                      disagreements=("model: SNR; criteria: IAVB met",), **fields)  # fmt: skip


def _hand_built_bundle(decisions=("LBBB", "STE"), include_identifiers: bool = False, **fields) -> dict:
    from ecglens.bundle.meta import read_meta, starter_path
    from ecglens.export.fhir import ClassCodes, ModelIdentity, fhir_bundle

    meta = read_meta(starter_path())
    model = ModelIdentity.of(starter_path(), meta)
    prediction = _prediction(decisions, **fields)
    return fhir_bundle(prediction, model, ClassCodes.of(meta), b"%PDF-1.4 page", include_identifiers)


def test_a_bundle_codes_decisions_in_snomed_from_the_tables_and_measurements_in_loinc():
    from fhir.resources.R4B.bundle import Bundle

    bundle = _hand_built_bundle()
    Bundle.model_validate(bundle)  # the JSON as written parses back
    (report,) = _resources(bundle, "DiagnosticReport")
    assert report["status"] == "preliminary" and report["code"]["coding"][0]["code"] == "34534-8"
    with (Path(__file__).parents[1] / "src/ecglens/labels/tables/classes.csv").open() as handle:
        lbbb = next(r["snomed"] for r in csv.DictReader(handle) if r["space"] == "cpsc9" and r["class"] == "LBBB")
    code, ste = report["conclusionCode"]  # LBBB at QRS 90 ms: the general code, never "complete"
    assert [c["code"] for c in code["coding"]] == ["164909002"] and code["coding"][0]["system"].endswith("sct")
    assert "733534002" in lbbb.split("|")  # the table's complete LBBB, left out under 120 ms
    assert [c["code"] for c in ste["coding"]] == ["164931005"]  # ST elevation: snomed.csv's one-to-one code
    assert "STE (fused)" in report["conclusion"] and "DISAGREEMENT: model: SNR" in report["conclusion"]
    assert base64.b64decode(report["presentedForm"][0]["data"]) == b"%PDF-1.4 page"
    observations = _resources(bundle, "Observation")
    assert len(observations) == 9 and len(report["result"]) == 9
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert set(by_code) == set(LOINC_UNITS)
    for code_value, observation in by_code.items():
        quantity = observation["valueQuantity"]
        assert quantity["system"] == "http://unitsofmeasure.org" and quantity["code"] == LOINC_UNITS[code_value]
    assert by_code["8625-6"]["valueQuantity"]["value"] == 338.0
    assert by_code["8625-6"]["interpretation"][0]["coding"][0]["code"] == "H"
    assert "Bazett" in by_code["76635-2"]["method"]["text"] and by_code["76635-2"]["code"]["coding"][1]["code"] == (
        "8636-3"
    )
    (device,) = _resources(bundle, "Device")
    assert all(o["device"]["reference"] == bundle["entry"][1]["fullUrl"] for o in observations)
    assert device["version"][0]["value"] and device["deviceName"][0]["name"]


def test_a_complete_block_is_coded_only_on_a_wide_qrs_and_st_depression_is_coded():
    from dataclasses import replace

    bundle = _hand_built_bundle(("RBBB", "STD"))
    (report,) = _resources(bundle, "DiagnosticReport")
    assert [[c["code"] for c in code["coding"]] for code in report["conclusionCode"]] == [["59118001"], ["429622005"]]
    wide = _prediction(("RBBB",))
    wide = replace(wide, measurements=replace(wide.measurements, qrs_ms=150.0))
    from ecglens.bundle.meta import read_meta, starter_path
    from ecglens.export.fhir import ClassCodes, ModelIdentity, fhir_bundle

    meta = read_meta(starter_path())
    bundle = fhir_bundle(wide, ModelIdentity.of(starter_path(), meta), ClassCodes.of(meta), None, False)
    (report,) = _resources(bundle, "DiagnosticReport")
    assert [c["code"] for c in report["conclusionCode"][0]["coding"]] == ["713427006", "59118001"]


def test_without_identifiers_the_patient_is_its_pseudonym_and_nothing_is_dated():
    personal = {"patient name": "Anna Vrensko", "last name": "Vrensko", "patient id": "PIDX9731246",
                "birth date": "1937-02-19", "acquired": "2013-01-25T10:59:19"}  # fmt: skip
    hidden = json.dumps(_hand_built_bundle(identifiers=personal))
    assert not re.search("Vrensko|PIDX|1937|2013|effective|birthDate", hidden)
    (patient,) = _resources(json.loads(hidden), "Patient")
    from ecglens.util.pseudonym import pseudonym

    keyed = pseudonym("clinical file ecg-0123456789ab", "record")  # no patient key: a keyed hash of the path
    assert patient["identifier"] == [{"system": "urn:ecglens:pseudonym", "value": keyed}]
    patient_entry = next(e for e in json.loads(hidden)["entry"] if e["resource"]["resourceType"] == "Patient")
    assert "ifNoneExist" not in patient_entry["request"]  # a person not known: never merged with another "51"
    keyed_bundle = _hand_built_bundle()
    from ecglens.bundle.meta import read_meta, starter_path
    from ecglens.export.fhir import ClassCodes, ModelIdentity, fhir_bundle

    meta = read_meta(starter_path())
    with_key = fhir_bundle(
        _prediction(("LBBB",)), ModelIdentity.of(starter_path(), meta), ClassCodes.of(meta), None, False, "ecg-aaa"
    )
    entry = next(e for e in with_key["entry"] if e["resource"]["resourceType"] == "Patient")
    assert entry["request"]["ifNoneExist"] == "identifier=urn:ecglens:pseudonym|ecg-aaa" and keyed_bundle
    shown = _hand_built_bundle(identifiers=personal, include_identifiers=True)
    (patient,) = _resources(shown, "Patient")
    assert patient["identifier"][0]["value"] == "PIDX9731246" and patient["birthDate"] == "1937-02-19"
    assert patient["name"][0]["family"] == "Vrensko"
    assert _resources(shown, "DiagnosticReport")[0]["effectiveDateTime"] == "2013-01-25"
    (nameless,) = _resources(_hand_built_bundle(include_identifiers=True), "Patient")  # a file without a patient id
    assert nameless["identifier"] == [{"system": "urn:ecglens:record-id", "value": "ecg-0123456789ab"}]


def test_an_invalid_bundle_is_refused_by_the_library():
    from ecglens.export.fhir import validate

    bundle = _hand_built_bundle()
    del bundle["entry"][-1]["resource"]["status"]  # required
    with pytest.raises(ValueError, match="status"):
        validate(bundle)
    bundle = _hand_built_bundle()
    bundle["entry"][-1]["resource"]["performer"] = "ecglens"  # a list of References, not text
    with pytest.raises(ValueError, match="performer"):
        validate(bundle)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """Two synthetic records predicted by the starter with --fhir --dicom."""
    folder = tmp_path_factory.mktemp("in")
    for name, seed in (("first", 1), ("second", 2)):
        write_wfdb(folder, name, known_signal(5000, seed=seed))
    out = tmp_path_factory.mktemp("out") / "p"
    assert main(["--quiet", "predict", str(folder), "--fhir", "--dicom", "--out", str(out)]) == 0
    return out


def test_predict_writes_a_valid_bundle_per_record_with_its_pdf(batch):
    from fhir.resources.R4B.bundle import Bundle

    for name in ("first", "second"):
        bundle = json.loads((batch / "fhir" / f"{name}.json").read_text())
        Bundle.model_validate(bundle)
        (report,) = _resources(bundle, "DiagnosticReport")
        assert base64.b64decode(report["presentedForm"][0]["data"]) == (batch / "reports" / f"{name}.pdf").read_bytes()
        assert bundle["type"] == "transaction" and all(e["request"]["method"] == "POST" for e in bundle["entry"])


def test_predict_writes_an_encapsulated_pdf_that_pydicom_reads_back(batch):
    dataset = pydicom.dcmread(batch / "dicom" / "first.dcm")
    assert dataset.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1" and dataset.Modality == "DOC"
    assert dataset.file_meta.MediaStorageSOPClassUID == dataset.SOPClassUID
    document = dataset.EncapsulatedDocument[: dataset.EncapsulatedDocumentLength]
    assert document == (batch / "reports" / "first.pdf").read_bytes()
    assert dataset.MIMETypeOfEncapsulatedDocument == "application/pdf" and dataset.BurnedInAnnotation == "NO"
    assert str(dataset.PatientName) == "" and dataset.StudyDate == "" and dataset.ContentDate == ""
    assert "SourceInstanceSequence" not in dataset  # a WFDB source: no DICOM instance to reference
    second = pydicom.dcmread(batch / "dicom" / "second.dcm")
    assert len({dataset.StudyInstanceUID, second.StudyInstanceUID, dataset.SeriesInstanceUID}) == 3


def test_the_summary_lists_every_record_with_its_report_and_the_counts(batch):
    page = (batch / "summary.html").read_text()
    with (batch / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["record"] for row in rows) == ["first", "second"]
    for row in rows:
        assert (batch / row["report"]).is_file() and f"href='{row['report']}'" in page
        assert row["status"] == "ok" and row["quality"]
    assert "records predicted: <b>2</b>" in page and "unreadable or not reported: <b>0</b>" in page
    assert "<script>" in page and "script-src 'sha256-" in page  # sortable, under a strict policy


def test_a_summary_escapes_what_a_record_holds(tmp_path):
    from ecglens.report.summary import SummaryRow, write_summary

    row = SummaryRow.of(_prediction(("LBBB",), warnings=("<img src=x onerror=alert(1)>",)), "reports/x.pdf")
    html_path, csv_path = write_summary([row], 0, tmp_path)
    page = html_path.read_text()
    assert "<img" not in page and "&lt;img" in page
    assert "decided LBBB: <b>1</b>" in page and "with a disagreement flag: <b>1</b>" in page
    assert "PR 338 ms (120 to 200)" in csv_path.read_text()  # outside its range, as a reader names it


def test_an_export_without_its_library_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    import sys

    write_wfdb(tmp_path, "record", known_signal(5000))
    monkeypatch.setitem(sys.modules, "fhir.resources", None)  # as if not installed
    assert main(["--quiet", "predict", str(tmp_path / "record.hea"), "--fhir", "--out", str(tmp_path / "o")]) == 1
    assert "--fhir needs fhir.resources: pip install 'ecglens[hospital]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_dicom_sources_report_joins_its_study_and_patient_only_with_identifiers(tmp_path):
    pytest.importorskip("ecgdatakit", reason="clinical files need pip install 'ecglens[clinical]'")
    from pydicom.uid import generate_uid

    from clinical_files import dicom_ecg
    from ecglens.util.pseudonym import pseudonym

    study, series = generate_uid(), generate_uid()
    personal = {"PatientID": "PIDX9731246", "PatientBirthDate": "19370219", "StudyDate": "20130125",
                "AccessionNumber": "ACC778899", "StudyInstanceUID": study, "SeriesInstanceUID": series}  # fmt: skip
    (tmp_path / "in").mkdir()
    source = pydicom.dcmread(dicom_ecg(tmp_path / "in" / "ecg.dcm", fields=personal))
    for flags, out in (((), "hidden"), (("--include-identifiers",), "shown")):
        assert main(["--quiet", "predict", str(tmp_path / "in"), "--fhir", "--dicom", *flags,
                     "--out", str(tmp_path / out)]) == 0  # fmt: skip
    written = _bytes_of(tmp_path / "hidden" / "dicom") + _bytes_of(tmp_path / "hidden" / "fhir")
    assert [v for v in [*personal.values(), source.SOPInstanceUID, "NOBODY"] if v in written] == []
    (hidden,) = (pydicom.dcmread(p) for p in (tmp_path / "hidden" / "dicom").glob("*.dcm"))
    assert hidden.PatientID == pseudonym("PIDX9731246", "pt") and hidden.BurnedInAnnotation == "NO"  # the patient's
    assert hidden.RelatedSeriesSequence[0].StudyInstanceUID == hidden.StudyInstanceUID  # one pseudonymous study
    (shown,) = (pydicom.dcmread(p) for p in (tmp_path / "shown" / "dicom").glob("*.dcm"))
    assert (shown.StudyInstanceUID, shown.PatientID, str(shown.PatientName)) == (study, "PIDX9731246", "NOBODY^TEST")
    assert (shown.StudyDate, shown.AccessionNumber, shown.PatientBirthDate) == ("20130125", "ACC778899", "19370219")
    assert shown.SourceInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert shown.SeriesInstanceUID not in (series, hidden.SeriesInstanceUID)


# ---- the shared clinical files ---------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.slow
def test_no_fhir_or_dicom_output_holds_a_name_a_date_or_a_source_uid_unless_asked(shared_data, tmp_path):
    pytest.importorskip("ecgdatakit", reason="clinical files need pip install 'ecglens[clinical]'")
    from test_clinical import _found, _personal_data

    folder = shared_data / "clinical"
    source = pydicom.dcmread(folder / "dicom" / "anonymous_ecg.dcm", stop_before_pixels=True)
    values = [*_personal_data(shared_data), source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID]
    out = tmp_path / "p"
    assert main(["--quiet", "predict", str(folder), "--fhir", "--dicom", "--out", str(out)]) == 0
    assert len(list((out / "fhir").glob("*.json"))) == 6 and len(list((out / "dicom").glob("*.dcm"))) == 6
    written = _bytes_of(out / "fhir") + _bytes_of(out / "dicom") + (out / "summary.html").read_text()
    assert _found(written, values) == []
    # asked for: the DICOM file's report is filed in its study, under its patient
    shown = tmp_path / "i"
    assert main(["--quiet", "predict", str(folder / "dicom"), "--fhir", "--dicom", "--include-identifiers",
                 "--out", str(shown)]) == 0  # fmt: skip
    (made,) = (pydicom.dcmread(p) for p in (shown / "dicom").glob("*.dcm"))
    assert made.StudyInstanceUID == source.StudyInstanceUID and made.PatientID == source.PatientID
    assert made.PatientBirthDate == source.PatientBirthDate and made.StudyDate == source.StudyDate
    assert made.SourceInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert made.RelatedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    assert made.SeriesInstanceUID != source.SeriesInstanceUID and made.SOPInstanceUID != source.SOPInstanceUID
    (bundle,) = (json.loads(p.read_text()) for p in (shown / "fhir").glob("*.json"))
    assert _resources(bundle, "Patient")[0]["identifier"][0]["value"] == source.PatientID
    page = (shown / "summary.html").read_text()
    from ecglens.util.pseudonym import pseudonym

    same = pseudonym(str((folder / "dicom" / "anonymous_ecg.dcm").resolve()))  # its id in a run without identifiers
    assert "anonymous_ecg</td>" not in page and f"<td>{same}</td>" in page  # the summary shows pseudonyms only
