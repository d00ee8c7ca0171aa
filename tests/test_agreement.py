"""The worker holds the model Keras built to the engine's report."""

import copy

import keras_oracle as oracle
import pytest

from seqlab import analyze
from worker.agreement import EngineMismatch
from worker.agreement import check_agreement
from worker.agreement import differences
from worker.builder import build_model

pytestmark = pytest.mark.keras

SPEC = {
    "input_shape": [5, 2],
    "layers": [
        {"type": "LSTM", "units": 4, "return_sequences": True},
        {"type": "BatchNormalization"},
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1}, "trainable": False},
    ],
}


@pytest.fixture(scope="module")
def built():
    oracle.import_keras()
    return build_model(SPEC), analyze(SPEC).counts()


def test_keras_agrees_with_the_engine(built):
    model, expected = built
    assert differences(model, expected) == []
    check_agreement(model, expected)


def test_every_difference_is_named(built):
    model, expected = built
    wrong = copy.deepcopy(expected)
    wrong["layers"][0]["output_shape"] = [None, 5, 5]
    wrong["trainable_params"] += 1
    wrong["non_trainable_params"] -= 1
    wrong["layers"][2]["name"] = "dense_9"
    found = differences(model, wrong)
    assert found == [
        f"trainable parameters: Keras {expected['trainable_params']:,}, "
        f"seqlab {wrong['trainable_params']:,}",
        f"non-trainable parameters: Keras {expected['non_trainable_params']:,}, "
        f"seqlab {wrong['non_trainable_params']:,}",
        "layer 'lstm' output_shape: Keras [None, 5, 4], seqlab [None, 5, 5]",
        "layer 'dense_9' name: Keras time_distributed, seqlab dense_9",
    ]
    with pytest.raises(EngineMismatch, match="a seqlab bug; the job was not trained"):
        check_agreement(model, wrong)
