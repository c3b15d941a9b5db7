"""Which leads suffice (``ecglens leads``), the study's second open question.

Two answers side by side:

- **measured**: reduced-lead models trained and evaluated on the same caches, split and seed as the 12-lead
  model (`ecglens.train.loop.fit` with ``lead_names``), for the PhysioNet/CinC 2021 sets (12; 6 limb; 4:
  I, II, III, V2; 3: I, II, V2; 2: I, II), single leads and user lists; per-class AUC and F1 with bootstrap
  intervals;
- **explained**: the 12-lead model's population lead Shapley values (sampled permutations; each lead's mean
  contribution to each class's probability on the records of that class), with no training at all
  (``--no-train``). An absent lead follows the **conditional baseline** (`ecglens.explain.lead_shapley`): an
  absent limb lead is rebuilt from two present ones, anything else becomes the background's mean record. The
  limb leads are then redundant players, so the limb leads' joint value is reported too (limb leads as one
  player).

Does the explanation predict the measurement? Two agreements with the retrained models' validation macro AUC:
each subset's Shapley share (the share of each class's total attribution its leads carry, averaged over
classes), and the **coalition AUC**: the 12-lead model's own validation macro AUC with the leads outside the
subset made absent as in the game, which is what the Shapley values average over. And a greedy subset (the k
leads with the largest mean share) against the best measured subset of size k. **Every choice is made on the
validation split**: the Shapley ranking explains validation records, and the best subset of a size is the one
with the best validation macro AUC (its best epoch's); the test split is scored once, for the report, and
chooses nothing.

III, aVR, aVL and aVF are linear combinations of I and II (Einthoven: III = II - I; Goldberger: aVR =
-(I + II)/2, aVL = I - II/2, aVF = II - I/2), so a model given I and II sees all six limb leads' information;
the report compares ``2`` with ``limb6`` as a check of that fact.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from markupsafe import Markup
from scipy.stats import spearmanr

from ecglens.bundle.meta import read_meta
from ecglens.bundle.weights import load_model
from ecglens.data.cache import open_caches
from ecglens.explain.inputs import split_inputs, training_background
from ecglens.explain.lead_shapley import LeadGame, sampled_lead_shapley
from ecglens.leads import LEAD_NAMES, canonical_leads
from ecglens.metrics import EvaluationResult
from ecglens.report.figures import save_figure
from ecglens.report.html import figure_from_png, number, page, strict_json, table_to_html
from ecglens.train.evaluate import evaluate_bundle
from ecglens.train.loop import TrainConfig, fit
from ecglens.util.atomic import atomic_open, write_json, write_text
from ecglens.util.progress import bar, note

NAMED_SUBSETS: dict[str, tuple[str, ...]] = {
    "12": LEAD_NAMES,
    "limb6": ("I", "II", "III", "aVR", "aVL", "aVF"),
    "4": ("I", "II", "III", "V2"),
    "3": ("I", "II", "V2"),
    "2": ("I", "II"),
}
"""The PhysioNet/CinC Challenge 2021 lead sets."""
STUDY_READINGS: tuple[tuple[str, str], ...] = (
    ("AF", "II"),
    ("LBBB", "II"),
    ("RBBB", "II"),
    ("PAC", "II"),
    ("PVC", "II"),
    ("PAC", "aVF"),
    ("RBBB", "V1"),
)
"""What the study reads from its population SHAP figures: lead II for AF, the bundle-branch blocks, PAC and
PVC; aVF for PAC; V1 for RBBB."""
EINTHOVEN_NOTE = (
    "III, aVR, aVL and aVF are linear combinations of I and II (Einthoven: III = II - I; "
    "Goldberger: aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2): a model given I and II sees all "
    "six limb leads' information, so '2' and 'limb6' should score alike up to training noise."
)


def parse_subsets(
    named: str = "12,limb6,4,3,2,singles", custom: Sequence[str] = ()
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(name, leads) of every subset asked for: named sets, ``singles`` (each lead alone), custom lists."""
    subsets: dict[str, tuple[str, ...]] = {}
    for name in (part.strip() for part in named.split(",") if part.strip()):
        if name == "singles":
            subsets.update({lead: (lead,) for lead in LEAD_NAMES})
        elif name in NAMED_SUBSETS:
            subsets[name] = NAMED_SUBSETS[name]
        else:
            raise ValueError(f"unknown lead set {name!r}; choose from {', '.join(NAMED_SUBSETS)}, singles")
    for text in custom:
        leads = canonical_leads(part.strip() for part in text.split(",") if part.strip())
        subsets["+".join(leads)] = leads
    return tuple(subsets.items())


