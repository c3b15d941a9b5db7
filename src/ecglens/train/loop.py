"""Training: Adam + BCE-with-logits, best epoch on validation, exact resume, fine-tuning, DDP, AMP.

A run directory holds ``config.json`` (the resolved configuration), ``splits.csv``, ``log.csv`` (one
row per epoch), ``state/`` (what ``--resume`` needs, as safetensors + JSON: model, optimizer, epoch,
RNG states) and ``best/`` (the bundle of the epoch with the best validation macro AUC, its thresholds
tuned on validation). The test split is never looked at here.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from ecglens.cache import EcgCache
from ecglens.classes import CLASS_NAMES
from ecglens.data import Augmentation, CacheDataset, LengthBucketSampler, LengthPolicy, split_caches
from ecglens.leads import LEAD_NAMES
from ecglens.models import create_model
from ecglens.train.bundle import default_meta, load_model, save_bundle
from ecglens.train.metrics import evaluate_predictions, tune_thresholds


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; the defaults are the study's (Adam, lr 1e-4, batch 32, 30 epochs)."""

    model: str = "resnet34"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-4
    seed: int = 0
    policy: LengthPolicy = field(default_factory=LengthPolicy)
    augmentation_probability: float = 0.5
    lead_names: tuple[str, ...] = LEAD_NAMES
    val_fold: int = 9
    test_fold: int = 10
    device: str = "auto"
    amp: bool = True
    workers: int = 0

    def to_dict(self) -> dict:
        """Plain data for ``config.json``."""
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """Where a run's outputs are and how the best epoch did."""

    run_dir: str
    best_bundle: str
    best_epoch: int
    best_val_macro_auc: float | None
    epochs_run: int
    seconds_per_epoch: float
    log: tuple[dict, ...]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    if world > 1:
        return torch.distributed.get_rank(), world
    return 0, 1


def _autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


