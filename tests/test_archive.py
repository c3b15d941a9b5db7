"""``predict --archive``: resumable after a kill, incremental, sharded, merged into the plain run's files."""

import base64
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, known_signal, write_wfdb
from ecglens.cli import main
from ecglens.commands.archive import ARCHIVE_DIR, Shard, merge
from ecglens.commands.predict import ArchiveOptions, run_predict
from ecglens.predict import Predictor

BATCH = 4
OUTPUTS = ("predictions.jsonl", "predictions.csv", "issues.csv", "summary.csv", "summary.html")


def _archive(folder: Path, first: int, count: int) -> Path:
    """``count`` WFDB records (5 s at 500 Hz, each its own signal) and one unreadable file."""
    folder.mkdir(exist_ok=True)
    for i in range(first, first + count):
        write_wfdb(folder, f"r{i:03d}", known_signal(2500, seed=i), fs=500)
    (folder / "broken.csv").write_text("not,an,ecg\n")
    return folder


def _run(archive: Path, out: Path, shard: str | None = None):
    options = ArchiveOptions(shard=shard)
    return run_predict("starter", [archive], out, batch_size=BATCH, progress=False, decision="model", archive=options)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return _archive(tmp_path_factory.mktemp("archive") / "ecg", 0, 18)


@pytest.fixture(scope="module")
def reference(archive, tmp_path_factory) -> Path:
    """The archive scored once, uninterrupted, in one process."""
    out = tmp_path_factory.mktemp("reference") / "out"
    run = _run(archive, out)
    assert (run.counts.scored, run.counts.unreadable, run.merged.predictions) == (18, 1, 18)
    return out


def test_an_archive_ends_with_the_plain_runs_files_each_record_once(archive, reference, tmp_path):
    assert main(["predict", str(archive), "--decision", "model", "--out", str(tmp_path / "plain")]) == 0
    plain = {row["record_id"] for row in _rows(tmp_path / "plain" / "predictions.jsonl")}
    rows = _rows(reference / "predictions.jsonl")
    assert sorted(row["record_id"] for row in rows) == sorted(plain)  # each record once
    assert (reference / "predictions.csv").read_text().splitlines()[0] == (
        (tmp_path / "plain" / "predictions.csv").read_text().splitlines()[0]
    )
    assert (reference / "issues.csv").read_text() == (tmp_path / "plain" / "issues.csv").read_text()
    assert (reference / "summary.csv").read_text() == (tmp_path / "plain" / "summary.csv").read_text()


def test_the_same_command_again_scores_nothing_and_keeps_the_files(archive, reference, tmp_path):
    before = _files(reference)
    run = _run(archive, reference)
    assert (run.counts.scored, run.counts.unreadable, run.counts.skipped) == (0, 0, 19)
    assert _files(reference) == before


def test_a_run_that_finds_nothing_new_says_so_in_one_line(archive, reference, capsys):
    """Not "predict 1-of-1: 19 rec in 0.0 s": what was already scored, and where."""
    command = ["predict", str(archive), "--decision", "model", "--batch-size", str(BATCH), "--out", str(reference)]
    assert main(command) == 0
    shown = capsys.readouterr()
    (line,) = shown.out.splitlines()
    assert line.startswith("nothing new: the 19 file(s) found were scored before; the archive holds 18 predicted")
    assert str(reference / "predictions.jsonl") in line and str(reference / "summary.html") in line
    assert " rec in " not in shown.err


def test_a_grown_archive_scores_only_what_is_new(tmp_path):
    folder = _archive(tmp_path / "ecg", 0, 6)
    _run(folder, tmp_path / "out")
    _archive(folder, 6, 3)  # tonight's new files
    (folder / "r000.hea").rename(folder / "renamed.hea")  # a file moved: the same content, not scored again
    (folder / "r000.dat").rename(folder / "renamed.dat")
    os.utime(folder / "r001.dat")  # touched, unchanged: hashed again, not scored
    run = _run(folder, tmp_path / "out")
    assert (run.counts.scored, run.counts.unreadable) == (3, 0)
    assert run.lines()[0].startswith("scored 3 new of 10 file(s) in ")
    assert run.lines()[0].endswith(
        ": 3 predicted, 0 unreadable; 6 scored before, 1 the content of a file scored under another name"
    )
    ids = [row["record_id"] for row in _rows(tmp_path / "out" / "predictions.jsonl")]
    assert sorted(ids) == [f"r{i:03d}" for i in range(9)]  # r000 keeps the row of its content


