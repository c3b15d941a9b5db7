"""File names derived from data: a safe character set plus a short hash, always inside the output folder."""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, max_length: int = 60) -> str:
    """A file-name stem for a data-derived string (a record id): safe characters only, never a path.

    Ids that are already safe and short are kept as they are (so ``S00012`` stays ``S00012``); any other
    id is reduced to its safe characters and suffixed with a short hash of the original, so two ids never
    collide and ``../x``, absolute paths, NUL bytes or very long ids cannot escape or break the folder.
    """
    cleaned = _UNSAFE.sub("_", text).strip("._") or "record"
    if cleaned == text and len(text) <= max_length:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{cleaned[: max_length - 11]}-{digest}"