@dataclass(frozen=True)
class LeadRanking:
    """One class's mean lead Shapley values (probability units) over its positive records, and the leads by
    value."""

    class_name: str
    n_records: int
    values: tuple[float, ...]
    order: tuple[str, ...]

    def rank(self, lead: str) -> int:
        """1 for the lead that matters most for this class."""
        return self.order.index(lead) + 1


@dataclass(frozen=True)
class SubsetResult:
    """A reduced-lead model: its validation macro AUC (what chooses) and its test scores with intervals."""

    name: str
    leads: tuple[str, ...]
    bundle: str
    result: EvaluationResult
    shapley_share: float | None
    val_macro_auc: float | None = None
    coalition_val_auc: float | None = None
    """The 12-lead model's validation macro AUC with the other leads absent (conditional baseline)."""


@dataclass(frozen=True)
class GreedyComparison:
    """The Shapley-guided subset of one size against the best measured subset of that size, chosen on
    validation (None where nothing was trained)."""

    size: int
    greedy_leads: tuple[str, ...]
    greedy_val_macro_auc: float | None
    greedy_macro_auc: float | None
    best_measured: str | None
    best_measured_val_macro_auc: float | None
    best_measured_macro_auc: float | None


@dataclass(frozen=True)
class LeadStudy:
    """Everything ``ecglens leads`` found."""

    rankings: tuple[LeadRanking, ...]
    shares: dict[str, float]
    subsets: tuple[SubsetResult, ...]
    spearman: float | None
    spearman_p: float | None
    greedy: tuple[GreedyComparison, ...]
    n_shapley_records: int
    seconds: float
    joint_shares: dict[str, float] | None = None
    """Shares with the limb leads as one player (``limb leads``) and the six precordial leads."""
    coalition_spearman: float | None = None
    """Spearman correlation of the coalition AUC with the retrained subsets' validation macro AUC."""
    baseline: str = "conditional"

    def to_dict(self) -> dict:
        """Plain data for ``leads.json``."""
        return {
            "rankings": [asdict(r) for r in self.rankings],
            "shares": self.shares,
            "joint_shares": self.joint_shares,
            "baseline": self.baseline,
            "subsets": [
                {
                    "name": s.name,
                    "leads": list(s.leads),
                    "bundle": s.bundle,
                    "shapley_share": s.shapley_share,
                    "val_macro_auc": s.val_macro_auc,
                    "coalition_val_auc": s.coalition_val_auc,
                    "result": s.result.to_dict(),
                }
                for s in self.subsets
            ],
            "spearman": self.spearman,
            "spearman_p": self.spearman_p,
            "coalition_spearman": self.coalition_spearman,
            "greedy": [asdict(g) for g in self.greedy],
            "n_shapley_records": self.n_shapley_records,
            "seconds": self.seconds,
        }


