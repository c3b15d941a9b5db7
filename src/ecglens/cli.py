"""Command-line interface: thin click commands over library functions.

``main(argv) -> int`` is callable from tests; the ``ecglens`` console script wraps it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from ecglens import __version__

_WORKERS = click.option("--workers", type=int, default=None, show_default="all cores",
                        help="Worker processes for reading files.")
_PROFILE = click.option("--label-profile", default="strict", show_default=True,
                        help="Label mapping: 'strict', 'seed' (the study's) or a mapping CSV file.")
_STRICT = click.option("--strict", is_flag=True, help="Stop at the first bad record instead of listing it.")


def _sources(specs: Sequence[str]):
    from ecglens.io import parse_source

    try:
        return [parse_source(spec) for spec in specs]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="SOURCE") from None


def _print_issues(issues, limit: int = 10) -> None:
    if not issues:
        return
    click.echo(f"{len(issues)} record(s) left out:", err=True)
    for issue in issues[:limit]:
        click.echo(f"  {issue.path}: {issue.reason}", err=True)
    if len(issues) > limit:
        click.echo(f"  ... and {len(issues) - limit} more (see issues.csv / summary.md)", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ecglens")
def cli() -> None:
    """Interpretable deep-learning diagnosis of 12-lead ECGs (SNR, AF, IAVB, LBBB, RBBB, PAC, PVC, STD, STE).

    A SOURCE is [NAME=]FORMAT:ROOT with FORMAT one of ptbxl, ptbxl100, ptbxl500, cpsc2018, challenge,
    wfdb, or a bare ROOT whose format is detected.
    """


@cli.group()
def data() -> None:
    """Read datasets: summaries and the preprocessed cache."""


@data.command("summary")
@click.argument("sources", nargs=-1, required=True)
@_PROFILE
@click.option("--out", type=click.Path(file_okay=False), default="ecglens-out/summary", show_default=True,
              help="Folder for summary.md and table1.csv.")
@_WORKERS
@_STRICT
def data_summary(sources, label_profile, out, workers, strict) -> None:
    """Print the study's Table 1 per dataset (count, male, age per class), lengths and what was dropped.

    \b
    Example:
      ecglens data summary ptbxl100:../shared/data/ptb-xl cpsc2018:../shared/data/cpsc2018 --label-profile seed
    """
    from ecglens.summary import summarize_sources, write_summaries

    summaries, issues = summarize_sources(_sources(sources), label_profile, workers or os.cpu_count() or 1, strict)
    for summary in summaries:
        click.echo(summary.to_markdown(compare_with_study=summary.label_profile == "seed"))
    paths = write_summaries(summaries, out)
    _print_issues(issues)
    click.echo(f"wrote {', '.join(str(p) for p in paths)}")


@data.command("prepare")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Cache directory to create.")
@click.option("--sampling-rate", "sampling_rate_hz", type=float, default=500.0, show_default=True,
              help="Target rate in Hz (anti-aliased polyphase resampling).")
@_PROFILE
@_WORKERS
@_STRICT
@click.option("--overwrite", is_flag=True, help="Replace a cache built with another spec or sources.")
@click.option("--shard-size", type=int, default=256, show_default=True, help="Records per resumable shard.")
def data_prepare(sources, out, sampling_rate_hz, label_profile, workers, strict, overwrite, shard_size) -> None:
    """Build a memory-mapped cache: read every record once, resample, map labels.

    Resumable (a re-run skips finished shards) and atomic (the cache appears only when complete).

    \b
    Example:
      ecglens data prepare ptbxl:../shared/data/ptb-xl --sampling-rate 100 --out caches/ptbxl100
    """
    from ecglens.cache import CacheError, build_cache

    try:
        report = build_cache(_sources(sources), out, sampling_rate_hz, label_profile, workers=workers,
                             shard_size=shard_size, strict=strict, overwrite=overwrite)
    except CacheError as error:
        raise click.ClickException(str(error)) from None
    if report.already_complete:
        click.echo(f"{out}: already complete ({report.n_records} records); nothing to do")
        return
    _print_issues(list(report.issues))
    click.echo(f"{out}: {report.n_records} records cached, {report.n_issues} left out "
               f"({report.n_shards_built} shard(s) built, {report.n_shards_reused} reused)")


@cli.command("train")
@click.option("--data", "caches", multiple=True, required=True, type=click.Path(exists=True, file_okay=False),
              help="Cache directory (repeat for several; each is split by its own rule).")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Run directory.")
@click.option("--model", default="resnet34", show_default=True, help="Registered model name.")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--policy", type=click.Choice(["crop", "original"]), default="crop", show_default=True,
              help="Input length: 'crop' (random 10-s windows, whole records at evaluation) or 'original' "
                   "(last 30 s, zero-padded at the front).")
@click.option("--policy-seconds", type=float, default=None,
              help="Window length (default 10 for crop, 30 for original).")
@click.option("--augment-probability", type=float, default=0.5, show_default=True,
              help="Probability of each augmentation (the original code's is 0.3085).")
@click.option("--leads", default=None, help="Comma-separated lead subset, e.g. I,II,V1 (default all 12).")
@click.option("--val-fold", type=int, default=9, show_default=True)
@click.option("--test-fold", type=int, default=10, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--no-amp", is_flag=True, help="Disable mixed precision on CUDA.")
@click.option("--workers", type=int, default=0, show_default=True, help="DataLoader worker processes.")
@click.option("--init", type=click.Path(exists=True, file_okay=False), default=None,
              help="Start from this bundle's weights (fine-tuning, the study's Ours_1).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out exactly.")
def train(caches, out, model, epochs, batch_size, lr, seed, policy, policy_seconds, augment_probability, leads,
          val_fold, test_fold, device, no_amp, workers, init, resume) -> None:
    """Train on the training split of caches; the best epoch (validation macro AUC) becomes a bundle.

    Multi-process: torchrun --nproc-per-node 2 -m ecglens.cli train ...

    \b
    Example:
      ecglens train --data caches/ptbxl100 --out runs/ptbxl --epochs 30 --batch-size 32 --lr 1e-4
    """
    from ecglens.data import LengthPolicy
    from ecglens.leads import LEAD_NAMES, canonical_leads
    from ecglens.train.loop import TrainConfig, fit

    seconds = policy_seconds or (30.0 if policy == "original" else 10.0)
    config = TrainConfig(model=model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                         policy=LengthPolicy(policy, seconds), augmentation_probability=augment_probability,
                         lead_names=canonical_leads(leads.split(",")) if leads else LEAD_NAMES,
                         val_fold=val_fold, test_fold=test_fold, device=device, amp=not no_amp, workers=workers)
    try:
        result = fit(caches, out, config, init=init, resume=resume)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    auc = "n/a" if result.best_val_macro_auc is None else f"{result.best_val_macro_auc:.4f}"
    click.echo(f"best epoch {result.best_epoch} (validation macro AUC {auc}); bundle: {result.best_bundle}")


@cli.command("evaluate")
@click.option("--checkpoint", type=click.Path(exists=True, file_okay=False), required=True, help="Bundle directory.")
@click.option("--data", "caches", multiple=True, required=True, type=click.Path(exists=True, file_okay=False),
              help="Cache directory (repeat for several).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for evaluation.json/metrics.csv/evaluation.md (default: CHECKPOINT/evaluation).")
@click.option("--bootstrap", type=int, default=1000, show_default=True, help="Bootstrap resamples for 95 % CIs.")
@click.option("--device", default="auto", show_default=True)
def evaluate(checkpoint, caches, out, bootstrap, device) -> None:
    """Tune per-class thresholds on validation (F1-optimal), score the test split, per dataset too.

    \b
    Example:
      ecglens evaluate --checkpoint runs/ptbxl/best --data caches/ptbxl100
    """
    from ecglens.train.bundle import BundleError
    from ecglens.train.evaluate import evaluate_bundle, store_in_bundle, write_report

    try:
        report = evaluate_bundle(checkpoint, caches, n_bootstrap=bootstrap, device=device)
    except (BundleError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(report.to_markdown())
    paths = write_report(report, out or os.path.join(checkpoint, "evaluation"))
    store_in_bundle(checkpoint, report)
    click.echo(f"wrote {', '.join(str(p) for p in paths)}")


@cli.command("synth")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for the WFDB records.")
@click.option("--n-records", type=int, default=1000, show_default=True)
@click.option("--sampling-rate", "sampling_rate_hz", type=float, default=500.0, show_default=True)
@click.option("--duration", "duration_s", type=float, default=10.0, show_default=True, help="Seconds per record.")
@click.option("--snr-db", type=float, default=20.0, show_default=True, help="Signal-to-noise ratio of added noise.")
@click.option("--multi-label-rate", type=float, default=0.2, show_default=True,
              help="Probability that an abnormal record gets a second compatible class.")
@click.option("--seed", type=int, default=0, show_default=True)
@_WORKERS
@click.option("--plot", is_flag=True, help="Also draw one record per class on ECG paper (PNG) into OUT/plots.")
def synth(out, n_records, sampling_rate_hz, duration_s, snr_db, multi_label_rate, seed, workers, plot) -> None:
    """Generate a synthetic 12-lead cohort with ground truth (WFDB + #Dx SNOMED codes + evidence masks).

    Each class comes from its mechanism (AF: irregular RR, no P, f-waves; IAVB: PR > 200 ms; LBBB/RBBB:
    wide QRS of their morphology; PAC/PVC: premature beats; STD/STE: ST shift in a coronary territory).

    \b
    Example:
      ecglens synth --out synthetic --n-records 2000 --sampling-rate 500 --plot
    """
    from ecglens.synth.cohort import SynthConfig, write_cohort

    config = SynthConfig(n_records=n_records, sampling_rate_hz=sampling_rate_hz, duration_s=duration_s, seed=seed,
                         snr_db=snr_db, multi_label_rate=multi_label_rate)
    counts = write_cohort(config, out, workers=workers)
    click.echo(f"{out}: {n_records} records; class counts " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if plot:
        from ecglens.synth.plots import plot_one_per_class

        paths = plot_one_per_class(config, os.path.join(out, "plots"))
        click.echo(f"plots: {', '.join(str(p) for p in paths)}")


@cli.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="ecglens-out/demo", show_default=True)
@click.option("--n-records", type=int, default=1200, show_default=True)
@click.option("--epochs", type=int, default=12, show_default=True)
@click.option("--sampling-rate", "sampling_rate_hz", type=float, default=100.0, show_default=True,
              help="Cache and model rate (records are generated at 500 Hz and resampled).")
@click.option("--model", default="resnet34", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out, n_records, epochs, sampling_rate_hz, model, device, seed) -> None:
    """Run the whole pipeline on a built-in synthetic cohort and write an HTML report (no data needed).

    Generates records, builds the cache, trains the study's ResNet-34, tunes thresholds on validation,
    scores the test split and writes OUT/report.html with the JSON behind it. About 4-5 minutes on 2 CPU
    cores with the defaults; re-running reuses finished steps.

    \b
    Example:
      ecglens demo --out ecglens-out/demo --n-records 5000 --epochs 20 --device cuda
    """
    from ecglens.demo import DemoConfig, run_demo

    path = run_demo(out, DemoConfig(n_records=n_records, epochs=epochs, sampling_rate_hz=sampling_rate_hz,
                                    model=model, device=device, seed=seed))
    click.echo(f"report: {path}")


@cli.group()
def explain() -> None:
    """Explanations: Grad-CAM, SHAP, exact lead Shapley values, population heatmaps, faithfulness."""


def _explain_options(function):
    options = [
        click.option("--checkpoint", type=click.Path(exists=True, file_okay=False), required=True,
                     help="Bundle directory."),
        click.option("--data", "caches", multiple=True, type=click.Path(exists=True, file_okay=False),
                     help="Cache(s): records by id, the background set, and default records (test split)."),
        click.option("--records", default=None,
                     help="Comma-separated record ids in --data, or record files (.hea/.mat) when no --data."),
        click.option("--n", "n_records", type=int, default=3, show_default=True,
                     help="Test-split records to explain when --records is not given."),
        click.option("--class", "class_name", default=None, help="Class to explain (default: each predicted one)."),
        click.option("--out", type=click.Path(file_okay=False), default="ecglens-out/explain", show_default=True),
        click.option("--device", default="auto", show_default=True),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _cache_explain_options(function):
    """Options of the explain commands that work over a cache's split (population, faithfulness)."""
    options = [
        click.option("--checkpoint", type=click.Path(exists=True, file_okay=False), required=True,
                     help="Bundle directory."),
        click.option("--data", "caches", multiple=True, required=True, type=click.Path(exists=True, file_okay=False),
                     help="Cache(s) holding the records and the background set."),
        click.option("--out", type=click.Path(file_okay=False), default="ecglens-out/explain", show_default=True),
        click.option("--device", default="auto", show_default=True),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _session_and_inputs(checkpoint, caches, records, n_records, device="auto"):
    from ecglens.explain.inputs import ExplainSession

    try:
        session = ExplainSession(checkpoint, caches, device)
        if records and caches:
            inputs = session.from_ids([r.strip() for r in records.split(",") if r.strip()])
        elif records:
            inputs = session.from_files([r.strip() for r in records.split(",") if r.strip()])
        else:
            if not caches:
                raise click.UsageError("give --records FILES, or --data CACHE (with or without --records)")
            inputs = session.from_split("test", n_records)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None
    return session, inputs


def _save_figure(fig, path) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def _per_record_maps(method, checkpoint, caches, records, n_records, class_name, out, device, **extra):
    """Shared body of ``explain gradcam`` and ``explain shap``."""
    import json
    from pathlib import Path

    import numpy as np
    import torch

    from ecglens.explain.jobs import attribute, targets_for
    from ecglens.report.figures import gradcam_figure, label_title, shap_figure

    session, inputs = _session_and_inputs(checkpoint, caches, records, n_records, device)
    background = session.background(extra.get("background", 100)) if method == "shap" else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = []
    for item in inputs:
        x = torch.from_numpy(item.signal)[None].to(session.device)
        probabilities = session.probabilities(x)[0]
        title = label_title(item.record_id, item.labels, probabilities, session.meta.thresholds)
        maps = {}
        for target in targets_for(session, item, probabilities, class_name):
            name = session.meta.class_names[target]
            values = attribute(session, method, x, target, background, extra.get("n_samples", 8))
            maps[name] = values
            if method == "gradcam":
                fig = gradcam_figure(item.signal, session.meta.sampling_rate_hz, values, title, name,
                                     extra["percentile"], extra["layout"], session.meta.lead_names)
            else:
                fig = shap_figure(item.signal, session.meta.sampling_rate_hz, values, title, name,
                                  extra["percentile"], extra["layout"], session.meta.lead_names)
            figure = _save_figure(fig, out / f"{item.record_id}_{name}_{method}.png")
            summary.append({"record_id": item.record_id, "class": name, "probability": float(probabilities[target]),
                            "figure": figure, "lead_mass": dict(zip(session.meta.lead_names,
                                                                    np.abs(values).sum(axis=1).tolist(), strict=True))})
        np.savez_compressed(out / f"{item.record_id}_{method}.npz", **maps)
    (out / f"{method}.json").write_text(json.dumps(summary, indent=2))
    for row in summary:
        click.echo(f"{row['record_id']} {row['class']} p={row['probability']:.3f}: {row['figure']}")
    click.echo(f"wrote {out / (method + '.json')}")


@explain.command("gradcam")
@_explain_options
@click.option("--percentile", type=float, default=95.0, show_default=True, help="Display threshold (the study's 95).")
@click.option("--layout", type=click.Choice(["3x4", "12x1"]), default="3x4", show_default=True)
def explain_gradcam(checkpoint, caches, records, n_records, class_name, out, device, percentile, layout) -> None:
    """Grad-CAM at the end of the 4th residual stage, drawn over the 12 leads on ECG paper.

    \b
    Example:
      ecglens explain gradcam --checkpoint runs/demo/best --data caches/demo --records S00012 --out figs
    """
    _per_record_maps("gradcam", checkpoint, caches, records, n_records, class_name, out, device,
                     percentile=percentile, layout=layout)


@explain.command("shap")
@_explain_options
@click.option("--background", type=int, default=100, show_default=True, help="Training records as background.")
@click.option("--n-samples", type=int, default=8, show_default=True, help="Expected-gradients samples.")
@click.option("--percentile", type=float, default=95.0, show_default=True)
@click.option("--layout", type=click.Choice(["3x4", "12x1"]), default="12x1", show_default=True)
def explain_shap(checkpoint, caches, records, n_records, class_name, out, device, background, n_samples,
                 percentile, layout) -> None:
    """SHAP values (expected gradients, captum GradientShap): high-SHAP segments per lead, per class.

    \b
    Example:
      ecglens explain shap --checkpoint runs/demo/best --data caches/demo --n 5 --out figs
    """
    _per_record_maps("shap", checkpoint, caches, records, n_records, class_name, out, device,
                     background=background, n_samples=n_samples, percentile=percentile, layout=layout)


@explain.command("lead-shapley")
@_explain_options
@click.option("--baseline", type=click.Choice(["zeros", "mean"]), default="zeros", show_default=True,
              help="What an absent lead becomes: zeros, or the background records' mean.")
@click.option("--sampled", "n_permutations", type=int, default=None,
              help="Estimate from this many lead orders instead of all 4,096 coalitions.")
def explain_lead_shapley(checkpoint, caches, records, n_records, class_name, out, device, baseline,
                         n_permutations) -> None:
    """Exact Shapley values of the 12 leads for all 9 classes (probability with absent leads at a baseline).

    \b
    Example:
      ecglens explain lead-shapley --checkpoint runs/demo/best --data caches/demo --records S00012
    """
    import json
    from pathlib import Path

    import pandas as pd

    from ecglens.explain.jobs import lead_shapley_table

    session, inputs = _session_and_inputs(checkpoint, caches, records, n_records, device)
    background = session.background(100) if baseline == "mean" else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for item in inputs:
        table = pd.DataFrame(lead_shapley_table(session, item, baseline, background, n_permutations),
                             index=list(session.meta.lead_names), columns=list(session.meta.class_names))
        table.to_csv(out / f"{item.record_id}_lead_shapley.csv")
        results[item.record_id] = table.to_dict()
        shown = [class_name] if class_name else list(session.meta.class_names)
        click.echo(f"{item.record_id} ({'sampled' if n_permutations else 'exact'}, baseline {baseline}):")
        click.echo(table[shown].to_string(float_format=lambda v: f"{v:+.4f}"))
    (out / "lead_shapley.json").write_text(json.dumps(results, indent=2))
    click.echo(f"wrote {out / 'lead_shapley.json'}")


@explain.command("population")
@_cache_explain_options
@click.option("--n", "n_records", type=int, default=200, show_default=True, help="Records of the split to use.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--background", type=int, default=100, show_default=True)
@click.option("--n-samples", type=int, default=4, show_default=True, help="Expected-gradients samples per class.")
def explain_population(checkpoint, caches, n_records, split, background, n_samples, out, device) -> None:
    """Lead x class heatmap of SHAP mass, normalised per class, with an average row (the study's Figures 2-5).

    \b
    Example:
      ecglens explain population --checkpoint runs/demo/best --data caches/demo --n 200
    """
    import json
    from pathlib import Path

    import pandas as pd

    from ecglens.explain.inputs import ExplainSession
    from ecglens.report.explanations import population_heatmap

    session = ExplainSession(checkpoint, caches, device)
    inputs = session.from_split(split, n_records)
    out = Path(out)
    figure = out / "population.png"
    result = population_heatmap(session, inputs, session.background(background), figure,
                                f"SHAP mass per lead (%), {len(inputs)} {split} records", n_samples, dpi=90)
    (out / "population.json").write_text(json.dumps(result.to_dict(), indent=2))
    table = pd.DataFrame(result.matrix * 100, index=list(result.class_names), columns=list(result.lead_names))
    table.loc["average"] = result.average() * 100
    table.to_csv(out / "population.csv")
    click.echo(table.round(1).to_string())
    click.echo(f"{len(inputs)} records in {result.seconds:.0f} s; wrote {out / 'population.json'}, {figure}")


@explain.command("faithfulness")
@_cache_explain_options
@click.option("--n", "n_records", type=int, default=40, show_default=True, help="Test records to measure on.")
@click.option("--methods", default="gradcam,shap", show_default=True)
@click.option("--steps", type=int, default=10, show_default=True, help="Deletion/insertion steps.")
@click.option("--background", type=int, default=50, show_default=True)
def explain_faithfulness(checkpoint, caches, n_records, methods, steps, background, out, device) -> None:
    """Deletion/insertion areas against random order, localisation against evidence masks, randomisation check.

    \b
    Example:
      ecglens explain faithfulness --checkpoint runs/demo/best --data caches/demo --n 40
    """
    import json
    from pathlib import Path

    from ecglens.explain.inputs import ExplainSession
    from ecglens.explain.jobs import faithfulness
    from ecglens.report.figures import curves_figure

    session = ExplainSession(checkpoint, caches, device)
    inputs = session.from_split("test", n_records)
    result = faithfulness(session, inputs, session.background(background), methods.split(","), steps)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "faithfulness.json").write_text(json.dumps(result.to_dict(), indent=2))
    (out / "faithfulness.md").write_text(result.to_markdown())
    _save_figure(curves_figure(result.fractions, result.mean_curves, "mean curves over records and classes"),
                 out / "faithfulness_curves.png")
    click.echo(result.to_markdown())
    click.echo(f"wrote {out / 'faithfulness.json'}, {out / 'faithfulness.md'}")


@cli.command("predict")
@click.option("--checkpoint", type=click.Path(exists=True, file_okay=False), required=True, help="Bundle directory.")
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), default="ecglens-out/predict", show_default=True,
              help="Folder for predictions.jsonl, predictions.csv, issues.csv and figures.")
