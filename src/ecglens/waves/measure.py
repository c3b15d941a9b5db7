"""The measurements an ECG report prints, from wave marks: heart rate and its variability, PR, QRS, QT and
QTc (Bazett and Fridericia), and the P, QRS and T axes from the limb leads.

Global boundaries follow the clinical convention (a 12-lead measurement spans the leads): per beat, the
earliest onset and the latest offset among the leads, after leaving out any lead whose boundary lies more than
40 ms from the leads' median (one lead's mistake must not stretch a QRS). Each interval is the median over
beats. The same rule serves a cardiologist's marks and a delineator's, so they are compared like with like.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from ecglens.waves.beats import rates_disagree
from ecglens.waves.leads import LeadMeasurements, dominant_beats, lead_measurements, representative_beat
from ecglens.waves.marks import WaveMarks

OUTLIER_S = 0.040
CONDUCTED_SHARE = 0.50
PR_SPREAD_S = 0.030
IRREGULAR_RR = 0.12
"""A PR interval is measured only where P waves precede at least `CONDUCTED_SHARE` of the beats at a constant PR
(within `PR_SPREAD_S` of the median PR: every P conducted, as a PR interval presumes) and the rhythm is not
irregularly irregular (the median change of RR from beat to beat at most `IRREGULAR_RR` of the median RR).
Chosen by record-disjoint cross-validation on the shared LUDB half (the delineator of each fold scoring records
it never saw): 1 of the 12 records without P waves (atrial fibrillation or flutter, paced, third-degree block)
gets a PR, and 86 of the 88 with P waves keep theirs (``python benchmarks/bench_delineation.py --methods
net --cv DIR``). An earlier choice (70 % of the beats within 20 ms, no rhythm check) withheld the PR of 5 of 7
first-degree AV blocks on PTB-XL (``python benchmarks/bench_qrs_ptbxl.py``): the delineator's beat-to-beat P
onset varies more than that."""
NORMAL_RANGES = {
    "heart_rate_bpm": (60.0, 100.0),
    "pr_ms": (120.0, 200.0),
    "qrs_ms": (60.0, 110.0),
    "qtc_bazett_ms": (350.0, 450.0),
    "qtc_fridericia_ms": (350.0, 450.0),
    "p_axis_deg": (0.0, 75.0),
    "qrs_axis_deg": (-30.0, 90.0),
    "t_axis_deg": (0.0, 90.0),
}
"""Adult normal ranges: rate, PR, QRS and axes after Goldberger's Clinical Electrocardiography (9th ed., 2018);
QTc after Rautaharju et al., AHA/ACCF/HRS recommendations part IV, Circulation 2009;119:e241-e250: prolonged
above 450 ms for men, above 460 ms for women (`QTC_UPPER`; with the sex unknown the men's, lower, limit
flags and both are printed). A QRS of 110-119 ms is an incomplete conduction delay, 120 ms or more a complete
bundle branch block."""
QTC_UPPER = {"male": 450.0, "female": 460.0}
"""The upper limit of a normal QTc (ms) by sex (Rautaharju et al. 2009, part IV)."""
LABELS = {
    "heart_rate_bpm": ("HR", "bpm"),
    "pr_ms": ("PR", "ms"),
    "qrs_ms": ("QRS", "ms"),
    "qt_ms": ("QT", "ms"),
    "qtc_bazett_ms": ("QTc Bazett", "ms"),
    "qtc_fridericia_ms": ("QTc Fridericia", "ms"),
    "p_axis_deg": ("P axis", "deg"),
    "qrs_axis_deg": ("QRS axis", "deg"),
    "t_axis_deg": ("T axis", "deg"),
}
"""How a measurement is named and its unit, where a person reads it."""
AXIS_CATEGORIES = (
    ("normal", -30.0, 90.0),
    ("left axis deviation", -90.0, -30.0),
    ("right axis deviation", 90.0, 180.0),
    ("extreme axis deviation", -180.0, -90.0),
)
"""Frontal QRS axis categories of an adult (degrees; `axis_category` says which bound belongs where): Surawicz et
al., AHA/ACCF/HRS recommendations part III, Circulation 2009;119:e235-e240 (left axis deviation -30 to -90,
right +90 to +180 in adults; the rest, -90 to -180, extreme)."""
AXIS_SOURCE = "AHA/ACCF/HRS 2009 part III (Surawicz et al.)"
AVF_LENGTH = math.sqrt(3) / 2
"""aVF's lead vector is sqrt(3)/2 of lead I's (aVF = (II + III)/2 with II and III at +60 and +120 deg): a heart
vector (x, y) reads x in lead I and sqrt(3)/2 y in aVF."""
NO_P_WAVES = "no P wave at a constant PR before most QRS complexes"
"""How the note of a record without conducted P waves before most of its QRS complexes begins (atrial
fibrillation, flutter, a paced rhythm): `ecglens.criteria` reads it."""
IRREGULAR_PR = "PR withheld in an irregularly irregular rhythm"
"""How the note begins where P waves precede most QRS complexes at a constant PR but the rhythm is irregularly
irregular: the PR is withheld, but the P waves were found (`ecglens.criteria` reads P waves as present)."""
NO_P_CAUSES = (
    "(atrial fibrillation or flutter, a junctional or paced rhythm, AV dissociation, or P waves hidden in the "
    "preceding T wave by a long PR or a fast rate?)"
)
"""What a record without P waves before most QRS complexes may be: the note lists it; the one-page report, short of
room, leaves it out (`page_note`)."""

RESOLUTION = "resolution:"
"""How the note that states a coarse sampling step begins (`resolution_note`)."""
STATED_STEP_MS = 4.0
"""From this sampling step on (250 Hz and below) every interval's step is stated in the record's notes: at 100 Hz
each boundary falls on a 10-ms grid, so an interval, the difference of two, read as 200 ms may be 190-210 ms."""


def resolution_note(rate_hz: float) -> str | None:
    """``resolution: 100 Hz, every interval in 10-ms steps``, or None when the step is under `STATED_STEP_MS`."""
    step = 1000.0 / rate_hz
    return f"{RESOLUTION} {rate_hz:g} Hz, every interval in {step:g}-ms steps" if step >= STATED_STEP_MS else None


def page_note(note: str) -> str:
    """A measurement note as the one-page report prints it: without `NO_P_CAUSES`, the list of what a record
    without P waves may be (its PR row already reads n/a; the JSON, the table and the viewer keep the list)."""
    return note.replace(f" {NO_P_CAUSES}", "")


QTC_FORMULAS = {"bazett": "QT / RR^(1/2)", "fridericia": "QT / RR^(1/3)"}
"""QT corrected for heart rate; QT in ms, RR in seconds."""


def shown_value(value: float | None, name: str) -> str:
    """A measurement to the unit, or to 0.1 where the unit would round a value outside its normal range onto
    the range's edge (a QTc of 450.4 ms is outside 350-450: it reads 450.4, never a flagged 450)."""
    if value is None:
        return "n/a"
    low, high = NORMAL_RANGES.get(name, (-math.inf, math.inf))
    whole = round(value)
    return f"{value:.1f}" if (value > high and whole <= high) or (value < low and whole >= low) else f"{value:.0f}"


