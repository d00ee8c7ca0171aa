"""The Functional ``model.summary()`` text, byte for byte against Keras.

Each model below is built with real Keras; ``keras_rows`` reads the rows a
``GraphReport`` carries (design §2: name, class name, output shape, params,
connected_to, in ``model.operations`` order, plus ``sequential_like`` and
the totals) from the Keras model itself, and ``render_summary`` must print
exactly what ``model.summary(line_length=N, print_fn=...)`` prints when
output is piped, at the piped default and at explicit widths from 24 to 200
(above 80 rich's console cuts every line at column 80), and with ``COLUMNS``
set (the console's width).

These tests need Keras (the ``worker`` extra); they fail, not skip, without
it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras_oracle as oracle
import pytest
import specs

from seqlab import analyze
from seqlab.summary import column_widths
from seqlab.summary import render_summary

pytestmark = pytest.mark.keras

keras = oracle.import_keras()
layers = keras.layers

Row = tuple[str, str, Any, int, list[str]]


@dataclass
class Report:
    """The fields of a GraphReport that the summary reads."""

    name: str
    rows: list[Row]
    sequential_like: bool
    total_params: int
    trainable_params: int
    non_trainable_params: int
    param_bytes: float
    trainable_bytes: float
    non_trainable_bytes: float


def _sequential_like(model: Any) -> bool:
    """Keras's check (summary_utils.print_summary), restated."""
    nodes: list[Any] = []
    for by_depth in model._nodes_by_depth.values():
        if len(by_depth) > 1 or (
            len(by_depth) == 1 and len(keras.tree.flatten(by_depth[0].input_tensors)) > 1
        ):
            return False
        nodes += by_depth
    for layer in model.layers:
        if sum(node in nodes for node in layer._inbound_nodes) > 1:
            return False
    return True


def _output(operation: Any) -> Any:
    """The last node's outputs, flattened: one shape or a list of shapes."""
    outputs = keras.tree.flatten(operation._inbound_nodes[-1].output_tensors)
    shapes = [tuple(t.shape) for t in outputs]
    return shapes[0] if len(shapes) == 1 else shapes


def keras_rows(model: Any) -> Report:
    """A GraphReport's summary fields, read from a built Keras model."""
    from keras.src.utils import summary_utils as su

    relevant = [node for nodes in model._nodes_by_depth.values() for node in nodes]
    rows = []
    for op in model._operations:
        connected = []
        for node in op._inbound_nodes:
            if node not in relevant:
                continue
            for tensor in node.input_tensors:
                history = tensor._keras_history
                connected.append(
                    f"{history.operation.name}[{history.node_index}][{history.tensor_index}]"
                )
        params = op.count_params() if getattr(op, "built", False) else 0
        rows.append((op.name, type(op).__name__, _output(op), params, connected))
    trainable = su.count_params(model.trainable_weights)
    non_trainable = su.count_params(model.non_trainable_weights)
    trainable_bytes = su.weight_memory_size(model.trainable_weights)
    non_trainable_bytes = su.weight_memory_size(model.non_trainable_weights)
    return Report(
        name=model.name,
        rows=rows,
        sequential_like=_sequential_like(model),
        total_params=trainable + non_trainable,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        param_bytes=trainable_bytes + non_trainable_bytes,
        trainable_bytes=trainable_bytes,
        non_trainable_bytes=non_trainable_bytes,
    )


# ---------------------------------------------------------------- models


def encoder_decoder() -> Any:
    """Reference Example A: the encoder's states start the decoder."""
    return specs.encoder_decoder(keras)


def attention_decoder() -> Any:
    src = keras.Input((9, 6), name="source")
    tgt = keras.Input((4, 5), name="target")
    enc, h = layers.GRU(12, return_sequences=True, return_state=True, name="encoder")(src)
    dec = layers.GRU(12, return_sequences=True, name="decoder")(tgt, initial_state=[h])
    ctx = layers.Attention(use_scale=True, score_mode="concat")([dec, enc], use_causal_mask=False)
    add = layers.AdditiveAttention()([dec, enc, enc])
    x = layers.Concatenate()([dec, ctx, add])
    return keras.Model([src, tgt], layers.TimeDistributed(layers.Dense(3))(x), name="seq2seq")


