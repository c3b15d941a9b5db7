"""12-lead ECGs on standard paper: 25 mm/s, 10 mm/mV, 1 mm and 5 mm grid; 3x4 + rhythm strip or 12x1.

Every row starts with the 1-mV, 200-ms calibration pulse of a clinical printout. Rows grow with the
record's amplitude (at least 3 mV, at most 2 x `MAX_HALF_MV`); a trace beyond that is clipped *visibly*:
clipped samples carry a triangle on the clip line and the subtitle says so. Three kinds of overlay:

- ``highlight``: a leads x samples mask (the synthetic evidence), shaded on its lead;
- ``time_band``: one value per time step (Grad-CAM), a band across the full page height, because such
  a map says nothing about leads;
- ``segments``: signed leads x samples values (SHAP, guided Grad-CAM) summed over 40-ms segments and
  drawn with a diverging colour map and a colour bar, on every lead.

Styles: ``color`` (red grid) and ``bw`` (grey grid, grey overlays; only positive segment values).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from ecglens.leads import LEAD_NAMES
from ecglens.report.text import page_text

_LAYOUT_3X4 = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
MIN_HALF_MV = 1.5
"""Half the height of a row (mV) when the record is small: rows are at least 3 mV (30 mm) tall."""
TIGHT_HALF_MV = 1.1
"""The least half-height of a row when a page needs the room: the 1-mV calibration pulse and a margin."""
MAX_HALF_MV = 4.0
"""Half the height of the tallest row (mV); a trace beyond it is clipped and marked."""
LEAD_IN_S = 0.3
"""Time before each row's trace, holding the calibration pulse."""
SEGMENT_S = 0.04
"""Length of the segments that signed attributions are summed over (one small box, 40 ms)."""
_MM_PER_INCH = 25.4


@dataclass(frozen=True)
class PaperStyle:
    """Colours of one paper style."""

    minor: str
    major: str
    band: str
    mask: str
    diverging: bool


STYLES = {
    "color": PaperStyle(minor="#fbdcdc", major="#f4a6a6", band="#E69F00", mask="red", diverging=True),
    "bw": PaperStyle(minor="#e8e8e8", major="#b8b8b8", band="#9a9a9a", mask="#777777", diverging=False),
}


def paper_grid(
    ax, width_s: float, y_low: float, y_high: float, style: PaperStyle = STYLES["color"], mv_per_mm: float = 0.1
) -> None:
    """ECG paper's 1-mm (40 ms, ``mv_per_mm``: 0.1 mV at 10 mm/mV, 0.2 at half standard) and 5-mm grid on an axis
    in seconds and millivolts."""
    for x in np.arange(0, width_s + 1e-9, 0.04):
        major = abs(x / 0.2 - round(x / 0.2)) < 1e-6
        ax.axvline(x, color=style.major if major else style.minor, lw=0.8 if major else 0.4, zorder=0)
    for y in np.arange(np.ceil(y_low / mv_per_mm) * mv_per_mm, y_high + 1e-9, mv_per_mm):
        major = abs(y / (5 * mv_per_mm) - round(y / (5 * mv_per_mm))) < 1e-6
        ax.axhline(y, color=style.major if major else style.minor, lw=0.8 if major else 0.4, zorder=0)


def _panels(layout: str, lead_names: tuple[str, ...], seconds: float) -> list[list[tuple[str, float, float]]]:
    """Rows of (lead, start s, stop s) panels for a layout."""
    if layout == "12x1":
        return [[(name, 0.0, seconds)] for name in lead_names]
    if layout == "3x4":
        column = seconds / 4
        panels = [[(name, c * column, (c + 1) * column) for c, name in enumerate(row)] for row in _LAYOUT_3X4]
        return [*panels, [("II", 0.0, seconds)]]
    raise ValueError(f"unknown layout {layout!r}; choose 3x4 or 12x1")


