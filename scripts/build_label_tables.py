"""Build the PTB-XL benchmark label-space tables shipped in ``ecglens/labels/tables``.

Reads PTB-XL's ``scp_statements.csv`` (71 SCP statements; 1.0.3) and writes, for each of the six tasks of
Strodthoff et al. 2021 ("Deep Learning for ECG Analysis: Benchmarks and Insights from PTB-XL", IEEE JBHI
25(5):1519-1528, doi:10.1109/JBHI.2020.3022989), a mapping table ``ptbxl_<task>.csv`` and the task's rows
of ``classes.csv``. The tasks follow the benchmark's own aggregation: every statement of a record counts
whatever its likelihood; ``diagnostic``/``form``/``rhythm`` keep the statements flagged 1 in that column;
``subdiagnostic``/``superdiagnostic`` map each diagnostic statement to its ``diagnostic_subclass`` /
``diagnostic_class``; ``all`` keeps all 71. Classes are in the benchmark's (sorted) order.

Usage: python scripts/build_label_tables.py ../shared/data/ptb-xl/scp_statements.csv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pandas as pd

TABLES = Path(__file__).resolve().parents[1] / "src" / "ecglens" / "labels" / "tables"
SOURCE = "Strodthoff et al. 2021 (PTB-XL benchmark), from PTB-XL 1.0.3 scp_statements.csv"
TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
# SCP statements that name exactly one PhysioNet/CinC Challenge 2021 scored class (its SNOMED-CT codes, with
# the Challenge's equivalence pairs); every other statement has no scored counterpart.
CHALLENGE = {
    "SR": "426783006",
    "AFIB": "164889003",
    "AFLT": "164890007",
    "STACH": "427084000",
    "SBRAD": "426177001",
    "SARRH": "427393009",
    "PACE": "10370003",
    "1AVB": "270492004",
    "CLBBB": "733534002|164909002",
    "CRBBB": "713427006|59118001",
    "IRBBB": "713426002",
    "LAFB": "445118002",
    "IVCD": "698252002",
    "PAC": "284470004|63593006",
    "PVC": "427172004|17338001",
    "LVOLT": "251146004",
    "QWAVE": "164917005",
    "INVT": "59931005",
    "LNGQT": "111975006",
    "LPR": "164947007",
}


def task_rows(statements: pd.DataFrame, task: str) -> list[tuple[str, str, str]]:
    """(code, description, target class) of every statement the task keeps."""
    rows = []
    for code, row in statements.iterrows():
        if task == "all":
            target = code
        elif task in ("diagnostic", "form", "rhythm"):
            target = code if row[task] == 1.0 else None
        else:
            column = "diagnostic_subclass" if task == "subdiagnostic" else "diagnostic_class"
            target = row[column] if row["diagnostic"] == 1.0 and isinstance(row[column], str) else None
        if target is not None:
            rows.append((str(code), str(row["description"]), str(target)))
    return rows


def main(path: str) -> None:
    statements = pd.read_csv(path, index_col=0)
    class_rows = []
    for task in TASKS:
        rows = task_rows(statements, task)
        name = f"ptbxl-{task}"
        with open(TABLES / f"ptbxl_{task}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["vocabulary", "code", "description", "target", "rationale"])
            for code, description, target in sorted(rows, key=lambda r: (r[2], r[0])):
                why = "the statement itself" if target == code else f"its {task} class in scp_statements.csv"
                writer.writerow(["scp", code, description, target, f"{SOURCE}: {why}"])
        for target in sorted({r[2] for r in rows}):
            members = [r for r in rows if r[2] == target]
            single = len(members) == 1 and members[0][0] == target  # the class is one statement
            description = members[0][1] if single else f"{len(members)} statements"
            snomed = CHALLENGE.get(target, "") if single else ""
            class_rows.append([name, target, description, snomed])
    keep = []
    with open(TABLES / "classes.csv", encoding="utf-8") as handle:
        keep = [row for row in csv.reader(handle) if not row[0].startswith("ptbxl-")]
    with open(TABLES / "classes.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(keep + class_rows)
    print(f"wrote {len(TASKS)} tables and {len(class_rows)} class rows to {TABLES}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/ptb-xl/scp_statements.csv")
