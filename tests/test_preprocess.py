"""The one model-input function and its helpers: lead order, resampling, length policies, windows, batches."""

import numpy as np
import pytest

from ecglens.leads import LEAD_NAMES, LeadError
from ecglens.preprocess import (
    InputSpec,
    LengthPolicy,
    apply_policy,
    batches_by_length,
    fit_length,
    model_input,
    random_window,
    resample,
)

SPEC = InputSpec(LEAD_NAMES, 250.0, LengthPolicy("crop", 10.0))


def _signal(n=5000, leads=12, seed=0):
    return np.random.default_rng(seed).normal(0, 0.3, (leads, n)).astype(np.float32)


def test_model_input_orders_leads_by_name_and_resamples():
    signal = _signal()
    order = np.random.default_rng(1).permutation(12)
    shuffled_names = [LEAD_NAMES[i].upper() for i in order]
    direct = model_input(signal, 500, LEAD_NAMES, SPEC)
    shuffled = model_input(signal[order], 500, shuffled_names, SPEC)
    np.testing.assert_array_equal(direct, shuffled)
    assert direct.shape == (12, 2500) and direct.dtype == np.float32
    np.testing.assert_allclose(direct, resample(signal, 500, 250))


def test_model_input_takes_a_lead_subset_and_names_missing_leads():
    spec = InputSpec(("V1", "I"), 500.0, LengthPolicy())
    signal = _signal()
    np.testing.assert_array_equal(model_input(signal, 500, LEAD_NAMES, spec), signal[[6, 0]])
    with pytest.raises(LeadError, match="V1"):
        model_input(signal[:6], 500, LEAD_NAMES[:6], spec)


def test_crop_scores_the_whole_record_and_original_the_last_window():
    signal = _signal(7500)  # 15 s at 500 Hz
    assert model_input(signal, 500, LEAD_NAMES, SPEC).shape == (12, 3750)
    original = InputSpec(LEAD_NAMES, 500.0, LengthPolicy.original())
    padded = model_input(signal, 500, LEAD_NAMES, original)
    assert padded.shape == (12, 15000)
    assert not padded[:, :7500].any()
    np.testing.assert_array_equal(padded[:, 7500:], signal)
    long = _signal(20000)
    np.testing.assert_array_equal(apply_policy(long, LengthPolicy("original", 10.0), 500), long[:, -5000:])


def test_random_window_is_a_window_of_the_record():
    signal = _signal(3000)
    rng = np.random.default_rng(0)
    window = random_window(signal, LengthPolicy("crop", 2.0), 500, rng)
    assert window.shape == (12, 1000)
    starts = [s for s in range(2001) if np.array_equal(signal[:, s : s + 1000], window)]
    assert len(starts) == 1
    short = random_window(signal[:, :400], LengthPolicy("crop", 2.0), 500, rng)
    assert short.shape == (12, 1000) and not short[:, :600].any()


def test_fit_length_cuts_or_repeats():
    signal = np.arange(10, dtype=np.float32)[None].repeat(2, axis=0)
    np.testing.assert_array_equal(fit_length(signal, 4)[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(fit_length(signal, 13)[0], [*range(10), 0, 1, 2])


def test_batches_by_length_groups_equal_lengths_in_a_fixed_order():
    batches = [b.tolist() for b in batches_by_length([5, 3, 5, 3, 5], 2)]
    assert batches == [[1, 3], [0, 2], [4]]


def test_policies_are_checked():
    with pytest.raises(ValueError, match="policy"):
        LengthPolicy("pad")
    with pytest.raises(ValueError, match="positive"):
        LengthPolicy("crop", 0)
    with pytest.raises(ValueError, match="positive"):
        resample(_signal(10), 0, 100)
