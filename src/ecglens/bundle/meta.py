"""Model bundles: a directory with ``model.safetensors`` and ``bundle.json``. Loading never unpickles.

``bundle.json`` holds the model configuration, class and lead names, sampling rate, input-length
policy, decision thresholds and where they came from, a description of the training data, validation
metrics and package versions. A bundle changes only when asked: training writes it, and
`store_thresholds` replaces its thresholds (``ecglens evaluate --store-thresholds``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ecglens._version import __version__
from ecglens.classes import CLASS_NAMES
from ecglens.data.splits import SplitSpec
from ecglens.io.limits import MAX_RATE_HZ, MAX_SECONDS, MIN_RATE_HZ, MIN_SECONDS
from ecglens.labels.mapping import PROFILES, LabelMap, MappingRow, load_label_map
from ecglens.leads import canonical_leads
from ecglens.models.config import ResNetConfig
from ecglens.preprocess import InputSpec, LengthPolicy

WEIGHTS_FILE = "model.safetensors"
META_FILE = "bundle.json"
BUNDLE_VERSION = 2
READABLE_VERSIONS = (1, 2)


class BundleError(ValueError):
    """A bundle directory is missing files or holds inconsistent contents."""


@dataclass(frozen=True)
class ThresholdOrigin:
    """Where a bundle's decision thresholds came from.

    Attributes:
        method: ``F1-optimal`` (tuned per class), ``fixed`` (0.5, never tuned) or ``unknown`` (older bundles).
        split: the split they were tuned on (``val``), empty when fixed.
        datasets: datasets of the records they were tuned on.
        caches: cache directories of those records.
        n_records: how many records.
    """

    method: str = "fixed"
    split: str = ""
    datasets: tuple[str, ...] = ()
    caches: tuple[str, ...] = ()
    n_records: int = 0

    def describe(self) -> str:
        """One line for reports: 'F1-optimal on the val split of ptbxl (170 records)'."""
        if self.method == "fixed":
            return "0.5 for every class (not tuned)"
        if self.method == "unknown":
            return "not recorded (bundle written by an older ecglens)"
        return (
            f"{self.method} on the {self.split} split of {', '.join(self.datasets) or 'unnamed data'} "
            f"({self.n_records} records)"
        )


@dataclass(frozen=True)
class TrainingData:
    """What a bundle was trained on: caches, datasets, split, sizes, and the resolved training configuration."""

    caches: tuple[str, ...]
    datasets: tuple[str, ...]
    cache_specs: tuple[str, ...]
    split: SplitSpec
    n_train: int
    n_val: int
    n_test: int
    label_profile: str
    epoch: int
    init: str | None = None
    config: dict = field(default_factory=dict)
    synthetic_only: bool = False
    """Every training record came from ecglens's synthetic cohort (`is_synthetic_source`): the model has never seen
    a real ECG, and says so beside every prediction it makes on a real file."""


@dataclass(frozen=True)
class BundleMeta:
    """Everything about a trained model except its weights."""

    model: ResNetConfig
    class_names: tuple[str, ...]
    lead_names: tuple[str, ...]
    sampling_rate_hz: float
    policy: LengthPolicy
    thresholds: tuple[float, ...]
    threshold_origin: ThresholdOrigin = field(default_factory=ThresholdOrigin)
    training_data: TrainingData | None = None
    metrics: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    bundle_version: int = BUNDLE_VERSION
    temperatures: tuple[float, ...] | None = None
    """Per-class temperature scaling fitted on validation (None: uncalibrated); applied inside the model."""
    label_space: LabelMap | None = None
    """The label space the model was trained on, tables included (None: a bundle from before label spaces)."""
    not_validated: tuple[tuple[str, str], ...] = ()
    """Classes the model cannot know, each with its reason (too few training or validation positives, see
    `not_validated_classes`, or a validation AUC not shown better than chance,
    `ecglens.train.calibrate.chance_classes`): their probabilities are shown, greyed, and never decided."""

    @property
    def label_map(self) -> LabelMap:
        """The label space of the outputs: the stored one, or for older bundles the nine classes under the
        profile they were trained with (strict when unknown)."""
        if self.label_space is not None:
            return self.label_space
        profile = self.training_data.label_profile if self.training_data else ""
        return load_label_map(profile if profile in PROFILES else "strict")

    @property
    def input_spec(self) -> InputSpec:
        """What the model takes (for `ecglens.preprocess.model_input`)."""
        return InputSpec(self.lead_names, self.sampling_rate_hz, self.policy)

    @property
    def split(self) -> SplitSpec:
        """The split the model was trained under (the default split when unknown)."""
        return self.training_data.split if self.training_data is not None else SplitSpec()

    def decided(self, probabilities: np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        """Decisions of probabilities (records x classes, or one record's classes) at the bundle's thresholds (or
        the ``thresholds`` given, e.g. retuned ones); always False for a class that is not validated."""
        skip = np.isin(np.asarray(self.class_names), [name for name, _ in self.not_validated])
        cut = np.asarray(self.thresholds if thresholds is None else thresholds)
        return (np.asarray(probabilities) >= cut) & ~skip

    def decisions(self, probabilities: np.ndarray) -> tuple[str, ...]:
        """Class names whose probability reaches its threshold, never a class that is not validated."""
        return tuple(name for name, yes in zip(self.class_names, self.decided(probabilities), strict=True) if yes)

    def to_json(self) -> str:
        """JSON text of the metadata."""
        return json.dumps(asdict(self), indent=2, default=_plain)

    @classmethod
    def from_dict(cls, data: dict, where: str) -> BundleMeta:
        """Validate and build from parsed JSON (bundle versions 1 and 2)."""
        if not isinstance(data, dict):
            raise BundleError(f"{where}: bundle metadata must be a JSON object")
        if data.get("bundle_version") not in READABLE_VERSIONS:
            raise BundleError(
                f"{where}: bundle version {data.get('bundle_version')}, this ecglens reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}"
            )
        try:
            model = dict(data["model"])
            model["layers"] = tuple(model["layers"])
            meta = cls(
                model=ResNetConfig(**model),
                class_names=tuple(str(c) for c in data["class_names"]),
                lead_names=canonical_leads(data["lead_names"]),
                sampling_rate_hz=float(data["sampling_rate_hz"]),
                policy=LengthPolicy(**data["policy"]),
                thresholds=tuple(float(t) for t in data["thresholds"]),
                threshold_origin=_threshold_origin(data),
                training_data=_training_data(data.get("training_data")),
                metrics=dict(data.get("metrics", {})),
                versions=dict(data.get("versions", {})),
                temperatures=None
                if data.get("temperatures") is None
                else tuple(float(t) for t in data["temperatures"]),
                label_space=_label_space(data.get("label_space")),
                not_validated=tuple((str(name), str(reason)) for name, reason in data.get("not_validated", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise BundleError(f"{where}: invalid bundle metadata ({type(error).__name__}: {error})") from None
        if len(meta.thresholds) != len(meta.class_names) or meta.model.n_classes != len(meta.class_names):
            raise BundleError(
                f"{where}: {len(meta.class_names)} classes, {len(meta.thresholds)} thresholds, "
                f"model outputs {meta.model.n_classes}"
            )
        if meta.label_space is not None and meta.label_space.classes != meta.class_names:
            raise BundleError(
                f"{where}: label space {meta.label_space.space} has classes "
                f"{', '.join(meta.label_space.classes)}, the model {', '.join(meta.class_names)}"
            )
        if not {name for name, _ in meta.not_validated} <= set(meta.class_names):
            raise BundleError(f"{where}: not_validated names a class the model does not have")
        if meta.model.n_leads != len(meta.lead_names):
            raise BundleError(f"{where}: model takes {meta.model.n_leads} leads but {len(meta.lead_names)} are named")
        _check_ranges(meta, where)
        return meta


MIN_TRAIN_POSITIVES = 20
"""Below this many training positives a class is not validated: too few to learn it."""
MIN_VAL_POSITIVES = 5
"""Below this many validation positives a class is not validated: its threshold and temperature are guesses."""


NEVER_DECIDED = "never decided by the model (the fused decision may decide it by its criteria)"
"""How every not-validated reason ends (`not_validated_classes`, `ecglens.train.calibrate.chance_classes`)."""


def not_validated_classes(
    class_names: Sequence[str], train_positives: Sequence[int], val_positives: Sequence[int]
) -> tuple[tuple[str, str], ...]:
    """The classes with fewer than `MIN_TRAIN_POSITIVES` training or `MIN_VAL_POSITIVES` validation positives,
    each with its reason."""
    out = []
    for name, train, val in zip(class_names, train_positives, val_positives, strict=True):
        if train < MIN_TRAIN_POSITIVES or val < MIN_VAL_POSITIVES:
            out.append(
                (
                    name,
                    f"not validated: {int(train)} training and {int(val)} validation positives (needs "
                    f"{MIN_TRAIN_POSITIVES} and {MIN_VAL_POSITIVES}); {NEVER_DECIDED}",
                )
            )
    return tuple(out)


def _check_ranges(meta: BundleMeta, where: str) -> None:
    """Every number of a bundle within the ranges ecglens can build and run, before anything is allocated
    from it (a bundle is input too: a width of 4096 or a 1e6-s policy would allocate gigabytes)."""
    config = meta.model
    problems = []
    if not (len(config.layers) == 4 and all(isinstance(n, int) and 1 <= n <= 32 for n in config.layers)):
        problems.append(f"layers {list(config.layers)} (4 stages of 1-32 blocks)")
    if not (isinstance(config.width, int) and 1 <= config.width <= 256):
        problems.append(f"width {config.width} (1-256)")
    if not (isinstance(config.n_classes, int) and 1 <= config.n_classes <= 1000):
        problems.append(f"{config.n_classes} classes (1-1000)")
    if not (isinstance(config.members, int) and 1 <= config.members <= 8):
        problems.append(f"{config.members} members (1-8)")
    if not (isinstance(config.dropout, int | float) and 0 <= config.dropout < 1):
        problems.append(f"dropout {config.dropout} ([0, 1))")
    if not (np.isfinite(meta.sampling_rate_hz) and MIN_RATE_HZ <= meta.sampling_rate_hz <= MAX_RATE_HZ):
        problems.append(f"sampling rate {meta.sampling_rate_hz} Hz ({MIN_RATE_HZ:g}-{MAX_RATE_HZ:g})")
    if not (np.isfinite(meta.policy.seconds) and MIN_SECONDS <= meta.policy.seconds <= MAX_SECONDS):
        problems.append(f"policy length {meta.policy.seconds} s ({MIN_SECONDS:g}-{MAX_SECONDS:g})")
    if not all(np.isfinite(t) and 0 <= t <= 1 for t in meta.thresholds):
        problems.append(f"thresholds {list(meta.thresholds)} (finite, 0-1)")
    if meta.temperatures is not None and (
        len(meta.temperatures) != len(meta.class_names)
        or not all(np.isfinite(t) and 0.01 <= t <= 100 for t in meta.temperatures)
    ):
        problems.append(f"temperatures {list(meta.temperatures)} (one per class, 0.01-100)")
    if len(set(meta.class_names)) != len(meta.class_names) or not all(meta.class_names):
        problems.append(f"class names {list(meta.class_names)} (distinct, non-empty)")
    if problems:
        raise BundleError(f"{where}: out of range: {'; '.join(problems)}")


def _threshold_origin(data: dict) -> ThresholdOrigin:
    origin = data.get("threshold_origin")
    if origin is None:  # version 1 did not record it
        return ThresholdOrigin("unknown")
    return ThresholdOrigin(
        method=str(origin["method"]),
        split=str(origin["split"]),
        datasets=tuple(origin["datasets"]),
        caches=tuple(origin["caches"]),
        n_records=int(origin["n_records"]),
    )


def _label_space(data: dict | None) -> LabelMap | None:
    if not data:
        return None
    rows = tuple(MappingRow(**{k: str(v) for k, v in row.items()}) for row in data["rows"])
    return LabelMap(
        str(data["name"]),
        rows,
        str(data["space"]),
        tuple(str(c) for c in data["classes"]),
        tuple(str(c) for c in data.get("snomed", ())),
        str(data.get("source", "")),
    )


SYNTHETIC_WARNING = (
    "this model was trained only on synthetic ECGs: its output on a real recording is not a diagnosis of anything"
)


def is_synthetic_source(source_path: str) -> bool:
    """Whether a record file comes from ecglens's synthetic cohort (it writes a ``.evidence.npz`` beside each)."""
    return bool(source_path) and Path(source_path.removesuffix(".hea") + ".evidence.npz").is_file()


def _training_data(data: dict | None) -> TrainingData | None:
    if not data:
        return None
    if "split" in data:
        split = SplitSpec.from_dict(data["split"])
    else:  # version 1 kept the split's fields at the top level
        split = SplitSpec(int(data.get("seed", 0)), int(data.get("val_fold", 9)), int(data.get("test_fold", 10)))
    return TrainingData(
        caches=tuple(data["caches"]),
        datasets=tuple(data["datasets"]),
        cache_specs=tuple(data.get("cache_specs", ())),
        split=split,
        n_train=int(data["n_train"]),
        n_val=int(data["n_val"]),
        n_test=int(data["n_test"]),
        label_profile=str(data.get("label_profile", "")),
        epoch=int(data.get("epoch", 0)),
        init=data.get("init"),
        config=dict(data.get("config", data.get("train_config", {}))),
        synthetic_only=bool(data.get("synthetic_only", False)),
    )


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

    return {
        "ecglens": __version__,
        "torch": importlib.metadata.version("torch"),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "wfdb": wfdb.__version__,
        "python": platform.python_version(),
    }


def default_meta(
    model_config: ResNetConfig,
    lead_names: tuple[str, ...],
    sampling_rate_hz: float,
    policy: LengthPolicy,
    label_space: LabelMap | None = None,
    **extra,
) -> BundleMeta:
    """Metadata with fixed 0.5 thresholds and the current package versions; the classes are the label space's
    (without one, the first ``n_classes`` of the nine)."""
    names = label_space.classes if label_space is not None else CLASS_NAMES[: model_config.n_classes]
    return BundleMeta(
        model=model_config,
        class_names=names,
        label_space=label_space,
        lead_names=tuple(lead_names),
        sampling_rate_hz=sampling_rate_hz,
        policy=policy,
        thresholds=(0.5,) * model_config.n_classes,
        versions=package_versions(),
        **extra,
    )


def write_meta(path: Path, meta: BundleMeta) -> None:
    scratch = path / (META_FILE + ".tmp")
    scratch.write_text(meta.to_json())
    os.replace(scratch, path / META_FILE)


def store_thresholds(
    path: str | os.PathLike,
    thresholds: tuple[float, ...],
    origin: ThresholdOrigin,
    metrics: dict | None = None,
    temperatures: tuple[float, ...] | None = None,
    not_validated: tuple[tuple[str, str], ...] = (),
) -> BundleMeta:
    """Replace a saved bundle's thresholds (and record where they came from), and its temperatures when given;
    the only way a bundle changes after training. ``metrics`` entries are added to the bundle's metrics;
    ``not_validated`` classes (name, reason) are added to the bundle's (a class already there keeps its reason)."""
    meta = read_meta(path)
    if len(thresholds) != len(meta.class_names):
        raise BundleError(f"{path}: {len(thresholds)} thresholds for {len(meta.class_names)} classes")
    meta = replace(
        meta,
        thresholds=tuple(float(t) for t in thresholds),
        threshold_origin=origin,
        metrics={**meta.metrics, **(metrics or {})},
        bundle_version=BUNDLE_VERSION,
        temperatures=meta.temperatures if temperatures is None else tuple(map(float, temperatures)),
        not_validated=tuple({**dict(not_validated), **dict(meta.not_validated)}.items()),
    )
    _check_ranges(meta, str(path))
    write_meta(Path(path), meta)
    return meta


def bundle_digest(path: str | os.PathLike) -> str:
    """SHA-256 over a bundle's metadata and weights files: what identifies the model a result came from."""
    digest = hashlib.sha256()
    for name in (META_FILE, WEIGHTS_FILE):
        with open(resolve_bundle(path) / name, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


STARTER = "starter"
"""The name of the model shipped inside the package (``src/ecglens/starter/``, see its ``MODEL_CARD.md``)."""
STARTER_MANIFEST = "starter.json"


@dataclass(frozen=True)
class StarterManifest:
    """``starter.json``: what the starter model is, its checksum, its data and build, and reference predictions.

    ``counts``, ``build`` and ``reference_predictions`` are the build's records as written by
    ``scripts/build_starter.py`` (shown in the model card; checked by the tests).
    """

    name: str
    summary: str
    notice: str
    weights_sha256: str
    weights_dtype: str
    weights_bytes: int
    licences: tuple[str, ...]
    sources: tuple[str, ...]
    label_profile: str
    counts: dict
    build: dict
    reference_predictions: tuple[dict, ...]

    @classmethod
    def from_dict(cls, data: dict, where: str) -> StarterManifest:
        """Read a manifest's JSON (every field required; unknown fields are refused)."""
        names = [f.name for f in fields(cls)]
        if sorted(data) != sorted(names):
            raise BundleError(f"{where}: fields {sorted(data)} are not a starter manifest's ({', '.join(names)})")
        values: dict[str, Any] = {n: tuple(data[n]) if isinstance(data[n], list) else data[n] for n in names}
        return cls(**values)

    def describe(self) -> str:
        """``NAME (SUMMARY); NOTICE``: what a command prints when it uses the starter."""
        return f"{self.name} ({self.summary}); {self.notice}"


def starter_path() -> Path:
    """Where the installed package keeps the starter model."""
    return Path(str(importlib.resources.files("ecglens") / STARTER))


@functools.lru_cache(maxsize=4)
def _verified(weights: Path, size: int, mtime_ns: int) -> str:
    """SHA-256 of the starter's weights, checked once per process and file version."""
    manifest = json.loads((weights.parent / STARTER_MANIFEST).read_text())
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != manifest["weights_sha256"]:
        raise BundleError(
            f"{weights}: SHA-256 {digest} does not match {STARTER_MANIFEST} "
            f"({manifest['weights_sha256']}); reinstall ecglens"
        )
    return digest


def starter_manifest() -> StarterManifest:
    """The starter model's manifest (name, training data, checksum, build, reference predictions).

    Raises:
        BundleError: this installation has no starter model, or its weights do not match their checksum.
    """
    path = starter_path()
    if not (path / STARTER_MANIFEST).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise BundleError(f"this ecglens installation has no starter model ({path}); give --checkpoint")
    stat = (path / WEIGHTS_FILE).stat()
    _verified(path / WEIGHTS_FILE, stat.st_size, stat.st_mtime_ns)
    return StarterManifest.from_dict(json.loads((path / STARTER_MANIFEST).read_text()), str(path / STARTER_MANIFEST))


def starter_notice() -> str:
    """The one line a command prints when it uses the starter model."""
    manifest = starter_manifest()
    return f"using the starter model {manifest.describe()}. See: ecglens models --card starter"


def model_card(bundle: str | os.PathLike) -> str:
    """A bundle's ``MODEL_CARD.md`` (the starter's is shipped with it).

    Raises:
        BundleError: the bundle has no model card.
    """
    path = resolve_bundle(bundle) / "MODEL_CARD.md"
    if not path.is_file():
        raise BundleError(f"{bundle}: no model card (MODEL_CARD.md); 'ecglens models {bundle}' shows its metadata")
    return path.read_text()


def resolve_bundle(bundle: str | os.PathLike) -> Path:
    """A bundle's directory: the path itself, or for the name ``starter`` (when no such directory exists here)
    the starter model shipped with ecglens, its weights checked against their SHA-256."""
    if str(bundle) == STARTER and not Path(bundle).is_dir():
        starter_manifest()
        return starter_path()
    return Path(bundle)


def read_meta(path: str | os.PathLike) -> BundleMeta:
    """Read and validate ``bundle.json`` (``path`` may be ``starter``: see `resolve_bundle`)."""
    path = resolve_bundle(path)
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        best = Path(path) / "best"
        hint = f"; this is a training run: its bundle is {best}" if (best / META_FILE).is_file() else ""
        raise BundleError(f"{path}: not a bundle ({META_FILE} is missing){hint}")
    try:
        data = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise BundleError(f"{meta_path}: not valid JSON ({error})") from None
    return BundleMeta.from_dict(data, str(meta_path))
