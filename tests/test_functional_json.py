"""``model.to_json()`` of real Keras Functional models → the compact graph form.

Each model is built in Keras (the oracle), serialized, and read by
``seqlab.from_keras_json``; the entries must be the program that rebuilds
it: the same layers, calls, tensors, call options and outputs. Tampered
documents must fail where ``keras.models.model_from_json`` fails, with its
words.
"""

from __future__ import annotations

import copy
import json

import keras_oracle
import numpy as np
import pytest

from modelspec.model import load_model_spec
from seqlab import SpecError
from seqlab import analyze
from seqlab import from_keras_json
from seqlab import render_summary

keras = keras_oracle.import_keras()
layers = keras.layers

#: The keys of a compact entry that say how the graph is wired.
WIRING = {"type", "name", "call", "inputs", "initial_state", "use_causal_mask",
          "return_attention_scores"}  # fmt: skip


def wiring(spec):
    """The spec with each entry cut down to its wiring keys."""
    return {**spec, "layers": [{k: v for k, v in e.items() if k in WIRING} for e in spec["layers"]]}


def doc_of(model):
    return json.loads(model.to_json())


def encoder_decoder_attention():
    enc_in = keras.Input((7, 3), name="source")
    enc_out, h, c = layers.LSTM(8, return_state=True, return_sequences=True, name="enc")(enc_in)
    dec_in = keras.Input((5, 4), name="target")
    dec = layers.LSTM(8, return_sequences=True, name="dec")(dec_in, initial_state=[h, c])
    att = layers.Attention(name="att")([dec, enc_out], use_causal_mask=False)
    out = layers.Dense(2, name="out")(layers.Concatenate(name="cat")([dec, att]))
    return keras.Model([enc_in, dec_in], out, name="seq2seq")


def attention_calls():
    q, v = keras.Input((10, 16), name="q"), keras.Input((12, 8), name="v")
    out, scores = layers.MultiHeadAttention(2, 4, name="mha")(q, v, return_attention_scores=True)
    mha_kw = layers.MultiHeadAttention(2, 4, name="mha_kw")
    kw = mha_kw(query=q, value=v, key=v, use_causal_mask=True)
    return keras.Model([q, v], [out, scores, kw])


def siamese_masked():
    a = keras.Input((5,), dtype="int32", name="a")
    b = keras.Input((5,), dtype="int32", name="b")
    emb = layers.Embedding(20, 4, mask_zero=True, name="emb")
    enc = layers.LSTM(3, name="enc")
    dot = layers.Dot(axes=1, normalize=True, name="dot")
    return keras.Model([a, b], dot([enc(emb(a)), enc(emb(b))]))


def masking_pooled():
    x = keras.Input((6, 3), batch_size=4, name="x")
    seq = layers.LSTM(5, return_sequences=True, name="lstm")(layers.Masking(0.5, name="m")(x))
    return keras.Model(x, [layers.GlobalAveragePooling1D(name="pool")(seq)])


def bidirectional_states():
    x = keras.Input((6, 3), name="x")
    first = layers.Bidirectional(layers.LSTM(4, return_state=True), name="bi")(x)
    second = layers.Bidirectional(layers.LSTM(4), name="bi2")(x, initial_state=first[1:])
    return keras.Model(x, second)


def transformer_block():
    x = keras.Input((9, 16), name="x")
    att = layers.MultiHeadAttention(2, 8, name="mha")(x, x)
    h = layers.LayerNormalization(name="ln")(layers.Add(name="res")([x, att]))
    ff = layers.Dense(16, name="ff")(layers.Dense(32, activation="relu", name="up")(h))
    return keras.Model(x, layers.Add(name="res2")([h, ff]))


def shared_at_two_depths():
    # a(b(a(b(x)))): Keras replays it in two sweeps.
    x = keras.Input((4,), name="x")
    a, b = layers.Dense(4, name="a"), layers.Dense(4, name="b")
    return keras.Model(x, a(b(a(b(x)))))


