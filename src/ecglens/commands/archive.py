"""``predict --archive``: an archive scored once, streaming, resumable after a kill, in shards.

Layout of ``OUT/archive/``:

- ``job.json``: the bundle and the options that make a row (a different job refuses the folder);
- ``manifest-K-of-N.jsonl``: one row per input file seen by shard K of N: the sha256 of its bytes (a WFDB
  record's ``.hea`` with its ``.dat``/``.mat``), its path (a keyed hash of it, ``ecglens.util.pseudonym``, unless
  ``--include-identifiers``: a clinical export's file name often holds its patient's), size and modification time
  (a file unchanged since is not read again to be hashed), its status (``predicted``, ``unreadable``,
  ``duplicate``: content already scored under another name) and the ends of the shard's row files after it;
- ``predictions-K-of-N.jsonl`` and ``issues-K-of-N.jsonl``: the shard's rows (a prediction with its
  ``predictions.csv`` cells and its summary row; an unreadable file, a page not drawn, an export not made), final as
  they are written;
- ``pending-K-of-N/<key>/``: the files of the records of the batch being scored (``reports/``, ``fhir/``,
  ``dicom/``), moved into ``OUT`` once their batch is committed.

A batch's rows are appended and fsynced, then its manifest rows (the commit), then its records' files are moved
into place: a kill loses at most the batch being scored. On the next run each shard cuts its row files back to the
ends its last whole manifest row names (rows written after it were never committed), moves the pending files of
committed records into place and removes the others, and skips every content key any manifest holds: the same
command continues where it stopped, each record's files written once, and on a grown archive scores only what is
new. `merge` joins every shard's rows into the usual ``predictions.jsonl``, ``predictions.csv``, ``issues.csv``
and the batch summary (``summary.csv``, ``summary.html``), each content key once, ordered by source path,
whatever the number of shards, reading the rows from disk as it writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from ecglens.io.record import ReadIssue, Record
from ecglens.report.predictions import TableHeader, table_cells, table_traits, write_issues, write_table
from ecglens.report.summary import SUMMARY_CSV, SUMMARY_HTML, SummaryRow, write_summary
from ecglens.util.atomic import atomic_open, sync_folders

ARCHIVE_DIR = "archive"
JOB_FILE = "job.json"
FORMAT = 3
"""The layout of an archive's rows (2: each prediction row holds its summary row; 3: manifests name files by a
keyed hash of their path); another is another job."""
RECORD_FOLDERS = ("reports", "fhir", "dicom")
"""The folders of ``OUT`` a record's own files go into (its page, its FHIR Bundle, its DICOM object)."""
HASH_CHUNK = 1 << 20
SIGNAL_SUFFIXES = (".dat", ".mat")
"""A header's signal files, hashed with it: a record changed in its samples is a new record."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1 to ``count``) of an archive: every ``count``-th block of consecutive files, from its
    ``index``-th (a block is one batch: each record is scored beside the same records, at the same place in its
    batch, whatever the number of shards, so that the rows do not depend on it even in their last bits)."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` (``--shard 2/8``: the second of eight)."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard is K/N with whole numbers (e.g. 1/4), not {text!r}") from None
        if not 1 <= index <= count:
            raise ValueError(f"--shard {text}: K runs from 1 to N")
        return cls(index, count)

    @property
    def name(self) -> str:
        """``2-of-8``."""
        return f"{self.index}-of-{self.count}"

    def blocks(self, files: Sequence[Path], size: int) -> Iterator[tuple[int, list[Path]]]:
        """This shard's blocks of ``size`` consecutive files, numbered: disjoint, and deterministic for one list
        of files."""
        for number, start in enumerate(range(0, len(files), size)):
            if number % self.count == self.index - 1:
                yield number, list(files[start : start + size])


def record_parts(path: Path) -> list[Path]:
    """The files one record is read from: the file itself, and a header's signal files beside it."""
    if path.suffix.lower() != ".hea":
        return [path]
    return [path, *(p for p in (path.with_suffix(s) for s in SIGNAL_SUFFIXES) if p.is_file())]


