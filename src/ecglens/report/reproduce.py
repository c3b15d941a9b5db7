"""The reproduce report: the study's Tables 2 and 3, the cross-dataset matrix and Figures 2-8 in one page."""

from __future__ import annotations

import json

import pandas as pd

from ecglens.report.html import figure_from_png, page, table_to_html

STUDY_NUMBERS_NOTE = (
    "The study's own Table 2/3 values are not shipped with ecglens (the paper's tables were not available "
    "where this was built); transcribe them into CSVs shaped like table2.csv / table3.csv and pass "
    "<code>--study-table2</code> / <code>--study-table3</code> to show them beside these.")


def _table(frame: pd.DataFrame, study: pd.DataFrame | None = None) -> str:
    if study is not None:
        frame = frame.merge(study.add_prefix("study ").rename(columns={"study class": "class"}), on="class",
                            how="left")
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    return table_to_html(list(frame.columns), rows)


def render_reproduce(summary: dict, tables: dict[str, pd.DataFrame], cross: pd.DataFrame | None,
                     study: dict[str, pd.DataFrame] | None = None) -> str:
    """Render the reproduce run from its numbers (results.json) into a self-contained HTML page."""
    study = study or {}
    combined = summary["results"]
    gap = (combined["Original/cpsc"]["results"][0]["macro_auc"], combined["Original/ptbxl"]["results"][0]["macro_auc"])
    closing = {m: combined[f"{m}/combined"]["results"][0]["macro_auc"] for m in ("Original", "Ours_1", "Ours_2")}

    def fmt(value):
        return "n/a" if value is None else f"{value:.3f}"

    sections = [("Findings", (
        f"<p>Original (trained on CPSC): macro AUC {fmt(gap[0])} on the CPSC test split and {fmt(gap[1])} on the "
        f"PTB-XL test split. On the combined test set: Original {fmt(closing['Original'])}, Ours_1 "
        f"{fmt(closing['Ours_1'])}, Ours_2 {fmt(closing['Ours_2'])}. Thresholds were tuned on validation splits "
        f"only (CPSC's for Original; the combined validation set for Ours_1/Ours_2); folds "
        f"{summary['folds']['validation']} (validation) and {summary['folds']['test']} (test).</p>"
        f"<p class='note'>{STUDY_NUMBERS_NOTE} Cells marked n/a are classes without positives in that test "
        "set.</p>"))]
    sections.append(("Table 2: Original on CPSC and on PTB-XL (test splits)",
                     _table(tables["table2"], study.get("table2"))))
    sections.append(("Table 3: Original, Ours_1, Ours_2 on the combined test set",
                     _table(tables["table3"], study.get("table3"))))
    if cross is not None:
        frame = cross.reset_index().rename(columns={"index": "trained on \\ tested on"})
        sections.append(("Train-on-A / test-on-B macro AUC", _table(frame)))
    population = "".join(f"<p>{item['model']} on {item['dataset']}</p>" + figure_from_png(item["figure"], item["model"])
                         for item in summary["figures"]["population"])
    sections.append(("Figures 2-5: population-level SHAP (share of SHAP mass per lead)", population or "<p>none</p>"))
    gradcam = "".join(f"<p>{item['kind']}: {item['record_id']} (Grad-CAM for {item['class']})</p>"
                      + figure_from_png(item["path"], item["record_id"]) for item in summary["figures"]["gradcam"])
    sections.append(("Figures 6-8: Grad-CAM of Ours_2 on correctly and incorrectly classified test records",
                     gradcam or "<p>none</p>"))
    data = "".join(f"<h3>{name}</h3><pre>{item['markdown']}</pre>" for group in summary["data"].values()
                   for name, item in group.items())
    sections.append(("Data", data))
    sections.append(("Timings (s, summed over the run and its resumptions)",
                     table_to_html(["step", "seconds"], list(summary["timings_s"].items()))))
    sections.append(("Configuration and versions",
                     f"<pre>{json.dumps({'config': summary['config'], 'versions': summary['versions']}, indent=2)}"
                     "</pre>"))
    return page("ecglens reproduce: Original / Ours_1 / Ours_2", sections)