def transformer_block() -> Any:
    """Written one layer per statement, so that names follow entry order."""
    x = keras.Input((10, 16), name="tokens")
    a = layers.MultiHeadAttention(num_heads=2, key_dim=8, name="self_attention")(x, x)
    y = layers.Add()([x, a])
    y = layers.LayerNormalization()(y)
    f = layers.Dense(32, activation="relu")(y)
    f = layers.Dense(16)(f)
    y = layers.Add()([y, f])
    y = layers.LayerNormalization()(y)
    y = layers.GlobalAveragePooling1D()(y)
    return keras.Model(x, layers.Dense(1)(y), name="transformer_block")


def mha_keywords_and_scores() -> Any:
    """Keyword call (kwargs sorted: key, query, value), scores output, long
    class names (``(MultiHeadAttention)`` is cut with ``…``)."""
    q = keras.Input((6, 8), name="query_in")
    v = keras.Input((12, 4), name="value_in")
    k = keras.Input((12, 5), name="key_in")
    mha = layers.MultiHeadAttention(3, 4, value_dim=2, output_shape=7, use_bias=False)
    out, scores = mha(query=q, value=v, key=k, return_attention_scores=True)
    pooled = layers.GlobalMaxPooling1D()(out)
    return keras.Model([q, v, k], [pooled, scores])


def siamese() -> Any:
    """A shared Embedding and a shared LSTM: one row each, several nodes."""
    a = keras.Input((None,), dtype="int32", name="left")
    b = keras.Input((None,), dtype="int32", name="right")
    embed = layers.Embedding(100, 8, name="shared_embedding")
    encode = layers.LSTM(6, name="shared_encoder")
    ea, eb = encode(embed(a)), encode(embed(b))
    diff = layers.Subtract()([ea, eb])
    prod = layers.Multiply()([ea, eb])
    cos = layers.Dot(axes=1, normalize=True)([ea, eb])
    x = layers.Concatenate()([diff, prod, cos, layers.Maximum()([ea, eb])])
    return keras.Model([a, b], layers.Dense(1, activation="sigmoid")(x), name="siamese")


def two_heads() -> Any:
    """Several inputs and outputs, Average and Minimum, an unused input."""
    x1 = keras.Input((5, 3))
    x2 = keras.Input((5, 3))
    unused = keras.Input((2,))
    m = layers.Average()([x1, x2, layers.Minimum()([x1, x2])])
    h = layers.Bidirectional(layers.LSTM(4))(m)
    return keras.Model(
        [x1, unused, x2],
        [layers.Dense(3, name="class_head")(h), layers.Dense(1, name="value_head")(h)],
    )


def long_names() -> Any:
    """Names longer than their column, and a model name longer than 80."""
    x = keras.Input((4, 3), name="an_input_with_a_rather_long_name_indeed")
    y = layers.Dense(5, name="d" * 40)(x)
    z = layers.Dense(5, name="a_dense_layer_with_underscores_everywhere")(x)
    s = layers.Add(name="sum of two words")([y, z])
    return keras.Model(x, s, name="m" * 95)


def sequential_chain() -> Any:
    """Input → LSTM → Dense: the 3-column layout with the InputLayer row."""
    x = keras.Input((5, 1))
    return keras.Model(x, layers.Dense(5)(layers.LSTM(5)(x)))


def sequential_chain_frozen() -> Any:
    x = keras.Input((20, 4), name="series")
    y = layers.Conv1D(8, 3)(x)
    y = layers.BatchNormalization()(y)
    y = layers.Dense(1, trainable=False)(layers.Flatten()(y))
    return keras.Model(x, y, name="chain")


def embedding_mask_zero() -> Any:
    """Embedding(mask_zero=True) → LSTM: a ``not_equal`` op row, the mask in
    the LSTM's ``Connected to``, and so the 4-column layout."""
    x = keras.Input((7,))
    e = layers.Embedding(50, 4, mask_zero=True)(x)
    y = layers.LSTM(3, return_sequences=True)(e)
    return keras.Model(x, layers.GlobalAveragePooling1D()(y))


