"""Dataset summary: the study's Table 1 per dataset, record lengths, and what was left out."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecglens.classes import CLASS_NAMES
from ecglens.data.cache import LABEL_COLUMNS, metadata_row
from ecglens.io.record import ReadIssue
from ecglens.io.sources import Source, read_many, scan_sources
from ecglens.labels.mapping import PROFILES, load_label_map
from ecglens.study import CITATION, table1_percent
from ecglens.util.atomic import atomic_open, write_text


@dataclass(frozen=True)
class DatasetSummary:
    """Numbers for one dataset (render with `to_markdown`)."""

    dataset: str
    label_profile: str
    n_records: int
    n_with_target: int
    table: pd.DataFrame
    length_seconds: dict[str, float]
    exclusions: dict[str, int]
    issues: dict[str, int]
    issue_examples: dict[str, str]
    vocabulary: str = ""

    @property
    def comparable_with_study(self) -> bool:
        """Whether the study's Table 1 describes this dataset: PTB-XL read natively (SCP statements) under a
        built-in profile of the nine classes, whose gap to the study's shares it shows. Other datasets are never
        compared with it."""
        return self.vocabulary == "scp" and self.label_profile in PROFILES

    def to_markdown(self) -> str:
        """A Markdown section with Table 1, lengths and what was left out."""
        compare_with_study = self.comparable_with_study
        lines = [f"## {self.dataset} ({self.label_profile} mapping)", ""]
        lines.append(
            f"{self.n_records} records read, {self.n_with_target} with at least one target class "
            "(the denominator of the class percentages; male % is of those with known sex)."
        )
        lines.append("")
        table = self.table.copy()
        header = ["class", "count (%)", "male (%)", "age mean (sd)"]
        if compare_with_study:
            header += ["study Table 1 (%)", "gap (points)"]
            study = table1_percent()
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for name, row in table.iterrows():
            cells = [
                str(name),
                f"{int(row['count'])} ({row['percent']:.2f})",
                f"{int(row['male'])} ({row['male_percent']:.2f})" if np.isfinite(row["male_percent"]) else "0 (-)",
                _mean_sd(row["age_mean"], row["age_sd"]),
            ]
            if compare_with_study:
                reference = study.get(str(name), float("nan"))
                cells += [f"{reference:.2f}", f"{row['percent'] - reference:+.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
        if compare_with_study:
            what = (
                "a reconstruction of the study's mapping (the study did not publish its table)"
                if self.label_profile == "seed"
                else f"ecglens's {self.label_profile} profile, not the study's mapping"
            )
            lines += [
                "",
                f"Study column: {CITATION}, Table 1 (all 21,541 mapped PTB-XL records; a subset's "
                f"percentages differ with how it was drawn). These shares come from {what}; the gap is ours "
                "minus the study's.",
            ]
        lengths = self.length_seconds
        lines += [
            "",
            f"Record length (s): min {lengths['min']:.1f}, median {lengths['median']:.1f}, "
            f"mean {lengths['mean']:.1f}, max {lengths['max']:.1f}.",
            "",
        ]
        if self.exclusions:
            lines.append(
                "Records with no target class (out of scope: negatives for every class by default, left out "
                "with --in-scope-only; unlabelled: left out):"
            )
            lines += [f"- {reason}: {count}" for reason, count in sorted(self.exclusions.items())]
            lines.append("")
        if self.issues:
            lines.append("Records not read:")
            lines += [
                f"- {reason}: {count} (e.g. {self.issue_examples[reason]})"
                for reason, count in sorted(self.issues.items())
            ]
            lines.append("")
        return "\n".join(lines)


def _mean_sd(mean: float, sd: float) -> str:
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.1f} ({sd:.1f})" if np.isfinite(sd) else f"{mean:.1f} (-)"


def summarize_index(
    index: pd.DataFrame,
    issues: Sequence[ReadIssue] = (),
    label_profile: str = "strict",
    sampling_rate_hz: float | None = None,
) -> list[DatasetSummary]:
    """Summaries per dataset from index rows (a cache index or `metadata_row` rows).

    Args:
        index: one row per record with the `LABEL_COLUMNS`, ``sex``, ``age``, ``exclusion``,
            ``n_samples`` and ``source_sampling_rate_hz`` (or a fixed ``sampling_rate_hz``).
        issues: records that could not be read (attributed to a dataset by path when possible).
        label_profile: name shown in the headings.
        sampling_rate_hz: rate of ``n_samples`` when all rows share one (a cache).
    """
    summaries = []
    for dataset, rows in index.groupby("dataset", sort=False):  # in the order the sources were given
        labels = rows[list(LABEL_COLUMNS)].to_numpy(bool)
        with_target = labels.any(axis=1)
        male = (rows["sex"] == "male").fillna(False).to_numpy(bool)  # cache indexes hold <NA> for unknown sex
        known_sex = rows["sex"].notna().to_numpy(bool)
        ages = pd.to_numeric(rows["age"], errors="coerce").to_numpy(float)
        table_rows = []
        for k, name in enumerate(CLASS_NAMES):
            has = labels[:, k]
            count = int(has.sum())
            class_ages = ages[has & np.isfinite(ages)]
            table_rows.append(
                {
                    "class": name,
                    "count": count,
                    "percent": 100.0 * count / max(int(with_target.sum()), 1),
                    "male": int((has & male).sum()),
                    "male_percent": 100.0 * (has & male).sum() / (has & known_sex).sum()
                    if (has & known_sex).any()
                    else float("nan"),
                    "age_mean": float(class_ages.mean()) if class_ages.size else float("nan"),
                    "age_sd": float(class_ages.std(ddof=1)) if class_ages.size > 1 else float("nan"),
                }
            )
        rate = sampling_rate_hz or rows["source_sampling_rate_hz"].to_numpy(float)
        seconds = rows["n_samples"].to_numpy(float) / rate
        # "only dropped statements (DIG)" and "(RVH)" are one reason here; the index keeps the codes.
        exclusions = Counter(str(e).split(" (")[0] for e in rows["exclusion"].dropna())
        own = [issue for issue in issues if issue.dataset == dataset]
        vocabularies = set(rows["label_vocabulary"].dropna()) if "label_vocabulary" in rows else set()
        summaries.append(
            _make(
                str(dataset),
                label_profile,
                rows,
                with_target,
                table_rows,
                seconds,
                exclusions,
                own,
                vocabularies.pop() if len(vocabularies) == 1 else "",
            )
        )
    return summaries


def _make(
    dataset, label_profile, rows, with_target, table_rows, seconds, exclusions, issues, vocabulary
) -> DatasetSummary:
    issue_counts = Counter(issue.reason for issue in issues)
    examples: dict[str, str] = {}
    for issue in issues:
        examples.setdefault(issue.reason, issue.path)
    return DatasetSummary(
        dataset=dataset,
        label_profile=label_profile,
        n_records=len(rows),
        n_with_target=int(with_target.sum()),
        table=pd.DataFrame(table_rows).set_index("class"),
        length_seconds={
            "min": float(seconds.min()),
            "median": float(np.median(seconds)),
            "mean": float(seconds.mean()),
            "max": float(seconds.max()),
        },
        exclusions=dict(exclusions),
        issues=dict(issue_counts),
        issue_examples=examples,
        vocabulary=vocabulary,
    )


def summarize_sources(
    sources: Sequence[Source],
    label_profile: str = "strict",
    workers: int = 1,
    strict: bool = False,
    progress: bool = True,
) -> tuple[list[DatasetSummary], list[ReadIssue]]:
    """Read every record of ``sources`` (in parallel) and summarise them per dataset."""
    from ecglens.util.progress import bar

    label_map = load_label_map(label_profile)
    scan = scan_sources(sources)
    issues = list(scan.issues)
    rows = [
        metadata_row(record, label_map)
        for record in bar(
            read_many(scan.refs, workers=workers, strict=strict, issues=issues),
            total=len(scan.refs),
            desc="summary",
            unit="rec",
            enabled=progress,
        )
    ]
    if not rows:
        return [], issues
    return summarize_index(pd.DataFrame([row.to_dict() for row in rows]), issues, label_map.name), issues


def write_summaries(summaries: Sequence[DatasetSummary], out: str | os.PathLike) -> list[Path]:
    """Write ``summary.md`` and ``table1.csv`` into ``out``; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    markdown = "# Dataset summary\n\n" + "\n".join(s.to_markdown() for s in summaries)
    write_text(out / "summary.md", markdown)
    frames = [s.table.reset_index().assign(dataset=s.dataset, label_profile=s.label_profile) for s in summaries]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    with atomic_open(out / "table1.csv", newline="") as handle:
        table.to_csv(handle, index=False)
    return [out / "summary.md", out / "table1.csv"]
