"""The records the fused decision is fit and scored on, each read, scored and measured once as ``predict
--measurements`` does, and cached as JSON Lines (``scripts/build_fused.py`` fits on the ``val`` rows only;
``benchmarks/bench_criteria.py`` scores the others).

Parts:
- ``val`` and ``test``: the starter's own split (``split_caches`` over the caches of the sources its
  ``starter.json`` lists, with the split stored in its bundle), each record read from its own file;
- ``ludb``: LUDB (never used by the starter), its diagnoses mapped by ecglens's ``ludb.csv`` label table;
- ``clinical``: the shared clinical files (no labels; their own statements kept for the agreement table).

A row: ``part``, ``dataset``, ``record``, ``path``, ``truth`` (the nine classes' 0/1, None without labels),
``out_of_scope`` (labelled, no class), ``status`` (``ok`` or ``not interpretable``), ``probabilities``,
``decisions`` (the model's, at the shipped thresholds), ``features`` (`CriteriaResult.features`), ``met``
(the classes whose criteria are met) and ``statements`` (the file's own).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ECGLENS_DATA", REPO.parent / "shared" / "data"))
PARTS = ("val", "test", "ludb", "clinical")


def split_files(work: Path) -> dict[str, list[tuple[str, str, str, list[str] | None]]]:
    """The starter's validation and test records: (dataset, record id, file, classes) per part, split exactly
    as the build split them (the caches are rebuilt under ``work`` once, at 100 Hz)."""
    import pandas as pd

    from ecglens.bundle.meta import read_meta, resolve_bundle, starter_manifest
    from ecglens.data import SplitSpec, split_caches
    from ecglens.data.cache import EcgCache, build_cache
    from ecglens.io import parse_source

    manifest = starter_manifest()
    meta = read_meta(resolve_bundle("starter"))
    caches = []
    for i, spec in enumerate(manifest.sources):
        path = work / f"cache-{manifest.label_profile}-{i}"  # another profile labels the records otherwise
        if not (path / "done").is_file():
            build_cache(
                [parse_source(spec.format(d=DATA))], path, 100, manifest.label_profile, progress=False, overwrite=True
            )
            (path / "done").write_text("ok")
        caches.append(EcgCache(path))
    split = meta.training_data.split if meta.training_data is not None else SplitSpec(0, 7, 8)
    splits = split_caches(caches, split, label_map=meta.label_map)
    table = splits.table
    paths = pd.concat([c.index["source_path"] for c in caches], ignore_index=True)
    out: dict[str, list[tuple[str, str, str, list[str] | None]]] = {}
    for part in ("val", "test"):
        rows = table[table["split"] == part]
        out[part] = [
            (str(r.dataset), str(r.record_id), str(paths.iloc[i]), [c for c in str(r.classes or "").split(";") if c])
            for i, r in zip(rows.index, rows.itertuples(), strict=True)
        ]
    return out


def _files(part: str, work: Path) -> list[tuple[str, str, str, list[str] | None]]:
    if part in ("val", "test"):
        return split_files(work)[part]
    if part == "ludb":
        return [("ludb", p.stem, str(p), None) for p in sorted((DATA / "ludb" / "data").glob("*.hea"))]
    from ecglens.predict import find_record_files

    return [("clinical", p.parent.name, str(p), None) for p in find_record_files([DATA / "clinical"])]


def extract(part: str, work: Path, progress: bool = True) -> Iterator[dict]:
    """Read, score and measure every record of ``part`` (as ``predict --measurements``)."""
    from ecglens.classes import CLASS_NAMES
    from ecglens.io import read_record
    from ecglens.predict import Predictor
    from ecglens.waves.delineate import measurements_of

    predictor = Predictor("starter", "cpu")
    files = _files(part, work)
    for n, (dataset, record_id, path, classes) in enumerate(files):
        row: dict = {"part": part, "dataset": dataset, "record": record_id, "path": path}
        try:
            record = read_record(path, predictor.meta.lead_names)
        except Exception as error:  # counted, never stops the part
            row.update(status=f"unreadable: {error}")
            yield row
            continue
        (scored,) = predictor.score_records([record])
        prediction = scored.prediction
        if classes is None and prediction.true_labels is not None:
            classes = list(prediction.true_labels)
        labelled = classes is not None and (part in ("val", "test") or bool(record.raw_labels))
        row.update(
            truth=[int(c in classes) for c in CLASS_NAMES] if labelled and classes is not None else None,
            out_of_scope=bool(labelled and not classes),
            status=prediction.status,
            probabilities=[float(p) for p in scored.probabilities],
            decisions=list(prediction.decisions),
            statements=list(prediction.file_statements),
            sex=record.sex,
            age=record.age,
        )
        if prediction.status == "ok":
            measured = prediction.with_measurements(
                measurements_of(record.signal, record.sampling_rate_hz, predictor.meta.lead_names, record.sex),
                record.age,
            )
            assert measured.criteria is not None
            row.update(features=measured.criteria.features(), met=list(measured.criteria.met()))
        if progress and n % 25 == 0:
            print(f"{part}: {n}/{len(files)}", file=sys.stderr, flush=True)
        yield row


def made_by() -> str:
    """What a part's rows depend on (sha256): the starter's weights, ``bundle.json`` and ``starter.json``; the
    code and data that measure and judge a record (``ecglens.waves`` with the delineator's weights,
    ``ecglens.criteria`` with its table) and the label tables that give its truth. Rows cached by another
    starter, other measurements, criteria or labels are extracted again, never reused. The fused decision
    (``fused.json``), which is fit on these rows, is not part of it."""
    import hashlib

    from ecglens.bundle.meta import starter_path

    package = REPO / "src" / "ecglens"
    starter = [*sorted(starter_path().glob("*.safetensors")), starter_path() / "bundle.json"]
    starter.append(starter_path() / "starter.json")
    code = sorted(
        p
        for folder in (package / "waves", package / "criteria", package / "labels" / "tables")
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".py", ".csv", ".json", ".safetensors")  # not the cards' prose
    )
    digest = hashlib.sha256()
    for part in [*starter, *code]:
        digest.update(str(part.relative_to(REPO) if part.is_relative_to(REPO) else part.name).encode() + b"\0")
        digest.update(part.read_bytes())
    return digest.hexdigest()


def load_rows(part: str, work: Path, progress: bool = True) -> list[dict]:
    """The rows of ``part``, from ``work/rows-<part>.jsonl`` when it is there and was made by this starter and these
    criteria (`made_by`), else extracted and cached."""
    cached, stamp = work / f"rows-{part}.jsonl", work / f"rows-{part}.made-by"
    if cached.is_file() and (not stamp.is_file() or stamp.read_text() != made_by()):
        print(
            f"{part}: rows cached by another starter, other measurements or criteria: extracting again", file=sys.stderr
        )
        cached.unlink()
    if not cached.is_file():
        work.mkdir(parents=True, exist_ok=True)
        scratch = cached.with_suffix(".tmp")
        with scratch.open("w") as handle:
            for row in extract(part, work, progress):
                handle.write(json.dumps(row) + "\n")
        scratch.replace(cached)
        stamp.write_text(made_by())
    return [json.loads(line) for line in cached.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    where = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fused-work")
    for name in sys.argv[2:] or PARTS:
        print(name, len(load_rows(name, where)))
