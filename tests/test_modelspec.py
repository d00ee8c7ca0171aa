"""The model request schemas (modelspec/fields.py, graph.py, model.py), loaded directly."""

import marshmallow as ma
import pytest

from modelspec.errors import flatten_errors
from modelspec.fields import MAX_LAYERS
from modelspec.graph import MAX_INPUTS
from modelspec.graph import takes_initial_state
from modelspec.model import load_model_spec
from seqlab import LAYERS

DENSE = {"type": "Dense", "units": 1}


def model(**changes):
    return {"input_shape": [5, 1], "layers": [dict(DENSE)], **changes}


@pytest.mark.parametrize("name", ["x", "a" * 128, "lstm_1", "Enc.v2-final"])
def test_names_keras_accepts_load(name):
    assert load_model_spec(model(name=name))["name"] == name
    body = model()
    body["layers"][0]["name"] = name
    assert load_model_spec(body)["layers"][0]["name"] == name


@pytest.mark.parametrize("name", ["out\n", "out\r\n", "\nout", "a" * 129, "", "a/b", "a b"])
def test_bad_names_are_refused(name):
    """``$`` matched before a trailing newline: ``"out\\n"`` used to load."""
    with pytest.raises(ma.ValidationError) as info:
        load_model_spec(model(name=name))
    assert "name" in info.value.messages
    body = model()
    body["layers"][0]["name"] = name
    with pytest.raises(ma.ValidationError) as info:
        load_model_spec(body)
    assert "name" in info.value.messages["layers"][0]


@pytest.mark.parametrize(
    ("arg", "obj", "path"),
    [
        ("kernel_regularizer", {"class_name": "L2", "config": {"bogus": 1}}, "config.bogus"),
        ("kernel_regularizer", {"class_name": "L2", "config": {"l2": "abc"}}, "config.l2"),
        ("kernel_regularizer", {"class_name": "L2", "config": {"l2": -0.1}}, "config.l2"),
        ("kernel_regularizer", {"class_name": "L1L2", "config": {"l1": 10**400}}, "config.l1"),
        ("kernel_initializer", {"class_name": "Constant", "config": {"value": [1, 2, 3]}},
         "config.value"),
        ("kernel_initializer", {"class_name": "RandomNormal", "config": {"stddev": "x"}},
         "config.stddev"),
        ("kernel_initializer", {"class_name": "VarianceScaling", "config": {"mode": "nope"}},
         "config.mode"),
        ("kernel_initializer", {"class_name": "VarianceScaling", "config": {"scale": 0}},
         "config.scale"),
        ("kernel_constraint", {"class_name": "MaxNorm", "config": {"axis": "x"}}, "config.axis"),
        ("kernel_initializer", {"class_name": "Ones", "config": []}, "config"),
    ],
)  # fmt: skip
def test_object_configs_keras_refuses_are_refused(arg, obj, path):
    body = model()
    body["layers"][0][arg] = obj
    with pytest.raises(ma.ValidationError) as info:
        load_model_spec(body)
    errors = info.value.messages["layers"][0][arg]
    for key in path.split("."):
        errors = errors[key]
    assert errors and all(isinstance(message, str) for message in errors)


def test_object_configs_load_as_given():
    body = model()
    body["layers"][0]["kernel_initializer"] = {
        "module": "keras.initializers",
        "class_name": "VarianceScaling",
        "config": {"scale": 2, "mode": "fan_out", "distribution": "uniform", "seed": 3},
        "registered_name": None,
    }
    layer = load_model_spec(body)["layers"][0]
    assert layer["kernel_initializer"] == {
        "class_name": "VarianceScaling",
        "config": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform", "seed": 3},
    }


# -- the compact graph form ---------------------------------------------------


def graph(**changes):
    """An encoder-decoder with attention, a shared layer and call options."""
    body = {
        "name": "seq2seq",
        "inputs": [{"name": "source", "shape": [7, 3]},
                   {"name": "target", "shape": [5, 4], "batch_size": None, "dtype": "float32"}],
        "layers": [
            {"type": "LSTM", "units": 8, "return_state": True, "return_sequences": True,
             "name": "encoder", "inputs": "source"},
            {"type": "LSTM", "units": 8, "return_sequences": True, "name": "decoder",
             "inputs": "target", "initial_state": ["encoder[0][1]", "encoder[0][2]"]},
            {"type": "Attention", "inputs": ["decoder", "encoder"], "use_causal_mask": True},
            {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 4,
             "inputs": {"query": "decoder", "value": "encoder"}},
            {"type": "Concatenate", "inputs": ["decoder", "attention", "multi_head_attention"]},
            {"type": "Dense", "units": 2, "name": "head"},
            {"call": "head", "inputs": "decoder"},
        ],
        "outputs": ["head", "head[1][0]"],
    }  # fmt: skip
    body.update(changes)
    return body


