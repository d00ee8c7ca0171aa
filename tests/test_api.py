import json

import pytest
from openapi_check import validate_response

from seqlab import LAYERS

ONE_TO_ONE = {
    "input_shape": [1, 1],
    "layers": [{"type": "LSTM", "units": 5}, {"type": "Dense", "units": 1}],
}
MANY_TO_ONE = {
    "input_shape": [5, 1],
    "layers": [{"type": "LSTM", "units": 5}, {"type": "Dense", "units": 5}],
}
MANY_TO_MANY = {
    "input_shape": [5, 1],
    "layers": [
        {"type": "LSTM", "units": 5, "return_sequences": True},
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1}},
    ],
}


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

    from service.schemas import load_model_spec

    for body in generate(200, seed=1):
        load_model_spec(body)


def test_layer_dtype_policies_set_bytes_and_weight_dtypes(client, spec):
    body = {
        "input_shape": [5, 1],
        "layers": [
            {"type": "LSTM", "units": 3, "dtype": "float64"},
            {"type": "Dense", "units": 1, "dtype": "bfloat16"},
        ],
    }
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
