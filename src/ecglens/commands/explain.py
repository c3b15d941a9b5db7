"""``explain gradcam|guided-gradcam|shap|lead-shapley|population|faithfulness``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecglens.bundle.meta import bundle_digest, read_meta
from ecglens.commands.common import Written
from ecglens.data.cache import open_caches
from ecglens.explain.faithfulness import FaithfulnessResult, faithfulness
from ecglens.explain.inputs import (
    CachedInputs,
    bundle_background,
    file_inputs,
    inputs_by_id,
    required_background,
    split_inputs,
    training_background,
)
from ecglens.explain.limits import check_population_options
from ecglens.explain.population import PopulationImportance, population_importance
from ecglens.explain.records import LeadShapleyTable, RecordExplanation, explain_inputs, lead_shapley_tables
from ecglens.explain.shards import finish
from ecglens.models import resolve_device
from ecglens.predict import Predictor
from ecglens.preprocess import ModelInput
from ecglens.report.figures import DEFAULT_FIGURES, FigureOptions
from ecglens.report.html import number
from ecglens.report.outputs import (
    lead_shapley_frame,
    population_lines,
    write_faithfulness,
    write_lead_shapley,
    write_population,
    write_record_explanations,
)
from ecglens.util.distributed import rank_device

if TYPE_CHECKING:  # explain waves loads its modules (and neurokit2) when it runs
    from ecglens.explain.waves import NullComparison, PlausibilityRow, WaveExplanation


def select_inputs(
    predictor: Predictor, caches: Sequence[str | os.PathLike], records: Sequence[str] = (), n_records: int = 3
) -> list[ModelInput]:
    """The records a per-record explain command runs on: ids in the caches, record files (no caches), or a
    seeded choice of ``n_records`` test-split records."""
    meta = predictor.meta
    if records and caches:
        return inputs_by_id(open_caches(caches, meta.sampling_rate_hz), meta, records)
    if records:
        return file_inputs(records, meta)
    if not caches:
        raise ValueError("give --records FILES, or --data CACHE (with or without --records)")
    inputs = split_inputs(open_caches(caches, meta.sampling_rate_hz), meta, "test", n_records)
    if not inputs:
        raise ValueError(
            f"{', '.join(map(str, caches))}: no test-split record to explain (under the bundle's split);"
            " name records with --records"
        )
    return inputs


@dataclass(frozen=True)
class MapsRun:
    """Per-record explanations and the files written for them."""

    explanations: tuple[RecordExplanation, ...]
    written: Written

    def lines(self) -> list[str]:
        """What the CLI prints."""
        rows = [
            f"{e.input.record_id} {e.class_name} p={e.probability:.3f}"
            + ("" if e.additivity is None else f"; {e.additivity.line()}")
            for e in self.explanations
        ]
        return [*rows, self.written.line()]


def run_record_maps(
    method: str,
    checkpoint: str | os.PathLike,
    caches: Sequence[str | os.PathLike] = (),
    records: Sequence[str] = (),
    n_records: int = 3,
    class_name: str | None = None,
    out: str | os.PathLike = "ecglens-out/explain",
    device: str = "auto",
    background: int = 100,
    n_samples: int = 8,
    figures: FigureOptions = DEFAULT_FIGURES,
) -> MapsRun:
    """``explain gradcam|shap|guided-gradcam``: each record's map for its predicted classes (or ``class_name``)."""
    predictor = Predictor(checkpoint, device)
    inputs = select_inputs(predictor, caches, records, n_records)
    base = required_background(predictor.meta, caches, background, predictor.bundle) if method == "shap" else None
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
            out.append(
                lead_shapley_frame(table)[list(self.shown_classes)].to_string(float_format=lambda v: f"{v:+.4f}")
            )
        return [*out, self.written.line()]


def run_lead_shapley(
    checkpoint: str | os.PathLike,
    caches: Sequence[str | os.PathLike] = (),
    records: Sequence[str] = (),
    n_records: int = 3,
    class_name: str | None = None,
    out: str | os.PathLike = "ecglens-out/explain",
    device: str = "auto",
    baseline: str = "conditional",
    n_permutations: int | None = None,
    limb_as_one: bool = False,
) -> LeadShapleyRun:
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
            raise ValueError(
                f"the {baseline} baseline needs a background (the training split of a cache: --data), "
                "or use --baseline zeros"
            )
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
        return [
            *population_lines(self.result),
            f"{self.n_records} records in {self.result.seconds:.0f} s; {self.written.line()}",
        ]


SHARDS_DIR = ".shards"
"""Where ``explain population`` and ``explain faithfulness`` keep finished shards under ``--out`` until done."""


def _sharded_job(checkpoint: str | os.PathLike, device: str, inputs: CachedInputs, **options) -> tuple[Predictor, dict]:
    """The model on this process's device, and what identifies a sharded explanation job."""
    predictor = Predictor(checkpoint, str(rank_device(resolve_device(device))))
    job = {"checkpoint": bundle_digest(checkpoint), "records": inputs.record_ids, **options}
    return predictor, job