@torch.no_grad()
def predict_dataset(model: torch.nn.Module, dataset: CacheDataset, batch_size: int = 64,
                    device: torch.device | str = "cpu", amp: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities for every item of an evaluation dataset, in item order: (targets, probabilities)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    probabilities = np.zeros((len(dataset), dataset.labels.shape[1]), np.float32)
    loader = DataLoader(dataset, batch_sampler=LengthBucketSampler(dataset, batch_size))
    order = [i for batch in loader.batch_sampler for i in batch]
    position = 0
    for x, _ in loader:
        with _autocast(device, amp):
            logits = model(x.to(device, non_blocking=True))
        n = len(x)
        probabilities[order[position : position + n]] = torch.sigmoid(logits.float()).cpu().numpy()
        position += n
    model.train(was_training)
    return dataset.labels.copy(), probabilities


def _save_state(directory: Path, model, optimizer, epoch: int, best: dict, log: list[dict]) -> None:
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
    (scratch / "state.json").write_text(json.dumps({
        "epoch": epoch, "best": best, "log": log, "param_groups": optimizer_state["param_groups"]}, indent=1))
    # Swap by renames only, so a kill at any moment leaves either the old or the new state complete.
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
    state = Path(run_dir) / "state"
    old = state.with_name("state.old")
    if not state.is_dir() and old.is_dir():
        os.replace(old, state)
    return (state / "state.json").is_file()


def _load_state(directory: Path, model, optimizer) -> tuple[int, dict, list[dict]]:
    meta = json.loads((directory / "state.json").read_text())
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    tensors = load_file(str(directory / "optimizer.safetensors"))
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return int(meta["epoch"]), meta["best"], meta["log"]


def fit(
    cache_paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: TrainConfig = TrainConfig(),
    init: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train a model on the training split of caches, choosing the best epoch on validation.

    Args:
        cache_paths: caches to train on (joined; each split by its own rule).
        out: run directory.
        config: training settings.
        init: a bundle whose weights start the run (fine-tuning, the study's Ours_1).
        resume: continue the interrupted run in ``out`` exactly where its last finished epoch left it.
        progress: show progress bars.
        on_epoch: called with each finished epoch number (tests use it to interrupt a run).
    """
    rank, world = _distributed()
    out = Path(out)
    device = resolve_device(config.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    caches = [EcgCache(path) for path in cache_paths]
    recover_state(out)
    if resume and not (out / "state").is_dir():
        raise FileNotFoundError(f"{out}: nothing to resume (no state/ directory)")
    if not resume and (out / "state").exists():
        raise FileExistsError(f"{out}: holds a run already; pass resume to continue it or choose another folder")
    splits = split_caches(caches, config.seed, val_fold=config.val_fold, test_fold=config.test_fold)
    if not splits.train:
        raise ValueError("the training split is empty (no labelled records in folds other than val/test)")
    torch.manual_seed(config.seed)
    model = create_model(config.model, len(config.lead_names), len(CLASS_NAMES))
    if init is not None:
        source, source_meta = load_model(init)
        if source_meta.model != model.config:
            raise ValueError(f"{init}: model {source_meta.model} does not match {model.config}")
        model.load_state_dict(source.state_dict())
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    train_set = CacheDataset(caches, splits.train, config.policy, True, config.lead_names,
                             Augmentation(config.augmentation_probability), config.seed)
    val_set = CacheDataset(caches, splits.val, config.policy, False, config.lead_names)
    start_epoch, best, log = 0, {"score": None, "epoch": 0, "val_macro_auc": None}, []
    if resume:
        start_epoch, best, log = _load_state(out / "state", model, optimizer)
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(
            {"config": config.to_dict(), "caches": [str(c.path) for c in caches], "init": str(init) if init else None},
            indent=2))
        splits.table.to_csv(out / "splits.csv", index=False)
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda"
                                                                 else None)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
    loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
                        pin_memory=device.type == "cuda", drop_last=False)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and config.amp
                                  and not torch.cuda.is_bf16_supported())
    for epoch in range(start_epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        train_model.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch}/{config.epochs}", unit="batch", disable=not progress or rank != 0,
                   file=sys.stderr, leave=False)
        for x, y in bar:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with _autocast(device, config.amp):
                loss = loss_fn(train_model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += float(loss.detach()) * len(x)
            count += len(x)
            bar.set_postfix(loss=f"{total / count:.4f}")
        bar.close()
        if world > 1:
            # Parameters agree through gradient all-reduce; batch-norm running statistics are per rank
            # after the last forward pass: take rank 0's so every rank ends the epoch with one state.
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, src=0)
        if rank == 0:
            y_true, y_prob = predict_dataset(model, val_set, 2 * config.batch_size, device, config.amp)
            row = _epoch_row(epoch, total / max(count, 1), y_true, y_prob, time.perf_counter() - started)
            log.append(row)
            score = row["val_macro_auc"] if row["val_macro_auc"] is not None else -row["val_loss"]
            if best["score"] is None or score > best["score"]:
                best = {"score": score, "epoch": epoch, "val_macro_auc": row["val_macro_auc"]}
                _save_best(out / "best", model, config, caches, splits, y_true, y_prob, epoch, row, init)
            _write_log(out / "log.csv", log)
            _save_state(out / "state", model, optimizer, epoch, best, log)
            if progress:
                auc = "n/a" if row["val_macro_auc"] is None else f"{row['val_macro_auc']:.4f}"
                tqdm.write(f"epoch {epoch}: train loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f}, "
                           f"val macro AUC {auc}, {row['seconds']:.1f} s", file=sys.stderr)
        if world > 1:
            torch.distributed.barrier()
        if on_epoch is not None:
            on_epoch(epoch)
    seconds = [row["seconds"] for row in log]
    return TrainResult(str(out), str(out / "best"), best["epoch"], best["val_macro_auc"], len(log),
                       float(np.mean(seconds)) if seconds else 0.0, tuple(log))


def _epoch_row(epoch: int, train_loss: float, y_true: np.ndarray, y_prob: np.ndarray, seconds: float) -> dict:
    probabilities = np.clip(y_prob.astype(np.float64), 1e-7, 1 - 1e-7)
    val_loss = float(-np.mean(y_true * np.log(probabilities) + (1 - y_true) * np.log(1 - probabilities)))
    scored = evaluate_predictions(y_true, y_prob, np.full(y_true.shape[1], 0.5), "val", n_bootstrap=0)
    return {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_macro_auc": scored.macro_auc,
            "seconds": seconds}


def _write_log(path: Path, log: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(log[0]))
        writer.writeheader()
        writer.writerows(log)


def _save_best(path: Path, model, config: TrainConfig, caches, splits, y_true, y_prob, epoch, row, init) -> None:
    thresholds = tune_thresholds(y_true, y_prob)
    val = evaluate_predictions(y_true, y_prob, thresholds, "val", n_bootstrap=0)
    training_data = {
        "caches": [str(c.path) for c in caches],
        "datasets": sorted({str(d) for c in caches for d in c.index["dataset"].unique()}),
        "cache_specs": [c.meta["spec_sha256"] for c in caches],
        "n_train": len(splits.train), "n_val": len(splits.val), "n_test": len(splits.test),
        "seed": config.seed, "val_fold": config.val_fold, "test_fold": config.test_fold,
        "label_profile": caches[0].spec.label_profile, "epoch": epoch, "init": str(init) if init else None,
        "train_config": config.to_dict(),
    }
    meta = default_meta(model.config, config.lead_names, caches[0].sampling_rate_hz, config.policy,
                        training_data=training_data, metrics={"val": val.to_dict(), "epoch_log": row})
    save_bundle(path, model, replace(meta, thresholds=tuple(float(t) for t in thresholds)))
