"""seqlab/sweeps.py: a sweep's trials, their structures, the best and the status."""

import math

import pytest

from seqlab.sweeps import VECTOR_PATHS
from seqlab.sweeps import SweepError
from seqlab.sweeps import best_trial
from seqlab.sweeps import check_vary
from seqlab.sweeps import default_objective
from seqlab.sweeps import expand
from seqlab.sweeps import groups
from seqlab.sweeps import set_path
from seqlab.sweeps import structure_key
from seqlab.sweeps import sweep_status

BASE = {
    "model": {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 5}]},
    "compile": {"optimizer": "adam", "loss": "mse"},
    "fit": {"epochs": 3, "batch_size": 1},
    "seed": 0,
}


def test_trials_are_the_cartesian_product_the_last_path_fastest():
    trials = expand(BASE, {"seed": [0, 1, 2], "compile.learning_rate": [0.01, 0.05]})
    assert [t.number for t in trials] == list(range(6))
    assert [t.values for t in trials[:3]] == [
        {"seed": 0, "compile.learning_rate": 0.01},
        {"seed": 0, "compile.learning_rate": 0.05},
        {"seed": 1, "compile.learning_rate": 0.01},
    ]
    assert trials[3].request["seed"] == 1
    assert trials[3].request["compile"] == {
        "optimizer": "adam",
        "loss": "mse",
        "learning_rate": 0.05,
    }


def test_each_trial_is_a_copy_of_its_own():
    trials = expand(BASE, {"model.layers.0.units": [4, 8]})
    trials[0].request["model"]["layers"][0]["units"] = 99
    assert trials[1].request["model"]["layers"][0]["units"] == 8
    assert BASE["model"]["layers"][0]["units"] == 5


def test_a_path_indexes_lists_and_creates_missing_members():
    request = {"model": {"layers": [{"type": "Dense"}]}}
    set_path(request, "model.layers.0.units", 3)
    set_path(request, "fit.epochs", 7)
    assert request == {"model": {"layers": [{"type": "Dense", "units": 3}]}, "fit": {"epochs": 7}}


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("model.layers.5.units", "a list of 1 items: '5' is not the index"),
        ("model.layers.x.units", "'x' is not the index"),
        ("model.layers.0.units.deeper", "is 3, not an object or a list"),
    ],
)
def test_a_path_that_leads_nowhere_is_refused_naming_it(path, words):
    request = {"model": {"layers": [{"units": 3}]}}
    with pytest.raises(SweepError) as caught:
        set_path(request, path, 1)
    assert caught.value.path == f"vary.{path}"
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("vary", "path", "words"),
    [
        ([1], "vary", "an object of dotted paths"),
        ({}, "vary", "an object of dotted paths"),
        ({"data.x": [1]}, "vary.data.x", "must start with one of model, compile, fit, seed"),
        ({"example": ["a"]}, "vary.example", "must start with one of"),
        ({"fit..epochs": [1]}, "vary.fit..epochs", "Not a path"),
        ({"seed": []}, "vary.seed", "non-empty list"),
        ({"seed": 3}, "vary.seed", "non-empty list"),
        ({"seed": list(range(20)), "fit.epochs": list(range(1, 15))}, "vary", "20 × 14 = 280"),
    ],
)
def test_vary_is_checked_naming_the_field(vary, path, words):
    with pytest.raises(SweepError) as caught:
        check_vary(vary, 256)
    assert caught.value.path == path
    assert words in caught.value.message


def test_the_trial_limit_is_the_product_of_the_lists():
    assert check_vary({"seed": list(range(16)), "compile.learning_rate": [0.1] * 16}, 256)
    with pytest.raises(SweepError, match="over the limit of 255"):
        check_vary({"seed": list(range(16)), "compile.learning_rate": [0.1] * 16}, 255)


def test_trials_differing_in_seed_and_learning_rate_share_a_structure():
    assert VECTOR_PATHS == ("seed", "compile.learning_rate")
    trials = expand(
        BASE, {"model.layers.0.units": [4, 8], "seed": [0, 1], "compile.learning_rate": [0.1, 0.2]}
    )
    keys = [structure_key(t.request) for t in trials]
    assert groups(keys) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    # The data never splits a group: every trial shares it.
    assert structure_key({**BASE, "data": 1}) == structure_key({**BASE, "data": 2})


def test_the_default_objective_is_the_validation_loss_where_logged():
    assert default_objective(["loss", "mae"]) == {"metric": "loss", "mode": "min"}
    assert default_objective(["loss", "val_loss"]) == {"metric": "val_loss", "mode": "min"}


def test_the_best_trial_by_the_objective_skips_trials_without_a_value():
    results = {
        0: {"final_metrics": {"loss": 0.5, "mae": 0.2}},
        1: {"final_metrics": {"loss": 0.1, "mae": 0.9}},
        2: None,
        3: {"final_metrics": {"loss": None}},
        4: {"final_metrics": {"loss": math.nan}},
        5: {"final_metrics": {"loss": 0.1}},
    }
    assert best_trial(results, {"metric": "loss", "mode": "min"}) == {
        "trial": 1, "value": 0.1, "metric": "loss", "mode": "min",
    }  # fmt: skip
    assert best_trial(results, {"metric": "mae", "mode": "max"})["trial"] == 1
    assert best_trial({0: None}, {"metric": "loss", "mode": "min"}) is None


@pytest.mark.parametrize(
    ("statuses", "status"),
    [
        (["queued", "queued"], "queued"),
        (["queued", "running"], "running"),
        (["succeeded", "queued"], "running"),
        (["succeeded", "succeeded"], "succeeded"),
        (["succeeded", "failed"], "failed"),
        (["failed", "cancelled"], "cancelled"),
    ],
)
def test_a_sweeps_status_sums_up_its_trials(statuses, status):
    assert sweep_status(statuses) == status
