import pytest

from seqlab import analyze
from seqlab.summary import column_widths
from seqlab.summary import readable_memory_size
from seqlab.summary import render_summary
from seqlab.summary import wrap


def test_piped_column_widths():
    # 76 columns: rich shrinks 34/26/16 (+ padding) to fit the rules.
    assert column_widths(76) == [31, 22, 13]
    assert sum(column_widths(76)) + 3 * 2 + 4 == 76


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("lstm (LSTM)", 31, ["lstm (LSTM)"]),
        ("time_distributed (TimeDistributed)", 31, ["time_distributed", "(TimeDistributed)"]),
        ("[(None, 5), (None, 5)]", 22, ["[(None, 5), (None, 5)]"]),
        ("[(None, 10), (None, 5), (None, 5)]", 22, ["[(None, 10), (None,", "5), (None, 5)]"]),
        ("a_name_much_longer_than_the_column_itself (Dense)", 20, None),
    ],
)
def test_wrap_never_exceeds_width(text, width, lines):
    out = wrap(text, width)
    if lines is not None:
        assert [line.rstrip() for line in out] == lines
    assert all(len(line) <= width for line in out)
    assert "".join(out).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0.00 B"), (584, "584.00 B"), (1572, "1.54 KB"), (645_892, "630.75 KB"),
     (286_708_800, "273.43 MB")],
)  # fmt: skip
def test_readable_memory_size(size, text):
    # Values from keras-params.md §2.3 (params × 4 bytes).
    assert readable_memory_size(size) == text


def test_rows_are_separated_and_footer_counts_non_trainable():
    report = analyze(
        {
            "input_shape": [20, 4],
            "layers": [
                {"type": "Conv1D", "filters": 8, "kernel_size": 3},
                {"type": "BatchNormalization"},
                {"type": "Dense", "units": 1, "trainable": False},
            ],
        }
    )
    lines = render_summary(report).splitlines()
    assert all(len(line) == 76 for line in lines[1:-3])
    assert sum(line.startswith("├") for line in lines) == 2
    assert lines[-3:] == [
        " Total params: 145 (580.00 B)",
        " Trainable params: 120 (480.00 B)",
        " Non-trainable params: 25 (100.00 B)",
    ]


@pytest.mark.parametrize(
    ("text", "width", "overflow", "lines"),
    [
        # A table cell (overflow "ellipsis"): the long word keeps a line of its
        # own, cut to width - 1 characters and "…".
        ("a" * 40 + " (Dense)", 31, "ellipsis", ["a" * 30 + "…", "(Dense)"]),
        ("a" * 31 + " (Dense)", 31, "ellipsis", ["a" * 31, "(Dense)"]),
        ("x (Dense) " + "b" * 33, 31, "ellipsis", ["x (Dense) ", "b" * 30 + "…"]),
        # The title line (console.print, overflow "fold"), trailing space kept.
        ('Model: "' + "m" * 72 + '"', 80, "fold", ["Model: ", '"' + "m" * 72 + '"']),
        ('Model: "' + "m" * 79 + '"', 80, "fold", ["Model: ", '"' + "m" * 79, '"']),
    ],
)
def test_wrap_overflow_as_rich(text, width, overflow, lines):
    assert wrap(text, width, overflow) == lines


def test_long_layer_and_model_names_as_keras_prints_them():
    """Checked against Keras's own text in test_keras_oracle.py."""
    report = analyze(
        {"name": "m" * 72, "input_shape": [3], "layers": [{"type": "Dense", "units": 1,
                                                            "name": "d" * 128}]}
    )  # fmt: skip
    lines = render_summary(report).splitlines()
    assert lines[:2] == ["Model: ", '"' + "m" * 72 + '"']
    assert lines[5:7] == [
        "│ " + "d" * 30 + "… │ (None, 1)              │             4 │",
        "│ (Dense)                         │                        │               │",
    ]


@pytest.mark.parametrize("seed", range(4))
def test_plain_rows_are_drawn_as_the_general_path_draws_them(seed):
    """``render_summary`` draws rows of printable ASCII cells with ``%``
    formats (``_plain_row``): the same lines as ``_cell`` and ``_row``, for
    words longer than their column, runs of spaces and narrow columns."""
    import random

    from seqlab.summary import GRAPH_POSITIONS
    from seqlab.summary import GRAPH_RIGHT_ALIGNED
    from seqlab.summary import RIGHT_ALIGNED
    from seqlab.summary import _cell
    from seqlab.summary import _frame
    from seqlab.summary import _plain_row
    from seqlab.summary import _row

    rng = random.Random(seed)
    pieces = ["a", "b_c", "(Dense)", "[0][0],", "9", "-", " ", "  ", "(None,", "x" * 40]
    for _ in range(400):
        line_length = rng.choice([40, 57, 76, 120, 250])
        positions, right = rng.choice(
            [((0.45, 0.80, 1.0), RIGHT_ALIGNED), (GRAPH_POSITIONS, GRAPH_RIGHT_ALIGNED)]
        )
        widths = column_widths(line_length, positions)
        cells = ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 8))) for _ in widths]
        line = _frame(["h"] * len(widths), widths, right)[3]
        lines = [_cell(c, w) for c, w in zip(cells, widths, strict=True)]
        general = _row(lines, widths, "│", right)
        assert _plain_row(cells, widths, right, line) == general, (cells, widths)
