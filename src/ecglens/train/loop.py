"""Training: Adam + BCE-with-logits, best epoch on validation, exact resume, fine-tuning, DDP, AMP.

A run directory holds ``config.json`` (the resolved configuration), ``splits.csv``, ``log.csv`` (one
row per epoch), ``state/`` (what ``--resume`` needs, see `ecglens.train.state`) and ``best/`` (the
bundle of the epoch with the best validation macro AUC, its thresholds tuned on validation). The test
split is never looked at here.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ecglens.bundle.meta import ThresholdOrigin, TrainingData, default_meta, is_synthetic_source, not_validated_classes
from ecglens.bundle.weights import load_model, save_bundle
from ecglens.classes import CLASS_NAMES
from ecglens.data import (
    Augmentation,
    CacheDataset,
    EpochSampler,
    LengthBucketSampler,
    SplitItems,
    SplitSpec,
    split_caches,
)
from ecglens.data.cache import EcgCache
from ecglens.labels.mapping import PROFILES, LabelMap, load_label_map, load_label_space
from ecglens.leads import LEAD_NAMES, canonical_leads
from ecglens.metrics import evaluate_predictions, tune_thresholds
from ecglens.models import create_model, resolve_device
from ecglens.models.attacks import pgd
from ecglens.models.resnet1d import ResNet1d
from ecglens.perturb import RandomPerturbation
from ecglens.preprocess import LengthPolicy
from ecglens.train.state import STATE_DIR, BestEpoch, EpochLog, RunState, load_state, recover_state, save_state
from ecglens.util.atomic import atomic_open, write_text
from ecglens.util.distributed import barrier, process_group, rank_device
from ecglens.util.progress import bar, note

TENSORBOARD_DIR = "tensorboard"
ADVERSARIAL_STEPS = 3


def _synthetic_only(caches: Sequence[EcgCache], per_cache: int = 8) -> bool:
    """Whether the caches hold synthetic records only (judged on a few records of each: a cache is one cohort)."""
    paths = [str(p) for c in caches for p in c.index["source_path"].head(per_cache)]
    return bool(paths) and all(is_synthetic_source(p) for p in paths)


def _whole(value: object, low: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what} must be a whole number of at least {low}, not {value!r}")


def _check_numbers(config: TrainConfig) -> None:
    """Every number of a configuration in range, whether it came from flags or from a file.

    Raises:
        ValueError: naming the option and the value.
    """
    _whole(config.epochs, 1, "epochs")
    _whole(config.batch_size, 1, "batch_size")
    _whole(config.seed, 0, "seed")
    if config.workers is not None:
        _whole(config.workers, 0, "workers")
    for name, low, high in (("lr", 0.0, 10.0), ("augmentation_probability", 0.0, 1.0)):
        value = getattr(config, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
            or (name == "lr" and value == 0)
        ):
            raise ValueError(
                f"{name} must be a number in {'(' if name == 'lr' else '['}{low:g}, {high:g}], not {value!r}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; the defaults are the study's (Adam, lr 1e-4, batch 32, 30 epochs).

    ``seed`` seeds the weights, the batch order and augmentation; ``split`` says how records are split, with its
    own seed (default ``SplitSpec()``: folds 9/10, seed 0), so runs of several seeds share one split (as an
    ensemble's members must). ``ecglens train --seed N`` sets both seeds.
    """

    model: str = "resnet34"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-4
    seed: int = 0
    policy: LengthPolicy = field(default_factory=LengthPolicy)
    augmentation_probability: float = 0.5
    lead_names: tuple[str, ...] = LEAD_NAMES
    split: SplitSpec = field(default_factory=SplitSpec)
    device: str = "auto"
    amp: bool = True
    workers: int | None = None
    """DataLoader worker processes; None: 0 on CPU (the cores train), up to 4 on CUDA (`default_workers`)."""
    compile: bool = False
    """Run the training forward and backward through ``torch.compile``."""
    label_space: str | None = None
    """``NAME``, ``NAME:PROFILE`` or a mapping CSV (`ecglens.labels.load_label_space`); None: the nine classes
    under the profile the first cache was prepared with."""
    tensorboard: bool = False
    """Also write TensorBoard event files (loss, validation metrics, learning rate) to ``RUN/tensorboard``."""
    augment: tuple[str, ...] = ()
    """Perturbation families used as augmentation (``noise``, ``faults``; `ecglens.perturb.RandomPerturbation`)."""
    adversarial: str | None = None
    """``pgd:EPS``: PGD adversarial training at an L-inf budget of EPS microvolts (3 steps; the loss is the mean
    of the clean and the adversarial batch's)."""

    def __post_init__(self) -> None:
        _check_numbers(self)
        object.__setattr__(self, "lead_names", canonical_leads(self.lead_names))
        object.__setattr__(self, "augment", tuple(self.augment))
        RandomPerturbation(self.augment)  # names the unknown family, if any
        if self.adversarial is not None:
            self.adversarial_budget_mv  # noqa: B018 - validates the spec

    def to_dict(self) -> dict:
        """Plain data for ``config.json``."""
        return asdict(self)

    @property
    def adversarial_budget_mv(self) -> float | None:
        """The adversarial-training budget in mV (None without adversarial training)."""
        if self.adversarial is None:
            return None
        method, _, value = self.adversarial.partition(":")
        try:
            budget = float(value)
        except ValueError:
            budget = -1.0
        if method != "pgd" or not budget > 0:
            raise ValueError(
                f"--adversarial takes pgd:EPS with EPS in microvolts, e.g. pgd:25 (got {self.adversarial!r})"
            )
        return budget * 1e-3


