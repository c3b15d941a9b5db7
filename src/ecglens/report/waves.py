"""Explanations among the waves, rendered: each figure with the waves shaded faintly beneath the explanation,
``waves.json`` and ``waves.csv`` (per record, class and method: the segment shares, plausibility and chance,
and the record's measurements), ``plausibility.csv`` (per class and method, over records) and ``waves.html``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from ecglens.bundle.meta import BundleMeta
from ecglens.explain.waves import PlausibilityRow, WaveExplanation
from ecglens.report.figures import DEFAULT_FIGURES, FigureOptions, explanation_figure, save_figure
from ecglens.report.html import figure_from_png, number, page, strict_json, table_to_html
from ecglens.report.paths import safe_name
from ecglens.util.atomic import atomic_open, write_json, write_text
from ecglens.waves.segments import SEGMENTS, expected_evidence

WAVES_NOTE = (
    "Each explanation's positive evidence is divided among the segments of the record's waves: P, the PR segment, "
    "QRS, the ST segment, T and the rest (TP baseline); samples outside the span the waves cover are left out. "
    "The time share is the fraction of the covered samples a segment takes, so a share above it (lift above 1) "
    "means the method concentrates there. Plausibility is the share of evidence in the segments and leads a "
    "cardiologist reads for the class (the expected-evidence table, each row with its source), beside its chance "
    "level: the share a map spread evenly over time would put there. Grad-CAM, one value per time step, is placed "
    "among the global waves (the same on every lead); SHAP and guided Grad-CAM among each lead's own."
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
) -> tuple[Path, ...]:
    """Every output of ``explain waves`` into ``out``; returns the HTML report first."""
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for item in explained:
        e = item.explanation
        name = f"{safe_name(e.input.record_id)}_{e.class_name}_{e.method}_waves.{options.image_format}"
        figures.append(save_figure(explanation_figure(e, meta, options, waves=item.labels), out / name))
    rows = [_row(item) for item in explained]
    with atomic_open(out / "waves.csv", newline="") as handle:
        pd.DataFrame(rows).to_csv(handle, index=False)
    summary = [
        {
            "class": r.class_name,
            "method": r.method,
            "n": r.n,
            "plausibility": r.plausibility,
            "interval": r.interval,
            "chance": r.chance,
            **{f"share_{k}": v for k, v in r.shares.items()},
        }
        for r in table
    ]
    with atomic_open(out / "plausibility.csv", newline="") as handle:
        pd.DataFrame(summary).to_csv(handle, index=False)
    records = [
        {
            **item.shares.to_dict(),
            "record_id": item.explanation.input.record_id,
            "waves": item.marks.source,
            "measurements": item.measurements.to_dict(),
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
    population = table_to_html(
        ["class", "method", "explanations", "plausibility [95 % CI]", "chance", *SEGMENTS],
        [
            [
                r.class_name,
                r.method,
                r.n,
                f"{number(r.plausibility, 2)}"
                + ("" if r.interval is None else f" [{r.interval[0]:.2f}, {r.interval[1]:.2f}]"),
                number(r.chance, 2),
                *(f"{r.shares[s]:.2f}" for s in SEGMENTS),
            ]
            for r in table
        ],
    )
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
    """The figure of each class and method's most probable record (a page with every figure would not open)."""
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
        + figure_from_png(path, item.explanation.input.record_id)
        for item, path in best.values()
        if path.suffix == ".png"
    ]
    return Markup("").join(shown) or Markup("<p>figures as SVG files beside this page</p>")