def segment_sums(values: np.ndarray, sampling_rate_hz: float, segment_s: float = SEGMENT_S) -> np.ndarray:
    """Signed values summed over consecutive segments of ``segment_s``, repeated back to sample resolution."""
    values = np.asarray(values, dtype=np.float64)
    width = max(1, round(segment_s * sampling_rate_hz))
    n = values.shape[-1]
    padded = np.pad(values, [(0, 0)] * (values.ndim - 1) + [(0, (-n) % width)])
    sums = padded.reshape(*values.shape[:-1], -1, width).sum(axis=-1)
    return np.repeat(sums, width, axis=-1)[..., :n]


@dataclass(frozen=True)
class _Row:
    offset: float
    half_up: float
    half_down: float


def _rows(
    signal: np.ndarray,
    panels,
    position: dict[str, int],
    rate: float,
    max_half: float = MAX_HALF_MV,
    min_half: float = MIN_HALF_MV,
) -> list[_Row]:
    """Each row's baseline and extent, sized to the largest deflection of its panels (within the cap), at least
    ``min_half`` above and below."""
    rows, top = [], 0.0
    low = min(min_half, max_half)
    for row in panels:
        up, down = low, low
        for name, start, stop in row:
            if name in position:
                lead = signal[position[name]]
                part = lead[int(start * rate) : max(int(stop * rate), int(start * rate) + 1)] - np.median(lead)
                if part.size and np.isfinite(part).all():
                    up = max(up, min(float(part.max()) + 0.3, max_half))
                    down = max(down, min(-float(part.min()) + 0.3, max_half))
        offset = top - up
        rows.append(_Row(offset, up, down))
        top = offset - down
    return rows


@dataclass(frozen=True)
class PaperLayout:
    """Where a record goes on paper: its panels (lead, start s, stop s) per row, the rows' baselines and
    extents, the samples drawn, and the paper's extent in seconds and mV (from 0 down to ``y_low``)."""

    panels: list[list[tuple[str, float, float]]]
    rows: list[_Row]
    n_draw: int
    seconds: float
    max_half: float

    @property
    def y_low(self) -> float:
        """The paper's lowest level (mV): the bottom of the last row."""
        return self.rows[-1].offset - self.rows[-1].half_down

    @property
    def width_s(self) -> float:
        """The paper's width in seconds, with the lead-in that holds the calibration pulse."""
        return self.seconds + LEAD_IN_S


