"""Explanations among the waves, rendered: each figure with the waves shaded faintly beneath the explanation,
``waves.json`` and ``waves.csv`` (per record, class and method: the segment shares, plausibility and chance,
and the record's measurements), ``plausibility.csv`` (per class and method, over records) and ``waves.html``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from ecglens.bundle.meta import BundleMeta
from ecglens.explain.waves import (
    NULLS,
    NullComparison,
    PlausibilityRow,
    WaveExplanation,
    WavesSummary,
    difference_text,
)
from ecglens.report.figures import DEFAULT_FIGURES, FIGURE_DPI, FigureOptions, explanation_figure, save_figure
from ecglens.report.html import figure_beside_page, number, page, strict_json, table_to_html
from ecglens.report.paths import safe_name
from ecglens.util.atomic import atomic_open, write_json, write_text
from ecglens.waves.measure import NORMAL_RANGES, QTC_FORMULAS, Measurements, shown_value
from ecglens.waves.segments import SEGMENTS, expected_evidence

WAVES_NOTE = (
    "Each explanation's positive evidence is divided among the segments of the record's waves: P, the PR segment, "
    "QRS, the ST segment, T and the rest (TP baseline); samples outside the span the waves cover are left out. "
    "The time share is the fraction of the covered samples a segment takes, so a share above it (lift above 1) "
    "means the method concentrates there. Plausibility is the share of evidence in the segments and leads a "
    "cardiologist reads for the class (the expected-evidence table, each row with its source), beside its chance "
    "level: the share a map spread evenly over time would put there. Grad-CAM, one value per time step, is placed "
    "among the global waves (the same on every lead); SHAP and guided Grad-CAM among each lead's own. A map with "
    "no positive evidence among the waves (a Grad-CAM the ReLU cut to zero) is counted apart and left out of the "
    "means. Chance is a weak null: any map that follows the QRS complexes beats it for a QRS class. So each "
    "explanation is also compared, record by record, with maps that know no class: the ECG's own slope (edge, "
    "|dx/dt|), its amplitude (|x - the lead's median|), and the same method on the network with its weights re-drawn "
    "(random model; Adebayo et al., NeurIPS 2018); for Grad-CAM the signal maps are first averaged to its layer's "
    "resolution, so they hold no finer detail than Grad-CAM can. 'minus edge' is the mean paired difference over "
    "n pairs, its 95 % bootstrap interval from 10 pairs on (fewer undercover), and the two-sided p-value of a "
    "paired sign-flip permutation test (exact up to 16 pairs; 5 pairs can never reach 0.05): a method shows class "
    "knowledge where a cardiologist looks only where it is above every null at p < 0.05 ('-': the null map had "
    "no positive evidence, so there is no pair). Pointing: the share of maps whose "
    "largest value lies where a cardiologist looks (the pointing game; a per-time map such as Grad-CAM repeats its "
    "largest value on every lead, so it is not comparable with the lead-resolved methods')."
)


def _row(item: WaveExplanation) -> dict:
    e, s = item.explanation, item.shares
    return {
        "record_id": e.input.record_id,
        "class": e.class_name,
        "method": e.method,
        "probability": round(e.probability, 4),
        "plausibility": s.plausibility,
        "chance": s.chance,
        "pointing": s.pointing,
        **{f"{n.method}_plausibility": n.plausibility for n in item.nulls},
        **{f"share_{seg}": s.shares[seg] for seg in SEGMENTS},
        **{f"time_{seg}": s.time_shares[seg] for seg in SEGMENTS},
        "waves": item.marks.source,
        **{
            f"measured_{k}": v
            for k, v in item.measurements.to_dict().items()
            if k not in ("normal_ranges", "qtc_formulas", "notes", "outside_normal", "source")
        },
    }


def write_waves(
    explained: Sequence[WaveExplanation],
    table: Sequence[PlausibilityRow],
    meta: BundleMeta,
    out: Path,
    options: FigureOptions = DEFAULT_FIGURES,
    dpi: int = FIGURE_DPI,
) -> tuple[Path, ...]:
    """Every output of ``explain waves`` into ``out``; returns the HTML report first (PNGs at ``dpi``)."""
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for item in explained:
        e = item.explanation
        name = f"{safe_name(e.input.record_id)}_{e.class_name}_{e.method}_waves.{options.image_format}"
        figures.append(save_figure(explanation_figure(e, meta, options, waves=item.labels), out / name, dpi))
    rows = [_row(item) for item in explained]
    with atomic_open(out / "waves.csv", newline="") as handle:
        pd.DataFrame(rows).to_csv(handle, index=False)
    summary = [row.to_dict() for row in table]
    with atomic_open(out / "plausibility.csv", newline="") as handle:
        pd.DataFrame(summary).to_csv(handle, index=False)
    records = [
        {
            **item.shares.to_dict(),
            "record_id": item.explanation.input.record_id,
            "waves": item.marks.source,
            "measurements": item.measurements.to_dict(),
            **{f"{n.method}_plausibility": n.plausibility for n in item.nulls},
            **{f"{n.method}_pointing": n.pointing for n in item.nulls},
        }
        for item in explained
    ]
    json_path = write_json(out / "waves.json", strict_json({"records": records, "plausibility": summary}))
    html = write_text(
        out / "waves.html", page("ecglens: explanations among the waves", _sections(explained, table, figures))
    )
    return (html, json_path, out / "waves.csv", out / "plausibility.csv", *figures)


def _sections(
    explained: Sequence[WaveExplanation], table: Sequence[PlausibilityRow], figures: Sequence[Path]
) -> list[tuple[str, Markup]]:
    population = plausibility_html(table)
    expected = table_to_html(
        ["class", "segments", "leads", "what a cardiologist looks at", "source"],
        [
            [e.class_name, ", ".join(e.segments), ", ".join(e.leads) or "all", e.description, e.source]
            for e in expected_evidence().values()
        ],
    )
    rows = [
        [
            item.explanation.input.record_id,
            item.explanation.class_name,
            item.explanation.method,
            round(item.explanation.probability, 2),
            number(item.shares.plausibility, 2),
            number(item.shares.chance, 2),
            item.marks.source,
            path.name,
        ]
        for item, path in zip(explained, figures, strict=True)
    ]
    records = Markup(
        "<p class='note'>Every figure is a file beside this page; the page shows one per class and method (its "
        "most probable record).</p>"
    ) + table_to_html(["record", "class", "method", "probability", "plausibility", "chance", "waves", "figure"], rows)
    return [
        ("Plausibility per class and method", Markup("<p class='note'>{}</p>").format(WAVES_NOTE) + population),
        ("Where a cardiologist looks (expected evidence)", expected),
        ("One example per class and method", _examples(explained, figures)),
        ("Each record", records),
    ]


def _examples(explained: Sequence[WaveExplanation], figures: Sequence[Path]) -> Markup:
    """The figure of each class and method's most probable record (a page with every figure would not open),
    linked from beside the page rather than embedded: the demo's page was 6 MB of copies of its own files."""
    best: dict[tuple[str, str], tuple[WaveExplanation, Path]] = {}
    for item, path in zip(explained, figures, strict=True):
        key = (item.explanation.class_name, item.explanation.method)
        if key not in best or item.explanation.probability > best[key][0].explanation.probability:
            best[key] = (item, path)
    shown = [
        Markup("<p>{} for {} ({}, p = {:.2f}): plausibility {} (chance {}); waves: {}</p>").format(
            item.explanation.input.record_id,
            item.explanation.class_name,
            item.explanation.method,
            item.explanation.probability,
            number(item.shares.plausibility, 2),
            number(item.shares.chance, 2),
            item.marks.source,
        )
        + figure_beside_page(path, item.explanation.input.record_id)
        for item, path in best.values()
        if path.suffix == ".png"
    ]
    return Markup("").join(shown) or Markup("<p>figures as SVG files beside this page</p>")


