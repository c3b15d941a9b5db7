"""The study's protocols: Original, Ours_1 and Ours_2, the train-on-A / test-on-B matrix, and the report.

- Original: train on CPSC; thresholds on CPSC validation; test on the CPSC test split and on the PTB-XL
  test split (the generalization gap, the study's Table 2).
- Ours_1: start from the Original bundle and train on PTB-XL; test on the combined test set.
- Ours_2: train from scratch on CPSC + PTB-XL (+ extras); test on the combined test set (Table 3).

Every stage writes its output under ``OUT`` and is reused when present, so an interrupted run started
again finishes the rest and gives the same tables.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from ecglens.cache import EcgCache, build_cache
from ecglens.classes import CLASS_NAMES
from ecglens.data import LengthPolicy
from ecglens.io import Source
from ecglens.train.evaluate import evaluate_bundle
from ecglens.train.loop import TrainConfig, fit, recover_state
from ecglens.train.metrics import METRICS


@dataclass(frozen=True)
class ReproduceConfig:
    """Sizing; the defaults are the study's (500 Hz, 30 epochs, batch 32, lr 1e-4) for a GPU."""

    sampling_rate_hz: float = 500.0
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-4
    model: str = "resnet34"
    policy: str = "crop"
    policy_seconds: float = 10.0
    label_profile: str = "seed"
    seed: int = 0
    device: str = "auto"
    bootstrap: int = 200
    shap_records: int = 100
    shap_samples: int = 4
    gradcam_records: int = 2

    @classmethod
    def quick(cls) -> ReproduceConfig:
        """A profile for a 2-core CPU: 100 Hz, 6 epochs, lr 1e-3, 40 records per SHAP heatmap."""
        return cls(sampling_rate_hz=100.0, epochs=6, lr=1e-3, bootstrap=100, shap_records=40)


def _log(message: str) -> None:
    print(f"[reproduce] {message}", file=sys.stderr, flush=True)


def _folds(caches: Sequence[EcgCache]) -> tuple[int, int]:
    """Validation and test folds: 9 and 10, or the two highest folds of a dataset that lacks them."""
    present = sorted({int(f) for cache in caches for f in cache.index["fold"].dropna()})
    if not present or {9, 10} <= set(present):
        return 9, 10
    return present[-2], present[-1]


def _train(name: str, caches: Sequence[Path], out: Path, config: TrainConfig, init: str | None = None,
           progress: bool = True) -> str:
    run = out / "runs" / name
    state = run / "state"
    resumable = recover_state(run)
    done = resumable and json.loads((state / "state.json").read_text())["epoch"] >= config.epochs
    if done:
        _log(f"{name}: trained already, reusing {run / 'best'}")
        return str(run / "best")
    _log(f"{name}: training on {', '.join(p.name for p in caches)}" + (" (resuming)" if resumable else ""))
    return fit(caches, run, config, init=init, resume=resumable, progress=progress).best_bundle


def _evaluation(name: str, out: Path, compute) -> dict:
    path = out / "results" / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return result


