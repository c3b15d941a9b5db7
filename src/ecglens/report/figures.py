"""Figures: Grad-CAM and SHAP over ECG paper, the lead x class heatmap, faithfulness curves, reliability diagrams."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ecglens.bundle.meta import BundleMeta
from ecglens.explain.attribution import threshold_map
from ecglens.explain.population import PopulationImportance
from ecglens.explain.records import RecordExplanation
from ecglens.leads import LEAD_NAMES
from ecglens.metrics import EvaluationResult
from ecglens.report.ecgpaper import plot_ecg

FIGURE_DPI = 150
"""Resolution of every PNG ecglens writes (SVG is resolution-free)."""
FIGURE_FORMATS = ("png", "svg")


@dataclass(frozen=True)
class FigureOptions:
    """How record figures are drawn and written.

    Attributes:
        percentile: Grad-CAM is shaded at and above this percentile of its time steps (the study's 95).
        layout: ``3x4`` or ``12x1``; None for each method's default (Grad-CAM 3x4, lead-resolved maps 12x1).
        style: ``color`` or ``bw``.
        image_format: ``png`` (at `FIGURE_DPI`) or ``svg``.
    """

    percentile: float = 95.0
    layout: str | None = None
    style: str = "color"
    image_format: str = "png"

    def __post_init__(self) -> None:
        if self.image_format not in FIGURE_FORMATS:
            raise ValueError(f"unknown figure format {self.image_format!r}; choose from {', '.join(FIGURE_FORMATS)}")
        if not 0 <= self.percentile < 100:
            raise ValueError(f"--percentile must be in [0, 100), got {self.percentile:g}")


DEFAULT_FIGURES = FigureOptions()


@overload
def save_figure(
    fig: Figure, target: io.BytesIO, dpi: int = ..., tight: bool = ..., image_format: str | None = ...
) -> io.BytesIO: ...


@overload
def save_figure(
    fig: Figure, target: str | os.PathLike, dpi: int = ..., tight: bool = ..., image_format: str | None = ...
) -> Path: ...


def save_figure(
    fig: Figure,
    target: str | os.PathLike | io.BytesIO,
    dpi: int = FIGURE_DPI,
    tight: bool = True,
    image_format: str | None = None,
) -> Path | io.BytesIO:
    """Save a figure (to a path, written atomically, or into a buffer) and close it; the one figure writer.

    The format is ``image_format``, else the path's suffix when it is one of `FIGURE_FORMATS`, else PNG.
    """
    if image_format is None:
        suffix = "" if isinstance(target, io.BytesIO) else Path(target).suffix.lstrip(".").lower()
        image_format = suffix if suffix in FIGURE_FORMATS else "png"
    options: dict[str, Any] = {"dpi": dpi, "format": image_format, **({"bbox_inches": "tight"} if tight else {})}
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


def label_title(
    record_id: str,
    truth: np.ndarray | None,
    probabilities: np.ndarray,
    decided: Sequence[str],
    class_names: Sequence[str],
    not_validated: Sequence[str] = (),
) -> str:
    """'record: true AF | decided AF (0.97), PVC (0.61)', or, when nothing is decided, the highest probabilities
    ('decided none; highest STE 0.03 (not validated: never decided), SNR 0.02'): a class is called decided only
    where the bundle decides it (`BundleMeta.decisions`), never for reaching a threshold it is not validated for."""
    p = dict(zip(class_names, (float(v) for v in probabilities), strict=True))
    if decided:
        shown = "decided " + ", ".join(f"{name} ({p[name]:.2f})" for name in decided)
    else:
        top = sorted(class_names, key=lambda name: -p[name])[:2]
        flagged = [f"{n} {p[n]:.2f}" + (" (not validated: never decided)" if n in not_validated else "") for n in top]
        shown = "decided none; highest " + ", ".join(flagged)
    true = (
        "unknown"
        if truth is None
        else (", ".join(n for n, y in zip(class_names, truth, strict=True) if y > 0.5) or "none")
    )
    return f"{record_id}: true {true} | {shown}"


def gradcam_figure(
    signal: np.ndarray,
    sampling_rate_hz: float,
    cam: np.ndarray,
    title: str,
    class_name: str,
    percentile: float = 95.0,
    layout: str = "3x4",
    lead_names: tuple[str, ...] = LEAD_NAMES,
    probability: float | None = None,
    style: str = "color",
    waves: np.ndarray | None = None,
) -> Figure:
    """The study's Figures 6-8: the ECG with its Grad-CAM (min-max normalised, >= percentile) shaded.

    Grad-CAM has one value per time step, so it is drawn as bands across the full page height (every
    lead at that time), never as shading of particular leads. A map without positive evidence is said
    in the title, not drawn as an empty figure.
    """
    shaded, label = gradcam_band(cam, class_name, percentile)
    if shaded is None:
        at = "" if probability is None else f" at p={probability:.2f}"
        return plot_ecg(
            signal,
            sampling_rate_hz,
            f"{title}\n{label}{at}",
            lead_names=lead_names,
            layout=layout,
            style=style,
            waves=waves,
        )
    return plot_ecg(
        signal,
        sampling_rate_hz,
        title,
        lead_names=lead_names,
        layout=layout,
        time_band=shaded,
        style=style,
        waves=waves,
        highlight_label=label,
    )


def gradcam_band(cam: np.ndarray, class_name: str, percentile: float = 95.0) -> tuple[np.ndarray | None, str]:
    """Grad-CAM as bands: its time steps at or above the percentile (of the min-max normalised map; None when
    the map has no positive value, which is said, never drawn as an empty figure), and what they show."""
    time_map = np.asarray(cam).reshape(-1, np.shape(cam)[-1])[0]  # one map per time step (same on every lead)
    if not (time_map > 0).any():
        return None, f"no positive Grad-CAM evidence for {class_name}"
    label = (
        f"Grad-CAM for {class_name}, top {100 - percentile:g} % of time steps "
        "(per time, across all leads: not lead-specific)"
    )
    return threshold_map(time_map[None], percentile)[0], label


ATTRIBUTION_LABELS = {
    "shap": "SHAP value per 40 ms for {cls} (change in probability; lead-resolved)",
    "guided-gradcam": "guided Grad-CAM per 40 ms for {cls} (Grad-CAM x guided gradient; lead-resolved)",
}


def attribution_figure(
    signal: np.ndarray,
    sampling_rate_hz: float,
    values: np.ndarray,
    title: str,
    class_name: str,
    method: str = "shap",
    layout: str = "12x1",
    lead_names: tuple[str, ...] = LEAD_NAMES,
    style: str = "color",
    waves: np.ndarray | None = None,
) -> Figure:
    """A lead-resolved attribution (SHAP, guided Grad-CAM) on every lead, summed over 40-ms segments.

    Sign and magnitude are shown with a diverging colour map (red for evidence for the class, blue
    against it) and a colour bar in the attribution's units; the black-and-white style shows positive
    evidence only, in grey, and says so.
    """
    label = ATTRIBUTION_LABELS[method].format(cls=class_name)
    if style == "bw":
        label += "; positive values only"
    values = np.asarray(values)
    if not np.any(values):
        return plot_ecg(
            signal,
            sampling_rate_hz,
            f"{title}\nall-zero {method} attribution for {class_name}",
            lead_names=lead_names,
            layout=layout,
            style=style,
            waves=waves,
        )
    return plot_ecg(
        signal,
        sampling_rate_hz,
        title,
        lead_names=lead_names,
        layout=layout,
        segments=values,
        segments_label=label,
        style=style,
        waves=waves,
    )


def explanation_figure(
    explanation: RecordExplanation,
    meta: BundleMeta,
    options: FigureOptions = DEFAULT_FIGURES,
    title_prefix: str = "",
    waves: np.ndarray | None = None,
) -> Figure:
    """A record's explanation on ECG paper, titled with the probabilities of the very input it explains."""
    percentile, layout, style = options.percentile, options.layout, options.style
    item = explanation.input
    not_validated = [name for name, _ in meta.not_validated]
    decided = meta.decisions(explanation.probabilities)
    title = title_prefix + label_title(
        item.record_id, item.labels, explanation.probabilities, decided, meta.class_names, not_validated
    )
    if explanation.additivity is not None:  # the sum a reader can check, beside its expectation
        title += "\n" + explanation.additivity.line()
    if explanation.method == "gradcam":
        return gradcam_figure(
            item.signal,
            meta.sampling_rate_hz,
            explanation.values,
            title,
            explanation.class_name,
            percentile,
            layout or "3x4",
            meta.lead_names,
            explanation.probability,
            style,
            waves,
        )
    return attribution_figure(
        item.signal,
        meta.sampling_rate_hz,
        explanation.values,
        title,
        explanation.class_name,
        explanation.method,
        layout or "12x1",
        meta.lead_names,
        style,
        waves,
    )


def lead_class_heatmap(result: PopulationImportance, title: str) -> Figure:
    """The study's Figures 2-5 as signed shares with their errors, above the absolute view.

    Top: each class's signed SHAP per lead, as % of the row's total absolute value (red: evidence for the
    class, blue: against), with the Monte-Carlo standard error under each value, and the average row. Below:
    the absolute mass (sum_t |phi_t|) as % of the row, which grows with a lead's amplitude and with sampling
    noise, at the stated samples per record. Rows carry n, the records in the class's group.
    """
    signed, signed_se = result.shares("signed")
    absolute, _ = result.shares("absolute")
    rows = [f"{name} (n={count})" for name, count in zip(result.class_names, result.counts, strict=True)]
    width = 0.68 * len(result.lead_names) + 3.2  # the two views one above the other: readable on a page
    height = 0.8 + 0.46 * (len(rows) + 1)
    fig, axes = plt.subplots(
        2, 1, figsize=(width, 2 * height + 0.6), gridspec_kw={"height_ratios": [len(rows) + 1, len(rows)]}
    )
    shares = np.vstack([signed, result.average("signed")[None, :]]) * 100
    errors = np.vstack([signed_se, np.full((1, signed.shape[1]), np.nan)]) * 100
    limit = float(np.nanmax(np.abs(shares))) if np.isfinite(shares).any() else 1.0
    image = _heat(axes[0], shares, [*rows, "average"], result.lead_names, "RdBu_r", "{:+.0f}", (-limit, limit), errors)
    axes[0].axhline(len(rows) - 0.5, color="white", lw=2)
    grouped = "decided as" if result.grouping == "predicted" else "labelled with"
    axes[0].set_title(
        f"signed SHAP, % of the row's |total| (± Monte-Carlo SE), {result.samples} samples/record on "
        f"average;\nrecords {grouped} the class",
        fontsize=8,
    )
    fig.colorbar(image, ax=axes[0], label="% (red: for the class, blue: against)", shrink=0.8)
    image = _heat(axes[1], absolute * 100, rows, result.lead_names, "viridis", "{:.0f}")
    axes[1].set_title(
        f"absolute mass, % of the row: not an attribution; grows with amplitude and with noise "
        f"({result.absolute_samples} samples/record)",
        fontsize=8,
    )
    fig.colorbar(image, ax=axes[1], label="% of sum |SHAP|", shrink=0.8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _heat(
    ax,
    data: np.ndarray,
    rows: Sequence[str],
    columns: Sequence[str],
    cmap: str,
    text: str,
    limits: tuple[float, float] | None = None,
    errors: np.ndarray | None = None,
):
    """One annotated heatmap panel (with ``errors``: ± under each value); NaN cells stay blank."""
    vmin, vmax = limits if limits is not None else (None, None)
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    for r in range(data.shape[0]):
        for c in range(data.shape[1]):
            if np.isfinite(data[r, c]):
                red, green, blue, _ = image.cmap(image.norm(data[r, c]))
                light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
                label = text.format(data[r, c])
                if errors is not None and np.isfinite(errors[r, c]):
                    label += f"\n±{errors[r, c]:.0f}" if errors[r, c] >= 0.5 else "\n±<1"
                ax.text(
                    c,
                    r,
                    label,
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    linespacing=0.95,
                    color="black" if light else "white",
                )
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    return image


def curves_figure(fractions: np.ndarray, curves: dict[str, dict[str, np.ndarray]], title: str) -> Figure:
    """Mean deletion and insertion curves per method, with the random-order references."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, kind in zip(axes, ("deletion", "insertion"), strict=True):
        randoms = [values[f"random_{kind}"] for values in curves.values()]
        shared = all(np.allclose(r, randoms[0], equal_nan=True) for r in randoms)  # one random order for all
        for method, values in curves.items():
            line = axis.plot(fractions, values[kind], "o-", lw=2, ms=4, label=f"{method}, most attributed first")[0]
            if not shared:
                axis.plot(
                    fractions,
                    values[f"random_{kind}"],
                    ":",
                    marker="x",
                    ms=5,
                    lw=1.2,
                    color=line.get_color(),
                    alpha=0.8,
                    label=f"{method}, random order",
                )
        if shared and randoms:
            axis.plot(
                fractions,
                randoms[0],
                ":",
                marker="x",
                ms=5,
                lw=1.4,
                color="black",
                label="random order (the same for every method)",
            )
        action = "replaced by the lead's median" if kind == "deletion" else "restored into the all-median record"
        axis.set_xlabel(f"fraction of 60-ms segments {action}")
        axis.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} is more faithful)", fontsize=9)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("class probability")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


MAX_RELIABILITY_PANELS = 30


def reliability_figure(result: EvaluationResult, title: str) -> Figure:
    """Per-class reliability diagrams: observed fraction positive against mean predicted probability in each
    of 10 equal-width bins (marker area ~ records in the bin), the diagonal of perfect calibration, and the
    class's decision threshold as a dashed line, so a threshold far from what its score means is seen.

    Classes without positives are left out; beyond `MAX_RELIABILITY_PANELS` the most frequent are drawn and
    the title says so.
    """
    metrics = {m.name: m for m in result.per_class}
    curves = [c for c in result.reliability if metrics[c.name].n_positive > 0]
    curves.sort(key=lambda c: -metrics[c.name].n_positive)
    shown = curves[:MAX_RELIABILITY_PANELS]
    order = {m.name: k for k, m in enumerate(result.per_class)}
    shown.sort(key=lambda c: order[c.name])
    columns = min(5, max(len(shown), 1))
    rows = max(1, -(-len(shown) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows + 0.6), squeeze=False)
    for axis in axes.flat[len(shown) :]:
        axis.set_visible(False)
    for axis, curve in zip(axes.flat, shown, strict=False):
        m = metrics[curve.name]
        points = [
            (p, f, n)
            for p, f, n in zip(curve.mean_probability, curve.fraction_positive, curve.counts, strict=True)
            if n
        ]
        axis.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":")
        if points:
            p, f, n = (np.array(v, float) for v in zip(*points, strict=True))
            axis.plot(p, f, "-", color="C0", lw=1.2)
            axis.scatter(p, f, s=8 + 120 * n / n.max(), color="C0", zorder=3)
        axis.axvline(curve.threshold, color="C3", ls="--", lw=1.2)
        axis.text(
            min(curve.threshold + 0.02, 0.62),
            0.92,
            f"threshold {curve.threshold:.2f}",
            color="C3",
            fontsize=7,
            transform=axis.transData,
        )
        ece = "n/a" if m.ece is None else f"{m.ece:.3f}"
        axis.set_title(
            f"{curve.name} (n+ {m.n_positive}, ECE {ece})",
            fontsize=8,
            color="C3" if any("calibrated" in flag for flag in m.flags) else "black",
        )
        axis.set_xlim(-0.03, 1.03)
        axis.set_ylim(-0.03, 1.03)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("mean predicted probability", fontsize=8)
    for axis in axes[:, 0]:
        axis.set_ylabel("fraction positive", fontsize=8)
    more = "" if len(curves) <= len(shown) else f"; the {len(shown)} most frequent of {len(curves)} classes"
    fig.suptitle(
        f"{title}: reliability per class ({result.n_records} records{more}; dotted: perfect calibration, "
        "dashed: decision threshold; a red title: that threshold is not a calibrated probability)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
