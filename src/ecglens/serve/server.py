"""Running the app under uvicorn: bundle choice, the token rule for non-loopback addresses, one-line errors."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ecglens.bundle import STARTER, starter_notice
from ecglens.serve.app import ServeConfig, ServeLimits, create_app


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_bundle(checkpoint: str | None) -> str:
    """The bundle to serve: the one given, else the starter model shipped with ecglens (trained on real ECGs)."""
    return checkpoint or STARTER


def serve_config(checkpoint: str | None, host: str, token: str | None, background_caches: Sequence[str] = (),
                 max_upload_mb: float = 20.0, max_record_minutes: float = 10.0, max_in_flight: int = 64,
                 device: str = "auto") -> ServeConfig:
    """The server's configuration from the command's options.

    Raises:
        ValueError: a non-loopback address without a token, or a non-positive limit.
    """
    if not is_loopback(host) and not token:
        raise ValueError(f"--host {host} exposes the server beyond this machine: give --token (or ECGLENS_TOKEN)")
    if max_upload_mb <= 0 or max_record_minutes <= 0 or max_in_flight <= 0:
        raise ValueError("--max-upload-mb, --max-record-minutes and --max-in-flight must be positive")
    limits = ServeLimits(int(max_upload_mb * 2**20), max_record_minutes * 60, max_in_flight)
    return ServeConfig(serve_bundle(checkpoint), device, token, limits, tuple(background_caches))


def run_server(checkpoint: str | None, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
               background_caches: Sequence[str] = (), max_upload_mb: float = 20.0, max_record_minutes: float = 10.0,
               max_in_flight: int = 64, device: str = "auto") -> None:
    """Serve until interrupted."""
    import uvicorn

    config = serve_config(checkpoint, host, token, background_caches, max_upload_mb, max_record_minutes,
                          max_in_flight, device)
    app = create_app(config)
    if config.bundle == STARTER:
        print(starter_notice(), flush=True)
    print(f"serving {config.bundle} at http://{host}:{port} (API docs at /docs); Ctrl-C stops", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
