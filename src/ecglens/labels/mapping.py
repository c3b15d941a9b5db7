"""Label spaces as data: each source vocabulary's codes onto a label space's classes.

A label space is a name, its classes (in output order) and mapping tables, all versioned CSV files in
``ecglens/labels/tables``:

- ``spaces.csv``: one row per (space, profile) with its tables, description and source; a space's first
  row is its default profile.
- ``classes.csv``: each space's classes in order, with the PhysioNet/CinC Challenge 2021 scored class
  (SNOMED-CT codes, equivalents joined by ``|``) each one is the same diagnosis as, where there is one.
- mapping tables with the columns ``vocabulary, code, description, target, rationale`` and an optional
  ``when``; ``target`` is a class of the space, ``drop`` (a finding the space leaves out, as the study
  dropped 11 statements) or ``companion`` (a finding a normal ECG may carry: a sinus rate variant, the
  axis; it maps to nothing and does not stop an ``alone`` row); ``when`` is empty or ``alone``: the row
  counts only when every other code of the record is an ``alone`` row or a ``companion``, so a class
  that means "a normal ECG" (SNR) is never given beside another finding; ``rationale`` cites the source.

A record with no class is *out of scope* (its statements are findings the space does not name, e.g. a
myocardial infarction for the nine classes): a negative for every class by default (`MappedLabels.labelled`).
A record with no statements, or in a vocabulary the space has no table for, is *unlabelled*.

Built in: ``cpsc9`` (the default: the study's nine CPSC 2018 classes, profiles ``strict``, ``broad`` and
``seed``),
the six PTB-XL benchmark tasks ``ptbxl-all``, ``-diagnostic``, ``-subdiagnostic``, ``-superdiagnostic``,
``-form``, ``-rhythm`` (Strodthoff et al. 2021) and ``challenge2021`` (the Challenge's 26 scored classes).
For ``cpsc9`` a user CSV given as the profile replaces the built-in tables of the vocabularies it names; a
user CSV given as the space defines a new one, its classes in the order the table first names them.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ecglens.classes import CLASS_NAMES

DEFAULT_SPACE = "cpsc9"
PROFILES = ("strict", "broad", "seed")
"""The built-in profiles of the default space."""
DROP = "drop"
COMPANION = "companion"
"""Target of a finding that a normal ECG may carry: it maps to no class and does not stop an ``alone`` row."""
ALONE = "alone"
_RESERVED = (DROP, COMPANION)
_COLUMNS = ("vocabulary", "code", "description", "target", "rationale")
UNLABELLED = ("no labels", "label space ")
"""How the exclusion of an unlabelled record begins ("label space has no table for ..."; caches of older
ecglens wrote "label space NAME has no table ..."); every other record without a class is out of scope."""
_TABLES = resources.files("ecglens.labels") / "tables"


@dataclass(frozen=True)
class MappingRow:
    """One code of one vocabulary and where it goes."""

    vocabulary: str
    code: str
    description: str
    target: str
    rationale: str
    when: str = ""


@dataclass(frozen=True)
class MappedLabels:
    """A record's target classes, or why it has none."""

    classes: tuple[str, ...]
    exclusion: str | None = None

    @property
    def labelled(self) -> bool:
        """Whether the record's truth is known: it has a class, or statements that name none (out of scope)."""
        return not (self.exclusion or "").startswith(UNLABELLED)

    def multi_hot(self, class_names: Sequence[str] = CLASS_NAMES) -> np.ndarray:
        """The classes as a float32 vector in ``class_names`` order (a label space's `LabelMap.classes`)."""
        return np.isin(np.asarray(class_names), self.classes).astype(np.float32)


