"""``predict``: read and score every file once, optionally explained; and ``export-onnx``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ecglens.commands.archive import (
    ARCHIVE_DIR,
    JOB_FILE,
    ArchiveRun,
    ArchiveScorer,
    ReadJob,
    Shard,
    bundle_fingerprint,
    check_job,
    merge,
)
from ecglens.commands.common import Written, issue_lines
from ecglens.export.writer import HospitalWriter
from ecglens.io.record import ReadIssue
from ecglens.leads import LEAD_NAMES, canonical_leads
from ecglens.predict import Prediction, Predictor, Scored, export_onnx, iter_scored_files
from ecglens.report.predictions import (
    PSEUDONYM_MAP,
    PredictionLog,
    write_prediction_tables,
    write_pseudonym_map,
)
from ecglens.report.summary import SummaryRow
from ecglens.util.atomic import StagedFolder, write_json

if TYPE_CHECKING:  # explanations and figures load when a run asks for them: plain predict stays light
    from ecglens.explain.records import RecordExplanation
    from ecglens.report.figures import FigureOptions
    from ecglens.report.outputs import DrawnExplanation


@dataclass(frozen=True)
class PredictRun:
    """Predictions, unreadable files, explanations drawn, the files written, and the records predicted whose
    one-page report could not be written (each a named issue in ``issues.csv``; the batch went on)."""

    predictions: tuple[Prediction, ...]
    issues: tuple[ReadIssue, ...]
    figures: tuple[DrawnExplanation, ...]
    written: Written
    unreported: tuple[ReadIssue, ...] = ()

    def problems(self) -> list[str]:
        """What the CLI prints on standard error."""
        total = len(self.predictions) + len(self.issues)
        if not total:
            return ["error: no record files found in the given paths"]
        if not self.predictions:
            return [*issue_lines(self.issues), f"error: none of the {total} record(s) could be read"]
        lines = []
        if self.issues:
            lines = [
                *issue_lines(self.issues),
                f"{len(self.issues)} of {total} record(s) unreadable; the others were predicted",
            ]
        if self.unreported:
            lines += [f"  {i.path}: {i.reason}" for i in self.unreported[:10]]
            lines.append(f"{len(self.unreported)} predicted record(s) without their report (listed in issues.csv)")
        return lines

    @property
    def exit_code(self) -> int:
        """0 when at least one record was predicted, 1 when none could be read (or none was found)."""
        return 0 if self.predictions else 1

    def lines(self) -> list[str]:
        """The terminal table and where things went (nothing when no record was predicted: `problems` says why)."""
        if not self.predictions:
            return []
        width = max([len(p.record_id) for p in self.predictions] + [6])
        truth = any(p.true_labels is not None for p in self.predictions)
        truth_head = "true (file)     " if truth else ""
        lines = [f"{'record':<{width}}  {'decisions (probability)':<40} {truth_head}warnings"]
        for p in self.predictions:
            decided = ", ".join(_decided(p, d) for d in p.decisions) or (
                "none; highest "
                + ", ".join(f"{n} {v:.2f}" + (" (not validated)" if n in p.not_validated else "") for n, v in p.top(2))
                if p.status == "ok"
                else f"{p.status}: {'; '.join(p.reasons)}"
            )
            known = "" if not truth else f"{_truth_text(p.true_labels):<15} "
            lines.append(f"{p.record_id:<{width}}  {decided:<40} {known}{'; '.join(p.warnings)}")
            for flag in p.disagreements:
                lines.append(f"{'':<{width}}  DISAGREEMENT: {flag}")
            if p.measurements is not None:
                lines.append(f"{'':<{width}}  {p.measurement_line()}")
            if p.criteria_line():
                lines.append(f"{'':<{width}}  {p.criteria_line()}")
            if p.file_statements:
                shown = " | ".join(s if len(s) <= 300 else s[:297] + "..." for s in p.file_statements)
                lines.append(f"{'':<{width}}  the file's own statement: {shown}")
            if p.file_statements_left_out:
                lines.append(
                    f"{'':<{width}}  {p.file_statements_left_out} of the file's statements left out as possibly "
                    "identifying"
                )
            if p.derived_leads:
                lines.append(f"{'':<{width}}  derived by the reader from I and II: {', '.join(p.derived_leads)}")
        if self.figures:
            lines.append(f"{len(self.figures)} explanation figure(s) in {self.figures[0].figure.parent}")
        rules = sorted({p.decision_rule for p in self.predictions if p.status == "ok"})
        if rules:
            lines.append(
                f"decided by: {', '.join(rules)} (model: the model alone at its thresholds; fused: model and "
                "criteria combined; by criteria: the guideline criteria alone)"
            )
        unknown = next((p.not_validated for p in self.predictions if p.not_validated), {})
        if unknown and "fused" in rules:
            lines.append(
                f"the model never decides {', '.join(unknown)} (not validated: too few training or validation "
                "positives, or not shown better than chance on validation); the fused decision may decide them by "
                "their criteria, where these can be assessed"
            )
        elif unknown:
            lines.append(
                "never decided (not validated: too few training or validation positives, or not shown better than "
                f"chance on validation): {', '.join(unknown)}"
            )
        refused = sum(p.status != "ok" for p in self.predictions)
        refused_text = f" ({refused} not interpretable: no measurements, no decisions)" if refused else ""
        lines.append(
            f"{len(self.predictions)} predicted{refused_text}, {len(self.issues)} unreadable; {self.written.line()}"
        )
        return lines


def _decided(p: Prediction, name: str) -> str:
    """``IAVB (0.14)``; ``IAVB (fused 0.62)``; ``STE (by criteria)``."""
    how = p.decided_by.get(name, "model")
    if how == "by criteria":
        return f"{name} (by criteria)"
    if how == "fused" and name in p.fused_probabilities:
        return f"{name} (fused {p.fused_probabilities[name]:.2f})"
    return f"{name} ({p.probabilities[name]:.2f})"


def _truth_text(labels: tuple[str, ...] | None) -> str:
    return "unknown" if labels is None else ", ".join(labels) or "none"


def run_predict(
    checkpoint: str | os.PathLike,
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike = "ecglens-out/predict",
    sampling_rate_hz: float | None = None,
    lead_order: Sequence[str] | None = None,
    engine: str = "torch",
    batch_size: int = 32,
    explain: str | None = None,
    background_caches: Sequence[str | os.PathLike] = (),
    device: str = "auto",
    progress: bool = True,
    figures: FigureOptions | None = None,
    force: bool = False,
    measurements: bool = False,
    include_identifiers: bool = False,
    report: str | None = None,
    pseudonym_map: bool = False,
    decision: str | None = None,
    exports: Sequence[str] = (),
    archive: ArchiveOptions | None = None,
) -> PredictRun | ArchiveRun:
    """``predict``: read and score every file once; with ``explain``, explain each record's scored input
    for its decisions (or its most probable class) and draw it under ``OUT/figures``.

    ``lead_order`` is the lead order of CSV files without a header and of NumPy files (default I, ..., V6).
    With ``measurements``, each interpretable record is delineated at its own rate (the default delineator;
    the ``waves`` extra) and its heart rate, intervals, QTc and axes join its prediction, with every class's
    guideline criteria evaluated on them (`ecglens.criteria`) and the disagreements between the criteria and
    the decisions. A
    clinical file's personal data (names, ids, dates, free text, its file name) stays out of every output unless
    ``include_identifiers``.
    With ``report="pdf"``, each record also gets its one-page report in ``OUT/reports`` (`ecglens.report.pdf`).
    With ``pseudonym_map``, ``OUT/pseudonyms.private.csv`` (owner-only, 0600) maps each clinical file's
    pseudonym to its path: the user's way back from a batch to its files, never to be shared.
    ``decision``: the rule that decides (`Predictor`): ``model``, ``fused`` or ``criteria``; None, the bundle's
    default (the starter's: ``fused``). The fused and criteria rules read the measurements, so they turn
    ``measurements`` on.
    ``exports``: ``fhir`` and ``dicom`` give each record its FHIR R4 Bundle (``OUT/fhir``) and its DICOM
    Encapsulated PDF (``OUT/dicom``), both holding its one-page report, which they write (`ecglens.export.writer`);
    every batch gets its summary, ``OUT/summary.html`` and ``OUT/summary.csv``.
    With ``archive`` (`ArchiveOptions`), or when ``out`` already holds an archive, the run scores only what
    ``out``'s manifests do not hold, streaming, committing a batch at a time (each record's page and exports with
    it), in shards (`ecglens.commands.archive`); it returns an `ArchiveRun`.
    """
    leads = canonical_leads(lead_order) if lead_order else LEAD_NAMES
    predictor = Predictor(checkpoint, device, engine, force, decision)
    out = Path(out)
    if archive is not None or (out / ARCHIVE_DIR / JOB_FILE).is_file():  # an archive goes on where it stopped
        if explain or pseudonym_map:
            raise ValueError("--archive writes no explanations and no pseudonym map: run those on a plain predict")
        options = archive or ArchiveOptions()
        read = ReadJob(predictor.meta.lead_names, sampling_rate_hz, leads, include_identifiers)
        outputs = ArchiveOutputs(measurements, report, tuple(exports))
        return _run_archive(predictor, paths, out, options, read, batch_size, progress, outputs)
    predictions, issues, drawn = [], [], []
    # Everything is written into a staging folder and moved into OUT only when at least one record was predicted:
    # a failed run never replaces earlier results with empty files (its partial rows, if any, are kept in OUT).
    with StagedFolder(out, keep_on_failure=(PredictionLog.PARTIAL_NAME,)) as stage:
        draw = _explainer(predictor, explain, background_caches, figures, stage.path / "figures") if explain else None
        page, hospital = _writers(predictor, stage.path, report, exports, include_identifiers)
        with PredictionLog(stage.path, moved_to=out) as log:  # rows reach the disk as they come
            scored = iter_scored_files(
                predictor, paths, batch_size, sampling_rate_hz, leads, progress, include_identifiers
            )
            kept = _Kept(log, stage.path)
            drawn = _each_record(scored, predictor, measurements, draw, page, kept, hospital)
            predictions, issues, unreported = kept.predictions, kept.issues, kept.unreported
        drawn = [d.moved(stage.path, stage.out) for d in drawn]  # the paths the figures will have in OUT
        listed = [*issues, *unreported, *kept.unexported]
        written = (log.path, *write_prediction_tables(predictions, listed, predictor.meta.class_names, stage.path))
        written += hospital.finish(kept.rows, len(listed))  # the summary, and the folders of the pages and exports
        written += (write_pseudonym_map(_pseudonyms(paths), stage.path),) if pseudonym_map else ()
        if drawn:
            written += (write_json(stage.path / "figures" / f"{explain}.json", [d.to_dict() for d in drawn]),)
        if predictions:
            stage.commit()
            _drop_stale_map(stage.out, pseudonym_map)
    written = tuple(stage.final(p) for p in written) if predictions else ()
    return PredictRun(tuple(predictions), tuple(issues), tuple(drawn), Written(written), tuple(unreported))


def _writers(
    predictor: Predictor, folder: Path, report: str | None, exports: Sequence[str], include_identifiers: bool
) -> tuple[_Reporter | None, HospitalWriter]:
    """The one-page reporter (asked for, or for the FHIR and DICOM exports, which hold the page) and the writer of
    the exports and the batch's summary."""
    unknown = set(exports) - {"fhir", "dicom"}
    if unknown:
        raise ValueError(f"unknown export {sorted(unknown)[0]!r}; choose from fhir, dicom")
    page = _Reporter(predictor) if report == "pdf" or exports else None
    return page, HospitalWriter(predictor, folder, "fhir" in exports, "dicom" in exports, include_identifiers)


