"""What explanations run on: the model inputs of cached or file records (made by
`ecglens.preprocess.model_input`, exactly what `predict` scores), the SHAP background, evidence masks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

import numpy as np
import torch

from ecglens.bundle.meta import BundleError, BundleMeta
from ecglens.data.cache import EcgCache, open_caches
from ecglens.data.splits import SPLITS, Item, split_caches
from ecglens.io import RecordError, read_record
from ecglens.io.limits import check_values
from ecglens.preprocess import ModelInput, fit_length, model_input


def cache_input(caches: Sequence[EcgCache], item: Item, meta: BundleMeta) -> ModelInput:
    """The model input of one cached record, with its labels and (synthetic records) evidence masks."""
    cache = caches[item.cache]
    row = cache.index.iloc[item.row]
    signal = model_input(cache.signal(item.row), cache.sampling_rate_hz, cache.spec.lead_names, meta.input_spec)
    evidence = _evidence(
        str(row["source_path"]),
        cache.sampling_rate_hz,
        float(row["source_sampling_rate_hz"]),
        signal.shape[1],
        _input_offset(int(row["n_samples"]), signal.shape[1], meta),
    )
    return ModelInput(
        str(row["record_id"]), signal, str(row["source_path"]), cache.labels(meta.label_map)[item.row], evidence
    )


class CachedInputs(Sequence[ModelInput]):
    """Cached records' model inputs, each made when it is asked for (a shard reads only its own records)."""

    def __init__(self, caches: Sequence[EcgCache], items: Sequence[Item], meta: BundleMeta):
        self.caches, self.items, self.meta = caches, list(items), meta

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return CachedInputs(self.caches, self.items[index], self.meta)
        return cache_input(self.caches, self.items[index], self.meta)

    @property
    def record_ids(self) -> list[str]:
        """The records' ids, in order, read from the cache indexes only."""
        return [str(self.caches[i.cache].index["record_id"].iloc[i.row]) for i in self.items]


@overload
def split_inputs(
    caches: Sequence[EcgCache],
    meta: BundleMeta,
    split: str = ...,
    n: int | None = ...,
    seed: int = ...,
    lazy: Literal[False] = ...,
) -> list[ModelInput]: ...


@overload
def split_inputs(
    caches: Sequence[EcgCache], meta: BundleMeta, split: str, n: int | None, seed: int, lazy: Literal[True]
) -> CachedInputs: ...


@overload
def split_inputs(
    caches: Sequence[EcgCache],
    meta: BundleMeta,
    split: str = ...,
    n: int | None = ...,
    seed: int = ...,
    *,
    lazy: Literal[True],
) -> CachedInputs: ...


