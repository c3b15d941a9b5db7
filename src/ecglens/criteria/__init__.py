"""Guideline criteria beside the model: each class's measurable criteria as data with their sources
(`ecglens.criteria.table`), evaluated on a record's measurements (`ecglens.criteria.evaluate`), and where they
disagree with the model's decisions. Measurements in, frozen results out; no model, no torch.
"""

from ecglens.criteria.evaluate import (
    MET,
    NOT_ASSESSABLE,
    NOT_EVALUATED,
    NOT_MET,
    ClassCriteria,
    CriteriaResult,
    CriterionResult,
    disagreements,
    disputed,
    evaluate,
)
from ecglens.criteria.table import CLASS_TITLES, CriteriaTableError, Criterion, criteria_table

__all__ = [
    "CLASS_TITLES",
    "MET",
    "NOT_ASSESSABLE",
    "NOT_EVALUATED",
    "NOT_MET",
    "ClassCriteria",
    "CriteriaResult",
    "CriteriaTableError",
    "Criterion",
    "CriterionResult",
    "criteria_table",
    "disagreements",
    "disputed",
    "evaluate",
]
