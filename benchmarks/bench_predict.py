"""Prediction speed: records/s over a directory of 10-s 500 Hz records, eager PyTorch against ONNX Runtime.

Usage: python benchmarks/bench_predict.py [--n 128]

Builds a ResNet-34 bundle at 500 Hz (random weights: the cost does not depend on them), writes ``--n``
synthetic WFDB records, and times (1) reading + preprocessing alone, (2) ``predict`` with each engine at
batch 1 and 32. The ceiling is this machine's fp32 matrix-multiply FLOP/s over the model's forward FLOPs
per record.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ecglens.bundle.meta import default_meta
from ecglens.bundle.weights import save_bundle
from ecglens.io import read_record
from ecglens.leads import LEAD_NAMES
from ecglens.models import create_model
from ecglens.predict import export_onnx, find_record_files, load_bundle, predict_files
from ecglens.preprocess import LengthPolicy
from ecglens.synth.cohort import SynthConfig, write_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=128)
    args = parser.parse_args()
    from bench_training import matmul_flops_per_second

    ceiling = matmul_flops_per_second()
    model = create_model("resnet34").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 12, 5000))
    flops = counter.get_total_flops()
    print(
        f"fp32 matmul {ceiling / 1e9:.0f} GFLOP/s; ResNet-34 forward {flops / 1e9:.2f} GFLOP per 10-s 500 Hz record "
        f"-> ceiling {ceiling / flops:.1f} records/s"
    )
    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch) / "bundle"
        save_bundle(bundle, model, default_meta(model.config, LEAD_NAMES, 500.0, LengthPolicy("crop", 10.0)))
        export_onnx(bundle)
        records = Path(scratch) / "records"
        write_cohort(SynthConfig(n_records=args.n, sampling_rate_hz=500), records, progress=False)
        files = find_record_files([records])
        predictor = load_bundle(bundle)
        start = time.perf_counter()
        prepared = [predictor.prepare(read_record(f)) for f in files]
        read_seconds = time.perf_counter() - start
        print(f"reading + preprocessing alone: {len(prepared) / read_seconds:.0f} records/s")
        for engine in ("torch", "onnx"):
            predictor = load_bundle(bundle, engine=engine)
            for batch in (1, 32):
                predict_files(predictor, files[:8], batch_size=batch, progress=False)  # warm-up
                start = time.perf_counter()
                predictions, _ = predict_files(predictor, files, batch_size=batch, progress=False)
                rate = len(predictions) / (time.perf_counter() - start)
                print(
                    f"{engine:5s} batch {batch:2d}: {rate:6.1f} records/s ({100 * rate * flops / ceiling:.0f} % of "
                    f"the ceiling)"
                )


if __name__ == "__main__":
    main()