def paper_layout(
    signal: np.ndarray,
    sampling_rate_hz: float,
    lead_names: tuple[str, ...] = LEAD_NAMES,
    layout: str = "3x4",
    seconds: float | None = None,
    max_half: float = MAX_HALF_MV,
    min_half: float = MIN_HALF_MV,
) -> PaperLayout:
    """The layout of a record on paper; rows are at most ``2 * max_half`` mV tall (a trace beyond is clipped
    visibly), so a page of fixed height can hold them at 10 mm/mV, and at least ``2 * min_half``."""
    n_samples = signal.shape[1]
    seconds = min(seconds or n_samples / sampling_rate_hz, n_samples / sampling_rate_hz)
    n_draw = round(seconds * sampling_rate_hz)
    panels = _panels(layout, lead_names, seconds)
    position = {name: i for i, name in enumerate(lead_names)}
    rows = _rows(signal[:, :n_draw], panels, position, sampling_rate_hz, max_half, min_half)
    return PaperLayout(panels, rows, n_draw, seconds, max_half)


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
    segments: np.ndarray | None = None,
    segments_label: str = "",
    style: str = "color",
    waves: np.ndarray | None = None,
) -> Figure:
    """Draw a 12-lead ECG on paper with at most one kind of overlay (and, beneath it, the delineated waves).

    Args:
        signal: leads x samples, mV.
        sampling_rate_hz: rate of ``signal``.
        title: figure title (true/predicted labels, probabilities).
        lead_names: names of the rows of ``signal``.
        layout: ``3x4`` (four 2.5-s columns plus a lead II rhythm strip) or ``12x1``.
        highlight: leads x samples mask (values > 0 shaded on their own lead).
        highlight_label: what the shading or band shows (in the subtitle).
        seconds: length to draw (default: the whole record).
        time_band: one value per sample (a map without a lead axis, such as Grad-CAM), drawn as bands
            across the full height wherever it is positive.
        segments: leads x samples signed attributions, summed over 40-ms segments and coloured on every lead.
        segments_label: the colour bar's label.
        style: ``color`` or ``bw`` (black and white).
        waves: leads x samples segment codes (`ecglens.waves.segments.SEGMENTS`; -1 outside the marks): the P,
            QRS and T waves are shaded faintly beneath any overlay.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
    paper = STYLES[style]
    placed = paper_layout(signal, sampling_rate_hz, lead_names, layout, seconds)
    fig, ax = _paper_axes(placed.width_s, placed.y_low, paper, colour_bar=segments is not None)
    clipped, colours = draw_ecg(
        ax, signal, sampling_rate_hz, placed, lead_names, paper, highlight, time_band, segments, waves
    )
    shaded = highlight_label if (highlight is not None or time_band is not None) else ""
    subtitle = _subtitle(clipped, shaded, waves is not None, placed.max_half)
    return _titled(fig, f"{title}\n{subtitle}" if title else subtitle, colours, segments_label)


def draw_ecg(
    ax: Axes,
    signal: np.ndarray,
    sampling_rate_hz: float,
    placed: PaperLayout,
    lead_names: tuple[str, ...] = LEAD_NAMES,
    paper: PaperStyle = STYLES["color"],
    highlight: np.ndarray | None = None,
    time_band: np.ndarray | None = None,
    segments: np.ndarray | None = None,
    waves: np.ndarray | None = None,
) -> tuple[bool, _SegmentColours | None]:
    """Every panel of ``placed`` with its calibration pulse and overlays, on paper axes in seconds and mV
    (`paper_grid`); returns whether a trace was clipped, and the segment colours drawn (for a colour bar)."""
    n_draw = placed.n_draw
    position = {name: i for i, name in enumerate(lead_names)}
    t = LEAD_IN_S + np.arange(n_draw) / sampling_rate_hz
    if time_band is not None:
        ax.fill_between(
            t,
            placed.y_low,
            0.0,
            where=np.asarray(time_band)[:n_draw] > 0,
            color=paper.band,
            alpha=0.35,
            lw=0,
            zorder=1,
            step="mid",
        )
    colours = None if segments is None else _SegmentColours(np.asarray(segments)[:, :n_draw], sampling_rate_hz, paper)
    clipped = False
    for row, layout_row in zip(placed.rows, placed.panels, strict=True):
        for name, start, stop in layout_row:
            if name in position:
                panel = _Panel(
                    name,
                    position[name],
                    round(start * sampling_rate_hz),
                    min(round(stop * sampling_rate_hz), n_draw),
                    start,
                )
                codes = None if waves is None else np.asarray(waves)[position[name], :n_draw]
                clipped |= _draw_panel(
                    ax,
                    t,
                    signal[position[name], :n_draw],
                    panel,
                    row,
                    paper,
                    highlight,
                    colours,
                    codes,
                    placed.max_half,
                )
        _calibration_pulse(ax, row.offset)
    return clipped, colours


def _titled(fig: Figure, title: str, colours: _SegmentColours | None, label: str) -> Figure:
    """The figure with its title, and the colour bar of its segment colours (when it has any)."""
    fig_h = fig.get_size_inches()[1]
    shown = "\n".join(page_text(line, 200) for line in title.split("\n"))  # a record id is data, never mathtext
    fig.suptitle(shown, y=1 - 0.08 / fig_h, va="top", fontsize=10, parse_math=False)
    if colours is not None and colours.image is not None:
        bar_ax = fig.add_axes((0.3, 0.3 / fig_h, 0.4, 0.12 / fig_h))
        fig.colorbar(colours.image, cax=bar_ax, orientation="horizontal").set_label(label, fontsize=9)
    return fig


WAVE_SHADES = {"P": (0, "green"), "QRS": (2, "grey"), "T": (4, "purple")}
"""The waves shaded beneath an overlay: their segment code (`ecglens.waves.segments.SEGMENTS`) and colour."""


def _shade_waves(ax: Axes, t: np.ndarray, codes: np.ndarray, panel: _Panel, row: _Row) -> None:
    """The P, QRS and T waves of one lead's panel as faint bands of the panel's height."""
    a, z = panel.first, panel.stop
    low, high = row.offset - row.half_down, row.offset + row.half_up
    for code, colour in WAVE_SHADES.values():
        ax.fill_between(
            t[a:z], low, high, where=codes[a:z] == code, color=colour, alpha=0.13, lw=0, zorder=0.5, step="mid"
        )


def _subtitle(clipped: bool, shaded: str, waves: bool = False, max_half: float = MAX_HALF_MV) -> str:
    """The paper's scale, where traces were clipped, the waves' colours, and what the shading shows."""
    subtitle = "25 mm/s, 10 mm/mV, 1-mV calibration pulse"
    if waves:
        subtitle += "; faint: " + ", ".join(f"{name} ({colour})" for name, (_, colour) in WAVE_SHADES.items())
    if clipped:
        subtitle += f"; clipped at {max_half:g} mV from baseline where marked with triangles"
    return subtitle + (f"\nshaded: {shaded}" if shaded else "")


def _paper_axes(width_s: float, y_low: float, paper: PaperStyle, colour_bar: bool) -> tuple[Figure, Axes]:
    """A figure whose axes are sized at 25 mm/s and 10 mm/mV from time 0 to ``width_s`` and from ``y_low`` to 0 mV,
    with margins for the title (and a colour bar), gridded as ECG paper and without ticks or spines."""
    axes_w, axes_h = width_s * 25 / _MM_PER_INCH, -y_low * 10 / _MM_PER_INCH
    top, bottom, side = 0.8, (0.75 if colour_bar else 0.1), 0.15
    fig = plt.figure(figsize=(axes_w + 2 * side, axes_h + top + bottom))
    fig_w, fig_h = fig.get_size_inches()
    ax = fig.add_axes((side / fig_w, bottom / fig_h, axes_w / fig_w, axes_h / fig_h))
    paper_axes(ax, width_s, y_low, paper)
    return fig, ax


def paper_axes(
    ax: Axes, width_s: float, y_low: float, paper: PaperStyle = STYLES["color"], mv_per_mm: float = 0.1
) -> None:
    """Make ``ax`` ECG paper from time 0 to ``width_s`` and from ``y_low`` to 0 mV: the grid, no ticks or spines
    (the caller sizes the axes at 25 mm/s and 1 mm per ``mv_per_mm``)."""
    paper_grid(ax, width_s, y_low, 0.0, paper, mv_per_mm)
    ax.set_xlim(0, width_s)
    ax.set_ylim(y_low, 0.0)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


@dataclass(frozen=True)
class _Panel:
    """One lead's panel: its name, row in the signal, sample range drawn, and start time in seconds."""

    name: str
    row: int
    first: int
    stop: int
    start_s: float