def shapley_rankings(
    bundle: str | os.PathLike,
    cache_paths: Sequence[str | os.PathLike],
    split: str = "val",
    n_records: int = 40,
    n_permutations: int = 16,
    device: str = "auto",
    progress: bool = True,
    baseline: str = "conditional",
) -> tuple[tuple[LeadRanking, ...], dict[str, float], dict[str, float]]:
    """Population lead Shapley values of a 12-lead bundle: per class, each lead's mean value over the records
    labelled with the class; each lead's share of the attribution averaged over classes; and the same shares
    with the limb leads as one player."""
    model, meta = load_model(bundle, device)
    if meta.lead_names != LEAD_NAMES:
        raise ValueError(f"{bundle}: the Shapley ranking needs a 12-lead model (it takes {', '.join(meta.lead_names)})")
    caches = open_caches(cache_paths, meta.sampling_rate_hz)
    inputs = split_inputs(caches, meta, split, n_records)
    device_ = next(model.parameters()).device
    background = None if baseline == "zeros" else training_background(caches, meta, 100)
    games = (LeadGame.of(LEAD_NAMES, baseline), LeadGame.of(LEAD_NAMES, baseline, limb_as_one=True))
    values: tuple[list, list] = ([], [])
    labels = []
    for item in bar(inputs, desc="lead Shapley", unit="record", enabled=progress):
        x = torch.from_numpy(item.signal).to(device_)
        mean = None if background is None else background.mean(item.n_samples, device_)
        for game, out in zip(games, values, strict=True):
            out.append(sampled_lead_shapley(model, x, mean, n_permutations, game=game))
        labels.append(item.labels)
    truth = np.stack(labels) > 0.5  # records x classes
    rankings = []
    shares: tuple[list, list] = ([], [])
    for c, name in enumerate(meta.class_names):
        if not truth[:, c].any():
            continue
        for k, phi in enumerate(values):  # records x players x classes
            mean = np.stack(phi)[truth[:, c], :, c].mean(axis=0)
            if k == 0:
                rankings.append(
                    LeadRanking(
                        name,
                        int(truth[:, c].sum()),
                        tuple(float(v) for v in mean),
                        tuple(LEAD_NAMES[i] for i in np.argsort(-mean)),
                    )
                )
            total = np.abs(mean).sum()
            if total > 0:
                shares[k].append(np.clip(mean, 0, None) / total)
    out = []
    for game, found in zip(games, shares, strict=True):
        share = np.mean(found, axis=0) if found else np.zeros(len(game.players))
        out.append({player: float(v) for player, v in zip(game.player_names, share, strict=True)})
    return tuple(rankings), out[0], out[1]


def coalition_auc(
    bundle: str | os.PathLike,
    cache_paths: Sequence[str | os.PathLike],
    subsets: Sequence[tuple[str, ...]],
    split: str = "val",
    baseline: str = "conditional",
    device: str = "auto",
    batch_size: int = 64,
) -> list[float | None]:
    """The 12-lead model's macro AUC on a split with the leads outside each subset made absent as in the lead
    game (`LeadGame`): the value the Shapley values average over, in the metric the retrained models report."""
    from sklearn.metrics import roc_auc_score

    model, meta = load_model(bundle, device)
    caches = open_caches(cache_paths, meta.sampling_rate_hz)
    inputs = split_inputs(caches, meta, split)
    device_ = next(model.parameters()).device
    background = None if baseline == "zeros" else training_background(caches, meta, 100)
    game = LeadGame.of(LEAD_NAMES, baseline)
    unknown = np.full(len(meta.class_names), np.nan)  # a cache's records have labels; one without is negative
    truth = np.stack([unknown if item.labels is None else item.labels for item in inputs]) > 0.5
    masks = np.array([[lead in leads for lead in LEAD_NAMES] for leads in subsets], np.float32)
    probabilities = np.zeros((len(subsets), len(inputs), len(meta.class_names)))
    with torch.no_grad():
        for i, item in enumerate(inputs):
            x = torch.from_numpy(item.signal).to(device_)
            mean = None if background is None else background.mean(item.n_samples, device_)
            for start in range(0, len(masks), batch_size):
                batch = game.inputs(x, masks[start : start + batch_size], mean)
                probabilities[start : start + len(batch), i] = torch.sigmoid(model(batch)).float().cpu().numpy()
    scores: list[float | None] = []
    for k in range(len(subsets)):
        aucs = [
            roc_auc_score(truth[:, c], probabilities[k, :, c])
            for c in range(truth.shape[1])
            if 0 < truth[:, c].sum() < len(truth)
        ]
        scores.append(float(np.mean(aucs)) if aucs else None)
    return scores


