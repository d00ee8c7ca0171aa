"""POST /params and GET /layers (service/params/views.py): the engine's
answer for Sequential and Functional specs, their refusals, and the registry
as served."""

import copy
import json
import re
from pathlib import Path

import pytest
from openapi_check import validate_response
from specs import MANY_TO_MANY
from specs import MANY_TO_ONE
from specs import ONE_TO_ONE
from specs import POLICY_SPEC
from specs import SEQ2SEQ

from seqlab import LAYERS


def post(client, body):
    return client.post("/params", json=body)


@pytest.mark.parametrize(
    ("body", "shapes", "params", "total"),
    [
        (ONE_TO_ONE, [[None, 5], [None, 1]], [140, 6], 146),
        (MANY_TO_ONE, [[None, 5], [None, 5]], [140, 30], 170),
        (MANY_TO_MANY, [[None, 5, 5], [None, 5, 1]], [140, 6], 146),
    ],
    ids=["one_to_one", "many_to_one", "many_to_many"],
)
def test_seed_models(client, spec, body, shapes, params, total):
    rv = post(client, body)
    assert rv.status_code == 200
    validate_response(spec, "/params", "post", rv)
    data = rv.get_json()
    assert [x["output_shape"] for x in data["layers"]] == shapes
    assert [x["params"] for x in data["layers"]] == params
    assert data["total_params"] == data["trainable_params"] == total
    assert data["non_trainable_params"] == 0
    assert data["param_bytes"] == 4 * total
    assert data["layers"][0]["formula"] == "4 × ((1 + 5) × 5 + 5) = 140"
    assert f" Total params: {total} ({4 * total:.2f} B)" in data["summary"]


def test_names_formula_and_macs(client):
    data = post(client, MANY_TO_MANY).get_json()
    lstm, td = data["layers"]
    assert (lstm["name"], td["name"]) == ("lstm", "time_distributed")
    # T × 4H × (I + H) = 5 × 20 × 6; the Dense runs on each of the 5 steps.
    assert lstm["macs"] == 600
    assert td["macs"] == 25
    assert data["macs"] == 625
    assert td["sublayers"][0]["name"] == "dense"
    assert td["weights"] == [
        {"name": "dense/kernel", "shape": [5, 1], "trainable": True, "dtype": "float32"},
        {"name": "dense/bias", "shape": [1], "trainable": True, "dtype": "float32"},
    ]


def test_summary_is_keras_text(client):
    summary = post(client, ONE_TO_ONE).get_json()["summary"]
    assert summary.splitlines() == [
        'Model: "sequential"',
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓",
        "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃",
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩",
        "│ lstm (LSTM)                     │ (None, 5)              │           140 │",
        "├─────────────────────────────────┼────────────────────────┼───────────────┤",
        "│ dense (Dense)                   │ (None, 1)              │             6 │",
        "└─────────────────────────────────┴────────────────────────┴───────────────┘",
        " Total params: 146 (584.00 B)",
        " Trainable params: 146 (584.00 B)",
        " Non-trainable params: 0 (0.00 B)",
    ]


def test_several_outputs_and_batch_size(client, spec):
    body = {
        "input_shape": [10, 3],
        "batch_size": 4,
        "name": "encoder",
        "layers": [{"type": "LSTM", "units": 5, "return_state": True, "stateful": True}],
    }
    rv = post(client, body)
    validate_response(spec, "/params", "post", rv)
    data = rv.get_json()
    assert data["name"] == "encoder"
    assert data["layers"][0]["output_shape"] == [[4, 5], [4, 5], [4, 5]]
    # Keras wraps the list of shapes inside its 22-character column.
    assert "│ lstm (LSTM)                     │ [(4, 5), (4, 5), (4,   │" in data["summary"]


