"""Outputs written atomically: to a temporary name in the same folder, renamed into place when complete.

A kill or a full disk never leaves a truncated file under the final name.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_open(
    path: str | os.PathLike, mode: str = "w", newline: str | None = None, permissions: int | None = None
) -> Iterator[IO]:
    """Open ``path`` for writing through a temporary file that replaces it only if the block succeeds.

    With ``permissions`` (e.g. ``0o600``), the file has exactly those from its creation on: a private file is
    never readable by others, not even while it is written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    opener = None
    if permissions is not None:

        def opener(name: str, flags: int) -> int:
            descriptor = os.open(name, flags, permissions)
            os.fchmod(descriptor, permissions)  # a scratch file left by a crash keeps its old mode otherwise
            return descriptor

    try:
        with open(scratch, mode, newline=newline, opener=opener) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, path)
    finally:
        if scratch.exists():
            scratch.unlink()


def write_text(path: str | os.PathLike, text: str, permissions: int | None = None) -> Path:
    """Write a text file atomically (with exactly ``permissions`` when given, see `atomic_open`); returns its
    path."""
    with atomic_open(path, permissions=permissions) as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: object) -> Path:
    """Write strict JSON (NaN and infinities refused) atomically; returns its path."""
    return write_text(path, json.dumps(data, indent=2, allow_nan=False))


class StagedFolder:
    """A command's outputs written into a hidden folder beside ``out`` and moved into ``out`` only by `commit`.

    A run that fails, or that produced nothing worth keeping, leaves ``out`` exactly as it was: earlier good results
    are never replaced by the empty files of a failed run. Each top-level entry of the staging folder replaces its
    namesake in ``out`` (a folder such as ``figures/`` as a whole); other files in ``out`` are left alone. Files
    named in ``keep_on_failure`` are moved into ``out`` even without a commit (a batch's partial rows).
    """

    def __init__(self, out: str | os.PathLike, keep_on_failure: tuple[str, ...] = ()):
        self.out = Path(out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.path = self.out.parent / f".{self.out.name}.staging-{os.getpid()}"
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir()
        self.keep_on_failure = keep_on_failure
        self.committed = False

    def final(self, path: str | os.PathLike) -> Path:
        """Where a path inside the staging folder will be once committed."""
        return self.out / Path(path).relative_to(self.path)

    def commit(self) -> None:
        """Move every entry into ``out``, replacing its namesakes."""
        self.out.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self.path.iterdir()):
            target = self.out / entry.name
            if entry.is_dir() and target.is_dir():
                old = self.out / f".{entry.name}.old-{os.getpid()}"
                os.replace(target, old)
                os.replace(entry, target)
                shutil.rmtree(old)
            else:
                os.replace(entry, target)
        self.committed = True

    def __enter__(self) -> StagedFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            for name in self.keep_on_failure:
                if (self.path / name).is_file():
                    self.out.mkdir(parents=True, exist_ok=True)
                    os.replace(self.path / name, self.out / name)
        shutil.rmtree(self.path, ignore_errors=True)


def sync_folders(folder: str | os.PathLike) -> None:
    """fsync ``folder`` and every folder below it: the names of the files in them (each fsynced as written, as
    `atomic_open` does) survive a power cut."""
    folder = Path(folder)
    for path in [*sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True), folder]:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