def run_reproduce(cpsc: Sequence[Source], ptbxl: Sequence[Source], out: str | os.PathLike,
                  config: ReproduceConfig = ReproduceConfig(), extra: Sequence[Source] = (), cross: bool = False,
                  progress: bool = True, study_tables: dict[str, str] | None = None) -> Path:
    """Run the three protocols (and the cross matrix) into ``out``; returns the HTML report's path.

    ``study_tables`` maps ``table2``/``table3`` to CSV files of the study's published values (same
    columns as ours) to show beside ours.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    (out / "config.json").write_text(json.dumps({"config": asdict(config), "cpsc": [str(s) for s in cpsc],
                                                 "ptbxl": [str(s) for s in ptbxl],
                                                 "extra": [str(s) for s in extra], "cross": cross}, indent=2))
    groups = {"cpsc": list(cpsc), "ptbxl": list(ptbxl)}
    for source in extra:
        groups[source.name] = [source]
    cache_paths: dict[str, Path] = {}
    for name, sources in groups.items():
        cache_paths[name] = out / "caches" / name
        _log(f"preparing the {name} cache at {config.sampling_rate_hz:g} Hz")
        build_cache(sources, cache_paths[name], config.sampling_rate_hz, config.label_profile, progress=progress)
    timings["prepare"] = time.perf_counter() - started
    caches = {name: EcgCache(path) for name, path in cache_paths.items()}
    val_fold, test_fold = _folds(list(caches.values()))
    train_config = TrainConfig(model=config.model, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                               seed=config.seed, policy=LengthPolicy(config.policy, config.policy_seconds),
                               val_fold=val_fold, test_fold=test_fold, device=config.device)
    step = time.perf_counter()
    bundles = {"Original": _train("original", [cache_paths["cpsc"]], out, train_config, progress=progress)}
    bundles["Ours_1"] = _train("ours1", [cache_paths["ptbxl"]], out, train_config, init=bundles["Original"],
                               progress=progress)
    bundles["Ours_2"] = _train("ours2", list(cache_paths.values()), out, train_config, progress=progress)
    timings["train"] = time.perf_counter() - step
    step = time.perf_counter()
    all_caches = list(cache_paths.values())

    def evaluate(bundle, tests, thresholds_from):
        report = evaluate_bundle(bundle, tests, n_bootstrap=config.bootstrap, device=config.device,
                                 threshold_cache_paths=thresholds_from)
        return {"thresholds": list(report.thresholds), "results": [r.to_dict() for r in report.results]}

    _log("evaluating (thresholds on validation splits only)")
    results = {
        "Original/cpsc": _evaluation("original_cpsc", out, lambda: evaluate(bundles["Original"], [cache_paths["cpsc"]],
                                                                          [cache_paths["cpsc"]])),
        "Original/ptbxl": _evaluation("original_ptbxl", out, lambda: evaluate(
            bundles["Original"], [cache_paths["ptbxl"]], [cache_paths["cpsc"]])),
    }
    for name in ("Original", "Ours_1", "Ours_2"):
        thresholds_from = [cache_paths["cpsc"]] if name == "Original" else all_caches
        results[f"{name}/combined"] = _evaluation(f"{name.lower()}_combined", out, lambda name=name, t=thresholds_from:
                                                  evaluate(bundles[name], all_caches, t))
    cross_matrix = None
    if cross:
        cross_matrix = _cross(out, cache_paths, bundles, train_config, config, progress)
    timings["evaluate"] = time.perf_counter() - step
    step = time.perf_counter()
    figures = _explanations(out, bundles, cache_paths, config, progress)
    timings["explain"] = time.perf_counter() - step
    timings["total"] = time.perf_counter() - started
    timings_path = out / "results" / "timings.json"  # summed over a run and its resumptions
    if timings_path.is_file():
        timings = {k: v + json.loads(timings_path.read_text()).get(k, 0.0) for k, v in timings.items()}
    timings_path.write_text(json.dumps(timings))
    tables = build_tables(results)
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    if cross_matrix is not None:
        cross_matrix.to_csv(out / "cross.csv")
    summary = {"config": asdict(config), "folds": {"validation": val_fold, "test": test_fold}, "results": results,
               "bundles": bundles, "timings_s": timings, "figures": figures,
               "data": _data_summary(caches), "versions": _versions(),
               "cross": None if cross_matrix is None else cross_matrix.to_dict()}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=float))
    from ecglens.report.reproduce import render_reproduce

    html = out / "report.html"
    study = {name: pd.read_csv(path) for name, path in (study_tables or {}).items()}
    html.write_text(render_reproduce(summary, tables, cross_matrix, study))
    _log(f"done in {timings['total']:.0f} s; report: {html}")
    return html


def _cross(out: Path, cache_paths: dict[str, Path], bundles: dict[str, str], train_config: TrainConfig,
           config: ReproduceConfig, progress: bool) -> pd.DataFrame:
    """Macro AUC of a model trained on each dataset alone (rows) on each dataset's test split (columns)."""
    matrix = pd.DataFrame(index=list(cache_paths), columns=list(cache_paths), dtype=float)
    for train_name, train_path in cache_paths.items():
        bundle = bundles["Original"] if train_name == "cpsc" else _train(f"only_{train_name}", [train_path], out,
                                                                         train_config, progress=progress)
        for test_name, test_path in cache_paths.items():
            def compute(b=bundle, t=test_path, s=train_path):
                report = evaluate_bundle(b, [t], n_bootstrap=0, device=config.device, threshold_cache_paths=[s])
                return {"results": [r.to_dict() for r in report.results]}

            result = _evaluation(f"cross_{train_name}_on_{test_name}", out, compute)
            matrix.loc[train_name, test_name] = result["results"][0]["macro_auc"]
    return matrix


