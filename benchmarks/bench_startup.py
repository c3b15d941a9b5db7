"""Start-up in proportion to the work: each command's wall time beside a bare ``import torch``, in one run.

Usage: python benchmarks/bench_startup.py [--repeats 5] [--record PATH.hea]

Times (median of ``--repeats`` fresh processes, run one after another, never side by side):
``python -c 'import torch'``; ``ecglens predict`` of one 10-s record with the starter model (a shared PTB-XL
record when ``../shared/data`` is present, else a synthetic one); ``ecglens models``; ``ecglens --help``;
``ecglens data download --help``; ``ecglens data label-spaces``. Prints each time and the ratio of
``predict`` to the bare torch import. Goals (issue 25): predict <= 1.3x the torch import; the four light
commands <= 0.5 s. Then where ``predict``'s time goes, import by import: one more fresh process under
``PYTHONPROFILEIMPORTTIME``, each module's own import time summed by top-level package (torch, scipy, pandas,
ecglens, ...), and the rest of the wall time (reading, the model's weights, scoring, measuring, writing). The
profiled run is slower than a plain one (the profiler's own cost): read its shares, not its seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIGHT_GOAL_S = 0.5
PREDICT_GOAL = 1.3


def _seconds(argv: list[str], repeats: int) -> float:
    """Median wall time of ``argv`` over ``repeats`` fresh processes (one warm-up run first: the file cache)."""
    subprocess.run(argv, capture_output=True, check=True)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def import_costs(argv: list[str]) -> tuple[float, dict[str, float]]:
    """One run of ``argv`` under Python's import-time profiler: its wall time and each top-level package's
    summed own import time (seconds), largest first."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - started
    costs: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        package = name.split(".")[0]
        costs[package] = costs.get(package, 0.0) + int(own) / 1e6
    return wall, dict(sorted(costs.items(), key=lambda kv: -kv[1]))


def _record(given: str | None, folder: Path) -> str:
    """A 10-s 12-lead record to predict: the one given, a shared PTB-XL record, or one synthetic record."""
    if given:
        return given
    data = Path(os.environ.get("ECGLENS_DATA", REPO.parent / "shared" / "data"))
    shared = data / "ptb-xl" / "records500" / "00000" / "00001_hr.hea"
    if shared.is_file():
        return str(shared)
    from ecglens.synth.cohort import SynthConfig, write_cohort

    write_cohort(SynthConfig(n_records=1, sampling_rate_hz=500.0), folder / "synth")
    return str(next((folder / "synth").rglob("*.hea")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--record", default=None, help="A record file for predict (default: see above).")
    args = parser.parse_args()
    ecglens = shutil.which("ecglens", path=str(Path(sys.executable).parent)) or "ecglens"
    with tempfile.TemporaryDirectory() as scratch:
        record = _record(args.record, Path(scratch))
        torch_s = _seconds([sys.executable, "-c", "import torch"], args.repeats)
        rows = [
            ("predict, one 10-s record", [ecglens, "-q", "predict", record, "--out", f"{scratch}/out"]),
            ("models", [ecglens, "models"]),
            ("--help", [ecglens, "--help"]),
            ("data download --help", [ecglens, "data", "download", "--help"]),
            ("data label-spaces", [ecglens, "data", "label-spaces"]),
        ]
        measured = [(name, _seconds(argv, args.repeats)) for name, argv in rows]
        wall, costs = import_costs(rows[0][1])
    print(f"record: {record}; median of {args.repeats} runs each, one process at a time")
    print(f"{'command':<28} {'seconds':>8} {'x import torch':>15}  goal")
    bare = "python -c 'import torch'"
    print(f"{bare:<28} {torch_s:8.2f} {1.0:15.2f}")
    for name, seconds in measured:
        goal = f"<= {PREDICT_GOAL}x torch" if name.startswith("predict") else f"<= {LIGHT_GOAL_S} s"
        met = seconds <= PREDICT_GOAL * torch_s if name.startswith("predict") else seconds <= LIGHT_GOAL_S
        print(f"{name:<28} {seconds:8.2f} {seconds / torch_s:15.2f}  {goal}: {'met' if met else 'NOT met'}")
    imported = sum(costs.values())
    print(f"\nwhere predict's time goes (one profiled run, {wall:.2f} s; each package's own import time):")
    for package, seconds in list(costs.items())[:10]:
        print(f"  import {package:<22} {seconds:6.2f} s  {seconds / wall:5.1%}")
    others = imported - sum(list(costs.values())[:10])
    print(f"  import, {len(costs) - 10 if len(costs) > 10 else 0} other packages {others:9.2f} s  {others / wall:5.1%}")
    print(
        f"  not importing: reading, weights, scoring, measuring, writing {wall - imported:.2f} s  "
        f"{(wall - imported) / wall:5.1%}"
    )


if __name__ == "__main__":
    main()
