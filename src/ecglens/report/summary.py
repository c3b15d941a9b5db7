"""A batch's summary: one HTML page (``summary.html``) and its CSV (``summary.csv``), a row per record with its
decisions, flags, measurements outside their range, quality and a link to its one-page report, the counts at the
top, sortable by any column (a few lines of script, hashed into the page's content security policy).

Records are named by pseudonyms only: a clinical file read with identifiers is shown under the pseudonym it gets
without them (`ecglens.util.pseudonym`), so the page can be passed on. Its links still name the report files, whose
names are the record ids of that run.
"""

from __future__ import annotations

import base64
import csv
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from ecglens.io.record import ReadIssue
from ecglens.util.atomic import atomic_open

if TYPE_CHECKING:
    from ecglens.predict import Prediction

SUMMARY_HTML = "summary.html"
SUMMARY_CSV = "summary.csv"
COLUMNS = ("record", "status", "decisions", "flags", "outside range", "quality", "measurements", "report")


@dataclass(frozen=True)
class SummaryRow:
    """One record's line of the summary: plain text cells, its report's path relative to the page (or ""), and the
    classes decided (counted at the top)."""

    record: str
    status: str
    decisions: str
    flags: str
    outside_range: str
    quality: str
    measurements: str
    report: str
    decided: tuple[str, ...] = ()

    @classmethod
    def of(cls, prediction: Prediction, report: str = "", include_identifiers: bool = False) -> SummaryRow:
        """The row of ``prediction``; ``report`` its one-page PDF relative to the summary's folder."""
        measured = prediction.measurements
        decided = [f"{name} ({prediction.decided_by.get(name, 'model')})" for name in prediction.decisions]
        return cls(
            record=shown_id(prediction, include_identifiers),
            status=prediction.status,
            decisions=", ".join(decided) or ("none" if prediction.status == "ok" else ""),
            flags=" | ".join(prediction.disagreements),
            outside_range=", ".join(measured.outside_text()) if measured is not None else "",
            quality=" | ".join([*prediction.reasons, *prediction.warnings]) or "ok",
            measurements=prediction.measurement_line().split(";")[0],
            report=report,
            decided=prediction.decisions,
        )

    def cells(self) -> tuple[str, ...]:
        """The CSV's cells, in `COLUMNS` order."""
        return (
            self.record,
            self.status,
            self.decisions,
            self.flags,
            self.outside_range,
            self.quality,
            self.measurements,
            self.report,
        )


def shown_id(prediction: Prediction, include_identifiers: bool) -> str:
    """The record's id, or for a clinical file read with identifiers the pseudonym it has without them."""
    if include_identifiers and prediction.file_format:
        from ecglens.util.pseudonym import pseudonym

        return pseudonym(str(Path(prediction.source).resolve()))
    return prediction.record_id


def counts(rows: Sequence[SummaryRow], issues: Sequence[ReadIssue]) -> list[tuple[str, int]]:
    """The numbers at the top: records, not interpretable, unreadable, flagged, outside range, per decision."""
    decided = Counter(name for row in rows for name in row.decided)
    return [
        ("records predicted", len(rows)),
        ("not interpretable", sum(row.status != "ok" for row in rows)),
        ("unreadable or not reported", len(issues)),
        ("with a disagreement flag", sum(bool(row.flags) for row in rows)),
        ("with a measurement outside its range", sum(bool(row.outside_range) for row in rows)),
        *((f"decided {name}", n) for name, n in sorted(decided.items())),
    ]


_SORT = (
    "document.querySelectorAll('th').forEach((th,i)=>th.addEventListener('click',()=>{"
    "const b=th.closest('table').tBodies[0],r=[...b.rows],d=th.dataset.d=th.dataset.d==='a'?'d':'a';"
    "r.sort((x,y)=>x.cells[i].innerText.localeCompare(y.cells[i].innerText,undefined,{numeric:true})"
    "*(d==='a'?1:-1));r.forEach(e=>b.appendChild(e));}));"
)
_SORT_HASH = base64.b64encode(hashlib.sha256(_SORT.encode()).digest()).decode()
_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_PAGE = _ENV.from_string(
    "<!doctype html><html><head><meta charset='utf-8'>"
    "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
    "script-src 'sha256-{{ sort_hash }}'\"><title>ecglens batch summary</title><style>"
    "body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
    "padding:3px 6px;vertical-align:top}th{cursor:pointer;background:#eee}tr.flag td{background:#fff3cd}"
    "</style></head><body><h1>ecglens batch summary</h1><p>Machine readings for research use, to be confirmed by "
    "a physician. Records are named by pseudonyms. Click a column's heading to sort by it.</p>"
    "<ul>{% for name, n in counts %}<li>{{ name }}: <b>{{ n }}</b></li>{% endfor %}</ul>"
    "<div style='overflow-x:auto'><table><thead><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}"
    "</tr></thead><tbody>"
    "{% for row in rows %}<tr{% if row.flags or row.status != 'ok' %} class='flag'{% endif %}>"
    "<td>{{ row.record }}</td><td>{{ row.status }}</td><td>{{ row.decisions }}</td><td>{{ row.flags }}</td>"
    "<td>{{ row.outside_range }}</td><td>{{ row.quality }}</td><td>{{ row.measurements }}</td><td>"
    "{% if row.report %}<a href='{{ row.report }}'>PDF</a>{% endif %}</td></tr>{% endfor %}</tbody></table></div>"
    "<script>{{ sort | safe }}</script></body></html>"
)


def write_summary(rows: Sequence[SummaryRow], issues: Sequence[ReadIssue], folder: Path) -> tuple[Path, Path]:
    """``summary.html`` and ``summary.csv`` in ``folder`` (written atomically)."""
    with atomic_open(folder / SUMMARY_CSV, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(row.cells() for row in rows)
    page = _PAGE.render(
        counts=counts(rows, issues), columns=COLUMNS, rows=rows, sort=_SORT, sort_hash=_SORT_HASH
    )  # autoescaped: ids, flags and warnings are data, never markup
    with atomic_open(folder / SUMMARY_HTML) as handle:
        handle.write(page)
    return folder / SUMMARY_HTML, folder / SUMMARY_CSV
