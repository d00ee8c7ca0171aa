"""Render the table Keras 3 prints for ``model.summary()``.

Keras draws it with ``rich`` (``keras/src/utils/summary_utils.py``). When
stdout is not a terminal the table is 76 characters wide; this module
reproduces that output character for character, including rich's column
sizing, word wrapping and the ``…`` of words longer than their column, for a
Sequential model before ``fit`` and for a Functional one (a report with
``rows``: its ``Connected to`` column, or the 3-column layout with the
InputLayer row when Keras finds the graph sequential-like).

Any ``line_length`` Keras accepts is drawn as Keras draws it (columns
shrunk to their padding when narrow, header cells aligned to the bottom),
and lines are cut at the console's width (80 when piped, ``COLUMNS`` when
set). Names go through rich's markup as Keras sends them (``enc[fwd]`` in
``Connected to`` prints as ``enc``) and are measured in terminal cells
(``cells.py``). One thing is not reproduced: rich's emoji codes, which turn
a name like ``a:fire:b`` into ``a🔥b`` (its table of 140 kB is not copied).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from .cells import cell_len
from .cells import chop_cells
from .cells import crop
from .cells import pad
from .cells import set_cell_size
from .engine import ModelReport
from .registry import Output
from .registry import format_output
from .registry import format_shape

#: Width Keras uses when output is piped: min(88 or 108, 80 columns - 4).
PIPED_LINE_LENGTH = 76
#: Width of rich's console when output is piped (no terminal, no COLUMNS).
#: The console crops every line to it, so a ``line_length`` above 80 gives
#: a table cut at column 80, as ``model.summary(line_length=N, print_fn=...)``.
CONSOLE_WIDTH = 80
#: Column positions of a sequential-like model (summary_utils.py).
POSITIONS = (0.45, 0.80, 1.0)
HEADER = ("Layer (type)", "Output Shape", "Param #")
RIGHT_ALIGNED = (False, False, True)
#: The Functional layout, with the ``Connected to`` column.
GRAPH_POSITIONS = (0.3, 0.56, 0.74, 1.0)
GRAPH_HEADER = ("Layer (type)", "Output Shape", "Param #", "Connected to")
GRAPH_RIGHT_ALIGNED = (False, False, True, False)

_WORD = re.compile(r"\s*\S+\s*")
#: rich's markup tags (``rich/markup.py``): ``[bold]``, ``[#ff0000]``, ``[/]``.
_TAG = re.compile(r"(\\*)\[[a-z#/@][^[]*?]")
#: Where a tag could start: a search that runs before ``_TAG``'s, which
#: tries its leading backslashes at every position.
_TAG_START = re.compile(r"\[[a-z#/@]")


def _markup_text(markup: str) -> str:
    """The text rich prints for console markup: tags dropped, ``\\[`` as ``[``
    (``rich.markup.render``, styles and emoji codes aside)."""
    out, position = [], 0
    for match in _TAG.finditer(markup):
        start, end = match.span()
        if start > position:
            out.append(markup[position:start])
        backslashes, escaped = divmod(len(match[1]), 2)
        out.append("\\" * backslashes)
        if escaped:
            out.append(match[0][len(match[1]) :])  # an escaped tag is text
        position = end
    out.append(markup[position:])
    return "".join(part.replace("\\[", "[") for part in out)


def _escape(text: str) -> str:
    """``rich.markup.escape``: what Keras does to names before printing them."""
    text = _TAG.sub(lambda m: m[1] + m[1] + "\\" + m[0][len(m[1]) :], text)
    if text.endswith("\\") and not text.endswith("\\\\"):
        return text + "\\"
    return text


def printed_name(name: str) -> str:
    """A layer or model name as Keras's summary prints it.

    Keras escapes names for rich's markup, which still turns a ``\\[`` that
    starts no tag into ``[`` and doubles a final backslash; plain names (the
    hot path) are returned as they are.
    """
    if "[" not in name and "\\" not in name:
        return name
    return _markup_text(_escape(name))


def printed_connections(refs: Sequence[str]) -> str:
    """The ``Connected to`` cell: Keras does not escape the names there, so
    a name like ``enc[fwd]`` loses its ``[fwd]`` as a markup tag."""
    text = ", ".join(refs) or "-"
    if "\\" in text or (_TAG_START.search(text) and _TAG.search(text)):
        return _markup_text(text)
    return text


def _ratio_reduce(total: int, maximums: list[int], values: list[int]) -> list[int]:
    """rich's ``ratio_reduce`` with equal ratios: share a cut between columns."""
    remaining, ratio_left, out = total, len(values), []
    for maximum, value in zip(maximums, values, strict=True):
        cut = min(maximum, round(remaining / ratio_left))
        out.append(value - cut)
        remaining -= cut
        ratio_left -= 1
    return out


_WIDTHS: dict[tuple[int, tuple[float, ...]], list[int]] = {}


def column_widths(line_length: int, positions: Sequence[float] = POSITIONS) -> list[int]:
    """Content width of each column once rich fits the table in the line.

    Raises Keras's ``ValueError`` when a column would be under 4 characters.
    """
    key = (line_length, tuple(positions))
    cached = _WIDTHS.get(key)
    if cached is not None:
        return cached
    specified, current = [], 0
    for position in positions:
        width = int(position * line_length) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        specified.append(width)
        current += width
    padded = [w + 2 for w in specified]  # one space of padding either side
    available = line_length - (len(padded) + 1)  # the vertical rules
    excess = sum(padded) - available
    if excess > 0:
        padded = _ratio_reduce(excess, padded, padded)
    widths = _WIDTHS[key] = [w - 2 for w in padded]
    return widths


def wrap(text: str, width: int, overflow: str = "fold") -> list[str]:
    """Word-wrap like rich's ``Text.wrap`` (``rich._wrap.divide_line``).

    A word longer than ``width`` is folded across lines (``"fold"``, what
    ``console.print`` does) or kept whole on its own line and cut to
    ``width - 1`` cells and ``…`` (``"ellipsis"``, the overflow of a table
    column). Lines keep their trailing spaces within ``width``. Widths are
    terminal cells (a CJK character takes two).
    """
    if text.isascii():
        if len(text) <= width and "\n" not in text:
            return [text]  # the common case, on the hot path of POST /params
        measure = len
    else:
        measure = cell_len
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group()
        length = measure(word.rstrip())
        if width - offset >= length:
            offset += measure(word)
        elif length > width:
            if overflow == "fold":
                pieces = chop_cells(word, width)
                for piece in pieces:
                    if start:
                        breaks.append(start)
                    start += len(piece)
                offset = measure(pieces[-1])
            else:
                if start:
                    breaks.append(start)
                offset = measure(word)
        elif offset and start:
            breaks.append(start)
            offset = measure(word)
    lines = [text[a:b] for a, b in zip([0, *breaks], [*breaks, len(text)], strict=True)]
    out = []
    for line in lines:
        if len(line) > width:
            # rich's rstrip_end (in characters): drop trailing whitespace
            # beyond the width.
            stripped = line.rstrip()
            line = line[: max(width, len(stripped))]
        if measure(line) > width:
            if overflow == "ellipsis":
                line = set_cell_size(line, width - 1) + "…"
            else:
                line = set_cell_size(line, width)
        out.append(line)
    return out


def _cell(text: str, width: int) -> list[str]:
    """A table cell's lines: rich's column overflow is ``ellipsis``.

    A column squeezed to its padding alone (narrow lines) shows nothing.
    """
    if width <= 0:
        return [""]
    return [line.rstrip() for line in wrap(text, width, "ellipsis")]


def _row(
    cells: list[list[str]],
    widths: list[int],
    rule: str,
    right: Sequence[bool],
    bottom: bool = False,
) -> list[str]:
    """A table row's lines; rich aligns the header's cells to the bottom."""
    height = max(len(c) for c in cells)
    out = []
    for i in range(height):
        parts = []
        for lines, width, flush_right in zip(cells, widths, right, strict=True):
            j = i - (height - len(lines)) if bottom else i
            text = lines[j] if 0 <= j < len(lines) else ""
            parts.append(f" {pad(text, width, flush_right)} ")
        out.append(rule + rule.join(parts) + rule)
    return out


def _plain_cell(text: str, width: int) -> list[str]:
    """``_cell`` of printable ASCII text longer than its column: ``wrap``'s
    breaks (a word that does not fit starts a line), each line without its
    trailing spaces and cut to ``width - 1`` and ``…`` if still too long."""
    # The words are contiguous: each takes the spaces after it (the first
    # those before it too), so each starts where the one before ends. Each
    # is (its length without its spaces, with them); in text of single
    # spaces (names, shapes, references) the split on " " gives them.
    if "  " in text or text[0] == " " or text[-1] == " ":
        words = [(len(word.rstrip()), len(word)) for word in _WORD.findall(text)]
    else:
        words = [(len(part), len(part) + 1) for part in text.split(" ")]
    breaks = [0]
    offset = start = 0
    for bare, length in words:
        if width - offset >= bare:
            offset += length
        else:
            if start:
                breaks.append(start)
            offset = length
        start += length
    breaks.append(len(text))
    out = []
    for a, b in pairwise(breaks):
        line = text[a:b].rstrip()
        out.append(line if len(line) <= width else line[: width - 1] + "…")
    return out


def _plain_row(
    cells: Sequence[str], widths: list[int], right: Sequence[bool], line: str
) -> list[str] | None:
    """A row of printable ASCII cells (the common case: names, shapes and
    counts), as ``_cell`` and ``_row`` draw it; None for any other."""
    for text, width in zip(cells, widths, strict=True):
        if not (text.isascii() and text.isprintable()) or width <= 0:
            return None
    return _plain_lines(cells, widths, line)


def _plain_lines(cells: Sequence[str], widths: list[int], line: str) -> list[str]:
    """``_plain_row`` of cells known to be printable ASCII, columns wider
    than their padding.

    In such text a character is one cell, and so is the ``…`` of a cut
    word: every line is justified by ``%`` through ``line``, the row's
    format (``_frame``'s), all cells at once.
    """
    columns: list[Any] = []
    height = 1
    wrapped = False
    for text, width in zip(cells, widths, strict=True):
        if len(text) <= width:
            columns.append(text.rstrip())
        else:
            lines = _plain_cell(text, width)
            if len(lines) > height:
                height = len(lines)
            columns.append(lines)
            wrapped = True
    if not wrapped:
        return [line % tuple(columns)]
    if height == 1:
        return [line % tuple([c if c.__class__ is str else c[0] for c in columns])]
    padded = [
        [c, *[""] * (height - 1)] if c.__class__ is str else c + [""] * (height - len(c))
        for c in columns
    ]
    return [line % parts for parts in zip(*padded, strict=True)]


_FRAMES: dict[tuple[tuple[str, ...], tuple[int, ...], tuple[bool, ...]], Any] = {}


def _frame(
    header: Sequence[str], widths: list[int], right: Sequence[bool]
) -> tuple[list[str], str, str, str]:
    """The lines of a table that do not depend on its rows: the top border
    and header, the rule between rows, the bottom border; and the ``%``
    format of a body line (``│ %-31s │ %-22s │ %13s │``) for ``_plain_row``
    (kept per layout and widths, as ``column_widths`` keeps the widths)."""
    key = (tuple(header), tuple(widths), tuple(right))
    frame = _FRAMES.get(key)
    if frame is None:
        top = [_border("┏", "━", "┳", "┓", widths)]
        head = [_cell(h, w) for h, w in zip(header, widths, strict=True)]
        top += _row(head, widths, "┃", right, bottom=True)
        top.append(_border("┡", "━", "╇", "┩", widths))
        line = "│".join(
            f" %{'' if flush_right else '-'}{max(w, 0)}s "
            for w, flush_right in zip(widths, right, strict=True)
        )
        frame = _FRAMES[key] = (
            top,
            _border("├", "─", "┼", "┤", widths),
            _border("└", "─", "┴", "┘", widths),
            "│" + line + "│",
        )
    return frame  # type: ignore[no-any-return]


def _border(left: str, fill: str, mid: str, right: str, widths: list[int]) -> str:
    return left + mid.join(fill * (w + 2) for w in widths) + right


def readable_memory_size(size: float) -> str:
    """Keras's ``readable_memory_size``: 1024-based, two decimals."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def format_row_output(output: Output) -> str:
    """A row's Output Shape: one shape, or the flat list of a layer's outputs
    (Keras prints one flattened output without brackets)."""
    if isinstance(output, list) and len(output) == 1:
        return format_shape(output[0])
    return format_output(output)


def _layer_cells(report: ModelReport) -> Iterable[tuple[str, ...]]:
    """A Sequential report's rows: Layer (type), Output Shape, Param #."""
    for layer in report.layers:
        name, shape = (
            f"{printed_name(layer.name)} ({layer.type})",
            format_output(layer.output_shape),
        )
        yield (name, shape, f"{layer.params:,}")


def _graph_cells(rows: Iterable[Any], connected: bool) -> Iterable[tuple[str, ...]]:
    """A Functional report's rows, with ``Connected to`` unless sequential-like.

    Keras writes each inbound tensor as ``name[node][tensor]`` joined with
    ``", "``, and ``-`` for a row that has none (an InputLayer).
    """
    for name, class_name, output, params, connected_to in rows:
        cells: tuple[str, ...] = (
            f"{printed_name(name)} ({class_name})",
            format_shape(output) if output.__class__ is tuple else format_row_output(output),
            f"{params:,}",
        )
        if connected:
            cells += (printed_connections(connected_to),)
        yield cells


def _console_lines(text: str, console_width: int) -> list[str]:
    """A line printed by rich's console itself (title, totals): folded."""
    if cell_len(text) <= console_width:
        return [text]
    return wrap(text, console_width)


def render_summary(
    report: ModelReport,
    line_length: int = PIPED_LINE_LENGTH,
    console_width: int = CONSOLE_WIDTH,
) -> str:
    """The text of ``model.summary()`` for the analyzed model, newline-ended.

    ``line_length`` is Keras's argument (76 is its piped default for both
    layouts); ``console_width`` is rich's console, 80 when piped or ``COLUMNS``
    when set: the title and totals wrap at it and table lines are cut to it.
    A report with ``rows`` (a Functional model) gets Keras's Functional
    layout. Raises ``ValueError`` as Keras does for a line too narrow.

    >>> from seqlab import analyze
    >>> text = render_summary(analyze({"input_shape": [1, 1], "layers": [
    ...     {"type": "LSTM", "units": 5}, {"type": "Dense", "units": 1}]}))
    >>> print(text.splitlines()[4])
    │ lstm (LSTM)                     │ (None, 5)              │           140 │
    """
    rows = getattr(report, "rows", None)
    if rows is None:
        header, right = HEADER, RIGHT_ALIGNED
        widths = column_widths(line_length)
        body = _layer_cells(report)
    elif getattr(report, "sequential_like", False):
        header, right = HEADER, RIGHT_ALIGNED
        widths = column_widths(line_length)
        body = _graph_cells(rows, connected=False)
    else:
        header, right = GRAPH_HEADER, GRAPH_RIGHT_ALIGNED
        widths = column_widths(line_length, GRAPH_POSITIONS)
        body = _graph_cells(rows, connected=True)
    # The title is printed by rich's console (80 columns when piped): a long
    # name wraps to a line of its own and folds.
    out = _console_lines(f'Model: "{printed_name(report.name)}"', console_width)
    top, rule, bottom, line = _frame(header, widths, right)
    table = list(top)
    rows_cells = list(body)
    # Printable ASCII throughout (the common table) is checked once.
    text = "".join([cell for cells in rows_cells for cell in cells])
    plain = text.isascii() and text.isprintable() and min(widths) > 0
    for i, cells in enumerate(rows_cells):
        if i:
            table.append(rule)
        if plain:
            lines: list[str] | None = _plain_lines(cells, widths, line)
        else:
            lines = _plain_row(cells, widths, right, line)
        if lines is None:
            cells_lines = [_cell(c, w) for c, w in zip(cells, widths, strict=True)]
            lines = _row(cells_lines, widths, "│", right)
        table += lines
    table.append(bottom)
    if line_length > console_width:
        # The console crops what does not fit (Segment.split_and_crop_lines).
        table = [crop(line, console_width) for line in table]
    out += table
    for label, count, nbytes in (
        ("Total", report.total_params, report.param_bytes),
        ("Trainable", report.trainable_params, report.trainable_bytes),
        ("Non-trainable", report.non_trainable_params, report.non_trainable_bytes),
    ):
        size = readable_memory_size(nbytes)
        out += _console_lines(f" {label} params: {count:,} ({size})", console_width)
    return "\n".join(out) + "\n"
