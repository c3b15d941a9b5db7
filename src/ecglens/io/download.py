"""``ecglens data download``: PhysioNet databases fetched, verified against their SHA256SUMS.txt, resumable.

PhysioNet publishes every project version with a ``SHA256SUMS.txt`` that lists each file and its
SHA-256. That list is the plan: every file in it (filtered to the dataset asked for) is fetched over
HTTP(S), hashed while it streams, and moved to its name only when the hash matches. Partial files wait
in ``OUT/.ecglens-partial/`` and continue with an HTTP range request, after a dropped connection as
after a killed run. A re-run hashes the files already there and fetches nothing that verifies. A dataset with
pinned files (the viewer's examples, `ecglens.io.example_set`) carries its plan, paths and SHA-256, in the package.

Transient failures (connection errors, timeouts, HTTP 429 and 5xx) are retried with exponential
backoff; a checksum mismatch fetches the file once more from scratch. Whatever still fails is listed
with its URL and the rest of the dataset continues.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import requests

from ecglens.io.example_set import EXAMPLES, LICENCE, PTBXL_VERSION, example_checksums, examples_size_bytes
from ecglens.util.atomic import write_text
from ecglens.util.progress import bar

PHYSIONET = "https://physionet.org/files"
CHECKSUMS = "SHA256SUMS.txt"
PARTIAL_DIR = ".ecglens-partial"
_CHUNK = 1 << 14  # a dropped connection loses at most the chunk being read


@dataclass(frozen=True)
class RemoteDataset:
    """A downloadable dataset: a folder of one PhysioNet project version."""

    name: str
    project: str
    version: str
    prefix: str
    """The dataset's folder inside the project ("" for the whole project); it becomes ``--out``."""
    source_format: str
    """The `ecglens.io` source format that reads the downloaded folder ("" for none)."""
    description: str
    pinned: tuple[tuple[str, str], ...] = ()
    """``(path, sha256)`` of a fixed set of the project's files: the plan, instead of the project's SHA256SUMS.txt
    (which is not fetched)."""


_CHALLENGE = ("challenge-2021", "1.0.3")
_CHALLENGE_SOURCES = {
    "cpsc_2018": "CPSC 2018 (China Physiological Signal Challenge), 6,877 records",
    "cpsc_2018_extra": "CPSC 2018 extra (unused CPSC data), 3,453 records",
    "georgia": "Georgia 12-lead ECG Challenge database, 10,344 records",
    "chapman_shaoxing": "Chapman University / Shaoxing People's Hospital, 10,247 records",
    "ningbo": "Ningbo First Hospital, 34,905 records",
    "ptb": "PTB Diagnostic ECG database, 516 records (1000 Hz)",
    "ptb-xl": "PTB-XL in the Challenge's WFDB conversion (SNOMED-CT labels), 21,837 records",
    "st_petersburg_incart": "St Petersburg INCART 12-lead arrhythmia database, 74 records (257 Hz, 30 min)",
}
DATASETS: dict[str, RemoteDataset] = {
    "ptbxl": RemoteDataset(
        "ptbxl", "ptb-xl", "1.0.3", "", "ptbxl", "PTB-XL 1.0.3 in its native layout (21,799 records; 100 and 500 Hz)"
    ),
    **{
        name: RemoteDataset(
            name,
            *_CHALLENGE,
            f"training/{name}",
            "challenge",
            f"{text}; PhysioNet/CinC Challenge 2021 training set 1.0.3",
        )
        for name, text in _CHALLENGE_SOURCES.items()
    },
    "examples": RemoteDataset(
        "examples",
        "ptb-xl",
        PTBXL_VERSION,
        "",
        "",
        f"the viewer's {len(EXAMPLES)} example records: real PTB-XL 1.0.3 records at 100 Hz, one per class the "
        f"starter decides ({examples_size_bytes() / 1000:.0f} kB; {LICENCE})",
        example_checksums(),
    ),
}
ALIASES = {"cpsc2018": "cpsc_2018"}
"""The original CPSC 2018 release (``.mat`` + ``REFERENCE.csv``, icbeb.org) has no checksum list; ``cpsc2018``
fetches the same 6,877 recordings from the Challenge 2021 training set."""
PTBXL_RATES = ("100", "500", "both")


class DownloadError(OSError):
    """A file that could not be fetched and verified; the message names its URL."""


class ChecksumError(DownloadError):
    """A file whose SHA-256 did not match its SHA256SUMS.txt entry, twice."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of the plan: where it comes from, where it goes, what its SHA-256 must be."""

    url: str
    path: str
    """Relative to ``--out``, with forward slashes."""
    sha256: str


