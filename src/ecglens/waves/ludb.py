"""The cardiologists' wave marks of a LUDB record (Kalyakulina et al. 2020): one WFDB annotation file per lead
(``1.i``, ``1.ii``, ..., ``1.v6``), each wave written as ``(``, its peak (``p``, ``N`` or ``t``), ``)``."""

from __future__ import annotations

import os
from pathlib import Path

from ecglens.io.limits import regular_file
from ecglens.io.record import RecordError
from ecglens.leads import LEAD_NAMES
from ecglens.waves.marks import LeadWaves, WaveMarks, waves_from_triplets

LUDB_EXTENSIONS = {
    "I": "i",
    "II": "ii",
    "III": "iii",
    "aVR": "avr",
    "aVL": "avl",
    "aVF": "avf",
    "V1": "v1",
    "V2": "v2",
    "V3": "v3",
    "V4": "v4",
    "V5": "v5",
    "V6": "v6",
}
"""Each lead's annotation-file extension."""
_KINDS = {"p": "P", "N": "QRS", "t": "T"}
CARDIOLOGISTS = "LUDB cardiologists"


def read_ludb_marks(header: str | os.PathLike) -> WaveMarks:
    """The marks of the record whose ``.hea`` is ``header``, for every lead with an annotation file.

    Raises:
        RecordError: no annotation file beside the header, or one that wfdb cannot read.
    """
    import wfdb

    base = Path(header).with_suffix("")
    leads, rate = [], 500.0
    for lead in LEAD_NAMES:
        path = base.with_name(f"{base.name}.{LUDB_EXTENSIONS[lead]}")
        if not path.exists():
            continue
        regular_file(path)
        try:
            annotation = wfdb.rdann(str(base), LUDB_EXTENSIONS[lead])
        except Exception as error:  # a damaged annotation file is this record's error, whatever wfdb raised
            raise RecordError(str(path), f"unreadable LUDB annotation ({error})") from None
        rate = float(annotation.fs or rate)
        leads.append(LeadWaves(lead, _waves(list(annotation.symbol), [int(s) for s in annotation.sample])))
    if not leads:
        raise RecordError(str(header), "no LUDB annotation file (.i, .ii, ..., .v6) beside it")
    return WaveMarks(rate, tuple(leads), CARDIOLOGISTS)


def _waves(symbols: list[str], samples: list[int]) -> dict:
    """``(`` peak ``)`` triplets into waves; a peak without both brackets keeps -1 for the missing one."""
    kinds, onsets, peaks, offsets = [], [], [], []
    for i, symbol in enumerate(symbols):
        if symbol not in _KINDS:
            continue
        onset = samples[i - 1] if i > 0 and symbols[i - 1] == "(" else -1
        offset = samples[i + 1] if i + 1 < len(symbols) and symbols[i + 1] == ")" else -1
        kinds.append(_KINDS[symbol])
        onsets.append(onset)
        peaks.append(samples[i])
        offsets.append(offset)
    return waves_from_triplets(kinds, onsets, peaks, offsets)
