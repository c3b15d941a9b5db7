"""``evaluate``, ``calibrate`` and ``ensemble``: a bundle measured, calibrated or fused on a cache's splits."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ecglens.bundle.weights import save_ensemble
from ecglens.commands.common import Written
from ecglens.report.outputs import write_evaluation_views
from ecglens.train.calibrate import CalibrationReport, calibrate_bundle
from ecglens.train.evaluate import EvaluationReport, evaluate_bundle, store_in_bundle, write_report


@dataclass(frozen=True)
class EvaluateRun:
    """An evaluation, where it was written, and whether the bundle's thresholds were replaced."""

    report: EvaluationReport
    written: Written
    stored_in: str | None

    def lines(self) -> list[str]:
        """What the CLI prints."""
        stored = (
            f"stored these thresholds in {self.stored_in}"
            if self.stored_in
            else "the bundle is unchanged (pass --store-thresholds to keep these thresholds in it)"
        )
        return [self.report.to_markdown(), self.written.line(), stored]


def run_evaluate(
    checkpoint: str | os.PathLike,
    caches: Sequence[str | os.PathLike],
    out: str | os.PathLike | None,
    n_bootstrap: int = 1000,
    device: str = "auto",
    store_thresholds: bool = False,
    external: bool = False,
) -> EvaluateRun:
    """Evaluate a bundle on caches and write the results; the bundle changes only with ``store_thresholds``."""
    report = evaluate_bundle(checkpoint, caches, n_bootstrap=n_bootstrap, device=device, external=external)
    folder = Path(out or Path(checkpoint).parent / "evaluation")
    paths = [
        *write_report(report, folder),
        *write_evaluation_views(
            report.results,
            report.threshold_origin.describe(),
            folder,
            f"Evaluation of {checkpoint}",
            report.out_of_scope,
        ),
    ]
    if store_thresholds:
        store_in_bundle(checkpoint, report)
    return EvaluateRun(report, Written(tuple(paths)), str(checkpoint) if store_thresholds else None)


@dataclass(frozen=True)
class CalibrateRun:
    """A bundle calibrated in place."""

    bundle: str
    report: CalibrationReport

    def lines(self) -> list[str]:
        """What the CLI prints."""
        return [self.report.to_markdown(), f"stored the temperatures and thresholds in {self.bundle}"]


def run_calibrate(
    checkpoint: str | os.PathLike,
    caches: Sequence[str | os.PathLike],
    device: str = "auto",
    normal_sensitivity: float | None = None,
) -> CalibrateRun:
    """``calibrate``: temperature scaling on the validation split, stored in the bundle."""
    return CalibrateRun(
        str(checkpoint), calibrate_bundle(checkpoint, caches, device, normal_sensitivity=normal_sensitivity)
    )


@dataclass(frozen=True)
class EnsembleRun:
    """An ensemble bundle fused from trained bundles, calibrated on validation."""

    bundle: str
    members: tuple[str, ...]
    report: CalibrationReport

    def lines(self) -> list[str]:
        """What the CLI prints."""
        return [
            f"fused {len(self.members)} bundles into {self.bundle} (output: their mean logit)",
            self.report.to_markdown(),
            f"stored the temperatures and thresholds in {self.bundle}",
        ]


def run_ensemble(
    bundles: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    caches: Sequence[str | os.PathLike],
    device: str = "auto",
    normal_sensitivity: float | None = None,
) -> EnsembleRun:
    """``ensemble``: fuse bundles into one and calibrate it on the validation split of ``caches``."""
    save_ensemble(bundles, out)
    report = calibrate_bundle(out, caches, device, normal_sensitivity=normal_sensitivity)
    return EnsembleRun(str(out), tuple(str(b) for b in bundles), report)
