"""WFDB records (``.hea`` + ``.dat``/``.mat``), including PhysioNet/CinC Challenge headers.

Headers are parsed here rather than by ``wfdb.rdheader`` because real Challenge releases write
the record name with its extension on the first line (``E07500.mat 12 500 5000``), which wfdb
rejects, and write comments as ``#Dx:`` or ``# Dx:``. Signals in ``.dat`` files are decoded by
``wfdb.rdrecord`` (every WFDB format); Challenge ``.mat`` files (a MATLAB v4 ``val`` matrix of
ADC units) are read with ``scipy.io.loadmat``.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from ecglens.io.limits import check_gain, check_length, check_rate, check_values, integer, number, regular_file
from ecglens.io.matfile import load_mat
from ecglens.io.record import Record, RecordError, finish_signal, numeric_samples, parse_age, parse_sex
from ecglens.io.units import unit_to_mv
from ecglens.leads import LEAD_NAMES

_BYTES_PER_SAMPLE = {"8": 1.0, "16": 2.0, "61": 2.0, "80": 1.0, "160": 2.0, "212": 1.5, "24": 3.0, "32": 4.0}


@dataclass(frozen=True)
class WfdbHeader:
    """The parts of a WFDB header ecglens uses."""

    path: str
    record_name: str
    sampling_rate_hz: float
    n_samples: int | None
    file_names: tuple[str, ...]
    formats: tuple[str, ...]
    gains: tuple[float, ...]
    baselines: tuple[int, ...]
    units: tuple[str, ...]
    lead_names: tuple[str, ...]
    comments: tuple[str, ...]
    record_line_has_extension: bool
    skews: tuple[int, ...] = ()
    """Each signal's skew in samples (``fmt:skew``): wfdb reads that many more samples of it."""
    byte_offsets: tuple[int, ...] = ()
    """Each signal's byte offset into its file (``fmt+offset``)."""
    samples_per_frame: tuple[int, ...] = ()
    """Each signal's samples per frame (``fmtxN``)."""

    def comment_fields(self) -> dict[str, str]:
        """``#Key: value`` comments as a dict with lower-case keys (``# Dx:`` and ``#Dx:`` alike)."""
        fields: dict[str, str] = {}
        for line in self.comments:
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip().lower(), value.strip())
        return fields

    def ludb_statements(self) -> tuple[str, ...] | None:
        """LUDB's diagnoses (the comment lines after ``<diagnoses>:``) as statement codes, or None for a header
        without them: ``Rhythm: Sinus rhythm`` -> ``Sinus rhythm``, ``STEMI: septal`` -> ``STEMI``,
        ``Ventricular extrasystole, type: couplet`` -> ``Ventricular extrasystole`` (the family; its detail
        names no other class)."""
        marker = next((i for i, line in enumerate(self.comments) if line.lower().startswith("<diagnoses>")), None)
        if marker is None:
            return None
        codes = []
        for line in self.comments[marker + 1 :]:
            text = line.strip().rstrip(".").strip()
            text = text[len("Rhythm:") :].strip() if text.startswith("Rhythm:") else text
            code = re.split(r"[:,]", text, maxsplit=1)[0].strip()
            if code and code not in codes:
                codes.append(code)
        return tuple(codes)

    def snomed_codes(self) -> tuple[str, ...]:
        """SNOMED-CT codes of the ``#Dx:`` comment, in file order."""
        dx = self.comment_fields().get("dx", "")
        return tuple(code.strip() for code in dx.split(",") if code.strip() and code.strip().lower() != "unknown")


def _number(path: str, text: str, what: str) -> float:
    return number(path, text, f"header: {what}")


@dataclass(frozen=True)
class _RecordLine:
    """The first non-comment line of a header: name, signal count, rate, sample count."""

    name: str
    has_extension: bool
    n_signals: int
    sampling_rate_hz: float
    n_samples: int | None


@dataclass(frozen=True)
class _SignalLine:
    """One signal line of a header: file, format, gain, baseline, unit and lead name."""

    file_name: str
    format: str
    gain: float
    baseline: int
    unit: str
    lead_name: str
    skew: int = 0
    byte_offset: int = 0
    samples_per_frame: int = 1


