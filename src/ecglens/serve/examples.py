"""Example records for the viewer's "try an example" buttons.

Real records when a PTB-XL folder is at hand (``serve --examples PTBXL_ROOT``, or ``$ECGLENS_DATA/ptb-xl``): for
each of the bundle's classes, a record whose statements map to that class alone (of the bundle's held-out test fold
first, then the one with the fewest statements, so the example shows the class rather than a crowd of other
findings), shown with its own statements and their mapping beside the model's decisions. Else the fixed set that
``ecglens data download examples`` fetches (`ecglens.io.example_set`: seven PTB-XL records, one per class the
starter decides), when its folder holds them, every file verified. PTB-XL is openly licensed (CC BY 4.0; Wagner
et al., Sci Data 2020, doi:10.1038/s41597-020-0495-6); its records are read from that folder, never copied into
ecglens.

Without real records, a bundle trained only on synthetic data (the demo's) gets one synthetic record per class,
labelled as synthetic; a bundle trained on real ECGs gets none, and the viewer says how to fetch the examples,
since synthetic records would only show it misreading a kind of ECG it never saw.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ecglens.bundle.meta import BundleMeta
from ecglens.classes import CLASS_NAMES
from ecglens.io import Record, RecordError
from ecglens.io.example_set import CREDIT, EXAMPLES, examples_folder, fetch_hint, missing_examples, read_example
from ecglens.io.ptbxl import is_ptbxl_root, read_ptbxl, scan_ptbxl
from ecglens.leads import LEAD_NAMES
from ecglens.synth.cohort import CLASS_MECHANISMS, SynthConfig, generate_record

PTBXL_CITATION = CREDIT + ", read from {root}"


@dataclass(frozen=True)
class Example:
    """A record with its known class, where it comes from, and whether it is real."""

    id: str
    class_name: str
    description: str
    record: Record
    source: str = "synthetic"
    """``synthetic``, or the real dataset's citation."""
    statements: tuple[str, ...] = ()
    """The record's own statements (PTB-XL SCP codes), all of them, mapped to the bundle's classes or not."""


def default_examples_root() -> Path | None:
    """``$ECGLENS_DATA/ptb-xl`` when it holds PTB-XL, else the examples folder when it holds the fetched examples
    (`ecglens.io.example_set.examples_folder`), else None."""
    data = os.environ.get("ECGLENS_DATA")
    candidate = Path(data) / "ptb-xl" if data else None
    if candidate is not None and (candidate / "ptbxl_database.csv").is_file():
        return candidate
    fetched = examples_folder()
    return fetched if fetched.is_dir() and not missing_examples(fetched) else None


def make_examples(meta: BundleMeta, root: str | os.PathLike | None = None) -> tuple[Example, ...]:
    """The viewer's examples for a bundle: real PTB-XL records from ``root`` (a PTB-XL folder or the fetched
    examples' folder; see the module), else synthetic ones for a synthetic-only bundle, else none."""
    if root is not None:
        return real_examples(meta, root) if is_ptbxl_root(root) else fetched_examples(meta, root)
    return synthetic_examples() if _synthetic_only(meta) else ()


def examples_note(meta: BundleMeta, root: str | os.PathLike | None) -> str | None:
    """What the viewer and the server say where a bundle trained on real ECGs has no examples: how to fetch them
    (with their size); None where it has some."""
    return None if root is not None or _synthetic_only(meta) else fetch_hint()


def _synthetic_only(meta: BundleMeta) -> bool:
    data = meta.training_data
    return data is not None and data.synthetic_only


def fetched_examples(meta: BundleMeta, folder: str | os.PathLike) -> tuple[Example, ...]:
    """The fetched examples (`ecglens.io.example_set`) whose statements map to one class of the bundle.

    Raises:
        ValueError: ``folder`` is neither a PTB-XL folder nor one holding every example file, verified.
    """
    missing = missing_examples(folder)
    if missing:
        raise ValueError(
            f"--examples {folder}: neither a PTB-XL folder (no ptbxl_database.csv) nor the examples "
            f"'ecglens data download examples --out {folder}' fetches ({len(missing)} file(s) missing or "
            f"not verified, e.g. {missing[0]})"
        )
    found = []
    for example in EXAMPLES:
        classes = meta.label_map.map(example.statements, "scp").classes
        if len(classes) != 1:
            continue
        statements = tuple(code for code, _ in example.statements)
        found.append(
            Example(
                f"ptbxl-{example.ecg_id}",
                classes[0],
                f"PTB-XL record {example.ecg_id} (fold {example.fold}): {', '.join(statements)}",
                read_example(folder, example, meta.lead_names),
                PTBXL_CITATION.format(root=folder),
                statements,
            )
        )
    order = {name: index for index, name in enumerate(meta.class_names)}
    return tuple(sorted(found, key=lambda e: order[e.class_name]))


def real_examples(meta: BundleMeta, root: str | os.PathLike, per_class: int = 1) -> tuple[Example, ...]:
    """One PTB-XL record per class of the bundle whose statements map to that class alone.

    Raises:
        ValueError: ``root`` is not a PTB-XL folder.
    """
    try:
        refs, _ = scan_ptbxl(root, 100 if meta.sampling_rate_hz <= 100 else 500)
    except RecordError as error:
        raise ValueError(f"--examples {root}: not a PTB-XL folder ({error.reason})") from None
    test_fold = meta.split.test_fold
    label_map = meta.label_map
    found: dict[str, list[Example]] = {}
    for ref in sorted(refs, key=lambda r: (r.fold != test_fold, len(r.raw_labels), int(r.record_id))):
        classes = label_map.map(ref.raw_labels, ref.label_vocabulary).classes
        if len(classes) != 1 or len(found.get(classes[0], ())) >= per_class:
            continue
        try:
            record = read_ptbxl(ref, meta.lead_names)
        except RecordError:
            continue
        statements = tuple(code for code, _ in ref.raw_labels)
        found.setdefault(classes[0], []).append(
            Example(
                f"ptbxl-{ref.record_id}",
                classes[0],
                f"PTB-XL record {ref.record_id} (fold {ref.fold}): {', '.join(statements)}",
                record,
                PTBXL_CITATION.format(root=root),
                statements,
            )
        )
    return tuple(e for name in meta.class_names for e in found.get(name, ()))


def synthetic_examples(seed: int = 11, sampling_rate_hz: float = 500.0) -> tuple[Example, ...]:
    """One single-label synthetic record per class (10 s), generated deterministically."""
    config = replace(SynthConfig(sampling_rate_hz=sampling_rate_hz, seed=seed), multi_label_rate=0.0)
    found: dict[str, Example] = {}
    index = 0
    while len(found) < len(CLASS_NAMES) and index < 2000:
        synthetic = generate_record(index, config)
        index += 1
        name = synthetic.classes[0]
        if name in found:
            continue
        record = Record(
            f"example-{name}",
            "synthetic",
            synthetic.signal,
            sampling_rate_hz,
            LEAD_NAMES,
            source_path=f"synthetic example ({name})",
        )
        found[name] = Example(f"example-{name}", name, f"synthetic: {CLASS_MECHANISMS[name]}", record)
    return tuple(found[name] for name in CLASS_NAMES if name in found)
