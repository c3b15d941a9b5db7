"""What ``explain population`` may be asked for: its options checked before any record is read or model loaded.

Each sample of a record costs a forward and a backward pass per explained class, so the options are bounded on
their own and together:

- ``target_error``: finite, `MIN_TARGET_ERROR` to `MAX_TARGET_ERROR` (0.1 % to 100 % of the mean |cell|; below
  0.1 % the samples needed grow as 1/target² far past any cap);
- samples per record (``n_samples``, ``max_samples``): `MIN_SAMPLES` (a standard error needs two) to `MAX_SAMPLES`,
  and a fixed ``n_samples`` not above ``max_samples``;
- ``background``: at most `MAX_BACKGROUND` training records (they are held in memory);
- ``check_records``: at most `MAX_CHECK_RECORDS` (each is an exact lead Shapley computation);
- the work: records x samples per record at most `MAX_RECORD_SAMPLES`.

No module here loads torch: the command line checks these before it starts.
"""

from __future__ import annotations

import math

MIN_TARGET_ERROR = 0.001
MAX_TARGET_ERROR = 1.0
MIN_SAMPLES = 2
MAX_SAMPLES = 1024
MAX_BACKGROUND = 10_000
MAX_CHECK_RECORDS = 1_000
MAX_RECORD_SAMPLES = 10_000_000
"""Records x samples per record: 10 million (5,000 records at 1,024 samples, or 200 at the default 64 are far
below it)."""


def check_population_options(
    n_records: int,
    background: int,
    n_samples: int | None,
    target_error: float,
    max_samples: int,
    check_records: int = 0,
) -> None:
    """Refuse options ``explain population`` cannot honour, each in one line, before any work.

    Raises:
        ValueError: the first option out of range, named with its range.
    """
    if not isinstance(target_error, int | float) or not math.isfinite(target_error):
        raise ValueError(f"--target-error {target_error!r} is not a finite number")
    if not MIN_TARGET_ERROR <= target_error <= MAX_TARGET_ERROR:
        raise ValueError(f"--target-error {target_error:g} is outside {MIN_TARGET_ERROR:g} to {MAX_TARGET_ERROR:g}")
    for name, value in (("--n-samples", n_samples), ("--max-samples", max_samples)):
        if value is not None and not MIN_SAMPLES <= value <= MAX_SAMPLES:
            raise ValueError(f"{name} {value} is outside {MIN_SAMPLES} to {MAX_SAMPLES} samples per record")
    if n_samples is not None and n_samples > max_samples:
        raise ValueError(f"--n-samples {n_samples} is above --max-samples {max_samples}")
    if not 1 <= background <= MAX_BACKGROUND:
        raise ValueError(f"--background {background} is outside 1 to {MAX_BACKGROUND:,} records")
    if not 0 <= check_records <= MAX_CHECK_RECORDS:
        raise ValueError(f"--check-records {check_records} is outside 0 to {MAX_CHECK_RECORDS:,}")
    if n_records < 1:
        raise ValueError(f"--n {n_records} is not a number of records")
    samples = max_samples if n_samples is None else n_samples
    if n_records * samples > MAX_RECORD_SAMPLES:
        raise ValueError(
            f"--n {n_records} records x {samples} samples each is {n_records * samples:,} record-samples, above "
            f"{MAX_RECORD_SAMPLES:,}: explain fewer records or draw fewer samples"
        )
