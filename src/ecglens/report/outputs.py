"""Writers: the files of each command, rendered from its result objects (numbers first, then views).

Every file is written atomically (`ecglens.util.atomic`), and file names derived from record ids go through
`ecglens.report.paths.safe_name`, so they stay inside the output folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecglens.bundle.meta import BundleMeta
from ecglens.explain.attribution import lead_mass
from ecglens.explain.faithfulness import FaithfulnessResult
from ecglens.explain.population import PopulationImportance
from ecglens.explain.records import LeadShapleyTable, RecordExplanation
from ecglens.metrics import EvaluationResult, OutOfScopeTable
from ecglens.report.figures import (
    DEFAULT_FIGURES,
    FigureOptions,
    curves_figure,
    explanation_figure,
    lead_class_heatmap,
    reliability_figure,
    save_figure,
)
from ecglens.report.html import evaluation_table, figure_from_png, out_of_scope_html, page, strict_json
from ecglens.report.paths import safe_name
from ecglens.util.atomic import atomic_open, write_json, write_text


@dataclass(frozen=True)
class DrawnExplanation:
    """One explanation figure written: what it explains, where it is, and each lead's total |attribution|."""

    record_id: str
    class_name: str
    method: str
    probability: float
    figure: Path
    lead_mass: dict[str, float]
    additivity: dict | None = None
    """SHAP's sum, its Monte-Carlo error and its expectation (`ecglens.explain.records.Additivity`); None else."""

    def moved(self, staged: Path, final: Path) -> DrawnExplanation:
        """The same figure once the folder ``staged`` it was drawn in has become ``final``."""
        return replace(self, figure=final / self.figure.relative_to(staged))

    def to_dict(self) -> dict:
        """Plain data for ``<method>.json``."""
        return {
            "record_id": self.record_id,
            "class": self.class_name,
            "method": self.method,
            "probability": self.probability,
            "figure": str(self.figure),
            "lead_mass": self.lead_mass,
            **({} if self.additivity is None else {"additivity": self.additivity}),
        }


def draw_explanations(
    explanations: Sequence[RecordExplanation], meta: BundleMeta, out: Path, options: FigureOptions = DEFAULT_FIGURES
) -> list[DrawnExplanation]:
    """A figure per record and class and an ``.npz`` of the maps per record; returns what was drawn."""
    rows: list[DrawnExplanation] = []
    maps: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for explanation in explanations:
        stem = safe_name(explanation.input.record_id)
        figure = save_figure(
            explanation_figure(explanation, meta, options),
            out / f"{stem}_{explanation.class_name}_{explanation.method}.{options.image_format}",
        )
        maps.setdefault((stem, explanation.method), {})[explanation.class_name] = explanation.values
        mass = dict(zip(meta.lead_names, lead_mass(explanation.values).tolist(), strict=True))
        rows.append(
            DrawnExplanation(
                explanation.input.record_id,
                explanation.class_name,
                explanation.method,
                float(explanation.probability),
                figure,
                mass,
                None if explanation.additivity is None else explanation.additivity.to_dict(),
            )
        )
    for (stem, method), values in maps.items():
        with atomic_open(out / f"{stem}_{method}.npz", "wb") as handle:
            arrays: dict[str, Any] = values
            np.savez_compressed(handle, **arrays)
    return rows


def write_record_explanations(
    explanations: Sequence[RecordExplanation], meta: BundleMeta, out: Path, options: FigureOptions = DEFAULT_FIGURES
) -> tuple[Path, ...]:
    """`draw_explanations` plus ``<method>.json`` summarising every figure; returns the JSON path first."""
    if not explanations:
        return ()
    drawn = draw_explanations(explanations, meta, out, options)
    return write_json(out / f"{explanations[0].method}.json", [d.to_dict() for d in drawn]), *(d.figure for d in drawn)


def lead_shapley_frame(table: LeadShapleyTable) -> pd.DataFrame:
    """A record's lead Shapley values as a leads x classes table."""
    return pd.DataFrame(table.values, index=list(table.lead_names), columns=list(table.class_names))


def write_lead_shapley(tables: Sequence[LeadShapleyTable], out: Path) -> tuple[Path, ...]:
    """``<record>_lead_shapley.csv`` per record and ``lead_shapley.json`` with all of them."""
    paths = []
    for table in tables:
        path = out / f"{safe_name(table.input.record_id)}_lead_shapley.csv"
        with atomic_open(path, newline="") as handle:
            lead_shapley_frame(table).to_csv(handle)
        paths.append(path)
    results = {t.input.record_id: lead_shapley_frame(t).to_dict() for t in tables}
    return write_json(out / "lead_shapley.json", results), *paths