@dataclass(frozen=True)
class TrainResult:
    """Where a run's outputs are and how the best epoch did."""

    run_dir: str
    best_bundle: str
    best_epoch: int
    best_val_macro_auc: float | None
    epochs_run: int
    seconds_per_epoch: float
    log: tuple[EpochLog, ...]


@dataclass
class _Run:
    """Everything one training run holds while it goes (built by `_prepare_run`)."""

    out: Path
    config: TrainConfig
    caches: list[EcgCache]
    label_map: LabelMap | None
    splits: SplitItems
    model: ResNet1d
    train_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train_set: CacheDataset
    val_set: CacheDataset
    sampler: EpochSampler
    loader: DataLoader
    scaler: torch.amp.GradScaler
    device: torch.device
    rank: int
    world: int
    init: str | None
    state: RunState

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes the model outputs, in order."""
        return CLASS_NAMES if self.label_map is None else self.label_map.classes


def default_workers(device: torch.device) -> int:
    """DataLoader workers when not given: none on CPU, where every core already computes the model; on CUDA,
    up to 4 (one core left for the main process), which the loader benchmark shows is enough to feed a GPU."""
    if device.type != "cuda":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(4, cores - 1))


def _autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


@torch.no_grad()
def predict_dataset(
    model: torch.nn.Module,
    dataset: CacheDataset,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    amp: bool = True,
    logits: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (or, with ``logits``, the logits) for every item of an evaluation dataset, in item order:
    (targets, outputs)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    probabilities = np.zeros((len(dataset), dataset.labels.shape[1]), np.float32)
    batches = LengthBucketSampler(dataset, batch_size)
    loader = DataLoader(dataset, batch_sampler=batches)
    order = [i for batch in batches for i in batch]
    position = 0
    for x, _ in loader:
        with _autocast(device, amp):
            output = model(x.to(device, non_blocking=True)).float()
        n = len(x)
        probabilities[order[position : position + n]] = (output if logits else torch.sigmoid(output)).cpu().numpy()
        position += n
    model.train(was_training)
    return dataset.labels.copy(), probabilities


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
    run = _prepare_run(cache_paths, Path(out), config, None if init is None else str(init), resume)
    for epoch in range(run.state.epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        train_loss = _train_epoch(run, epoch, progress)
        _sync_buffers(run)
        if run.rank == 0:
            _validate_and_keep_best(run, epoch, train_loss, started, progress)
        barrier()
        if on_epoch is not None:
            on_epoch(epoch)
    log = run.state.log
    seconds = [row.seconds for row in log]
    return TrainResult(
        str(run.out),
        str(run.out / "best"),
        run.state.best.epoch,
        run.state.best.val_macro_auc,
        len(log),
        float(np.mean(seconds)) if seconds else 0.0,
        log,
    )


def finished_run(out: str | os.PathLike, epochs: int) -> TrainResult | None:
    """The result of a run in ``out`` that finished ``epochs`` epochs, rebuilt from its ``log.csv`` and ``best/``
    (its resume state may be gone, as the demo removes it); None when the run did not finish."""
    out = Path(out)
    if not (out / "log.csv").is_file() or not (out / "best" / "bundle.json").is_file():
        return None
    with open(out / "log.csv", newline="") as handle:
        log = tuple(_epoch_row(row) for row in csv.DictReader(handle))
    if not log or log[-1].epoch != epochs:
        return None
    best = max(log, key=lambda row: row.val_macro_auc if row.val_macro_auc is not None else -row.val_loss)
    seconds = [row.seconds for row in log]
    return TrainResult(
        str(out), str(out / "best"), best.epoch, best.val_macro_auc, len(log), float(np.mean(seconds)), log
    )


def _epoch_row(row: dict[str, str]) -> EpochLog:
    """One ``log.csv`` row as written by `_write_log` (an empty cell is None)."""
    values = {name: (None if text == "" else float(text)) for name, text in row.items()}
    return EpochLog(**{**values, "epoch": int(row["epoch"])})  # type: ignore[arg-type]


def _prepare_run(
    cache_paths: Sequence[str | os.PathLike], out: Path, config: TrainConfig, init: str | None, resume: bool
) -> _Run:
    """Caches, splits, model (from ``init`` or resumed), optimizer and data loaders of a run."""
    rank, world = process_group()
    device = rank_device(resolve_device(config.device))
    caches = [EcgCache(path) for path in cache_paths]
    recover_state(out)
    if resume and not (out / STATE_DIR).is_dir():
        raise FileNotFoundError(f"{out}: nothing to resume (no state/ directory)")
    if not resume and (out / STATE_DIR).exists():
        raise FileExistsError(f"{out}: holds a run already; pass --resume to continue it or choose another --out")
    if config.tensorboard:
        _summary_writer()  # fail before training, not after the first epoch
    label_map = training_label_map(config, caches)
    splits = _checked_splits(caches, config, label_map, rank)
    model = _initial_model(config, len(CLASS_NAMES) if label_map is None else len(label_map.classes), init, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    augment = RandomPerturbation(config.augment) if config.augment else None
    train_set = CacheDataset(
        caches,
        splits.train,
        config.policy,
        True,
        config.lead_names,
        Augmentation(config.augmentation_probability),
        config.seed,
        label_map,
        augment,
    )
    val_set = CacheDataset(caches, splits.val, config.policy, False, config.lead_names, label_map=label_map)
    state = RunState(0, BestEpoch(), ())
    if resume:
        state = load_state(out / STATE_DIR, model, optimizer)
    elif rank == 0:
        _write_run_files(out, config, caches, splits, init)
    sampler = EpochSampler(DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed))
    scaler = torch.amp.GradScaler(
        "cuda", enabled=device.type == "cuda" and config.amp and not torch.cuda.is_bf16_supported()
    )
    return _Run(
        out,
        config,
        caches,
        label_map,
        splits,
        model,
        _training_model(model, config, device, world),
        optimizer,
        train_set,
        val_set,
        sampler,
        _loader(train_set, sampler, config, device),
        scaler,
        device,
        rank,
        world,
        init,
        state,
    )


def _initial_model(config: TrainConfig, n_classes: int, init: str | None, device: torch.device) -> ResNet1d:
    """The run's model on ``device``: seeded fresh weights, or ``init``'s (which must have the same shape)."""
    torch.manual_seed(config.seed)
    model = create_model(config.model, len(config.lead_names), n_classes)
    if init is not None:
        source, source_meta = load_model(init)
        if source_meta.model != model.config:
            raise ValueError(f"{init}: model {source_meta.model} does not match {model.config}")
        model.load_state_dict(source.state_dict())
    return model.to(device)


def _loader(train_set: CacheDataset, sampler: EpochSampler, config: TrainConfig, device: torch.device) -> DataLoader:
    """The training loader: pinned memory and persistent workers on CUDA; its own generator, so it never draws on
    dropout's random stream."""
    workers = default_workers(device) if config.workers is None else config.workers
    return DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=False,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        generator=torch.Generator().manual_seed(config.seed),
    )


