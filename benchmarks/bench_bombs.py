"""Issue 35's decompression and size bombs, each read in a fresh process: peak resident size and seconds.

Usage: python benchmarks/bench_bombs.py [--base PATH/TO/OLD/src]

Builds each bomb with the tests' own generators (`tests/clinical_files.py`): a deflated DICOM whose dataset
inflates to 200 MB, a 1.2-MB Philips 1.03 file whose XLI (LZW) leads inflate to 46 MB each, a 120-kB WFDB record
whose format field declares a skew of 99,999,999 samples (``16:99999999``), and a 31-MiB CSV. Each is read with
`ecglens.io.read_record` in a new Python process (peak = that process's ``VmHWM``, which starts afresh at exec),
with this checkout's ``src`` and, given ``--base``, an older checkout's (e.g. a ``git worktree`` of ea46e12), side
by side. Goal: every bomb under 0.5 GB and 5 s. Run it alone on the machine: the base's reads take minutes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _bombs(folder: Path) -> dict[str, Path]:
    import numpy as np

    from clinical_files import deflated_dicom_bomb, xli_bomb
    from ecglens.leads import LEAD_NAMES

    out = {
        "deflated DICOM (200 MB inflated)": deflated_dicom_bomb(folder / "deflated.dcm"),
        "Philips XLI (12 x 46 MB)": xli_bomb(folder / "xli.xml"),
    }
    lines = ["skew 12 500 5000"] + [f"skew.dat 16:99999999 1000/mV 16 0 0 0 0 {lead}" for lead in LEAD_NAMES]
    (folder / "skew.hea").write_text("\n".join(lines) + "\n")
    np.zeros((5000, 12), "<i2").tofile(folder / "skew.dat")
    out["WFDB 16:99999999"] = folder / "skew.hea"
    row = ",".join(["0.125"] * 12) + "\n"
    (folder / "big.csv").write_text(row * (31 * 2**20 // len(row)))
    out["CSV 31 MiB"] = folder / "big.csv"
    return out


def _read(src: Path, path: Path) -> tuple[float, float, str]:
    from clinical_files import READ_SCRIPT  # the tests' own fresh-process reader

    env = {**os.environ, "PYTHONPATH": str(src)}
    rate = ["500.0"] if path.suffix == ".csv" else []
    command = [sys.executable, "-c", READ_SCRIPT, str(path), *rate]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    if run.returncode:
        return float("nan"), float("nan"), run.stderr.strip().splitlines()[-1][:80]
    seconds, peak, outcome = run.stdout.strip().split("\n", 2)
    return float(seconds), float(peak), outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="an older checkout's src folder, read side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        bombs = _bombs(Path(scratch))
        print(f"{'bomb':<34} {'kB':>7} {'base MB':>8} {'base s':>7} {'now MB':>7} {'now s':>6}  now: outcome")
        for name, path in bombs.items():
            size = path.stat().st_size / 1e3
            base = _read(args.base, path) if args.base else (float("nan"), float("nan"), "")
            now = _read(REPO / "src", path)
            print(
                f"{name:<34} {size:>7.0f} {base[1]:>8.0f} {base[0]:>7.2f} {now[1]:>7.0f} {now[0]:>6.2f}  {now[2][:90]}"
            )


if __name__ == "__main__":
    main()
