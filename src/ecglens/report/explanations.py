"""Explanation figures for reports: Grad-CAM of right and wrong test records, population heatmaps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from ecglens.explain.attribution import gradcam
from ecglens.explain.inputs import ExplainInput, ExplainSession
from ecglens.explain.jobs import targets_for
from ecglens.explain.population import PopulationImportance, population_importance
from ecglens.report.figures import gradcam_figure, label_title, lead_class_heatmap


def gradcam_examples(session: ExplainSession, records: Sequence[ExplainInput], out: Path, n_correct: int = 2,
                     n_wrong: int = 2, dpi: int = 60) -> list[dict]:
    """Grad-CAM figures (the study's Figures 6-8) for the first right and wrong records of a set."""
    out.mkdir(parents=True, exist_ok=True)
    if not records:
        return []
    thresholds = np.asarray(session.meta.thresholds)
    probabilities = session.probabilities(session.stack(records))
    right = [i for i, item in enumerate(records) if ((probabilities[i] >= thresholds) == (item.labels > 0.5)).all()]
    wrong = [i for i in range(len(records)) if i not in set(right)]
    figures = []
    for kind, picks in (("correct", right[:n_correct]), ("incorrect", wrong[:n_wrong])):
        for i in picks:
            item = records[i]
            x = torch.from_numpy(item.signal)[None].to(session.device)
            target = targets_for(session, item, probabilities[i])[0]
            name = session.meta.class_names[target]
            title = f"{kind}: " + label_title(item.record_id, item.labels, probabilities[i], thresholds,
                                              session.meta.class_names)
            fig = gradcam_figure(item.signal, session.meta.sampling_rate_hz, gradcam(session.model, x, target),
                                 title, name, lead_names=session.meta.lead_names)
            path = out / f"{item.record_id}_{name}_gradcam.png"
            fig.savefig(path, dpi=dpi, bbox_inches="tight")
            plt.close(fig)
            figures.append({"kind": kind, "record_id": item.record_id, "class": name, "path": str(path)})
    return figures


def population_heatmap(session: ExplainSession, records: Sequence[ExplainInput], background: torch.Tensor,
                       path: Path, title: str, n_samples: int = 4, progress: bool = True,
                       dpi: int = 70) -> PopulationImportance:
    """The study's Figures 2-5 for one model and record set; the figure is written to ``path``."""
    labels = np.stack([item.labels for item in records])
    result = population_importance(session.model, session.stack(records), labels, background, n_samples,
                                   progress=progress, lead_names=session.meta.lead_names)
    fig = lead_class_heatmap(result.matrix, result.average(), result.counts, title, result.class_names,
                             result.lead_names)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return result
