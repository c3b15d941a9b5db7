"""``data summary``, ``data label-spaces``, ``data download`` and ``data prepare``: no torch, no matplotlib."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecglens.commands.common import Written, issue_lines
from ecglens.labels.challenge import challenge_scoring
from ecglens.labels.mapping import LabelMap, builtin_spaces, load_label_space

if TYPE_CHECKING:  # the readers, cache and downloader are imported by the command that uses them
    from ecglens.data.cache import BuildReport
    from ecglens.data.summary import DatasetSummary
    from ecglens.io.download import DownloadResult
    from ecglens.io.record import ReadIssue
    from ecglens.io.sources import Source


@dataclass(frozen=True)
class SummaryRun:
    """Dataset summaries (the study's Table 1 per dataset) and what was left out."""

    summaries: tuple[DatasetSummary, ...]
    issues: tuple[ReadIssue, ...]
    written: Written

    def lines(self) -> list[str]:
        """What the CLI prints."""
        return [s.to_markdown() for s in self.summaries] + [self.written.line()]

    def problems(self) -> list[str]:
        """What the CLI prints on standard error."""
        return issue_lines(self.issues)


def run_summary(
    sources: Sequence[Source],
    label_profile: str = "strict",
    out: str | os.PathLike = "summary",
    workers: int | None = None,
    strict: bool = False,
) -> SummaryRun:
    """``data summary``: read every record once and summarise each dataset."""
    from ecglens.data.summary import summarize_sources, write_summaries

    summaries, issues = summarize_sources(sources, label_profile, workers or os.cpu_count() or 1, strict)
    return SummaryRun(tuple(summaries), tuple(issues), Written(tuple(write_summaries(summaries, out))))


@dataclass(frozen=True)
class PrepareRun:
    """A cache build."""

    out: str
    report: BuildReport

    def lines(self) -> list[str]:
        """What the CLI prints."""
        report = self.report
        if report.already_complete:
            return [f"{self.out}: already complete ({report.n_records} records); nothing to do"]
        return [
            f"{self.out}: {report.n_records} records cached, {report.n_issues} left out "
            f"({report.n_shards_built} shard(s) built, {report.n_shards_reused} reused)"
        ]

    def problems(self) -> list[str]:
        """What the CLI prints on standard error."""
        return issue_lines(self.report.issues)


def run_prepare(
    sources: Sequence[Source],
    out: str | os.PathLike,
    sampling_rate_hz: float,
    label_profile: str = "strict",
    workers: int | None = None,
    strict: bool = False,
    overwrite: bool = False,
    shard_size: int = 256,
    min_likelihood: float = 0.0,
) -> PrepareRun:
    """``data prepare``: build (or finish) a memory-mapped cache."""
    from ecglens.data.cache import build_cache

    report = build_cache(
        sources,
        out,
        sampling_rate_hz,
        label_profile,
        min_likelihood=min_likelihood,
        workers=workers,
        shard_size=shard_size,
        strict=strict,
        overwrite=overwrite,
    )
    return PrepareRun(str(out), report)


@dataclass(frozen=True)
class DownloadRun:
    """A dataset download."""

    result: DownloadResult

    def lines(self) -> list[str]:
        """What the CLI prints."""
        r = self.result
        done = [
            f"{r.out}: {r.n_files} files from {r.base_url}: {r.downloaded} downloaded "
            f"({r.bytes_downloaded / 1e6:.1f} MB in {r.seconds:.1f} s), {r.already_verified} already verified, "
            f"{len(r.failures)} failed"
        ]
        if r.source_spec is not None:
            return [*done, f"read it as the source {r.source_spec}"]
        from ecglens.io.example_set import CITATION, EXAMPLES_ENV, LICENCE, examples_folder

        where = "" if Path(r.out) == examples_folder() else f" --examples {r.out} (or {EXAMPLES_ENV}={r.out})"
        return [*done, f"'ecglens serve{where}' shows them as examples", f"PTB-XL is {LICENCE}; cite: {CITATION}"]

    def problems(self) -> list[str]:
        """What the CLI prints on standard error: every file that failed, with its URL and reason."""
        failures = self.result.failures
        lines = [f"error: {f.reason}" for f in failures[:20]]
        if len(failures) > 20:
            lines.append(f"... and {len(failures) - 20} more; run the same command again to retry them")
        return lines

    @property
    def exit_code(self) -> int:
        """1 when any file failed (a re-run fetches only those)."""
        return 1 if self.result.failures else 0


def run_download(
    dataset: str,
    out: str | os.PathLike | None = None,
    base_url: str | None = None,
    rate: str = "both",
    version: str | None = None,
    workers: int = 4,
    retries: int = 4,
    timeout: float = 30.0,
) -> DownloadRun:
    """``data download``: fetch and verify a PhysioNet dataset (from ``base_url``, PhysioNet by default).

    ``out`` may be left out for the viewer's examples only: they go to `ecglens.io.example_set.examples_folder`.

    Raises:
        ValueError: an unknown dataset, or no ``out`` for a dataset other than the examples.
    """
    from ecglens.io.download import PHYSIONET, download, resolve_dataset
    from ecglens.io.example_set import examples_folder

    remote = resolve_dataset(dataset)
    if out is None:
        if remote.name != "examples":
            raise ValueError(f"data download {dataset}: give --out, the folder for the dataset")
        out = examples_folder()
    return DownloadRun(download(remote, out, base_url or PHYSIONET, rate, version, workers, retries, timeout))


@dataclass(frozen=True)
class LabelSpacesRun:
    """The built-in label spaces, or one space's classes with their SNOMED-CT codes."""

    spaces: tuple[LabelMap, ...]
    descriptions: tuple[str, ...]
    scoring_note: str | None = None

    def lines(self) -> list[str]:
        """What the CLI prints: one line per space, or the classes of the one asked for."""
        if self.scoring_note is None:
            return [
                f"{m.label:<22} {len(m.classes):>3} classes  {d}"
                for m, d in zip(self.spaces, self.descriptions, strict=True)
            ]
        (space,) = self.spaces
        return [
            f"{space.label}: {len(space.classes)} classes; vocabularies {', '.join(space.vocabularies)}; "
            f"source {space.source}",
            *(f"  {name:<12} {code or '-'}" for name, code in zip(space.classes, space.snomed, strict=True)),
            f"Challenge 2021 score: {self.scoring_note}",
        ]


def run_label_spaces(space: str | None = None) -> LabelSpacesRun:
    """``data label-spaces``: every built-in label space, or the classes of ``space``."""
    if space is None:
        infos = builtin_spaces()
        return LabelSpacesRun(
            tuple(load_label_space(f"{i.space}:{i.profile}") for i in infos),
            tuple(f"{i.description} [{i.source}]" for i in infos),
        )
    label_map = load_label_space(space)
    return LabelSpacesRun((label_map,), ("",), challenge_scoring(label_map).note)
