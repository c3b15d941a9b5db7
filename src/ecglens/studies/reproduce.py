"""The study's protocols, as data: Original, Ours_1 and Ours_2, the train-on-A / test-on-B matrix, the report.

- Original: train on CPSC; thresholds on CPSC validation; test on the CPSC test split and on the PTB-XL
  test split (the generalization gap, the study's Table 2).
- Ours_1: start from the Original bundle and train on PTB-XL; test on the combined test set.
- Ours_2: train from scratch on CPSC + PTB-XL (+ extras); test on the combined test set (Table 3).

`STUDY_PROTOCOLS` lists them as `Protocol` entries; adding a protocol is one entry. Every stage writes
its output under ``OUT`` and is reused when present, so an interrupted run started again finishes the
rest and gives the same tables. Each protocol's bundle receives, on purpose, the thresholds its
protocol evaluates with (``store_in_bundle``), so the bundle predicts as the report says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from ecglens.data import SplitSpec
from ecglens.data.cache import EcgCache, build_cache
from ecglens.explain.waves import WavesSummary
from ecglens.io import Source
from ecglens.metrics import METRICS, EvaluationResult
from ecglens.preprocess import LengthPolicy
from ecglens.report.reproduce import Evaluation, Figures, PopulationFigure, ReproduceResults, ReproduceSummary
from ecglens.studies.waves import waves_for_report
from ecglens.train.evaluate import evaluate_bundle, store_in_bundle
from ecglens.train.loop import TrainConfig, fit
from ecglens.train.state import finished_epochs, recover_state
from ecglens.util.atomic import atomic_open, write_text
from ecglens.util.progress import note
from ecglens.util.timing import StepClock

ALL = "all"
"""In a protocol, every dataset of the run (CPSC, PTB-XL and the extras)."""


@dataclass(frozen=True)
class Protocol:
    """One training protocol of a reproduction.

    Attributes:
        name: the study's name (``Original``).
        run: the folder of its run under ``OUT/runs``.
        train_on: dataset groups trained on (``ALL`` for every dataset).
        init_from: the protocol whose bundle starts the training (fine-tuning), or None.
        thresholds_from: dataset groups whose validation split gives the thresholds.
        test_on: named test sets, each a tuple of dataset groups whose test splits it joins.
    """

    name: str
    run: str
    train_on: tuple[str, ...]
    init_from: str | None
    thresholds_from: tuple[str, ...]
    test_on: tuple[tuple[str, tuple[str, ...]], ...]


STUDY_PROTOCOLS = (
    Protocol(
        "Original",
        "original",
        ("cpsc",),
        None,
        ("cpsc",),
        (("cpsc", ("cpsc",)), ("ptbxl", ("ptbxl",)), ("combined", (ALL,))),
    ),
    Protocol("Ours_1", "ours1", ("ptbxl",), "Original", (ALL,), (("combined", (ALL,)),)),
    Protocol("Ours_2", "ours2", (ALL,), None, (ALL,), (("combined", (ALL,)),)),
)


@dataclass(frozen=True)
class ReproduceConfig:
    """Sizing; the defaults are the study's (500 Hz, 30 epochs, batch 32, lr 1e-4) for a GPU."""

    sampling_rate_hz: float = 500.0
    train: TrainConfig = field(default_factory=TrainConfig)
    label_profile: str = "broad"
    out_of_scope: str = "negative"
    """``negative``: records outside the nine classes kept as negatives; ``excluded``: left out, as the study."""
    bootstrap: int = 200
    shap_records: int = 100
    shap_samples: int | None = None
    """Expected-gradients samples per record; None: as many as a 5 % Monte-Carlo error needs (at most 32)."""
    shap_max_samples: int = 32
    gradcam_records: int = 2
    waves_records: int = 50
    """Test records whose Grad-CAM and guided Grad-CAM (Ours_2) are placed among their delineated waves."""

    @classmethod
    def quick(cls) -> ReproduceConfig:
        """A profile for a 2-core CPU: 100 Hz, 6 epochs, lr 1e-3, 40 records per SHAP heatmap (at most 16 samples
        per record)."""
        return cls(
            sampling_rate_hz=100.0,
            train=TrainConfig(epochs=6, lr=1e-3),
            bootstrap=100,
            shap_records=40,
            shap_max_samples=16,
            waves_records=20,
        )


