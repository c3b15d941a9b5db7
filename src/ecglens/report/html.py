"""Self-contained HTML reports: sections, tables and embedded PNG figures, rendered with autoescaping.

Data never becomes markup: every fragment is `markupsafe.Markup` built from escaped values, and the page
template escapes anything else.
"""

from __future__ import annotations

import base64
import io
import os
import struct
from collections.abc import Sequence

import jinja2
import numpy as np
from markupsafe import Markup
from matplotlib.figure import Figure

from ecglens.metrics import CI_NOTE, FMAX_NOTE, METRICS, EvaluationResult, OutOfScopeTable

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}code,pre{background:#f6f6f6;padding:2px 4px}
section{overflow-x:auto}.note{color:#555;font-size:14px}
caption{text-align:left;font-size:13px;color:#444;padding:4px 0;caption-side:bottom}
tr.flag td{background:#fff4e0}td.flags,th.flags{text-align:left;font-size:12px;color:#8a4b00;max-width:260px}
"""


def _png_img(png: bytes, alt: str) -> Markup:
    """An inline base64 ``<img>`` shown at the figure's physical size (96 CSS px per inch), so ECG paper
    keeps 25 mm/s on a standard display; pages narrower than that scale it down (``max-width``)."""
    width, _ = struct.unpack(">II", png[16:24])  # the IHDR chunk
    dpi = _png_dpi(png)
    data = base64.b64encode(png).decode()
    if dpi:
        return Markup('<img alt="{}" width="{}" src="data:image/png;base64,{}">').format(
            alt, round(width * 96 / dpi), data
        )
    return Markup('<img alt="{}" src="data:image/png;base64,{}">').format(alt, data)


def figure_beside_page(path, alt: str) -> Markup:
    """A PNG file in the page's own folder as an ``<img>`` that links it by name, at its physical size like
    `figure_from_png` (the page stays small; it shows the figure while the folder stays together)."""
    with open(path, "rb") as handle:
        png = handle.read(4096)  # the header chunks: IHDR, and pHYs before the image data
    width, _ = struct.unpack(">II", png[16:24])
    dpi = _png_dpi(png)
    name = os.path.basename(path)
    if dpi:
        return Markup('<img alt="{}" width="{}" src="{}">').format(alt, round(width * 96 / dpi), name)
    return Markup('<img alt="{}" src="{}">').format(alt, name)


def _png_dpi(png: bytes) -> float | None:
    """Pixels per inch from a PNG's pHYs chunk (matplotlib writes it), or None."""
    at = png.find(b"pHYs")
    if at < 0:
        return None
    per_metre, _, unit = struct.unpack(">IIB", png[at + 4 : at + 13])
    return per_metre * 0.0254 if unit == 1 and per_metre else None


def figure_to_html(fig: Figure, alt: str) -> Markup:
    """A figure as an inline base64 PNG ``<img>`` (at ecglens's PNG resolution)."""
    from ecglens.report.figures import save_figure

    return _png_img(save_figure(fig, io.BytesIO()).getvalue(), alt)


def figure_from_png(path, alt: str) -> Markup:
    """A PNG file as an inline base64 ``<img>``."""
    with open(path, "rb") as handle:
        return _png_img(handle.read(), alt)


def number(value: float | None, digits: int = 3) -> str:
    """A figure as reports and the terminal show it: ``digits`` decimals, ``n/a`` where there is none."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def table_to_html(header: Sequence[str], rows: Sequence[Sequence[object]]) -> Markup:
    """A plain HTML table (cells escaped; None shown as n/a, floats with 3 decimals)."""

    def cell(value: object) -> object:
        return number(value) if value is None or isinstance(value, float) else value

    return Markup(_TABLE.render(header=header, rows=[[cell(v) for v in row] for row in rows]))  # autoescaped


def page(title: str, sections: Sequence[tuple[str, Markup | str]]) -> str:
    """A complete HTML page from (heading, content) sections.

    Rendered by Jinja2 with autoescaping: content is inserted as markup only when it is `Markup` (built
    by the functions here, or by ``Markup(...).format(...)``, which escapes every argument); any plain
    string (a record id, a header comment, a file name) is escaped and shows as text. The page forbids
    every script and every resource but inline styles and embedded images (Content-Security-Policy).
    """
    return _PAGE.render(title=title, style=Markup(_STYLE), sections=sections)


def evaluation_table(result: EvaluationResult, threshold_origin: str) -> Markup:
    """One evaluation as an HTML table: each metric with its 95 % interval, each class's threshold and
    where it came from, calibration (ECE, Brier), the set-level scores (macro AUC and AUPRC, Fmax, Challenge
    score with what it covers) and the flags a reader must not miss (fewer than 10 positives, a threshold at
    0, 1, below 0.05 or far from 0.5)."""

    def cell(value: float | None, interval: tuple[float, float] | None = None) -> dict:
        return {
            "value": "n/a" if value is None else f"{value:.3f}",
            "interval": None if value is None or not interval else f"[{interval[0]:.2f}, {interval[1]:.2f}]",
        }

    rows = [
        {
            "name": m.name,
            "n": m.n_positive,
            "threshold": f"{m.threshold:.3f}",
            "flagged": bool(m.flags),
            "cells": [cell(getattr(m, k), m.ci95.get(k)) for k in METRICS] + [cell(m.ece), cell(m.brier)],
            "flags": "; ".join([m.note] * bool(m.note) + list(m.flags)),
        }
        for m in result.per_class
    ]

    def mean(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return sum(present) / len(present) if present else None

    average = [cell(result.average.get(k), result.average_ci95.get(k)) for k in METRICS] + [
        cell(mean([m.ece for m in result.per_class])),
        cell(mean([m.brier for m in result.per_class])),
    ]
    scores = {name: cell(value)["value"] for name, value in result.set_scores().items()}
    return Markup(
        _EVALUATION.render(
            result=result,
            scores=scores,
            origin=threshold_origin,
            note=CI_NOTE,
            rows=rows,
            average=average,
            fmax_note=FMAX_NOTE,
        )
    )  # rendered with autoescaping


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_PAGE = _ENV.from_string(
    "<!doctype html><html><head><meta charset='utf-8'>"
    "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
    "style-src 'unsafe-inline'\">"
    "<title>{{ title }}</title><style>{{ style }}</style></head><body><h1>{{ title }}</h1>"
    "{% for heading, content in sections %}<section><h2>{{ heading }}</h2>{{ content }}</section>{% endfor %}"
    "</body></html>"
)
_TABLE = _ENV.from_string(
    "<table><thead><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>"
    "{% for row in rows %}<tr>{% for value in row %}<td>{{ value }}</td>{% endfor %}</tr>{% endfor %}"
    "</tbody></table>"
)
_EVALUATION = _ENV.from_string(
    "<table><caption>{{ result.name }}: {{ result.n_records }} records; macro AUC {{ scores.macro_auc }}, macro "
    "AUPRC {{ scores.macro_auprc }}, Fmax {{ scores.fmax }}, Challenge score {{ scores.challenge_score }}"
    "{% if result.challenge_note %} ({{ result.challenge_note }}){% endif %}. Thresholds: {{ origin }}. "
    "{{ note }} {{ fmax_note }} ECE: expected calibration error (15 bins).</caption><thead><tr><th>class</th>"
    "<th>n+</th><th>threshold</th><th>precision</th><th>recall</th><th>F1</th><th>AUC</th><th>AUPRC</th>"
    "<th>accuracy</th><th>ECE</th><th>Brier</th><th class='flags'>flags</th></tr></thead><tbody>"
    "{% for row in rows %}<tr{% if row.flagged %} class='flag'{% endif %}><td>{{ row.name }}</td>"
    "<td>{{ row.n }}</td><td>{{ row.threshold }}</td>{% for c in row.cells %}<td>{{ c.value }}"
    "{% if c.interval %}<br><small>{{ c.interval }}</small>{% endif %}</td>{% endfor %}"
    "<td class='flags'>{{ row.flags }}</td></tr>{% endfor %}<tr><td><b>average</b></td><td></td><td></td>"
    "{% for c in average %}<td>{{ c.value }}{% if c.interval %}<br><small>{{ c.interval }}</small>{% endif %}"
    "</td>{% endfor %}<td></td></tr></tbody></table>"
)


def strict_json(value: object) -> object:
    """NaN and infinities as None, so the JSON is strict."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def out_of_scope_html(table: OutOfScopeTable) -> Markup:
    """What a model decided on records outside its label space: the false-normal rate, then every class's share."""
    rate = table.false_normal
    lead = f"{table.n_records} records name none of the classes (negatives for every class)."
    if rate is not None and rate[1] is not None:
        lead += (
            f" False-normal rate (called {table.normal}): {rate[1]:.1%}"
            + ("" if rate[2] is None else f" (95 % Wilson {rate[2][0]:.1%}-{rate[2][1]:.1%})")
            + "."
        )
    rows = [
        [name, k, "n/a" if share is None else f"{share:.1%}", "" if ci is None else f"{ci[0]:.1%}-{ci[1]:.1%}"]
        for name, k, share, ci in table.decided
    ]
    return Markup("<p>{}</p>").format(lead) + table_to_html(
        ["class", "records decided as it", "share", "95 % Wilson"], rows
    )
