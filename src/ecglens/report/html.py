"""Self-contained HTML reports: Markdown-like sections, tables and embedded PNG figures."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

from matplotlib.figure import Figure

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}code,pre{background:#f6f6f6;padding:2px 4px}
.note{color:#555;font-size:14px}
"""


def figure_to_html(fig: Figure, alt: str, dpi: int = 80) -> str:
    """A figure as an inline base64 PNG ``<img>``."""
    from ecglens.report.figures import save_figure

    buffer = save_figure(fig, io.BytesIO(), dpi)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def figure_from_png(path, alt: str) -> str:
    """A PNG file as an inline base64 ``<img>``."""
    with open(path, "rb") as handle:
        data = base64.b64encode(handle.read()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


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