def _log(message: str) -> None:
    note(message, "reproduce")


def _folds(caches: Sequence[EcgCache], seed: int, out_of_scope: str = "negative") -> SplitSpec:
    """Validation and test folds: 9 and 10, or the two highest folds of a dataset that lacks them."""
    present = sorted({int(f) for cache in caches for f in cache.index["fold"].dropna()})
    if not present or {9, 10} <= set(present):
        return SplitSpec(seed, 9, 10, out_of_scope)
    return SplitSpec(seed, present[-2], present[-1], out_of_scope)


def _train(
    name: str, caches: Sequence[Path], out: Path, config: TrainConfig, init: str | None = None, progress: bool = True
) -> str:
    run = out / "runs" / name
    if finished_epochs(run) >= config.epochs:
        _log(f"{name}: trained already, reusing {run / 'best'}")
        return str(run / "best")
    resumable = recover_state(run)
    _log(f"{name}: training on {', '.join(p.name for p in caches)}" + (" (resuming)" if resumable else ""))
    return fit(caches, run, config, init=init, resume=resumable, progress=progress).best_bundle


def _reuse_or_compute(path: Path, compute) -> dict:
    """The JSON at ``path`` when a previous run wrote it, else ``compute()`` written there."""
    if path.is_file():
        return json.loads(path.read_text())
    result = compute()
    write_text(path, json.dumps(result, indent=2))
    return result


def _groups(names: Sequence[str], cache_paths: dict[str, Path]) -> list[Path]:
    return list(cache_paths.values()) if ALL in names else [cache_paths[name] for name in names]


