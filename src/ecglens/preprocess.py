"""From a record to the model's input: resampling, lead selection and the input-length policy.

`model_input` is the one function that turns a record's signal into what a model scores. Prediction,
evaluation, explanation, the reports and the demo all call it, so a figure always explains the input
that was scored. Training draws random windows of the same records (`random_window`).

Input-length policies (`LengthPolicy`):

- ``original``: the study's. The last ``seconds`` (30 s) of every record, zero-padded at the front;
  training and evaluation alike.
- ``crop`` (default, chosen from the measurements in ``benchmarks/bench_training.py``): a random
  ``seconds``-long window (10 s) of each record for training, and the whole record, unpadded, at
  evaluation. The network is fully convolutional, so any length can be scored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ecglens.leads import lead_order

POLICIES = ("crop", "original")


@dataclass(frozen=True)
class LengthPolicy:
    """How records of varying length become model inputs."""

    name: str = "crop"
    seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(f"unknown input-length policy {self.name!r}; choose from {', '.join(POLICIES)}")
        if not self.seconds > 0:
            raise ValueError("policy seconds must be positive")

    @classmethod
    def original(cls) -> LengthPolicy:
        """The study's policy: the last 30 s, zero-padded at the front."""
        return cls("original", 30.0)

    def window(self, sampling_rate_hz: float) -> int:
        """The policy's window length in samples at a rate."""
        return round(self.seconds * sampling_rate_hz)


@dataclass(frozen=True)
class InputSpec:
    """What a model takes: its leads in order, its sampling rate and its input-length policy."""

    lead_names: tuple[str, ...]
    sampling_rate_hz: float
    policy: LengthPolicy


def resample_ratio(source_rate_hz: float, target_rate_hz: float) -> tuple[int, int]:
    """The (up, down) integer pair for polyphase resampling from one rate to another."""
    if not (source_rate_hz > 0 and target_rate_hz > 0):
        raise ValueError(f"sampling rates must be positive (got {source_rate_hz} and {target_rate_hz})")
    ratio = Fraction(target_rate_hz / source_rate_hz).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def resample(signal: np.ndarray, source_rate_hz: float, target_rate_hz: float) -> np.ndarray:
    """Resample leads x samples with scipy's anti-aliasing polyphase filter; float32 out.

    The output has ``ceil(n * up / down)`` samples; a signal already at the target rate is
    returned unchanged (as float32).
    """
    up, down = resample_ratio(source_rate_hz, target_rate_hz)
    if up == down:
        return np.asarray(signal, dtype=np.float32)
    from scipy.signal import resample_poly  # scipy.signal takes half a second to import: loaded when used

    return resample_poly(np.asarray(signal, dtype=np.float64), up, down, axis=-1).astype(np.float32)


def apply_policy(signal: np.ndarray, policy: LengthPolicy, sampling_rate_hz: float) -> np.ndarray:
    """The evaluation-time length policy on a signal already at the model's rate and leads.

    ``crop``: the whole record; ``original``: the last ``policy.seconds``, zero-padded at the front.
    Returns a new float32 array, leads x samples.
    """
    if policy.name == "original":
        window = policy.window(sampling_rate_hz)
        out = np.zeros((signal.shape[0], window), np.float32)
        kept = min(signal.shape[1], window)
        out[:, window - kept :] = signal[:, signal.shape[1] - kept :]
        return out
    return np.array(signal, dtype=np.float32)


def model_input(signal: np.ndarray, sampling_rate_hz: float, lead_names: Sequence[str], spec: InputSpec) -> np.ndarray:
    """The input a model scores for a record: its leads picked and ordered, resampled, the policy applied.

    Args:
        signal: leads x samples in mV.
        sampling_rate_hz: rate of ``signal``.
        lead_names: names of the rows of ``signal`` (any order, any spelling `ecglens.leads` knows).
        spec: the model's leads, rate and length policy (a bundle's `BundleMeta.input_spec`).

    Returns:
        float32 array, ``len(spec.lead_names)`` x samples at ``spec.sampling_rate_hz``.
    """
    rows = lead_order(list(lead_names), spec.lead_names)
    picked = signal if rows == list(range(signal.shape[0])) else np.asarray(signal)[rows]
    resampled = resample(picked, sampling_rate_hz, spec.sampling_rate_hz)
    return apply_policy(resampled, spec.policy, spec.sampling_rate_hz)


