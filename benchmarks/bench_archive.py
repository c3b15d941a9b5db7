"""``predict --archive`` at scale: records/s in one and two processes, peak memory at 2,000 and 20,000 records, the
cost of a kill and its resume, and what that projects for an 800,000-record archive.

The archive is generated under ``--root`` (``/tmp`` by default, never the repository): copies of real PTB-XL
records (``records100``: 12 leads, 10 s at 100 Hz), each made a distinct record by moving one sample up and
another down by one ADC unit (its content key and checksum change, not its diagnosis). Each figure is one
``ecglens predict --archive --decision model`` command in a fresh process (torch's startup included), run
alone; take figures on an otherwise idle machine (the script prints how many other Python processes ran).

    python benchmarks/bench_archive.py --records 20000 --small 2000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ECGLENS_DATA", REPO.parent / "shared" / "data")) / "ptb-xl" / "records100"
MEASURED = """
import resource, sys
from ecglens.cli import main
code = main(sys.argv[1:])
usage = resource.getrusage
print("PEAK_KIB", usage(resource.RUSAGE_SELF).ru_maxrss, usage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def make_archive(root: Path, count: int) -> Path:
    """``count`` distinct WFDB records under ``root/ecg`` (1,000 a folder), from the real ones in `DATA`."""
    folder = root / "ecg"
    if folder.is_dir() and len(list(folder.rglob("*.hea"))) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    bases = sorted(DATA.rglob("*.hea"))
    if not bases:
        raise SystemExit(f"no PTB-XL records under {DATA}: set ECGLENS_DATA")
    for i in range(count):
        base = bases[i % len(bases)]
        samples = np.fromfile(base.with_suffix(".dat"), "<i2").reshape(-1, 12).copy()
        copy = i // len(bases)  # which copy of its base: 0 is the record as it is
        samples[copy % samples.shape[0], copy % 12] += 1  # a checksum-neutral change (up one, down one)
        samples[(copy + 1) % samples.shape[0], copy % 12] -= 1
        name = f"c{i:06d}"
        target = folder / f"{i // 1000:03d}"
        target.mkdir(parents=True, exist_ok=True)
        samples.tofile(target / f"{name}.dat")
        header = base.read_text().replace(base.stem, name)
        (target / f"{name}.hea").write_text(header)
    return folder


def subset(root: Path, folder: Path, count: int) -> Path:
    """The first ``count`` records of the archive, as symbolic links in their own folder."""
    small = root / f"ecg-{count}"
    if not small.is_dir():
        for hea in sorted(folder.rglob("*.hea"))[:count]:
            target = small / hea.parent.name
            target.mkdir(parents=True, exist_ok=True)
            for part in (hea, hea.with_suffix(".dat")):
                (target / part.name).symlink_to(part)
    return small


def tiny_bundle(root: Path) -> Path:
    """A ResNet-tiny bundle with random weights and the starter's classes, leads and rate: the archive's own costs
    (reading, hashing, writing, merging) show beside a model this small; the starter's rate is measured apart."""
    import torch

    from ecglens.bundle.meta import read_meta, starter_path
    from ecglens.bundle.weights import save_bundle
    from ecglens.models.config import ResNetConfig
    from ecglens.models.resnet1d import ResNet1d

    torch.manual_seed(0)
    meta = read_meta(starter_path())
    shape = ResNetConfig("resnet_tiny", len(meta.lead_names), len(meta.class_names), (1, 1, 1, 1), 16)
    meta = replace(meta, model=shape, temperatures=None)
    return save_bundle(root / "tiny-bundle", ResNet1d(shape).eval(), meta)


def command(
    archive: Path, out: Path, processes: int, threads: int, batch: int, bundle: str, readers: int = 0
) -> tuple[list[str], dict]:
    """The command (under torchrun for several processes) and its environment."""
    args = ["predict", str(archive), "--archive", "--checkpoint", bundle, "--decision", "model", "--out", str(out)]
    args += ["--batch-size", str(batch), "--read-workers", str(readers)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": str(threads)}
    if processes == 1:
        return [sys.executable, "-c", MEASURED, *args], env
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes)]
    return [*torchrun, "--no-python", sys.executable, "-c", MEASURED, *args], env


