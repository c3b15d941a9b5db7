"""Command-line interface: thin click commands over library functions.

Each command parses its options, calls one ``run_*`` of `ecglens.commands` and prints
the result; the library writes every file. ``main(argv) -> int`` is callable from tests; the ``ecglens``
console script wraps it. Errors a user can cause end in one line and a non-zero exit.
"""

from __future__ import annotations

import errno
import math
import sys
from collections.abc import Sequence

import click

from ecglens._version import __version__
from ecglens.explain import limits as _population_limits  # the bounds of explain population's options (no torch)


class _Finite(click.FloatRange):
    """A finite number within a range (click's FloatRange lets NaN through: every comparison with it is false)."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


COUNT = click.IntRange(min=1)
"""Batch sizes, shard sizes, epochs, records, samples, resamples: whole numbers of at least 1."""
RATE = _Finite(50.0, 10_000.0)
"""A sampling rate in Hz: `ecglens.io.limits.MIN_RATE_HZ` to `MAX_RATE_HZ` (tests check they agree)."""
SECONDS = _Finite(1.0, 3600.0)
"""A record or input length in seconds: `ecglens.io.limits.MIN_SECONDS` to `MAX_SECONDS`."""
SEED = click.IntRange(min=0)
FOLD = click.IntRange(1, 10)
SHARE = _Finite(0.0, 1.0)

_WORKERS = click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    default=None,
    show_default="all cores",
    help="Worker processes for reading files.",
)
_IN_SCOPE_ONLY = click.option(
    "--in-scope-only",
    is_flag=True,
    help="Leave out records whose statements name none of the classes (the study's reproduction). By default "
    "they are kept as negatives for every class, so a model learns that an infarction is not normal, and "
    "reports measure them (the out-of-scope table).",
)
_PROFILE = click.option(
    "--label-profile",
    default="strict",
    show_default=True,
    help="Label mapping: 'strict' (same diagnosis only), 'broad' (plus same by definition), 'seed' "
    "(a reconstruction of the study's, clinically wrong rows kept) or a mapping CSV file.",
)
_STRICT = click.option("--strict", is_flag=True, help="Stop at the first bad record instead of listing it.")
_OUTSIDE = click.option(
    "--allow-outside-root",
    is_flag=True,
    help="Read signal files that a metadata table (PTB-XL's filename_lr/hr) places outside the "
    "dataset root; refused by default.",
)
_DEVICE = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
_CHECKPOINT = click.option(
    "--checkpoint",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="Bundle directory (a run's best/).",
)


def _bundle_or_starter(ctx, param, value):
    """``--checkpoint`` of predict and serve: a bundle directory, or the starter model when none is given."""
    from pathlib import Path

    if value is None or value == "starter":
        from ecglens.bundle.meta import STARTER, starter_notice

        if not (ctx.resilient_parsing or ctx.find_root().params.get("quiet")):
            click.echo(starter_notice(), err=True)
        return STARTER
    if not Path(value).is_dir():
        raise click.BadParameter(f"{value!r} is not a bundle directory", param_hint="--checkpoint")
    return value


_BUNDLE_OR_STARTER = click.option(
    "--checkpoint",
    required=True,
    callback=_bundle_or_starter,
    help="Bundle directory (a run's best/), or 'starter' (the shipped model).",
)
_MODEL = click.option(
    "--checkpoint",
    default=None,
    callback=_bundle_or_starter,
    show_default="the starter model shipped with ecglens (ecglens models --card starter)",
    help="Bundle directory (a run's best/), or 'starter'.",
)


def _commands(group: str):
    """A command group's module in `ecglens.commands`, imported when one of its commands runs: --help, ``models``
    and the ``data`` commands load no torch."""
    import importlib

    return importlib.import_module(f"ecglens.commands.{group}")


def _show(result) -> None:
    """Print a command's result object: its problems on standard error, its lines on standard output."""
    from ecglens.util.progress import printable

    for line in result.problems() if hasattr(result, "problems") else ():
        click.echo(printable(line), err=True)
    for line in result.lines():  # a multi-line block (a Markdown table) prints as its lines, each made printable
        for part in str(line).split("\n"):
            click.echo(printable(part))


def _sources(specs: Sequence[str], name: str | None = None, allow_outside_root: bool = False):
    from dataclasses import replace

    from ecglens.io import parse_source

    try:
        return [replace(parse_source(spec, name), allow_outside_root=allow_outside_root) for spec in specs]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="SOURCE") from None


def _ids(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ecglens")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or stage lines; warnings and results only.")
@click.option("-v", "--verbose", count=True, help="More detail in the log (debug lines).")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    show_default="the cores this process may use",
    help="CPU threads for torch (idle OpenMP threads spin briefly, then sleep, so a busy machine is shared fairly).",
)
def cli(quiet: bool, verbose: int, threads: int | None) -> None:
    """Interpretable deep-learning diagnosis of 12-lead ECGs (SNR, AF, IAVB, LBBB, RBBB, PAC, PVC, STD, STE).

    A SOURCE is [NAME=]FORMAT:ROOT with FORMAT one of ptbxl, ptbxl100, ptbxl500, cpsc2018, challenge,
    wfdb, clinical (a folder of DICOM, HL7 aECG, Philips XML, GE MUSE XML and SCP-ECG exports; pip install
    'ecglens[clinical]'), or a bare ROOT whose format is detected.

    Progress: bars on a terminal; one line per stage or epoch when standard error is a file or pipe.
    """
    import os

    from ecglens.util.progress import configure
    from ecglens.util.runtime import configure_cpu

    # Commands draw to files only (a library import never switches a user's backend); set before matplotlib
    # loads, without loading it, so --help stays fast.
    os.environ["MPLBACKEND"] = "Agg"
    if "matplotlib" in sys.modules:
        sys.modules["matplotlib"].use("Agg")
    configure(-1 if quiet else verbose)
    configure_cpu(threads)


@cli.group()
def data() -> None:
    """Read datasets: summaries and the preprocessed cache."""


@data.command("summary")
@click.argument("sources", nargs=-1, required=True)
@_PROFILE
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="ecglens-out/summary",
    show_default=True,
    help="Folder for summary.md and table1.csv.",
)
@_WORKERS
@_STRICT
@_OUTSIDE
def data_summary(sources, label_profile, out, workers, strict, allow_outside_root) -> None:
    """Print the study's Table 1 per dataset (count, male, age per class), lengths and what was left out.

    Native PTB-XL is shown beside the study's own Table 1 with the gap, under any built-in profile; 'seed' is a
    reconstruction of the study's mapping (the study did not publish its table).

    \b
    Examples:
      ecglens data summary ptbxl100:../shared/data/ptb-xl cpsc2018:../shared/data/cpsc2018 --label-profile seed
      ecglens data summary clinical:../shared/data/clinical     # a folder of cart exports, ids pseudonymous
    """
    _show(
        _commands("data").run_summary(
            _sources(sources, allow_outside_root=allow_outside_root), label_profile, out, workers, strict
        )
    )


@data.command("label-spaces")
@click.argument("space", required=False)
def data_label_spaces(space) -> None:
    """List the built-in label spaces, or the classes of one (with their Challenge 2021 SNOMED-CT codes).

    Any cache serves any label space: choose one with 'ecglens train --label-space'.

    \b
    Examples:
      ecglens data label-spaces
      ecglens data label-spaces ptbxl-superdiagnostic
    """
    _show(_commands("data").run_label_spaces(space))


