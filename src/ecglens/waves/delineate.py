"""Delineation of every lead: the learned U-Net (`ecglens.waves.net`, ``net``) or neurokit2 (MIT;
``pip install 'ecglens[waves]'``).

The method is chosen by record-disjoint 5-fold cross-validation on LUDB (``python benchmarks/bench_delineation.py
--cv DIR``): ``net`` by default (QRS onset -0.1 +- 10.6 ms and offset +1.9 +- 10.9 against neurokit2
prominence's +9.9 +- 22.6 and -24.1 +- 23.7; P onset Se/PPV 0.97/0.89 against 0.96/0.77). With neurokit2, R
peaks are found once, on the lead where it finds the most regular beats, and every lead is delineated around
them, so the leads' waves belong to the same beats: ``prominence`` (Emrich et al. 2023) or ``dwt`` (Martinez et
al. 2004's wavelet delineator) on request.

neurokit2's detector waits 0.3 s after each beat, so a tachycardia over 200 bpm is found at half its rate. The
heart rate is checked against a second estimate made without it (`ecglens.waves.beats.second_rate_bpm`);
when the second estimate says so, the beats are found again with a 0.2-s wait, and a disagreement that remains
is a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ecglens.waves.beats import rates_disagree, second_rate_bpm
from ecglens.waves.marks import OK, WAVES, LeadWaves, WaveMarks, waves_from_triplets
from ecglens.waves.measure import Measurements, measure, pr_spread_ms

METHODS = ("net", "prominence", "dwt")
DEFAULT_METHOD = "net"
_KEYS = {
    "P": ("ECG_P_Onsets", "ECG_P_Peaks", "ECG_P_Offsets"),
    "QRS": ("ECG_R_Onsets", None, "ECG_R_Offsets"),
    "T": ("ECG_T_Onsets", "ECG_T_Peaks", "ECG_T_Offsets"),
}
MIN_BEATS = 2
REFRACTORY_S = 0.3
"""neurokit2's own wait after a beat (its ``mindelay``): up to 200 bpm."""
SHORT_REFRACTORY_S = 0.2
"""The wait when the second estimate finds a faster rhythm: up to 300 bpm."""
NO_P = "no P wave found"


class DelineationUnavailable(ValueError):
    """neurokit2 is not installed (the command line says so in one line, as for the other extras)."""


def _neurokit():
    try:
        import neurokit2
    except ImportError:
        raise DelineationUnavailable("delineation needs neurokit2: pip install 'ecglens[waves]'") from None
    return neurokit2


def r_peaks(
    signal: np.ndarray, sampling_rate_hz: float, lead_names: Sequence[str], refractory_s: float = REFRACTORY_S
) -> np.ndarray:
    """R peaks of the record: neurokit2's detector on II, I and V5 (those present), keeping the lead whose RR
    intervals are plausible (the shorter of 0.25 s and ``refractory_s``, to 2.5 s) and most regular (a detector
    that also takes S or T waves for beats makes RR alternate); empty when no lead has two beats."""
    shortest = min(0.25, refractory_s)
    nk = _neurokit()
    best, best_spread = np.zeros(0, np.int64), np.inf
    for lead in ("II", "I", "V5"):
        if lead not in lead_names:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cleaned = nk.ecg_clean(signal[lead_names.index(lead)], sampling_rate=int(sampling_rate_hz))
                found = nk.ecg_peaks(cleaned, sampling_rate=int(sampling_rate_hz), mindelay=refractory_s)[1]
                peaks = np.asarray(found["ECG_R_Peaks"])
        except Exception:  # a flat or noisy lead: the next one
            continue
        rr = np.diff(peaks) / sampling_rate_hz
        if len(peaks) < MIN_BEATS or not ((rr > shortest) & (rr < 2.5)).all():
            continue
        spread = float(np.std(np.diff(rr))) if len(rr) > 1 else 0.0  # beat-to-beat change of RR
        if spread < best_spread:
            best, best_spread = peaks.astype(np.int64), spread
    return best


