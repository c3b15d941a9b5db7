"""12-lead ECGs on standard paper: 25 mm/s, 10 mm/mV, 1 mm and 5 mm grid; 3x4 + rhythm strip or 12x1."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ecglens.leads import LEAD_NAMES

_LAYOUT_3X4 = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))


def _grid(ax, width_s: float, y_low: float, y_high: float) -> None:
    for x in np.arange(0, width_s + 1e-9, 0.04):
        major = abs(x / 0.2 - round(x / 0.2)) < 1e-6
        ax.axvline(x, color="#f4a6a6" if major else "#fbdcdc", lw=0.8 if major else 0.4, zorder=0)
    for y in np.arange(np.floor(y_low * 10) / 10, y_high + 1e-9, 0.1):
        major = abs(y / 0.5 - round(y / 0.5)) < 1e-6
        ax.axhline(y, color="#f4a6a6" if major else "#fbdcdc", lw=0.8 if major else 0.4, zorder=0)


_ROW_HEIGHT_MV = 3.0


def _panels(layout: str, lead_names: tuple[str, ...], seconds: float) -> list[list[tuple[str, float, float]]]:
    """Rows of (lead, start s, stop s) panels for a layout."""
    if layout == "12x1":
        return [[(name, 0.0, seconds)] for name in lead_names]
    if layout == "3x4":
        column = seconds / 4
        panels = [[(name, c * column, (c + 1) * column) for c, name in enumerate(row)] for row in _LAYOUT_3X4]
        return [*panels, [("II", 0.0, seconds)]]
    raise ValueError(f"unknown layout {layout!r}; choose 3x4 or 12x1")


def plot_ecg(
    signal: np.ndarray,
    sampling_rate_hz: float,
    title: str = "",
    lead_names: tuple[str, ...] = LEAD_NAMES,
    layout: str = "3x4",
    highlight: np.ndarray | None = None,
    highlight_label: str = "",
    seconds: float | None = None,
    time_band: np.ndarray | None = None,
) -> Figure:
    """Draw a 12-lead ECG on paper, optionally shading a leads x samples map in [0, 1] over the traces.

    Args:
        signal: leads x samples, mV.
        sampling_rate_hz: rate of ``signal``.
        title: figure title (true/predicted labels, probabilities).
        lead_names: names of the rows of ``signal``.
        layout: ``3x4`` (four 2.5-s columns plus a lead II rhythm strip) or ``12x1``.
        highlight: leads x samples values in [0, 1] (Grad-CAM, SHAP, evidence mask) drawn as red shading.
        highlight_label: legend text for the shading.
        seconds: length to draw (default: the whole record).
        time_band: one value per sample in [0, 1] (a map without a lead axis, such as Grad-CAM), drawn as
            bands across the full height wherever it is positive.
    """
    n_samples = signal.shape[1]
    seconds = min(seconds or n_samples / sampling_rate_hz, n_samples / sampling_rate_hz)
    panels = _panels(layout, lead_names, seconds)
    rows = len(panels)
    # 25 mm/s and 10 mm/mV: one inch is 25.4 mm, so the figure is sized from the paper scale.
    fig = plt.figure(figsize=(seconds * 25 / 25.4 + 0.6, rows * _ROW_HEIGHT_MV * 10 / 25.4 + 0.8))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9 - 0.1 / rows))
    y_low, y_high = -rows * _ROW_HEIGHT_MV + _ROW_HEIGHT_MV / 2, _ROW_HEIGHT_MV / 2
    _grid(ax, seconds, y_low, y_high)
    if time_band is not None:
        t = np.arange(n_samples)[: int(seconds * sampling_rate_hz)] / sampling_rate_hz
        ax.fill_between(t, y_low, y_high, where=np.asarray(time_band)[: len(t)] > 0, color="#E69F00", alpha=0.35,
                        lw=0, zorder=1, step="mid")
    position = {name: i for i, name in enumerate(lead_names)}
    n_draw = int(seconds * sampling_rate_hz)
    for r, row in enumerate(panels):
        for name, start, stop in row:
            if name in position:
                _draw_panel(ax, signal[position[name], :n_draw], sampling_rate_hz, name, start, stop,
                            -r * _ROW_HEIGHT_MV, None if highlight is None else highlight[position[name], :n_draw])
    ax.set_xlim(0, seconds)
    ax.set_ylim(y_low, y_high)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    subtitle = "25 mm/s, 10 mm/mV"
    if (highlight is not None or time_band is not None) and highlight_label:
        subtitle += f"; shaded: {highlight_label}"
    fig.suptitle(f"{title}\n{subtitle}" if title else subtitle, fontsize=10, y=0.995, va="top")
    return fig


def _draw_panel(ax, lead: np.ndarray, rate: float, name: str, start: float, stop: float, offset: float,
                highlight: np.ndarray | None) -> None:
    """One lead's trace (its median at the row's baseline) from ``start`` to ``stop`` s, with its shading."""
    t = np.arange(len(lead)) / rate
    a, z = int(start * rate), min(int(stop * rate), len(lead))
    trace = lead[a:z] - np.median(lead)
    trace = np.clip(trace, -_ROW_HEIGHT_MV / 2 + 0.05, _ROW_HEIGHT_MV / 2 - 0.05)
    ax.plot(t[a:z], trace + offset, color="black", lw=0.7, zorder=3)
    if highlight is not None:
        ax.fill_between(t[a:z], offset - _ROW_HEIGHT_MV / 2, offset + _ROW_HEIGHT_MV / 2, where=highlight[a:z] > 0,
                        color="red", alpha=0.25, lw=0, zorder=2, step="mid")
    ax.text(start + 0.04, offset + _ROW_HEIGHT_MV / 2 - 0.45, name, fontsize=9, weight="bold", zorder=4)
    if start > 0:
        ax.plot([start, start], [offset - 0.3, offset + 0.3], color="black", lw=1.0, zorder=4)