@data.command("download")
@click.argument("dataset")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the dataset (created); required but for 'examples', which go to $ECGLENS_EXAMPLES or "
    "$XDG_DATA_HOME/ecglens/examples (~/.local/share/ecglens/examples), where 'ecglens serve' finds them.",
)
@click.option(
    "--rate",
    type=click.Choice(["100", "500", "both"]),
    default="both",
    show_default=True,
    help="PTB-XL only: its 100 Hz files, its 500 Hz files, or both.",
)
@click.option(
    "--base-url",
    default="https://physionet.org/files",
    show_default=True,
    help="Where PhysioNet's files/ tree is; a mirror's URL.",
)
@click.option(
    "--version", "version", default=None, show_default="ptb-xl 1.0.3, challenge-2021 1.0.3", help="Project version."
)
@click.option("--workers", type=click.IntRange(1, 32), default=4, show_default=True, help="Files fetched at once.")
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=4,
    show_default=True,
    help="Retries of a transient failure (connection, timeout, HTTP 429/5xx), with exponential backoff.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for a connection or the next bytes.",
)
def data_download(dataset, out, rate, base_url, version, workers, retries, timeout) -> None:
    """Fetch a PhysioNet dataset, every file verified against the project's SHA256SUMS.txt.

    DATASET is ptbxl (PTB-XL, native layout), a source of the PhysioNet/CinC Challenge 2021 training set:
    cpsc_2018 (alias cpsc2018), cpsc_2018_extra, georgia, chapman_shaoxing, ningbo, ptb, ptb-xl,
    st_petersburg_incart, or examples: the viewer's example records, 7 real PTB-XL 1.0.3 records at 100 Hz
    (172 kB; one per class the starter model decides, chosen by PTB-XL's labels; CC BY 4.0, Wagner et al.
    2020), each checked against a SHA-256 pinned in ecglens. A file appears under its name only once its
    SHA-256 matches; an interrupted run continues partial files with HTTP range requests, and a re-run
    fetches nothing already verified. Files that still fail are listed with their URLs (exit 1) while the
    rest completes.

    \b
    Example:
      ecglens data download examples               # then 'ecglens serve' shows them
      ecglens data download ptbxl --rate 500 --out data/ptb-xl
      ecglens data download cpsc2018 --out data/cpsc_2018
    """
    result = _commands("data").run_download(dataset, out, base_url, rate, version, workers, retries, timeout)
    _show(result)
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


@data.command("prepare")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Cache directory to create.")
@click.option(
    "--sampling-rate",
    "sampling_rate_hz",
    type=RATE,
    default=500.0,
    show_default=True,
    help="Target rate in Hz (anti-aliased polyphase resampling).",
)
@_PROFILE
@_WORKERS
@_STRICT
@click.option("--overwrite", is_flag=True, help="Replace a cache built with another spec or sources.")
@click.option("--shard-size", type=COUNT, default=256, show_default=True, help="Records per resumable shard.")
@click.option(
    "--min-likelihood",
    type=_Finite(0.0, 100.0),
    default=0.0,
    show_default=True,
    help="Ignore PTB-XL statements whose likelihood is below this (rhythm statements, always 0, still "
    "count): at 50, a NORM at 80 beside an IMI at 15 is a normal ECG; at 0 it is not.",
)
@_OUTSIDE
def data_prepare(
    sources,
    out,
    sampling_rate_hz,
    label_profile,
    workers,
    strict,
    overwrite,
    shard_size,
    min_likelihood,
    allow_outside_root,
) -> None:
    """Build a memory-mapped cache: read every record once, resample, map labels.

    Resumable (a re-run skips finished shards) and atomic (the cache appears only when complete).

    \b
    Example:
      ecglens data prepare ptbxl:../shared/data/ptb-xl --sampling-rate 100 --out caches/ptbxl100
    """
    _show(
        _commands("data").run_prepare(
            _sources(sources, allow_outside_root=allow_outside_root),
            out,
            sampling_rate_hz,
            label_profile,
            workers,
            strict,
            overwrite,
            shard_size,
            min_likelihood,
        )
    )


@cli.command("train")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML, TOML or JSON file of these options (a run's own config.json repeats that run); "
    "flags given here override it.",
)
@click.option(
    "--data",
    "caches",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Cache directory (repeat for several: split together, a recording two caches hold used once, "
    "from its native source, and a patient's records on one side).",
)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Run directory.")
@click.option(
    "--label-space",
    default=None,
    show_default="cpsc9 under the cache's profile",
    help="Classes to train on: cpsc9[:strict|:broad|:seed], ptbxl-all, ptbxl-diagnostic, "
    "ptbxl-subdiagnostic, ptbxl-superdiagnostic, ptbxl-form, ptbxl-rhythm, challenge2021, or a "
    "mapping CSV (see 'ecglens data label-spaces'). Any cache serves any space: no new prepare.",
)
@click.option("--model", default="resnet34", show_default=True, help="Registered model name.")
@click.option("--epochs", type=COUNT, default=30, show_default=True, help="Training epochs (the study's 30).")
@click.option("--batch-size", type=COUNT, default=32, show_default=True, help="Records per batch (the study's 32).")
@click.option(
    "--lr",
    type=_Finite(0.0, 10.0, min_open=True),
    default=1e-4,
    show_default=True,
    help="Adam learning rate (the study's 1e-4).",
)
@click.option(
    "--seed",
    type=SEED,
    default=0,
    show_default=True,
    help="Seed of the weights, batch order, augmentation and of the split of datasets without folds.",
)
@click.option(
    "--policy",
    type=click.Choice(["crop", "original"]),
    default="crop",
    show_default=True,
    help="Input length: 'crop' (random 10-s windows, whole records at evaluation) or 'original' "
    "(last 30 s, zero-padded at the front).",
)
@click.option(
    "--policy-seconds", type=SECONDS, default=None, help="Window length (default 10 for crop, 30 for original)."
)
@click.option(
    "--augment-probability",
    type=SHARE,
    default=0.5,
    show_default=True,
    help="Probability of each augmentation (the original code's is 0.3085).",
)
@click.option("--leads", default=None, help="Comma-separated lead subset, e.g. I,II,V1 (default all 12).")
@click.option("--val-fold", type=FOLD, default=9, show_default=True, help="Fold (1-10) used for validation.")
@click.option("--test-fold", type=FOLD, default=10, show_default=True, help="Fold (1-10) held out for testing.")
@_IN_SCOPE_ONLY
@_DEVICE
@click.option(
    "--no-amp",
    is_flag=True,
    help="Disable mixed precision on CUDA (bf16 where the GPU supports it, else fp16 with a grad scaler).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    show_default="0 on CPU, up to 4 on CUDA",
    help="DataLoader worker processes (persistent across epochs).",
)
@click.option(
    "--compile",
    "compile_model",
    is_flag=True,
    help="torch.compile the model for training (slower first epoch; faster after, mostly on CUDA).",
)
@click.option(
    "--augment",
    default=None,
    help="Perturbation families as training augmentation: noise, faults or noise,faults (each record "
    "perturbed with probability 0.5, at a random severity; see 'ecglens robustness').",
)
@click.option(
    "--adversarial",
    default=None,
    help="pgd:EPS: PGD adversarial training at an L-inf budget of EPS microvolts (3 steps; loss = mean "
    "of clean and adversarial). About 4x the time per epoch.",
)
@click.option(
    "--tensorboard",
    is_flag=True,
    help="Also write TensorBoard event files to RUN/tensorboard (needs the 'tensorboard' extra).",
)
@click.option(
    "--init",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Start from this bundle's weights (fine-tuning, the study's Ours_1).",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out exactly.")
@click.pass_context
def train(ctx, config_file, out, resume, **options) -> None:
    """Train on the training split of caches; the best epoch (validation macro AUC) becomes a bundle.

    The run writes config.json (every option, resolved), splits.csv, log.csv (loss, validation macro AUC,
    AUPRC and Fmax, learning rate per epoch) and best/ (the bundle, with its label space and tables).
    'ecglens train --config RUN/config.json --out NEW' repeats a run exactly.

    Multi-process: torchrun --nproc-per-node 2 -m ecglens.cli train ...

    On CUDA: mixed precision, pinned memory with non-blocking copies, persistent loader workers and cuDNN
    autotuning (its kernel choice can make a resumed run differ from an uninterrupted one by float rounding).

    \b
    Examples:
      ecglens train --data caches/ptbxl100 --out runs/ptbxl --epochs 30 --batch-size 32 --lr 1e-4
      ecglens train --data caches/ptbxl100 --out runs/super --label-space ptbxl-superdiagnostic
      ecglens train --config runs/super/config.json --out runs/super-again
    """
    from click.core import ParameterSource

    given = {
        name: value
        for name, value in options.items()
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    }
    if "caches" in given:
        given["data"] = list(given.pop("caches"))
    _show(_commands("train").run_train(config_file, out, given, resume))