def test_keras_json_form(client):
    keras_json = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, 5, 1], "dtype": "float32", "name": "in"},
                },
                {
                    "module": "keras.layers",
                    "class_name": "LSTM",
                    "config": {
                        "name": "lstm",
                        "units": 5,
                        "return_sequences": True,
                        "kernel_initializer": {
                            "module": "keras.initializers",
                            "class_name": "GlorotUniform",
                            "config": {"seed": None},
                            "registered_name": None,
                        },
                        "dtype": {"class_name": "DTypePolicy", "config": {"name": "float32"}},
                    },
                },
                {
                    "module": "keras.layers",
                    "class_name": "TimeDistributed",
                    "config": {
                        "name": "td",
                        "layer": {"class_name": "Dense", "config": {"name": "d", "units": 1}},
                    },
                },
            ],
        },
    }
    for body in (keras_json, json.dumps(keras_json)):
        data = post(client, body).get_json()
        assert [x["name"] for x in data["layers"]] == ["lstm", "td"]
        assert data["total_params"] == 146


@pytest.mark.parametrize(
    ("body", "path", "reason"),
    [
        ({"input_shape": [5], "layers": [{"type": "LSTM", "units": 5}]}, "layers.0", "ndim=3"),
        (
            {"input_shape": [4, 2], "layers": [{"type": "MaxPooling1D", "pool_size": 5}]},
            "layers.0",
            "zero or negative",
        ),
        (
            {"input_shape": [4, 2], "layers": [{"type": "Reshape", "target_shape": [3, -1]}]},
            "layers.0",
            "cannot by divided",
        ),
        (
            {
                "input_shape": [5, 1],
                "layers": [
                    {"type": "LSTM", "units": 5, "return_state": True},
                    {"type": "Dense", "units": 1},
                ],
            },
            "layers.1",
            "expects 1 input(s)",
        ),
        ({"input_shape": [5, 1], "layers": [{"type": "Lambda"}]}, "layers.0.type", "Unknown layer"),
        (
            {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 5, "unit": 3}]},
            "layers.0.unit",
            "Unknown",
        ),
        (
            {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": "5"}]},
            "layers.0.units",
            "integer",
        ),
        (
            {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 0}]},
            "layers.0.units",
            "greater",
        ),
        ({"input_shape": [5, 1], "layers": [{"type": "LSTM"}]}, "layers.0.units", "Missing"),
        (
            {
                "input_shape": [5, 1],
                "layers": [{"type": "TimeDistributed", "layer": {"type": "Dense", "units": -1}}],
            },
            "layers.0.layer.units",
            "greater",
        ),
        (
            {
                "input_shape": [5, 1],
                "layers": [{"type": "Bidirectional", "layer": {"type": "Dense", "units": 1}}],
            },
            "layers.0.layer.type",
            "Unsupported",
        ),
        (
            {"input_shape": [5, 0], "layers": [{"type": "Dense", "units": 1}]},
            "input_shape.1",
            "positive",
        ),
        ({"layers": [{"type": "Dense", "units": 1}]}, "input_shape", "Missing"),
        ({"input_shape": [5, 1], "layers": []}, "layers", "Length"),
        (
            {"input_shape": [5, 1], "layers": [{"type": "Dropout", "rate": float("inf")}]},
            None,
            None,
        ),
        (["not", "an", "object"], "body", "object"),
        ({"class_name": "Model", "config": {}}, "class_name", "Sequential and Functional"),
        ({"class_name": "Functional", "config": {}}, "config.layers", "config.layers"),
    ],
)
def test_invalid_specs_are_422(client, spec, body, path, reason):
    rv = client.post(
        "/params", data=json.dumps(body, allow_nan=True), content_type="application/json"
    )
    if path is None:  # Infinity is not JSON at all
        assert rv.status_code == 400
        return
    assert rv.status_code == 422, rv.get_json()
    assert rv.content_type == "application/problem+json"
    validate_response(spec, "/params", "post", rv)
    errors = rv.get_json()["errors"]
    assert path in errors, errors
    assert any(reason.lower() in message.lower() for message in errors[path]), errors


