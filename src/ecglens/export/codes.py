"""The codes a hospital's systems read: LOINC for the measurements (with UCUM units), SNOMED CT for the classes
(from the label tables, never retyped), and the FHIR code systems the resources name.

LOINC codes checked against the US Core clinical test codes value set (hl7.org/fhir/us/core, STU5: 8625-6 P-R
interval, 8633-0 QRS duration, 8634-8 Q-T interval, 8636-3 Q-T interval corrected, 8626-4 P wave axis, 8632-2 QRS
axis, 8638-9 T wave axis, 34534-8 12 lead EKG panel) and LOINC's own text for 8636-3 ("for QTc by Fridericia use
76634-5, and for QTc by Bazett use 76635-2"); 8867-4 is FHIR's vital-signs heart rate.
"""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
SERVICE_SECTION = "http://terminology.hl7.org/CodeSystem/v2-0074"
ECG_PANEL = ("34534-8", "12 lead EKG panel")
"""The DiagnosticReport's code."""


@dataclass(frozen=True)
class MeasurementCode:
    """One measurement's LOINC code, its display, its UCUM unit and, for a corrected QT, its formula.

    Attributes:
        name: the field of `ecglens.waves.measure.Measurements`.
        loinc: the most specific LOINC code.
        display: LOINC's short name.
        unit: UCUM code (also the human unit).
        general: a broader LOINC code also given (8636-3 beside a QTc's formula-specific code), or "".
        method: how the value was made, where LOINC's code does not say it (the QTc formula).
    """

    name: str
    loinc: str
    display: str
    unit: str
    general: str = ""
    method: str = ""


MEASUREMENT_CODES = (
    MeasurementCode("heart_rate_bpm", "8867-4", "Heart rate", "/min"),
    MeasurementCode("pr_ms", "8625-6", "P-R interval", "ms"),
    MeasurementCode("qrs_ms", "8633-0", "QRS duration", "ms"),
    MeasurementCode("qt_ms", "8634-8", "Q-T interval", "ms"),
    MeasurementCode(
        "qtc_bazett_ms", "76635-2", "Q-T interval corrected by Bazett formula", "ms", "8636-3", "Bazett: QT / RR^(1/2)"
    ),
    MeasurementCode(
        "qtc_fridericia_ms",
        "76634-5",
        "Q-T interval corrected by Fridericia formula",
        "ms",
        "8636-3",
        "Fridericia: QT / RR^(1/3)",
    ),
    MeasurementCode("p_axis_deg", "8626-4", "P wave axis", "deg"),
    MeasurementCode("qrs_axis_deg", "8632-2", "QRS axis", "deg"),
    MeasurementCode("t_axis_deg", "8638-9", "T wave axis", "deg"),
)
"""Every measurement a FHIR Observation (and a summary's range flag) is made of, in report order."""


def snomed_codes(snomed: str) -> tuple[str, ...]:
    """A label table's SNOMED cell (``733534002|164909002``: codes the Challenge counts as one class) as codes."""
    return tuple(code for code in snomed.split("|") if code.strip())
