"""Whether a record holds repeatable heartbeats at all, and a second estimate of its beat rate.

The gate runs before any measurement or decision: noise, a powerline hum or a wandering baseline has no
repeatable QRS complexes, and whatever a model or a delineator makes of it is meaningless. It needs scipy only
(no neurokit2), about 10 ms per 10-s record.

1. Band-pass 0.5-40 Hz (2nd-order Butterworth, forward and backward): the QRS band, without baseline or hum.
2. The summed absolute slope over the leads, smoothed over 50 ms: high where the leads change together, at
   each QRS complex.
3. Its peaks at least `REFRACTORY_S` apart and above a third of its 99th percentile: the beats.
4. Each beat's +-60 ms window on every lead, correlated with the median beat (Pearson over all leads at once):
   the median correlation is the record's repeatability. A QRS complex looks alike from beat to beat in
   every lead; noise does not.
5. The envelope at the beats over its median over the record: the QRS prominence. A QRS complex is the
   steepest part of a beat; a sinusoid (a hum, a test tone) or noise is as steep everywhere.

A record is not interpretable with fewer than `MIN_BEATS` beats, a median QRS amplitude (peak to peak, the
largest lead) under `MIN_QRS_MV`, a repeatability under `MIN_REPEATABILITY` or a QRS prominence under
`MIN_PROMINENCE`. On the 2,064 real records of the project's sample data (PTB-XL, CPSC 2018, the Challenge's,
LUDB, six clinical files) the lowest values are 0.58 (repeatability), 0.64 mV and 6.6 (prominence); Gaussian
noise gives 0.14 and 1.2, a 50-Hz hum 1.0 (``python benchmarks/bench_quality.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as scipy_signal

BAND_HZ = (0.5, 40.0)
REFRACTORY_S = 0.2
"""The shortest RR interval taken as two beats (300 bpm)."""
HALF_WINDOW_S = 0.06
SMOOTH_S = 0.05
MIN_BEATS = 2
MIN_QRS_MV = 0.3
MIN_REPEATABILITY = 0.35
MIN_PROMINENCE = 2.5
RATE_RANGE_BPM = (24.0, 300.0)
"""The rates the second estimate looks for (autocorrelation lags of 0.2 to 2.5 s)."""


@dataclass(frozen=True)
class BeatQuality:
    """Whether a record holds repeatable beats (`assess_beats`).

    Attributes:
        beats: the beats found (sample positions of the slope's peaks).
        repeatability: the median correlation of the beats' QRS windows with the median beat (-1 to 1; 0 with
            fewer than two beats).
        qrs_amplitude_mv: the median over beats of the largest lead's peak-to-peak amplitude in the QRS window.
        qrs_prominence: the slope envelope's median at the beats over its median over the record.
        interpretable: whether the record passes the gate.
        reason: why not (empty when it passes).
    """

    beats: tuple[int, ...]
    repeatability: float
    qrs_amplitude_mv: float
    qrs_prominence: float
    interpretable: bool
    reason: str = ""


def band_passed(signal: np.ndarray, sampling_rate_hz: float) -> np.ndarray:
    """``signal`` (leads x samples, mV) band-passed to 0.5-40 Hz (the upper edge kept under Nyquist)."""
    low, high = BAND_HZ
    high = min(high, 0.45 * sampling_rate_hz)
    sos = scipy_signal.butter(2, (low, high), btype="bandpass", fs=sampling_rate_hz, output="sos")
    if signal.shape[-1] <= 3 * (2 * len(sos) + 1):  # too short for filtfilt's padding: no beats anyway
        return signal - signal.mean(axis=-1, keepdims=True)
    return scipy_signal.sosfiltfilt(sos, signal, axis=-1)


def slope_envelope(filtered: np.ndarray, sampling_rate_hz: float) -> np.ndarray:
    """The summed absolute slope over the leads (mV/s), smoothed over `SMOOTH_S`: one value per sample."""
    slope = np.abs(np.diff(filtered, axis=-1, prepend=filtered[..., :1])).sum(axis=0) * sampling_rate_hz
    width = max(round(SMOOTH_S * sampling_rate_hz), 1)
    return np.convolve(slope, np.ones(width) / width, mode="same")


def find_beats(envelope: np.ndarray, sampling_rate_hz: float) -> np.ndarray:
    """The envelope's peaks at least `REFRACTORY_S` apart and above a third of its 99th percentile."""
    if not envelope.size:
        return np.zeros(0, np.int64)
    height = np.percentile(envelope, 99) / 3
    if not height > 0:
        return np.zeros(0, np.int64)
    distance = max(int(REFRACTORY_S * sampling_rate_hz), 1)
    peaks, _ = scipy_signal.find_peaks(envelope, height=height, distance=distance)
    return peaks.astype(np.int64)