def run_lead_study(
    cache_paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    subsets: Sequence[tuple[str, tuple[str, ...]]] = (),
    config: TrainConfig | None = None,
    checkpoint: str | os.PathLike | None = None,
    train: bool = True,
    n_shapley: int = 40,
    n_bootstrap: int = 200,
    greedy_sizes: Sequence[int] = (2, 3),
    progress: bool = True,
) -> LeadStudy:
    """Train and evaluate the subsets, rank the leads by Shapley value, and compare (see the module doc).

    Args:
        cache_paths: caches to train and test on.
        out: the study folder (each subset's run in ``runs/NAME``; a finished subset is reused).
        subsets: (name, leads) pairs (`parse_subsets`).
        config: training settings shared by every subset (its ``lead_names`` are replaced).
        checkpoint: the 12-lead bundle to explain (default: the ``12`` subset's, trained here).
        train: False for the Shapley ranking alone (needs ``checkpoint``).
        n_shapley: validation records explained.
        n_bootstrap: bootstrap resamples for the intervals.
        greedy_sizes: sizes of the Shapley-guided subsets trained and compared with the best measured ones.
    """
    started = time.perf_counter()
    config = TrainConfig() if config is None else config
    if not train and checkpoint is None:
        raise ValueError("--no-train needs --checkpoint (a 12-lead bundle to explain)")
    trainer = _SubsetTrainer(cache_paths, Path(out), config, n_bootstrap, progress)
    if train and checkpoint is None:
        checkpoint = trainer.train("12", LEAD_NAMES).bundle
    assert checkpoint is not None
    rankings, shares, joint = shapley_rankings(
        checkpoint, cache_paths, "val", n_shapley, device=config.device, progress=progress
    )
    greedy_sets = {
        f"greedy{k}": tuple(sorted(sorted(shares, key=lambda lead: -shares[lead])[:k], key=LEAD_NAMES.index))
        for k in greedy_sizes
    }
    if train:
        for name, leads in [*subsets, *greedy_sets.items()]:
            trainer.train(name, leads)
    trained = trainer.trained
    coalitions = (
        coalition_auc(checkpoint, cache_paths, [s.leads for s in trained.values()], "val", device=config.device)
        if trained
        else []
    )
    results = tuple(
        replace(s, shapley_share=float(sum(shares[lead] for lead in s.leads)), coalition_val_auc=auc)
        for s, auc in zip(trained.values(), coalitions, strict=True)
    )
    measured = [(s.shapley_share, s.val_macro_auc) for s in results if s.val_macro_auc is not None]
    rho = p = coalition_rho = None
    if len(measured) >= 3:
        shares_measured, aucs_measured = zip(*measured, strict=True)
        rho, p = (float(v) for v in spearmanr(shares_measured, aucs_measured))
    paired = [
        (s.coalition_val_auc, s.val_macro_auc)
        for s in results
        if s.val_macro_auc is not None and s.coalition_val_auc is not None
    ]
    if len(paired) >= 3:
        coalition_aucs, retrained_aucs = zip(*paired, strict=True)
        coalition_rho = float(spearmanr(coalition_aucs, retrained_aucs).statistic)
    greedy = tuple(_greedy_comparison(leads, trained.get(name), results) for name, leads in greedy_sets.items())
    return LeadStudy(
        rankings, shares, results, rho, p, greedy, n_shapley, time.perf_counter() - started, joint, coalition_rho
    )


class _SubsetTrainer:
    """Trains and evaluates one lead subset at a time into ``out/runs/NAME``, reusing a finished one."""

    def __init__(
        self, cache_paths: Sequence[str | os.PathLike], out: Path, config: TrainConfig, n_bootstrap: int, progress: bool
    ) -> None:
        self.cache_paths, self.out, self.config = cache_paths, out, config
        self.n_bootstrap, self.progress = n_bootstrap, progress
        self.trained: dict[str, SubsetResult] = {}
        out.mkdir(parents=True, exist_ok=True)

    def train(self, name: str, leads: tuple[str, ...]) -> SubsetResult:
        """The subset's bundle and scores (trained and evaluated unless done before)."""
        if name in self.trained:
            return self.trained[name]
        run = self.out / "runs" / name.replace("/", "_")
        done = run / "evaluation.json"
        if not done.is_file():
            note(f"training {name} ({', '.join(leads)})", "leads")
            resume = (run / "state").is_dir()
            fit(self.cache_paths, run, replace(self.config, lead_names=leads), resume=resume, progress=self.progress)
            report = evaluate_bundle(
                run / "best", self.cache_paths, n_bootstrap=self.n_bootstrap, device=self.config.device, retune=False
            )
            write_text(done, json.dumps(strict_json(report.combined.to_dict())))
        result = EvaluationResult.from_dict(json.loads(done.read_text()))
        val_auc = (read_meta(run / "best").metrics.get("epoch_log") or {}).get("val_macro_auc")
        self.trained[name] = SubsetResult(name, leads, str(run / "best"), result, None, val_auc)
        return self.trained[name]


