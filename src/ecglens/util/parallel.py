"""One worker-pool helper for every process-parallel loop (cache builds, batch reading, the synthetic cohort)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from typing import TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


def _die_with_parent(parent: int) -> None:
    """Worker start-up on Linux: the kernel kills this worker when the process that started it dies, so a
    ``kill -9`` of a command takes its pool with it (elsewhere, workers end when their next task finds no parent)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _run_chunk(function: Callable[[Job], Result], chunk: list[Job]) -> list[Result]:
    return [function(job) for job in chunk]


def ordered_map(
    function: Callable[[Job], Result],
    jobs: Iterable[Job],
    workers: int = 1,
    chunksize: int = 8,
    prefetch: int = 4,
    always_pool: bool = False,
) -> Generator[Result, None, None]:
    """``map(function, jobs)`` in order, in ``workers`` processes when more than one (when one or more with
    ``always_pool``: a single reader process then works ahead of its consumer, as a DataLoader's worker does).

    At most ``workers * prefetch`` chunks of ``chunksize`` jobs are in flight, so a long job list never
    piles finished results up in memory (``Executor.map`` submits every job at once). The pool is shut down,
    pending chunks cancelled, when the iterator finishes, is closed, or its consumer raises.
    """
    if workers < (1 if always_pool else 2):
        yield from map(function, jobs)
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent, initargs=(os.getpid(),))
    remaining = iter(jobs)
    pending: deque[Future] = deque()

    def submit_next() -> None:
        chunk = list(islice(remaining, chunksize))
        if chunk:
            pending.append(pool.submit(_run_chunk, function, chunk))

    try:
        for _ in range(workers * prefetch):
            submit_next()
        while pending:
            results = pending.popleft().result()
            submit_next()
            yield from results
    finally:
        pool.shutdown(cancel_futures=True)
