"""Physical units of ECG signals: the one conversion table to millivolts."""

from __future__ import annotations

UNIT_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3}
"""Millivolts per unit, keyed by the lower-case unit name."""

WFDB_UNITLESS = ("", "nu")
"""WFDB headers that name no unit (or 'nu', normalised units) are read as millivolts, the format's default."""


def unit_to_mv(unit: str, unitless_ok: bool = False) -> float | None:
    """Millivolts per ``unit``; None when the unit is unknown.

    Args:
        unit: the unit as written in the file, any case.
        unitless_ok: accept an empty unit (and WFDB's 'nu') as millivolts.
    """
    key = unit.strip().lower()
    if unitless_ok and key in WFDB_UNITLESS:
        return 1.0
    return UNIT_TO_MV.get(key)