def refusal(body):
    """The dotted paths and reasons ``load_model_spec`` refuses ``body`` with."""
    with pytest.raises(ma.ValidationError) as info:
        load_model_spec(body)
    return flatten_errors(info.value.messages)


def test_graph_loads_as_given():
    body = graph()
    assert load_model_spec(body) == body


def test_a_graph_is_told_by_inputs_and_the_sequential_form_is_unchanged():
    assert "inputs" in load_model_spec(graph())
    assert load_model_spec(model()) == model()
    # With both, "inputs" makes it a graph, whose members exclude input_shape.
    assert "input_shape" in refusal(graph(input_shape=[3]))
    assert "input_shape" in refusal(model(inputs=[{"shape": [3]}]))


def edit(change):
    body = graph()
    change(body)
    return body


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda b: b.update(inputs=[]), "inputs"),
        (lambda b: b.update(inputs=[{"shape": [3]}] * (MAX_INPUTS + 1)), "inputs"),
        (lambda b: b.update(inputs="source"), "inputs"),
        (lambda b: b["inputs"][0].pop("shape"), "inputs.0.shape"),
        (lambda b: b["inputs"][0].update(shape=[]), "inputs.0.shape"),
        (lambda b: b["inputs"][0].update(shape=[0, 3]), "inputs.0.shape.0"),
        (lambda b: b["inputs"][0].update(shape=[1] * 9), "inputs.0.shape"),
        (lambda b: b["inputs"][0].update(name="a/b"), "inputs.0.name"),
        (lambda b: b["inputs"][1].update(batch_size=0), "inputs.1.batch_size"),
        (lambda b: b["inputs"][1].update(dtype="string"), "inputs.1.dtype"),
        (lambda b: b["inputs"][1].update(bogus=1), "inputs.1.bogus"),
        (lambda b: b.update(layers=[]), "layers"),
        (lambda b: b.update(layers=[{"type": "Dense", "units": 1}] * (MAX_LAYERS + 1)), "layers"),
        (lambda b: b.update(layers={"type": "Dense"}), "layers"),
        (lambda b: b["layers"].append(7), "layers.7"),
        (lambda b: b["layers"].append({"type": "Nope"}), "layers.7.type"),
        (lambda b: b["layers"].append({}), "layers.7.type"),
        (lambda b: b["layers"][5].update(units=0), "layers.5.units"),
        (lambda b: b["layers"][5].update(name="a b"), "layers.5.name"),
        (lambda b: b["layers"][5].update(bogus=1), "layers.5.bogus"),
        # A Dense call takes one tensor and no initial_state or attention options.
        (lambda b: b["layers"][5].update(inputs=["decoder"]), "layers.5.inputs"),
        (lambda b: b["layers"][5].update(initial_state=["decoder"]), "layers.5.initial_state"),
        (lambda b: b["layers"][5].update(use_causal_mask=True), "layers.5.use_causal_mask"),
        # References.
        (lambda b: b["layers"][0].update(inputs="source[0]"), "layers.0.inputs"),
        (lambda b: b["layers"][0].update(inputs="source[0][x]"), "layers.0.inputs"),
        (lambda b: b["layers"][0].update(inputs=""), "layers.0.inputs"),
        (lambda b: b["layers"][0].update(inputs=3), "layers.0.inputs"),
        (lambda b: b["layers"][1].update(initial_state="encoder[0][1]"),
         "layers.1.initial_state"),
        (lambda b: b["layers"][1].update(initial_state=[]), "layers.1.initial_state"),
        (lambda b: b["layers"][1].update(initial_state=["encoder", "a b"]),
         "layers.1.initial_state.1"),
        # A list layer takes a list; MultiHeadAttention a list of 2 or 3, or an object.
        (lambda b: b["layers"][4].update(inputs="decoder"), "layers.4.inputs"),
        (lambda b: b["layers"][4].update(inputs=["decoder", "x y"]), "layers.4.inputs.1"),
        (lambda b: b["layers"][4].update(inputs=["decoder"] * (MAX_INPUTS + 1)), "layers.4.inputs"),
        (lambda b: b["layers"][4].update(inputs={"query": "decoder", "value": "encoder"}),
         "layers.4.inputs"),
        (lambda b: b["layers"][3].update(inputs=["decoder"]), "layers.3.inputs"),
        (lambda b: b["layers"][3].update(inputs=["a", "b", "c", "d"]), "layers.3.inputs"),
        (lambda b: b["layers"][3].update(inputs={"query": "decoder"}), "layers.3.inputs"),
        (lambda b: b["layers"][3].update(inputs={"query": "a", "value": "b", "mask": "c"}),
         "layers.3.inputs"),
        (lambda b: b["layers"][3].update(inputs={"query": "a", "value": 3}),
         "layers.3.inputs.value"),
        (lambda b: b["layers"][2].update(use_causal_mask="yes"), "layers.2.use_causal_mask"),
        (lambda b: b["layers"][2].update(return_attention_scores=1),
         "layers.2.return_attention_scores"),
        # A call entry takes only call, inputs, initial_state and the layer's call options.
        (lambda b: b["layers"][6].update(units=3), "layers.6.units"),
        (lambda b: b["layers"][6].update(name="again"), "layers.6.name"),
        (lambda b: b["layers"][6].update(type="Dense"), "layers.6.call"),
        (lambda b: b["layers"][6].update(call="a b"), "layers.6.call"),
        (lambda b: b["layers"][6].update(call=3), "layers.6.call"),
        (lambda b: b["layers"][6].update(inputs=["decoder"]), "layers.6.inputs"),
        (lambda b: b["layers"][6].update(use_causal_mask=True), "layers.6.use_causal_mask"),
        (lambda b: b.update(outputs=[]), "outputs"),
        (lambda b: b.update(outputs=["head"] * (MAX_INPUTS + 1)), "outputs"),
        (lambda b: b.update(outputs=["head", "head[1]"]), "outputs.1"),
        (lambda b: b.update(outputs={"a": "head"}), "outputs"),
        (lambda b: b.update(name="a/b"), "name"),
        (lambda b: b.update(bogus=1), "bogus"),
    ],
)  # fmt: skip
def test_graph_refusals_name_the_field(change, path):
    errors = refusal(edit(change))
    assert path in errors, errors
    assert all(isinstance(reason, str) and reason for reason in errors[path])


