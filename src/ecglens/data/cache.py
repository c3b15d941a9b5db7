"""A preprocessed, memory-mapped ECG cache: parse every file once, then slice arrays.

Layout of a cache directory::

    spec.json       preprocessing spec, its hash, sources, counts, versions
    signals.f32     all records' float32 samples, each record leads x samples, C order, no padding
    index.parquet   one row per record: id, dataset, offset, n_samples, labels, fold, patient, ...
    issues.csv      records left out, with the reason

A build writes shards into ``<DIR>.partial/`` (each shard renamed into place when complete, so a
re-run skips finished shards) and renames the finished directory to ``<DIR>`` as its last step:
an interrupted build never leaves a directory that loads as a complete cache.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecglens._version import __version__
from ecglens.classes import CLASS_NAMES
from ecglens.io.record import ReadIssue, Record, RecordError, issue_from
from ecglens.io.refs import RecordRef
from ecglens.io.sources import Source, read_ref, scan_sources
from ecglens.labels.mapping import UNLABELLED, LabelMap, load_label_map
from ecglens.leads import LEAD_NAMES
from ecglens.preprocess import resample
from ecglens.util.parallel import ordered_map
from ecglens.util.progress import bar

FORMAT_VERSION = 1
SPEC_FILE = "spec.json"
SIGNALS_FILE = "signals.f32"
INDEX_FILE = "index.parquet"
ISSUES_FILE = "issues.csv"
SHARD_FILE = "shard.json"
PATIENTS_FILE = "ptbxl_patients.csv"
LABEL_COLUMNS = tuple(f"label_{name}" for name in CLASS_NAMES)


class CacheError(RuntimeError):
    """A cache directory is missing, incomplete, damaged, or built with another spec."""


@dataclass(frozen=True)
class CacheSpec:
    """Everything that decides a cache's contents apart from its sources."""

    sampling_rate_hz: float
    lead_names: tuple[str, ...] = LEAD_NAMES
    label_profile: str = "strict"
    label_map_sha256: str = ""
    min_likelihood: float = 0.0
    dtype: str = "float32"
    format_version: int = FORMAT_VERSION

    @property
    def sha256(self) -> str:
        """Hash of the spec; a cache loads only under the spec it was built with."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict) -> CacheSpec:
        """Inverse of `dataclasses.asdict`."""
        data = dict(data)
        data["lead_names"] = tuple(data["lead_names"])
        return cls(**data)


@dataclass(frozen=True)
class BuildReport:
    """What a cache build did."""

    path: str
    n_records: int
    n_issues: int
    n_shards_built: int
    n_shards_reused: int
    already_complete: bool = False
    issues: tuple[ReadIssue, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class IndexRow:
    """A record's row in a cache index (before its offset in the signal file): who it is, where it came from,
    and its labels under the label space the cache is prepared with (``labels``: one flag per `LABEL_COLUMNS`)."""

    record_id: str
    dataset: str
    n_samples: int
    source_sampling_rate_hz: float
    classes: str
    exclusion: str | None
    raw_labels: str
    label_vocabulary: str
    fold: int | None
    patient_id: str | None
    age: float | None
    sex: str | None
    source_path: str
    labels: tuple[bool, ...]

    def to_dict(self) -> dict[str, object]:
        """The row as a table holds it: one column per field, ``label_<class>`` columns for the labels."""
        row: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "labels"}
        row.update(zip(LABEL_COLUMNS, self.labels, strict=True))
        return row


def metadata_row(record: Record, label_map: LabelMap, min_likelihood: float = 0.0) -> IndexRow:
    """The index-table row of a record (without offset), labels mapped under ``label_map``."""
    mapped = label_map.map(record.raw_labels, record.label_vocabulary, min_likelihood)
    return IndexRow(
        record.record_id,
        record.dataset,
        record.n_samples,
        record.sampling_rate_hz,
        ";".join(mapped.classes),
        mapped.exclusion,
        json.dumps(list(record.raw_labels)),
        record.label_vocabulary,
        record.fold,
        record.patient_id,
        record.age,
        record.sex,
        record.source_path,
        tuple(bool(v) for v in mapped.multi_hot()),
    )


def _prepare(args: tuple[RecordRef, CacheSpec, LabelMap]) -> tuple[IndexRow, np.ndarray] | ReadIssue:
    ref, spec, label_map = args
    try:
        record = read_ref(ref, spec.lead_names)
        signal = resample(record.signal, record.sampling_rate_hz, spec.sampling_rate_hz)
        row = metadata_row(record, label_map, spec.min_likelihood)
    except Exception as error:  # one bad file is that record's issue, whatever raised
        return issue_from(error, ref.path, ref.dataset)
    return replace(row, n_samples=int(signal.shape[1])), signal


def _write_shard(shard_dir: Path, shard_id: int, results: list, strict: bool, spec_sha256: str) -> None:
    rows, arrays, issues = [], [], []
    offset = 0
    for result in results:
        if isinstance(result, ReadIssue):
            if strict:
                raise RecordError(result.path, result.reason)
            issues.append(result)
            continue
        row, signal = result
        rows.append({**row.to_dict(), "offset": offset})
        offset += signal.size
        arrays.append(signal.ravel())
    stem = shard_dir / f"{shard_id:05d}"
    scratch = shard_dir / f".{shard_id:05d}.tmp"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    values = np.concatenate(arrays or [np.zeros(0, np.float32)]).astype(np.float32)
    values.tofile(scratch / SIGNALS_FILE)
    pd.DataFrame(rows).to_parquet(scratch / "rows.parquet", index=False)
    _write_issues(scratch / ISSUES_FILE, issues)
    (scratch / SHARD_FILE).write_text(
        json.dumps({"spec_sha256": spec_sha256, "n_values": int(values.size), "n_rows": len(rows)})
    )
    os.replace(scratch, stem)


def _shard_meta(stem: Path, spec_sha256: str) -> dict | None:
    """What a finished shard recorded when written, if it is of this spec and its signal file has the size
    recorded; else None (it is rebuilt)."""
    try:
        meta = json.loads((stem / SHARD_FILE).read_text())
        whole = (stem / SIGNALS_FILE).stat().st_size == 4 * meta["n_values"]
        return meta if meta["spec_sha256"] == spec_sha256 and whole else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _shard_ok(stem: Path, spec_sha256: str) -> bool:
    """Whether a shard left by an earlier build can be reused: `_shard_meta`, and its tables read whole."""
    meta = _shard_meta(stem, spec_sha256)
    if meta is None:
        return False
    try:
        read_issues(stem / ISSUES_FILE)
        return len(pd.read_parquet(stem / "rows.parquet")) == meta["n_rows"]
    except (OSError, ValueError, KeyError, csv.Error):
        return False


def _write_issues(path: Path, issues: Sequence[ReadIssue]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "path", "reason"])
        writer.writerows((issue.dataset, issue.path, issue.reason) for issue in issues)


def read_issues(path: str | os.PathLike) -> list[ReadIssue]:
    """Read an ``issues.csv`` written by a build."""
    with open(path, newline="") as handle:
        return [ReadIssue(row["path"], row["reason"], row["dataset"]) for row in csv.DictReader(handle)]


def build_cache(
    sources: Sequence[Source],
    out: str | os.PathLike,
    sampling_rate_hz: float,
    label_profile: str = "strict",
    lead_names: tuple[str, ...] = LEAD_NAMES,
    min_likelihood: float = 0.0,
    workers: int | None = None,
    shard_size: int = 256,
    strict: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_shard: Callable[[int], None] | None = None,
) -> BuildReport:
    """Read, resample and label every record of ``sources`` once, into a cache at ``out``.

    Args:
        sources: datasets to include.
        out: cache directory to create.
        sampling_rate_hz: target rate; records are resampled with a polyphase filter.
        label_profile: ``strict``, ``seed`` or a mapping CSV (see `ecglens.labels`).
        lead_names: leads to store, in order.
        min_likelihood: SCP likelihood threshold (see `LabelMap.map`).
        workers: worker processes (default: all cores).
        shard_size: records per shard (the unit of resumption).
        strict: stop at the first bad record instead of listing it.
        overwrite: replace an existing complete cache built from another spec or sources.
        progress: show a progress bar.
        on_shard: called with each shard id once it is written (tests use it to interrupt).

    Raises:
        CacheError: ``out`` holds a cache of another spec and ``overwrite`` is false, or another build is
            writing ``out`` (one writer at a time: an OS lock on a lock file beside ``out``).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        return _build(
            sources,
            out,
            sampling_rate_hz,
            label_profile,
            lead_names,
            min_likelihood,
            workers,
            shard_size,
            strict,
            overwrite,
            progress,
            on_shard,
        )


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold the OS lock of ``out`` (``.<name>.lock`` beside it) or fail at once naming the other writer's target."""
    import fcntl

    lock_path = out.with_name(f".{out.name}.lock")
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CacheError(
                f"{out}: another 'ecglens data prepare' is writing this cache (lock {lock_path}); "
                "wait for it to finish or choose another --out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(
    sources,
    out,
    sampling_rate_hz,
    label_profile,
    lead_names,
    min_likelihood,
    workers,
    shard_size,
    strict,
    overwrite,
    progress,
    on_shard,
) -> BuildReport:
    """`build_cache` under its lock."""
    label_map = load_label_map(label_profile)
    spec = CacheSpec(
        sampling_rate_hz=float(sampling_rate_hz),
        lead_names=tuple(lead_names),
        label_profile=label_map.name,
        label_map_sha256=label_map.sha256,
        min_likelihood=min_likelihood,
    )
    source_texts = [str(s) for s in sources]
    existing = _existing_cache(out, spec, source_texts, overwrite)
    if existing is not None:
        return existing
    scan = scan_sources(sources, sampling_rate_hz)
    partial = out.with_name(out.name + ".partial")
    shards = [scan.refs[i : i + shard_size] for i in range(0, len(scan.refs), shard_size)]
    todo = _plan_shards(partial, spec, source_texts, shard_size, scan.refs, len(shards))
    done_records = sum(len(shards[i]) for i in range(len(shards)) if i not in set(todo))
    with bar(
        total=len(scan.refs), initial=done_records, desc=f"prepare {out.name}", unit="rec", enabled=progress
    ) as counter:
        _build_shards(
            partial / "shards", shards, todo, spec, label_map, workers or os.cpu_count() or 1, strict, counter, on_shard
        )
    _write_ptbxl_patients(partial / PATIENTS_FILE, sources)
    report = _finish(partial, out, spec, source_texts, len(shards), list(scan.issues), overwrite)
    return BuildReport(str(out), report[0], report[1], len(todo), len(shards) - len(todo), issues=report[2])


