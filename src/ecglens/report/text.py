"""Text from a file, made safe to draw on a page (the one-page PDF report, the titles of the ECG figures).

A file's statements, a record id or a patient's name (``--include-identifiers``) are data, never markup: they are
drawn as plain text (matplotlib's ``parse_math=False``: ``$\\frac{a}{b}$`` appears as written, and an invalid
formula cannot stop a batch), without the characters that have no glyph to draw (Unicode's control, format,
surrogate, private-use and unassigned characters: U+FEFF crashes matplotlib's PDF backend, U+202E would reverse the
text after it), each clipped to a length, a list of them to a number of lines ("... N more"), and every line to its
box on the page (`clip_to`), so no statement runs over the ECG.
"""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox, TransformedBbox

ELLIPSIS = "..."
STATEMENT_CHARS = 300
"""A statement longer than this is cut, with an ellipsis (a cart's statement is a line; a page holds a few)."""
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
"""Control, format (U+FEFF, U+200B, U+202E), surrogate, private-use and unassigned characters: never drawn."""
_SPACES = frozenset({"Zl", "Zp"})


def page_text(text: object, limit: int | None = None) -> str:
    """``text`` as one line of plain text fit to draw: characters without a glyph dropped, every run of white space
    (line breaks included) one space, and at most ``limit`` characters (cut with an ellipsis)."""
    kept = []
    for char in str(text):
        category = unicodedata.category(char)
        if char.isspace() or category in _SPACES:
            kept.append(" ")
        elif category not in _DROPPED:
            kept.append(char)
    line = " ".join("".join(kept).split())
    if limit is not None and len(line) > limit:
        line = line[: max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS
    return line


def page_lines(
    items: Sequence[str], width: int, max_lines: int, item_limit: int = STATEMENT_CHARS, indent: str = "  "
) -> list[str]:
    """Items (a file's statements) as at most ``max_lines`` wrapped lines of ``width`` characters: each item cut to
    ``item_limit`` characters, its continuation lines indented, and the items that do not fit counted on the last
    line (``... 3 more``)."""
    wrapped = [
        textwrap.wrap(page_text(item, item_limit), width, subsequent_indent=indent) or [""]
        for item in items
        if page_text(item)
    ]
    lines: list[str] = []
    for number, item_lines in enumerate(wrapped):
        left = len(wrapped) - number
        room = max_lines - len(lines) - (1 if left > 1 else 0)  # keep a line to say how many more there are
        if room <= 0:
            lines.append(f"{ELLIPSIS} {left} more")
            return lines
        if len(item_lines) > room:  # the item's start, cut where the room ends
            item_lines = [*item_lines[: room - 1], item_lines[room - 1].rstrip(ELLIPSIS) + ELLIPSIS]
            lines.extend(item_lines)
            if left > 1:
                lines.append(f"{ELLIPSIS} {left - 1} more")
            return lines
        lines.extend(item_lines)
    return lines


def clip_to(fig: Figure, text: Text, box_mm: tuple[float, float, float, float], page_mm: tuple[float, float]) -> Text:
    """Clip ``text`` to ``box_mm`` (left, bottom, right, top in millimetres from the page's bottom left): what
    would fall outside is not drawn, whatever the font makes of the characters."""
    left, bottom, right, top = box_mm
    width, height = page_mm
    box = Bbox.from_extents(left / width, bottom / height, right / width, top / height)
    text.set_clip_box(TransformedBbox(box, fig.transFigure))
    text.set_clip_on(True)
    return text