@dataclass(frozen=True)
class LabelMap:
    """A label space under one profile: its classes in output order and every vocabulary's table.

    Attributes:
        name: the profile (``strict``, ``seed``, ``default``, or a user CSV's stem).
        rows: the mapping rows of all vocabularies.
        space: the label space's name.
        classes: class names in output order.
        snomed: per class, the Challenge 2021 scored class it equals (SNOMED-CT codes joined by ``|``) or "".
        source: where the space comes from (shown in reports).
    """

    name: str
    rows: tuple[MappingRow, ...]
    space: str = DEFAULT_SPACE
    classes: tuple[str, ...] = CLASS_NAMES
    snomed: tuple[str, ...] = ()
    source: str = ""

    @property
    def sha256(self) -> str:
        """Hash of the classes and table contents (stored with caches and bundles)."""
        digest = hashlib.sha256()
        if self.classes != CLASS_NAMES:  # the nine classes hash as they always have, so older caches still load
            digest.update(("\t".join(self.classes) + "\n").encode())
        for row in sorted(self.rows, key=lambda r: (r.vocabulary, r.code)):
            when = f"\t{row.when}" if row.when else ""  # tables without conditions hash as they always have
            digest.update(f"{row.vocabulary}\t{row.code}\t{row.target}{when}\n".encode())
        return digest.hexdigest()

    @property
    def label(self) -> str:
        """``space`` or ``space:profile`` for a space's non-default profile (how ``--label-space`` names it)."""
        return self.space if self.name == default_profile(self.space) else f"{self.space}:{self.name}"

    @property
    def vocabularies(self) -> tuple[str, ...]:
        """The vocabularies the tables cover."""
        return tuple(sorted({row.vocabulary for row in self.rows}))

    def target(self, vocabulary: str, code: str) -> str | None:
        """Target class, ``drop``, ``companion``, or None for a code the table does not list."""
        row = self.row(vocabulary, code)
        return None if row is None else row.target

    def row(self, vocabulary: str, code: str) -> MappingRow | None:
        """The table row of a code, or None (a later table's row replaces an earlier one's)."""
        return self._lookup().get((vocabulary, code.strip()))

    def _lookup(self) -> dict[tuple[str, str], MappingRow]:
        cache = self.__dict__.get("_lookup_cache")
        if cache is None:
            cache = {(row.vocabulary, row.code): row for row in self.rows}
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
        if vocabulary not in self.vocabularies:
            return MappedLabels((), f"label space has no table for {vocabulary} codes")
        rows = [self.row(vocabulary, code) for code in codes]
        alone = all(row is not None and (row.target == COMPANION or row.when == ALONE) for row in rows)
        classes: set[str] = set()
        dropped = []
        for code, row in zip(codes, rows, strict=True):
            if row is not None and row.target == DROP:
                dropped.append(code)
            elif row is not None and row.target != COMPANION and (alone or row.when != ALONE):
                classes.add(row.target)
        if classes:
            return MappedLabels(tuple(name for name in self.classes if name in classes))
        if len(dropped) == len(codes):
            return MappedLabels((), f"only dropped statements ({', '.join(dropped)})")
        return MappedLabels((), f"out of scope: no code maps to a class ({', '.join(codes)})")

    def encode(self, mapped: MappedLabels) -> np.ndarray:
        """A record's mapped classes as a multi-hot float32 vector in this space's class order."""
        return mapped.multi_hot(self.classes)


def _read_table(handle: Iterable[str], where: str, classes: Sequence[str] | None) -> list[MappingRow]:
    """Rows of one mapping table; with ``classes``, every target must be one of them or ``drop``."""
    reader = csv.DictReader(handle)
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{where}: mapping table lacks column(s) {', '.join(missing)}")
    rows = []
    for line_number, row in enumerate(reader, start=2):
        target = (row["target"] or "").strip()
        if not target or (classes is not None and target not in _RESERVED and target not in classes):
            raise ValueError(
                f"{where}:{line_number}: target {target!r} is neither 'drop', 'companion' nor one of "
                f"{', '.join(classes or ())}"
            )
        when = (row.get("when") or "").strip()
        if when not in ("", ALONE) or (when and target in _RESERVED):
            raise ValueError(f"{where}:{line_number}: 'when' is empty or 'alone' (and only for a class), not {when!r}")
        rows.append(
            MappingRow(
                str(row["vocabulary"] or "").strip(),
                str(row["code"] or "").strip(),
                str(row["description"] or "").strip(),
                target,
                row["rationale"] or "",
                when,
            )
        )
    return rows


@dataclass(frozen=True)
class SpaceInfo:
    """One row of ``spaces.csv``: a built-in label space under one profile."""

    space: str
    profile: str
    tables: tuple[str, ...]
    description: str
    source: str


def _csv_rows(file_name: str) -> list[dict[str, str]]:
    with (_TABLES / file_name).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def builtin_spaces() -> tuple[SpaceInfo, ...]:
    """Every built-in (space, profile), the default profile of each space first."""
    return tuple(
        SpaceInfo(r["space"], r["profile"], tuple(r["tables"].split(";")), r["description"], r["source"])
        for r in _csv_rows("spaces.csv")
    )


