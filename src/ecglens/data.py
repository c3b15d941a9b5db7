"""From cache to model: splits, augmentation and PyTorch datasets.

Evaluation items are made by `ecglens.preprocess.model_input`'s length policy (`apply_policy`), training
items by `ecglens.preprocess.random_window`, so the inputs scored here are those `predict` scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from ecglens.cache import LABEL_COLUMNS, EcgCache
from ecglens.io.sources import recording_key_for
from ecglens.labels.mapping import LabelMap
from ecglens.leads import LEAD_NAMES, lead_order
from ecglens.perturb import Perturbation, RandomPerturbation
from ecglens.preprocess import LengthPolicy, apply_policy, batches_by_length, random_window

SPLITS = ("train", "val", "test")
OUT_OF_SCOPE = ("negative", "excluded")
"""What a run does with records whose statements name no class of its label space (out of scope): keep them as
negatives for every class (the default), or leave them out, as the study did (``--in-scope-only``)."""


@dataclass(frozen=True)
class SplitSpec:
    """Which records a run uses and how they are split.

    Attributes:
        seed: seeds the folds of datasets without official folds.
        val_fold: the validation fold.
        test_fold: the test fold.
        out_of_scope: ``negative`` (records outside the label space kept, negative for every class) or
            ``excluded`` (left out: the study's reproduction).
    """

    seed: int = 0
    val_fold: int = 9
    test_fold: int = 10
    out_of_scope: str = "negative"

    def __post_init__(self) -> None:
        if self.val_fold == self.test_fold:
            raise ValueError("the validation and test folds must differ")
        if not (1 <= self.val_fold <= 10 and 1 <= self.test_fold <= 10):
            raise ValueError("folds are numbered 1 to 10")
        if self.out_of_scope not in OUT_OF_SCOPE:
            raise ValueError(f"out_of_scope is one of {', '.join(OUT_OF_SCOPE)}, not {self.out_of_scope!r}")

    @classmethod
    def from_dict(cls, data: dict) -> SplitSpec:
        """Inverse of `dataclasses.asdict`; a run saved before ``out_of_scope`` existed left them out."""
        return cls(**{"out_of_scope": "excluded", **data})


@dataclass(frozen=True)
class Augmentation:
    """The original code's augmentation, each part applied with ``probability``.

    The published code applies each part when ``np.random.randn() > 0.5``, i.e. with probability
    0.3085; ecglens defaults to 0.5 and says so (pass 0.3085 to match the original).
    """

    probability: float = 0.5
    scale_sigma: float = 0.1
    shift_mv: float = 0.02

    def apply(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per-lead amplitude scaling N(1, sigma) and per-lead baseline shift U(-shift, shift) mV."""
        n_leads = signal.shape[0]
        if rng.random() < self.probability:
            signal = signal * rng.normal(1.0, self.scale_sigma, (n_leads, 1)).astype(np.float32)
        if rng.random() < self.probability:
            signal = signal + rng.uniform(-self.shift_mv, self.shift_mv, (n_leads, 1)).astype(np.float32)
        return signal


def assign_splits(index: pd.DataFrame, split: SplitSpec = SplitSpec()) -> np.ndarray:
    """Train / val / test per record; each dataset split by its own rule.

    A record with an official fold (PTB-XL ``strat_fold``, patient-wise; a Challenge ``HR`` file whose
    patient PTB-XL names) uses it: ``split.val_fold`` (9) for validation, ``split.test_fold`` (10) for test,
    the rest for training. The other records of a dataset get 10 folds assigned with ``split.seed`` (by
    patient when patient ids are known, else by record): 8 train, 1 validation, 1 test, as the study.
    """
    splits = np.empty(len(index), dtype=object)
    for dataset, rows in index.groupby("dataset", sort=True):
        positions = index.index.get_indexer(rows.index)
        folds = rows["fold"]
        official = (folds.notna() & folds.between(1, 10)).to_numpy(bool)
        fold = np.where(official, folds.fillna(0).to_numpy(int), 0)
        if not official.all():
            groups = rows["patient_id"].fillna(rows["record_id"]).astype(str).to_numpy()
            unique = np.unique(groups[~official])
            rng = np.random.default_rng([split.seed, _seed_of_name(str(dataset))])
            fold_of = dict(zip(unique[rng.permutation(len(unique))], np.arange(len(unique)) % 10 + 1, strict=True))
            fold[~official] = [fold_of[g] for g in groups[~official]]
        splits[positions] = np.where(fold == split.test_fold, "test", np.where(fold == split.val_fold, "val", "train"))
    return splits


def _seed_of_name(text: str) -> int:
    """A dataset name's first 8 bytes as an integer: a seed that is the same in every process and Python version
    (not a hash: names sharing their first 8 bytes share it; kept so that existing bundles' splits stay as they
    were)."""
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little")


@dataclass(frozen=True)
class Item:
    """Where a dataset item comes from: a cache and a row in it."""

    cache: int
    row: int


class CacheDataset(Dataset):
    """Records of one or more caches as (signal tensor leads x samples, multi-hot target) pairs.

    Args:
        caches: caches sharing one sampling rate.
        items: which rows to serve.
        policy: the input-length policy.
        train: training mode (random crops, augmentation) or evaluation mode (deterministic).
        lead_names: leads to feed the model, in order (any subset of the cache's leads).
        augmentation: training augmentation, or None.
        seed: with the epoch (`set_epoch`) and item number, seeds each item's randomness, so results
            do not depend on worker processes or ranks.
        label_map: the label space of the targets (None: the caches' own nine classes).
        perturbation: applied to each signal (at the cache's rate, in ``lead_names`` order) with a generator
            seeded by ``seed``, the epoch and the item: `ecglens.perturb.Perturbation` for robustness
            evaluation, `ecglens.perturb.RandomPerturbation` as training augmentation.
    """

    def __init__(self, caches: Sequence[EcgCache], items: Sequence[Item], policy: LengthPolicy, train: bool,
                 lead_names: Sequence[str] = LEAD_NAMES, augmentation: Augmentation | None = None, seed: int = 0,
                 label_map: LabelMap | None = None, perturbation: Perturbation | RandomPerturbation | None = None):
        rates = {cache.sampling_rate_hz for cache in caches}
        if len(rates) != 1:
            raise ValueError(f"caches have different sampling rates: {sorted(rates)}")
        self.caches = list(caches)
        self.items = list(items)
        self.policy = policy
        self.train = train
        self.augmentation = augmentation if train else None
        self.seed = seed
        self.perturbation = perturbation
        self.lead_names = tuple(lead_names)
        self.epoch = 0
        self.sampling_rate_hz = rates.pop()
        self.lead_rows = [np.asarray(lead_order(cache.spec.lead_names, lead_names)) for cache in self.caches]
        self.all_leads = [len(rows) == cache.n_leads and bool((rows == np.arange(cache.n_leads)).all())
                          for rows, cache in zip(self.lead_rows, self.caches, strict=True)]
        self.window = policy.window(self.sampling_rate_hz)
        n_classes = len(LABEL_COLUMNS) if label_map is None else len(label_map.classes)
        self._labels = np.stack([self.caches[i.cache].labels(label_map)[i.row] for i in self.items]) if self.items \
            else np.zeros((0, n_classes), np.float32)

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops and augmentation for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> np.ndarray:
        """Targets of all items, items x classes."""
        return self._labels

    def length(self, i: int) -> int:
        """Input length of item ``i`` under the policy (for bucketing)."""
        if self.policy.name == "original" or self.train:
            return self.window
        item = self.items[i]
        return int(self.caches[item.cache].lengths[item.row])

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``i`` (of the current epoch), or ``(epoch, i)`` as `EpochSampler` yields it."""
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        item = self.items[i]
        cache = self.caches[item.cache]
        signal = cache.signal(item.row)
        if not self.all_leads[item.cache]:
            signal = signal[self.lead_rows[item.cache]]
        rng = np.random.default_rng([self.seed, epoch, i])
        if not self.train:
            if self.perturbation is not None:
                signal = self.perturbation.apply(signal, self.sampling_rate_hz, self.lead_names, rng)
            out = apply_policy(signal, self.policy, self.sampling_rate_hz)
        else:
            out = random_window(signal, self.policy, self.sampling_rate_hz, rng)
            if self.perturbation is not None:
                out = self.perturbation.apply(out, self.sampling_rate_hz, self.lead_names, rng)
        if self.augmentation is not None:
            out = self.augmentation.apply(out, rng)
        return torch.from_numpy(np.ascontiguousarray(out)), torch.from_numpy(self._labels[i])


class EpochSampler(Sampler[tuple[int, int]]):
    """A sampler's indices paired with the epoch: ``(epoch, i)``.

    DataLoader workers that live across epochs (``persistent_workers``) hold their own copy of the
    dataset, which `CacheDataset.set_epoch` in the main process never reaches; the epoch travels with
    each index instead, so every epoch draws its own crops whatever the number of workers.
    """

    def __init__(self, sampler: Sampler[int]):
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next pass (passed on to a distributed sampler's shuffle)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(i)) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class LengthBucketSampler(Sampler[list[int]]):
    """Evaluation batches of items with equal input length (no padding), in a fixed order."""

    def __init__(self, dataset: CacheDataset, batch_size: int):
        lengths = [dataset.length(i) for i in range(len(dataset))]
        self.batches = [chunk.tolist() for chunk in batches_by_length(lengths, batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


@dataclass(frozen=True)
class SplitItems:
    """The items of each split over a list of caches, plus the tables saved with a run.

    Attributes:
        train: training items.
        val: validation items.
        test: test items.
        table: every record of every cache: its split, or ``excluded`` / ``duplicate``, its scope (``in``,
            ``out`` of the label space, ``unlabelled``), recording and patient.
        twins: recordings held by two caches whose classes differ: the copy kept (native source first) and
            the other, with both classes.
        notes: what a reader of the run should know about the split (e.g. datasets split by record).
    """

    train: tuple[Item, ...]
    val: tuple[Item, ...]
    test: tuple[Item, ...]
    table: pd.DataFrame
    twins: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: tuple[str, ...] = ()

    def __getitem__(self, split: str) -> tuple[Item, ...]:
        return getattr(self, split)

    def out_of_scope(self, split: str) -> int:
        """How many records of a split are outside the label space (negatives for every class)."""
        rows = self.table[self.table["split"] == split]
        return int((rows["scope"] == "out").sum())


_NATIVE = {"scp": "ptbxl", "cpsc": "cpsc2018"}
"""The reader of a cache row's vocabulary when it is a native database's (the others came from WFDB files)."""


def records_table(caches: Sequence[EcgCache], label_map: LabelMap | None = None) -> pd.DataFrame:
    """Every record of every cache: position, dataset, recording, patient, fold, scope and classes."""
    frames = []
    for c, cache in enumerate(caches):
        index = cache.index
        vocabulary = index["label_vocabulary"].fillna("").astype(str)
        readers = vocabulary.map(lambda v: _NATIVE.get(v, "wfdb"))
        recordings = [recording_key_for(reader, str(record), str(path)) for reader, record, path
                      in zip(readers, index["record_id"], index["source_path"].fillna(""), strict=True)]
        labels = cache.labels(label_map)
        names = list(LABEL_COLUMNS) if label_map is None else list(label_map.classes)
        names = [name.removeprefix("label_") for name in names]
        frames.append(pd.DataFrame({
            "cache": str(cache.path), "cache_number": c, "row": np.arange(len(cache)),
            "dataset": index["dataset"].astype(str).to_numpy(), "record_id": index["record_id"].astype(str).to_numpy(),
            "native": (readers != "wfdb").to_numpy(), "recording": recordings,
            "patient_id": [None if pd.isna(p) else f"{d}/{p}" for d, p in zip(index["dataset"], index["patient_id"],
                                                                             strict=True)],
            "fold": index["fold"].to_numpy(object),
            "scope": np.where(labels.any(axis=1), "in", np.where(cache.labelled(label_map), "out", "unlabelled")),
            "classes": [";".join(n for n, v in zip(names, row, strict=True) if v) for row in labels],
        }))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(table):
        table["fold"] = pd.array(table["fold"], dtype="Int64")
    return table


def _join_twins(table: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Which rows are copies of a recording another row holds (native source first, then cache order), and the
    recordings whose copies disagree on their classes."""
    duplicate = np.zeros(len(table), bool)
    disagreements = []
    keyed = table[table["recording"].notna() & table["recording"].duplicated(keep=False)]
    for recording, rows in keyed.groupby("recording", sort=True):
        order = rows.sort_values(["native", "cache_number", "row"], ascending=[False, True, True], kind="stable")
        kept = order.iloc[0]
        duplicate[table.index.get_indexer(order.index[1:])] = True
        for _, other in order.iloc[1:].iterrows():
            if other["classes"] != kept["classes"]:
                disagreements.append({
                    "recording": recording, "kept": f"{kept['dataset']}/{kept['record_id']}",
                    "kept_classes": kept["classes"], "other": f"{other['dataset']}/{other['record_id']}",
                    "other_classes": other["classes"]})
    return duplicate, pd.DataFrame(disagreements, columns=["recording", "kept", "kept_classes", "other",
                                                           "other_classes"])


def _ptbxl_patients(table: pd.DataFrame, caches: Sequence[EcgCache]) -> None:
    """Give a Challenge ``HR`` file the patient and fold that PTB-XL's database names for its ecg_id (from the
    native PTB-XL caches of the run, which keep every row of their ``ptbxl_database.csv``), so one patient's
    recordings stay on one side."""
    for cache in caches:
        patients = cache.ptbxl_patients()
        if patients.empty:
            continue
        dataset = str(cache.index["dataset"].iloc[0]) if len(cache) else "ptbxl"
        by_id = patients.set_index("ecg_id")
        for position in np.flatnonzero(((~table["native"]) & table["patient_id"].isna()
                                        & table["recording"].fillna("").str.startswith("ptbxl/")).to_numpy(bool)):
            ecg_id = int(str(table.at[position, "recording"]).split("/")[1])
            if ecg_id in by_id.index:
                table.at[position, "patient_id"] = f"{dataset}/{int(by_id.at[ecg_id, 'patient_id'])}"
                table.at[position, "fold"] = int(by_id.at[ecg_id, "strat_fold"])


def split_caches(caches: Sequence[EcgCache], split: SplitSpec = SplitSpec(), labelled_only: bool = True,
                 label_map: LabelMap | None = None) -> SplitItems:
    """Split the records of all caches of a run together (see `assign_splits`).

    A recording two caches hold (a PTB-XL record native and as the Challenge's ``HR`` file) is used once, from
    the native source, in that copy's split; the other is ``duplicate`` and disagreements between the copies'
    classes are listed (`SplitItems.twins`). A Challenge ``HR`` file takes its patient and fold from the run's
    native PTB-XL records when they name it. Records outside the label space are kept as negatives or
    excluded (``split.out_of_scope``); unlabelled records are excluded when ``labelled_only``. A record's split
    never depends on the label space.
    """
    table = records_table(caches, label_map)
    if table.empty:
        return SplitItems((), (), (), table)
    duplicate, twins = _join_twins(table)
    _ptbxl_patients(table, caches)
    splits = assign_splits(table, split)
    if labelled_only:
        keep = table["scope"].eq("in") | (table["scope"].eq("out") & (split.out_of_scope == "negative"))
    else:
        keep = pd.Series(True, index=table.index)
    keep = keep.to_numpy(bool) & ~duplicate
    table["split"] = np.where(duplicate, "duplicate", np.where(keep, splits, "excluded"))
    parts = {name: tuple(Item(int(c), int(r)) for c, r in
                         table.loc[table["split"] == name, ["cache_number", "row"]].itertuples(index=False))
             for name in SPLITS}
    unknown = table[keep & table["patient_id"].isna()]
    notes = ()
    if len(unknown):
        counts = ", ".join(f"{d} {n}" for d, n in unknown["dataset"].value_counts().sort_index().items())
        notes = (f"Split by record, not by patient, where no patient id is known: {len(unknown)} records ({counts}).",)
    return SplitItems(parts["train"], parts["val"], parts["test"],
                      table.drop(columns=["cache_number", "row", "native"]), twins, notes)