def test_references_keras_names_and_indices():
    for ref in ("lstm", "lstm_1[0][1]", "Enc.v2-final[12][3]", "a" * 128 + "[0][0]"):
        body = graph()
        body["layers"][5]["inputs"] = ref
        assert load_model_spec(body)["layers"][5]["inputs"] == ref


def test_call_entries_take_their_layers_call_options_by_auto_name_too():
    """``{"call": "attention"}`` names a layer by Keras's automatic name: its
    call options are Attention's; a name no entry has is the engine's to refuse."""
    body = graph()
    body["layers"].append({"call": "attention", "inputs": ["decoder", "encoder"],
                           "return_attention_scores": True})  # fmt: skip
    assert load_model_spec(body)["layers"][-1]["return_attention_scores"] is True
    body["layers"][-1]["return_attention_scores"] = "no"
    assert "layers.7.return_attention_scores" in refusal(body)


@pytest.mark.parametrize("layer_type", sorted(LAYERS))
def test_every_layer_takes_its_call_options_and_no_other(layer_type):
    """Derived from the registry: call_args, initial_state where the call
    takes it, inputs in the shape of call_form."""
    layer = LAYERS[layer_type]
    args, shapes = layer.example
    if layer.call_form == "one":
        inputs = [{"name": "x", "shape": list(shapes)}]
        refs = "x"
    else:
        inputs = [{"name": f"x{i}", "shape": list(s)} for i, s in enumerate(shapes)]
        refs = [x["name"] for x in inputs]
    entry = {"type": layer_type, **args, "inputs": refs}
    for arg in layer.call_args:
        entry[arg.name] = arg.default
    if takes_initial_state(layer):
        entry["initial_state"] = ["x"]
    body = {"inputs": inputs, "layers": [entry]}
    loaded = load_model_spec(body)["layers"][0]
    call_keys = ["inputs", "initial_state", *(a.name for a in layer.call_args)]
    assert {k: loaded[k] for k in call_keys if k in entry} == {
        k: entry[k] for k in call_keys if k in entry
    }
    for key in ("initial_state", "use_causal_mask", "return_attention_scores"):
        if key not in entry:
            assert f"layers.0.{key}" in refusal({**body, "layers": [{**entry, key: False}]})
