"""Faithfulness, measured: deletion/insertion curves, localisation against ground truth, sanity check.

The units deleted are **segments** of `SEGMENT_MS` (60 ms: two thirds of a normal QRS complex, half a P wave) of
one lead, or of all leads at once for a map with one value per time step (Grad-CAM). A deleted segment
becomes the lead's **median**, its isoelectric level: a flat stretch of baseline, within the record's range,
where zeroing single samples would cut impulses into the trace that the network reads as QRS-like edges.
Every method ranks the segments by the same quantity, its **positive evidence** for the class (the sum of
the positive part of its map over the segment), and ties (Grad-CAM's zeros, for one) are broken at random
with a seed, never in lead order.

Deletion replaces the most attributed segments by the baseline step by step; insertion starts from the
all-baseline record and puts them back. Each curve is drawn beside the same procedure in a random order,
and the area differences to random are reported per method and class with bootstrap intervals over records.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from torch import nn

from ecglens.bundle.meta import BundleMeta
from ecglens.explain.attribution import attribute, evaluation_mode
from ecglens.explain.inputs import Background
from ecglens.explain.shards import map_shards
from ecglens.models import model_device
from ecglens.preprocess import ModelInput


@dataclass(frozen=True)
class Curves:
    """Class probability as the top-k fraction of the input is deleted / inserted."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray

    @staticmethod
    def area(curve: np.ndarray, fractions: np.ndarray) -> float:
        """Area under a curve over fractions 0..1 (trapezoids)."""
        return float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(fractions)))

    def areas(self) -> dict[str, float]:
        """Areas of the four curves (deletion: lower is more faithful; insertion: higher)."""
        return {
            name: self.area(getattr(self, name), self.fractions)
            for name in ("deletion", "insertion", "random_deletion", "random_insertion")
        }


SEGMENT_MS = 60.0
"""Length of a deleted segment."""


def format_gain(value: Sequence[float | None]) -> str:
    """A gain over random with its interval: ``+0.120 [+0.050, +0.190]``, or ``(one record, no interval)``."""
    mean, low, high = value
    if low is None or high is None:
        return f"{mean:+.3f} (one record, no interval)"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def median_baseline(x: torch.Tensor) -> torch.Tensor:
    """Each lead held at its median (its isoelectric level): leads x samples."""
    return x.median(dim=-1, keepdim=True).values.expand_as(x).clone()