def masking_ops() -> Any:
    """Masking → Bidirectional: ``not_equal`` and ``any`` op rows."""
    x = keras.Input((6, 2))
    m = layers.Masking()(x)
    return keras.Model(x, layers.Bidirectional(layers.GRU(3))(m))


def frozen_and_batchnorm() -> Any:
    """Reference §6: totals 74, trainable 27, non-trainable 47."""
    a = keras.Input((4,))
    b = keras.Input((4,))
    shared = layers.Dense(3)
    n = layers.BatchNormalization()(layers.Concatenate()([shared(a), shared(b)]))
    frozen = layers.Dense(5, trainable=False)(n)
    return keras.Model([a, b], frozen)


def float16_policies() -> Any:
    """Variables in float16 and bfloat16 halve their bytes; mixed keeps float32."""
    x = keras.Input((8, 6))
    y = layers.LSTM(16, return_sequences=True, dtype="mixed_float16")(x)
    y = layers.Dense(12, dtype="float16")(y)
    z = layers.Dense(12, dtype="bfloat16")(x)
    s = layers.Concatenate(dtype="float16")([y, z])
    return keras.Model(x, s)


def bidirectional_states() -> Any:
    """Bidirectional(LSTM, return_state): five outputs, states to a decoder."""
    enc_in = keras.Input((7, 3))
    out, fh, fc, bh, bc = layers.Bidirectional(layers.LSTM(4, return_state=True))(enc_in)
    dec_in = keras.Input((5, 2))
    h = layers.Concatenate()([fh, bh])
    c = layers.Concatenate()([fc, bc])
    dec = layers.LSTM(8, return_sequences=True)(dec_in, initial_state=[h, c])
    return keras.Model([enc_in, dec_in], [layers.Dense(2)(dec), out])


def shared_shapes_differ() -> Any:
    """A shared layer's row shows its last call's output shape."""
    a = keras.Input((5, 3))
    b = keras.Input((3,))
    dense = layers.Dense(4)
    return keras.Model([a, b], [dense(a), dense(b)])


def big_counts() -> Any:
    """Thousands separators and megabytes."""
    x = keras.Input((2000,))
    y = layers.Dense(1000)(x)
    z = layers.Dense(1000)(x)
    return keras.Model(x, layers.Add()([y, z]))


def tensor_ops() -> Any:
    """Non-layer operations (``+``, ``keras.ops``) are rows with 0 params."""
    x = keras.Input((6, 4))
    y = layers.Dense(4)(x)
    s = x + y
    c = keras.ops.concatenate([s, y], axis=-1)
    return keras.Model(x, layers.Dense(2)(c))


def repeated_self_attention() -> Any:
    """MHA(x, x): the same tensor twice in ``Connected to``; a ReLU."""
    x = keras.Input((4, 6))
    a = layers.MultiHeadAttention(1, 3)(x, x, use_causal_mask=True)
    return keras.Model(x, layers.ReLU()(a))


MODELS: dict[str, Callable[[], Any]] = {
    f.__name__: f
    for f in (
        encoder_decoder,
        attention_decoder,
        transformer_block,
        mha_keywords_and_scores,
        siamese,
        two_heads,
        long_names,
        sequential_chain,
        sequential_chain_frozen,
        embedding_mask_zero,
        masking_ops,
        frozen_and_batchnorm,
        float16_policies,
        bidirectional_states,
        shared_shapes_differ,
        big_counts,
        tensor_ops,
        repeated_self_attention,
    )
}

_BUILT: dict[str, Any] = {}


def built(name: str) -> Any:
    """Each model is built once per test session, in a fresh Keras session:
    its names are those of a fresh session whatever was built before
    (``functional``, ``lstm_1`` ...), as the texts quoted below expect."""
    if name not in _BUILT:
        keras.backend.clear_session()
        _BUILT[name] = MODELS[name]()
    return _BUILT[name]


# ---------------------------------------------------------------- tests

#: The piped default, narrow widths where columns shrink to their padding
#: (header cells then align to the bottom), and widths above the console's.
WIDTHS = [None, 19, 24, 30, 40, 52, 63, 76, 80, 81, 99, 108, 137, 200]


