"""Free text of clinical files never leaks a person (`ecglens.io.deidentify`): every leak the hostile campaign of
issue 35 found, in DICOM, GE MUSE and Philips files the tests write themselves, run through ``ecglens predict``;
ordinary statements kept; the private pseudonym map; library messages naming a file."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import re
import stat
from pathlib import Path

import pytest

from clinical_files import dicom_ecg, muse_xml, philips_xml
from ecglens.io import RecordError, read_record

pytest.importorskip("ecgdatakit", reason="clinical files need pip install 'ecglens[clinical]'")
pytest.importorskip("pydicom", reason="DICOM files need pip install 'ecglens[clinical]'")

ORDINARY = (
    "Sinus rhythm",
    "Left bundle branch block",
    "QRS 120 ms",
    "PR 0.20 s",
    "QT/QTc 400/430 ms",
    "P-R-T axes 60 -15 30",
    "Abnormal ECG",
    "Compared with ECG of previous visit, no significant change",
)
"""What a cart writes: every one must survive (no over-scrubbing)."""
LEAKS = (
    "ID PIDX 9731246 follow up",  # the id with a space
    "Case 9731246 reviewed",  # its digits alone
    "Follow-up pidx-973-1246",  # dashes inside it, no keyword
    "born 19.02.1937",  # the birth date, DD.MM.YYYY
    "DOB 02/19/1937",  # MM/DD/YYYY
    "Seen 19 Feb 1937",  # month names
    "Visit February 19, 1937",
    "Birthday 19370219",  # YYYYMMDD
)
"""Leaks every format's file holds (its patient id is PIDX9731246, born 1937-02-19)."""
STAFF_LEAKS = {
    "dicom": ("Call Vrensko at 555-0199", "Vrensko notified"),  # ReferringPhysicianName Vrensko^Dr
    "muse": ("Kowalczyk notified", "Tech 48213 on duty"),  # OrderingMDLastName, AcquisitionTechID
    "philips": ("Okonkwo notified", "Mirela to repeat"),  # operator name behind its id; ordering clinician
}
"""Names and ids of staff, as each format stores them."""
PERSONAL = ("9731246", "973-1246", "1937", "Vrensko", "555-0199", "Kowalczyk", "48213", "Okonkwo", "Mirela")
"""Strings no output may hold."""


def clinical_folder(folder: Path) -> dict[str, Path]:
    """One file per format, each holding every leak and every ordinary statement, interleaved."""
    folder.mkdir(parents=True, exist_ok=True)

    def statements(kind: str) -> tuple[str, ...]:
        pairs = itertools.zip_longest(ORDINARY, (*LEAKS, *STAFF_LEAKS[kind]))
        return tuple(s for pair in pairs for s in pair if s)

    files = {
        "dicom": dicom_ecg(
            folder / "a.dcm",
            fields={
                "PatientID": "PIDX9731246",
                "PatientBirthDate": "19370219",
                "ReferringPhysicianName": "Vrensko^Dr",
            },
            statements=statements("dicom"),
        ),
        "muse": folder / "b.xml",
        "philips": folder / "c.xml",
    }
    files["muse"].write_text(
        muse_xml(
            patient={"PatientID": "PIDX9731246", "DateofBirth": "02-19-1937"},
            test={"OrderingMDLastName": "Kowalczyk", "OrderingMDFirstName": "Ann", "AcquisitionTechID": "48213"},
            statements=statements("muse"),
        ),
        encoding="latin-1",
    )
    files["philips"].write_text(
        philips_xml(
            patient="<patientid>PIDX9731246</patientid><name><lastname>Doe</lastname><firstname>Jane</firstname>"
            "</name><age><dateofbirth>1937-02-19</dateofbirth></age>",
            acquirer='<operator id="T4711">Okonkwo</operator><referringclinician>Lee</referringclinician>'
            "<orderingclinician>Mirela</orderingclinician>",
            statements=statements("philips"),
        ),
        encoding="utf-8",
    )
    return files


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """``ecglens predict`` over the three files: (files, out folder, terminal text)."""
    from ecglens.cli import main

    root = tmp_path_factory.mktemp("deid")
    files = clinical_folder(root / "in")
    out = root / "out"
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = main(["--threads", "1", "predict", str(root / "in"), "--out", str(out)])
    assert code == 0
    return files, out, text.getvalue()


