"""Per-lead measurements of a record's representative beat: the amplitudes and levels a cardiologist's criteria
read (ST elevation and depression, Q waves, R and S voltages, R-peak time, the T wave's sign).

The representative beat of each lead is the sample-wise median of its dominant beats, aligned on the record's
QRS fiducials, as interpretation programs measure (a median beat averages noise out; Kligfield et al.,
AHA/ACCF/HRS recommendations part I, Circulation 2007;115:1306-1324). A premature beat (its RR under 80 % of
the median RR, or its QRS more than 40 ms wider or narrower than the median QRS) is left out of the median and
counted. Every lead is measured between the same global boundaries (`ecglens.waves.measure.global_boundaries`):

- **baseline**: the mean level over the 20 ms before the global QRS onset (the PR segment's end), the reference
  for ST deviation (Wagner et al., AHA/ACCF/HRS recommendations part VI, Circulation 2009;119:e262-e270: ST
  deviation at the J point against the level at the QRS onset);
- **ST at J and J+60 ms** (mV): the level at the global QRS offset (the J point) and 60 ms later, minus the
  baseline (part VI's criteria read ST at J; J+60 ms is the common alternative, both given);
- **Q, R, S, R'** (mV magnitudes, ms durations): the QRS's deflections from the baseline in order, a
  deflection of less than 0.02 mV not counted (our choice: 0.2 mm at standard gain); Q only before the first
  R, R' a positive deflection after S;
- **R-peak time** (ms): QRS onset to the peak of the last R (R' when present), as part III (Surawicz et al.,
  Circulation 2009;119:e235-e240) defines it for bundle branch block;
- **P and T amplitude** (mV, signed): the largest deviation from the baseline within the global P and T
  windows; **QRS net area** (mV*ms) over the QRS window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ecglens.waves.marks import WaveMarks

BASELINE_S = 0.020
ST_LATE_S = 0.060
PREMATURE_RR = 0.80
SUDDEN_RR = 0.85
"""A premature beat's RR is also under this share of the RR before it: early all at once, not by a sinus
arrhythmia's gradual shortening (a cardiologist's review found 4 "premature beats" in a sinus arrhythmia)."""
QRS_CHANGE_S = 0.040
MIN_WAVE_MV = 0.02
BEFORE_S = 0.40
AFTER_S = 0.60
LEAD_FIELDS = (
    "st_j_mv",
    "st_60_mv",
    "q_mv",
    "q_ms",
    "r_mv",
    "r_ms",
    "s_mv",
    "s_ms",
    "r_prime_mv",
    "r_peak_time_ms",
    "p_mv",
    "t_mv",
    "qrs_area_mv_ms",
)
"""The measurements of each lead, with their units in their names."""


@dataclass(frozen=True)
class LeadMeasurements:
    """One lead's measurements on its representative beat (None where the waves do not allow one)."""

    lead: str
    st_j_mv: float | None
    st_60_mv: float | None
    q_mv: float
    q_ms: float
    r_mv: float
    r_ms: float
    s_mv: float
    s_ms: float
    r_prime_mv: float
    r_peak_time_ms: float | None
    p_mv: float | None
    t_mv: float | None
    qrs_area_mv_ms: float

    def to_dict(self) -> dict[str, float | None]:
        """The values rounded (mV to 0.001, ms and areas to 0.1), without the lead's name."""
        out: dict[str, float | None] = {}
        for name, value in asdict(self).items():
            if name != "lead":
                out[name] = None if value is None else round(value, 3 if name.endswith("_mv") else 1)
        return out


@dataclass(frozen=True)
class RepresentativeBeat:
    """The median beat of every lead and where its waves lie (sample offsets from the fiducial, at the record's
    rate); ``premature`` beats were left out of it."""

    beats: np.ndarray
    sampling_rate_hz: float
    before: int
    boundaries: dict[str, float | None]
    used: int
    premature: int