def population_frame(result: PopulationImportance, view: str = "signed") -> pd.DataFrame:
    """One view of the population as % of each row's total absolute value, classes x leads, with the average row,
    then each cell's Monte-Carlo standard error (``<lead> SE`` columns)."""
    shares, errors = result.shares(view)
    leads = list(result.lead_names)
    table = pd.DataFrame(shares * 100, index=list(result.class_names), columns=leads)
    table.loc["average"] = result.average(view) * 100
    table.insert(0, "n", [*result.counts, sum(result.counts)])
    se = pd.DataFrame(errors * 100, index=list(result.class_names), columns=[f"{lead} SE" for lead in leads])
    return table.join(se)


def population_lines(result: PopulationImportance) -> list[str]:
    """What a terminal shows: the signed table in %, its error, and the agreement with exact lead Shapley."""
    table = population_frame(result)[["n", *result.lead_names]]
    lines = [
        f"signed SHAP per lead, % of each row's |total|; records grouped by {result.grouping} class; "
        f"{result.samples} samples per explained record on average",
        table.to_string(float_format=lambda v: f"{v:+.0f}" if round(v) else "0"),
    ]
    error = result.relative_error()
    if error is not None:
        lines.append(
            f"Monte-Carlo error: mean SE {error:.1%} of the mean |cell|"
            + ("" if result.target_error is None else f" (target {result.target_error:.0%})")
        )
    agreement = result.agreement
    if agreement is not None and agreement.mean_spearman is not None:
        lines.append(
            f"rank agreement with exact lead Shapley ({len(agreement.players)} players, limb leads as one, "
            f"conditional baseline): mean Spearman {agreement.mean_spearman:.2f} over {agreement.n_pairs} "
            f"(record, class) pairs of {agreement.n_records} records"
        )
    return lines + [f"note: {note}" for note in result.notes]


def write_population(result: PopulationImportance, out: Path, title: str) -> tuple[Path, ...]:
    """``population.json``, ``population.csv`` (signed), ``population_absolute.csv`` and the heatmap
    ``population.png``."""
    figure = save_figure(lead_class_heatmap(result, title), out / "population.png")
    paths = []
    for view, name in (("signed", "population.csv"), ("absolute", "population_absolute.csv")):
        with atomic_open(out / name, newline="") as handle:
            population_frame(result, view).to_csv(handle)
        paths.append(out / name)
    return write_json(out / "population.json", strict_json(result.to_dict())), *paths, figure


def write_faithfulness(result: FaithfulnessResult, out: Path, title: str) -> tuple[Path, ...]:
    """``faithfulness.json``, ``faithfulness.md``, ``faithfulness.csv`` and the mean curves figure."""
    figure = save_figure(curves_figure(result.fractions, result.mean_curves, title), out / "faithfulness_curves.png")
    with atomic_open(out / "faithfulness.csv", newline="") as handle:
        pd.DataFrame(result.to_dict()["rows"]).to_csv(handle, index=False)
    return (
        write_json(out / "faithfulness.json", strict_json(result.to_dict())),
        write_text(out / "faithfulness.md", result.to_markdown()),
        out / "faithfulness.csv",
        figure,
    )


def write_evaluation_views(
    results: Sequence[EvaluationResult],
    threshold_origin: str,
    out: Path,
    title: str,
    out_of_scope: OutOfScopeTable | None = None,
) -> tuple[Path, ...]:
    """``reliability.png`` (per-class reliability diagrams of the first, combined result) and ``evaluation.html``
    (every result's table with intervals, calibration, set-level scores and flags, the decisions on records
    outside the label space, then the diagrams)."""
    figure = reliability_figure(results[0], title)
    png = save_figure(figure, out / "reliability.png")
    sections = [(result.name, evaluation_table(result, threshold_origin)) for result in results]
    if out_of_scope is not None:
        sections.append(("Records outside the label space", out_of_scope_html(out_of_scope)))
    sections.append(("Calibration: reliability per class", figure_from_png(png, "reliability diagrams")))
    return png, write_text(out / "evaluation.html", page(title, sections))