class _SegmentColours:
    """Signed attributions summed over segments, with the colour map and scale they are drawn in."""

    def __init__(self, segments: np.ndarray, sampling_rate_hz: float, paper: PaperStyle) -> None:
        sums = segment_sums(segments, sampling_rate_hz)
        self.sums = sums if paper.diverging else np.clip(sums, 0, None)
        peak = float(np.abs(self.sums).max()) or 1.0
        self.norm = Normalize(-peak, peak) if paper.diverging else Normalize(0, peak)
        self.cmap = _fading("RdBu_r" if paper.diverging else "Greys", paper.diverging)
        self.image: AxesImage | None = None


def _draw_panel(
    ax: Axes,
    t: np.ndarray,
    lead: np.ndarray,
    panel: _Panel,
    row: _Row,
    paper: PaperStyle,
    highlight: np.ndarray | None,
    colours: _SegmentColours | None,
    waves: np.ndarray | None = None,
    max_half: float = MAX_HALF_MV,
) -> bool:
    """One lead's trace with its overlays, name and separator; True when the trace was clipped."""
    if waves is not None:
        _shade_waves(ax, t, waves, panel, row)
    a, z = panel.first, panel.stop
    trace = lead[a:z] - np.median(lead)
    low, high = row.offset - row.half_down, row.offset + row.half_up
    if colours is not None:
        colours.image = ax.imshow(
            colours.sums[panel.row, a:z][None],
            extent=(t[a], t[z - 1], low, high),
            cmap=colours.cmap,
            norm=colours.norm,
            aspect="auto",
            zorder=1,
            interpolation="nearest",
        )
    if highlight is not None:
        ax.fill_between(
            t[a:z],
            low,
            high,
            where=np.asarray(highlight)[panel.row, a:z] > 0,
            color=paper.mask,
            alpha=0.25,
            lw=0,
            zorder=2,
            step="mid",
        )
    clipped = _trace(ax, t[a:z], trace, row, max_half)
    ax.text(panel.start_s + LEAD_IN_S + 0.04, high - 0.45, panel.name, fontsize=9, weight="bold", zorder=4)
    if panel.start_s > 0:
        ax.plot([panel.start_s + LEAD_IN_S] * 2, [row.offset - 0.3, row.offset + 0.3], color="black", lw=1.0, zorder=4)
    return clipped