def _checked_splits(
    caches: Sequence[EcgCache], config: TrainConfig, label_map: LabelMap | None, rank: int
) -> SplitItems:
    """The run's splits, described in the log (by rank 0); an empty training or validation split is an error."""
    splits = split_caches(caches, config.split, label_map=label_map)
    if rank == 0:
        for message in _split_lines(splits, config.split):
            note(message, "split")
    if not splits.train:
        raise ValueError(
            "the training split is empty (no record with a class of the label space in folds other than val/test)"
        )
    if not splits.val:  # no epoch could be chosen and no threshold tuned: say so before training, not with NaNs
        raise ValueError(
            f"the validation split is empty: fold {config.split.val_fold} holds no record with a class "
            "of the label space (the shared PTB-XL sample has folds 1-8: --val-fold 7 --test-fold 8)"
        )
    return splits


def _write_run_files(
    out: Path, config: TrainConfig, caches: Sequence[EcgCache], splits: SplitItems, init: str | None
) -> None:
    """A new run's ``config.json`` (every option, resolved), ``splits.csv`` and ``twins.csv`` (if any)."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(
        out / "config.json",
        json.dumps({"config": config.to_dict(), "caches": [str(c.path) for c in caches], "init": init}, indent=2),
    )
    with atomic_open(out / "splits.csv", newline="") as handle:
        splits.table.to_csv(handle, index=False)
    if len(splits.twins):
        with atomic_open(out / "twins.csv", newline="") as handle:
            splits.twins.to_csv(handle, index=False)


def _training_model(model: torch.nn.Module, config: TrainConfig, device: torch.device, world: int) -> torch.nn.Module:
    """The model the optimiser steps through: wrapped for DDP across processes, compiled when asked."""
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
    if config.compile:
        train_model = cast(torch.nn.Module, torch.compile(train_model))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels once
    return train_model


def training_label_map(config: TrainConfig, caches: Sequence[EcgCache]) -> LabelMap | None:
    """The label space a run trains on: ``config.label_space``, else the nine classes under the first cache's
    profile; None only for a cache prepared with a mapping file (its stored nine-class columns are used)."""
    if config.label_space:
        return load_label_space(config.label_space)
    profile = caches[0].spec.label_profile
    return load_label_map(profile) if profile in PROFILES else None


def _split_lines(splits: SplitItems, split: SplitSpec) -> list[str]:
    """What the log says about a run's records: counts, out-of-scope records, copies, twins and notes."""
    scope = (
        "kept as negatives for every class"
        if split.out_of_scope == "negative"
        else "left out (--in-scope-only, the study's reproduction)"
    )
    out = sum(splits.out_of_scope(name) for name in ("train", "val", "test"))
    left_out = int(((splits.table["scope"] == "out") & (splits.table["split"] == "excluded")).sum())
    lines = [
        f"train {len(splits.train)}, val {len(splits.val)}, test {len(splits.test)} records; out of the label "
        f"space: {out + left_out}, {scope}"
    ]
    copies = int((splits.table["split"] == "duplicate").sum())
    if copies:
        lines.append(
            f"{copies} recording(s) held twice, used once from the native source; {len(splits.twins)} "
            "with classes that differ between the copies (twins.csv)"
        )
    return lines + list(splits.notes)


