"""Synthetic 12-lead ECG records with ground truth, written as Challenge-style WFDB records.

Each of the nine classes is produced by its mechanism (see `CLASS_MECHANISMS`) and every record gets
evidence masks: for each class present, a leads x samples boolean mask marking where the evidence lies.

Files per record ``S00001``: ``S00001.hea`` + ``S00001.dat`` (WFDB format 16, 1000 adu/mV, comments
``#Age``, ``#Sex``, ``#Dx`` with SNOMED-CT codes) and ``S00001.evidence.npz`` holding
``classes`` (names of the classes present), ``masks`` (uint8, classes x 12 leads x samples, 1 where
that class's evidence lies) and the fiducials ``r_peaks``, ``p_onsets``, ``qrs_onsets``, ``qrs_offsets``
(sample indices, -1 where a beat has no P wave) and ``beat_kinds`` (0 sinus, 1 PAC, 2 PVC).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import wfdb

from ecglens.classes import CLASS_NAMES
from ecglens.leads import LEAD_NAMES, lead_order
from ecglens.noise import baseline_wander, muscle, powerline, scale_to_snr
from ecglens.synth.beats import BASE_LEADS, NORMAL_AMPLITUDES, Wave, render, to_twelve_leads
from ecglens.util.parallel import ordered_map

SNOMED_OF = {
    "SNR": "426783006",
    "AF": "164889003",
    "IAVB": "270492004",
    "LBBB": "164909002",
    "RBBB": "59118001",
    "PAC": "284470004",
    "PVC": "427172004",
    "STD": "429622005",
    "STE": "164931005",
}
CLASS_MECHANISMS = {
    "SNR": "regular sinus rhythm at 60-100 bpm",
    "AF": "irregularly irregular RR (CV 0.15-0.3), no P waves, 4-8 Hz fibrillatory baseline",
    "IAVB": "PR interval 220-320 ms",
    "LBBB": "QRS 130-160 ms: broad notched R in I, aVL, V5-V6, deep wide QS in V1-V2, discordant T",
    "RBBB": "QRS 120-140 ms: rsR' in V1-V2, wide S in I and V6",
    "PAC": "early beat (60-75 % of RR) with an inverted, different P wave; sinus node reset",
    "PVC": "early wide (140 ms) bizarre QRS without P wave, discordant T, compensatory pause",
    "STD": "ST depression 0.1-0.25 mV in a coronary territory's leads",
    "STE": "ST elevation 0.15-0.35 mV in a coronary territory's leads",
}
# Coronary territories as ST shifts on the base leads (I, II, V1-V6), sign +1 = the territory's own leads.
TERRITORIES = {
    "inferior": np.array([0.0, 1.0, 0, 0, 0, 0, 0, 0]),
    "lateral": np.array([1.0, 0.3, 0, 0, 0, 0, 1.0, 1.0]),
    "anterior": np.array([0.0, 0.0, 0.8, 1.0, 1.0, 0.9, 0, 0]),
}
_EXCLUSIVE = [{"SNR", "AF"}, {"LBBB", "RBBB"}, {"STD", "STE"}, {"AF", "PAC"}, {"AF", "IAVB"}]


@dataclass(frozen=True)
class SynthConfig:
    """Cohort settings (all defaults documented in ``ecglens synth --help``)."""

    n_records: int = 1000
    sampling_rate_hz: float = 500.0
    duration_s: float = 10.0
    seed: int = 0
    snr_db: float = 20.0
    multi_label_rate: float = 0.2
    class_weights: dict[str, float] = field(default_factory=lambda: {name: 1.0 for name in CLASS_NAMES})
    powerline_hz: float = 50.0


@dataclass(frozen=True)
class SynthRecord:
    """One generated record with its ground truth."""

    name: str
    signal: np.ndarray
    classes: tuple[str, ...]
    masks: np.ndarray
    fiducials: dict[str, np.ndarray]
    age: int
    sex: str


def _choose_classes(rng: np.random.Generator, config: SynthConfig) -> tuple[str, ...]:
    names = list(CLASS_NAMES)
    weights = np.array([config.class_weights.get(n, 0.0) for n in names], float)
    first = names[rng.choice(len(names), p=weights / weights.sum())]
    chosen = {first}
    if first != "SNR" and rng.random() < config.multi_label_rate:
        options = [
            n
            for n in names
            if n != "SNR" and n not in chosen and not any({n, c} <= pair for pair in _EXCLUSIVE for c in chosen)
        ]
        if options:
            chosen.add(options[rng.integers(len(options))])
    return tuple(n for n in names if n in chosen)


@dataclass(frozen=True)
class _Patient:
    """One synthetic patient's variation: wave amplitudes on the base leads, rate and intervals (s)."""

    scale: dict[str, np.ndarray]
    mean_rr: float
    pr: float
    qrs: float


