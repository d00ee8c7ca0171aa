"""Sweeps trained by a real worker, on both backends: each trial's history
is what a lone ``POST /train`` job with its values logs (JAX: the group's
one vectorized program; TensorFlow: its trials one by one), its model
and predictions are served, its events stream, its curves are drawn, and
a cancel stops a running group."""

import json
import math
import time

import numpy as np
import pytest
from specs import KERAS_LOOP_EPOCHS
from test_jobs import wait_for

#: Relative tolerance on each epoch's values (the issue's exactness bound).
RTOL = 1e-4

SEED_SWEEP = {
    "example": "many_to_one",
    "fit": {"epochs": 40},
    "vary": {"seed": [0, 1], "compile.learning_rate": [0.01, 0.05]},
}


def regression_data(samples=26):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(samples, 4, 2)).round(3).tolist()
    y = rng.normal(size=(samples, 1)).round(3).tolist()
    return {"x": x, "y": y}


#: Shuffled, a short last batch (19 training samples in batches of 4), a
#: validation split (the last 7 samples) and a metric.
VALIDATED_SWEEP = {
    "model": {
        "input_shape": [4, 2],
        "layers": [{"type": "GRU", "units": 6}, {"type": "Dense", "units": 1}],
    },
    "data": regression_data(),
    "compile": {"optimizer": "adam", "loss": "mean_squared_error", "metrics": ["mae"]},
    "fit": {"epochs": 8, "batch_size": 4, "shuffle": True, "validation_split": 0.25},
    "vary": {"seed": [3, 4], "compile.learning_rate": [0.003, 0.03]},
}


def finished_sweep(client, sweep_id, timeout=240):
    deadline = time.monotonic() + timeout
    while True:
        sweep = client.get(f"/sweeps/{sweep_id}").get_json()
        if sweep["status"] in ("succeeded", "failed", "cancelled"):
            return sweep
        assert time.monotonic() < deadline, f"sweep still {sweep['status']}"
        time.sleep(0.1)


def lone_request(sweep_body, values):
    """The ``POST /train`` request of one trial's values."""
    from seqlab.sweeps import set_path

    request = json.loads(json.dumps({k: v for k, v in sweep_body.items() if k != "vary"}))
    for path, value in values.items():
        set_path(request, path, value)
    return request


def assert_close(got, want, what):
    assert set(got) == set(want), what
    for name in want:
        assert len(got[name]) == len(want[name]), (what, name)
        for epoch, (a, b) in enumerate(zip(got[name], want[name], strict=True)):
            assert math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-7), (what, name, epoch, a, b)


def test_each_trial_learns_what_a_lone_job_with_its_values_learns(backend_client):
    """Both backends: JAX trains the group as one vectorized program,
    TensorFlow its trials one by one through the lone job's own code."""
    assert_trials_match_lone_jobs(backend_client, SEED_SWEEP)


def test_with_shuffling_a_metric_and_validation_too(jobs_client):
    """The vectorized path (JAX) with a short last batch and validation."""
    jobs_client.backend = "jax"
    assert_trials_match_lone_jobs(jobs_client, VALIDATED_SWEEP)


