"""The reproduce report: its typed results (what ``results.json`` holds) and their rendering: the study's
Tables 2 and 3, the cross-dataset matrix and Figures 2-8 in one page."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from ecglens.data import SplitSpec
from ecglens.explain.waves import WavesSummary
from ecglens.metrics import FMAX_NOTE, EvaluationResult, OutOfScopeTable
from ecglens.report.explanations import POPULATION_NOTE, ExampleFigure, population_summary
from ecglens.report.html import evaluation_table, figure_from_png, number, out_of_scope_html, page, table_to_html
from ecglens.report.waves import waves_section
from ecglens.study import CITATION, study_cells


@dataclass(frozen=True)
class Evaluation:
    """One protocol on one test set: the thresholds used and the results (combined first, then per dataset)."""

    protocol: str
    test_set: str
    thresholds: tuple[float, ...]
    results: tuple[EvaluationResult, ...]
    threshold_origin: str = "not recorded"
    out_of_scope: OutOfScopeTable | None = None

    @property
    def combined(self) -> EvaluationResult:
        """The result over the whole test set."""
        return self.results[0]

    def to_dict(self) -> dict:
        """Plain data for JSON (the file a resumed run reads back)."""
        return {
            "protocol": self.protocol,
            "test_set": self.test_set,
            "thresholds": list(self.thresholds),
            "threshold_origin": self.threshold_origin,
            "results": [r.to_dict() for r in self.results],
            "out_of_scope": None if self.out_of_scope is None else self.out_of_scope.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Evaluation:
        """Inverse of `to_dict`."""
        outside = data.get("out_of_scope")
        return cls(
            data["protocol"],
            data["test_set"],
            tuple(data["thresholds"]),
            tuple(EvaluationResult.from_dict(r) for r in data["results"]),
            data.get("threshold_origin", "not recorded"),
            None if outside is None else OutOfScopeTable.from_dict(outside),
        )


@dataclass(frozen=True)
class ReproduceResults:
    """Every evaluation of a reproduction, looked up by protocol and test set."""

    evaluations: tuple[Evaluation, ...]

    def get(self, protocol: str, test_set: str) -> Evaluation:
        """The evaluation of ``protocol`` on ``test_set``."""
        for evaluation in self.evaluations:
            if (evaluation.protocol, evaluation.test_set) == (protocol, test_set):
                return evaluation
        raise KeyError(f"{protocol} on {test_set}")

    def macro_auc(self, protocol: str, test_set: str) -> float | None:
        """Macro AUC of a protocol on a test set."""
        return self.get(protocol, test_set).combined.macro_auc


@dataclass(frozen=True)
class PopulationFigure:
    """A population SHAP heatmap of one protocol's model on one dataset's test split."""

    model: str
    dataset: str
    figure: str
    result: dict


@dataclass(frozen=True)
class Figures:
    """The report's figures: population heatmaps (Figures 2-5) and Grad-CAM examples (Figures 6-8)."""

    population: tuple[PopulationFigure, ...] = ()
    gradcam: tuple[ExampleFigure, ...] = ()


@dataclass(frozen=True)
class ReproduceSummary:
    """Everything the report shows, as written to ``results.json``."""

    config: dict
    folds: SplitSpec
    results: ReproduceResults
    bundles: dict[str, str]
    timings_s: dict[str, float]
    figures: Figures
    data: dict
    versions: dict[str, str]
    cross: pd.DataFrame | None = None
    waves: WavesSummary | None = None

    def to_dict(self) -> dict:
        """Plain data for ``results.json``."""
        return {
            "config": self.config,
            "folds": {"validation": self.folds.val_fold, "test": self.folds.test_fold},
            "results": {f"{e.protocol}/{e.test_set}": e.to_dict() for e in self.results.evaluations},
            "bundles": self.bundles,
            "timings_s": self.timings_s,
            "figures": asdict(self.figures),
            "data": self.data,
            "versions": self.versions,
            "cross": None if self.cross is None else self.cross.to_dict(),
            "waves": None if self.waves is None else self.waves.to_dict(),
        }


_STUDY_NOTE = Markup("<br><small class='study'>study {:.3f}</small>")


