"""``ecglens demo``: the whole pipeline on the built-in synthetic cohort, ending in an HTML report.

synthetic WFDB records -> cache (resampled) -> ResNet-34 training -> thresholds on validation ->
metrics on test -> explanations (and among the delineated waves, with the measurements) -> robustness ->
report.html + report.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from markupsafe import Markup

from ecglens.bundle.meta import read_meta
from ecglens.data import SplitSpec
from ecglens.data.cache import SPEC_FILE, build_cache, open_caches
from ecglens.explain.faithfulness import DELETION_NOTE, FaithfulnessResult, faithfulness
from ecglens.explain.inputs import split_inputs, training_background
from ecglens.explain.population import PopulationImportance
from ecglens.explain.waves import WavesSummary
from ecglens.io import parse_source
from ecglens.perturb import Perturbation
from ecglens.predict import Predictor
from ecglens.preprocess import LengthPolicy
from ecglens.report.explanations import (
    POPULATION_NOTE,
    ExampleFigure,
    faithfulness_table,
    gradcam_examples,
    population_heatmap,
    population_summary,
)
from ecglens.report.html import evaluation_table, figure_from_png, figure_to_html, page, strict_json, table_to_html
from ecglens.report.outputs import write_faithfulness
from ecglens.report.robustness import robustness_section, write_robustness
from ecglens.report.synth import plot_one_per_class
from ecglens.report.waves import waves_section
from ecglens.robustness import RobustnessResult, run_robustness
from ecglens.studies.waves import waves_for_report
from ecglens.synth.cohort import SynthConfig, write_cohort
from ecglens.train.evaluate import EvaluationReport, evaluate_bundle, store_in_bundle, write_report
from ecglens.train.loop import TrainConfig, TrainResult, finished_run, fit
from ecglens.train.state import STATE_DIR, recover_state
from ecglens.util.atomic import write_text
from ecglens.util.progress import note
from ecglens.util.timing import StepClock

DEMO_TRAINING = TrainConfig(epochs=12, lr=1e-3, policy=LengthPolicy("crop", 5.0))
DEMO_PERTURBATIONS = (
    Perturbation("gaussian", 6.0),
    Perturbation("muscle", 6.0),
    Perturbation("missing", 3),
    Perturbation("reversal", 0, "LA/RA"),
    Perturbation("crop", 5.0),
)
"""The demo's training: the study's ResNet-34 at lr 1e-3 for 12 epochs on 5-s crops (about 4 minutes on 2 cores)."""


@dataclass(frozen=True)
class DemoConfig:
    """Demo sizing; the defaults finish in about 6 minutes on a 2-core CPU (354 s measured on an otherwise idle
    machine, 2026-12-05) and leave about 145 MB once pruned (`prune_demo`)."""

    n_records: int = 1200
    generate_rate_hz: float = 500.0
    sampling_rate_hz: float = 100.0
    duration_s: float = 10.0
    train: TrainConfig = field(default_factory=lambda: DEMO_TRAINING)
    bootstrap: int = 200
    explain_population: int = 30  # records explained (whole 10-s records since the architecture re-plan)
    shap_max_samples: int = 32  # expected-gradients samples per record at most, to reach a 5 % error
    explain_faithfulness: int = 12
    robustness_records: int = 30  # test records under a few perturbations and one attack budget

    @classmethod
    def sized(
        cls, n_records: int, sampling_rate_hz: float, epochs: int, model: str, device: str, seed: int
    ) -> DemoConfig:
        """The demo with other sizes: the cohort, split and training all follow ``seed``."""
        training = replace(DEMO_TRAINING, epochs=epochs, model=model, device=device, seed=seed, split=SplitSpec(seed))
        return cls(n_records=n_records, sampling_rate_hz=sampling_rate_hz, train=training)


def _log(message: str) -> None:
    note(message, "demo")


WAVES_DPI = 96
"""The demo's figures among the waves at 96 dpi: the pages show a PNG at 96 CSS px per inch, so this is pixel for
pixel what a reader sees on a standard display, at less than half the bytes of ecglens's 150 dpi."""
CLASS_COUNTS = "class_counts.json"