@pytest.mark.parametrize("name", MODELS)
def test_summary_as_keras_prints_it(name: str) -> None:
    """Every width, one model at a time (the first difference is shown):
    piped (the console is 80 columns), and on a console at least as wide as
    the line (``COLUMNS``; what ``POST /params?line_length=`` shows)."""
    model = built(name)
    report = keras_rows(model)
    for width in WIDTHS:
        expected = oracle.summary_text(model, width)
        text = render_summary(report) if width is None else render_summary(report, width)
        assert text == expected, f"line_length={width}"
        if width is not None and width > 80:
            expected = oracle.summary_text(model, width, columns=width)
            assert render_summary(report, width, width) == expected, f"COLUMNS={width}"


@pytest.mark.parametrize(
    ("columns", "width"), [(120, 120), (120, 76), (60, 100), (200, 200), (30, 40), (25, 60)]
)
@pytest.mark.parametrize(
    "name", ["attention_decoder", "long_names", "sequential_chain", "big_counts"]
)
def test_console_width_is_columns(name: str, columns: int, width: int) -> None:
    """With ``COLUMNS`` set, rich's console is that wide: the title and the
    totals wrap there and the table is cut there."""
    model = built(name)
    expected = oracle.summary_text(model, width, columns=columns)
    assert render_summary(keras_rows(model), width, console_width=columns) == expected


def test_layouts_and_example_a() -> None:
    """The layout follows Keras's sequential-like check; Example A's text."""
    assert keras_rows(built("sequential_chain")).sequential_like
    assert not keras_rows(built("embedding_mask_zero")).sequential_like
    assert not keras_rows(built("shared_shapes_differ")).sequential_like
    text = render_summary(keras_rows(built("encoder_decoder")))
    lines = text.splitlines()
    header = "┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃"
    row = "│ lstm_1 (LSTM)       │ (None, 5, 8)      │        416 │ input_layer_1[0]… │"
    assert lines[2] == header
    assert row in lines
    assert lines[-3:] == [
        " Total params: 818 (3.20 KB)",
        " Trainable params: 818 (3.20 KB)",
        " Non-trainable params: 0 (0.00 B)",
    ]


@pytest.mark.parametrize(
    ("width", "layout", "positions"),
    [
        # int(0.74 L) - int(0.56 L) is 3 at 20 (but 4 at 19).
        (20, "encoder_decoder", (0.3, 0.56, 0.74, 1.0)),
        (15, "sequential_chain", (0.45, 0.80, 1.0)),
    ],
)
def test_too_narrow_is_keras_error(width: int, layout: str, positions: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="Insufficient console width") as keras_error:
        oracle.summary_text(built(layout), width)
    with pytest.raises(ValueError, match=str(keras_error.value)):
        column_widths(width, positions)
    with pytest.raises(ValueError, match=str(keras_error.value)):
        render_summary(keras_rows(built(layout)), width)


# ------------------------------------------------- through seqlab.analyze

