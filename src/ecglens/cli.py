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
@click.option("--epochs", type=int, default=14, show_default=True)
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
