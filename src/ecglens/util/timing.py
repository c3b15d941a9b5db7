"""Wall time per named step of a job, and in total."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StepClock:
    """Times the steps of one job: ``with clock.step("train"): ...``; `seconds` holds each step's wall time and,
    after `finish`, the job's total since the clock was made."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as step ``name`` (added to the step's earlier time, if any)."""
        begun = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - begun

    def finish(self) -> dict[str, float]:
        """Every step's seconds and ``total`` (from the clock's creation until now)."""
        self.seconds["total"] = time.perf_counter() - self.started
        return dict(self.seconds)
