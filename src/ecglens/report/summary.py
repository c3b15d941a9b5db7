"""A batch's summary: one HTML page (``summary.html``) and its CSV (``summary.csv``), a row per record with its
decisions, flags, measurements outside their range, quality and a link to its one-page report, the counts at the
top, sortable by any column (a few lines of script, hashed into the page's content security policy).

Rows stream: the CSV is written as they come, counting them, and the page is rendered from the CSV read back, so
that an archive of any size is summarised in the memory of one row (`write_summary`).

Records are named by pseudonyms only: a clinical file read with identifiers is shown under the pseudonym it gets
without them (`ecglens.util.pseudonym`), so the page can be passed on. Its links still name the report files, whose
names are the record ids of that run.
"""

from __future__ import annotations

import base64
import csv
import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

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

    def to_dict(self) -> dict:
        """Plain data (an archive keeps it beside each record's prediction row)."""
        return {**asdict(self), "decided": list(self.decided)}

    @classmethod
    def from_dict(cls, values: dict) -> SummaryRow:
        """The row `to_dict` gave."""
        return cls(**{**values, "decided": tuple(values.get("decided", ()))})

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


@dataclass
class SummaryCounts:
    """The numbers at the top, counted as the rows stream by: records, not interpretable, flagged, outside range,
    per decision; and the files left out (unreadable, or predicted without their report or export)."""

    records: int = 0
    not_interpretable: int = 0
    flagged: int = 0
    outside_range: int = 0
    decided: Counter = field(default_factory=Counter)

    def add(self, row: SummaryRow) -> SummaryRow:
        """Count one row; the row."""
        self.records += 1
        self.not_interpretable += row.status != "ok"
        self.flagged += bool(row.flags)
        self.outside_range += bool(row.outside_range)
        self.decided.update(row.decided)
        return row

    def lines(self, issues: int) -> list[tuple[str, int]]:
        """The page's counts, with ``issues`` files left out."""
        return [
            ("records predicted", self.records),
            ("not interpretable", self.not_interpretable),
            ("unreadable or not reported", issues),
            ("with a disagreement flag", self.flagged),
            ("with a measurement outside its range", self.outside_range),
            *((f"decided {name}", n) for name, n in sorted(self.decided.items())),
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


def write_summary(rows: Iterable[SummaryRow], issues: int, folder: Path) -> tuple[Path, Path]:
    """``summary.csv`` and ``summary.html`` in ``folder`` (each written atomically), ``issues`` files counted as left
    out. ``rows`` are read once, as they come: the CSV is written and the rows counted in that pass, then the page
    is rendered from the CSV read back, a row at a time."""
    tally = SummaryCounts()
    with atomic_open(folder / SUMMARY_CSV, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(tally.add(row).cells() for row in rows)
    with open(folder / SUMMARY_CSV, newline="") as table, atomic_open(folder / SUMMARY_HTML) as handle:
        parts = _PAGE.generate(
            counts=tally.lines(issues), columns=COLUMNS, rows=_read_rows(table), sort=_SORT, sort_hash=_SORT_HASH
        )  # autoescaped: ids, flags and warnings are data, never markup
        handle.writelines(parts)
    return folder / SUMMARY_HTML, folder / SUMMARY_CSV


def _read_rows(table: Iterable[str]) -> Iterator[SummaryRow]:
    """The rows of a summary's CSV, one at a time."""
    reader = csv.reader(table)
    next(reader)  # the header
    for record, status, decisions, flags, outside_range, quality, measurements, report in reader:
        yield SummaryRow(record, status, decisions, flags, outside_range, quality, measurements, report)