def assert_trials_match_lone_jobs(client, body):
    response = client.post("/sweeps", json=body)
    assert response.status_code == 202, response.get_json()
    sweep = finished_sweep(client, response.get_json()["id"])
    assert sweep["status"] == "succeeded", sweep
    lone_ids = {}
    for trial in sweep["trials"]:
        rv = client.post("/train", json=lone_request(body, trial["values"]))
        assert rv.status_code == 202, rv.get_json()
        lone_ids[trial["trial"]] = rv.headers["Location"]
    for trial in sweep["trials"]:
        lone = wait_for(client, lone_ids[trial["trial"]]).get_json()
        assert lone["status"] == "succeeded"
        what = f"{client.backend} trial {trial['trial']} {trial['values']}"
        assert_close(trial["result"]["history"], lone["result"]["history"], what)
        job = client.get(trial["links"]["job"]).get_json()
        assert job["result"]["backend"] == client.backend
        # JAX: the group's one program; TensorFlow: one by one, as lone jobs.
        vectorized = job["result"].get("trained_with", {}).get("vectorized", False)
        assert vectorized == (client.backend == "jax")
        assert job["sweep"] == {"id": sweep["id"], "trial": trial["trial"]}
        for a, b in zip(
            np.ravel(job["result"]["predictions"]), np.ravel(lone["result"]["predictions"]),
            strict=True,
        ):  # fmt: skip
            assert math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-5), what
    # The best trial is the one with the smallest objective.
    metric = sweep["objective"]["metric"]
    finals = [t["result"]["final_metrics"][metric] for t in sweep["trials"]]
    assert metric == ("val_loss" if "validation_split" in body["fit"] else "loss")
    assert sweep["best"]["trial"] == finals.index(min(finals))
    assert sweep["best"]["value"] == min(finals)


def test_a_trials_model_and_predictions_are_its_jobs(jobs_client):
    client = jobs_client
    sweep_id = client.post("/sweeps", json=SEED_SWEEP).get_json()["id"]
    sweep = finished_sweep(client, sweep_id)
    trial = sweep["trials"][2]
    model = client.get(f"/sweeps/{sweep_id}/trials/2/model")
    assert model.status_code == 200
    assert model.data[:2] == b"PK"  # a .keras file is a zip
    assert model.data == client.get(f"/jobs/{trial['job']}/model").data
    x = [[[v] for v in (0.0, 0.2, 0.4, 0.6, 0.8)]]
    predicted = client.post(f"/sweeps/{sweep_id}/trials/2/predict", json={"instances": x})
    assert predicted.status_code == 200, predicted.get_json()
    job = client.get(f"/jobs/{trial['job']}").get_json()
    np.testing.assert_allclose(
        predicted.get_json()["predictions"], job["result"]["predictions"], rtol=1e-4, atol=1e-6
    )
    for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<?xml")):
        image = client.get(f"/sweeps/{sweep_id}/plot.{fmt}")
        assert image.status_code == 200
        assert image.data.startswith(magic)


def test_a_sweeps_events_end_with_its_final_status(jobs_client):
    client = jobs_client
    sweep_id = client.post("/sweeps", json=SEED_SWEEP).get_json()["id"]
    response = client.get(f"/sweeps/{sweep_id}/events")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    text = response.get_data(as_text=True)  # the body ends after the final status
    events = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("data: ", 1)[1]))
        for block in text.strip().split("\n\n")
        if block.startswith("event: ")
    ]
    trials = [data for kind, data in events if kind == "trial"]
    assert {d["trial"] for d in trials if d["status"] == "succeeded"} == {0, 1, 2, 3}
    assert all("final_metrics" in d for d in trials if d["status"] == "succeeded")
    kind, last = events[-1]
    assert kind == "status" and last["status"] == "succeeded"
    assert last["trial_statuses"] == {"succeeded": 4}
    assert last["best"]["metric"] == "loss"