@cli.command("evaluate")
@_BUNDLE_OR_STARTER
@click.option(
    "--data",
    "caches",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Cache directory (repeat for several).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for evaluation.json/metrics.csv/evaluation.md (default: evaluation/ beside the bundle).",
)
@click.option("--bootstrap", type=COUNT, default=1000, show_default=True, help="Bootstrap resamples for 95 % CIs.")
@click.option(
    "--store-thresholds",
    is_flag=True,
    help="Also write the thresholds tuned here into the bundle (with the data they came from); "
    "without it the bundle is never changed.",
)
@click.option(
    "--external",
    is_flag=True,
    help="The caches are a dataset the bundle never saw (e.g. LUDB): score every labelled record at the "
    "bundle's own thresholds, no split, no tuning.",
)
@_DEVICE
def evaluate(checkpoint, caches, out, bootstrap, store_thresholds, external, device) -> None:
    """Tune per-class thresholds on validation (F1-optimal), score the test split, per dataset too.

    The results, thresholds included, go to --out; the bundle keeps its own thresholds unless
    --store-thresholds is given. Records outside the label space are scored as negatives and get their own
    table (the share called each class; the false-normal rate).

    \b
    Examples:
      ecglens evaluate --checkpoint runs/ptbxl/best --data caches/ptbxl100
      ecglens data prepare ludb=challenge:../shared/data/ludb/data --sampling-rate 100 --out caches/ludb100
      ecglens evaluate --checkpoint starter --data caches/ludb100 --external --out ludb-evaluation
    """
    if external and store_thresholds:
        raise click.UsageError("--external scores at the bundle's own thresholds: there is nothing to store")
    _show(_commands("evaluate").run_evaluate(checkpoint, caches, out, bootstrap, device, store_thresholds, external))


@cli.command("robustness")
@_BUNDLE_OR_STARTER
@click.option(
    "--data",
    "caches",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Cache directory at the bundle's rate (repeat for several); split as the bundle was trained.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="robustness",
    show_default=True,
    help="Folder for robustness.json/.csv/.html and the figures.",
)
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option(
    "--n",
    "n_records",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Records of the split (a seeded choice when it has more).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Three noise kinds at 18 and 6 dB, one severity per fault, attacks at 10 and 50 uV with 5 PGD steps.",
)
@click.option(
    "--n-flip",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Per class, records decided positive and as many decided negative on which the smallest "
    "decision-flipping budget is searched (0: skip).",
)
@click.option(
    "--flip-attack",
    type=click.Choice(["smooth", "pgd-band", "pgd"]),
    default="smooth",
    show_default=True,
    help="The attack of the flipping budgets.",
)
@click.option(
    "--transfer",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="A second bundle (another seed) scored on the first one's PGD inputs.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Record choice and random noise.")
@_DEVICE
def robustness(checkpoint, caches, out, split, n_records, quick, n_flip, flip_attack, transfer, seed, device) -> None:
    """How decisions hold up under noise, acquisition faults and adversarial perturbations.

    \b
    noise:       Gaussian, muscle (20-150 Hz, at most 0.45 x the rate), baseline wander (0.05-0.5 Hz),
                 powerline 50/60 Hz with harmonics, electrode motion; at 24, 18, 12, 6, 0 dB SNR (the synthetic
                 cohort's generators)
    faults:      gain x0.5-x2; 1-6 leads flat; LA/RA, LA/LL, RA/LL reversals; V1/V2, V2/V3 swaps; declared
                 rate -10..+10 %; start 0.5-2 s late; only 8-2.5 s kept
    adversarial: under L-inf budgets of 5, 10, 25, 50 uV: smooth PGD (Gaussian kernel, sigma 10 ms) and
                 band-limited PGD (0.5-40 Hz), which an ECG could carry; PGD and FGSM, named
                 high-frequency attacks; L2 PGD of the same RMS; random sign noise of the same L-inf norm;
                 each also after the clinical 0.5-40 Hz filter; each attack's spectrum
    flipping:    per class, a survival curve of the records still unflipped against the budget, positives
                 and negatives drawn separately, censored at 250 uV; the median read from the curve;
                 classes that are not validated left out
    transfer:    with --transfer, the first model's PGD inputs scored by a second model

    Metrics: macro and per-class AUC, F1 at the bundle's thresholds, the share of decisions changed.

    \b
    Example:
      ecglens robustness --checkpoint runs/super/best --data caches/ptbxl100 --out robustness
    """
    run = _commands("robustness").run_robustness_report
    _show(run(checkpoint, caches, out, split, n_records, quick, n_flip, transfer, device, seed, flip_attack))


