"""One library call per command: each runs a whole job, writes its files and returns a result object.

The CLI (and the web app) are thin shells over these: they parse options, call one function here, and
print the result's ``lines()``. Nothing here parses arguments or prints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecglens.atomic import StagedFolder, write_json
from ecglens.bundle import STARTER, bundle_digest, model_card, read_meta, starter_manifest, starter_path
from ecglens.cache import BuildReport, build_cache
from ecglens.distributed import rank_device
from ecglens.explain.faithfulness import FaithfulnessResult, faithfulness
from ecglens.explain.inputs import (
    Background,
    CachedInputs,
    bundle_background,
    file_inputs,
    inputs_by_id,
    open_caches,
    split_inputs,
    training_background,
)
from ecglens.explain.population import PopulationImportance, population_importance
from ecglens.explain.records import LeadShapleyTable, RecordExplanation, explain_inputs, lead_shapley_tables
from ecglens.explain.shards import finish
from ecglens.io import ReadIssue, Source
from ecglens.io.download import PHYSIONET, DownloadResult, download
from ecglens.leads import LEAD_NAMES, canonical_leads
from ecglens.models import resolve_device
from ecglens.perturb import default_suite
from ecglens.predict import Prediction, Predictor, iter_scored_files
from ecglens.preprocess import ModelInput
from ecglens.report.figures import DEFAULT_FIGURES, FigureOptions
from ecglens.report.outputs import (
    PredictionLog,
    draw_explanations,
    lead_shapley_frame,
    population_lines,
    write_evaluation_views,
    write_faithfulness,
    write_lead_shapley,
    write_population,
    write_prediction_tables,
    write_record_explanations,
)
from ecglens.report.robustness import write_robustness
from ecglens.report.synth import plot_one_per_class
from ecglens.robustness import LINF_BUDGETS_UV, RobustnessResult, run_robustness
from ecglens.summary import DatasetSummary, summarize_sources, write_summaries
from ecglens.synth.cohort import SynthConfig, write_cohort

if TYPE_CHECKING:
    from ecglens.train.calibrate import CalibrationReport
    from ecglens.train.evaluate import EvaluationReport


@dataclass(frozen=True)
class Written:
    """What a command wrote."""

    paths: tuple[Path, ...]

    def line(self) -> str:
        """'wrote a, b, c'."""
        return "wrote " + ", ".join(str(p) for p in self.paths)


def issue_lines(issues: Sequence[ReadIssue], limit: int = 10) -> list[str]:
    """Records left out of a batch, for the terminal (the full list is in the command's files)."""
    if not issues:
        return []
    lines = [f"{len(issues)} record(s) left out:"] + [f"  {i.path}: {i.reason}" for i in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"  ... and {len(issues) - limit} more (see issues.csv / summary.md)")
    return lines


# -- data ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryRun:
    """Dataset summaries (the study's Table 1 per dataset) and what was left out."""

    summaries: tuple[DatasetSummary, ...]
    issues: tuple[ReadIssue, ...]
    written: Written

    def lines(self) -> list[str]:
        """What the CLI prints."""
        return [s.to_markdown() for s in self.summaries] + \
            [self.written.line()]

    def problems(self) -> list[str]:
        """What the CLI prints on standard error."""
        return issue_lines(self.issues)


def run_summary(sources: Sequence[Source], label_profile: str = "strict", out: str | os.PathLike = "summary",
                workers: int | None = None, strict: bool = False) -> SummaryRun:
    """``data summary``: read every record once and summarise each dataset."""
    summaries, issues = summarize_sources(sources, label_profile, workers or os.cpu_count() or 1, strict)
    return SummaryRun(tuple(summaries), tuple(issues), Written(tuple(write_summaries(summaries, out))))


@dataclass(frozen=True)
class PrepareRun:
    """A cache build."""

    out: str
    report: BuildReport

    def lines(self) -> list[str]:
        """What the CLI prints."""
        report = self.report
        if report.already_complete:
            return [f"{self.out}: already complete ({report.n_records} records); nothing to do"]
        return [f"{self.out}: {report.n_records} records cached, {report.n_issues} left out "
                f"({report.n_shards_built} shard(s) built, {report.n_shards_reused} reused)"]

    def problems(self) -> list[str]:
        """What the CLI prints on standard error."""
        return issue_lines(self.report.issues)


def run_prepare(sources: Sequence[Source], out: str | os.PathLike, sampling_rate_hz: float,
                label_profile: str = "strict", workers: int | None = None, strict: bool = False,
                overwrite: bool = False, shard_size: int = 256, min_likelihood: float = 0.0) -> PrepareRun:
    """``data prepare``: build (or finish) a memory-mapped cache."""
    report = build_cache(sources, out, sampling_rate_hz, label_profile, min_likelihood=min_likelihood,
                         workers=workers, shard_size=shard_size, strict=strict, overwrite=overwrite)
    return PrepareRun(str(out), report)


@dataclass(frozen=True)
class DownloadRun:
    """A dataset download."""

    result: DownloadResult

    def lines(self) -> list[str]:
        """What the CLI prints."""
        r = self.result
        return [f"{r.out}: {r.n_files} files from {r.base_url}: {r.downloaded} downloaded "
                f"({r.bytes_downloaded / 1e6:.1f} MB in {r.seconds:.1f} s), {r.already_verified} already verified, "
                f"{len(r.failures)} failed",
                f"read it as the source {r.source_spec}"]

    def problems(self) -> list[str]:
        """What the CLI prints on standard error: every file that failed, with its URL and reason."""
        failures = self.result.failures
        lines = [f"error: {f.reason}" for f in failures[:20]]
        if len(failures) > 20:
            lines.append(f"... and {len(failures) - 20} more; run the same command again to retry them")
        return lines

    @property
    def exit_code(self) -> int:
        """1 when any file failed (a re-run fetches only those)."""
        return 1 if self.result.failures else 0


def run_download(dataset: str, out: str | os.PathLike, base_url: str = PHYSIONET, rate: str = "both",
                 version: str | None = None, workers: int = 4, retries: int = 4, timeout: float = 30.0) -> DownloadRun:
    """``data download``: fetch and verify a PhysioNet dataset."""
    return DownloadRun(download(dataset, out, base_url, rate, version, workers, retries, timeout))


@dataclass(frozen=True)
class SynthRun:
    """A synthetic cohort written to disk."""

    out: str
    n_records: int
    counts: dict[str, int]
    plots: tuple[Path, ...]

    def lines(self) -> list[str]:
        """What the CLI prints."""
        lines = [f"{self.out}: {self.n_records} records; class counts "
                 + ", ".join(f"{k} {v}" for k, v in self.counts.items())]
        return lines + ([f"plots: {', '.join(str(p) for p in self.plots)}"] if self.plots else [])


def run_synth(config: SynthConfig, out: str | os.PathLike, workers: int | None = None, plot: bool = False) -> SynthRun:
    """``synth``: generate a cohort (and one figure per class with ``plot``)."""
    counts = write_cohort(config, out, workers=workers)
    plots = tuple(plot_one_per_class(config, Path(out) / "plots")) if plot else ()
    return SynthRun(str(out), config.n_records, counts, plots)


# -- evaluate -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluateRun:
    """An evaluation, where it was written, and whether the bundle's thresholds were replaced."""

    report: EvaluationReport
    written: Written
    stored_in: str | None

    def lines(self) -> list[str]:
        """What the CLI prints."""
        stored = (f"stored these thresholds in {self.stored_in}" if self.stored_in else
                  "the bundle is unchanged (pass --store-thresholds to keep these thresholds in it)")
        return [self.report.to_markdown(), self.written.line(), stored]


def run_evaluate(checkpoint: str | os.PathLike, caches: Sequence[str | os.PathLike], out: str | os.PathLike | None,
                 n_bootstrap: int = 1000, device: str = "auto", store_thresholds: bool = False,
                 external: bool = False) -> EvaluateRun:
    """Evaluate a bundle on caches and write the results; the bundle changes only with ``store_thresholds``."""
    from ecglens.train.evaluate import evaluate_bundle, store_in_bundle, write_report  # the only training import

    report = evaluate_bundle(checkpoint, caches, n_bootstrap=n_bootstrap, device=device, external=external)
    folder = Path(out or Path(checkpoint).parent / "evaluation")
    paths = [*write_report(report, folder), *write_evaluation_views(
        report.results, report.threshold_origin.describe(), folder, f"Evaluation of {checkpoint}",
        report.out_of_scope)]
    if store_thresholds:
        store_in_bundle(checkpoint, report)
    return EvaluateRun(report, Written(tuple(paths)), str(checkpoint) if store_thresholds else None)


@dataclass(frozen=True)
class CalibrateRun:
    """A bundle calibrated in place."""

    bundle: str
    report: CalibrationReport

    def lines(self) -> list[str]:
        """What the CLI prints."""
        return [self.report.to_markdown(), f"stored the temperatures and thresholds in {self.bundle}"]


def run_calibrate(checkpoint: str | os.PathLike, caches: Sequence[str | os.PathLike],
                  device: str = "auto", normal_sensitivity: float | None = None) -> CalibrateRun:
    """``calibrate``: temperature scaling on the validation split, stored in the bundle."""
    from ecglens.train.calibrate import calibrate_bundle  # a training step: imported when this command runs

    return CalibrateRun(str(checkpoint), calibrate_bundle(checkpoint, caches, device,
                                                          normal_sensitivity=normal_sensitivity))


@dataclass(frozen=True)
class EnsembleRun:
    """An ensemble bundle fused from trained bundles, calibrated on validation."""

    bundle: str
    members: tuple[str, ...]
    report: CalibrationReport

    def lines(self) -> list[str]:
        """What the CLI prints."""
        return [f"fused {len(self.members)} bundles into {self.bundle} (output: their mean logit)",
                self.report.to_markdown(), f"stored the temperatures and thresholds in {self.bundle}"]


def run_ensemble(bundles: Sequence[str | os.PathLike], out: str | os.PathLike, caches: Sequence[str | os.PathLike],
                 device: str = "auto", normal_sensitivity: float | None = None) -> EnsembleRun:
    """``ensemble``: fuse bundles into one and calibrate it on the validation split of ``caches``."""
    from ecglens.bundle import save_ensemble
    from ecglens.train.calibrate import calibrate_bundle

    save_ensemble(bundles, out)
    report = calibrate_bundle(out, caches, device, normal_sensitivity=normal_sensitivity)
    return EnsembleRun(str(out), tuple(str(b) for b in bundles), report)


@dataclass(frozen=True)
class ModelInfo:
    """One bundle as ``ecglens models`` lists it."""

    name: str
    path: str
    label_space: str
    classes: tuple[str, ...]
    sampling_rate_hz: float
    leads: int
    trained_on: str
    calibrated: bool
    thresholds: str


@dataclass(frozen=True)
class ModelsRun:
    """The bundles available: the starter model and those named."""

    models: tuple[ModelInfo, ...]
    card: str | None = None

    def lines(self) -> list[str]:
        """What the CLI prints: the card when asked for, else one block per bundle."""
        if self.card is not None:
            return [self.card]
        lines = []
        for m in self.models:
            lines += [f"{m.name}  ({m.path})", f"  label space {m.label_space}: {', '.join(m.classes)}",
                      f"  input: {m.leads} leads at {m.sampling_rate_hz:g} Hz; probabilities "
                      f"{'calibrated' if m.calibrated else 'not calibrated'}; thresholds: {m.thresholds}",
                      f"  trained on: {m.trained_on}", ""]
        return lines


def _model_info(bundle: str) -> ModelInfo:
    meta = read_meta(bundle)
    data = meta.training_data
    if bundle == STARTER:
        manifest = starter_manifest()
        name, path, trained_on = manifest["name"], str(starter_path()), f"{manifest['summary']}; {manifest['notice']}"
    else:
        name, path = str(bundle), str(Path(bundle).resolve())
        trained_on = "unknown" if data is None else (
            f"{', '.join(data.datasets)}: {data.n_train} training, {data.n_val} validation records "
            f"(epoch {data.epoch})")
    return ModelInfo(name, path, meta.label_map.label, meta.class_names, meta.sampling_rate_hz,
                     len(meta.lead_names), trained_on, meta.temperatures is not None,
                     meta.threshold_origin.describe())


def run_models(bundles: Sequence[str] = (), card: str | None = None) -> ModelsRun:
    """``models``: the starter model and the named bundles, or one bundle's model card."""
    if card is not None:
        return ModelsRun((), model_card(card))
    return ModelsRun(tuple(_model_info(b) for b in (STARTER, *bundles)))


# -- explain --------------------------------------------------------------------------------------------------


def select_inputs(predictor: Predictor, caches: Sequence[str | os.PathLike], records: Sequence[str] = (),
                  n_records: int = 3) -> list[ModelInput]:
    """The records a per-record explain command runs on: ids in the caches, record files (no caches), or a
    seeded choice of ``n_records`` test-split records."""
    meta = predictor.meta
    if records and caches:
        return inputs_by_id(open_caches(caches, meta), meta, records)
    if records:
        return file_inputs(records, meta)
    if not caches:
        raise ValueError("give --records FILES, or --data CACHE (with or without --records)")
    inputs = split_inputs(open_caches(caches, meta), meta, "test", n_records)
    if not inputs:
        raise ValueError(f"{', '.join(map(str, caches))}: no test-split record to explain (under the bundle's split);"
                         " name records with --records")
    return inputs


def _background(predictor: Predictor, caches: Sequence[str | os.PathLike], n: int) -> Background:
    background = bundle_background(predictor.meta, caches, n, predictor.bundle)
    if background is None:
        raise ValueError("SHAP needs a background: pass a cache (--data, or --background for predict); its "
                         "training split is used")
    return background


@dataclass(frozen=True)
class MapsRun:
    """Per-record explanations and the files written for them."""

    explanations: tuple[RecordExplanation, ...]
    written: Written

    def lines(self) -> list[str]:
        """What the CLI prints."""
        rows = [f"{e.input.record_id} {e.class_name} p={e.probability:.3f}" for e in self.explanations]
        return [*rows, self.written.line()]


def run_record_maps(method: str, checkpoint: str | os.PathLike, caches: Sequence[str | os.PathLike] = (),
                    records: Sequence[str] = (), n_records: int = 3, class_name: str | None = None,
                    out: str | os.PathLike = "ecglens-out/explain", device: str = "auto", background: int = 100,
                    n_samples: int = 8, figures: FigureOptions = DEFAULT_FIGURES) -> MapsRun:
    """``explain gradcam|shap|guided-gradcam``: each record's map for its predicted classes (or ``class_name``)."""
    predictor = Predictor(checkpoint, device)
    inputs = select_inputs(predictor, caches, records, n_records)
    base = _background(predictor, caches, background) if method == "shap" else None
    explanations = explain_inputs(predictor.model, predictor.meta, inputs, method, class_name, base, n_samples)
    written = write_record_explanations(explanations, predictor.meta, Path(out), figures)
    return MapsRun(tuple(explanations), Written(written[:1]))


@dataclass(frozen=True)
class LeadShapleyRun:
    """Lead Shapley tables and the files written for them."""

    tables: tuple[LeadShapleyTable, ...]
    shown_classes: tuple[str, ...]
    written: Written

    def lines(self) -> list[str]:
        """What the CLI prints: one table per record."""
        out = []
        for table in self.tables:
            kind = "exact" if table.exact else "sampled"
            out.append(f"{table.input.record_id} ({kind}, baseline {table.baseline}):")
            out.append(lead_shapley_frame(table)[list(self.shown_classes)].to_string(
                float_format=lambda v: f"{v:+.4f}"))
        return [*out, self.written.line()]


def run_lead_shapley(checkpoint: str | os.PathLike, caches: Sequence[str | os.PathLike] = (),
                     records: Sequence[str] = (), n_records: int = 3, class_name: str | None = None,
                     out: str | os.PathLike = "ecglens-out/explain", device: str = "auto",
                     baseline: str = "conditional", n_permutations: int | None = None,
                     limb_as_one: bool = False) -> LeadShapleyRun:
    """``explain lead-shapley``: exact (or sampled) Shapley values of the leads for every class."""
    predictor = Predictor(checkpoint, device)
    meta = predictor.meta
    if class_name is not None and class_name not in meta.class_names:
        raise ValueError(f"unknown class {class_name!r}; choose from {', '.join(meta.class_names)}")
    inputs = select_inputs(predictor, caches, records, n_records)
    background = None
    if baseline != "zeros":
        background = bundle_background(predictor.meta, caches, 100, predictor.bundle)
        if background is None:
            raise ValueError(f"the {baseline} baseline needs a background (the training split of a cache: --data), "
                             "or use --baseline zeros")
    tables = lead_shapley_tables(predictor.model, meta, inputs, baseline, background, n_permutations, limb_as_one)
    written = write_lead_shapley(tables, Path(out))
    shown = (class_name,) if class_name else meta.class_names
    return LeadShapleyRun(tuple(tables), shown, Written(written[:1]))


@dataclass(frozen=True)
class PopulationRun:
    """The population heatmap's numbers and files (None on the other ranks of a torchrun job)."""

    result: PopulationImportance | None
    n_records: int
    written: Written

    def lines(self) -> list[str]:
        """What the CLI prints (nothing on ranks other than 0)."""
        if self.result is None:
            return []
        return [*population_lines(self.result),
                f"{self.n_records} records in {self.result.seconds:.0f} s; {self.written.line()}"]


SHARDS_DIR = ".shards"
"""Where ``explain population`` and ``explain faithfulness`` keep finished shards under ``--out`` until done."""


def _sharded_job(checkpoint: str | os.PathLike, device: str, inputs: CachedInputs, **options) -> tuple[Predictor, dict]:
    """The model on this process's device, and what identifies a sharded explanation job."""
    predictor = Predictor(checkpoint, str(rank_device(resolve_device(device))))
    job = {"checkpoint": bundle_digest(checkpoint), "records": inputs.record_ids, **options}
    return predictor, job


def run_population(checkpoint: str | os.PathLike, caches: Sequence[str | os.PathLike], n_records: int = 200,
                   split: str = "test", background: int = 100, n_samples: int | None = None,
                   out: str | os.PathLike = "ecglens-out/explain", device: str = "auto",
                   progress: bool = True, *, grouping: str = "predicted", target_error: float = 0.05,
                   max_samples: int = 64, check_records: int = 3) -> PopulationRun:
    """``explain population``: the lead x class SHAP heatmap over a split's records, signed, with its error.

    Resumable (finished shards of records are kept in ``out/.shards`` until the result is written) and
    spread over processes under ``torchrun`` (rank 0 writes the result).
    """
    meta = read_meta(checkpoint)
    opened = open_caches(caches, meta)
    inputs = split_inputs(opened, meta, split, n_records, lazy=True)
    predictor, job = _sharded_job(checkpoint, device, inputs, command="population", background=background,
                                  grouping=grouping)
    store = Path(out) / SHARDS_DIR
    result = population_importance(predictor.model, inputs, training_background(opened, meta, background),
                                   meta.class_names, meta.lead_names, n_samples, progress=progress, store=store,
                                   job=job, decide=meta.decided, grouping=grouping, target_error=target_error,
                                   max_samples=max_samples, agreement_records=check_records,
                                   never=dict(meta.not_validated))
    if result is None:
        return PopulationRun(None, len(inputs), Written(()))
    title = f"SHAP per lead, {len(inputs)} {split} records"
    written = write_population(result, Path(out), title)
    finish(store, job)
    return PopulationRun(result, len(inputs), Written(written))


@dataclass(frozen=True)
class FaithfulnessRun:
    """Faithfulness measures and their files (None on the other ranks of a torchrun job)."""

    result: FaithfulnessResult | None
    written: Written

    def lines(self) -> list[str]:
        """What the CLI prints (nothing on ranks other than 0)."""
        return [] if self.result is None else [self.result.to_markdown(), self.written.line()]


def run_faithfulness(checkpoint: str | os.PathLike, caches: Sequence[str | os.PathLike], n_records: int = 40,
                     methods: Sequence[str] = ("gradcam", "shap"), steps: int = 10, background: int = 50,
                     out: str | os.PathLike = "ecglens-out/explain", device: str = "auto",
                     progress: bool = True) -> FaithfulnessRun:
    """``explain faithfulness``: deletion/insertion against random order, localisation, randomisation check.

    Resumable and spread over ``torchrun`` processes as `run_population`.
    """
    meta = read_meta(checkpoint)
    opened = open_caches(caches, meta)
    inputs = split_inputs(opened, meta, "test", n_records, lazy=True)
    predictor, job = _sharded_job(checkpoint, device, inputs, command="faithfulness", background=background)
    store = Path(out) / SHARDS_DIR
    result = faithfulness(predictor.model, meta, inputs, training_background(opened, meta, background), methods,
                          steps, progress=progress, store=store, job=job)
    if result is None:
        return FaithfulnessRun(None, Written(()))
    written = write_faithfulness(result, Path(out), "mean curves over records and classes")
    finish(store, job)
    return FaithfulnessRun(result, Written(written))


# -- predict --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PredictRun:
    """Predictions, unreadable files, explanations drawn, and the files written."""

    predictions: tuple[Prediction, ...]
    issues: tuple[ReadIssue, ...]
    figures: tuple[dict, ...]
    written: Written

    def problems(self) -> list[str]:
        """What the CLI prints on standard error."""
        total = len(self.predictions) + len(self.issues)
        if not total:
            return ["error: no record files found in the given paths"]
        if not self.predictions:
            return [*issue_lines(self.issues), f"error: none of the {total} record(s) could be read"]
        if self.issues:
            return [*issue_lines(self.issues), f"{len(self.issues)} of {total} record(s) unreadable; the others "
                    "were predicted"]
        return []

    @property
    def exit_code(self) -> int:
        """0 when at least one record was predicted, 1 when none could be read (or none was found)."""
        return 0 if self.predictions else 1

    def lines(self) -> list[str]:
        """The terminal table and where things went."""
        width = max([len(p.record_id) for p in self.predictions] + [6])
        truth = any(p.true_labels is not None for p in self.predictions)
        truth_head = "true (file)     " if truth else ""
        lines = [f"{'record':<{width}}  {'decisions (probability)':<40} {truth_head}warnings"]
        for p in self.predictions:
            decided = ", ".join(f"{d} ({p.probabilities[d]:.2f})" for d in p.decisions) or (
                "none; highest " + ", ".join(f"{n} {v:.2f}" + (" (not validated)" if n in p.not_validated else "")
                                             for n, v in p.top(2)) if p.status == "ok"
                else f"{p.status}: {'; '.join(p.reasons)}")
            known = "" if not truth else f"{_truth_text(p.true_labels):<15} "
            lines.append(f"{p.record_id:<{width}}  {decided:<40} {known}{'; '.join(p.warnings)}")
        if self.figures:
            lines.append(f"{len(self.figures)} explanation figure(s) in {Path(self.figures[0]['figure']).parent}")
        unknown = next((p.not_validated for p in self.predictions if p.not_validated), {})
        if unknown:
            lines.append(f"never decided (not validated: too few training or validation positives): "
                         f"{', '.join(unknown)}")
        lines.append(f"{len(self.predictions)} predicted, {len(self.issues)} unreadable; {self.written.line()}")
        return lines


def _truth_text(labels: tuple[str, ...] | None) -> str:
    return "unknown" if labels is None else ", ".join(labels) or "none"


def run_predict(checkpoint: str | os.PathLike, paths: Sequence[str | os.PathLike],
                out: str | os.PathLike = "ecglens-out/predict", sampling_rate_hz: float | None = None,
                lead_names: Sequence[str] | None = None, engine: str = "torch", batch_size: int = 32,
                explain: str | None = None, background_caches: Sequence[str | os.PathLike] = (),
                device: str = "auto", progress: bool = True, figures: FigureOptions = DEFAULT_FIGURES,
                force: bool = False) -> PredictRun:
    """``predict``: read and score every file once; with ``explain``, explain each record's scored input
    for its decisions (or its most probable class) and draw it under ``OUT/figures``.

    ``lead_names`` is the lead order of CSV files without a header and of NumPy files (default I, ..., V6).
    """
    lead_names = canonical_leads(lead_names) if lead_names else LEAD_NAMES
    predictor = Predictor(checkpoint, device, engine, force)
    meta = predictor.meta
    background = _background(predictor, background_caches, 100) if explain == "shap" else None
    out = Path(out)
    predictions, issues, drawn = [], [], []
    # Everything is written into a staging folder and moved into OUT only when at least one record was predicted:
    # a failed run never replaces earlier results with empty files (its partial rows, if any, are kept in OUT).
    with StagedFolder(out, keep_on_failure=(PredictionLog.PARTIAL_NAME,)) as stage:
        with PredictionLog(stage.path, moved_to=out) as log:  # rows reach the disk as they come
            for item in iter_scored_files(predictor, paths, batch_size, sampling_rate_hz, lead_names, progress):
                if isinstance(item, ReadIssue):
                    issues.append(item)
                    continue
                predictions.append(item.prediction)
                log.add(item.prediction)
                if explain and item.prediction.status == "ok":  # the scored input, drawn now: no batch held
                    explained = explain_inputs(predictor.model, meta, [item.input], explain, background=background,
                                               probabilities=item.probabilities[None])
                    drawn += draw_explanations(explained, meta, stage.path / "figures", figures)
        drawn = [_rerooted(d, stage) for d in drawn]  # the paths the figures will have in OUT
        written = (log.path, *write_prediction_tables(predictions, issues, meta.class_names, stage.path))
        if drawn:
            written += (write_json(stage.path / "figures" / f"{explain}.json", drawn),)
        if predictions:
            stage.commit()
    written = tuple(stage.final(p) for p in written) if predictions else ()
    return PredictRun(tuple(predictions), tuple(issues), tuple(drawn), Written(written))


def _rerooted(figure: dict, stage: StagedFolder) -> dict:
    """A drawn figure's entry with its file paths moved from the staging folder to the output folder."""
    prefix = str(stage.path)
    return {k: str(stage.out) + v[len(prefix):] if isinstance(v, str) and v.startswith(prefix) else v
            for k, v in figure.items()}


@dataclass(frozen=True)
class RobustnessRun:
    """``robustness``: what was measured and where it was written."""

    result: RobustnessResult
    written: Written

    def lines(self) -> list[str]:
        """What the CLI prints: one line per condition, the flipping budgets, the files."""
        r = self.result

        def fmt(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        lines = [f"{r.n_records} {r.split} records; macro AUC / F1 at the bundle's thresholds / decisions changed:"]
        for c in (*r.conditions, *r.transfer):
            changed = "" if c.changed is None else f"{c.changed:6.0%}"
            lines.append(f"  {c.family:<11} {c.label:<40} {fmt(c.macro_auc)}  {fmt(c.macro_f1)}  {changed} {c.note}")
        for spectrum in r.spectra:
            lines.append(f"  spectrum of {spectrum.label} at {spectrum.eps_uv:g} uV: {spectrum.share_above_40hz:.1%} "
                         "of its power above 40 Hz")
        if r.flip_budgets:
            attack = r.flip_budgets[0].attack
            lines.append(f"flipping budgets ({attack}), median read from the survival curve (records decided "
                         "positive / negative): " + ", ".join(
                             f"{f.name} {f.median_text()} ({f.n_positive}+/{f.n_records - f.n_positive}-)"
                             for f in r.flip_budgets))
        lines += [f"left out of the flipping budgets: {reason}" for reason in r.left_out]
        return [*lines, self.written.line()]


def run_robustness_report(checkpoint: str | os.PathLike, caches: Sequence[str | os.PathLike],
                          out: str | os.PathLike, split: str = "test", n_records: int | None = 200,
                          quick: bool = False, n_flip: int = 10, transfer: str | None = None, device: str = "auto",
                          seed: int = 0, flip_attack: str = "smooth") -> RobustnessRun:
    """``robustness``: the bundle under noise, faults and attacks, written as JSON, CSV, figures and HTML."""
    result = run_robustness(checkpoint, caches, split, n_records, default_suite(quick), n_flip=n_flip,
                            pgd_steps=5 if quick else 10, transfer_bundle=transfer, device=device, seed=seed,
                            budgets_uv=(10.0, 50.0) if quick else LINF_BUDGETS_UV, flip_attack=flip_attack)
    paths = write_robustness(result, Path(out), read_meta(checkpoint).lead_names)
    return RobustnessRun(result, Written(paths))