def run_demo(
    out: str | os.PathLike, config: DemoConfig = DemoConfig(), progress: bool = True, keep_all: bool = False
) -> Path:
    """Run the demo into ``out`` (resumable: finished steps are reused) and return the report path.

    Unless ``keep_all``, a finished demo removes what the seed regenerates or only an interrupted run needs
    (`prune_demo`); a re-run of a pruned folder reuses the cache and the trained model.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clock = StepClock()
    synth = SynthConfig(config.n_records, config.generate_rate_hz, config.duration_s, seed=config.train.seed)
    cache = out / f"cache{config.sampling_rate_hz:g}"
    with clock.step("generate"):
        counts = _generate(synth, out, cache, progress)
    with clock.step("prepare"):
        _prepare(out, cache, config, progress)
    with clock.step("train"):
        result = _train(out / "run", cache, config, progress)
    with clock.step("evaluate"):
        report = _evaluate(result.best_bundle, cache, out, config)
    with clock.step("explain"):
        _log("explaining: Grad-CAM of right and wrong test records, population SHAP, faithfulness")
        explanations = explain_for_report(result.best_bundle, cache, out / "explain", config, progress)
    with clock.step("waves"):
        _log("placing Grad-CAM and guided Grad-CAM among the test records' waves")
        waves = waves_for_report(
            "the demo model",
            result.best_bundle,
            [cache],
            out / "waves",
            config.explain_faithfulness,
            config.train.device,
            seed=1,
            dpi=WAVES_DPI,
        )
        explanations = replace(explanations, waves=waves)
    with clock.step("robustness"):
        robustness = _robustness(result.best_bundle, cache, config, progress)
        robustness_files = write_robustness(robustness, out / "robustness", read_meta(result.best_bundle).lead_names)
    timings = clock.finish()
    summary = {
        "config": asdict(config),
        "class_counts": counts,
        "timings_s": timings,
        "training_log": [asdict(row) for row in result.log],
        "best_epoch": result.best_epoch,
        "evaluation": report.to_dict(),
        "bundle": result.best_bundle,
        "explanations": explanations.to_dict(),
        "robustness": strict_json(robustness.to_dict()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    write_text(out / "report.json", json.dumps(summary, indent=2, default=float))
    figures = {p.name: p for p in robustness_files}
    section = robustness_section(
        robustness,
        *(figures.get(name) for name in ("robustness_curves.png", "adversarial_example.png", "attack_spectra.png")),
    )
    write_text(out / "report.html", _render(summary, report, synth, result, config, section, explanations, out))
    _log(f"done in {timings['total']:.0f} s: test macro AUC {report.combined.macro_auc:.3f}")
    _tidy(out, keep_all)
    _log(f"view the model in a browser: ecglens serve --checkpoint {result.best_bundle}")
    return out / "report.html"


def _evaluate(bundle: str, cache: Path, out: Path, config: DemoConfig) -> EvaluationReport:
    """Thresholds tuned on validation and stored in the bundle; metrics on test, written to ``out/evaluation``."""
    _log("evaluating: thresholds on validation, metrics on test")
    report = evaluate_bundle(bundle, [cache], n_bootstrap=config.bootstrap, device=config.train.device)
    write_report(report, out / "evaluation")
    store_in_bundle(bundle, report)
    _log(f"stored the thresholds ({report.threshold_origin.describe()}) in {bundle}")
    return report


def _robustness(bundle: str, cache: Path, config: DemoConfig, progress: bool) -> RobustnessResult:
    """The demo's short robustness run: a few perturbations, and four attacks at 25 uV."""
    _log(
        f"robustness: {len(DEMO_PERTURBATIONS)} perturbations and a 25-uV attack on {config.robustness_records} test "
        "records"
    )
    return run_robustness(
        bundle,
        [cache],
        "test",
        config.robustness_records,
        DEMO_PERTURBATIONS,
        budgets_uv=(25.0,),
        n_flip=0,
        pgd_steps=3,
        attacks=("random", "pgd", "smooth", "pgd-band"),
        device=config.train.device,
        progress=progress,
    )


def _generate(synth: SynthConfig, out: Path, cache: Path, progress: bool) -> dict[str, int]:
    """The synthetic records (reused when a previous run finished them, not needed when the cache is complete);
    class counts."""
    counts_path = out / CLASS_COUNTS
    if counts_path.is_file() and (cache / SPEC_FILE).is_file():
        return json.loads(counts_path.read_text())
    records_dir = out / "records"
    done_marker = records_dir / "COMPLETE"
    if not done_marker.is_file():
        _log(f"generating {synth.n_records} synthetic records at {synth.sampling_rate_hz:g} Hz into {records_dir}")
        counts = write_cohort(synth, records_dir, progress=progress)
        write_text(done_marker, json.dumps(counts))
    write_text(counts_path, done_marker.read_text())
    return json.loads(done_marker.read_text())


def _prepare(out: Path, cache: Path, config: DemoConfig, progress: bool) -> None:
    """The cache of the records at the demo's rate (kept as it is when the records were pruned after it)."""
    if (cache / SPEC_FILE).is_file() and not (out / "records").is_dir():
        _log(f"reusing the cache {cache} (its records were removed when the demo finished)")
        return
    _log(f"preparing the cache at {config.sampling_rate_hz:g} Hz")
    source = parse_source(f"synthetic=challenge:{out / 'records'}")
    build_cache([source], cache, config.sampling_rate_hz, progress=progress)


