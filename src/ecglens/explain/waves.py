"""Explanations placed among the heart's waves: for each record, its waves (a delineation of the scored input,
or LUDB's cardiologist marks when asked for and present), each method's map for each explained class, the
share of its positive evidence per segment (P, PR, QRS, ST, T, rest) and its plausibility for the class
(`ecglens.waves.segments`); and over records, per class and method, the mean plausibility with a bootstrap
interval and the mean segment profile.

A plausibility above the chance of an even map says little: any map that follows the QRS complexes beats it
for a QRS class. So each explanation is read beside **null maps** that know no class (`NULLS`): the ECG's own
slope and amplitude, and the same method on the network with its weights re-drawn (Adebayo et al., "Sanity
checks for saliency maps", NeurIPS 2018). A method earns a class only where its plausibility beats them,
paired record by record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from ecglens.bundle.meta import BundleMeta
from ecglens.explain.attribution import at_resolution, layer_steps
from ecglens.explain.inputs import Background
from ecglens.explain.records import RecordExplanation, explain_inputs, probabilities_of
from ecglens.preprocess import ModelInput
from ecglens.waves.marks import WaveMarks
from ecglens.waves.measure import Measurements, measure
from ecglens.waves.segments import SEGMENTS, WaveShares, segment_labels, wave_shares

NULLS = ("edge", "amplitude", "random-model")
"""The null maps each explanation is compared with: ``edge`` |dx/dt| of the scored input, ``amplitude``
|x - the lead's median| (both per lead; summed over leads for Grad-CAM, which has one value per time step), and
``random-model`` the same method and class on the network with every weight re-drawn from its initialiser
(seed 0)."""
MARKS = ("auto", "ludb")
"""Where the waves come from: ``auto`` (the default delineator on the scored input) or ``ludb`` (the
cardiologists' marks beside the record's header; ``auto`` for a record without them)."""
LEAD_RESOLVED = ("guided-gradcam", "shap")


@dataclass(frozen=True)
class WaveExplanation:
    """One record's explanation of one class by one method, with its waves, segment codes and shares."""

    explanation: RecordExplanation
    marks: WaveMarks
    labels: np.ndarray
    shares: WaveShares
    measurements: Measurements
    nulls: tuple[WaveShares, ...] = ()
    """The null maps' shares among the same waves (`NULLS`, in the order asked for; their ``method`` names the
    null)."""


def record_marks(item: ModelInput, sampling_rate_hz: float, lead_names: Sequence[str], source: str) -> WaveMarks:
    """The waves of a scored input at the model's rate: LUDB's marks (``source='ludb'``, when its annotation files
    sit beside the record's header), else a delineation of the input itself."""
    from ecglens.waves.delineate import delineate

    header = Path(item.source) if item.source else None
    if source == "ludb" and header is not None and header.with_suffix(".ii").exists():
        from ecglens.waves.ludb import read_ludb_marks

        marks = read_ludb_marks(header).at_rate(sampling_rate_hz)
        return WaveMarks(marks.sampling_rate_hz, tuple(marks.lead(lead) for lead in lead_names), marks.source)
    return delineate(item.signal, sampling_rate_hz, lead_names)


