"""Explanations over many records, in shards: spread over ``torchrun`` processes, resumable after a kill.

The records are cut into shards of consecutive records; shard k belongs to rank ``k % world``. Each
finished shard is written atomically as ``NNNNN.npz`` (NumPy arrays only, read back without pickle)
in a folder named after a hash of the job, so a killed run, started again with the same job, computes
only the shards that are missing, and a different job never reads another's shards. When every rank
is done, rank 0 reads the shards in order and joins them: the result does not depend on the number
of processes, and each record's randomness is seeded by its position in the whole list.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ecglens.util.atomic import atomic_open, write_text
from ecglens.util.distributed import barrier, process_group
from ecglens.util.progress import bar

Item = TypeVar("Item")
Arrays = dict[str, np.ndarray]
SHARD_SIZE = 16
"""Records per shard: a kill loses at most this many records' work per process."""


def _canonical(job: Mapping) -> str:
    return json.dumps(job, sort_keys=True, default=str)


def job_folder(root: str | Path, job: Mapping) -> Path:
    """The shard folder of one job: ``root/<sha256 of the job's JSON, 16 hex>``, with the job in ``job.json``."""
    return Path(root) / hashlib.sha256(_canonical(job).encode()).hexdigest()[:16]


def _jobs(root: str | Path, part: Mapping) -> list[Path]:
    """The shard folders in ``root`` whose job contains every key and value of ``part``."""
    wanted = json.loads(_canonical(part))
    found = []
    for meta in Path(root).glob("*/job.json"):
        try:
            job = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if all(job.get(key) == value for key, value in wanted.items()):
            found.append(meta.parent)
    return found


def map_shards(
    compute: Callable[[int, Sequence[Item]], Arrays],
    items: Sequence[Item],
    store: str | Path | None = None,
    job: Mapping | None = None,
    shard_size: int = SHARD_SIZE,
    desc: str = "records",
    progress: bool = True,
) -> Arrays | None:
    """``compute(first_index, shard_items)`` over shards of ``items``; its arrays joined along axis 0.

    Args:
        compute: returns arrays whose first axis has one entry per row (rows may be per record or more).
        items: the records (any sequence; a shard's items are taken by slicing, so a lazy sequence reads
            only the records of the shards this process computes).
        store: folder for finished shards (``store/<job hash>/``); None keeps them in memory (one process,
            nothing to resume).
        job: what identifies the job (options, checkpoint, record ids); required with ``store``.
        shard_size: records per shard.
        desc: the progress bar's stage name.
        progress: show a bar (rank 0 only).

    Returns:
        On rank 0 the joined arrays; None on the other ranks.

    Raises:
        ValueError: several processes without a ``store`` (they could not gather their shards).
    """
    rank, world = process_group("gloo", timeout_hours=48)
    if world > 1 and store is None:
        raise ValueError("a multi-process run needs a folder for its shards (store)")
    starts = list(range(0, len(items), shard_size))

    def size(start: int) -> int:
        return min(shard_size, len(items) - start)

    folder = None if store is None else job_folder(store, job or {})
    if folder is not None and rank == 0 and not (folder / "job.json").is_file():
        write_text(folder / "job.json", _canonical(job or {}))
    mine = {k: start for k, start in enumerate(starts) if k % world == rank}
    # shards a killed run finished (a damaged one is computed again); none without a folder
    finished = {} if folder is None else {k: part for k in mine if (part := _load(folder, k)) is not None}
    counter = bar(
        total=sum(size(start) for start in mine.values()),
        desc=desc,
        unit="rec",
        initial=sum(size(mine[k]) for k in finished),
        enabled=progress and rank == 0,
    )
    for k, start in mine.items():
        if k in finished:
            continue
        finished[k] = compute(start, items[start : start + size(start)])
        if folder is not None:
            arrays: dict[str, Any] = finished[k]
            with atomic_open(folder / f"{k:05d}.npz", "wb") as handle:
                np.savez(handle, **arrays)
        counter.update(size(start))
    counter.close()
    barrier()
    if rank != 0:
        return None
    parts = []
    for k in range(len(starts)):
        part = finished[k] if k in finished else None if folder is None else _load(folder, k)
        if part is None:
            raise RuntimeError(f"{folder}: a shard is missing after every rank finished")
        parts.append(part)
    return _join(parts)


def finish(store: str | Path, job: Mapping) -> None:
    """Remove the shards of every job in ``store`` that ``job`` is part of, once its results are written (rank 0)."""
    for folder in _jobs(store, job):
        shutil.rmtree(folder, ignore_errors=True)
    if Path(store).is_dir() and not any(Path(store).iterdir()):
        Path(store).rmdir()


def _load(folder: Path, k: int) -> Arrays | None:
    """A finished shard, or None when it is absent or unreadable (then it is computed again)."""
    path = folder / f"{k:05d}.npz"
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _join(parts: Sequence[Arrays]) -> Arrays:
    if not parts:
        return {}
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