def _greedy_comparison(
    leads: tuple[str, ...], mine: SubsetResult | None, results: Sequence[SubsetResult]
) -> GreedyComparison:
    """A Shapley-guided subset beside the measured subset of its size with the best validation macro AUC."""
    same_size = [s for s in results if len(s.leads) == len(leads) and not s.name.startswith("greedy")]
    best = max(same_size, key=lambda s: s.val_macro_auc or -1, default=None)  # chosen on validation
    return GreedyComparison(
        len(leads),
        leads,
        None if mine is None else mine.val_macro_auc,
        None if mine is None else mine.result.macro_auc,
        None if best is None else best.name,
        None if best is None else best.val_macro_auc,
        None if best is None else best.result.macro_auc,
    )


def write_lead_study(study: LeadStudy, out: str | os.PathLike) -> tuple[Path, ...]:
    """``leads.json``, ``leads.csv``, ``lead_ranking.csv``, ``leads.png`` and ``leads.html``."""
    out = Path(out)
    paths = [write_json(out / "leads.json", strict_json(study.to_dict()))]
    rows = []
    for s in study.subsets:
        for m in (*s.result.per_class, None):
            if m is None:
                metrics = {"class": "macro", "auc": s.result.macro_auc, "f1": s.result.average.get("f1")}
                interval = s.result.average_ci95.get("auc")
            else:
                metrics = {"class": m.name, "auc": m.auc, "f1": m.f1}
                interval = m.ci95.get("auc")
            ci = interval or (None, None)
            rows.append(
                {
                    "subset": s.name,
                    "leads": " ".join(s.leads),
                    "n_leads": len(s.leads),
                    **metrics,
                    "auc_ci_low": ci[0],
                    "auc_ci_high": ci[1],
                    "shapley_share": s.shapley_share,
                }
            )
    with atomic_open(out / "leads.csv", newline="") as handle:
        pd.DataFrame(rows).to_csv(handle, index=False)
    ranking = pd.DataFrame(
        [
            {
                "class": r.class_name,
                "records": r.n_records,
                **{lead: v for lead, v in zip(LEAD_NAMES, r.values, strict=True)},
            }
            for r in study.rankings
        ]
    )
    with atomic_open(out / "lead_ranking.csv", newline="") as handle:
        ranking.to_csv(handle, index=False)
    paths += [out / "leads.csv", out / "lead_ranking.csv"]
    figure = save_figure(_figure(study), out / "leads.png") if study.subsets else None
    if figure is not None:
        paths.append(figure)
    paths.append(write_text(out / "leads.html", page("ecglens leads: which leads suffice", _sections(study, figure))))
    return tuple(paths)


