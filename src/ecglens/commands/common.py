"""What every command's result shares: the files it wrote and the records it left out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ecglens.io.record import ReadIssue


@dataclass(frozen=True)
class Written:
    """What a command wrote."""

    paths: tuple[Path, ...]

    def line(self) -> str:
        """'wrote a, b, c', or 'nothing written'."""
        return "wrote " + ", ".join(str(p) for p in self.paths) if self.paths else "nothing written"


def issue_lines(issues: Sequence[ReadIssue], limit: int = 10) -> list[str]:
    """Records left out of a batch, for the terminal (the full list is in the command's files)."""
    if not issues:
        return []
    lines = [f"{len(issues)} record(s) left out:"] + [f"  {i.path}: {i.reason}" for i in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"  ... and {len(issues) - limit} more (see issues.csv / summary.md)")
    return lines