def _write_ptbxl_patients(path: Path, sources: Sequence[Source]) -> None:
    """Every row of the native PTB-XL sources' databases as ``ecg_id, patient_id, strat_fold`` (rows whose files
    are absent too), so a run can give a Challenge ``HR`` file its patient and fold."""
    columns = ["ecg_id", "patient_id", "strat_fold"]
    frames = []
    for source in sources:
        if source.format.startswith("ptbxl"):  # scanned already: a regular file with the columns it needs
            table = pd.read_csv(Path(source.root) / "ptbxl_database.csv", usecols=lambda c: c in columns)
            if set(columns) <= set(table.columns):  # patient_id is optional; a row that does not parse is skipped
                numbers = table[columns].apply(pd.to_numeric, errors="coerce").dropna()
                frames.append(numbers[(numbers == numbers.round()).all(axis=1)].astype("int64"))
    if frames:
        pd.concat(frames).drop_duplicates("ecg_id").to_csv(path, index=False)


def _existing_cache(out: Path, spec: CacheSpec, sources: list[str], overwrite: bool) -> BuildReport | None:
    """The report of a complete cache of the same spec and sources at ``out`` (nothing to do), else None.

    Raises:
        CacheError: ``out`` holds a cache of another spec or sources and ``overwrite`` is false.
    """
    if not (out / SPEC_FILE).is_file():
        return None
    existing = json.loads((out / SPEC_FILE).read_text())
    if existing.get("spec_sha256") == spec.sha256 and existing.get("sources") == sources:
        return BuildReport(str(out), existing["n_records"], existing["n_issues"], 0, 0, already_complete=True)
    if not overwrite:
        raise CacheError(f"{out}: holds a cache with another spec or sources; pass --overwrite to replace it")
    return None


