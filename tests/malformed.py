"""A corpus of malformed ECG inputs, generated (never stored): every kind of fault the readers must name.

``write_corpus(root)`` writes, next to one good record of each kind:

- ``files/``: WFDB headers with bad numbers (rate, sample count, gain, ADC zero, baseline: NaN, infinite,
  negative, 1e12, 1e-9, text), damaged or missing signal files, FIFOs named like records, signal files
  outside the record's folder, repeated leads, 1-sample and 0.05-Hz records, MATLAB, NumPy, CSV and EDF
  files holding strings, cells, complex or structured values, lying headers and nothing at all; hostile
  clinical files (XML entity bombs and external entities, bad base64, lying sample counts, wrong lead codes,
  DICOM of another class, without a waveform or declaring a gigabyte: `clinical_files`);
- ``ptbxl/``: a PTB-XL layout whose database rows are malformed one field at a time;
- ``cpsc/``: a CPSC 2018 layout with a non-UTF-8 REFERENCE.csv and bad rows.

It returns the cases: where each lives and the name by which the issue list must mention it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
RATE, N = 500, 2500
BAD_NUMBERS = {"nan": "nan", "inf": "inf", "minf": "-inf", "neg": "-5", "huge": "1e12", "tiny": "1e-9", "text": "abc"}


@dataclass(frozen=True)
class Case:
    """One malformed input: its group (files, ptbxl, cpsc), and the text the issue list must contain."""

    group: str
    name: str
    mention: str


def _signal(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(N) / RATE
    beats = np.exp(-0.5 * ((t[None] % 0.8 - 0.2) / 0.005) ** 2)  # a QRS-like spike every 0.8 s: repeatable beats
    return (0.8 * np.sin(2 * np.pi * 1.2 * t)[None] + rng.normal(0, 0.05, (12, N)) + beats).astype(np.float64)


def _header(
    name: str,
    rate: str = str(RATE),
    n: str = str(N),
    gain: str = "1000",
    adc_zero: str = "0",
    baseline: str = "0",
    file: str | None = None,
    leads=LEADS,
    fmt: str = "16",
    dx: str = "426783006",
    n_signals: str | None = None,
) -> str:
    file = file or f"{name}.dat"
    lines = [f"{name} {n_signals or len(leads)} {rate} {n}"]
    for i, lead in enumerate(leads):
        g = gain if i == 0 else "1000"
        b = baseline if i == 0 else "0"
        z = adc_zero if i == 0 else "0"
        lines.append(f"{file} {fmt} {g}({b})/mV 16 {z} 0 0 0 {lead}")
    return "\n".join([*lines, "#Age: 50", "#Sex: Male", f"#Dx: {dx}"]) + "\n"


def _dat(signal: np.ndarray, gain: float = 1000.0) -> bytes:
    return np.round(signal.T * gain).astype("<i2").tobytes()


def write_wfdb_case(directory: Path, name: str, header: str, data: bytes | None) -> None:
    (directory / f"{name}.hea").write_text(header)
    if data is not None:
        (directory / f"{name}.dat").write_bytes(data)


def _files(root: Path) -> list[Case]:
    d = root / "files"
    d.mkdir(parents=True)
    cases: list[Case] = []
    good = _dat(_signal())
    write_wfdb_case(d, "good", _header("good"), good)
    for field in ("rate", "n", "gain", "adc_zero", "baseline"):
        for label, value in BAD_NUMBERS.items():
            if field in ("adc_zero", "baseline") and label == "neg":
                continue  # a negative ADC zero or baseline is legal
            name = f"hdr_{field}_{label}"
            write_wfdb_case(d, name, _header(name, **{field: value}), good)
            cases.append(Case("files", name, name))
    specials = {
        "rate_0_05": (_header("rate_0_05", rate="0.05"), good),
        "one_sample": (_header("one_sample", n="1"), good[:24]),
        "truncated": (_header("truncated"), good[:1000]),
        "empty_dat": (_header("empty_dat"), b""),
        "missing_dat": (_header("missing_dat"), None),
        "escape_dat": (_header("escape_dat", file="../escape_dat.dat"), good),
        "absolute_dat": (_header("absolute_dat", file="/etc/hostname"), good),
        # every lead present, and lead I twice with different data: which copy is lead I is unknowable
        "duplicate_lead": (
            _header("duplicate_lead", leads=(*LEADS, "I")),
            _dat(np.vstack([_signal(), _signal(9)[:1]])),
        ),
        "no_signals": (_header("no_signals", n_signals="0"), good),
        "many_signals": (_header("many_signals", n_signals="100000"), good),
        "empty_header": ("", good),
        "garbage_header": ("\x00\xff\xfe garbage \x01\n\x02\n", good),
        "multi_segment": ("multi_segment/2 12 500 2500\n", good),
        "unknown_unit": (_header("unknown_unit").replace("/mV", "/furlong", 1), good),
        "absurd_values": (_header("absurd_values", gain="0.000001"), good),
        "format_unknown": (_header("format_unknown", fmt="999"), good),
        "record_line_text": ("just words here\n", good),
    }
    for name, (header, data) in specials.items():
        write_wfdb_case(d, name, header, data)
        cases.append(Case("files", name, name))
    # The header's record line names another record: the id must still be the file's own name.
    write_wfdb_case(d, "renamed", _header("r", file="renamed.dat"), good)
    os.mkfifo(d / "fifo_header.hea")
    cases.append(Case("files", "fifo_header", "fifo_header"))
    (d / "fifo_signal.hea").write_text(_header("fifo_signal"))
    os.mkfifo(d / "fifo_signal.dat")
    cases.append(Case("files", "fifo_signal", "fifo_signal"))
    os.mkfifo(d / "fifo_array.npy")
    cases.append(Case("files", "fifo_array", "fifo_array"))
    # A name that is not UTF-8 (bytes \xff\xfe) and one holding a terminal escape: named, printable issues.
    bad = os.fsdecode(b"name_\xff\xfe")
    (d / f"{bad}.hea").write_text(_header(bad), errors="surrogateescape")
    (d / f"{bad}.dat").write_bytes(good)
    cases.append(Case("files", bad, "name_\\xff\\xfe"))
    cases += _mat_cases(d)
    cases += _array_cases(d)
    return cases


def _mat_cases(d: Path) -> list[Case]:
    values = {
        "mat_strings": np.array([["a"] * 10] * 12),
        "mat_cells": np.array([[np.zeros(3)] * 2] * 12, dtype=object),
        "mat_complex": _signal() * (1 + 1j),
        "mat_shape": np.zeros((3, N)),
        "mat_struct": {"x": 1},
    }
    cases = []
    for name, value in values.items():
        (d / f"{name}.hea").write_text(_header(name, file=f"{name}.mat").replace(" 16 1000", " 16+24 1000"))
        scipy.io.savemat(d / f"{name}.mat", {"val": value})
        cases.append(Case("files", name, name))
    (d / "mat_noval.hea").write_text(_header("mat_noval", file="mat_noval.mat"))
    scipy.io.savemat(d / "mat_noval.mat", {"other": np.zeros((12, N))})
    (d / "mat_garbage.hea").write_text(_header("mat_garbage", file="mat_garbage.mat"))
    (d / "mat_garbage.mat").write_bytes(b"MATLAB 5.0 MAT-file" + os.urandom(300))
    (d / "mat_empty.hea").write_text(_header("mat_empty", file="mat_empty.mat"))
    (d / "mat_empty.mat").write_bytes(b"")
    return cases + [Case("files", n, n) for n in ("mat_noval", "mat_garbage", "mat_empty")]


def _array_cases(d: Path) -> list[Case]:
    cases = []
    arrays = {
        "npy_strings": np.array([["x"] * N] * 12),
        "npy_structured": np.zeros((12, N), dtype=[("a", "f4"), ("b", "f4")]),
        "npy_complex": _signal().astype(np.complex64),
        "npy_3d": np.zeros((2, 12, N)),
        "npy_leads": np.zeros((5, N)),
        "npy_nan": np.where(np.arange(N) % 7 == 0, np.nan, _signal()),
        "npy_inf": np.where(np.arange(N) % 7 == 0, np.inf, _signal()),
        "npy_short": _signal()[:, :1],
        "npy_absurd": _signal() * 2e15,
        "npy_boolean": _signal() > 0,
    }
    for name, value in arrays.items():
        np.save(d / f"{name}.npy", value)
        cases.append(Case("files", name, name))
    np.save(d / "npy_object.npy", np.array([[{"a": 1}] * 3] * 12, dtype=object), allow_pickle=True)
    (d / "npy_empty.npy").write_bytes(b"")
    header = np.lib.format.header_data_from_array_1_0(np.zeros((12, 10), "<f4"))
    header["shape"] = (12, 10**12)
    with open(d / "npy_lying.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(np.zeros(120, "<f4").tobytes())
    np.save(d / "good_array.npy", _signal())
    cases += [Case("files", n, n) for n in ("npy_object", "npy_empty", "npy_lying")]
    texts = {
        "csv_text": "I,II\nabc,def\n",
        "csv_empty": "",
        "csv_ragged": "\n".join(",".join(["0.1"] * (12 if i % 2 else 5)) for i in range(N)) + "\n",
        "csv_nan": "\n".join(",".join(["nan"] * 12) for _ in range(N)) + "\n",
        "csv_one_row": ",".join(["0.1"] * 12) + "\n",
        "csv_binary": "\x00\x01\x02\xff",
    }
    for name, text in texts.items():
        (d / f"{name}.csv").write_text(text, errors="surrogateescape") if "\xff" not in text else (
            d / f"{name}.csv"
        ).write_bytes(text.encode("latin-1"))
        cases.append(Case("files", name, name))
    (d / "edf_garbage.edf").write_bytes(b"0       " + os.urandom(500))
    (d / "edf_empty.edf").write_bytes(b"")
    return cases + [Case("files", n, n) for n in ("edf_garbage", "edf_empty")]


PTBXL_COLUMNS = "ecg_id,patient_id,age,sex,scp_codes,strat_fold,filename_lr,filename_hr"
PTBXL_BAD_ROWS = {
    "fold_text": {"strat_fold": "abc"},
    "fold_empty": {"strat_fold": ""},
    "fold_eleven": {"strat_fold": "11"},
    "sex_text": {"sex": "unknown-ish"},
    "sex_five": {"sex": "5"},
    "patient_text": {"patient_id": "bob"},
    "patient_negative": {"patient_id": "-3"},
    "scp_not_dict": {"scp_codes": "'NORM'"},
    "scp_list": {"scp_codes": "\"['NORM']\""},
    "scp_strings": {"scp_codes": "\"{'NORM': 'lots'}\""},
    "scp_nested": {"scp_codes": "\"{'NORM': {'a': 1}}\""},
    "scp_garbage": {"scp_codes": '"{{{{"'},
    "age_text": {"age": "old"},
    "age_negative": {"age": "-5"},
    "outside_root": {"filename_lr": "../../escaped/rec"},
    "absolute_path": {"filename_lr": "/etc/hostname"},
    "missing_file": {"filename_lr": "records100/00000/nothere_lr"},
}


def _ptbxl(root: Path) -> list[Case]:
    d = root / "ptbxl"
    folder = d / "records100" / "00000"
    folder.mkdir(parents=True)
    rows, cases = [PTBXL_COLUMNS], []
    names = ["good", *PTBXL_BAD_ROWS]
    for ecg_id, name in enumerate(names, start=1):
        stem = f"{ecg_id:05d}_lr"
        signal = _signal(ecg_id)[:, ::5]
        (folder / f"{stem}.hea").write_text(_header(stem, rate="100", n="500"))
        (folder / f"{stem}.dat").write_bytes(_dat(signal))
        fields = {
            "ecg_id": str(ecg_id),
            "patient_id": str(100 + ecg_id),
            "age": "50",
            "sex": "0",
            "scp_codes": "\"{'NORM': 100.0}\"",
            "strat_fold": "1",
            "filename_lr": f"records100/00000/{stem}",
            "filename_hr": f"records500/00000/{ecg_id:05d}_hr",
        }
        fields.update(PTBXL_BAD_ROWS.get(name, {}))
        rows.append(",".join(fields[c] for c in PTBXL_COLUMNS.split(",")))
        if name != "good":
            cases.append(Case("ptbxl", name, f"ecg_id={ecg_id}" if name != "missing_file" else "nothere_lr"))
    (d / "ptbxl_database.csv").write_text("\n".join(rows) + "\n")
    return cases


def _cpsc(root: Path) -> list[Case]:
    d = root / "cpsc"
    d.mkdir(parents=True)
    for name in ("A0001", "A0002", "A0003", "A0004", "A0005"):
        data = _signal()[:, :N] * 1000 if name != "A0005" else np.array([["x"] * 10] * 12)
        ecg = {"data": data, "age": 50, "sex": "Male"} if name != "A0004" else {"age": 50, "sex": "Male"}
        scipy.io.savemat(d / f"{name}.mat", {"ECG": ecg})
    # A0002's row carries undecodable bytes; A0003 has a label outside 1-9; A0006 has a file but no row.
    # A0007 is listed twice with different labels (a conflict, named); a 200-kB field costs its own row only.
    reference = (
        b"Recording,First_label,Second_label,Third_label\nA0001,1,,\nA0002\xff\xfe,1,,\nA0003,12,,\n"
        b"A0004,2,,\nA0005,3,,\nA0007,2,,\n" + b"A0008," + b"9" * 200_000 + b",,\nA0007,7,,\n"
    )
    (d / "REFERENCE.csv").write_bytes(reference)
    for name in ("A0006", "A0007", "A0008"):
        scipy.io.savemat(d / f"{name}.mat", {"ECG": {"data": _signal() * 1000, "age": 40, "sex": "Female"}})
    return [Case("cpsc", n, n) for n in ("A0002", "A0003", "A0004", "A0005", "A0006", "A0007", "A0008")]


def _clinical_cases(d: Path) -> list[Case]:
    """The hostile clinical files (`clinical_files`), each named in issue lists by its pseudonym, not its name."""
    from clinical_files import hostile_clinical_files
    from ecglens.util.pseudonym import pseudonym

    written = hostile_clinical_files(d)
    return [Case("files", name, pseudonym(str(path.resolve()))) for name, (path, _) in written.items()]


def write_corpus(root: str | os.PathLike) -> list[Case]:
    """Write every malformed input (and one good record per group) under ``root``; returns the cases."""
    root = Path(root)
    return _files(root) + _clinical_cases(root / "files") + _ptbxl(root) + _cpsc(root)
