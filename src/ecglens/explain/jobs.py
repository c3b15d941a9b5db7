"""Explanation jobs over sets of records: numbers first (JSON-able), figures rendered elsewhere."""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ecglens.classes import CLASS_NAMES
from ecglens.explain.attribution import gradcam, gradient_shap, gradient_shap_all_classes, lead_mass
from ecglens.explain.faithfulness import deletion_insertion, localisation, randomized_copy, rank_correlation
from ecglens.explain.inputs import ExplainInput, ExplainSession
from ecglens.explain.lead_shapley import exact_lead_shapley, sampled_lead_shapley


def targets_for(session: ExplainSession, item: ExplainInput, probabilities: np.ndarray,
                class_name: str | None = None) -> list[int]:
    """The classes to explain: the named one, else every predicted class, else the most probable."""
    if class_name is not None:
        if class_name not in session.meta.class_names:
            raise ValueError(f"unknown class {class_name!r}; choose from {', '.join(session.meta.class_names)}")
        return [session.meta.class_names.index(class_name)]
    predicted = [k for k, (p, t) in enumerate(zip(probabilities, session.meta.thresholds, strict=True)) if p >= t]
    return predicted or [int(np.argmax(probabilities))]


def attribute(session: ExplainSession, method: str, x: torch.Tensor, target: int,
              background: torch.Tensor | None = None, n_samples: int = 8, seed: int = 0) -> np.ndarray:
    """One method's attribution of one record (1 x leads x samples) for one class: leads x samples."""
    if method == "gradcam":
        return gradcam(session.model, x, target)[0]
    if method == "shap":
        if background is None:
            raise ValueError("SHAP needs a background set")
        return gradient_shap(session.model, x, target, background, n_samples, seed)[0]
    raise ValueError(f"unknown method {method!r}")


def lead_shapley_table(session: ExplainSession, item: ExplainInput, baseline: str = "zeros",
                       background: torch.Tensor | None = None, n_permutations: int | None = None) -> np.ndarray:
    """Lead Shapley values (leads x classes) of one record: exact, or sampled with ``n_permutations``."""
    x = torch.from_numpy(item.signal).to(session.device)
    base = None
    if baseline == "mean":
        if background is None:
            raise ValueError("the 'mean' baseline needs a background set")
        base = background.mean(dim=0)
    elif baseline != "zeros":
        raise ValueError(f"baseline must be 'zeros' or 'mean', not {baseline!r}")
    if n_permutations:
        return sampled_lead_shapley(session.model, x, base, n_permutations)
    return exact_lead_shapley(session.model, x, base)


@dataclass(frozen=True)
class FaithfulnessResult:
    """Per method and class: deletion/insertion areas (and random references), localisation, sanity."""

    rows: tuple[dict, ...]
    fractions: np.ndarray
    mean_curves: dict[str, dict[str, np.ndarray]]
    n_records: int
    seconds: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {"rows": list(self.rows), "fractions": self.fractions.tolist(), "n_records": self.n_records,
                "seconds": self.seconds, "notes": list(self.notes),
                "mean_curves": {m: {k: v.tolist() for k, v in c.items()} for m, c in self.mean_curves.items()}}

    def to_markdown(self) -> str:
        """The faithfulness and localisation table."""
        def cell(value):
            return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"

        lines = ["| method | class | n | deletion AUC (random) | insertion AUC (random) | localisation AUROC | "
                 "pointing game | rank corr. with random model |", "|---|---|---|---|---|---|---|---|"]
        for row in self.rows:
            lines.append(
                f"| {row['method']} | {row['class']} | {row['n']} | {cell(row['deletion'])} "
                f"({cell(row['random_deletion'])}) | {cell(row['insertion'])} ({cell(row['random_insertion'])}) | "
                f"{cell(row['localisation_auroc'])} | {cell(row['pointing_game'])} | "
                f"{cell(row['sanity_rank_correlation'])} |")
        lines += ["", "Deletion: lower is more faithful; insertion: higher. Localisation is against the synthetic "
                  "ground-truth evidence masks. The last column compares attributions with those of the same "
                  "network with re-initialised weights: near 0 means the explanation depends on what was learned."]
        return "\n".join(lines + [f"- {note}" for note in self.notes])


