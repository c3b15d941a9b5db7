"""``train``: one run from a configuration file and the options given; the best epoch becomes a bundle."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecglens.train.config import train_request
from ecglens.train.loop import TrainResult, fit


@dataclass(frozen=True)
class TrainRun:
    """A finished (or resumed and finished) training run."""

    result: TrainResult

    def lines(self) -> list[str]:
        """What the CLI prints: the best epoch, its validation macro AUC and the bundle."""
        auc = self.result.best_val_macro_auc
        shown = "n/a" if auc is None else f"{auc:.4f}"
        return [
            f"best epoch {self.result.best_epoch} (validation macro AUC {shown}); bundle: {self.result.best_bundle}"
        ]


def run_train(
    config_file: str | os.PathLike | None, out: str | os.PathLike, given: Mapping[str, Any], resume: bool = False
) -> TrainRun:
    """``train``: the options ``given`` on the command line over ``config_file`` (a run's config.json) over
    the defaults, trained into ``out``."""
    request = train_request(config_file, **given)
    return TrainRun(fit(request.caches, out, request.config, init=request.init, resume=resume))