def run_reproduce(
    cpsc: Sequence[Source],
    ptbxl: Sequence[Source],
    out: str | os.PathLike,
    config: ReproduceConfig = ReproduceConfig(),
    extra: Sequence[Source] = (),
    cross: bool = False,
    progress: bool = True,
    protocols: Sequence[Protocol] = STUDY_PROTOCOLS,
) -> Path:
    """Run the protocols (and the cross matrix) into ``out``; returns the HTML report's path.

    The report shows the study's published Tables 2 and 3 (`ecglens.study`) beside ours.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clock = StepClock()
    _write_config(out, config, cpsc, ptbxl, extra, cross)
    with clock.step("prepare"):
        cache_paths = _prepare_caches(
            out, {"cpsc": list(cpsc), "ptbxl": list(ptbxl), **{s.name: [s] for s in extra}}, config, progress
        )
    caches = {name: EcgCache(path) for name, path in cache_paths.items()}
    train_config = replace(config.train, split=_folds(list(caches.values()), config.train.seed, config.out_of_scope))
    bundles: dict[str, str] = {}
    with clock.step("train"):
        for protocol in protocols:
            init = bundles[protocol.init_from] if protocol.init_from else None
            groups = _groups(protocol.train_on, cache_paths)
            bundles[protocol.name] = _train(protocol.run, groups, out, train_config, init, progress)
    with clock.step("evaluate"):
        _log("evaluating (thresholds on validation splits only)")
        results = ReproduceResults(tuple(_evaluate_protocols(out, protocols, bundles, cache_paths, config)))
        cross_matrix = _cross(out, cache_paths, bundles, train_config, config, progress) if cross else None
    with clock.step("explain"):
        figures = _explanations(out, bundles, cache_paths, config, progress)
    with clock.step("waves"):
        waves = _waves(out, bundles["Ours_2"], list(cache_paths.values()), config) if "Ours_2" in bundles else None
    timings = clock.finish()
    summary = ReproduceSummary(
        asdict(config),
        train_config.split,
        results,
        bundles,
        _add_timings(out, timings),
        figures,
        _data_summary(caches),
        _versions(),
        cross_matrix,
        waves,
    )
    return _write_outputs(out, summary)


def _prepare_caches(
    out: Path, groups: dict[str, list[Source]], config: ReproduceConfig, progress: bool
) -> dict[str, Path]:
    cache_paths: dict[str, Path] = {}
    for name, sources in groups.items():
        cache_paths[name] = out / "caches" / name
        _log(f"preparing the {name} cache at {config.sampling_rate_hz:g} Hz")
        build_cache(sources, cache_paths[name], config.sampling_rate_hz, config.label_profile, progress=progress)
    return cache_paths


def _evaluate_protocols(
    out: Path,
    protocols: Sequence[Protocol],
    bundles: dict[str, str],
    cache_paths: dict[str, Path],
    config: ReproduceConfig,
) -> list[Evaluation]:
    """Every protocol on each of its test sets; the last test set's thresholds are stored in its bundle."""
    evaluations = []
    for protocol in protocols:
        thresholds_from = _groups(protocol.thresholds_from, cache_paths)
        for test_set, groups in protocol.test_on:

            def compute(protocol=protocol, groups=groups, thresholds_from=thresholds_from, test_set=test_set):
                report = evaluate_bundle(
                    bundles[protocol.name],
                    _groups(groups, cache_paths),
                    n_bootstrap=config.bootstrap,
                    device=config.train.device,
                    threshold_cache_paths=thresholds_from,
                )
                if test_set == "combined":
                    store_in_bundle(bundles[protocol.name], report)
                    _log(
                        f"{protocol.name}: stored its thresholds ({report.threshold_origin.describe()}) in "
                        f"{bundles[protocol.name]}"
                    )
                return Evaluation(
                    protocol.name,
                    test_set,
                    report.thresholds,
                    report.results,
                    report.threshold_origin.describe(),
                    report.out_of_scope,
                ).to_dict()

            path = out / "results" / f"{protocol.name.lower()}_{test_set}.json"
            evaluations.append(Evaluation.from_dict(_reuse_or_compute(path, compute)))
    return evaluations


def _write_config(
    out: Path,
    config: ReproduceConfig,
    cpsc: Sequence[Source],
    ptbxl: Sequence[Source],
    extra: Sequence[Source],
    cross: bool,
) -> None:
    """``config.json``: the configuration and the sources of this run."""
    sources = {"cpsc": [str(s) for s in cpsc], "ptbxl": [str(s) for s in ptbxl], "extra": [str(s) for s in extra]}
    write_text(out / "config.json", json.dumps({"config": asdict(config), **sources, "cross": cross}, indent=2))


def _add_timings(out: Path, timings: dict[str, float]) -> dict[str, float]:
    """This run's timings plus those of the runs it resumed (summed over resumptions)."""
    path = out / "results" / "timings.json"
    if path.is_file():
        timings = {k: v + json.loads(path.read_text()).get(k, 0.0) for k, v in timings.items()}
    write_text(path, json.dumps(timings))
    return timings


def _write_outputs(out: Path, summary: ReproduceSummary) -> Path:
    from ecglens.report.reproduce import render_reproduce

    tables = build_tables(summary.results)
    for name, table in tables.items():
        with atomic_open(out / f"{name}.csv", newline="") as handle:
            table.to_csv(handle, index=False)
    if summary.cross is not None:
        with atomic_open(out / "cross.csv", newline="") as handle:
            summary.cross.to_csv(handle)
    write_text(out / "results.json", json.dumps(summary.to_dict(), indent=2, default=float))
    html = write_text(out / "report.html", render_reproduce(summary, tables))
    _log(f"done in {summary.timings_s['total']:.0f} s; report: {html}")
    return html


