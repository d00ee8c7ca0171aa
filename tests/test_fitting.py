"""The fused fit (all epochs in one ``fit``) learns what Keras's plain ``fit``
learns, epoch by epoch, for every metric of the allowlist, on both backends.

Each backend runs in a process of its own (tests/fit_compare.py): Keras
binds its backend when it is first imported.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from service.jobs.schemas import METRICS

SCRIPT = Path(__file__).with_name("fit_compare.py")

pytestmark = pytest.mark.keras


BACKENDS = ("jax", "tensorflow")


@pytest.fixture(scope="module")
def comparisons(tmp_path_factory):
    """Both backends' comparisons, run side by side (each in a process of
    its own: Keras binds its backend at import), into files (a pipe nobody
    reads yet would stall one); started when the first test asks for one."""
    folder = tmp_path_factory.mktemp("fit_compare")
    runs = {}
    for backend in BACKENDS:
        with (
            open(folder / f"{backend}.out", "wb") as out,
            open(folder / f"{backend}.err", "wb") as err,
        ):
            runs[backend] = subprocess.Popen([sys.executable, str(SCRIPT), backend],
                                             stdout=out, stderr=err)  # fmt: skip
    yield folder, runs
    for run in runs.values():
        run.kill()
        run.wait()


@pytest.fixture(scope="module", params=BACKENDS)
def compared(request, comparisons):
    backend = request.param
    folder, runs = comparisons
    code = runs[backend].wait(timeout=900)
    assert code == 0, (folder / f"{backend}.err").read_text()[-3000:]
    return backend, json.loads((folder / f"{backend}.out").read_text())


def close(a, b):
    # float32 rounding: the two runs compute the same steps in the same order.
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)


def test_every_allowlisted_metric_is_compared():
    from fit_compare import CASES

    assert {m for _, metrics, _, _ in CASES.values() for m in metrics} == set(METRICS)


def test_unshuffled_epochs_equal_plain_fit(compared):
    _, runs = compared
    for case, run in runs["unshuffled"].items():
        fused, plain = run["fused"], run["plain"]
        assert set(fused) == set(plain), case
        for name in plain:
            pairs = zip(fused[name], plain[name], strict=True)
            assert all(close(a, b) for a, b in pairs), (case, name, fused[name], plain[name])
        assert run["steps"][0] == run["steps"][1]


def test_shuffled_epochs_draw_keras_permutations_under_jax(compared):
    backend, runs = compared
    for case, run in runs["shuffled"].items():
        fused, plain = run["fused"], run["plain"]
        assert set(fused) == set(plain)
        assert run["steps"][0] == run["steps"][1]
        if backend == "jax":
            # The very batches fit(shuffle=True) forms, in the same order.
            for name in plain:
                pairs = zip(fused[name], plain[name], strict=True)
                assert all(close(a, b) for a, b in pairs), (case, name)


def test_early_stopping_equals_keras_early_stopping(compared):
    """With ``fit.early_stopping`` the worker stops at the epoch Keras's own
    ``EarlyStopping`` stops at, keeps the same (restored) weights, and says
    why: fused without validation data, epoch by epoch with it.

    Under TensorFlow, a shuffled fused fit draws other (equally uniform)
    permutations than Keras's ``tf.data`` (see worker/fitting.py): its
    epochs' values then differ from a plain fit's, and only its stopping is
    checked, against Keras's ``EarlyStopping`` told of its own epochs."""
    from fit_compare import EARLY_CASES
    from fit_compare import EARLY_EPOCHS
    from fit_compare import EARLY_RUN_ALL

    backend, runs = compared
    assert set(runs["early_stopping"]) == set(EARLY_CASES)
    for case, run in runs["early_stopping"].items():
        worker, plain = run["worker"], run["plain"]
        _, split, shuffle, _ = EARLY_CASES[case]
        assert worker["path"] == ("per_epoch" if split else "fused"), case
        # Keras's EarlyStopping, told of the worker's own epochs, stops where it stopped.
        replayed = worker["replayed"]
        assert replayed["epochs"] == worker["epochs"] == len(worker["history"]["loss"]), case
        assert (replayed["best_epoch"], replayed["best"]) == (
            worker["best_epoch"],
            worker["best"],
        ), case
        if case in EARLY_RUN_ALL:
            assert plain["epochs"] == EARLY_EPOCHS, case
            assert worker["reason"] == "epochs", case
        else:
            # Stops early, so that it tests stopping, not the epoch count.
            assert plain["epochs"] < EARLY_EPOCHS, case
            assert worker["reason"] == "early_stopping", case
        if backend != "jax" and shuffle and worker["path"] == "fused":
            assert set(worker["history"]) == set(plain["history"]), case
            continue
        for key in ("epochs", "best_epoch", "restored"):
            assert worker[key] == plain[key], (case, key, worker[key], plain[key])
        assert set(worker["history"]) == set(plain["history"]), case
        for name, values in plain["history"].items():
            pairs = zip(worker["history"][name], values, strict=True)
            assert all(close(a, b) for a, b in pairs), (case, name)
        pairs = zip(worker["predictions"], plain["predictions"], strict=True)
        assert all(close(a, b) for a, b in pairs), case


def test_graph_fit_equals_plain_fit(compared):
    """A two-input, two-output Functional model (losses, loss weights and
    metrics by output name): the worker's fused fit logs, epoch by epoch,
    what Keras's plain ``fit`` on the lists of arrays logs, per-output losses
    included; shuffled too under JAX (the same permutations)."""
    backend, runs = compared
    for case, run in runs["graph"].items():
        fused, plain = run["fused"], run["plain"]
        assert set(plain) == {"loss", "reg_loss", "cls_loss", "reg_mae", "cls_accuracy"}
        assert set(fused) == set(plain)
        if case == "shuffled" and backend != "jax":
            continue
        for name in plain:
            pairs = zip(fused[name], plain[name], strict=True)
            assert all(close(a, b) for a, b in pairs), (case, name, fused[name], plain[name])
        assert run["predictions"] == {"reg": [10, 3], "cls": [10, 3]}