def _rows(out: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return {row["file_format"]: row for row in rows}


@pytest.mark.parametrize(
    ("kind", "file_format"), [("dicom", "dicom"), ("muse", "ge-muse-xml"), ("philips", "philips-xml")]
)
def test_no_leak_variant_reaches_the_predictions_and_each_drop_is_counted(predicted, kind, file_format):
    _, out, _ = predicted
    row = _rows(out)[file_format]
    assert tuple(row["file_statements"]) == ORDINARY  # every ordinary statement kept, in order
    assert row["file_statements_left_out"] == len(LEAKS) + len(STAFF_LEAKS[kind])
    with (out / "predictions.csv").open(newline="") as handle:
        table = {r["file_format"]: r for r in csv.DictReader(handle)}
    assert table[file_format]["file_statements"] == " | ".join(ORDINARY)
    assert table[file_format]["file_statements_left_out"] == str(len(LEAKS) + len(STAFF_LEAKS[kind]))


def test_no_output_or_terminal_line_holds_a_leak(predicted):
    _, out, terminal = predicted
    outputs = "\n".join(path.read_text() for path in out.rglob("*") if path.is_file())
    assert "Sinus rhythm" in outputs and "Left bundle branch block" in terminal  # not a vacuous search
    for text in (outputs, terminal):
        assert [value for value in PERSONAL if value.lower() in text.lower()] == []
    assert "statements left out" in terminal


def test_an_archive_run_names_no_file_by_its_path(tmp_path):
    """``predict --archive`` keeps a manifest of every file; a clinical file's name holds its patient's, so the
    manifest names files by a keyed hash of their path, and no file of the archive holds the name."""
    from ecglens.cli import main

    folder = tmp_path / "in"
    for path in clinical_folder(folder).values():
        path.rename(path.with_name(f"Kowalczyk_1937_{path.name}"))
    out = tmp_path / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--threads", "1", "predict", str(folder), "--out", str(out), "--archive"]) == 0
    manifests = sorted((out / "archive").glob("manifest-*.jsonl"))
    assert manifests and all(row["path"].startswith("path-") for m in manifests for row in _jsonl(m))
    outputs = "\n".join(path.read_text() for path in out.rglob("*") if path.is_file())
    assert "Sinus rhythm" in outputs  # not a vacuous search
    names = [value for value in PERSONAL if not value.replace("-", "").isdigit()]  # digits: keys and stamps hold any
    assert [value for value in names if value.lower() in outputs.lower()] == []
    with contextlib.redirect_stdout(io.StringIO()) as again:  # an unchanged file is found by its hashed path
        assert main(["--threads", "1", "predict", str(folder), "--out", str(out), "--archive"]) == 0
    assert "nothing new" in again.getvalue()


def test_a_file_that_vanishes_is_keyed_without_its_path_in_the_clear(tmp_path):
    """A file listed, then gone (or refused) before it is hashed is keyed by its path: by a keyed hash of it,
    which nobody who guesses the path can confirm, never by a plain sha256."""
    from ecglens.commands.archive import content_key

    path = tmp_path / "Kowalczyk_1937_ecg.xml"  # never written: reading it fails
    key = content_key(path)
    plain = hashlib.sha256(b"unreadable\0" + str(path).encode()).hexdigest()
    assert key.startswith("unreadable-") and key != plain and "Kowalczyk" not in key
    assert content_key(path) == key  # the same on the next run: the file is not listed twice


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_leaks_are_kept_when_identifiers_are_asked_for(tmp_path):
    files = clinical_folder(tmp_path)
    for kind, path in files.items():
        record = read_record(path, include_identifiers=True)
        assert set(LEAKS + STAFF_LEAKS[kind]) <= set(record.statements) and record.statements_left_out == 0


def test_the_pseudonym_map_is_private_written_only_when_asked_for_and_maps_every_record(predicted, tmp_path):
    from ecglens.cli import main

    files, plain, _ = predicted
    assert not (plain / "pseudonyms.private.csv").exists()  # not without the flag
    out = tmp_path / "out"
    assert main(["--threads", "1", "predict", str(files["muse"].parent), "--out", str(out), "--pseudonym-map"]) == 0
    path = out / "pseudonyms.private.csv"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["input_path"] for r in rows} == {str(p.resolve()) for p in files.values()}
    ids = {row["record_id"] for row in _rows(out).values()}
    assert {r["pseudonym"] for r in rows} == ids and all(re.fullmatch(r"ecg-[0-9a-f]{12}", i) for i in ids)
    for other in out.rglob("*"):  # the paths stay in the map alone
        if other.is_file() and other != path:
            assert str(files["muse"].parent) not in other.read_text(errors="replace")


