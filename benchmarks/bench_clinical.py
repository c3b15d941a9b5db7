"""Clinical files: reading each shared file, beside the library's own parse, and the one-page PDF, in one run.

Usage: python benchmarks/bench_clinical.py [--data ../shared/data] [--repeats 5]

For every file in ``DATA/clinical``: the median time of ecgdatakit's parse alone and of ecglens's
`read_record` (the parse, the unit conversion to mV, derived leads, the cut calibration pulse, statements and
the personal data kept out), their ratio, and the record's shape. Then the starter model's one-page PDF of
each record (scored, measured, Grad-CAM drawn): the time to render it, and its size. Last, each hostile
clinical file of the tests (`tests/clinical_files.py`, and the shared SCP-ECG file cut short) read in a fresh
process: its named error, the read's time and the process's peak resident size (goal: 5 s, 500 MB). Run it
alone on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _median(function, repeats: int) -> float:
    function()  # warm-up: imports and the file cache
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from ecgdatakit import FileParser

    from ecglens.io import read_record

    files = sorted(p for p in (args.data / "clinical").rglob("*.*") if p.is_file())
    print(f"{'file':<48} {'format':<12} {'shape':<11} {'library ms':>10} {'ecglens ms':>10} {'ratio':>6}")
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            library = _median(lambda p=path: FileParser.parse(p), args.repeats)
        ours = _median(lambda p=path: read_record(p), args.repeats)
        record = read_record(path)
        shape = f"{record.signal.shape[0]}x{record.signal.shape[1]}"
        name = str(path.relative_to(args.data / "clinical"))[:48]
        print(
            f"{name:<48} {record.file_format:<12} {shape:<11} {1e3 * library:>10.1f} {1e3 * ours:>10.1f} "
            f"{ours / library:>6.2f}"
        )
    _reports(files, args.repeats)
    _hostile(args.data)


def _reports(files: list[Path], repeats: int) -> None:
    """The starter's one-page PDF of each record: render time (median) and size."""
    from ecglens import load_bundle
    from ecglens.explain.records import explain_inputs
    from ecglens.io import read_record
    from ecglens.report.pdf import model_label, record_pdf
    from ecglens.waves.delineate import measurements_of

    predictor = load_bundle("starter", "cpu")
    meta = predictor.meta
    label = model_label(predictor.bundle, meta)
    print(f"\n{'one-page PDF of':<48} {'render ms':>10} {'kB':>6}")
    for path in files:
        record = read_record(path)
        (scored,) = predictor.score_records([record])
        measured = measurements_of(record.signal, record.sampling_rate_hz, meta.lead_names)
        scored = replace(scored, prediction=replace(scored.prediction, measurements=measured))
        (cam, *_) = explain_inputs(
            predictor.model, meta, [scored.input], "gradcam", probabilities=scored.probabilities[None]
        )
        seconds = _median(lambda s=scored, c=cam: record_pdf(s, meta, label, c), repeats)
        size = len(record_pdf(scored, meta, label, cam)) / 1024
        print(f"{record.record_id:<48} {1e3 * seconds:>10.0f} {size:>6.0f}")


def _hostile(data: Path) -> None:
    """Every hostile clinical file read in a fresh process: time, peak resident MB, the named error."""
    import sys
    import tempfile

    sys.path.insert(0, str(REPO / "tests"))
    from clinical_files import hostile_clinical_files, read_in_a_fresh_process

    folder = Path(tempfile.mkdtemp(prefix="ecglens-hostile-"))
    cases = {name: path for name, (path, _) in hostile_clinical_files(folder).items()}
    scp = data / "clinical" / "scp" / "Example.scp"
    for keep in (40, 3000, 30000) if scp.is_file() else ():
        cases[f"scp_cut_at_{keep}"] = folder / f"cut{keep}.scp"
        cases[f"scp_cut_at_{keep}"].write_bytes(scp.read_bytes()[:keep])
    print(f"\n{'hostile file':<24} {'ms':>7} {'peak MB':>8}  named error")
    for name, path in cases.items():
        outcome, seconds, peak = read_in_a_fresh_process(path)
        print(f"{name:<24} {1e3 * seconds:>7.1f} {peak:>8.0f}  {outcome[:90]}")


if __name__ == "__main__":
    main()