@cli.command("leads")
@click.option(
    "--data",
    "caches",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Cache directory (repeat for several): every subset trains and tests on the same split.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="leads",
    show_default=True,
    help="Study folder (each subset's run in runs/NAME; a finished subset is reused).",
)
@click.option(
    "--subsets",
    default="12,limb6,4,3,2,singles",
    show_default=True,
    help="Named sets: 12, limb6, 4 (I,II,III,V2), 3 (I,II,V2), 2 (I,II), singles (each lead alone).",
)
@click.option("--subset", "custom", multiple=True, help="A lead list of your own, e.g. I,II,V1 (repeatable).")
@click.option(
    "--checkpoint",
    default=None,
    help="The 12-lead bundle to explain, or 'starter' (default: the '12' subset trained here).",
)
@click.option("--no-train", is_flag=True, help="Only the Shapley ranking of --checkpoint: minutes, no training.")
@click.option(
    "--n-shapley",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="Validation records explained (16 sampled lead orders each).",
)
@click.option("--label-space", default=None, help="As for 'ecglens train'.")
@click.option("--model", default="resnet34", show_default=True, help="Registered model name.")
@click.option("--epochs", type=COUNT, default=30, show_default=True)
@click.option("--batch-size", type=COUNT, default=32, show_default=True)
@click.option("--lr", type=_Finite(0.0, 10.0, min_open=True), default=1e-4, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--val-fold", type=FOLD, default=9, show_default=True)
@click.option("--test-fold", type=FOLD, default=10, show_default=True)
@click.option("--bootstrap", type=COUNT, default=200, show_default=True, help="Bootstrap resamples for the intervals.")
@_DEVICE
def leads(
    caches,
    out,
    subsets,
    custom,
    checkpoint,
    no_train,
    n_shapley,
    label_space,
    model,
    epochs,
    batch_size,
    lr,
    seed,
    val_fold,
    test_fold,
    bootstrap,
    device,
) -> None:
    """Which leads suffice: reduced-lead models measured, and the 12-lead model's Shapley ranking of the leads.

    Trains the PhysioNet/CinC 2021 lead sets, single leads and your own lists on the same split and seed;
    reports per-class AUC/F1 with bootstrap intervals; ranks the leads per class by population lead Shapley
    values; correlates the two (Spearman) and trains the Shapley-guided best 2 and 3 leads against the best
    measured subsets of those sizes. Every choice (the ranking, the best subset) is made on the validation
    split; the test split is scored once and chooses nothing. Says where the study's readings (lead II for AF,
    the bundle-branch blocks, PAC and PVC; aVF for PAC; V1 for RBBB) rank.

    \b
    Examples:
      ecglens leads --data caches/ptbxl100 --val-fold 7 --test-fold 8 --epochs 10
      ecglens leads --data caches/ptbxl100 --checkpoint starter --no-train --val-fold 7 --test-fold 8
    """
    _show(
        _commands("studies").run_lead_study_job(
            caches,
            out,
            subsets=subsets,
            custom=custom,
            checkpoint=checkpoint,
            train=not no_train,
            n_shapley=n_shapley,
            n_bootstrap=bootstrap,
            label_space=label_space,
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            val_fold=val_fold,
            test_fold=test_fold,
            device=device,
        )
    )


@cli.command("calibrate")
@_CHECKPOINT
@click.option(
    "--data",
    "caches",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Cache directory (repeat for several); its validation split, as the bundle was trained.",
)
@click.option(
    "--normal-sensitivity",
    type=_Finite(0.0, 1.0, min_open=True),
    default=None,
    help="Set the normal class's (SNR) threshold to the highest with at least this validation "
    "sensitivity, e.g. 0.9, instead of F1-optimal: fewer abnormal ECGs called normal.",
)
@_DEVICE
def calibrate(checkpoint, caches, normal_sensitivity, device) -> None:
    """Calibrate a bundle's probabilities: per-class temperature scaling fitted on validation, stored in the bundle.

    The thresholds are tuned again (F1-optimal, or for SNR by --normal-sensitivity) on the calibrated
    validation probabilities; AUCs do not change. Prints expected calibration error and Brier score before
    and after, per class.

    \b
    Example:
      ecglens calibrate --checkpoint runs/ptbxl/best --data caches/ptbxl100
    """
    _show(_commands("evaluate").run_calibrate(checkpoint, caches, device, normal_sensitivity))


@cli.command("ensemble")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder of the ensemble bundle.")
@click.option(
    "--data",
    "caches",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Cache directory (repeat for several): the members' validation split, to calibrate on.",
)
@click.option(
    "--normal-sensitivity", type=_Finite(0.0, 1.0, min_open=True), default=None, help="As for 'ecglens calibrate'."
)
@_DEVICE
def ensemble(bundles, out, caches, normal_sensitivity, device) -> None:
    """Fuse BUNDLES trained alike (other seeds) into one ensemble bundle, calibrated on validation.

    Its output is the members' mean logit; every command takes it as one model (Grad-CAM, SHAP, ONNX), and
    'predict' reports the members' spread per class (PyTorch engine).

    \b
    Example:
      ecglens ensemble runs/s0/best runs/s1/best runs/s2/best --out runs/ensemble --data caches/ptbxl100
    """
    if len(bundles) < 2:
        raise click.UsageError("an ensemble needs two or more bundles")
    _show(_commands("evaluate").run_ensemble(bundles, out, caches, device, normal_sensitivity))


@cli.command("synth")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for the WFDB records.")
@click.option("--n-records", type=COUNT, default=1000, show_default=True, help="Records to generate.")
@click.option(
    "--sampling-rate",
    "sampling_rate_hz",
    type=RATE,
    default=500.0,
    show_default=True,
    help="Sampling rate of the written records (Hz).",
)
@click.option("--duration", "duration_s", type=SECONDS, default=10.0, show_default=True, help="Seconds per record.")
@click.option(
    "--snr-db",
    type=_Finite(-40.0, 120.0),
    default=20.0,
    show_default=True,
    help="Signal-to-noise ratio of added noise.",
)
@click.option(
    "--multi-label-rate",
    type=SHARE,
    default=0.2,
    show_default=True,
    help="Probability that an abnormal record gets a second compatible class.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Cohort seed (records are deterministic).")
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
    from ecglens.synth.cohort import SynthConfig

    config = SynthConfig(
        n_records=n_records,
        sampling_rate_hz=sampling_rate_hz,
        duration_s=duration_s,
        seed=seed,
        snr_db=snr_db,
        multi_label_rate=multi_label_rate,
    )
    _show(_commands("synth").run_synth(config, out, workers, plot))


@cli.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="ecglens-out/demo",
    show_default=True,
    help="Folder for records, cache, run, evaluation, explanations and report.html.",
)
@click.option("--n-records", type=COUNT, default=1200, show_default=True, help="Synthetic records to generate.")
@click.option("--epochs", type=COUNT, default=12, show_default=True, help="Training epochs.")
@click.option(
    "--sampling-rate",
    "sampling_rate_hz",
    type=RATE,
    default=100.0,
    show_default=True,
    help="Cache and model rate (records are generated at 500 Hz and resampled).",
)
@click.option("--model", default="resnet34", show_default=True, help="Registered model name.")
@_DEVICE
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the cohort, split and training.")
@click.option(
    "--keep-all",
    is_flag=True,
    help="Keep the generated records (about 150 MB) and the training's resume state (about 200 MB) when done.",
)
def demo(out, n_records, epochs, sampling_rate_hz, model, device, seed, keep_all) -> None:
    """Run the whole pipeline on a built-in synthetic cohort and write an HTML report (no data needed).

    Generates records, builds the cache, trains the study's ResNet-34, tunes thresholds on validation
    (and stores them in the bundle), scores the test split, explains, places Grad-CAM and guided Grad-CAM
    among 12 test records' delineated waves with their measurements (HR, PR, QRS, QT/QTc, axes; needs
    pip install 'ecglens[waves]', else the section says so), and writes OUT/report.html with the JSON
    behind it. About 6 minutes on 2 CPU cores with the defaults when nothing else runs; re-running
    reuses finished steps (a pruned folder's cache and trained model too).

    When done it removes the generated records (the seed regenerates them; the cache keeps what the
    later steps read) and the training's resume state, and keeps the cache, the trained bundle
    (run/best) and the reports: about 145 MB instead of about 500 (--keep-all keeps everything).

    \b
    Example:
      ecglens demo --out ecglens-out/demo --n-records 5000 --epochs 20 --device cuda
    """
    _show(
        _commands("studies").run_demo_study(
            out, n_records, sampling_rate_hz, epochs=epochs, model=model, device=device, seed=seed, keep_all=keep_all
        )
    )


@cli.group()
def explain() -> None:
    """Explanations: Grad-CAM, SHAP, exact lead Shapley values, population heatmaps, faithfulness.

    Every explanation runs on the exact input the model scores (the whole record under the default
    'crop' policy), so its figure's probabilities are those 'predict' reports.
    """


def _options(*options):
    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


_OUT = click.option(
    "--out", type=click.Path(file_okay=False), default="ecglens-out/explain", show_default=True, help="Output folder."
)
_per_record = _options(
    _BUNDLE_OR_STARTER,
    click.option(
        "--data",
        "caches",
        multiple=True,
        type=click.Path(exists=True, file_okay=False),
        help="Cache(s): records by id, the background set, and default records (test split).",
    ),
    click.option(
        "--records",
        default=None,
        help="Comma-separated record ids in --data, or record files (.hea/.mat) when no --data.",
    ),
    click.option(
        "--n",
        "n_records",
        type=COUNT,
        default=3,
        show_default=True,
        help="Test-split records to explain when --records is not given.",
    ),
    click.option("--class", "class_name", default=None, help="Class to explain (default: each predicted one)."),
    _OUT,
    _DEVICE,
)
_PERCENTILE = click.option(
    "--percentile",
    type=click.FloatRange(0, 100, max_open=True),
    default=95.0,
    show_default=True,
    help="Shade Grad-CAM's time steps at and above this percentile (the study's 95).",
)
_look = _options(
    click.option(
        "--style",
        type=click.Choice(["color", "bw"]),
        default="color",
        show_default=True,
        help="ECG paper in colour, or black and white for print.",
    ),
    click.option(
        "--format",
        "image_format",
        type=click.Choice(["png", "svg"]),
        default="png",
        show_default=True,
        help="Figure file format (PNG at 150 dpi, or SVG).",
    ),
)


def _figures(percentile: float = 95.0, layout: str | None = None, style: str = "color", image_format: str = "png"):
    from ecglens.report.figures import FigureOptions

    return FigureOptions(percentile, layout, style, image_format)


