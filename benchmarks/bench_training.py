"""Training speed and the input-length policy comparison.

Usage:
  python benchmarks/bench_training.py throughput            # samples/s at batch 32, FLOP/s ceiling
  python benchmarks/bench_training.py scale [--device cuda] # 10 s at 500 Hz, batch 32 and 256 (fp32, AMP)
  python benchmarks/bench_training.py loader [PTBXL_ROOT]   # DataLoader alone, 0/1/2/4 workers
  python benchmarks/bench_training.py policies [PTBXL_ROOT] [--epochs 8]

``throughput`` measures ResNet-34 training steps (forward + backward + Adam) at batch 32 for 10 s at
100 Hz, 10 s at 500 Hz and 30 s at 500 Hz, with model FLOPs from torch's flop counter, against this
machine's measured fp32 matrix-multiply FLOP/s.

``scale`` is the full-scale setting (the study's 500 Hz, 10-s inputs) at batch 32 and 256 on the chosen
device, as ``ecglens train`` runs it there (on CUDA: mixed precision and cuDNN autotuning, and fp32 for
comparison); its samples/s is what the data loader must feed.

``loader`` times the training DataLoader alone (10-s random crops and augmentation from a 500 Hz cache of
the shared PTB-XL sample's 500 Hz records, batch 32, pinned memory when CUDA is present) with 0, 1, 2
and 4 worker processes.

``policies`` trains the study's ResNet-34 on the shared PTB-XL sample at 100 Hz (strat_fold 1-6 train,
7 validation, 8 test: the sample holds folds 1-8 only) once with the ``crop`` policy and once with
``original``, and prints time per epoch and the test macro AUC (thresholds and best epoch chosen on
validation only).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ecglens.models import create_model
from ecglens.preprocess import LengthPolicy


def matmul_flops_per_second(n: int = 2048, repeats: int = 10) -> float:
    """Measured fp32 matrix-multiply FLOP/s on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def throughput() -> None:
    ceiling = matmul_flops_per_second()
    print(f"threads {torch.get_num_threads()}, fp32 matmul: {ceiling / 1e9:.1f} GFLOP/s")
    for rate, seconds in ((100, 10), (500, 10), (500, 30)):
        model = create_model("resnet34")
        optimizer = torch.optim.Adam(model.parameters(), 1e-4)
        x = torch.randn(32, 12, rate * seconds)
        y = torch.randint(0, 2, (32, 9)).float()
        loss_fn = torch.nn.BCEWithLogitsLoss()
        with FlopCounterMode(display=False) as counter:
            loss_fn(model(x), y).backward()
        flops_per_sample = counter.get_total_flops() / 32
        steps = 3 if rate * seconds <= 1000 else 2
        loss_fn(model(x), y).backward()  # warm-up
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
        elapsed = (time.perf_counter() - start) / steps
        achieved = flops_per_sample * 32 / elapsed
        print(
            f"{seconds:>2} s at {rate} Hz: {32 / elapsed:6.1f} samples/s, {flops_per_sample / 1e9:.2f} GFLOP/sample "
            f"(fwd+bwd), {achieved / 1e9:.1f} GFLOP/s = {100 * achieved / ceiling:.0f} % of the matmul ceiling"
        )