def read_header(path: str | os.PathLike) -> WfdbHeader:
    """Parse a single-segment WFDB header file.

    Raises:
        RecordError: the file is missing, empty or not a valid header.
    """
    path = str(path)
    regular_file(path)
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as error:
        raise RecordError(path, f"cannot read header: {error.strerror}") from None
    lines = [line.strip() for line in text.splitlines()]
    comments = tuple(line.lstrip("#").strip() for line in lines if line.startswith("#"))
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise RecordError(path, "empty header (no record line)")
    record = _record_line(path, lines[0])
    signal_lines = lines[1 : 1 + record.n_signals]
    if len(signal_lines) != record.n_signals:
        raise RecordError(path, f"header announces {record.n_signals} signals but describes {len(signal_lines)}")
    signals = [_signal_line(path, line, index) for index, line in enumerate(signal_lines)]
    return WfdbHeader(
        path=path,
        record_name=record.name,
        sampling_rate_hz=record.sampling_rate_hz,
        n_samples=record.n_samples,
        file_names=tuple(s.file_name for s in signals),
        formats=tuple(s.format for s in signals),
        gains=tuple(s.gain for s in signals),
        baselines=tuple(s.baseline for s in signals),
        units=tuple(s.unit for s in signals),
        lead_names=tuple(s.lead_name for s in signals),
        comments=comments,
        record_line_has_extension=record.has_extension,
        skews=tuple(s.skew for s in signals),
        byte_offsets=tuple(s.byte_offset for s in signals),
        samples_per_frame=tuple(s.samples_per_frame for s in signals),
    )


def _record_line(path: str, line: str) -> _RecordLine:
    fields = line.split()
    if len(fields) < 2:
        raise RecordError(path, f"header: record line {line!r} has no signal count")
    name = fields[0]
    if "/" in name:
        raise RecordError(path, "multi-segment WFDB records are not supported")
    try:
        n_signals = int(fields[1])
    except ValueError:
        raise RecordError(path, f"header: signal count {fields[1]!r} is not an integer") from None
    if not 1 <= n_signals <= 64:
        raise RecordError(path, f"header: signal count {n_signals} is outside 1 to 64")
    sampling_rate = 250.0  # WFDB's default when the record line names none
    if len(fields) > 2:
        sampling_rate = _number(path, fields[2].split("/")[0].split("(")[0], "sampling rate")
    check_rate(path, sampling_rate)
    n_samples = integer(path, fields[3], "header: sample count", low=0) if len(fields) > 3 else None
    if n_samples:  # 0 or absent: not stated
        check_length(path, n_samples, sampling_rate)
    return _RecordLine(name.split(".")[0], "." in name, n_signals, sampling_rate, n_samples or None)


def _signal_line(path: str, line: str, index: int) -> _SignalLine:
    parts = line.split()
    if len(parts) < 2:
        raise RecordError(path, f"header: signal line {line!r} is incomplete")
    gain, baseline, unit = 200.0, None, "mV"
    if len(parts) > 2:
        gain_text, _, unit_text = parts[2].partition("/")
        gain_text, _, baseline_text = gain_text.partition("(")
        gain = check_gain(path, _number(path, gain_text, "gain"))  # WFDB: gain 0 means the default 200
        if baseline_text:
            baseline = integer(path, baseline_text.rstrip(")"), "header: baseline")
        unit = unit_text or "mV"
    adc_zero = integer(path, parts[4], "header: ADC zero") if len(parts) > 4 else 0
    if os.path.isabs(parts[0]) or os.sep in parts[0] or "/" in parts[0] or parts[0] in (".", ".."):
        raise RecordError(path, f"header: signal file {parts[0]!r} is not a file beside the header")
    fmt, skew, byte_offset, frame = _format_field(path, parts[1])
    return _SignalLine(
        parts[0],
        fmt,
        gain,
        adc_zero if baseline is None else baseline,
        unit,
        " ".join(parts[8:]) if len(parts) > 8 else f"signal{index}",
        skew,
        byte_offset,
        frame,
    )


_FORMAT_FIELD = re.compile(r"^(?P<fmt>\d+)(?:x(?P<frame>[^:+]*))?(?::(?P<skew>[^+]*))?(?:\+(?P<offset>.*))?$")