def qtc_bazett(qt_ms: float, rr_s: float) -> float:
    """Bazett's QTc (ms): QT / sqrt(RR), RR in seconds."""
    return qt_ms / math.sqrt(rr_s)


def qtc_fridericia(qt_ms: float, rr_s: float) -> float:
    """Fridericia's QTc (ms): QT / RR^(1/3), RR in seconds."""
    return qt_ms / rr_s ** (1 / 3)


@dataclass(frozen=True)
class Measurements:
    """A record's global measurements (None where the waves do not allow one; ``notes`` say why)."""

    heart_rate_bpm: float | None
    rr_sd_ms: float | None
    pr_ms: float | None
    qrs_ms: float | None
    qt_ms: float | None
    qtc_bazett_ms: float | None
    qtc_fridericia_ms: float | None
    p_axis_deg: float | None
    qrs_axis_deg: float | None
    t_axis_deg: float | None
    n_beats: int
    source: str
    notes: tuple[str, ...] = ()
    qrs_axis_category: str | None = None
    sex: str | None = None
    premature_beats: int = 0
    rr_irregularity: float | None = None
    leads: tuple[LeadMeasurements, ...] = ()

    def normal_ranges(self) -> dict[str, tuple[float, float]]:
        """`NORMAL_RANGES` with the QTc limit of the record's sex (`QTC_UPPER`; the men's when unknown)."""
        upper = QTC_UPPER.get(self.sex or "", QTC_UPPER["male"])
        return {name: (low, upper if name.startswith("qtc_") else high) for name, (low, high) in NORMAL_RANGES.items()}

    def qtc_limit(self) -> str:
        """How the QTc limit was chosen: ``460 ms (female)`` or, the sex unknown, both limits."""
        if self.sex in QTC_UPPER:
            return f"{QTC_UPPER[self.sex]:g} ms ({self.sex})"
        return "sex unknown: flagged above 450 ms (men); women's limit 460 ms"

    rate_check_bpm: float | None = None
    """A second estimate of the heart rate, made without the delineator's beat detector
    (`ecglens.waves.beats.second_rate_bpm`); None when not made or when its own two estimates disagree."""

    def rate_warning(self) -> str | None:
        """The warning that the two heart-rate estimates differ by more than 20 % (None when they agree)."""
        if not rates_disagree(self.heart_rate_bpm, self.rate_check_bpm):
            return None
        return (
            f"heart rate uncertain: {self.heart_rate_bpm:.0f} bpm from the detected beats, "
            f"{self.rate_check_bpm:.0f} bpm from a second estimate (the signal's periodicity and steepest slopes): "
            "beats missed, or T waves counted as beats? (the QTc and the rate criteria depend on it)"
        )

    def checked_against(self, rate_check_bpm: float | None) -> Measurements:
        """These measurements with a second heart-rate estimate, and its `rate_warning` as the first note."""
        checked = replace(self, rate_check_bpm=rate_check_bpm)
        warning = checked.rate_warning()
        return checked if warning is None else replace(checked, notes=(warning, *self.notes))

    def outside_normal(self) -> tuple[str, ...]:
        """The measurements outside their adult normal range (`normal_ranges`)."""
        values = asdict(self)
        return tuple(
            name
            for name, (low, high) in self.normal_ranges().items()
            if values[name] is not None and not low <= values[name] <= high
        )

    def outside_text(self) -> list[str]:
        """What lies outside its normal range as a reader names it: ``P axis 76 deg (0 to 75)``."""
        ranges, values = self.normal_ranges(), self.to_dict()
        return [
            f"{LABELS[key][0]} {shown_value(values[key], key)} {LABELS[key][1]} "
            f"({ranges[key][0]:g} to {ranges[key][1]:g})"
            for key in self.outside_normal()
        ]

    def line(self) -> str:
        """``HR 46 bpm, PR 142 ms, ...``, what lies outside the normal ranges, the first note and every QTc caveat
        (a long QTc is never shown without what makes it long)."""
        shown = [
            ("HR", self.heart_rate_bpm, "bpm"),
            ("PR", self.pr_ms, "ms"),
            ("QRS", self.qrs_ms, "ms"),
            ("QT", self.qt_ms, "ms"),
            ("QTc Bazett", self.qtc_bazett_ms, "ms"),
            ("QRS axis", self.qrs_axis_deg, "deg"),
        ]
        keys = ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qrs_axis_deg")
        text = ", ".join(
            f"{name} {shown_value(v, key)}" + ("" if v is None else f" {unit}")
            for (name, v, unit), key in zip(shown, keys, strict=True)
        )
        outside = self.outside_text()
        shown_notes = list(self.notes[:1]) + [n for n in self.notes[1:] if n.startswith((QTC_CAVEAT, RESOLUTION))]
        return (
            text
            + (f"; outside normal: {', '.join(outside)}" if outside else "")
            + "".join(f"; {note}" for note in shown_notes)
        )

    @classmethod
    def from_dict(cls, data: dict) -> Measurements:
        """The measurements back from `to_dict`'s plain data."""
        names = [f.name for f in fields(cls)]
        optional = {"notes", "leads"}
        values: dict[str, Any] = {k: data.get(k) for k in names if k not in optional}  # later fields may be absent
        values["premature_beats"] = values["premature_beats"] or 0
        leads = tuple(LeadMeasurements(lead=lead, **v) for lead, v in (data.get("leads") or {}).items())
        return cls(**{**values, "notes": tuple(data.get("notes", ())), "leads": leads})

    def to_dict(self) -> dict:
        """Plain data for JSON: values rounded to 0.1 (the RR irregularity, a ratio, to 0.001), the normal ranges
        and what lies outside them."""
        values = {  # ratios to 0.001, the rest to 0.1
            k: (round(v, 3 if k == "rr_irregularity" else 1) if isinstance(v, float) else v)
            for k, v in asdict(self).items()
            if k != "leads"
        }
        return {
            **values,
            "leads": {lead.lead: lead.to_dict() for lead in self.leads},
            "notes": list(self.notes),
            "outside_normal": list(self.outside_normal()),
            "normal_ranges": {k: list(v) for k, v in self.normal_ranges().items()},
            "qtc_limit": self.qtc_limit(),
            "qtc_formulas": QTC_FORMULAS,
            "axis_categories": {name: [low, high] for name, low, high in AXIS_CATEGORIES},
            "axis_source": AXIS_SOURCE,
        }


