"""One record's result as a FHIR R4 transaction Bundle, built as plain data and validated by fhir.resources.

The Bundle holds, each with a ``urn:uuid`` full URL made from the record id (a re-run gives the same Bundle):

- a **Patient**: with identifiers, the file's patient id, name and birth date; otherwise only the record's
  pseudonym (`ecglens.util.pseudonym`) as its identifier. Created only if none with that identifier exists
  (``ifNoneExist``), so a second record of the same patient finds the first one's;
- a **Device**: the model, its name and version (a FHIR R4 DiagnosticReport cannot name a Device as its performer:
  each Observation names it as its ``device``, and the report's conclusion names the model);
- an **Observation** per measurement (LOINC, UCUM; `ecglens.export.codes`): the value, its adult normal range,
  ``H`` or ``L`` when outside it, the QTc's formula as its method;
- a **DiagnosticReport** (LOINC 34534-8, service section EC): its status ``preliminary`` (a machine reading, not
  yet confirmed by a physician), the decisions as ``conclusionCode`` in SNOMED CT (from the label tables; a class
  without a SNOMED code is in the text only), the decisions, criteria, disagreements and warnings as
  ``conclusion`` text, the Observations as ``result``, and the one-page PDF as ``presentedForm`` where one was
  written.

Without identifiers nothing personal goes in: no name, no id, no date (no ``effectiveDateTime``: the acquisition
date is personal data), and none of the file's own free-text statements (they are the cart's, not ecglens's).

fhir.resources (BSD) validates the Bundle against its FHIR R4B models (4.3.0; the package has no 4.0.1 models for
pydantic 2). R4B revises R4 mostly outside these five resources (hl7.org/fhir/r4b/diff.html lists the changes);
they have not been checked element by element against a 4.0.1 validator here. The library checks every
element's name, type and cardinality and the required ones; it does not check codes against their value sets or
a reference's target type (a FHIR server's ``$validate`` does, before a go-live).
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecglens.export.codes import (
    ECG_PANEL,
    INTERPRETATION,
    LOINC,
    MEASUREMENT_CODES,
    OBSERVATION_CATEGORY,
    SERVICE_SECTION,
    SNOMED,
    UCUM,
    MeasurementCode,
    snomed_codes,
)
from ecglens.util.pseudonym import pseudonym

if TYPE_CHECKING:
    from ecglens.bundle.meta import BundleMeta
    from ecglens.predict import Prediction

EXTRA = "pip install 'ecglens[hospital]'"
PSEUDONYM_SYSTEM = "urn:ecglens:pseudonym"
"""The identifier system of a Patient known by its pseudonym only."""
PATIENT_ID_SYSTEM = "urn:ecglens:source-patient-id"
"""The identifier system of the patient id a file carries (a hospital maps it to its own system on import)."""
RECORD_ID_SYSTEM = "urn:ecglens:record-id"
"""The identifier system of a Patient known by its record's id (identifiers asked for, no patient id in the file)."""
MODEL_SYSTEM = "urn:ecglens:model"
_NAMESPACE = uuid.UUID("6f1c4f1e-3b0e-5d34-9a55-8a1f0e5b7c11")


@dataclass(frozen=True)
class ModelIdentity:
    """The model named in the outputs: its name, architecture and the ecglens version that made it.

    Attributes:
        name: the starter's name or the bundle folder's.
        architecture: the network (``resnet34``).
        version: the ecglens version that trained it.
    """

    name: str
    architecture: str
    version: str

    @classmethod
    def of(cls, bundle: str | os.PathLike, meta: BundleMeta) -> ModelIdentity:
        """The starter's name, or the bundle folder's, with its network and the ecglens version that trained it."""
        from ecglens.bundle.meta import starter_manifest, starter_path

        starter = Path(bundle).resolve() == starter_path().resolve()
        name = starter_manifest().name if starter else Path(bundle).name
        return cls(name, meta.model.name, str(meta.versions.get("ecglens", "unknown")))

    @property
    def label(self) -> str:
        """``starter-cpsc9 (resnet34), ecglens 0.9.0``."""
        return f"{self.name} ({self.architecture}), ecglens {self.version}"


@dataclass(frozen=True)
class ClassCodes:
    """Per class, its SNOMED CT codes and description (a built-in label space's table; empty for a user space)."""

    snomed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, meta: BundleMeta) -> ClassCodes:
        """The codes of a bundle's label space (`ecglens.labels.mapping`: the one table that holds them): the
        Challenge 2021 scored codes of ``classes.csv``, else the SNOMED CT codes the space's ``snomed.csv`` maps
        one-to-one onto the class (ST depression 429622005, ST elevation 164931005, which the Challenge does not
        score)."""
        from ecglens.labels.mapping import one_to_one_snomed, space_descriptions

        label_map = meta.label_map
        snomed = dict(zip(label_map.classes, map(snomed_codes, label_map.snomed), strict=False))
        fallback = one_to_one_snomed()
        snomed = {name: codes or fallback.get(name, ()) for name, codes in snomed.items()}
        return cls(snomed, space_descriptions(label_map.space))


