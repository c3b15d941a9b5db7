"""A diagnosis with its explanations, as one result object: what the web viewer and its HTTP API return.

`explain_scored` explains exactly the input `ecglens.predict.Predictor` scored: Grad-CAM as one value per
time step (it has no lead axis), SHAP as per-lead sums (signed) and per-time maps. Inference only: nothing
here imports training code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ecglens.bundle.meta import BundleMeta
from ecglens.explain.inputs import Background
from ecglens.explain.records import Additivity, explain_inputs
from ecglens.explain.waves import among_waves, method_labels, null_shares
from ecglens.predict import Scored
from ecglens.waves.delineate import delineate
from ecglens.waves.segments import WaveShares

EXPLANATIONS = ("gradcam", "shap")
"""What the page's explanation panel draws: Grad-CAM's time map, SHAP's time map and per-lead values."""
REPORT_EXPLANATIONS = ("gradcam", "guided-gradcam", "shap")
"""What the one-page report draws over the ECG (guided Grad-CAM, lead-resolved, as SHAP is: per lead and 40 ms)."""


@dataclass(frozen=True)
class ClassExplanation:
    """One method's explanation of one class, as arrays for drawing.

    Attributes:
        method: ``gradcam`` or ``shap``.
        class_name: the explained class.
        probability: the class's probability on the scored input.
        time_map: one value per input sample (Grad-CAM: the map itself, ReLU'd, upsampled; SHAP: the sum over
            leads), never a lead-resolved map.
        lead_values: per-lead signed sums over time (SHAP only; additive: they add up to the probability's
            difference from the background's mean, in expectation).
        waves: where the map's positive evidence falls among the scored input's delineated waves, and its
            plausibility for the class (``serve --measurements``); None otherwise.
        waves_from: the delineation that gave those waves.
        additivity: SHAP's sum, its Monte-Carlo error and its expectation, in its units (SHAP only).
    """

    method: str
    class_name: str
    probability: float
    time_map: np.ndarray
    lead_values: np.ndarray | None = None
    waves: WaveShares | None = None
    waves_from: str | None = None
    additivity: Additivity | None = None
    edge: WaveShares | None = None
    """The ECG's own slope (|dx/dt|, `ecglens.explain.waves.signal_map`) among the same waves: a map that knows no
    class, whose plausibility the explanation's is read beside (with ``waves``)."""

    def to_dict(self, lead_names: Sequence[str]) -> dict:
        """Plain data for JSON (6 significant digits)."""
        out = {
            "method": self.method,
            "class": self.class_name,
            "probability": self.probability,
            "time_map": _rounded(self.time_map),
            "per": "time step (the same for every lead)",
        }
        if self.lead_values is not None:
            out["lead_values"] = dict(zip(lead_names, _rounded(self.lead_values), strict=True))
        if self.waves is not None:
            edge = None if self.edge is None else self.edge.plausibility
            out["waves"] = {**self.waves.to_dict(), "waves_from": self.waves_from, "edge_plausibility": edge}
        if self.additivity is not None:
            out["additivity"] = {**self.additivity.to_dict(), "line": self.additivity.line()}
        return out


@dataclass(frozen=True)
class Diagnosis:
    """A prediction, the input it scored, and explanations of it."""

    scored: Scored
    meta: BundleMeta
    explanations: tuple[ClassExplanation, ...] = field(default=())

    def to_dict(self, include_signal: bool = True) -> dict:
        """The JSON Lines row of ``ecglens predict``, plus the thresholds, the explanations and (with
        ``include_signal``) the scored input in mV to 0.1 uV."""
        out = self.scored.prediction.to_dict()
        out["thresholds"] = dict(zip(self.meta.class_names, self.meta.thresholds, strict=True))
        if include_signal:
            out["input"] = {
                "sampling_rate_hz": self.meta.sampling_rate_hz,
                "lead_names": list(self.meta.lead_names),
                "unit": "mV",
                "signal": np.round(self.scored.input.signal.astype(np.float64), 4).tolist(),
            }
        out["explanations"] = [e.to_dict(self.meta.lead_names) for e in self.explanations]
        return out


def _rounded(values: np.ndarray, digits: int = 6) -> list[float]:
    """Values to ``digits`` significant digits, vectorised (a 12 x 5000 record takes about a millisecond)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore"):
        magnitude = np.where(values == 0, 0.0, np.floor(np.log10(np.abs(values))))
    scale = 10.0 ** (digits - 1 - magnitude)
    return (np.round(values * scale) / scale).tolist()


def explain_scored(
    model: torch.nn.Module,
    meta: BundleMeta,
    scored: Scored,
    methods: Sequence[str],
    class_name: str | None = None,
    background: Background | None = None,
    n_samples: int = 16,
    among_the_waves: bool = False,
) -> tuple[ClassExplanation, ...]:
    """Explanations of a scored record for ``class_name``, or else its decisions (else the most probable class),
    through `ecglens.explain.records.explain_inputs` (the one explanation loop), summarised for drawing; with
    ``among_the_waves``, each placed among the scored input's own delineated waves (needs neurokit2).

    Raises:
        ValueError: an unknown method or class, or SHAP without a background.
    """
    unknown = set(methods) - set(EXPLANATIONS)
    if unknown:
        raise ValueError(f"unknown explanation {', '.join(sorted(unknown))}; choose from {', '.join(EXPLANATIONS)}")
    marks = labels = None
    if among_the_waves:
        marks = delineate(scored.input.signal, meta.sampling_rate_hz, meta.lead_names)
        labels = method_labels(marks, scored.input.signal.shape[1])
    out = []
    for method in methods:
        for e in explain_inputs(
            model,
            meta,
            [scored.input],
            method,
            class_name,
            background,
            n_samples,
            probabilities=scored.probabilities[None],
        ):
            shares = edge = None
            if labels is not None:
                codes, shares = among_waves(e, labels, meta.lead_names)
                (edge,) = null_shares(e, codes, meta, ("edge",), None, None)
            source = None if marks is None else marks.source
            if method == "gradcam":  # one map per time step, repeated over the leads: keep one row
                out.append(
                    ClassExplanation(method, e.class_name, e.probability, e.values[0], None, shares, source, None, edge)
                )
            else:
                summed = (e.values.sum(axis=0), e.values.sum(axis=1))
                out.append(
                    ClassExplanation(method, e.class_name, e.probability, *summed, shares, source, e.additivity, edge)
                )
    return tuple(out)


def report_pdf(
    model: torch.nn.Module,
    meta: BundleMeta,
    scored: Scored,
    label: str,
    method: str | None = None,
    class_name: str | None = None,
    background: Background | None = None,
    n_samples: int = 16,
) -> bytes:
    """The scored record's one-page PDF (`ecglens.report.pdf`), with ``method``'s explanation of ``class_name``
    (else of its first decision, else its most probable class) drawn over the ECG when a method is given."""
    from ecglens.report.pdf import record_pdf

    explanation = None
    if method is not None:
        explained = explain_inputs(
            model, meta, [scored.input], method, class_name, background, n_samples, scored.probabilities[None]
        )
        explanation = explained[0] if explained else None
    return record_pdf(scored, meta, label, explanation)