def _beats(marks: WaveMarks) -> np.ndarray:
    """The record's beats: the QRS peaks of the usable lead with the most QRS complexes."""
    leads = marks.usable()
    if not leads:
        return np.zeros(0, np.int64)
    best = max(leads, key=lambda lead: len(lead.of("QRS")))
    peaks = best.of("QRS")[:, 1]
    return np.sort(peaks[peaks >= 0])


def _global(values: list[int], earliest: bool, rate: float) -> float | None:
    """The earliest (or latest) of the leads' boundaries within `OUTLIER_S` of their median."""
    if not values:
        return None
    array = np.asarray(values, np.float64)
    middle = float(np.median(array))
    kept = array[np.abs(array - middle) <= OUTLIER_S * rate]
    if not kept.size:  # the leads split into two groups far apart: no lead is the outlier, take their median
        return middle
    return float(kept.min() if earliest else kept.max())


def _beat_of(kind: str, position: float, peaks: np.ndarray) -> int:
    """The beat a wave belongs to: a P wave to the next R peak, a T wave to the previous one, a QRS to the
    nearest (-1 when there is none)."""
    if kind == "P":
        index = int(np.searchsorted(peaks, position, side="left"))
        return index if index < len(peaks) else -1
    if kind == "T":
        return int(np.searchsorted(peaks, position, side="right")) - 1
    return int(np.argmin(np.abs(peaks - position)))


