"""``serve``: the web viewer and HTTP API, until interrupted."""

from __future__ import annotations

from typing import Any

from ecglens.serve.server import run_server


def run_serve(
    checkpoint: str | None, host: str = "127.0.0.1", port: int = 8000, token: str | None = None, **options: Any
) -> None:
    """Serve ``checkpoint`` on ``host:port`` (`ecglens.serve.server.run_server`; ``options`` are
    `ecglens.serve.server.serve_config`'s)."""
    run_server(checkpoint, host, port, token, **options)
