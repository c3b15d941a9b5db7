"""Model bundles: a directory with ``model.safetensors`` and ``bundle.json``. Loading never unpickles.

``bundle.json`` holds the model configuration, class and lead names, sampling rate, input-length
policy, decision thresholds, a description of the training data, metrics and package versions.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ecglens import __version__
from ecglens.classes import CLASS_NAMES
from ecglens.data import LengthPolicy
from ecglens.leads import canonical_leads
from ecglens.models import ResNetConfig, build_model

WEIGHTS_FILE = "model.safetensors"
META_FILE = "bundle.json"
BUNDLE_VERSION = 1


class BundleError(ValueError):
    """A bundle directory is missing files or holds inconsistent contents."""


@dataclass(frozen=True)
class BundleMeta:
    """Everything about a trained model except its weights."""

    model: ResNetConfig
    class_names: tuple[str, ...]
    lead_names: tuple[str, ...]
    sampling_rate_hz: float
    policy: LengthPolicy
    thresholds: tuple[float, ...]
    training_data: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    bundle_version: int = BUNDLE_VERSION

    def to_json(self) -> str:
        """JSON text of the metadata."""
        return json.dumps(asdict(self), indent=2, default=_plain)

    @classmethod
    def from_dict(cls, data: dict, where: str) -> BundleMeta:
        """Validate and build from parsed JSON."""
        try:
            if data.get("bundle_version") != BUNDLE_VERSION:
                raise BundleError(f"{where}: bundle version {data.get('bundle_version')}, expected {BUNDLE_VERSION}")
            model = dict(data["model"])
            model["layers"] = tuple(model["layers"])
            meta = cls(
                model=ResNetConfig(**model),
                class_names=tuple(data["class_names"]),
                lead_names=canonical_leads(data["lead_names"]),
                sampling_rate_hz=float(data["sampling_rate_hz"]),
                policy=LengthPolicy(**data["policy"]),
                thresholds=tuple(float(t) for t in data["thresholds"]),
                training_data=dict(data.get("training_data", {})),
                metrics=dict(data.get("metrics", {})),
                versions=dict(data.get("versions", {})),
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, BundleError):
                raise
            raise BundleError(f"{where}: invalid bundle metadata ({type(error).__name__}: {error})") from None
        if len(meta.thresholds) != len(meta.class_names) or meta.model.n_classes != len(meta.class_names):
            raise BundleError(f"{where}: {len(meta.class_names)} classes, {len(meta.thresholds)} thresholds, "
                              f"model outputs {meta.model.n_classes}")
        if meta.model.n_leads != len(meta.lead_names):
            raise BundleError(f"{where}: model takes {meta.model.n_leads} leads but {len(meta.lead_names)} are named")
        return meta


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in bundle.json")


def package_versions() -> dict[str, str]:
    """Versions recorded with every bundle."""
    import scipy
    import wfdb

    return {"ecglens": __version__, "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "wfdb": wfdb.__version__, "python": platform.python_version()}


def default_meta(model_config: ResNetConfig, lead_names: tuple[str, ...], sampling_rate_hz: float,
                 policy: LengthPolicy, **extra) -> BundleMeta:
    """Metadata with 0.5 thresholds and the current package versions."""
    return BundleMeta(model=model_config, class_names=CLASS_NAMES[: model_config.n_classes],
                      lead_names=tuple(lead_names), sampling_rate_hz=sampling_rate_hz, policy=policy,
                      thresholds=(0.5,) * model_config.n_classes, versions=package_versions(), **extra)


def save_bundle(path: str | os.PathLike, model: torch.nn.Module, meta: BundleMeta) -> Path:
    """Write weights (safetensors) and metadata (JSON) into ``path``; files are replaced atomically."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / (WEIGHTS_FILE + ".tmp")))
    os.replace(path / (WEIGHTS_FILE + ".tmp"), path / WEIGHTS_FILE)
    (path / (META_FILE + ".tmp")).write_text(meta.to_json())
    os.replace(path / (META_FILE + ".tmp"), path / META_FILE)
    return path


def update_meta(path: str | os.PathLike, **changes) -> BundleMeta:
    """Rewrite some metadata fields of a saved bundle (thresholds, metrics) and return the result."""
    meta = replace(read_meta(path), **changes)
    target = Path(path) / META_FILE
    (target.with_suffix(".tmp")).write_text(meta.to_json())
    os.replace(target.with_suffix(".tmp"), target)
    return meta


def read_meta(path: str | os.PathLike) -> BundleMeta:
    """Read and validate ``bundle.json``."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise BundleError(f"{path}: not a bundle ({META_FILE} is missing)")
    try:
        data = json.loads(meta_path.read_text())
    except json.JSONDecodeError as error:
        raise BundleError(f"{meta_path}: not valid JSON ({error})") from None
    return BundleMeta.from_dict(data, str(meta_path))


def load_weights(path: str | os.PathLike, meta: BundleMeta, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the bundle's model and load its safetensors weights, checking names and shapes."""
    weights_path = Path(path) / WEIGHTS_FILE
    if not weights_path.is_file():
        raise BundleError(f"{path}: {WEIGHTS_FILE} is missing")
    try:
        state = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise BundleError(f"{weights_path}: unreadable safetensors file ({error})") from None
    model = build_model(meta.model)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise BundleError(f"{weights_path}: weights do not fit {meta.model.name} "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})")
    model.load_state_dict(state)
    return model.to(device).eval()


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, BundleMeta]:
    """Load a bundle's model (in eval mode) and metadata."""
    meta = read_meta(path)
    return load_weights(path, meta, device), meta