def _figure(study: LeadStudy):
    subsets = sorted(study.subsets, key=lambda s: (-len(s.leads), -(s.result.macro_auc or 0)))
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(12, 0.32 * len(subsets) + 1.8), gridspec_kw={"width_ratios": [2, 1]}
    )
    y = np.arange(len(subsets))
    auc = np.array([np.nan if s.result.macro_auc is None else s.result.macro_auc for s in subsets])
    ci = np.array([s.result.average_ci95.get("auc", (np.nan, np.nan)) for s in subsets])
    errors = np.abs(np.stack([auc - ci[:, 0], ci[:, 1] - auc]))
    by_size = {12: "C2", 6: "C6", 4: "C4", 3: "C0", 2: "C9", 1: "C1"}  # red is kept for the greedy subsets
    colours = ["C3" if s.name.startswith("greedy") else by_size.get(len(s.leads), "C7") for s in subsets]
    left.barh(y, auc, xerr=errors, color=colours, alpha=0.8, error_kw={"lw": 0.8})
    left.set_yticks(y, [f"{s.name} ({len(s.leads)})" for s in subsets], fontsize=7)
    left.invert_yaxis()
    left.set_xlabel("test macro AUC (95 % bootstrap interval)")
    left.set_xlim(0.4, 1.0)
    left.axvline(0.5, color="0.5", ls=":", lw=1)
    left.grid(alpha=0.3, axis="x")
    coalition = np.array([np.nan if s.coalition_val_auc is None else s.coalition_val_auc for s in subsets])
    validation = np.array([np.nan if s.val_macro_auc is None else s.val_macro_auc for s in subsets])
    right.scatter(coalition, validation, color=colours)
    for s, x_value, y_value in zip(subsets, coalition, validation, strict=True):
        right.annotate(s.name, (x_value, y_value), fontsize=6, xytext=(2, 2), textcoords="offset points")
    rho = "n/a" if study.coalition_spearman is None else f"{study.coalition_spearman:.2f}"
    share_rho = "n/a" if study.spearman is None else f"{study.spearman:.2f}"
    right.set_xlabel(f"12-lead model with the other leads absent ({study.baseline} baseline)", fontsize=8)
    right.set_ylabel("retrained model, validation macro AUC", fontsize=8)
    right.set_title(f"Spearman rho {rho} (Shapley share: {share_rho})", fontsize=9)
    right.grid(alpha=0.3)
    fig.suptitle("Reduced-lead models on the same split and seed (red: Shapley-guided greedy subsets)", fontsize=10)
    fig.tight_layout()
    return fig


def _sections(study: LeadStudy, figure: Path | None) -> list[tuple[str, Markup]]:
    """The report's sections: the limb leads' dependence, the subsets measured, the ranking, the study's readings."""
    sections = [("Linear dependence of the limb leads", _limb_note(study))]
    if study.subsets:
        sections.append(("Measured: reduced-lead models (the bundles' own thresholds)", _subsets_body(study, figure)))
    ranking = table_to_html(
        ["class", "records", "leads by mean Shapley value (most first)"],
        [[r.class_name, r.n_records, " > ".join(r.order)] for r in study.rankings],
    )
    if study.joint_shares:
        ranking += Markup("<p>With the limb leads as one player: {}.</p>").format(
            ", ".join(f"{player} {share:.0%}" for player, share in study.joint_shares.items())
        )
    sections.append(
        (
            f"Explained: lead ranking of the 12-lead model ({study.n_shapley_records} validation records, "
            f"{study.baseline} baseline)",
            ranking,
        )
    )
    ranks = {r.class_name: r for r in study.rankings}
    study_rows = [
        [
            c,
            lead,
            f"{ranks[c].rank(lead)} of 12" if c in ranks else "class absent",
            " ".join(ranks[c].order[:3]) if c in ranks else "",
        ]
        for c, lead in STUDY_READINGS
    ]
    sections.append(
        (
            "Beside the study's readings of its SHAP figures",
            table_to_html(["class", "the study reads", "ecglens's rank of that lead", "ecglens's top 3"], study_rows),
        )
    )
    return sections


def _limb_note(study: LeadStudy) -> Markup:
    """Einthoven's and Goldberger's dependence of the limb leads, with I, II against all six where measured."""
    note = Markup("<p>{}</p>").format(EINTHOVEN_NOTE)
    by_name = {s.name: s for s in study.subsets}
    if "2" in by_name and "limb6" in by_name:
        two, six = by_name["2"].result, by_name["limb6"].result
        note += Markup("<p>Measured: I, II macro AUC {} {}; the six limb leads {} {}.</p>").format(
            number(two.macro_auc),
            _ci(two.average_ci95.get("auc")),
            number(six.macro_auc),
            _ci(six.average_ci95.get("auc")),
        )
    return note


