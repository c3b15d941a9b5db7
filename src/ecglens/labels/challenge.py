"""The PhysioNet/CinC Challenge 2021 scoring table, restricted to the classes a label space shares with it.

The Challenge scores a multi-label classifier with a reward matrix over its 26 scored classes (equivalent
SNOMED-CT codes merged), shipped as ``tables/challenge2021_weights.csv``. A label space states for each of
its classes which scored class it is the same diagnosis as (``classes.csv``); the score is then computed on
those classes only, with the Challenge's normal class (sinus rhythm, 426783006) as the reference. A space
without a sinus-rhythm class, or with fewer than two shared classes, has no Challenge score.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from ecglens.labels.mapping import _TABLES, LabelMap

SINUS_RHYTHM = "426783006"
WEIGHTS_FILE = "challenge2021_weights.csv"


@cache
def challenge_weights() -> tuple[tuple[str, ...], np.ndarray]:
    """The Challenge 2021 scored classes (SNOMED-CT codes, equivalents joined by ``|``) and reward matrix."""
    with (_TABLES / WEIGHTS_FILE).open(encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row and not row[0].startswith("#")]
    codes = tuple(rows[0][1:])
    matrix = np.array([[float(value) for value in row[1:]] for row in rows[1:]])
    if tuple(row[0] for row in rows[1:]) != codes or matrix.shape != (len(codes), len(codes)):
        raise ValueError(f"{WEIGHTS_FILE}: rows and columns do not name the same classes")
    matrix.setflags(write=False)
    return codes, matrix


@dataclass(frozen=True)
class ChallengeScoring:
    """How to compute the Challenge score in one label space (see `ecglens.metrics.challenge_score`).

    Attributes:
        columns: indices of the space's classes that the Challenge scores, in the space's order.
        names: those classes' names.
        weights: the reward matrix restricted to them (rows: labels, columns: outputs).
        normal: position of sinus rhythm within ``columns``, or None when the space has none.
        note: what the restriction means, for reports.
    """

    columns: tuple[int, ...]
    names: tuple[str, ...]
    weights: np.ndarray = field(repr=False)
    normal: int | None
    note: str

    @property
    def defined(self) -> bool:
        """Whether a normalised score exists (a sinus-rhythm class and at least one other shared class)."""
        return self.normal is not None and len(self.columns) >= 2


def challenge_scoring(label_map: LabelMap) -> ChallengeScoring:
    """The Challenge 2021 scoring of a label space's classes that are scored classes of the Challenge."""
    codes, matrix = challenge_weights()
    where = {code: i for i, code in enumerate(codes)}
    columns, names, rows, seen = [], [], [], set()
    for k, (name, code) in enumerate(
        zip(label_map.classes, label_map.snomed or ("",) * len(label_map.classes), strict=True)
    ):
        if code in where and code not in seen:
            seen.add(code)
            columns.append(k)
            names.append(name)
            rows.append(where[code])
    weights = matrix[np.ix_(rows, rows)] if rows else np.zeros((0, 0))
    normal = next((i for i, row in enumerate(rows) if codes[row] == SINUS_RHYTHM), None)
    if normal is None or len(columns) < 2:
        note = (
            f"not defined for {label_map.space}: it shares {len(columns)} of its {len(label_map.classes)} "
            "classes with the Challenge 2021 scored classes"
            + ("" if normal is not None else " and has no sinus-rhythm class")
        )
    elif len(columns) == len(codes):
        note = "all 26 Challenge 2021 scored classes"
    else:
        note = (
            f"restricted to the {len(columns)} classes {label_map.space} shares with the Challenge 2021 "
            f"({', '.join(names)}); the others are left out of the score, so it is not comparable with "
            "published 26-class Challenge scores"
        )
    return ChallengeScoring(tuple(columns), tuple(names), weights, normal, note)
