"""A bundle's weights: saved and loaded as safetensors (never unpickled), checked against the configuration."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ecglens.bundle.meta import WEIGHTS_FILE, BundleError, BundleMeta, read_meta, resolve_bundle, write_meta
from ecglens.models import build_model, resolve_device
from ecglens.models.resnet1d import ResNet1d

MAX_PARAMETERS = 100_000_000
"""The most parameters a bundle's configuration may build (the study's ResNet-34 has 16.6 million): a bundle is
input too, and a configuration in range stage by stage could still ask for gigabytes."""
_FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})
_INT_DTYPES = frozenset({"I64", "I32"})


def save_bundle(path: str | os.PathLike, model: torch.nn.Module, meta: BundleMeta) -> Path:
    """Write weights (safetensors) and metadata (JSON) into ``path``; files are replaced atomically."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / (WEIGHTS_FILE + ".tmp")))
    os.replace(path / (WEIGHTS_FILE + ".tmp"), path / WEIGHTS_FILE)
    write_meta(path, meta)
    return path


def save_ensemble(bundles: Sequence[str | os.PathLike], out: str | os.PathLike) -> BundleMeta:
    """Fuse bundles trained alike (same classes, leads, rate, input policy and split; other seeds) into one
    ensemble bundle whose output is their mean logit (`ecglens.models.resnet1d.fuse_members`).

    The ensemble starts uncalibrated, with the first member's thresholds: calibrate it on validation
    (``ecglens calibrate``) before use. A class not validated in any member is not validated in it.
    """
    from ecglens.models.resnet1d import fuse_members

    loaded = [load_model(path) for path in bundles]
    metas = [meta for _, meta in loaded]
    first = metas[0]
    for path, meta in zip(bundles, metas, strict=True):
        same = (meta.class_names, meta.lead_names, meta.sampling_rate_hz, meta.policy, meta.split) == (
            first.class_names,
            first.lead_names,
            first.sampling_rate_hz,
            first.policy,
            first.split,
        )
        if not same:
            raise ValueError(
                f"{path}: classes, leads, rate, input policy or split differ from {bundles[0]}'s; "
                "an ensemble's members are trained alike"
            )
    models = []
    for model, _ in loaded:
        model.set_temperature(np.ones(len(first.class_names)))  # members' raw logits; the ensemble is calibrated
        models.append(model.cpu())
    fused = fuse_members(models)
    unknown = dict(item for meta in metas for item in meta.not_validated)
    members = [
        {
            "bundle": str(path),
            "epoch": meta.training_data.epoch if meta.training_data else None,
            "seed": (meta.training_data.config or {}).get("seed") if meta.training_data else None,
            "val_macro_auc": (meta.metrics.get("epoch_log") or {}).get("val_macro_auc"),
        }
        for path, meta in zip(bundles, metas, strict=True)
    ]
    meta = replace(
        first,
        model=fused.config,
        temperatures=None,
        not_validated=tuple(unknown.items()),
        metrics={"members": members},
        threshold_origin=first.threshold_origin,
    )
    save_bundle(out, fused, meta)
    return meta


def load_weights(path: str | os.PathLike, meta: BundleMeta, device: str | torch.device = "cpu") -> ResNet1d:
    """Build the bundle's model and load its safetensors weights, checking names and shapes."""
    path = resolve_bundle(path)
    weights_path = Path(path) / WEIGHTS_FILE
    if not weights_path.is_file():
        raise BundleError(f"{path}: {WEIGHTS_FILE} is missing")
    with torch.device("meta"):  # the configuration's shapes, without allocating any memory
        reference = build_model(meta.model).state_dict()
    expected = {k: tuple(v.shape) for k, v in reference.items()}
    n_values = sum(v.numel() for v in reference.values())
    if n_values > MAX_PARAMETERS:
        raise BundleError(
            f"{path}: {meta.model.name} as configured has {n_values:,} parameters, more than the "
            f"{MAX_PARAMETERS:,} ecglens loads"
        )
    try:
        with safe_open(str(weights_path), framework="pt") as handle:  # reads the header only
            slices = {k: handle.get_slice(k) for k in handle.keys()}  # noqa: SIM118
            declared = {k: tuple(v.get_shape()) for k, v in slices.items()}
            dtypes = {k: v.get_dtype() for k, v in slices.items()}
    except (SafetensorError, OSError, ValueError) as error:
        raise BundleError(f"{weights_path}: unreadable safetensors file ({error})") from None
    missing = sorted(set(expected) - set(declared))
    unexpected = sorted(set(declared) - set(expected))
    wrong = [k for k in expected if k in declared and declared[k] != expected[k]]
    if missing or unexpected or wrong:
        raise BundleError(
            f"{weights_path}: weights do not fit {meta.model.name} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})"
        )
    kinds = [
        k
        for k, v in reference.items()
        if (dtypes[k] in _FLOAT_DTYPES) != v.is_floating_point() or dtypes[k] not in _FLOAT_DTYPES | _INT_DTYPES
    ]
    if kinds:
        named = ", ".join(f"{k} is {dtypes[k]}" for k in kinds[:3])
        raise BundleError(
            f"{weights_path}: tensors of the wrong kind: {named}"
            " (weights are floating point; integers or booleans would be cast silently)"
        )
    try:
        state = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise BundleError(f"{weights_path}: unreadable safetensors file ({error})") from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise BundleError(f"{weights_path}: non-finite weights (NaN or infinite) in {', '.join(bad[:3])}")
    model = build_model(meta.model)
    model.load_state_dict(state)
    if meta.temperatures is not None:
        model.set_temperature(meta.temperatures)
    return model.to(device).eval()


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[ResNet1d, BundleMeta]:
    """Load a bundle's model (in eval mode, on ``device``: a torch device or a name such as ``auto``) and metadata."""
    meta = read_meta(path)
    return load_weights(path, meta, resolve_device(device) if isinstance(device, str) else device), meta
