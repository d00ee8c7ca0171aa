"""seqlab/fit.py: Keras's ``fit`` rules the API checks and the worker follows.

What Keras itself logs is held to these names by tests/test_graph_train.py
(per-output histories of a real fit); here, the rules on their own."""

from __future__ import annotations

import doctest

import pytest

import seqlab.fit
from seqlab.fit import history_names
from seqlab.fit import per_output
from seqlab.fit import split_samples


def test_doctests():
    assert doctest.testmod(seqlab.fit).failed == 0


@pytest.mark.parametrize(
    ("samples", "split", "expected"),
    [(10, 0.0, (10, 0)), (10, 0.2, (8, 2)), (3, 0.5, (1, 2)), (1, 0.99, (0, 1))],
)
def test_split_samples_floors_the_training_part(samples, split, expected):
    assert split_samples(samples, split) == expected


def test_per_output_reads_one_value_a_list_or_by_name():
    names = ["a", "b"]
    assert per_output("mse", names, 1) == "mse"
    assert per_output(["mse", "mae"], names, 1) == "mae"
    assert per_output({"b": "mae"}, names, 1) == "mae"
    assert per_output({"b": "mae"}, names, 0) is None
    # A list of metrics is every output's, not one per output.
    assert per_output(["mae", "mse"], names, 1, listed=False) == ["mae", "mse"]


@pytest.mark.parametrize(
    ("outputs", "metrics", "expected"),
    [
        (["dense"], None, ["loss"]),
        (["dense"], ["mae", "mse"], ["loss", "mae", "mse"]),
        (["dense"], {"dense": ["mae"]}, ["loss", "mae"]),
        (["a", "b"], ["mae"], ["loss", "a_loss", "b_loss", "a_mae", "b_mae"]),
        (["a", "b"], {"b": ["mse", "mae"]}, ["loss", "a_loss", "b_loss", "b_mse", "b_mae"]),
    ],
)
def test_history_names_are_keras_3s(outputs, metrics, expected):
    assert history_names(outputs, metrics) == expected
