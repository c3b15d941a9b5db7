"""The nine CPSC 2018 diagnostic classes that ecglens predicts (the one source of truth)."""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("SNR", "AF", "IAVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE")
"""Target classes in output order (CPSC 2018 codes 1-9)."""

STUDY_TABLE1_PTBXL_PERCENT: dict[str, float] = {
    "SNR": 66.72, "AF": 0.96, "IAVB": 7.13, "LBBB": 10.36, "RBBB": 8.05,
    "PAC": 1.50, "PVC": 4.77, "STD": 3.38, "STE": 25.39,
}
"""Class percentages the study (Habeeb & Goyal, Table 1) reports for PTB-XL after its mapping."""

CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