def test_shards_are_disjoint_deterministic_blocks_that_cover_every_file():
    files = [Path(f"f{i}") for i in range(23)]
    for count in (1, 2, 3, 5):
        parts = [[p for _, block in Shard(k, count).blocks(files, 4) for p in block] for k in range(1, count + 1)]
        assert sorted(p for part in parts for p in part) == sorted(files)
        assert sum(map(len, parts)) == len(files)
        assert parts == [
            [p for _, block in Shard(k, count).blocks(files, 4) for p in block] for k in range(1, count + 1)
        ]
    with pytest.raises(ValueError, match="K/N"):
        Shard.parse("2-4")
    with pytest.raises(ValueError, match="1 to N"):
        Shard.parse("5/4")


def test_shards_merged_give_the_one_process_files_byte_for_byte(archive, reference, tmp_path):
    runs = [_run(archive, tmp_path / "out", shard=f"{k}/3") for k in (1, 2, 3)]
    assert all(run.merged is None for run in runs)
    assert sum(run.counts.scored for run in runs) == 18
    keys = [
        {row["key"] for row in _rows(tmp_path / "out" / ARCHIVE_DIR / f"manifest-{k}-of-3.jsonl")} for k in (1, 2, 3)
    ]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    merged = merge(tmp_path / "out")
    assert (merged.predictions, merged.issues) == (18, 1)
    assert _files(tmp_path / "out") == _files(reference)
    assert main(["predict-merge", str(tmp_path / "nothing")]) == 1


class Crash(Exception):
    """Stands for a kill in the middle of the run."""


def test_a_crashed_run_continues_where_it_stopped(archive, reference, tmp_path, monkeypatch):
    scored: list[int] = []
    score = Predictor.score_records

    def crash_on_third(self, records, *args, **kwargs):
        scored.append(len(records))
        if len(scored) == 3:
            raise Crash
        return score(self, records, *args, **kwargs)

    monkeypatch.setattr(Predictor, "score_records", crash_on_third)
    with pytest.raises(Crash):
        _run(archive, tmp_path / "out")
    monkeypatch.setattr(Predictor, "score_records", score)
    run = _run(archive, tmp_path / "out")
    assert run.counts.scored + sum(scored[:2]) == 18  # the two committed batches are not scored again
    assert _files(tmp_path / "out") == _files(reference)


def test_rows_past_the_last_manifest_row_are_cut_back(archive, reference, tmp_path, monkeypatch):
    """A kill between a batch's rows and its manifest rows, or within either: the next run cuts the rows back to
    what the manifest names and scores that batch again, once."""
    score = Predictor.score_records
    calls: list[int] = []

    def crash_on_second(self, records, *args, **kwargs):
        calls.append(len(records))
        if len(calls) == 2:
            raise Crash
        return score(self, records, *args, **kwargs)

    monkeypatch.setattr(Predictor, "score_records", crash_on_second)
    with pytest.raises(Crash):
        _run(archive, tmp_path / "out")
    monkeypatch.setattr(Predictor, "score_records", score)
    folder = tmp_path / "out" / ARCHIVE_DIR
    rows = (folder / "predictions-1-of-1.jsonl").read_text().splitlines(keepends=True)
    with (folder / "predictions-1-of-1.jsonl").open("a") as handle:  # a whole row never committed, and half a row
        handle.write(rows[0].replace('"key": "', '"key": "0'))
        handle.write(rows[1][:50])
    with (folder / "manifest-1-of-1.jsonl").open("a") as handle:  # half a manifest row
        handle.write('{"key": "')
    run = _run(archive, tmp_path / "out")
    assert run.counts.scored == 18 - calls[0]
    assert _files(tmp_path / "out") == _files(reference)


