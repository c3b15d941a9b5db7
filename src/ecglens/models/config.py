"""A model's shape, as a bundle stores it: plain data, no torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResNetConfig:
    """Shape of a `ResNet1d`."""

    name: str = "resnet34"
    n_leads: int = 12
    n_classes: int = 9
    layers: tuple[int, ...] = (3, 4, 6, 3)
    width: int = 64
    dropout: float = 0.2
    members: int = 1
    """Networks of this shape fused into one (an ensemble, `fuse_members`): each convolution is grouped, one
    group per member, and the output is the members' mean logit."""
