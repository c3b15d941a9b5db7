"""How a bundle's decisions hold up: noise, acquisition faults and adversarial perturbations (``ecglens
robustness``), the study's first open question.

Each perturbation (`ecglens.perturb`) is applied to every chosen record of a split at the cache's rate,
before the bundle's length policy, exactly where real noise or a real fault would enter; the metrics are the
bundle's own (macro AUC, per-class AUC, F1 at its stored thresholds), so a curve starts at the clean score.
Adversarial inputs are made on the model input (`ecglens.models.attacks`) with budgets in microvolts, the
scale of real ECG noise, and compared with random noise of the same L-infinity norm. Plain PGD and FGSM are
high-frequency attacks; the smooth and band-limited attacks are ones an ECG could carry, and every attack is
also scored after the clinical 0.5-40 Hz filter, with each attack's spectrum. The flipping budgets are
survival curves: per class, positives and negatives sampled separately, the records never flipped censored
at the largest budget tried.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ecglens.bundle.meta import BundleMeta
from ecglens.bundle.weights import load_model
from ecglens.data import SPLITS, CacheDataset, Item, split_caches
from ecglens.data.cache import EcgCache, open_caches
from ecglens.metrics import evaluate_predictions
from ecglens.models.attacks import band_limiter, fgsm, gaussian_smoother, pgd, shaped_pgd
from ecglens.models.inference import class_probabilities
from ecglens.perturb import NotApplicable, Perturbation, default_suite
from ecglens.preprocess import CLINICAL_BAND_HZ, batches_by_length, clinical_filter
from ecglens.util.progress import Progress, bar, note

UV = 1e-3
"""One microvolt in the signals' unit (mV)."""
LINF_BUDGETS_UV = (5.0, 10.0, 25.0, 50.0)
SMOOTH_SIGMA_MS = 10.0
"""The smooth attack's Gaussian kernel: its gain is 4 % at 40 Hz and 0.7 % at 50 Hz."""
ATTACKS = {
    "random": "random sign noise",
    "fgsm": "FGSM (high-frequency)",
    "pgd": "PGD (high-frequency)",
    "pgd-l2": "PGD L2 (high-frequency)",
    "smooth": f"smooth PGD (Gaussian, sigma {SMOOTH_SIGMA_MS:g} ms)",
    "pgd-band": "band-limited PGD (0.5-40 Hz)",
}
FLIP_GRID_UV = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0)
FLIP_ATTACKS = ("smooth", "pgd-band", "pgd")
"""Attacks whose flipping budgets can be searched (restricted to one class)."""


@dataclass(frozen=True)
class ClassScore:
    """One class under one condition: AUC and F1 at the bundle's threshold (None where undefined)."""

    name: str
    auc: float | None
    f1: float | None