def fhir_bundle(
    prediction: Prediction,
    model: ModelIdentity,
    classes: ClassCodes,
    pdf: bytes | None = None,
    include_identifiers: bool = False,
    patient_key: str | None = None,
) -> dict:
    """One record's transaction Bundle as plain JSON data, validated (`validate`).

    Args:
        prediction: the record's result.
        model: the model, named as the Observations' device.
        classes: the SNOMED CT codes and descriptions of the bundle's classes.
        pdf: the record's one-page report, or None.
        include_identifiers: put the file's patient id, name, birth and acquisition dates in (when it has them).
        patient_key: the pseudonymous patient id (`ecglens.io.record.Record.patient_id`; one per patient), or
            None to key the Patient by the record id.
    """
    urls = {kind: _urn(prediction.record_id, kind) for kind in ("patient", "device", "report")}
    patient = _patient(prediction, include_identifiers, patient_key)
    observations = _observations(prediction, urls, include_identifiers)
    report = _report(prediction, model, classes, pdf, urls, [url for url, _ in observations], include_identifiers)
    entries = [
        _entry(urls["patient"], patient, _if_none_exist(patient, patient_key, include_identifiers)),
        _entry(urls["device"], _device(model), f"identifier={MODEL_SYSTEM}|{_model_key(model)}"),
        *(_entry(url, resource) for url, resource in observations),
        _entry(urls["report"], report),
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    validate(bundle)
    return bundle


def validate(bundle: Mapping[str, Any]) -> None:
    """Parse ``bundle`` with fhir.resources' R4B models: a wrong element, type or code raises.

    Raises:
        ImportError: fhir.resources is not installed (the ``hospital`` extra).
        ValueError: the Bundle is not valid FHIR (pydantic's ValidationError).
    """
    try:
        from fhir.resources.R4B.bundle import Bundle
    except ImportError as error:
        raise ImportError(f"FHIR output needs fhir.resources: {EXTRA}") from error
    Bundle.model_validate(dict(bundle))


def _urn(record_id: str, kind: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{record_id}/{kind}')}"


def _entry(url: str, resource: dict, if_none_exist: str | None = None) -> dict:
    request = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    return {"fullUrl": url, "resource": resource, "request": request}


def _if_none_exist(patient: dict, patient_key: str | None, include_identifiers: bool) -> str | None:
    """Create the Patient only if none has the identifier, when the identifier names a person (the file's patient
    id, or its keyed hash); a record whose file names no patient gets its own Patient every time, so two
    datasets' records that share an id are never filed as one person."""
    identifier = patient["identifier"][0]
    known = identifier["system"] == PATIENT_ID_SYSTEM or (patient_key is not None and not include_identifiers)
    return f"identifier={identifier['system']}|{identifier['value']}" if known else None


def _model_key(model: ModelIdentity) -> str:
    return f"{model.name}-{model.version}"


def _patient(prediction: Prediction, include_identifiers: bool, patient_key: str | None) -> dict:
    """A Patient known by its pseudonym, or with identifiers by the file's patient id, name and birth date."""
    known = (prediction.identifiers or {}) if include_identifiers else {}
    if known.get("patient id"):
        identifier = {"system": PATIENT_ID_SYSTEM, "value": known["patient id"]}
    elif include_identifiers:  # asked for, but the file names no patient: the record's own id
        identifier = {"system": RECORD_ID_SYSTEM, "value": prediction.record_id}
    else:
        # a file that names no patient (WFDB, EDF, CSV): a keyed hash of its path, never its file name
        value = patient_key or pseudonym(prediction.source or prediction.record_id, "record")
        identifier = {"system": PSEUDONYM_SYSTEM, "value": value}
    patient: dict[str, Any] = {"resourceType": "Patient", "identifier": [identifier]}
    name = {
        key: value
        for key, value in (
            ("text", known.get("patient name")),
            ("family", known.get("last name")),
            ("given", [known["first name"]] if known.get("first name") else None),
        )
        if value
    }
    if name:
        patient["name"] = [name]
    if len(known.get("birth date", "")) == 10:
        patient["birthDate"] = known["birth date"]
    return patient


def _device(model: ModelIdentity) -> dict:
    return {
        "resourceType": "Device",
        "identifier": [{"system": MODEL_SYSTEM, "value": _model_key(model)}],
        "manufacturer": "ecglens",
        "deviceName": [{"name": model.name, "type": "model-name"}],
        "type": {"text": f"ECG interpretation software: a {model.architecture} network, research use only"},
        "version": [{"value": model.version}],
    }


def _effective(prediction: Prediction, include_identifiers: bool) -> dict:
    """``effectiveDateTime``: the acquisition day, with identifiers only (a date is personal data). The day alone:
    a file's time of day carries no time zone, which FHIR requires of a time."""
    acquired = (prediction.identifiers or {}).get("acquired", "") if include_identifiers else ""
    return {"effectiveDateTime": acquired[:10]} if len(acquired) >= 10 else {}


def _observations(prediction: Prediction, urls: Mapping[str, str], include_identifiers: bool) -> list[tuple[str, dict]]:
    """One Observation per measurement the record has, each with its full URL."""
    measured = prediction.measurements
    if measured is None:
        return []
    values = {code.name: getattr(measured, code.name) for code in MEASUREMENT_CODES}
    ranges = measured.normal_ranges()
    out = []
    for code in MEASUREMENT_CODES:
        value = values[code.name]
        if value is None:
            continue
        resource = _observation(code, float(value), ranges.get(code.name), urls, measured.source)
        out.append((_urn(prediction.record_id, code.name), {**resource, **_effective(prediction, include_identifiers)}))
    return out


def _observation(
    code: MeasurementCode, value: float, normal: tuple[float, float] | None, urls: Mapping[str, str], source: str
) -> dict:
    codings = [{"system": LOINC, "code": code.loinc, "display": code.display}]
    codings += [{"system": LOINC, "code": code.general, "display": "Q-T interval corrected"}] if code.general else []
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "preliminary",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "procedure", "display": "Procedure"}]}],
        "code": {"coding": codings, "text": code.display},
        "subject": {"reference": urls["patient"]},
        "device": {"reference": urls["device"]},
        "valueQuantity": _quantity(round(value, 1), code.unit),
        "note": [{"text": f"measured by ecglens from the delineated waves ({source})"}],
    }
    if code.method:
        resource["method"] = {"text": f"QTc by {code.method}"}
    if normal is not None:
        low, high = normal
        resource["referenceRange"] = [
            {"low": _quantity(low, code.unit), "high": _quantity(high, code.unit), "text": "adult normal range"}
        ]
        flag = "H" if value > high else "L" if value < low else "N"
        shown = {"H": "High", "L": "Low", "N": "Normal"}[flag]
        resource["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": flag, "display": shown}]}]
    return resource