def _explanations(out: Path, bundles: dict[str, str], cache_paths: dict[str, Path], config: ReproduceConfig,
                  progress: bool) -> dict:
    """Figures 2-5 (population SHAP of Original and Ours_2 on CPSC and on PTB-XL) and 6-8 (Grad-CAM)."""
    from ecglens.explain.inputs import ExplainSession
    from ecglens.report.explanations import gradcam_examples, population_heatmap

    path = out / "results" / "figures.json"
    if path.is_file():
        return json.loads(path.read_text())
    figures: dict = {"population": [], "gradcam": []}
    for model_name in ("Original", "Ours_2"):
        training = [cache_paths["cpsc"]] if model_name == "Original" else list(cache_paths.values())
        background = ExplainSession(bundles[model_name], training, config.device).background(100, config.seed)
        for dataset in ("cpsc", "ptbxl"):
            session = ExplainSession(bundles[model_name], [cache_paths[dataset]], config.device)
            records = session.from_split("test", config.shap_records, config.seed)
            if not records:
                continue
            _log(f"population SHAP: {model_name} on {dataset} ({len(records)} test records)")
            figure = out / "figures" / f"population_{model_name.lower()}_{dataset}.png"
            result = population_heatmap(session, records, background, figure,
                                        f"{model_name} on {dataset}: SHAP mass per lead (%), {len(records)} test "
                                        f"records", config.shap_samples, progress)
            figures["population"].append({"model": model_name, "dataset": dataset, "figure": str(figure),
                                          "result": result.to_dict()})
    session = ExplainSession(bundles["Ours_2"], list(cache_paths.values()), config.device)
    figures["gradcam"] = gradcam_examples(session, session.from_split("test"), out / "figures",
                                          config.gradcam_records, config.gradcam_records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, default=float))
    return figures


def _metric_rows(result: dict) -> dict[str, dict[str, float | None]]:
    rows = {m["name"]: {k: m[k] for k in METRICS} for m in result["per_class"]}
    rows["average"] = {k: result["average"].get(k) for k in METRICS}
    return rows


def build_tables(results: dict) -> dict[str, pd.DataFrame]:
    """Table 2 (Original on CPSC and PTB-XL) and Table 3 (three models on the combined test set)."""
    table2_rows = []
    cpsc = _metric_rows(results["Original/cpsc"]["results"][0])
    ptbxl = _metric_rows(results["Original/ptbxl"]["results"][0])
    for name in [*CLASS_NAMES, "average"]:
        row = {"class": name}
        row.update({f"CPSC {k}": cpsc[name][k] for k in METRICS})
        row.update({f"PTB-XL {k}": ptbxl[name][k] for k in METRICS})
        table2_rows.append(row)
    table3_rows = []
    models = {m: _metric_rows(results[f"{m}/combined"]["results"][0]) for m in ("Original", "Ours_1", "Ours_2")}
    for name in [*CLASS_NAMES, "average"]:
        row = {"class": name}
        for metric in METRICS:
            row.update({f"{model} {metric}": models[model][name][metric] for model in models})
        table3_rows.append(row)
    return {"table2": pd.DataFrame(table2_rows), "table3": pd.DataFrame(table3_rows)}


def _data_summary(caches: dict[str, EcgCache]) -> dict:
    from ecglens.summary import summarize_index

    out = {}
    for name, cache in caches.items():
        summaries = summarize_index(cache.index, cache.issues(), cache.spec.label_profile, cache.sampling_rate_hz)
        out[name] = {s.dataset: {"records": s.n_records, "with_target": s.n_with_target,
                                 "counts": s.table["count"].to_dict(), "markdown": s.to_markdown()} for s in summaries}
    return out


def _versions() -> dict:
    from ecglens.train.bundle import package_versions

    return package_versions()


def quick_or_full(quick: bool, **overrides) -> ReproduceConfig:
    """The --quick profile or the study's settings, with explicit options on top."""
    base = ReproduceConfig.quick() if quick else ReproduceConfig()
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


__all__ = ["ReproduceConfig", "build_tables", "quick_or_full", "run_reproduce"]
