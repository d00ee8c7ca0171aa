"""The graph engine (``seqlab/graph.py``) against real Keras 3.15.

Each case is a compact graph spec and the same model written in plain Keras
code; the engine must report what Keras builds: ``model.layers`` (names,
classes, order), the summary rows of ``model.operations`` (InputLayers and
mask ops included) with their output shapes, params and ``Connected to``,
the trainable split, the totals, the inputs and outputs, and whether the
summary takes the Sequential-like layout. Invalid graphs must be refused
where Keras refuses them (or fails on the model's first call), with
Keras's words.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import keras_oracle as oracle
import pytest
from specs import ENCODER_DECODER
from specs import encoder_decoder

from seqlab import analyze
from seqlab import train_memory
from seqlab.errors import SpecError
from seqlab.graph import GraphReport


@pytest.fixture(scope="module")
def keras() -> Any:
    return oracle.import_keras()


def _ref(tensor: Any) -> str:
    h = tensor._keras_history
    return f"{h.operation.name}[{h.node_index}][{h.tensor_index}]"


def _shapes(tensors: Any) -> Any:
    flat = list(tensors) if isinstance(tensors, list | tuple) else [tensors]
    shapes = [tuple(t.shape) for t in flat]
    return shapes[0] if len(shapes) == 1 else shapes


def keras_facts(keras: Any, model: Any) -> dict[str, Any]:
    """What the engine must reproduce, read from a built Keras model."""
    nodes = {id(n) for depth in model._nodes_by_depth.values() for n in depth}
    rows = []
    for op in model.operations:
        connected = [_ref(t) for n in op._inbound_nodes if id(n) in nodes for t in n.input_tensors]
        shape = _shapes(op._inbound_nodes[-1].output_tensors)
        params = op.count_params() if isinstance(op, keras.layers.Layer) else 0
        rows.append((op.name, type(op).__name__, shape, params, connected))
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return {
        "layers": [(layer.name, type(layer).__name__) for layer in model.layers],
        "rows": rows,
        "total": model.count_params(),
        "trainable": trainable,
        "inputs": [(_ref(x).split("[")[0], tuple(x.shape)) for x in model.inputs],
        "outputs": [(_ref(x).split("[")[0], tuple(x.shape)) for x in model.outputs],
        "sequential_like": "Connected to" not in oracle.summary_text(model),
    }


def engine_facts(report: GraphReport) -> dict[str, Any]:
    return {
        "layers": [(layer.name, layer.type) for layer in report.layers],
        "rows": [tuple(row) for row in report.rows],
        "total": report.total_params,
        "trainable": report.trainable_params,
        "inputs": report.inputs,
        "outputs": report.outputs,
        "sequential_like": report.sequential_like,
    }


#: name → (spec, the model in plain Keras code: keras, layers → Model).
Builder = Callable[[Any, Any], Any]
CASES: dict[str, tuple[dict[str, Any], Builder]] = {}


def case(name: str, spec: dict[str, Any]) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        CASES[name] = (spec, fn)
        return fn

    return register


@case(
    "chain",
    {
        "inputs": [{"shape": [7, 3]}],
        "layers": [{"type": "LSTM", "units": 5}, {"type": "Dense", "units": 1}],
    },
)
def _chain(keras: Any, L: Any) -> Any:
    x = keras.Input((7, 3))
    return keras.Model(x, L.Dense(1)(L.LSTM(5)(x)))


@case("encoder_decoder", ENCODER_DECODER)
def _encoder_decoder(keras: Any, L: Any) -> Any:
    return encoder_decoder(keras)


@case(
    "named_inputs_shared_dense",
    {
        "name": "siamese",
        "inputs": [{"name": "left", "shape": [5]}, {"name": "right", "shape": [5]}],
        "layers": [
            {"type": "Dense", "units": 3, "name": "enc", "inputs": "left"},
            {"call": "enc", "inputs": "right"},
            {"type": "BatchNormalization", "inputs": "enc[1][0]"},
            {"type": "Dense", "units": 5, "trainable": False, "inputs": "enc[0][0]"},
        ],
        "outputs": ["batch_normalization", "dense"],
    },
)
def _siamese(keras: Any, L: Any) -> Any:
    a, b = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    enc = L.Dense(3, name="enc")
    x, y = enc(a), enc(b)
    n = L.BatchNormalization()(y)
    d = L.Dense(5, trainable=False)(x)
    return keras.Model([a, b], [n, d], name="siamese")


@case(
    "shared_lstm_dfs_order",
    {
        "inputs": [{"shape": [6, 4]}, {"shape": [9, 4]}],
        "layers": [
            {"type": "Dense", "units": 4, "inputs": "input_layer_1"},
            {"type": "LSTM", "units": 3, "inputs": "input_layer"},
            {"call": "lstm", "inputs": "dense"},
            {"type": "Dense", "units": 2, "inputs": "lstm[1][0]"},
        ],
        "outputs": ["dense_1", "lstm[0][0]"],
    },
)
def _shared_lstm(keras: Any, L: Any) -> Any:
    a, b = keras.Input((6, 4)), keras.Input((9, 4))
    d = L.Dense(4)(b)
    lstm = L.LSTM(3)
    x = lstm(a)
    y = lstm(d)
    return keras.Model([a, b], [L.Dense(2)(y), x])


@case(
    "unused_input",
    {
        "inputs": [{"shape": [3]}, {"shape": [4]}, {"shape": [3]}],
        "layers": [
            {"type": "Dense", "units": 2, "inputs": "input_layer_2"},
            {"type": "Dense", "units": 2, "inputs": "input_layer"},
        ],
        "outputs": "dense_1",
    },
)
def _unused(keras: Any, L: Any) -> Any:
    a, b, c = keras.Input((3,)), keras.Input((4,)), keras.Input((3,))
    L.Dense(2)(c)
    return keras.Model([a, b, c], L.Dense(2)(a))


@case(
    "embedding_mask_lstm",
    {
        "inputs": [{"shape": [6], "dtype": "int32"}],
        "layers": [
            {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
            {"type": "Dense", "units": 5},
            {"type": "LSTM", "units": 3, "return_sequences": True},
            {"type": "GRU", "units": 2},
        ],
    },
)
def _emb_mask(keras: Any, L: Any) -> Any:
    x = keras.Input((6,), dtype="int32")
    y = L.Embedding(10, 4, mask_zero=True)(x)
    y = L.LSTM(3, return_sequences=True)(L.Dense(5)(y))
    return keras.Model(x, L.GRU(2)(y))


@case(
    "masking_consumers",
    {
        "inputs": [{"shape": [6, 3]}],
        "layers": [
            {"type": "Masking"},
            {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2, "dtype": "float16"}},
            {"type": "BatchNormalization"},
            {"type": "Bidirectional", "layer": {"type": "GRU", "units": 2}},
        ],
    },
)
def _masking(keras: Any, L: Any) -> Any:
    x = keras.Input((6, 3))
    y = L.Masking()(x)
    y = L.TimeDistributed(L.Dense(2, dtype="float16"))(y)
    y = L.BatchNormalization()(y)
    return keras.Model(x, L.Bidirectional(L.GRU(2))(y))


@case(
    "mask_dropped_and_unused",
    {
        "inputs": [{"shape": [6, 4]}],
        "layers": [
            {"type": "Masking"},
            {"type": "Conv1D", "filters": 3, "kernel_size": 1},
            {"type": "LSTM", "units": 2},
            {"type": "Dense", "units": 2, "name": "any"},
        ],
    },
)
def _mask_dropped(keras: Any, L: Any) -> Any:
    x = keras.Input((6, 4))
    y = L.Masking()(x)
    y = L.LSTM(2)(L.Conv1D(3, 1)(y))
    return keras.Model(x, L.Dense(2, name="any")(y))


@case(
    "mask_into_state_call_and_gap",
    {
        "inputs": [{"shape": [6]}],
        "layers": [
            {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
            {
                "type": "LSTM",
                "units": 3,
                "return_sequences": True,
                "return_state": True,
            },
            {
                "type": "LSTM",
                "units": 3,
                "return_sequences": True,
                "inputs": "lstm[0][0]",
                "initial_state": ["lstm[0][1]", "lstm[0][2]"],
            },
            {"type": "GlobalAveragePooling1D"},
        ],
    },
)
def _mask_state(keras: Any, L: Any) -> Any:
    x = keras.Input((6,))
    y = L.Embedding(10, 4, mask_zero=True)(x)
    s, h, c = L.LSTM(3, return_sequences=True, return_state=True)(y)
    z = L.LSTM(3, return_sequences=True)(s, initial_state=[h, c])
    return keras.Model(x, L.GlobalAveragePooling1D()(z))


@case(
    "bidirectional_states",
    {
        "inputs": [{"shape": [5, 3]}, {"shape": [4, 2]}],
        "layers": [
            {
                "type": "Bidirectional",
                "layer": {"type": "LSTM", "units": 4, "return_state": True},
                "inputs": "input_layer",
            },
            {
                "type": "Bidirectional",
                "layer": {"type": "LSTM", "units": 4, "return_sequences": True},
                "inputs": "input_layer_1",
                "initial_state": [
                    "bidirectional[0][1]",
                    "bidirectional[0][2]",
                    "bidirectional[0][3]",
                    "bidirectional[0][4]",
                ],
            },
        ],
        "outputs": ["bidirectional_1", "bidirectional[0][0]"],
    },
)
def _bidi_states(keras: Any, L: Any) -> Any:
    a, b = keras.Input((5, 3)), keras.Input((4, 2))
    out, *states = L.Bidirectional(L.LSTM(4, return_state=True))(a)
    y = L.Bidirectional(L.LSTM(4, return_sequences=True))(b, initial_state=states)
    return keras.Model([a, b], [y, out])


@case(
    "frozen_and_batch",
    {
        "inputs": [{"shape": [4, 3], "batch_size": 8}],
        "layers": [
            {"type": "Conv1D", "filters": 2, "kernel_size": 2, "trainable": False},
            {"type": "LayerNormalization"},
            {"type": "Flatten"},
            {"type": "Dense", "units": 1},
        ],
        "outputs": ["dense"],
    },
)
def _frozen(keras: Any, L: Any) -> Any:
    x = keras.Input((4, 3), batch_size=8)
    y = L.Conv1D(2, 2, trainable=False)(x)
    y = L.Dense(1)(L.Flatten()(L.LayerNormalization()(y)))
    return keras.Model(x, [y])


@case(
    "shared_twice_same_input",
    {
        "inputs": [{"shape": [5, 2]}],
        "layers": [
            {"type": "Dense", "units": 2},
            {"call": "dense"},
            {"call": "dense"},
        ],
    },
)
def _shared_chain(keras: Any, L: Any) -> Any:
    x = keras.Input((5, 2))
    d = L.Dense(2)
    return keras.Model(x, d(d(d(x))))


@case(
    "dfs_order_add",
    {
        "inputs": [{"name": "x", "shape": [4]}],
        "layers": [
            {"type": "Dense", "units": 3, "name": "first", "inputs": "x"},
            {"type": "Dense", "units": 3, "name": "third", "inputs": "x"},
            {"type": "Dense", "units": 3, "name": "second", "inputs": "third"},
            {"type": "Add", "inputs": ["first", "second"]},
        ],
    },
)
def _dfs_add(keras: Any, L: Any) -> Any:
    x = keras.Input((4,), name="x")
    first, second, third = (
        L.Dense(3, name="first"),
        L.Dense(3, name="second"),
        L.Dense(3, name="third"),
    )
    return keras.Model(x, L.Add()([first(x), second(third(x))]))


@case(
    "inputs_listed_in_other_order",
    {
        "inputs": [{"name": "a", "shape": [3]}, {"name": "b", "shape": [3]}],
        "layers": [{"type": "Subtract", "name": "s", "inputs": ["b", "a"]}],
    },
)
def _b_a(keras: Any, L: Any) -> Any:
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    return keras.Model([a, b], L.Subtract(name="s")([b, a]))


@case(
    "input_after_the_denses",
    {
        "inputs": [{"shape": [3]}, {"shape": [4]}, {"shape": [2]}],
        "layers": [
            {"type": "Dense", "units": 2, "inputs": "input_layer"},
            {"type": "Dense", "units": 2, "inputs": "input_layer_1"},
            {"type": "Add", "inputs": ["dense", "dense_1", "input_layer_2"]},
            {"type": "Dense", "units": 1},
        ],
    },
)
def _add_three(keras: Any, L: Any) -> Any:
    a, b, c = keras.Input((3,)), keras.Input((4,)), keras.Input((2,))
    y = L.Add()([L.Dense(2)(a), L.Dense(2)(b), c])
    return keras.Model([a, b, c], L.Dense(1)(y))


@case(
    "mha_keyword_call",
    {
        "inputs": [
            {"name": "q", "shape": [5, 8]},
            {"name": "v", "shape": [6, 4]},
            {"name": "k", "shape": [6, 3]},
        ],
        "layers": [
            {
                "type": "MultiHeadAttention",
                "num_heads": 2,
                "key_dim": 4,
                "name": "mha",
                "inputs": {"query": "q", "value": "v", "key": "k"},
            }
        ],
    },
)
def _mha_kw(keras: Any, L: Any) -> Any:
    q, v, k = (
        keras.Input((5, 8), name="q"),
        keras.Input((6, 4), name="v"),
        keras.Input((6, 3), name="k"),
    )
    return keras.Model([q, v, k], L.MultiHeadAttention(2, 4, name="mha")(query=q, value=v, key=k))


@case(
    "attention_decoder",
    {
        "inputs": [{"name": "source", "shape": [7, 3]}, {"name": "target", "shape": [5, 4]}],
        "layers": [
            {
                "type": "LSTM",
                "units": 8,
                "return_sequences": True,
                "return_state": True,
                "name": "encoder",
                "inputs": "source",
            },
            {
                "type": "LSTM",
                "units": 8,
                "return_sequences": True,
                "name": "decoder",
                "inputs": "target",
                "initial_state": ["encoder[0][1]", "encoder[0][2]"],
            },
            {
                "type": "Attention",
                "inputs": ["decoder", "encoder"],
                "use_causal_mask": False,
                "return_attention_scores": True,
            },
            {"type": "Concatenate", "inputs": ["decoder", "attention[0][0]"]},
            {"type": "Dense", "units": 2},
        ],
        "outputs": ["dense", "attention[0][1]"],
    },
)
def _attention_decoder(keras: Any, L: Any) -> Any:
    s, t = keras.Input((7, 3), name="source"), keras.Input((5, 4), name="target")
    enc, h, c = L.LSTM(8, return_sequences=True, return_state=True, name="encoder")(s)
    dec = L.LSTM(8, return_sequences=True, name="decoder")(t, initial_state=[h, c])
    att, scores = L.Attention()([dec, enc], use_causal_mask=False, return_attention_scores=True)
    y = L.Dense(2)(L.Concatenate()([dec, att]))
    return keras.Model([s, t], [y, scores])


@case(
    "transformer_block",
    {
        "inputs": [{"shape": [10], "dtype": "int32"}],
        "layers": [
            {"type": "Embedding", "input_dim": 50, "output_dim": 16},
            {
                "type": "MultiHeadAttention",
                "num_heads": 2,
                "key_dim": 8,
                "inputs": ["embedding", "embedding"],
                "use_causal_mask": True,
            },
            {"type": "Add", "inputs": ["embedding", "multi_head_attention"]},
            {"type": "LayerNormalization"},
            {"type": "Dense", "units": 32, "activation": "relu"},
            {"type": "Dense", "units": 16},
            {"type": "Add", "inputs": ["layer_normalization", "dense_1"]},
            {"type": "LayerNormalization"},
            {"type": "GlobalAveragePooling1D"},
            {"type": "Dense", "units": 3, "activation": "softmax"},
        ],
    },
)
def _transformer(keras: Any, L: Any) -> Any:
    x = keras.Input((10,), dtype="int32")
    e = L.Embedding(50, 16)(x)
    a = L.MultiHeadAttention(2, 8)(e, e, use_causal_mask=True)
    n = L.LayerNormalization()(L.Add()([e, a]))
    f = L.Dense(32, activation="relu")(n)
    f = L.Dense(16)(f)
    n2 = L.LayerNormalization()(L.Add()([n, f]))
    return keras.Model(x, L.Dense(3, activation="softmax")(L.GlobalAveragePooling1D()(n2)))


@case(
    "siamese_shared_lstm_dot",
    {
        "inputs": [{"shape": [6, 3]}, {"shape": [6, 3]}],
        "layers": [
            {"type": "LSTM", "units": 4, "inputs": "input_layer", "name": "encoder"},
            {"call": "encoder", "inputs": "input_layer_1"},
            {
                "type": "Dot",
                "axes": 1,
                "normalize": True,
                "inputs": ["encoder[0][0]", "encoder[1][0]"],
            },
            {"type": "Subtract", "inputs": ["encoder[0][0]", "encoder[1][0]"]},
            {"type": "Concatenate", "inputs": ["dot", "subtract"]},
            {"type": "Dense", "units": 1, "activation": "sigmoid"},
        ],
    },
)
def _siamese_lstm(keras: Any, L: Any) -> Any:
    a, b = keras.Input((6, 3)), keras.Input((6, 3))
    enc = L.LSTM(4, name="encoder")
    x, y = enc(a), enc(b)
    d = L.Dot(axes=1, normalize=True)([x, y])
    s = L.Subtract()([x, y])
    return keras.Model([a, b], L.Dense(1, activation="sigmoid")(L.Concatenate()([d, s])))


@case(
    "additive_attention_relu_shared_embedding",
    {
        "inputs": [{"shape": [5]}, {"shape": [7]}],
        "layers": [
            {"type": "Embedding", "input_dim": 20, "output_dim": 6, "inputs": "input_layer"},
            {"call": "embedding", "inputs": "input_layer_1"},
            {"type": "AdditiveAttention", "inputs": ["embedding[0][0]", "embedding[1][0]"]},
            {"type": "ReLU", "max_value": 6.0},
            {"type": "Maximum", "inputs": ["re_lu", "embedding[0][0]"]},
            {"type": "GlobalMaxPooling1D"},
        ],
    },
)
def _additive(keras: Any, L: Any) -> Any:
    a, b = keras.Input((5,)), keras.Input((7,))
    emb = L.Embedding(20, 6)
    x, y = emb(a), emb(b)
    r = L.AdditiveAttention()([x, y])
    r = L.ReLU(max_value=6.0)(r)
    m = L.Maximum()([r, x])
    return keras.Model([a, b], L.GlobalMaxPooling1D()(m))


@case(
    "mixed_precision_mask_not_recorded",
    {
        "inputs": [{"shape": [6]}],
        "layers": [
            {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
            {"type": "Dense", "units": 5, "dtype": "mixed_float16"},
            {"type": "LSTM", "units": 3, "return_sequences": True},
            {"type": "LSTM", "units": 2, "dtype": "mixed_float16"},
        ],
    },
)
def _mixed(keras: Any, L: Any) -> Any:
    x = keras.Input((6,))
    y = L.Embedding(10, 4, mask_zero=True)(x)
    y = L.Dense(5, dtype="mixed_float16")(y)
    y = L.LSTM(3, return_sequences=True)(y)
    return keras.Model(x, L.LSTM(2, dtype="mixed_float16")(y))


@case(
    "bidirectional_no_merge_masks_both",
    {
        "inputs": [{"shape": [6]}],
        "layers": [
            {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
            {
                "type": "Bidirectional",
                "layer": {"type": "GRU", "units": 3, "return_sequences": True},
                "merge_mode": None,
            },
            {"type": "SimpleRNN", "units": 2, "inputs": "bidirectional[0][1]"},
            {"type": "SimpleRNN", "units": 2, "inputs": "bidirectional[0][0]"},
        ],
        "outputs": ["simple_rnn", "simple_rnn_1"],
    },
)
def _bidi_none(keras: Any, L: Any) -> Any:
    x = keras.Input((6,))
    y = L.Embedding(10, 4, mask_zero=True)(x)
    f, b = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=None)(y)
    return keras.Model(x, [L.SimpleRNN(2)(b), L.SimpleRNN(2)(f)])


@case(
    "unreachable_branch_and_repeated_output",
    {
        "inputs": [{"shape": [4]}],
        "layers": [
            # A name given twice is refused even outside the model (README):
            # the unreachable branch has a name of its own.
            {"type": "Dense", "units": 3, "name": "same"},
            {"type": "Dense", "units": 3, "name": "other", "inputs": "input_layer"},
            {"type": "Dense", "units": 2, "inputs": "same[0][0]"},
        ],
        "outputs": ["dense", "dense", "input_layer"],
    },
)
def _unreachable(keras: Any, L: Any) -> Any:
    x = keras.Input((4,))
    y = L.Dense(3, name="same")(x)
    L.Dense(3, name="other")(x)
    z = L.Dense(2)(y)
    return keras.Model(x, [z, z, x])


@case(
    "masks_through_shared_layer_and_gap",
    {
        "inputs": [{"shape": [6, 3]}, {"shape": [6, 3]}],
        "layers": [
            {"type": "Masking", "inputs": "input_layer"},
            {"type": "Dense", "units": 4},
            {"call": "dense", "inputs": "input_layer_1"},
            {"type": "GlobalAveragePooling1D", "inputs": "dense[0][0]"},
            {"type": "GlobalAveragePooling1D", "inputs": "dense[1][0]"},
            {
                "type": "Concatenate",
                "inputs": ["global_average_pooling1d", "global_average_pooling1d_1"],
            },
        ],
    },
)
def _mask_shared(keras: Any, L: Any) -> Any:
    a, b = keras.Input((6, 3)), keras.Input((6, 3))
    m = L.Masking()(a)
    d = L.Dense(4)
    x, y = d(m), d(b)
    p, q = L.GlobalAveragePooling1D()(x), L.GlobalAveragePooling1D()(y)
    return keras.Model([a, b], L.Concatenate()([p, q]))


@case(
    "masks_into_attention_layers",
    {
        "inputs": [{"shape": [6]}, {"shape": [6, 4]}],
        "layers": [
            {
                "type": "Embedding",
                "input_dim": 10,
                "output_dim": 4,
                "mask_zero": True,
                "inputs": "input_layer",
            },
            {
                "type": "MultiHeadAttention",
                "num_heads": 2,
                "key_dim": 3,
                "inputs": ["embedding", "embedding"],
            },
            {"type": "LSTM", "units": 2, "return_sequences": True},
            {
                "type": "MultiHeadAttention",
                "num_heads": 1,
                "key_dim": 2,
                "inputs": {"query": "input_layer_1", "value": "embedding"},
                "return_attention_scores": True,
            },
            {"type": "GRU", "units": 2, "inputs": "multi_head_attention_1[0][0]"},
            {"type": "Attention", "inputs": ["embedding", "input_layer_1"]},
            {"type": "SimpleRNN", "units": 2},
            {"type": "AdditiveAttention", "inputs": ["input_layer_1", "embedding"]},
            {"type": "SimpleRNN", "units": 2},
            {"type": "Dropout", "rate": 0.1, "inputs": "lstm"},
        ],
        "outputs": [
            "dropout_2",
            "gru",
            "simple_rnn",
            "simple_rnn_1",
            "multi_head_attention_1[0][1]",
        ],
    },
)
def _masks_attention(keras: Any, L: Any) -> Any:
    x, y = keras.Input((6,)), keras.Input((6, 4))
    e = L.Embedding(10, 4, mask_zero=True)(x)
    a = L.MultiHeadAttention(2, 3)(e, e)
    a = L.LSTM(2, return_sequences=True)(a)
    b, scores = L.MultiHeadAttention(1, 2)(query=y, value=e, return_attention_scores=True)
    b = L.GRU(2)(b)
    c = L.SimpleRNN(2)(L.Attention()([e, y]))
    d = L.AdditiveAttention()([y, e])
    d = L.SimpleRNN(2)(d)
    return keras.Model([x, y], [L.Dropout(0.1)(a), b, c, d, scores])


@case(
    "masks_into_merges",
    {
        "inputs": [{"shape": [6]}, {"shape": [6, 4]}, {"shape": [6, 3]}],
        "layers": [
            {
                "type": "Embedding",
                "input_dim": 10,
                "output_dim": 4,
                "mask_zero": True,
                "inputs": "input_layer",
            },
            {
                "type": "Embedding",
                "input_dim": 10,
                "output_dim": 4,
                "mask_zero": True,
                "inputs": "input_layer",
            },
            {"type": "Add", "inputs": ["embedding", "embedding_1", "embedding"]},
            {"type": "LSTM", "units": 2},
            {"type": "Multiply", "inputs": ["embedding", "input_layer_1"]},
            {"type": "LSTM", "units": 2},
            {"type": "Concatenate", "inputs": ["input_layer_1", "embedding"]},
            {"type": "GRU", "units": 2},
            {"type": "Masking", "inputs": "input_layer_2"},
            {"type": "Concatenate", "axis": 1, "inputs": ["masking", "masking"]},
            {"type": "LSTM", "units": 2},
            {"type": "Dot", "axes": 2, "inputs": ["embedding", "embedding_1"]},
            {"type": "LSTM", "units": 2},
            {"type": "Concatenate", "inputs": ["lstm", "lstm_1", "gru", "lstm_2", "lstm_3"]},
        ],
    },
)
def _masks_merges(keras: Any, L: Any) -> Any:
    x, y, z = keras.Input((6,)), keras.Input((6, 4)), keras.Input((6, 3))
    e = L.Embedding(10, 4, mask_zero=True)(x)
    f = L.Embedding(10, 4, mask_zero=True)(x)
    a = L.Add()([e, f, e])
    a = L.LSTM(2)(a)
    b = L.Multiply()([e, y])
    b = L.LSTM(2)(b)
    c = L.Concatenate()([y, e])
    c = L.GRU(2)(c)
    m = L.Masking()(z)
    d = L.Concatenate(axis=1)([m, m])
    d = L.LSTM(2)(d)
    g = L.Dot(axes=2)([e, f])
    g = L.LSTM(2)(g)
    return keras.Model([x, y, z], L.Concatenate()([a, b, c, d, g]))


@case(
    "wrapper_dtype_is_its_own",
    {
        "inputs": [{"shape": [6], "dtype": "int32"}],
        "layers": [
            {"type": "Embedding", "input_dim": 14, "output_dim": 2, "mask_zero": True},
            {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}, "dtype": "float16"},
            {"type": "BatchNormalization"},
        ],
    },
)
def _wrapper_dtype(keras: Any, L: Any) -> Any:
    x = keras.Input((6,), dtype="int32")
    y = L.Embedding(14, 2, mask_zero=True)(x)
    y = L.TimeDistributed(L.Dense(2), dtype="float16")(y)
    return keras.Model(x, L.BatchNormalization()(y))


@case(
    "masking_of_another_dtype_casts_its_input",
    {
        "inputs": [{"shape": [None, 2]}],
        "layers": [
            # A float16 LayerNormalization does not cast its float32 input
            # (autocast=False); each Dense casts (`cast`, `cast_1`).
            {"type": "LayerNormalization", "dtype": "float16"},
            {"type": "Dense", "units": 2},
            {"type": "Dense", "units": 2, "dtype": "float16"},
            # float32 Masking on a float16 tensor: not_equal(cast_2(x)).
            {"type": "Masking", "mask_value": -1.0},
            {"type": "Dense", "units": 2},
            {"type": "LSTM", "units": 3},
        ],
    },
)
def _masking_cast(keras: Any, L: Any) -> Any:
    x = keras.Input((None, 2))
    y = L.LayerNormalization(dtype="float16")(x)
    y = L.Dense(2)(y)
    y = L.Dense(2, dtype="float16")(y)
    y = L.Masking(-1.0)(y)
    y = L.Dense(2)(y)
    return keras.Model(x, L.LSTM(3)(y))


@pytest.mark.parametrize("name", sorted(CASES))
def test_graph_matches_keras(keras: Any, name: str) -> None:
    spec, build = CASES[name]
    keras.backend.clear_session()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build(keras, keras.layers)
    expected = keras_facts(keras, model)
    report = analyze(spec)
    assert isinstance(report, GraphReport)
    got = engine_facts(report)
    assert got == expected
    assert report.name == model.name
    assert report.input_shape == model.input_shape
    assert report.output_shape == model.output_shape


def test_to_dict_and_counts() -> None:
    report = analyze(CASES["encoder_decoder"][0])
    out = report.to_dict()
    assert out["input_shape"] == [[None, 7, 3], [None, 5, 4]]
    assert out["output_shape"] == [None, 5, 2]
    assert out["inputs"] == [
        {"name": "input_layer", "shape": [None, 7, 3]},
        {"name": "input_layer_1", "shape": [None, 5, 4]},
    ]
    assert out["outputs"] == [{"name": "dense", "shape": [None, 5, 2]}]
    lstm_1 = out["layers"][3]
    assert lstm_1["connected_to"] == ["input_layer_1[0][0]", "lstm[0][1]", "lstm[0][2]"]
    assert out["total_params"] == 818
    counts = report.counts()
    assert [layer["name"] for layer in counts["layers"]] == [
        "input_layer",
        "input_layer_1",
        "lstm",
        "lstm_1",
        "dense",
    ]


def test_sequential_spec_unchanged() -> None:
    report = analyze({"input_shape": [1, 1], "layers": [{"type": "LSTM", "units": 5}]})
    assert not isinstance(report, GraphReport)
    assert [layer.name for layer in report.layers] == ["lstm"]


def test_shared_layer_macs_count_every_call() -> None:
    report = analyze(CASES["shared_twice_same_input"][0])
    dense = report.layers[1]
    assert dense.params == 6
    assert dense.macs == 3 * 5 * 2 * 2
    assert report.macs == 3 * 5 * 2 * 2


def test_train_memory_counts_shared_weights_once() -> None:
    report = analyze(CASES["shared_twice_same_input"][0])
    memory = train_memory(report, batch_size=1)
    assert memory.weights == 6 * 4
    # Input 10 values, target 3 × 10, and each of three calls keeps its 10.
    assert memory.activations == (10 + 3 * 10 + 3 * 10) * 4


#: Graphs Keras refuses while building: (spec, path, Keras's words).
REFUSED = {
    "duplicate_name": (
        {
            "inputs": [{"shape": [3]}],
            "layers": [
                {"type": "Dense", "units": 2, "name": "x"},
                {"type": "Dense", "units": 2, "name": "x"},
            ],
        },
        "layers.1.name",
        'The name "x" is used 2 times in the model. All operation names should be unique.',
    ),
    "duplicate_input_name": (
        {
            "inputs": [{"shape": [3]}],
            "layers": [{"type": "Dense", "units": 2, "name": "input_layer"}],
        },
        "layers.0.name",
        'The name "input_layer" is used 2 times in the model.',
    ),
    "shared_dense_other_features": (
        {
            "inputs": [{"shape": [5]}, {"shape": [6]}],
            "layers": [
                {"type": "Dense", "units": 3, "inputs": "input_layer"},
                {"call": "dense", "inputs": "input_layer_1"},
            ],
            "outputs": ["dense[0][0]", "dense[1][0]"],
        },
        "layers.1",
        "Input 0 with name 'None' of layer 'dense' is incompatible with the layer: "
        "expected axis -1 of input shape to have value 5, but received input with "
        "shape (None, 6)",
    ),
    "shared_bn_other_rank": (
        {
            "inputs": [{"shape": [4, 5]}, {"shape": [5]}],
            "layers": [
                {"type": "BatchNormalization", "inputs": "input_layer"},
                {"call": "batch_normalization", "inputs": "input_layer_1"},
            ],
            "outputs": ["batch_normalization[0][0]", "batch_normalization[1][0]"],
        },
        "layers.1",
        "expected ndim=3, found ndim=2. Full shape received: (None, 5)",
    ),
    "shared_lstm_rank": (
        {
            "inputs": [{"shape": [4, 5]}, {"shape": [5]}],
            "layers": [
                {"type": "LSTM", "units": 3, "inputs": "input_layer"},
                {"call": "lstm", "inputs": "input_layer_1"},
            ],
            "outputs": ["lstm[0][0]", "lstm[1][0]"],
        },
        "layers.1",
        "expected ndim=3, found ndim=2. Full shape received: (None, 5)",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_like_keras(name: str) -> None:
    spec, path, words = REFUSED[name]
    with pytest.raises(SpecError) as error:
        analyze(spec)
    assert error.value.path == path
    assert words in error.value.message


def _keras_predict_error(keras: Any, build: Builder, shapes: list[tuple[int, ...]]) -> str | None:
    import numpy as np

    keras.backend.clear_session()
    model = build(keras, keras.layers)
    try:
        model.predict([np.zeros((2, *s)) for s in shapes], verbose=0)
    except Exception as error:  # noqa: BLE001 - any failure is Keras's verdict
        return str(error)
    return None


STATE_CASES = {
    # (layer spec, states' sizes, Keras layer, whether predict fails)
    "lstm_ok": ({"type": "LSTM", "units": 3}, [3, 3], False),
    "lstm_one": ({"type": "LSTM", "units": 3}, [3], True),
    "lstm_three": ({"type": "LSTM", "units": 3}, [3, 3, 3], True),
    "lstm_size": ({"type": "LSTM", "units": 3}, [3, 4], True),
    "gru_two": ({"type": "GRU", "units": 3}, [3, 3], False),
    "gru_size": ({"type": "GRU", "units": 3}, [4], True),
    "simple_rnn_two": ({"type": "SimpleRNN", "units": 3}, [3, 3], True),
    "bidi_four": (
        {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 3}},
        [3, 3, 3, 3],
        False,
    ),
    "bidi_two": (
        {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 3}},
        [3, 3],
        True,
    ),
    "bidi_gru_two": (
        {"type": "Bidirectional", "layer": {"type": "GRU", "units": 3}},
        [3, 3],
        False,
    ),
}


def _keras_layer(keras: Any, spec: dict[str, Any]) -> Any:
    args = {k: v for k, v in spec.items() if k != "type"}
    if "layer" in args:
        args["layer"] = _keras_layer(keras, args["layer"])
    return getattr(keras.layers, spec["type"])(**args)


@pytest.mark.parametrize("name", sorted(STATE_CASES))
def test_initial_state_refused_where_keras_fails_to_run(keras: Any, name: str) -> None:
    layer_spec, sizes, fails = STATE_CASES[name]
    n = len(sizes)
    spec = {
        "inputs": [{"shape": [4, 5]}] + [{"shape": [s]} for s in sizes],
        "layers": [
            {
                **layer_spec,
                "inputs": "input_layer",
                "initial_state": [f"input_layer_{j + 1}" for j in range(n)],
            }
        ],
    }

    def build(keras: Any, L: Any) -> Any:
        x = keras.Input((4, 5))
        states = [keras.Input((s,)) for s in sizes]
        return keras.Model([x, *states], _keras_layer(keras, layer_spec)(x, initial_state=states))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras_error = _keras_predict_error(keras, build, [(4, 5), *[(s,) for s in sizes]])
    assert (keras_error is not None) == fails, keras_error
    if fails:
        with pytest.raises(SpecError) as error:
            analyze(spec)
        assert error.value.path.startswith("layers.0.initial_state")
        assert "fails on its first call" in error.value.message
    else:
        analyze(spec)


def test_unknown_reference_names_the_path() -> None:
    spec = {
        "inputs": [{"shape": [3]}],
        "layers": [{"type": "Dense", "units": 2}, {"type": "Dense", "units": 2, "inputs": "nope"}],
    }
    with pytest.raises(SpecError) as error:
        analyze(spec)
    assert error.value.path == "layers.1.inputs"
    assert error.value.message.startswith("Unknown layer: nope")


def test_reference_out_of_range() -> None:
    spec = {
        "inputs": [{"shape": [4, 3]}],
        "layers": [
            {"type": "LSTM", "units": 2},
            {"type": "Dense", "units": 2, "inputs": "lstm[0][1]"},
        ],
    }
    with pytest.raises(SpecError) as error:
        analyze(spec)
    assert error.value.path == "layers.1.inputs"


def test_initial_state_on_a_layer_without_it() -> None:
    spec = {
        "inputs": [{"shape": [3]}],
        "layers": [{"type": "Dense", "units": 2, "initial_state": ["input_layer"]}],
    }
    with pytest.raises(SpecError) as error:
        analyze(spec)
    assert error.value.path == "layers.0.initial_state"
    assert "unexpected keyword argument 'initial_state'" in error.value.message


def _shared_lstm_spec(used: bool) -> dict[str, Any]:
    return {
        "inputs": [{"shape": [4, 5]}, {"shape": [4, 6]}],
        "layers": [
            {"type": "LSTM", "units": 3, "inputs": "input_layer"},
            {"call": "lstm", "inputs": "input_layer_1"},
        ],
        "outputs": ["lstm[0][0]", "lstm[1][0]"] if used else ["lstm[0][0]"],
    }


@pytest.mark.parametrize("used", [True, False])
def test_shared_layer_on_other_features_fails_on_first_call(keras: Any, used: bool) -> None:
    def build(keras: Any, L: Any) -> Any:
        a, b = keras.Input((4, 5)), keras.Input((4, 6))
        lstm = L.LSTM(3)
        x, y = lstm(a), lstm(b)
        return keras.Model([a, b], [x, y] if used else [x])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras_error = _keras_predict_error(keras, build, [(4, 5), (4, 6)])
    assert (keras_error is not None) == used
    if used:
        with pytest.raises(SpecError) as error:
            analyze(_shared_lstm_spec(used))
        assert error.value.path == "layers.1.inputs"
        assert "fails on its first call" in error.value.message
    else:
        report = analyze(_shared_lstm_spec(used))
        assert report.total_params == 4 * ((5 + 3) * 3 + 3)


def test_a_deep_chain() -> None:
    layers = [{"type": "Dense", "units": 2} for _ in range(500)]
    report = analyze({"inputs": [{"shape": [2]}], "layers": layers})
    assert len(report.layers) == 501
    assert report.layers[-1].name == "dense_499"
    assert report.sequential_like
    assert report.total_params == 500 * 6


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        (
            {"inputs": [{"shape": [3]}, {"shape": [3]}], "layers": [{"type": "Dense", "units": 1}]},
            "layers.0.inputs",
        ),
        (
            {"inputs": [{"shape": [3]}], "layers": [{"call": "input_layer"}]},
            "layers.0.call",
        ),
        (
            {
                "inputs": [{"shape": [3]}],
                "layers": [{"type": "Dense", "units": 1}, {"call": "dense", "units": 4}],
            },
            "layers.1.units",
        ),
        (
            {"inputs": [{"shape": [3]}], "layers": [{"type": "Dense", "units": 1}], "outputs": "x"},
            "outputs",
        ),
        (
            {
                "inputs": [{"shape": [3]}],
                "layers": [{"type": "Dense", "units": 1}],
                "outputs": ["dense", "dense[1][0]"],
            },
            "outputs.1",
        ),
        (
            {
                "inputs": [{"shape": [3]}],
                "layers": [{"type": "Dense", "units": 1, "inputs": ["input_layer", "input_layer"]}],
            },
            "layers.0.inputs",
        ),
        (
            {
                "inputs": [{"shape": [4, 3]}],
                "layers": [{"type": "Add", "inputs": ["input_layer", "nope"]}],
            },
            "layers.0.inputs.1",
        ),
    ],
)
def test_refusals_name_their_path(spec: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecError) as error:
        analyze(spec)
    assert error.value.path == path


def test_bidirectional_with_a_wider_backward_layer_fails_to_run(keras: Any) -> None:
    def build(keras: Any, L: Any) -> Any:
        x = keras.Input((5, 3))
        y = L.Bidirectional(L.LSTM(4), backward_layer=L.LSTM(2, go_backwards=True))(x)
        return keras.Model(x, L.Dense(1)(y))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _keras_predict_error(keras, build, [(5, 3)]) is not None
    spec = {
        "inputs": [{"shape": [5, 3]}],
        "layers": [
            {
                "type": "Bidirectional",
                "layer": {"type": "LSTM", "units": 4},
                "backward_layer": {"type": "LSTM", "units": 2, "go_backwards": True},
            },
            {"type": "Dense", "units": 1},
        ],
    }
    with pytest.raises(SpecError) as error:
        analyze(spec)
    assert error.value.path == "layers.0.inputs"
    assert "fails on its first call" in error.value.message


@pytest.mark.parametrize("form", ["graph", "sequential"])
@pytest.mark.parametrize(
    ("make_mask", "conv"),
    [
        ("Masking", {"kernel_size": [5]}),  # length 6 → 2: fails
        ("Masking", {"kernel_size": [3], "strides": [2], "padding": "same"}),  # 6 → 3
        ("Masking", {"kernel_size": [3], "padding": "same"}),  # 6 → 6: runs
        ("Masking", {"kernel_size": [1]}),  # 6 → 6: runs
        ("Embedding", {"kernel_size": [2], "strides": [3]}),  # 6 → 2: fails
        ("Bidirectional", {"kernel_size": [5]}),  # both directions get the mask
    ],
)
def test_mask_into_conv_lstm1d_that_changes_the_length(
    keras: Any, form: str, make_mask: str, conv: dict[str, Any]
) -> None:
    """Keras builds a masked ConvLSTM1D whose output length differs from its
    input's, and fails on the first call (the mask keeps the input's
    length): the engine refuses exactly those, on both paths."""
    import numpy as np

    first: dict[str, Any] = {"type": "Masking"}
    shape = [3, 6, 4]
    dtype = "float32"
    if make_mask == "Embedding":
        first = {"type": "Embedding", "input_dim": 5, "output_dim": 4, "mask_zero": True}
        shape, dtype = [3, 6], "int32"
    layer: dict[str, Any] = {"type": "ConvLSTM1D", "filters": 2, **conv}
    if make_mask == "Bidirectional":
        layer = {"type": "Bidirectional", "layer": layer}
    layers = [first, {"type": "LayerNormalization"}, layer]
    if form == "graph":
        spec: dict[str, Any] = {"inputs": [{"shape": shape, "dtype": dtype}], "layers": layers}
    else:
        spec = {"input_shape": shape, "input_dtype": dtype, "layers": layers}
    try:
        analyze(spec)
        engine = None
    except SpecError as error:
        engine = error.message

    keras.backend.clear_session()
    L = keras.layers
    made = [
        L.Masking() if make_mask != "Embedding" else L.Embedding(5, 4, mask_zero=True),
        L.LayerNormalization(),
    ]
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in conv.items()}
    cell = L.ConvLSTM1D(2, **args)
    made.append(L.Bidirectional(cell) if make_mask == "Bidirectional" else cell)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = keras.Sequential([keras.Input(tuple(shape), dtype=dtype), *made])
        try:
            model(np.ones((2, *shape), dtype=dtype))
            keras_fails = False
        except Exception:  # noqa: BLE001 - any failure of the first call
            keras_fails = True
    assert (engine is not None) == keras_fails, engine
    if engine is not None:
        assert "must be broadcastable [Op:SelectV2]" in engine
        assert "fails on its first call" in engine
