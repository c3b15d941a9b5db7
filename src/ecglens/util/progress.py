"""Progress and stage logging: bars on a terminal, one line per stage everywhere else.

Every long loop in ecglens goes through `bar`. On a terminal it is a tqdm bar on standard error. When
standard error is not a terminal (a log file, CI, ``nohup``), no bar is drawn: the stage writes one
line when it ends (``[ecglens] prepare cache100: 1200 rec in 5.1 s``) through the ``ecglens`` logger.
`note` writes the other stage lines (``[demo] training ...``). `configure` sets the verbosity
(``--quiet`` and ``-v`` of the command line); without it, library callers see nothing below warnings.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import Any, Protocol

LOGGER = logging.getLogger("ecglens")
_STATE = {"bars": True}


def undecodable(text: str) -> bool:
    """Whether a name holds bytes that were not UTF-8 (``os.fsdecode`` turns each into a lone surrogate)."""
    return any(0xDC80 <= ord(c) <= 0xDCFF for c in text)


def printable(text: object) -> str:
    """Text safe to print, log or write as UTF-8: undecodable bytes of a file name as ``\\xNN`` escapes and
    control characters (terminal escape codes, NUL, newlines) as ``\\x1b``-style escapes, so a file's name can
    neither clear a terminal nor forge a log line."""
    text = str(text)
    if undecodable(text):
        text = os.fsencode(text).decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def configure(verbosity: int = 0) -> None:
    """Stage lines to standard error: -1 quiet (warnings only, no bars), 0 stage lines, 1 debug lines too."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    LOGGER.setLevel(level)
    LOGGER.propagate = False
    for handler in list(LOGGER.handlers):
        LOGGER.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("%(message)s"))
    LOGGER.addHandler(handler)
    _STATE["bars"] = verbosity >= 0


def note(message: str, stage: str = "ecglens", level: int = logging.INFO) -> None:
    """One stage line, ``[stage] message``, to the ``ecglens`` logger."""
    LOGGER.log(level, "[%s] %s", stage, message)


def _interactive() -> bool:
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


class StageLine:
    """A progress counter without a bar: one log line when the stage ends (for non-terminal output)."""

    def __init__(
        self,
        iterable: Iterable | None,
        total: int | None,
        desc: str,
        unit: str,
        initial: int,
        enabled: bool,
        unit_scale: bool = False,
    ) -> None:
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.unit_scale = unit_scale
        self.n, self.initial, self.enabled = initial, initial, enabled
        self.postfix: dict[str, Any] = {}
        self.started = time.perf_counter()
        self.closed = False

    def __iter__(self) -> Iterator:
        try:
            for item in () if self.iterable is None else self.iterable:
                yield item
                self.n += 1
        finally:
            self.close()

    def __enter__(self) -> StageLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items."""
        self.n += n

    def set_postfix(self, **values: Any) -> None:
        """Values shown at the end of the stage line (a running loss)."""
        self.postfix = values

    def close(self) -> None:
        """Write the stage's one line (once)."""
        if self.closed:
            return
        self.closed = True
        if not self.enabled:
            return
        done = self.n - self.initial
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        resumed = f" (+{self.initial} done before)" if self.initial else ""
        seconds = time.perf_counter() - self.started
        amount = _scaled(done, self.unit) if self.unit_scale else f"{done} {self.unit}"
        rate = f" ({_scaled(done / seconds, self.unit)}/s)" if self.unit_scale and seconds > 0 else ""
        note(f"{self.desc}: {amount}{resumed} in {seconds:.1f} s{rate}{extra}")


def _scaled(value: float, unit: str) -> str:
    """``12.3 MB``: a count in decimal multiples (as tqdm's ``unit_scale``)."""
    for prefix in ("", "k", "M", "G", "T"):
        if abs(value) < 1000 or prefix == "T":
            return f"{value:.0f} {prefix}{unit}" if not prefix else f"{value:.1f} {prefix}{unit}"
        value /= 1000
    return f"{value} {unit}"


class Progress(Protocol):
    """What `bar` returns: a tqdm bar or a `StageLine`."""

    def update(self, n: float = 1) -> object:
        """Count ``n`` more units done."""

    def close(self) -> None:
        """End the stage."""


def bar(
    iterable: Iterable | None = None,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    initial: int = 0,
    leave: bool = True,
    line: bool = True,
    unit_scale: bool = False,
) -> Any:
    """A tqdm bar on an interactive standard error, else a `StageLine` (one line when the stage ends).

    Args:
        iterable: items to iterate (or None and call ``update``).
        total: item count when known.
        desc: the stage's name.
        unit: what one item is.
        enabled: false for no output at all (library callers, non-zero ranks).
        initial: items already done (a resumed stage).
        leave: keep the finished bar on screen.
        line: write the stage's line off a terminal (False when the caller writes its own, as training's
            epoch line).
        unit_scale: show counts in k/M/G multiples (bytes), with a rate.
    """
    enabled = enabled and _STATE["bars"]
    if enabled and _interactive():
        from tqdm.auto import tqdm

        return tqdm(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            initial=initial,
            leave=leave,
            file=sys.stderr,
            unit_scale=unit_scale,
        )
    if total is None and isinstance(iterable, Sized):
        total = len(iterable)
    return StageLine(
        iterable, total, desc, unit, initial, enabled and line and LOGGER.isEnabledFor(logging.INFO), unit_scale
    )
