"""What a worker's backend cannot train (seqlab/backends.py), held to real
Keras under both backends, and what the API and the worker do about it:
workers publish their backend, the API refuses what a live worker of the
queue cannot train (or warns when none is alive), and a worker that gets
such a job anyway fails it naming its backend and the layer."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_worker
from openapi_check import validate_response

from jobs import presence
from seqlab import analyze
from seqlab.backends import backend_problems
from service import create_app

ROOT = Path(__file__).resolve().parent.parent

MHA = {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 4, "inputs": ["q", "q"]}


def attention(**args):
    return {"inputs": [{"name": "q", "shape": [5, 3]}], "layers": [{**MHA, **args}]}


def sequential(*layers):
    return {"input_shape": [5, 3], "layers": list(layers)}


#: name -> (model, JAX trains it): each rule, and its near misses.
CASES = {
    "lstm_float16": (sequential({"type": "LSTM", "units": 4, "dtype": "float16"}), False),
    "bidirectional_gru_float16": (
        sequential(
            {"type": "Bidirectional", "layer": {"type": "GRU", "units": 4, "dtype": "float16"}}
        ),
        False,
    ),  # fmt: skip
    "dense_float16_orthogonal": (
        sequential(
            {"type": "Dense", "units": 4, "dtype": "float16", "kernel_initializer": "orthogonal"}
        ),
        False,
    ),  # fmt: skip
    "mha_value_dim": (attention(value_dim=2), False),
    "mha_mixed_float16": (attention(dtype="mixed_float16"), False),
    "lstm_mixed_float16": (
        sequential({"type": "LSTM", "units": 4, "dtype": "mixed_float16"}),
        True,
    ),
    "lstm_float16_glorot": (
        sequential(
            {
                "type": "LSTM",
                "units": 4,
                "dtype": "float16",
                "recurrent_initializer": "glorot_uniform",
            }
        ),
        True,
    ),  # fmt: skip
    "mha_value_dim_equal": (attention(value_dim=4), True),
}

#: Builds each case with the worker's builder and fits it one epoch, in a
#: fresh process per backend; prints {name: error or null}.
PROGRAM = """
import json, os, sys
import numpy as np
from worker.builder import build_model
cases = json.loads(sys.stdin.read())
outcome = {}
for name, spec in cases.items():
    try:
        model = build_model(spec)
        y = np.zeros((4, *model.output_shape[1:]), "float32")
        model.compile(optimizer="adam", loss="mse")
        model.fit(np.ones((4, 5, 3), "float32"), y, epochs=1, verbose=0)
        outcome[name] = None
    except Exception as error:
        outcome[name] = f"{type(error).__name__}: {error}"[:200]
print(json.dumps(outcome))
"""


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_rules(name):
    model, jax_trains = CASES[name]
    report = analyze(model)
    problems = backend_problems(report, "jax")
    assert bool(problems) is not jax_trains
    assert backend_problems(report, "tensorflow") == []
    for problem in problems:
        assert problem.startswith('Layer "') and "cannot train under JAX: " in problem


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_keras_fails_exactly_where_the_rules_say(backend):
    cases = {name: model for name, (model, _) in CASES.items()}
    rv = subprocess.run(
        [sys.executable, "-c", PROGRAM], input=json.dumps(cases), capture_output=True,
        text=True, cwd=ROOT, timeout=300,
        env={"PATH": "/usr/bin:/bin", "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT),
             "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(Path.home())},
    )  # fmt: skip
    assert rv.returncode == 0, rv.stderr[-2000:]
    outcome = json.loads(rv.stdout.splitlines()[-1])
    for name, (_, jax_trains) in CASES.items():
        trains = backend == "tensorflow" or jax_trains
        assert (outcome[name] is None) is trains, (name, outcome[name])


def wait_for_backends(app, queue, timeout=15.0):
    deadline = time.monotonic() + timeout
    while (live := presence.live_backends(app.extensions["jobs"].redis, queue)) is None:
        assert time.monotonic() < deadline, "the worker published no heartbeat"
        time.sleep(0.1)
    return live


def body(model):
    """A train request of ``model`` on a few zero samples."""
    report = analyze(model)
    out = [d or 3 for d in report.output_shape[1:]]
    zeros = lambda shape: [zeros(shape[1:]) for _ in range(shape[0])] if shape else 0.0  # noqa: E731
    return {"model": model, "data": {"x": zeros([2, 5, 3]), "y": zeros([2, *out])},
            "fit": {"epochs": 1, "batch_size": 2}}  # fmt: skip


def test_workers_publish_their_backend(jobs_app, worker, queue):
    assert wait_for_backends(jobs_app, queue) == {"jax"}


def test_a_model_a_live_worker_cannot_train_is_refused(jobs_app, worker, queue, spec):
    wait_for_backends(jobs_app, queue)
    jobs = jobs_app.extensions["jobs"]
    before = jobs.count()
    rv = jobs_app.test_client().post("/train", json=body(CASES["lstm_float16"][0]))
    assert rv.status_code == 422
    validate_response(spec, "/train", "post", rv)
    (reason,) = rv.get_json()["errors"]["model"]
    assert reason.startswith(f"The workers serving the queue {queue!r} run JAX. ")
    assert 'Layer "lstm" (LSTM) cannot train under JAX: its float16 recurrent_kernel' in reason
    assert jobs.count() == before


def test_a_tensorflow_worker_trains_it(redis_url, tf_queue, tf_worker):
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": tf_queue})
    assert wait_for_backends(app, tf_queue) == {"tensorflow"}
    client = app.test_client()
    rv = client.post("/train", json=body(CASES["mha_value_dim"][0]))
    assert rv.status_code == 202, rv.get_json()
    deadline = time.monotonic() + 120
    while (job := client.get(rv.headers["Location"]).get_json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert job["status"] == "succeeded", job.get("error")
    assert "warnings" not in job


def test_with_no_worker_alive_it_is_queued_with_a_warning_and_the_worker_says_why(
    redis_url, tmp_path, spec
):
    queue = f"idle-backends-{time.monotonic_ns()}"
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue})
    client = app.test_client()
    rv = client.post("/train", json=body(CASES["mha_value_dim"][0]))
    assert rv.status_code == 202, rv.get_json()
    job = client.get(rv.headers["Location"])
    validate_response(spec, "/jobs/{job_id}", "get", job)
    waits, warning = job.get_json()["warnings"]
    assert waits.startswith(f"No worker serves the queue {queue!r} now: the job waits until")
    assert warning.startswith(f"No worker serves the queue {queue!r} now, so its backend is ")
    assert "a JAX worker would refuse the job. " in warning
    # A JAX worker that comes up takes the job, and fails it saying why.
    with run_worker(redis_url, queue, tmp_path / "worker.log", SEQLAB_WARM_UP="0"):
        deadline = time.monotonic() + 120
        while (doc := client.get(rv.headers["Location"]).get_json())["status"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        while doc["status"] == "running":
            doc = client.get(rv.headers["Location"]).get_json()
            time.sleep(0.2)
    assert doc["status"] == "failed"
    assert doc["error"]["type"] == "TrainingFailed"
    assert doc["error"]["message"] == backend_problems(analyze(CASES["mha_value_dim"][0]), "jax")[0]