@dataclass
class _Beats:
    """Beat times (s), their kinds (0 sinus, 1 PAC, 2 PVC) and fiducial sample indices."""

    times: np.ndarray
    kinds: np.ndarray
    fiducials: dict[str, np.ndarray] = field(default_factory=dict)


_ECTOPIC_KIND = {"PAC": 1, "PVC": 2}
# Leads where each class's evidence is marked (12-lead names; ST classes use their territory instead).
_EVIDENCE_LEADS = {
    "AF": ("II", "III", "aVF", "V1"),  # where f-waves are largest
    "LBBB": ("I", "aVL", "V1", "V2", "V5", "V6"),
    "RBBB": ("I", "V1", "V2", "V6"),
    "SNR": ("II", "V1"),  # P-QRS sequences
}
# Fibrillatory-wave amplitude per base lead (I, II, V1-V6).
_F_WAVE_GAIN = np.array([0.3, 0.8, 1.0, 0.6, 0.3, 0.2, 0.2, 0.2])


def generate_record(index: int, config: SynthConfig) -> SynthRecord:
    """Generate record number ``index`` of a cohort (deterministic in seed and index).

    The steps draw from one generator in a fixed order (patient, rhythm, waves, ST shift, f-waves,
    evidence, noise, demographics), so a record depends only on the seed and its index.
    """
    rng = np.random.default_rng([config.seed, index])
    classes = _choose_classes(rng, config)
    present = set(classes)
    rate = config.sampling_rate_hz
    n_samples = round(config.duration_s * rate)
    patient = _draw_patient(rng, present)
    beats = _beat_times(rng, patient, present, n_samples / rate)
    waves, st_windows = _beat_waves(rng, patient, beats, present, rate)
    base = render(waves, n_samples, rate)
    masks = {name: np.zeros((len(LEAD_NAMES), n_samples), bool) for name in classes}
    base = _add_st_shift(rng, base, st_windows, present, masks, rate)
    if "AF" in present:
        base = base + _fibrillatory_waves(rng, n_samples, rate)
        _mark_af(masks["AF"], beats)
    signal = to_twelve_leads(base)
    _mark_evidence(masks, beats)
    signal = signal + _noise(rng, signal, rate, config)
    beats.fiducials["r_peaks"] = np.round(beats.times * rate).astype(int)
    beats.fiducials["beat_kinds"] = beats.kinds.astype(int)
    mask_array = np.stack([masks[name] for name in classes]).astype(np.uint8)  # classes in CLASS_NAMES order
    return SynthRecord(
        f"S{index + 1:05d}",
        signal.astype(np.float32),
        classes,
        mask_array,
        beats.fiducials,
        int(rng.integers(20, 90)),
        "Male" if rng.random() < 0.55 else "Female",
    )