def random_window(
    signal: np.ndarray, policy: LengthPolicy, sampling_rate_hz: float, rng: np.random.Generator
) -> np.ndarray:
    """A training input: a random ``policy.seconds`` window under ``crop`` (the record, front-padded, when
    it is shorter), or the evaluation input under ``original``."""
    window = policy.window(sampling_rate_hz)
    n_samples = signal.shape[1]
    if policy.name == "original" or n_samples <= window:
        return apply_policy(signal, LengthPolicy("original", policy.seconds), sampling_rate_hz)
    start = int(rng.integers(0, n_samples - window + 1))
    return np.array(signal[:, start : start + window], dtype=np.float32)


def batches_by_length(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Indices grouped into batches of equal length (no padding is ever computed on), in a fixed order."""
    sizes = np.asarray(lengths)
    for length in np.unique(sizes):
        members = np.flatnonzero(sizes == length)
        for start in range(0, len(members), batch_size):
            yield members[start : start + batch_size]


def fit_length(signal: np.ndarray, n_samples: int) -> np.ndarray:
    """A signal cut or cyclically repeated to exactly ``n_samples`` (backgrounds for inputs of any length).

    Repeating keeps the background a real recording everywhere rather than zeros at the end.
    """
    if signal.shape[1] >= n_samples:
        return np.array(signal[:, :n_samples], dtype=np.float32)
    return np.take(np.asarray(signal, np.float32), np.arange(n_samples) % signal.shape[1], axis=1)


@dataclass(frozen=True)
class ModelInput:
    """A record exactly as a model scores it (made by `model_input`), with what is known about it.

    Attributes:
        record_id: the record's id (the cache's id, or the file's stem).
        signal: float32, the model's leads x samples at its rate, the length policy applied.
        source: file the record was read from.
        labels: multi-hot true classes in the model's class order, when the record carries labels.
        evidence: ground-truth evidence masks per class name (synthetic records), aligned with ``signal``.
    """

    record_id: str
    signal: np.ndarray
    source: str = ""
    labels: np.ndarray | None = None
    evidence: dict[str, np.ndarray] | None = None

    @property
    def n_samples(self) -> int:
        """Samples per lead of the input."""
        return int(self.signal.shape[1])


CLINICAL_BAND_HZ = (0.5, 40.0)
"""The pass band of an ECG machine's diagnostic filter as ecglens applies it."""


def clinical_filter(
    signal: np.ndarray, sampling_rate_hz: float, band_hz: tuple[float, float] = CLINICAL_BAND_HZ
) -> np.ndarray:
    """A zero-phase 4th-order Butterworth band-pass (the upper edge clipped to 0.45 x the rate), per lead."""
    low, high = band_hz[0], min(band_hz[1], 0.45 * sampling_rate_hz)
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [low, high], btype="bandpass", fs=sampling_rate_hz, output="sos")
    return sosfiltfilt(sos, np.asarray(signal, np.float64), axis=-1).astype(np.float32)


DISPLAY_BAND_HZ = (0.5, 150.0)
"""The pass band of a page's display filter, applied forwards and backwards (zero phase). The AHA allows a
low-frequency cutoff up to 0.67 Hz for a filter without phase distortion and asks 150 Hz of a diagnostic ECG
(Kligfield et al., Circulation 2007;115:1306-1324); 0.5 Hz keeps more of the ST segment (a 0.2-mV and a 0.4-mV
ST elevation of a shared Philips file read 5 % lower, against 13 % at 0.67 Hz) while it still takes a 3-mV,
0.1-Hz drift down to 0.04 mV. The upper edge is clipped to 0.45 x the rate."""


def baseline_drift_mv(signal: np.ndarray, sampling_rate_hz: float) -> np.ndarray:
    """How far each lead's baseline moves over the record (mV): the range of its median over each whole second
    (0 for a record shorter than 2 s)."""
    per_second = round(sampling_rate_hz)
    seconds = signal.shape[1] // per_second if per_second else 0
    if seconds < 2:
        return np.zeros(signal.shape[0])
    cut = np.asarray(signal[:, : seconds * per_second], np.float64).reshape(signal.shape[0], seconds, per_second)
    return np.ptp(np.median(cut, axis=2), axis=1)


def display_filter(signal: np.ndarray, sampling_rate_hz: float) -> np.ndarray:
    """A recording as a page shows it (never as a model scores it): a zero-phase 2nd-order Butterworth band-pass
    (4th order in effect, run both ways) over `DISPLAY_BAND_HZ`, per lead."""
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(signal, np.float64)
    high = min(DISPLAY_BAND_HZ[1], 0.45 * sampling_rate_hz)
    if x.shape[1] > 3 * 12:
        sos = butter(2, [DISPLAY_BAND_HZ[0], high], btype="bandpass", fs=sampling_rate_hz, output="sos")
        x = sosfiltfilt(sos, x, axis=-1)
    return x.astype(np.float32)
