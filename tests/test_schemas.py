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
