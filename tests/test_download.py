"""``ecglens data download`` against a mini PhysioNet mirror on 127.0.0.1 (never the internet).

The mirror holds real files from ``../shared/data`` in PhysioNet's layout (``ptb-xl/1.0.3/...`` and
``challenge-2021/1.0.3/training/<source>/...``) with generated ``SHA256SUMS.txt`` lists.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd
import pytest

from ecglens.cli import main
from ecglens.io import parse_source, scan_source
from ecglens.io.download import PARTIAL_DIR, DownloadError, download, parse_checksums
from mirror import Mirror, checksum_list

pytestmark = pytest.mark.realdata

PTBXL_IDS = (1, 2, 3, 4, 5)
FAST = {"retries": 2, "timeout": 0.5, "backoff": 0.01, "progress": False}


def _mirror_files(data: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    ptbxl = data / "ptb-xl"
    table = pd.read_csv(ptbxl / "ptbxl_database.csv")
    table = table[table["ecg_id"].isin(PTBXL_IDS)]
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    files["ptb-xl/1.0.3/ptbxl_database.csv"] = buffer.getvalue().encode()
    for name in ("scp_statements.csv", "LICENSE.txt"):
        files[f"ptb-xl/1.0.3/{name}"] = (ptbxl / name).read_bytes()
    for ecg_id in PTBXL_IDS:
        for folder, suffix in (("records100", "lr"), ("records500", "hr")):
            for extension in ("hea", "dat"):
                relative = f"{folder}/00000/{ecg_id:05d}_{suffix}.{extension}"
                files[f"ptb-xl/1.0.3/{relative}"] = (ptbxl / relative).read_bytes()
    for source, folder in (("cpsc_2018", "cpsc2018"), ("ptb", "ptb")):
        for path in sorted((data / "challenge" / folder).iterdir())[:6]:
            files[f"challenge-2021/1.0.3/training/{source}/g1/{path.name}"] = path.read_bytes()
    for project in ("ptb-xl/1.0.3", "challenge-2021/1.0.3"):
        files[f"{project}/SHA256SUMS.txt"] = checksum_list(files, project)
    return files


@pytest.fixture
def mirror(shared_data: Path):
    with Mirror(_mirror_files(shared_data), hang_seconds=2.0) as server:
        yield server


DAT = "ptb-xl/1.0.3/records500/00000/00002_hr.dat"


def test_full_download_verifies_reads_and_rerun_fetches_nothing(mirror: Mirror, tmp_path: Path) -> None:
    out = tmp_path / "ptb-xl"
    result = download("ptbxl", out, base_url=mirror.url, **FAST)
    assert not result.failures and result.downloaded == result.n_files == 3 + 4 * len(PTBXL_IDS)
    assert result.bytes_downloaded == sum(
        len(d) for p, d in mirror.files.items() if p.startswith("ptb-xl/") and not p.endswith("SHA256SUMS.txt")
    )
    assert not (out / PARTIAL_DIR).exists()
    for path, digest in parse_checksums((out / "SHA256SUMS.txt").read_text()):
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == digest
    scan = scan_source(parse_source(f"ptbxl:{out}"))
    assert len(scan.refs) == len(PTBXL_IDS) and not scan.issues  # the layout ecglens reads
    before = len(mirror.requests)
    again = download("ptbxl", out, base_url=mirror.url, **FAST)
    assert again.downloaded == 0 and again.already_verified == again.n_files
    assert [p for p, _ in mirror.requests[before:]] == ["ptb-xl/1.0.3/SHA256SUMS.txt"]


def test_rate_and_challenge_source_select_their_files(mirror: Mirror, tmp_path: Path) -> None:
    low = download("ptbxl", tmp_path / "low", base_url=mirror.url, rate="100", **FAST)
    assert low.n_files == 3 + 2 * len(PTBXL_IDS) and not (tmp_path / "low" / "records500").exists()
    cpsc = download("cpsc2018", tmp_path / "cpsc", base_url=mirror.url, **FAST)
    names = sorted(p.name for p in (tmp_path / "cpsc" / "g1").iterdir())
    assert cpsc.n_files == 6 and names[0].startswith("A") and cpsc.source_spec == f"challenge:{tmp_path / 'cpsc'}"
    assert len(scan_source(parse_source(cpsc.source_spec)).refs) == 3


def test_dropped_connection_resumes_with_a_range_request(mirror: Mirror, tmp_path: Path) -> None:
    mirror.faults[DAT].extend(["drop", "drop"])
    result = download("ptbxl", tmp_path / "p", base_url=mirror.url, **FAST)
    assert not result.failures
    ranges = [r for p, r in mirror.requests if p == DAT]
    size = len(mirror.files[DAT])
    offsets = [int(r[6:-1]) for r in ranges[1:]]
    assert ranges[0] is None and len(ranges) == 3  # continued where each drop left it, never from scratch
    assert 0 < offsets[0] <= size // 2 < offsets[1] < size
    assert (tmp_path / "p" / DAT.removeprefix("ptb-xl/1.0.3/")).read_bytes() == mirror.files[DAT]


def test_a_killed_runs_partial_file_is_continued(mirror: Mirror, tmp_path: Path) -> None:
    out = tmp_path / "p"
    relative = DAT.removeprefix("ptb-xl/1.0.3/")
    partial = out / PARTIAL_DIR / relative
    partial.parent.mkdir(parents=True)
    partial.write_bytes(mirror.files[DAT][:1000])
    assert not download("ptbxl", out, base_url=mirror.url, **FAST).failures
    assert [r for p, r in mirror.requests if p == DAT] == ["bytes=1000-"]
    assert (out / relative).read_bytes() == mirror.files[DAT]


def test_corrupted_file_is_fetched_again_then_named(mirror: Mirror, tmp_path: Path) -> None:
    mirror.faults[DAT].append("corrupt")
    assert not download("ptbxl", tmp_path / "once", base_url=mirror.url, **FAST).failures
    assert mirror.count(DAT) == 2
    mirror.faults[DAT].extend(["corrupt", "corrupt"])
    result = download("ptbxl", tmp_path / "twice", base_url=mirror.url, **FAST)
    (failure,) = result.failures
    assert failure.url == f"{mirror.url}/{DAT}" and "does not match" in failure.reason and failure.url in failure.reason
    assert not (tmp_path / "twice" / failure.path).exists()  # nothing unverified under its name
    assert result.downloaded == result.n_files - 1  # the others went on


def test_missing_file_404_and_hanging_server_are_named(mirror: Mirror, tmp_path: Path) -> None:
    lost = "ptb-xl/1.0.3/records100/00000/00003_lr.dat"
    mirror.files.pop(lost)
    mirror.faults[DAT].extend(["hang"] * 3)
    result = download("ptbxl", tmp_path / "p", base_url=mirror.url, **FAST)
    reasons = {f.path: f.reason for f in result.failures}
    assert reasons.keys() == {lost.removeprefix("ptb-xl/1.0.3/"), DAT.removeprefix("ptb-xl/1.0.3/")}
    assert "HTTP 404" in reasons[lost.removeprefix("ptb-xl/1.0.3/")] and mirror.count(lost) == 1  # not retried
    assert "timed out" in reasons[DAT.removeprefix("ptb-xl/1.0.3/")] and mirror.count(DAT) == 3
    assert result.downloaded == result.n_files - 2


def test_transient_errors_are_retried(mirror: Mirror, tmp_path: Path) -> None:
    mirror.faults[DAT].extend(["503", "hang"])
    assert not download("ptbxl", tmp_path / "p", base_url=mirror.url, **FAST).failures
    assert mirror.count(DAT) == 3


def test_checksum_list_refuses_paths_outside_the_dataset() -> None:
    good = "a" * 64
    assert parse_checksums(f"{good} records100/x.dat\n{good} *y.csv\n") == [("records100/x.dat", good), ("y.csv", good)]
    for line in (f"{good} ../etc/passwd", f"{good} /etc/passwd", "nothex file"):
        with pytest.raises(DownloadError):
            parse_checksums(line)


def test_cli_download_lines_and_exit_codes(mirror: Mirror, tmp_path: Path, capsys) -> None:
    args = [
        "data",
        "download",
        "ptbxl",
        "--out",
        str(tmp_path / "p"),
        "--base-url",
        mirror.url,
        "--rate",
        "100",
        "--retries",
        "0",
        "--timeout",
        "0.5",
    ]
    assert main(["-q", *args]) == 0
    assert "ptbxl:" in capsys.readouterr().out
    mirror.files.pop("ptb-xl/1.0.3/records100/00000/00004_lr.hea")
    (tmp_path / "p" / "records100/00000/00004_lr.hea").unlink()
    assert main(["-q", *args]) == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "00004_lr.hea" in err and "Traceback" not in err
    assert main(["-q", "data", "download", "nosuch", "--out", str(tmp_path / "x")]) == 1
    assert "unknown dataset" in capsys.readouterr().err


def test_entries_that_cannot_be_files_here_fail_one_by_one(tmp_path: Path) -> None:
    from ecglens.io.download import RemoteDataset

    project = "proj/1.0"
    good = {f"{project}/g1/s{i:04d}.hea": f"header {i}\n".encode() for i in range(3)}
    hostile = {
        f"{project}/g1/{'x' * 300}.hea": b"a name longer than the file system allows",
        f"{project}/{PARTIAL_DIR}": b"a name of ecglens's own",
        f"{project}/g2": b"a file here, and a folder of the same name below",
        f"{project}/g2/inner.hea": b"inside the folder that clashes",
    }
    files = {**good, **hostile}
    listing = checksum_list(files, project) + f"{'0' * 64}  .\n".encode()  # an entry that names the folder
    files[f"{project}/SHA256SUMS.txt"] = listing
    dataset = RemoteDataset("proj", "proj", "1.0", "", "challenge", "a project of hostile entry names")
    with Mirror(files) as server:
        result = download(dataset, tmp_path / "proj", base_url=server.url, **FAST)
    assert result.downloaded == len(good) + 1  # the good files, and one side of the file/folder clash
    reasons = " | ".join(f.reason for f in result.failures)
    assert len(result.failures) == 4, reasons
    assert "longer than 255 bytes" in reasons and "ecglens's own" in reasons and "names no file" in reasons
    assert "cannot be written as" in reasons
    for path in good:
        assert (tmp_path / "proj" / path.removeprefix(f"{project}/")).read_bytes() == good[path]
