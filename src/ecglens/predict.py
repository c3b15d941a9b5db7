"""Diagnose ECG records with a trained bundle: the model input of `ecglens.preprocess.model_input`, batched
inference, decisions under the bundle's thresholds and signal-quality warnings; PyTorch or ONNX Runtime.

`Predictor` is the one loaded-bundle object of ecglens: prediction uses it, and explanations take its
``model`` and ``meta`` explicitly.

Python API::

    import ecglens
    predictor = ecglens.load_bundle("ecglens-out/demo/run/best")
    result = predictor.predict(signal_mv, sampling_rate_hz=500, lead_names=["I", "II", ...])
    print(result.to_json())
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ecglens.bundle.meta import SYNTHETIC_WARNING, is_synthetic_source, resolve_bundle
from ecglens.bundle.weights import load_model
from ecglens.criteria import NOT_EVALUATED, CriteriaResult, disagreements, evaluate
from ecglens.criteria.fused import DECISION_RULES, FusedDecision, bundle_fused
from ecglens.io import ReadIssue, read_record
from ecglens.io.record import Record, finish_signal, issue_from, not_samples
from ecglens.io.sources import RECORD_SUFFIXES, is_dataset_table, unnamed_dicom
from ecglens.leads import LEAD_NAMES
from ecglens.models import resolve_device
from ecglens.preprocess import ModelInput, baseline_drift_mv, batches_by_length, model_input
from ecglens.waves.beats import assess_beats
from ecglens.waves.measure import Measurements

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
    status: str = "ok"
    """``ok``, or ``not interpretable`` when the record fails the quality rules badly (`assess_quality`):
    then it has no decisions, and its probabilities are withheld (empty) unless asked for (``--force``)."""
    reasons: tuple[str, ...] = field(default=())
    """Why a record is not interpretable."""
    true_labels: tuple[str, ...] | None = None
    """The record's own diagnoses mapped to the bundle's classes (Challenge ``#Dx``, CPSC REFERENCE.csv),
    under the bundle's label profile; None when the file carries none."""
    not_validated: dict[str, str] = field(default_factory=dict)
    """Classes the model cannot know (too few training or validation positives, or not shown better than chance on
    validation), with why: their probabilities are shown, never a decision."""
    spread: dict[str, float] | None = None
    """For an ensemble bundle (PyTorch engine): per class, the standard deviation of its members' probabilities,
    a measure of how much they disagree; None for a single network or the ONNX engine."""
    measurements: Measurements | None = None
    """Heart rate, intervals, QTc and axes from the delineated waves of the scored input (``predict
    --measurements``); None when not asked for."""
    file_format: str = ""
    """The clinical format the record was read as (``dicom``, ``hl7-aecg``, ``philips-xml``, ``ge-muse-xml``,
    ``scp-ecg``); empty for the research formats."""
    file_statements: tuple[str, ...] = ()
    """The file's own interpretation (a cart's or an over-reader's), shown apart from ecglens's decisions."""
    file_statements_left_out: int = 0
    """How many of the file's own statements were left out as possibly identifying (`ecglens.io.deidentify`)."""
    derived_leads: tuple[str, ...] = ()
    """Leads the reader computed from others (a GE MUSE file stores 8)."""
    identifiers: dict[str, str] | None = None
    """A clinical file's personal data, only when asked for (``--include-identifiers``); None otherwise."""
    file_measurements: dict[str, float] = field(default_factory=dict)
    """The measurements the file carries (its cart's), to compare with ``measurements``."""
    criteria: CriteriaResult | None = None
    """Every class's guideline criteria evaluated on ``measurements`` (`ecglens.criteria`); None without them."""
    disagreements: tuple[str, ...] = ()
    """Where the decisions and the criteria disagree (`ecglens.criteria.disagreements`): shown wherever the
    decisions are, so that a decision of SNR on a record meeting an abnormal class's criteria never goes
    without its flag."""
    decision_rule: str = "model"
    """The rule that made ``decisions`` (`ecglens.criteria.fused`): ``model`` (the model's probabilities at the
    bundle's thresholds), ``fused`` (the bundle's fused decision), ``criteria`` (the guideline criteria alone), or
    ``model (no measurements)`` where a fused decision was asked for a record without measurements."""
    decided_by: dict[str, str] = field(default_factory=dict)
    """Per decided class, what decided it: ``model``, ``fused`` or ``by criteria``."""
    model_decisions: tuple[str, ...] | None = None
    """The model's own decisions when another rule made ``decisions``; None when the model made them."""
    fused_probabilities: dict[str, float] = field(default_factory=dict)
    """The fused probability of each class the fused decision decides by its logistic model."""

    def top(self, n: int = 3) -> tuple[tuple[str, float], ...]:
        """The ``n`` highest probabilities (shown even when nothing reaches its threshold)."""
        return tuple(sorted(self.probabilities.items(), key=lambda item: -item[1])[:n])

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            **asdict(self),
            "measurements": None if self.measurements is None else self.measurements.to_dict(),
            "criteria": None if self.criteria is None else self.criteria.to_dict(),
            "disagreements": list(self.disagreements),
        }

    def with_measurements(
        self,
        measurements: Measurements,
        age: float | None = None,
        fused: FusedDecision | None = None,
        rule: str = "model",
    ) -> Prediction:
        """This prediction with ``measurements``, their heart-rate warning (`Measurements.rate_warning`) among
        its warnings (so that it reaches every output that shows warnings), every class's criteria evaluated on
        them (the record's sex from the measurements, its ``age`` in years; `ecglens.criteria.evaluate`), its
        decisions made by ``rule`` (`decide`) and the disagreements between the criteria and those decisions."""
        warning = measurements.rate_warning()
        warnings_ = self.warnings if warning is None else (*self.warnings, warning)
        criteria = evaluate(measurements, measurements.sex, age)
        measured = replace(self, measurements=measurements, warnings=warnings_, criteria=criteria)
        return measured.decide(fused, rule)

    def decide(self, fused: FusedDecision | None, rule: str = "model") -> Prediction:
        """This prediction's decisions made by ``rule`` (``model``, ``fused`` or ``criteria``; see
        `ecglens.criteria.fused`), on its criteria when it has them (``fused`` falls back to the model without
        them, and says so in ``decision_rule``), with the disagreements between the criteria and those decisions.
        ``model`` leaves the model's decisions exactly as they are."""
        model = self.decisions if self.model_decisions is None else self.model_decisions
        if rule not in DECISION_RULES:
            raise ValueError(f"decision rule is one of {', '.join(DECISION_RULES)}, not {rule!r}")
        if rule == "fused" and fused is None:
            raise ValueError("this bundle ships no fused decision (fused.json): use the model's or the criteria's")
        excluded: tuple[str, ...] = ()
        if self.status != "ok" or rule == "model" or not self.probabilities:
            decisions, decided_by, used, probabilities = model, dict.fromkeys(model, "model"), "model", {}
        else:
            names = list(self.probabilities)
            engine = fused if fused is not None else FusedDecision(())
            outcome = engine.decide([self.probabilities[n] for n in names], model, self.criteria, names, rule)
            decisions, decided_by, used = outcome.decisions, outcome.decided_by, outcome.rule
            probabilities = outcome.probabilities
            excluded = outcome.exclusion_lines()
        flagged = (
            disagreements(decisions, self.criteria, tuple(self.not_validated), decided_by, used)
            if self.criteria is not None
            else ()
        ) + excluded
        return replace(
            self,
            decisions=decisions,
            decided_by=decided_by,
            decision_rule=used,
            model_decisions=None if used == "model" else model,
            fused_probabilities=probabilities,
            disagreements=flagged,
        )

    def criteria_line(self) -> str:
        """``criteria met: IAVB (PR 338 ms > 200 ms)``, or why there are none (empty for a record that is not
        interpretable)."""
        if self.criteria is not None:
            return self.criteria.line()
        return NOT_EVALUATED if self.status == "ok" else ""

    def measurement_line(self) -> str:
        """``HR 46 bpm, PR 142 ms, ...`` and what lies outside the normal ranges (empty without measurements)."""
        return "" if self.measurements is None else self.measurements.line()

    def to_json(self) -> str:
        """One strict JSON object (a JSON Lines row; NaN or infinity would be a fault and raise)."""
        return json.dumps(self.to_dict(), allow_nan=False)