def split_inputs(
    caches: Sequence[EcgCache],
    meta: BundleMeta,
    split: str = "test",
    n: int | None = None,
    seed: int = 0,
    lazy: bool = False,
) -> list[ModelInput] | CachedInputs:
    """Up to ``n`` records of a split (a seeded random choice when the split is larger), split as the bundle
    was trained; ``lazy`` gives a `CachedInputs` that makes each input when used."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    items = list(split_caches(caches, meta.split, label_map=meta.label_map)[split])
    if n is not None and n < len(items):
        picks = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
        items = [items[i] for i in picks]
    inputs = CachedInputs(caches, items, meta)
    return inputs if lazy else list(inputs)


def inputs_by_id(caches: Sequence[EcgCache], meta: BundleMeta, record_ids: Sequence[str]) -> list[ModelInput]:
    """Cached records by record id.

    Raises:
        ValueError: an id in none of the caches.
    """
    out = []
    for record_id in record_ids:
        found = [
            Item(c, int(i))
            for c, cache in enumerate(caches)
            for i in np.flatnonzero(cache.index["record_id"].astype(str).to_numpy() == record_id)
        ]
        if not found:
            raise ValueError(f"record {record_id!r} is in none of the caches")
        out.append(cache_input(caches, found[0], meta))
    return out


def file_inputs(paths: Sequence[str | os.PathLike], meta: BundleMeta) -> list[ModelInput]:
    """Records read from files, as `predict` reads and prepares them."""
    out = []
    for path in paths:
        record = read_record(path, meta.lead_names)
        signal = model_input(record.signal, record.sampling_rate_hz, record.lead_names, meta.input_spec)
        evidence = _evidence(
            record.source_path,
            meta.sampling_rate_hz,
            record.sampling_rate_hz,
            signal.shape[1],
            _input_offset(round(record.duration_s * meta.sampling_rate_hz), signal.shape[1], meta),
        )
        out.append(ModelInput(record.record_id, signal, record.source_path, None, evidence))
    return out


@dataclass(frozen=True)
class Background:
    """The SHAP background: model inputs of training-split records (the study used 100).

    Expected gradients need baselines shaped like the input, and inputs are whole records of any length,
    so each background record is fitted to the input's length (`ecglens.preprocess.fit_length`: cut, or
    repeated cyclically). For 10-s records explained at 10 s this is the records themselves.
    """

    signals: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not self.signals:
            raise ValueError("the SHAP background is empty (no training-split records in these caches)")

    def tensor(self, n_samples: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The background as a batch, each record fitted to ``n_samples``."""
        return torch.from_numpy(np.stack([fit_length(s, n_samples) for s in self.signals])).to(device)

    def mean(self, n_samples: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The mean background record (leads x samples): an 'absent lead' baseline."""
        return self.tensor(n_samples, device).mean(dim=0)


def training_background(caches: Sequence[EcgCache], meta: BundleMeta, n: int = 100, seed: int = 0) -> Background:
    """``n`` training-split records of the caches as the SHAP background."""
    return Background(tuple(item.signal for item in split_inputs(caches, meta, "train", n, seed)))


BACKGROUND_FILE = "background.safetensors"
"""A bundle's own SHAP background (training-split model inputs, fp16), shipped with the starter model."""


def save_background(background: Background, path: str | os.PathLike, n_samples: int) -> Path:
    """Write a background into a bundle as ``background.safetensors`` (fp16), each record fitted to ``n_samples``
    (its records are then refitted to each input's length, as any background's)."""
    from safetensors.numpy import save_file

    path = Path(path) / BACKGROUND_FILE
    save_file({"signals": background.tensor(n_samples).numpy().astype(np.float16)}, str(path))
    path.chmod(0o644)
    return path


def read_background(path: Path, meta: BundleMeta, n: int = 100) -> np.ndarray:
    """The first ``n`` records of a ``background.safetensors``, checked before use.

    Raises:
        BundleError: no ``signals`` tensor, not records x leads x samples at the bundle's lead count, not floating
            point, too large, or holding NaN or infinite values.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as handle:  # the header first: nothing is allocated yet
            if "signals" not in handle.keys():  # noqa: SIM118
                raise BundleError(f"{path}: no 'signals' tensor (records x leads x samples)")
            piece = handle.get_slice("signals")
            shape, dtype = tuple(piece.get_shape()), piece.get_dtype()
            if len(shape) != 3 or shape[1] != len(meta.lead_names) or shape[2] < 1:
                raise BundleError(
                    f"{path}: 'signals' has shape {shape}; expected records x {len(meta.lead_names)} leads x samples"
                )
            if dtype not in ("F16", "BF16", "F32", "F64"):
                raise BundleError(f"{path}: 'signals' holds {dtype}, not floating-point samples")
            check_values(str(path), min(shape[0], n) * shape[1] * shape[2], "the background declares")
            signals = np.asarray(piece[: min(shape[0], n)], dtype=np.float32)
    except (SafetensorError, OSError) as error:
        raise BundleError(f"{path}: unreadable safetensors file ({error})") from None
    except RecordError as error:
        raise BundleError(str(error)) from None
    if not np.isfinite(signals).all():
        raise BundleError(f"{path}: 'signals' holds NaN or infinite values")
    return signals


def bundle_background(
    meta: BundleMeta, caches: Sequence[str | os.PathLike] = (), n: int = 100, bundle: str | os.PathLike | None = None
) -> Background | None:
    """The SHAP background: from ``caches`` when given, else the bundle's own ``background.safetensors``, else its
    training caches where they still exist; None when there is none."""
    if not caches and bundle is not None and (Path(bundle) / BACKGROUND_FILE).is_file():
        return Background(tuple(read_background(Path(bundle) / BACKGROUND_FILE, meta, n)))
    paths = list(caches) or (
        [c for c in meta.training_data.caches if Path(c).is_dir()] if meta.training_data is not None else []
    )
    return training_background(open_caches(paths, meta.sampling_rate_hz), meta, n) if paths else None


def required_background(
    meta: BundleMeta, caches: Sequence[str | os.PathLike] = (), n: int = 100, bundle: str | os.PathLike | None = None
) -> Background:
    """`bundle_background`, which SHAP cannot do without.

    Raises:
        ValueError: there is no background (no cache given, none shipped with the bundle, no training cache left).
    """
    background = bundle_background(meta, caches, n, bundle)
    if background is None:
        raise ValueError(
            "SHAP needs a background: pass a cache (--data, or --background for predict); its training split is used"
        )
    return background


def _input_offset(n_record_samples: int, n_input_samples: int, meta: BundleMeta) -> int:
    """Record sample at the input's first sample: under ``original`` the last samples are kept (a positive
    offset) or zeros are put in front (negative); under ``crop`` the input is the record (0)."""
    return n_record_samples - n_input_samples if meta.policy.name == "original" else 0


def _evidence(
    source_path: str, sampling_rate_hz: float, source_rate_hz: float, n_samples: int, offset: int = 0
) -> dict[str, np.ndarray] | None:
    """Synthetic ground truth next to a record (``.evidence.npz``), aligned with its model input, or None."""
    path = Path(source_path.removesuffix(".hea") + ".evidence.npz")
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        classes = [str(c) for c in data["classes"]]
        masks = data["masks"].astype(bool)
    source_time = (np.arange(n_samples) + offset) * source_rate_hz / sampling_rate_hz
    valid = (source_time >= 0) & (source_time < masks.shape[2])
    positions = np.clip(source_time.astype(int), 0, masks.shape[2] - 1)
    return {name: masks[k][:, positions] & valid[None, :] for k, name in enumerate(classes)}
