"""A learned delineator: a small 1D U-Net that labels every sample of a lead as none, P, QRS or T.

Each lead is one item of a batch (12 leads, 12 items), resampled to `RATE_HZ`, its baseline removed and its
amplitude scaled to a robust unit; a second input channel carries the record's multi-lead context (the mean
absolute scaled amplitude over the leads), so a lead where a wave is nearly isoelectric still sees where the
other leads put it. The per-sample classes become (onset, peak, offset) triplets after small-segment cleanup
(gaps shorter than `MERGE_GAP_S` closed, waves shorter than `MIN_DURATION_S` dropped, waves cut by the record's
edges dropped).

The shipped weights (``weights/delineator.safetensors``, trained on the 100 shared LUDB records by
``python -m ecglens.train.delineator``; see ``weights/DELINEATOR_CARD.md``) are read with safetensors, never
unpickled, and checked name by name, shape by shape against the architecture the file's metadata names.
torch is imported only when the network is built.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ecglens.waves.marks import OK, WAVES, LeadWaves, WaveMarks, waves_from_triplets

RATE_HZ = 250.0
"""The rate the network reads (4 ms a sample)."""
CLASSES = ("none", *WAVES)
"""The network's per-sample classes, in output order."""
WEIGHTS = Path(__file__).with_name("weights") / "delineator.safetensors"
"""The shipped weights."""
MAX_WEIGHTS_BYTES = 4_000_000
"""The largest weights file read (the shipped one is well under 1 MB): a larger one is refused unread."""
MAX_CHANNELS = 256
MAX_LEVELS = 6
MIN_DURATION_S = {"P": 0.030, "QRS": 0.030, "T": 0.060}
"""Waves shorter than this are dropped (a few samples of one class inside another wave are noise)."""
MERGE_GAP_S = 0.016
"""Two pieces of the same wave separated by fewer seconds of 'none' are one wave."""
NO_P = "no P wave found"


class DelineatorWeightsError(ValueError):
    """A weights file that is missing, too large, unreadable, or does not fit the architecture it names."""


@dataclass(frozen=True)
class NetConfig:
    """The U-Net's shape: channels per level (the last is the bottleneck), kernel size, input channels."""

    channels: tuple[int, ...] = (8, 16, 32, 64)
    kernel_size: int = 7
    in_channels: int = 2

    def check(self) -> NetConfig:
        """This configuration, or `DelineatorWeightsError` when it is out of range."""
        ok = (
            2 <= len(self.channels) <= MAX_LEVELS
            and all(isinstance(c, int) and 1 <= c <= MAX_CHANNELS for c in self.channels)
            and isinstance(self.kernel_size, int)
            and 1 <= self.kernel_size <= 31
            and self.kernel_size % 2 == 1
            and self.in_channels in (1, 2)
        )
        if not ok:
            raise DelineatorWeightsError(f"delineator configuration out of range: {self}")
        return self

    @property
    def multiple(self) -> int:
        """Input lengths are padded to a multiple of this (one halving per level below the first)."""
        return 2 ** (len(self.channels) - 1)