def timed(cmd: list[str], env: dict) -> tuple[float, int, int]:
    """Seconds, and the peak resident memory (MiB) of the largest scoring process and of its reader."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    peaks = [line.split()[1:] for line in done.stderr.splitlines() if line.startswith("PEAK_KIB")]
    return seconds, max(int(p[0]) for p in peaks) // 1024, max(int(p[1]) for p in peaks) // 1024


def manifest_rows(out: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in (out / "archive").glob("manifest-*.jsonl"))


def kill_and_resume(archive: Path, out: Path, batch: int, count: int, bundle: str) -> dict:
    """Kill -9 a run halfway, run the same command again: the seconds each took, and how many were left."""
    shutil.rmtree(out, ignore_errors=True)
    cmd, env = command(archive, out, 1, 2, batch, bundle, readers=1)
    start = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while manifest_rows(out) < count // 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = time.perf_counter() - start
    kept = manifest_rows(out)
    seconds, _, _ = timed(cmd, env)
    return {"killed_after_s": first, "committed": kept, "resume_s": seconds, "remaining": count - kept}


ONE, TWO = "1 process x 2 threads + 1 reader", "torchrun 2 x 1 thread"
RUNS = (  # name, archive (small, big or compared), processes, threads per process, reader processes per process
    (ONE, "small", 1, 2, 1),
    (ONE, "big", 1, 2, 1),
    (ONE, "compared", 1, 2, 1),
    (TWO, "compared", 2, 1, 0),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--compare", type=int, default=4000, help="records for one process against two")
    parser.add_argument("--starter-records", type=int, default=200, help="records scored by the starter model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--root", type=Path, default=Path("/tmp/ecglens-bench-archive"))
    args = parser.parse_args()
    print(f"python processes on the machine before the run: {python_processes()} (this one included)")
    start = time.perf_counter()
    big = make_archive(args.root, args.records)
    folders = {
        "big": big,
        "small": subset(args.root, big, args.small),
        "compared": subset(args.root, big, args.compare),
    }
    counts = {"big": args.records, "small": args.small, "compared": args.compare}
    tiny = str(tiny_bundle(args.root))
    print(f"archive of {args.records} records generated in {time.perf_counter() - start:.0f} s under {args.root}")
    figures = {}
    for name, which, processes, threads, readers in RUNS:
        out = args.root / f"out-{processes}-{which}-{counts[which]}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = command(folders[which], out, processes, threads, args.batch_size, tiny, readers)
        seconds, peak, reader = timed(*cmd)
        again = timed(*cmd)[0]
        figures[(name, which)] = (seconds, peak, again, reader)
        print(
            f"{name:<34} {counts[which]:>7} records  {seconds:7.1f} s  {counts[which] / seconds:6.1f} rec/s  "
            f"peak {peak} MiB (reader {reader} MiB)  second run over the same archive {again:.1f} s",
            flush=True,
        )
    starter = subset(args.root, big, args.starter_records)
    out = args.root / "out-starter"
    shutil.rmtree(out, ignore_errors=True)
    starter_s = timed(*command(starter, out, 1, 2, args.batch_size, "starter", 1))[0]
    print(f"starter model, 1 process x 2 threads + 1 reader: {args.starter_records / starter_s:.1f} rec/s", flush=True)
    killed = kill_and_resume(folders["small"], args.root / "out-killed", args.batch_size, args.small, tiny)
    print("kill -9 halfway and resume:", json.dumps({k: round(v, 1) for k, v in killed.items()}))
    report(figures, killed, args.starter_records / starter_s, args)
    print(f"python processes on the machine after the run: {python_processes()} (this one included)")


def python_processes() -> int:
    """Python processes running now (other people's jobs share the cores and bias every figure)."""
    ps = subprocess.run(["ps", "-eo", "comm"], capture_output=True, text=True).stdout.split()
    return sum(name.startswith("python") for name in ps)


def report(figures: dict, killed: dict, starter_rate: float, args: argparse.Namespace) -> None:
    """The figures side by side, and the projection for 800,000 records."""
    one_small, one_big = figures[(ONE, "small")], figures[(ONE, "big")]
    one, two = figures[(ONE, "compared")], figures[(TWO, "compared")]
    rate_one, rate_two = args.compare / one[0], args.compare / two[0]
    per_record_kib = max(0, one_big[1] - one_small[1]) * 1024 / (args.records - args.small)
    small_rate = args.small / one_small[0]
    print()
    print(
        "| ResNet-tiny bundle (random weights) | 1 process x 2 threads + 1 reader | torchrun 2 processes x 1 thread |"
    )
    print("|---|---|---|")
    print(f"| records/s, {args.compare} records | {rate_one:.1f} | {rate_two:.1f} ({rate_two / rate_one - 1:+.0%}) |")
    print(f"| records/s, {args.records} records | {args.records / one_big[0]:.1f} | |")
    print(f"| peak memory, {args.small} records | {one_small[1]} MiB (reader {one_small[3]} MiB) | |")
    print(
        f"| peak memory, {args.records} records | {one_big[1]} MiB ({one_big[1] / one_small[1] - 1:+.1%}; "
        f"reader {one_big[3]} MiB) | |"
    )
    print(f"| peak memory, {args.compare} records | {one[1]} MiB | {two[1]} MiB per process |")
    print(f"| second run, nothing new, {args.records} records | {one_big[2]:.1f} s | |")
    print(f"| second run, nothing new, {args.compare} records | {one[2]:.1f} s | {two[2]:.1f} s |")
    lost = killed["resume_s"] - killed["remaining"] / small_rate
    print(
        f"| kill -9 halfway through {args.small}, then the same command | {killed['resume_s']:.1f} s for the "
        f"{killed['remaining']} left ({lost:+.1f} s beside their share of an uninterrupted run) | |"
    )
    memory = one_big[1] + per_record_kib * (800_000 - args.records) / 1024
    print(
        f"| 800,000 records projected, this machine | starter {800_000 / starter_rate / 3600:.1f} h "
        f"({starter_rate:.1f} rec/s); ResNet-tiny {800_000 * one_big[0] / args.records / 3600:.1f} h; "
        f"about {memory:.0f} MiB peak ({per_record_kib:.2f} KiB a record above the base) | |"
    )
    print("| 800,000 records projected, one GPU | (not measured: no GPU here) | |")


if __name__ == "__main__":
    main()