def _cross(
    out: Path,
    cache_paths: dict[str, Path],
    bundles: dict[str, str],
    train_config: TrainConfig,
    config: ReproduceConfig,
    progress: bool,
) -> pd.DataFrame:
    """Macro AUC of a model trained on each dataset alone (rows) on each dataset's test split (columns)."""
    matrix = pd.DataFrame(index=list(cache_paths), columns=list(cache_paths), dtype=float)
    for train_name, train_path in cache_paths.items():
        bundle = (
            bundles["Original"]
            if train_name == "cpsc"
            else _train(f"only_{train_name}", [train_path], out, train_config, progress=progress)
        )
        for test_name, test_path in cache_paths.items():

            def compute(b=bundle, t=test_path, s=train_path):
                report = evaluate_bundle(b, [t], n_bootstrap=0, device=config.train.device, threshold_cache_paths=[s])
                return {"results": [r.to_dict() for r in report.results]}

            result = _reuse_or_compute(out / "results" / f"cross_{train_name}_on_{test_name}.json", compute)
            matrix.loc[train_name, test_name] = EvaluationResult.from_dict(result["results"][0]).macro_auc
    return matrix


def _explanations(
    out: Path, bundles: dict[str, str], cache_paths: dict[str, Path], config: ReproduceConfig, progress: bool
) -> Figures:
    """Figures 2-5 (population SHAP of Original and Ours_2 on CPSC and on PTB-XL) and 6-8 (Grad-CAM)."""
    from ecglens.data.cache import open_caches
    from ecglens.explain.inputs import split_inputs, training_background
    from ecglens.predict import Predictor
    from ecglens.report.explanations import ExampleFigure, gradcam_examples, population_heatmap

    path = out / "results" / "figures.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        return Figures(
            tuple(PopulationFigure(**p) for p in saved["population"]),
            tuple(ExampleFigure(**g) for g in saved["gradcam"]),
        )
    population = []
    for model_name in ("Original", "Ours_2"):
        loaded = Predictor(bundles[model_name], config.train.device)
        training = [cache_paths["cpsc"]] if model_name == "Original" else list(cache_paths.values())
        background = training_background(
            open_caches(training, loaded.meta.sampling_rate_hz), loaded.meta, 100, config.train.seed
        )
        for dataset in ("cpsc", "ptbxl"):
            records = split_inputs(
                open_caches([cache_paths[dataset]], loaded.meta.sampling_rate_hz),
                loaded.meta,
                "test",
                config.shap_records,
                config.train.seed,
            )
            if not records:
                continue
            _log(f"population SHAP: {model_name} on {dataset} ({len(records)} test records)")
            figure = out / "figures" / f"population_{model_name.lower()}_{dataset}.png"
            result = population_heatmap(
                loaded.model,
                loaded.meta,
                records,
                background,
                figure,
                f"{model_name} on {dataset}: SHAP per lead, {len(records)} test records",
                config.shap_samples,
                progress,
                max_samples=config.shap_max_samples,
            )
            population.append(PopulationFigure(model_name, dataset, str(figure), result.to_dict()))
    loaded = Predictor(bundles["Ours_2"], config.train.device)
    records = split_inputs(open_caches(list(cache_paths.values()), loaded.meta.sampling_rate_hz), loaded.meta, "test")
    figures = Figures(
        tuple(population),
        tuple(
            gradcam_examples(
                loaded.model, loaded.meta, records, out / "figures", config.gradcam_records, config.gradcam_records
            )
        ),
    )
    write_text(path, json.dumps(asdict(figures), indent=2, default=float))
    return figures


def _waves(out: Path, bundle: str, caches: list[Path], config: ReproduceConfig) -> WavesSummary:
    """Ours_2's Grad-CAM and guided Grad-CAM among the waves of test records (reused when a run has them)."""
    path = out / "results" / "waves.json"
    if path.is_file():
        return WavesSummary.from_dict(json.loads(path.read_text()))
    summary = waves_for_report(
        "Ours_2", bundle, caches, out / "waves", config.waves_records, config.train.device, config.train.seed
    )
    if summary.unavailable is None:  # computed: a later run reuses it (a missing extra is checked again)
        write_text(path, json.dumps(summary.to_dict(), indent=2))
    return summary


