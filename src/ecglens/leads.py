"""The canonical 12-lead order and lead-name normalisation (the one source of truth)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

LEAD_NAMES: tuple[str, ...] = (
    "I",
    "II",
    "III",
    "aVR",
    "aVL",
    "aVF",
    "V1",
    "V2",
    "V3",
    "V4",
    "V5",
    "V6",
)
"""Standard 12-lead order used everywhere in ecglens."""

_ALIASES: dict[str, str] = {name.upper(): name for name in LEAD_NAMES}
# Spellings seen in real files (PTB-XL writes AVR/AVL/AVF; some exports use roman numerals in
# lower case or 'MLII'-style prefixes are not 12-lead names and stay unknown on purpose).
_ALIASES.update({"AVR": "aVR", "AVL": "aVL", "AVF": "aVF"})


def inverted_lead(name: str) -> str | None:
    """The standard lead an inverted lead name stands for (``-aVR``, the Cabrera display's lead, is aVR x -1),
    or None for any other name. Readers multiply such a lead by -1 and say so; it is never read as the lead."""
    text = name.strip()
    return _ALIASES.get(text[1:].strip().upper()) if text.startswith("-") else None


class LeadError(ValueError):
    """A record's lead names do not cover the leads that were asked for."""


def normalize_lead_name(name: str) -> str | None:
    """Return the canonical spelling of a lead name, or None when it is not a standard lead.

    Matching ignores case and surrounding whitespace: ``"avr"``, ``"AVR"`` and ``"aVR"`` are one lead.
    """
    return _ALIASES.get(name.strip().upper())


def lead_order(names: Sequence[str], wanted: Iterable[str] = LEAD_NAMES) -> list[int]:
    """Indices into ``names`` that put the ``wanted`` leads in order.

    Raises:
        LeadError: naming every wanted lead that ``names`` lacks, or a lead that appears twice (which copy
            is the lead is unknowable, so neither is used silently).
    """
    position: dict[str, int] = {}
    for index, name in enumerate(names):
        canonical = normalize_lead_name(name)
        if canonical is not None and canonical in position:
            raise LeadError(f"lead {canonical} appears more than once (found: {', '.join(names)})")
        if canonical is not None:
            position[canonical] = index
    wanted = [normalize_lead_name(w) or w for w in wanted]
    missing = [w for w in wanted if w not in position]
    if missing:
        raise LeadError(f"missing lead(s) {', '.join(missing)} (found: {', '.join(names) or 'none'})")
    return [position[w] for w in wanted]


def canonical_leads(names: Iterable[str]) -> tuple[str, ...]:
    """Normalise a user-given lead list, keeping its order; raise for unknown or repeated names."""
    out: list[str] = []
    for name in names:
        canonical = normalize_lead_name(name)
        if canonical is None:
            raise LeadError(f"unknown lead name {name!r}; expected one of {', '.join(LEAD_NAMES)}")
        if canonical in out:
            raise LeadError(f"lead {canonical} is listed more than once")
        out.append(canonical)
    return tuple(out)
