"""Terminal cell widths of text, as ``rich`` measures them (``rich/cells.py``).

A CJK character takes two cells and a combining mark none, so a summary
with such names lines up (and wraps, and is cut) by cells, not characters.
rich ships its own Unicode tables; this module derives the widths from
Python's ``unicodedata`` with the few adjustments that make them agree with
rich 15 on every assigned code point of Unicode 14, except 188
symbols that later Unicode versions made wide (emoji), which are counted 1.
Text that is all ASCII never comes here (its width is its length).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

#: Zero-width code points ``unicodedata`` does not call marks: Hangul
#: medial vowels and final consonants (conjoining jamo) and fillers, line
#: and paragraph separators, the zero width space, emoji skin tones.
_ZERO_RANGES = (
    (0x1160, 0x11FF),
    (0xD7B0, 0xD7FF),
    (0x3164, 0x3164),
    (0xFFA0, 0xFFA0),
    (0x2028, 0x2029),
    (0x200B, 0x200B),
    (0x1F3FB, 0x1F3FF),
)
#: Format characters that rich counts one cell wide (prepended
#: concatenation marks and the soft hyphen).
_ONE_FORMAT = frozenset(
    (0xAD, *range(0x600, 0x606), 0x6DD, 0x70F, 0x890, 0x891, 0x8E2, 0x110BD, 0x110CD)
)


@lru_cache(maxsize=4096)
def char_cells(character: str) -> int:
    """Cells of one character: 0, 1 or 2."""
    code = ord(character)
    if code < 32 or 0x7F <= code < 0xA0:
        return 0
    if any(low <= code <= high for low, high in _ZERO_RANGES):
        return 0
    category = unicodedata.category(character)
    if category in ("Mn", "Me", "Mc") or (category == "Cf" and code not in _ONE_FORMAT):
        return 0
    if category == "Cn":
        return 1  # unassigned: past rich's table
    return 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1


def cell_len(text: str) -> int:
    """Cells of a string."""
    if text.isascii():
        return len(text)
    return sum(map(char_cells, text))


def _graphemes(text: str) -> list[tuple[int, int, int]]:
    """(start, end, cells) of each character with the zero-width ones after
    it (``rich.cells.split_graphemes``, without its emoji sequences)."""
    spans: list[tuple[int, int, int]] = []
    for index, character in enumerate(text):
        width = char_cells(character)
        if width or not spans:
            spans.append((index, index + 1, width))
        else:
            start, _, cells = spans[-1]
            spans[-1] = (start, index + 1, cells)
    return spans


def chop_cells(text: str, width: int) -> list[str]:
    """Pieces of at most ``width`` cells (``rich.cells.chop_cells``)."""
    if text.isascii():
        return [text[i : i + width] for i in range(0, len(text), width)]
    lines, size, offset = [], 0, 0
    for start, _, cells in _graphemes(text):
        if size + cells > width:
            lines.append(text[offset:start])
            offset, size = start, 0
        size += cells
    if size:
        lines.append(text[offset:])
    return lines


def set_cell_size(text: str, total: int) -> str:
    """Crop or pad with spaces to exactly ``total`` cells; a wide character
    cut in half becomes a space (``rich.cells.set_cell_size``)."""
    if text.isascii():
        return text[:total] if len(text) >= total else text + " " * (total - len(text))
    if total <= 0:
        return ""
    size = cell_len(text)
    if size <= total:
        return text + " " * (total - size)
    left = 0
    for start, _, cells in _graphemes(text):
        if left + cells > total:
            return text[:start] + " " * (total - left)
        left += cells
    return text


def crop(text: str, total: int) -> str:
    """Cut to at most ``total`` cells, without padding (the console's crop)."""
    if text.isascii():
        return text[:total]
    return set_cell_size(text, total) if cell_len(text) > total else text


def pad(text: str, width: int, right: bool) -> str:
    """Justify in ``width`` cells: left, or right when ``right``."""
    if text.isascii():
        return text.rjust(width) if right else text.ljust(width)
    spaces = " " * max(0, width - cell_len(text))
    return spaces + text if right else text + spaces
