"""Signal preprocessing shared by the cache, training and prediction (pure numpy/scipy)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly


def resample_ratio(source_rate_hz: float, target_rate_hz: float) -> tuple[int, int]:
    """The (up, down) integer pair for polyphase resampling from one rate to another."""
    if source_rate_hz <= 0 or target_rate_hz <= 0:
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
    return resample_poly(np.asarray(signal, dtype=np.float64), up, down, axis=-1).astype(np.float32)


def resampled_length(n_samples: int, source_rate_hz: float, target_rate_hz: float) -> int:
    """Number of samples `resample` returns for ``n_samples`` input samples."""
    up, down = resample_ratio(source_rate_hz, target_rate_hz)
    return -(-n_samples * up // down)