def delineate(
    signal: np.ndarray,
    sampling_rate_hz: float,
    lead_names: Sequence[str],
    method: str = DEFAULT_METHOD,
    refractory_s: float = REFRACTORY_S,
    device: str = "cpu",
) -> WaveMarks:
    """P, QRS and T onsets, peaks and offsets of every lead of ``signal`` (leads x samples, mV), around R peaks
    at least ``refractory_s`` apart.

    ``net`` is the learned delineator (`ecglens.waves.net`, on ``device``); the others are neurokit2's.

    A lead whose delineation fails gets that status (and no marks); a lead without P waves (atrial
    fibrillation, flutter, a junctional rhythm) gets the note `NO_P` and no PR interval downstream.
    """
    if method not in METHODS:
        raise ValueError(f"unknown delineation method {method!r}; choose from {', '.join(METHODS)}")
    if method == "net":
        from ecglens.waves.net import delineate_net

        return delineate_net(signal, sampling_rate_hz, lead_names, device)
    nk = _neurokit()
    names = list(lead_names)
    peaks = r_peaks(signal, sampling_rate_hz, names, refractory_s)
    leads = []
    for k, lead in enumerate(names):
        if len(peaks) < MIN_BEATS:
            leads.append(LeadWaves(lead, {}, status=f"no beats found (fewer than {MIN_BEATS} R peaks)"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cleaned = nk.ecg_clean(signal[k], sampling_rate=int(sampling_rate_hz))
                found = nk.ecg_delineate(cleaned, peaks, sampling_rate=int(sampling_rate_hz), method=method)[1]
        except Exception as error:  # neurokit2 raises many kinds on a flat or noisy lead: that lead's status
            leads.append(LeadWaves(lead, {}, status=f"delineation failed ({type(error).__name__})"))
            continue
        leads.append(_lead_waves(lead, found, peaks))
    return WaveMarks(sampling_rate_hz, tuple(leads), f"neurokit2 {nk.__version__} ({method})")


def _lead_waves(lead: str, found: dict, peaks: np.ndarray) -> LeadWaves:
    kinds, onsets, tops, offsets = [], [], [], []
    for kind in WAVES:
        on_key, peak_key, off_key = _KEYS[kind]
        n = len(peaks)
        on = _column(found.get(on_key), n)
        top = peaks.astype(np.int64) if peak_key is None else _column(found.get(peak_key), n)
        off = _column(found.get(off_key), n)
        for a, p, b in zip(on, top, off, strict=True):
            if a >= 0 or b >= 0:
                kinds.append(kind)
                onsets.append(int(a))
                tops.append(int(p))
                offsets.append(int(b))
    waves = waves_from_triplets(kinds, onsets, tops, offsets)
    notes = (NO_P,) if not len(waves["P"]) else ()
    return LeadWaves(lead, waves, OK, notes)


def _column(values: object, n: int) -> np.ndarray:
    """A neurokit2 list (NaN where not found) as n integers, -1 where not found."""
    if values is None:
        return np.full(n, -1, np.int64)
    array = np.asarray(values, np.float64)[:n]
    array = np.concatenate([array, np.full(n - len(array), np.nan)])
    return np.where(np.isfinite(array), array, -1).astype(np.int64)


def available() -> bool:
    """Whether neurokit2 is installed (``pip install 'ecglens[waves]'``), without importing it."""
    import importlib.util

    return importlib.util.find_spec("neurokit2") is not None


PR_UNSTEADY_MS = 10.0
"""The network's per-beat PR may vary (median absolute deviation) this much before neurokit2's P waves are asked."""


def _steadier_pr(
    measured: Measurements,
    marks: WaveMarks,
    signal: np.ndarray,
    sampling_rate_hz: float,
    lead_names: Sequence[str],
    sex: str | None,
) -> Measurements:
    """The PR (and P axis) from neurokit2's P waves when the network's vary from beat to beat by more than
    `PR_UNSTEADY_MS` and neurokit2's by less than half as much. A PR of 330 ms (first-degree AV block, outside
    the network's LUDB training range) put the network's P onsets anywhere from 156 to 236 ms before the QRS
    while neurokit2's held at 338 +- 4; on the cross-validated LUDB half no record meets the condition, so the
    network's figures there are unchanged (``python benchmarks/bench_delineation.py --cv DIR``)."""
    spread = pr_spread_ms(marks)
    if spread is None or spread <= PR_UNSTEADY_MS:
        return measured
    other_marks = delineate(signal, sampling_rate_hz, lead_names, "prominence")
    other_spread = pr_spread_ms(other_marks)
    if other_spread is None or other_spread >= spread / 2:
        return measured
    other = measure(other_marks, signal, sex)
    if other.pr_ms is None:
        return measured
    note = (
        f"PR from neurokit2's P waves ({other_spread:.0f} ms from beat to beat), the network's varying by "
        f"{spread:.0f} ms"
    )
    return replace(measured, pr_ms=other.pr_ms, p_axis_deg=other.p_axis_deg, notes=(*measured.notes, note))


def measurements_of(
    signal: np.ndarray,
    sampling_rate_hz: float,
    lead_names: Sequence[str],
    sex: str | None = None,
    method: str | None = None,
) -> Measurements:
    """A record's measurements (`ecglens.waves.measure`) from its own delineation: ``predict --measurements`` and
    the viewer's (``sex``, ``male``/``female``, the record's, picks the QTc limit), their heart rate checked
    against `second_rate_bpm` (see the module; the second estimate is kept as ``rate_check_bpm``, and a
    disagreement over 20 % is the measurements' first note and a warning; a rate the second estimate finds
    faster is looked for again with neurokit2's detector at a 0.2-s wait). ``method``: `DEFAULT_METHOD` when
    None."""
    method = method or DEFAULT_METHOD
    marks = delineate(signal, sampling_rate_hz, lead_names, method)
    measured = measure(marks, signal, sex)
    if method == "net" and measured.pr_ms is not None and available():
        measured = _steadier_pr(measured, marks, signal, sampling_rate_hz, lead_names, sex)
    second = second_rate_bpm(signal, sampling_rate_hz)
    detected = measured.heart_rate_bpm
    if detected is not None and second is not None and second > detected * 1.2:  # beats the detector waited over
        retry = delineate(signal, sampling_rate_hz, lead_names, "prominence", refractory_s=SHORT_REFRACTORY_S)
        faster = measure(retry, signal, sex)  # neurokit2's delineation with a 0.2-s wait
        if faster.heart_rate_bpm is not None and not rates_disagree(faster.heart_rate_bpm, second):
            measured = faster
    return measured.checked_against(second)