def _table(frame: pd.DataFrame, study: dict[tuple[str, str], float] | None = None) -> Markup:
    """Our table; with ``study``, each cell shows the study's published value under ours."""
    head = Markup("").join(Markup("<th>{}</th>").format(c) for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for column, value in row.items():
            text = (
                "n/a"
                if value is None or (isinstance(value, float) and pd.isna(value))
                else (f"{value:.3f}" if isinstance(value, float) else str(value))
            )
            reference = (study or {}).get((str(row.iloc[0]), str(column)))
            under = "" if reference is None else _STUDY_NOTE.format(reference)
            cells.append(Markup("<td>{}{}</td>").format(text, under))
        body.append(Markup("<tr>{}</tr>").format(Markup("").join(cells)))
    return Markup("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>").format(head, Markup("").join(body))


def render_reproduce(summary: ReproduceSummary, tables: dict[str, pd.DataFrame]) -> str:
    """Render the reproduce run from its numbers (the typed summary behind results.json) into one HTML page.

    The study's published Tables 2 and 3 (shipped in `ecglens.study`) appear under our values, cell by
    cell; each evaluation follows in full with its intervals, thresholds and flags.
    """
    sections = [("Findings", _findings(summary))]
    sections += _table_sections(summary, tables)
    sections += _figure_sections(summary)
    data = Markup("").join(
        Markup("<h3>{}</h3><pre>{}</pre>").format(name, item["markdown"])
        for group in summary.data.values()
        for name, item in group.items()
    )
    sections.append(("Data", data))
    sections.append(
        (
            "Timings (s, summed over the run and its resumptions)",
            table_to_html(["step", "seconds"], list(summary.timings_s.items())),
        )
    )
    configuration = json.dumps({"config": summary.config, "versions": summary.versions}, indent=2)
    sections.append(("Configuration and versions", Markup("<pre>{}</pre>").format(configuration)))
    return page("ecglens reproduce: Original / Ours_1 / Ours_2", sections)


def _findings(summary: ReproduceSummary) -> Markup:
    """The generalisation gap and the three protocols' macro AUC, with the folds and how to read the tables."""
    results = summary.results
    return Markup(
        "<p>Original (trained on CPSC): macro AUC {} on the CPSC test split and {} on the PTB-XL test split. "
        "On the combined test set: Original {}, Ours_1 {}, Ours_2 {}. Thresholds were tuned on validation "
        "splits only (CPSC's for Original; the combined validation set for Ours_1/Ours_2) and stored in each "
        "bundle; folds {} (validation) and {} (test).</p><p class='note'>Under each of our values, in grey: "
        "the study's published value ({}, Tables 2 and 3; the study trained on the full databases at 500 Hz "
        "for 30 epochs, so a smaller run differs in level). Cells marked n/a are classes without positives in "
        "that test set. Per-class intervals, thresholds and flags are in the sections after the tables.</p>"
    ).format(
        number(results.macro_auc("Original", "cpsc")),
        number(results.macro_auc("Original", "ptbxl")),
        number(results.macro_auc("Original", "combined")),
        number(results.macro_auc("Ours_1", "combined")),
        number(results.macro_auc("Ours_2", "combined")),
        summary.folds.val_fold,
        summary.folds.test_fold,
        CITATION,
    )


def _table_sections(summary: ReproduceSummary, tables: dict[str, pd.DataFrame]) -> list[tuple[str, Markup]]:
    """Tables 2 and 3 with the study's values under ours, the set-level scores, every evaluation, the cross
    matrix."""
    results = summary.results
    sections = [
        ("Table 2: Original on CPSC and on PTB-XL (test splits)", _table(tables["table2"], study_cells("table2"))),
        (
            "Table 3: Original on the CPSC test split, Ours_1 and Ours_2 on the combined test set "
            "(the study's test sets)",
            _table(tables["table3"], study_cells("table3")),
        ),
    ]
    challenge_note = next((r.challenge_note for e in results.evaluations for r in e.results if r.challenge_note), "")
    sections.append(
        (
            "Set-level scores of every evaluation",
            _table(tables["set_scores"])
            + Markup(
                "<p class='note'>{} Challenge score: the PhysioNet/CinC Challenge 2021 score, {}. The study reports "
                "neither.</p>"
            ).format(FMAX_NOTE, challenge_note or "not computed"),
        )
    )
    details = Markup("").join(
        Markup("<h3>{} on {}</h3>").format(e.protocol, e.test_set)
        + Markup("").join(evaluation_table(result, e.threshold_origin) for result in e.results)
        + (out_of_scope_html(e.out_of_scope) if e.out_of_scope is not None else Markup(""))
        for e in results.evaluations
    )
    sections.append(("Every evaluation with 95 % intervals, thresholds and flags", details))
    if summary.cross is not None:
        frame = summary.cross.reset_index().rename(columns={"index": "trained on \\ tested on"})
        sections.append(("Train-on-A / test-on-B macro AUC", _table(frame)))
    return sections


def _figure_sections(summary: ReproduceSummary) -> list[tuple[str, Markup]]:
    """Figures 2-5 (population SHAP) and 6-8 (Grad-CAM of Ours_2)."""
    none = Markup("<p>none</p>")
    population = Markup("").join(
        Markup("<p>{} on {}: {}</p>").format(item.model, item.dataset, population_summary(item.result))
        + figure_from_png(item.figure, item.model)
        for item in summary.figures.population
    )
    gradcam = Markup("").join(
        Markup("<p>{}: {} (Grad-CAM for {})</p>").format(item.kind, item.record_id, item.class_name)
        + figure_from_png(item.path, item.record_id)
        for item in summary.figures.gradcam
    )
    return [
        (
            "Figures 2-5: population-level SHAP (signed, per lead, with Monte-Carlo errors)",
            Markup(POPULATION_NOTE) + population if population else none,
        ),
        ("Figures 6-8: Grad-CAM of Ours_2 on correctly and incorrectly classified test records", gradcam or none),
        *(
            [
                (
                    "Figures 6-8 checked: where Ours_2's evidence falls among the waves, and the measurements",
                    waves_section(summary.waves, Path(summary.waves.page or ".").parent.parent),  # OUT/waves/
                )
            ]
            if summary.waves is not None
            else []
        ),
    ]
