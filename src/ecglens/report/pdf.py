"""The one-page report of a record (``predict --report pdf``): an A4 landscape page a clinician could file.

Top: the record, the model and the notice (research use only). Then three columns: every class with its
probability, threshold and decision (classes the model cannot know are marked and never decided), its guideline
criteria beside it and, in red, where the two disagree (`ecglens.criteria`); the
measurements of the delineated waves against their normal ranges; the file's own statement, apart from
ecglens's, with the format and any derived leads. Below, the recording at its own rate over the span the model
scored (display-filtered, zero-phase 0.5-150 Hz, as a cart prints; `page_trace`) on paper at true
scale (25 mm/s, 10 mm/mV whenever the deflections fit) in the standard 3x4 layout with a lead II rhythm strip,
each row opening with its 1-mV calibration pulse, and the chosen explanation drawn over it at the same times.
Personal data appears only when the record carries it (``--include-identifiers``). Rendered by matplotlib's PDF
backend; every text is plain text
(`ecglens.report.text.page_text`: no mathtext, no format characters) and a file's statements are clipped to their
column, so no file can make the page fail or draw over the ECG.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text

from ecglens.bundle.meta import BundleMeta
from ecglens.criteria import disputed
from ecglens.explain.records import RecordExplanation
from ecglens.io.record import ReadIssue
from ecglens.leads import LeadError, lead_order
from ecglens.predict import Prediction, Scored
from ecglens.preprocess import DISPLAY_BAND_HZ, display_filter
from ecglens.report.ecgpaper import (
    MAX_HALF_MV,
    MIN_HALF_MV,
    STYLES,
    TIGHT_HALF_MV,
    PaperLayout,
    draw_ecg,
    paper_axes,
    paper_layout,
)
from ecglens.report.figures import ATTRIBUTION_LABELS, gradcam_band
from ecglens.report.text import clip_to, page_lines, page_text
from ecglens.util.atomic import atomic_open
from ecglens.waves.measure import page_note, shown_value

NOTICE = "RESEARCH USE ONLY: not for clinical decisions"
PAGE_MM = (297.0, 210.0)
"""A4 landscape."""
TOP_MM = 186.0
"""Where the three columns start (their headings), below the header."""
ROW_MM = 3.1
"""One class's or one measurement's row (7 pt, set solid), leaving the notes and flags under them room."""
NOTE_SIZES = (6, 5.5, 5)
FLAG_CHARS = 2000
"""A flag, warning or note longer than this is cut (a file's statement is cut at 300: these are ecglens's own)."""
"""Font sizes, largest first, tried until the flags (or a measurement's notes) fit their column whole."""
ECG_BOTTOM_MM = 12.0
"""The ECG's bottom edge: its caption below it, its top wherever its rows end (at most `ECG_TOP_MM`), the columns
above it reaching down to it (`_above`)."""
ECG_TOP_MM = 141.0
STATEMENT_BOX_MM = (194.0, ECG_TOP_MM + 2.0, PAGE_MM[0] - 3.0, TOP_MM - 4.5)
"""The file's statement column (left, bottom, right, top): nothing of it is drawn outside."""
DECISION_BOX_MM = (9.0, ECG_TOP_MM + 1.0, 97.0, TOP_MM + 3.0)
MEASUREMENT_BOX_MM = (99.0, ECG_TOP_MM + 1.0, 192.0, TOP_MM + 3.0)
"""The decisions' and the measurements' columns above the tallest ECG: nothing drawn in one reaches the next column
or the ECG (a shorter ECG leaves them more room, `_above`)."""
LINE_MM = {5: 2.12, 5.5: 2.34, 6: 2.55, 7: 2.97}
"""The height of a line of text at a font size (points), with the page's line spacing."""
STATEMENT_WIDTH = 55
"""Characters per line of the statement column."""
STATEMENT_LINE_MM = 6.5 * 1.35 * 25.4 / 72
"""One line of the statement column (6.5 pt at a line spacing of 1.35)."""
SECONDS_ON_PAGE = 10.0
"""A longer record's page shows its first 10 s, as a 12-lead printout does, and says so."""
MM = 1 / 25.4
_MEASURED = (
    ("HR", "heart_rate_bpm", "bpm"),
    ("PR", "pr_ms", "ms"),
    ("QRS", "qrs_ms", "ms"),
    ("QT", "qt_ms", "ms"),
    ("QTc Bazett", "qtc_bazett_ms", "ms"),
    ("QTc Fridericia", "qtc_fridericia_ms", "ms"),
    ("P axis", "p_axis_deg", "deg"),
    ("QRS axis", "qrs_axis_deg", "deg"),
    ("T axis", "t_axis_deg", "deg"),
)


def record_page(
    scored: Scored, meta: BundleMeta, model: str, explanation: RecordExplanation | None = None, percentile: float = 95.0
) -> Figure:
    """The page of one scored record (``explanation``: of this very input, drawn over the ECG)."""
    width, height = PAGE_MM
    fig = Figure(figsize=(width * MM, height * MM))
    frame = ecg_frame(scored, meta)
    _header(fig, scored, meta, model)
    _decisions(fig, scored, meta, _above(DECISION_BOX_MM, frame.top_mm))
    _measurements(fig, scored, _above(MEASUREMENT_BOX_MM, frame.top_mm))
    _statement(fig, scored, _above(STATEMENT_BOX_MM, frame.top_mm, 2.0))
    _ecg(fig, frame, meta, explanation, percentile)
    return fig


def _above(box: tuple[float, float, float, float], ecg_top_mm: float, gap_mm: float = 1.0):
    """A column's box reaching down to ``gap_mm`` above the ECG's top."""
    return (box[0], ecg_top_mm + gap_mm, box[2], box[3])


def record_pdf(scored: Scored, meta: BundleMeta, model: str, explanation: RecordExplanation | None = None) -> bytes:
    """The record's page as the bytes of a one-page PDF (its metadata: a title with the record id, no author)."""
    fig = record_page(scored, meta, model, explanation)
    buffer = io.BytesIO()
    metadata = {"Title": f"ecglens report: {scored.prediction.record_id}", "Creator": "ecglens", "Author": None}
    fig.savefig(buffer, format="pdf", metadata=metadata)
    return buffer.getvalue()


def write_record_report(
    scored: Scored,
    meta: BundleMeta,
    path: Path,
    model: str,
    explanation: RecordExplanation | None = None,
) -> Path:
    """Write the record's page as a one-page PDF at ``path`` (whole or not at all)."""
    with atomic_open(path, "wb") as handle:
        handle.write(record_pdf(scored, meta, model, explanation))
    return path


def report_failure(error: BaseException) -> str:
    """Why a page could not be drawn, in one line (the library's message, its first line, clipped)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return page_text(f"report not written: {type(error).__name__}" + (f": {message}" if message else ""), 200)


def report_issue(prediction: Prediction, error: BaseException) -> ReadIssue:
    """A predicted record whose page could not be drawn, as its named issue (a row of ``issues.csv``)."""
    return ReadIssue(prediction.source or prediction.record_id, report_failure(error))


def model_label(bundle: str | Path, meta: BundleMeta) -> str:
    """How a report names its model: the starter's name, or the bundle folder's, with the architecture and the
    ecglens version that trained it."""
    from ecglens.bundle.meta import starter_manifest, starter_path

    version = meta.versions.get("ecglens", "?")
    if Path(bundle).resolve() == starter_path().resolve():
        return f"{starter_manifest().name} ({meta.model.name}), ecglens {version}"
    return f"{meta.model.name} bundle {Path(bundle).name}, ecglens {version}"


def _text(fig: Figure, x_mm: float, y_mm: float, text: str, **kwargs) -> Text:
    """Plain text placed in page millimetres from the bottom left (never mathtext; each line made drawable by
    `page_text`)."""
    width, height = PAGE_MM
    kwargs.setdefault("fontsize", 7)
    kwargs.setdefault("va", "top")
    shown = "\n".join(page_text(line) for line in str(text).split("\n"))
    return fig.text(x_mm / width, y_mm / height, shown, parse_math=False, **kwargs)


def _fitted(
    items: list[str],
    x_mm: float,
    y_mm: float,
    box: tuple[float, float, float, float],
    sizes: tuple[float, ...],
    bold: bool,
) -> tuple[float, list[str], bool]:
    """The first font size of ``sizes`` at which ``items``, wrapped to the column ``box``, fit whole below
    ``y_mm``, their lines, and True; else the last size, the lines cut to the room ("... N more"), and False."""
    for size in sizes:
        line_mm = LINE_MM.get(size, size * 0.41)
        width = int((box[2] - x_mm) / (size * (0.215 if bold else 0.19)))  # an average glyph's width
        room = max(int((y_mm - box[1]) / line_mm), 1)
        whole = page_lines(items, width, len(items) * 64, FLAG_CHARS)
        if len(whole) <= room or size == sizes[-1]:
            return size, page_lines(items, width, room, FLAG_CHARS), len(whole) <= room
    raise ValueError("no font size given")


def _block(
    fig: Figure,
    x_mm: float,
    y_mm: float,
    items: list[str],
    box: tuple[float, float, float, float],
    sizes: tuple[float, ...] | None = None,
    **kwargs,
) -> float:
    """``items`` wrapped to the column ``box`` at the first of ``sizes`` that holds them whole below ``y_mm`` (else
    at the last, cut to the lines it holds: "... N more"), drawn clipped to it; returns the height used (mm)."""
    sizes = sizes or (kwargs.pop("fontsize", 6),)
    size, lines, _ = _fitted(items, x_mm, y_mm, box, sizes, kwargs.get("weight") == "bold")
    if not lines:
        return 0.0
    clip_to(fig, _text(fig, x_mm, y_mm, "\n".join(lines), fontsize=size, **kwargs), box, PAGE_MM)
    return LINE_MM.get(size, size * 0.41) * len(lines)


def _header(fig: Figure, scored: Scored, meta: BundleMeta, model: str) -> None:
    p, record = scored.prediction, scored.record
    read = "" if record is None else f"read at {record.sampling_rate_hz:g} Hz, "
    _text(fig, 10, 205, f"ecglens report: {page_text(p.record_id, 80)}", fontsize=11, weight="bold")
    _text(fig, 287, 205, NOTICE, fontsize=9, weight="bold", color="#b00000", ha="right")
    identity = ""
    if p.identifiers:
        identity = "; ".join(
            f"{k}: {page_text(v, 60)}"
            for k, v in p.identifiers.items()
            if k in ("patient name", "patient id", "birth date", "acquired")
        )
    lines = [
        f"{p.duration_s:.1f} s, {read}scored at {meta.sampling_rate_hz:g} Hz"
        + (
            f"; {identity}" if identity else "; personal data left out (ecglens predict --include-identifiers keeps it)"
        ),
        f"model: {model}; thresholds: {meta.threshold_origin.describe()}",
    ]
    _text(fig, 10, 199.5, "\n".join(textwrap.fill(line, 200) for line in lines), fontsize=6.5, linespacing=1.4)


def _decisions(fig: Figure, scored: Scored, meta: BundleMeta, box: tuple[float, float, float, float]) -> None:
    """Every class's probability, threshold and decision, its guideline criteria beside it (met, not met, n/a:
    not assessable), and under them, in red, where the decisions and the criteria disagree."""
    p = scored.prediction
    rule = p.decision_rule.split(" ")[0]
    heading = "Decisions" if rule == "model" else f"Decisions ({rule} rule)"
    _text(fig, 10, TOP_MM, heading, fontsize=8, weight="bold")
    _text(fig, 50, TOP_MM - 0.9, "the model's probability / threshold", fontsize=5.5, color="#555555")
    if p.status != "ok":
        _block(fig, 10, TOP_MM - 5, [f"{p.status}: {reason}" for reason in p.reasons], box, color="#b00000")
        return
    if p.criteria is not None:
        _text(fig, 86, TOP_MM - 3.0, "criteria", fontsize=5, color="#555555")
    contested = disputed(p.decisions, p.criteria)
    for row, (name, threshold) in enumerate(zip(meta.class_names, meta.thresholds, strict=True)):
        probability = p.probabilities.get(name)
        decided = name in p.decisions
        by = p.decided_by.get(name, "model")
        if decided:
            fused = p.fused_probabilities.get(name) if by == "fused" else None
            label = by if fused is None else f"fused {fused:.2f}"
            verdict, colour = ("DECIDED" if by == "model" else f"DECIDED ({label})"), "black"
        elif name in p.not_validated:
            never = rule == "model"  # under the fused and criteria rules its criteria decide it
            verdict, colour = ("not validated: never decided" if never else "no (by criteria)"), "#777777"
        elif rule != "model" and name in (p.model_decisions or ()):
            verdict, colour = f"no ({rule}; model: yes)", "black"  # the model alone would have decided it
        else:
            verdict, colour = "no", "black"
        if decided and name in contested:
            verdict, colour = "DECIDED (disputed)", "#b00000"
        shown = "n/a" if probability is None else f"{probability:.2f}"
        y = TOP_MM - 5 - ROW_MM * row
        _text(fig, 10, y, name, fontsize=7, weight="bold" if decided else "normal", color=colour)
        _text(fig, 24, y, f"{shown} / {threshold:.2f}", fontsize=7, color=colour, family="monospace")
        _text(fig, 46, y, verdict, fontsize=7, weight="bold" if decided else "normal", color=colour)
        if p.criteria is not None and name in {c.class_name for c in p.criteria.classes}:
            status = p.criteria.of(name).status
            met = status == "met"
            _text(
                fig,
                84,
                y,
                {"not assessable": "n/a"}.get(status, status),
                fontsize=6,
                weight="bold" if met else "normal",
            )
    y = TOP_MM - 5 - ROW_MM * len(meta.class_names)
    flags = [f"criteria disagree: {flag}" for flag in p.disagreements]
    warnings = ["warnings: " + "; ".join(p.warnings)] if p.warnings else []
    if not flags and p.criteria is None:
        unevaluated = ["criteria not evaluated (ecglens predict --measurements)"]
        y -= _block(fig, 10, y, unevaluated, box, color="#777777")
    if flags or warnings:  # flags first: a disputed decision is never shown without its flag; one block, so a cut
        _block(fig, 10, y, [*flags, *warnings], box, NOTE_SIZES, color="#b00000", weight="bold")  # says "... N more"


def _measurements(fig: Figure, scored: Scored, box: tuple[float, float, float, float]) -> None:
    m, theirs = scored.prediction.measurements, scored.prediction.file_measurements
    _text(fig, 100, TOP_MM, "Measurements (normal range)", fontsize=8, weight="bold")
    if theirs:
        _text(fig, 176, TOP_MM - 0.3, "the file's", fontsize=7, weight="bold", color="#555555")
    if m is None:
        why = (
            "not measured: the record is not interpretable"
            if scored.prediction.status != "ok"
            else "not measured (ecglens predict --measurements; pip install 'ecglens[waves]')"
        )
        _block(fig, 100, TOP_MM - 5, [why], box, fontsize=7)
    values, outside = ({}, set()) if m is None else (m.to_dict(), set(m.outside_normal()))
    for row, (name, key, unit) in enumerate(_MEASURED):
        y = TOP_MM - 5 - ROW_MM * row
        if key in theirs:
            _text(fig, 176, y, f"{theirs[key]:.0f}", fontsize=7, color="#555555")
        if m is None:
            continue
        value = values[key]
        low_high = m.normal_ranges().get(key)
        normal = "" if low_high is None else f"({low_high[0]:g} to {low_high[1]:g})"
        flag = "  outside normal" if key in outside else ""
        if key == "qrs_axis_deg" and m.qrs_axis_category not in (None, "normal"):
            flag = f"  {m.qrs_axis_category}"
        text = f"{shown_value(value, key)} {unit} {normal}{flag}" if value is not None else f"n/a {normal}"
        colour = "#b00000" if key in outside else "black"
        _text(fig, 100, y, name, fontsize=7)
        _text(fig, 122, y, text, fontsize=7, color=colour, weight="bold" if flag else "normal")
    if m is not None:  # the record's own notes first, each whole; how it was measured last
        method = (
            "from the delineated waves (U-Net delineator); QTc: Bazett QT/RR^(1/2), Fridericia QT/RR^(1/3), limit "
            f"{m.qtc_limit()}; axis categories after AHA/ACCF/HRS 2009"
        )
        notes = [page_note(note) for note in m.notes]
        y = TOP_MM - 5 - ROW_MM * len(_MEASURED)
        _, _, whole = _fitted([*notes, method], 100, y, box, NOTE_SIZES, bold=False)
        shown = [*notes, method] if whole else notes  # the record's own notes before how it was measured
        _block(fig, 100, y, shown, box, NOTE_SIZES, color="#555555")


def _statement(fig: Figure, scored: Scored, box: tuple[float, float, float, float]) -> None:
    p = scored.prediction
    _text(fig, 195, TOP_MM, "The file's own statement (not ecglens's)", fontsize=8, weight="bold")
    after = []
    if p.file_format:
        after.append(f"read as: {p.file_format}")
    if p.derived_leads:
        after.append(f"leads {', '.join(p.derived_leads)} derived from I and II by the reader")
    if p.true_labels is not None:
        after.append(f"the file's labels, mapped to the classes: {', '.join(p.true_labels) or 'none'}")
    after = page_lines(after, STATEMENT_WIDTH, len(after) * 2, indent="  ")
    room = int((TOP_MM - 5 - box[1]) // STATEMENT_LINE_MM) - len(after)
    lines = page_lines(p.file_statements, STATEMENT_WIDTH, max(room, 1)) or ["none in the file"]
    text = _text(fig, 195, TOP_MM - 5, "\n".join(lines + after), fontsize=6.5, linespacing=1.35)
    clip_to(fig, text, box, PAGE_MM)


def _gain(signal: np.ndarray, rate: float, lead_names: tuple[str, ...]) -> tuple[int, PaperLayout]:
    """The standard 10 mm/mV when the four rows, each sized to its deflections, fit the page's space (with the
    usual room around small traces, else rows drawn closer: only the calibration pulse's height kept); else half
    standard (5 mm/mV, as a cart prints tall voltages); else half standard with the rows capped to fit (clipped
    visibly). Returns the gain and the layout at that gain."""
    space = ECG_TOP_MM - ECG_BOTTOM_MM
    tries = ((10, MAX_HALF_MV, MIN_HALF_MV), (10, MAX_HALF_MV, TIGHT_HALF_MV), (5, 2 * MAX_HALF_MV, MIN_HALF_MV))
    for gain, cap, least in tries:  # the same row height in mm at either gain
        placed = paper_layout(signal, rate, lead_names, "3x4", None, cap, least)
        if -placed.y_low * gain <= space:
            return gain, placed
    return 5, paper_layout(signal, rate, lead_names, "3x4", None, space / 4 / 2 / 5)


@dataclass(frozen=True)
class PageTrace:
    """What the page draws: the signal (the model's leads, in its order), its rate, where the scored input's first
    sample falls in it (s), and the words the caption uses for it."""

    signal: np.ndarray
    rate: float
    input_start_s: float
    what: str

    def at_rate(self, values: np.ndarray, model_rate: float) -> np.ndarray:
        """Per-sample values of the scored input (its last axis at ``model_rate``) on this trace's samples: each
        sample takes the input's at the same time, scaled by the rates' ratio so a sum over a span is kept."""
        values = np.asarray(values)
        times = np.arange(self.signal.shape[1]) / self.rate - self.input_start_s
        index = np.clip(np.round(times * model_rate).astype(int), 0, values.shape[-1] - 1)
        return values[..., index] * (model_rate / self.rate)


def page_trace(scored: Scored, meta: BundleMeta) -> PageTrace:
    """The recording as read, at its own rate, over the span the model scored, display-filtered
    (`ecglens.preprocess.display_filter`, for the page only); the scored input itself when the recording is not at
    hand or lacks one of the model's leads."""
    record, model_rate = scored.record, meta.sampling_rate_hz
    scored_words = f"The scored input ({model_rate:g} Hz, as the model saw it)"
    if record is None:
        return PageTrace(scored.input.signal, model_rate, 0.0, scored_words)
    try:
        rows = lead_order(record.lead_names, meta.lead_names)
    except LeadError:
        return PageTrace(scored.input.signal, model_rate, 0.0, scored_words)
    rate = record.sampling_rate_hz
    signal = np.asarray(record.signal)[rows]
    input_s = scored.input.n_samples / model_rate
    offset = signal.shape[1] / rate - input_s if meta.policy.name == "original" else 0.0  # the input's t = 0
    start = max(0, round(offset * rate))
    low, high = DISPLAY_BAND_HZ[0], min(DISPLAY_BAND_HZ[1], 0.45 * rate)
    what = (
        f"The recording at its own {rate:g} Hz over the span the model scored (at {model_rate:g} Hz), displayed "
        f"through a zero-phase {low:g}-{high:g} Hz filter (within the AHA's 2007 limits: removes baseline "
        "drift, keeps the ST segment): for display only"
    )
    return PageTrace(display_filter(signal[:, start:], rate), rate, offset - start / rate, what)


@dataclass(frozen=True)
class EcgFrame:
    """Where and how the page draws the recording: the trace, its gain (mm/mV), its layout and its top (mm)."""

    trace: PageTrace
    gain: int
    placed: PaperLayout

    @property
    def height_mm(self) -> float:
        return -self.placed.y_low * self.gain

    @property
    def top_mm(self) -> float:
        return ECG_BOTTOM_MM + self.height_mm


def ecg_frame(scored: Scored, meta: BundleMeta) -> EcgFrame:
    """The page's recording (`page_trace`), its first `SECONDS_ON_PAGE` laid out at the largest gain that fits."""
    trace = page_trace(scored, meta)
    signal, rate = trace.signal, trace.rate
    seconds = min(SECONDS_ON_PAGE, signal.shape[1] / rate)
    gain, placed = _gain(signal[:, : round(seconds * rate)], rate, meta.lead_names)
    return EcgFrame(trace, gain, placed)


def _ecg(
    fig: Figure, frame: EcgFrame, meta: BundleMeta, explanation: RecordExplanation | None, percentile: float
) -> None:
    """The recording at true scale, with the explanation over it and a line saying what is drawn."""
    trace, gain, placed = frame.trace, frame.gain, frame.placed
    signal, rate = trace.signal, trace.rate
    width_mm, height_mm = placed.width_s * 25, frame.height_mm
    left, bottom = (PAGE_MM[0] - width_mm) / 2, ECG_BOTTOM_MM  # under the columns; the caption under it
    ax = fig.add_axes((left / PAGE_MM[0], bottom / PAGE_MM[1], width_mm / PAGE_MM[0], height_mm / PAGE_MM[1]))
    paper_axes(ax, placed.width_s, placed.y_low, STYLES["color"], 1 / gain)
    band = segments = None
    shown = "no explanation (ecglens predict --explain METHOD)"
    if explanation is not None and explanation.method == "gradcam":
        band, label = gradcam_band(explanation.values, explanation.class_name, percentile)
        band = None if band is None else trace.at_rate(band, meta.sampling_rate_hz) > 0
        shown = label if band is None else f"shaded: {label}"
    elif explanation is not None:
        segments = trace.at_rate(explanation.values, meta.sampling_rate_hz)
        label = ATTRIBUTION_LABELS.get(explanation.method, explanation.method + " per 40 ms for {cls}")
        shown = f"{label.format(cls=explanation.class_name)}: red towards the class, blue away"
    clipped, _ = draw_ecg(ax, signal, rate, placed, meta.lead_names, STYLES["color"], None, band, segments)
    total = signal.shape[1] / rate
    scale = "10 mm/mV" if gain == 10 else "5 mm/mV (half standard: at 10 mm/mV the deflections would not fit the page)"
    caption = (
        f"{trace.what}; "
        + (f"{placed.seconds:.1f} s" if placed.seconds >= total else f"its first {placed.seconds:g} s of {total:.1f}")
        + f" at 25 mm/s and {scale} on this page (A4, printed at 100 %); 1-mV calibration pulse at the start of each "
        f"row; 3x4 with a lead II rhythm strip. {shown}."
        + (
            f" Traces beyond {placed.max_half:.2g} mV from baseline clipped where marked with triangles."
            if clipped
            else ""
        )
    )
    _text(fig, left, bottom - 1.5, textwrap.fill(caption, 190), fontsize=6, color="#333333")