def _train(run_dir: Path, cache: Path, config: DemoConfig, progress: bool) -> TrainResult:
    """The demo's training, resumed if interrupted; a finished run (resume state pruned or not) is reused."""
    resume = recover_state(run_dir)
    finished = None if resume else finished_run(run_dir, config.train.epochs)
    if finished is not None:
        _log(f"reusing the trained model {finished.best_bundle} ({finished.epochs_run} epochs, from its log.csv)")
        return finished
    _log(f"training {config.train.model} for {config.train.epochs} epochs" + (" (resuming)" if resume else ""))
    return fit([cache], run_dir, config.train, resume=resume, progress=progress)


def _tidy(out: Path, keep_all: bool) -> None:
    """Prune the finished demo (unless ``keep_all``) and say what it kept, removed and how big it is."""
    if keep_all:
        _log(f"kept everything (--keep-all): {out} holds {_megabytes(out):.0f} MB")
        return
    for line in prune_demo(out).lines():
        _log(line)


@dataclass(frozen=True)
class PruneResult:
    """What `prune_demo` removed and kept, and the folder's size after it."""

    out: str
    removed: tuple[tuple[str, float], ...]  # (path relative to out, MB)
    kept: tuple[tuple[str, float], ...]
    total_mb: float

    def lines(self) -> list[str]:
        """The terminal's account of it."""

        def listing(items: tuple[tuple[str, float], ...]) -> str:
            return ", ".join(f"{name} ({mb:.0f} MB)" for name, mb in items) or "nothing"

        removed = (
            f"removed {listing(self.removed)}: the same seed regenerates the records and the cache holds what the "
            "later steps read; the training state only resumes an interrupted run (--keep-all keeps them)"
            if self.removed
            else "nothing to remove: the records and the training state were removed when the demo last finished"
        )
        return [
            removed,
            f"kept {listing(self.kept)}",
            f"{self.out} holds {self.total_mb:.0f} MB",
        ]


PRUNED = ("records", f"run/{STATE_DIR}", f"run/{STATE_DIR}.old")
"""What a finished demo removes: the generated records and the training's resume state."""


def prune_demo(out: str | os.PathLike) -> PruneResult:
    """Remove from a finished demo what the seed regenerates or only an interrupted run needs (`PRUNED`)."""
    out = Path(out)
    removed = []
    for name in PRUNED:
        path = out / name
        if path.exists():
            removed.append((name, _megabytes(path)))
            shutil.rmtree(path)
    kept = tuple((p.name, _megabytes(p)) for p in sorted(out.iterdir()) if not p.name.startswith("."))
    return PruneResult(str(out), tuple(removed), kept, _megabytes(out))


def _megabytes(path: Path) -> float:
    """Bytes under ``path`` in MB (10**6)."""
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _training_figure(result: TrainResult) -> str:
    import matplotlib.pyplot as plt

    log = result.log
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3))
    epochs = [row.epoch for row in log]
    ax.plot(epochs, [row.train_loss for row in log], "o-", label="training")
    ax.plot(epochs, [row.val_loss for row in log], "s--", label="validation")
    ax.set_ylabel("loss (binary cross-entropy)")
    ax.legend(frameon=False)
    ax2.plot(epochs, [row.val_macro_auc or np.nan for row in log], "o-", color="green")
    ax2.axvline(result.best_epoch, color="grey", lw=0.8, ls=":")
    ax2.annotate(
        "best epoch",
        (result.best_epoch, 0.02),
        xycoords=("data", "axes fraction"),
        fontsize=8,
        color="grey",
        ha="right",
        rotation=90,
        va="bottom",
    )
    ax2.set_ylabel("validation macro AUC")
    for axis in (ax, ax2):
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    fig.tight_layout()
    return figure_to_html(fig, "training curves")


