"""Package names loaded when first used (PEP 562), so a light command never imports a heavy module."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, modules: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` for ``package`` that imports ``modules[name]`` when ``name`` is first read.

    Args:
        package: the package's ``__name__`` (for the error message).
        modules: each exported name and the module that defines it.
    """

    def __getattr__(name: str) -> object:
        if name in modules:
            return getattr(importlib.import_module(modules[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
