"""ecglens: interpretable deep-learning diagnosis of 12-lead ECGs.

The house rule: a stage computes a frozen result; `ecglens.report` renders it; `ecglens.commands` runs it as one
job; `ecglens.cli` parses. An analysis that trains models is a slice of `ecglens.studies`. Data flows one way,
records -> readers (`io`) -> preprocessing and cache (`preprocess`, `data`) -> models -> train and predict ->
explain and robustness -> report -> studies and serve -> commands -> CLI; the import-linter contracts in
``pyproject.toml`` keep it so (docs/design.md).

The public API is re-exported lazily (PEP 562), so ``import ecglens.leads`` does not load torch and no
module below the top of the package imports back up through this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecglens._version import __version__
from ecglens.util.lazy import lazy_exports

if TYPE_CHECKING:
    from ecglens.predict import Prediction, Predictor, load_bundle

__getattr__ = lazy_exports(__name__, dict.fromkeys(("load_bundle", "Predictor", "Prediction"), "ecglens.predict"))

__all__ = ["Prediction", "Predictor", "__version__", "load_bundle"]
