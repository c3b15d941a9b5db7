"""Pseudonymous identifiers: a keyed hash (HMAC-SHA-256) of what would identify a person or a file.

A plain hash of ``/exports/SMITH_JOHN_1950-01-01.xml`` can be confirmed by anyone who guesses the path; a keyed
one cannot without the key. The key (the salt) is ``$ECGLENS_ID_SALT`` when set (share it to get the same ids
on several machines), else 32 random bytes kept in ``$XDG_CONFIG_HOME/ecglens/id-salt`` (``~/.config/...``)
with owner-only permissions, made on first use, so a file keeps its id from run to run on one machine. Where
that folder cannot be written, the salt lives for the process only, and ids change between runs.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SALT_ENV = "ECGLENS_ID_SALT"
ID_HEX_CHARS = 12
"""48 bits: one collision among a million files has a chance of about 2e-3."""


def salt_path() -> Path:
    """Where the machine's salt is kept."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "ecglens" / "id-salt"


@functools.cache
def _salt(from_env: str | None) -> bytes:
    if from_env:
        return from_env.encode()
    path = salt_path()
    try:
        if path.is_file():
            return path.read_bytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        salt = secrets.token_bytes(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(salt)
        return salt
    except FileExistsError:  # another process made it first
        return path.read_bytes()
    except OSError:
        return secrets.token_bytes(32)


def pseudonym(text: str, prefix: str = "ecg") -> str:
    """``prefix-`` and the first 12 hex digits of the keyed hash of ``text``."""
    digest = hmac.new(_salt(os.environ.get(SALT_ENV)), text.encode("utf-8", "surrogateescape"), hashlib.sha256)
    return f"{prefix}-{digest.hexdigest()[:ID_HEX_CHARS]}"