@click.option("--sampling-rate", "sampling_rate_hz", type=float, default=None,
              help="Rate of CSV/NumPy inputs (other formats carry their own).")
@click.option("--lead-order", default=None,
              help="Comma-separated lead order of CSV (without header) and NumPy inputs; default I,II,...,V6.")
@click.option("--engine", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--explain", "explain_method", type=click.Choice(["gradcam", "shap"]), default=None,
              help="Also draw each record with its explanation for the predicted classes.")
@click.option("--background", "background_caches", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Cache for the SHAP background (default: the bundle's training caches).")
@click.option("--device", default="auto", show_default=True)
def predict(checkpoint, paths, out, sampling_rate_hz, lead_order, engine, batch_size, explain_method,
            background_caches, device) -> None:
    """Diagnose ECG files: probabilities, decisions under the bundle's thresholds, quality warnings.

    Reads WFDB (any rate), Challenge .hea/.mat, CPSC .mat, EDF, and CSV/NumPy (with --sampling-rate).
    Directories are searched recursively; unreadable files are listed and never stop the batch.

    \b
    Example:
      ecglens predict --checkpoint runs/demo/best ../shared/data/challenge/cpsc2018 --out predictions
    """
    import csv as csv_module
    from pathlib import Path

    from ecglens.leads import LEAD_NAMES, canonical_leads
    from ecglens.predict import load_bundle, predict_files

    try:
        predictor = load_bundle(checkpoint, device, engine)
    except (FileNotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    leads = canonical_leads(lead_order.split(",")) if lead_order else LEAD_NAMES
    predictions, issues = predict_files(predictor, paths, batch_size, sampling_rate_hz, leads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "predictions.jsonl", "w") as handle:
        handle.writelines(p.to_json() + "\n" for p in predictions)
    names = list(predictor.meta.class_names)
    with open(out / "predictions.csv", "w", newline="") as handle:
        writer = csv_module.writer(handle)
        writer.writerow(["record_id", "source", *names, "decisions", "warnings"])
        for p in predictions:
            writer.writerow([p.record_id, p.source, *(f"{p.probabilities[n]:.6f}" for n in names),
                             ";".join(p.decisions), " | ".join(p.warnings)])
    with open(out / "issues.csv", "w", newline="") as handle:
        writer = csv_module.writer(handle)
        writer.writerow(["path", "reason"])
        writer.writerows((i.path, i.reason) for i in issues)
    width = max([len(p.record_id) for p in predictions] + [6])
    click.echo(f"{'record':<{width}}  decisions (probability)                 warnings")
    for p in predictions:
        decided = ", ".join(f"{d} ({p.probabilities[d]:.2f})" for d in p.decisions) or "none"
        click.echo(f"{p.record_id:<{width}}  {decided:<40} {'; '.join(p.warnings)}")
    _print_issues(issues)
    if explain_method:
        _explain_predictions(predictor, paths, predictions, explain_method, background_caches, out / "figures",
                             sampling_rate_hz, leads)
    click.echo(f"{len(predictions)} predicted, {len(issues)} unreadable; wrote {out / 'predictions.jsonl'}, "
               f"{out / 'predictions.csv'}")


def _explain_predictions(predictor, paths, predictions, method, background_caches, out, sampling_rate_hz, leads):
    import numpy as np
    import torch

    from ecglens.explain.inputs import ExplainSession, window_of
    from ecglens.explain.jobs import attribute
    from ecglens.io import read_record
    from ecglens.preprocess import resample
    from ecglens.report.figures import gradcam_figure, label_title, shap_figure

    caches = list(background_caches) or [c for c in predictor.meta.training_data.get("caches", [])
                                         if os.path.isdir(c)]
    if method == "shap" and not caches:
        raise click.ClickException("SHAP needs a background: pass --background CACHE")
    session = ExplainSession(predictor.bundle, caches if method == "shap" else [], str(predictor.device))
    background = session.background(100) if method == "shap" else None
    out.mkdir(parents=True, exist_ok=True)
    meta = predictor.meta
    for prediction in predictions:
        record = read_record(prediction.source, meta.lead_names, sampling_rate_hz, leads)
        signal = window_of(resample(record.signal, record.sampling_rate_hz, meta.sampling_rate_hz), session.window)
        x = torch.from_numpy(signal)[None].to(session.device)
        probabilities = np.array([prediction.probabilities[n] for n in meta.class_names])
        title = label_title(prediction.record_id, None, probabilities, meta.thresholds, meta.class_names)
        for name in prediction.decisions or (meta.class_names[int(np.argmax(probabilities))],):
            target = meta.class_names.index(name)
            values = attribute(session, method, x, target, background)
            draw = gradcam_figure if method == "gradcam" else shap_figure
            _save_figure(draw(signal, meta.sampling_rate_hz, values, title, name, lead_names=meta.lead_names),
                         out / f"{prediction.record_id}_{name}_{method}.png")
    click.echo(f"figures: {out}")


@cli.group()
def export() -> None:
    """Export a bundle to other runtimes."""


@export.command("onnx")
@click.option("--checkpoint", type=click.Path(exists=True, file_okay=False), required=True, help="Bundle directory.")
@click.option("--opset", type=int, default=18, show_default=True)
def export_onnx_command(checkpoint, opset) -> None:
    """Write CHECKPOINT/model.onnx (input 'ecg': batch x leads x samples, batch and length dynamic).

    \b
    Example:
      ecglens export onnx --checkpoint runs/demo/best
      ecglens predict --engine onnx --checkpoint runs/demo/best record.hea
    """
    from ecglens.predict import export_onnx

    click.echo(f"wrote {export_onnx(checkpoint, opset)}")


@cli.command("reproduce")
@click.option("--cpsc", "cpsc", multiple=True, required=True,
              help="CPSC 2018 source(s): original (cpsc2018:ROOT) or Challenge (challenge:ROOT); repeatable.")
@click.option("--ptbxl", "ptbxl", multiple=True, required=True,
              help="PTB-XL source(s): native (ptbxl:ROOT) or Challenge (challenge:ROOT); repeatable.")
@click.option("--extra", multiple=True, help="More datasets as NAME=FORMAT:ROOT (train in Ours_2, test everywhere).")
@click.option("--out", type=click.Path(file_okay=False), default="ecglens-out/reproduce", show_default=True)
@click.option("--quick", is_flag=True, help="The 2-core CPU profile: 100 Hz, 6 epochs, lr 1e-3, fewer SHAP records.")
@click.option("--cross", is_flag=True, help="Also train on each dataset alone and test on every other.")
@click.option("--sampling-rate", "sampling_rate_hz", type=float, default=None, help="Default 500 (100 with --quick).")
@click.option("--epochs", type=int, default=None, help="Default 30 (6 with --quick).")
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--model", default=None)
@click.option("--label-profile", default=None, help="Default 'seed' (the study's mapping).")
@click.option("--device", default=None)
@click.option("--study-table2", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV of the study's Table 2 (columns as our table2.csv) to show beside ours.")
@click.option("--study-table3", type=click.Path(exists=True, dir_okay=False), default=None)
def reproduce(cpsc, ptbxl, extra, out, quick, cross, sampling_rate_hz, epochs, batch_size, lr, model, label_profile,
              device, study_table2, study_table3) -> None:
    """Run the study's Original / Ours_1 / Ours_2 protocols: Tables 2 and 3, Figures 2-8, one HTML report.

    Resumable: finished caches, runs and evaluations are reused; an interrupted run started again
    finishes the rest.

    \b
    Example:
      ecglens reproduce --quick --cpsc cpsc2018:../shared/data/cpsc2018 \\
          --cpsc cpsc=challenge:../shared/data/challenge/cpsc2018 --ptbxl ptbxl:../shared/data/ptb-xl
    """
    from ecglens.experiments import quick_or_full, run_reproduce

    config = quick_or_full(quick, sampling_rate_hz=sampling_rate_hz, epochs=epochs, batch_size=batch_size, lr=lr,
                           model=model, label_profile=label_profile, device=device)
    cpsc_sources = [_named(s, "cpsc") for s in cpsc]
    ptbxl_sources = [_named(s, "ptbxl") for s in ptbxl]
    study = {k: v for k, v in (("table2", study_table2), ("table3", study_table3)) if v}
    path = run_reproduce(cpsc_sources, ptbxl_sources, out, config, _sources(extra), cross, study_tables=study)
    click.echo(f"report: {path}")


def _named(spec: str, name: str):
    """A source spec forced to one dataset name (several roots of one dataset join as one)."""
    from dataclasses import replace

    (source,) = _sources([spec])
    return replace(source, name=name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (for tests and embedding)."""
    from ecglens.io.record import RecordError

    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="ecglens", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except RecordError as error:
        click.echo(f"error: {error}", err=True)
        return 1
    except click.exceptions.Exit as done:
        return done.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
