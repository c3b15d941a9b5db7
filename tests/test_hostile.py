"""Hostile input found by an independent campaign: bombs read within bounded memory, data never altered silently,
inputs of the wrong kind refused with a named error.

The memory tests read each bomb in a fresh process and assert its peak resident size (``VmHWM``, which starts
afresh at ``exec``, unlike ``ru_maxrss``) stays under 1 GB: a bomb must be refused from what it declares, before
anything is decoded.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from conftest import known_signal, write_challenge_mat, write_wfdb
from ecglens.leads import LEAD_NAMES

PEAK_LIMIT_MB = 1024


def _mat_bomb(path: Path, name: str, shape: tuple[int, int]) -> Path:
    """A MATLAB v5 file whose one zlib element inflates to an int16 array of ``shape`` (zeros): a few hundred kB
    on disk, written as a stream so the test itself never holds the array."""
    n_bytes = shape[0] * shape[1] * 2
    name_bytes = name.encode().ljust(8, b"\0")
    body = (
        struct.pack("<II", 6, 8)
        + struct.pack("<II", 10, 0)  # array flags: mxINT16_CLASS
        + struct.pack("<II", 5, 8)
        + struct.pack("<ii", *shape)  # dimensions
        + struct.pack("<II", 1, len(name))
        + name_bytes  # array name
        + struct.pack("<II", 3, n_bytes)
    )  # int16 data follows
    matrix = struct.pack("<II", 14, len(body) + n_bytes + (-n_bytes % 8)) + body
    packer, chunk = zlib.compressobj(9), bytes(1 << 22)
    parts = [packer.compress(matrix)]
    left = n_bytes + (-n_bytes % 8)
    while left:
        parts.append(packer.compress(chunk[: min(left, len(chunk))]))
        left -= min(left, len(chunk))
    parts.append(packer.flush())
    data = b"".join(parts)
    header = b"MATLAB 5.0 MAT-file, bomb".ljust(116, b" ") + bytes(8) + struct.pack("<H", 0x0100) + b"IM"
    path.write_bytes(header + struct.pack("<II", 15, len(data)) + data)
    return path


def _peak_read(path: Path, extra: str = "") -> tuple[str, float]:
    """Read ``path`` with `ecglens.io.read_record` in a fresh process: the error (or 'read') and the peak MB."""
    code = f"""
import sys
from ecglens.io import RecordError, read_record
try:
    read_record(sys.argv[1]{extra})
    outcome = "read"
except RecordError as error:
    outcome = f"{{type(error).__name__}}: {{error.reason}}"
