"""What a record may be: the one place where numbers read from files and metadata are checked.

Every value a header, a metadata table or a signal file declares passes through these checks before
anything is allocated from it. Out of range is a `RecordError` naming the file and the value; the
batch goes on without that record. The ranges, documented in the README:

- sampling rate: finite, `MIN_RATE_HZ` to `MAX_RATE_HZ` (50 Hz to 10 kHz);
- length: `MIN_SECONDS` (1 s: shorter records cannot hold a beat) to `MAX_SECONDS` (1 hour);
- gains: finite, positive, `MIN_GAIN` to `MAX_GAIN` ADC units per physical unit (0 is WFDB's
  "default 200");
- baselines and ADC zeros: integers within 32 bits;
- a clinical file's scale (HL7 aECG ``<scale>``, Philips resolution, GE MUSE ``LeadAmplitudeUnitsPerBit``, DICOM
  channel sensitivity and its correction factor): a finite number above 0 (`check_scale`; a negative scale would
  invert the signal and is refused, never applied); its origin or baseline a finite number (`check_origin`);
- samples: finite and within `MAX_ABS_MV` (10 V; an ECG is a few mV, so larger is a unit or file fault);
- size, checked from what a file declares before anything is decoded: at most `MAX_VALUES` samples in all
  (43.2 million: 12 leads for an hour at 1 kHz; a 1-hour 10-kHz record is refused although its rate and length
  are each in range), and at most `MAX_DECODED_BYTES` (256 MiB) of decompressed MATLAB data, so no file of
  any size or compression ratio makes a reader allocate more than about a gigabyte. A caller (the web server)
  may lower the sample budget for its own reads with `value_budget`;
- files: regular files only (a FIFO or a device named like a record would block or never end);
- file names: no NUL byte, valid UTF-8 (a name that is neither is that record's issue, never the batch's),
  at most `MAX_NAME_CHARS` characters.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ecglens.io.record import RecordError, RecordTooLarge
from ecglens.util.progress import printable, undecodable

MIN_RATE_HZ = 50.0
MAX_RATE_HZ = 10_000.0
MIN_SECONDS = 1.0
MAX_SECONDS = 3600.0
MIN_GAIN = 1e-6
MAX_GAIN = 1e9
MAX_ABS_MV = 10_000.0
_INT32 = 2**31
MAX_NAME_CHARS = 4096
MAX_VALUES = 12 * 3600 * 1000
MAX_DECODED_BYTES = 256 * 2**20
_budget: ContextVar[int] = ContextVar("ecglens_value_budget", default=MAX_VALUES)


@contextmanager
def value_budget(n_values: int) -> Iterator[None]:
    """Lower the sample budget of `check_values` for reads in this context (never above `MAX_VALUES`)."""
    token = _budget.set(min(int(n_values), MAX_VALUES))
    try:
        yield
    finally:
        _budget.reset(token)


def sample_budget() -> int:
    """The sample budget in force (`MAX_VALUES`, or less under `value_budget`)."""
    return _budget.get()


def check_values(path: str, n_values: float, what: str = "the file declares") -> int:
    """A total sample count (leads x samples) within the budget, checked before anything is decoded.

    Raises:
        RecordTooLarge: more samples than the budget (`MAX_VALUES`, or less under `value_budget`).
    """
    limit = _budget.get()
    if not n_values <= limit:  # NaN fails too
        raise RecordTooLarge(
            path, f"{what} {n_values:,.0f} samples in all, more than the {limit:,} ecglens decodes for one record"
        )
    return int(n_values)


def number(path: str, text: object, what: str) -> float:
    """A finite number parsed from header or table text.

    Raises:
        RecordError: not a number, NaN or infinite.
    """
    try:
        value = float(str(text).strip())
    except ValueError:
        raise RecordError(path, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise RecordError(path, f"{what} {text!r} is not finite")
    return value


def integer(path: str, text: object, what: str, low: int = -_INT32, high: int = _INT32 - 1) -> int:
    """A whole number within ``[low, high]`` parsed from text (``12.0`` is accepted, ``12.5`` is not)."""
    value = number(path, text, what)
    if value != int(value):
        raise RecordError(path, f"{what} {text!r} is not an integer")
    if not low <= value <= high:
        raise RecordError(path, f"{what} {value:g} is outside {low:g} to {high:g}")
    return int(value)


def check_rate(path: str, sampling_rate_hz: float) -> float:
    """A sampling rate within the documented range."""
    if not (math.isfinite(sampling_rate_hz) and MIN_RATE_HZ <= sampling_rate_hz <= MAX_RATE_HZ):
        raise RecordError(
            path, f"sampling rate {sampling_rate_hz:g} Hz is outside {MIN_RATE_HZ:g} to {MAX_RATE_HZ:g} Hz"
        )
    return float(sampling_rate_hz)


def check_length(path: str, n_samples: int, sampling_rate_hz: float) -> int:
    """A record length between `MIN_SECONDS` and `MAX_SECONDS` at ``sampling_rate_hz``."""
    seconds = n_samples / sampling_rate_hz
    if seconds < MIN_SECONDS:
        raise RecordError(
            path, f"{n_samples} samples at {sampling_rate_hz:g} Hz is {seconds:.3g} s, shorter than {MIN_SECONDS:g} s"
        )
    if seconds > MAX_SECONDS:
        raise RecordError(
            path, f"{n_samples} samples at {sampling_rate_hz:g} Hz is {seconds:.3g} s, longer than {MAX_SECONDS:g} s"
        )
    return n_samples


def check_gain(path: str, gain: float) -> float:
    """An ADC gain: finite and within range (0 stands for WFDB's default of 200)."""
    if gain == 0:
        return 200.0
    if not (MIN_GAIN <= gain <= MAX_GAIN):
        raise RecordError(path, f"gain {gain:g} is outside {MIN_GAIN:g} to {MAX_GAIN:g}")
    return gain


MAX_SCALE = 1e6
"""The largest amplitude scale a clinical file may give (units per ADC count, in the file's unit: uV or mV per
count in every format read): 1e6 uV is 1 V a count, where 16 bits would span 65 kV."""


def check_scale(path: str, name: str, value: object) -> float:
    """A clinical file's amplitude scale (units per ADC count) as the file writes it: a finite number above 0,
    the clinical paths' counterpart of `check_gain`.

    Raises:
        RecordError: not a number, NaN or infinite (``1e400`` included), zero, negative (a negative scale would
            silently invert the signal: refused, never applied), or above `MAX_SCALE`.
    """
    scale = number(path, value, f"scale {name}")
    if scale < 0:
        raise RecordError(path, f"scale {name} {scale:g} is negative: it would invert the signal, so it is refused")
    if scale == 0:
        raise RecordError(path, f"scale {name} is 0: the signal would be flat")
    if scale > MAX_SCALE:
        raise RecordError(path, f"scale {name} {scale:g} is above {MAX_SCALE:g} units per count: not an ECG's")
    return scale


def check_origin(path: str, name: str, value: object) -> float:
    """A clinical file's origin or baseline (the physical value of ADC count 0): a finite number.

    Raises:
        RecordError: not a number, NaN or infinite (``1e400`` included).
    """
    return number(path, value, f"origin {name}")


def file_name(where: str, name: object, what: str = "file name") -> str:
    """A file name from a table, a header, a folder listing or the command line, checked before any use.

    Raises:
        RecordError: a NUL byte, bytes that are not UTF-8, or more than `MAX_NAME_CHARS` characters.
    """
    text = str(name)
    if "\x00" in text:
        raise RecordError(printable(where), f"{what} {printable(text)[:80]!r} contains a NUL byte")
    if undecodable(text):
        raise RecordError(printable(where), f"{what} {printable(text)[:80]!r} is not valid UTF-8")
    if len(text) > MAX_NAME_CHARS:
        raise RecordError(printable(where), f"{what} of {len(text)} characters is longer than {MAX_NAME_CHARS}")
    return text


def regular_file(path: str | os.PathLike) -> None:
    """Refuse anything but an existing regular file (never open a FIFO, socket or device).

    Raises:
        RecordError: missing, a bad name (see `file_name`), or not a regular file.
    """
    file_name(str(path), os.fspath(path))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise RecordError(str(path), "no such file") from None
    except OSError as error:
        raise RecordError(printable(path), f"cannot read: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        raise RecordError(str(path), "not a regular file (a FIFO, socket, device or directory)")


def inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` resolves to a place under ``root`` (symbolic links followed; a name holding a NUL byte
    is nowhere)."""
    if "\x00" in os.fspath(path) or "\x00" in os.fspath(root):
        return False
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)
