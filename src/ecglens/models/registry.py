"""A small registry of named model constructors: ``create_model(name, n_leads, n_classes)``."""

from __future__ import annotations

from dataclasses import replace

from ecglens.models.resnet1d import ResNet1d, ResNetConfig

_REGISTRY: dict[str, ResNetConfig] = {
    # The study's network (Zhang et al. 2020): 16,610,185 parameters at 12 leads and 9 classes.
    "resnet34": ResNetConfig("resnet34", layers=(3, 4, 6, 3)),
    "resnet18": ResNetConfig("resnet18", layers=(2, 2, 2, 2)),
    # A narrow ResNet for tests and quick CPU runs (same code path, about 250k parameters).
    "resnet_tiny": ResNetConfig("resnet_tiny", layers=(1, 1, 1, 1), width=16),
}


def model_names() -> list[str]:
    """Registered model names."""
    return sorted(_REGISTRY)


def model_config(name: str, n_leads: int = 12, n_classes: int = 9) -> ResNetConfig:
    """The configuration a name stands for, at the given input and output sizes."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    return replace(_REGISTRY[name], n_leads=n_leads, n_classes=n_classes)


def create_model(name: str = "resnet34", n_leads: int = 12, n_classes: int = 9) -> ResNet1d:
    """Build a registered model for ``n_leads`` input leads and ``n_classes`` outputs."""
    return build_model(model_config(name, n_leads, n_classes))


def build_model(config: ResNetConfig) -> ResNet1d:
    """Build a model from a full configuration (as stored in a bundle)."""
    return ResNet1d(config)
