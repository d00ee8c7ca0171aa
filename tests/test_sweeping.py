"""A group of a sweep's trials trained as one vectorized program
(worker/sweeping.py ``train_group``, JAX) learns, trial by trial, what each
trial's lone job (``worker.training.train``) learns: the same history epoch
by epoch (relative 1e-4, the issue's bound; in practice float32 rounding),
the same saved weights and predictions; with shuffling, dropout, a short
last batch, a metric, and validation data. A cancel ends every trial with
its history so far. In a process of its own (tests/sweeping_compare.py):
Keras binds its backend at import.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("sweeping_compare.py")
RTOL = 1e-4

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def compared():
    ran = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    return json.loads(ran.stdout)


def flat(values):
    if isinstance(values, list):
        return [x for v in values for x in flat(v)]
    return [values]


CASES = ("seed", "shuffled", "validated")


@pytest.mark.parametrize("case", CASES)
def test_the_group_ran_as_one_vectorized_program(compared, case):
    assert compared[case]["path"] == "vectorized"
    assert len(compared[case]["trials"]) == 4


@pytest.mark.parametrize("case", CASES)
def test_each_trials_history_is_its_lone_jobs(compared, case):
    for trial in compared[case]["trials"]:
        group, lone = trial["group"], trial["lone"]
        assert group["status"] == "succeeded"
        assert set(group["history"]) == set(lone["history"]), trial["values"]
        for name, values in lone["history"].items():
            assert len(group["history"][name]) == len(values)
            for epoch, (a, b) in enumerate(zip(group["history"][name], values, strict=True)):
                assert math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-7), (
                    case, trial["values"], name, epoch, a, b,
                )  # fmt: skip
    if case == "validated":
        names = set(compared[case]["trials"][0]["group"]["history"])
        assert names == {"loss", "mae", "val_loss", "val_mae"}


@pytest.mark.parametrize("case", CASES)
def test_each_trials_model_and_predictions_are_its_lone_jobs(compared, case):
    for trial in compared[case]["trials"]:
        group, lone = trial["group"], trial["lone"]
        assert group["zip"]  # a .keras file
        for a, b in zip(flat(group["weights"]), flat(lone["weights"]), strict=True):
            assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6), (case, trial["values"])
        for a, b in zip(flat(group["predictions"]), flat(lone["predictions"]), strict=True):
            assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6), (case, trial["values"])


def test_trials_of_other_seeds_and_rates_learn_other_things(compared):
    """The comparison could not pass by training one trial four times."""
    finals = {tuple(t["values"]): t["group"]["history"]["loss"][-1]
              for t in compared["shuffled"]["trials"]}  # fmt: skip
    assert len(set(finals.values())) == 4


def test_a_cancel_ends_every_trial_with_its_history_so_far(compared):
    stopped = compared["stop"]["stopped"]
    assert len(stopped) == 4
    for outcome in stopped:
        assert outcome["status"] == "cancelled"
        assert outcome["stopped"]["reason"] == "cancelled"
        assert 1 <= len(outcome["history"]["loss"]) < 5000
        assert outcome["zip"]  # its model so far is kept, as a lone job's
