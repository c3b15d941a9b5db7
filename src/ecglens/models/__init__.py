"""Models: the study's 1D ResNet-34 and a registry of named constructors."""

from ecglens.models.device import resolve_device
from ecglens.models.inference import class_probabilities, model_device
from ecglens.models.registry import build_model, create_model, model_config, model_names
from ecglens.models.resnet1d import BasicBlock1d, ResNet1d, ResNetConfig

__all__ = ["BasicBlock1d", "ResNet1d", "ResNetConfig", "build_model", "class_probabilities", "create_model",
           "model_config", "model_device", "model_names", "resolve_device"]
