"""Sum-of-Gaussians beat model (after ECGSYN, McSharry et al. 2003) on 8 independent leads.

Waves are Gaussians in time around each R peak, with per-lead amplitudes for I, II and V1-V6; the
other limb leads follow from Einthoven's and Goldberger's relations (III = II - I, aVR = -(I + II)/2,
aVL = I - II/2, aVF = II - I/2), so every 12-lead record is physically consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")

# Per-lead amplitudes (mV) of a normal beat on the base leads, in BASE_LEADS order.
NORMAL_AMPLITUDES: dict[str, np.ndarray] = {
    "P": np.array([0.08, 0.13, 0.06, 0.07, 0.07, 0.07, 0.07, 0.06]),
    "Q": np.array([-0.05, -0.06, 0.0, 0.0, 0.0, -0.04, -0.08, -0.08]),
    "R": np.array([0.75, 1.10, 0.25, 0.55, 0.85, 1.25, 1.35, 1.05]),
    "S": np.array([-0.12, -0.20, -0.95, -1.30, -0.80, -0.45, -0.22, -0.12]),
    "T": np.array([0.22, 0.30, 0.08, 0.35, 0.42, 0.38, 0.30, 0.24]),
}


def to_twelve_leads(base: np.ndarray) -> np.ndarray:
    """8 base leads (I, II, V1-V6) x samples -> the 12 standard leads in canonical order."""
    lead_i, lead_ii = base[0], base[1]
    limb = np.stack(
        [lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
    )
    return np.concatenate([limb, base[2:]], axis=0)


@dataclass
class Wave:
    """One Gaussian wave of one beat: centre (s, absolute), width sigma (s), amplitudes on base leads."""

    centre_s: float
    sigma_s: float
    amplitudes: np.ndarray


def render(waves: list[Wave], n_samples: int, sampling_rate_hz: float) -> np.ndarray:
    """Sum the waves into base leads x samples (each Gaussian evaluated on +-4 sigma only)."""
    out = np.zeros((len(BASE_LEADS), n_samples))
    for wave in waves:
        start = max(int((wave.centre_s - 4 * wave.sigma_s) * sampling_rate_hz), 0)
        stop = min(int((wave.centre_s + 4 * wave.sigma_s) * sampling_rate_hz) + 1, n_samples)
        if stop <= start:
            continue
        t = np.arange(start, stop) / sampling_rate_hz
        shape = np.exp(-0.5 * ((t - wave.centre_s) / wave.sigma_s) ** 2)
        out[:, start:stop] += wave.amplitudes[:, None] * shape[None, :]
    return out


def regular_rhythm(rate_bpm: float, seconds: float = 10.0, sampling_rate_hz: float = 500.0) -> np.ndarray:
    """A clean 12-lead sinus rhythm at exactly ``rate_bpm`` (leads x samples, mV): a normal beat of
    `NORMAL_AMPLITUDES` every 60/rate s, its PR and QT shortened with the RR interval (QT after Bazett's QTc of
    400 ms), so that even 220 bpm keeps P, QRS and T apart. For tests of rate measurement and quality checks."""
    rr = 60.0 / rate_bpm
    qt = 0.40 * np.sqrt(rr)
    pr = min(0.16, 0.3 * rr)
    first = pr + 0.05
    waves = []
    for r in np.arange(first, seconds - 0.05, rr):
        waves += [
            Wave(r - pr, 0.02, NORMAL_AMPLITUDES["P"]),
            Wave(r - 0.025, 0.008, NORMAL_AMPLITUDES["Q"]),
            Wave(r, 0.01, NORMAL_AMPLITUDES["R"]),
            Wave(r + 0.025, 0.008, NORMAL_AMPLITUDES["S"]),
            Wave(r + 0.7 * qt, 0.12 * qt, NORMAL_AMPLITUDES["T"]),
        ]
    return to_twelve_leads(render(waves, round(seconds * sampling_rate_hz), sampling_rate_hz))


def not_ecgs(rng: np.random.Generator, n: int = 5000, rate: float = 500.0) -> dict[str, np.ndarray]:
    """One signal of each kind that is no ECG (12 leads x samples, mV), amplitudes and frequencies drawn from
    ``rng``: Gaussian noise, a wandering baseline alone, a 50-Hz hum alone (the same in every lead, so perfectly
    repeatable), flat leads and random spikes. The quality gate (`ecglens.waves.beats`) must refuse every one."""
    t = np.arange(n) / rate
    spikes = rng.normal(0, 0.01, (12, n))
    for position in rng.integers(0, n, 60):
        spikes[rng.integers(0, 12), position] += rng.choice([-3.0, 3.0])
    return {
        "gaussian 0.3 mV": rng.normal(0, 0.3, (12, n)),
        "baseline wander": rng.uniform(0.2, 1.0)
        * np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * t + rng.uniform(0, 6, (12, 1))),
        "powerline 50 Hz": rng.uniform(0.1, 2.0)
        * np.repeat(np.sin(2 * np.pi * 50 * t + rng.uniform(0, 6))[None], 12, 0),
        "flat": np.zeros((12, n)),
        "spikes": spikes,
    }
