"""The request schemas of service/schemas.py, loaded directly."""

import marshmallow as ma
import pytest

from service.schemas import load_model_spec

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
