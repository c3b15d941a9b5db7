"""A PhysioNet mini mirror on 127.0.0.1 for the download tests: real layout, range requests, injected faults.

The test builds the mirror's files from ``../shared/data`` and a generated ``SHA256SUMS.txt`` per project;
the server is Python's threading HTTP server with a handler that answers ``Range: bytes=N-`` with 206 and
can, per path and per request, drop the connection mid-file, send corrupted bytes, hang, or fail with 503.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


def checksum_list(files: dict[str, bytes], project: str) -> bytes:
    """A project's SHA256SUMS.txt over the files under ``project/`` (paths relative to it)."""
    prefix = f"{project}/"
    lines = [
        f"{hashlib.sha256(data).hexdigest()} {path[len(prefix) :]}\n"
        for path, data in sorted(files.items())
        if path.startswith(prefix)
    ]
    return "".join(lines).encode()


class Mirror:
    """Serves ``files`` (URL path -> bytes) at ``url``; ``faults[path]`` queues one fault per request."""

    def __init__(self, files: dict[str, bytes], hang_seconds: float = 3.0) -> None:
        self.files = files
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.requests: list[tuple[str, str | None]] = []
        self.hang_seconds = hang_seconds
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = urlparse(self.path).path.lstrip("/")
                mirror.requests.append((path, self.headers.get("Range")))
                fault = mirror.faults[path].popleft() if mirror.faults[path] else None
                if fault == "hang":
                    time.sleep(mirror.hang_seconds)
                    self.close_connection = True
                    return
                if fault == "503" or path not in mirror.files:
                    self.send_error(503 if fault else 404)
                    return
                body = mirror.files[path]
                if fault == "corrupt":
                    body = bytes(b ^ 0xFF for b in body[:16]) + body[16:]
                start = 0
                if self.headers.get("Range", "").startswith("bytes="):
                    start = int(self.headers["Range"][6:].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if fault == "drop":  # half the promised bytes, then the connection goes away
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Mirror:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self, path: str) -> int:
        """Requests made for ``path``."""
        return sum(1 for p, _ in self.requests if p == path)