def faithfulness(session: ExplainSession, inputs: Sequence[ExplainInput], background: torch.Tensor,
                 methods: Sequence[str] = ("gradcam", "shap"), steps: int = 10, n_samples: int = 8,
                 progress: bool = True) -> FaithfulnessResult:
    """Measure each method on records labelled with a class, for that class.

    For every record and each of its true classes: deletion and insertion curves (against a random
    order), localisation against the evidence mask when the record has one, and the rank correlation
    with the attribution of a randomly re-initialised copy of the model.
    """
    started = time.perf_counter()
    random_model = randomized_copy(session.model)
    random_session = _with_model(session, random_model)
    per: dict[tuple[str, int], dict[str, list]] = {}
    curves: dict[str, dict[str, list]] = {m: {k: [] for k in ("deletion", "insertion", "random_deletion",
                                                             "random_insertion")} for m in methods}
    fractions = np.linspace(0, 1, steps + 1)
    baseline = torch.zeros_like(background[0])
    for index, item in enumerate(tqdm(inputs, desc="faithfulness", unit="rec", disable=not progress,
                                      file=sys.stderr)):
        if item.labels is None:
            continue
        x = torch.from_numpy(item.signal)[None].to(session.device)
        for target in np.flatnonzero(item.labels > 0.5):
            name = session.meta.class_names[target]
            for method in methods:
                values = attribute(session, method, x, int(target), background, n_samples, seed=index)
                shown = values if method == "gradcam" else np.abs(values)
                result = deletion_insertion(session.model, x[0], int(target), shown, baseline, steps, seed=index)
                stats = per.setdefault((method, int(target)), {k: [] for k in (
                    "deletion", "insertion", "random_deletion", "random_insertion", "auroc", "pointing", "sanity")})
                for key, area in result.areas().items():
                    stats[key].append(area)
                    curves[method][key].append(getattr(result, key))
                if item.evidence is not None and name in item.evidence:
                    auroc, hit = localisation(values, item.evidence[name])
                    if auroc is not None:
                        stats["auroc"].append(auroc)
                        stats["pointing"].append(float(hit))
                random_values = attribute(random_session, method, x, int(target), background, n_samples, seed=index)
                stats["sanity"].append(rank_correlation(values, random_values))
    rows = []
    for (method, target), stats in sorted(per.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        def mean(key, stats=stats):
            return float(np.mean(stats[key])) if stats[key] else None

        rows.append({"method": method, "class": CLASS_NAMES[target], "n": len(stats["deletion"]),
                     "deletion": mean("deletion"), "insertion": mean("insertion"),
                     "random_deletion": mean("random_deletion"), "random_insertion": mean("random_insertion"),
                     "localisation_auroc": mean("auroc"), "pointing_game": mean("pointing"),
                     "sanity_rank_correlation": mean("sanity")})
    mean_curves = {m: {k: np.mean(v, axis=0) if v else np.full(len(fractions), np.nan) for k, v in c.items()}
                   for m, c in curves.items()}
    notes = ("Grad-CAM maps are one value per time step, repeated over the leads; its localisation is therefore "
             "limited to time.",)
    return FaithfulnessResult(tuple(rows), fractions, mean_curves, len(inputs), time.perf_counter() - started, notes)


def _with_model(session: ExplainSession, model: torch.nn.Module) -> ExplainSession:
    clone = copy.copy(session)
    clone.model = model
    return clone


def shap_lead_masses(session: ExplainSession, item: ExplainInput, background: torch.Tensor,
                     n_samples: int = 8) -> np.ndarray:
    """Per lead and class SHAP mass of one record: leads x classes."""
    x = torch.from_numpy(item.signal)[None].to(session.device)
    values = gradient_shap_all_classes(session.model, x, background, len(session.meta.class_names), n_samples)
    return lead_mass(values[0]).T
