"""Training speed and the input-length policy comparison.

Usage:
  python benchmarks/bench_training.py throughput            # samples/s at batch 32, FLOP/s ceiling
  python benchmarks/bench_training.py policies [PTBXL_ROOT] [--epochs 8]

``throughput`` measures ResNet-34 training steps (forward + backward + Adam) at batch 32 for 10 s at
100 Hz, 10 s at 500 Hz and 30 s at 500 Hz, with model FLOPs from torch's flop counter, against this
machine's measured fp32 matrix-multiply FLOP/s.

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
        print(f"{seconds:>2} s at {rate} Hz: {32 / elapsed:6.1f} samples/s, {flops_per_sample / 1e9:.2f} GFLOP/sample "
              f"(fwd+bwd), {achieved / 1e9:.1f} GFLOP/s = {100 * achieved / ceiling:.0f} % of the matmul ceiling")


def policies(root: str, epochs: int) -> None:
    from ecglens.cache import build_cache
    from ecglens.data import SplitSpec
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
            print(f"policy {policy.name:8s} ({policy.seconds:g} s): {result.seconds_per_epoch:.1f} s/epoch, "
                  f"best epoch {result.best_epoch}, val macro AUC per epoch [{curve}], "
                  f"test macro AUC {report.results[0].macro_auc:.3f} on {report.results[0].n_records} records")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("throughput", "policies"))
    default_root = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb-xl"
    parser.add_argument("root", nargs="?", default=os.environ.get("ECGLENS_PTBXL", str(default_root)))
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    throughput() if args.what == "throughput" else policies(args.root, args.epochs)


if __name__ == "__main__":
    main()