def global_boundaries(marks: WaveMarks) -> list[dict[str, float | None]]:
    """Per beat, the global onset and offset of each wave (sample positions; None where no lead marks it)."""
    peaks = _beats(marks)
    found: list[dict[str, list[int]]] = [{} for _ in peaks]
    for lead in marks.usable() if len(peaks) else ():
        for kind in ("P", "QRS", "T"):
            for row in lead.of(kind):
                anchor = row[1] if row[1] >= 0 else max(row[0], row[2])
                beat = _beat_of(kind, float(anchor), peaks)
                if beat < 0:
                    continue
                for edge, column in (("onset", 0), ("offset", 2)):
                    if row[column] >= 0:
                        found[beat].setdefault(f"{kind} {edge}", []).append(int(row[column]))
    rate = marks.sampling_rate_hz
    return [
        {
            f"{kind} {edge}": _global(beat.get(f"{kind} {edge}", []), edge == "onset", rate)
            for kind in ("P", "QRS", "T")
            for edge in ("onset", "offset")
        }
        for beat in found
    ]


def rr_irregularity(rr: np.ndarray, premature: np.ndarray | None = None) -> float | None:
    """The median absolute change of RR from one beat to the next, over the median RR (None under 3 intervals):
    about 0.02-0.10 in sinus rhythm, above 0.12 in atrial fibrillation (`IRREGULAR_RR`). Occasional premature
    beats (``premature``, a mask over the beats, when under a quarter of them) leave their two intervals out:
    one extrasystole makes a rhythm irregular, not irregularly irregular."""
    if premature is not None and 0 < premature.sum() < len(premature) / 4:
        around = premature[1:] | premature[:-1]  # interval k joins beats k and k + 1: before and after each
        rr = rr[~around]
    if len(rr) < 3:
        return None
    return float(np.median(np.abs(np.diff(rr))) / np.median(rr))


def pr_spread_ms(marks: WaveMarks) -> float | None:
    """How much a record's per-beat PR varies: the median absolute deviation from the median (ms; None without
    two beats with a P wave)."""
    spans = [
        b["QRS onset"] - b["P onset"]
        for b in global_boundaries(marks)
        if b["P onset"] is not None and b["QRS onset"] is not None
    ]
    if len(spans) < 2:
        return None
    values = np.asarray(spans, np.float64)
    return float(np.median(np.abs(values - np.median(values)))) * 1000 / marks.sampling_rate_hz


