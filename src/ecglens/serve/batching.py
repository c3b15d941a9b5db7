"""Micro-batching: concurrent requests' model inputs scored together, after a short wait for company."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

import numpy as np

from ecglens.preprocess import ModelInput


class MicroBatcher:
    """Collects inputs for up to ``max_wait_s`` (or until ``max_batch``), then scores them in one call.

    ``score`` runs in ``executor`` (one thread: the model is used by one batch at a time, and the event
    loop stays free to parse the next requests meanwhile). Inputs of different lengths may share a call;
    ``score`` batches equal lengths itself (`ecglens.predict.Predictor.score`).
    """

    def __init__(
        self,
        score: Callable[[Sequence[ModelInput]], np.ndarray],
        executor: Executor,
        max_batch: int = 32,
        max_wait_s: float = 0.005,
    ):
        self._score = score
        self._executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: asyncio.Queue[tuple[ModelInput, asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None
        self.batch_sizes: list[int] = []

    def start(self) -> None:
        """Start the batching task on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the batching task."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def score(self, item: ModelInput) -> np.ndarray:
        """The class probabilities of one model input, scored in a batch with whatever else is waiting."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _next_batch(self) -> list[tuple[ModelInput, asyncio.Future]]:
        queue = self._queue
        if queue is None:
            raise RuntimeError("the batcher is not started")
        batch = [await queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                batch.append(queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            live = [(item, future) for item, future in batch if not future.cancelled()]
            if not live:
                continue
            self.batch_sizes.append(len(live))
            try:
                probabilities = await loop.run_in_executor(self._executor, self._score, [i for i, _ in live])
            except Exception as error:  # the batch failed: every waiting request learns why
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), p in zip(live, probabilities, strict=True):
                if not future.done():
                    future.set_result(p)
