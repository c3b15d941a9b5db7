"""ECG noise models, shared by the synthetic cohort (`ecglens.synth`) and the robustness perturbations
(`ecglens.perturb`): one set of generators, each returning leads x samples of unit-free noise.

Every generator draws from the ``rng`` it is given, in a fixed order, so a seeded caller gets the same noise
every time. `scale_to_snr` scales a noise to a signal-to-noise ratio over the whole record (all leads).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt


def baseline_wander(
    rng: np.random.Generator, n_leads: int, n: int, sampling_rate_hz: float, band_hz: tuple[float, float] = (0.15, 0.35)
) -> np.ndarray:
    """Respiration-like baseline wander: one sinusoid of a frequency drawn in ``band_hz`` and a random phase,
    with a per-lead amplitude in [0.5, 1]."""
    t = np.arange(n) / sampling_rate_hz
    amplitude = rng.uniform(0.5, 1.0, n_leads)
    return np.outer(amplitude, np.sin(2 * np.pi * rng.uniform(*band_hz) * t + rng.uniform(0, 6)))


def powerline(
    rng: np.random.Generator, n_leads: int, n: int, sampling_rate_hz: float, mains_hz: float = 50.0, harmonics: int = 1
) -> np.ndarray:
    """Mains interference at ``mains_hz`` and its first ``harmonics`` multiples (amplitude 1/k for the k-th)
    below 0.4 x the sampling rate, with a per-lead amplitude in [0.2, 0.6]."""
    t = np.arange(n) / sampling_rate_hz
    tone = np.zeros(n)
    for k in range(1, harmonics + 1):
        frequency = min(k * mains_hz, sampling_rate_hz / 2.5) if k == 1 else k * mains_hz
        if k > 1 and frequency >= sampling_rate_hz / 2.5:
            break
        tone = tone + np.sin(2 * np.pi * frequency * t + (0.0 if k == 1 else rng.uniform(0, 6))) / k
    return tone[None, :] * rng.uniform(0.2, 0.6, (n_leads, 1))


def muscle(
    rng: np.random.Generator, n_leads: int, n: int, sampling_rate_hz: float, band_hz: tuple[float, float] | None = None
) -> np.ndarray:
    """EMG-like muscle noise: white noise smoothed by a 3-sample moving average, or band-limited to
    ``band_hz`` (a 4th-order Butterworth band-pass, zero phase, clipped below Nyquist) when given."""
    noise = rng.normal(0, 1, (n_leads, n))
    if band_hz is None:
        kernel = np.ones(3) / 3
        return np.apply_along_axis(lambda x: np.convolve(x, kernel, "same"), 1, noise)
    low, high = band_hz[0], min(band_hz[1], 0.45 * sampling_rate_hz)
    sos = butter(4, [low, high], btype="bandpass", fs=sampling_rate_hz, output="sos")
    return sosfiltfilt(sos, noise, axis=1)


def electrode_motion(
    rng: np.random.Generator, n_leads: int, n: int, sampling_rate_hz: float, events_per_10s: float = 3.0
) -> np.ndarray:
    """Electrode-motion artefact: a few large, slow transients (0.2-1 s Gaussian bumps with a baseline step
    after them), as a loose electrode moving on the skin, each in a random subset of leads."""
    out = np.zeros((n_leads, n))
    t = np.arange(n)
    for _ in range(max(1, rng.poisson(events_per_10s * n / sampling_rate_hz / 10))):
        centre, width = rng.uniform(0, n), rng.uniform(0.2, 1.0) * sampling_rate_hz / 2
        shape = np.exp(-0.5 * ((t - centre) / width) ** 2) + 0.3 * (t > centre)
        leads = rng.random(n_leads) < 0.5
        out[leads] += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0) * shape
    return out


def gaussian(rng: np.random.Generator, n_leads: int, n: int, sampling_rate_hz: float) -> np.ndarray:
    """White Gaussian noise."""
    return rng.normal(0, 1, (n_leads, n))


def scale_to_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` scaled so that 20 log10(RMS(signal) / RMS(noise)) is ``snr_db`` over the whole record."""
    noise_rms = np.sqrt(np.mean(noise**2))
    if noise_rms == 0:
        return noise
    return noise * (np.sqrt(np.mean(signal**2)) / noise_rms) * 10 ** (-snr_db / 20)


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """The signal-to-noise ratio of a signal and an added noise, in dB over the whole record."""
    return float(20 * np.log10(np.sqrt(np.mean(signal**2)) / np.sqrt(np.mean(noise**2))))
