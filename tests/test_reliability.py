"""Reliability and security: malformed inputs, a fuzzer, two writers, a full disk, markup in data, hostile bundles.

Every command runs in its own process under a timeout, as a user would run it: an exception other than a
named issue, a traceback or a hang fails the test.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from malformed import LEADS, PTBXL_COLUMNS, Case, _dat, _header, _signal, write_corpus

TIMEOUT_S = 240


def ecglens(*args: str, timeout: int = TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run the command line in a fresh process (no hang: a timeout fails the test)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ecglens.cli", "-q", "--threads", "1", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _issues(path: Path) -> str:
    with open(path, newline="") as handle:
        return "\n".join(" | ".join(row) for row in csv.reader(handle))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[Case]]:
    root = tmp_path_factory.mktemp("corpus")
    return root, write_corpus(root)


@pytest.mark.slow
def test_every_malformed_input_is_a_named_issue_and_the_batch_completes(corpus, tiny_run, tmp_path):
    root, cases = corpus
    assert len(cases) >= 100
    results = {}
    # predict: every file kind in one batch (CSV and NumPy need a rate)
    run = ecglens(
        "predict",
        "--checkpoint",
        tiny_run.bundle,
        str(root / "files"),
        "--sampling-rate",
        "500",
        "--out",
        str(tmp_path / "predict"),
    )
    results["predict"] = run
    issues = _issues(tmp_path / "predict" / "issues.csv")
    predicted = [json.loads(line) for line in (tmp_path / "predict" / "predictions.jsonl").read_text().splitlines()]
    assert {p["record_id"] for p in predicted} >= {"good", "renamed", "good_array"}  # ids from file names
    for case in (c for c in cases if c.group == "files"):
        assert case.mention in issues, case
    # prepare and summary on the same folder as a Challenge source (its .hea records), on PTB-XL and on CPSC
    for source, group in (
        (f"challenge:{root / 'files'}", "files"),
        (f"ptbxl100:{root / 'ptbxl'}", "ptbxl"),
        (f"cpsc2018:{root / 'cpsc'}", "cpsc"),
    ):
        out = tmp_path / f"cache-{group}"
        results[f"prepare {group}"] = run = ecglens(
            "data", "prepare", source, "--out", str(out), "--sampling-rate", "100", "--workers", "2"
        )
        assert run.returncode == 0, run.stderr
        issues = _issues(out / "issues.csv")
        expected = [c for c in cases if c.group == group and (group != "files" or _is_header_case(root, c))]
        missing = [c.name for c in expected if c.mention not in issues]
        assert not missing, missing
        results[f"summary {group}"] = run = ecglens("data", "summary", source, "--out", str(tmp_path / f"s-{group}"))
        assert run.returncode == 0, run.stderr
        summary = (tmp_path / f"s-{group}" / "summary.md").read_text()
        not_read = sum(
            int(line.split(": ")[-1].split(" ")[0])
            for line in summary.split("Records not read:")[1].splitlines()
            if line.startswith("- ")
        )
        assert not_read >= len(expected)
    for name, run in results.items():
        assert "Traceback" not in run.stderr, (name, run.stderr[-2000:])
    assert results["predict"].returncode == 0


def _is_header_case(root: Path, case: Case) -> bool:
    return (root / "files" / f"{case.name}.hea").exists()


@pytest.mark.slow
def test_a_batch_with_nothing_readable_exits_non_zero(corpus, tiny_run, tmp_path):
    root, _ = corpus
    run = ecglens(
        "predict",
        "--checkpoint",
        tiny_run.bundle,
        str(root / "files" / "npy_empty.npy"),
        str(root / "files" / "hdr_rate_nan.hea"),
        "--out",
        str(tmp_path / "o"),
    )
    assert run.returncode == 1 and "none of the 2 record(s) could be read" in run.stderr
    assert "Traceback" not in run.stderr


# -- a property-based fuzzer: nothing but the readers' named error may escape ---------------------------------

_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_number_text = st.one_of(
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e308",
            "-0",
            "0",
            "1e-320",
            "abc",
            "",
            "1/0",
            "500",
            "12",
            "2500",
            "1000(0)",
            "16+24",
            "0x10",
        ]
    ),
    st.floats(allow_nan=True).map(str),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=8),
)


@_FUZZ
@given(
    record=st.lists(_number_text, min_size=1, max_size=5),
    signal=st.lists(_number_text, min_size=2, max_size=9),
    comments=st.text(max_size=40),
)
def test_fuzzed_headers_raise_only_named_errors(tmp_path, record, signal, comments):
    from ecglens.io import RecordError
    from ecglens.io.wfdb_files import read_wfdb

    header = tmp_path / "f.hea"
    lines = ["f " + " ".join(record)] + [" ".join(["f.dat", *signal[1:], lead]) for lead in LEADS]
    header.write_text("\n".join(lines) + f"\n#{comments}\n", errors="surrogateescape")
    (tmp_path / "f.dat").write_bytes(_dat(_signal()))
    try:
        record_read = read_wfdb(header)
    except RecordError:
        return
    assert np.isfinite(record_read.signal).all() and record_read.duration_s >= 1.0


_dtypes = st.sampled_from(["<f4", "<f8", "<i2", "<i8", "|u1", "<c8", "|b1", "<U3", "|S2", "<M8[s]"])


@_FUZZ
@given(
    dtype=_dtypes,
    shape=st.lists(st.integers(0, 40), min_size=0, max_size=3),
    fill=st.sampled_from([0.0, 1.0, np.nan, np.inf, 1e20, -3.5]),
    lie=st.booleans(),
)
def test_fuzzed_numpy_and_matlab_files_raise_only_named_errors(tmp_path, dtype, shape, fill, lie):
    from ecglens.io import RecordError, read_record

    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = (
                np.full(shape, fill).astype(dtype)
                if "U" not in dtype and "S" not in dtype
                else np.full(shape, "x", dtype=dtype)
            )
    except (ValueError, OverflowError, TypeError):
        array = np.zeros(shape, dtype=dtype)
    np.save(tmp_path / "a.npy", array)
    if lie:
        data = bytearray((tmp_path / "a.npy").read_bytes())
        data[10:60] = data[10:60].replace(b"(", b"(9999999999")[:50]
        (tmp_path / "a.npy").write_bytes(bytes(data))
    for path, rate in ((tmp_path / "a.npy", 500.0), (tmp_path / "m.hea", None)):
        if path.suffix == ".hea":
            path.write_text(_header("m", file="m.mat"))
            try:
                scipy.io.savemat(tmp_path / "m.mat", {"val": array})
            except (ValueError, TypeError):
                continue
        try:
            record = read_record(path, sampling_rate_hz=rate)
        except RecordError:
            continue
        assert np.isfinite(record.signal).all() and record.duration_s >= 1.0


_cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["nan", "", "1e400", "-1", "3", "{'NORM': 1}", "[1]", "{'A': 'b'}", "records100/00000/x", "../../x"]
    ),
)


@_FUZZ
@given(values=st.fixed_dictionaries({c: _cell for c in PTBXL_COLUMNS.split(",")}))
@example(values={**dict.fromkeys(PTBXL_COLUMNS.split(","), "0"), "strat_fold": "1", "filename_lr": "\x00"})
def test_fuzzed_ptbxl_rows_raise_only_named_errors(tmp_path, values):
    import pandas as pd

    from ecglens.io import RecordError
    from ecglens.io.ptbxl import _row_ref

    row = pd.Series(values)
    try:
        ref = _row_ref(tmp_path, values["ecg_id"], row, "filename_lr", "db#row", "ptbxl", 100, False)
    except RecordError:
        return
    assert 1 <= ref.fold <= 10 and Path(ref.path).resolve().is_relative_to(tmp_path.resolve())


# -- one writer per cache ------------------------------------------------------------------------------------------


def _synthetic(tmp_path: Path, n: int = 120) -> Path:
    from ecglens.synth.cohort import SynthConfig, write_cohort

    write_cohort(
        SynthConfig(n_records=n, sampling_rate_hz=250, seed=3), tmp_path / "records", workers=1, progress=False
    )
    return tmp_path / "records"


@pytest.mark.slow
def test_two_prepares_into_one_cache_never_mix(tmp_path):
    import fcntl

    from ecglens.data.cache import EcgCache

    records = _synthetic(tmp_path)
    out = tmp_path / "cache"
    # A writer holds the lock: a second one fails at once, in one line.
    with open(tmp_path / ".cache.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        blocked = ecglens("data", "prepare", f"challenge:{records}", "--out", str(out), "--sampling-rate", "100")
    assert blocked.returncode == 1 and "another 'ecglens data prepare' is writing" in blocked.stderr
    assert "Traceback" not in blocked.stderr and not out.exists()
    # Two real processes at once, at two rates: at most one writes, the cache holds one spec only.
    runs: dict[str, subprocess.CompletedProcess] = {}

    def start(rate: str) -> None:
        runs[rate] = ecglens(
            "data",
            "prepare",
            f"challenge:{records}",
            "--out",
            str(out),
            "--sampling-rate",
            rate,
            "--shard-size",
            "8",
            "--workers",
            "1",
        )

    threads = [threading.Thread(target=start, args=(rate,)) for rate in ("100", "250")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(run.returncode for run in runs.values())
    assert codes in ([0, 0], [0, 1]), {r: (v.returncode, v.stderr[-500:]) for r, v in runs.items()}
    cache = EcgCache(out)
    assert len(cache.index) == 120 and cache.spec.sampling_rate_hz in (100.0, 250.0)
    assert all(cache.lengths == cache.spec.sampling_rate_hz * 10)  # every record of the cache's own rate


def test_a_damaged_shard_is_rebuilt(tmp_path):
    from ecglens.data.cache import EcgCache, build_cache
    from ecglens.io import parse_source

    records = _synthetic(tmp_path, 40)
    source = [parse_source(f"challenge:{records}")]

    class Stop(Exception):
        pass

    def stop_after_first(shard: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        build_cache(source, tmp_path / "cache", 100, workers=1, shard_size=8, progress=False, on_shard=stop_after_first)
    shard = tmp_path / "cache.partial" / "shards" / "00000" / "signals.f32"
    shard.write_bytes(shard.read_bytes()[:100])  # damaged: truncated
    build_cache(source, tmp_path / "cache", 100, workers=1, shard_size=8, progress=False)
    build_cache(source, tmp_path / "clean", 100, workers=1, shard_size=8, progress=False)
    a, b = EcgCache(tmp_path / "cache"), EcgCache(tmp_path / "clean")
    assert np.array_equal(np.asarray(a.signals), np.asarray(b.signals))


# -- a full disk ---------------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A function mounting a tmpfs of a given size (skips where mounting is not permitted)."""
    mounts = []

    def mount(name: str, size_kib: int) -> Path:
        path = tmp_path / name
        path.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)], capture_output=True
        )
        if done.returncode:
            pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip() or 'not permitted'})")
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        subprocess.run(["umount", str(path)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_ends_in_one_line_and_keeps_what_was_written(small_disk, tiny_run, tmp_path, corpus):
    _root, _ = corpus
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(12):
        (folder / f"r{i:02d}.hea").write_text(_header(f"r{i:02d}"))
        (folder / f"r{i:02d}.dat").write_bytes(_dat(_signal(i)))
    disk = small_disk("predict", 300)
    run = ecglens(
        "predict", "--checkpoint", tiny_run.bundle, str(folder), "--out", str(disk / "o"), "--explain", "gradcam"
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "No space left on device" in run.stderr and "stopped after" in run.stderr
    kept = disk / "o" / "predictions.partial.jsonl"
    assert f"rows are in {kept}" in run.stderr  # the file where it is, not where it was written
    rows = [json.loads(line) for line in kept.read_text().splitlines()]  # every row whole: never half a row
    assert rows and not (disk / "o" / "predictions.jsonl").exists()
    # An export into a disk that holds the bundle but not the ONNX file leaves no truncated model behind.
    weights = Path(tiny_run.bundle) / "model.safetensors"
    disk = small_disk("export", weights.stat().st_size // 1024 + 64)
    for name in ("model.safetensors", "bundle.json"):
        (disk / name).write_bytes((Path(tiny_run.bundle) / name).read_bytes())
    run = ecglens("export", "onnx", "--checkpoint", str(disk))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines() == ["error: No space left on device"]
    assert not (disk / "model.onnx").exists() and not (disk / "model.onnx.tmp").exists()


# -- data are not markup, names are not paths ------------------------------------------------------------------------

MARKUP = "<img src=x onerror=alert(1)>"


def test_markup_in_record_ids_and_headers_is_text_in_every_html_report(tmp_path):
    from ecglens.explain.faithfulness import FaithfulnessResult
    from ecglens.explain.population import PopulationImportance
    from ecglens.explain.waves import WavesSummary
    from ecglens.metrics import evaluate_predictions
    from ecglens.report.ecgpaper import plot_ecg
    from ecglens.report.explanations import ExampleFigure
    from ecglens.report.figures import save_figure
    from ecglens.report.html import evaluation_table, page, table_to_html
    from ecglens.studies.demo import DemoExplanations, _explanation_sections
    from ecglens.waves.measure import Measurements

    png = save_figure(plot_ecg(np.zeros((12, 1000)), 100), tmp_path / "a.png")
    cell = np.full((1, 1), 0.1)
    population = PopulationImportance(
        cell,
        cell,
        cell,
        cell,
        (1,),
        (MARKUP,),
        (MARKUP,),
        samples=8,
        absolute_samples=8,
        target_error=0.05,
        notes=(MARKUP,),
    )
    explanations = DemoExplanations(
        (ExampleFigure("correct", MARKUP, MARKUP, str(png)),),
        population,
        png,
        FaithfulnessResult((), np.linspace(0, 1, 3), {}, 0, 0.0, notes=(MARKUP,)),
        png,
        WavesSummary(
            MARKUP, (MARKUP,), 1, (), ((MARKUP, Measurements(*[None] * 10, 0, MARKUP, (MARKUP,))),), MARKUP, None
        ),
    )
    result = evaluate_predictions(
        np.array([[1], [0]]), np.array([[0.9], [0.1]]), np.array([0.5]), MARKUP, class_names=(MARKUP,), n_bootstrap=0
    )
    sections = [
        *_explanation_sections(explanations, tmp_path),
        ("table", table_to_html([MARKUP], [[MARKUP]])),
        ("eval", evaluation_table(result, MARKUP)),
        (MARKUP, MARKUP),
    ]
    html = page(MARKUP, sections)
    assert MARKUP not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<table>") == 5 and "&lt;table" not in html and "&lt;td" not in html  # markup stays markup
    assert "Content-Security-Policy" in html and "default-src 'none'" in html and "<script" not in html


@pytest.mark.parametrize("record_id", ["../../../escaped", "/etc/passwd", "a\x00b", "x" * 500, "..", "."])
def test_output_names_from_record_ids_stay_inside_the_folder(record_id, tmp_path):
    from ecglens.report.paths import safe_name

    name = safe_name(record_id)
    assert "/" not in name and "\x00" not in name and len(name) <= 60 and name not in ("", ".", "..")
    assert (tmp_path / f"{name}.png").resolve().parent == tmp_path.resolve()


# -- bundles are input too -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"model": {"width": 4096}},
        {"model": {"layers": [200000, 1, 1, 1]}},
        {"policy": {"seconds": 1e6}},
        {"sampling_rate_hz": 0},
        {"sampling_rate_hz": float("nan")},
        {"sampling_rate_hz": -100},
        {"lead_names": ["I"] * 12},
        {"thresholds": [float("nan")] * 9},
        {"thresholds": [2.0] * 9},
        {"class_names": ["A"] * 9},
    ],
)
def test_bundles_out_of_range_are_refused_before_building(tiny_run, tmp_path, change):
    from ecglens.bundle.meta import BundleError, read_meta

    bundle = tmp_path / "b"
    bundle.mkdir()
    meta = json.loads((Path(tiny_run.bundle) / "bundle.json").read_text())
    for key, value in change.items():
        meta[key] = {**meta[key], **value} if isinstance(value, dict) else value
    (bundle / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError):
        read_meta(bundle)


@pytest.mark.parametrize("text", ["[1, 2]", "[" * 100000 + "]" * 100000, "{", "null"])
def test_bundle_json_that_is_not_an_object_is_refused(tmp_path, text):
    from ecglens.bundle.meta import BundleError, read_meta

    (tmp_path / "bundle.json").write_text(text)
    with pytest.raises(BundleError):
        read_meta(tmp_path)


def test_non_finite_weights_are_refused(tiny_run, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from ecglens.bundle.meta import BundleError
    from ecglens.bundle.weights import load_model

    bundle = tmp_path / "b"
    shutil.copytree(tiny_run.bundle, bundle)
    state = load_file(bundle / "model.safetensors")
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key][..., 0] = float("nan")
    save_file(state, bundle / "model.safetensors")
    with pytest.raises(BundleError, match="non-finite"):
        load_model(bundle)


# -- degenerate signals get no decisions -------------------------------------------------------------------------


@pytest.mark.slow
def test_records_that_cannot_be_interpreted_get_no_decisions(tiny_run, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "zero.hea").write_text(_header("zero"))
    (folder / "zero.dat").write_bytes(_dat(np.zeros((12, 2500))))
    (folder / "ok.hea").write_text(_header("ok"))
    (folder / "ok.dat").write_bytes(_dat(_signal()))
    for force in (False, True):
        out = tmp_path / f"o{force}"
        run = ecglens(
            "predict", "--checkpoint", tiny_run.bundle, str(folder), "--out", str(out), *(["--force"] if force else [])
        )
        assert run.returncode == 0, run.stderr
        rows = {r["record_id"]: r for r in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}
        zero = rows["zero"]
        assert (
            zero["status"] == "not interpretable"
            and zero["decisions"] == []
            and "flat in 12 of 12" in zero["reasons"][0]
        )
        assert bool(zero["probabilities"]) is force and rows["ok"]["status"] == "ok"