def test_cancelling_a_running_sweep_stops_its_group_keeping_histories(jobs_client):
    client = jobs_client
    body = {**SEED_SWEEP, "fit": {"epochs": KERAS_LOOP_EPOCHS}}
    sweep_id = client.post("/sweeps", json=body).get_json()["id"]
    deadline = time.monotonic() + 120
    # Some epochs in: the first trial reports progress.
    while not client.get(f"/sweeps/{sweep_id}").get_json()["trials"][0].get("progress"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    response = client.post(f"/sweeps/{sweep_id}/cancel")
    assert response.status_code in (200, 202)
    sweep = finished_sweep(client, sweep_id, timeout=60)
    assert sweep["status"] == "cancelled"
    assert sweep["trial_statuses"] == {"cancelled": 4}
    # Past the compiled fit's bound, the group runs its trials one by one:
    # the first was running (its history so far is kept), the rest never start.
    first = sweep["trials"][0]["result"]
    assert 0 < first["epochs_completed"] < KERAS_LOOP_EPOCHS
    assert first["stopped"]["reason"] == "cancelled"
    assert client.delete(f"/sweeps/{sweep_id}").status_code == 204


def test_a_sweep_on_a_dataset_with_validation_arrays(redis_url, queue, worker, tenants):
    """Larger data goes in a dataset: its trials read it (and its validation
    arrays) as a lone job does, trained together, ranked by val_loss."""
    from test_datasets import MODEL
    from test_datasets import npz
    from test_datasets import upload
    from test_datasets import windows

    app = tenants.app(redis_url, queue)
    client, alice = app.test_client(), tenants.bearer("alice")
    x, y = windows(120, seed=1)
    x_val, y_val = windows(40, seed=2)
    rv = upload(client, npz(x=x, y=y, x_val=x_val, y_val=y_val), alice)
    assert rv.status_code == 201, rv.get_json()
    body = {"model": MODEL, "data": {"dataset": rv.get_json()["id"]},
            "fit": {"epochs": 4, "batch_size": 32}, "vary": {"seed": [0, 1, 2]}}  # fmt: skip
    rv = client.post("/sweeps", json=body, headers=alice)
    assert rv.status_code == 202, rv.get_json()
    sweep_id = rv.get_json()["id"]
    deadline = time.monotonic() + 120
    while (sweep := client.get(f"/sweeps/{sweep_id}", headers=alice).get_json())["status"] not in (
        "succeeded", "failed", "cancelled",
    ):  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert sweep["status"] == "succeeded", sweep
    assert sweep["objective"] == {"metric": "val_loss", "mode": "min"}
    for trial in sweep["trials"]:
        assert len(trial["result"]["history"]["val_loss"]) == 4
        job = client.get(trial["links"]["job"], headers=alice).get_json()
        assert job["result"]["trained_with"] == {"trials": 3, "vectorized": True}
    finals = [t["result"]["final_metrics"]["val_loss"] for t in sweep["trials"]]
    assert sweep["best"]["trial"] == finals.index(min(finals))


@pytest.mark.slow
def test_the_trials_of_a_killed_workers_group_run_again_on_the_next_worker(redis_url, tmp_path):
    """Kill the worker's whole process group while it trains a group: the
    trials' leases lapse, a read of the sweep gives each back to the queue
    (a lone job now), and the next worker trains them to the end."""
    import uuid

    from conftest import run_worker
    from test_reaper import FAST
    from test_reaper import kill_group

    from service import create_app

    queue = f"fault-{uuid.uuid4().hex[:8]}"
    client = create_app(
        {"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue}
    ).test_client()
    body = {
        "example": "many_to_one",
        "fit": {"epochs": KERAS_LOOP_EPOCHS},
        "vary": {"seed": [0, 1]},
    }
    with run_worker(redis_url, queue, tmp_path / "first.log", **FAST) as first:
        sweep_id = client.post("/sweeps", json=body).get_json()["id"]
        deadline = time.monotonic() + 180
        while not (trial := client.get(f"/sweeps/{sweep_id}").get_json()["trials"][0]).get(
            "progress"
        ):
            assert time.monotonic() < deadline, trial
            time.sleep(0.1)
        kill_group(first)
    deadline = time.monotonic() + 60
    while (sweep := client.get(f"/sweeps/{sweep_id}").get_json())["trial_statuses"] != {
        "queued": 2
    }:
        assert time.monotonic() < deadline, sweep["trial_statuses"]
        time.sleep(0.2)
    with run_worker(redis_url, queue, tmp_path / "second.log", **FAST):
        sweep = finished_sweep(client, sweep_id, timeout=300)
    assert sweep["status"] == "succeeded", sweep
    for trial in sweep["trials"]:
        job = client.get(trial["links"]["job"]).get_json()
        assert job["attempt"] == 2
        assert trial["result"]["epochs_completed"] == KERAS_LOOP_EPOCHS