def _background(default: int):
    return click.option(
        "--background",
        type=click.IntRange(1, _population_limits.MAX_BACKGROUND),
        default=default,
        show_default=True,
        help="Training-split records used as the SHAP background.",
    )


def _layout(default: str):
    return click.option(
        "--layout", type=click.Choice(["3x4", "12x1"]), default=default, show_default=True, help="ECG paper layout."
    )


_over_cache = _options(
    _BUNDLE_OR_STARTER,
    click.option(
        "--data",
        "caches",
        multiple=True,
        required=True,
        type=click.Path(exists=True, file_okay=False),
        help="Cache(s) holding the records and the background set.",
    ),
    _OUT,
    _DEVICE,
)


@explain.command("gradcam")
@_per_record
@_options(_PERCENTILE, _layout("3x4"), _look)
def explain_gradcam(
    checkpoint, caches, records, n_records, class_name, out, device, percentile, layout, style, image_format
) -> None:
    """Grad-CAM at the end of the 4th residual stage, drawn over the 12 leads on ECG paper.

    Grad-CAM has one value per time step: it is drawn as bands across all leads, and it does not say
    which lead carries the evidence (see 'explain guided-gradcam' and 'explain shap' for that).

    \b
    Example:
      ecglens explain gradcam --checkpoint ecglens-out/demo/run/best \\
          --data ecglens-out/demo/cache100 --records S00012 --out figs
    """
    _show(
        _commands("explain").run_record_maps(
            "gradcam",
            checkpoint,
            caches,
            _ids(records),
            n_records,
            class_name,
            out,
            device,
            figures=_figures(percentile, layout, style, image_format),
        )
    )


@explain.command("guided-gradcam")
@_per_record
@_options(_layout("12x1"), _look)
def explain_guided_gradcam(
    checkpoint, caches, records, n_records, class_name, out, device, layout, style, image_format
) -> None:
    """Guided Grad-CAM (Grad-CAM x guided backpropagation): a lead-resolved map, per lead and 40 ms.

    \b
    Example:
      ecglens explain guided-gradcam --checkpoint ecglens-out/demo/run/best \\
          --data ecglens-out/demo/cache100 --records S00012
    """
    run = _commands("explain").run_record_maps
    _show(
        run(
            "guided-gradcam",
            checkpoint,
            caches,
            _ids(records),
            n_records,
            class_name,
            out,
            device,
            figures=_figures(layout=layout, style=style, image_format=image_format),
        )
    )


@explain.command("shap")
@_per_record
@_background(100)
@click.option(
    "--n-samples",
    type=COUNT,
    default=8,
    show_default=True,
    help="Expected-gradients samples, drawn in up to 8 batches: each record's line gives the SHAP sum with its "
    "Monte-Carlo error beside what it should equal (p minus the background's mean).",
)
@_options(_layout("12x1"), _look)
def explain_shap(
    checkpoint, caches, records, n_records, class_name, out, device, background, n_samples, layout, style, image_format
) -> None:
    """SHAP values (expected gradients, captum GradientShap) per lead and 40 ms, signed, for each class.

    \b
    Example:
      ecglens explain shap --checkpoint ecglens-out/demo/run/best --data ecglens-out/demo/cache100 --n 5 --out figs
    """
    _show(
        _commands("explain").run_record_maps(
            "shap",
            checkpoint,
            caches,
            _ids(records),
            n_records,
            class_name,
            out,
            device,
            background,
            n_samples,
            _figures(layout=layout, style=style, image_format=image_format),
        )
    )


@explain.command("waves")
@_per_record
@click.option(
    "--methods", default="gradcam,shap", show_default=True, help="Comma-separated: gradcam, guided-gradcam, shap."
)
@click.option(
    "--marks",
    type=click.Choice(["auto", "ludb"]),
    default="auto",
    show_default=True,
    help="Where the waves come from: auto (the U-Net delineator marks the scored input) or ludb (the "
    "cardiologists' marks beside a LUDB record's header; auto for records without them).",
)
@click.option(
    "--nulls",
    default="edge,amplitude,random-model",
    show_default=True,
    help="Comma-separated null maps each explanation is compared with, paired record by record: edge (|dx/dt| "
    "of the ECG), amplitude (|x - the lead's median|), random-model (the same method on the network with its "
    "weights re-drawn; doubles the time); 'none' for no comparison.",
)
@_background(100)
@_options(_layout("12x1"), _look)
def explain_waves(
    checkpoint,
    caches,
    records,
    n_records,
    class_name,
    out,
    device,
    methods,
    marks,
    nulls,
    background,
    layout,
    style,
    image_format,
) -> None:
    """Where each explanation's evidence falls among the heart's waves (P, PR, QRS, ST, T, rest), and whether it
    falls where a cardiologist looks for the class (plausibility, beside its chance level, and the paired
    difference from null maps that know no class: a map following the QRS complexes beats chance for any QRS
    class; pointing game: whether the map's maximum lies there).

    Needs the waves extra: pip install 'ecglens[waves]'. Writes waves.html, waves.json, waves.csv,
    plausibility.csv and one figure per record, class and method with the waves shaded faintly.

    \b
    Examples:
      ecglens explain waves --checkpoint starter --records ../shared/data/ludb/data/1.hea --marks ludb
      ecglens explain waves --checkpoint starter --marks ludb --methods gradcam,guided-gradcam,shap \\
          --records $(ls ../shared/data/ludb/data/*.hea | paste -sd, -)     # every LUDB record
    """
    _show(
        _commands("explain").run_waves(
            checkpoint,
            caches,
            _ids(records),
            n_records,
            class_name,
            out,
            device,
            tuple(_ids(methods)),
            marks,
            background,
            _figures(layout=layout, style=style, image_format=image_format),
            () if nulls == "none" else tuple(_ids(nulls)),
        )
    )


@explain.command("lead-shapley")
@_per_record
@click.option(
    "--baseline",
    type=click.Choice(["conditional", "mean", "zeros"]),
    default="conditional",
    show_default=True,
    help="What an absent lead becomes. conditional: an absent limb lead is rebuilt from two present "
    "ones (Einthoven/Goldberger), otherwise the background's mean record; mean: the background's "
    "mean record; zeros: a flat 0 mV lead (an impossible ECG when some limb leads stay).",
)
@click.option("--limb-as-one", is_flag=True, help="The six limb leads are one player (7 players), their joint value.")
@click.option(
    "--sampled",
    "n_permutations",
    type=COUNT,
    default=None,
    help="Estimate from this many player orders instead of all 4,096 coalitions.",
)
def explain_lead_shapley(
    checkpoint, caches, records, n_records, class_name, out, device, baseline, limb_as_one, n_permutations
) -> None:
    """Exact Shapley values of the 12 leads for every class (probability with absent leads at a baseline).

    Under the conditional baseline the limb leads are redundant players (two of them give all six), so each
    has a small value however much they matter together: --limb-as-one reads their joint value.

    \b
    Example:
      ecglens explain lead-shapley --checkpoint ecglens-out/demo/run/best \\
          --data ecglens-out/demo/cache100 --records S00012
    """
    _show(
        _commands("explain").run_lead_shapley(
            checkpoint, caches, _ids(records), n_records, class_name, out, device, baseline, n_permutations, limb_as_one
        )
    )