def test_layer_names_must_be_unique(client):
    body = {
        "input_shape": [5, 1],
        "layers": [
            {"type": "Dense", "units": 1, "name": "out"},
            {"type": "Dense", "units": 1, "name": "out"},
        ],
    }
    rv = post(client, body)
    assert rv.status_code == 422
    assert "unique names" in rv.get_json()["errors"]["layers.1.name"][0]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": "{", "content_type": "application/json"}, 400),
        ({"data": "[" * 100_000, "content_type": "application/json"}, 400),
        ({"data": "input_shape=5", "content_type": "application/x-www-form-urlencoded"}, 415),
        ({"data": json.dumps(ONE_TO_ONE)}, 415),
        ({"data": " " * 2_000_000, "content_type": "application/json"}, 413),
    ],
    ids=["malformed", "deeply-nested", "form", "no-content-type", "too-large"],
)
def test_bad_bodies(client, spec, kwargs, status):
    rv = client.post("/params", **kwargs)
    assert rv.status_code == status
    assert rv.content_type == "application/problem+json"
    assert rv.get_json()["status"] == status


def test_wrong_method_and_route(client):
    assert client.get("/params").status_code == 405
    assert client.post("/nope", json={}).status_code == 404


def test_layers_lists_the_registry(client, spec):
    rv = client.get("/layers")
    validate_response(spec, "/layers", "get", rv)
    described = {x["type"]: x for x in rv.get_json()["layers"]}
    assert set(described) == set(LAYERS)
    lstm_args = {a["name"]: a for a in described["LSTM"]["args"]}
    assert lstm_args["units"]["required"] is True
    assert lstm_args["recurrent_activation"]["default"] == "sigmoid"