@dataclass(frozen=True)
class Scored:
    """A prediction with the exact input that was scored (what an explanation of it must explain)."""

    prediction: Prediction
    input: ModelInput
    probabilities: np.ndarray
    record: Record | None = None
    """The record as read, at its own rate (measurements and the one-page report draw on it)."""


NOT_INTERPRETABLE = "not interpretable"
MIN_INTERPRETABLE_SECONDS = 2.0
DRIFT_WARNING_MV = 2.0
"""A lead whose baseline moves more than this over the record (`ecglens.preprocess.baseline_drift_mv`) is named in
a warning: twice the calibration pulse, enough to push a trace into its neighbour's row. The project's choice: no
guideline sets a limit (4.5 % of the shared PTB-XL 500-Hz records reach it)."""
"""Shorter than this, a record cannot hold two beats at 60 bpm: no rhythm can be judged."""


@dataclass(frozen=True)
class Quality:
    """A record's signal quality: warnings shown beside its decisions, and problems that leave it with none."""

    warnings: tuple[str, ...]
    problems: tuple[str, ...]


def assess_quality(
    signal: np.ndarray, sampling_rate_hz: float, lead_names: Sequence[str], expected_seconds: float
) -> Quality:
    """Warnings (flat leads, saturation, baseline drift, short records, implausible amplitude units) and the
    problems that make a record not interpretable at all:

    - flat (peak-to-peak under 0.02 mV) in half of its leads or more;
    - amplitudes of the wrong scale: a 99.5th percentile of |x| above 20 mV (microvolts or ADC units)
      or below 0.02 mV (volts);
    - shorter than `MIN_INTERPRETABLE_SECONDS`;
    - no repeatable heartbeats (`ecglens.waves.beats.assess_beats`: noise, a hum or a wandering baseline).
    """
    warnings_, problems = [], []
    span = np.ptp(signal, axis=1)
    flat = [name for name, s in zip(lead_names, span, strict=True) if s < 0.02]
    if flat:
        warnings_.append(f"flat lead(s): {', '.join(flat)}")
    if len(flat) * 2 >= len(lead_names):
        problems.append(f"flat in {len(flat)} of {len(lead_names)} leads")
    saturated = []
    for name, lead, s in zip(lead_names, signal, span, strict=True):
        if s >= 0.02:
            at_edges = np.mean((lead >= lead.max() - 1e-6 * s) | (lead <= lead.min() + 1e-6 * s))
            if at_edges > 0.02:
                saturated.append(name)
    if saturated:
        warnings_.append(f"possible saturation (clipped samples) in {', '.join(saturated)}")
    drift = baseline_drift_mv(signal, sampling_rate_hz)
    drifting = [f"{name} {d:.1f} mV" for name, d in zip(lead_names, drift, strict=True) if d > DRIFT_WARNING_MV]
    if drifting:
        warnings_.append(
            f"baseline drift over {DRIFT_WARNING_MV:g} mV (its median per second moves): {', '.join(drifting)}"
        )
    duration = signal.shape[1] / sampling_rate_hz
    if duration < min(expected_seconds, 10.0) * 0.8:
        warnings_.append(f"short record: {duration:.1f} s (the model was trained on {expected_seconds:g}-s inputs)")
    if duration < MIN_INTERPRETABLE_SECONDS:
        problems.append(f"{duration:.2g} s is too short to hold two beats")
    peak = float(np.percentile(np.abs(signal), 99.5)) if signal.size else 0.0
    if peak > 20:
        warnings_.append(f"implausible amplitudes (99.5th percentile {peak:.0f}): microvolts or ADC units, not mV?")
    elif 0 < peak < 0.02:
        warnings_.append(f"implausible amplitudes (99.5th percentile {peak:.4f}): volts, not mV?")
    if peak > 20 or peak < 0.02:
        problems.append(f"amplitudes of the wrong scale for mV (99.5th percentile {peak:.3g})")
    if not problems:  # a record already refused needs no second reason
        beats = assess_beats(signal, sampling_rate_hz)
        if not beats.interpretable:
            problems.append(beats.reason)
    return Quality(tuple(warnings_), tuple(problems))


