"""The viewer's example records: the pinned list follows its rule, and ``ecglens data download examples`` fetches it,
verified and resumable, from a mini PhysioNet mirror on 127.0.0.1 serving copies of ``../shared/data`` (never the
internet)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from ecglens.cli import main
from ecglens.io.download import PARTIAL_DIR
from ecglens.io.example_set import (
    CITATION,
    EXAMPLES,
    EXAMPLES_ENV,
    example_checksums,
    examples_folder,
    examples_size_bytes,
    fetch_hint,
    missing_examples,
)
from mirror import Mirror

PROJECT = "ptb-xl/1.0.3"


def test_the_folder_is_per_user_and_overridable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(EXAMPLES_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert examples_folder() == tmp_path / "data" / "ecglens" / "examples"
    monkeypatch.setenv(EXAMPLES_ENV, str(tmp_path / "mine"))
    assert examples_folder() == tmp_path / "mine"
    hint = fetch_hint()
    assert "'ecglens data download examples'" in hint and "172 kB" in hint and str(tmp_path / "mine") in hint
    assert examples_size_bytes() == 172_216 and len(example_checksums()) == 2 * len(EXAMPLES) == 14
    assert missing_examples(tmp_path / "mine") == tuple(p for p, _ in example_checksums())


def test_another_dataset_still_needs_out(capsys) -> None:
    assert main(["-q", "data", "download", "ptbxl"]) == 1
    assert "give --out" in capsys.readouterr().err


@pytest.mark.realdata
def test_the_list_follows_its_rule_on_ptbxl_labels_alone(shared_data: Path) -> None:
    """For each class ecglens-starter-2 decided when the list was made: the lowest ecg_id of fold 8 whose statements
    map to it alone under the strict label space, its own statement at likelihood 100 where PTB-XL grades it
    (diagnostic statements), present where it does not."""
    from ecglens.io.ptbxl import scan_ptbxl
    from ecglens.labels.mapping import load_label_map

    label_map = load_label_map("strict")
    statements = pd.read_csv(shared_data / "ptb-xl" / "scp_statements.csv", index_col=0)
    graded = set(statements.index[statements["diagnostic"] == 1])
    own: dict[str, str] = {}  # each class's own statement: its first row (SNR: NORM, not SR)
    for row in label_map.rows:
        if row.vocabulary == "scp":
            own.setdefault(row.target, row.code)
    decided = ["SNR", "AF", "IAVB", "RBBB", "PAC", "PVC", "STD"]  # fixed with the list (see ecglens.io.example_set)
    refs, _ = scan_ptbxl(shared_data / "ptb-xl", 100)
    chosen: dict[str, object] = {}
    for ref in sorted((r for r in refs if r.fold == 8), key=lambda r: int(r.record_id)):
        classes = label_map.map(ref.raw_labels, "scp").classes
        if len(classes) != 1 or classes[0] not in decided or classes[0] in chosen:
            continue
        code = own[classes[0]]
        likelihood = dict(ref.raw_labels).get(code)
        if likelihood is not None and (code not in graded or likelihood == 100):
            chosen[classes[0]] = ref
    assert [(e.class_name, e.ecg_id, e.fold) for e in EXAMPLES] == [
        (name, int(chosen[name].record_id), 8)
        for name in decided  # type: ignore[attr-defined]
    ]
    for example in EXAMPLES:
        assert example.statements == chosen[example.class_name].raw_labels  # type: ignore[attr-defined]


@pytest.mark.realdata
def test_the_pinned_checksums_are_ptbxls(shared_data: Path) -> None:
    lines = (shared_data / "ptb-xl" / "SHA256SUMS.txt").read_text().splitlines()
    listed = {path: digest for digest, path in (line.split() for line in lines)}
    for example in EXAMPLES:
        for (path, digest), size in zip(example.files(), (example.header_bytes, example.signal_bytes), strict=True):
            data = (shared_data / "ptb-xl" / path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest and len(data) == size, path
            assert listed.get(path, digest) == digest, path
    assert sum(path in listed for path, _ in example_checksums()) == 2  # record 43's, from PTB-XL's own list


@pytest.fixture
def mirror(shared_data: Path):
    files = {f"{PROJECT}/{path}": (shared_data / "ptb-xl" / path).read_bytes() for path, _ in example_checksums()}
    with Mirror(files, hang_seconds=1.0) as server:
        yield server


def _download(mirror: Mirror, *extra: str) -> list[str]:
    return ["-q", "data", "download", "examples", "--base-url", mirror.url, "--retries", "1", "--timeout", "2", *extra]


@pytest.mark.realdata
def test_fetch_verifies_resumes_and_a_rerun_fetches_nothing(mirror: Mirror, tmp_path: Path, monkeypatch, capsys):
    from ecglens.serve.examples import default_examples_root

    folder = tmp_path / "examples"
    monkeypatch.setenv(EXAMPLES_ENV, str(folder))
    monkeypatch.delenv("ECGLENS_DATA", raising=False)
    assert default_examples_root() is None
    cut = f"{EXAMPLES[3].base}.dat"  # a killed run left part of it
    (folder / PARTIAL_DIR / cut).parent.mkdir(parents=True)
    (folder / PARTIAL_DIR / cut).write_bytes(mirror.files[f"{PROJECT}/{cut}"][:1000])
    assert main(_download(mirror)) == 0
    out = capsys.readouterr().out
    assert "14 files" in out and "14 downloaded" in out and "'ecglens serve' shows them" in out and CITATION in out
    assert missing_examples(folder) == () and not (folder / PARTIAL_DIR).exists()
    assert [r for p, r in mirror.requests if p == f"{PROJECT}/{cut}"] == ["bytes=1000-"]  # continued, not restarted
    assert {p for p, _ in mirror.requests} == {f"{PROJECT}/{p}" for p, _ in example_checksums()}  # no SHA256SUMS
    assert default_examples_root() == folder  # where serve looks
    before = len(mirror.requests)
    assert main(_download(mirror)) == 0
    assert "14 already verified" in capsys.readouterr().out and len(mirror.requests) == before


@pytest.mark.realdata
def test_a_checksum_mismatch_is_named_and_nothing_unverified_is_kept(
    mirror: Mirror, tmp_path: Path, monkeypatch, capsys
):
    from ecglens.serve.examples import default_examples_root

    folder = tmp_path / "elsewhere"
    monkeypatch.setenv(EXAMPLES_ENV, str(tmp_path / "default"))
    monkeypatch.delenv("ECGLENS_DATA", raising=False)
    changed = f"{EXAMPLES[0].base}.hea"
    mirror.files[f"{PROJECT}/{changed}"] += b"# not PhysioNet's file\n"  # served the same way every time
    assert main(_download(mirror, "--out", str(folder))) == 1
    captured = capsys.readouterr()
    assert f"{mirror.url}/{PROJECT}/{changed}" in captured.err and "does not match" in captured.err
    assert "Traceback" not in captured.err and "1 failed" in captured.out
    assert not (folder / changed).exists() and missing_examples(folder) == (changed,)
    assert (folder / f"{EXAMPLES[0].base}.dat").is_file()  # the others went on
    assert default_examples_root() is None
    assert main(["-q", "data", "download", "examples", "--version", "1.0.2", "--out", str(folder)]) == 1
    assert "pinned" in capsys.readouterr().err


@pytest.mark.realdata
def test_serve_fetch_examples_fetches_then_serves_them(mirror: Mirror, tmp_path: Path, monkeypatch, capsys):
    import uvicorn

    import ecglens.io.download

    monkeypatch.setenv(EXAMPLES_ENV, str(tmp_path / "examples"))
    monkeypatch.delenv("ECGLENS_DATA", raising=False)
    monkeypatch.setattr(ecglens.io.download, "PHYSIONET", mirror.url)  # never the internet
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append(app))
    assert main(["-q", "serve", "--fetch-examples"]) == 0
    out = capsys.readouterr().out
    assert "14 downloaded" in out and "no example records" not in out and "serving starter" in out
    (app,) = served
    assert [e.class_name for e in app.state.service.examples.values()] == [e.class_name for e in EXAMPLES]
    assert main(["-q", "serve", "--fetch-examples", "--examples", str(tmp_path)]) == 2
    assert "--examples names another" in capsys.readouterr().err
