"""Plain-array record files: CSV and NumPy (rate and lead order given by the user), and EDF.

CSV: one column per lead, one row per sample, in mV; a header row of lead names is used when present,
else ``lead_names`` gives the order. NumPy ``.npy``: a 2-D array, leads x samples or samples x leads
(the axis whose size equals the number of lead names is the lead axis). EDF/EDF+: read with pyEDFlib
(``pip install 'ecglens[edf]'``); signal labels give the leads (``ECG I``, ``EKG aVR`` and the like) and
physical dimensions (uV, mV) the scale.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ecglens.io.limits import MAX_SECONDS, check_rate, check_values
from ecglens.io.record import Record, RecordError, RecordTooLarge, finish_signal, numeric_samples
from ecglens.io.units import unit_to_mv
from ecglens.leads import LEAD_NAMES, normalize_lead_name

MAX_CSV_BYTES = 32 * 2**20
"""A CSV is counted (rows x columns, held to the sample budget) in a streaming pass, then parsed by NumPy's C
reader; 32 MiB of text is at most about 16 million samples."""


def _need_rate(path: str, sampling_rate_hz: float | None) -> float:
    if sampling_rate_hz is None:
        raise RecordError(path, "this format stores no sampling rate: give --sampling-rate")
    return check_rate(path, float(sampling_rate_hz))


def read_csv_record(
    path: str | os.PathLike,
    sampling_rate_hz: float | None,
    lead_names: tuple[str, ...] = LEAD_NAMES,
    wanted_leads: tuple[str, ...] = LEAD_NAMES,
) -> Record:
    """Read a CSV of samples x leads in mV."""
    path = str(path)
    rate = _need_rate(path, sampling_rate_hz)
    size = os.path.getsize(path)
    if size > MAX_CSV_BYTES:
        raise RecordTooLarge(
            path,
            f"a CSV of {size / 2**20:.0f} MiB is larger than the {MAX_CSV_BYTES // 2**20} MiB "
            "ecglens parses as text; store long records as NumPy, WFDB or EDF",
        )
    try:
        with open(path, newline="") as handle:
            first = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RecordError(path, f"cannot read CSV ({error})") from None
    if not first:
        raise RecordError(path, "empty CSV file")
    names = list(lead_names)
    header = all(normalize_lead_name(cell) is not None for cell in first if cell.strip())
    if header:
        names = [cell.strip() for cell in first]
    rows = _count_rows(path) - header
    check_values(path, float(rows) * max(len(first), len(names)), "the CSV holds")  # before anything is parsed
    values = _parse_csv(path, int(header), rows, len(first))
    if values.shape[0] != len(names):
        raise RecordError(path, f"{values.shape[0]} columns, {len(names)} lead names")
    signal = finish_signal(path, values, names, wanted_leads)
    return Record(Path(path).stem, "csv", signal, rate, wanted_leads, source_path=path)


def _parse_csv(path: str, skip: int, rows: int, columns: int) -> np.ndarray:
    """The samples of a CSV as leads x samples (float32, the dtype every record holds), parsed by pandas' C reader
    in blocks of 65,536 rows into one array allocated up front from the rows counted: no Python number per sample,
    no second copy.

    Raises:
        RecordError: a cell that is not a number, a row with more or fewer cells than the first, no rows.
    """
    import pandas as pd

    values = np.empty((columns, max(rows, 0)), dtype=np.float32)
    filled = 0
    try:
        with (
            pd.read_csv(
                path,
                header=None,
                skiprows=skip,
                dtype=np.float64,
                engine="c",
                chunksize=1 << 16,
                keep_default_na=False,
                na_values=["nan", "NaN", "-nan", "NAN"],
            ) as blocks,
            np.errstate(over="ignore"),  # beyond float32: infinite, refused by name in `finish_signal`
        ):
            for block in blocks:
                if block.shape[1] != columns or filled + len(block) > values.shape[1]:
                    raise RecordError(path, f"ragged rows: {block.shape[1]} cells where the first row has {columns}")
                values[:, filled : filled + len(block)] = block.to_numpy().T
                filled += len(block)
    except RecordError:
        raise
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise RecordError(path, f"non-numeric sample or ragged rows ({reason})") from None
    if not filled:
        raise RecordError(path, "no samples in the CSV file")
    return values[:, :filled]


def _count_rows(path: str) -> int:
    """The lines of a text file (a last line without a newline counted), in 1-MiB steps: bounded memory."""
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(2**20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def read_npy_record(
    path: str | os.PathLike,
    sampling_rate_hz: float | None,
    lead_names: tuple[str, ...] = LEAD_NAMES,
    wanted_leads: tuple[str, ...] = LEAD_NAMES,
) -> Record:
    """Read a ``.npy`` array (leads x samples or samples x leads) in mV; never unpickles."""
    path = str(path)
    rate = _need_rate(path, sampling_rate_hz)
    _check_npy_header(path)
    try:
        values = numeric_samples(path, np.load(path, allow_pickle=False), "the array")
    except (OSError, ValueError) as error:
        raise RecordError(path, f"not a plain NumPy array file ({error})") from None
    if values.ndim != 2 or len(lead_names) not in values.shape:
        raise RecordError(path, f"array shape {values.shape} has no axis of {len(lead_names)} leads")
    if values.shape[0] != len(lead_names):
        values = values.T
    signal = finish_signal(path, values.astype(np.float64), list(lead_names), wanted_leads)
    return Record(Path(path).stem, "npy", signal, rate, wanted_leads, source_path=path)


def _check_npy_header(path: str) -> None:
    """Refuse a ``.npy`` whose header declares an object dtype or more data than the file holds, before
    anything is allocated from it."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(handle)
            offset = handle.tell()
    except (OSError, ValueError) as error:
        raise RecordError(path, f"not a plain NumPy array file ({error})") from None
    if dtype.hasobject:
        raise RecordError(path, "the array holds Python objects (it would need unpickling)")
    check_values(path, float(np.prod(shape, dtype=np.float64)), f"the array header declares {shape}:")
    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    available = os.path.getsize(path) - offset
    if declared > available:
        raise RecordError(
            path, f"header declares {shape} {dtype} ({declared} bytes) but the file holds {available} bytes"
        )


