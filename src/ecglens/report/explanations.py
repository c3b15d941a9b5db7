"""Explanation figures for reports: Grad-CAM of right and wrong test records, population heatmaps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ecglens.bundle import BundleMeta
from ecglens.explain.inputs import Background
from ecglens.explain.population import PopulationImportance, population_importance
from ecglens.explain.records import explain_inputs, probabilities_of
from ecglens.preprocess import ModelInput
from ecglens.report.figures import explanation_figure, lead_class_heatmap, save_figure
from ecglens.report.paths import safe_name


@dataclass(frozen=True)
class ExampleFigure:
    """A Grad-CAM example written for a report: a correctly or incorrectly classified record."""

    kind: str
    record_id: str
    class_name: str
    path: str


def gradcam_examples(model: nn.Module, meta: BundleMeta, records: Sequence[ModelInput], out: Path,
                     n_correct: int = 2, n_wrong: int = 2) -> list[ExampleFigure]:
    """Grad-CAM figures (the study's Figures 6-8) for the first right and wrong records of a set."""
    if not records:
        return []
    probabilities = probabilities_of(model, records)
    decided = meta.decided(probabilities)  # a class that is not validated is never decided, so never "right"
    right = [i for i, item in enumerate(records) if (decided[i] == (item.labels > 0.5)).all()]
    wrong = [i for i in range(len(records)) if i not in set(right)]
    figures = []
    for kind, picks in (("correct", right[:n_correct]), ("incorrect", wrong[:n_wrong])):
        for i in picks:
            explanation = explain_inputs(model, meta, [records[i]], "gradcam",
                                         probabilities=probabilities[i : i + 1])[0]
            fig = explanation_figure(explanation, meta, title_prefix=f"{kind}: ")
            path = save_figure(fig, out / f"{safe_name(records[i].record_id)}_{explanation.class_name}_gradcam.png")
            figures.append(ExampleFigure(kind, records[i].record_id, explanation.class_name, str(path)))
    return figures


def population_heatmap(model: nn.Module, meta: BundleMeta, records: Sequence[ModelInput], background: Background,
                       path: Path, title: str, n_samples: int = 4, progress: bool = True) -> PopulationImportance:
    """The study's Figures 2-5 for one model and record set; the figure is written to ``path``."""
    result = population_importance(model, records, background, meta.class_names, meta.lead_names, n_samples,
                                   progress=progress)
    fig = lead_class_heatmap(result.matrix, result.average(), result.counts, title, result.class_names,
                             result.lead_names)
    save_figure(fig, path)
    return result
