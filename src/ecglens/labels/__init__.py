"""Label spaces: their classes, mapping tables, multi-hot targets and Challenge 2021 scoring."""

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

__all__ = ["DEFAULT_SPACE", "DROP", "PROFILES", "ChallengeScoring", "LabelMap", "MappedLabels", "MappingRow",
           "builtin_spaces", "challenge_scoring", "challenge_weights", "load_label_map", "load_label_space",
           "space_names"]
