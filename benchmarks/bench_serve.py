"""Web service speed: requests/s and latency for 1, 8 and 64 concurrent clients, against predict's batch speed.

Usage: python benchmarks/bench_serve.py [--seconds 30] [--n 64]

Builds a ResNet-34 bundle at 500 Hz (random weights: the cost does not depend on them) and ``--n`` synthetic
10-s 500 Hz WFDB records, measures ``predict_files`` at batch 32 in this process (the reference), then starts
``ecglens serve`` in its own process on 127.0.0.1 and, for each client count, lets the clients post records
(.hea + .dat, multipart) for ``--seconds``. Prints requests/s, p50/p95/p99 latency, the ratio to the reference,
failures (anything but 200), the server's memory at rest and under load, and the cost of Grad-CAM for one
class per request. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _clients(url: str, payloads: list, n_clients: int, seconds: float, data: dict) -> tuple[list, list]:
    import httpx2 as httpx

    latencies, statuses = [], []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=n_clients, max_keepalive_connections=n_clients)

    async def client(k: int, http) -> None:
        i = k
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            response = await http.post(f"{url}/api/predict", files=payloads[i % len(payloads)], data=data)
            latencies.append(time.perf_counter() - start)
            statuses.append(response.status_code)
            i += n_clients

    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(k, http) for k in range(n_clients)))
    return latencies, statuses


def _rss_sampler(pid: int, stop: threading.Event, peak: list) -> None:
    import psutil

    process = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--clients", default="1,8,64")
    args = parser.parse_args()
    import httpx2 as httpx
    import psutil

    from ecglens.bundle.meta import default_meta
    from ecglens.bundle.weights import save_bundle
    from ecglens.leads import LEAD_NAMES
    from ecglens.models import create_model
    from ecglens.predict import find_record_files, load_bundle, predict_files
    from ecglens.preprocess import LengthPolicy
    from ecglens.synth.cohort import SynthConfig, write_cohort

    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch) / "bundle"
        model = create_model("resnet34").eval()
        save_bundle(bundle, model, default_meta(model.config, LEAD_NAMES, 500.0, LengthPolicy("crop", 10.0)))
        write_cohort(
            SynthConfig(n_records=args.n, sampling_rate_hz=500), Path(scratch) / "records", workers=1, progress=False
        )
        files = find_record_files([Path(scratch) / "records"])
        predictor = load_bundle(bundle, "cpu")
        predict_files(predictor, files[:8], batch_size=32, progress=False)  # warm-up
        start = time.perf_counter()
        predict_files(predictor, files, batch_size=32, progress=False)
        reference = len(files) / (time.perf_counter() - start)
        start = time.perf_counter()
        predict_files(predictor, files[:16], batch_size=1, progress=False)
        single_ms = 1000 * (time.perf_counter() - start) / 16
        print(
            f"reference: ecglens predict (same machine, same run), batch 32: {reference:.1f} records/s; "
            f"batch 1: {single_ms:.0f} ms per record"
        )
        del predictor, model
        payloads = [
            [
                ("files", (f.name, f.read_bytes())),
                ("files", (f.with_suffix(".dat").name, f.with_suffix(".dat").read_bytes())),
            ]
            for f in files
        ]
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ecglens.cli",
                "serve",
                "--checkpoint",
                str(bundle),
                "--port",
                str(port),
                "--device",
                "cpu",
                "--max-in-flight",
                "256",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=dict(os.environ),
        )
        try:
            deadline = time.time() + 120
            while time.time() < deadline:
                try:
                    if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.3)
            asyncio.run(_clients(url, payloads, 1, 2.0, {}))  # warm-up
            rest = psutil.Process(server.pid).memory_info().rss
            print(f"server memory at rest (after warm-up): {rest / 2**20:.0f} MiB")
            print(
                f"{'clients':>7} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
                f"{'ratio':>6} {'failed':>6} {'peak MiB':>8}"
            )
            for n_clients in (int(c) for c in args.clients.split(",")):
                stop, peak = threading.Event(), [rest]
                sampler = threading.Thread(target=_rss_sampler, args=(server.pid, stop, peak), daemon=True)
                sampler.start()
                start = time.perf_counter()
                latencies, statuses = asyncio.run(_clients(url, payloads, n_clients, args.seconds, {}))
                elapsed = time.perf_counter() - start
                stop.set()
                sampler.join()
                rate = len(latencies) / elapsed
                p50, p95, p99 = (1000 * np.percentile(latencies, q) for q in (50, 95, 99))
                failed = sum(status != 200 for status in statuses)
                print(
                    f"{n_clients:>7} {len(latencies):>8} {rate:>7.1f} {p50:>7.0f} {p95:>7.0f} {p99:>7.0f} "
                    f"{rate / reference:>6.2f} {failed:>6} {peak[0] / 2**20:>8.0f}"
                )
                if n_clients == 1:
                    print(
                        f"        one request = {p50:.0f} ms at p50 against {single_ms:.0f} ms for the model "
                        f"alone at batch 1: HTTP, upload parsing and reading cost {p50 - single_ms:.0f} ms"
                    )
            plain, _ = asyncio.run(_clients(url, payloads, 1, 10.0, {}))
            explained, statuses = asyncio.run(_clients(url, payloads, 1, 10.0, {"explain": "gradcam", "class": "AF"}))
            assert all(status == 200 for status in statuses)
            print(
                f"Grad-CAM for one class adds {1000 * (np.median(explained) - np.median(plain)):.0f} ms per "
                f"10-s 500 Hz record (median {1000 * np.median(explained):.0f} vs {1000 * np.median(plain):.0f} ms)"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