def _draw_patient(rng: np.random.Generator, present: set[str]) -> _Patient:
    """Amplitude scale per wave, electrical axis (mixing of I and II), heart rate, PR and QRS durations."""
    scale = {
        wave: amplitude * rng.uniform(0.75, 1.25, amplitude.shape) for wave, amplitude in NORMAL_AMPLITUDES.items()
    }
    axis_mix = rng.uniform(-0.25, 0.25)
    for wave in scale:
        lead_i, lead_ii = scale[wave][0], scale[wave][1]
        scale[wave][0], scale[wave][1] = lead_i + axis_mix * lead_ii, lead_ii - axis_mix * lead_i
    heart_rate_bpm = rng.uniform(60, 100)
    pr = rng.uniform(0.22, 0.32) if "IAVB" in present else rng.uniform(0.13, 0.19)
    if "LBBB" in present:
        qrs = rng.uniform(0.13, 0.16)
    elif "RBBB" in present:
        qrs = rng.uniform(0.12, 0.14)
    else:
        qrs = rng.uniform(0.08, 0.10)
    return _Patient(scale, 60.0 / heart_rate_bpm, pr, qrs)


def _beat_times(rng: np.random.Generator, patient: _Patient, present: set[str], duration_s: float) -> _Beats:
    """Regular beats with small variability (irregularly irregular in AF), then isolated premature beats."""
    times, kinds = [], []
    t = rng.uniform(0.2, 0.6) + patient.pr
    n_ectopic = {name: rng.integers(1, 4) for name in _ECTOPIC_KIND if name in present}
    while t < duration_s - 0.4:
        times.append(t)
        kinds.append(0)
        interval = patient.mean_rr * (rng.gamma(16, 1 / 16) if "AF" in present else rng.normal(1, 0.03))
        t += max(interval, 0.3)
    beat_times, beat_kinds = np.array(times), np.array(kinds)
    for name, count in n_ectopic.items():  # make some beats premature, shifting the rest
        placed = 0
        for i in rng.permutation(np.arange(2, len(beat_times) - 1)):
            # Isolated ectopics only: the beats on both sides stay sinus (so the pause is measurable).
            if placed == count or beat_kinds[i - 1] != 0 or beat_kinds[i] != 0 or beat_kinds[i + 1] != 0:
                continue
            placed += 1
            interval = beat_times[i] - beat_times[i - 1]
            shift = interval * rng.uniform(0.6, 0.72) - interval
            if name == "PVC":  # compensatory pause: the beat after lands where it would have
                beat_times[i] += shift
            else:  # PAC resets the sinus node: everything after moves earlier
                beat_times[i:] += shift
            beat_kinds[i] = _ECTOPIC_KIND[name]
    keep = beat_times < duration_s - 0.4
    return _Beats(beat_times[keep], beat_kinds[keep])


def _beat_waves(
    rng: np.random.Generator, patient: _Patient, beats: _Beats, present: set[str], rate: float
) -> tuple[list[Wave], list[tuple[float, float]]]:
    """The waves of every beat, the fiducials (into ``beats``) and the ST windows (s) of conducted beats."""
    waves: list[Wave] = []
    fiducials = {key: np.full(len(beats.times), -1) for key in ("p_onsets", "qrs_onsets", "qrs_offsets", "t_ends")}
    st_windows = []
    qrs = patient.qrs
    for b, (r, kind) in enumerate(zip(beats.times, beats.kinds, strict=True)):
        qt = 0.40 * np.sqrt(patient.mean_rr) + (qrs - 0.09)
        onset, offset = r - qrs / 2, r + qrs / 2
        if kind == _ECTOPIC_KIND["PVC"]:  # wide bizarre QRS, no P, discordant T
            wide = rng.uniform(0.13, 0.16)
            onset, offset = r - wide / 2, r + wide / 2
            polarity = np.sign(rng.normal(size=len(BASE_LEADS))) * rng.uniform(0.8, 1.6, len(BASE_LEADS))
            waves.append(Wave(r, wide / 4.5, polarity))
            waves.append(Wave(r + 0.30, 0.06, -0.35 * polarity))
        else:
            if "AF" not in present:
                p_amplitude = patient.scale["P"] * (-0.9 if kind == _ECTOPIC_KIND["PAC"] else 1.0)
                p_centre = onset - patient.pr + 0.05
                waves.append(Wave(p_centre, 0.022 if kind == 0 else 0.016, p_amplitude))
                fiducials["p_onsets"][b] = round((p_centre - 0.05) * rate)
            waves += _qrs_waves(r, qrs, patient.scale, present)
            t_amplitude = patient.scale["T"] * (-0.6 if "LBBB" in present else 1.0)
            waves.append(Wave(r + qt - 0.12, 0.05, t_amplitude))
            st_windows.append((offset, r + qt - 0.17))
        fiducials["qrs_onsets"][b], fiducials["qrs_offsets"][b] = round(onset * rate), round(offset * rate)
        fiducials["t_ends"][b] = round((r + qt) * rate)
    beats.fiducials.update(fiducials)
    return waves, st_windows