def assess_beats(signal: np.ndarray, sampling_rate_hz: float) -> BeatQuality:
    """Whether ``signal`` (leads x samples, mV) holds repeatable beats of plausible amplitude (see the module)."""
    signal = np.asarray(signal, np.float64)
    if signal.ndim != 2 or not signal.size or not np.isfinite(signal).all():
        return BeatQuality((), 0.0, 0.0, 0.0, False, "no beats found (no finite signal)")
    filtered = band_passed(signal, sampling_rate_hz)
    envelope = slope_envelope(filtered, sampling_rate_hz)
    peaks = find_beats(envelope, sampling_rate_hz)
    half = max(round(HALF_WINDOW_S * sampling_rate_hz), 1)
    n = signal.shape[1]
    peaks = peaks[(peaks >= half) & (peaks < n - half)]
    beats = tuple(int(p) for p in peaks)
    if len(peaks) < MIN_BEATS:
        return BeatQuality(beats, 0.0, 0.0, 0.0, False, f"no repeatable beats (fewer than {MIN_BEATS} QRS complexes)")
    windows = np.stack([filtered[:, p - half : p + half + 1] for p in peaks])  # beats x leads x window
    windows = windows - windows.mean(axis=2, keepdims=True)
    amplitude = float(np.median(np.ptp(windows, axis=2).max(axis=1)))
    repeatability = _repeatability(windows)
    typical = float(np.median(envelope))
    prominence = float(np.median(envelope[peaks]) / typical) if typical > 0 else float("inf")
    reason = ""
    if amplitude < MIN_QRS_MV:
        reason = f"no QRS complexes: median QRS amplitude {amplitude:.2f} mV (under {MIN_QRS_MV:g} mV)"
    elif repeatability < MIN_REPEATABILITY:
        reason = (
            f"no repeatable beats: QRS windows correlate {repeatability:.2f} with the median beat "
            f"(under {MIN_REPEATABILITY:g}): noise, not an ECG?"
        )
    elif prominence < MIN_PROMINENCE:
        reason = (
            f"no QRS complexes: the beats are no steeper than the rest of the record (prominence {prominence:.1f}, "
            f"under {MIN_PROMINENCE:g}): a hum, a test tone or noise, not an ECG?"
        )
    return BeatQuality(beats, repeatability, amplitude, prominence, not reason, reason)


def _repeatability(windows: np.ndarray) -> float:
    """The median Pearson correlation of each beat's windows (all leads at once) with the median beat."""
    flat = windows.reshape(len(windows), -1)
    template = np.median(flat, axis=0)
    template = template - template.mean()
    centred = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1) * np.linalg.norm(template)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.where(norms > 0, centred @ template / np.where(norms > 0, norms, 1), 0.0)
    return float(np.median(correlation))


def spectral_rate_bpm(signal: np.ndarray, sampling_rate_hz: float) -> float | None:
    """A second estimate of the beat rate (bpm), independent of any beat detector: the lag of the first clear
    peak of the slope envelope's autocorrelation (0.2-2.5 s), the first peak reaching half the highest one, so
    that a rhythm is never read at half its rate. None when the envelope has no periodicity."""
    signal = np.asarray(signal, np.float64)
    if signal.ndim != 2 or signal.shape[1] < 2 or not np.isfinite(signal).all():
        return None
    envelope = slope_envelope(band_passed(signal, sampling_rate_hz), sampling_rate_hz)
    envelope = envelope - envelope.mean()
    n = len(envelope)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(envelope, size)
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2, size)[:n]
    if not autocorrelation[0] > 0:
        return None
    autocorrelation = autocorrelation / autocorrelation[0]
    low = int(60 / RATE_RANGE_BPM[1] * sampling_rate_hz)
    high = min(int(60 / RATE_RANGE_BPM[0] * sampling_rate_hz), n - 1)
    if high <= low + 2:
        return None
    lags, _ = scipy_signal.find_peaks(autocorrelation[low : high + 1])
    if not len(lags):
        return None
    values = autocorrelation[low + lags]
    best = float(values.max())
    if best < 0.1:
        return None
    first = int(lags[np.argmax(values >= 0.5 * best)]) + low
    return 60 * sampling_rate_hz / first


def second_rate_bpm(signal: np.ndarray, sampling_rate_hz: float) -> float | None:
    """A heart rate (bpm) made without neurokit2, to check its detector's: the mean of two estimates that must
    agree within 10 % (else None: no check), the slope envelope's periodicity (`spectral_rate_bpm`) and the
    median RR interval of the gate's own beats (`assess_beats`, 0.2 s apart at least). Either alone disagrees
    with neurokit2 on 2 % of the real sample records; together on 2 of 675 (0.3 %), both records of a slow
    rhythm (sinus bradycardia in LUDB 127, bradycardia in the Challenge's Q1240) whose tall T waves the detector
    counted as beats."""
    spectral = spectral_rate_bpm(signal, sampling_rate_hz)
    if spectral is None:
        return None
    beats = np.asarray(assess_beats(signal, sampling_rate_hz).beats)
    if len(beats) < MIN_BEATS + 1:
        return None
    from_beats = 60 * sampling_rate_hz / float(np.median(np.diff(beats)))
    if rates_disagree(spectral, from_beats, 0.1):
        return None
    return (spectral + from_beats) / 2


def rates_disagree(detected_bpm: float | None, second_bpm: float | None, tolerance: float = 0.2) -> bool:
    """Whether two rate estimates differ by more than ``tolerance`` (a fraction of the larger)."""
    if detected_bpm is None or second_bpm is None:
        return False
    return abs(detected_bpm - second_bpm) > tolerance * max(detected_bpm, second_bpm)
