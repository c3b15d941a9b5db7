"""The study's published numbers, shipped as the reference that reports show beside ecglens's own.

Transcribed from Habeeb & Goyal, "Improved generalization and interpretability of a deep learning model
for automatic diagnosis of 12-lead ECG" (the study ecglens implements), Tables 1-3:

- ``table1_ptbxl_after_mapping.csv``: PTB-XL after the study's SCP -> 9-class mapping (21,541 records):
  count and % of records per class, male count and %, age mean and sd. Only PTB-XL: no other
  dataset's summary is compared with it.
- ``table2_original_model_cpsc_vs_ptbxl.csv``: the Original model (trained on CPSC 2018) tested on
  CPSC and on PTB-XL.
- ``table3_original_ours1_ours2.csv``: Original (CPSC test), Ours_1 and Ours_2 (combined test set).

They are facts to compare against, not targets: ecglens never tunes anything to them.
"""

from __future__ import annotations

import csv
from importlib import resources

CITATION = (
    'Habeeb & Goyal, "Improved generalization and interpretability of a deep learning model for '
    'automatic diagnosis of 12-lead ECG"'
)
TABLE_FILES = {
    "table1": "table1_ptbxl_after_mapping.csv",
    "table2": "table2_original_model_cpsc_vs_ptbxl.csv",
    "table3": "table3_original_ours1_ours2.csv",
}
_TABLE2_SETS = {"cpsc": "CPSC", "ptbxl": "PTB-XL"}
_TABLE3_MODELS = {"original": "Original", "ours1": "Ours_1", "ours2": "Ours_2"}


def study_rows(name: str) -> list[dict[str, str]]:
    """The rows of one of the study's tables (``table1``, ``table2``, ``table3``) as read from its CSV."""
    text = resources.files(__name__).joinpath(TABLE_FILES[name]).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def table1_percent() -> dict[str, float]:
    """Per class, the % of PTB-XL records the study reports after its mapping (Table 1)."""
    return {row["class"]: float(row["count_pct"]) for row in study_rows("table1")}


def study_cells(name: str) -> dict[tuple[str, str], float]:
    """Table 2 or 3 keyed like ecglens's own tables: (class, column), e.g. ("AF", "PTB-XL auc").

    The study's ``AVG`` row is ecglens's ``average``; its ``auc_ptbxl`` column is ``PTB-XL auc`` in
    Table 2, and ``auc_ours1`` is ``Ours_1 auc`` in Table 3.
    """
    groups = _TABLE2_SETS if name == "table2" else _TABLE3_MODELS
    cells = {}
    for row in study_rows(name):
        label = "average" if row["class"] == "AVG" else row["class"]
        for column, value in row.items():
            if column == "class":
                continue
            metric, group = column.rsplit("_", 1)
            cells[(label, f"{groups[group]} {metric}")] = float(value)
    return cells