def _add_st_shift(
    rng: np.random.Generator,
    base: np.ndarray,
    st_windows: list[tuple[float, float]],
    present: set[str],
    masks: dict[str, np.ndarray],
    rate: float,
) -> np.ndarray:
    """ST depression or elevation in a random coronary territory; marks the territory's own leads."""
    n_samples = base.shape[1]
    for name, low, high in (("STD", -0.25, -0.1), ("STE", 0.15, 0.35)):
        if name not in present:
            continue
        territory = list(TERRITORIES)[rng.integers(len(TERRITORIES))]
        level = rng.uniform(low, high)
        st_shift = TERRITORIES[territory] * level
        profile = np.zeros(n_samples)
        for start, stop in st_windows:
            a, z = round(start * rate), round(stop * rate)
            if z > a:
                profile[a:z] = np.hanning(z - a + 2)[1:-1] ** 0.3
        base = base + st_shift[:, None] * profile[None, :]
        twelve_shift = to_twelve_leads(st_shift[:, None])[:, 0]
        own_leads = twelve_shift * np.sign(level) >= 0.5 * abs(level)  # the territory's own, not reciprocal
        masks[name][own_leads] = profile > 0.5
    return base


def _fibrillatory_waves(rng: np.random.Generator, n_samples: int, rate: float) -> np.ndarray:
    """AF's 4-8 Hz f-waves on the base leads."""
    t = np.arange(n_samples) / rate
    f_wave = sum(
        rng.uniform(0.02, 0.05) * np.sin(2 * np.pi * rng.uniform(4, 8) * t + rng.uniform(0, 6.3)) for _ in range(3)
    )
    return np.outer(_F_WAVE_GAIN, f_wave)


def _mark_af(mask: np.ndarray, beats: _Beats) -> None:
    between = np.ones(mask.shape[1], bool)
    for a, z in zip(beats.fiducials["qrs_onsets"], beats.fiducials["qrs_offsets"], strict=True):
        between[max(a, 0) : z + 1] = False
    mask[lead_order(LEAD_NAMES, _EVIDENCE_LEADS["AF"])] = between


def _mark_evidence(masks: dict[str, np.ndarray], beats: _Beats) -> None:
    """Evidence masks of the classes whose evidence is tied to beats (IAVB, bundle-branch blocks, ectopics, SNR)."""
    fiducials = beats.fiducials
    for name, mask in masks.items():
        if name == "IAVB":
            for p, q in zip(fiducials["p_onsets"], fiducials["qrs_onsets"], strict=True):
                if p >= 0:
                    mask[:, p:q] = True
        elif name in ("LBBB", "RBBB"):
            rows = lead_order(LEAD_NAMES, _EVIDENCE_LEADS[name])
            for a, z in zip(fiducials["qrs_onsets"], fiducials["qrs_offsets"], strict=True):
                mask[rows, max(a, 0) : z] = True
        elif name in _ECTOPIC_KIND:
            kind = _ECTOPIC_KIND[name]
            for b in np.flatnonzero(beats.kinds == kind):
                start = fiducials["p_onsets"][b] if kind == _ECTOPIC_KIND["PAC"] else fiducials["qrs_onsets"][b]
                mask[:, max(start, 0) : fiducials["qrs_offsets"][b]] = True
        elif name == "SNR":
            rows = lead_order(LEAD_NAMES, _EVIDENCE_LEADS["SNR"])
            for p, z in zip(fiducials["p_onsets"], fiducials["qrs_offsets"], strict=True):
                mask[rows, max(p, 0) : z] = True


