"""Resume state of a training run: model, optimizer, RNG, epoch, best epoch and log, as safetensors + JSON.

Saves swap directories by renames only, so a kill at any moment leaves either the old or the new
state complete (`recover_state` puts back the old one when a kill fell between the two renames).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATE_DIR = "state"


@dataclass(frozen=True)
class EpochLog:
    """One epoch of a run: losses, validation macro AUC, AUPRC and Fmax (None when undefined), the learning
    rate and wall time."""

    epoch: int
    train_loss: float
    val_loss: float
    val_macro_auc: float | None
    seconds: float
    val_macro_auprc: float | None = None
    val_fmax: float | None = None
    lr: float | None = None


@dataclass(frozen=True)
class BestEpoch:
    """The epoch kept so far: its selection score (validation macro AUC, else minus the loss)."""

    score: float | None = None
    epoch: int = 0
    val_macro_auc: float | None = None


@dataclass(frozen=True)
class RunState:
    """What resuming needs besides the tensors."""

    epoch: int
    best: BestEpoch
    log: tuple[EpochLog, ...]


def save_state(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: RunState) -> None:
    """Write the resume state of a finished epoch into ``directory``, replacing the previous one atomically."""
    scratch = directory.with_name(directory.name + ".tmp")
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(scratch / "model.safetensors"))
    optimizer_state = optimizer.state_dict()
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    for index, values in optimizer_state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    save_file(tensors, str(scratch / "optimizer.safetensors"))
    (scratch / "state.json").write_text(
        json.dumps(
            {
                "epoch": state.epoch,
                "best": asdict(state.best),
                "log": [asdict(row) for row in state.log],
                "param_groups": optimizer_state["param_groups"],
            },
            indent=1,
        )
    )
    old = directory.with_name(directory.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if directory.exists():
        os.replace(directory, old)
    os.replace(scratch, directory)
    shutil.rmtree(old, ignore_errors=True)


def recover_state(run_dir: str | os.PathLike) -> bool:
    """Put back the previous resume state if a run was killed between the two renames of a save.

    Returns whether the run directory holds a resumable state.
    """
    state = Path(run_dir) / STATE_DIR
    old = state.with_name(STATE_DIR + ".old")
    if not state.is_dir() and old.is_dir():
        os.replace(old, state)
    return (state / "state.json").is_file()


def finished_epochs(run_dir: str | os.PathLike) -> int:
    """The last epoch a run saved (0 when it has no state)."""
    if not recover_state(run_dir):
        return 0
    return int(json.loads((Path(run_dir) / STATE_DIR / "state.json").read_text())["epoch"])


def load_state(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> RunState:
    """Restore model, optimizer and RNG from ``directory``; returns the epoch, best epoch and log."""
    meta = json.loads((directory / "state.json").read_text())
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    tensors = load_file(str(directory / "optimizer.safetensors"))
    optimizer_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optimizer_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": optimizer_state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return RunState(int(meta["epoch"]), BestEpoch(**meta["best"]), tuple(EpochLog(**row) for row in meta["log"]))