@pytest.mark.parametrize("layer_type", sorted(LAYERS))
def test_layers_describes_each_call_interface(client, layer_type):
    described = {x["type"]: x for x in client.get("/layers").get_json()["layers"]}[layer_type]
    layer = LAYERS[layer_type]
    assert described["call_form"] == layer.call_form
    assert [a["name"] for a in described["call_args"]] == [a.name for a in layer.call_args]
    if layer.call_form == "list":
        low, high = layer.list_inputs
        assert described["list_inputs"] == {"min": low, "max": high}
    else:
        assert "list_inputs" not in described
    recurrent = layer_type in ("LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "Bidirectional")
    assert described["initial_state"] is recurrent


def test_layers_call_options_have_keras_defaults(client):
    described = {x["type"]: x for x in client.get("/layers").get_json()["layers"]}
    assert described["Subtract"]["list_inputs"] == {"min": 2, "max": 2}
    assert described["MultiHeadAttention"]["call_form"] == "query_value_key"
    options = {a["name"]: a for a in described["Attention"]["call_args"]}
    assert options["use_causal_mask"]["default"] is False
    assert options["return_attention_scores"]["kind"] == "bool"


def test_openapi_layer_enum_is_the_registry(spec):
    assert set(spec["components"]["schemas"]["LayerType"]["enum"]) == set(LAYERS)


def example_body(layer_type):
    """A model of one layer on its registry example: Sequential for a layer
    of one tensor, else a graph with one input per tensor of the call."""
    layer = LAYERS[layer_type]
    args, input_shape = layer.example
    if layer.call_form == "one":
        return {"input_shape": list(input_shape), "layers": [{"type": layer_type, **args}]}
    inputs = [{"name": f"in_{i}", "shape": list(shape)} for i, shape in enumerate(input_shape)]
    entry = {"type": layer_type, **args, "inputs": [x["name"] for x in inputs]}
    return {"inputs": inputs, "layers": [entry]}


@pytest.mark.parametrize("layer_type", sorted(LAYERS))
def test_every_layer_example_is_served(client, spec, layer_type):
    layer = LAYERS[layer_type]
    if layer.call_form != "one":
        # Several tensors: a Sequential spec of it is refused as Keras refuses
        # it; the graph form serves it.
        args, input_shape = layer.example
        body = {"input_shape": list(input_shape[0]), "layers": [{"type": layer_type, **args}]}
        rv = post(client, body)
        assert rv.status_code == 422, rv.get_json()
        validate_response(spec, "/params", "post", rv)
    rv = post(client, example_body(layer_type))
    assert rv.status_code == 200, rv.get_json()
    validate_response(spec, "/params", "post", rv)
    layer = rv.get_json()["layers"][-1]
    assert layer["type"] == layer_type
    assert layer["formula"].endswith(f"= {layer['params']}") or layer["params"] == 0


def test_unknown_lengths_are_null(client, spec):
    body = {
        "input_shape": [None, 3],
        "layers": [{"type": "LSTM", "units": 5, "return_sequences": True}],
    }
    rv = post(client, body)
    assert rv.status_code == 200, rv.get_json()
    validate_response(spec, "/params", "post", rv)
    layer = rv.get_json()["layers"][0]
    assert layer["output_shape"] == [None, None, 5]
    assert layer["params"] == 180 and layer["macs"] is None


def test_the_corpus_passes_the_schema(client):
    # Every spec of the Keras-oracle corpus is a request the API accepts as
    # such: the schema refuses none that the engine and Keras judge.
    from corpus import generate

    from modelspec.model import load_model_spec

    for body in generate(200, seed=1):
        load_model_spec(body)


def test_layer_dtype_policies_set_bytes_and_weight_dtypes(client, spec):
    body = copy.deepcopy(POLICY_SPEC)
    rv = post(client, body)
    assert rv.status_code == 200, rv.get_json()
    validate_response(spec, "/params", "post", rv)
    data = rv.get_json()
    assert (data["total_params"], data["param_bytes"]) == (64, 488)
    assert " Total params: 64 (488.00 B)" in data["summary"]
    assert [w["dtype"] for w in data["layers"][1]["weights"]] == ["bfloat16", "bfloat16"]
    body["layers"][1]["dtype"] = "int32"  # not a float policy
    rv = post(client, body)
    assert rv.status_code == 422
    assert "layers.1.dtype" in rv.get_json()["errors"]


# -- graphs (Functional models) -------------------------------------------------


def test_graph_answer(client, spec):
    """Counts, connections, inputs and outputs: Keras's for the same program
    (LSTM(8) on 3 features 384, on 4 features 416, Dense(16 → 2) 34)."""
    rv = post(client, SEQ2SEQ)
    assert rv.status_code == 200, rv.get_json()
    validate_response(spec, "/params", "post", rv)
    data = rv.get_json()
    assert data["name"] == "seq2seq"
    layers = {x["name"]: x for x in data["layers"]}
    assert [x["name"] for x in data["layers"]] == [
        "source", "target", "encoder", "decoder", "attention", "concatenate", "dense"
    ]  # fmt: skip
    assert [layers[n]["params"] for n in ("encoder", "decoder", "dense")] == [384, 416, 34]
    assert data["total_params"] == data["trainable_params"] == 834
    assert layers["decoder"]["connected_to"] == [
        "target[0][0]", "encoder[0][1]", "encoder[0][2]"
    ]  # fmt: skip
    assert layers["source"]["connected_to"] == []
    assert layers["encoder"]["output_shape"] == [[None, 7, 8], [None, 8], [None, 8]]
    assert data["inputs"] == [
        {"name": "source", "shape": [None, 7, 3]},
        {"name": "target", "shape": [None, 5, 4]},
    ]
    assert data["outputs"] == [{"name": "dense", "shape": [None, 5, 2]}]
    assert data["input_shape"] == [[None, 7, 3], [None, 5, 4]]
    assert data["output_shape"] == [None, 5, 2]
    assert "┃ Connected to" in data["summary"]
    assert " Total params: 834 (3.26 KB)" in data["summary"]


def test_shared_layer_counted_once(client, spec):
    body = {
        "inputs": [{"name": "a", "shape": [3]}, {"name": "b", "shape": [3]}],
        "layers": [
            {"type": "Dense", "units": 5, "name": "shared", "inputs": "a"},
            {"call": "shared", "inputs": "b"},
            {"type": "Add", "inputs": ["shared", "shared[1][0]"]},
        ],
    }
    data = post(client, body).get_json()
    shared = next(x for x in data["layers"] if x["name"] == "shared")
    assert shared["params"] == data["total_params"] == 20
    assert shared["connected_to"] == ["a[0][0]", "b[0][0]"]


def test_graph_as_keras_to_json(client, spec):
    """A Functional to_json (trimmed to what Keras reads), as an object and as text."""

    def tensor(name, node=0, index=0):
        return {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, index]}}

    doc = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "pair",
            "layers": [
                {"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
                 "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "x"}},
                {"module": "keras.layers", "class_name": "Dense", "name": "d",
                 "config": {"name": "d", "units": 2}, "build_config": {"input_shape": [None, 4]},
                 "inbound_nodes": [{"args": [tensor("x")], "kwargs": {}}]},
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["d", 0, 0]],
        },
    }  # fmt: skip
    for body in (doc, json.dumps(doc)):
        rv = post(client, body)
        assert rv.status_code == 200, rv.get_json()
        validate_response(spec, "/params", "post", rv)
        data = rv.get_json()
        assert [x["name"] for x in data["layers"]] == ["x", "d"]
        assert data["total_params"] == 10
        assert data["output_shape"] == [None, 2]  # one output, though given in a list
    doc["config"]["layers"][1]["build_config"]["input_shape"] = [None, 5]
    rv = post(client, doc)
    assert rv.status_code == 422
    validate_response(spec, "/params", "post", rv)
    assert "config.layers.1.build_config.input_shape" in rv.get_json()["errors"]