def build_tables(results: ReproduceResults) -> dict[str, pd.DataFrame]:
    """Table 2 (Original on CPSC and PTB-XL), Table 3 (Original on CPSC's test split, Ours_1 and Ours_2 on the
    combined one, as the study's Table 3), and the set-level
    scores of every evaluation (macro AUC and AUPRC, Fmax, Challenge score)."""

    def cell(result: EvaluationResult, class_name: str, metric: str) -> float | None:
        if class_name == "average":
            return result.average.get(metric)
        return getattr(result.class_metrics(class_name), metric)

    cpsc = results.get("Original", "cpsc").combined
    ptbxl = results.get("Original", "ptbxl").combined
    names = [m.name for m in cpsc.per_class]
    table2_rows = []
    for name in [*names, "average"]:
        row: dict[str, object] = {"class": name}
        row.update({f"CPSC {k}": cell(cpsc, name, k) for k in METRICS})
        row.update({f"PTB-XL {k}": cell(ptbxl, name, k) for k in METRICS})
        table2_rows.append(row)
    # like with like: the study's Table 3 reports Original on CPSC's test split, Ours_1 and Ours_2 on the combined one
    models = {"Original": cpsc, **{m: results.get(m, "combined").combined for m in ("Ours_1", "Ours_2")}}
    table3_rows = []
    for name in [*names, "average"]:
        row = {"class": name}
        for metric in METRICS:
            row.update({f"{model} {metric}": cell(result, name, metric) for model, result in models.items()})
        table3_rows.append(row)
    scores = [
        {"protocol": e.protocol, "test set": r.name, "records": r.n_records, **r.set_scores()}
        for e in results.evaluations
        for r in e.results
    ]
    return {
        "table2": pd.DataFrame(table2_rows),
        "table3": pd.DataFrame(table3_rows),
        "set_scores": pd.DataFrame(scores),
    }


def _data_summary(caches: dict[str, EcgCache]) -> dict:
    from ecglens.data.summary import summarize_index

    out = {}
    for name, cache in caches.items():
        summaries = summarize_index(cache.index, cache.issues(), cache.spec.label_profile, cache.sampling_rate_hz)
        out[name] = {
            s.dataset: {
                "records": s.n_records,
                "with_target": s.n_with_target,
                "counts": s.table["count"].to_dict(),
                "markdown": s.to_markdown(),
            }
            for s in summaries
        }
    return out


def _versions() -> dict:
    from ecglens.bundle.meta import package_versions

    return package_versions()


def quick_or_full(
    quick: bool, sampling_rate_hz: float | None = None, label_profile: str | None = None, **train_overrides
) -> ReproduceConfig:
    """The --quick profile or the study's settings, with explicit options on top (training options go into
    the embedded `TrainConfig`; ``policy``/``policy_seconds`` make its `LengthPolicy`)."""
    base = ReproduceConfig.quick() if quick else ReproduceConfig()
    train = {k: v for k, v in train_overrides.items() if v is not None}
    if "policy" in train or "policy_seconds" in train:
        name = train.pop("policy", base.train.policy.name)
        train["policy"] = LengthPolicy(name, train.pop("policy_seconds", base.train.policy.seconds))
    config = replace(base, train=replace(base.train, **train))
    if sampling_rate_hz is not None:
        config = replace(config, sampling_rate_hz=sampling_rate_hz)
    return config if label_profile is None else replace(config, label_profile=label_profile)


__all__ = [
    "ALL",
    "STUDY_PROTOCOLS",
    "Protocol",
    "ReproduceConfig",
    "ReproduceResults",
    "build_tables",
    "quick_or_full",
    "run_reproduce",
]