def quality_warnings(
    signal: np.ndarray, sampling_rate_hz: float, lead_names: Sequence[str], expected_seconds: float
) -> list[str]:
    """The warnings of `assess_quality`."""
    return list(assess_quality(signal, sampling_rate_hz, lead_names, expected_seconds).warnings)


class Predictor:
    """A bundle loaded for inference: its ``model`` (eval mode, on ``device``), its ``meta``, and optionally
    the ONNX export as the engine that scores."""

    def __init__(
        self,
        bundle: str | os.PathLike,
        device: str = "auto",
        engine: str = "torch",
        force: bool = False,
        decision: str | None = None,
    ):
        """Load ``bundle`` on ``device``; ``force`` reports probabilities of records that are not interpretable
        (they still get no decisions). ``decision``: the rule that decides (``model``, ``fused``, ``criteria``;
        None: the bundle's default, its fused decision's when it ships one (``fused.json``), else the model's).
        A malformed ``fused.json`` is a `ecglens.criteria.fused.FusedDecisionError`."""
        if engine not in ("torch", "onnx"):
            raise ValueError(f"engine must be 'torch' or 'onnx', not {engine!r}")
        if decision is not None and decision not in DECISION_RULES:
            raise ValueError(f"decision must be one of {', '.join(DECISION_RULES)}, not {decision!r}")
        self.bundle = resolve_bundle(bundle)
        self.device = resolve_device(device)
        self.model, self.meta = load_model(bundle, self.device)
        self.fused = bundle_fused(self.bundle, self.meta.class_names)
        if decision == "fused" and self.fused is None:
            raise ValueError(f"{self.bundle} ships no fused decision ({'fused.json'}): --decision model or criteria")
        self.decision = decision or (self.fused.default if self.fused is not None else "model")
        self.engine = engine
        self.force = force
        self._session = None
        if engine == "onnx":
            onnx_path = onnx_file(self.bundle)
            if not onnx_path.is_file():
                raise FileNotFoundError(f"{onnx_path} is missing: run 'ecglens export onnx --checkpoint {bundle}'")
            _require("onnxruntime")
            import onnxruntime

            self._session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def prepare(self, record: Record) -> tuple[ModelInput, Quality]:
        """The model input of a record (with its true labels when it carries any) and its signal quality."""
        signal = model_input(record.signal, record.sampling_rate_hz, record.lead_names, self.meta.input_spec)
        quality = assess_quality(record.signal, record.sampling_rate_hz, record.lead_names, self.meta.policy.seconds)
        return ModelInput(record.record_id, signal, record.source_path, self.true_labels(record)), quality

    def true_labels(self, record: Record) -> np.ndarray | None:
        """A record's own labels as multi-hot over the bundle's classes, mapped under the bundle's label space
        and its tables; None without labels."""
        if record.label_vocabulary == "none" or not record.raw_labels:
            return None
        label_map = self.meta.label_map
        return label_map.encode(label_map.map(record.raw_labels, record.label_vocabulary))

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities of a batch of model inputs of equal length (records x leads x samples)."""
        return self._forward(batch)[0]

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and, for an ensemble bundle on PyTorch, the members' spread (their probabilities'
        standard deviation), in one pass."""
        if self._session is not None:
            logits = self._session.run(None, {"ecg": batch.astype(np.float32)})[0]
            return 1 / (1 + np.exp(-logits)), None
        with torch.no_grad():
            x = torch.from_numpy(batch).to(self.device)
            if self.meta.model.members == 1:
                return torch.sigmoid(self.model(x)).float().cpu().numpy(), None
            members = self.model.member_logits(x).float()  # the ensemble's output is their mean logit
            spread = torch.sigmoid(members).std(dim=1, unbiased=False)
            return torch.sigmoid(members.mean(dim=1)).cpu().numpy(), spread.cpu().numpy()

    def score(self, inputs: Sequence[ModelInput], batch_size: int = 32) -> np.ndarray:
        """Probabilities (records x classes) of model inputs of any lengths, batching equal lengths."""
        return self.score_with_spread(inputs, batch_size)[0]

    def score_with_spread(
        self, inputs: Sequence[ModelInput], batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """`score`, with the members' spread (records x classes) of an ensemble bundle on PyTorch, else None."""
        out = np.zeros((len(inputs), len(self.meta.class_names)), np.float32)
        spread = np.zeros_like(out)
        known = False
        for chunk in batches_by_length([item.n_samples for item in inputs], batch_size):
            out[chunk], part = self._forward(np.stack([inputs[i].signal for i in chunk]))
            if part is not None:
                spread[chunk], known = part, True
        return out, spread if known else None

    def predict(
        self,
        signal: np.ndarray,
        sampling_rate_hz: float,
        lead_names: Sequence[str] = LEAD_NAMES,
        record_id: str = "signal",
    ) -> Prediction:
        """Predict one signal (leads x samples, mV) with its rate and lead names (any order).

        Raises:
            TypeError: ``signal`` does not hold real numbers (booleans, complex numbers, strings or objects are
                never converted silently), ``sampling_rate_hz`` is not a number, or ``lead_names`` are not strings.
            ValueError: the array is samples x leads (wfdb's ``p_signal`` orientation), or its lead count does
                not match ``lead_names``; it is never transposed silently. A rate outside the documented range.
        """
        signal = _real_samples(signal)
        rate = _rate(sampling_rate_hz)
        if isinstance(lead_names, str) or not all(isinstance(name, str) for name in lead_names):
            raise TypeError(f"lead_names must be a sequence of lead names as strings, not {lead_names!r}")
        n_leads = len(lead_names)
        if signal.ndim != 2 or signal.shape[0] != n_leads:
            if signal.ndim == 2 and signal.shape[1] == n_leads:
                raise ValueError(
                    f"signal is {signal.shape[0]} x {n_leads}, samples x leads (wfdb's p_signal "
                    "orientation): pass signal.T, leads x samples"
                )
            raise ValueError(f"signal of shape {signal.shape} does not have {n_leads} leads as rows (leads x samples)")
        checked = finish_signal(record_id, signal, list(lead_names), self.meta.lead_names)
        record = Record(record_id, "array", checked, rate, self.meta.lead_names)
        return self.predict_records([record])[0]

    def predict_records(self, records: Sequence[Record], batch_size: int = 32) -> list[Prediction]:
        """Predict records, batching those of equal input length."""
        return [scored.prediction for scored in self.score_records(records, batch_size)]

    def score_records(self, records: Sequence[Record], batch_size: int = 32) -> list[Scored]:
        """Predictions with the inputs they were made on."""
        prepared = [self.prepare(record) for record in records]
        probabilities, spread = self.score_with_spread([item for item, _ in prepared], batch_size)
        return [
            self.scored(record, item, quality, p, None if spread is None else spread[i])
            for i, (record, (item, quality), p) in enumerate(zip(records, prepared, probabilities, strict=True))
        ]

    def scored(
        self,
        record: Record,
        item: ModelInput,
        quality: Quality,
        probabilities: np.ndarray,
        spread: np.ndarray | None = None,
    ) -> Scored:
        """The prediction of a record from the probabilities of its model input (and an ensemble's spread)."""
        names = self.meta.class_names
        truth = None if item.labels is None else tuple(n for n, y in zip(names, item.labels, strict=True) if y > 0.5)
        problems = quality.problems
        shown = {n: float(v) for n, v in zip(names, probabilities, strict=True)}
        warnings_ = quality.warnings
        data = self.meta.training_data
        if (
            data is not None
            and data.synthetic_only
            and record.dataset != "synthetic"
            and not is_synthetic_source(record.source_path)
        ):
            warnings_ = (SYNTHETIC_WARNING, *warnings_)
        prediction = Prediction(
            record.record_id,
            record.source_path,
            shown if self.force or not problems else {},
            () if problems else self.meta.decisions(probabilities),
            warnings_,
            record.duration_s,
            NOT_INTERPRETABLE if problems else "ok",
            problems,
            truth,
            dict(self.meta.not_validated),
            None if spread is None or problems else {n: float(v) for n, v in zip(names, spread, strict=True)},
            file_format=record.file_format,
            file_statements=record.statements,
            file_statements_left_out=record.statements_left_out,
            derived_leads=record.derived_leads,
            identifiers=dict(record.identifiers) if record.identifiers else None,
            file_measurements=dict(record.file_measurements),
            decided_by=dict.fromkeys(() if problems else self.meta.decisions(probabilities), "model"),
        )
        return Scored(prediction, item, np.asarray(probabilities), record)

    def with_measurements(self, prediction: Prediction, measurements: Measurements, age: float | None) -> Prediction:
        """A prediction with its record's measurements and criteria, decided by this predictor's rule
        (``decision``): the fused decision, the criteria or the model."""
        return prediction.with_measurements(measurements, age, self.fused, self.decision)


def _real_samples(signal: object) -> np.ndarray:
    """``signal`` as float64 when it holds real numbers (integers or floats), else a `TypeError` naming it."""
    array = np.asarray(signal)
    problem = not_samples(array.dtype)
    if problem is not None:
        raise TypeError(f"signal {problem}: it is never converted silently; pass real numbers in mV")
    return array.astype(np.float64)


def _rate(sampling_rate_hz: object) -> float:
    """A sampling rate given to the Python API, checked (`ecglens.io.limits.check_rate`)."""
    from ecglens.io.limits import check_rate

    if isinstance(sampling_rate_hz, bool) or not isinstance(sampling_rate_hz, int | float | np.integer | np.floating):
        raise TypeError(f"sampling_rate_hz must be a number of samples per second, not {sampling_rate_hz!r}")
    return check_rate("sampling_rate_hz", float(sampling_rate_hz))


def _require(*modules: str) -> None:
    """Fail with the install command when an optional part's packages are absent."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(f"ONNX needs {', '.join(missing)}: pip install 'ecglens[onnx]'")


def load_bundle(path: str | os.PathLike = "starter", device: str = "auto", engine: str = "torch") -> Predictor:
    """Load a bundle for prediction (the package's public entry point); ``"starter"``, the default, is the model
    shipped with ecglens (see ``ecglens models --card starter``)."""
    return Predictor(path, device, engine)


def find_record_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Record files named directly or found below directories (a ``.mat`` with a ``.hea`` counts once; a DICOM file
    without a suffix by its magic, `ecglens.io.sources.unnamed_dicom`)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.suffix.lower() in RECORD_SUFFIXES or unnamed_dicom(p))
            tables = [p for p in candidates if is_dataset_table(p)]
            if tables:  # CPSC's REFERENCE.csv, PTB-XL's and LUDB's tables: counted in the log, never a record
                logging.getLogger(__name__).info("%s: %d dataset table(s) passed over", path, len(tables))
            candidates = [p for p in candidates if not is_dataset_table(p)]
            found += [p for p in candidates if not (p.suffix.lower() == ".mat" and p.with_suffix(".hea").is_file())]
        elif path.suffix.lower() in (".dat", ".mat") and path.with_suffix(".hea").is_file():
            found.append(path.with_suffix(".hea"))  # a signal file named on its own or beside its header: once
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def iter_scored_files(
    predictor: Predictor,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 32,
    sampling_rate_hz: float | None = None,
    lead_order: tuple[str, ...] = LEAD_NAMES,
    progress: bool = True,
    include_identifiers: bool = False,
) -> Iterator[Scored | ReadIssue]:
    """Read, prepare and score every record file once, a batch at a time; unreadable files come out as
    `ReadIssue` items and never stop the batch. A clinical file's personal data stays out (its issue named by a
    pseudonym) unless ``include_identifiers``."""
    from ecglens.util.progress import bar

    files = find_record_files(paths)
    pending: list[Record] = []
    with bar(total=len(files), desc="predict", unit="rec", enabled=progress) as counter:
        for path in files:
            try:
                pending.append(
                    read_record(path, predictor.meta.lead_names, sampling_rate_hz, lead_order, include_identifiers)
                )
            except Exception as error:  # one bad file is that record's issue, whatever raised
                yield issue_from(error, issue_name(path, include_identifiers))
            if len(pending) >= batch_size:
                yield from predictor.score_records(pending, batch_size)
                pending = []
            counter.update()
        yield from predictor.score_records(pending, batch_size)


def issue_name(path: Path, include_identifiers: bool) -> str:
    """How an unreadable file is named: a clinical file by its pseudonym (its name often holds its patient's)."""
    from ecglens.io.clinical import display_name, is_clinical

    return display_name(path, include_identifiers) if is_clinical(path) else str(path)


def predict_files(
    predictor: Predictor,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 32,
    sampling_rate_hz: float | None = None,
    lead_order: tuple[str, ...] = LEAD_NAMES,
    progress: bool = True,
) -> tuple[list[Prediction], list[ReadIssue]]:
    """Predict every record file; unreadable ones are listed with their reason, never stop the batch."""
    predictions: list[Prediction] = []
    issues: list[ReadIssue] = []
    for item in iter_scored_files(predictor, paths, batch_size, sampling_rate_hz, lead_order, progress):
        if isinstance(item, ReadIssue):
            issues.append(item)
        else:
            predictions.append(item.prediction)
    return predictions, issues


def onnx_file(bundle: str | os.PathLike) -> Path:
    """Where a bundle's ONNX export lives: ``model.onnx`` inside the bundle, except for the starter model, whose
    folder belongs to the installed package: its export goes to the user's cache folder
    (``$XDG_CACHE_HOME/ecglens`` or ``~/.cache/ecglens``), under the starter's weights checksum."""
    from ecglens.bundle.meta import starter_manifest, starter_path

    folder = resolve_bundle(bundle)
    if folder.resolve() == starter_path().resolve():
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ecglens"
        return cache / f"starter-{starter_manifest().weights_sha256[:16]}" / ONNX_FILE
    return folder / ONNX_FILE


def export_onnx(bundle: str | os.PathLike, opset: int = 18) -> Path:
    """Write the bundle's ONNX export (`onnx_file`: ``model.onnx`` in the bundle, or the user's cache folder for
    the starter): input ``ecg`` (batch x leads x samples, batch and length dynamic), output ``logits``. Written
    under a temporary name and renamed into place."""
    _require("onnx", "onnxscript")
    model, meta = load_model(bundle, "cpu")
    window = max(meta.policy.window(meta.sampling_rate_hz), 64)
    example = torch.zeros(2, len(meta.lead_names), window)
    batch = torch.export.Dim("batch", min=1, max=4096)
    length = torch.export.Dim("length", min=64, max=10_000_000)
    path = onnx_file(bundle)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(ONNX_FILE + ".tmp")
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" and such: not the user's concern
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.export internals, not ours
            torch.onnx.export(
                model,
                (example,),
                str(scratch),
                input_names=["ecg"],
                output_names=["logits"],
                dynamo=True,
                dynamic_shapes={"x": {0: batch, 2: length}},
                opset_version=opset,
                verbose=False,
                external_data=False,
            )
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)  # a failed export (a full disk) leaves nothing behind
        exporter_log.setLevel(level)
    return path