print(outcome)
status = open("/proc/self/status").read()
print(int(status.split("VmHWM:")[1].split()[0]) / 1024)
"""
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    outcome, peak = run.stdout.strip().splitlines()
    return outcome, float(peak)


def test_a_zlib_bomb_in_a_challenge_mat_is_refused_before_it_inflates(tmp_path):
    # 12 x 25 M int16 (600 MB once inflated) in a file of well under a megabyte
    (tmp_path / "bomb.hea").write_text(
        "\n".join(["bomb 12 500 5000"] + [f"bomb.mat 16+24 1000/mV 16 0 0 0 0 {lead}" for lead in LEAD_NAMES]) + "\n"
    )
    mat = _mat_bomb(tmp_path / "bomb.mat", "val", (12, 25_000_000))
    assert mat.stat().st_size < 2 * 2**20
    outcome, peak = _peak_read(tmp_path / "bomb.hea")
    assert outcome.startswith("RecordTooLarge") and "decompressed" in outcome, outcome
    assert peak < PEAK_LIMIT_MB


@pytest.mark.slow
def test_a_zlib_bomb_in_a_cpsc_mat_is_refused_before_it_inflates(tmp_path):
    (tmp_path / "REFERENCE.csv").write_text("Recording,First_label,Second_label,Third_label\nA0001,1,,\n")
    _mat_bomb(tmp_path / "A0001.mat", "ECG", (12, 25_000_000))
    outcome, peak = _peak_read(tmp_path / "A0001.mat")
    assert outcome.startswith("RecordTooLarge"), outcome
    assert peak < PEAK_LIMIT_MB


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)


def test_a_header_without_a_sample_count_and_a_huge_sparse_dat_is_refused_from_the_file_size(tmp_path):
    (tmp_path / "sparse.hea").write_text(
        "\n".join(["sparse 12 500"] + [f"sparse.dat 16 1000/mV 16 0 0 0 0 {lead}" for lead in LEAD_NAMES]) + "\n"
    )
    _sparse(tmp_path / "sparse.dat", 2**30)
    outcome, peak = _peak_read(tmp_path / "sparse.hea")
    assert outcome.startswith("RecordError") and "longer than 3600 s" in outcome, outcome
    assert peak < PEAK_LIMIT_MB


def test_an_hour_at_10_khz_is_inside_each_limit_but_over_the_sample_budget(tmp_path):
    n = 3600 * 10_000
    (tmp_path / "long.hea").write_text(
        "\n".join([f"long 12 10000 {n}"] + [f"long.dat 16 1000/mV 16 0 0 0 0 {lead}" for lead in LEAD_NAMES]) + "\n"
    )
    _sparse(tmp_path / "long.dat", n * 24)
    outcome, peak = _peak_read(tmp_path / "long.hea")
    assert outcome.startswith("RecordTooLarge") and "432,000,000 samples" in outcome, outcome
    assert peak < PEAK_LIMIT_MB


def test_a_day_long_edf_is_refused_from_its_header(tmp_path):
    pyedflib = pytest.importorskip("pyedflib")
    path = tmp_path / "day.edf"
    writer = pyedflib.EdfWriter(str(path), 12, file_type=pyedflib.FILETYPE_EDF)
    writer.setSignalHeaders(
        [
            {
                "label": f"ECG {lead}",
                "dimension": "mV",
                "sample_frequency": 500,
                "physical_max": 10.0,
                "physical_min": -10.0,
                "digital_max": 32767,
                "digital_min": -32768,
            }
            for lead in LEAD_NAMES
        ]
    )
    writer.writeSamples([row.astype(np.float64) for row in known_signal(1000)])
    writer.close()
    data = bytearray(path.read_bytes())
    n_records = 86_400
    data[236:244] = str(n_records).ljust(8).encode()  # the header's "number of data records": a day of 1-s records
    header_bytes = 256 + 256 * 12
    path.write_bytes(bytes(data[:header_bytes]))
    _sparse_extend = header_bytes + n_records * 12 * 500 * 2
    with open(path, "r+b") as handle:
        handle.truncate(_sparse_extend)
    outcome, peak = _peak_read(path)
    assert outcome.startswith("RecordTooLarge") and "86400 s" in outcome, outcome
    assert peak < PEAK_LIMIT_MB


def test_a_numpy_header_over_the_budget_is_refused_before_loading(tmp_path):
    header = np.lib.format.header_data_from_array_1_0(np.zeros((12, 10), "<i2"))
    header["shape"] = (12, 50_000_000)
    path = tmp_path / "big.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.truncate(handle.tell() + 12 * 50_000_000 * 2)
    outcome, peak = _peak_read(path, ", sampling_rate_hz=500")
    assert outcome.startswith("RecordTooLarge"), outcome
    assert peak < PEAK_LIMIT_MB


def test_a_csv_over_its_size_limit_is_refused_unparsed(tmp_path):
    path = tmp_path / "big.csv"
    _sparse(path, 40 * 2**20)
    outcome, _ = _peak_read(path, ", sampling_rate_hz=500")
    assert outcome.startswith("RecordTooLarge") and "NumPy, WFDB or EDF" in outcome, outcome


# -- issue 35: clinical decoders, WFDB skew and large CSV files bounded before they allocate -------------------------

BOMB_PEAK_MB, BOMB_SECONDS = 400, 10


def _bomb_read(path: Path, rate: float | None = None) -> tuple[str, float, float]:
    """Read ``path`` in a fresh process: the outcome, the read's seconds and the process's peak MB (``VmHWM``)."""
    from clinical_files import read_in_a_fresh_process

    return read_in_a_fresh_process(path, sampling_rate_hz=rate)


def test_a_deflated_dicom_bomb_is_inflated_as_a_counted_stream_and_refused(tmp_path):
    pytest.importorskip("ecgdatakit")
    from clinical_files import deflated_dicom_bomb

    path = deflated_dicom_bomb(tmp_path / "bomb.dcm")  # 200 MB of zeros after the waveform, deflated
    assert path.stat().st_size < 400_000
    outcome, seconds, peak = _bomb_read(path)
    assert outcome.startswith("RecordTooLarge") and "inflates to more than 32 MiB" in outcome, outcome
    assert "bomb" not in outcome  # named by its pseudonym
    assert peak < BOMB_PEAK_MB and seconds < BOMB_SECONDS, (peak, seconds)


def test_a_well_formed_deflated_dicom_still_reads(tmp_path):
    pytest.importorskip("ecgdatakit")
    from clinical_files import deflated_dicom
    from ecglens.io import read_record

    record = read_record(deflated_dicom(tmp_path / "deflated.dcm"))
    assert record.signal.shape == (12, 5000) and record.file_format == "dicom"


@pytest.mark.parametrize("codes", [60_000, 6_000])
def test_a_philips_xli_bomb_is_refused_from_a_bounded_walk_of_its_lzw_codes(tmp_path, codes):
    pytest.importorskip("ecgdatakit")
    from clinical_files import xli_bomb

    path = xli_bomb(tmp_path / "bomb.xml", n_codes=codes)  # each lead inflates to 768 x codes bytes
    outcome, seconds, peak = _bomb_read(path)
    assert outcome.startswith("RecordTooLarge") and "Philips XLI chunk 1" in outcome, outcome
    assert peak < BOMB_PEAK_MB and seconds < BOMB_SECONDS, (peak, seconds)


def test_an_xli_chunk_declaring_more_bytes_than_the_blob_holds_is_named(tmp_path):
    pytest.importorskip("ecgdatakit")
    from clinical_files import sierra_103_xml, xli_bomb_chunk
    from ecglens.io import RecordError, read_record

    chunk = bytearray(xli_bomb_chunk(2000))
    chunk[0:4] = (10**9).to_bytes(4, "little")
    path = tmp_path / "lying.xml"
    path.write_text(sierra_103_xml(bytes(chunk)))
    with pytest.raises(RecordError, match="declared size 1000000000 is more than"):
        read_record(path)


def test_the_bounded_xli_walk_counts_what_ecgdatakit_decodes():
    pytest.importorskip("ecgdatakit")
    from ecgdatakit.parsing.codecs.lzw import LzwDecoder

    from clinical_files import lzw_codes, xli_bomb_chunk
    from ecglens.io.clinical_bounds import _lzw_length

    rng = np.random.default_rng(3)
    # random streams of defined codes (and the one code about to be defined: LZW's KwKwK case)
    randoms = [np.minimum(rng.integers(0, 256 + np.arange(n)), 1022) for n in (10, 500, 3000)]
    chunks = [xli_bomb_chunk(900), xli_bomb_chunk(2000)[:700]] + [bytes(8) + lzw_codes(codes) for codes in randoms]
    for chunk in chunks:
        body = chunk[8:]
        assert _lzw_length(body, 0, len(body), 10**9) == len(LzwDecoder(body, bits=10).read_all())


@pytest.mark.parametrize("field", ["16:99999999", "16x99999999", "16+99999999"])
def test_a_wfdb_format_skew_frame_or_offset_is_checked_before_wfdb_reads(tmp_path, field):
    (tmp_path / "skew.hea").write_text(
        "\n".join(["skew 12 500 5000"] + [f"skew.dat {field} 1000/mV 16 0 0 0 0 {lead}" for lead in LEAD_NAMES]) + "\n"
    )
    (tmp_path / "skew.dat").write_bytes(bytes(5000 * 12 * 2))  # a 120-kB file
    outcome, seconds, peak = _bomb_read(tmp_path / "skew.hea")
    if "+" in field:
        assert outcome.startswith("RecordError") and "byte offset 99,999,999 is past the end" in outcome, outcome
    elif "x" in field:
        assert outcome.startswith("RecordError") and "truncated signal file" in outcome, outcome
    else:
        assert outcome.startswith("RecordTooLarge") and "samples in all" in outcome, outcome
    assert peak < BOMB_PEAK_MB and seconds < BOMB_SECONDS, (peak, seconds)


@pytest.mark.slow
def test_a_31_mib_csv_is_counted_then_parsed_without_a_python_number_per_sample(tmp_path):
    path = tmp_path / "big.csv"
    row = ",".join(["0.125"] * 12) + "\n"
    with open(path, "w") as handle:
        handle.write(row * (31 * 2**20 // len(row)))
    outcome, seconds, peak = _bomb_read(path, rate=500)
    assert outcome == "read", outcome
    assert peak < BOMB_PEAK_MB and seconds < BOMB_SECONDS, (peak, seconds)


def test_a_csv_over_the_sample_budget_is_refused_from_its_rows_before_parsing(tmp_path):
    from ecglens.io import read_record
    from ecglens.io.limits import value_budget
    from ecglens.io.record import RecordTooLarge

    path = tmp_path / "rows.csv"
    path.write_text((",".join(["0.1"] * 12) + "\n") * 2000)
    with value_budget(20_000), pytest.raises(RecordTooLarge, match="the CSV holds 24,000 samples"):
        read_record(path, sampling_rate_hz=500)


# -- data never altered silently ------------------------------------------------------------------------------------


def test_minus_avr_is_inverted_back_into_avr_and_named(tmp_path, caplog):
    from ecglens.io import read_record

    signal = known_signal()
    names = list(LEAD_NAMES)
    names[3] = "-aVR"
    flipped = signal.copy()
    flipped[3] *= -1
    path = write_wfdb(tmp_path, "cabrera", flipped, lead_names=names)
    with caplog.at_level("WARNING"):
        record = read_record(path)
    np.testing.assert_allclose(record.signal[3], signal[3], atol=1e-6)
    assert np.corrcoef(record.signal[3], signal[3])[0, 1] > 0.999
    assert "-aVR inverted and read as aVR" in caplog.text


def test_a_record_listed_twice_with_different_labels_is_a_named_conflict(tmp_path):
    from ecglens.io import RecordError, read_record
    from ecglens.io.cpsc2018 import scan_cpsc2018

    scipy.io.savemat(tmp_path / "A0001.mat", {"ECG": {"data": known_signal() * 1, "age": 50, "sex": "Male"}})
    scipy.io.savemat(tmp_path / "A0002.mat", {"ECG": {"data": known_signal() * 1, "age": 50, "sex": "Male"}})
    (tmp_path / "REFERENCE.csv").write_text(
        "Recording,First_label,Second_label,Third_label\nA0001,2,,\nA0002,1,,\nA0001,7,,\nA0002,1,,\n"
    )
    refs, issues = scan_cpsc2018(tmp_path)
    assert [r.record_id for r in refs] == ["A0002"]  # an identical repeat is no conflict
    assert len(issues) == 1 and "twice with different labels (2 / 7)" in issues[0].reason
    with pytest.raises(RecordError, match="twice with different labels"):
        read_record(tmp_path / "A0001.mat")


# -- bundles and backgrounds ----------------------------------------------------------------------------------------


def _copy_bundle(tiny_run, tmp_path: Path) -> Path:
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_run.bundle, bundle)
    return bundle


def test_integer_weights_are_refused(tiny_run, tmp_path):
    from safetensors.torch import load_file, save_file

    from ecglens.bundle.meta import BundleError
    from ecglens.bundle.weights import load_model

    bundle = _copy_bundle(tiny_run, tmp_path)
    state = load_file(str(bundle / "model.safetensors"))
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first].to(dtype=__import__("torch").int8)
    save_file(state, str(bundle / "model.safetensors"))
    with pytest.raises(BundleError, match=f"{first} is I8"):
        load_model(bundle)


def test_a_configuration_in_range_stage_by_stage_but_huge_in_all_is_refused(tiny_run, tmp_path):
    from ecglens.bundle.meta import BundleError
    from ecglens.bundle.weights import load_model

    bundle = _copy_bundle(tiny_run, tmp_path)
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["model"].update(layers=[32] * 4, width=256)
    (bundle / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="parameters, more than"):
        load_model(bundle)
    code = (
        "import sys\nfrom ecglens.bundle.meta import BundleError\nfrom ecglens.bundle.weights import load_model\n"
        "try:\n    load_model(sys.argv[1])\n"
        "except BundleError:\n    pass\nstatus = open('/proc/self/status').read()\n"
        "print(int(status.split('VmHWM:')[1].split()[0]) / 1024)"
    )
    run = subprocess.run([sys.executable, "-c", code, str(bundle)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and float(run.stdout) < PEAK_LIMIT_MB, run.stderr[-2000:]


@pytest.mark.parametrize(
    "tensors, message",
    [
        ({"other": np.zeros((2, 12, 100), np.float16)}, "no 'signals' tensor"),
        ({"signals": np.zeros(100, np.float16)}, "has shape"),
        ({"signals": np.full((2, 12, 100), np.nan, np.float16)}, "NaN or infinite"),
        ({"signals": np.zeros((2, 12, 100), bool)}, "holds BOOL"),
    ],
)
def test_a_damaged_shap_background_is_a_named_error_at_start_up(tiny_run, tmp_path, tensors, message):
    from safetensors.numpy import save_file

    from ecglens.bundle.meta import BundleError, read_meta
    from ecglens.explain.inputs import bundle_background

    bundle = _copy_bundle(tiny_run, tmp_path)
    save_file(tensors, str(bundle / "background.safetensors"))
    with pytest.raises(BundleError, match=message):
        bundle_background(read_meta(bundle), bundle=bundle)


# -- names ----------------------------------------------------------------------------------------------------------


def test_a_name_with_terminal_escapes_is_printed_escaped(tiny_run, tmp_path):
    name = "evil\x1b[2J\x1b[H"
    write_challenge_mat(tmp_path, name, known_signal()[:, :100])  # too short: an issue that names the file
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecglens.cli",
            "-q",
            "predict",
            "--checkpoint",
            tiny_run.bundle,
            str(tmp_path / f"{name}.hea"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert run.returncode == 1 and "\x1b" not in run.stderr + run.stdout
    assert "evil\\x1b[2J" in run.stderr


# -- options and the Python API: wrong kinds and ranges are refused before any work ---------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--batch-size", "-1", "x.hea"],
        ["predict", "--batch-size", "0", "x.hea"],
        ["data", "prepare", "x", "--out", "o", "--shard-size", "0"],
        ["data", "prepare", "x", "--out", "o", "--shard-size", "-1"],
        ["data", "prepare", "x", "--out", "o", "--workers", "-3"],
        ["data", "prepare", "x", "--out", "o", "--sampling-rate", "nan"],
        ["data", "prepare", "x", "--out", "o", "--sampling-rate", "inf"],
        ["data", "prepare", "x", "--out", "o", "--sampling-rate", "0"],
        ["data", "prepare", "x", "--out", "o", "--sampling-rate", "-100"],
        ["data", "prepare", "x", "--out", "o", "--sampling-rate", "1e9"],
        ["evaluate", "--checkpoint", ".", "--data", ".", "--bootstrap", "0"],
        ["train", "--data", ".", "--out", "o", "--lr", "nan"],
        ["train", "--data", ".", "--out", "o", "--epochs", "0"],
        ["serve", "--max-in-flight", "0"],
    ],
)
def test_out_of_range_options_are_usage_errors_before_any_work(args, tmp_path, monkeypatch):
    from ecglens.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert not (tmp_path / "o").exists()


def test_the_command_lines_rate_limits_are_the_readers(monkeypatch):
    from ecglens import cli
    from ecglens.io import limits

    assert (cli.RATE.min, cli.RATE.max) == (limits.MIN_RATE_HZ, limits.MAX_RATE_HZ)
    assert (cli.SECONDS.min, cli.SECONDS.max) == (limits.MIN_SECONDS, limits.MAX_SECONDS)


def test_a_config_file_is_held_to_the_same_ranges(tmp_path):
    from ecglens.train.config import train_request

    for text in ("batch_size: -1", "epochs: 0", "lr: .nan", "augmentation_probability: 2", "batch_size: true"):
        (tmp_path / "c.yaml").write_text(f"data: [x]\n{text}\n")
        with pytest.raises(ValueError, match=text.split(":")[0]):
            train_request(tmp_path / "c.yaml")


def test_a_fifo_config_file_is_refused_without_blocking(tmp_path):
    from ecglens.train.config import read_config_file

    os.mkfifo(tmp_path / "c.yaml")
    with pytest.raises(ValueError, match="not a regular file"):
        read_config_file(tmp_path / "c.yaml")


@pytest.mark.parametrize(
    "signal, rate, leads, error",
    [
        (np.zeros((12, 2500), bool), 500, LEAD_NAMES, TypeError),
        (np.zeros((12, 2500), complex), 500, LEAD_NAMES, TypeError),
        (np.zeros((12, 2500)).astype(str), 500, LEAD_NAMES, TypeError),
        (np.zeros((12, 2500)).astype(object), 500, LEAD_NAMES, TypeError),
        (np.zeros((12, 2500)), None, LEAD_NAMES, TypeError),
        (np.zeros((12, 2500)), float("nan"), LEAD_NAMES, ValueError),
        (np.zeros((12, 2500)), 500, list(range(12)), TypeError),
    ],
)
def test_the_python_api_refuses_what_it_would_convert_silently(tiny_run, signal, rate, leads, error):
    import ecglens

    predictor = ecglens.load_bundle(tiny_run.bundle, "cpu")
    with pytest.raises(error, match=r"signal|sampling_rate_hz|lead_names"):
        predictor.predict(signal, rate, leads)


# -- clean exits ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_prepare_takes_its_workers_with_it(tmp_path):
    import signal
    import time

    psutil = pytest.importorskip("psutil")
    from ecglens.synth.cohort import SynthConfig, write_cohort

    write_cohort(
        SynthConfig(n_records=300, sampling_rate_hz=500, seed=5), tmp_path / "records", workers=1, progress=False
    )
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ecglens.cli",
            "-q",
            "--threads",
            "1",
            "data",
            "prepare",
            f"challenge:{tmp_path / 'records'}",
            "--out",
            str(tmp_path / "cache"),
            "--sampling-rate",
            "100",
            "--workers",
            "2",
            "--shard-size",
            "16",
        ]
    )
    parent = psutil.Process(run.pid)
    deadline = time.time() + 60
    while len(parent.children()) < 2 and time.time() < deadline and run.poll() is None:
        time.sleep(0.05)
    workers = parent.children()
    assert len(workers) >= 2, "the pool did not start"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"{len(alive)} worker(s) outlived the killed command"


def test_a_full_disk_never_leaves_half_a_row(tmp_path, monkeypatch):
    from ecglens.predict import Prediction
    from ecglens.report.predictions import PredictionLog

    row = Prediction("r1", "r1.hea", {"AF": 0.5}, ())
    with pytest.raises(OSError, match="stopped after 1 record"), PredictionLog(tmp_path) as log:
        log.add(row)
        real = log.handle.write
        monkeypatch.setattr(log, "handle", _ShortWriter(log.handle, real))
        log.add(row)  # the disk fills in the middle of this row
    text = (tmp_path / "predictions.partial.jsonl").read_text()
    assert text == row.to_json() + "\n"


class _ShortWriter:
    """A file whose next write stores only a few bytes and then finds the disk full."""

    def __init__(self, handle, write):
        self._handle, self._write, self._calls = handle, write, 0

    def write(self, data: bytes) -> int:
        self._calls += 1
        if self._calls == 1:
            return self._write(data[:7])
        raise OSError(28, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._handle, name)


def test_a_failed_predict_leaves_earlier_results_in_place(tiny_run, tmp_path):
    from ecglens.cli import main

    write_challenge_mat(tmp_path, "good", known_signal())
    out = tmp_path / "out"
    assert main(["-q", "predict", "--checkpoint", tiny_run.bundle, str(tmp_path / "good.hea"), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert json.loads((out / "predictions.jsonl").read_text().splitlines()[0])["record_id"] == "good"
    (tmp_path / "bad.hea").write_text("garbage\n")
    assert main(["-q", "predict", "--checkpoint", tiny_run.bundle, str(tmp_path / "bad.hea"), "--out", str(out)]) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".out.staging-*"))


# -- first contact --------------------------------------------------------------------------------------------------


def test_explain_on_a_cache_without_test_records_is_one_clear_line(tiny_run, tmp_path, capsys):
    from ecglens.bundle.meta import read_meta
    from ecglens.cli import main
    from ecglens.data import split_caches
    from ecglens.data.cache import build_cache, open_caches
    from ecglens.io import parse_source

    (tmp_path / "records").mkdir()
    write_challenge_mat(tmp_path / "records", "only", known_signal(1000))
    build_cache([parse_source(f"challenge:{tmp_path / 'records'}")], tmp_path / "cache", 250, workers=1, progress=False)
    meta = read_meta(tiny_run.bundle)
    assert not split_caches(open_caches([tmp_path / "cache"], 250), meta.split).test  # one record: not in test
    code = main(
        [
            "-q",
            "explain",
            "gradcam",
            "--checkpoint",
            tiny_run.bundle,
            "--data",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "no test-split record to explain" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_predict_reads_a_dat_through_its_header_once(tiny_run, tmp_path):
    from ecglens.predict import find_record_files

    header = write_wfdb(tmp_path, "rec", known_signal(2500))
    dat = header.with_suffix(".dat")
    assert find_record_files([dat]) == [header]
    assert find_record_files([header, dat]) == [header]
    from ecglens.io import RecordError, read_record

    assert read_record(dat).record_id == "rec"
    (tmp_path / "lonely.dat").write_bytes(b"\0" * 100)
    with pytest.raises(RecordError, match="needs its header"):
        read_record(tmp_path / "lonely.dat")


def test_the_starters_onnx_export_lives_in_the_users_cache(monkeypatch, tmp_path):
    from ecglens.bundle.meta import starter_path
    from ecglens.predict import Predictor, onnx_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    target = onnx_file("starter")
    assert target.parent.parent == tmp_path / "cache" / "ecglens" and target.name == "model.onnx"
    assert not str(target).startswith(str(starter_path()))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "cache")):
        Predictor("starter", "cpu", engine="onnx")


def test_explain_evaluate_and_export_take_the_starter(tmp_path):
    from ecglens.cli import main

    record = write_wfdb(tmp_path, "rec", known_signal(5000), fs=500)
    assert (
        main(
            [
                "-q",
                "explain",
                "gradcam",
                "--checkpoint",
                "starter",
                "--records",
                str(record),
                "--out",
                str(tmp_path / "o"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert list((tmp_path / "o").glob("rec_*_gradcam.png"))


def test_a_fifo_in_place_of_the_ptbxl_table_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "ptbxl_database.csv")
    for command in (
        ["data", "prepare", f"ptbxl:{tmp_path}", "--out", str(tmp_path / "c"), "--sampling-rate", "100"],
        ["data", "summary", f"ptbxl:{tmp_path}", "--out", str(tmp_path / "s")],
    ):
        run = subprocess.run(
            [sys.executable, "-m", "ecglens.cli", "-q", *command], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 1 and "not a regular file" in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_serve_answers_each_bomb_and_bad_scale_with_a_named_json_error(tiny_run, tmp_path):
    pytest.importorskip("ecgdatakit")
    import time

    from fastapi.testclient import TestClient

    from clinical_files import aecg_xml, deflated_dicom_bomb, xli_bomb
    from ecglens.serve import ServeConfig, create_app

    (tmp_path / "nan.xml").write_text(aecg_xml(n=1000, scale="NaN"))
    header = "\n".join(
        ["skew 12 500 5000"] + [f"skew.dat 16:99999999 1000/mV 16 0 0 0 0 {lead}" for lead in LEAD_NAMES]
    )
    uploads = {
        "deflated DICOM": ([deflated_dicom_bomb(tmp_path / "bomb.dcm")], 413, "record_too_large"),
        "XLI": ([xli_bomb(tmp_path / "bomb.xml")], 413, "record_too_large"),
        "NaN scale": ([tmp_path / "nan.xml"], 422, "unreadable_record"),
    }
    with TestClient(create_app(ServeConfig(tiny_run.bundle, "cpu")), base_url="http://127.0.0.1") as client:
        for name, (paths, status, code) in uploads.items():
            started = time.perf_counter()
            response = client.post("/api/predict", files=[("files", (p.name, p.read_bytes())) for p in paths])
            assert time.perf_counter() - started < BOMB_SECONDS, name
            assert response.status_code == status and response.json()["error"]["kind"] == code, (name, response.text)
        response = client.post(
            "/api/predict", files=[("files", ("skew.hea", header.encode())), ("files", ("skew.dat", bytes(120_000)))]
        )
    assert response.status_code == 413 and "skew" in response.json()["error"]["message"], response.text