def _qrs_waves(r: float, qrs: float, scale: dict[str, np.ndarray], has: set[str]) -> list[Wave]:
    q_wave, r_wave, s_wave = scale["Q"], scale["R"], scale["S"]
    if "LBBB" in has:
        # Broad notched R in I, V5, V6 (and aVL through I); deep wide QS in V1-V2.
        lateral = np.array([1.0, 0.6, 0, 0, 0.2, 0.6, 1.0, 1.0])
        septal = np.array([0, 0, 1.0, 1.0, 0.6, 0.1, 0, 0])
        return [
            Wave(r - qrs * 0.18, qrs / 7, r_wave * lateral * 0.9),
            Wave(r + qrs * 0.18, qrs / 7, r_wave * lateral * 0.85),
            Wave(r, qrs / 3.5, -1.5 * septal),
            Wave(r, qrs / 6, r_wave * (1 - lateral) * (1 - septal) * 0.5),
        ]
    waves = [Wave(r - qrs * 0.3, qrs / 12, q_wave), Wave(r, qrs / 9, r_wave), Wave(r + qrs * 0.28, qrs / 11, s_wave)]
    if "RBBB" in has:
        # Terminal right-ventricular activation: R' in V1-V2, wide S in I and V6.
        terminal = np.array([-0.35, -0.1, 1.0, 0.8, 0.2, -0.1, -0.3, -0.35])
        waves.append(Wave(r + qrs * 0.38, qrs / 7, terminal))
    return waves


def _noise(rng: np.random.Generator, signal: np.ndarray, rate: float, config: SynthConfig) -> np.ndarray:
    """Baseline wander, powerline interference and muscle noise (`ecglens.noise`), scaled to ``config.snr_db``."""
    n = signal.shape[1]
    wander = baseline_wander(rng, 12, n, rate)
    mains = powerline(rng, 12, n, rate, config.powerline_hz)
    emg = muscle(rng, 12, n, rate)
    noise = 0.5 * wander / wander.std() + 0.15 * mains / mains.std() + emg / emg.std()
    return scale_to_snr(signal, noise, config.snr_db)


def write_record(record: SynthRecord, directory: str | os.PathLike, sampling_rate_hz: float) -> Path:
    """Write a record as WFDB (format 16) with Challenge comments, and its evidence file."""
    directory = Path(directory)
    dx = ",".join(SNOMED_OF[c] for c in record.classes)
    wfdb.wrsamp(
        record.name,
        fs=sampling_rate_hz,
        units=["mV"] * 12,
        sig_name=list(LEAD_NAMES),
        p_signal=np.clip(record.signal.T.astype(np.float64), -32, 32),
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        write_dir=str(directory),
        comments=[f"Age: {record.age}", f"Sex: {record.sex}", f"Dx: {dx}"],
    )
    arrays: dict[str, Any] = {"classes": np.array(record.classes), "masks": record.masks, **record.fiducials}
    np.savez_compressed(directory / f"{record.name}.evidence.npz", **arrays)
    return directory / f"{record.name}.hea"


def _generate_and_write(args: tuple[int, SynthConfig, str]) -> tuple[str, ...]:
    index, config, out = args
    record = generate_record(index, config)
    write_record(record, out, config.sampling_rate_hz)
    return record.classes


def write_cohort(
    config: SynthConfig, out: str | os.PathLike, workers: int | None = None, progress: bool = True
) -> dict[str, int]:
    """Generate and write a cohort in parallel; returns the count of records per class."""
    from ecglens.util.progress import bar

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(i, config, str(out)) for i in range(config.n_records)]
    workers = workers or os.cpu_count() or 1
    counts = dict.fromkeys(CLASS_NAMES, 0)
    counter = bar(total=len(jobs), desc="synth", unit="rec", enabled=progress)
    for classes in ordered_map(_generate_and_write, jobs, workers, chunksize=16):
        for name in classes:
            counts[name] += 1
        counter.update()
    counter.close()
    return counts


def read_evidence(header_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load a synthetic record's evidence file (masks per class and fiducials)."""
    path = Path(str(header_path).removesuffix(".hea") + ".evidence.npz")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
