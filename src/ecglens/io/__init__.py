"""Readers: every supported file format in, one frozen `Record` out."""

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
    "FORMATS", "ReadIssue", "Record", "RecordError", "RecordRef", "ScanResult", "Source",
    "detect_format", "parse_source", "read_header", "read_many", "read_record", "read_ref",
    "read_wfdb", "scan_source", "scan_sources",
]
