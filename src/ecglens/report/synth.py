"""One synthetic record per class on ECG paper, with its evidence mask shaded."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ecglens.classes import CLASS_NAMES
from ecglens.report.ecgpaper import plot_ecg
from ecglens.report.figures import FIGURE_DPI, save_figure
from ecglens.synth.cohort import CLASS_MECHANISMS, SynthConfig, generate_record


def plot_one_per_class(config: SynthConfig, out: str | os.PathLike, dpi: int = FIGURE_DPI) -> list[Path]:
    """Write ``<CLASS>.png`` for each class (single-label records of the cohort's settings)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    single = replace(config, multi_label_rate=0.0)
    paths: dict[str, Path] = {}
    index = 0
    while len(paths) < len(CLASS_NAMES) and index < 1000:
        record = generate_record(100_000 + index, single)
        index += 1
        name = record.classes[0]
        if name in paths:
            continue
        fig = plot_ecg(
            record.signal,
            config.sampling_rate_hz,
            f"{record.name} {name}: {CLASS_MECHANISMS[name]}",
            highlight=record.masks[0],
            highlight_label="ground-truth evidence mask",
        )
        paths[name] = save_figure(fig, out / f"{name}.png", dpi, tight=False)
    return [paths[name] for name in CLASS_NAMES if name in paths]
