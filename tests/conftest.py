"""Shared fixtures: files the tests write themselves, and the optional shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb
from hypothesis import settings

from ecglens.leads import LEAD_NAMES

REPO_ROOT = Path(__file__).resolve().parents[1]

# Pseudonymous ids (`ecglens.util.pseudonym`) under one fixed key in every test and the commands they run, so a
# test can name the id a file will get; the machine's own key file is never made or read by the suite.
os.environ["ECGLENS_ID_SALT"] = "ecglens-tests"

# Property tests keep no example database: a failure found once is not replayed from a hidden `.hypothesis/`
# folder on every later run; what a fuzzer finds becomes an `@example` beside its test once fixed. CI (CI=true)
# also derandomizes, so a clean checkout passes or fails the same way every time; a developer's run draws fresh
# examples (`pytest --hypothesis-seed=N` repeats one).
settings.register_profile("ecglens", database=None, print_blob=True)
settings.register_profile("ci", settings.get_profile("ecglens"), derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "ecglens"))


def shared_data_dir() -> Path | None:
    """``$ECGLENS_DATA`` or ``../shared/data`` next to the repository, when present."""
    candidate = Path(os.environ.get("ECGLENS_DATA", REPO_ROOT.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("real sample data absent: set ECGLENS_DATA or place it at ../shared/data")
    return path


def qrs_spikes(n_samples: int, n_leads: int = 12, period: int = 150) -> np.ndarray:
    """QRS-like spikes (leads x samples, mV): a narrow Gaussian every ``period`` samples, its size and sign per
    lead, so that a test signal holds repeatable beats and passes the quality gate (`ecglens.waves.beats`). Every
    150 samples is 200 bpm at 500 Hz and 40 bpm at 100 Hz, both within the rates a record may have."""
    t = np.arange(n_samples)
    shape = np.zeros(n_samples)
    for centre in range(period // 3, n_samples, period):
        shape += np.exp(-0.5 * ((t - centre) / 2.5) ** 2)
    size = (0.8 + 0.05 * np.arange(n_leads)) * np.where(np.arange(n_leads) % 3 == 2, -1, 1)
    return size[:, None] * shape[None, :]


def known_signal(n_samples: int = 1000, n_leads: int = 12, seed: int = 0) -> np.ndarray:
    """A reproducible leads x samples signal in mV, quantised to 1 uV (exact in 16-bit at gain 1000): a sine,
    noise and QRS-like spikes (`qrs_spikes`), so that it holds repeatable beats."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples)
    wave = 0.8 * np.sin(2 * np.pi * t[None, :] / 250 + np.arange(n_leads)[:, None])
    signal = wave + rng.normal(0, 0.05, (n_leads, n_samples)) + qrs_spikes(n_samples, n_leads)
    return np.round(signal, 3)


def write_wfdb(
    directory: Path, name: str, signal: np.ndarray, fs: float = 500, comments=(), lead_names=LEAD_NAMES
) -> Path:
    """Write a WFDB record with wfdb.wrsamp (format 16, gain 1000/mV)."""
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * len(lead_names),
        sig_name=list(lead_names),
        p_signal=signal.T,
        fmt=["16"] * len(lead_names),
        adc_gain=[1000.0] * len(lead_names),
        baseline=[0] * len(lead_names),
        comments=list(comments),
        write_dir=str(directory),
    )
    return directory / f"{name}.hea"