def test_an_archive_refuses_other_settings_and_explanations(archive, reference, tmp_path):
    assert main(["predict", str(archive), "--decision", "criteria", "--out", str(reference)]) == 1
    assert main(["predict", str(archive), "--archive", "--explain", "gradcam", "--out", str(tmp_path)]) == 1
    assert main(["predict", str(archive), "--archive", "--pseudonym-map", "--out", str(tmp_path / "f")]) == 1
    assert main(["predict", str(archive), "--shard", "3/2", "--out", str(tmp_path / "x")]) == 1


KILLED_RUN = """
import sys
from pathlib import Path
from ecglens.predict import Predictor

trace = Path(sys.argv[1])
score = Predictor.score_records

def traced(self, records, *args, **kwargs):
    with trace.open("a") as handle:  # what this process began to score, on disk before it starts
        handle.write(f"{len(records)}\\n")
    return score(self, records, *args, **kwargs)

Predictor.score_records = traced
from ecglens.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _manifest_rows(out: Path) -> int:
    manifest = out / ARCHIVE_DIR / "manifest-1-of-1.jsonl"
    return manifest.read_bytes().count(b"\n") if manifest.is_file() else 0


@pytest.mark.slow
def test_kill_9_at_random_points_gives_the_uninterrupted_rows(archive, reference, tmp_path):
    """Killed (SIGKILL) three times at random points, then run to its end: the same files as an uninterrupted
    run, each kill costing at most one batch scored again."""
    out, trace = tmp_path / "out", tmp_path / "trace"
    command = [sys.executable, "-c", KILLED_RUN, str(trace), "predict", str(archive), "--archive"]
    command += ["--decision", "model", "--batch-size", str(BATCH), "--out", str(out)]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1"}
    rows = random.Random(os.getpid())
    killed_at = []
    for _ in range(3):
        target = _manifest_rows(out) + rows.randint(1, BATCH + 2)
        process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while _manifest_rows(out) < target and process.poll() is None:
            time.sleep(rows.uniform(0.0, 0.05))
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at.append(_manifest_rows(out))
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    assert "archive" in finished.stdout, finished.stderr
    assert _files(out) == _files(reference)
    began = sum(int(line) for line in trace.read_text().split())
    assert began - 18 <= 3 * BATCH, (killed_at, began)  # at most one batch per kill scored twice


# ---- each record's page and exports, committed with it; the summary --------------------------------------------


def _pages_run(archive: Path, out: Path, *options: str) -> list[str]:
    """``predict`` of a small archive with one-page reports (and ``options``): the command line."""
    command = ["predict", str(archive), "--archive", "--decision", "model", "--batch-size", str(BATCH)]
    return [*command, "--report", "pdf", *options, "--out", str(out)]


def test_a_page_that_cannot_be_drawn_is_listed_as_a_plain_run_lists_it(tmp_path, monkeypatch):
    from conftest import page_fails_for

    folder = _archive(tmp_path / "ecg", 0, 5)
    page_fails_for(monkeypatch, "r003")
    assert main(["--quiet", *_pages_run(folder, tmp_path / "archive")]) == 0
    plain = [
        "--quiet",
        "predict",
        str(folder),
        "--decision",
        "model",
        "--report",
        "pdf",
        "--out",
        str(tmp_path / "plain"),
    ]
    assert main(plain) == 0
    for name in ("issues.csv", "summary.csv", "summary.html"):
        assert (tmp_path / "archive" / name).read_text() == (tmp_path / "plain" / name).read_text(), name
    assert "r003.hea,report not written: RuntimeError: the page could not be drawn" in (
        (tmp_path / "archive" / "issues.csv").read_text()
    )
    assert sorted(p.name for p in (tmp_path / "archive" / "reports").iterdir()) == [f"r00{i}.pdf" for i in (0, 1, 2, 4)]
    monkeypatch.undo()  # the page draws again; the next run scores nothing: the issue stays listed
    assert main(["--quiet", *_pages_run(folder, tmp_path / "archive")]) == 0
    assert (tmp_path / "archive" / "issues.csv").read_text() == (tmp_path / "plain" / "issues.csv").read_text()


def test_the_summary_reads_its_rows_once_as_they_come(tmp_path):
    from ecglens.predict import Prediction
    from ecglens.report.summary import SummaryRow, write_summary

    def rows():
        for i in range(500):
            probabilities = {"AF": 0.9 if i % 2 else 0.1}
            decided = ("AF",) if i % 2 else ()
            yield SummaryRow.of(
                Prediction(f"r{i:03d}", f"r{i:03d}.hea", probabilities, decided), f"reports/r{i:03d}.pdf"
            )

    page, table = write_summary(rows(), 3, tmp_path)  # a generator: there is no second pass
    assert len(table.read_text().splitlines()) == 501
    html = page.read_text()
    assert "records predicted: <b>500</b>" in html and "decided AF: <b>250</b>" in html
    assert "unreadable or not reported: <b>3</b>" in html and html.count("<tr") == 501


KILLED_AT_A_COMMIT = """
import os
import signal
import sys

