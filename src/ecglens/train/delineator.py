"""Training the learned delineator (`ecglens.waves.net`) on LUDB's per-lead marks, with record-disjoint
cross-validation.

Usage: ``python -m ecglens.train.delineator --ludb DIR --folds 5 --out DIR [--final]``

Folds are fixed by record number: the records sorted by number, the i-th goes to fold ``i % folds`` (on the
shared half, records 1, 11, 21, ... form fold 0; 3, 13, 23, ... fold 1; and so on). For each fold the network
is trained on the other folds' records, less one record in eight (every eighth of them, by number) kept for
early stopping; the held-out fold is only scored (``benchmarks/bench_delineation.py --cv DIR``). The number of
epochs for the final model, trained on every record, is the median of the folds' early-stopping epochs.

Training reads, each epoch, a random 2-2.5 s crop of four random leads of each record at 250 Hz, with
augmentation (amplitude scaling, sign flip, baseline wander, Gaussian and powerline noise); the loss is counted
only inside the span each lead's marks cover (LUDB leaves the first and last beats unmarked). Seeds are fixed.

Folds can be trained in separate processes (``--only-folds 0,1``), then gathered (``--collect``) into
``cv.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecglens.waves.marks import WaveMarks
from ecglens.waves.net import CLASSES, RATE_HZ, NetConfig, build_net, prepare, write_weights

VALIDATION_LEAD_STEP = 3


@dataclass(frozen=True)
class TrainConfig:
    """How one network is trained."""

    net: NetConfig = field(default_factory=NetConfig)
    max_epochs: int = 30
    patience: int = 4
    batch_size: int = 16
    learning_rate: float = 3e-3
    crop_s: tuple[float, ...] = (2.048, 2.56)
    leads_per_record: int = 4
    seed: int = 0


@dataclass(frozen=True)
class LudbItem:
    """One LUDB record ready for training: the network's input, per-sample classes and the loss mask."""

    record: str
    inputs: np.ndarray  # leads x 2 x samples (float32)
    labels: np.ndarray  # leads x samples (int64)
    mask: np.ndarray  # leads x samples (bool): inside the span the lead's marks cover


