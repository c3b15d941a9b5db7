"""ecglens: interpretable deep-learning diagnosis of 12-lead ECGs.

The public API is re-exported lazily (PEP 562), so ``import ecglens.leads`` does not load torch and no
module below the top of the package imports back up through this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecglens._version import __version__

if TYPE_CHECKING:
    from ecglens.predict import Prediction, Predictor, load_bundle

_LAZY = {"load_bundle": "ecglens.predict", "Predictor": "ecglens.predict", "Prediction": "ecglens.predict"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ecglens' has no attribute {name!r}")


__all__ = ["Prediction", "Predictor", "__version__", "load_bundle"]