@dataclass(frozen=True)
class DownloadFailure:
    """A file left out, and why."""

    url: str
    path: str
    reason: str


@dataclass(frozen=True)
class DownloadResult:
    """What a download did: counts, bytes and the files that failed."""

    dataset: RemoteDataset
    out: str
    base_url: str
    n_files: int
    downloaded: int
    already_verified: int
    bytes_downloaded: int
    seconds: float
    failures: tuple[DownloadFailure, ...] = field(default=())

    @property
    def source_spec(self) -> str | None:
        """The ``FORMAT:ROOT`` source that reads the downloaded folder (for ``data prepare`` or ``reproduce``), or
        None for a folder that is no source (the viewer's examples)."""
        return f"{self.dataset.source_format}:{self.out}" if self.dataset.source_format else None


def resolve_dataset(name: str) -> RemoteDataset:
    """The dataset for a name or alias.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    key = ALIASES.get(name, name)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(sorted([*DATASETS, *ALIASES]))}")
    return DATASETS[key]


def parse_checksums(text: str, source: str = CHECKSUMS) -> list[tuple[str, str]]:
    """``(path, sha256)`` pairs of a ``sha256sum``-style list (``HASH  PATH`` or ``HASH *PATH`` per line).

    Raises:
        DownloadError: a malformed line, or a path that is absolute or climbs out with ``..``.
    """
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, path = line.strip().partition(" ")
        path = path.strip().lstrip("*")
        if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest) or not path:
            raise DownloadError(f"{source}: line {number} is not 'SHA256 PATH': {line[:80]!r}")
        posix = PurePosixPath(path)
        if posix.is_absolute() or ".." in posix.parts or "\\" in path:
            raise DownloadError(f"{source}: line {number}: refused path {path!r} (absolute or outside the dataset)")
        pairs.append((posix.as_posix(), digest.lower()))
    return pairs


def plan_files(
    dataset: RemoteDataset, checksums: Sequence[tuple[str, str]], base_url: str, rate: str = "both"
) -> list[RemoteFile]:
    """The files of ``dataset`` in a project's checksum list, paths made relative to the dataset's folder.

    Args:
        dataset: what to fetch.
        checksums: ``(path, sha256)`` pairs of the project's SHA256SUMS.txt.
        base_url: the project version's URL (``.../ptb-xl/1.0.3``).
        rate: PTB-XL only: ``100``, ``500`` or ``both`` sets of signal files.
    """
    if rate not in PTBXL_RATES:
        raise ValueError(f"--rate {rate!r}: choose 100, 500 or both")
    prefix = f"{dataset.prefix}/" if dataset.prefix else ""
    skip = {"100": "records500/", "500": "records100/"}.get(rate) if dataset.name == "ptbxl" else None
    files = []
    for path, digest in checksums:
        if not path.startswith(prefix):
            continue
        local = path[len(prefix) :]
        if skip and local.startswith(skip):
            continue
        files.append(RemoteFile(f"{base_url.rstrip('/')}/{path}", local, digest))
    return files


def _transient(response: requests.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


class _Fetcher:
    """Fetches and verifies files with one HTTP session, counting bytes into a shared progress bar."""

    def __init__(
        self,
        out: Path,
        retries: int,
        timeout: float,
        backoff: float,
        workers: int,
        meter: Callable[[int], None],
        stop: threading.Event,
    ) -> None:
        self.out, self.partial = out, out / PARTIAL_DIR
        self.retries, self.timeout, self.backoff = retries, timeout, backoff
        self.meter, self.stop = meter, stop
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=workers, pool_maxsize=workers, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "ecglens-download"

    def get(self, url: str, headers: dict | None = None, stream: bool = False) -> requests.Response:
        """One GET, retried on transient failures; a 4xx other than 429 fails at once."""
        attempt = 0
        while True:
            try:
                response = self.session.get(url, headers=headers, stream=stream, timeout=self.timeout)
                if not _transient(response):
                    if response.status_code >= 400 and response.status_code != 416:
                        response.close()
                        raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
                    return response
                reason = f"HTTP {response.status_code} {response.reason}"
                response.close()
            except (requests.ConnectionError, requests.Timeout) as error:
                reason = _reason(error)
            attempt = self._wait(url, reason, attempt)

    def _wait(self, url: str, reason: str, attempt: int) -> int:
        """Sleep before the next try, or give up after ``retries`` retries."""
        if attempt >= self.retries or self.stop.is_set():
            raise DownloadError(f"{url}: {reason} (gave up after {attempt} retries)")
        time.sleep(self.backoff * 2**attempt)
        return attempt + 1

    def fetch(self, remote: RemoteFile) -> int:
        """Make ``remote`` present and verified under ``out``; returns the bytes downloaded (0: it was there).

        Raises:
            DownloadError: for this file only: it could not be fetched, verified, or written under its name (too
                long a name, a name of ecglens's own, a file where the list also needs a folder, or the reverse).
        """
        problem = _local_problem(remote.path)
        if problem is not None:
            raise DownloadError(f"{remote.url}: {problem}")
        try:
            return self._fetch(remote)
        except OSError as error:
            if isinstance(error, DownloadError) or error.errno not in _NAME_ERRORS:
                raise
            raise DownloadError(f"{remote.url}: cannot be written as {remote.path!r} ({error.strerror})") from None

    def _fetch(self, remote: RemoteFile) -> int:
        final = self.out / remote.path
        if final.is_file() and _sha256_file(final) == remote.sha256:
            return 0
        part = self.partial / remote.path
        part.parent.mkdir(parents=True, exist_ok=True)
        received = 0
        for _ in range(2):  # a checksum mismatch is fetched once more from scratch
            hasher, got = self._stream(remote.url, part)
            received += got
            if hasher.hexdigest() == remote.sha256:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(part, final)
                return received
            part.unlink()
        raise ChecksumError(
            f"{remote.url}: SHA-256 {hasher.hexdigest()} does not match {CHECKSUMS} ({remote.sha256}), twice"
        )

    def _stream(self, url: str, part: Path) -> tuple[hashlib._Hash, int]:
        """Append the rest of ``url`` to ``part`` (a range request when part of it is there); its hash."""
        hasher, hashed, received, attempt = hashlib.sha256(), 0, 0, 0
        while True:
            offset = part.stat().st_size if part.exists() else 0
            if hashed != offset:
                hasher, hashed = _sha256_prefix(part)
            response = self.get(url, {"Range": f"bytes={offset}-"} if offset else None, stream=True)
            with response:
                if response.status_code == 416 or (response.status_code == 206 and not _starts_at(response, offset)):
                    part.unlink(missing_ok=True)  # the partial file is not a prefix of this file: start again
                    hasher, hashed = hashlib.sha256(), 0
                    continue
                if response.status_code != 206:
                    hasher, hashed = hashlib.sha256(), 0
                try:
                    with open(part, "ab" if response.status_code == 206 else "wb") as handle:
                        for chunk in response.iter_content(_CHUNK):
                            if self.stop.is_set():
                                raise DownloadError(f"{url}: interrupted")
                            handle.write(chunk)
                            hasher.update(chunk)
                            hashed += len(chunk)
                            received += len(chunk)
                            self.meter(len(chunk))
                    return hasher, received
                except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
                    attempt = self._wait(url, _reason(error), attempt)


_NAME_ERRORS = {errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY}
"""Errors of one file's name or place (its name, or a clash between a file and a folder of the list): that file's
failure, never the download's."""
_NAME_MAX = 255


def _local_problem(path: str) -> str | None:
    """Why a checksum list's path cannot be a file of the dataset's folder, or None."""
    parts = PurePosixPath(path).parts
    if not parts or path.strip("/.") == "":
        return f"entry {path!r} names no file"
    if parts[0] == PARTIAL_DIR or path == CHECKSUMS:
        return f"entry {path!r} would overwrite ecglens's own {parts[0]}"
    if any(len(os.fsencode(part)) > _NAME_MAX for part in parts):
        return f"entry {path[:60]!r}... has a name longer than {_NAME_MAX} bytes"
    return None


def _reason(error: Exception) -> str:
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection dropped mid-file"
    return f"connection failed ({type(error).__name__})"


def _starts_at(response: requests.Response, offset: int) -> bool:
    """Whether a 206 response's ``Content-Range`` starts at ``offset``."""
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0]) == offset
    except (IndexError, ValueError):
        return False