def _fading(name: str, diverging: bool) -> ListedColormap:
    """A colour map whose opacity grows with the magnitude it encodes, so near-zero segments leave the
    paper grid readable (the colour bar shows the same colours)."""
    colours = plt.get_cmap(name)(np.linspace(0, 1, 256))
    position = np.linspace(-1, 1, 256) if diverging else np.linspace(0, 1, 256)
    colours[:, 3] = 0.8 * np.abs(position) ** 0.7
    return ListedColormap(colours)


def _trace(ax, t: np.ndarray, trace: np.ndarray, row: _Row, max_half: float = MAX_HALF_MV) -> bool:
    """Draw one trace at its row's baseline, clipping visibly; returns whether anything was clipped."""
    finite = np.where(np.isfinite(trace), trace, 0.0)
    high_clip, low_clip = finite > row.half_up - 0.05, finite < -row.half_down + 0.05
    drawn = np.clip(finite, -row.half_down + 0.05, row.half_up - 0.05)
    ax.plot(t, drawn + row.offset, color="black", lw=0.7, zorder=3)
    hit = False
    if row.half_up >= max_half and high_clip.any():
        ax.plot(
            t[high_clip], np.full(high_clip.sum(), row.offset + row.half_up - 0.12), "^", color="black", ms=3, zorder=4
        )
        hit = True
    if row.half_down >= max_half and low_clip.any():
        ax.plot(
            t[low_clip], np.full(low_clip.sum(), row.offset - row.half_down + 0.12), "v", color="black", ms=3, zorder=4
        )
        hit = True
    return hit


def _calibration_pulse(ax, offset: float) -> None:
    """The 1-mV, 200-ms standardisation pulse at the start of a row."""
    x = [0.02, 0.06, 0.06, 0.26, 0.26, LEAD_IN_S - 0.01]
    y = [offset, offset, offset + 1.0, offset + 1.0, offset, offset]
    ax.plot(x, y, color="black", lw=0.9, zorder=3)
