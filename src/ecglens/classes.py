"""The nine CPSC 2018 diagnostic classes that ecglens predicts (the one source of truth)."""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("SNR", "AF", "IAVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE")
"""Target classes in output order (CPSC 2018 codes 1-9)."""


CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