class RecordSink(Protocol):
    """Where each scored record's prediction (after its measurements), its files, its summary row and the issues of
    its page and exports go, and each unreadable file's issue."""

    @property
    def folder(self) -> Path:
        """Where the current record's page and exports are written (below it: ``reports/``, ``fhir/``, ``dicom/``)."""
        ...

    def add(self, prediction: Prediction) -> None: ...

    def filed(self, row: SummaryRow, unreported: ReadIssue | None, unexported: ReadIssue | None) -> None:
        """The current record's summary row, and its issues: its page not drawn, its Bundle or object not made."""
        ...

    def issue(self, issue: ReadIssue) -> None: ...


class _Kept:
    """A plain batch's sink: its rows on disk as they come (`PredictionLog`), its files in the staging ``folder``,
    its predictions, summary rows and issues kept."""

    def __init__(self, log: PredictionLog, folder: Path):
        self.log, self.folder = log, folder
        self.predictions: list[Prediction] = []
        self.issues: list[ReadIssue] = []
        self.rows: list[SummaryRow] = []
        self.unreported: list[ReadIssue] = []
        self.unexported: list[ReadIssue] = []

    def add(self, prediction: Prediction) -> None:
        self.predictions.append(prediction)
        self.log.add(prediction)

    def filed(self, row: SummaryRow, unreported: ReadIssue | None, unexported: ReadIssue | None) -> None:
        self.rows.append(row)
        self.unreported += [unreported] if unreported is not None else []
        self.unexported += [unexported] if unexported is not None else []

    def issue(self, issue: ReadIssue) -> None:
        self.issues.append(issue)