@explain.command("population")
@_over_cache
@click.option(
    "--n",
    "--n-records",
    "n_records",
    type=COUNT,
    default=200,
    show_default=True,
    help="Records of the split to use (--n-records under torchrun, whose parser takes --n for its own).",
)
@click.option(
    "--split",
    type=click.Choice(["test", "val", "train"]),
    default="test",
    show_default=True,
    help="Split whose records are explained.",
)
@_background(100)
@click.option(
    "--group-by",
    "grouping",
    type=click.Choice(["predicted", "true"]),
    default="predicted",
    show_default=True,
    help="Rows average the records the model decides as the class (Zhang et al.), or those labelled with it.",
)
@click.option(
    "--n-samples",
    type=click.IntRange(_population_limits.MIN_SAMPLES, _population_limits.MAX_SAMPLES),
    default=None,
    help="Expected-gradients samples per record, fixed (the error is reported). Default: chosen to reach "
    "--target-error.",
)
@click.option(
    "--target-error",
    type=_Finite(_population_limits.MIN_TARGET_ERROR, _population_limits.MAX_TARGET_ERROR),
    default=0.05,
    show_default=True,
    help="Mean Monte-Carlo standard error over the mean |cell| to reach, drawing more samples per record "
    "(8, then as needed, at most --max-samples).",
)
@click.option(
    "--max-samples",
    type=click.IntRange(_population_limits.MIN_SAMPLES, _population_limits.MAX_SAMPLES),
    default=64,
    show_default=True,
    help="The most samples per record (records x samples at most 10 million).",
)
@click.option(
    "--check-records",
    type=click.IntRange(0, _population_limits.MAX_CHECK_RECORDS),
    default=3,
    show_default=True,
    help="Records on which the lead ranking is checked against exact lead Shapley values (0: no check).",
)
def explain_population(
    checkpoint,
    caches,
    n_records,
    split,
    background,
    grouping,
    n_samples,
    target_error,
    max_samples,
    check_records,
    out,
    device,
) -> None:
    """Lead x class SHAP, signed, with each cell's Monte-Carlo error (the study's Figures 2-5).

    Each cell is the mean, over the records of the class's group, of the lead's signed SHAP value for the
    class (its attribution: the leads add up to f(x) - E f(background)), drawn as % of the row's total
    absolute value with its standard error. The absolute mass, which grows with a lead's amplitude and with
    sampling noise, is drawn below it, named so. The lead ranking is checked against exact lead Shapley
    values on a few records (limb leads as one player, conditional baseline).

    Resumable: finished shards of 16 records wait in OUT/.shards until the result is written, so a killed
    run started again continues. Under torchrun the records are spread over the processes and rank 0
    writes the result, identical to a single-process run.

    \b
    Example:
      ecglens explain population --checkpoint ecglens-out/demo/run/best --data ecglens-out/demo/cache100 --n 200
      torchrun --standalone --nproc-per-node 4 -m ecglens.cli explain population --checkpoint ... --n-records 5000
    """
    try:  # the options together, before any record is read or model loaded
        _population_limits.check_population_options(
            n_records, background, n_samples, target_error, max_samples, check_records
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    _show(
        _commands("explain").run_population(
            checkpoint,
            caches,
            n_records,
            split,
            background,
            n_samples,
            out,
            device,
            grouping=grouping,
            target_error=target_error,
            max_samples=max_samples,
            check_records=check_records,
        )
    )


@explain.command("faithfulness")
@_over_cache
@click.option(
    "--n",
    "--n-records",
    "n_records",
    type=COUNT,
    default=40,
    show_default=True,
    help="Test records to measure on (--n-records under torchrun).",
)
@click.option("--methods", default="gradcam,shap", show_default=True, help="Comma-separated methods to measure.")
@click.option("--steps", type=COUNT, default=10, show_default=True, help="Deletion/insertion steps.")
@_background(50)
def explain_faithfulness(checkpoint, caches, n_records, methods, steps, background, out, device) -> None:
    """Deletion/insertion areas against random order, localisation against evidence masks, randomisation check.

    Units are 60-ms segments of one lead (of all leads for Grad-CAM, one value per time step), ranked by each
    method's positive evidence for the class, ties at random with a seed; a deleted segment becomes the lead's
    median, its isoelectric level. Each method's gain over a random order is reported per class with a 95 %
    bootstrap interval over records, and the baseline's own effect is measured.

    Resumable and spread over torchrun processes as 'explain population'.

    \b
    Example:
      ecglens explain faithfulness --checkpoint ecglens-out/demo/run/best --data ecglens-out/demo/cache100 --n 40
    """
    run = _commands("explain").run_faithfulness
    _show(run(checkpoint, caches, n_records, _ids(methods), steps, background, out, device))


@cli.command("predict")
@_MODEL
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="ecglens-out/predict",
    show_default=True,
    help="Folder for predictions.jsonl, predictions.csv, issues.csv, summary.html and figures.",
)
@click.option(
    "--sampling-rate",
    "sampling_rate_hz",
    type=RATE,
    default=None,
    help="Rate of CSV/NumPy inputs (other formats carry their own).",
)
@click.option(
    "--lead-order",
    default=None,
    help="Comma-separated lead order of CSV (without header) and NumPy inputs; default I,II,...,V6.",
)
@click.option(
    "--engine",
    type=click.Choice(["torch", "onnx"]),
    default="torch",
    show_default=True,
    help="Score with PyTorch or with the bundle's ONNX export.",
)
@click.option("--batch-size", type=COUNT, default=32, show_default=True, help="Records per inference batch.")
@click.option(
    "--explain",
    "explain_method",
    type=click.Choice(["gradcam", "guided-gradcam", "shap"]),
    default=None,
    help="Also draw each record, as scored, with its explanation for the predicted classes.",
)
@click.option(
    "--background",
    "background_caches",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Cache for the SHAP background (default: the bundle's training caches).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Report the probabilities of records that are not interpretable (they still get no decisions).",
)
@click.option(
    "--measurements",
    is_flag=True,
    help="Also delineate each record's waves (the U-Net delineator; pip install 'ecglens[waves]') and report heart "
    "rate, RR variability, PR, QRS, QT, QTc (Bazett, Fridericia) and the P/QRS/T axes, with normal ranges; and "
    "evaluate every class's guideline criteria on them (met / not met / not assessable, with the values that "
    "decided it) and flag where they disagree with the decisions (e.g. SNR decided with a PR of 338 ms). The "
    "default --decision fused measures too; with --decision model and without this flag, no criteria.",
)
@click.option(
    "--decision",
    type=click.Choice(["fused", "model", "criteria"]),
    default=None,
    help="The rule that decides: fused (the model's logit and the guideline criteria's measured values combined "
    "per class by a logistic model fit on the bundle's validation split; classes the model cannot know, such as "
    "the starter's LBBB and STE, decided by their criteria, marked 'by criteria'), model (the model alone, at "
    "its thresholds) or criteria (the criteria alone). Default: the bundle's own (the starter's: fused, which "
    "beat the model on validation; see docs/criteria.md). fused and criteria turn --measurements on; the outputs "
    "say which rule made each decision.",
)
@click.option(
    "--include-identifiers",
    is_flag=True,
    help="Keep a clinical file's personal data (patient name, ids, birth and acquisition dates, free text, the "
    "file name) in the outputs. Without it, records are named by a keyed hash of their path and none of it is "
    "written anywhere.",
)
@click.option(
    "--pseudonym-map",
    is_flag=True,
    help="Also write OUT/pseudonyms.private.csv: each clinical file's pseudonym (its record id) and its path, "
    "readable by you alone (0600). It undoes the pseudonyms: keep it private, never share it with the outputs.",
)
@click.option(
    "--report",
    "report_kind",
    type=click.Choice(["pdf"]),
    default=None,
    help="Also write a one-page report per record into OUT/reports: the recording at its own rate on paper (3x4 "
    "and a lead II rhythm strip, 25 mm/s, 10 mm/mV, or 5 mm/mV when tall voltages would not fit; a stated "
    "zero-phase 0.5-150 Hz display filter), decisions with probabilities and thresholds, guideline criteria and "
    "disagreements beside them and measurements (with --measurements), "
    "the explanation (with --explain) and the file's own statement.",
)
@click.option(
    "--fhir",
    is_flag=True,
    help="Also write each record's FHIR R4 transaction Bundle into OUT/fhir (pip install 'ecglens[hospital]'): "
    "a DiagnosticReport (decisions as SNOMED CT conclusion codes, criteria, flags and warnings as text, the "
    "one-page PDF as presentedForm), LOINC/UCUM Observations for rate, PR, QRS, QT, QTc (Bazett, Fridericia) and "
    "the P/QRS/T axes, the model as a Device, and a Patient known by its pseudonym unless --include-identifiers. "
    "Implies --report pdf.",
)
@click.option(
    "--dicom",
    is_flag=True,
    help="Also write each record's one-page report as a DICOM Encapsulated PDF into OUT/dicom, in the source "
    "DICOM ECG's study. Without --include-identifiers it carries no patient identity, no date and pseudonymous "
    "UIDs, so a PACS cannot file it with its patient. Implies --report pdf.",
)
@click.option(
    "--archive",
    is_flag=True,
    help="Score an archive once: OUT/archive keeps a manifest of every file scored (the sha256 of its bytes) and "
    "the rows, appended a batch at a time. The same command again (after a kill, or tonight on a grown archive) "
    "scores only what no manifest holds; when OUT already holds an archive this is on without the flag. Ends "
    "with the usual predictions.jsonl, predictions.csv, issues.csv and summary, each file once, read back from "
    "disk. --report pdf, --fhir and --dicom write each record's files with its batch, exactly once after a kill. "
    "Spread over processes under torchrun. No --explain, no --pseudonym-map. See docs/full-scale.md.",
)
@click.option(
    "--shard",
    default=None,
    metavar="K/N",
    help="Score shard K of N of the archive (a scheduler's array job; implies --archive): blocks of --batch-size "
    "consecutive files, block b to shard b mod N, disjoint. Nothing is merged: run 'ecglens predict-merge OUT' "
    "once every shard is done.",
)
@click.option(
    "--read-workers",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="With --archive: processes that read and hash files ahead of scoring (0: the scoring process reads).",
)
@_look
@_DEVICE
def predict(
    checkpoint,
    paths,
    out,
    sampling_rate_hz,
    lead_order,
    engine,
    batch_size,
    explain_method,
    background_caches,
    force,
    measurements,
    decision,
    include_identifiers,
    pseudonym_map,
    report_kind,
    fhir,
    dicom,
    archive,
    shard,
    read_workers,
    style,
    image_format,
    device,
) -> None:
    """Diagnose ECG files: probabilities, decisions under the bundle's thresholds, quality warnings.

    Reads WFDB (any rate; a .dat through its .hea), Challenge .hea/.mat, CPSC .mat, EDF, CSV/NumPy (with
    --sampling-rate), and clinical files, told from their content (pip install 'ecglens[clinical]'): DICOM
    12-lead waveforms (.dcm), HL7 aECG, Philips Sierra XML 1.03/1.04, GE MUSE XML (.xml) and SCP-ECG (.scp).
    A clinical file's personal data stays out of every output unless --include-identifiers; its own
    interpretation is shown as "the file's statement", apart from the decisions.
    Directories are searched recursively; unreadable files are listed and never stop the batch.
    Exits 1 when no record could be read, leaving --out as it was (results replace earlier ones only when at
    least one record was predicted). A record flat in half its leads, of the wrong amplitude scale, shorter
    than 2 s or without repeatable heartbeats (noise, a hum, a wandering baseline) is 'not interpretable': no
    measurements, no decisions, and probabilities only with --force.
    Every batch also gets OUT/summary.html and OUT/summary.csv: a sortable row per record (pseudonyms only) with
    its decisions, flags, measurements outside range, quality and a link to its report, and the counts on top.

    \b
    Example:
      ecglens predict --checkpoint ecglens-out/demo/run/best ../shared/data/challenge/cpsc2018 --out predictions
      ecglens predict ../shared/data/clinical --measurements --report pdf --out clinical
      ecglens predict ../shared/data/clinical --fhir --dicom --out hospital
      ecglens predict /archive/ecg --archive --decision model --out scored
    """
    commands = _commands("predict")
    asked = archive or shard is not None or read_workers
    result = commands.run_predict(
        checkpoint,
        paths,
        out,
        sampling_rate_hz,
        _ids(lead_order) or None,
        engine,
        batch_size,
        explain_method,
        background_caches,
        device,
        figures=_figures(style=style, image_format=image_format) if explain_method else None,
        force=force,
        measurements=measurements,
        include_identifiers=include_identifiers,
        report=report_kind,
        pseudonym_map=pseudonym_map,
        decision=decision,
        exports=tuple(kind for kind, wanted in (("fhir", fhir), ("dicom", dicom)) if wanted),
        archive=commands.ArchiveOptions(shard, read_workers) if asked else None,
    )
    _show(result)
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


@cli.command("predict-merge")
@click.argument("out", type=click.Path(file_okay=False))
def predict_merge(out) -> None:
    """Join the shards of an archive in OUT ('predict --shard K/N') into OUT/predictions.jsonl, predictions.csv,
    issues.csv and the batch summary (summary.html, summary.csv, linking each record's page): each file once,
    ordered by source path, the same files as one process would write. Safe to run while shards still score (it
    takes the rows committed so far; a page is linked once its batch is committed, and present once its shard
    has moved it into OUT/reports, at once or on its next run after a kill).

    \b
    Example:
      ecglens predict /archive/ecg --shard 1/2 --out scored & ecglens predict /archive/ecg --shard 2/2 --out scored
      ecglens predict-merge scored
    """
    merged = _commands("archive").merge(out)
    click.echo(f"the archive holds {merged.line()}")


@cli.group()
def export() -> None:
    """Export a bundle to other runtimes."""


@export.command("onnx")
@_BUNDLE_OR_STARTER
@click.option("--opset", type=click.IntRange(7, 30), default=18, show_default=True, help="ONNX opset version.")
def export_onnx_command(checkpoint, opset) -> None:
    """Write CHECKPOINT/model.onnx (input 'ecg': batch x leads x samples, batch and length dynamic).

    The starter model's export goes to the user's cache folder (~/.cache/ecglens/starter-*/), never into the
    installed package; `predict --engine onnx` finds it there.

    \b
    Example:
      ecglens export onnx --checkpoint ecglens-out/demo/run/best
      ecglens predict --engine onnx --checkpoint ecglens-out/demo/run/best record.hea
    """
    click.echo(_commands("predict").run_export_onnx(checkpoint, opset).line())


@cli.command("reproduce")
@click.option(
    "--cpsc",
    "cpsc",
    multiple=True,
    required=True,
    help="CPSC 2018 source(s): original (cpsc2018:ROOT) or Challenge (challenge:ROOT); repeatable.",
)
@click.option(
    "--ptbxl",
    "ptbxl",
    multiple=True,
    required=True,
    help="PTB-XL source(s): native (ptbxl:ROOT) or Challenge (challenge:ROOT); repeatable.",
)
@click.option("--extra", multiple=True, help="More datasets as NAME=FORMAT:ROOT (train in Ours_2, test everywhere).")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="ecglens-out/reproduce",
    show_default=True,
    help="Output folder (caches, runs, results, figures, report.html).",
)
@click.option("--quick", is_flag=True, help="The 2-core CPU profile: 100 Hz, 6 epochs, lr 1e-3, fewer SHAP records.")
@click.option("--cross", is_flag=True, help="Also train on each dataset alone and test on every other.")
@click.option("--sampling-rate", "sampling_rate_hz", type=RATE, default=None, help="Default 500 (100 with --quick).")
@click.option("--epochs", type=COUNT, default=None, help="Default 30 (6 with --quick).")
@click.option("--batch-size", type=COUNT, default=None, help="Default 32.")
@click.option("--lr", type=_Finite(0.0, 10.0, min_open=True), default=None, help="Default 1e-4 (1e-3 with --quick).")
@click.option("--model", default=None, help="Registered model name (default resnet34).")
@click.option(
    "--label-profile",
    default=None,
    help="Default 'broad' (clinically sound closest classes); 'seed' is a reconstruction of the study's "
    "mapping, clinically wrong rows included (the study did not publish its table).",
)
@_IN_SCOPE_ONLY
@click.option("--device", default=None, help="auto (default), cpu, cuda or cuda:N.")
def reproduce(
    cpsc,
    ptbxl,
    extra,
    out,
    quick,
    cross,
    sampling_rate_hz,
    epochs,
    batch_size,
    lr,
    model,
    label_profile,
    in_scope_only,
    device,
) -> None:
    """Run the study's Original / Ours_1 / Ours_2 protocols: Tables 2 and 3, Figures 2-8, one HTML report.

    The report shows the study's published Tables 2 and 3 (shipped with ecglens) under our values, and
    checks Figures 6-8 with numbers: Ours_2's Grad-CAM and guided Grad-CAM placed among the delineated
    waves of test records (plausibility per class beside chance), with each record's measurements.

    Resumable: finished caches, runs and evaluations are reused; an interrupted run started again
    finishes the rest. Each protocol's bundle keeps the thresholds its protocol evaluates with.

    \b
    Example:
      ecglens reproduce --quick --cpsc cpsc2018:../shared/data/cpsc2018 \\
          --cpsc cpsc=challenge:../shared/data/challenge/cpsc2018 --ptbxl ptbxl:../shared/data/ptb-xl
    """
    _show(
        _commands("studies").run_reproduction(
            _sources(cpsc, "cpsc"),
            _sources(ptbxl, "ptbxl"),
            out,
            quick=quick,
            extra=_sources(extra),
            cross=cross,
            in_scope_only=in_scope_only,
            sampling_rate_hz=sampling_rate_hz,
            label_profile=label_profile,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            model=model,
            device=device,
        )
    )


