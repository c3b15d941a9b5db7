"""The quality gate (`ecglens.waves.beats`) on every real record of the sample data and on what is no ECG.

Usage: python benchmarks/bench_quality.py [--data DIR] [--noise-records N] [--rates]

For each dataset in ``--data`` (default ``$ECGLENS_DATA`` or ``../shared/data``): the records read, how many
the gate refuses (with their reasons), the lowest repeatability, QRS amplitude and prominence seen, and the
gate's time per record (reading excluded). Then ``--noise-records`` signals of each kind that is not an ECG
(12 leads, 10 s at 500 Hz): Gaussian noise (0.3 mV), a wandering baseline alone, a 50-Hz hum alone, flat
leads, random spikes; every one should be refused. With ``--rates``, clean synthetic rhythms of 30-250 bpm
measured by the delineator (neurokit2) and by the second estimate.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("ptb-xl", "cpsc2018", "challenge", "ludb", "clinical")


def main() -> int:
    from ecglens.synth.beats import not_ecgs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("ECGLENS_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--noise-records", type=int, default=20)
    parser.add_argument("--rates", action="store_true", help="Also measure clean synthetic rhythms of 30-250 bpm.")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from ecglens.io import read_record
    from ecglens.predict import find_record_files
    from ecglens.waves.beats import assess_beats

    print(
        f"{'dataset':<18} {'records':>7} {'refused':>7} {'min repeat.':>11} {'min QRS mV':>10} "
        f"{'min prom.':>9} {'ms/rec':>7}"
    )
    for name in DATASETS:
        folder = args.data / name
        if not folder.is_dir():
            print(f"{name:<18} absent")
            continue
        qualities, seconds, refused = [], 0.0, []
        for path in find_record_files([folder]):
            try:
                record = read_record(path)
            except Exception:  # unreadable: not the gate's concern
                continue
            start = time.perf_counter()
            quality = assess_beats(record.signal, record.sampling_rate_hz)
            seconds += time.perf_counter() - start
            qualities.append(quality)
            if not quality.interpretable:
                refused.append(f"  {path}: {quality.reason}")
        if not qualities:
            continue
        print(
            f"{name:<18} {len(qualities):>7} {len(refused):>7} {min(q.repeatability for q in qualities):>11.2f} "
            f"{min(q.qrs_amplitude_mv for q in qualities):>10.2f} {min(q.qrs_prominence for q in qualities):>9.1f} "
            f"{1000 * seconds / len(qualities):>7.1f}"
        )
        for line in refused:
            print(line)

    rng = np.random.default_rng(0)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    reasons: dict[str, set[str]] = defaultdict(set)
    seconds = 0.0
    for _ in range(args.noise_records):
        for kind, signal in not_ecgs(rng).items():
            start = time.perf_counter()
            quality = assess_beats(signal, 500.0)
            seconds += time.perf_counter() - start
            counts[kind][0] += 1
            counts[kind][1] += not quality.interpretable
            reasons[kind].add(quality.reason.split(":")[0])
    print(f"\n{'not an ECG':<18} {'records':>7} {'refused':>7}  reasons")
    for kind, (total, refused_count) in counts.items():
        print(f"{kind:<18} {total:>7} {refused_count:>7}  {'; '.join(sorted(reasons[kind]))}")
    print(f"{1000 * seconds / sum(total for total, _ in counts.values()):.1f} ms per signal")

    if args.rates:
        from ecglens.leads import LEAD_NAMES
        from ecglens.synth.beats import regular_rhythm
        from ecglens.waves.delineate import measurements_of

        print(f"\n{'bpm':>5} {'Hz':>5} {'measured':>9} {'second':>7}  warning")
        for bpm in (30, 70, 150, 200, 220, 250):
            for rate in (100.0, 500.0):
                measured = measurements_of(regular_rhythm(bpm, 10.0, rate), rate, LEAD_NAMES)
                second = measured.rate_check_bpm
                print(
                    f"{bpm:>5} {rate:>5.0f} {measured.heart_rate_bpm or 0:>9.1f} {second or 0:>7.1f}  "
                    f"{measured.rate_warning() or ''}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