from ecglens.commands import archive

where, commits = sys.argv[1], []
commit, publish = archive.ShardLog.commit, getattr(archive, "publish", None)


def killing_commit(self):
    commits.extend([1] if self.pending else [])
    if where == "before the commit" and len(commits) == 2:  # the second batch's pages drawn, its rows not written
        os.kill(os.getpid(), signal.SIGKILL)
    return commit(self)


def killing_publish(pending, out):
    if where == "after the commit" and len(commits) == 2:  # the batch committed, its files not yet moved
        os.kill(os.getpid(), signal.SIGKILL)
    return publish(pending, out)


archive.ShardLog.commit, archive.publish = killing_commit, killing_publish
from ecglens.cli import main

sys.exit(main(sys.argv[2:]))
"""


def _stems(folder: Path, suffix: str) -> list[str]:
    return sorted(p.stem for p in folder.glob(f"*{suffix}")) if folder.is_dir() else []


@pytest.mark.parametrize("where", ["before the commit", "after the commit"])
def test_a_kill_between_a_records_files_and_its_commit_leaves_each_file_once(tmp_path, where):
    """Killed (SIGKILL) with the second batch's pages drawn, before or just after its commit: ``OUT`` holds the
    files of committed records only (the manifest decides), and the same command again leaves every predicted
    record's page (and FHIR Bundle and DICOM object, where their libraries are installed) once, whole, holding that
    page; nothing pending, no scratch file."""
    folder, out = _archive(tmp_path / "ecg", 0, 5), tmp_path / "out"
    exports = [f"--{kind}" for kind, module in (("fhir", "fhir.resources"), ("dicom", "pydicom")) if _has(module)]
    exports = exports if where == "after the commit" else []  # before: --report pdf alone, as the old code ran it
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", KILLED_AT_A_COMMIT, where, "--quiet", *_pages_run(folder, out, *exports)]
    killed = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    merge(out)  # what the manifests hold so far
    committed = [row["record_id"] for row in _rows(out / "predictions.jsonl")]
    assert len(committed) == (3 if where == "before the commit" else 5)
    assert set(_stems(out / "reports", ".pdf")) <= set(committed[:3])  # never a page of an uncommitted record

    assert main(["--quiet", *_pages_run(folder, out, *exports)]) == 0
    ids = [row["record_id"] for row in _rows(out / "predictions.jsonl")]
    assert ids == [f"r00{i}" for i in range(5)]
    assert _stems(out / "reports", ".pdf") == ids
    assert not list((out / ARCHIVE_DIR).glob("pending-*"))
    assert [p for p in out.rglob(".*") if p.is_file()] == []
    with (out / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert [row["record"] for row in summary] == ids and all((out / row["report"]).is_file() for row in summary)
    for record in ids:
        page = (out / "reports" / f"{record}.pdf").read_bytes()
        assert page.startswith(b"%PDF") and page.rstrip().endswith(b"%%EOF")
        if "--fhir" in exports:
            bundle = json.loads((out / "fhir" / f"{record}.json").read_text())
            (report,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
            assert base64.b64decode(report["presentedForm"][0]["data"]) == page
        if "--dicom" in exports:
            import pydicom

            dataset = pydicom.dcmread(out / "dicom" / f"{record}.dcm")
            assert dataset.EncapsulatedDocument[: dataset.EncapsulatedDocumentLength] == page
    assert _stems(out / "fhir", ".json") == (ids if "--fhir" in exports else [])
    assert _stems(out / "dicom", ".dcm") == (ids if "--dicom" in exports else [])


def _has(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