def dominant_beats(
    peaks: np.ndarray, beats: list[dict[str, float | None]], rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Which beats are dominant and which premature: two boolean masks over ``peaks``. A beat is premature when
    its RR is under `PREMATURE_RR` of the median RR and under `SUDDEN_RR` of the RR before it (of the one after it
    for the first beat: the pause that follows an early beat), or when its QRS is `QRS_CHANGE_S` off the median
    width. The second condition keeps a sinus arrhythmia's gradual shortening from counting as premature beats."""
    n = len(peaks)
    premature = np.zeros(n, bool)
    if n >= 3:
        rr = np.diff(peaks).astype(float)
        before = np.concatenate([rr[1:2], rr[:-1]])  # the RR before each RR; the first: the one after it
        premature[1:] = (rr < PREMATURE_RR * np.median(rr)) & (rr < SUDDEN_RR * before)
    widths = np.array(
        [
            np.nan if b["QRS onset"] is None or b["QRS offset"] is None else b["QRS offset"] - b["QRS onset"]
            for b in beats
        ]
    )
    if np.isfinite(widths).sum() >= 3:
        premature |= np.abs(widths - np.nanmedian(widths)) > QRS_CHANGE_S * rate
    return ~premature, premature


def representative_beat(
    signal: np.ndarray, marks: WaveMarks, peaks: np.ndarray, beats: list[dict[str, float | None]]
) -> RepresentativeBeat | None:
    """Each lead's median dominant beat, from `BEFORE_S` before to `AFTER_S` after the fiducial (None when no
    dominant beat lies wholly inside the record)."""
    rate = marks.sampling_rate_hz
    before, after = round(BEFORE_S * rate), round(AFTER_S * rate)
    dominant, premature = dominant_beats(peaks, beats, rate)
    inside = (peaks - before >= 0) & (peaks + after <= signal.shape[1])
    chosen = np.flatnonzero(dominant & inside)
    if not len(chosen):
        return None
    stack = np.stack([signal[:, peaks[k] - before : peaks[k] + after] for k in chosen])
    boundaries: dict[str, float | None] = {}
    for name in beats[0] if beats else ():
        offsets = [b[name] - peaks[k] for k in chosen if (b := beats[k])[name] is not None]
        boundaries[name] = float(np.median(offsets)) + before if offsets else None
    return RepresentativeBeat(np.median(stack, axis=0), rate, before, boundaries, len(chosen), int(premature.sum()))


def _deflections(qrs: np.ndarray, rate: float) -> list[tuple[float, float, int]]:
    """The QRS's deflections from the baseline in order: (signed extreme mV, duration ms, index of the extreme),
    those under `MIN_WAVE_MV` left out (a small notch does not split a wave)."""
    sign = np.sign(qrs)
    out: list[tuple[float, float, int]] = []
    start = 0
    for k in range(1, len(qrs) + 1):
        if k == len(qrs) or sign[k] != sign[start]:
            part = qrs[start:k]
            extreme = int(np.argmax(np.abs(part)))
            if abs(part[extreme]) >= MIN_WAVE_MV:
                value, width, at = float(part[extreme]), (k - start) * 1000 / rate, start + extreme
                if out and np.sign(out[-1][0]) == np.sign(value):  # a small opposite notch between: one wave
                    last = out[-1]
                    stronger = (value, at) if abs(value) > abs(last[0]) else (last[0], last[2])
                    out[-1] = (stronger[0], last[1] + width, stronger[1])
                else:
                    out.append((value, width, at))
            start = k
    return out


def _qrs_waves(qrs: np.ndarray, rate: float) -> dict[str, float | None]:
    waves = _deflections(qrs, rate)
    q = s = r = r_prime = (0.0, 0.0)
    r_peak: int | None = None
    seen_r = seen_s = False
    for value, width, at in waves:
        if value > 0 and not seen_r:
            r, r_peak, seen_r = (value, width), at, True
        elif value < 0 and not seen_r:
            q = (-value, width)
        elif value < 0 and not seen_s:
            s, seen_s = (-value, width), True
        elif value > 0 and seen_s and r_prime == (0.0, 0.0):
            r_prime, r_peak = (value, width), at
    return {
        "q_mv": q[0],
        "q_ms": q[1],
        "r_mv": r[0],
        "r_ms": r[1],
        "s_mv": s[0],
        "s_ms": s[1],
        "r_prime_mv": r_prime[0],
        "r_peak_time_ms": None if r_peak is None else r_peak * 1000 / rate,
    }


def _extreme(trace: np.ndarray, start: float | None, stop: float | None) -> float | None:
    if start is None or stop is None or stop <= start:
        return None
    part = trace[max(0, round(start)) : round(stop) + 1]
    return float(part[np.argmax(np.abs(part))]) if part.size else None


def lead_measurements(beat: RepresentativeBeat, lead_names: tuple[str, ...]) -> tuple[LeadMeasurements, ...]:
    """Every lead's measurements on the representative beat (empty without a global QRS onset and offset)."""
    rate, bounds = beat.sampling_rate_hz, beat.boundaries
    onset, offset = bounds.get("QRS onset"), bounds.get("QRS offset")
    if onset is None or offset is None or offset <= onset:
        return ()
    a, b = round(onset), round(offset)
    width = beat.beats.shape[1]
    late = b + round(ST_LATE_S * rate)
    out = []
    for k, lead in enumerate(lead_names):
        trace = beat.beats[k] - float(np.mean(beat.beats[k, max(0, a - round(BASELINE_S * rate)) : a + 1]))
        qrs = trace[a : b + 1]
        out.append(
            LeadMeasurements(
                lead=lead,
                st_j_mv=float(trace[b]) if b < width else None,
                st_60_mv=float(trace[late]) if late < width else None,
                **_qrs_waves(qrs, rate),  # type: ignore[arg-type]
                p_mv=_extreme(trace, bounds.get("P onset"), bounds.get("P offset")),
                t_mv=_extreme(trace, bounds.get("T onset") or offset, bounds.get("T offset")),
                qrs_area_mv_ms=float(np.sum(qrs) * 1000 / rate),
            )
        )
    return tuple(out)
