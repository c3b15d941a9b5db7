"""CPU threads that share a busy machine fairly.

torch's OpenMP threads spin-wait between parallel regions (libgomp spins 300,000 times before it
sleeps). Beside another CPU-bound job on a 2-core machine the spinning threads take the cores from each
other and from the other job: a training step measured 3-6x slower (10x in the issue) instead of 2x.
`configure_cpu`, called by the command line before torch loads, bounds the spin to `SPIN_COUNT`
iterations (``GOMP_SPINCOUNT``; ``KMP_BLOCKTIME`` 1 ms for Intel's OpenMP): long enough that back-to-back
parallel regions of one training step still find their threads awake, short enough that idle threads
sleep. OpenMP's fully passive policy shares even better under load but cost 5-10 % of a training epoch
on an idle machine. The thread count comes from the cores this process may use (its CPU affinity, which
containers and ``taskset`` restrict), not from the machine's count. ``benchmarks/bench_cpu_share.py``
measures the effect.
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


SPIN_COUNT = "10000"
"""Spin iterations of an idle OpenMP thread before it sleeps (libgomp's default is 300,000)."""


def configure_cpu(threads: int | None = None) -> int:
    """Bounded OpenMP spinning and ``threads`` intra-op threads (default: the usable cores); returns the count.

    Call it before torch is imported for the spin bound to apply; the thread count applies either way.
    A wait policy, spin count or thread count already set in the environment is respected.

    Raises:
        ValueError: ``threads`` is below 1.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
        os.environ.setdefault("KMP_BLOCKTIME", "1")
    count = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or usable_cores()
    if threads is not None or "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(count)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
    return count