def _render(
    summary: dict,
    report: EvaluationReport,
    synth: SynthConfig,
    result: TrainResult,
    config: DemoConfig,
    robustness: Markup,
    explanations: DemoExplanations,
    out: Path,
) -> str:
    test = report.combined
    sections = [
        (
            "Summary",
            Markup(
                "<p>{} class labels over {} synthetic records ({:g} s at {:g} Hz, SNR {:g} dB), cached at {:g} Hz; the "
                "study's ResNet-34 trained for {} epochs (best epoch {} on validation). <b>Test macro AUC {:.3f}</b> "
                "on {} records never used for training or threshold tuning. Total time {:.0f} s.</p>"
            ).format(
                sum(summary["class_counts"].values()),
                synth.n_records,
                synth.duration_s,
                synth.sampling_rate_hz,
                synth.snr_db,
                config.sampling_rate_hz,
                config.train.epochs,
                result.best_epoch,
                test.macro_auc,
                test.n_records,
                summary["timings_s"]["total"],
            ),
        )
    ]
    sections.append(("Test metrics", evaluation_table(test, report.threshold_origin.describe())))
    sections.append(
        (
            "Training",
            _training_figure(result)
            + table_to_html(
                ["epoch", "train loss", "val loss", "val macro AUC", "seconds"],
                [[r.epoch, r.train_loss, r.val_loss, r.val_macro_auc, r.seconds] for r in result.log],
            ),
        )
    )
    with tempfile.TemporaryDirectory() as scratch:
        images = [figure_from_png(path, path.stem) for path in plot_one_per_class(synth, scratch)]
    sections.append(("What each synthetic class looks like", Markup("").join(images)))
    sections += _explanation_sections(explanations, out)
    sections.append(("Robustness: a few perturbations (full set: ecglens robustness)", robustness))
    sections.append(("Timings (s)", table_to_html(["step", "seconds"], list(summary["timings_s"].items()))))
    sections.append(("Configuration", Markup("<pre>{}</pre>").format(json.dumps(summary["config"], indent=2))))
    return page("ecglens demo report", sections)


@dataclass(frozen=True)
class DemoExplanations:
    """What the demo explains: Grad-CAM examples, the population heatmap and the faithfulness measures."""

    gradcam: tuple[ExampleFigure, ...]
    population: PopulationImportance
    population_figure: Path
    faithfulness: FaithfulnessResult
    faithfulness_figure: Path
    waves: WavesSummary | None = None

    def to_dict(self) -> dict:
        """Plain data for ``report.json``."""
        return {
            "gradcam": [asdict(f) for f in self.gradcam],
            "population": self.population.to_dict(),
            "population_figure": str(self.population_figure),
            "faithfulness": self.faithfulness.to_dict(),
            "faithfulness_markdown": self.faithfulness.to_markdown(),
            "faithfulness_figure": str(self.faithfulness_figure),
            "waves": None if self.waves is None else self.waves.to_dict(),
        }


def explain_for_report(
    bundle: str, cache: Path, out: Path, config: DemoConfig, progress: bool = True
) -> DemoExplanations:
    """Grad-CAM figures, the population heatmap and the faithfulness table for the demo model."""
    loaded = Predictor(bundle, config.train.device)
    model, meta = loaded.model, loaded.meta
    caches = open_caches([cache], meta.sampling_rate_hz)
    figures = gradcam_examples(model, meta, split_inputs(caches, meta, "test"), out)
    chosen = split_inputs(caches, meta, "test", config.explain_population)
    background = training_background(caches, meta, 50)
    title = f"SHAP per lead, {len(chosen)} test records"
    population = population_heatmap(
        model,
        meta,
        chosen,
        background,
        out / "population.png",
        title,
        progress=progress,
        max_samples=config.shap_max_samples,
    )
    records = split_inputs(caches, meta, "test", config.explain_faithfulness, seed=1)
    faith = faithfulness(model, meta, records, background, steps=8, n_samples=4, progress=progress)
    if faith is None:
        raise RuntimeError("the demo runs in one process; run it without torchrun")
    write_faithfulness(faith, out, "mean over test records and their classes")
    return DemoExplanations(tuple(figures), population, out / "population.png", faith, out / "faithfulness_curves.png")


def _explanation_sections(explanations: DemoExplanations, out: Path) -> list[tuple[str, Markup]]:
    gradcams = Markup("").join(
        Markup("<p>{} ({}, Grad-CAM for {}):</p>").format(item.kind, item.record_id, item.class_name)
        + figure_from_png(item.path, item.record_id)
        for item in explanations.gradcam
    )
    return [
        (
            "Grad-CAM (end of the 4th residual stage, top 5 % of time steps shaded)",
            Markup(
                "<p class='note'>Grad-CAM has one value per time step: a band marks a time, across all leads. It "
                "does not say which lead carries the evidence; for that, see <code>ecglens explain guided-gradcam"
                "</code> or <code>ecglens explain shap</code>.</p>"
            )
            + (gradcams or Markup("<p>no test records</p>")),
        ),
        (
            "Population lead importance (SHAP, expected gradients)",
            Markup(POPULATION_NOTE)
            + Markup("<p class='note'>{}</p>").format(population_summary(explanations.population.to_dict()))
            + figure_from_png(explanations.population_figure, "population heatmap"),
        ),
        (
            "Faithfulness of the explanations",
            Markup("<p class='note'>{} Notes: {}</p>").format(DELETION_NOTE, " ".join(explanations.faithfulness.notes))
            + faithfulness_table(explanations.faithfulness)
            + figure_from_png(explanations.faithfulness_figure, "deletion and insertion curves"),
        ),
        *(
            [("Explanations among the waves, and the measurements", waves_section(explanations.waves, out))]
            if explanations.waves is not None
            else []
        ),
    ]
