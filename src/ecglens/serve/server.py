"""Running the app under uvicorn: bundle choice, the token rule for non-loopback addresses, one-line errors."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ecglens.bundle.meta import STARTER
from ecglens.serve.app import ServeConfig, ServeLimits, create_app
from ecglens.serve.examples import default_examples_root


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


def serve_config(
    checkpoint: str | None,
    host: str,
    token: str | None,
    background_caches: Sequence[str] = (),
    max_upload_mb: float = 20.0,
    max_record_minutes: float = 10.0,
    max_in_flight: int = 64,
    device: str = "auto",
    allowed_hosts: Sequence[str] = (),
    body_timeout_s: float = 30.0,
    examples: str | None = None,
    measurements: bool = False,
) -> ServeConfig:
    """The server's configuration from the command's options.

    The Host header (and a browser's Origin) may name the loopback addresses, ``host`` itself unless it is a
    wildcard address, and ``allowed_hosts`` (``*``: any).

    Raises:
        ValueError: a non-loopback address without a token, or a non-positive limit.
    """
    if not is_loopback(host) and not token:
        raise ValueError(f"--host {host} exposes the server beyond this machine: give --token (or ECGLENS_TOKEN)")
    if not all(v > 0 for v in (max_upload_mb, max_record_minutes, max_in_flight, body_timeout_s)):
        raise ValueError("--max-upload-mb, --max-record-minutes, --max-in-flight and --body-timeout must be positive")
    names = [*ServeLimits.allowed_hosts, *(h.strip().lower().strip("[]") for h in allowed_hosts)]
    if host not in ("0.0.0.0", "::", ""):
        names.append(host.lower().strip("[]"))
    limits = ServeLimits(
        int(max_upload_mb * 2**20),
        max_record_minutes * 60,
        max_in_flight,
        max_decoded_values=int(12 * max_record_minutes * 60 * 1000),
        body_timeout_s=body_timeout_s,
        allowed_hosts=tuple(dict.fromkeys(names)),
    )
    root = examples if examples is not None else default_examples_root()
    return ServeConfig(
        serve_bundle(checkpoint),
        device,
        token,
        limits,
        tuple(background_caches),
        examples_root=None if root is None else str(root),
        measurements=measurements,
    )


def run_server(
    checkpoint: str | None, host: str = "127.0.0.1", port: int = 8000, token: str | None = None, **options
) -> None:
    """Serve until interrupted; ``options`` are `serve_config`'s."""
    import uvicorn

    config = serve_config(checkpoint, host, token, **options)
    app = create_app(config)
    # the starter's notice is printed once, by the command line's --checkpoint (as for predict)
    if app.state.service.examples_note:
        print(app.state.service.examples_note, flush=True)
    print(f"serving {config.bundle} at http://{host}:{port} (API docs at /docs); Ctrl-C stops", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
