"""ecglens: interpretable deep-learning diagnosis of 12-lead ECGs.

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
