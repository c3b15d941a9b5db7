"""MATLAB files read with scipy, their decoded size checked first.

A MATLAB v5 file may hold zlib-compressed elements: a 0.6 MB file can inflate to gigabytes. Before scipy
decodes anything, `load_mat` inflates each compressed element as a stream, counting the bytes and keeping
none, and refuses the file once the count passes `ecglens.io.limits.MAX_DECODED_BYTES`; it then checks each
top-level array's declared shape (``scipy.io.whosmat``) against the sample budget. MATLAB v4 files are never
compressed: their size on disk bounds them, and their declared shapes are checked the same way.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import scipy.io

from ecglens.io.limits import MAX_DECODED_BYTES, check_values, regular_file
from ecglens.io.record import RecordError, RecordTooLarge

_V5_HEADER = 128
_MI_COMPRESSED = 15
_CHUNK = 1 << 20


def decoded_bytes(path: str, limit: int = MAX_DECODED_BYTES) -> int:
    """The bytes a MATLAB file's data elements take once decompressed (v5), or its size (v4); stops counting
    past ``limit``.

    Raises:
        RecordTooLarge: more than ``limit`` bytes.
    """
    with open(path, "rb") as handle:
        head = handle.read(_V5_HEADER)
        if len(head) < _V5_HEADER or head[126:128] not in (b"IM", b"MI"):
            handle.seek(0, 2)
            return handle.tell()  # v4 (or not MATLAB: scipy says so): nothing is compressed
        order = "<" if head[126:128] == b"IM" else ">"
        total = 0
        while True:
            tag = handle.read(8)
            if len(tag) < 8:
                return total
            kind, size = struct.unpack(order + "II", tag)
            if kind == _MI_COMPRESSED:
                total += _inflated(handle, size, limit - total, path)
            else:
                total += size
                handle.seek(size + (-size % 8), 1)
            if total > limit:
                raise RecordTooLarge(
                    path,
                    f"MATLAB data of more than {limit / 2**20:.0f} MiB once decompressed "
                    f"(at least {total / 2**20:.0f} MiB)",
                )


def _inflated(handle, size: int, room: int, path: str) -> int:
    """Bytes one zlib element inflates to, counted in chunks and discarded; stops once past ``room``."""
    inflater, total, left = zlib.decompressobj(), 0, size
    while left > 0 and total <= room:
        data = handle.read(min(left, _CHUNK))
        if not data:
            break
        left -= len(data)
        while data and total <= room:
            try:
                out = inflater.decompress(data, _CHUNK)
            except zlib.error:
                return total  # damaged stream: scipy names the fault when it reads the file
            total += len(out)
            data = inflater.unconsumed_tail
    if left > 0:
        handle.seek(left, 1)
    return total


def load_mat(path: str) -> dict:
    """``scipy.io.loadmat`` of a regular file whose decoded size and declared shapes are within the limits.

    Raises:
        RecordError: not a regular file, too large (`RecordTooLarge`), or unreadable.
    """
    regular_file(path)
    try:
        decoded_bytes(path)
        for name, shape, _ in scipy.io.whosmat(path):
            check_values(path, float(np.prod(shape, dtype=np.float64)), f"'{name}' declares")
        return scipy.io.loadmat(path)
    except RecordError:
        raise
    except Exception as error:  # scipy raises many types for corrupt files
        raise RecordError(path, f"unreadable MATLAB file ({type(error).__name__}: {error})") from None