def conducted_beats(beats: list[dict[str, float | None]], rate: float) -> list[dict[str, float | None]]:
    """The beats whose P wave precedes the QRS at the record's usual PR (within `PR_SPREAD_S` of the median)."""
    with_p, spans = [], []
    for beat in beats:
        onset, qrs = beat["P onset"], beat["QRS onset"]
        if onset is not None and qrs is not None:
            with_p.append(beat)
            spans.append(qrs - onset)
    if not with_p:
        return []
    usual = float(np.median(np.asarray(spans, np.float64)))
    return [b for b, span in zip(with_p, spans, strict=True) if abs(span - usual) <= PR_SPREAD_S * rate]


def _median_ms(beats: list[dict[str, float | None]], start: str, stop: str, rate: float) -> float | None:
    spans = [
        (b - a) * 1000 / rate for beat in beats if (a := beat[start]) is not None and (b := beat[stop]) is not None
    ]
    spans = [s for s in spans if s > 0]
    return float(np.median(spans)) if spans else None


def _axis(signal: np.ndarray | None, marks: WaveMarks, beats: list[dict[str, float | None]], kind: str) -> float | None:
    """The frontal-plane axis of a wave (degrees) by the hexaxial formula: the wave's net area in lead I (0 deg)
    and aVF (+90 deg, its lead vector `AVF_LENGTH` of lead I's), over each beat's global window (`global_boundaries`:
    every lead measured between the same onset and offset), above the lead's level at that onset; the mean over
    beats. aVF is derived as II - I/2 where the record lacks it."""
    if signal is None or "I" not in marks.lead_names:
        return None
    names = marks.lead_names
    lead_i = signal[names.index("I")]
    if "aVF" in names:
        lead_avf = signal[names.index("aVF")]
    elif "II" in names:
        lead_avf = signal[names.index("II")] - lead_i / 2
    else:
        return None
    areas = []
    for beat in beats:
        onset, offset = beat[f"{kind} onset"], beat[f"{kind} offset"]
        if onset is None or offset is None or offset <= onset:
            continue
        a, b = round(onset), round(offset)
        if a < 0 or b >= signal.shape[1]:
            continue
        areas.append([float(np.sum(trace[a : b + 1] - trace[a])) for trace in (lead_i, lead_avf)])
    if not areas:
        return None
    x, y_scaled = np.mean(areas, axis=0)
    if x == 0 and y_scaled == 0:
        return None
    return float(math.degrees(math.atan2(y_scaled / AVF_LENGTH, x)))


def axis_category(degrees: float | None) -> str | None:
    """The QRS axis category (`AXIS_CATEGORIES`, after AHA/ACCF/HRS 2009) of an axis in (-180, 180] degrees:
    normal -30 to +90, left axis deviation -30 (excluded) to -90, right +90 (excluded) to 180, extreme the rest."""
    if degrees is None:
        return None
    if -30.0 <= degrees <= 90.0:
        return "normal"
    if -90.0 <= degrees < -30.0:
        return "left axis deviation"
    if degrees > 90.0:
        return "right axis deviation"
    return "extreme axis deviation"


QTC_SOURCE = (
    "Rautaharju PM et al. AHA/ACCF/HRS recommendations part IV: the ST segment, T and U waves, and the QT "
    "interval, Circulation 2009;119:e241-e250"
)
BAZETT_RATES_BPM = (50.0, 100.0)
"""Outside these rates Bazett's QTc under-corrects (below) or over-corrects (above) (Rautaharju et al. 2009)."""
QTC_CAVEAT = "QTc "
"""How a QTc caveat begins (`Measurements.line` shows every one of them, not only the first note)."""
WIDE_QRS_QT_MS = 120.0
"""From this QRS duration on, the conduction delay lengthens the QT (Rautaharju et al. 2009 advise the JT interval
or a QT adjusted for the QRS duration)."""


