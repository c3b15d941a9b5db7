"""The viewer's example records: seven real PTB-XL 1.0.3 records, fetched from PhysioNet on first use.

ecglens ships no ECG records; ``ecglens data download examples`` fetches these 14 files (172 kB) with the
downloader of `ecglens.io.download`, each verified against the SHA-256 pinned here, into `examples_folder`.
``ecglens serve`` shows them as "try an example" buttons.

**How they were chosen** (by PTB-XL's own labels, never by a model's output): for each class the starter model
decided when the list was made (ecglens-starter-2: SNR, AF, IAVB, RBBB, PAC, PVC, STD; LBBB and STE were not
validated; the list is fixed, so a rebuilt starter that cannot know PAC still has its example), the lowest
``ecg_id`` of PTB-XL's ``strat_fold`` 8, the starter's held-out test fold (so no example was trained on or set a
threshold), whose statements map under the strict label space (``scp_strict.csv``) to that class and to no other
of the nine; the class's own statement must carry likelihood 100 where PTB-XL grades it (the diagnostic statements
NORM, 1AVB, CRBBB), and be present where it does not (the rhythm and form statements AFIB, PAC, PVC and STD_,
which PTB-XL mostly writes with likelihood 0). The SNR record is the normal one. ``tests/test_example_set.py``
applies the rule to the shared PTB-XL sample (every record of ``ecg_id`` 1-1999 in folds 1-8)
and checks it gives this list.

**Checksums**, pinned here: record 43's are PTB-XL 1.0.3's own ``SHA256SUMS.txt`` entries; the copy of that list
at hand when this list was built covers ``ecg_id`` 1-100 only, so the other six records' were computed from the
shared sample's copies of PhysioNet's files (copies that match the list wherever it covers them). A file whose bytes
differ from its pinned SHA-256 is never kept: the download names it and fails.

PTB-XL is licensed CC BY 4.0; cite `CITATION`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecglens.leads import LEAD_NAMES

if TYPE_CHECKING:
    from ecglens.io.record import Record

EXAMPLES_ENV = "ECGLENS_EXAMPLES"
"""An environment variable naming the examples folder, instead of the per-user data folder."""
PTBXL_VERSION = "1.0.3"
LICENCE = "CC BY 4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
CITATION = (
    "Wagner P, Strodthoff N, Bousseljot R-D, Kreiseler D, Lunze FI, Samek W, Schaeffter T. PTB-XL, a large publicly "
    "available electrocardiography dataset. Sci Data 7, 154 (2020). doi:10.1038/s41597-020-0495-6. "
    "PhysioNet, version 1.0.3, doi:10.13026/kfzx-aw45"
)
CREDIT = "PTB-XL 1.0.3 (Wagner et al., Sci Data 2020, doi:10.1038/s41597-020-0495-6; CC BY 4.0)"
"""The short citation shown beside the viewer's examples."""
DOWNLOAD_COMMAND = "ecglens data download examples"


@dataclass(frozen=True)
class ExampleRecord:
    """One example: a PTB-XL record at 100 Hz, the class it was chosen for, and its files' SHA-256 and sizes."""

    ecg_id: int
    class_name: str
    """The class whose example it is (its statements mapped under the strict label space)."""
    statements: tuple[tuple[str, float], ...]
    """Its ``scp_codes`` in ``ptbxl_database.csv``: every statement with its likelihood, as PTB-XL writes them."""
    fold: int
    header_sha256: str
    header_bytes: int
    signal_sha256: str
    signal_bytes: int

    @property
    def base(self) -> str:
        """The record's path without extension, as PTB-XL lays it out (``records100/01000/01392_lr``)."""
        return f"records100/{self.ecg_id // 1000 * 1000:05d}/{self.ecg_id:05d}_lr"

    def files(self) -> tuple[tuple[str, str], ...]:
        """``(path, sha256)`` of its header and signal file."""
        return (f"{self.base}.hea", self.header_sha256), (f"{self.base}.dat", self.signal_sha256)


def _example(
    ecg_id: int, class_name: str, statements: str, hea: tuple[str, int], dat: tuple[str, int]
) -> ExampleRecord:
    codes = tuple((code, float(value)) for code, value in (part.split("=") for part in statements.split()))
    return ExampleRecord(ecg_id, class_name, codes, 8, hea[0], hea[1], dat[0], dat[1])