def _sha256_prefix(path: Path) -> tuple[hashlib._Hash, int]:
    hasher, size = hashlib.sha256(), 0
    if path.exists():
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                hasher.update(chunk)
                size += len(chunk)
    return hasher, size


def _sha256_file(path: Path) -> str:
    return _sha256_prefix(path)[0].hexdigest()


def download(
    dataset: str | RemoteDataset,
    out: str | os.PathLike,
    base_url: str = PHYSIONET,
    rate: str = "both",
    version: str | None = None,
    workers: int = 4,
    retries: int = 4,
    timeout: float = 30.0,
    backoff: float = 1.0,
    progress: bool = True,
) -> DownloadResult:
    """Fetch a dataset's files into ``out``, each verified against the project's SHA256SUMS.txt.

    Args:
        dataset: a name of `DATASETS` (or an alias), or a `RemoteDataset`; one with ``pinned`` files fetches only
            those, each checked against its pinned SHA-256.
        out: the dataset's folder (created); its layout is the one ``ecglens`` reads.
        base_url: where PhysioNet's ``files/`` tree is (a mirror's URL for ``--base-url``).
        rate: PTB-XL only: the 100 Hz files, the 500 Hz files or both.
        version: a project version other than the dataset's default (not for a pinned dataset).
        workers: files fetched at once.
        retries: retries of a transient failure (with backoff ``backoff * 2**k`` seconds).
        timeout: seconds to wait for a connection or for the next bytes.
        backoff: the first retry's wait in seconds.
        progress: a byte progress bar with rate and ETA.

    Raises:
        DownloadError: the checksum list itself could not be fetched or read.
        ValueError: another version of a pinned dataset.
    """
    started = time.perf_counter()
    remote = resolve_dataset(dataset) if isinstance(dataset, str) else dataset
    if remote.pinned and version not in (None, remote.version):
        raise ValueError(f"{remote.name}: its files are pinned to {remote.project} {remote.version}; no --version")
    project_url = f"{base_url.rstrip('/')}/{remote.project}/{version or remote.version}"
    out = Path(out)
    stop = threading.Event()
    lock = threading.Lock()
    counter = bar(total=None, desc=f"download {remote.name}", unit="B", enabled=progress, unit_scale=True)
    fetcher = _Fetcher(out, retries, timeout, backoff, workers, lambda n: _count(counter, lock, n), stop)
    checksums = list(remote.pinned)
    if not checksums:
        with fetcher.get(f"{project_url}/{CHECKSUMS}") as response:
            checksums = parse_checksums(response.text, f"{project_url}/{CHECKSUMS}")
    files = plan_files(remote, checksums, project_url, rate)
    if not files:
        raise DownloadError(f"{project_url}/{CHECKSUMS}: lists no file under {remote.prefix or '/'}")
    out.mkdir(parents=True, exist_ok=True)
    tally = _Tally(len(files))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: dict[Future, RemoteFile] = {}
        try:
            for item in files:
                pending[pool.submit(fetcher.fetch, item)] = item
                while len(pending) >= 4 * workers:
                    tally.collect(pending, counter)
            while pending:
                tally.collect(pending, counter)
        except BaseException:
            stop.set()
            raise
        finally:
            counter.close()
    if (out / PARTIAL_DIR).exists():
        _remove_empty(out / PARTIAL_DIR)
    write_text(out / CHECKSUMS, "".join(f"{f.sha256}  {f.path}\n" for f in files))  # sha256sum -c works in out
    return DownloadResult(
        remote,
        str(out),
        project_url,
        len(files),
        tally.downloaded,
        tally.verified,
        tally.bytes,
        time.perf_counter() - started,
        tuple(tally.failures),
    )


def _count(counter, lock: threading.Lock, n: int) -> None:
    with lock:
        counter.update(n)


@dataclass
class _Tally:
    """Running counts of a download, and the byte total the progress bar's ETA is based on."""

    n_files: int
    downloaded: int = 0
    verified: int = 0
    bytes: int = 0
    failures: list[DownloadFailure] = field(default_factory=list)

    def collect(self, pending: dict[Future, RemoteFile], counter) -> None:
        """Wait for at least one file and fold what finished into the counts."""
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            item = pending.pop(future)
            error = future.exception()
            if isinstance(error, DownloadError):
                self.failures.append(DownloadFailure(item.url, item.path, str(error)))
            elif error is not None:
                raise error
            elif future.result():
                self.downloaded += 1
                self.bytes += future.result()
            else:
                self.verified += 1
        if self.downloaded:  # the files still to come, estimated at the mean size of those fetched so far
            left = self.n_files - self.downloaded - self.verified - len(self.failures)
            counter.total = int(self.bytes + left * self.bytes / self.downloaded)


def _remove_empty(folder: Path) -> None:
    """Remove the partial-file folder tree when nothing is left in it (a failure keeps its partial file)."""
    for directory in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(directory.iterdir()):
            directory.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()