def _difference(comparison: NullComparison | None) -> str:
    """``-0.21 [-0.25, -0.17] n 14, p 0.001`` (``-`` when not compared)."""
    if comparison is None or comparison.difference is None:
        return "-"
    return difference_text(comparison)


def plausibility_html(table: Sequence[PlausibilityRow]) -> Markup:
    """Per class and method: explanations, mean plausibility with its interval, chance, the pointing-game hit rate,
    the paired difference from each null map, and the segment profile."""
    nulls = [null for null in NULLS if any(r.null(null) is not None for r in table)]
    return table_to_html(
        ["class", "method", "explanations", "plausibility [95 % CI]", "chance", "pointing"]
        + [f"minus {null} [95 % CI], pairs, p" for null in nulls]
        + list(SEGMENTS),
        [
            [
                r.class_name,
                r.method,
                r.n if not r.n_without_evidence else f"{r.n} ({r.n_without_evidence} without evidence)",
                f"{number(r.plausibility, 2)}"
                + ("" if r.interval is None else f" [{r.interval[0]:.2f}, {r.interval[1]:.2f}]"),
                number(r.chance, 2),
                number(r.pointing, 2),
                *(_difference(r.null(null)) for null in nulls),
                *(number(None if r.shares is None else r.shares[s], 2) for s in SEGMENTS),
            ]
            for r in table
        ],
    )


