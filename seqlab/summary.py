"""Render the table Keras 3 prints for ``model.summary()``.

Keras draws it with ``rich`` (``keras/src/utils/summary_utils.py``). When
stdout is not a terminal the table is 76 characters wide; this module
reproduces that output character for character, including rich's column
sizing, word wrapping and the ``…`` of words longer than their column, for a
Sequential model before ``fit``.
"""

from __future__ import annotations

import re

from .engine import ModelReport
from .registry import format_output

#: Width Keras uses when output is piped: min(88, 80 columns - 4).
PIPED_LINE_LENGTH = 76
#: Width of rich's console when output is piped (no terminal, no COLUMNS).
CONSOLE_WIDTH = 80
#: Column positions of a sequential-like model (summary_utils.py).
POSITIONS = (0.45, 0.80, 1.0)
HEADER = ("Layer (type)", "Output Shape", "Param #")
RIGHT_ALIGNED = (False, False, True)

_WORD = re.compile(r"\s*\S+\s*")


def _ratio_reduce(total: int, maximums: list[int], values: list[int]) -> list[int]:
    """rich's ``ratio_reduce`` with equal ratios: share a cut between columns."""
    remaining, ratio_left, out = total, len(values), []
    for maximum, value in zip(maximums, values, strict=True):
        cut = min(maximum, round(remaining / ratio_left))
        out.append(value - cut)
        remaining -= cut
        ratio_left -= 1
    return out


def column_widths(line_length: int) -> list[int]:
    """Content width of each column once rich fits the table in the line."""
    specified, current = [], 0
    for position in POSITIONS:
        width = int(position * line_length) - current
        specified.append(width)
        current += width
    padded = [w + 2 for w in specified]  # one space of padding either side
    available = line_length - (len(padded) + 1)  # the vertical rules
    excess = sum(padded) - available
    if excess > 0:
        padded = _ratio_reduce(excess, padded, padded)
    return [w - 2 for w in padded]


def wrap(text: str, width: int, overflow: str = "fold") -> list[str]:
    """Word-wrap like rich's ``Text.wrap`` (``rich._wrap.divide_line``).

    A word longer than ``width`` is folded across lines (``"fold"``, what
    ``console.print`` does) or kept whole on its own line and cut to
    ``width - 1`` characters and ``…`` (``"ellipsis"``, the overflow of a
    table column). Lines keep their trailing spaces within ``width``.
    """
    if len(text) <= width and "\n" not in text:
        return [text]  # the common case, on the hot path of POST /params
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group()
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:
            if overflow == "fold":
                pieces = [word[i : i + width] for i in range(0, len(word), width)]
                for piece in pieces:
                    if start:
                        breaks.append(start)
                    start += len(piece)
                offset = len(pieces[-1])
            else:
                if start:
                    breaks.append(start)
                offset = len(word)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    lines = [text[a:b] for a, b in zip([0, *breaks], [*breaks, len(text)], strict=True)]
    out = []
    for line in lines:
        if len(line) > width:
            # rich's rstrip_end: drop trailing whitespace beyond the width.
            stripped = line.rstrip()
            line = line[: max(width, len(stripped))]
        if len(line) > width and overflow == "ellipsis":
            line = line[: width - 1] + "…"
        out.append(line)
    return out


def _cell(text: str, width: int) -> list[str]:
    """A table cell's lines: rich's column overflow is ``ellipsis``."""
    return [line.rstrip() for line in wrap(text, width, "ellipsis")]


def _row(cells: list[list[str]], widths: list[int], rule: str) -> list[str]:
    height = max(len(c) for c in cells)
    out = []
    for i in range(height):
        parts = []
        for lines, width, right in zip(cells, widths, RIGHT_ALIGNED, strict=True):
            text = lines[i] if i < len(lines) else ""
            parts.append(f" {text.rjust(width) if right else text.ljust(width)} ")
        out.append(rule + rule.join(parts) + rule)
    return out


def _border(left: str, fill: str, mid: str, right: str, widths: list[int]) -> str:
    return left + mid.join(fill * (w + 2) for w in widths) + right


def readable_memory_size(size: float) -> str:
    """Keras's ``readable_memory_size``: 1024-based, two decimals."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def render_summary(report: ModelReport, line_length: int = PIPED_LINE_LENGTH) -> str:
    """The text of ``model.summary()`` for the analyzed model, newline-ended.

    >>> from seqlab.engine import analyze
    >>> text = render_summary(analyze({"input_shape": [1, 1], "layers": [
    ...     {"type": "LSTM", "units": 5}, {"type": "Dense", "units": 1}]}))
    >>> print(text.splitlines()[4])
    │ lstm (LSTM)                     │ (None, 5)              │           140 │
    """
    widths = column_widths(line_length)
    # The title is printed by rich's console, 80 columns when piped: a long
    # name wraps to a line of its own and folds (the table is 76 wide).
    out = wrap(f'Model: "{report.name}"', CONSOLE_WIDTH)
    out.append(_border("┏", "━", "┳", "┓", widths))
    out += _row([_cell(h, w) for h, w in zip(HEADER, widths, strict=True)], widths, "┃")
    out.append(_border("┡", "━", "╇", "┩", widths))
    for i, layer in enumerate(report.layers):
        if i:
            out.append(_border("├", "─", "┼", "┤", widths))
        cells = (
            f"{layer.name} ({layer.type})",
            format_output(layer.output_shape),
            f"{layer.params:,}",
        )
        out += _row([_cell(c, w) for c, w in zip(cells, widths, strict=True)], widths, "│")
    out.append(_border("└", "─", "┴", "┘", widths))
    for label, count, nbytes in (
        ("Total", report.total_params, report.param_bytes),
        ("Trainable", report.trainable_params, report.trainable_bytes),
        ("Non-trainable", report.non_trainable_params, report.non_trainable_bytes),
    ):
        size = readable_memory_size(nbytes)
        out.append(f" {label} params: {count:,} ({size})")
    return "\n".join(out) + "\n"
