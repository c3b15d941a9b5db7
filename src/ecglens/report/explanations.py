"""Explanation figures for reports: Grad-CAM of right and wrong test records, population heatmaps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from markupsafe import Markup
from torch import nn

from ecglens.bundle.meta import BundleMeta
from ecglens.explain.faithfulness import FaithfulnessResult, format_gain
from ecglens.explain.inputs import Background
from ecglens.explain.population import PopulationImportance, population_importance
from ecglens.explain.records import explain_inputs, probabilities_of
from ecglens.preprocess import ModelInput
from ecglens.report.figures import explanation_figure, lead_class_heatmap, save_figure
from ecglens.report.html import table_to_html
from ecglens.report.paths import safe_name


@dataclass(frozen=True)
class ExampleFigure:
    """A Grad-CAM example written for a report: a correctly or incorrectly classified record."""

    kind: str
    record_id: str
    class_name: str
    path: str


def gradcam_examples(
    model: nn.Module, meta: BundleMeta, records: Sequence[ModelInput], out: Path, n_correct: int = 2, n_wrong: int = 2
) -> list[ExampleFigure]:
    """Grad-CAM figures (the study's Figures 6-8) for the first right and wrong records of a set: of what was decided
    (else the most probable class) and, on a wrong record, of every class it missed too."""
    if not records:
        return []
    probabilities = probabilities_of(model, records)
    decided = meta.decided(probabilities)  # a class that is not validated is never decided, so never "right"
    known = [i for i, item in enumerate(records) if item.labels is not None]  # right or wrong needs labels
    right = [i for i in known if (decided[i] == (np.asarray(records[i].labels) > 0.5)).all()]
    wrong = [i for i in known if i not in set(right)]
    figures = []
    for kind, picks in (("correct", right[:n_correct]), ("incorrect", wrong[:n_wrong])):
        for i in picks:
            # what was decided (else the most probable class) and, on a wrong record, every class it missed
            truth = np.asarray(records[i].labels) > 0.5
            missed = [name for name, t, d in zip(meta.class_names, truth, decided[i], strict=True) if t and not d]
            shown = explain_inputs(model, meta, [records[i]], "gradcam", probabilities=probabilities[i : i + 1])
            for name in [n for n in missed if n not in {e.class_name for e in shown}] if kind == "incorrect" else ():
                shown += explain_inputs(
                    model, meta, [records[i]], "gradcam", name, probabilities=probabilities[i : i + 1]
                )
            for explanation in shown:
                prefix = (
                    f"{kind}, missed {explanation.class_name}: " if explanation.class_name in missed else f"{kind}: "
                )
                fig = explanation_figure(explanation, meta, title_prefix=prefix)
                name = f"{safe_name(records[i].record_id)}_{explanation.class_name}_gradcam.png"
                path = save_figure(fig, out / name)
                figures.append(ExampleFigure(kind, records[i].record_id, explanation.class_name, str(path)))
    return figures


def population_heatmap(
    model: nn.Module,
    meta: BundleMeta,
    records: Sequence[ModelInput],
    background: Background,
    path: Path,
    title: str,
    samples: int | None = None,
    progress: bool = True,
    check_records: int = 2,
    max_samples: int = 64,
) -> PopulationImportance:
    """The study's Figures 2-5 for one model and record set, signed with its error (grouped by the decided class);
    the figure is written to ``path``."""
    result = population_importance(
        model,
        records,
        background,
        meta.class_names,
        meta.lead_names,
        samples,
        progress=progress,
        decide=meta.decided,
        agreement_records=check_records,
        max_samples=max_samples,
        never=dict(meta.not_validated),
    )
    if result is None:
        raise RuntimeError("population SHAP gave no result on this process; run it without torchrun")
    save_figure(lead_class_heatmap(result, title), path)
    return result


POPULATION_NOTE = (
    "<p class='note'>Top: each class's signed SHAP value per lead (expected gradients; a lead's value for a class is "
    "its attribution, and the leads add up to f(x) - E f(background)), averaged over the test records the model "
    "decides as the class, as % of the row's total absolute value, with the Monte-Carlo standard error under each "
    "value; red is evidence for the class, blue against; the last row averages the classes. Below: the absolute "
    "mass (sum over time of |SHAP|), which grows with a lead's amplitude and with sampling noise: not an "
    "attribution, shown for comparison with the study's figures.</p>"
)
"""How every report introduces the population heatmap."""


def population_summary(result: dict) -> str:
    """One sentence on a population result's error and its check against exact lead Shapley (from ``to_dict``)."""
    if "views" not in result:
        return "absolute SHAP mass, from a result saved before signed SHAP; run again for the signed view"
    signed = result["views"]["signed"]
    parts = [f"{result['samples_per_record']} samples per explained record on average"]
    if signed["relative_error"] is not None:
        parts.append(
            f"mean Monte-Carlo SE {signed['relative_error']:.1%} of the mean |cell|"
            + ("" if result["target_error"] is None else f" (target {result['target_error']:.0%})")
        )
    agreement = result.get("shapley_agreement")
    if agreement and agreement["mean_spearman"] is not None:
        parts.append(
            f"rank agreement with exact lead Shapley ({len(agreement['players'])} players, limb leads as "
            f"one, conditional baseline): mean Spearman {agreement['mean_spearman']:.2f} over "
            f"{agreement['n_pairs']} (record, class) pairs"
        )
    return "; ".join(parts) + "." + "".join(f" {note[:1].upper()}{note[1:]}." for note in result.get("notes", []))


FAITHFULNESS_HEADER = (
    "method",
    "class",
    "n",
    "deletion AUC",
    "random",
    "gain [95 % CI]",
    "insertion AUC",
    "random",
    "gain [95 % CI]",
    "localisation AUROC",
    "pointing game",
    "rank corr. vs random model",
    "flag",
)


def faithfulness_table(result: FaithfulnessResult) -> Markup:
    """One row per method and class: areas against random deletion/insertion with the gains' intervals,
    localisation, the model-randomisation check, and a flag where deletion is worse than random."""

    def gain(value: tuple[float, float | None, float | None] | None) -> str:
        return "n/a" if value is None else format_gain(value)

    rows = [
        [
            row.method,
            row.class_name,
            row.n,
            row.deletion,
            row.random_deletion,
            gain(row.deletion_gain),
            row.insertion,
            row.random_insertion,
            gain(row.insertion_gain),
            row.localisation_auroc,
            row.pointing_game,
            row.sanity_rank_correlation,
            "deletion worse than random" if row.deletion_worse_than_random else "",
        ]
        for row in result.rows
    ]
    return table_to_html(list(FAITHFULNESS_HEADER), rows)
