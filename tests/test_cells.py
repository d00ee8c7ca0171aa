"""Terminal cell widths against rich itself (Keras's summary prints with it)."""

from __future__ import annotations

import unicodedata

import pytest
from rich import cells as rich_cells

from seqlab.cells import cell_len
from seqlab.cells import char_cells
from seqlab.cells import chop_cells
from seqlab.cells import crop
from seqlab.cells import pad
from seqlab.cells import set_cell_size

SAMPLES = ["lstm_1", "编码器", "解码器_层_非常长的名字", "naïve_café", "e\u0301t\u00e9", "한국어",
           "ｆｕｌｌ", "аб_вгд", "x😀y", "a\u200bb", ""]  # fmt: skip


def test_char_cells_agree_with_rich_on_assigned_code_points() -> None:
    """Every assigned code point of Python's Unicode but the symbols later
    Unicode versions made wide, which rich's newer table counts 2."""
    differ = []
    for code in range(0x110000):
        character = chr(code)
        category = unicodedata.category(character)
        if category in ("Cn", "Cs"):
            continue
        if char_cells(character) != rich_cells.get_character_cell_size(character):
            differ.append((code, category))
    assert len(differ) <= 188
    assert {category for _, category in differ} <= {"So", "No"}
    assert all(rich_cells.get_character_cell_size(chr(code)) == 2 for code, _ in differ)


@pytest.mark.parametrize("text", SAMPLES)
def test_measures_as_rich(text: str) -> None:
    assert cell_len(text) == rich_cells.cell_len(text)
    for width in range(1, 9):
        assert chop_cells(text, width) == rich_cells.chop_cells(text, width)
    for total in range(0, 12):
        assert set_cell_size(text, total) == rich_cells.set_cell_size(text, total)
        assert cell_len(crop(text, total)) == min(total, cell_len(text))
        assert cell_len(pad(text, total, right=True)) == max(total, cell_len(text))
        assert pad(text, total, right=False).startswith(text)