def _quantity(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _report(
    prediction: Prediction,
    model: ModelIdentity,
    classes: ClassCodes,
    pdf: bytes | None,
    urls: Mapping[str, str],
    results: list[str],
    include_identifiers: bool,
) -> dict:
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": urls["report"]}],
        "status": "preliminary",
        "category": [{"coding": [{"system": SERVICE_SECTION, "code": "EC", "display": "Electrocardiac"}]}],
        "code": {"coding": [{"system": LOINC, "code": ECG_PANEL[0], "display": ECG_PANEL[1]}], "text": "12-lead ECG"},
        "subject": {"reference": urls["patient"]},
        **_effective(prediction, include_identifiers),
        "conclusion": conclusion_text(prediction, model),
    }
    if results:
        report["result"] = [{"reference": url} for url in results]
    qrs = prediction.measurements.qrs_ms if prediction.measurements is not None else None
    codes = [_conclusion_code(name, classes, qrs) for name in prediction.decisions]
    if any(codes):
        report["conclusionCode"] = [code for code in codes if code]
    if pdf is not None:
        report["presentedForm"] = [
            {
                "contentType": "application/pdf",
                "data": base64.b64encode(pdf).decode("ascii"),
                "title": "ecglens one-page ECG report",
            }
        ]
    return report


COMPLETE_BLOCK = {"733534002", "713427006"}
"""SNOMED CT's complete left and right bundle branch block: coded only when the record's QRS measures at least
120 ms (Surawicz et al., AHA/ACCF/HRS 2009 part III); else the general code alone (164909002, 59118001)."""


def _conclusion_code(name: str, classes: ClassCodes, qrs_ms: float | None = None) -> dict | None:
    codes = classes.snomed.get(name, ())
    if qrs_ms is None or qrs_ms < 120:
        codes = tuple(code for code in codes if code not in COMPLETE_BLOCK)
    if not codes:
        return None
    text = classes.descriptions.get(name, name)
    return {"coding": [{"system": SNOMED, "code": code} for code in codes], "text": text}


def conclusion_text(prediction: Prediction, model: ModelIdentity) -> str:
    """The decisions (with what decided each), the criteria, the disagreements and the warnings, as text: what
    the DiagnosticReport concludes and the DICOM object's title says in short."""
    lines = [f"Machine reading by {model.label}; research use only, to be confirmed by a physician."]
    if prediction.status != "ok":
        lines.append(f"{prediction.status}: {'; '.join(prediction.reasons)}")
    elif prediction.decisions:
        decided = [f"{name} ({prediction.decided_by.get(name, 'model')})" for name in prediction.decisions]
        lines.append(f"Decisions ({prediction.decision_rule}): {', '.join(decided)}.")
    else:
        lines.append(f"No class decided ({prediction.decision_rule}).")
    lines += [f"Criteria: {prediction.criteria_line()}"] if prediction.criteria_line() else []
    lines += [f"DISAGREEMENT: {flag}" for flag in prediction.disagreements]
    lines += [f"Warning: {warning}" for warning in prediction.warnings]
    lines += [f"Measurements: {prediction.measurement_line()}"] if prediction.measurement_line() else []
    return "\n".join(lines)