#: The compact graph form of the models above (design §1): the same program,
#: so a fresh Keras session gives the same names.
SPECS: dict[str, dict[str, Any]] = {
    "encoder_decoder": {**specs.ENCODER_DECODER, "outputs": "dense"},
    "attention_decoder": {
        "name": "seq2seq",
        "inputs": [{"name": "source", "shape": [9, 6]}, {"name": "target", "shape": [4, 5]}],
        "layers": [
            {
                "type": "GRU",
                "units": 12,
                "return_sequences": True,
                "return_state": True,
                "name": "encoder",
                "inputs": "source",
            },
            {
                "type": "GRU",
                "units": 12,
                "return_sequences": True,
                "name": "decoder",
                "inputs": "target",
                "initial_state": ["encoder[0][1]"],
            },
            {
                "type": "Attention",
                "use_scale": True,
                "score_mode": "concat",
                "inputs": ["decoder", "encoder"],
                "use_causal_mask": False,
            },
            {"type": "AdditiveAttention", "inputs": ["decoder", "encoder", "encoder"]},
            {"type": "Concatenate", "inputs": ["decoder", "attention", "additive_attention"]},
            {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 3}},
        ],
    },
    "transformer_block": {
        "name": "transformer_block",
        "inputs": [{"name": "tokens", "shape": [10, 16]}],
        "layers": [
            {
                "type": "MultiHeadAttention",
                "num_heads": 2,
                "key_dim": 8,
                "name": "self_attention",
                "inputs": ["tokens", "tokens"],
            },
            {"type": "Add", "inputs": ["tokens", "self_attention"]},
            {"type": "LayerNormalization"},
            {"type": "Dense", "units": 32, "activation": "relu"},
            {"type": "Dense", "units": 16},
            {"type": "Add", "inputs": ["layer_normalization", "dense_1"]},
            {"type": "LayerNormalization"},
            {"type": "GlobalAveragePooling1D"},
            {"type": "Dense", "units": 1},
        ],
    },
    "mha_keywords_and_scores": {
        "inputs": [
            {"name": "query_in", "shape": [6, 8]},
            {"name": "value_in", "shape": [12, 4]},
            {"name": "key_in", "shape": [12, 5]},
        ],
        "layers": [
            {
                "type": "MultiHeadAttention",
                "num_heads": 3,
                "key_dim": 4,
                "value_dim": 2,
                "output_shape": 7,
                "use_bias": False,
                "return_attention_scores": True,
                "inputs": {"query": "query_in", "value": "value_in", "key": "key_in"},
            },
            {"type": "GlobalMaxPooling1D", "inputs": "multi_head_attention[0][0]"},
        ],
        "outputs": ["global_max_pooling1d", "multi_head_attention[0][1]"],
    },
    "siamese": {
        "name": "siamese",
        "inputs": [
            {"name": "left", "shape": [None], "dtype": "int32"},
            {"name": "right", "shape": [None], "dtype": "int32"},
        ],
        "layers": [
            {
                "type": "Embedding",
                "input_dim": 100,
                "output_dim": 8,
                "name": "shared_embedding",
                "inputs": "left",
            },
            {"type": "LSTM", "units": 6, "name": "shared_encoder"},
            {"call": "shared_embedding", "inputs": "right"},
            {"call": "shared_encoder", "inputs": "shared_embedding[1][0]"},
            {"type": "Subtract", "inputs": ["shared_encoder[0][0]", "shared_encoder[1][0]"]},
            {"type": "Multiply", "inputs": ["shared_encoder[0][0]", "shared_encoder[1][0]"]},
            {
                "type": "Dot",
                "axes": 1,
                "normalize": True,
                "inputs": ["shared_encoder[0][0]", "shared_encoder[1][0]"],
            },
            {"type": "Maximum", "inputs": ["shared_encoder[0][0]", "shared_encoder[1][0]"]},
            {"type": "Concatenate", "inputs": ["subtract", "multiply", "dot", "maximum"]},
            {"type": "Dense", "units": 1, "activation": "sigmoid"},
        ],
    },
    "two_heads": {
        "inputs": [{"shape": [5, 3]}, {"shape": [5, 3]}, {"shape": [2]}],
        "layers": [
            {"type": "Minimum", "inputs": ["input_layer", "input_layer_1"]},
            {"type": "Average", "inputs": ["input_layer", "input_layer_1", "minimum"]},
            {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 4}},
            {"type": "Dense", "units": 3, "name": "class_head", "inputs": "bidirectional"},
            {"type": "Dense", "units": 1, "name": "value_head", "inputs": "bidirectional"},
        ],
        "outputs": ["class_head", "value_head"],
    },
    "long_names": {
        "name": "m" * 95,
        "inputs": [{"name": "an_input_with_a_rather_long_name_indeed", "shape": [4, 3]}],
        "layers": [
            {"type": "Dense", "units": 5, "name": "d" * 40},
            {
                "type": "Dense",
                "units": 5,
                "name": "a_dense_layer_with_underscores_everywhere",
                "inputs": "an_input_with_a_rather_long_name_indeed",
            },
            {
                "type": "Add",
                "name": "sum of two words",
                "inputs": ["d" * 40, "a_dense_layer_with_underscores_everywhere"],
            },
        ],
    },
    "sequential_chain": {
        "inputs": [{"shape": [5, 1]}],
        "layers": [{"type": "LSTM", "units": 5}, {"type": "Dense", "units": 5}],
    },
    "sequential_chain_frozen": {
        "name": "chain",
        "inputs": [{"name": "series", "shape": [20, 4]}],
        "layers": [
            {"type": "Conv1D", "filters": 8, "kernel_size": 3},
            {"type": "BatchNormalization"},
            {"type": "Flatten"},
            {"type": "Dense", "units": 1, "trainable": False},
        ],
    },
    "embedding_mask_zero": {
        "inputs": [{"shape": [7]}],
        "layers": [
            {"type": "Embedding", "input_dim": 50, "output_dim": 4, "mask_zero": True},
            {"type": "LSTM", "units": 3, "return_sequences": True},
            {"type": "GlobalAveragePooling1D"},
        ],
    },
    "masking_ops": {
        "inputs": [{"shape": [6, 2]}],
        "layers": [
            {"type": "Masking"},
            {"type": "Bidirectional", "layer": {"type": "GRU", "units": 3}},
        ],
    },
    "frozen_and_batchnorm": {
        "inputs": [{"shape": [4]}, {"shape": [4]}],
        "layers": [
            {"type": "Dense", "units": 3, "inputs": "input_layer"},
            {"call": "dense", "inputs": "input_layer_1"},
            {"type": "Concatenate", "inputs": ["dense[0][0]", "dense[1][0]"]},
            {"type": "BatchNormalization"},
            {"type": "Dense", "units": 5, "trainable": False},
        ],
    },
    "float16_policies": {
        "inputs": [{"shape": [8, 6]}],
        "layers": [
            {"type": "LSTM", "units": 16, "return_sequences": True, "dtype": "mixed_float16"},
            {"type": "Dense", "units": 12, "dtype": "float16"},
            {"type": "Dense", "units": 12, "dtype": "bfloat16", "inputs": "input_layer"},
            {"type": "Concatenate", "dtype": "float16", "inputs": ["dense", "dense_1"]},
        ],
    },
    "bidirectional_states": {
        "inputs": [{"shape": [7, 3]}, {"shape": [5, 2]}],
        "layers": [
            {
                "type": "Bidirectional",
                "layer": {"type": "LSTM", "units": 4, "return_state": True},
                "inputs": "input_layer",
            },
            {"type": "Concatenate", "inputs": ["bidirectional[0][1]", "bidirectional[0][3]"]},
            {"type": "Concatenate", "inputs": ["bidirectional[0][2]", "bidirectional[0][4]"]},
            {
                "type": "LSTM",
                "units": 8,
                "return_sequences": True,
                "inputs": "input_layer_1",
                "initial_state": ["concatenate", "concatenate_1"],
            },
            {"type": "Dense", "units": 2},
        ],
        "outputs": ["dense", "bidirectional[0][0]"],
    },
    "shared_shapes_differ": {
        "inputs": [{"shape": [5, 3]}, {"shape": [3]}],
        "layers": [
            {"type": "Dense", "units": 4, "inputs": "input_layer"},
            {"call": "dense", "inputs": "input_layer_1"},
        ],
        "outputs": ["dense[0][0]", "dense[1][0]"],
    },
    "big_counts": {
        "inputs": [{"shape": [2000]}],
        "layers": [
            {"type": "Dense", "units": 1000},
            {"type": "Dense", "units": 1000, "inputs": "input_layer"},
            {"type": "Add", "inputs": ["dense", "dense_1"]},
        ],
    },
    "repeated_self_attention": {
        "inputs": [{"shape": [4, 6]}],
        "layers": [
            {
                "type": "MultiHeadAttention",
                "num_heads": 1,
                "key_dim": 3,
                "inputs": ["input_layer", "input_layer"],
                "use_causal_mask": True,
            },
            {"type": "ReLU"},
        ],
    },
}