def _plan_shards(
    partial: Path, spec: CacheSpec, sources: list[str], shard_size: int, refs: Sequence[RecordRef], n_shards: int
) -> list[int]:
    """The shards still to build; leftovers of a build with another spec or file list are removed first."""
    shard_dir = partial / "shards"
    plan = {
        "spec_sha256": spec.sha256,
        "sources": sources,
        "shard_size": shard_size,
        "refs_sha256": hashlib.sha256("\n".join(r.path for r in refs).encode()).hexdigest(),
    }
    plan_path = partial / "plan.json"
    if partial.exists() and (not plan_path.is_file() or json.loads(plan_path.read_text()) != plan):
        shutil.rmtree(partial)
    shard_dir.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(json.dumps(plan))
    todo = []
    for i in range(n_shards):
        stem = shard_dir / f"{i:05d}"
        if stem.is_dir() and not _shard_ok(stem, spec.sha256):
            shutil.rmtree(stem)  # damaged, or of another spec: rebuilt below
        if not stem.is_dir():
            todo.append(i)
    return todo


def _build_shards(
    shard_dir: Path,
    shards: Sequence[Sequence[RecordRef]],
    todo: Sequence[int],
    spec: CacheSpec,
    label_map: LabelMap,
    workers: int,
    strict: bool,
    counter: Any,
    on_shard: Callable[[int], None] | None,
) -> None:
    """Read the records of the shards to build (one stream through the worker pool), writing each shard."""
    jobs = ((ref, spec, label_map) for shard_id in todo for ref in shards[shard_id])
    results = ordered_map(_prepare, jobs, workers if todo else 1, chunksize=4)
    try:
        for shard_id in todo:
            shard_results = []
            for _ in shards[shard_id]:
                shard_results.append(next(results))
                counter.update(1)
            _write_shard(shard_dir, shard_id, shard_results, strict, spec.sha256)
            if on_shard is not None:
                on_shard(shard_id)
    finally:
        results.close()