def read_edf_record(path: str | os.PathLike, wanted_leads: tuple[str, ...] = LEAD_NAMES) -> Record:
    """Read an EDF/EDF+ file with pyEDFlib; leads found by their labels, scaled to mV."""
    path = str(path)
    try:
        import pyedflib
    except ImportError:
        raise RecordError(path, "EDF needs pyEDFlib: pip install 'ecglens[edf]'") from None
    try:
        reader = pyedflib.EdfReader(path)
    except OSError as error:
        raise RecordError(path, f"unreadable EDF file ({error})") from None
    try:
        _check_edf_size(path, reader)
        labels = reader.getSignalLabels()
        names, rows, rates = [], [], set()
        for index, label in enumerate(labels):
            name = normalize_lead_name(label.replace("ECG", "").replace("EKG", "").strip())
            if name is None:
                continue
            unit = reader.getPhysicalDimension(index)
            scale = unit_to_mv(unit)
            if scale is None:
                raise RecordError(path, f"signal {label!r} has unit {unit.strip()!r}; expected uV, mV or V")
            names.append(name)
            rows.append(reader.readSignal(index) * scale)
            rates.add(float(reader.getSampleFrequency(index)))
    finally:
        reader.close()
    if len(rates) > 1:
        raise RecordError(path, f"ECG signals at different rates {sorted(rates)}")
    if not rows:
        raise RecordError(path, f"no ECG lead among the signals {labels}")
    length = min(len(r) for r in rows)
    signal = finish_signal(path, np.stack([r[:length] for r in rows]), names, wanted_leads)
    return Record(Path(path).stem, "edf", signal, rates.pop(), wanted_leads, source_path=path)


def _check_edf_size(path: str, reader) -> None:
    """Refuse an EDF whose header declares more than a record may hold, before any signal is read."""
    duration = float(reader.getFileDuration())
    if duration > MAX_SECONDS:
        raise RecordTooLarge(path, f"EDF of {duration:.0f} s is longer than {MAX_SECONDS:g} s")
    check_values(path, float(sum(reader.getNSamples())), "the EDF header declares")