MEASURED = (
    ("HR (bpm)", "heart_rate_bpm"),
    ("RR SD (ms)", "rr_sd_ms"),
    ("PR (ms)", "pr_ms"),
    ("QRS (ms)", "qrs_ms"),
    ("QT (ms)", "qt_ms"),
    ("QTc Bazett (ms)", "qtc_bazett_ms"),
    ("QTc Fridericia (ms)", "qtc_fridericia_ms"),
    ("P axis", "p_axis_deg"),
    ("QRS axis", "qrs_axis_deg"),
    ("T axis", "t_axis_deg"),
)
"""The measurement columns of a report's table: heading and `Measurements` field."""


def measurements_html(measured: Sequence[tuple[str, Measurements]]) -> Markup:
    """Each record's measurements, a value outside its normal range in bold, with the ranges and formulas."""
    rows = []
    for record_id, m in measured:
        values = m.to_dict()
        outside = set(m.outside_normal())
        cells: list = [record_id]
        for _, name in MEASURED:
            text = shown_value(values[name], name)
            cells.append(Markup("<b>{}</b>").format(text) if name in outside else text)
        rows.append([*cells, "; ".join(m.notes)])
    headings = {name: heading for heading, name in MEASURED}
    ranges = ", ".join(
        f"{headings[name]} {low:g} to {high:g}" + (" (men; women 460)" if name.startswith("qtc_") else "")
        for name, (low, high) in NORMAL_RANGES.items()
    )
    formulas = "; ".join(f"{k.capitalize()}: {v}" for k, v in QTC_FORMULAS.items())
    return Markup("<p class='note'>Bold: outside the adult normal range ({}). QTc {}.</p>").format(
        ranges, formulas
    ) + table_to_html(["record", *(heading for heading, _ in MEASURED), "notes"], rows)


def waves_section(summary: WavesSummary, relative_to: Path) -> Markup:
    """A study report's section: the plausibility per class and method, each explained record's measurements,
    and a link to the page with every figure (relative to the report's folder ``relative_to``)."""
    if summary.unavailable is not None:
        return Markup("<p>Not computed: {}</p>").format(summary.unavailable)
    link = Markup("")
    if summary.page is not None:
        href = Path(os.path.relpath(summary.page, relative_to)).as_posix()
        link = Markup("<p>Every figure, record and segment share: <a href='{}'>{}</a>.</p>").format(href, href)
    intro = Markup("<p class='note'>{} on {} test records ({}), waves from {}. {}</p>").format(
        summary.model, summary.n_records, ", ".join(summary.methods), summary.waves_source, WAVES_NOTE
    )
    return (
        intro
        + plausibility_html(summary.table)
        + Markup("<h3>Measurements of the explained records</h3>")
        + measurements_html(summary.measurements)
        + link
    )
