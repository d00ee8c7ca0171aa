"""A short job's compiled fit (worker/fitting.py ``fit_compiled``: whole
epochs of Keras's train step in one XLA program, JAX) learns exactly what
Keras's plain ``fit`` of a fresh model learns: the same history, epoch by
epoch, the same weights and optimizer state, the same predictions; the
seed's three programs at their full length among them. In a process of its
own (tests/compiled_compare.py): Keras binds its backend at import.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("compiled_compare.py")

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def done():
    ran = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    return json.loads(ran.stdout)


@pytest.fixture(scope="module")
def compared(done):
    return done["cases"]


def test_every_case_ran_compiled(compared):
    assert set(compared) == {
        "one_to_one", "many_to_one", "many_to_many", "short_batches", "one_short_batch",
        "embedding", "graph", "cancelled", "handed_over",
    }  # fmt: skip
    for case, run in compared.items():
        assert run["path"] == "compiled", case
        # Several epochs a call once the pace is known: a call per epoch
        # would be the per-step loop again.
        if case not in ("cancelled", "handed_over"):
            assert sum(run["calls"]) == len(run["worker"]["history"]["loss"]), case
            assert max(run["calls"]) > 1, case


def test_compiled_fit_equals_keras_plain_fit_exactly(compared):
    for case, run in compared.items():
        worker, plain = run["worker"], run["plain"]
        assert worker["history"] == plain["history"], case
        assert worker["weights"] == plain["weights"], case
        assert worker["optimizer"] == plain["optimizer"], case
        assert worker["predictions"] == plain["predictions"], case


def test_seed_programs_run_their_epochs(compared):
    from seqlab.examples import EXAMPLES

    for name in ("one_to_one", "many_to_one", "many_to_many"):
        assert len(compared[name]["worker"]["history"]["loss"]) == EXAMPLES[name]["fit"]["epochs"]


def test_a_cancel_ends_the_history_and_the_model_at_one_epoch(compared):
    """Seen after the first call (one epoch): the history holds that epoch
    and the model is that of a plain fit of one epoch (see the case)."""
    run = compared["cancelled"]
    assert run["calls"] == [1]
    assert len(run["worker"]["history"]["loss"]) == 1


def test_slow_epochs_hand_the_fit_over_to_keras_loop_exactly(compared):
    """Epochs slower than COMPILED_SLOW_EPOCH_SECONDS (here, all): the
    second call's epoch is timed, then Keras's loop runs the other 38, on
    the state and the sample orders the compiled calls left."""
    run = compared["handed_over"]
    assert run["calls"] == [1, 1]
    assert len(run["worker"]["history"]["loss"]) == 40


def test_the_suites_long_jobs_run_keras_loop():
    """Tests that act on a job while it trains (kill, Redis blips, stream
    ends) train KERAS_LOOP_EPOCHS: too many steps to run compiled in a blink."""
    from specs import KERAS_LOOP_EPOCHS

    from worker.fitting import COMPILED_MAX_STEPS

    assert KERAS_LOOP_EPOCHS > COMPILED_MAX_STEPS


def test_which_fits_run_compiled(done):
    """Short jobs on small data (the bounds included), compiled by XLA."""
    assert done["fits"] == {
        "seed": True,
        "graph_at_the_bound": True,
        "past_the_steps": False,
        "past_the_epoch_steps": False,
        "past_the_bytes": False,
        "eager": False,
    }
