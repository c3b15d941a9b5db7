"""Label mapping: each source vocabulary's codes onto the nine target classes.

The tables are versioned CSV files in ``ecglens/labels/tables`` with the columns
``vocabulary, code, description, target, rationale``; ``target`` is a class name or ``drop``.
A profile is one table per vocabulary:

- ``strict`` (default): PTB-XL SCP statements with a one-to-one equivalent only.
- ``seed``: the study's approach, every SCP statement to its closest class and its 11 statements
  without counterpart dropped (records labelled only by dropped statements are removed).
- a path to a user CSV: its rows replace the built-in tables of the vocabularies it names.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ecglens.classes import CLASS_INDEX, CLASS_NAMES

PROFILES = ("strict", "seed")
DROP = "drop"
_BUILTIN_TABLES = {
    "strict": ("snomed.csv", "cpsc.csv", "scp_strict.csv"),
    "seed": ("snomed.csv", "cpsc.csv", "scp_seed.csv"),
}
_COLUMNS = ("vocabulary", "code", "description", "target", "rationale")


@dataclass(frozen=True)
class MappingRow:
    """One code of one vocabulary and where it goes."""

    vocabulary: str
    code: str
    description: str
    target: str
    rationale: str


@dataclass(frozen=True)
class MappedLabels:
    """A record's target classes, or why it has none."""

    classes: tuple[str, ...]
    exclusion: str | None = None

    def multi_hot(self) -> np.ndarray:
        """The classes as a float32 vector in `CLASS_NAMES` order."""
        vector = np.zeros(len(CLASS_NAMES), dtype=np.float32)
        for name in self.classes:
            vector[CLASS_INDEX[name]] = 1.0
        return vector


@dataclass(frozen=True)
class LabelMap:
    """A complete mapping profile (all vocabularies)."""

    name: str
    rows: tuple[MappingRow, ...]

    @property
    def sha256(self) -> str:
        """Hash of the table contents (stored with caches and bundles)."""
        digest = hashlib.sha256()
        for row in sorted(self.rows, key=lambda r: (r.vocabulary, r.code)):
            digest.update(f"{row.vocabulary}\t{row.code}\t{row.target}\n".encode())
        return digest.hexdigest()

    def target(self, vocabulary: str, code: str) -> str | None:
        """Target class, ``drop``, or None for a code the table does not list."""
        return self._lookup().get((vocabulary, code.strip()))

    def _lookup(self) -> dict[tuple[str, str], str]:
        cache = self.__dict__.get("_lookup_cache")
        if cache is None:
            cache = {(row.vocabulary, row.code): row.target for row in self.rows}
            object.__setattr__(self, "_lookup_cache", cache)
        return cache

    def map(
        self,
        raw_labels: Iterable[tuple[str, float | None]],
        vocabulary: str,
        min_likelihood: float = 0.0,
    ) -> MappedLabels:
        """Map a record's raw labels to target classes.

        Args:
            raw_labels: (code, likelihood or None) pairs.
            vocabulary: ``scp``, ``snomed``, ``cpsc`` or ``none``.
            min_likelihood: SCP statements below this likelihood are ignored; rhythm statements
                (likelihood always 0.0 in PTB-XL) count whatever this is, since presence is their meaning.
        """
        codes = []
        for code, likelihood in raw_labels:
            if likelihood is not None and likelihood < min_likelihood and likelihood != 0.0:
                continue
            codes.append(code)
        if not codes:
            return MappedLabels((), "no labels")
        classes: set[str] = set()
        dropped = []
        for code in codes:
            target = self.target(vocabulary, code)
            if target == DROP:
                dropped.append(code)
            elif target is not None:
                classes.add(target)
        if classes:
            return MappedLabels(tuple(name for name in CLASS_NAMES if name in classes))
        if dropped:
            return MappedLabels((), f"only dropped statements ({', '.join(dropped)})")
        return MappedLabels((), "no label maps to a target class")


def _read_table(handle: Iterable[str], where: str) -> list[MappingRow]:
    reader = csv.DictReader(handle)
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{where}: mapping table lacks column(s) {', '.join(missing)}")
    rows = []
    for line_number, row in enumerate(reader, start=2):
        target = (row["target"] or "").strip()
        if target != DROP and target not in CLASS_INDEX:
            raise ValueError(
                f"{where}:{line_number}: target {target!r} is neither 'drop' nor one of {', '.join(CLASS_NAMES)}"
            )
        rows.append(MappingRow(*(str(row[c] or "").strip() for c in _COLUMNS[:3]), target, (row["rationale"] or "")))
    return rows


def load_label_map(profile: str | os.PathLike = "strict") -> LabelMap:
    """Load a built-in profile (``strict``, ``seed``) or a user CSV that replaces tables.

    A user CSV replaces the built-in rows of every vocabulary it contains and keeps the
    ``strict`` tables for the others.
    """
    tables = resources.files("ecglens.labels") / "tables"
    profile_text = str(profile)
    if profile_text in PROFILES:
        rows: list[MappingRow] = []
        for file_name in _BUILTIN_TABLES[profile_text]:
            with (tables / file_name).open(encoding="utf-8") as handle:
                rows.extend(_read_table(handle, file_name))
        return LabelMap(profile_text, tuple(rows))
    path = Path(profile)
    if not path.is_file():
        raise ValueError(f"label profile {profile_text!r} is neither one of {', '.join(PROFILES)} nor a CSV file")
    with path.open(encoding="utf-8", newline="") as handle:
        user_rows = _read_table(handle, str(path))
    vocabularies = {row.vocabulary for row in user_rows}
    base = [row for row in load_label_map("strict").rows if row.vocabulary not in vocabularies]
    return LabelMap(path.stem, tuple(base + user_rows))