def called_outside_first():
    # node_index is renumbered: the call outside the model does not count.
    dense = layers.Dense(3, name="d")
    dense(keras.Input((7,)))
    x = keras.Input((5, 7), name="x")
    return keras.Model(x, dense(x))


CASES = {
    "encoder_decoder_attention": (encoder_decoder_attention, {
        "name": "seq2seq",
        "inputs": [{"name": "source", "shape": [7, 3], "dtype": "float32"},
                   {"name": "target", "shape": [5, 4], "dtype": "float32"}],
        "layers": [
            {"type": "LSTM", "name": "enc", "inputs": "source"},
            {"type": "LSTM", "name": "dec", "inputs": "target",
             "initial_state": ["enc[0][1]", "enc[0][2]"]},
            {"type": "Attention", "name": "att", "inputs": ["dec", "enc"],
             "use_causal_mask": False},
            {"type": "Concatenate", "name": "cat", "inputs": ["dec", "att"]},
            {"type": "Dense", "name": "out", "inputs": "cat"},
        ],
        "outputs": "out",
    }),
    "attention_calls": (attention_calls, {
        "name": "functional",
        "inputs": [{"name": "q", "shape": [10, 16], "dtype": "float32"},
                   {"name": "v", "shape": [12, 8], "dtype": "float32"}],
        "layers": [
            {"type": "MultiHeadAttention", "name": "mha", "inputs": ["q", "v"],
             "return_attention_scores": True},
            {"type": "MultiHeadAttention", "name": "mha_kw",
             "inputs": {"query": "q", "value": "v", "key": "v"}, "use_causal_mask": True},
        ],
        "outputs": ["mha", "mha[0][1]", "mha_kw"],
    }),
    "siamese_masked": (siamese_masked, {
        "name": "functional",
        "inputs": [{"name": "a", "shape": [5], "dtype": "int32"},
                   {"name": "b", "shape": [5], "dtype": "int32"}],
        "layers": [
            {"type": "Embedding", "name": "emb", "inputs": "a"},
            {"call": "emb", "inputs": "b"},
            {"type": "LSTM", "name": "enc", "inputs": "emb"},
            {"call": "enc", "inputs": "emb[1][0]"},
            {"type": "Dot", "name": "dot", "inputs": ["enc", "enc[1][0]"]},
        ],
        "outputs": "dot",
    }),
    "masking_pooled": (masking_pooled, {
        "name": "functional",
        "inputs": [{"name": "x", "shape": [6, 3], "batch_size": 4, "dtype": "float32"}],
        "layers": [
            {"type": "Masking", "name": "m", "inputs": "x"},
            {"type": "LSTM", "name": "lstm", "inputs": "m"},
            {"type": "GlobalAveragePooling1D", "name": "pool", "inputs": "lstm"},
        ],
        "outputs": ["pool"],
    }),
    "bidirectional_states": (bidirectional_states, {
        "name": "functional",
        "inputs": [{"name": "x", "shape": [6, 3], "dtype": "float32"}],
        "layers": [
            {"type": "Bidirectional", "name": "bi", "inputs": "x"},
            {"type": "Bidirectional", "name": "bi2", "inputs": "x",
             "initial_state": ["bi[0][1]", "bi[0][2]", "bi[0][3]", "bi[0][4]"]},
        ],
        "outputs": "bi2",
    }),
    "transformer_block": (transformer_block, {
        "name": "functional",
        "inputs": [{"name": "x", "shape": [9, 16], "dtype": "float32"}],
        "layers": [
            {"type": "MultiHeadAttention", "name": "mha", "inputs": ["x", "x"]},
            {"type": "Add", "name": "res", "inputs": ["x", "mha"]},
            {"type": "LayerNormalization", "name": "ln", "inputs": "res"},
            {"type": "Dense", "name": "up", "inputs": "ln"},
            {"type": "Dense", "name": "ff", "inputs": "up"},
            {"type": "Add", "name": "res2", "inputs": ["ln", "ff"]},
        ],
        "outputs": "res2",
    }),
    "shared_at_two_depths": (shared_at_two_depths, {
        "name": "functional",
        "inputs": [{"name": "x", "shape": [4], "dtype": "float32"}],
        "layers": [
            {"type": "Dense", "name": "b", "inputs": "x"},
            {"type": "Dense", "name": "a", "inputs": "b"},
            {"call": "b", "inputs": "a"},
            {"call": "a", "inputs": "b[1][0]"},
        ],
        "outputs": "a[1][0]",
    }),
    "called_outside_first": (called_outside_first, {
        "name": "functional",
        "inputs": [{"name": "x", "shape": [5, 7], "dtype": "float32"}],
        "layers": [{"type": "Dense", "name": "d", "inputs": "x"}],
        "outputs": "d",
    }),
}  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_session():
    keras.backend.clear_session()


