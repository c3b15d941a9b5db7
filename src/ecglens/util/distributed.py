"""Processes started by ``torchrun``: rank and world size from its environment, one process group.

Training all-reduces gradients over the group; explanations only wait for each other at barriers
(their results travel through files, see `ecglens.explain.shards`).
"""

from __future__ import annotations

import datetime
import os

import torch


def world_size() -> int:
    """Processes in the job (``WORLD_SIZE``; 1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_group(backend: str | None = None, timeout_hours: float | None = None) -> tuple[int, int]:
    """Join the job's process group when there is more than one process; returns ``(rank, world size)``.

    Args:
        backend: ``gloo`` or ``nccl``; by default NCCL when CUDA is present, else gloo.
        timeout_hours: how long a collective (a barrier) may wait for the slowest rank; torch's default
            (30 min) when None.
    """
    world = world_size()
    if world <= 1:
        return 0, 1
    if not torch.distributed.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        timeout = None if timeout_hours is None else datetime.timedelta(hours=timeout_hours)
        torch.distributed.init_process_group(backend=backend, timeout=timeout)
    return torch.distributed.get_rank(), world


def rank_device(device: torch.device) -> torch.device:
    """A CUDA device becomes this process's own GPU (``cuda:LOCAL_RANK``) in a multi-process job."""
    if world_size() > 1 and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def barrier() -> None:
    """Wait until every process of the group gets here (nothing outside a group)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