def _finish(
    partial: Path,
    out: Path,
    spec: CacheSpec,
    sources: list[str],
    n_shards: int,
    scan_issues: list[ReadIssue],
    overwrite: bool,
) -> tuple[int, int, tuple[ReadIssue, ...]]:
    frames, issues = [], list(scan_issues)
    offset = 0
    with open(partial / SIGNALS_FILE, "wb") as signals:
        for shard_id in range(n_shards):
            stem = partial / "shards" / f"{shard_id:05d}"
            meta = _shard_meta(stem, spec.sha256)
            rows = pd.read_parquet(stem / "rows.parquet") if meta is not None else None
            if rows is None or meta is None or len(rows) != meta["n_rows"]:  # never mix specs
                shutil.rmtree(stem, ignore_errors=True)
                raise CacheError(
                    f"{partial}: shard {shard_id} changed or belongs to another spec; run the same "
                    "command again to rebuild it"
                )
            data = np.fromfile(stem / SIGNALS_FILE, dtype=np.float32)
            if len(rows):
                rows["offset"] = rows["offset"].astype(np.int64) + offset
                frames.append(rows)
            data.tofile(signals)
            offset += data.size
            issues.extend(read_issues(stem / ISSUES_FILE))
    index = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["record_id", "offset"])
    index = _normalise_index(index)
    index.to_parquet(partial / INDEX_FILE, index=False)
    _write_issues(partial / ISSUES_FILE, issues)
    meta = {
        "spec": asdict(spec),
        "spec_sha256": spec.sha256,
        "sources": sources,
        "n_records": len(index),
        "n_issues": len(issues),
        "n_values": offset,
        "class_names": list(CLASS_NAMES),
        "ecglens_version": __version__,
    }
    (partial / SPEC_FILE).write_text(json.dumps(meta, indent=2))
    shutil.rmtree(partial / "shards")
    (partial / "plan.json").unlink()
    if out.exists():
        if not overwrite and any(out.iterdir()):
            raise CacheError(f"{out}: exists and is not empty")
        shutil.rmtree(out)
    os.replace(partial, out)
    return len(index), len(issues), tuple(issues)