def _each_record(
    scored: Iterable[Scored | ReadIssue],
    predictor: Predictor,
    measurements: bool,
    draw: Callable[[Scored], tuple[list[RecordExplanation], list[DrawnExplanation]]] | None,
    page: _Reporter | None,
    sink: RecordSink,
    hospital: HospitalWriter,
) -> list[DrawnExplanation]:
    """Each scored record through the per-record writers: its measurements, its prediction to ``sink``, its
    explanation drawn, its page, its FHIR and DICOM exports and its summary row (``hospital``; the page and exports
    into the sink's folder, the row and the issues to the sink); each unreadable file's issue to ``sink``. The
    figures drawn."""
    drawn: list[DrawnExplanation] = []
    for item in scored:
        if isinstance(item, ReadIssue):
            sink.issue(item)
            continue
        if (measurements or predictor.decision != "model") and item.prediction.status == "ok":
            item = replace(item, prediction=_measured(item, predictor))
        sink.add(item.prediction)
        explained, figures_drawn = draw(item) if draw is not None and item.prediction.status == "ok" else ([], [])
        drawn += figures_drawn  # the scored input, drawn now
        explanation = explained[0] if explained else None
        report, unreported = page.write(item, explanation, sink.folder) if page is not None else (None, None)
        filed = hospital.write(item, report, sink.folder)
        sink.filed(filed.row, unreported, filed.issue)
    return drawn


