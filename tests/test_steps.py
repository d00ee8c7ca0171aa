"""A job on the steps an earlier job of the same structure traced
(worker/steps.py) learns what Keras's plain ``fit`` of a fresh model learns,
exactly: the same history, epoch by epoch, and the same predictions as the
job that traced them. JAX, in a process of its own (tests/steps_compare.py).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("steps_compare.py")

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def compared():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_every_case_ran_again_on_the_kept_steps(compared):
    assert set(compared) == {"seed", "shuffled", "validation"}
    assert all(run["reused"] for run in compared.values())
    # The epochs function is kept too: what a short job without validation
    # data fits with (worker/fitting.py, fit_compiled).
    assert all(run["reused_epochs"] for run in compared.values())


def test_reused_steps_give_keras_plain_fit_history_exactly(compared):
    for case, run in compared.items():
        assert run["again"]["history"] == run["plain"], case
        assert run["first"]["history"] == run["plain"], case


def test_reused_steps_give_the_same_model(compared):
    for case, run in compared.items():
        assert run["again"]["predictions"] == run["first"]["predictions"], case
        assert run["again"]["final_metrics"] == run["first"]["final_metrics"], case


def test_structure_key_names_spec_and_compile_options():
    from worker.steps import structure_key

    spec = {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 5}]}
    same = {"layers": [{"units": 5, "type": "LSTM"}], "input_shape": [5, 1]}
    assert structure_key(spec, {"loss": "mse"}) == structure_key(same, {"loss": "mse"})
    assert structure_key(spec, {"loss": "mse"}) != structure_key(spec, {"loss": "mae"})
    wider = {**spec, "layers": [{"type": "LSTM", "units": 6}]}
    assert structure_key(spec, {"loss": "mse"}) != structure_key(wider, {"loss": "mse"})
    # Options as the API stores them (null, empty) key as if left out.
    stored = {"loss": "mse", "metrics": [], "learning_rate": None}
    assert structure_key(spec, stored) == structure_key(spec, {"loss": "mse"})
