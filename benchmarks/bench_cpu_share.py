"""A fair share of a busy CPU: training-step time alone and beside one competing CPU-bound job.

Usage:
  python benchmarks/bench_cpu_share.py [--steps 8]

For each thread setting, a fresh process runs ResNet-34 training steps (batch 32, 10 s at 100 Hz, the
demo's model input) and reports the median step time, first on an otherwise idle machine and then
while one competing process spins on one core (a pure-Python busy loop, like any other CPU-bound
job), and then beside a second training job of the same setting (two ecglens runs side by side).
Settings:

- ``torch default``: what torch does without ecglens (threads = cores, OpenMP's default active wait);
- ``ecglens default``: what the ``ecglens`` command sets (`ecglens.util.runtime.configure_cpu`: idle OpenMP
  threads spin 10,000 times before sleeping, threads from the cores this process may use);
- ``passive wait``: OpenMP's fully passive policy (``OMP_WAIT_POLICY=PASSIVE``), for comparison;
- ``1 thread``: ``--threads 1``.

Run it alone: anything else on the machine changes the figures.

The slowdown ratio (busy / idle) of each setting is printed in one run; the issue's goal is <= 2.5x
beside one competing job with no loss on an idle machine (+-5 %).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

_CHILD = r"""
import json, os, statistics, sys, time
settings = json.loads(sys.argv[1])
if settings["ecglens"]:
    from ecglens.util.runtime import configure_cpu
    configure_cpu(settings["threads"])
import torch
from ecglens.models import create_model
model = create_model("resnet34")
optimizer = torch.optim.Adam(model.parameters(), 1e-4)
x, y = torch.randn(32, 12, 1000), torch.randint(0, 2, (32, 9)).float()
loss_fn = torch.nn.BCEWithLogitsLoss()
times = []
for step in range(settings["steps"] + 1):
    start = time.perf_counter()
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()
    times.append(time.perf_counter() - start)
wait = os.environ.get("OMP_WAIT_POLICY") or ("spin " + os.environ["GOMP_SPINCOUNT"]
                                             if "GOMP_SPINCOUNT" in os.environ else "(unset)")
print(json.dumps({"median_s": statistics.median(times[1:]), "threads": torch.get_num_threads(), "wait_policy": wait}))
"""


_OPENMP = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def _clean_env(settings: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _OPENMP}
    return {**env, **(settings or {}).get("env", {})}


def _run(settings: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(settings)],
        env=_clean_env(settings),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _beside(settings: dict, competitor: str) -> dict:
    """``settings`` run while a competitor runs: a busy loop, or a second training job of the same settings."""
    if competitor == "busy loop":
        command, warm_up = ["-c", "while True: pass"], 0.5
    else:
        command, warm_up = ["-c", _CHILD, json.dumps({**settings, "steps": 10_000})], 3.0
    other = subprocess.Popen([sys.executable, *command], env=_clean_env(settings), stdout=subprocess.DEVNULL)
    time.sleep(warm_up)
    try:
        return _run(settings)
    finally:
        other.kill()
        other.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    settings = {
        "torch default": {"ecglens": False, "threads": None},
        "ecglens default": {"ecglens": True, "threads": None},
        "passive wait": {"ecglens": True, "threads": None, "env": {"OMP_WAIT_POLICY": "PASSIVE"}},
        "1 thread": {"ecglens": True, "threads": 1},
    }
    print(f"cores usable: {len(os.sched_getaffinity(0))}; ResNet-34 training step, batch 32, 12 x 1000 samples")
    print("median s/step; slowdown = beside / idle")
    print(
        f"{'setting':<16} {'threads':>7} {'wait':>10} {'idle':>7} {'busy loop':>10} {'ratio':>6} "
        f"{'2nd job':>8} {'ratio':>6} {'idle vs torch':>13}"
    )
    idle_default = None
    for name, setting in settings.items():
        setting = {**setting, "steps": args.steps}
        idle = _run(setting)
        loop, job = _beside(setting, "busy loop"), _beside(setting, "same job")
        idle_default = idle_default or idle["median_s"]
        print(
            f"{name:<16} {idle['threads']:>7} {idle['wait_policy']:>10} {idle['median_s']:>7.3f} "
            f"{loop['median_s']:>10.3f} {loop['median_s'] / idle['median_s']:>5.2f}x "
            f"{job['median_s']:>8.3f} {job['median_s'] / idle['median_s']:>5.2f}x "
            f"{idle['median_s'] / idle_default:>12.2f}x"
        )


if __name__ == "__main__":
    main()