def segment_units(attribution: np.ndarray, segment: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Positive evidence per unit, and each sample's unit (leads x samples).

    A map whose leads are all equal (one value per time step) is cut into time segments across all leads;
    any other map into segments of one lead.

    Returns:
        (scores per unit, unit index of every sample, whether the units span all leads)
    """
    values = np.asarray(attribution, np.float64)
    n_leads, n = values.shape
    positive = np.clip(values, 0, None)
    n_segments = -(-n // segment)
    segment_of = np.minimum(np.arange(n) // segment, n_segments - 1)
    time_only = bool(np.all(values == values[:1]))
    if time_only:
        scores = np.bincount(segment_of, positive[0], minlength=n_segments)
        return scores, np.broadcast_to(segment_of, values.shape).copy(), True
    unit = np.arange(n_leads)[:, None] * n_segments + segment_of[None, :]
    scores = np.bincount(unit.ravel(), positive.ravel(), minlength=n_leads * n_segments)
    return scores, unit, False


def rank_units(scores: np.ndarray, seed: int) -> np.ndarray:
    """Units by descending score, ties in a random order drawn from ``seed``."""
    tie_break = np.random.default_rng(seed).random(len(scores))
    return np.lexsort((tie_break, -np.asarray(scores)))


@torch.no_grad()
def deletion_insertion(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    attribution: np.ndarray,
    baseline: torch.Tensor | None = None,
    steps: int = 10,
    segment: int = 6,
    seed: int = 0,
) -> Curves:
    """Replace the segments with the most positive evidence by the baseline, step by step, and back.

    Args:
        model: classifier (probabilities are recorded).
        x: one record, leads x samples.
        target: class index.
        attribution: leads x samples; a map equal over the leads is cut into time segments across all leads.
        baseline: replacement values (default `median_baseline`).
        steps: number of equal fractions of the units from 0 to 1.
        segment: samples per segment (`SEGMENT_MS` at the model's rate).
        seed: seeds the tie-break and the random order used as reference.
    """
    baseline = median_baseline(x) if baseline is None else baseline
    scores, unit_of, _ = segment_units(attribution, segment)
    order = rank_units(scores, seed)
    random_order = np.random.default_rng([seed, 1]).permutation(len(scores))
    fractions = np.linspace(0, 1, steps + 1)
    counts = np.round(fractions * len(scores)).astype(int)
    units = torch.as_tensor(unit_of, device=x.device)

    def curve(ranking: np.ndarray, delete: bool) -> np.ndarray:
        batch = []
        for count in counts:
            chosen = torch.zeros(len(scores), dtype=torch.bool, device=x.device)
            chosen[torch.as_tensor(ranking[:count], dtype=torch.long, device=x.device)] = True
            replaced = chosen[units]
            batch.append(torch.where(replaced, baseline, x) if delete else torch.where(replaced, x, baseline))
        with evaluation_mode(model):
            device = next(model.parameters()).device
            return torch.sigmoid(model(torch.stack(batch).to(device)))[:, target].float().cpu().numpy()

    return Curves(
        fractions, curve(order, True), curve(order, False), curve(random_order, True), curve(random_order, False)
    )


def localisation(attribution: np.ndarray, mask: np.ndarray) -> tuple[float | None, bool | None]:
    """AUROC of attribution values against a ground-truth evidence mask, and the pointing game.

    The pointing game is a hit when the most attributed point lies inside the mask. Both are None
    when the mask is empty or covers everything.
    """
    truth = np.asarray(mask, bool).ravel()
    values = np.asarray(attribution, np.float64).ravel()
    if truth.all() or not truth.any():
        return None, None
    return float(roc_auc_score(truth, values)), bool(truth[int(np.argmax(values))])


def randomized_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of the model with every parameter re-initialised (the cascading-randomisation endpoint)."""
    clone = copy.deepcopy(model)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in clone.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset) and module is not clone:
                reset()
    finally:
        torch.random.set_rng_state(generator_state)
    return clone.eval()


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two attribution maps (flattened); 0 when either is constant."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0  # a constant map carries no ranking: no agreement with the other
    return float(spearmanr(a, b).statistic)


@dataclass(frozen=True)
class FaithfulnessRow:
    """Means over the records of one class for one method (None where nothing was measured)."""

    method: str
    class_name: str
    n: int
    deletion: float | None
    insertion: float | None
    random_deletion: float | None
    random_insertion: float | None
    localisation_auroc: float | None
    pointing_game: float | None
    sanity_rank_correlation: float | None
    deletion_gain: tuple[float, float | None, float | None] | None = None
    """Random deletion area minus the method's (above 0: better than random), mean and 95 % bootstrap interval."""
    insertion_gain: tuple[float, float | None, float | None] | None = None
    """The method's insertion area minus random's, mean and 95 % bootstrap interval."""

    @property
    def deletion_worse_than_random(self) -> bool:
        """A deletion curve above the random order's: the attribution ranks segments worse than chance."""
        return self.deletion is not None and self.random_deletion is not None and self.deletion > self.random_deletion


@dataclass(frozen=True)
class FaithfulnessResult:
    """Per method and class: deletion/insertion areas (and random references), localisation, sanity."""

    rows: tuple[FaithfulnessRow, ...]
    fractions: np.ndarray
    mean_curves: dict[str, dict[str, np.ndarray]]
    n_records: int
    seconds: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "rows": [
                {**asdict(row), "deletion_worse_than_random": row.deletion_worse_than_random} for row in self.rows
            ],
            "fractions": self.fractions.tolist(),
            "n_records": self.n_records,
            "seconds": self.seconds,
            "notes": list(self.notes),
            "mean_curves": {m: {k: v.tolist() for k, v in c.items()} for m, c in self.mean_curves.items()},
        }

    def to_markdown(self) -> str:
        """The faithfulness and localisation table."""

        def cell(value):
            return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"

        def gain(value):
            return "n/a" if value is None else format_gain(value)

        lines = [
            "| method | class | n | deletion AUC (random) | gain over random [95 % CI] | insertion AUC (random) | "
            "gain over random [95 % CI] | localisation AUROC | pointing game | rank corr. with random model |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            flag = " (worse than random)" if row.deletion_worse_than_random else ""
            lines.append(
                f"| {row.method} | {row.class_name} | {row.n} | {cell(row.deletion)} ({cell(row.random_deletion)})"
                f"{flag} | {gain(row.deletion_gain)} | {cell(row.insertion)} ({cell(row.random_insertion)}) | "
                f"{gain(row.insertion_gain)} | {cell(row.localisation_auroc)} | {cell(row.pointing_game)} | "
                f"{cell(row.sanity_rank_correlation)} |"
            )
        lines += ["", DELETION_NOTE]
        return "\n".join(lines + [f"- {note}" for note in self.notes])


_CURVES = ("deletion", "insertion", "random_deletion", "random_insertion")
DELETION_NOTE = (
    f"Units are {SEGMENT_MS:g}-ms segments of one lead (of all leads for Grad-CAM, one value per time step), ranked "
    "by each method's positive evidence for the class, ties at random; a deleted segment becomes the lead's median "
    "(its isoelectric level). Deletion: lower area is more faithful; insertion (from the all-median record): "
    "higher. Gains are the differences to the same procedure in a random order, per record, with 95 % bootstrap "
    "intervals over records. Localisation is against the synthetic ground-truth evidence masks. The last column "
    "compares attributions with those of the same network with re-initialised weights: near 0 means the "
    "explanation depends on what was learned."
)


def faithfulness(
    model: nn.Module,
    meta: BundleMeta,
    inputs: Sequence[ModelInput],
    background: Background,
    methods: Sequence[str] = ("gradcam", "shap"),
    steps: int = 10,
    n_samples: int = 8,
    progress: bool = True,
    store: str | Path | None = None,
    job: Mapping | None = None,
) -> FaithfulnessResult | None:
    """Measure each method on records labelled with a class, for that class.

    For every record and each of its true classes: deletion and insertion curves (against a random
    order), localisation against the evidence mask when the record has one, and the rank correlation
    with the attribution of a randomly re-initialised copy of the model.

    Args:
        model: the classifier.
        meta: its bundle's metadata (class names).
        inputs: model inputs with labels.
        background: the SHAP background.
        methods: attribution methods to measure.
        steps: points of each deletion/insertion curve, beyond the first.
        n_samples: expected-gradients samples of SHAP.
        progress: show a progress bar.
        store: folder for finished shards: resumable, and required under ``torchrun`` (records are spread
            over the processes; see `ecglens.explain.shards`).
        job: what identifies this job's shards besides the options above (checkpoint, records, background);
            `ecglens.explain.shards.finish` with the same ``store`` and ``job`` removes them.

    Returns:
        The result on rank 0 (always, outside torchrun); None on the other ranks.
    """
    started = time.perf_counter()
    segment = max(1, round(SEGMENT_MS / 1000 * meta.sampling_rate_hz))
    compute = _measurer(model, meta, background, methods, steps, n_samples, segment)
    job = (
        None
        if store is None
        else {
            "method": "faithfulness-segments",
            "methods": list(methods),
            "steps": steps,
            "n_samples": n_samples,
            "segment": segment,
            **(job or {}),
        }
    )
    arrays = map_shards(compute, inputs, store, job, desc="faithfulness", progress=progress)
    if arrays is None:
        return None
    n_points = steps + 1
    fractions = np.linspace(0, 1, n_points)
    method_of = arrays.get("method", np.zeros(0, np.int64))
    mean_curves = {
        method: {
            key: _mean_curve(list(arrays["curves"][method_of == m, k]) if len(method_of) else [], n_points)
            for k, key in enumerate(_CURVES)
        }
        for m, method in enumerate(methods)
    }
    notes = (
        "Grad-CAM maps are one value per time step, repeated over the leads; its localisation is therefore "
        "limited to time.",
        *_baseline_notes(arrays.get("curves", np.zeros((0, len(_CURVES), n_points))), fractions),
    )
    return FaithfulnessResult(
        tuple(_summary_rows(arrays, methods, meta)),
        fractions,
        mean_curves,
        len(inputs),
        time.perf_counter() - started,
        notes,
    )


def _measurer(
    model: nn.Module,
    meta: BundleMeta,
    background: Background,
    methods: Sequence[str],
    steps: int,
    n_samples: int,
    segment: int,
) -> Callable[[int, Sequence[ModelInput]], dict[str, np.ndarray]]:
    """The shard function of `faithfulness`: every method on every record, for each of its true classes."""
    random_model = randomized_copy(model)
    device = model_device(model)

    def compute(first: int, items: Sequence[ModelInput]) -> dict[str, np.ndarray]:
        rows: dict[str, list] = {
            key: [] for key in ("record", "method", "target", "areas", "curves", "auroc", "pointing", "sanity")
        }
        for index, item in enumerate(items, first):
            if item.labels is None:
                continue
            x = torch.from_numpy(item.signal)[None].to(device)
            base = background.tensor(item.n_samples, device)
            flat = median_baseline(x[0])
            for target, (m, method) in itertools.product(np.flatnonzero(item.labels > 0.5), enumerate(methods)):
                values = attribute(model, method, x, int(target), base, n_samples, seed=index)
                curves = deletion_insertion(model, x[0], int(target), values, flat, steps, segment, seed=index)
                evidence = item.evidence or {}
                auroc, hit = (
                    localisation(values, evidence[meta.class_names[target]])
                    if (meta.class_names[target] in evidence)
                    else (None, None)
                )
                random_values = attribute(random_model, method, x, int(target), base, n_samples, seed=index)
                areas = curves.areas()
                for key, value in (
                    ("record", index),
                    ("method", m),
                    ("target", int(target)),
                    ("areas", [areas[key] for key in _CURVES]),
                    ("curves", [getattr(curves, key) for key in _CURVES]),
                    ("auroc", np.nan if auroc is None else auroc),
                    ("pointing", np.nan if hit is None else float(hit)),
                    ("sanity", rank_correlation(values, random_values)),
                ):
                    rows[key].append(value)
        return {
            "record": np.asarray(rows["record"], np.int64),
            "method": np.asarray(rows["method"], np.int64),
            "target": np.asarray(rows["target"], np.int64),
            "areas": np.asarray(rows["areas"], np.float64).reshape(-1, len(_CURVES)),
            "curves": np.asarray(rows["curves"], np.float64).reshape(-1, len(_CURVES), steps + 1),
            "auroc": np.asarray(rows["auroc"], np.float64),
            "pointing": np.asarray(rows["pointing"], np.float64),
            "sanity": np.asarray(rows["sanity"], np.float64),
        }

    return compute


def _summary_rows(arrays: Mapping[str, np.ndarray], methods: Sequence[str], meta: BundleMeta) -> list[FaithfulnessRow]:
    """One row per method and class: mean areas, localisation, the randomisation check and the gains."""
    rows = []
    method_of = arrays.get("method", np.zeros(0, np.int64))
    target_of = arrays.get("target", np.zeros(0, np.int64))
    for m, target in sorted({(methods[m], t) for m, t in zip(method_of.tolist(), target_of.tolist(), strict=True)}):
        chosen = (method_of == methods.index(m)) & (target_of == target)
        areas = arrays["areas"][chosen]
        auroc, pointing = arrays["auroc"][chosen], arrays["pointing"][chosen]
        located = ~np.isnan(auroc)
        deletion, insertion, random_deletion, random_insertion = (_mean(a) for a in areas.T)
        rows.append(
            FaithfulnessRow(
                m,
                meta.class_names[target],
                int(chosen.sum()),
                deletion,
                insertion,
                random_deletion,
                random_insertion,
                _mean(auroc[located]),
                _mean(pointing[located]),
                _mean(arrays["sanity"][chosen]),
                _gain(areas[:, 2] - areas[:, 0], target),
                _gain(areas[:, 1] - areas[:, 3], target),
            )
        )
    return rows


def _baseline_notes(curves: np.ndarray, fractions: np.ndarray) -> list[str]:
    """The deletion baseline's own effect, measured (nothing without curves)."""
    if not len(curves):
        return []
    clean, flat, moved = curves[:, 0, 0], curves[:, 1, 0], np.abs(curves[:, 2, 1] - curves[:, 2, 0])
    return [
        f"The baseline, measured: the explained class's mean probability is {clean.mean():.3f} on the "
        f"records and {flat.mean():.3f} on the all-median records; deleting a random {fractions[1]:.0%} "
        f"of the segments moves it by {moved.mean():.3f} on average (median {np.median(moved):.3f})."
    ]


def _gain(differences: np.ndarray, seed: int, n_boot: int = 1000) -> tuple[float, float | None, float | None] | None:
    """Mean of per-record differences with a 95 % percentile bootstrap interval over records (none from one)."""
    if not len(differences):
        return None
    if len(differences) < 2:
        return float(differences[0]), None, None
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), (n_boot, len(differences)))].mean(axis=1)
    return float(differences.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _mean_curve(curves: list[np.ndarray], n_points: int) -> np.ndarray:
    return np.mean(curves, axis=0) if curves else np.full(n_points, np.nan)