def file_stamp(path: Path) -> tuple[int, int]:
    """Total size and latest modification time (ns) of a record's files ((-1, -1) when one cannot be read)."""
    try:
        stats = [part.stat() for part in record_parts(path)]
    except OSError:
        return -1, -1
    return sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)


def content_key(path: Path) -> str:
    """sha256 of a record's bytes (its parts in order, each preceded by its suffix); a keyed hash of its path
    when they cannot be read (the file is then an unreadable record; a plain hash of the path could be confirmed
    by anyone who guesses it, and a clinical file's name often holds its patient's)."""
    digest = hashlib.sha256()
    try:
        for part in record_parts(path):
            digest.update(part.suffix.lower().encode() + b"\0")
            with open(part, "rb") as handle:
                while chunk := handle.read(HASH_CHUNK):
                    digest.update(chunk)
    except OSError:
        from ecglens.util.pseudonym import pseudonym

        return pseudonym(str(path), "unreadable")
    return digest.hexdigest()


@dataclass(frozen=True)
class ReadJob:
    """How a worker reads a file: the arguments of `ecglens.io.read_record`."""

    lead_names: tuple[str, ...]
    sampling_rate_hz: float | None
    lead_order: tuple[str, ...]
    include_identifiers: bool


@dataclass(frozen=True)
class Entry:
    """One input file seen by a shard: what its manifest row says."""

    key: str
    path: str
    """The file's path, or a keyed hash of it (`manifest_path`)."""
    size: int
    mtime_ns: int
    status: str = "predicted"


def manifest_path(path: Path, include_identifiers: bool) -> str:
    """How a manifest names a file: its path with ``--include-identifiers``, else a keyed hash of it (the same on
    one machine from run to run, so an unchanged file is still found by its stamp; on another machine, where the
    key differs, each file is hashed again and found scored by its content)."""
    from ecglens.util.pseudonym import pseudonym

    return str(path) if include_identifiers else pseudonym(str(path), "path")


def read_keyed(job: ReadJob, known: tuple[int, Path, str | None]) -> tuple[int, Entry, Record | ReadIssue]:
    """A worker's part: a file's content key (``known`` when its stamp is unchanged) and its record as read, or
    its issue."""
    from ecglens.io import read_record
    from ecglens.io.record import issue_from
    from ecglens.predict import issue_name

    block, path, key = known
    size, mtime = file_stamp(path)
    entry = Entry(key or content_key(path), manifest_path(path, job.include_identifiers), size, mtime)
    try:
        record = read_record(path, job.lead_names, job.sampling_rate_hz, job.lead_order, job.include_identifiers)
    except Exception as error:  # one bad file is that record's issue, whatever raised
        return block, entry, issue_from(error, issue_name(path, job.include_identifiers))
    return block, entry, record


@dataclass
class ArchiveState:
    """What every manifest in an archive says: the content keys done, and the stamps of this shard's files."""

    done: set[bytes] = field(default_factory=set)
    stamps: dict[str, tuple[int, int, str]] = field(default_factory=dict)

    @staticmethod
    def compact(key: str) -> bytes:
        """A key as 16 bytes in memory (a million keys in about 80 MB; collisions beyond reach at 128 bits)."""
        return bytes.fromhex(key[:32])

    def seen(self, key: str) -> bool:
        """Whether content with this key was scored (or found unreadable) already."""
        return self.compact(key) in self.done


def read_manifest(path: Path) -> Iterator[dict]:
    """The whole rows of a manifest (a half-written last row, from a kill, is not one)."""
    with open(path, "rb") as handle:
        for line in handle:
            if line.endswith(b"\n"):
                yield json.loads(line)