@pytest.mark.parametrize("case", CASES)
def test_functional_to_json_gives_the_program(case):
    build, expected = CASES[case]
    doc = doc_of(build())
    assert wiring(from_keras_json(doc)) == expected
    # As the JSON text in a string, as POST /params takes it, too.
    assert from_keras_json(json.loads(json.dumps(doc))) == from_keras_json(doc)


def test_constructor_arguments_are_kept():
    spec = from_keras_json(doc_of(attention_calls()))
    mha = spec["layers"][0]
    assert (mha["num_heads"], mha["key_dim"], mha["value_dim"]) == (2, 4, 4)
    assert mha["dtype"] == "float32"
    assert mha["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert "module" not in mha["kernel_initializer"]


def test_json_order_does_not_matter():
    """Keras replays nodes in sweeps, so a permuted layer list loads the same."""
    doc = doc_of(encoder_decoder_attention())
    reordered = copy.deepcopy(doc)
    reordered["config"]["layers"].reverse()
    counts = [keras.models.model_from_json(json.dumps(d)).count_params() for d in (doc, reordered)]
    assert counts == [834, 834]
    spec, respec = from_keras_json(doc), from_keras_json(reordered)
    assert {json.dumps(e, sort_keys=True) for e in spec["layers"]} == {
        json.dumps(e, sort_keys=True) for e in respec["layers"]
    }
    assert sorted(spec["inputs"], key=str) == sorted(respec["inputs"], key=str)


def keras_error(doc):
    """The message of the error ``model_from_json`` raises for ``doc``."""
    keras.backend.clear_session()
    with pytest.raises(Exception) as info:  # noqa: PT011 - Keras raises several types
        keras.models.model_from_json(json.dumps(doc))
    return str(info.value)


def tamper_last_call(doc, history):
    """Point the first tensor of the last layer's first call at ``history``."""
    node = doc["config"]["layers"][-1]["inbound_nodes"][0]
    node["args"][0]["config"]["keras_history"] = history
    return doc


@pytest.mark.parametrize(
    ("history", "path"),
    [
        (["nope", 0, 0], "config.layers.3.inbound_nodes.0.args.0"),
        (["dense", 0, 0], "config.layers.3.inbound_nodes.0"),  # a cycle
        (["lstm", 1, 0], "config.layers.3.inbound_nodes.0"),  # a call that never happens
        (["input_layer", 0, 1], "config.layers.3.inbound_nodes.0"),
    ],
)
def test_graph_errors_are_keras_errors(history, path):
    x = keras.Input((5, 3))
    model = keras.Model(x, layers.Dense(2)(layers.Dropout(0.1)(layers.LSTM(4)(x))))
    doc = tamper_last_call(doc_of(model), history)
    with pytest.raises(SpecError) as info:
        from_keras_json(doc)
    assert info.value.message == keras_error(doc)
    assert info.value.path == path


@pytest.mark.parametrize(
    ("change", "message", "path"),
    [
        (lambda c: c.update(output_layers=["zzz", 0, 0]),
         "Internal error: could not find layer zzz.", "config.output_layers"),
        (lambda c: c.update(output_layers=[["dense", 1, 0]]),
         "list index out of range", "config.output_layers.0"),
        (lambda c: c.update(input_layers={"x": ["input_layer", 0, 0]}),
         "`input_layers` as a dict is not supported", "config.input_layers"),
        (lambda c: c.update(input_layers=[["dense", 0, 0]]),
         "'dense' is not an InputLayer", "config.input_layers.0"),
        (lambda c: c["layers"].append(copy.deepcopy(c["layers"][1])),
         'The name "dense" is used 2 times in the model.', "config.layers.2.name"),
        (lambda c: c["layers"][1]["inbound_nodes"][0]["kwargs"].update(bogus=1),
         "The call argument `bogus` of Dense is not supported.",
         "config.layers.1.inbound_nodes.0.kwargs.bogus"),
        (lambda c: c["layers"][1]["inbound_nodes"][0]["args"].append(2),
         "Received 2 positional argument(s).", "config.layers.1.inbound_nodes.0.args"),
        (lambda c: c["layers"][1].update(inbound_nodes=[["input_layer", 0, 0, {}]]),
         "list form of Keras 2 is not supported", "config.layers.1.inbound_nodes.0"),
        (lambda c: c["layers"][1]["inbound_nodes"][0]["args"][0]["config"].update(
            keras_history=["input_layer", 0]),
         "keras_history", "config.layers.1.inbound_nodes.0.args.0"),
        (lambda c: c["layers"][0]["config"].update(sparse=True),
         "sparse inputs are not supported", "config.layers.0.config.sparse"),
        (lambda c: c["layers"][1].pop("name"), "`name`", "config.layers.1.name"),
    ],
)  # fmt: skip
def test_refusals_name_the_place(change, message, path):
    x = keras.Input((3,))
    doc = doc_of(keras.Model(x, layers.Dense(2)(x)))
    change(doc["config"])
    with pytest.raises(SpecError) as info:
        from_keras_json(doc)
    assert message in info.value.message
    assert info.value.path == path


@pytest.mark.parametrize(
    ("build", "name", "class_name"),
    [
        (lambda x: x + x, "add", "Add"),
        (lambda x: x[:, :2], "get_item", "GetItem"),
        (lambda x: keras.ops.concatenate([x, x]), "concatenate", "Concatenate"),
    ],
)
def test_operations_on_tensors_are_refused_by_name(build, name, class_name):
    x = keras.Input((3,))
    doc = doc_of(keras.Model(x, layers.Dense(2)(build(x))))
    with pytest.raises(SpecError) as info:
        from_keras_json(doc)
    assert f"Operation {name!r} ({class_name}, module 'keras.src.ops" in info.value.message
    assert info.value.path.startswith("config.layers.")


def test_nested_models_are_refused():
    inner_in = keras.Input((3,))
    inner = keras.Model(inner_in, layers.Dense(2)(inner_in), name="inner")
    x = keras.Input((3,))
    with pytest.raises(SpecError, match="Nested models are not supported: 'inner'"):
        from_keras_json(doc_of(keras.Model(x, layers.Dense(1)(inner(x)))))


def test_explicit_masks_are_refused():
    x = keras.Input((4, 3))
    m = keras.Input((4,), dtype="bool")
    doc = doc_of(keras.Model([x, m], layers.LSTM(2)(x, mask=m)))
    with pytest.raises(SpecError, match="Explicit masks are not supported") as info:
        from_keras_json(doc)
    assert info.value.path.endswith(".inbound_nodes.0.kwargs.mask")


def test_tampered_mask_operations_are_refused():
    """A NotEqual that is not the mask of an Embedding(mask_zero=True) input
    is an operation like any other."""
    doc = doc_of(siamese_masked())
    for obj in doc["config"]["layers"]:
        if obj["class_name"] == "NotEqual":
            obj["inbound_nodes"][0]["args"][1] = 7
    with pytest.raises(SpecError, match="Operation 'not_equal"):
        from_keras_json(doc)


def test_unused_layers_are_dropped():
    """A layer without calls in the model is created by Keras and not in the model."""
    x = keras.Input((3,))
    doc = doc_of(keras.Model(x, layers.Dense(2, name="d")(x)))
    spare = copy.deepcopy(doc["config"]["layers"][1])
    doc["config"]["layers"].append({**spare, "name": "spare", "inbound_nodes": [],
                                    "config": {**spare["config"], "name": "spare"}})  # fmt: skip
    assert [e["name"] for e in from_keras_json(doc)["layers"]] == ["d"]


@pytest.mark.parametrize("case", CASES)
def test_documents_load_and_count_as_keras(case):
    """The whole document through the request schema and the engine: Keras's
    totals and ``model.layers`` names."""
    model = CASES[case][0]()
    report = analyze(load_model_spec(doc_of(model)))
    assert report.total_params == model.count_params()
    assert [layer.name for layer in report.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize(
    ("edit", "layer", "built", "fed"),
    [
        # The LSTM Keras would load with 234 parameters instead of 218.
        (lambda doc: doc["config"]["layers"][1]["build_config"].update(input_shape=[None, 5, 9]),
         "lstm", "(None, 5, 9)", "(None, 5, 8)"),
        (lambda doc: doc["config"]["layers"][2]["build_config"].update(input_shape=[None, 7]),
         "dense", "(None, 7)", "(None, 6)"),
    ],
)  # fmt: skip
def test_build_config_that_disagrees_is_refused(edit, layer, built, fed):
    x = keras.Input((5, 8))
    doc = doc_of(keras.Model(x, layers.Dense(2)(layers.LSTM(6)(x))))
    assert analyze(load_model_spec(doc)).total_params == 360 + 14
    edit(doc)
    with pytest.raises(SpecError) as info:
        load_model_spec(doc)
    assert f"layer {layer!r} says it was built on input shape {built}" in info.value.message
    assert f"the graph feeds it {fed}" in info.value.message
    assert info.value.path.endswith(".build_config.input_shape")


def test_build_config_batch_size_is_not_a_disagreement():
    """A layer first called outside the model on another batch size has the
    same weights; no weight depends on the batch."""
    dense = layers.Dense(3)
    dense(keras.Input((7,), batch_size=2))
    x = keras.Input((7,))
    doc = doc_of(keras.Model(x, dense(x)))
    assert analyze(load_model_spec(doc)).total_params == 24


def test_build_config_of_attention_and_initial_state():
    """``shapes_dict`` build configs (MultiHeadAttention, an RNN with
    initial_state) are compared too."""
    doc = doc_of(encoder_decoder_attention())
    load_model_spec(doc)
    keras.backend.clear_session()
    mha_doc = doc_of(attention_calls())
    load_model_spec(mha_doc)
    mha_doc["config"]["layers"][2]["build_config"]["shapes_dict"]["value_shape"] = [None, 12, 9]
    with pytest.raises(SpecError, match="built on input shape"):
        load_model_spec(mha_doc)
    dec = next(obj for obj in doc["config"]["layers"] if obj["name"] == "dec")
    dec["build_config"]["shapes_dict"]["sequences_shape"] = [None, 5, 5]
    with pytest.raises(SpecError, match="'dec' says it was built on input shape"):
        load_model_spec(doc)


def masked_into(merge):
    """Embedding(mask_zero=True) outputs merged, then an LSTM that uses the mask."""

    def build():
        a = keras.Input((5,), dtype="int32", name="a")
        b = keras.Input((5,), dtype="int32", name="b")
        f = keras.Input((5, 4), name="f")
        emb = layers.Embedding(10, 4, mask_zero=True, name="emb")
        merged = merge(emb(a), emb(b), f)
        return keras.Model([a, b, f], layers.LSTM(3, name="lstm")(merged))

    return build


MASKED_MERGES = {
    "add": lambda x, y, f: layers.Add()([x, y]),
    "concatenate": lambda x, y, f: layers.Concatenate()([x, f]),
    "concatenate_time": lambda x, y, f: layers.Concatenate(axis=1)([x, f, y]),
    "attention": lambda x, y, f: layers.Attention()([x, y]),
    "multi_head_attention": lambda x, y, f: layers.MultiHeadAttention(2, 4)(x, y),
}


@pytest.mark.parametrize("merge", MASKED_MERGES)
def test_mask_operations_of_merges_are_dropped(merge):
    """The operations Keras records to combine masks (logical_or, ones_like,
    concatenate, any, convert_to_tensor) are derived again, not refused."""
    model = masked_into(MASKED_MERGES[merge])()
    doc = doc_of(model)
    assert any(obj["module"].startswith("keras.src.ops") for obj in doc["config"]["layers"])
    spec = from_keras_json(doc)
    assert all("type" in e or "call" in e for e in spec["layers"])
    report = analyze(load_model_spec(doc))
    assert report.total_params == model.count_params()
    assert [layer.name for layer in report.layers] == [layer.name for layer in model.layers]
    # The summary's rows, mask operations included, as Keras's reload has them
    # (a Concatenate layer keeps its stored name; its mask op is concatenate_1).
    keras.backend.clear_session()
    reloaded = keras.models.model_from_json(json.dumps(doc))
    assert [row[0] for row in report.rows] == [op.name for op in reloaded.operations]


def test_a_mask_operation_used_as_a_tensor_is_refused():
    """``not_equal`` used by a layer's input, not only as a mask, is an operation."""
    doc = doc_of(siamese_masked())
    dot = next(obj for obj in doc["config"]["layers"] if obj["name"] == "dot")
    dot["inbound_nodes"][0]["args"][0][1]["config"]["keras_history"] = ["not_equal", 0, 0]
    with pytest.raises(SpecError, match="Operation 'not_equal'"):
        from_keras_json(doc)


def _gru_single_state():
    x = keras.Input((6, 3), name="x")
    seq, h = layers.GRU(4, return_sequences=True, return_state=True)(x)
    return keras.Model(x, layers.GRU(4)(x, initial_state=h))


def _bidirectional_no_merge():
    x = keras.Input((6, 3))
    fwd, bwd, h1, h2 = layers.Bidirectional(
        layers.GRU(4, return_sequences=True, return_state=True), merge_mode=None
    )(x)
    return keras.Model(x, [layers.Subtract()([fwd, bwd]), layers.Multiply()([h1, h2])])


def _conv_pool_frozen():
    x = keras.Input((20, 3), batch_size=8)
    c = layers.Conv1D(4, 3, padding="causal", trainable=False)(x)
    p = layers.MaxPooling1D()(layers.BatchNormalization()(c))
    t = layers.TimeDistributed(layers.Dense(2))(p)
    return keras.Model(x, layers.GlobalMaxPooling1D()(t))


def _explicit_training_and_unused_input():
    a, unused, b = keras.Input((4,), name="a"), keras.Input((2,), name="u"), keras.Input((4,))
    d = layers.Dropout(0.5)(layers.Maximum()([a, b]), training=True)
    return keras.Model([a, unused, b], [d, d])


def _dot_axes_and_keyed_attention():
    q, k, v = keras.Input((5, 6)), keras.Input((7, 6)), keras.Input((7, 3))
    att = layers.MultiHeadAttention(3, 2, value_dim=5, output_shape=4, use_bias=False)(q, v, key=k)
    add = layers.AdditiveAttention()([q, v, k], return_attention_scores=True)
    dot = layers.Dot(axes=(1, 1))([att, add[1]])
    return keras.Model([q, k, v], [dot, layers.Average()([add[0], add[0]])])


def _mixed_precision_frozen_model():
    x = keras.Input((5, 3))
    h = layers.LSTM(4, return_sequences=True, dtype="mixed_float16")(x)
    y = layers.Dense(2, dtype="float64")(layers.LayerNormalization()(h))
    model = keras.Model(x, y)
    model.trainable = False
    return model


FAMILIES = {
    "gru_single_state": _gru_single_state,
    "bidirectional_no_merge": _bidirectional_no_merge,
    "conv_pool_frozen": _conv_pool_frozen,
    "explicit_training_and_unused_input": _explicit_training_and_unused_input,
    "dot_axes_and_keyed_attention": _dot_axes_and_keyed_attention,
    "mixed_precision_frozen_model": _mixed_precision_frozen_model,
    **{name: build for name, (build, _) in CASES.items()},
    **{f"masked_{name}": masked_into(merge) for name, merge in MASKED_MERGES.items()},
}


@pytest.mark.parametrize("family", FAMILIES)
def test_documents_read_as_keras_reloads_them(family, monkeypatch):
    """to_json → compact → engine, against Keras's own reload of the same
    document: layers, their output shapes and counts, the trainable split,
    the summary's rows (operations included), the model's shapes and the
    summary text, byte for byte (piped: no COLUMNS)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    model = FAMILIES[family]()
    doc = doc_of(model)
    report = analyze(load_model_spec(json.dumps(doc)))
    keras.backend.clear_session()
    reloaded = keras.models.model_from_json(json.dumps(doc))
    assert [x.name for x in report.layers] == [x.name for x in reloaded.layers]
    assert [x.params for x in report.layers] == [x.count_params() for x in reloaded.layers]
    trainable = sum(int(np.prod(w.shape)) for w in reloaded.trainable_weights)
    assert (report.total_params, report.trainable_params) == (reloaded.count_params(), trainable)
    assert [row[0] for row in report.rows] == [op.name for op in reloaded.operations]
    shape = reloaded.output_shape
    expected = [tuple(s) for s in shape] if isinstance(shape, list) else tuple(shape)
    assert report.output_shape == expected
    printed = []
    reloaded.summary(print_fn=lambda text, **kwargs: printed.append(text))
    assert render_summary(report) == "".join(printed)


def test_mixed_positional_and_keyword_tensors():
    """mha(q, v, key=k) is Keras's positional order and reads as the list form;
    mha(q, value=v, key=k) orders its tensors q, k, v, which neither form writes."""
    q, k, v = keras.Input((5, 6), name="q"), keras.Input((7, 6), name="k"), keras.Input((7, 3))
    mha = layers.MultiHeadAttention(2, 2, name="mha")
    spec = from_keras_json(doc_of(keras.Model([q, k, v], mha(q, v, key=k))))
    assert spec["layers"][0]["inputs"] == ["q", "input_layer", "k"]
    keras.backend.clear_session()
    q, k, v = keras.Input((5, 6)), keras.Input((7, 6)), keras.Input((7, 3))
    doc = doc_of(keras.Model([q, k, v], layers.MultiHeadAttention(2, 2)(q, value=v, key=k)))
    with pytest.raises(SpecError, match="in the order query, key, value") as info:
        from_keras_json(doc)
    assert info.value.path.endswith(".inbound_nodes.0")


@pytest.mark.parametrize("form", ["Sequential", "Functional"])
def test_batch_normalization_renorm_clipping_default_reads_as_null(form):
    """Keras's get_config writes ``renorm_clipping: {}`` for
    ``BatchNormalization(renorm=True)`` (None becomes ``{}``): the reader
    takes that empty default as the null the schema accepts, in both forms."""
    keras.backend.clear_session()
    if form == "Sequential":
        model = keras.Sequential([keras.Input((11, 6)), layers.BatchNormalization(renorm=True)])
    else:
        x = keras.Input((11, 6))
        model = keras.Model(x, layers.BatchNormalization(renorm=True)(x))
    doc = doc_of(model)
    assert doc["config"]["layers"][-1]["config"]["renorm_clipping"] == {}
    report = analyze(load_model_spec(doc))
    assert report.total_params == model.count_params()
