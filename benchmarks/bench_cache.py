"""Cache build speed and per-sample load time, against reading the file on every access.

Usage: python benchmarks/bench_cache.py [PTBXL_ROOT] [--rate 100|500]

Prints records/s for `ecglens data prepare` on the PTB-XL sample, and the time to get one training
sample from the cache against the original code's way (``wfdb.rdsamp`` then zero-pad to 15,000 samples).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import wfdb

from ecglens.data.cache import EcgCache, build_cache
from ecglens.io import parse_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default_root = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb-xl"
    parser.add_argument("root", nargs="?", default=os.environ.get("ECGLENS_PTBXL", str(default_root)))
    parser.add_argument("--rate", type=int, default=100, choices=(100, 500))
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    source = parse_source(f"ptbxl{args.rate}:{args.root}")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "cache"
        start = time.perf_counter()
        report = build_cache([source], out, args.rate, workers=args.workers, progress=False)
        seconds = time.perf_counter() - start
        print(
            f"cache build: {report.n_records} records at {args.rate} Hz in {seconds:.2f} s "
            f"= {report.n_records / seconds:.0f} records/s ({args.workers} workers)"
        )
        cache = EcgCache(out)
        rng = np.random.default_rng(0)
        picks = rng.integers(0, len(cache), 2000)
        start = time.perf_counter()
        for i in picks:
            np.array(cache.signal(int(i)))
        cache_us = (time.perf_counter() - start) / len(picks) * 1e6
        paths = cache.index["source_path"].to_numpy()
        start = time.perf_counter()
        for i in picks[:300]:
            signal, _ = wfdb.rdsamp(paths[int(i)][:-4])
            padded = np.zeros((15000, 12), np.float32)
            padded[-len(signal) :] = signal[-15000:]
        file_us = (time.perf_counter() - start) / 300 * 1e6
        print(
            f"load one sample: cache slice {cache_us:.1f} us, wfdb.rdsamp + zero-pad to 15000 {file_us:.0f} us "
            f"({file_us / cache_us:.0f}x)"
        )


if __name__ == "__main__":
    main()