def space_names() -> tuple[str, ...]:
    """The built-in label spaces' names."""
    return tuple(dict.fromkeys(info.space for info in builtin_spaces()))


def default_profile(space: str) -> str:
    """A built-in space's default profile (the first listed), or ``default`` for a user space."""
    return next((info.profile for info in builtin_spaces() if info.space == space), "default")


def space_classes(space: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A built-in space's classes in order and their Challenge 2021 SNOMED-CT classes."""
    rows = [r for r in _csv_rows("classes.csv") if r["space"] == space]
    return tuple(r["class"] for r in rows), tuple(r["snomed"] for r in rows)


def one_to_one_snomed() -> dict[str, tuple[str, ...]]:
    """Per class, the SNOMED CT codes ``snomed.csv`` maps onto it one-to-one (what to code a decision with when the
    Challenge scores no class for it)."""
    out: dict[str, tuple[str, ...]] = {}
    for row in _csv_rows("snomed.csv"):
        if row["rationale"] == "one-to-one" and row["target"] not in ("drop", "companion"):
            out[row["target"]] = (*out.get(row["target"], ()), row["code"])
    return out


def space_descriptions(space: str) -> dict[str, str]:
    """A built-in space's class names and their descriptions (``classes.csv``); empty for a user space."""
    return {r["class"]: r["description"] for r in _csv_rows("classes.csv") if r["space"] == space}


def load_label_map(profile: str | os.PathLike = "strict", space: str = DEFAULT_SPACE) -> LabelMap:
    """A built-in space under a profile, or under a user CSV that replaces some of its tables.

    Args:
        profile: a built-in profile of ``space`` (``strict``/``seed`` for ``cpsc9``; ``default`` for the
            others), or a CSV whose rows replace the space's built-in rows of the vocabularies it names.
        space: a built-in label space.
    """
    infos = {info.profile: info for info in builtin_spaces() if info.space == space}
    if not infos:
        raise ValueError(f"unknown label space {space!r}; built in: {', '.join(space_names())}")
    classes, snomed = space_classes(space)
    profile_text = str(profile)
    if profile_text in infos:
        return _builtin(space, profile_text)
    path = Path(profile)
    if not path.is_file():
        raise ValueError(f"label profile {profile_text!r} is neither one of {', '.join(infos)} nor a CSV file")
    with path.open(encoding="utf-8", newline="") as handle:
        user_rows = _read_table(handle, str(path), classes)
    vocabularies = {row.vocabulary for row in user_rows}
    base = load_label_map(default_profile(space), space)
    kept = [row for row in base.rows if row.vocabulary not in vocabularies]
    return LabelMap(path.stem, tuple(kept + user_rows), space, classes, snomed, f"{path} over {base.source}")


@functools.cache
def _builtin(space: str, profile: str) -> LabelMap:
    """A built-in space under a built-in profile (read once per process: the tables ship with the package)."""
    info = next(info for info in builtin_spaces() if (info.space, info.profile) == (space, profile))
    classes, snomed = space_classes(space)
    rows: list[MappingRow] = []
    for file_name in info.tables:
        with (_TABLES / file_name).open(encoding="utf-8") as handle:
            rows.extend(_read_table(handle, file_name, classes))
    return LabelMap(profile, tuple(rows), space, classes, snomed, info.source)


def load_label_space(spec: str | os.PathLike) -> LabelMap:
    """A label space named as ``--label-space`` takes it: ``NAME``, ``NAME:PROFILE`` or a CSV file.

    A CSV defines a new space named after the file: its classes are the targets in the order the table
    first names them; it has no Challenge 2021 correspondence.
    """
    text = str(spec)
    name, _, profile = text.partition(":")
    if name in space_names():
        return load_label_map(profile or default_profile(name), name)
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"label space {text!r} is neither one of {', '.join(space_names())} nor a CSV file")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = _read_table(handle, str(path), None)
    classes = tuple(dict.fromkeys(row.target for row in rows if row.target not in _RESERVED))
    if not classes:
        raise ValueError(f"{path}: the table maps no code to a class")
    return LabelMap("default", tuple(rows), path.stem, classes, ("",) * len(classes), str(path))