def explain_waves(
    model: nn.Module,
    meta: BundleMeta,
    inputs: Sequence[ModelInput],
    methods: Sequence[str],
    class_name: str | None = None,
    background: Background | None = None,
    marks_source: str = "auto",
    nulls: Sequence[str] = NULLS,
) -> list[WaveExplanation]:
    """Every method's explanation of each input (for its decided classes, or ``class_name``), placed among the
    input's waves, with the ``nulls`` (`NULLS`) placed among the same waves. Grad-CAM, a map per time step, is
    placed among the global waves (every lead alike); the lead-resolved methods among each lead's own."""
    if marks_source not in MARKS:
        raise ValueError(f"unknown source of waves {marks_source!r}; choose from {', '.join(MARKS)}")
    unknown = sorted(set(nulls) - set(NULLS))
    if unknown:
        raise ValueError(f"unknown null map {unknown[0]!r}; choose from {', '.join(NULLS)}")
    probabilities = probabilities_of(model, inputs)
    random = randomised_model(model) if "random-model" in nulls else None
    seen: dict[int, np.ndarray] = {}  # the background's probabilities per input length, under each network, once
    seen_random: dict[int, np.ndarray] = {}
    steps: dict[int, int] = {}
    source = marks_source if meta.policy.name == "crop" else "auto"  # a cut or padded input: its own waves
    out = []
    for i, item in enumerate(inputs):
        marks = record_marks(item, meta.sampling_rate_hz, meta.lead_names, source)
        measured = measure(marks, item.signal)
        labels = method_labels(marks, item.signal.shape[1])
        for method in methods:
            explained = explain_inputs(
                model,
                meta,
                [item],
                method,
                class_name,
                background,
                probabilities=probabilities[i : i + 1],
                background_p=seen,
            )
            for explanation in explained:
                codes, shares = among_waves(explanation, labels, meta.lead_names)
                placed = null_shares(explanation, codes, meta, nulls, random, background, model, seen_random, steps)
                out.append(WaveExplanation(explanation, marks, codes, shares, measured, placed))
    return out