def _train_epoch(run: _Run, epoch: int, progress: bool) -> float:
    """One pass over the training split; returns the mean training loss."""
    config = run.config
    run.sampler.set_epoch(epoch)
    run.train_model.train()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    total, count = 0.0, 0
    counter = bar(
        total=len(run.loader),
        desc=f"epoch {epoch}/{config.epochs}",
        unit="batch",
        enabled=progress and run.rank == 0,
        leave=False,
        line=False,
    )
    budget = config.adversarial_budget_mv
    for x, y in run.loader:
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        if budget is not None:  # the attack itself in full precision, on the unwrapped model
            adversarial = pgd(run.model, x, y, budget, "linf", steps=ADVERSARIAL_STEPS).inputs
        with _autocast(run.device, config.amp):
            loss = loss_fn(run.train_model(x).float(), y)
            if budget is not None:
                loss = 0.5 * (loss + loss_fn(run.train_model(adversarial).float(), y))
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        total += float(loss.detach()) * len(x)
        count += len(x)
        counter.update()
        counter.set_postfix(loss=f"{total / count:.4f}")
    counter.close()
    return total / max(count, 1)


def _sync_buffers(run: _Run) -> None:
    """Parameters agree through gradient all-reduce; batch-norm running statistics are per rank after the
    last forward pass: take rank 0's so every rank ends the epoch with one state."""
    if run.world > 1:
        for buffer in run.model.buffers():
            torch.distributed.broadcast(buffer, src=0)