def qtc_caveats(qrs_ms: float | None, rate_bpm: float | None, qt_ms: float | None, rr_s: float | None) -> list[str]:
    """What a reader must know before reading a QTc as long or short: a wide QRS lengthens the QT, and Bazett's
    formula over-corrects at fast rates and under-corrects at slow ones (Rautaharju et al. 2009); each note names
    Fridericia's QTc beside it."""
    if qt_ms is None or not rr_s:
        return []
    notes = []
    if qrs_ms is not None and qrs_ms >= WIDE_QRS_QT_MS:
        notes.append(
            f"{QTC_CAVEAT}on a QRS of {qrs_ms:.0f} ms: the wide QRS lengthens the QT (JT {qt_ms - qrs_ms:.0f} ms; "
            "Rautaharju et al. 2009)"
        )
    low, high = BAZETT_RATES_BPM
    if rate_bpm is not None and not low <= rate_bpm <= high:
        direction = "over-corrects above" if rate_bpm > high else "under-corrects below"
        limit = high if rate_bpm > high else low
        notes.append(
            f"{QTC_CAVEAT}Bazett {direction} {limit:.0f} bpm: Fridericia {qtc_fridericia(qt_ms, rr_s):.0f} ms "
            "(Rautaharju et al. 2009)"
        )
    return notes


def measure(marks: WaveMarks, signal: np.ndarray | None = None, sex: str | None = None) -> Measurements:
    """The global measurements of a record from its wave marks (and its signal, leads in the marks' order, for
    the axes; its sex, ``male`` or ``female``, for the QTc limit). A record without P waves (atrial
    fibrillation, flutter) gets no PR interval and no P axis."""
    rate = marks.sampling_rate_hz
    every = global_boundaries(marks)
    peaks = _beats(marks)
    rr = np.diff(peaks) / rate
    rr_s = float(np.median(rr)) if len(rr) else None
    notes = []
    dominant, premature = dominant_beats(peaks, every, rate)
    beats = [b for b, keep in zip(every, dominant, strict=True) if keep] or every  # intervals of dominant beats
    conducted = conducted_beats(every, rate)  # every beat: an irregular rhythm's early beats count too
    with_p = bool(conducted) and len(conducted) >= CONDUCTED_SHARE * len(every)
    # premature beats presume an underlying rhythm with P waves; without them (atrial fibrillation) the short RRs
    # are the rhythm itself and are kept
    irregularity = rr_irregularity(rr, premature if with_p else None)
    if not with_p:
        notes.append(f"{NO_P_WAVES} ({len(conducted)} of {len(every)} beats): no PR interval or P axis {NO_P_CAUSES}")
        conducted = []
    elif irregularity is not None and irregularity > IRREGULAR_RR:
        notes.append(
            f"{IRREGULAR_PR} (RR changes by {100 * irregularity:.0f} % from beat to beat; P waves at a constant PR "
            f"before {len(conducted)} of {len(every)} beats): no PR interval or P axis (atrial fibrillation with "
            "P-like waves, or frequent premature beats?)"
        )
        conducted = []
    kept = [b for b in conducted if any(b is d for d in beats)] or conducted  # the dominant ones where any
    pr = _median_ms(kept, "P onset", "QRS onset", rate) if kept else None
    qt = _median_ms(beats, "QRS onset", "T offset", rate)
    unusable = [f"{lead.lead}: {lead.status}" for lead in marks.leads if lead.status != "ok"]
    qrs_axis = _axis(signal, marks, beats, "QRS")
    qrs = _median_ms(beats, "QRS onset", "QRS offset", rate)
    notes += qtc_caveats(qrs, 60 / rr_s if rr_s else None, qt, rr_s)
    if premature.any():
        notes.append(f"{int(premature.sum())} premature or differently conducted beat(s) left out of the intervals")
    notes += unusable
    resolution = resolution_note(rate)
    notes += [resolution] if resolution is not None else []
    beat = representative_beat(signal, marks, peaks, every) if signal is not None and len(peaks) else None
    return Measurements(
        heart_rate_bpm=60 / rr_s if rr_s else None,
        rr_sd_ms=float(np.std(rr, ddof=1) * 1000) if len(rr) > 1 else None,
        pr_ms=pr,
        qrs_ms=qrs,
        qt_ms=qt,
        qtc_bazett_ms=qtc_bazett(qt, rr_s) if qt and rr_s else None,
        qtc_fridericia_ms=qtc_fridericia(qt, rr_s) if qt and rr_s else None,
        p_axis_deg=_axis(signal, marks, beats, "P") if pr is not None else None,
        qrs_axis_deg=qrs_axis,
        t_axis_deg=_axis(signal, marks, beats, "T"),
        n_beats=len(every),
        source=marks.source,
        notes=tuple(notes),
        qrs_axis_category=axis_category(qrs_axis),
        sex=sex if sex in QTC_UPPER else None,
        premature_beats=int(premature.sum()),
        rr_irregularity=irregularity,
        leads=() if beat is None else lead_measurements(beat, marks.lead_names),
    )
