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
        assert out == lines
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
