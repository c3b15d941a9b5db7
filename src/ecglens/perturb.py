"""Perturbations of a recording: noise at a signal-to-noise ratio and acquisition faults.

Used by ``ecglens robustness`` (metrics against severity) and by ``ecglens train --augment`` (the same
families as training augmentation). Noise comes from `ecglens.noise`, the generators the synthetic cohort
uses. Every perturbation takes a leads x samples signal in mV at ``sampling_rate_hz`` with its lead names and a seeded
generator, and returns a new float32 array (its length may change: wrong rate, shift, crop).

Reversals follow the electrode geometry (I = LA - RA, II = LL - RA, III = LL - LA, aVR = RA - (LA + LL)/2,
...): swapping two limb electrodes maps the six limb leads exactly onto signed copies of each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecglens import noise
from ecglens.preprocess import resample

NOISE_KINDS = ("gaussian", "muscle", "wander", "powerline50", "powerline60", "motion")
FAULT_KINDS = ("gain", "missing", "reversal", "swap", "rate", "shift", "crop")
SNR_LEVELS_DB = (24.0, 18.0, 12.0, 6.0, 0.0)
REVERSALS: dict[str, dict[str, tuple[float, str]]] = {
    # lead -> (sign, source lead) after swapping the two electrodes
    "LA/RA": {
        "I": (-1, "I"),
        "II": (1, "III"),
        "III": (1, "II"),
        "aVR": (1, "aVL"),
        "aVL": (1, "aVR"),
        "aVF": (1, "aVF"),
    },
    "LA/LL": {
        "I": (1, "II"),
        "II": (1, "I"),
        "III": (-1, "III"),
        "aVR": (1, "aVR"),
        "aVL": (1, "aVF"),
        "aVF": (1, "aVL"),
    },
    "RA/LL": {
        "I": (-1, "III"),
        "II": (-1, "II"),
        "III": (-1, "I"),
        "aVR": (1, "aVF"),
        "aVL": (1, "aVL"),
        "aVF": (1, "aVR"),
    },
    "V1/V2": {"V1": (1, "V2"), "V2": (1, "V1")},
    "V2/V3": {"V2": (1, "V3"), "V3": (1, "V2")},
}
_NOISE = {
    "gaussian": lambda rng, k, n, rate: noise.gaussian(rng, k, n, rate),
    "muscle": lambda rng, k, n, rate: noise.muscle(rng, k, n, rate, band_hz=(20.0, 150.0)),
    "wander": lambda rng, k, n, rate: noise.baseline_wander(rng, k, n, rate, band_hz=(0.05, 0.5)),
    "powerline50": lambda rng, k, n, rate: noise.powerline(rng, k, n, rate, 50.0, harmonics=3),
    "powerline60": lambda rng, k, n, rate: noise.powerline(rng, k, n, rate, 60.0, harmonics=3),
    "motion": lambda rng, k, n, rate: noise.electrode_motion(rng, k, n, rate),
}


class NotApplicable(ValueError):
    """A perturbation that needs leads the model does not take (a limb reversal on a 2-lead model)."""


@dataclass(frozen=True)
class Perturbation:
    """One perturbation at one severity.

    Attributes:
        kind: one of `NOISE_KINDS` or `FAULT_KINDS`.
        level: the severity: SNR in dB (noise), gain factor, number of flat leads, declared-rate error in %,
            shift in s, kept length in s; 0 for reversals and swaps.
        variant: the electrodes of a reversal or swap (``LA/RA``, ``V1/V2``, ...).
    """

    kind: str
    level: float = 0.0
    variant: str = ""

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS + FAULT_KINDS:
            raise ValueError(f"unknown perturbation {self.kind!r}; choose from {', '.join(NOISE_KINDS + FAULT_KINDS)}")
        if self.kind in ("reversal", "swap") and self.variant not in REVERSALS:
            raise ValueError(f"unknown {self.kind} {self.variant!r}; choose from {', '.join(REVERSALS)}")

    @property
    def family(self) -> str:
        """``noise`` or ``faults``."""
        return "noise" if self.kind in NOISE_KINDS else "faults"

    @property
    def label(self) -> str:
        """How reports name it: 'muscle noise at 6 dB', 'LA/RA reversal', '3 leads flat'."""
        if self.family == "noise":
            return f"{self.kind} noise at {self.level:g} dB SNR"
        return {
            "gain": f"gain x{self.level:g}",
            "missing": f"{self.level:g} lead(s) flat",
            "reversal": f"{self.variant} electrode reversal",
            "swap": f"{self.variant} lead swap",
            "rate": f"declared rate {self.level:+g} %",
            "shift": f"start {self.level:g} s late",
            "crop": f"only {self.level:g} s kept",
        }[self.kind]

    def apply(
        self, signal: np.ndarray, sampling_rate_hz: float, lead_names: Sequence[str], rng: np.random.Generator
    ) -> np.ndarray:
        """The perturbed signal (a new float32 array)."""
        x = np.asarray(signal, np.float64)
        k, n = x.shape
        if self.family == "noise":
            mains = {"powerline50": 50.0, "powerline60": 60.0}.get(self.kind)
            if mains is not None and mains >= sampling_rate_hz / 2:
                raise NotApplicable(
                    f"{mains:g} Hz is at or above the Nyquist frequency of a {sampling_rate_hz:g}-Hz input: "
                    "the anti-aliased resampling to the model's rate removes it"
                )
            return (x + noise.scale_to_snr(x, _NOISE[self.kind](rng, k, n, sampling_rate_hz), self.level)).astype(
                np.float32
            )
        if self.kind == "gain":
            return (x * self.level).astype(np.float32)
        if self.kind == "missing":
            out = x.copy()
            out[rng.choice(k, size=min(int(self.level), k), replace=False)] = 0.0
            return out.astype(np.float32)
        if self.kind in ("reversal", "swap"):
            return _rewire(x, list(lead_names), REVERSALS[self.variant]).astype(np.float32)
        if (
            self.kind == "rate"
        ):  # the recording at sampling_rate_hz declared as sampling_rate_hz * (1 + e): read and resampled so
            return resample(x.astype(np.float32), sampling_rate_hz * (1 + self.level / 100), sampling_rate_hz)
        if self.kind == "shift":
            return x[:, round(self.level * sampling_rate_hz) :].astype(np.float32)
        return x[:, : max(1, round(self.level * sampling_rate_hz))].astype(np.float32)  # crop


def _rewire(x: np.ndarray, lead_names: list[str], mapping: dict[str, tuple[float, str]]) -> np.ndarray:
    missing = sorted({lead for pair in mapping.items() for lead in (pair[0], pair[1][1])} - set(lead_names))
    if missing:
        raise NotApplicable(f"needs lead(s) {', '.join(missing)}")
    out = x.copy()
    for lead, (sign, source) in mapping.items():
        out[lead_names.index(lead)] = sign * x[lead_names.index(source)]
    return out


def default_suite(quick: bool = False) -> tuple[Perturbation, ...]:
    """The perturbations ``ecglens robustness`` runs: every noise kind at 24-0 dB and every fault at its
    severities (``quick``: three noise kinds at 18, 6 dB and one severity per fault)."""
    if quick:
        noises = [Perturbation(kind, level) for kind in ("gaussian", "muscle", "wander") for level in (18.0, 6.0)]
        faults = [
            Perturbation("gain", 2.0),
            Perturbation("missing", 3),
            Perturbation("reversal", 0, "LA/RA"),
            Perturbation("swap", 0, "V1/V2"),
            Perturbation("rate", 10.0),
            Perturbation("crop", 5.0),
        ]
        return (*noises, *faults)
    noises = [Perturbation(kind, level) for kind in NOISE_KINDS for level in SNR_LEVELS_DB]
    faults = [Perturbation("gain", g) for g in (0.5, 0.75, 1.5, 2.0)]
    faults += [Perturbation("missing", m) for m in range(1, 7)]
    faults += [Perturbation("reversal", 0, v) for v in ("LA/RA", "LA/LL", "RA/LL")]
    faults += [Perturbation("swap", 0, v) for v in ("V1/V2", "V2/V3")]
    faults += [Perturbation("rate", e) for e in (-10.0, -5.0, 5.0, 10.0)]
    faults += [Perturbation("shift", s) for s in (0.5, 1.0, 2.0)]
    faults += [Perturbation("crop", c) for c in (8.0, 6.0, 4.0, 2.5)]
    return (*noises, *faults)


@dataclass(frozen=True)
class RandomPerturbation:
    """Training augmentation: with ``probability``, one perturbation of the chosen families at a random
    severity (noise at 6-24 dB SNR, gain 0.5-2, 1-3 flat leads, a reversal or swap, rate +-10 %)."""

    families: tuple[str, ...]
    probability: float = 0.5

    def __post_init__(self) -> None:
        unknown = sorted(set(self.families) - {"noise", "faults"})
        if unknown:
            raise ValueError(f"unknown augmentation family {', '.join(unknown)}; choose from noise, faults")

    def apply(
        self, signal: np.ndarray, sampling_rate_hz: float, lead_names: Sequence[str], rng: np.random.Generator
    ) -> np.ndarray:
        """The signal, perturbed or not; its length is kept (rate errors are cropped or zero-padded back)."""
        if not self.families or rng.random() >= self.probability:
            return signal
        family = self.families[rng.integers(len(self.families))]
        if family == "noise":
            choice = Perturbation(NOISE_KINDS[rng.integers(len(NOISE_KINDS))], float(rng.uniform(6, 24)))
        else:
            kind = ("gain", "missing", "reversal", "swap", "rate")[rng.integers(5)]
            variants = [v for v in REVERSALS if (v.startswith("V") == (kind == "swap"))]
            level = {
                "gain": float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))),
                "missing": int(rng.integers(1, 4)),
                "rate": float(rng.uniform(-10, 10)),
            }.get(kind, 0.0)
            choice = Perturbation(
                kind, level, variants[rng.integers(len(variants))] if kind in ("reversal", "swap") else ""
            )
        try:
            out = choice.apply(signal, sampling_rate_hz, lead_names, rng)
        except NotApplicable:
            return signal
        n = signal.shape[1]
        return out[:, :n] if out.shape[1] >= n else np.pad(out, ((0, 0), (0, n - out.shape[1])))