def load_state(folder: Path) -> ArchiveState:
    """The content keys every shard's manifest holds, and the stamps of the files they name."""
    state = ArchiveState()
    for manifest in sorted(folder.glob("manifest-*.jsonl")):
        for row in read_manifest(manifest):
            if row["status"] != "duplicate":
                state.done.add(state.compact(row["key"]))
            if row["size"] >= 0:
                state.stamps[row["path"]] = (row["size"], row["mtime_ns"], row["key"])
    return state


def check_job(folder: Path, job: dict) -> None:
    """Write ``job.json`` into a new archive, or check that an existing archive was made by the same job.

    Raises:
        ValueError: the archive was scored with another bundle or other options (its rows would mix).
    """
    path = folder / JOB_FILE
    job = {**job, "format": FORMAT}
    if path.is_file():
        earlier = json.loads(path.read_text())
        changed = sorted(name for name in set(job) | set(earlier) if job.get(name) != earlier.get(name))
        if "format" in changed:
            raise ValueError(
                f"{folder.parent} holds an archive written by another version of ecglens (format "
                f"{earlier.get('format', 1)}, this one writes {FORMAT}): give another --out"
            )
        if changed:
            raise ValueError(
                f"{folder.parent} holds an archive scored with other settings ({', '.join(changed)}): continue it "
                "with the same options, or give another --out"
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / f".{JOB_FILE}.{os.getpid()}"  # shards starting together each write the same job
    scratch.write_text(json.dumps(job, indent=2))
    os.replace(scratch, path)


def bundle_fingerprint(bundle: Path) -> str:
    """sha256 of a bundle's files (its weights, metadata and fused decision): another model is another job."""
    digest = hashlib.sha256()
    for part in sorted(p for p in bundle.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors")):
        digest.update(part.name.encode() + b"\0" + part.read_bytes())
    return digest.hexdigest()


def publish(pending: Path, out: Path) -> None:
    """A committed record's files moved from its pending folder into ``out`` (``reports/x.pdf`` to
    ``OUT/reports/x.pdf``), each replacing its namesake; then the pending folder removed. A scratch file of an
    interrupted write (its name begins with a dot, which a record's never does) is dropped."""
    if not pending.is_dir():
        return
    for path in sorted(pending.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            target = out / path.relative_to(pending)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    shutil.rmtree(pending)


class ShardLog:
    """A shard's append-only files: its manifest and its rows, committed a batch at a time, and the pending folder
    of the files of the records of the batch being scored.

    Opening recovers from a kill: a half-written manifest row is cut off, each row file is cut back to the end the
    last whole manifest row names, and each pending record's files are moved into ``OUT`` when its manifest row is
    there (the kill came between the commit and the move), removed when it is not (the record is scored again).
    """

    def __init__(self, folder: Path, shard: Shard):
        folder.mkdir(parents=True, exist_ok=True)
        self.out = folder.parent
        self.manifest_path = folder / f"manifest-{shard.name}.jsonl"
        self.rows_path = folder / f"predictions-{shard.name}.jsonl"
        self.issues_path = folder / f"issues-{shard.name}.jsonl"
        self.pending_path = folder / f"pending-{shard.name}"
        committed, ends = self._recover()
        self.rows_end, self.issues_end = ends
        self.manifest = open(self.manifest_path, "ab", buffering=0)  # noqa: SIM115 (closed by close)
        self.manifest.truncate(committed)
        self.rows = self._open(self.rows_path, self.rows_end)
        self.issues = self._open(self.issues_path, self.issues_end)
        self._settle()
        self.pending: list[tuple[Entry, bytes | None, bytes | None]] = []

    def _settle(self) -> None:
        """The pending files a kill left: a committed record's moved into ``OUT``, any other's removed."""
        waiting = {path.name: path for path in self.pending_path.iterdir()} if self.pending_path.is_dir() else {}
        if not waiting:
            return
        rows = read_manifest(self.manifest_path)
        committed = {row["key"] for row in rows if row["key"] in waiting and row["status"] == "predicted"}
        for key, path in sorted(waiting.items()):
            if key in committed:
                publish(path, self.out)
            elif path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def files(self, key: str) -> Path:
        """Where the files of the record with content ``key`` wait for its commit."""
        return self.pending_path / key

    def _recover(self) -> tuple[int, tuple[int, int]]:
        """The length of the manifest's whole rows and the row files' ends its last row names."""
        if not self.manifest_path.is_file():
            return 0, (0, 0)
        data = self.manifest_path.read_bytes()
        committed = data.rfind(b"\n") + 1
        if not committed:
            return 0, (0, 0)
        last = json.loads(data[data.rfind(b"\n", 0, committed - 1) + 1 : committed])
        return committed, (last["rows_end"], last["issues_end"])

    @staticmethod
    def _open(path: Path, end: int):
        handle = open(path, "ab", buffering=0)  # noqa: SIM115 (closed by close)
        handle.truncate(end)  # rows of a batch that was never committed
        return handle

    def add(self, entry: Entry, row: bytes | None = None, issue: bytes | None = None) -> None:
        """Hold one file's manifest row and its prediction or issue row until `commit`."""
        self.pending.append((entry, row, issue))

    def commit(self) -> None:
        """Append and fsync the batch's rows, then its manifest rows (each naming the row files' ends after it), the
        batch's commit; then move its records' files into place."""
        if not self.pending:
            return
        waiting = [
            self.files(e.key) for e, _, _ in self.pending if e.status == "predicted" and self.files(e.key).is_dir()
        ]
        for folder in waiting:  # the files, each fsynced as written, are found after a power cut once committed
            sync_folders(folder)
        if waiting:
            sync_folders(self.pending_path)
        rows, issues, manifest = bytearray(), bytearray(), bytearray()
        for entry, row, issue in self.pending:
            rows += row or b""
            issues += issue or b""
            ends = {"rows_end": self.rows_end + len(rows), "issues_end": self.issues_end + len(issues)}
            line = {**asdict(entry), **ends}
            manifest += (json.dumps(line) + "\n").encode()
        for handle, data in ((self.rows, rows), (self.issues, issues), (self.manifest, manifest)):
            if data:
                handle.write(bytes(data))
                os.fsync(handle.fileno())
        self.rows_end += len(rows)
        self.issues_end += len(issues)
        self.pending = []
        for folder in waiting:
            publish(folder, self.out)

    def close(self) -> None:
        """Close the files (what is pending was never committed: the next run scores it again, its files left in the
        pending folder removed then)."""
        for handle in (self.rows, self.issues, self.manifest):
            handle.close()
        if self.pending_path.is_dir() and not any(self.pending_path.iterdir()):
            self.pending_path.rmdir()


@dataclass(frozen=True)
class ArchiveCounts:
    """What one shard did in one run: of its ``files``, how many it scored (predicted or found unreadable), found
    scored under another name, or skipped as scored before; and in how many seconds."""

    scored: int = 0
    unreadable: int = 0
    duplicates: int = 0
    skipped: int = 0
    files: int = 0
    seconds: float = 0.0


class ArchiveScorer:
    """Scores the files of one shard that no manifest holds, a batch at a time, reading ahead in worker
    processes; `items` yields scored records and issues in file order, and the caller's writers write each record's
    files into `folder` and hand its prediction back through `add` and `filed` (or its issue through `issue`) before
    the next item is asked for: after a batch's last item, its rows are committed and its files moved into place
    (`ecglens.commands.predict.RecordSink`)."""

    def __init__(self, predictor, folder: Path, shard: Shard, read: ReadJob, batch_size: int, workers: int = 0):
        self.predictor, self.shard, self.read = predictor, shard, read
        self.batch_size, self.workers = batch_size, workers
        self.class_names = list(predictor.meta.class_names)
        self.state = load_state(folder)
        self.log = ShardLog(folder, shard)
        self.current = Entry("", "", -1, -1)
        self.row: dict = {}
        self.counts = {"scored": 0, "unreadable": 0, "duplicates": 0, "skipped": 0, "files": 0}
        self.started = time.perf_counter()

    @property
    def folder(self) -> Path:
        """Where the current record's files wait for its batch's commit (its pending folder)."""
        return self.log.files(self.current.key)

    def _known(self, blocks: Iterable[tuple[int, list[Path]]], counter) -> Iterator[tuple[int, Path, str | None]]:
        """This shard's files not yet done, with their block, each with its key when its stamp says it is
        unchanged."""
        for number, files in blocks:
            for path in files:
                stamp = self.state.stamps.get(manifest_path(path, self.read.include_identifiers))
                key = stamp[2] if stamp is not None and stamp[:2] == file_stamp(path) else None
                if key is not None and self.state.seen(key):
                    self.counts["skipped"] += 1
                    counter.update()
                    continue
                yield number, path, key

    def _read(self, files: Sequence[Path], counter) -> Iterator[tuple[int, Entry, Record | ReadIssue]]:
        from ecglens.util.parallel import ordered_map

        known = self._known(self.shard.blocks(files, self.batch_size), counter)
        yield from ordered_map(partial(read_keyed, self.read), known, self.workers, chunksize=4, always_pool=True)

    def items(self, files: Sequence[Path], progress: bool = True) -> Iterator:
        """Scored records and issues of this shard's new files, a block (one batch) at a time; each batch
        committed once its last item has been handed back."""
        from ecglens.util.progress import bar

        batch: list[tuple[Entry, Record | ReadIssue]] = []
        block = -1
        mine = sum(len(part) for _, part in self.shard.blocks(files, self.batch_size))
        self.counts["files"] = mine
        # no stage line: the run's own line says what was new (a line counting skipped files as done misleads)
        with bar(total=mine, desc=f"predict {self.shard.name}", unit="rec", enabled=progress, line=False) as counter:
            for number, entry, item in self._read(files, counter):
                counter.update()
                if number != block:
                    yield from self._batch(batch)
                    batch, block = [], number
                if self.state.seen(entry.key):  # content scored already, here or under another name
                    self.counts["duplicates" if entry.path not in self.state.stamps else "skipped"] += 1
                    self.log.add(Entry(entry.key, entry.path, entry.size, entry.mtime_ns, "duplicate"))
                    continue
                self.state.done.add(self.state.compact(entry.key))
                batch.append((entry, item))
            yield from self._batch(batch)

    def _batch(self, batch: list[tuple[Entry, Record | ReadIssue]]) -> Iterator:
        """Score a batch's records and yield its items in file order; then commit it."""
        records = [item for _, item in batch if isinstance(item, Record)]
        scored = iter(self.predictor.score_records(records, self.batch_size) if records else ())
        for entry, item in batch:
            self.current = entry
            yield item if isinstance(item, ReadIssue) else next(scored)
        self.log.commit()

    def add(self, prediction) -> None:
        """The current file's final prediction (after its measurements), held until `filed`."""
        self.row = {
            "key": self.current.key,
            "prediction": prediction.to_dict(),
            "cells": table_cells(prediction, self.class_names),
            "traits": table_traits(prediction),
        }

    def filed(self, row: SummaryRow, unreported: ReadIssue | None, unexported: ReadIssue | None) -> None:
        """The current file's summary row and the issues of its page and exports: its rows."""
        record = {**self.row, "summary": row.to_dict()}
        problems = (("report", unreported), ("export", unexported))
        issues = b"".join(self._issue_row(issue, stage) for stage, issue in problems if issue is not None)
        self.log.add(self.current, row=(json.dumps(record, allow_nan=False) + "\n").encode(), issue=issues or None)
        self.counts["scored"] += 1

    def issue(self, issue: ReadIssue) -> None:
        """The current file could not be read: its issue row (its content is not read again while unchanged)."""
        entry = Entry(self.current.key, self.current.path, self.current.size, self.current.mtime_ns, "unreadable")
        self.log.add(entry, issue=self._issue_row(issue))
        self.counts["unreadable"] += 1

    def _issue_row(self, issue: ReadIssue, stage: str = "read") -> bytes:
        """An issue of the current file: ``read`` (unreadable), ``report`` (its page) or ``export``."""
        row = {"key": self.current.key, "path": issue.path, "reason": issue.reason}
        return (json.dumps(row if stage == "read" else {**row, "stage": stage}) + "\n").encode()

    def close(self) -> ArchiveCounts:
        """Close the shard's files (a batch cut short by an error stays uncommitted, as a kill leaves it: the
        next run scores it again); this run's counts."""
        self.log.close()
        return ArchiveCounts(**self.counts, seconds=time.perf_counter() - self.started)


def committed_end(manifest: Path, name: str) -> int:
    """The end of a shard's row file (``rows_end`` or ``issues_end``) its manifest's last whole row names: rows
    past it were never committed (a shard still running, or killed)."""
    if not manifest.is_file():
        return 0
    end = 0
    for row in read_manifest(manifest):
        end = row[name]
    return end


def _committed_rows(path: Path, end: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of a row file's committed rows."""
    with open(path, "rb") as handle:
        offset = 0
        while offset < end and (line := handle.readline()):
            yield offset, line
            offset += len(line)


@dataclass(frozen=True)
class RowPlace:
    """Where one merged row lies, and what orders it: its source path, record id and content key."""

    order: tuple[str, str, str]
    file: int
    offset: int
    traits: tuple


def _row_index(folder: Path) -> tuple[list[Path], list[RowPlace]]:
    """Every shard's committed prediction rows, each content key once (its first by source path), in order.

    Only the places and order keys stay in memory (about 200 bytes a row), never the rows."""
    files = sorted(folder.glob("predictions-*.jsonl"))
    interned: dict[tuple, tuple] = {}
    places = []
    for number, path in enumerate(files):
        manifest = path.with_name(path.name.replace("predictions-", "manifest-", 1))
        for offset, line in _committed_rows(path, committed_end(manifest, "rows_end")):
            row = json.loads(line)
            p, traits = row["prediction"], row["traits"]
            shape = (traits["measured"], tuple(traits["leads"]), traits["clinical"], traits["identifiers"])
            order = (p["source"], p["record_id"], row["key"])
            places.append(RowPlace(order, number, offset, interned.setdefault(shape, shape)))
    places.sort(key=lambda place: place.order)
    seen: set[str] = set()
    unique = []
    for place in places:  # the same content scored in two shards under two names: its first name's row
        if place.order[2] not in seen:
            seen.add(place.order[2])
            unique.append(place)
    return files, unique


def _archive_issues(folder: Path) -> list[ReadIssue]:
    """Every shard's committed issues, each content key's once per stage (read, report, export), ordered by path."""
    issues: dict[tuple[str, str], ReadIssue] = {}
    for path in sorted(folder.glob("issues-*.jsonl")):
        manifest = path.with_name(path.name.replace("issues-", "manifest-", 1))
        for _, line in _committed_rows(path, committed_end(manifest, "issues_end")):
            row = json.loads(line)
            key = (row["key"], row.get("stage", "read"))
            issue, kept = ReadIssue(row["path"], row["reason"]), issues.get(key)
            if kept is None or (issue.path, issue.reason) < (kept.path, kept.reason):
                issues[key] = issue
    return sorted(issues.values(), key=lambda i: (i.path, i.reason))


@dataclass(frozen=True)
class Merged:
    """The archive's usual outputs: how many predictions and issues, and the files."""

    predictions: int
    issues: int
    paths: tuple[Path, ...]

    def line(self) -> str:
        """``18 predicted, 1 issue(s) (unreadable, or without a page or export) in OUT/predictions.jsonl, ...``."""
        written = ", ".join(str(path) for path in self.paths)
        problems = "issue(s) (unreadable, or without a page or export)"
        return f"{self.predictions} predicted, {self.issues} {problems} in {written}"


def merge(out: str | os.PathLike) -> Merged:
    """Join every shard's committed rows into ``OUT/predictions.jsonl``, ``predictions.csv``, ``issues.csv`` and the
    summary (``summary.csv``, ``summary.html``; each written atomically), each content key once, ordered by source
    path: the same files whatever the number of shards or of runs that scored them. The rows are read from disk as
    they are written (three passes), never held.

    Raises:
        FileNotFoundError: ``out`` holds no archive.
    """
    out = Path(out)
    folder = out / ARCHIVE_DIR
    if not (folder / JOB_FILE).is_file():
        raise FileNotFoundError(f"{out} holds no archive ({ARCHIVE_DIR}/{JOB_FILE}): run 'ecglens predict --archive'")
    class_names = json.loads((folder / JOB_FILE).read_text())["class_names"]
    files, places = _row_index(folder)
    handles = [open(path, "rb") for path in files]  # noqa: SIM115 (closed below)
    try:

        def rows() -> Iterator[dict]:
            for place in places:
                handles[place.file].seek(place.offset)
                yield json.loads(handles[place.file].readline())

        with atomic_open(out / "predictions.jsonl") as log:
            for row in rows():
                log.write(json.dumps(row["prediction"], allow_nan=False) + "\n")
        header = TableHeader(class_names)
        for place in places:
            measured, leads, clinical, identifiers = place.traits
            header.add({"measured": measured, "leads": leads, "clinical": clinical, "identifiers": identifiers})
        table = write_table(out / "predictions.csv", header.columns(), (row["cells"] for row in rows()))
        issues = _archive_issues(folder)
        write_summary((SummaryRow.from_dict(row["summary"]) for row in rows()), len(issues), out)
    finally:
        for handle in handles:
            handle.close()
    written = (out / "predictions.jsonl", table, write_issues(issues, out), out / SUMMARY_HTML, out / SUMMARY_CSV)
    return Merged(
        len(places), len(issues), (*written, *(out / name for name in RECORD_FOLDERS if (out / name).is_dir()))
    )


@dataclass(frozen=True)
class ArchiveRun:
    """One process's part of an archive run: its shard's counts, and the merged outputs when it merged."""

    out: Path
    shard: Shard
    found: int
    counts: ArchiveCounts
    merged: Merged | None = None
    merged_by: str = "ecglens predict-merge"
    """Who joins the shards when this process did not: the merge command, or rank 0 of a torchrun job."""

    def problems(self) -> list[str]:
        """What the CLI prints on standard error."""
        return [] if self.found else ["error: no record files found in the given paths"]

    @property
    def exit_code(self) -> int:
        """0, or 1 when no record file was found."""
        return 0 if self.found else 1

    def lines(self) -> list[str]:
        """What this run found new and scored, and what the archive holds and where (one line when nothing was
        new and this process merged)."""
        if not self.found:
            return []
        c = self.counts
        name = f"shard {self.shard.index}/{self.shard.count}: " if self.shard.count > 1 else ""
        others = f", {c.duplicates} the content of a file scored under another name" if c.duplicates else ""
        if c.scored or c.unreadable:
            lines = [
                f"{name}scored {c.scored + c.unreadable} new of {c.files} file(s) in {c.seconds:.1f} s: {c.scored} "
                f"predicted, {c.unreadable} unreadable; {c.skipped} scored before{others}"
            ]
        elif self.merged is not None:
            return [
                f"{name}nothing new: the {c.files} file(s) found were scored before{others}; the archive holds "
                f"{self.merged.line()}"
            ]
        else:
            lines = [
                f"{name}nothing new: the {c.files} file(s) found were scored before{others} ({self.out / ARCHIVE_DIR})"
            ]
        if self.merged is not None:
            lines.append(f"the archive holds {self.merged.line()}")
        elif self.merged_by == "ecglens predict-merge":
            lines.append(f"once every shard is done: ecglens predict-merge {self.out}")
        else:
            lines.append(f"{self.merged_by} merges the shards into {self.out}")
        return lines