EXAMPLES: tuple[ExampleRecord, ...] = (
    _example(
        43,
        "SNR",
        "NORM=100 SR=0",
        ("6f2ec10627e91faccb5b3e044dd3e0973e91f4549af82150c56c6da745bdb4ec", 605),
        ("596d9bd02a11a258a335e492701e49ad6d9099632ada19ed25d1bf37ebd2eb7e", 24000),
    ),
    _example(
        567,
        "AF",
        "IMI=100 AFIB=0",
        ("9eb75a6fbaba67dd026f7b31ed52ae9fc1183129057bb2ba5455fd16844a822d", 609),
        ("928f35ab6cd6dc1ab3d221683224a533543943f64a25fee3727dd93354ff9480", 24000),
    ),
    _example(
        1392,
        "IAVB",
        "1AVB=100 NST_=100 SR=0",
        ("f90e2245fae875b2a12c1422b8778aac75b114a6ae70640cf0fc4439ac852d94", 600),
        ("25d5d2c8e7a9639ca8b52b148cceeb44fc3730466d84dd170cf953e7719f8f8b", 24000),
    ),
    _example(
        455,
        "RBBB",
        "ASMI=50 CRBBB=100 LAFB=100 ISCAL=50 SR=0",
        ("f1199784d2f0694ed69ed3d422d0323290ab4d51437b334dd2ab1c4ac070d407", 600),
        ("1166591cfa0a74451ad0740ad2e8a1b87cc395fc7e9de2762787d7af572559f3", 24000),
    ),
    _example(
        757,
        "PAC",
        "ISC_=100 PAC=0 NST_=0 SR=0",
        ("1130b2a135c0d8b88527c21f89c167805a033dbf85cd7d2e1cbdd243bcec6b5e", 603),
        ("d43822bfc70803955b39a6be0d1f47e0369d12a1da509c3c96b630bd730a5581", 24000),
    ),
    _example(
        1633,
        "PVC",
        "IMI=80 ISCAL=100 PVC=100 QWAVE=0 SR=0",
        ("9623630467acdaa025ca72417a90e688c53c8a212fb325bdcce1ba13d5723508", 604),
        ("59f082ff2c8b8610d6401807425f61cb6b50744e6231496ca720f15145b733ee", 24000),
    ),
    _example(
        609,
        "STD",
        "LVH=100 ISC_=100 LOWT=0 STD_=0 SR=0",
        ("ddcd0878920e54ddeafd096f532fcc3934b9be83a0a9a4104e5e83988c9f6c52", 595),
        ("0f34af5252670e5e8a80e6eefea464eb6743cde546c3bda09c480fc9dc2d9d58", 24000),
    ),
)


def example_checksums() -> tuple[tuple[str, str], ...]:
    """``(path, sha256)`` of every file of the examples: the download's plan."""
    return tuple(pair for example in EXAMPLES for pair in example.files())


def examples_size_bytes() -> int:
    """The examples' files together, in bytes."""
    return sum(e.header_bytes + e.signal_bytes for e in EXAMPLES)


def examples_folder() -> Path:
    """Where the examples live: ``$ECGLENS_EXAMPLES``, else ``ecglens/examples`` in the per-user data folder
    (``$XDG_DATA_HOME``, by default ``~/.local/share``)."""
    chosen = os.environ.get(EXAMPLES_ENV)
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "ecglens" / "examples"


def missing_examples(folder: str | os.PathLike) -> tuple[str, ...]:
    """The examples' files that ``folder`` lacks or holds with another SHA-256 (empty: all there, verified)."""
    root = Path(folder)
    missing = []
    for path, digest in example_checksums():
        file = root / path
        try:
            ok = file.is_file() and hashlib.sha256(file.read_bytes()).hexdigest() == digest
        except OSError:
            ok = False
        if not ok:
            missing.append(path)
    return tuple(missing)


def fetch_hint(folder: str | os.PathLike | None = None) -> str:
    """The one line that says how to get the examples, and how much it fetches."""
    where = Path(folder) if folder is not None else examples_folder()
    return (
        f"no example records yet: '{DOWNLOAD_COMMAND}' fetches {len(EXAMPLES)} real PTB-XL records "
        f"({examples_size_bytes() / 1000:.0f} kB from PhysioNet, {LICENCE}) into {where}"
    )


def read_example(folder: str | os.PathLike, example: ExampleRecord, lead_names: tuple[str, ...] = LEAD_NAMES) -> Record:
    """An example's record, read from ``folder`` with its PTB-XL statements and fold."""
    from ecglens.io.ptbxl import read_ptbxl
    from ecglens.io.refs import RecordRef

    ref = RecordRef(
        path=str(Path(folder) / f"{example.base}.hea"),
        dataset="ptbxl",
        record_id=str(example.ecg_id),
        reader="ptbxl",
        raw_labels=example.statements,
        label_vocabulary="scp",
        fold=example.fold,
    )
    return read_ptbxl(ref, lead_names)