def randomised_model(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every layer's parameters (and batch-norm statistics) re-drawn from its own
    initialiser: the model-randomisation test's network, which has learned nothing."""
    import copy

    import torch

    random = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in random.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return random.eval()


def signal_map(signal: np.ndarray, kind: str, per_lead: bool) -> np.ndarray:
    """A class-agnostic map of a scored input (leads x samples): ``edge`` |dx/dt| or ``amplitude`` |x - the
    lead's median|; summed over the leads and repeated on each (``per_lead`` False) for a per-time method."""
    x = np.asarray(signal, np.float64)
    values = np.abs(np.gradient(x, axis=1)) if kind == "edge" else np.abs(x - np.median(x, axis=1, keepdims=True))
    if per_lead:
        return values
    return np.repeat(values.sum(axis=0, keepdims=True), x.shape[0], axis=0)


def null_shares(
    explanation: RecordExplanation,
    codes: np.ndarray,
    meta: BundleMeta,
    nulls: Sequence[str],
    random: nn.Module | None,
    background: Background | None,
    model: nn.Module | None = None,
    background_p: dict[int, np.ndarray] | None = None,
    steps: dict[int, int] | None = None,
) -> tuple[WaveShares, ...]:
    """The ``nulls`` for one explanation, each placed among the explanation's own segment codes: a signal map
    shaped as the method's (per lead or per time; for Grad-CAM averaged to the resolution of ``model``'s layer 4,
    `at_resolution`, when ``model`` is given), or the method on the ``random`` network for the same class.
    ``background_p`` (the background's probabilities under ``random``) and ``steps`` (layer 4's length per input
    length) are kept across calls so each is computed once."""
    steps = {} if steps is None else steps
    out = []
    for null in nulls:
        if null == "random-model" and random is not None:
            (again,) = explain_inputs(
                random,
                meta,
                [explanation.input],
                explanation.method,
                explanation.class_name,
                background,
                background_p=background_p,
            )
            values = again.values
        else:
            values = signal_map(explanation.input.signal, null, explanation.method in LEAD_RESOLVED)
            if explanation.method == "gradcam" and model is not None:  # no finer than Grad-CAM's layer
                n_leads, n_samples = values.shape
                if n_samples not in steps:
                    steps[n_samples] = layer_steps(model, n_leads, n_samples)
                values = at_resolution(values, steps[n_samples])
        out.append(wave_shares(values, codes, meta.lead_names, explanation.class_name, null))
    return tuple(out)


def method_labels(marks: WaveMarks, n_samples: int) -> dict[bool, np.ndarray]:
    """The segment codes of an input (`segment_labels`): by each lead's own waves (key True) and by the global
    waves on every lead (key False)."""
    return {per_lead: segment_labels(marks, n_samples, per_lead) for per_lead in (True, False)}


def among_waves(
    explanation: RecordExplanation, labels: dict[bool, np.ndarray], lead_names: Sequence[str]
) -> tuple[np.ndarray, WaveShares]:
    """An explanation's segment codes and shares: a lead-resolved method's map among each lead's own waves,
    Grad-CAM's (one value per time step) among the global waves."""
    codes = labels[explanation.method in LEAD_RESOLVED]
    return codes, wave_shares(explanation.values, codes, lead_names, explanation.class_name, explanation.method)


def _bootstrap(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> tuple[float, float] | None:
    """A 95 % percentile bootstrap interval of the mean (None under 2 values)."""
    if len(values) < 2:
        return None
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


MIN_INTERVAL = 10
"""Paired differences from a null get a bootstrap interval from this many pairs on: under it the percentile
bootstrap of a mean undercovers badly (simulated on normal differences, its nominal 95 % covers 80 % at 4 pairs,
89 % at 10), and only the sign-flip test's p-value is given (the mean plausibility likewise gets no interval)."""
EXACT_SIGN_FLIPS = 16
"""Up to this many pairs the sign-flip test enumerates every sign pattern (2^n); above it, 10,000 random ones."""


def sign_flip_p(differences: np.ndarray, rng: np.random.Generator, n_random: int = 10_000) -> float | None:
    """The two-sided p-value of a paired sign-flip permutation test that the mean difference is 0: under the null
    each pair's difference is as likely negated, so the observed |mean| is ranked among those of the sign patterns
    (all of them up to `EXACT_SIGN_FLIPS` pairs, else ``n_random`` random ones, counting the observed one, so p is
    at least 1/10,001 there). Exact up to `EXACT_SIGN_FLIPS` pairs and a valid Monte-Carlo test above, unlike a
    small-n bootstrap interval: 5 pairs can never reach p < 0.05 (the smallest is 2/32)."""
    n = len(differences)
    if n == 0:
        return None
    if n <= EXACT_SIGN_FLIPS:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        means = np.abs(signs @ differences) / n
        return float(np.mean(means >= abs(differences.mean()) - 1e-12))
    signs = rng.choice((-1.0, 1.0), size=(n_random, n))
    means = np.abs(signs @ differences) / n
    return float((1 + np.sum(means >= abs(differences.mean()) - 1e-12)) / (1 + n_random))


def _mean(values: Sequence[float | bool]) -> float | None:
    return float(np.mean(values)) if len(values) else None


@dataclass(frozen=True)
class NullComparison:
    """One class and method against one null map (`NULLS`), over the ``n`` explanations where both have a
    plausibility: the null's mean plausibility, the mean paired difference (method minus null) with its 95 %
    bootstrap interval (from `MIN_INTERVAL` pairs on), the sign-flip test's two-sided p-value (`sign_flip_p`)
    and the null's pointing-game hit rate."""

    null: str
    n: int
    plausibility: float | None
    difference: float | None
    interval: tuple[float, float] | None
    pointing: float | None
    p_value: float | None = None

    def verdict(self) -> str:
        """``above`` or ``below`` where the sign-flip test gives p < 0.05, else ``tie``."""
        if self.p_value is None or self.difference is None or self.p_value >= 0.05:
            return "tie"
        return "above" if self.difference > 0 else "below"

    def to_dict(self) -> dict:
        """Plain data."""
        return {
            "null": self.null,
            "n": self.n,
            "plausibility": self.plausibility,
            "difference": self.difference,
            "interval": None if self.interval is None else list(self.interval),
            "pointing": self.pointing,
            "p_value": self.p_value,
            "verdict": self.verdict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> NullComparison:
        """The comparison back from `to_dict`."""
        interval = data["interval"]
        return cls(
            data["null"],
            data["n"],
            data["plausibility"],
            data["difference"],
            None if interval is None else (interval[0], interval[1]),
            data["pointing"],
            data.get("p_value"),
        )


def difference_text(comparison: NullComparison) -> str:
    """``-0.21 [-0.25, -0.17] n 14, p 0.001``: the mean paired difference, its interval when there is one, the
    pairs and the sign-flip p-value."""
    if comparison.difference is None:
        return "-"
    interval = "" if comparison.interval is None else f" [{comparison.interval[0]:+.2f}, {comparison.interval[1]:+.2f}]"
    p = "" if comparison.p_value is None else f", p {comparison.p_value:.3f}"
    p = ", p < 0.001" if comparison.p_value is not None and comparison.p_value < 0.001 else p
    return f"{comparison.difference:+.2f}{interval} n {comparison.n}{p}"


def compare_with_null(
    pairs: Sequence[tuple[WaveShares, WaveShares]], null: str, rng: np.random.Generator, n_boot: int
) -> NullComparison:
    """A method's shares against a null's, paired by explanation (those where both have a plausibility)."""
    both = [
        (m.plausibility, n.plausibility, n.pointing)
        for m, n in pairs
        if m.plausibility is not None and n.plausibility is not None
    ]
    differences = np.array([m - n for m, n, _ in both], np.float64)
    return NullComparison(
        null,
        len(both),
        _mean([n for _, n, _ in both]),
        _mean(differences.tolist()),
        _bootstrap(differences, rng, n_boot) if len(differences) >= MIN_INTERVAL else None,
        _mean([hit for _, _, hit in both if hit is not None]),
        sign_flip_p(differences, rng),
    )


@dataclass(frozen=True)
class PlausibilityRow:
    """One class and method over records: mean plausibility with a 95 % bootstrap interval, mean chance,
    and the mean share per segment, over the ``n`` explanations less the ``n_without_evidence`` maps with no
    positive evidence among the waves (counted, and left out of every mean; shares None when all are); the
    pointing-game hit rate, and the comparison with each null map (`NULLS`)."""

    class_name: str
    method: str
    n: int
    plausibility: float | None
    interval: tuple[float, float] | None
    chance: float | None
    shares: dict[str, float] | None
    n_without_evidence: int = 0
    pointing: float | None = None
    nulls: tuple[NullComparison, ...] = ()

    def top_segment(self) -> str:
        """``QRS (41%)``: the segment with the largest mean share (``none`` when no map has evidence)."""
        if self.shares is None:
            return "none"
        top = max(self.shares, key=lambda segment: self.shares[segment] if self.shares else 0.0)
        return f"{top} ({self.shares[top]:.0%})"

    def null(self, name: str) -> NullComparison | None:
        """The comparison with the null map ``name``, if it was made."""
        return next((n for n in self.nulls if n.null == name), None)

    def to_dict(self) -> dict:
        """Plain data: one row of ``plausibility.csv`` (the null comparisons as ``<null>_difference`` ...)."""
        flat: dict[str, object] = {}
        for comparison in self.nulls:
            data = comparison.to_dict()
            flat |= {f"{comparison.null}_{key}": value for key, value in data.items() if key != "null"}
        return {
            "class": self.class_name,
            "method": self.method,
            "n": self.n,
            "plausibility": self.plausibility,
            "interval": None if self.interval is None else list(self.interval),
            "chance": self.chance,
            "without_evidence": self.n_without_evidence,
            "pointing": self.pointing,
            **{f"share_{seg}": None if self.shares is None else self.shares[seg] for seg in SEGMENTS},
            **flat,
        }

    @classmethod
    def from_dict(cls, data: dict) -> PlausibilityRow:
        """The row back from `to_dict` (a row saved before the null maps has none)."""
        interval = data["interval"]
        nulls = tuple(
            NullComparison.from_dict(
                {
                    "null": null,
                    **{k: data[f"{null}_{k}"] for k in ("n", "plausibility", "difference", "interval", "pointing")},
                    "p_value": data.get(f"{null}_p_value"),
                }
            )
            for null in NULLS
            if f"{null}_n" in data
        )
        return cls(
            data["class"],
            data["method"],
            data["n"],
            data["plausibility"],
            None if interval is None else (interval[0], interval[1]),
            data["chance"],
            None if data["share_P"] is None else {seg: data[f"share_{seg}"] for seg in SEGMENTS},
            data["without_evidence"],
            data.get("pointing"),
            nulls,
        )


def plausibility_table(
    explained: Sequence[WaveExplanation | WaveShares | tuple[WaveShares, tuple[WaveShares, ...]]],
    n_boot: int = 1000,
    seed: int = 0,
) -> list[PlausibilityRow]:
    """Per class and method: the mean plausibility (a bootstrap interval from `MIN_INTERVAL` explanations on),
    chance, segment profile and pointing-game hit rate over the maps with positive evidence among the waves (the
    others counted), and the paired comparison with each null map the explanations carry (an item is a
    `WaveExplanation`, the shares alone, or the shares with their nulls' shares)."""
    groups: dict[tuple[str, str], list[tuple[WaveShares, tuple[WaveShares, ...]]]] = {}
    for item in explained:
        if isinstance(item, WaveExplanation):
            one = (item.shares, item.nulls)
        else:
            one = item if isinstance(item, tuple) else (item, ())
        groups.setdefault((one[0].class_name, one[0].method), []).append(one)
    rng = np.random.default_rng(seed)
    rows = []
    for (name, method), every in sorted(groups.items()):
        kept = [(s, nulls) for s, nulls in every if s.has_evidence]
        shares = [s for s, _ in kept]
        values = np.array([s.plausibility for s in shares if s.plausibility is not None], np.float64)
        interval = _bootstrap(values, rng, n_boot) if len(values) >= MIN_INTERVAL else None
        names = [n.method for n in kept[0][1]] if kept else []
        comparisons = tuple(
            compare_with_null([(s, nulls[k]) for s, nulls in kept], null, rng, n_boot) for k, null in enumerate(names)
        )
        rows.append(
            PlausibilityRow(
                name,
                method,
                len(every),
                _mean(values.tolist()),
                interval,
                _mean([s.chance for s in shares if s.chance is not None]),
                {seg: float(np.mean([s.shares[seg] for s in shares])) for seg in SEGMENTS} if shares else None,
                len(every) - len(shares),
                _mean([s.pointing for s in shares if s.pointing is not None]),
                comparisons,
            )
        )
    return rows


@dataclass(frozen=True)
class WavesSummary:
    """A study's explanations among the waves, as it saves and reloads them: the model and methods, the
    plausibility per class and method, each explained record's measurements and the page with every figure;
    or, where delineation is not installed, why there is none."""

    model: str
    methods: tuple[str, ...]
    n_records: int
    table: tuple[PlausibilityRow, ...]
    measurements: tuple[tuple[str, Measurements], ...]
    waves_source: str
    page: str | None
    unavailable: str | None = None

    @classmethod
    def of(
        cls,
        model: str,
        methods: Sequence[str],
        n_records: int,
        explained: Sequence[WaveExplanation],
        table: Sequence[PlausibilityRow],
        page: Path,
    ) -> WavesSummary:
        """The summary of ``explain_waves``'s output, its `plausibility_table` and the ``waves.html`` written."""
        measured = {item.explanation.input.record_id: item.measurements for item in explained}
        sources = sorted({item.marks.source for item in explained})
        return cls(
            model,
            tuple(methods),
            n_records,
            tuple(table),
            tuple(measured.items()),
            ", ".join(sources) or "none",
            str(page),
        )

    def to_dict(self) -> dict:
        """Plain data for a study's JSON."""
        return {
            "model": self.model,
            "methods": list(self.methods),
            "n_records": self.n_records,
            "table": [row.to_dict() for row in self.table],
            "measurements": [{"record_id": rid, **m.to_dict()} for rid, m in self.measurements],
            "waves_source": self.waves_source,
            "page": self.page,
            "unavailable": self.unavailable,
        }

    @classmethod
    def from_dict(cls, data: dict) -> WavesSummary:
        """The summary back from `to_dict`."""
        return cls(
            data["model"],
            tuple(data["methods"]),
            data["n_records"],
            tuple(PlausibilityRow.from_dict(row) for row in data["table"]),
            tuple((m["record_id"], Measurements.from_dict(m)) for m in data["measurements"]),
            data["waves_source"],
            data["page"],
            data["unavailable"],
        )

    @classmethod
    def missing(cls, model: str, methods: Sequence[str], why: str) -> WavesSummary:
        """No summary, and why (delineation is not installed)."""
        return cls(model, tuple(methods), 0, (), (), "none", None, why)