@dataclass(frozen=True)
class ArchiveOptions:
    """``predict --archive``: this process's shard (``K/N``; None: the torchrun rank's, or the only one) and the
    processes that read ahead of scoring (0: read in the scoring process)."""

    shard: str | None = None
    read_workers: int = 0


@dataclass(frozen=True)
class ArchiveOutputs:
    """What an archive writes per record beside its rows: measurements, its page (``report``), its exports."""

    measurements: bool = False
    report: str | None = None
    exports: tuple[str, ...] = ()


def _run_archive(
    predictor: Predictor,
    paths: Sequence[str | os.PathLike],
    out: Path,
    options: ArchiveOptions,
    read: ReadJob,
    batch_size: int,
    progress: bool,
    outputs: ArchiveOutputs,
) -> ArchiveRun:
    """Score this process's shard of the archive (`ecglens.commands.archive`): what no manifest holds, a batch
    committed at a time, each record's page and exports committed with it; then, without ``--shard``, merge (rank
    0 of a torchrun job, once every rank is done), the summary included."""
    from ecglens.predict import find_record_files
    from ecglens.util.distributed import barrier, process_group

    page, hospital = _writers(predictor, out, outputs.report, outputs.exports, read.include_identifiers)
    measurements, report = outputs.measurements, outputs.report
    rank, world = process_group("gloo", timeout_hours=48) if options.shard is None else (0, 1)
    shard = Shard.parse(options.shard) if options.shard is not None else Shard(rank + 1, world)
    job = {
        "bundle": bundle_fingerprint(predictor.bundle),
        "class_names": list(predictor.meta.class_names),
        "decision": predictor.decision,
        "engine": predictor.engine,
        "force": predictor.force,
        "measurements": measurements or predictor.decision != "model",
        "read": {**asdict(read), "lead_names": list(read.lead_names), "lead_order": list(read.lead_order)},
        "report": report,
        **({"exports": sorted(outputs.exports)} if outputs.exports else {}),  # an archive without them keeps its job
    }
    check_job(out / ARCHIVE_DIR, job)
    files = find_record_files(paths)
    scorer = ArchiveScorer(predictor, out / ARCHIVE_DIR, shard, read, batch_size, options.read_workers)
    try:
        items = scorer.items(files, progress and rank == 0)
        _each_record(items, predictor, measurements, None, page, scorer, hospital)
    finally:
        counts = scorer.close()
    barrier()
    merged = merge(out) if options.shard is None and rank == 0 and files else None
    return ArchiveRun(out, shard, len(files), counts, merged, "rank 0" if rank else "ecglens predict-merge")


