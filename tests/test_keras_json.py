import pytest

from seqlab import SpecError
from seqlab import from_keras_json
from seqlab import is_keras_json


def layer(class_name, **config):
    return {"module": "keras.layers", "class_name": class_name, "config": config,
            "registered_name": None}  # fmt: skip


def model(*layers, **config):
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": "sequential", "layers": list(layers), **config}}  # fmt: skip


def test_input_layer_gives_shape_batch_and_dtype():
    doc = model(
        layer("InputLayer", batch_shape=[8, 10], dtype="int32", name="input_layer"),
        layer("Embedding", name="embedding", input_dim=100, output_dim=8,
              dtype={"class_name": "DTypePolicy", "config": {"name": "float32"}}),
    )  # fmt: skip
    assert from_keras_json(doc) == {
        "name": "sequential",
        "input_shape": [10],
        "batch_size": 8,
        "dtype": "int32",
        "layers": [
            {
                "type": "Embedding",
                "name": "embedding",
                "input_dim": 100,
                "output_dim": 8,
                "dtype": "float32",
            }
        ],
    }


@pytest.mark.parametrize(
    ("dtype", "policy"),
    [
        ({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float64"},
          "registered_name": None}, "float64"),
        ({"class_name": "FloatDTypePolicy", "config": {"name": "mixed_float16"}}, "mixed_float16"),
        ("bfloat16", "bfloat16"),
        (None, None),
        # Found by fuzzing: a class_name that is not a string.
        (odd := {"class_name": ["DTypePolicy"], "config": {"name": "float32"}}, odd),
        # Left for the schema to refuse: a quantized policy is not a float one.
        (qp := {"class_name": "QuantizedDTypePolicy", "config": {"mode": "int8",
                "source_name": "float32"}}, qp),
    ],
)  # fmt: skip
def test_layer_dtype_policies_are_read(dtype, policy):
    doc = model(layer("InputLayer", batch_shape=[None, 3]), layer("Dense", units=2, dtype=dtype))
    assert from_keras_json(doc)["layers"][0]["dtype"] == policy


def test_nested_layers_and_keras_objects():
    reg = {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01},
           "registered_name": None}  # fmt: skip
    doc = model(
        layer("InputLayer", batch_shape=[None, 5, 1]),
        layer("Bidirectional", name="bi", merge_mode="sum",
              layer=layer("LSTM", name="forward_lstm", units=3, kernel_regularizer=reg),
              backward_layer=layer("LSTM", name="backward_lstm", units=3, go_backwards=True)),
    )  # fmt: skip
    (bi,) = from_keras_json(doc)["layers"]
    assert bi["layer"]["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}
    assert bi["backward_layer"] == {"type": "LSTM", "name": "backward_lstm", "units": 3,
                                    "go_backwards": True}  # fmt: skip


def test_build_input_shape_without_input_layer():
    doc = model(layer("Dense", units=2), build_input_shape=[None, 3])
    assert from_keras_json(doc)["input_shape"] == [3]


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"class_name": "Model", "config": {"layers": []}}, "class_name"),
        ({"class_name": "Sequential", "config": {}}, "config.layers"),
        (model(layer("Dense", units=2)), "config.layers"),
        (model(layer("InputLayer", batch_shape=[None, 3]), {"units": 2}), "layers.0"),
        # Found by schemathesis: a null config where a layer's should be.
        (model({"class_name": None, "config": None}), "config.layers"),
        (model({"class_name": "InputLayer", "config": None}), "config.layers"),
    ],
)
def test_refusals_name_the_place(doc, path):
    with pytest.raises(SpecError) as info:
        from_keras_json(doc)
    assert info.value.path == path


def test_detection():
    assert is_keras_json(model())
    assert not is_keras_json({"input_shape": [1], "layers": []})
    assert not is_keras_json([1])
