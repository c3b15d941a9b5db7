"""Diagnose new ECG files with a trained bundle: preprocessing as in training, batched inference,
decisions under the bundle's thresholds and signal-quality warnings; PyTorch or ONNX Runtime.

Python API::

    import ecglens
    predictor = ecglens.load_bundle("runs/demo/best")
    result = predictor.predict(signal_mv, sampling_rate_hz=500, lead_names=["I", "II", ...])
    print(result.to_json())
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ecglens.data import evaluation_input
from ecglens.io import ReadIssue, RecordError, read_record
from ecglens.io.record import Record, finish_signal
from ecglens.io.sources import RECORD_SUFFIXES
from ecglens.leads import LEAD_NAMES
from ecglens.preprocess import resample
from ecglens.train.bundle import BundleMeta, load_model
from ecglens.train.loop import resolve_device

ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class Prediction:
    """One record's result: probabilities, decisions under the thresholds, quality warnings."""

    record_id: str
    source: str
    probabilities: dict[str, float]
    decisions: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())
    duration_s: float = 0.0

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return asdict(self)

    def to_json(self) -> str:
        """One JSON object (a JSON Lines row)."""
        return json.dumps(self.to_dict())


def quality_warnings(signal: np.ndarray, sampling_rate_hz: float, lead_names: Sequence[str],
                     expected_seconds: float) -> list[str]:
    """Signal-quality warnings: flat leads, saturation, short records, implausible amplitude units."""
    out = []
    span = np.ptp(signal, axis=1)
    flat = [name for name, s in zip(lead_names, span, strict=True) if s < 0.02]
    if flat:
        out.append(f"flat lead(s): {', '.join(flat)}")
    saturated = []
    for name, lead, s in zip(lead_names, signal, span, strict=True):
        if s >= 0.02:
            at_edges = np.mean((lead >= lead.max() - 1e-6 * s) | (lead <= lead.min() + 1e-6 * s))
            if at_edges > 0.02:
                saturated.append(name)
    if saturated:
        out.append(f"possible saturation (clipped samples) in {', '.join(saturated)}")
    duration = signal.shape[1] / sampling_rate_hz
    if duration < min(expected_seconds, 10.0) * 0.8:
        out.append(f"short record: {duration:.1f} s (the model was trained on {expected_seconds:g}-s inputs)")
    peak = float(np.percentile(np.abs(signal), 99.5)) if signal.size else 0.0
    if peak > 20:
        out.append(f"implausible amplitudes (99.5th percentile {peak:.0f}): microvolts or ADC units, not mV?")
    elif 0 < peak < 0.02:
        out.append(f"implausible amplitudes (99.5th percentile {peak:.4f}): volts, not mV?")
    return out