def _normalise_index(index: pd.DataFrame) -> pd.DataFrame:
    columns: dict[str, Any] = {
        "record_id": "string",
        "dataset": "string",
        "offset": "int64",
        "n_samples": "int64",
        "source_sampling_rate_hz": "float64",
        "classes": "string",
        "exclusion": "string",
        "raw_labels": "string",
        "label_vocabulary": "string",
        "fold": "Int64",
        "patient_id": "string",
        "age": "float64",
        "sex": "string",
        "source_path": "string",
    }
    columns.update({column: "bool" for column in LABEL_COLUMNS})
    for column, dtype in columns.items():
        if column not in index:
            index[column] = pd.Series(dtype=dtype)
        index[column] = index[column].astype(dtype)
    return index[list(columns)]


class EcgCache:
    """A read-only view of a built cache: an index table and memory-mapped signals.

    Loading one record is an array slice (`signal`), never a file parse.
    """

    def __init__(self, path: str | os.PathLike, expect_spec: CacheSpec | None = None):
        self.path = Path(path)
        spec_path = self.path / SPEC_FILE
        if not spec_path.is_file():
            partial = self.path.with_name(self.path.name + ".partial")
            if partial.exists():
                hint = f"an unfinished build is in {partial}: run 'ecglens data prepare' again to finish it"
            else:
                hint = f"build one with 'ecglens data prepare SOURCE --out {self.path}'"
            raise CacheError(f"{self.path}: not an ecglens cache ({SPEC_FILE} is missing); {hint}")
        self.meta = json.loads(spec_path.read_text())
        self.spec = CacheSpec.from_dict(self.meta["spec"])
        if self.spec.format_version != FORMAT_VERSION:
            raise CacheError(
                f"{self.path}: cache format {self.spec.format_version}, this ecglens reads {FORMAT_VERSION}"
            )
        if expect_spec is not None and expect_spec.sha256 != self.spec.sha256:
            built, asked = asdict(self.spec), asdict(expect_spec)
            differences = ", ".join(f"{k} {built[k]!r} (asked {asked[k]!r})" for k in built if built[k] != asked[k])
            raise CacheError(f"{self.path}: built with another spec: {differences}; build a new cache")
        self.index = pd.read_parquet(self.path / INDEX_FILE)
        n_values = int(self.meta["n_values"])
        signals_path = self.path / SIGNALS_FILE
        if signals_path.stat().st_size != 4 * n_values:
            raise CacheError(f"{signals_path}: {signals_path.stat().st_size} bytes, spec announces {4 * n_values}")
        self.signals = (
            np.memmap(signals_path, dtype=np.float32, mode="r", shape=(n_values,))
            if n_values
            else np.zeros(0, np.float32)
        )
        self._offsets = self.index["offset"].to_numpy(np.int64)
        self._lengths = self.index["n_samples"].to_numpy(np.int64)
        self.n_leads = len(self.spec.lead_names)
        self._labels: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.index)

    @property
    def sampling_rate_hz(self) -> float:
        """Sampling rate of every stored record."""
        return self.spec.sampling_rate_hz

    @property
    def lengths(self) -> np.ndarray:
        """Samples per record."""
        return self._lengths

    def signal(self, i: int) -> np.ndarray:
        """Record ``i`` as a read-only leads x samples view of the memory map."""
        start, n = self._offsets[i], self._lengths[i]
        return self.signals[start : start + self.n_leads * n].reshape(self.n_leads, n)

    def labels(self, label_map: LabelMap | None = None) -> np.ndarray:
        """Multi-hot targets, records x classes, float32, computed once per label space.

        Without ``label_map``, or with the mapping the cache was prepared under, the stored nine-class
        columns; under any other label space, each record's raw labels (stored as read) mapped anew, so one
        cache serves every label space without preparing again.
        """
        return self._mapped(label_map)[0]

    def labelled(self, label_map: LabelMap | None = None) -> np.ndarray:
        """True for records whose truth is known in the label space: a class, or statements that name none
        (out of scope: a negative for every class); False for records without statements."""
        return self._mapped(label_map)[1]

    def _mapped(self, label_map: LabelMap | None) -> tuple[np.ndarray, np.ndarray]:
        """Targets and labelled flags under a label space, from one mapping of the raw labels (or the stored
        columns and reasons of the mapping the cache was prepared under)."""
        stored = label_map is None or label_map.sha256 == self.spec.label_map_sha256
        key = "" if label_map is None or stored else label_map.sha256
        if key not in self._labels:
            if label_map is None or stored:
                targets = self.index[list(LABEL_COLUMNS)].to_numpy(np.float32)
                flags = ~self.index["exclusion"].fillna("").str.startswith(UNLABELLED).to_numpy(bool)
            else:
                rows = zip(self.index["raw_labels"], self.index["label_vocabulary"], strict=True)
                mapped = [
                    label_map.map((tuple(pair) for pair in json.loads(raw)), vocabulary, self.spec.min_likelihood)
                    for raw, vocabulary in rows
                ]
                targets = (
                    np.stack([label_map.encode(m) for m in mapped])
                    if mapped
                    else np.zeros((0, len(label_map.classes)), np.float32)
                )
                flags = np.array([m.labelled for m in mapped], bool)
            targets.flags.writeable = False
            flags.flags.writeable = False
            self._labels[key] = (targets, flags)
        return self._labels[key]

    def ptbxl_patients(self) -> pd.DataFrame:
        """``ecg_id, patient_id, strat_fold`` of every row of the PTB-XL databases this cache was built from."""
        path = self.path / PATIENTS_FILE
        return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["ecg_id", "patient_id", "strat_fold"])

    def issues(self) -> list[ReadIssue]:
        """Records left out of the build, with reasons."""
        return read_issues(self.path / ISSUES_FILE)


def open_caches(paths: Sequence[str | os.PathLike], sampling_rate_hz: float | None = None) -> list[EcgCache]:
    """Open caches, checking that each is at ``sampling_rate_hz`` (a model's rate) when given.

    Raises:
        CacheError: a path is not a complete cache.
        ValueError: a cache at another rate (prepare one at the model's rate).
    """
    caches = [EcgCache(path) for path in paths]
    for cache in caches:
        if sampling_rate_hz is not None and cache.sampling_rate_hz != sampling_rate_hz:
            raise ValueError(
                f"{cache.path}: cache at {cache.sampling_rate_hz:g} Hz, the model expects "
                f"{sampling_rate_hz:g} Hz; prepare a cache at that rate"
            )
    return caches
