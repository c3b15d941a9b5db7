"""CPU threads that share a busy machine fairly.

torch's OpenMP threads spin-wait between parallel regions by default. Beside another CPU-bound job
on a 2-core machine the spinning threads take the cores from each other and from the other job: a
training step measured 10x slower instead of 2x. `configure_cpu` sets OpenMP's passive wait policy
(threads sleep when idle) before torch loads and takes the thread count from the cores this process
may use (its CPU affinity, which containers and ``taskset`` restrict), not from the machine's count.
``benchmarks/bench_cpu_share.py`` measures the effect.
"""

from __future__ import annotations

import os
import sys


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def configure_cpu(threads: int | None = None) -> int:
    """Passive OpenMP waiting and ``threads`` intra-op threads (default: the usable cores); returns the count.

    Call it before torch is imported for the wait policy to apply; the thread count applies either way.
    A wait policy or thread count already set in the environment is respected.

    Raises:
        ValueError: ``threads`` is below 1.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    count = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or usable_cores()
    if threads is not None or "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(count)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
    return count