def run_population(
    checkpoint: str | os.PathLike,
    caches: Sequence[str | os.PathLike],
    n_records: int = 200,
    split: str = "test",
    background: int = 100,
    n_samples: int | None = None,
    out: str | os.PathLike = "ecglens-out/explain",
    device: str = "auto",
    progress: bool = True,
    *,
    grouping: str = "predicted",
    target_error: float = 0.05,
    max_samples: int = 64,
    check_records: int = 3,
) -> PopulationRun:
    """``explain population``: the lead x class SHAP heatmap over a split's records, signed, with its error.

    Resumable (finished shards of records are kept in ``out/.shards`` until the result is written) and
    spread over processes under ``torchrun`` (rank 0 writes the result). Options out of the bounds of
    `ecglens.explain.limits` are refused (ValueError) before any work.
    """
    check_population_options(n_records, background, n_samples, target_error, max_samples, check_records)
    meta = read_meta(checkpoint)
    opened = open_caches(caches, meta.sampling_rate_hz)
    inputs = split_inputs(opened, meta, split, n_records, lazy=True)
    predictor, job = _sharded_job(
        checkpoint, device, inputs, command="population", background=background, grouping=grouping
    )
    store = Path(out) / SHARDS_DIR
    result = population_importance(
        predictor.model,
        inputs,
        training_background(opened, meta, background),
        meta.class_names,
        meta.lead_names,
        n_samples,
        progress=progress,
        store=store,
        job=job,
        decide=meta.decided,
        grouping=grouping,
        target_error=target_error,
        max_samples=max_samples,
        agreement_records=check_records,
        never=dict(meta.not_validated),
    )
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


def run_faithfulness(
    checkpoint: str | os.PathLike,
    caches: Sequence[str | os.PathLike],
    n_records: int = 40,
    methods: Sequence[str] = ("gradcam", "shap"),
    steps: int = 10,
    background: int = 50,
    out: str | os.PathLike = "ecglens-out/explain",
    device: str = "auto",
    progress: bool = True,
) -> FaithfulnessRun:
    """``explain faithfulness``: deletion/insertion against random order, localisation, randomisation check.

    Resumable and spread over ``torchrun`` processes as `run_population`.
    """
    meta = read_meta(checkpoint)
    opened = open_caches(caches, meta.sampling_rate_hz)
    inputs = split_inputs(opened, meta, "test", n_records, lazy=True)
    predictor, job = _sharded_job(checkpoint, device, inputs, command="faithfulness", background=background)
    store = Path(out) / SHARDS_DIR
    result = faithfulness(
        predictor.model,
        meta,
        inputs,
        training_background(opened, meta, background),
        methods,
        steps,
        progress=progress,
        store=store,
        job=job,
    )
    if result is None:
        return FaithfulnessRun(None, Written(()))
    written = write_faithfulness(result, Path(out), "mean curves over records and classes")
    finish(store, job)
    return FaithfulnessRun(result, Written(written))


@dataclass(frozen=True)
class WavesRun:
    """Explanations placed among the heart's waves, per record and over records, and the files written."""

    explained: tuple[WaveExplanation, ...]
    table: tuple[PlausibilityRow, ...]
    written: Written

    def lines(self) -> list[str]:
        """What the CLI prints: per class and method, the mean plausibility beside its chance level and its
        pointing-game hit rate; under it, the paired difference from each null map."""

        lines = [f"{'class':<6} {'method':<15} {'n':>3}  plausibility [95 % CI]   chance  pointing  top segment"]
        for row in self.table:
            interval = "" if row.interval is None else f" [{row.interval[0]:.2f}, {row.interval[1]:.2f}]"
            empty = f"; {row.n_without_evidence} maps without positive evidence" if row.n_without_evidence else ""
            lines.append(
                f"{row.class_name:<6} {row.method:<15} {row.n:>3}  {number(row.plausibility, 2) + interval:<23}"
                f"  {number(row.chance, 2):>6}  {number(row.pointing, 2):>8}  {row.top_segment()}{empty}"
            )
            if row.nulls:
                lines.append(f"{'':<27}minus " + " · ".join(_null_text(n) for n in row.nulls))
        sources = sorted({item.marks.source for item in self.explained})
        legend = (
            "minus <null>: the mean paired difference in plausibility from a map that knows no class (edge: |dx/dt|; "
            "amplitude: |x - median|; random-model: the method on the network with its weights re-drawn), with "
            "its 95 % bootstrap interval (from 10 pairs on), the pairs n and a paired sign-flip test's p; above/below: "
            "p < 0.05"
        )
        return [*lines, legend, f"waves from: {', '.join(sources) or 'none'}", self.written.line()]


def _null_text(comparison: NullComparison) -> str:
    """``edge -0.21 [-0.25, -0.17] n 14, p < 0.001 below``."""
    from ecglens.explain.waves import difference_text

    if comparison.difference is None:
        return f"{comparison.null} - (no map with positive evidence)"
    return f"{comparison.null} {difference_text(comparison)} {comparison.verdict()}"


def run_waves(
    checkpoint: str | os.PathLike,
    caches: Sequence[str | os.PathLike] = (),
    records: Sequence[str] = (),
    n_records: int = 3,
    class_name: str | None = None,
    out: str | os.PathLike = "ecglens-out/waves",
    device: str = "auto",
    methods: Sequence[str] = ("gradcam", "shap"),
    marks: str = "auto",
    background: int = 100,
    figures: FigureOptions = DEFAULT_FIGURES,
    nulls: Sequence[str] = ("edge", "amplitude", "random-model"),
) -> WavesRun:
    """``explain waves``: each record's explanations among its waves, and the plausibility per class and method
    beside the null maps ``nulls`` (`ecglens.explain.waves.NULLS`)."""
    from ecglens.explain.waves import explain_waves, plausibility_table
    from ecglens.report.waves import write_waves

    predictor = Predictor(checkpoint, device)
    inputs = select_inputs(predictor, caches, records, n_records)
    base = required_background(predictor.meta, caches, background, predictor.bundle) if "shap" in methods else None
    explained = explain_waves(predictor.model, predictor.meta, inputs, methods, class_name, base, marks, nulls)
    table = plausibility_table(explained)
    written = write_waves(explained, table, predictor.meta, Path(out), figures)
    return WavesRun(tuple(explained), tuple(table), Written(written[:4]))
