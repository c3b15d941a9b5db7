"""``demo``, ``reproduce`` and ``leads``: the analyses that train models, each run as one job."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ecglens.bundle.meta import resolve_bundle
from ecglens.data.splits import SplitSpec
from ecglens.io import Source
from ecglens.studies.demo import DemoConfig, run_demo
from ecglens.studies.leads import LeadsRun, parse_subsets, run_leads
from ecglens.studies.reproduce import quick_or_full, run_reproduce
from ecglens.train.loop import TrainConfig


@dataclass(frozen=True)
class ReportRun:
    """A study that ends in one HTML report."""

    report: Path

    def lines(self) -> list[str]:
        """What the CLI prints: where the report is."""
        return [f"report: {self.report}"]


def run_demo_study(
    out: str | os.PathLike,
    n_records: int = 1200,
    sampling_rate_hz: float = 100.0,
    *,
    epochs: int = 12,
    model: str = "resnet34",
    device: str = "auto",
    seed: int = 0,
    keep_all: bool = False,
) -> ReportRun:
    """``demo``: the whole pipeline on a synthetic cohort (`ecglens.studies.demo`)."""
    config = DemoConfig.sized(n_records, sampling_rate_hz, epochs=epochs, model=model, device=device, seed=seed)
    return ReportRun(run_demo(out, config, keep_all=keep_all))


def run_reproduction(
    cpsc: Sequence[Source],
    ptbxl: Sequence[Source],
    out: str | os.PathLike,
    *,
    quick: bool = False,
    extra: Sequence[Source] = (),
    cross: bool = False,
    in_scope_only: bool = False,
    sampling_rate_hz: float | None = None,
    label_profile: str | None = None,
    **train_overrides: object,
) -> ReportRun:
    """``reproduce``: the study's Original / Ours_1 / Ours_2 protocols (`ecglens.studies.reproduce`)."""
    config = quick_or_full(quick, sampling_rate_hz=sampling_rate_hz, label_profile=label_profile, **train_overrides)
    if in_scope_only:
        config = replace(config, out_of_scope="excluded")
    return ReportRun(run_reproduce(cpsc, ptbxl, out, config, extra, cross))


def run_lead_study_job(
    caches: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    subsets: str,
    custom: Sequence[str] = (),
    checkpoint: str | None = None,
    train: bool = True,
    n_shapley: int = 40,
    n_bootstrap: int = 200,
    label_space: str | None = None,
    model: str = "resnet34",
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 1e-4,
    seed: int = 0,
    val_fold: int = 9,
    test_fold: int = 10,
    device: str = "auto",
) -> LeadsRun:
    """``leads``: reduced-lead models and the 12-lead model's Shapley ranking (`ecglens.studies.leads`)."""
    config = TrainConfig(
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        split=SplitSpec(seed, val_fold, test_fold),
        label_space=label_space,
    )
    bundle = None if checkpoint is None else str(resolve_bundle(checkpoint))
    return run_leads(
        caches,
        out,
        subsets=parse_subsets(subsets, custom),
        config=config,
        checkpoint=bundle,
        train=train,
        n_shapley=n_shapley,
        n_bootstrap=n_bootstrap,
    )