def _validate_and_keep_best(run: _Run, epoch: int, train_loss: float, started: float, progress: bool) -> None:
    """Score the validation split, keep the best epoch as a bundle, append to the log and save resume state."""
    config = run.config
    y_true, y_prob = predict_dataset(run.model, run.val_set, 2 * config.batch_size, run.device, config.amp)
    row = _epoch_log(
        epoch,
        train_loss,
        y_true,
        y_prob,
        time.perf_counter() - started,
        run.class_names,
        float(run.optimizer.param_groups[0]["lr"]),
    )
    score = row.val_macro_auc if row.val_macro_auc is not None else -row.val_loss
    best = run.state.best
    if best.score is None or score > best.score:
        best = BestEpoch(score, epoch, row.val_macro_auc)
        _save_best(run, y_true, y_prob, row)
    run.state = RunState(epoch, best, (*run.state.log, row))
    _write_log(run.out / "log.csv", run.state.log)
    if config.tensorboard:
        log_tensorboard(run.out / TENSORBOARD_DIR, row)
    save_state(run.out / STATE_DIR, run.model, run.optimizer, run.state)
    if progress and run.rank == 0:
        auc = "n/a" if row.val_macro_auc is None else f"{row.val_macro_auc:.4f}"
        note(
            f"epoch {epoch}: train loss {row.train_loss:.4f}, val loss {row.val_loss:.4f}, "
            f"val macro AUC {auc}, {row.seconds:.1f} s",
            "train",
        )


def _epoch_log(
    epoch: int,
    train_loss: float,
    y_true: np.ndarray,
    y_prob: np.ndarray,
    seconds: float,
    class_names: Sequence[str],
    lr: float,
) -> EpochLog:
    probabilities = np.clip(y_prob.astype(np.float64), 1e-7, 1 - 1e-7)
    val_loss = float(-np.mean(y_true * np.log(probabilities) + (1 - y_true) * np.log(1 - probabilities)))
    scored = evaluate_predictions(y_true, y_prob, np.full(y_true.shape[1], 0.5), "val", class_names, n_bootstrap=0)
    return EpochLog(epoch, train_loss, val_loss, scored.macro_auc, seconds, scored.macro_auprc, scored.fmax, lr)


def _summary_writer() -> type:
    """TensorBoard's event writer; a clear error when the ``tensorboard`` extra is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ValueError("--tensorboard needs the tensorboard package: pip install 'ecglens[tensorboard]'") from (
            None if isinstance(error, ModuleNotFoundError) else error
        )
    return SummaryWriter


def log_tensorboard(directory: Path, row: EpochLog) -> None:
    """Append one epoch to TensorBoard event files (the ``tensorboard`` extra). A resumed run appends to the
    same folder; TensorBoard shows the last value written for a step."""
    with _summary_writer()(str(directory)) as writer:
        for tag, value in (
            ("loss/train", row.train_loss),
            ("loss/val", row.val_loss),
            ("val/macro_auc", row.val_macro_auc),
            ("val/macro_auprc", row.val_macro_auprc),
            ("val/fmax", row.val_fmax),
            ("lr", row.lr),
            ("time/epoch_s", row.seconds),
        ):
            if value is not None:
                writer.add_scalar(tag, value, row.epoch)


def _write_log(path: Path, log: Sequence[EpochLog]) -> None:
    with atomic_open(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(log[0])))
        writer.writeheader()
        writer.writerows(asdict(row) for row in log)


def _save_best(run: _Run, y_true: np.ndarray, y_prob: np.ndarray, row: EpochLog) -> None:
    """The epoch's bundle, its thresholds F1-optimal on the validation split."""
    config, caches, splits = run.config, run.caches, run.splits
    thresholds = tune_thresholds(y_true, y_prob)
    val = evaluate_predictions(y_true, y_prob, thresholds, "val", run.class_names, n_bootstrap=0)
    datasets = tuple(sorted({str(d) for c in caches for d in c.index["dataset"].unique()}))
    cache_names = tuple(str(c.path) for c in caches)
    training_data = TrainingData(
        caches=cache_names,
        datasets=datasets,
        cache_specs=tuple(c.meta["spec_sha256"] for c in caches),
        split=config.split,
        n_train=len(splits.train),
        n_val=len(splits.val),
        n_test=len(splits.test),
        label_profile=caches[0].spec.label_profile if run.label_map is None else run.label_map.label,
        epoch=row.epoch,
        init=run.init,
        config=config.to_dict(),
        synthetic_only=_synthetic_only(caches),
    )
    origin = ThresholdOrigin("F1-optimal", "val", datasets, cache_names, len(splits.val))
    unknown = not_validated_classes(
        run.class_names, run.train_set.labels.sum(axis=0).astype(int), run.val_set.labels.sum(axis=0).astype(int)
    )
    meta = default_meta(
        run.model.config,
        config.lead_names,
        caches[0].sampling_rate_hz,
        config.policy,
        label_space=run.label_map,
        training_data=training_data,
        not_validated=unknown,
        metrics={"val": val.to_dict(), "epoch_log": asdict(row)},
    )
    save_bundle(
        run.out / "best",
        run.model,
        replace(meta, thresholds=tuple(float(t) for t in thresholds), threshold_origin=origin),
    )
