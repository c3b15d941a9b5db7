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
"""CSV is parsed as text into Python numbers first: 32 MiB (about 4 million samples) keeps that under 1 GB."""


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
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise RecordError(path, f"cannot read CSV ({error})") from None
    if not rows:
        raise RecordError(path, "empty CSV file")
    names = list(lead_names)
    if all(normalize_lead_name(cell) is not None for cell in rows[0] if cell.strip()) and rows[0]:
        names, rows = [cell.strip() for cell in rows[0]], rows[1:]
    try:
        values = np.array([[float(cell) for cell in row] for row in rows if row], dtype=np.float64)
    except ValueError as error:
        raise RecordError(path, f"non-numeric sample ({error})") from None
    if values.ndim != 2 or values.shape[1] != len(names):
        raise RecordError(path, f"{values.shape[1] if values.ndim == 2 else 0} columns, {len(names)} lead names")
    signal = finish_signal(path, values.T, names, wanted_leads)
    return Record(Path(path).stem, "csv", signal, rate, wanted_leads, source_path=path)


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
