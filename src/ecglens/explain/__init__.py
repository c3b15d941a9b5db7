"""Explanations with one signature, ``fn(model, x, target) -> np.ndarray shaped like x``.

``x`` is a float tensor batch x leads x samples, ``target`` a class index (or one per batch item).
Functions never modify the model (its mode is restored) or the input. Per-lead summaries are
leads x classes arrays. Explanations take the model and the bundle's metadata explicitly (from
`ecglens.predict.Predictor`), and run on the inputs of `ecglens.preprocess.model_input`: exactly what was
scored. Nothing here imports training code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecglens.util.lazy import lazy_exports

if TYPE_CHECKING:  # loaded when first used: captum only when an attribution is asked for
    from ecglens.explain.attribution import (
        EXPLANATION_METHODS,
        attribute,
        gradcam,
        gradient_shap,
        lead_mass,
        threshold_map,
    )
    from ecglens.explain.lead_shapley import exact_lead_shapley, sampled_lead_shapley

__all__ = [
    "EXPLANATION_METHODS",
    "attribute",
    "exact_lead_shapley",
    "gradcam",
    "gradient_shap",
    "lead_mass",
    "sampled_lead_shapley",
    "threshold_map",
]

__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            ("EXPLANATION_METHODS", "attribute", "gradcam", "gradient_shap", "lead_mass", "threshold_map"),
            "ecglens.explain.attribution",
        ),
        **dict.fromkeys(("exact_lead_shapley", "sampled_lead_shapley"), "ecglens.explain.lead_shapley"),
    },
)