@cli.command("models")
@click.argument("bundles", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--card", default=None, help="Print a model card instead: 'starter' or a bundle with a MODEL_CARD.md.")
def models(bundles, card) -> None:
    """List the models: the starter model shipped with ecglens and the BUNDLES named, with their classes and data.

    \b
    Example:
      ecglens models ecglens-out/demo/run/best
      ecglens models --card starter
    """
    _show(_commands("models").run_models(bundles, card))


@cli.command("serve")
@_MODEL
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind; any other than loopback requires a token."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--token",
    envvar="ECGLENS_TOKEN",
    default=None,
    show_envvar=True,
    help="Require 'Authorization: Bearer TOKEN' on the API (the page reads ?token=TOKEN).",
)
@click.option(
    "--background",
    "background_caches",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Cache whose training records are the SHAP background (default: the bundle's training caches).",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(0, 1024, min_open=True),
    default=20.0,
    show_default=True,
    help="Largest upload accepted (compressed bytes as sent).",
)
@click.option(
    "--max-record-minutes",
    type=click.FloatRange(0, 60, min_open=True),
    default=10.0,
    show_default=True,
    help="Longest record accepted; a record may also decode to at most 12 leads x this long at 1 kHz "
    "(413 beyond, checked before decoding).",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    help="Requests in progress at once; more get 503 with Retry-After.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A name clients reach the server by (Host header, a browser's Origin), beside 127.0.0.1, localhost, "
    "::1 and --host; other names get 403 (against DNS rebinding and other sites' pages). '*': any.",
)
@click.option(
    "--examples",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    show_default="$ECGLENS_DATA/ptb-xl when present, else the examples 'ecglens data download examples' fetched",
    help="A PTB-XL folder, or a folder 'ecglens data download examples --out' filled: one real record per class "
    "becomes a 'try an example' button, its known labels shown beside the decisions (PTB-XL is CC BY 4.0; read "
    "in place, never copied).",
)
@click.option(
    "--fetch-examples",
    is_flag=True,
    help="First fetch the example records (as 'ecglens data download examples': 172 kB from PhysioNet, "
    "verified; nothing when already there), then serve them.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(0, 3600, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a client has to send its request body; slower ones get 408 and free their slot.",
)
@click.option(
    "--measurements",
    is_flag=True,
    help="Also delineate each record and show its heart rate, intervals, QTc and axes with their normal ranges, "
    "every class's guideline criteria and where they disagree with the decisions, "
    "and where each explanation's evidence falls among the scored input's waves, with its plausibility for the "
    "class (the U-Net delineator; pip install 'ecglens[waves]'; about 50 ms per record).",
)
@_DEVICE
def serve(
    checkpoint,
    host,
    port,
    token,
    background_caches,
    max_upload_mb,
    max_record_minutes,
    max_in_flight,
    device,
    allowed_hosts,
    body_timeout,
    examples,
    fetch_examples,
    measurements,
) -> None:
    """Web viewer and HTTP API: drop an ECG file, see the diagnosis, the leads on ECG paper and the explanations.

    API: POST /api/predict, GET /api/model, GET /api/health; documented at /docs.

    Examples: real PTB-XL records (CC BY 4.0), one per class, as buttons; ecglens ships none. Fetch them once with
    'ecglens data download examples' (or --fetch-examples); until then the server and the page say so.

    Protections: loopback only unless --host with a token; pages of other sites (Origin) and foreign Host names
    get 403; uploads are capped before reading (--max-upload-mb), decoded size from what the files declare
    before decoding (12 leads x --max-record-minutes at 1 kHz, 413), slow bodies time out (--body-timeout, 408);
    every error is JSON {"error": {"kind", "message"}}.

    \b
    Example:
      ecglens serve                                 # the starter model; then open http://127.0.0.1:8000
      ecglens serve --fetch-examples                # the same, with the example records fetched first
      ecglens serve --checkpoint ecglens-out/demo/run/best
    """
    if fetch_examples:
        if examples is not None:
            raise click.UsageError("--fetch-examples fetches into the examples folder; --examples names another")
        fetched = _commands("data").run_download("examples")
        _show(fetched)
        if fetched.exit_code:
            raise click.exceptions.Exit(fetched.exit_code)
    _commands("serve").run_serve(
        checkpoint,
        host,
        port,
        token,
        background_caches=background_caches,
        max_upload_mb=max_upload_mb,
        max_record_minutes=max_record_minutes,
        max_in_flight=max_in_flight,
        device=device,
        allowed_hosts=allowed_hosts,
        body_timeout_s=body_timeout,
        examples=examples,
        measurements=measurements,
    )


_DISK_ERRORS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EROFS,
    errno.EPERM,
    errno.EFBIG,
    errno.ENOENT,
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
}
"""Operating-system errors that are the disk's or the user's (full, read-only, no permission, wrong path)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (for tests and embedding)."""
    from ecglens.util.progress import printable

    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="ecglens", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        # click declares the message final; it is made printable here (a file name may hold control characters)
        error.message = printable(error.message)  # type: ignore[misc]
        error.show()
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except MemoryError:
        # what was asked for does not fit in this machine's memory: one line, never a traceback (the options
        # that set the work are named in the command's --help)
        click.echo("error: out of memory: ask for less work (fewer records, samples or a smaller batch)", err=True)
        return 1
    except OSError as error:
        if error.errno is not None and error.errno not in _DISK_ERRORS:
            raise  # a fault of ecglens, not of the disk or the input: keep its traceback
        # ecglens's own FileNotFoundError/FileExistsError messages carry no errno
        where = f" ({error.filename})" if error.filename else ""
        click.echo(printable(f"error: {error.strerror or error}{where}"), err=True)
        return 1
    except Exception as error:
        from safetensors import SafetensorError

        from ecglens.data.cache import CacheError

        if isinstance(error, SafetensorError):  # writing weights or resume state failed (a full disk)
            click.echo(f"error: could not write a weights file ({error})", err=True)
            return 1
        if not isinstance(error, ValueError | FileNotFoundError | FileExistsError | CacheError):
            raise  # a fault of ecglens, not of the input: keep its traceback
        # A user's mistake or bad input, named by the library (BundleError, RecordError and the option checks
        # are ValueErrors): one line, never a traceback.
        click.echo(printable(f"error: {error}"), err=True)
        return 1
    return code if isinstance(code, int) else 0  # click returns an Exit's code instead of raising it here


if __name__ == "__main__":
    sys.exit(main())
