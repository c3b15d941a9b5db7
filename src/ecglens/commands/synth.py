"""``synth``: a synthetic cohort with known evidence, and one figure per class."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ecglens.report.synth import plot_one_per_class
from ecglens.synth.cohort import SynthConfig, write_cohort


@dataclass(frozen=True)
class SynthRun:
    """A synthetic cohort written to disk."""

    out: str
    n_records: int
    counts: dict[str, int]
    plots: tuple[Path, ...]

    def lines(self) -> list[str]:
        """What the CLI prints."""
        lines = [
            f"{self.out}: {self.n_records} records; class counts "
            + ", ".join(f"{k} {v}" for k, v in self.counts.items())
        ]
        return lines + ([f"plots: {', '.join(str(p) for p in self.plots)}"] if self.plots else [])


def run_synth(config: SynthConfig, out: str | os.PathLike, workers: int | None = None, plot: bool = False) -> SynthRun:
    """``synth``: generate a cohort (and one figure per class with ``plot``)."""
    counts = write_cohort(config, out, workers=workers)
    plots = tuple(plot_one_per_class(config, Path(out) / "plots")) if plot else ()
    return SynthRun(str(out), config.n_records, counts, plots)
