"""``worker.builder.build_model`` on the compact graph form, against Keras.

Each case is a spec and the same program written in plain Keras; the model
the builder makes must equal ``model_from_json(to_json())`` of the plain one
in names, classes, shapes, connections and counts, the ``model.layers`` order
included (the builder runs the program, so Keras's own naming must agree).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from specs import ENCODER_DECODER
from specs import encoder_decoder
from specs import layer_graph

from seqlab import LAYERS
from worker.builder import build_model
from worker.builder import parse_ref

keras = pytest.importorskip("keras")
layers = keras.layers


def shared_dense() -> keras.Model:
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    dense = layers.Dense(3, name="shared")
    return keras.Model([a, b], [dense(a), dense(b)], name="siamese")


SHARED_DENSE = {
    "name": "siamese",
    "inputs": [{"name": "a", "shape": [4]}, {"name": "b", "shape": [4]}],
    "layers": [
        {"type": "Dense", "units": 3, "name": "shared", "inputs": "a"},
        {"call": "shared", "inputs": "b"},
    ],
    "outputs": ["shared[0][0]", "shared[1][0]"],
}


def bidirectional_states() -> keras.Model:
    x = keras.Input((6, 2))
    out = layers.Bidirectional(layers.GRU(3, return_state=True, return_sequences=True))(x)
    y = keras.Input((4, 2))
    dec = layers.Bidirectional(layers.GRU(3))(y, initial_state=[out[1], out[2]])
    frozen = layers.Dense(2, trainable=False)(dec)
    return keras.Model([x, y], [frozen, layers.Dense(1)(out[0])])


BIDIRECTIONAL_STATES = {
    "inputs": [{"shape": [6, 2]}, {"shape": [4, 2]}],
    "layers": [
        {
            "type": "Bidirectional",
            "layer": {"type": "GRU", "units": 3, "return_state": True, "return_sequences": True},
            "inputs": "input_layer",
        },
        {
            "type": "Bidirectional",
            "layer": {"type": "GRU", "units": 3},
            "inputs": "input_layer_1",
            "initial_state": ["bidirectional[0][1]", "bidirectional[0][2]"],
        },
        {"type": "Dense", "units": 2, "trainable": False},
        {"type": "Dense", "units": 1, "inputs": "bidirectional"},
    ],
    "outputs": ["dense", "dense_1"],
}


def embedding_mask() -> keras.Model:
    x = keras.Input((5,), dtype="int32")
    e = layers.Embedding(10, 4, mask_zero=True)(x)
    return keras.Model(x, layers.LSTM(3)(e), name="masked")


EMBEDDING_MASK = {
    "name": "masked",
    "inputs": [{"shape": [5], "dtype": "int32"}],
    "layers": [
        {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
        {"type": "LSTM", "units": 3},
    ],
}

CASES: list[tuple[str, dict[str, Any], Callable[[], keras.Model]]] = [
    ("encoder_decoder", ENCODER_DECODER, lambda: encoder_decoder(keras)),
    ("shared_dense", SHARED_DENSE, shared_dense),
    ("bidirectional_states", BIDIRECTIONAL_STATES, bidirectional_states),
    ("embedding_mask", EMBEDDING_MASK, embedding_mask),
]


def describe(model: keras.Model) -> dict[str, Any]:
    """What must agree: names, classes, connections, shapes and counts."""
    config = json.loads(model.to_json())["config"]
    return {
        "name": model.name,
        "operations": [(op.name, type(op).__name__) for op in model.operations],
        "layers": [layer.name for layer in model.layers],
        "nodes": [(entry["name"], entry["inbound_nodes"]) for entry in config["layers"]],
        "input_layers": config["input_layers"],
        "output_layers": config["output_layers"],
        "input_shape": model.input_shape,
        "output_shape": model.output_shape,
        "params": [layer.count_params() for layer in model.layers],
        "total": model.count_params(),
        "trainable": sum(int(w.numpy().size) for w in model.trainable_weights),
    }


@pytest.mark.parametrize(("spec", "program"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_graph_matches_keras(spec: dict[str, Any], program: Callable[[], keras.Model]) -> None:
    keras.backend.clear_session()
    expected = describe(keras.models.model_from_json(program().to_json()))
    assert describe(build_model(spec)) == expected


def test_outputs_default_to_the_last_call() -> None:
    # No "outputs": every output tensor of the last entry's call (a list when
    # there are several, one tensor when there is one).
    spec = {
        "inputs": [{"shape": [5, 2]}],
        "layers": [{"type": "LSTM", "units": 3, "return_state": True}],
    }
    model = build_model(spec)
    assert model.output_shape == [(None, 3), (None, 3), (None, 3)]
    single = build_model({"inputs": [{"shape": [5, 2]}], "layers": [{"type": "Dense", "units": 4}]})
    assert single.output_shape == (None, 5, 4)
    assert single.name == "functional"


def test_a_one_element_output_list_stays_a_list() -> None:
    # Keras's output_shape unwraps it, but the structure (and to_json) keeps it.
    spec = {
        "inputs": [{"shape": [3]}],
        "layers": [{"type": "Dense", "units": 2}],
        "outputs": ["dense"],
    }
    assert isinstance(build_model(spec)._outputs_struct, list)
    spec["outputs"] = "dense"
    assert not isinstance(build_model(spec)._outputs_struct, list)


def test_sequential_specs_still_build_a_sequential() -> None:
    model = build_model({"input_shape": [4, 2], "layers": [{"type": "LSTM", "units": 3}]})
    assert type(model).__name__ == "Sequential"


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [("lstm", ("lstm", 0, 0)), ("lstm[0][2]", ("lstm", 0, 2)), ("x_1[3][1]", ("x_1", 3, 1))],
)
def test_parse_ref(ref: str, parsed: tuple[str, int, int]) -> None:
    assert parse_ref(ref) == parsed


needs_merging = pytest.mark.skipif(
    not {"Concatenate", "Attention", "MultiHeadAttention"} <= set(LAYERS),
    reason="merging and attention layers not registered yet",
)


def attention_decoder() -> keras.Model:
    src = keras.Input((6, 3), name="source")
    tgt = keras.Input((5, 4), name="target")
    enc, h, c = layers.LSTM(8, return_sequences=True, return_state=True, name="encoder")(src)
    dec = layers.LSTM(8, return_sequences=True, name="decoder")(tgt, initial_state=[h, c])
    att = layers.Attention()([dec, enc], use_causal_mask=False)
    mha = layers.MultiHeadAttention(2, 4)(dec, enc)
    mha_kw, scores = layers.MultiHeadAttention(1, 2)(
        query=dec, value=enc, key=enc, return_attention_scores=True
    )
    merged = layers.Concatenate()([dec, att, mha, mha_kw])
    return keras.Model([src, tgt], [layers.Dense(2)(merged), scores], name="att")


ATTENTION_DECODER = {
    "name": "att",
    "inputs": [{"name": "source", "shape": [6, 3]}, {"name": "target", "shape": [5, 4]}],
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
        {"type": "Attention", "inputs": ["decoder", "encoder"], "use_causal_mask": False},
        {
            "type": "MultiHeadAttention",
            "num_heads": 2,
            "key_dim": 4,
            "inputs": ["decoder", "encoder"],
        },
        {
            "type": "MultiHeadAttention",
            "num_heads": 1,
            "key_dim": 2,
            "inputs": {"query": "decoder", "value": "encoder", "key": "encoder"},
            "return_attention_scores": True,
        },
        {
            "type": "Concatenate",
            "inputs": [
                "decoder",
                "attention",
                "multi_head_attention",
                "multi_head_attention_1[0][0]",
            ],
        },
        {"type": "Dense", "units": 2},
    ],
    "outputs": ["dense", "multi_head_attention_1[0][1]"],
}


@needs_merging
def test_attention_graph_matches_keras() -> None:
    keras.backend.clear_session()
    expected = describe(keras.models.model_from_json(attention_decoder().to_json()))
    assert describe(build_model(ATTENTION_DECODER)) == expected


@pytest.mark.parametrize(
    "spec",
    [c[1] for c in CASES] + [ATTENTION_DECODER],
    ids=[c[0] for c in CASES] + ["attention_decoder"],
)
def test_the_worker_agrees_with_the_engine(spec: dict[str, Any]) -> None:
    """What a job checks before training (worker/agreement.py): the built
    model's layers (InputLayers included, a shared layer once, with its last
    call's output) and counts equal the engine's."""
    from seqlab import analyze
    from worker.agreement import differences

    assert differences(build_model(spec), analyze(spec).counts()) == []


@pytest.mark.parametrize("layer_type", sorted(LAYERS))
def test_every_registered_layer_builds_in_a_graph_as_keras_calls_it(layer_type: str) -> None:
    """Each registered layer on its example, called in a graph the way its
    ``call_form`` says (one tensor, a list, or query/value/key positionally),
    equals the plain Keras program making the same call."""
    from worker.builder import build_layer

    layer_cls = LAYERS[layer_type]
    args, _ = layer_cls.example
    spec = layer_graph(layer_type)

    keras.backend.clear_session()
    ins = [keras.Input(tuple(i["shape"]), name=i["name"]) for i in spec["inputs"]]
    layer = build_layer({"type": layer_type, **args})
    if layer_cls.call_form == "one":
        out = layer(ins[0])
    elif layer_cls.call_form == "list":
        out = layer(ins)
    else:
        out = layer(*ins)
    plain = keras.Model(ins[0] if len(ins) == 1 else ins, out)
    expected = describe(keras.models.model_from_json(plain.to_json()))
    assert describe(build_model(spec)) == expected


@pytest.mark.parametrize(
    ("layers", "path"),
    [
        # The first `d` is outside the model (the Add reads the latest `d`):
        # Keras would build it; seqlab refuses the name given twice.
        (
            [
                {"type": "Dense", "units": 2, "name": "d"},
                {"type": "Dense", "units": 2, "name": "d", "inputs": "input_layer"},
                {"type": "Add", "inputs": ["d", "d"]},
            ],
            "layers.1.name",
        ),
        ([{"type": "Dense", "units": 2, "name": "input_layer"}], "layers.0.name"),
    ],
)
def test_a_duplicate_name_is_refused_as_the_engine_refuses_it(
    layers: list[dict[str, Any]], path: str
) -> None:
    from seqlab import SpecError
    from seqlab import analyze

    spec = {"inputs": [{"shape": [3]}], "layers": layers}
    with pytest.raises(SpecError) as built:
        build_model(spec)
    with pytest.raises(SpecError) as analyzed:
        analyze(spec)
    assert (built.value.path, built.value.message) == (analyzed.value.path, analyzed.value.message)
    assert "seqlab refuses a layer name given twice anywhere in a graph" in built.value.message