def labels_of(marks: WaveMarks, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample classes and loss mask at `RATE_HZ` from the marks (a wave missing an onset or offset is left
    out of the mask around its peak)."""
    ratio = RATE_HZ / marks.sampling_rate_hz
    labels = np.zeros((len(marks.leads), n_samples), np.int64)
    mask = np.zeros((len(marks.leads), n_samples), bool)
    for k, lead in enumerate(marks.leads):
        span = lead.span
        if span is None:
            continue
        mask[k, int(span[0] * ratio) : min(math.ceil(span[1] * ratio) + 1, n_samples)] = True
        for index, kind in enumerate(CLASSES[1:], start=1):
            for onset, peak, offset in lead.of(kind):
                if onset >= 0 and offset >= 0:
                    labels[k, round(onset * ratio) : round(offset * ratio) + 1] = index
                else:
                    centre = round(peak * ratio)
                    mask[k, max(centre - 25, 0) : centre + 25] = False
    return labels, mask


def load_ludb(folder: Path) -> list[LudbItem]:
    """Every LUDB record in ``folder`` with its marks, sorted by record number."""
    from ecglens.io import read_record
    from ecglens.waves.ludb import read_ludb_marks

    headers = sorted(folder.glob("*.hea"), key=lambda p: int(p.stem) if p.stem.isdigit() else 10**9)
    items = []
    for header in headers:
        record = read_record(header)
        marks = read_ludb_marks(header)
        order = [record.lead_names.index(lead) for lead in marks.lead_names]
        inputs = prepare(record.signal[order], record.sampling_rate_hz)
        labels, mask = labels_of(marks, inputs.shape[-1])
        items.append(LudbItem(header.stem, inputs, labels, mask))
    return items


def fold_of(records: Sequence[str], folds: int) -> dict[str, int]:
    """Each record's fold: the records sorted by number, the i-th in fold ``i % folds``."""
    ordered = sorted(records, key=lambda r: int(r) if r.isdigit() else 10**9)
    return {record: i % folds for i, record in enumerate(ordered)}


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A batch (items x 2 x samples at `RATE_HZ`) with random amplitude scaling, sign flip (lead channel),
    baseline wander, Gaussian and powerline (50 or 60 Hz) noise."""
    n, _, length = x.shape

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=generator)

    t = torch.arange(length) / RATE_HZ
    scale = torch.exp(uniform(-0.7, 0.7, n, 1, 1))
    x = x * scale
    flip = torch.where(torch.rand(n, 1, generator=generator) < 0.15, -1.0, 1.0)
    x[:, 0] = x[:, 0] * flip
    wander = uniform(0, 0.4, n, 1) * torch.sin(2 * math.pi * uniform(0.05, 0.5, n, 1) * t + uniform(0, 6.3, n, 1))
    hum_hz = torch.where(torch.rand(n, 1, generator=generator) < 0.5, 50.0, 60.0)
    hum = uniform(0, 0.08, n, 1) * torch.sin(2 * math.pi * hum_hz * t + uniform(0, 6.3, n, 1))
    noise = uniform(0, 0.06, n, 1) * torch.randn(n, length, generator=generator)
    x[:, 0] = x[:, 0] + wander + hum + noise
    x[:, 1] = x[:, 1] + uniform(0, 0.03, n, 1) * torch.randn(n, length, generator=generator)
    return x


def _crops(
    items: Sequence[LudbItem], length: int, leads_per_record: int, rng: np.random.Generator
) -> tuple[torch.Tensor, ...]:
    """One random crop of ``length`` samples for ``leads_per_record`` random leads of each record, placed to
    overlap the lead's marked span."""
    xs, ys, ms = [], [], []
    for item in items:
        n = item.inputs.shape[-1]
        leads = rng.choice(len(item.inputs), size=min(leads_per_record, len(item.inputs)), replace=False)
        for lead in leads:
            marked = np.flatnonzero(item.mask[lead])
            if not marked.size:
                continue
            low = max(0, min(int(marked[0]) - length // 2, n - length))
            high = max(low, min(int(marked[-1]) - length // 2, n - length))
            start = int(rng.integers(low, high + 1))
            xs.append(item.inputs[lead, :, start : start + length])
            ys.append(item.labels[lead, start : start + length])
            ms.append(item.mask[lead, start : start + length])
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)), torch.from_numpy(np.stack(ms))


def masked_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the masked samples only."""
    per_sample = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    return (per_sample * mask).sum() / mask.sum().clamp(min=1)


def evaluate_loss(model: Any, items: Sequence[LudbItem]) -> float:
    """Mean masked loss over whole records (every third lead: I, aVR, V1, V4), no augmentation."""
    model.eval()
    multiple = model.config.multiple
    total, weight = 0.0, 0
    with torch.inference_mode():
        for item in items:
            n = item.inputs.shape[-1] // multiple * multiple
            x = torch.from_numpy(item.inputs[::VALIDATION_LEAD_STEP, :, :n])
            mask = torch.from_numpy(item.mask[::VALIDATION_LEAD_STEP, :n])
            loss = masked_loss(model(x), torch.from_numpy(item.labels[::VALIDATION_LEAD_STEP, :n]), mask)
            total += float(loss) * int(mask.sum())
            weight += int(mask.sum())
    return total / max(weight, 1)


def train_network(
    train: Sequence[LudbItem],
    validation: Sequence[LudbItem],
    config: TrainConfig,
    epochs: int | None = None,
    log: bool = True,
) -> tuple[torch.nn.Module, list[dict]]:
    """Train one network; with ``validation``, keep the epoch of lowest validation loss and stop after
    ``config.patience`` epochs without improvement; without, train exactly ``epochs`` epochs."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = build_net(config.net)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    n_epochs = epochs or config.max_epochs
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=n_epochs, eta_min=config.learning_rate / 20)
    best, best_state, history, waited = math.inf, None, [], 0
    for epoch in range(1, n_epochs + 1):
        started = time.perf_counter()
        model.train()
        length = round(float(rng.choice(config.crop_s)) * RATE_HZ) // config.net.multiple * config.net.multiple
        x, y, m = _crops(train, length, config.leads_per_record, rng)
        order = torch.randperm(len(x), generator=generator)
        losses = []
        for begin in range(0, len(x), config.batch_size):
            batch = order[begin : begin + config.batch_size]
            logits = model(augment(x[batch].clone(), generator))
            loss = masked_loss(logits, y[batch], m[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        scheduler.step()
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "seconds": time.perf_counter() - started}
        if validation:
            row["val_loss"] = evaluate_loss(model, validation)
            if row["val_loss"] < best - 1e-4:
                best, waited = row["val_loss"], 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                row["best"] = True
            else:
                waited += 1
        history.append(row)
        if log:
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        if validation and waited >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), history


def cross_validate(
    items: Sequence[LudbItem], folds: int, out: Path, config: TrainConfig, only: Sequence[int] | None = None
) -> dict:
    """Train one network per fold (on the other folds) and write ``fold_<k>.safetensors`` and ``fold_<k>.json``
    (its validation records, history and early-stopping epoch) into ``out``; then `collect`."""
    assignment = fold_of([item.record for item in items], folds)
    out.mkdir(parents=True, exist_ok=True)
    for fold in range(folds) if only is None else only:
        rest = [item for item in items if assignment[item.record] != fold]
        validation = rest[3::8] if len(rest) >= 8 else rest[-1:]  # a smoke test's few records: the last
        held = {item.record for item in validation}
        train = [item for item in rest if item.record not in held]
        print(f"fold {fold}: {len(train)} training, {len(validation)} validation records", flush=True)
        model, history = train_network(train, validation, config)
        best_epoch = min(history, key=lambda row: row["val_loss"])["epoch"]
        write_weights(model, out / f"fold_{fold}.safetensors", {"fold": str(fold)})
        run = {"fold": fold, "validation": sorted(held, key=int), "best_epoch": best_epoch, "history": history}
        (out / f"fold_{fold}.json").write_text(json.dumps(run, indent=1))
    return collect(items, folds, out, config)


def collect(items: Sequence[LudbItem], folds: int, out: Path, config: TrainConfig) -> dict:
    """``cv.json`` from the folds trained so far: the records' folds, each fold's run and, once every fold is
    there, the final model's epochs (the median of the folds' early-stopping epochs)."""
    runs = [json.loads(p.read_text()) for k in range(folds) if (p := out / f"fold_{k}.json").is_file()]
    result: dict = {
        "folds": folds,
        "assignment": fold_of([item.record for item in items], folds),
        "config": asdict(config),
        "fold_runs": runs,
    }
    if len(runs) == folds:
        result["final_epochs"] = int(statistics.median(run["best_epoch"] for run in runs))
    (out / "cv.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ludb", type=Path, required=True, help="LUDB's data folder (1.hea, 1.dat, 1.i, ...).")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--final", action="store_true", help="Train the final model on every record too.")
    parser.add_argument("--final-epochs", type=int, default=None, help="Epochs of the final model (default: CV's).")
    parser.add_argument("--skip-cv", action="store_true", help="Only the final model (needs --final-epochs).")
    parser.add_argument("--max-epochs", type=int, default=TrainConfig.max_epochs)
    parser.add_argument("--patience", type=int, default=TrainConfig.patience)
    parser.add_argument("--limit", type=int, default=None, help="The first N records only (a smoke test).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only-folds", default=None, help="Train these folds only (comma-separated).")
    parser.add_argument("--collect", action="store_true", help="Only gather the trained folds into cv.json.")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = TrainConfig(max_epochs=args.max_epochs, patience=args.patience)
    items = load_ludb(args.ludb)[: args.limit]
    epochs = args.final_epochs
    if args.collect:
        return 0 if "final_epochs" in collect(items, args.folds, args.out, config) else 1
    if not args.skip_cv:
        only = [int(k) for k in args.only_folds.split(",")] if args.only_folds else None
        epochs = epochs or cross_validate(items, args.folds, args.out, config, only).get("final_epochs")
    if args.final:
        if not epochs:
            print("error: --skip-cv needs --final-epochs", file=sys.stderr)
            return 2
        model, history = train_network(items, (), config, epochs=epochs)
        metadata = {"trained_on": f"{len(items)} LUDB records", "epochs": str(epochs), "seed": str(config.seed)}
        write_weights(model, args.out / "delineator.safetensors", metadata)
        (args.out / "final.json").write_text(json.dumps({"epochs": epochs, "history": history}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
