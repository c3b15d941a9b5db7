"""Splits of cached records: which record trains, validates or tests a model (no torch here).

Records are split by patient, twins of one recording across caches are used once, and records outside a label
space are kept as negatives or left out (`SplitSpec`). `ecglens.bundle` reads these and never the torch
datasets of `ecglens.data.dataset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ecglens.labels.mapping import LabelMap

if TYPE_CHECKING:
    from ecglens.data.cache import EcgCache

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
    from ecglens.data.cache import LABEL_COLUMNS  # the cache and its readers: loaded when a table is built
    from ecglens.io.sources import recording_key_for

    frames = []
    for c, cache in enumerate(caches):
        index = cache.index
        vocabulary = index["label_vocabulary"].fillna("").astype(str)
        readers = vocabulary.map(lambda v: _NATIVE.get(v, "wfdb"))
        recordings = [
            recording_key_for(reader, str(record), str(path))
            for reader, record, path in zip(readers, index["record_id"], index["source_path"].fillna(""), strict=True)
        ]
        labels = cache.labels(label_map)
        names = list(LABEL_COLUMNS) if label_map is None else list(label_map.classes)
        names = [name.removeprefix("label_") for name in names]
        frames.append(
            pd.DataFrame(
                {
                    "cache": str(cache.path),
                    "cache_number": c,
                    "row": np.arange(len(cache)),
                    "dataset": index["dataset"].astype(str).to_numpy(),
                    "record_id": index["record_id"].astype(str).to_numpy(),
                    "native": (readers != "wfdb").to_numpy(),
                    "recording": recordings,
                    "patient_id": [
                        None if pd.isna(p) else f"{d}/{p}"
                        for d, p in zip(index["dataset"], index["patient_id"], strict=True)
                    ],
                    "fold": index["fold"].to_numpy(object),
                    "scope": np.where(
                        labels.any(axis=1), "in", np.where(cache.labelled(label_map), "out", "unlabelled")
                    ),
                    "classes": [";".join(n for n, v in zip(names, row, strict=True) if v) for row in labels],
                }
            )
        )
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(table):
        table["fold"] = table["fold"].astype("Int64")
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
                disagreements.append(
                    {
                        "recording": recording,
                        "kept": f"{kept['dataset']}/{kept['record_id']}",
                        "kept_classes": kept["classes"],
                        "other": f"{other['dataset']}/{other['record_id']}",
                        "other_classes": other["classes"],
                    }
                )
    return duplicate, pd.DataFrame(
        disagreements, columns=["recording", "kept", "kept_classes", "other", "other_classes"]
    )


def _ptbxl_patients(table: pd.DataFrame, caches: Sequence[EcgCache]) -> None:
    """Give a Challenge ``HR`` file the patient and fold that PTB-XL's database names for its ecg_id (from the
    native PTB-XL caches of the run, which keep every row of their ``ptbxl_database.csv``), so one patient's
    recordings stay on one side."""
    for cache in caches:
        patients = cache.ptbxl_patients()
        if patients.empty:
            continue
        dataset = str(cache.index["dataset"].iloc[0]) if len(cache) else "ptbxl"
        by_id: dict[Any, dict[Any, Any]] = patients.set_index("ecg_id")[["patient_id", "strat_fold"]].to_dict("index")
        for position in np.flatnonzero(
            (
                (~table["native"]) & table["patient_id"].isna() & table["recording"].fillna("").str.startswith("ptbxl/")
            ).to_numpy(bool)
        ):
            ecg_id = int(str(table.at[position, "recording"]).split("/")[1])
            if (row := by_id.get(ecg_id)) is not None:
                table.at[position, "patient_id"] = f"{dataset}/{int(row['patient_id'])}"
                table.at[position, "fold"] = int(row["strat_fold"])


def split_caches(
    caches: Sequence[EcgCache],
    split: SplitSpec = SplitSpec(),
    labelled_only: bool = True,
    label_map: LabelMap | None = None,
) -> SplitItems:
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
    parts = {
        name: tuple(
            Item(int(c), int(r))
            for c, r in table.loc[table["split"] == name, ["cache_number", "row"]].itertuples(index=False)
        )
        for name in SPLITS
    }
    unknown = table[keep & table["patient_id"].isna()]
    notes: tuple[str, ...] = ()
    if len(unknown):
        counts = ", ".join(f"{d} {n}" for d, n in unknown["dataset"].value_counts().sort_index().items())
        notes = (f"Split by record, not by patient, where no patient id is known: {len(unknown)} records ({counts}).",)
    return SplitItems(
        parts["train"], parts["val"], parts["test"], table.drop(columns=["cache_number", "row", "native"]), twins, notes
    )