def _format_field(path: str, text: str) -> tuple[str, int, int, int]:
    """A signal's format field ``fmt[xsamples_per_frame][:skew][+byte_offset]``: the format and the three numbers,
    each a whole number checked here (their size against the file and the sample budget when it is read).

    Raises:
        RecordError: a field that is not of that form, or a number that is not a non-negative integer.
    """
    match = _FORMAT_FIELD.match(text)
    if match is None:
        raise RecordError(path, f"header: format field {text!r} is not fmt[xN][:skew][+offset]")
    frame = integer(path, match["frame"], "header: samples per frame", low=1) if match["frame"] is not None else 1
    skew = integer(path, match["skew"], "header: skew", low=0) if match["skew"] is not None else 0
    offset = integer(path, match["offset"], "header: byte offset", low=0) if match["offset"] is not None else 0
    return match["fmt"], skew, offset, frame


def _unit_scale(header: WfdbHeader) -> np.ndarray:
    scales = []
    for unit in header.units:
        scale = unit_to_mv(unit, unitless_ok=True)
        if scale is None:
            raise RecordError(header.path, f"unknown signal unit {unit!r}")
        scales.append(scale)
    return np.asarray(scales, dtype=np.float64)[:, None]


def _read_mat_signal(header: WfdbHeader) -> np.ndarray:
    directory = os.path.dirname(header.path)
    if len(set(header.file_names)) != 1:
        raise RecordError(header.path, "signals spread over several .mat files are not supported")
    mat_path = os.path.join(directory, header.file_names[0])
    content = load_mat(mat_path)
    if "val" not in content:
        raise RecordError(mat_path, "MATLAB file has no 'val' matrix")
    values = numeric_samples(mat_path, content["val"], "'val'")
    n_signals = len(header.lead_names)
    if values.ndim != 2 or values.shape[0] != n_signals:
        raise RecordError(mat_path, f"'val' has shape {values.shape}, header announces {n_signals} signals")
    gains = np.asarray(header.gains)[:, None]
    baselines = np.asarray(header.baselines, dtype=np.float64)[:, None]
    return (values - baselines) / gains


def _read_dat_signal(header: WfdbHeader) -> np.ndarray:
    directory = os.path.dirname(header.path) or "."
    for name in set(header.file_names):
        data_path = os.path.join(directory, name)
        if not os.path.exists(data_path):
            raise RecordError(data_path, "signal file is missing")
        regular_file(data_path)
        size = os.path.getsize(data_path)
        if size == 0:
            raise RecordError(data_path, "signal file is empty")
        mine = [i for i, n in enumerate(header.file_names) if n == name]
        formats = [header.formats[i] for i in mine]
        frames = [header.samples_per_frame[i] if header.samples_per_frame else 1 for i in mine]
        skew = max((header.skews[i] for i in mine), default=0) if header.skews else 0
        start = max((header.byte_offsets[i] for i in mine), default=0) if header.byte_offsets else 0
        if start >= size:
            raise RecordError(data_path, f"header: byte offset {start:,} is past the end of the {size:,}-byte file")
        size -= start
        known = all(f in _BYTES_PER_SAMPLE for f in formats)
        frame = sum(_BYTES_PER_SAMPLE[f] * k for f, k in zip(formats, frames, strict=True)) if known else 1.0
        if header.n_samples and known:
            needed = int(header.n_samples * frame)
            if size < needed:
                raise RecordError(
                    data_path, f"truncated signal file: {size} bytes, {header.n_samples} samples need {needed}"
                )
        # Before decoding: the samples the header declares, or (no sample count) the ones the file's size holds.
        n_samples = header.n_samples or size / frame
        if not header.n_samples:
            check_length(data_path, int(n_samples), header.sampling_rate_hz)
        # wfdb reads the skew's extra samples of every signal of the file, and every sample of a frame
        check_values(data_path, (n_samples + skew) * sum(frames), "the header (with its skew) and file size declare")
        if skew > n_samples:
            raise RecordError(data_path, f"header: a skew of {skew:,} samples is longer than the record")
    base = os.path.join(directory, header.record_name)
    try:
        if header.record_line_has_extension or os.path.basename(header.path) != header.record_name + ".hea":
            # wfdb insists on a clean record line and on <name>.hea: give it a corrected copy.
            with tempfile.TemporaryDirectory() as scratch:
                text = Path(header.path).read_text(encoding="ascii", errors="replace").splitlines()
                first = next(i for i, line in enumerate(text) if line.strip() and not line.startswith("#"))
                parts = text[first].split()
                parts[0] = header.record_name
                text[first] = " ".join(parts)
                Path(scratch, header.record_name + ".hea").write_text("\n".join(text) + "\n")
                for name in set(header.file_names):
                    os.symlink(os.path.abspath(os.path.join(directory, name)), os.path.join(scratch, name))
                record = wfdb.rdrecord(os.path.join(scratch, header.record_name), physical=True)
        else:
            record = wfdb.rdrecord(base, physical=True)
    except RecordError:
        raise
    except Exception as error:  # wfdb raises ValueError, IndexError, ... for damaged files
        raise RecordError(header.path, f"cannot decode signal ({type(error).__name__}: {error})") from None
    signal = record.p_signal
    if signal is None:
        raise RecordError(header.path, "record has no physical signal")
    return np.asarray(signal, dtype=np.float64).T


