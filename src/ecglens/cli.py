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
