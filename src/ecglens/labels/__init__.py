"""Label spaces: their classes, mapping tables, multi-hot targets and Challenge 2021 scoring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecglens.util.lazy import lazy_exports

if TYPE_CHECKING:
    from ecglens.labels.challenge import ChallengeScoring, challenge_scoring, challenge_weights
    from ecglens.labels.mapping import (
        DEFAULT_SPACE,
        DROP,
        PROFILES,
        LabelMap,
        MappedLabels,
        MappingRow,
        builtin_spaces,
        load_label_map,
        load_label_space,
        space_names,
    )

__all__ = [
    "DEFAULT_SPACE",
    "DROP",
    "PROFILES",
    "ChallengeScoring",
    "LabelMap",
    "MappedLabels",
    "MappingRow",
    "builtin_spaces",
    "challenge_scoring",
    "challenge_weights",
    "load_label_map",
    "load_label_space",
    "space_names",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "ChallengeScoring": "ecglens.labels.challenge",
        "challenge_scoring": "ecglens.labels.challenge",
        "challenge_weights": "ecglens.labels.challenge",
        "DEFAULT_SPACE": "ecglens.labels.mapping",
        "DROP": "ecglens.labels.mapping",
        "PROFILES": "ecglens.labels.mapping",
        "LabelMap": "ecglens.labels.mapping",
        "MappedLabels": "ecglens.labels.mapping",
        "MappingRow": "ecglens.labels.mapping",
        "builtin_spaces": "ecglens.labels.mapping",
        "load_label_map": "ecglens.labels.mapping",
        "load_label_space": "ecglens.labels.mapping",
        "space_names": "ecglens.labels.mapping",
    },
)