def test_private_files_are_owner_only_from_their_creation(tmp_path):
    from ecglens.util.atomic import write_text

    (tmp_path / ".secret.csv.tmp").write_text("left by a crash")  # a scratch file's old mode is not kept
    (tmp_path / ".secret.csv.tmp").chmod(0o644)
    path = write_text(tmp_path / "secret.csv", "a,b\n", permissions=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "a,b\n"


# ---- the scrubber on its own -----------------------------------------------------------------------------------


def _scrubber(**fields: str):
    from ecglens.io.deidentify import scrubber

    return scrubber([(k.replace("_", " "), v) for k, v in fields.items()])


@pytest.mark.parametrize(
    "statement",
    [
        "ID PIDX 9731246 follow up",
        "Case 9731246 reviewed",
        "PIDX/9731246",
        "9.731.246",
        "born 19.02.1937",
        "DOB 02/19/1937",
        "19 February 1937",
        "Feb. 19th, 1937",
        "1937 Feb 19",
        "19-02-37",
        "Call Vrensko at 555-0199",
        "VRENSKO to review",
        "vrensko's patient",
        "Smith, Jane consulted",
        "mail j.smith@example.org",
        "+44 20 7946 0958",
        "Dr Who said so",
        "Seen by Mrs Hudson",
        "Confirmed by someone",
        "MRN 123",
    ],
)
def test_every_form_of_a_files_values_is_a_leak(statement):
    found = _scrubber(
        patient_id="PIDX9731246",
        birth_date="1937-02-19",
        referring_physician="Vrensko^Dr",
        patient_name="Smith^Jane^^Mrs",
    )
    assert found.leaks(statement), statement


@pytest.mark.parametrize(
    "statement",
    [
        *ORDINARY,
        "Sinus bradycardia with 1st degree A-V block",
        "Inferior infarct, acute (LCx) (ST>0.10mV, II III aVF, STd V1-V3)",
        "PROBABLE LEFT VENTRICULAR HYPERTROPHY ((RaVL+SV3)xQRSd >280)",
        "Ventricular rate 72 BPM",
        "Nonspecific intraventricular conduction delay (QRSd >115mS, not LBBB/RBBB)",
        "MS: mitral stenosis suspected",
        "ST depression in V5, V6 of 0.1 mV",
        "Criteria version 2019",
    ],
)
def test_ordinary_statements_are_no_leak(statement):
    found = _scrubber(
        patient_id="PIDX9731246",
        birth_date="1937-02-19",
        referring_physician="Vrensko^Dr",
        technician="II",
        interpreter="Unconfirmed diagnosis",
        patient_name="Smith^Jane^^Mrs",
    )
    assert not found.leaks(statement), statement


def test_a_dicom_person_name_gives_each_component_and_no_title():
    from ecglens.io.deidentify import name_parts

    assert name_parts("Vrensko^Dr") == ["Vrensko"]
    assert name_parts("Smith^Jane^Q^Dr.^Jr") == ["Smith", "Jane"]
    assert name_parts("Garg, Ruchira M.D.") == ["Garg", "Ruchira"]
    assert name_parts("Yamada^Tarou=山田^太郎") == ["Yamada", "Tarou", "山田", "太郎"]


# ---- a library's message naming the file ----------------------------------------------------------------------

BROKEN_MUSE = '<?xml version="1.0" encoding="ISO-8859-1"?><RestingECG><PatientDemographics><Patient'


def test_a_short_file_name_is_replaced_only_as_a_whole_token(tmp_path):
    path = tmp_path / "M.xml"
    path.write_text(BROKEN_MUSE, encoding="latin-1")
    with pytest.raises(RecordError) as caught:
        read_record(path)
    reason = caught.value.reason
    assert "Malformed XML in clinical file ecg-" in reason and str(tmp_path) not in reason, reason


def test_with_identifiers_the_path_in_a_message_is_not_garbled(tmp_path):
    path = tmp_path / "SMITH_JOHN_1950.xml"
    path.write_text(BROKEN_MUSE, encoding="latin-1")
    with pytest.raises(RecordError) as caught:
        read_record(path, include_identifiers=True)
    reason = caught.value.reason
    assert f"Malformed XML in {path}:" in reason, reason
    assert reason.count(path.parent.name) == 1 and ".xml.xml" not in reason, reason


def test_serve_shows_no_leak_and_counts_the_drops(tmp_path):
    from fastapi.testclient import TestClient

    from ecglens.serve import ServeConfig, create_app

    files = clinical_folder(tmp_path)
    with TestClient(create_app(ServeConfig("starter", "cpu")), base_url="http://127.0.0.1") as client:
        for kind, path in files.items():
            response = client.post("/api/predict", files=[("files", (path.name, path.read_bytes()))])
            assert response.status_code == 200, response.text
            body = response.json()
            assert tuple(body["file_statements"]) == ORDINARY
            assert body["file_statements_left_out"] == len(LEAKS) + len(STAFF_LEAKS[kind])
            assert [value for value in PERSONAL if value.lower() in response.text.lower()] == []


# ---- issue 35, second review: leaks the first scrubber kept, and ordinary statements it dropped ---------------


@pytest.mark.parametrize(
    "statement",
    [
        "Call 0151 496 0000",  # international telephone layouts
        "Call (0151) 496-0000",
        "tel 01 23 45 67 89",
        "ring 030 1234 5678 re results",
        "mueller",  # accents folded, German transliteration
        "MULLER J",
        "jose seen",
        "Müller to call",
        "3/3/41",  # dates in no field, two-digit years
        "41-03-03",
        "seen 03.03.41",
        "03MAR1941",
        "03MAR41 follow-up",
        "ref 123 456",  # the id 00123456 without its leading zeros
        "ref 0012-3456",
    ],
)
def test_second_review_leaks_are_caught(statement):
    found = _scrubber(patient_id="00123456", patient_name="Müller^José")
    assert found.leaks(statement), statement


def test_a_transliterated_stored_name_finds_the_accented_spelling():
    found = _scrubber(patient_name="Mueller^Jose")
    assert found.leaks("Dr. Müller notified") and found.leaks("MÜLLER") and found.leaks("José")


SECOND_ORDINARY = (
    "QRS 120 ms",
    "P-R-T axes 60 30 45",
    "HR 72 bpm",
    "QT/QTc 380/410 ms",
    "Vent. rate 72 PR 160 QRSD 90 QT/QTc 380/410",
    "STd V1-V3",
    "Axis 60/30",
    "1/2 mV ST elevation",
    "Interpreted with caution",
    "Acquired with lead reversal",
    "Read with care: artifact",
    "Performed with patient supine",
    "Referred to cardiology",
    "REFERRED TO CARDIOLOGY",
    "INTERPRETED WITH CAUTION",
    "MD review suggested",
    "Dr. review pending",
    "DR. REVIEW PENDING",
    "Left bundle branch block",
    "Sinus rhythm and an early transition",
    "Criteria version 2019",
    "Criteria version 2.10.11",
    "Wolff-Parkinson-White pattern",
)
"""Statements the first scrubber dropped (or could drop) for no person."""


@pytest.mark.parametrize("statement", SECOND_ORDINARY)
def test_second_review_ordinary_statements_are_kept(statement):
    found = _scrubber(patient_id="6030", patient_name="Block^An", technician="Early", birth_date="1941-03-03")
    assert not found.leaks(statement), statement


@pytest.mark.parametrize(
    "statement",
    [
        "Anna Block notified",  # a name component that is an ECG word, beside another part of the name
        "Block, Anna",
        "Dr Block to call",
        "BLOCK MD",
        "Dr An on duty",
        "Confirmed by Smith",  # signature phrases and titles with a name after them
        "Confirmed by someone",
        "Discussed with Alice",
        "Referred to Dr. Hudson",
        "Garg MD",
        "Ruchira Garg, M.D.",
        "Ms. O’Brien",
        "O'BRIEN MD",
        "ID 6030",
        "6030",
    ],
)
def test_narrowed_patterns_still_catch_a_person(statement):
    found = _scrubber(patient_id="6030", patient_name="Block^Anna", technician="An^Li")
    assert found.leaks(statement), statement


def test_short_and_clinical_name_components_alone_are_no_pattern():
    found = _scrubber(patient_name="Block^An", technician="Early")
    assert not found.leaks("Left bundle branch block with an early transition")
    assert found.leaks("Dr. Early") and found.leaks("An Block")


def test_an_id_is_matched_with_separators_only_from_6_characters_and_its_digits_from_5():
    from ecglens.io.deidentify import id_patterns

    assert id_patterns("6030") == [] and id_patterns("T4711") == []
    assert not _scrubber(patient_id="6030").leaks("P-R-T axes 60 30 45")
    assert _scrubber(patient_id="48213").leaks("Tech 48 213") and _scrubber(patient_id="PIDX97").leaks("pidx 97")


def test_every_muse_place_field_is_a_pattern_and_a_short_code_only_after_a_place_word(tmp_path):
    path = tmp_path / "site.xml"
    path.write_text(
        muse_xml(
            test={
                "Site": "17",
                "SiteName": "Harbourview Medical",
                "Location": "105",
                "LocationName": "Saperstein 5th floor",
                "RoomID": "R12B",
                "HISLocation": "AHEY",
            },
            statements=(
                "Seen at location 105",
                "Loc 105 repeat",
                "Harbourview Medical",
                "Saperstein 5th floor",
                "AHEY ward",
                "room R12B",
                "QRS 105 ms",
                "Sinus rhythm",
            ),
        ),
        encoding="latin-1",
    )
    record = read_record(path)
    assert record.statements == ("QRS 105 ms", "Sinus rhythm") and record.statements_left_out == 6
    path.write_text(muse_xml(test={"Location": "Cedar Ward"}, statements=("In Cedar Ward", "Sinus rhythm")))
    record = read_record(path)
    assert record.statements == ("Sinus rhythm",) and record.statements_left_out == 1


def test_the_count_says_possibly_identifying(predicted):
    from ecglens.report.predictions import CLINICAL_COLUMNS

    _, _, terminal = predicted
    assert "statements left out as possibly identifying" in terminal
    assert "possibly identifying" in dict(CLINICAL_COLUMNS)["file_statements_left_out"]
    assert "could identify a person" not in terminal