class Predictor:
    """A bundle ready for inference with the PyTorch model or its ONNX export."""

    def __init__(self, bundle: str | os.PathLike, device: str = "auto", engine: str = "torch"):
        self.bundle = Path(bundle)
        self.device = resolve_device(device)
        self.model, self.meta = load_model(bundle, self.device)
        self.meta: BundleMeta
        self.engine = engine
        self._session = None
        if engine == "onnx":
            onnx_path = self.bundle / ONNX_FILE
            if not onnx_path.is_file():
                raise FileNotFoundError(f"{onnx_path} is missing: run 'ecglens export onnx --checkpoint {bundle}'")
            import onnxruntime

            self._session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        elif engine != "torch":
            raise ValueError(f"engine must be 'torch' or 'onnx', not {engine!r}")

    def prepare(self, record: Record) -> tuple[np.ndarray, list[str]]:
        """The model input of a record (resampled, leads ordered, length policy) and its warnings."""
        signal = resample(record.signal, record.sampling_rate_hz, self.meta.sampling_rate_hz)
        warnings_ = quality_warnings(record.signal, record.sampling_rate_hz, record.lead_names,
                                     self.meta.policy.seconds)
        return evaluation_input(signal, self.meta.policy, self.meta.sampling_rate_hz), warnings_

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities of a batch of prepared inputs (records x leads x samples)."""
        if self._session is not None:
            logits = self._session.run(None, {"ecg": batch.astype(np.float32)})[0]
            return 1 / (1 + np.exp(-logits))
        with torch.no_grad():
            return torch.sigmoid(self.model(torch.from_numpy(batch).to(self.device))).float().cpu().numpy()

    def _result(self, record: Record, probabilities: np.ndarray, warnings_: list[str]) -> Prediction:
        names = self.meta.class_names
        decisions = tuple(n for n, p, t in zip(names, probabilities, self.meta.thresholds, strict=True) if p >= t)
        return Prediction(record.record_id, record.source_path, {n: float(p) for n, p in zip(names, probabilities,
                                                                                              strict=True)},
                          decisions, tuple(warnings_), record.duration_s)

    def predict(self, signal: np.ndarray, sampling_rate_hz: float, lead_names: Sequence[str] = LEAD_NAMES,
                record_id: str = "signal") -> Prediction:
        """Predict one signal (leads x samples, mV) with its rate and lead names (any order)."""
        checked = finish_signal(record_id, np.asarray(signal, dtype=np.float64), list(lead_names),
                                self.meta.lead_names)
        record = Record(record_id, "array", checked, float(sampling_rate_hz), self.meta.lead_names)
        return self.predict_records([record])[0]

    def predict_records(self, records: Sequence[Record], batch_size: int = 32) -> list[Prediction]:
        """Predict records, batching those of equal input length."""
        prepared = [self.prepare(record) for record in records]
        results: list[Prediction | None] = [None] * len(records)
        lengths = np.array([p[0].shape[1] for p in prepared])
        for length in np.unique(lengths):
            members = np.flatnonzero(lengths == length)
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                probabilities = self.probabilities(np.stack([prepared[i][0] for i in chunk]))
                for i, p in zip(chunk, probabilities, strict=True):
                    results[i] = self._result(records[i], p, prepared[i][1])
        return [r for r in results if r is not None]


def load_bundle(path: str | os.PathLike, device: str = "auto", engine: str = "torch") -> Predictor:
    """Load a bundle for prediction (the package's public entry point)."""
    return Predictor(path, device, engine)


def find_record_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Record files named directly or found below directories (a ``.mat`` with a ``.hea`` counts once)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.suffix.lower() in RECORD_SUFFIXES)
            found += [p for p in candidates if not (p.suffix.lower() == ".mat" and p.with_suffix(".hea").is_file())]
        else:
            found.append(path)
    return found


def predict_files(predictor: Predictor, paths: Sequence[str | os.PathLike], batch_size: int = 32,
                  sampling_rate_hz: float | None = None, lead_names: tuple[str, ...] = LEAD_NAMES,
                  progress: bool = True) -> tuple[list[Prediction], list[ReadIssue]]:
    """Predict every record file; unreadable ones are listed with their reason, never stop the batch."""
    from tqdm.auto import tqdm

    files = find_record_files(paths)
    predictions: list[Prediction] = []
    issues: list[ReadIssue] = []
    pending: list[Record] = []
    bar = tqdm(total=len(files), desc="predict", unit="rec", disable=not progress, file=sys.stderr)
    for path in files:
        try:
            if not path.exists():
                raise RecordError(str(path), "no such file")
            pending.append(read_record(path, predictor.meta.lead_names, sampling_rate_hz, lead_names))
        except RecordError as error:
            issues.append(ReadIssue(error.path, error.reason))
        if len(pending) >= batch_size:
            predictions += predictor.predict_records(pending, batch_size)
            pending = []
        bar.update()
    predictions += predictor.predict_records(pending, batch_size)
    bar.close()
    return predictions, issues


def export_onnx(bundle: str | os.PathLike, opset: int = 18) -> Path:
    """Write ``model.onnx`` into the bundle: input ``ecg`` (batch x leads x samples, batch and length
    dynamic), output ``logits``."""
    model, meta = load_model(bundle, "cpu")
    window = max(round(meta.policy.seconds * meta.sampling_rate_hz), 64)
    example = torch.zeros(2, len(meta.lead_names), window)
    batch = torch.export.Dim("batch", min=1, max=4096)
    length = torch.export.Dim("length", min=64, max=10_000_000)
    path = Path(bundle) / ONNX_FILE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.export internals, not ours
        torch.onnx.export(model, (example,), str(path), input_names=["ecg"], output_names=["logits"], dynamo=True,
                          dynamic_shapes={"x": {0: batch, 2: length}}, opset_version=opset, verbose=False,
                          external_data=False)
    return path