@functools.cache
def _classes() -> Any:
    """The torch module class, defined on first use so that importing this module never imports torch."""
    import torch
    from torch import nn

    def block(n_in: int, n_out: int, kernel: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv1d(n_in, n_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm1d(n_out),
            nn.ReLU(inplace=True),
            nn.Conv1d(n_out, n_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm1d(n_out),
            nn.ReLU(inplace=True),
        )

    class UNet1d(nn.Module):
        """Encoder: a double convolution per level, halving the length between levels; decoder: upsampling,
        the skip connection concatenated, a double convolution; a 1x1 convolution to the classes."""

        def __init__(self, config: NetConfig) -> None:
            super().__init__()
            c, k = config.channels, config.kernel_size
            self.config = config
            self.down = nn.ModuleList(
                [block(config.in_channels, c[0], k)] + [block(c[i - 1], c[i], k) for i in range(1, len(c))]
            )
            self.up = nn.ModuleList([block(c[i + 1] + c[i], c[i], k) for i in range(len(c) - 1)])
            self.head = nn.Conv1d(c[0], len(CLASSES), 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = []
            for i, level in enumerate(self.down):
                if i:
                    x = nn.functional.max_pool1d(x, 2)
                x = level(x)
                skips.append(x)
            for i in reversed(range(len(self.up))):
                x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
                x = self.up[i](torch.cat([x, skips[i]], dim=1))
            return self.head(x)

    return UNet1d


def build_net(config: NetConfig | None = None) -> Any:
    """A fresh (untrained) U-Net of ``config`` (the default shape when None)."""
    return _classes()((config or NetConfig()).check())


def prepare(signal: np.ndarray, sampling_rate_hz: float) -> np.ndarray:
    """The network's input for a record (leads x samples, mV): leads x 2 x samples at `RATE_HZ`, float32.

    Channel 0 is the lead, resampled, high-passed at 0.5 Hz (baseline wander removed) and divided by its 99th
    percentile of absolute amplitude; channel 1 the mean over the leads of channel 0's absolute value, scaled
    alike. Missing values (NaN) read as 0.
    """
    from scipy.signal import butter, resample_poly, sosfiltfilt

    x = np.nan_to_num(np.asarray(signal, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    ratio = Fraction(RATE_HZ / float(sampling_rate_hz)).limit_denominator(1000)
    if ratio != 1:
        x = resample_poly(x, ratio.numerator, ratio.denominator, axis=1)
    if x.shape[1] > 12:
        sos = butter(2, 0.5, btype="highpass", fs=RATE_HZ, output="sos")
        x = sosfiltfilt(sos, x, axis=1, padlen=min(x.shape[1] - 1, 3 * 8))
    x = x / np.maximum(np.percentile(np.abs(x), 99, axis=1, keepdims=True), 1e-3)
    context = np.abs(x).mean(axis=0, keepdims=True)
    context = context / max(float(np.percentile(context, 99)), 1e-3)
    return np.stack([x, np.repeat(context, len(x), axis=0)], axis=1).astype(np.float32)


def read_weights(path: str | os.PathLike = WEIGHTS, device: str = "cpu") -> Any:
    """The network in ``path`` (safetensors; its metadata names the architecture), in evaluation mode on
    ``device``.

    Raises:
        DelineatorWeightsError: the file is missing, larger than `MAX_WEIGHTS_BYTES`, not safetensors, or its
            tensors' names, shapes or dtypes are not those of the architecture its metadata names.
    """
    import torch
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise DelineatorWeightsError(f"{path}: no delineator weights file")
    if path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise DelineatorWeightsError(
            f"{path}: {path.stat().st_size} bytes, more than the {MAX_WEIGHTS_BYTES} a delineator's weights may have"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            config = _config_of(metadata, path)
            model = build_net(config)
            expected = model.state_dict()
            names = set(handle.keys())
            if names != set(expected):
                missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
                raise DelineatorWeightsError(
                    f"{path}: tensors do not fit the network (missing {missing[:3]}, extra {extra[:3]})"
                )
            state = {}
            for name in expected:
                tensor = handle.get_tensor(name)
                if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
                    raise DelineatorWeightsError(
                        f"{path}: tensor {name} is {tuple(tensor.shape)} {tensor.dtype}, "
                        f"the network needs {tuple(expected[name].shape)} {expected[name].dtype}"
                    )
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise DelineatorWeightsError(f"{path}: tensor {name} holds values that are not finite")
                state[name] = tensor
    except (SafetensorError, OSError) as error:
        raise DelineatorWeightsError(f"{path}: not a readable safetensors file ({error})") from None
    model.load_state_dict(state)
    return model.eval().to(device)


def _config_of(metadata: dict[str, str], path: Path) -> NetConfig:
    try:
        raw = json.loads(metadata["config"])
        config = NetConfig(tuple(raw["channels"]), raw["kernel_size"], raw["in_channels"])
    except (KeyError, TypeError, ValueError) as error:
        raise DelineatorWeightsError(f"{path}: metadata does not name the network's configuration ({error})") from None
    return config.check()


def write_weights(model: Any, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Save ``model``'s weights and configuration as safetensors (what `read_weights` reads)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = asdict(model.config)
    save_file(state, str(path), metadata={**(metadata or {}), "config": json.dumps(config)})
    return path


@functools.lru_cache(maxsize=4)
def shipped(device: str = "cpu") -> Any:
    """The shipped network on ``device``, read once per process."""
    return read_weights(WEIGHTS, device)


LUDB_FLOORS = {"QRS": 0.2, "T": 0.2}
"""Floors that fit LUDB's global rule, **not used by default** (`labels_of`): each QRS the network finds grown, on
both sides, over the samples next to it where QRS's probability stays above 0.2, and each T wave forward (its
end) where T's does (hysteresis: no wave is created). With the most likely class alone every lead's
boundaries are unbiased against LUDB's cardiologists, yet the global QRS and QT, the earliest onset to the latest
offset among the leads (`ecglens.waves.measure`), read 13-20 ms short of the same rule over their per-lead
marks, which spread wider across the leads. These floors were chosen by nested record-disjoint cross-validation
on the shared LUDB half (each fold choosing, on the other four folds' records, the pair with the least QRS + QT
MAE among QRS floors none, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05 and T floors none, 0.3, 0.2, 0.1; every fold chose
(0.2, 0.2)); held out they reach QRS MAE 9.5 ms instead of 14.4, 16.6 instead of 30.0 on QRS >= 140 ms, QT 10.4
instead of 21.8, at the price of PR 10.4 instead of 8.3 and heart rate 1.6 instead of 1.1 bpm. But on the shared
clinical files (five recordings whose carts state their own intervals) they move the QRS further from
what the carts' own programs measured: 146 ms against the cart's 120 (the most likely class alone: 130), 103
against 75 (91), 134 against 94 (118), 102 against 84 (94), nearer on one only (134 against 135; 118); and the QT
18-40 ms above the carts on every file (2-19 ms with the most likely class). The two references disagree by about
20 ms, so the default stays with the most likely class; ``python benchmarks/bench_delineation.py --methods
net,net-floors --cv DIR`` compares them."""


def _logits(model: Any, signal: np.ndarray, sampling_rate_hz: float, device: str) -> Any:
    """The network's logits for every lead at `RATE_HZ` (a tensor on ``device``: leads x `CLASSES` x samples)."""
    import torch

    x = prepare(signal, sampling_rate_hz)
    n = x.shape[-1]
    multiple = model.config.multiple
    padded = np.pad(x, ((0, 0), (0, 0), (0, (-n) % multiple)), mode="edge") if n % multiple else x
    with torch.inference_mode():
        return model(torch.from_numpy(np.ascontiguousarray(padded)).to(device))[..., :n]


def probabilities(model: Any, signal: np.ndarray, sampling_rate_hz: float, device: str = "cpu") -> np.ndarray:
    """Per-sample class probabilities of every lead at `RATE_HZ`: leads x `CLASSES` x samples, float32."""
    import torch

    return torch.softmax(_logits(model, signal, sampling_rate_hz, device).float(), dim=1).cpu().numpy()


def labels_of(probability: np.ndarray, floors: Mapping[str, float] | None = None) -> np.ndarray:
    """Per-sample classes (indices into `CLASSES`, int8) from `probabilities`: the most likely class, then, with
    ``floors`` (e.g. `LUDB_FLOORS`), each T wave grown forward and each QRS grown on both sides while their
    probability stays above their floors."""
    floors = floors or {}
    labels = probability.argmax(axis=1).astype(np.int8)
    for kind, both_sides in (("T", False), ("QRS", True)):
        if kind in floors:
            labels = _grown(labels, probability[:, CLASSES.index(kind)], CLASSES.index(kind), floors[kind], both_sides)
    return labels


def _grown(labels: np.ndarray, probability: np.ndarray, kind: int, floor: float, both_sides: bool) -> np.ndarray:
    """``labels`` (leads x samples) with each run of ``kind`` grown over the samples next to it where
    ``probability`` stays above ``floor``: on both sides and over any label, or forward only and into 'none'."""
    out = labels.copy()
    for lead in range(len(labels)):
        above = np.concatenate([[0], (probability[lead] > floor).astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(above))
        core = labels[lead] == kind
        for first, end in zip(edges[::2], edges[1::2], strict=True):
            inside = np.flatnonzero(core[first:end])
            if not inside.size:
                continue  # no wave of this kind here: nothing is created
            span = out[lead, first if both_sides else first + int(inside[0]) : end]
            span[(span == 0) | both_sides] = kind
    return out


def segment(
    model: Any,
    signal: np.ndarray,
    sampling_rate_hz: float,
    device: str = "cpu",
    floors: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Per-sample classes (indices into `CLASSES`) of every lead at `RATE_HZ`: leads x samples, int8 (`labels_of`
    with ``floors``: none by default, each sample's most likely class, taken from the logits on ``device``)."""
    if floors:
        return labels_of(probabilities(model, signal, sampling_rate_hz, device), floors)
    import torch

    return _logits(model, signal, sampling_rate_hz, device).argmax(dim=1).to(torch.int8).cpu().numpy()


def runs(labels: np.ndarray, kind: int) -> list[tuple[int, int]]:
    """The (first, last) samples of the runs of ``kind`` in one lead's labels, after merging runs separated by
    short gaps of 'none' and dropping short runs."""
    name = CLASSES[kind]
    inside = np.concatenate([[False], labels == kind, [False]])
    edges = np.flatnonzero(np.diff(inside.astype(np.int8)))
    found = [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    gap = round(MERGE_GAP_S * RATE_HZ)
    merged: list[tuple[int, int]] = []
    for first, last in found:
        if merged and first - merged[-1][1] - 1 <= gap and not labels[merged[-1][1] + 1 : first].any():
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    shortest = MIN_DURATION_S[name] * RATE_HZ
    return [(a, b) for a, b in merged if b - a + 1 >= shortest and a > 0 and b < len(labels) - 1]


def lead_waves(lead: str, labels: np.ndarray, trace: np.ndarray, sampling_rate_hz: float) -> LeadWaves:
    """One lead's triplets at ``sampling_rate_hz`` from its labels at `RATE_HZ`; each peak is the sample farthest
    from the line joining the wave's onset and offset in ``trace`` (the lead at ``sampling_rate_hz``)."""
    ratio = sampling_rate_hz / RATE_HZ
    kinds, onsets, peaks, offsets = [], [], [], []
    last = len(trace) - 1
    for index, kind in enumerate(CLASSES[1:], start=1):
        for first, final in runs(labels, index):
            onset = min(round(first * ratio), last)
            offset = min(round((final + 1) * ratio) - 1, last)
            if offset <= onset:
                continue
            piece = trace[onset : offset + 1]
            line = np.linspace(piece[0], piece[-1], len(piece))
            kinds.append(kind)
            onsets.append(onset)
            peaks.append(onset + int(np.argmax(np.abs(piece - line))))
            offsets.append(offset)
    waves = waves_from_triplets(kinds, onsets, peaks, offsets)
    return LeadWaves(lead, waves, OK, () if len(waves["P"]) else (NO_P,))


def delineate_net(
    signal: np.ndarray,
    sampling_rate_hz: float,
    lead_names: Sequence[str],
    device: str = "cpu",
    model: Any | None = None,
    floors: Mapping[str, float] | None = None,
) -> WaveMarks:
    """P, QRS and T triplets of every lead of ``signal`` (leads x samples, mV) by the network (the shipped one
    unless ``model`` is given), on ``device`` (``cpu``, ``cuda``); samples labelled by `labels_of` with
    ``floors`` (none by default)."""
    model = shipped(device) if model is None else model
    labels = segment(model, signal, sampling_rate_hz, device, floors)
    x = np.nan_to_num(np.asarray(signal, np.float64))
    leads = tuple(lead_waves(name, labels[k], x[k], float(sampling_rate_hz)) for k, name in enumerate(lead_names))
    return WaveMarks(float(sampling_rate_hz), leads, "ecglens U-Net delineator (LUDB)")
