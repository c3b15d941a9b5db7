"""Explanation figures: Grad-CAM and SHAP over ECG paper, the lead x class heatmap, faithfulness curves."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ecglens.bundle import BundleMeta
from ecglens.explain.attribution import threshold_map
from ecglens.explain.records import RecordExplanation
from ecglens.leads import LEAD_NAMES
from ecglens.report.ecgpaper import plot_ecg

FIGURE_DPI = 90


def save_figure(fig: Figure, target: str | os.PathLike | io.BytesIO, dpi: int = FIGURE_DPI, tight: bool = True,
                image_format: str = "png") -> Path | io.BytesIO:
    """Save a figure (to a path, written atomically, or into a buffer) and close it; the one figure writer."""
    options = {"dpi": dpi, "format": image_format, **({"bbox_inches": "tight"} if tight else {})}
    try:
        if isinstance(target, io.BytesIO):
            fig.savefig(target, **options)
            return target
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.tmp")
        fig.savefig(scratch, **options)
        os.replace(scratch, path)
        return path
    finally:
        plt.close(fig)


def label_title(record_id: str, truth: np.ndarray | None, probabilities: np.ndarray, thresholds: Sequence[float],
                class_names: Sequence[str]) -> str:
    """'record: true AF | predicted AF (0.97), PVC (0.61)'."""
    predicted = [f"{name} ({p:.2f})" for name, p, t in zip(class_names, probabilities, thresholds, strict=True)
                 if p >= t] or ["none"]
    true = "unknown" if truth is None else (", ".join(n for n, y in zip(class_names, truth, strict=True) if y > 0.5)
                                            or "none")
    return f"{record_id}: true {true} | predicted {', '.join(predicted)}"


def gradcam_figure(signal: np.ndarray, rate_hz: float, cam: np.ndarray, title: str, class_name: str,
                   percentile: float = 95.0, layout: str = "3x4", lead_names: tuple[str, ...] = LEAD_NAMES,
                   probability: float | None = None) -> Figure:
    """The study's Figures 6-8: the ECG with its Grad-CAM (min-max normalised, >= percentile) shaded.

    Grad-CAM has one value per time step, so it is drawn as bands across the full page height (every
    lead at that time), never as shading of particular leads. A map without positive evidence is said
    in the title, not drawn as an empty figure.
    """
    time_map = np.asarray(cam).reshape(-1, np.shape(cam)[-1])[0]  # one map per time step (same on every lead)
    if not (time_map > 0).any():
        at = "" if probability is None else f" at p={probability:.2f}"
        return plot_ecg(signal, rate_hz, f"{title}\nno positive Grad-CAM evidence for {class_name}{at}",
                        lead_names=lead_names, layout=layout)
    shaded = threshold_map(time_map[None], percentile)[0]
    return plot_ecg(signal, rate_hz, title, lead_names=lead_names, layout=layout, time_band=shaded,
                    highlight_label=f"Grad-CAM for {class_name}, top {100 - percentile:g} % of time steps "
                                    "(per time, across all leads: not lead-specific)")


def shap_figure(signal: np.ndarray, rate_hz: float, values: np.ndarray, title: str, class_name: str,
                percentile: float = 95.0, layout: str = "12x1", lead_names: tuple[str, ...] = LEAD_NAMES) -> Figure:
    """The original's ``plot_shap``: segments of high positive SHAP value per lead, for one class."""
    positive = np.clip(values, 0, None)
    cut = np.percentile(positive, percentile) if positive.any() else np.inf
    return plot_ecg(signal, rate_hz, title, lead_names=lead_names, layout=layout,
                    highlight=(positive >= cut) & (positive > 0),
                    highlight_label=f"SHAP for {class_name} (top {100 - percentile:g} %)")


def explanation_figure(explanation: RecordExplanation, meta: BundleMeta, percentile: float = 95.0,
                       layout: str | None = None, title_prefix: str = "") -> Figure:
    """A record's explanation on ECG paper, titled with the probabilities of the very input it explains."""
    item = explanation.input
    title = title_prefix + label_title(item.record_id, item.labels, explanation.probabilities, meta.thresholds,
                                       meta.class_names)
    if explanation.method == "gradcam":
        return gradcam_figure(item.signal, meta.sampling_rate_hz, explanation.values, title, explanation.class_name,
                              percentile, layout or "3x4", meta.lead_names, explanation.probability)
    return shap_figure(item.signal, meta.sampling_rate_hz, explanation.values, title, explanation.class_name,
                       percentile, layout or "12x1", meta.lead_names)


def lead_class_heatmap(matrix: np.ndarray, average: np.ndarray, counts: Sequence[int], title: str,
                       class_names: Sequence[str], lead_names: Sequence[str]) -> Figure:
    """The study's Figures 2-5: share of SHAP mass per lead (columns) for each class (rows), plus the average."""
    data = np.vstack([matrix, average[None, :]]) * 100
    rows = [f"{name} (n={count})" for name, count in zip(class_names, counts, strict=True)] + ["average"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(lead_names), 0.9 + 0.45 * len(rows)))
    image = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", aspect="auto")
    for r in range(data.shape[0]):
        for c in range(data.shape[1]):
            if np.isfinite(data[r, c]):
                ax.text(c, r, f"{data[r, c]:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if data[r, c] < np.nanmax(data) * 0.6 else "black")
    ax.set_xticks(range(len(lead_names)), lead_names)
    ax.set_yticks(range(len(rows)), rows)
    ax.axhline(len(rows) - 1.5, color="white", lw=2)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="% of the class's SHAP mass")
    fig.tight_layout()
    return fig


def curves_figure(fractions: np.ndarray, curves: dict[str, dict[str, np.ndarray]], title: str) -> Figure:
    """Mean deletion and insertion curves per method, with the random-order references."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for axis, kind in zip(axes, ("deletion", "insertion"), strict=True):
        for method, values in curves.items():
            line = axis.plot(fractions, values[kind], label=method)[0]
            axis.plot(fractions, values[f"random_{kind}"], "--", color=line.get_color(), alpha=0.6,
                      label=f"{method}, random order")
        axis.set_xlabel(f"fraction {'removed' if kind == 'deletion' else 'inserted'} (most attributed first)")
        axis.set_title(kind)
    axes[0].set_ylabel("class probability")
    axes[1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