ENGINE_WIDTHS = [None, 40, 76, 100, 160]


@pytest.mark.parametrize("name", SPECS)
def test_engine_summary_as_keras_prints_it(name: str) -> None:
    """``render_summary(analyze(spec))`` is the text of the same program
    built by Keras in a fresh session: rows first (a clearer failure)."""
    keras.backend.clear_session()
    model = MODELS[name]()
    expected = keras_rows(model)
    report = analyze(SPECS[name])
    assert report.rows == expected.rows
    assert report.sequential_like == expected.sequential_like
    assert (report.total_params, report.trainable_params, report.param_bytes) == (
        expected.total_params,
        expected.trainable_params,
        expected.param_bytes,
    )
    for width in ENGINE_WIDTHS:
        text = render_summary(report) if width is None else render_summary(report, width)
        assert text == oracle.summary_text(model, width), f"line_length={width}"


#: Names that rich's markup changes: Keras escapes names in the Layer (type)
#: cell and the title, but a ``\[`` that starts no tag still becomes ``[`` and
#: a final backslash doubles; in Connected to the names are not escaped, so
#: ``[fwd]`` is a tag and disappears.
MARKUP_NAMES = ["enc[fwd]", "x[0]", "a[b]c", "q\\[b]", "m[#ff0000]z", "e\\", "f\\[0",
                "g\\\\[b]", "h[@x]", "i[b=1]j", "k[bold red] l", "a\\b"]  # fmt: skip