@dataclass(frozen=True)
class ConditionResult:
    """The bundle's scores under one condition (clean, a perturbation at a severity, an attack at a budget).

    Attributes:
        family: ``clean``, ``noise``, ``faults`` or ``adversarial``.
        kind: the perturbation or attack (``gaussian``, ``reversal``, ``pgd``, ``random``, ...).
        level: its severity (dB, factor, leads, %, s, or microvolts for attacks).
        label: how reports name it.
        macro_auc: macro AUC over classes with positives and negatives.
        macro_f1: macro F1 at the bundle's thresholds.
        changed: fraction of (record, class) decisions that differ from the clean decisions.
        per_class: AUC and F1 per class.
        note: why a condition was not applicable, if it was not.
    """

    family: str
    kind: str
    level: float
    label: str
    macro_auc: float | None
    macro_f1: float | None
    changed: float | None
    per_class: tuple[ClassScore, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class FlipBudget:
    """How much one attack needs to flip one class's decision: a survival curve over `FLIP_GRID_UV`.

    Records are drawn separately among those the model decides positive and negative for the class (clean),
    so a rare class is measured on its positives too. A record's budget is the smallest on the grid at which
    the attack flips its decision; None means not flipped at the largest budget tried (censored there).

    Attributes:
        name: the class.
        attack: the attack (a key of `ATTACKS`).
        threshold: the class's decision threshold (a jump over a tiny threshold is cheap).
        grid_uv: the budgets tried.
        decided: per record, whether the clean decision was positive.
        budgets_uv: per record, the flipping budget or None (censored).
    """

    name: str
    attack: str
    threshold: float
    grid_uv: tuple[float, ...]
    decided: tuple[bool, ...]
    budgets_uv: tuple[float | None, ...]

    @property
    def n_records(self) -> int:
        """Records searched."""
        return len(self.budgets_uv)

    @property
    def n_positive(self) -> int:
        """Records decided positive (clean)."""
        return sum(self.decided)

    @property
    def n_flipped(self) -> int:
        """Records flipped within the largest budget."""
        return sum(b is not None for b in self.budgets_uv)

    def survival(self, decided: bool | None = None) -> tuple[float, ...]:
        """Share of records still unflipped at each budget of the grid (all records, or one side)."""
        chosen = [b for b, d in zip(self.budgets_uv, self.decided, strict=True) if decided is None or d == decided]
        if not chosen:
            return tuple(np.nan for _ in self.grid_uv)
        return tuple(float(np.mean([b is None or b > eps for b in chosen])) for eps in self.grid_uv)

    def median_uv(self, decided: bool | None = None) -> float | None:
        """The median read from the curve: the smallest budget with at most half the records unflipped; None
        when the curve stays above one half (the median is beyond the largest budget) or there are no records."""
        for eps, alive in zip(self.grid_uv, self.survival(decided), strict=True):
            if alive <= 0.5:
                return eps
        return None

    def median_text(self, decided: bool | None = None) -> str:
        """The median as a report prints it: ``25 uV``, ``>250 uV``, or ``n/a`` without records."""
        if not any(decided is None or d == decided for d in self.decided):
            return "n/a"
        median = self.median_uv(decided)
        return f">{self.grid_uv[-1]:g} uV" if median is None else f"{median:g} uV"

    def to_dict(self) -> dict:
        """Plain data, with the curves and medians."""
        return {
            **asdict(self),
            "n_records": self.n_records,
            "n_positive": self.n_positive,
            "n_flipped": self.n_flipped,
            "survival": list(self.survival()),
            "survival_positive": list(self.survival(True)),
            "survival_negative": list(self.survival(False)),
            "median": self.median_text(),
            "median_positive": self.median_text(True),
            "median_negative": self.median_text(False),
        }


@dataclass(frozen=True)
class AttackSpectrum:
    """Where an attack's perturbation puts its power: the mean power spectral density (Welch) over records and
    leads of adversarial minus clean, at one budget, and its share above the clinical filter's upper edge."""

    kind: str
    label: str
    eps_uv: float
    frequencies_hz: tuple[float, ...]
    power: tuple[float, ...]
    share_above_40hz: float


@dataclass(frozen=True)
class AdversarialExample:
    """One record before and after an attack, for the figure (arrays stay out of the JSON)."""

    record_id: str
    class_name: str
    eps_uv: float
    probability_before: float
    probability_after: float
    original: np.ndarray = field(repr=False)
    perturbed: np.ndarray = field(repr=False)
    attack: str = "pgd"


@dataclass(frozen=True)
class RobustnessResult:
    """Everything ``ecglens robustness`` measured."""

    bundle: str
    split: str
    n_records: int
    class_names: tuple[str, ...]
    sampling_rate_hz: float
    conditions: tuple[ConditionResult, ...]
    flip_budgets: tuple[FlipBudget, ...]
    transfer: tuple[ConditionResult, ...]
    transfer_bundle: str | None
    example: AdversarialExample | None
    seconds: float
    spectra: tuple[AttackSpectrum, ...] = ()
    left_out: tuple[str, ...] = ()
    """Classes left out of the flipping budgets, with the reason."""

    @property
    def clean(self) -> ConditionResult:
        """The unperturbed scores."""
        return self.conditions[0]

    def to_dict(self) -> dict:
        """Plain data for ``robustness.json`` (without the example's arrays)."""
        data = asdict(self)
        data["flip_budgets"] = [f.to_dict() for f in self.flip_budgets]
        if self.example is not None:
            data["example"] = {k: v for k, v in data["example"].items() if k not in ("original", "perturbed")}
        return data

    def rows(self) -> list[dict]:
        """One row per condition and class (``class`` = ``macro`` for the averages), for ``robustness.csv``."""
        rows = []
        for group, conditions in (("model", self.conditions), ("transfer", self.transfer)):
            for c in conditions:
                base = {"evaluated": group, "family": c.family, "kind": c.kind, "level": c.level, "label": c.label}
                rows.append(
                    {
                        **base,
                        "class": "macro",
                        "auc": c.macro_auc,
                        "f1": c.macro_f1,
                        "changed": c.changed,
                        "note": c.note,
                    }
                )
                rows += [{**base, "class": s.name, "auc": s.auc, "f1": s.f1} for s in c.per_class]
        return rows


def _score(
    kind: str,
    family: str,
    level: float,
    label: str,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    meta: BundleMeta,
    clean_decisions: np.ndarray | None,
) -> ConditionResult:
    result = evaluate_predictions(
        y_true,
        probabilities,
        np.asarray(meta.thresholds),
        label,
        meta.class_names,
        n_bootstrap=0,
        never=[name for name, _ in meta.not_validated],
    )
    decisions = meta.decided(probabilities)
    changed = None if clean_decisions is None else float(np.mean(decisions != clean_decisions))
    return ConditionResult(
        family,
        kind,
        level,
        label,
        result.macro_auc,
        result.average.get("f1"),
        changed,
        tuple(ClassScore(m.name, m.auc, m.f1) for m in result.per_class),
    )


def _inputs(dataset: CacheDataset) -> list[np.ndarray]:
    return [dataset[i][0].numpy() for i in range(len(dataset))]


def _attack_batches(
    model: torch.nn.Module,
    inputs: Sequence[np.ndarray],
    reference: np.ndarray,
    eps_mv: float,
    method: str,
    batch_size: int,
    device: torch.device,
    sampling_rate_hz: float,
    classes: Sequence[int] | None = None,
    steps: int = 10,
    seed: int = 0,
) -> list[np.ndarray]:
    """Adversarial (or, for ``random``, random-sign) versions of every input, batched by equal length."""
    out: list[np.ndarray] = [np.empty(0)] * len(inputs)
    generator = torch.Generator().manual_seed(seed)
    for chunk in batches_by_length([x.shape[-1] for x in inputs], batch_size):
        x = torch.from_numpy(np.stack([inputs[i] for i in chunk])).to(device)
        target = torch.from_numpy(reference[chunk])
        if method == "random":
            signs = torch.randint(0, 2, x.shape, generator=generator).to(x) * 2 - 1
            adversarial = x + eps_mv * signs
        elif method == "fgsm":
            adversarial = fgsm(model, x, target, eps_mv, classes).inputs
        elif method == "smooth":
            shape = gaussian_smoother(SMOOTH_SIGMA_MS / 1000 * sampling_rate_hz)
            adversarial = shaped_pgd(model, x, target, eps_mv, shape, steps, classes=classes).inputs
        elif method == "pgd-band":
            shape = band_limiter(sampling_rate_hz, *CLINICAL_BAND_HZ)
            adversarial = shaped_pgd(model, x, target, eps_mv, shape, steps, classes=classes).inputs
        else:
            norm = "l2" if method == "pgd-l2" else "linf"
            budget = eps_mv * float(np.sqrt(x[0].numel())) if norm == "l2" else eps_mv
            adversarial = pgd(model, x, target, budget, norm, steps, classes=classes).inputs
        for i, row in zip(chunk, adversarial.detach().cpu().numpy(), strict=True):
            out[i] = row
    return out


def attack_spectrum(
    kind: str, eps_uv: float, clean: Sequence[np.ndarray], adversarial: Sequence[np.ndarray], sampling_rate_hz: float
) -> AttackSpectrum:
    """The mean Welch power spectral density of adversarial minus clean over records and leads."""
    from scipy.signal import welch

    powers: list[np.ndarray] = []
    frequencies = np.zeros(0)
    for before, after in zip(clean, adversarial, strict=True):
        frequencies, power = welch(
            np.asarray(after, np.float64) - before, fs=sampling_rate_hz, nperseg=min(256, before.shape[-1]), axis=-1
        )
        powers.append(power.mean(axis=0))
    mean = np.mean(powers, axis=0)
    total = float(mean.sum())
    above = float(mean[frequencies > CLINICAL_BAND_HZ[1]].sum() / total) if total > 0 else 0.0
    return AttackSpectrum(kind, ATTACKS[kind], eps_uv, tuple(frequencies.tolist()), tuple(mean.tolist()), above)


def run_robustness(
    bundle: str | os.PathLike,
    cache_paths: Sequence[str | os.PathLike],
    split: str = "test",
    n_records: int | None = 200,
    suite: Sequence[Perturbation] | None = None,
    budgets_uv: Sequence[float] = LINF_BUDGETS_UV,
    n_flip: int = 10,
    pgd_steps: int = 10,
    transfer_bundle: str | os.PathLike | None = None,
    attacks: Sequence[str] = tuple(ATTACKS),
    device: str = "auto",
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
    flip_attack: str = "smooth",
    filtered: bool = True,
) -> RobustnessResult:
    """Score a bundle on a split under every perturbation of ``suite`` and under attacks.

    Args:
        bundle: the bundle.
        cache_paths: caches at the bundle's rate (split as the bundle was trained).
        split: ``test`` (default), ``val`` or ``train``.
        n_records: at most this many records of the split (a seeded choice), None for all.
        suite: perturbations (default `ecglens.perturb.default_suite`).
        budgets_uv: L-infinity budgets of every attack and of random sign noise (L2 PGD: scaled to the same RMS).
        n_flip: per class, records decided positive, and as many decided negative, on which the smallest
            flipping budget is searched (0 to skip).
        pgd_steps: PGD iterations.
        transfer_bundle: a second bundle (another seed) scored on the first one's PGD inputs.
        attacks: which of `ATTACKS` to run at each budget.
        device: torch device name.
        batch_size: records per batch.
        seed: record choice and random noise.
        progress: progress bar and stage lines.
        flip_attack: the attack of the flipping budgets, one of `FLIP_ATTACKS`.
        filtered: also score every attack, and the clean records, after the clinical 0.5-40 Hz filter.
    """
    started = time.perf_counter()
    if flip_attack not in FLIP_ATTACKS:
        raise ValueError(f"unknown flipping attack {flip_attack!r}; choose from {', '.join(FLIP_ATTACKS)}")
    if unknown := sorted(set(attacks) - set(ATTACKS)):
        raise ValueError(f"unknown attack {', '.join(unknown)}; choose from {', '.join(ATTACKS)}")
    model, meta = load_model(bundle, device)
    caches: list[EcgCache] = open_caches(cache_paths, meta.sampling_rate_hz)
    items = _chosen_items(caches, meta, split, n_records, seed)
    suite = default_suite() if suite is None else tuple(suite)
    dataset = functools.partial(
        CacheDataset, caches, items, meta.policy, False, meta.lead_names, seed=seed, label_map=meta.label_map
    )
    clean_set = dataset()
    scorer = _Scorer(model, meta, clean_set.labels, _inputs(clean_set), batch_size)
    total = len(suite) + len(attacks) * len(budgets_uv)  # the one stage line is the summary below
    counter = bar(total=total, desc="robustness", unit="condition", enabled=progress, line=False)
    conditions = [scorer.score("clean", "clean", 0.0, "clean", scorer.clean_probabilities, against_clean=False)]
    conditions += _perturbation_conditions(scorer, lambda p: dataset(perturbation=p), suite, counter)
    plan = _AttackPlan(tuple(attacks), tuple(budgets_uv), pgd_steps, seed, filtered, flip_attack, n_flip)
    adversarial = _adversarial(scorer, clean_set, plan, counter, transfer_bundle, bundle, device)
    counter.close()
    conditions += adversarial.conditions
    if progress:
        note(
            f"{len(items)} records, {len(conditions)} conditions in {time.perf_counter() - started:.0f} s", "robustness"
        )
    other = None if transfer_bundle is None else str(transfer_bundle)
    return RobustnessResult(
        str(bundle),
        split,
        len(items),
        meta.class_names,
        meta.sampling_rate_hz,
        tuple(conditions),
        adversarial.flips,
        adversarial.transfer,
        other,
        adversarial.example,
        time.perf_counter() - started,
        adversarial.spectra,
        adversarial.left_out,
    )


@dataclass(frozen=True)
class _AttackPlan:
    """Which attacks run at which budgets, with their settings (`run_robustness`'s arguments)."""

    attacks: tuple[str, ...]
    budgets_uv: tuple[float, ...]
    pgd_steps: int
    seed: int
    filtered: bool
    flip_attack: str
    n_flip: int


@dataclass(frozen=True)
class _Adversarial:
    """What the attacks found: their rows, spectra, transfer rows, flipping budgets and the example drawn."""

    conditions: tuple[ConditionResult, ...]
    spectra: tuple[AttackSpectrum, ...]
    transfer: tuple[ConditionResult, ...]
    flips: tuple[FlipBudget, ...]
    left_out: tuple[str, ...]
    example: AdversarialExample | None


def _adversarial(
    scorer: _Scorer,
    clean_set: CacheDataset,
    plan: _AttackPlan,
    counter: Progress,
    transfer_bundle: str | os.PathLike | None,
    bundle: str | os.PathLike,
    device: str,
) -> _Adversarial:
    """The clean records after the clinical filter, every attack at every budget (and filtered), the transfer to a
    second model, the flipping budgets and the example."""
    rows = []
    if plan.filtered and plan.attacks:
        filtered = scorer.probabilities(scorer.clean_inputs, filtered=True)
        rows.append(scorer.score("clean", "filtered", 0.0, f"clean, then the {_BAND}", filtered))
    attacked, spectra, pgd_inputs = _attack_conditions(
        scorer,
        plan.attacks,
        plan.budgets_uv,
        plan.pgd_steps,
        plan.seed,
        plan.filtered,
        keep_pgd=transfer_bundle is not None,
        counter=counter,
    )
    transfer = (
        [] if transfer_bundle is None else _transfer_conditions(scorer, bundle, transfer_bundle, pgd_inputs, device)
    )
    model, meta = scorer.model, scorer.meta
    torch_device = next(model.parameters()).device
    flips: list[FlipBudget] = []
    left_out: list[str] = []
    if plan.n_flip:
        flips, left_out = _flip_budgets(
            model,
            meta,
            scorer.clean_inputs,
            scorer.reference,
            plan.n_flip,
            plan.flip_attack,
            scorer.batch_size,
            torch_device,
            plan.pgd_steps,
            plan.seed,
        )
    example = _example(
        model,
        meta,
        clean_set,
        scorer.clean_inputs,
        scorer.clean_probabilities,
        scorer.reference,
        plan.budgets_uv,
        torch_device,
        plan.pgd_steps,
    )
    return _Adversarial(tuple(rows + attacked), tuple(spectra), tuple(transfer), tuple(flips), tuple(left_out), example)


_BAND = f"{CLINICAL_BAND_HZ[0]:g}-{CLINICAL_BAND_HZ[1]:g} Hz filter"


def _chosen_items(
    caches: Sequence[EcgCache], meta: BundleMeta, split: str, n_records: int | None, seed: int
) -> list[Item]:
    """The split's records (as the bundle was trained), or a seeded choice of ``n_records`` of them."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    items = list(split_caches(caches, meta.split, label_map=meta.label_map)[split])
    if not items:
        raise ValueError(f"the {split} split of these caches is empty")
    if n_records is not None and n_records < len(items):
        picks = np.sort(np.random.default_rng(seed).choice(len(items), n_records, replace=False))
        items = [items[i] for i in picks]
    return items


class _Scorer:
    """A model's scores of the chosen records under one condition, against their labels and its clean decisions."""

    def __init__(
        self,
        model: torch.nn.Module,
        meta: BundleMeta,
        y_true: np.ndarray,
        clean_inputs: Sequence[np.ndarray],
        batch_size: int,
    ) -> None:
        self.model, self.meta, self.y_true, self.batch_size = model, meta, y_true, batch_size
        self.clean_inputs = clean_inputs
        self.clean_probabilities = class_probabilities(model, clean_inputs, batch_size)
        self.clean_decisions = meta.decided(self.clean_probabilities)
        self.reference = self.clean_decisions.astype(np.float32)
        """What attacks push away from: the model's own clean decisions."""

    def probabilities(self, inputs: Sequence[np.ndarray], filtered: bool = False) -> np.ndarray:
        """The model's probabilities of ``inputs`` (after the clinical filter with ``filtered``)."""
        rate = self.meta.sampling_rate_hz
        shown = [clinical_filter(x, rate) for x in inputs] if filtered else inputs
        return class_probabilities(self.model, shown, self.batch_size)

    def score(
        self, kind: str, family: str, level: float, label: str, probabilities: np.ndarray, against_clean: bool = True
    ) -> ConditionResult:
        """A condition's row, with the decisions changed from the clean ones (not counted without
        ``against_clean``)."""
        return _score(
            kind,
            family,
            level,
            label,
            self.y_true,
            probabilities,
            self.meta,
            self.clean_decisions if against_clean else None,
        )


def _perturbation_conditions(
    scorer: _Scorer, dataset: Callable[[Perturbation], CacheDataset], suite: Sequence[Perturbation], counter: Progress
) -> list[ConditionResult]:
    """One row per perturbation of the suite (those that cannot apply to these records say why)."""
    rows = []
    for perturbation in suite:
        try:
            inputs = _inputs(dataset(perturbation))
        except NotApplicable as reason:
            rows.append(
                ConditionResult(
                    perturbation.family,
                    perturbation.kind,
                    perturbation.level,
                    perturbation.label,
                    None,
                    None,
                    None,
                    note=f"not applicable: {reason}",
                )
            )
        else:
            rows.append(
                scorer.score(
                    perturbation.kind,
                    perturbation.family,
                    perturbation.level,
                    perturbation.label,
                    scorer.probabilities(inputs),
                )
            )
        counter.update()
    return rows


def _attack_conditions(
    scorer: _Scorer,
    attacks: Sequence[str],
    budgets_uv: Sequence[float],
    pgd_steps: int,
    seed: int,
    filtered: bool,
    keep_pgd: bool,
    counter: Progress,
) -> tuple[list[ConditionResult], list[AttackSpectrum], dict[float, list[np.ndarray]]]:
    """One row per attack and budget (and after the clinical filter), the spectrum of each attack at the budget
    nearest 25 uV, and the PGD inputs when a second model will score them."""
    model, rate = scorer.model, scorer.meta.sampling_rate_hz
    device = next(model.parameters()).device
    rows: list[ConditionResult] = []
    pgd_inputs: dict[float, list[np.ndarray]] = {}
    spectra: list[AttackSpectrum] = []
    shown_budget = min(budgets_uv, key=lambda b: abs(np.log(b / 25.0))) if budgets_uv else None
    for eps in budgets_uv:
        for method in attacks:
            adversarial = _attack_batches(
                model,
                scorer.clean_inputs,
                scorer.reference,
                eps * UV,
                method,
                scorer.batch_size,
                device,
                rate,
                steps=pgd_steps,
                seed=seed,
            )
            if method == "pgd" and keep_pgd:  # kept only for the second model
                pgd_inputs[eps] = adversarial
            if eps == shown_budget:
                spectra.append(attack_spectrum(method, eps, scorer.clean_inputs, adversarial, rate))
            label = f"{ATTACKS[method]}, {eps:g} uV" + (" RMS" if method == "pgd-l2" else " L-inf")
            rows.append(scorer.score(method, "adversarial", eps, label, scorer.probabilities(adversarial)))
            if filtered:
                rows.append(
                    scorer.score(
                        method,
                        "adversarial, then filtered",
                        eps,
                        f"{label}, then the {_BAND}",
                        scorer.probabilities(adversarial, filtered=True),
                    )
                )
            counter.update()
    return rows, spectra, pgd_inputs


def _transfer_conditions(
    scorer: _Scorer,
    bundle: str | os.PathLike,
    transfer_bundle: str | os.PathLike,
    pgd_inputs: Mapping[float, Sequence[np.ndarray]],
    device: str,
) -> list[ConditionResult]:
    """A second model (another seed) on the clean records and on the first model's PGD inputs."""
    other, other_meta = load_model(transfer_bundle, device)
    if other_meta.class_names != scorer.meta.class_names or other_meta.input_spec != scorer.meta.input_spec:
        raise ValueError(f"{transfer_bundle}: another label space or input than {bundle}: attacks do not transfer")
    other_clean = class_probabilities(other, scorer.clean_inputs, scorer.batch_size)
    other_decisions = other_meta.decided(other_clean)
    rows = [_score("clean", "clean", 0.0, "clean (second model)", scorer.y_true, other_clean, other_meta, None)]
    for eps, adversarial in pgd_inputs.items():
        rows.append(
            _score(
                "pgd",
                "adversarial",
                eps,
                f"PGD {eps:g} uV made on the first model",
                scorer.y_true,
                class_probabilities(other, adversarial, scorer.batch_size),
                other_meta,
                other_decisions,
            )
        )
    return rows


def _flip_budgets(
    model: torch.nn.Module,
    meta: BundleMeta,
    inputs: Sequence[np.ndarray],
    reference: np.ndarray,
    n_side: int,
    attack: str,
    batch_size: int,
    device: torch.device,
    steps: int,
    seed: int,
) -> tuple[list[FlipBudget], list[str]]:
    """Per class, the smallest budget of `FLIP_GRID_UV` at which ``attack`` on that class alone flips its decision,
    on up to ``n_side`` records decided positive and ``n_side`` decided negative (a seeded draw per class). A class
    that is not validated has no decision to flip and is left out, with the reason."""
    budgets, left_out = [], []
    thresholds = np.asarray(meta.thresholds)
    unknown = dict(meta.not_validated)
    for c, name in enumerate(meta.class_names):
        if name in unknown:
            left_out.append(f"{name}: {unknown[name]}")
            continue
        rng = np.random.default_rng([seed, c])
        chosen = []
        for side in (True, False):
            pool = np.flatnonzero(reference[:, c].astype(bool) == side)
            chosen += sorted(rng.choice(pool, min(n_side, len(pool)), replace=False).tolist())
        found: dict[int, float | None] = dict.fromkeys(chosen)
        for eps in FLIP_GRID_UV:
            todo = [i for i in chosen if found[i] is None]
            if not todo:
                break
            adversarial = _attack_batches(
                model,
                [inputs[i] for i in todo],
                reference[todo],
                eps * UV,
                attack,
                batch_size,
                device,
                meta.sampling_rate_hz,
                classes=[c],
                steps=steps,
            )
            after = class_probabilities(model, adversarial, batch_size)[:, c] >= thresholds[c]
            for i, flipped in zip(todo, after != reference[todo, c].astype(bool), strict=True):
                if flipped:
                    found[i] = eps
        budgets.append(
            FlipBudget(
                name,
                attack,
                float(thresholds[c]),
                FLIP_GRID_UV,
                tuple(bool(reference[i, c]) for i in chosen),
                tuple(found[i] for i in chosen),
            )
        )
    return budgets, left_out


def _example(
    model, meta, clean_set, inputs, probabilities, reference, budgets_uv, device, steps, attack="smooth"
) -> AdversarialExample | None:
    """An attack a reader can see: ``attack`` (smooth PGD, which an ECG could carry, by default) on the most common
    decided class, on the record decided for it with the smallest margin over its threshold, at the smallest budget
    that flips that decision (else the largest budget)."""
    if not inputs or not budgets_uv:
        return None
    thresholds = np.asarray(meta.thresholds)
    c = int(np.argmax(reference.sum(axis=0))) if reference.any() else int(np.argmax(probabilities.mean(axis=0)))
    margin = np.abs(probabilities[:, c] - thresholds[c])
    i = (
        int(np.argmin(np.where(reference[:, c] > 0, margin, np.inf)))
        if reference[:, c].any()
        else int(np.argmin(margin))
    )
    for eps in sorted(budgets_uv):
        adversarial = _attack_batches(
            model,
            [inputs[i]],
            reference[[i]],
            eps * UV,
            attack,
            1,
            device,
            meta.sampling_rate_hz,
            classes=[c],
            steps=steps,
        )[0]
        after = float(class_probabilities(model, [adversarial], 1)[0, c])
        if (after >= thresholds[c]) != bool(reference[i, c]) or eps == max(budgets_uv):
            record_id = str(clean_set.caches[clean_set.items[i].cache].index["record_id"].iloc[clean_set.items[i].row])
            return AdversarialExample(
                record_id, meta.class_names[c], eps, float(probabilities[i, c]), after, inputs[i], adversarial, attack
            )
    return None