def _step_rate(model, x, y, optimizer, scaler, device, amp: bool, steps: int) -> float:
    from ecglens.train.loop import _autocast

    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step() -> None:
        with _autocast(device, amp):
            loss = loss_fn(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    step()  # warm-up (cuDNN autotuning happens here)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return len(x) * steps / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def scale(device_name: str, batch_sizes: list[int]) -> None:
    from ecglens.models import resolve_device

    device = resolve_device(device_name)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = create_model("resnet34")
    x = torch.randn(1, 12, 5000)
    with FlopCounterMode(display=False) as counter:
        torch.nn.BCEWithLogitsLoss()(model(x), torch.zeros(1, 9)).backward()
    flops = counter.get_total_flops()
    print(f"{name}: ResNet-34, 10 s at 500 Hz, {flops / 1e9:.2f} GFLOP/sample (fwd+bwd)")
    for batch in batch_sizes:
        for amp in (False, True) if device.type == "cuda" else (False,):
            model = create_model("resnet34").to(device)
            optimizer = torch.optim.Adam(model.parameters(), 1e-4)
            bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
            scaler = torch.amp.GradScaler("cuda", enabled=amp and not bf16)
            x = torch.randn(batch, 12, 5000, device=device)
            y = torch.randint(0, 2, (batch, 9), device=device).float()
            steps = 20 if device.type == "cuda" else max(1, 64 // batch)
            rate = _step_rate(model, x, y, optimizer, scaler, device, amp, steps)
            precision = ("bf16" if bf16 else "fp16") if amp else "fp32"
            print(f"batch {batch:>3} {precision}: {rate:8.1f} samples/s, {rate * flops / 1e12:6.2f} TFLOP/s achieved")


def loader(root: str) -> None:
    from torch.utils.data import DataLoader, RandomSampler

    from ecglens.data import Augmentation, CacheDataset, EpochSampler, SplitSpec, split_caches
    from ecglens.data.cache import EcgCache, build_cache
    from ecglens.io import parse_source

    with tempfile.TemporaryDirectory() as scratch:
        cache_path = Path(scratch) / "ptbxl500"
        build_cache([parse_source(f"ptbxl500:{root}")], cache_path, 500, progress=False)
        cache = EcgCache(cache_path)
        items = [i for split in ("train", "val", "test") for i in split_caches([cache], SplitSpec(0, 7, 8))[split]]
        dataset = CacheDataset([cache], items, LengthPolicy("crop", 10.0), True, augmentation=Augmentation(0.5))
        print(
            f"DataLoader alone: {len(dataset)} PTB-XL records at 500 Hz, 10-s crops + augmentation, batch 32, "
            f"{len(os.sched_getaffinity(0))} cores"
        )
        warnings.filterwarnings("ignore", message="This DataLoader will create")  # 4 workers on 2 cores: on purpose
        for workers in (0, 1, 2, 4):
            sampler = EpochSampler(RandomSampler(dataset, num_samples=4 * len(dataset)))
            data = DataLoader(
                dataset,
                batch_size=32,
                sampler=sampler,
                num_workers=workers,
                pin_memory=torch.cuda.is_available(),
                persistent_workers=workers > 0,
                prefetch_factor=4 if workers else None,
            )
            next(iter(data))  # start the workers
            start = time.perf_counter()
            count = sum(len(x) for x, _ in data)
            print(f"{workers} worker(s): {count / (time.perf_counter() - start):8.0f} samples/s")


def policies(root: str, epochs: int) -> None:
    from ecglens.data import SplitSpec
    from ecglens.data.cache import build_cache
    from ecglens.io import parse_source
    from ecglens.train.evaluate import evaluate_bundle
    from ecglens.train.loop import TrainConfig, fit

    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "ptbxl100"
        build_cache([parse_source(f"ptbxl100:{root}")], cache, 100, progress=False)
        for policy in (LengthPolicy("crop", 10.0), LengthPolicy.original()):
            config = TrainConfig(epochs=epochs, policy=policy, split=SplitSpec(0, 7, 8))
            result = fit([cache], Path(scratch) / policy.name, config, progress=False)
            report = evaluate_bundle(result.best_bundle, [cache], n_bootstrap=0)
            curve = ", ".join(f"{row.val_macro_auc:.3f}" for row in result.log)
            print(
                f"policy {policy.name:8s} ({policy.seconds:g} s): {result.seconds_per_epoch:.1f} s/epoch, "
                f"best epoch {result.best_epoch}, val macro AUC per epoch [{curve}], "
                f"test macro AUC {report.results[0].macro_auc:.3f} on {report.results[0].n_records} records"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("throughput", "scale", "loader", "policies"))
    default_root = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb-xl"
    parser.add_argument("root", nargs="?", default=os.environ.get("ECGLENS_PTBXL", str(default_root)))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-sizes", default="32,256")
    args = parser.parse_args()
    if args.what == "throughput":
        throughput()
    elif args.what == "scale":
        scale(args.device, [int(b) for b in args.batch_sizes.split(",")])
    elif args.what == "loader":
        loader(args.root)
    else:
        policies(args.root, args.epochs)


if __name__ == "__main__":
    main()