@pytest.mark.parametrize("name", MARKUP_NAMES)
def test_names_as_rich_markup_prints_them(name: str) -> None:
    x = keras.Input((4,), name="in[put]" + name)
    y = layers.Dense(3, name=name)(x)
    model = keras.Model(x, [layers.Dense(2)(y), layers.Add()([y, y])], name=name + "\\")
    assert render_summary(keras_rows(model)) == oracle.summary_text(model)
    sequential = keras.Sequential([keras.Input((3,)), layers.Dense(2, name=name + "s")], name=name)
    report = analyze(
        {
            "name": name,
            "input_shape": [3],
            "layers": [{"type": "Dense", "units": 2, "name": name + "s"}],
        }
    )
    assert render_summary(report) == oracle.summary_text(sequential)


#: Names whose characters are not one cell each: rich measures, wraps, cuts
#: and pads them in terminal cells.
WIDE_NAMES = ["编码器", "解码器_层_非常长的名字_超过列宽", "naïve_café", "e\u0301t\u00e9",
              "日本語の名前です", "한국어레이어", "x😀y", "ｆｕｌｌ", "аб_вгд_ежз"]  # fmt: skip


@pytest.mark.parametrize("name", WIDE_NAMES)
def test_wide_names_as_keras_prints_them(name: str) -> None:
    x = keras.Input((4,), name="输入")
    y = layers.Dense(3, name=name)(x)
    z = layers.Dense(2, name=name + "_2" + name)(y)
    model = keras.Model(x, [z, layers.Add(name="加" + name)([y, y])], name=name * 6)
    report = keras_rows(model)
    for width in (23, 31, 40, 47, 76, 90, 121):
        expected = oracle.summary_text(model, width)
        assert render_summary(report, width) == expected, f"line_length={width}"
        expected = oracle.summary_text(model, width, columns=max(80, width))
        assert render_summary(report, width, max(80, width)) == expected, f"COLUMNS={width}"