def write_challenge_mat(
    directory: Path,
    name: str,
    signal: np.ndarray,
    fs: int = 500,
    dx: str = "164889003",
    age: str = "60",
    sex: str = "Male",
    lead_names=LEAD_NAMES,
    extension_in_name: bool = False,
    gain: float = 1000.0,
    baseline: int = 0,
) -> Path:
    """Write a Challenge-style record: MAT v4 'val' int16 matrix plus a hand-written header."""
    values = np.round(signal * gain + baseline).astype(np.int16)
    scipy.io.savemat(directory / f"{name}.mat", {"val": values}, format="4")
    record_name = f"{name}.mat" if extension_in_name else name
    lines = [f"{record_name} {len(lead_names)} {fs} {signal.shape[1]}"]
    for lead, row in zip(lead_names, values, strict=True):
        lines.append(f"{name}.mat 16+24 {gain:g}({baseline})/mV 16 0 {row[0]} 0 0 {lead}")
    lines += [f"#Age: {age}", f"#Sex: {sex}", f"#Dx: {dx}", "#Rx: Unknown"]
    (directory / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return directory / f"{name}.hea"


def write_cpsc_mat(directory: Path, name: str, signal: np.ndarray, age=55, sex="Female") -> Path:
    """Write an original CPSC 2018 .mat (struct ECG with sex, age, data)."""
    struct = {"sex": np.array([sex]), "age": np.array([[age]]), "data": signal}
    scipy.io.savemat(directory / f"{name}.mat", {"ECG": struct})
    return directory / f"{name}.mat"


def write_bad_corpus(directory: Path) -> dict[str, str]:
    """One good record and one of each kind of bad record; returns name -> expected reason pattern."""
    write_challenge_mat(directory, "good", known_signal())
    (directory / "corrupt.hea").write_text("corrupt twelve 500 abc\n")
    write_wfdb(directory, "truncated", known_signal())
    data = directory / "truncated.dat"
    data.write_bytes(data.read_bytes()[:1000])
    nan_signal = known_signal()
    write_challenge_mat(directory, "nan", nan_signal)
    values = scipy.io.loadmat(directory / "nan.mat")["val"].astype(float)
    values[3, 10:20] = np.nan
    scipy.io.savemat(directory / "nan.mat", {"val": values}, format="4")
    write_challenge_mat(directory, "elevenleads", known_signal(n_leads=11), lead_names=LEAD_NAMES[:11])
    write_challenge_mat(directory, "badage", known_signal(), age="sixty")
    (directory / "empty.hea").write_text("")
    return {
        "corrupt": "signal count 'twelve'",
        "truncated": "truncated signal file: 1000 bytes",
        "nan": "NaN/infinite sample.*aVR",
        "elevenleads": "missing lead.*V6",
        "badage": "age 'sixty' is not a number",
        "empty": "empty header",
    }


def page_fails_for(monkeypatch, record_id: str, message: str = "the page could not be drawn") -> None:
    """Make the one-page PDF fail, with ``message``, for the record ``record_id`` only (the others are drawn)."""
    from ecglens.report import pdf

    drawn = pdf.record_pdf

    def record_pdf(scored, *args, **kwargs):
        if scored.prediction.record_id == record_id:
            raise RuntimeError(message)
        return drawn(scored, *args, **kwargs)

    monkeypatch.setattr(pdf, "record_pdf", record_pdf)


class TinyRun:
    """A one-epoch resnet_tiny bundle on 24 Challenge records (cached at 250 Hz), shared by the test modules."""

    def __init__(self, root: Path):
        from ecglens.data.cache import build_cache
        from ecglens.io import parse_source
        from ecglens.train.loop import TrainConfig, fit

        self.data = root / "data"
        self.data.mkdir()
        for i in range(24):
            write_challenge_mat(
                self.data, f"R{i:02d}", known_signal(1000, seed=i), dx="164889003" if i % 2 else "426783006"
            )
        self.cache = root / "cache"
        build_cache([parse_source(f"challenge:{self.data}")], self.cache, 250, workers=1, progress=False)
        result = fit(
            [self.cache], root / "run", TrainConfig(model="resnet_tiny", epochs=1, batch_size=8), progress=False
        )
        self.bundle = result.best_bundle


class Killed(Exception):
    """Stands for a kill at the end of an epoch."""


def fit_killed_after_first_epoch(cache, out, config):
    """Train until the end of epoch 1, then stop as a kill would (the run directory keeps its resume state)."""
    from ecglens.train.loop import fit

    def kill(epoch):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        fit([cache], out, config, progress=False, on_epoch=kill)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    return TinyRun(tmp_path_factory.mktemp("tiny_run"))


class RunningServer:
    """A real uvicorn server on a free 127.0.0.1 port, in a thread (for load and browser tests)."""

    def __init__(self, app):
        import socket
        import threading
        import time

        import uvicorn

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        assert self.server.started, "the server did not start"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
