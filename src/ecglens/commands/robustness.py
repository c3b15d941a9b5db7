"""``robustness``: a bundle under noise, faults, filters and attacks, as one job."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ecglens.bundle.meta import read_meta
from ecglens.commands.common import Written
from ecglens.perturb import default_suite
from ecglens.report.html import number
from ecglens.report.robustness import write_robustness
from ecglens.robustness import LINF_BUDGETS_UV, RobustnessResult, run_robustness


@dataclass(frozen=True)
class RobustnessRun:
    """``robustness``: what was measured and where it was written."""

    result: RobustnessResult
    written: Written

    def lines(self) -> list[str]:
        """What the CLI prints: one line per condition, the flipping budgets, the files."""
        r = self.result

        lines = [f"{r.n_records} {r.split} records; macro AUC / F1 at the bundle's thresholds / decisions changed:"]
        for c in (*r.conditions, *r.transfer):
            changed = "" if c.changed is None else f"{c.changed:6.0%}"
            lines.append(
                f"  {c.family:<11} {c.label:<40} {number(c.macro_auc)}  {number(c.macro_f1)}  {changed} {c.note}"
            )
        for spectrum in r.spectra:
            lines.append(
                f"  spectrum of {spectrum.label} at {spectrum.eps_uv:g} uV: {spectrum.share_above_40hz:.1%} "
                "of its power above 40 Hz"
            )
        if r.flip_budgets:
            attack = r.flip_budgets[0].attack
            lines.append(
                f"flipping budgets ({attack}), median read from the survival curve (records decided "
                "positive / negative): "
                + ", ".join(
                    f"{f.name} {f.median_text()} ({f.n_positive}+/{f.n_records - f.n_positive}-)"
                    for f in r.flip_budgets
                )
            )
        lines += [f"left out of the flipping budgets: {reason}" for reason in r.left_out]
        return [*lines, self.written.line()]


def run_robustness_report(
    checkpoint: str | os.PathLike,
    caches: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    split: str = "test",
    n_records: int | None = 200,
    quick: bool = False,
    n_flip: int = 10,
    transfer: str | None = None,
    device: str = "auto",
    seed: int = 0,
    flip_attack: str = "smooth",
) -> RobustnessRun:
    """``robustness``: the bundle under noise, faults and attacks, written as JSON, CSV, figures and HTML."""
    result = run_robustness(
        checkpoint,
        caches,
        split,
        n_records,
        default_suite(quick),
        n_flip=n_flip,
        pgd_steps=5 if quick else 10,
        transfer_bundle=transfer,
        device=device,
        seed=seed,
        budgets_uv=(10.0, 50.0) if quick else LINF_BUDGETS_UV,
        flip_attack=flip_attack,
    )
    paths = write_robustness(result, Path(out), read_meta(checkpoint).lead_names)
    return RobustnessRun(result, Written(paths))
