"""Self-contained HTML reports: Markdown-like sections, tables and embedded PNG figures."""

from __future__ import annotations

import base64
import html
import io
import struct
from collections.abc import Sequence

from matplotlib.figure import Figure

from ecglens.metrics import CI_NOTE, METRICS, EvaluationResult

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}code,pre{background:#f6f6f6;padding:2px 4px}
.note{color:#555;font-size:14px}caption{text-align:left;font-size:13px;color:#444;padding:4px 0;caption-side:bottom}
tr.flag td{background:#fff4e0}td.flags,th.flags{text-align:left;font-size:12px;color:#8a4b00;max-width:260px}
"""


def _png_img(png: bytes, alt: str) -> str:
    """An inline base64 ``<img>`` shown at the figure's physical size (96 CSS px per inch), so ECG paper
    keeps 25 mm/s on a standard display; pages narrower than that scale it down (``max-width``)."""
    width, _ = struct.unpack(">II", png[16:24])  # the IHDR chunk
    dpi = _png_dpi(png)
    size = f' width="{round(width * 96 / dpi)}"' if dpi else ""
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}"{size} src="data:image/png;base64,{data}">'


def _png_dpi(png: bytes) -> float | None:
    """Pixels per inch from a PNG's pHYs chunk (matplotlib writes it), or None."""
    at = png.find(b"pHYs")
    if at < 0:
        return None
    per_metre, _, unit = struct.unpack(">IIB", png[at + 4 : at + 13])
    return per_metre * 0.0254 if unit == 1 and per_metre else None


def figure_to_html(fig: Figure, alt: str) -> str:
    """A figure as an inline base64 PNG ``<img>`` (at ecglens's PNG resolution)."""
    from ecglens.report.figures import save_figure

    return _png_img(save_figure(fig, io.BytesIO()).getvalue(), alt)


def figure_from_png(path, alt: str) -> str:
    """A PNG file as an inline base64 ``<img>``."""
    with open(path, "rb") as handle:
        return _png_img(handle.read(), alt)


def table_to_html(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain HTML table (cells escaped; None shown as n/a, floats with 3 decimals)."""
    def cell(value: object) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return f"{value:.3f}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A complete HTML page from (heading, inner HTML) sections."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    for heading, content in sections:
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{content}</section>")
    parts.append("</body></html>")
    return "".join(parts)


def evaluation_table(result: EvaluationResult, threshold_origin: str) -> str:
    """One evaluation as an HTML table: each metric with its 95 % interval, each class's threshold, and the
    flags a reader must not miss (fewer than 10 positives, a threshold at 0, 1 or below 0.05)."""
    def cell(value: float | None, interval: tuple[float, float] | None) -> str:
        if value is None:
            return "n/a"
        text = f"{value:.3f}"
        return text + (f"<br><small>[{interval[0]:.2f}, {interval[1]:.2f}]</small>" if interval else "")

    head = ["class", "n+", "threshold", "precision", "recall", "F1", "AUC", "accuracy", "flags"]
    body = []
    for m in result.per_class:
        flags = [m.note] if m.note else []
        flags += list(m.flags)
        warn = " class='flag'" if m.flags else ""
        body.append(f"<tr{warn}><td>{html.escape(m.name)}</td><td>{m.n_positive}</td><td>{m.threshold:.3f}</td>"
                    + "".join(f"<td>{cell(getattr(m, k), m.ci95.get(k))}</td>" for k in METRICS)
                    + f"<td class='flags'>{html.escape('; '.join(flags))}</td></tr>")
    body.append("<tr><td><b>average</b></td><td></td><td></td>"
                + "".join(f"<td>{cell(result.average.get(k), result.average_ci95.get(k))}</td>" for k in METRICS)
                + "<td></td></tr>")
    caption = (f"{html.escape(result.name)}: {result.n_records} records, macro AUC "
               f"{'n/a' if result.macro_auc is None else f'{result.macro_auc:.3f}'}. Thresholds: "
               f"{html.escape(threshold_origin)}. {html.escape(CI_NOTE)}")
    heads = "".join(f"<th class='flags'>{h}</th>" if h == "flags" else f"<th>{h}</th>" for h in head)
    return (f"<table><caption>{caption}</caption><thead><tr>{heads}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")