def read_wfdb(
    path: str | os.PathLike,
    dataset: str = "wfdb",
    wanted_leads: tuple[str, ...] = LEAD_NAMES,
    header: WfdbHeader | None = None,
) -> Record:
    """Read one WFDB record (any sampling rate) with its Challenge-style comments.

    Args:
        path: the ``.hea`` file (or the record path without extension).
        dataset: dataset name stored in the record.
        wanted_leads: leads to return, in order; missing ones are an error that names them.
        header: an already parsed header, to skip parsing it again.

    Raises:
        RecordError: naming the file and what is wrong with it.
    """
    path = str(path)
    if not path.endswith(".hea"):
        path += ".hea"
    header = header or read_header(path)
    if all(name.lower().endswith(".mat") for name in header.file_names):
        signal = _read_mat_signal(header)
    else:
        signal = _read_dat_signal(header)
    if header.n_samples is not None and signal.shape[1] != header.n_samples:
        raise RecordError(
            path, f"truncated or overlong signal: {signal.shape[1]} samples, header announces {header.n_samples}"
        )
    signal = signal * _unit_scale(header)
    signal = finish_signal(path, signal, header.lead_names, wanted_leads)
    fields = header.comment_fields()
    codes = header.snomed_codes()
    vocabulary = "snomed" if "dx" in fields else "none"
    ludb = header.ludb_statements()
    if ludb is not None and vocabulary == "none":
        codes, vocabulary = ludb, "ludb"
        fields = {key: value for key in ("age", "sex") if (value := fields.get(f"<{key}>")) is not None}
    return Record(
        record_id=ptbxl_ecg_id(path) or Path(path).stem,  # the file's name, never the header's record line
        dataset=dataset,
        signal=signal,
        sampling_rate_hz=header.sampling_rate_hz,
        lead_names=tuple(wanted_leads),
        raw_labels=tuple((code, None) for code in codes),
        label_vocabulary=vocabulary,
        age=parse_age(path, fields.get("age")),
        sex=parse_sex(fields.get("sex")),
        source_path=path,
    )


_PTBXL_FILE = re.compile(r"^(\d{5})_(lr|hr)$")


def ptbxl_ecg_id(path: str | os.PathLike) -> str | None:
    """The PTB-XL ``ecg_id`` of a waveform file named as PTB-XL names them (``records100/00000/00001_lr.hea`` or a
    lone ``00001_lr.hea`` -> ``1``), the id the PTB-XL reader and the caches use, so a record keeps one id across
    commands and the viewer (an upload has its name but not its folder); else None."""
    match = _PTBXL_FILE.match(Path(path).name.removesuffix(".hea"))
    return None if match is None else str(int(match.group(1)))


def retarget_header(text: str, record_name: str, signal_file: str) -> str:
    """A header's text with its record name and every signal's file name replaced.

    Lets a record arrive under any names (an upload) and be read from files whose names the reader chose:
    the names written inside the header are never used as paths. Text that is not a valid header is
    returned as it is, for `read_header` to report.
    """
    lines = text.splitlines()
    body = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not body:
        return text
    record_fields = lines[body[0]].split()
    try:
        n_signals = int(record_fields[1]) if len(record_fields) > 1 else 0
    except ValueError:
        return text
    lines[body[0]] = " ".join([record_name, *record_fields[1:]])
    for i in body[1 : 1 + n_signals]:
        fields = lines[i].split()
        lines[i] = " ".join([signal_file, *fields[1:]])
    return "\n".join(lines) + "\n"
