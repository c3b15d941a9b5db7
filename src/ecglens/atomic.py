"""Outputs written atomically: to a temporary name in the same folder, renamed into place when complete.

A kill or a full disk never leaves a truncated file under the final name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", newline: str | None = None) -> Iterator[IO]:
    """Open ``path`` for writing through a temporary file that replaces it only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    try:
        with open(scratch, mode, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, path)
    finally:
        if scratch.exists():
            scratch.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically; returns its path."""
    with atomic_open(path) as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: object) -> Path:
    """Write strict JSON (NaN and infinities refused) atomically; returns its path."""
    return write_text(path, json.dumps(data, indent=2, allow_nan=False))