def graph_with(**changes):
    body = json.loads(json.dumps(SEQ2SEQ))
    for path, value in changes.items():
        where = body
        keys = path.split("__")
        for key in keys[:-1]:
            where = where[int(key) if key.isdigit() else key]
        where[keys[-1]] = value
    return body


@pytest.mark.parametrize(
    ("body", "path", "reason"),
    [
        # The schema's.
        (graph_with(layers__4__inputs=["concatenate"]), "layers.4.inputs", "one tensor"),
        (graph_with(layers__2__inputs="decoder"), "layers.2.inputs", "list"),
        (graph_with(outputs="dense[0]"), "outputs", "reference"),
        (graph_with(inputs__0__shape=[0]), "inputs.0.shape.0", "positive"),
        # The engine's, in Keras's words where Keras has some.
        (graph_with(layers__3__inputs=["decoder", "nope"]), "layers.3.inputs.1", "nope"),
        (graph_with(layers__1__initial_state=["encoder[0][7]"]), "layers.1.initial_state",
         "encoder"),
        (graph_with(layers__3__inputs=["decoder", "source"]), "layers.3",
         "requires inputs with matching shapes"),
    ],
)  # fmt: skip
def test_graph_refusals_are_422_naming_the_field(client, spec, body, path, reason):
    rv = post(client, body)
    assert rv.status_code == 422, rv.get_json()
    assert rv.content_type == "application/problem+json"
    validate_response(spec, "/params", "post", rv)
    errors = rv.get_json()["errors"]
    assert any(key.startswith(path) for key in errors), errors
    assert any(reason in message for messages in errors.values() for message in messages)


@pytest.mark.parametrize("width", [40, 76, 100, 250])
def test_line_length_sets_the_summary_width(client, spec, width):
    for body in (SEQ2SEQ, MANY_TO_MANY):
        rv = client.post(f"/params?line_length={width}", json=body)
        assert rv.status_code == 200
        validate_response(spec, "/params", "post", rv)
        table = [line for line in rv.get_json()["summary"].splitlines() if line[:1] in "┏│└"]
        assert {len(line) for line in table} == {width}