def _subsets_body(study: LeadStudy, figure: Path | None) -> Markup:
    """The subsets' figure, their agreement with the explanation, their table and the greedy comparison."""
    body = figure_from_png(figure, "macro AUC per lead subset") if figure is not None else Markup("")
    header = [
        "subset",
        "leads",
        "validation macro AUC",
        "coalition AUC (12-lead model, validation)",
        "test macro AUC [95 % CI]",
        "test macro F1",
        "Shapley share",
    ] + [m.name for m in study.subsets[0].result.per_class]
    rows = [
        [
            s.name,
            " ".join(s.leads),
            number(s.val_macro_auc),
            number(s.coalition_val_auc),
            f"{number(s.result.macro_auc)} {_ci(s.result.average_ci95.get('auc'))}",
            number(s.result.average.get("f1")),
            number(s.shapley_share),
        ]
        + [number(m.auc) for m in s.result.per_class]
        for s in study.subsets
    ]
    rho = (
        "n/a (fewer than 3 subsets)"
        if study.spearman is None
        else f"{study.spearman:.2f} (p = {study.spearman_p:.3f}, {len(study.subsets)} subsets)"
    )
    coalition = "n/a" if study.coalition_spearman is None else f"{study.coalition_spearman:.2f}"
    body += Markup(
        "<p>Agreement of the explanation with the retrained models' validation macro AUC: Spearman "
        "{} for the Shapley share, {} for the coalition AUC (the 12-lead model with the other leads "
        "absent: {} baseline). Under the conditional baseline the limb leads are redundant players "
        "(two give all six), so each limb lead's share is small however much the limb leads matter "
        "together; their joint share is in the ranking section. Every choice here (the Shapley "
        "ranking, the best subset of a size) is made on the validation split; the test split is "
        "scored once and chooses nothing.</p>"
    ).format(rho, coalition, study.baseline)
    body += table_to_html(header, rows)
    greedy_header = [
        "size",
        "greedy (Shapley) leads",
        "its validation / test macro AUC",
        "best measured subset (on validation)",
        "its validation / test macro AUC",
    ]
    greedy_rows = [
        [
            g.size,
            " ".join(g.greedy_leads),
            f"{number(g.greedy_val_macro_auc)} / {number(g.greedy_macro_auc)}",
            g.best_measured or "none of that size",
            f"{number(g.best_measured_val_macro_auc)} / {number(g.best_measured_macro_auc)}",
        ]
        for g in study.greedy
    ]
    return body + table_to_html(greedy_header, greedy_rows)


def _ci(interval) -> str:
    return "" if not interval else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


@dataclass(frozen=True)
class LeadsRun:
    """``leads``: the study and the files written."""

    study: LeadStudy
    paths: tuple[Path, ...]

    def lines(self) -> list[str]:
        """What the CLI prints: the ranking per class, the subsets' macro AUC, the comparison, the files."""
        lines = [
            "lead ranking of the 12-lead model (mean Shapley value on each class's validation records, most first):"
        ]
        lines += [
            f"  {r.class_name:<8} ({r.n_records:>3} records) {' > '.join(r.order[:6])} ..." for r in self.study.rankings
        ]
        for s in sorted(self.study.subsets, key=lambda s: -len(s.leads)):
            auc = "n/a" if s.result.macro_auc is None else f"{s.result.macro_auc:.3f}"
            interval = _ci(s.result.average_ci95.get("auc"))
            val = "n/a" if s.val_macro_auc is None else f"{s.val_macro_auc:.3f}"
            lines.append(
                f"  {s.name:<14} {len(s.leads):>2} leads: validation macro AUC {val}, test {auc} {interval}  "
                f"Shapley share {s.shapley_share:.2f}"
            )
        if self.study.joint_shares:
            lines.append(
                "shares with the limb leads as one player: "
                + ", ".join(f"{player} {share:.0%}" for player, share in self.study.joint_shares.items())
            )
        if self.study.spearman is not None:
            lines.append(f"Spearman rho (Shapley share vs validation macro AUC): {self.study.spearman:.2f}")
        if self.study.coalition_spearman is not None:
            lines.append(
                f"Spearman rho (coalition AUC of the 12-lead model vs retrained validation macro AUC): "
                f"{self.study.coalition_spearman:.2f}"
            )
        return [*lines, "wrote " + ", ".join(str(p) for p in self.paths)]


def run_leads(cache_paths: Sequence[str | os.PathLike], out: str | os.PathLike, **options) -> LeadsRun:
    """`run_lead_study` then `write_lead_study`."""
    study = run_lead_study(cache_paths, out, **options)
    return LeadsRun(study, write_lead_study(study, out))
