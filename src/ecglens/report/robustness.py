"""The robustness report: curves of the bundle's scores against severity, an adversarial example on ECG paper,
and the HTML section that ``ecglens robustness``, the demo and the reproduce reports include."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from ecglens.report.ecgpaper import paper_grid
from ecglens.report.figures import save_figure
from ecglens.report.html import figure_from_png, number, page, strict_json, table_to_html
from ecglens.robustness import ATTACKS, AdversarialExample, ConditionResult, RobustnessResult
from ecglens.util.atomic import atomic_open, write_json, write_text


def _auc(value: float | None) -> float:
    return np.nan if value is None else value


def curves_figure(result: RobustnessResult) -> Figure:
    """Macro AUC against severity: noise kinds against SNR, faults one bar each, attacks against budget."""
    clean = _auc(result.clean.macro_auc)
    families = {f: [c for c in result.conditions if c.family == f] for f in ("noise", "faults", "adversarial")}
    shown = [f for f, rows in families.items() if rows]
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(5.2 * max(len(shown), 1), 4.2), squeeze=False)
    for axis, family in zip(axes[0], shown, strict=False):
        rows = families[family]
        bars = family == "faults" or len({c.level for c in rows}) < 2  # one severity: a bar per condition
        if bars:
            _bars_panel(axis, rows, clean)
        else:
            _severity_panel(axis, family, rows, result.conditions, clean)
        axis.set_title(family, fontsize=10)
        axis.grid(alpha=0.3)
        if family == "adversarial":  # many lines: the legend goes beside the panel, not over it
            axis.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            axis.legend(fontsize=7, loc="lower right" if bars else "lower left")
    fig.suptitle(
        f"{result.bundle}: macro AUC under perturbation ({result.n_records} {result.split} records)", fontsize=10
    )
    fig.tight_layout()
    return fig


def _bars_panel(axis: Axes, rows: Sequence[ConditionResult], clean: float) -> None:
    """One bar per condition (faults, or a family measured at one severity), the clean AUC as a dashed line."""
    labels = [c.label.replace(" noise at ", " ") for c in rows]
    values = [_auc(c.macro_auc) for c in rows]
    axis.barh(range(len(rows)), values, color=["0.7" if np.isnan(v) else "C1" for v in values])
    axis.set_yticks(range(len(rows)), labels, fontsize=7)
    axis.invert_yaxis()
    axis.axvline(clean, color="black", ls="--", lw=1, label=f"clean {clean:.3f}")
    axis.set_xlabel("macro AUC")
    known = [v for v in (*values, clean) if not np.isnan(v)]
    axis.set_xlim(min([0.4, *(v - 0.05 for v in known)]), 1.0)


def _severity_panel(
    axis: Axes, family: str, rows: Sequence[ConditionResult], conditions: Sequence[ConditionResult], clean: float
) -> None:
    """A line per kind against its severity (SNR for noise, budget for attacks, then after the clinical filter)."""
    kinds = list(dict.fromkeys(c.kind for c in rows))
    absent = [k for k in kinds if all(c.macro_auc is None for c in rows if c.kind == k)]
    if absent:  # no line and no legend entry for what could not be measured: say so on the axis
        axis.text(
            0.98,
            0.02,
            f"not applicable here: {', '.join(absent)}",
            transform=axis.transAxes,
            fontsize=7,
            ha="right",
            va="bottom",
            color="0.3",
        )
    for k, kind in enumerate(k for k in kinds if k not in absent):
        points = sorted((c.level, _auc(c.macro_auc)) for c in rows if c.kind == kind)
        label = kind if family == "noise" else ATTACKS.get(kind, kind)
        axis.plot(*zip(*points, strict=True), "o-", ms=4, lw=1.5, color=f"C{k}", label=label)
        after = sorted(
            (c.level, _auc(c.macro_auc))
            for c in conditions
            if c.family == "adversarial, then filtered" and c.kind == kind
        )
        if family == "adversarial" and after:
            axis.plot(
                *zip(*after, strict=True),
                "s--",
                ms=3,
                lw=1,
                color=f"C{k}",
                alpha=0.7,
                label="    then the 0.5-40 Hz filter",
            )
    axis.axhline(clean, color="black", ls="--", lw=1, label=f"clean {clean:.3f}")
    filtered = [c.macro_auc for c in conditions if c.family == "filtered" and c.macro_auc is not None]
    if family == "adversarial" and filtered:
        axis.axhline(
            filtered[0],
            color="0.4",
            ls=":",
            lw=1,
            label=f"clean, then the filter {filtered[0]:.3f}",
        )
    axis.set_ylabel("macro AUC")
    if family == "noise":
        axis.set_xlabel("signal-to-noise ratio (dB)")
        axis.invert_xaxis()
    else:
        axis.set_xscale("log")
        budgets = sorted({c.level for c in rows})
        axis.set_xticks(budgets, [f"{b:g}" for b in budgets])
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_xlabel("budget (microvolts)")
    axis.axhline(0.5, color="0.5", ls=":", lw=1)


def spectra_figure(result: RobustnessResult) -> Figure:
    """Each attack's mean power spectral density (adversarial minus clean), with the share above 40 Hz."""
    fig, axis = plt.subplots(figsize=(7.5, 4.8))
    for k, spectrum in enumerate(result.spectra):
        power = np.maximum(np.asarray(spectrum.power), 1e-30)
        axis.semilogy(
            spectrum.frequencies_hz,
            power,
            color=f"C{k}",
            lw=1.4,
            label=f"{spectrum.label}: {spectrum.share_above_40hz:.1%} above 40 Hz",
        )
    axis.axvspan(40, result.sampling_rate_hz / 2, color="0.85", zorder=0, label="removed by the 0.5-40 Hz filter")
    axis.set_xlim(0, result.sampling_rate_hz / 2)
    peak = max((max(s.power) for s in result.spectra), default=1.0)
    positive = [v for s in result.spectra for v in s.power if v > 0]
    axis.set_ylim(max(min(positive, default=peak * 1e-7), peak * 1e-7), peak * 3)
    axis.set_xlabel("frequency (Hz)")
    axis.set_ylabel("power (mV^2/Hz)")
    budget = result.spectra[0].eps_uv if result.spectra else 0
    axis.set_title(f"Where each attack puts its power: mean spectrum of the perturbation at {budget:g} uV", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.tight_layout()
    return fig


def survival_figure(result: RobustnessResult) -> Figure:
    """Per class, the share of records still unflipped against the budget (records decided positive solid,
    negative dashed), censored at the largest budget."""
    budgets = result.flip_budgets
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for axis, side, name in ((axes[0], True, "decided positive"), (axes[1], False, "decided negative")):
        for k, flip in enumerate(budgets):
            n = sum(d == side for d in flip.decided)
            if n:
                axis.step(
                    flip.grid_uv,
                    flip.survival(side),
                    where="post",
                    color=f"C{k % 10}",
                    lw=1.4,
                    label=f"{flip.name} (n={n}, threshold {flip.threshold:.2f})",
                )
        axis.axhline(0.5, color="0.5", ls=":", lw=1)
        axis.set_xscale("log")
        grid = budgets[0].grid_uv if budgets else ()
        axis.set_xticks(grid, [f"{g:g}" for g in grid])
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_ylim(-0.02, 1.02)
        axis.set_xlabel("L-inf budget (uV)")
        axis.set_title(f"records {name} for the class", fontsize=9)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6.5, loc="lower left")
    axes[0].set_ylabel("share of records not yet flipped")
    attack = ATTACKS.get(budgets[0].attack, budgets[0].attack) if budgets else ""
    fig.suptitle(
        f"Flipping budgets, {attack}: records not flipped at {budgets[0].grid_uv[-1]:g} uV stay at the "
        f"right edge (censored)"
        if budgets
        else "no flipping budgets",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def adversarial_figure(example: AdversarialExample, sampling_rate_hz: float, lead_names: Sequence[str]) -> Figure:
    """The attacked record on ECG paper, original and perturbed overlaid on the three leads the attack changed
    most, and their difference in microvolts on its own scale, so a reader sees how small it is."""
    delta_uv = (example.perturbed - example.original) * 1000.0
    leads = np.argsort(-np.abs(delta_uv).max(axis=1))[:3]
    t = np.arange(example.original.shape[1]) / sampling_rate_hz
    seconds = min(t[-1] if len(t) else 0.0, 5.0)
    shown = t <= seconds
    fig, axes = plt.subplots(4, 1, figsize=(10, 8.5), gridspec_kw={"height_ratios": [1, 1, 1, 1.1]})
    for axis, lead in zip(axes[:3], leads, strict=True):
        original, perturbed = example.original[lead][shown], example.perturbed[lead][shown]
        low = float(min(original.min(), perturbed.min(), -0.5)) - 0.1
        high = float(max(original.max(), perturbed.max(), 0.5)) + 0.1
        paper_grid(axis, seconds, low, high)
        axis.plot(t[shown], original, color="black", lw=1.0, label="original")
        axis.plot(t[shown], perturbed, color="C3", lw=0.9, ls="--", label="adversarial")
        axis.set_xlim(0, seconds)
        axis.set_ylim(low, high)
        axis.set_aspect(0.4)  # 25 mm/s and 10 mm/mV: 1 s is 2.5 x 1 mV
        axis.set_ylabel(f"{lead_names[lead]} (mV)", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.legend(fontsize=7, loc="upper right")
    for k, lead in enumerate(leads):
        axes[3].plot(t[shown], delta_uv[lead][shown], lw=0.6, alpha=0.85, color=f"C{k}", label=lead_names[lead])
    axes[3].legend(fontsize=7, loc="upper right", ncol=3)
    axes[3].set_ylim(-1.2 * example.eps_uv, 1.2 * example.eps_uv)
    axes[3].axhline(example.eps_uv, color="0.4", ls=":", lw=1)
    axes[3].axhline(-example.eps_uv, color="0.4", ls=":", lw=1)
    axes[3].set_xlim(0, seconds)
    axes[3].set_ylabel("difference (uV)", fontsize=8)
    axes[3].set_xlabel("time (s)", fontsize=8)
    axes[3].set_title(
        f"adversarial minus original in the leads above (dotted: the budget, "
        f"+-{example.eps_uv:g} uV; one small box of the paper above is 100 uV)",
        fontsize=8,
    )
    fig.suptitle(
        f"Record {example.record_id}: {ATTACKS.get(example.attack, example.attack)} with an L-inf budget of "
        f"{example.eps_uv:g} uV on "
        f"{example.class_name}: probability {example.probability_before:.2f} -> "
        f"{example.probability_after:.2f} (first {seconds:g} s)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def robustness_section(
    result: RobustnessResult,
    curves_png: Path | None,
    example_png: Path | None,
    spectra_png: Path | None = None,
    survival_png: Path | None = None,
) -> Markup:
    """The report section: the key numbers, the curves, the adversarial example, the tables."""
    parts = [_key_numbers(result), Markup(_METHOD_NOTE)]
    if curves_png is not None:
        parts.append(figure_from_png(curves_png, "macro AUC against severity"))
    if spectra_png is not None:
        parts.append(figure_from_png(spectra_png, "each attack's spectrum"))
    if example_png is not None:
        parts.append(figure_from_png(example_png, "an adversarial example on ECG paper"))
    header = ["family", "condition", "macro AUC", "macro F1", "decisions changed", "note"]
    rows = [
        [
            c.family,
            c.label,
            number(c.macro_auc),
            number(c.macro_f1),
            "" if c.changed is None else f"{c.changed:.0%}",
            c.note,
        ]
        for c in result.conditions
    ]
    parts.append(table_to_html(header, rows))
    if result.flip_budgets:
        if survival_png is not None:
            parts.append(figure_from_png(survival_png, "flipping budgets as survival curves"))
        parts.append(_flip_table(result))
    if result.left_out:
        parts.append(
            Markup("<p class='note'>Left out of the flipping budgets: {}</p>").format("; ".join(result.left_out))
        )
    if result.transfer:
        parts.append(
            Markup("<p>Transfer to {}: its macro AUC on the first model's PGD inputs.</p>").format(
                result.transfer_bundle
            )
        )
        transfer_rows = [
            [c.label, number(c.macro_auc), "" if c.changed is None else f"{c.changed:.0%}"] for c in result.transfer
        ]
        parts.append(table_to_html(["condition", "macro AUC", "decisions changed"], transfer_rows))
    return Markup("").join(parts)


_METHOD_NOTE = (
    "<p class='note'>Perturbations enter before the bundle's length policy, where real noise "
    "or a fault would; AUC and F1 use the bundle's stored thresholds; attacks push away from the "
    "model's own clean decisions. Random sign noise has the same L-inf norm as the attacks: the "
    "gap between the two is what the gradient buys. PGD and FGSM make square-wave noise with a "
    "flat spectrum up to half the sampling rate; the clinical 0.5-40 Hz filter removes what lies "
    "above 40 Hz (each attack's share is in the spectra), and the smooth and band-limited attacks "
    "put almost nothing there. 1 small box of ECG paper is 100 uV.</p>"
)


def _key_numbers(result: RobustnessResult) -> Markup:
    """The clean AUC, the worst condition of each family and the median flipping budgets, as one paragraph."""

    def worst(family: str) -> ConditionResult | None:
        rows = [c for c in result.conditions if c.family == family and c.macro_auc is not None]
        return min(rows, key=lambda c: c.macro_auc or 0.0) if rows else None

    lines = [
        Markup("<p>Clean macro AUC {} on {} {} records. ").format(
            number(result.clean.macro_auc), result.n_records, result.split
        )
    ]
    for family in ("noise", "faults", "adversarial"):
        if (row := worst(family)) is not None:
            lines.append(
                Markup("Worst {}: {} (macro AUC {}, {:.0%} of decisions changed). ").format(
                    family, row.label, number(row.macro_auc), row.changed or 0.0
                )
            )
    if result.flip_budgets:
        attack = ATTACKS.get(result.flip_budgets[0].attack, result.flip_budgets[0].attack)
        lines.append(
            Markup("Median budget that flips a decision ({}, read from the survival curves): {}.").format(
                attack, ", ".join(f"{f.name} {f.median_text()}" for f in result.flip_budgets)
            )
        )
    return Markup("").join(lines) + Markup("</p>")


def _flip_table(result: RobustnessResult) -> Markup:
    """Per class: its threshold, the records attacked, how many flipped, and the medians read from the curves."""
    header = [
        "class",
        "threshold",
        "records (+/-)",
        "flipped within 250 uV",
        "median, all",
        "median, decided +",
        "median, decided -",
    ]
    rows = [
        [
            f.name,
            f"{f.threshold:.3f}",
            f"{f.n_positive}/{f.n_records - f.n_positive}",
            f.n_flipped,
            f.median_text(),
            f.median_text(True),
            f.median_text(False),
        ]
        for f in result.flip_budgets
    ]
    return table_to_html(header, rows)


def write_robustness(result: RobustnessResult, out: Path, lead_names: Sequence[str]) -> tuple[Path, ...]:
    """``robustness.json``, ``robustness.csv``, ``robustness_curves.png``, ``adversarial_example.png`` and
    ``robustness.html`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_json(out / "robustness.json", strict_json(result.to_dict()))]
    with atomic_open(out / "robustness.csv", newline="") as handle:
        pd.DataFrame(result.rows()).to_csv(handle, index=False)
    paths.append(out / "robustness.csv")
    curves = save_figure(curves_figure(result), out / "robustness_curves.png")
    paths.append(curves)
    spectra = survival = None
    if result.spectra:
        spectra = save_figure(spectra_figure(result), out / "attack_spectra.png")
        paths.append(spectra)
    if result.flip_budgets:
        survival = save_figure(survival_figure(result), out / "flipping_budgets.png")
        paths.append(survival)
    example = None
    if result.example is not None:
        example = save_figure(
            adversarial_figure(result.example, result.sampling_rate_hz, lead_names), out / "adversarial_example.png"
        )
        paths.append(example)
    paths.append(
        write_text(
            out / "robustness.html",
            page(
                f"ecglens robustness: {result.bundle}",
                [
                    (
                        "Robustness to noise, faults and adversarial perturbations",
                        robustness_section(result, curves, example, spectra, survival),
                    )
                ],
            ),
        )
    )
    return tuple(paths)
