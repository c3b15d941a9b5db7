"""Models: the study's 1D ResNet-34 and a registry of named constructors.

Names are re-exported lazily (PEP 562): ``ecglens.models.config`` (a model's shape, as a bundle stores it) is read
without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecglens.util.lazy import lazy_exports

if TYPE_CHECKING:
    from ecglens.models.config import ResNetConfig
    from ecglens.models.device import resolve_device
    from ecglens.models.inference import class_probabilities, model_device
    from ecglens.models.registry import build_model, create_model, model_config, model_names
    from ecglens.models.resnet1d import BasicBlock1d, ResNet1d

__getattr__ = lazy_exports(
    __name__,
    {
        "resolve_device": "ecglens.models.device",
        "class_probabilities": "ecglens.models.inference",
        "model_device": "ecglens.models.inference",
        "build_model": "ecglens.models.registry",
        "create_model": "ecglens.models.registry",
        "model_config": "ecglens.models.registry",
        "model_names": "ecglens.models.registry",
        "BasicBlock1d": "ecglens.models.resnet1d",
        "ResNet1d": "ecglens.models.resnet1d",
        "ResNetConfig": "ecglens.models.config",
    },
)

__all__ = [
    "BasicBlock1d",
    "ResNet1d",
    "ResNetConfig",
    "build_model",
    "class_probabilities",
    "create_model",
    "model_config",
    "model_device",
    "model_names",
    "resolve_device",
]