def test_line_length_is_part_of_the_cache_key(client):
    narrow = client.post("/params?line_length=60", json=SEQ2SEQ).get_json()["summary"]
    default = client.post("/params", json=SEQ2SEQ).get_json()["summary"]
    wide = client.post("/params?line_length=120", json=SEQ2SEQ).get_json()["summary"]
    assert len({narrow, default, wide}) == 3
    assert client.post("/params?line_length=76", json=SEQ2SEQ).get_json()["summary"] == default


@pytest.mark.parametrize("value", ["39", "251", "0", "-80", "x", "76.0", "", "9" * 5000])
def test_line_length_out_of_range_is_422(client, spec, value):
    rv = client.post(f"/params?line_length={value}", json=SEQ2SEQ)
    assert rv.status_code == 422
    validate_response(spec, "/params", "post", rv)
    assert rv.get_json()["errors"] == {"line_length": ["Must be an integer from 40 to 250."]}


def readme_section(title):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    return readme.split(f"\n### {title}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def test_readme_functional_examples_are_served_as_written(client):
    """The README's graph requests load, count as it says, and its worked
    summary is the API's."""
    section = readme_section("Functional models")
    blocks = re.findall(r"```json\n(.*?)```", section, re.DOTALL)
    requests = [json.loads(block) for block in blocks]
    bodies = [r for r in requests if "total_params" not in r]
    totals = []
    for body in bodies:
        rv = post(client, body)
        assert rv.status_code == 200, rv.get_json()
        totals.append(rv.get_json()["total_params"])
    assert totals == [834, 36387, 2400]
    summary = re.findall(r"and its `summary` is Keras's:\n\n```\n(.*?)```", section, re.DOTALL)
    assert summary == [post(client, bodies[0]).get_json()["summary"]]
    answer = next(r for r in requests if "total_params" in r)
    data = post(client, bodies[0]).get_json()
    for key in (
        "input_shape",
        "output_shape",
        "inputs",
        "outputs",
        "total_params",
        "macs",
        "param_bytes",
    ):
        assert answer[key] == data[key], key
    for written, served in zip(answer["layers"], data["layers"], strict=True):
        assert written == {k: served[k] for k in written}


def corpus_answers(client):
    """Each corpus request's answer (status and bytes), by kind: the
    Sequential and Functional corpora with the default options, and the
    first of each with every other option."""
    from corpus import generate
    from graph_corpus import generate as generate_graphs

    sequential, functional = generate(500, seed=0), generate_graphs(240, seed=0)
    queries = ["line_length=40", "line_length=250", "train_batch_size=7&optimizer=sgd"]
    kinds = {
        "sequential": [("", body) for body in sequential],
        "functional": [("", body) for body in functional],
        "options": [(q, body) for body in sequential[:40] + functional[:40] for q in queries],
    }
    for kind, requests in kinds.items():
        for query, body in requests:
            rv = client.post(f"/params?{query}" if query else "/params", json=body)
            yield kind, b"%d " % rv.status_code + rv.get_data()


#: SHA-256 of ``corpus_answers``, each kind's answers in order. They change
#: only with what the API answers (or with the corpora): a change here is a
#: change every client sees, byte for byte, so make it on purpose and
#: record the new digests.
CORPUS_DIGESTS = {
    "sequential": "755425cc3103c9480d1ebe6070a8478017de0c394ca3e2c5c1b0323d61455ec5",
    "functional": "27696ed325b93516371b5deb1d68d6ddccb4aa484146723344bc236bf024cc67",
    "options": "d4342bb100ab34f546516345d254f64d4237785050d4ee512ab382d03f2b645a",
}


def test_corpus_answers_are_byte_for_byte_the_recorded_ones(client):
    """Faster code must answer the same bytes: every corpus answer, valid
    model or refusal, held to the digests recorded when it was written."""
    import hashlib

    digests = {kind: hashlib.sha256() for kind in CORPUS_DIGESTS}
    for kind, answer in corpus_answers(client):
        digests[kind].update(answer)
    assert {kind: d.hexdigest() for kind, d in digests.items()} == CORPUS_DIGESTS
