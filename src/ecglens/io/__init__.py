"""Readers: every supported file format in, one frozen `Record` out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecglens.util.lazy import lazy_exports

if TYPE_CHECKING:
    from ecglens.io.record import ReadIssue, Record, RecordError
    from ecglens.io.refs import RecordRef
    from ecglens.io.sources import (
        FORMATS,
        ScanResult,
        Source,
        detect_format,
        parse_source,
        read_many,
        read_record,
        read_ref,
        scan_source,
        scan_sources,
    )
    from ecglens.io.wfdb_files import read_header, read_wfdb

__all__ = [
    "FORMATS",
    "ReadIssue",
    "Record",
    "RecordError",
    "RecordRef",
    "ScanResult",
    "Source",
    "detect_format",
    "parse_source",
    "read_header",
    "read_many",
    "read_record",
    "read_ref",
    "read_wfdb",
    "scan_source",
    "scan_sources",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "ReadIssue": "ecglens.io.record",
        "Record": "ecglens.io.record",
        "RecordError": "ecglens.io.record",
        "RecordRef": "ecglens.io.refs",
        "FORMATS": "ecglens.io.sources",
        "ScanResult": "ecglens.io.sources",
        "Source": "ecglens.io.sources",
        "detect_format": "ecglens.io.sources",
        "parse_source": "ecglens.io.sources",
        "read_many": "ecglens.io.sources",
        "read_record": "ecglens.io.sources",
        "read_ref": "ecglens.io.sources",
        "scan_source": "ecglens.io.sources",
        "scan_sources": "ecglens.io.sources",
        "read_header": "ecglens.io.wfdb_files",
        "read_wfdb": "ecglens.io.wfdb_files",
    },
)