def _drop_stale_map(out: Path, asked: bool) -> None:
    """An earlier batch's private map (`PSEUDONYM_MAP`) removed from ``out`` when this batch did not ask for one:
    it never sits beside results it does not trace."""
    if not asked:
        (out / PSEUDONYM_MAP).unlink(missing_ok=True)


def _pseudonyms(paths: Sequence[str | os.PathLike]) -> list[tuple[str, str]]:
    """Each clinical file's pseudonym (its record id, and the name its issue goes by) and its full path."""
    from ecglens.io.clinical import is_clinical
    from ecglens.predict import find_record_files
    from ecglens.util.pseudonym import pseudonym

    found = [path.resolve() for path in find_record_files(paths) if is_clinical(path)]
    return [(pseudonym(str(path)), str(path)) for path in found]


def _measured(item: Scored, predictor: Predictor) -> Prediction:
    """The prediction with the measurements of the record's delineated waves, at the file's own rate (a model's
    100 Hz blurs a QRS onset by 10 ms): the record as it was read, never a second reading."""
    from ecglens.waves.delineate import measurements_of

    meta = predictor.meta
    sex = age = None
    if item.record is not None:
        signal, rate, sex, age = item.record.signal, item.record.sampling_rate_hz, item.record.sex, item.record.age
    else:  # a record scored from memory without its reading
        signal, rate = item.input.signal, meta.sampling_rate_hz
    return predictor.with_measurements(item.prediction, measurements_of(signal, rate, meta.lead_names, sex), age)


def _explainer(
    predictor: Predictor,
    method: str,
    background_caches: Sequence[str | os.PathLike],
    figures: FigureOptions | None,
    folder: Path,
) -> Callable[[Scored], tuple[list[RecordExplanation], list[DrawnExplanation]]]:
    """What explains a scored record (for its decisions, or its most probable class) and draws it into ``folder``."""
    from ecglens.explain.inputs import required_background
    from ecglens.explain.records import explain_inputs
    from ecglens.report.figures import DEFAULT_FIGURES
    from ecglens.report.outputs import draw_explanations

    meta = predictor.meta
    background = required_background(meta, background_caches, 100, predictor.bundle) if method == "shap" else None

    def draw(item: Scored) -> tuple[list[RecordExplanation], list[DrawnExplanation]]:
        explained = explain_inputs(
            predictor.model, meta, [item.input], method, background=background, probabilities=item.probabilities[None]
        )
        return explained, draw_explanations(explained, meta, folder, figures or DEFAULT_FIGURES)

    return draw


class _Reporter:
    """Writes each scored record's one-page PDF (with the first of its explanations) into ``reports/`` of the folder
    it is given; a record whose page could not be drawn is its named issue: the batch goes on (a disk's error still
    stops it, as it would stop every other output)."""

    def __init__(self, predictor: Predictor):
        from ecglens.report.pdf import model_label

        self.meta = predictor.meta
        self.model = model_label(predictor.bundle, self.meta)

    def write(
        self, item: Scored, explanation: RecordExplanation | None, folder: Path
    ) -> tuple[Path | None, ReadIssue | None]:
        """The record's page (written whole or not at all), or its issue where it could not be drawn."""
        from ecglens.report.paths import safe_name
        from ecglens.report.pdf import report_issue, write_record_report

        path = folder / "reports" / f"{safe_name(item.prediction.record_id)}.pdf"
        try:
            return write_record_report(item, self.meta, path, self.model, explanation), None
        except OSError:
            raise
        except Exception as error:  # a page that cannot be drawn costs that record's report, never the batch
            return None, report_issue(item.prediction, error)


def run_export_onnx(checkpoint: str | os.PathLike, opset: int) -> Written:
    """``export onnx``: the bundle's model as ONNX (the starter's goes to the user's cache folder)."""
    return Written((export_onnx(checkpoint, opset),))
