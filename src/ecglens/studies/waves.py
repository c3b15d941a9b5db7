"""The studies' explanations among the waves: a model's Grad-CAM and guided Grad-CAM on test records, placed
among each record's delineated waves (`ecglens.explain.waves`), written as ``explain waves`` writes them and
summarised for the study's report. Without the ``waves`` extra the summary says so, and the study goes on."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ecglens.explain.waves import WavesSummary
from ecglens.util.progress import note

STUDY_METHODS = ("gradcam", "guided-gradcam")
"""The methods a study places among the waves: both cost one backward pass per class (SHAP's are in
``ecglens explain waves --methods shap``)."""


def waves_for_report(
    model_name: str,
    bundle: str | os.PathLike,
    caches: Sequence[Path],
    out: Path,
    n_records: int,
    device: str = "auto",
    seed: int = 0,
    methods: Sequence[str] = STUDY_METHODS,
    dpi: int | None = None,
) -> WavesSummary:
    """Up to ``n_records`` test records of ``caches`` explained among their own waves (neurokit2), every file of
    ``explain waves`` in ``out`` (PNGs at ``dpi``, default ecglens's), and the summary a report shows."""
    from ecglens.waves.delineate import available

    if not available():
        return WavesSummary.missing(model_name, methods, "delineation needs neurokit2: pip install 'ecglens[waves]'")
    from ecglens.data.cache import open_caches
    from ecglens.explain.inputs import split_inputs
    from ecglens.explain.waves import explain_waves, plausibility_table
    from ecglens.predict import Predictor
    from ecglens.report.figures import FIGURE_DPI
    from ecglens.report.waves import write_waves

    loaded = Predictor(bundle, device)
    inputs = split_inputs(open_caches(caches, loaded.meta.sampling_rate_hz), loaded.meta, "test", n_records, seed)
    note(f"explanations among the waves: {model_name} on {len(inputs)} test records", "waves")
    explained = explain_waves(loaded.model, loaded.meta, inputs, methods)
    table = plausibility_table(explained)
    page = write_waves(explained, table, loaded.meta, out, dpi=dpi or FIGURE_DPI)[0]
    return WavesSummary.of(model_name, methods, len(inputs), explained, table, page)