def random_model(rng: random.Random) -> Any:
    """A random valid graph over one time length: Dense, LSTM, merges of 2
    to 6 tensors, MHA, shared layers called again, auto or long names, one
    to three outputs; sometimes a plain chain (the 3-column layout)."""
    steps = rng.choice([None, 3, 5])
    width = rng.choice([4, 6])

    def name(prefix: str) -> str | None:
        if rng.random() < 0.6:
            return None
        letters = "abcdefghijklmnopqrstuvwxyz_" + ("0123456789" if rng.random() < 0.5 else "")
        return prefix + "".join(rng.choice(letters) for _ in range(rng.randint(1, 40)))

    chain = rng.random() < 0.25
    count = 1 if chain else rng.randint(1, 3)
    tensors = [keras.Input((steps, width), name=name("in_")) for _ in range(count)]
    inputs = list(tensors)
    shared: list[Any] = []
    kinds = ["dense", "lstm"] if chain else ["dense", "lstm", "merge", "mha", "again"]
    for _ in range(rng.randint(1, 9)):
        x = tensors[-1] if chain else rng.choice(tensors)
        kind = rng.choice(kinds)
        if kind == "dense":
            layer = layers.Dense(width, name=name("dense_"))
            shared.append(layer)
            y = layer(x)
        elif kind == "lstm":
            y = layers.LSTM(width, return_sequences=True, name=name("lstm_"))(x)
        elif kind == "merge":
            merge = rng.choice([layers.Add, layers.Concatenate, layers.Average, layers.Maximum])
            y = merge(name=name("merge_"))([rng.choice(tensors) for _ in range(rng.randint(2, 6))])
            if merge is layers.Concatenate:
                y = layers.Dense(width)(y)
        elif kind == "mha":
            mha = layers.MultiHeadAttention(rng.randint(1, 3), 2, name=name("mha_"))
            y = mha(x, rng.choice(tensors))
        else:
            y = rng.choice(shared)(x) if shared else layers.ReLU()(x)
        tensors.append(y)
    if chain:
        return keras.Model(inputs[0], tensors[-1], name=name("m_") or "functional")
    made = tensors[len(inputs) :]
    outputs = rng.sample(made, min(len(made), rng.randint(1, 3)))
    return keras.Model(inputs, outputs)  # inputs no output uses are rows too


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_as_keras_prints_them(seed: int) -> None:
    rng = random.Random(seed)
    model = random_model(rng)
    report = keras_rows(model)
    for width in [None, *rng.sample(range(21, 201), 4)]:  # 20 is too narrow
        columns = rng.choice([None, max(80, width or 0)])
        expected = oracle.summary_text(model, width, columns=columns)
        text = render_summary(report, width or 76, columns or 80)
        assert text == expected, f"line_length={width} COLUMNS={columns}"


def masks_into_merges() -> Any:
    """Masks combined by merge and attention layers: Keras's mask ops
    (``logical_or``, ``ones_like``, ``expand_dims``, ...) are rows too."""
    tokens = keras.Input((6,), name="tokens")
    series = keras.Input((6, 4), name="series")
    e = layers.Embedding(20, 4, mask_zero=True)(tokens)
    m = layers.Masking()(series)
    s = layers.Add()([e, m])
    c = layers.Concatenate()([e, m, s])
    a = layers.Attention()([c, c])
    return keras.Model([tokens, series], layers.LSTM(3)(a))


MODELS["masks_into_merges"] = masks_into_merges
SPECS["masks_into_merges"] = {
    "inputs": [{"name": "tokens", "shape": [6]}, {"name": "series", "shape": [6, 4]}],
    "layers": [
        {
            "type": "Embedding",
            "input_dim": 20,
            "output_dim": 4,
            "mask_zero": True,
            "inputs": "tokens",
        },
        {"type": "Masking", "inputs": "series"},
        {"type": "Add", "inputs": ["embedding", "masking"]},
        {"type": "Concatenate", "inputs": ["embedding", "masking", "add"]},
        {"type": "Attention", "inputs": ["concatenate", "concatenate"]},
        {"type": "LSTM", "units": 3},
    ],
}


@pytest.mark.parametrize("example", ["one_to_one", "many_to_one", "many_to_many"])
def test_sequential_summary_at_every_width(example: str) -> None:
    """The Sequential layout obeys the same widths (the seed's models, built
    by the worker's builder as the training jobs build them)."""
    from seqlab.examples import example_request
    from worker.builder import build_model

    spec = example_request(example)["model"]
    keras.backend.clear_session()
    model = build_model(spec)
    report = analyze(spec)
    for width in (16, 19, 27, 40, 58, 76, 80, 97, 140, 200):
        assert render_summary(report, width) == oracle.summary_text(model, width), width
        expected = oracle.summary_text(model, width, columns=max(80, width))
        assert render_summary(report, width, max(80, width)) == expected, width
    with pytest.raises(ValueError, match="Insufficient console width"):
        render_summary(report, 15)
