"""Predictions from trained models (``POST /jobs/<id>/predict``) and the
predictions on the training inputs stored apart (``GET /jobs/<id>/predictions``):
a real Redis and a real Celery worker process; Keras, in this process, is
the oracle."""

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import pytest
from openapi_check import validate_response
from specs import STATEFUL_JOB
from tenants import Tenants
from test_jobs import submit
from test_jobs import wait_for

from jobs.store import JobStore
from jobs.store import new_job_id
from seqlab.examples import example_request
from service import create_app
from service.jobs.predict import Served
from service.jobs.predict import ServedJobs
from service.jobs.submission import INLINE_PREDICTIONS
from service.jobs.submission import job_document
from worker.predicting import ModelCache

#: The jitted step's comparison with Keras (JAX, run as a script).
COMPARE = Path(__file__).with_name("predict_compare.py")
SEQUENCE = [[[0.0], [0.2], [0.4], [0.6], [0.8]]]
NEW = [[[0.1], [0.3], [0.5], [0.7], [0.9]], [[0.8], [0.6], [0.4], [0.2], [0.0]]]


def keras_predict(model_file: bytes, instances) -> np.ndarray:
    """What a user gets from the downloaded file: ``load_model``, then ``predict``."""
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(model_file)
        model = keras.saving.load_model(path)
    return model.predict(np.asarray(instances, dtype="float32"), verbose=0)


def fake_job(app, status, tenant=None, example="many_to_many"):
    """A job of ``example`` moved to ``status`` by the store itself (no
    worker trains it; its model file is not a model)."""
    store: JobStore = app.extensions["jobs"]
    request = example_request(example)
    data = request.pop("data")
    job_id = new_job_id()
    store.create(job_id, {"request": {**request, "seed": 0}}, data, tenant=tenant)
    if status == "queued":
        return job_id
    token, _ = store.claim(job_id, "host:test", app.config["SEQLAB_QUEUE"], lease_seconds=30)
    if status != "running":
        result = {"history": {"loss": [1.0]}, "predictions": [[[0.0]] * 5]}
        assert store.finish_leased(job_id, token, status, b"not a model", result=result)
    return job_id


@pytest.fixture
def trained(jobs_client):
    """The seed's many_to_many example, trained by the worker: (client, job id)."""
    rv = submit(jobs_client, {"example": "many_to_many"})
    job = wait_for(jobs_client, rv.headers["Location"]).get_json()
    assert job["status"] == "succeeded", job.get("error")
    return jobs_client, job["id"]


def test_predictions_equal_keras_loading_the_downloaded_model(trained, spec):
    client, job_id = trained
    model_file = client.get(f"/jobs/{job_id}/model").data
    expected = keras_predict(model_file, NEW)

    rv = client.post(f"/jobs/{job_id}/predict", json={"instances": NEW})
    assert rv.status_code == 200, rv.get_json()
    validate_response(spec, "/jobs/{job_id}/predict", "post", rv)
    answer = rv.get_json()
    assert np.asarray(answer["predictions"]).shape == expected.shape == (2, 5, 1)
    np.testing.assert_allclose(answer["predictions"], expected, rtol=1e-5, atol=1e-6)
    # The training sequence's prediction equals the one the job stored.
    job = client.get(f"/jobs/{job_id}").get_json()
    rv = client.post(f"/jobs/{job_id}/predict", json={"inputs": SEQUENCE})
    assert rv.status_code == 200, rv.get_json()
    np.testing.assert_allclose(
        rv.get_json()["predictions"], job["result"]["predictions"], rtol=1e-5, atol=1e-6
    )


def commands_during(client, action):
    """``action()``, and every command Redis ran meanwhile (MONITOR: from
    any client, the worker's and Lua scripts' included), as text."""
    sentinel = f"end-of-{uuid.uuid4().hex}"
    with client.monitor() as monitor:
        action()
        client.echo(sentinel)  # the last command to read up to
        commands = []
        while sentinel not in (command := monitor.next_command()["command"]):
            commands.append(command)
    return commands


def test_repeated_predictions_use_the_loaded_model(trained):
    client, job_id = trained
    store = client.application.extensions["jobs"]

    def predict():
        return client.post(f"/jobs/{job_id}/predict", json={"instances": NEW})

    answers = [predict()]
    commands = commands_during(store.redis, lambda: answers.extend([predict(), predict()]))
    assert [rv.status_code for rv in answers] == [200, 200, 200]
    first, *later = [rv.get_json() for rv in answers]
    assert first["model_cached"] is False and first["model_load_seconds"] > 0
    assert all(a["model_cached"] is True and a["model_load_seconds"] < 0.01 for a in later)
    assert all(a["predictions"] == first["predictions"] for a in later)
    # The worker found its loaded model by the digest the API read from the
    # record, and read no chunk of the file (each chunk's key starts with
    # the first's); nor did either read the record again: the push script's
    # check of its status is each prediction's one look at it.
    assert not [c for c in commands if store.model_key(job_id) in c]
    looks = [c for c in commands if c.split(" ")[1:2] == [store.key(job_id)]]
    assert looks == [f"HGET {store.key(job_id)} status"] * 2, commands


def test_predict_leaves_no_celery_result_behind(trained):
    client, job_id = trained
    redis = client.application.extensions["jobs"].redis
    before = set(redis.scan_iter("celery-task-meta-*"))
    assert client.post(f"/jobs/{job_id}/predict", json={"instances": NEW}).status_code == 200
    assert set(redis.scan_iter("celery-task-meta-*")) == before


@pytest.mark.parametrize("status", ["queued", "running", "failed", "cancelled"])
def test_predict_is_a_409_until_the_job_has_succeeded(idle_app, spec, status):
    job_id = fake_job(idle_app, status)
    rv = idle_app.test_client().post(f"/jobs/{job_id}/predict", json={"instances": NEW})
    assert rv.status_code == 409, rv.get_json()
    validate_response(spec, "/jobs/{job_id}/predict", "post", rv)
    assert status in rv.get_json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"instances": [[0.1, 0.2]]}, "instances", "does not fit the model's input (None, 5, 1)"),
        ({"inputs": [[[0.1]] * 4]}, "inputs", "does not fit the model's input (None, 5, 1)"),
        ({"instances": [[[True]] * 5]}, "instances", "true and false are taken only for a bool"),
        ({"instances": [[[1e300]] * 5]}, "instances", "float32"),
        ({"instances": [[["a"]] * 5]}, "instances", "Must hold numbers only"),
        ({"instances": []}, "instances", "Must not contain empty lists"),
        ({"instances": 3}, "instances", "Must be a (nested) list"),
        ({}, "body", "either instances or inputs"),
        ({"instances": NEW, "inputs": NEW}, "body", "either instances or inputs"),
    ],
)
def test_instances_that_do_not_fit_are_a_422(idle_app, spec, body, field, reason):
    job_id = fake_job(idle_app, "succeeded")
    rv = idle_app.test_client().post(f"/jobs/{job_id}/predict", json=body)
    assert rv.status_code == 422, rv.get_json()
    validate_response(spec, "/jobs/{job_id}/predict", "post", rv)
    errors = rv.get_json()["errors"]
    assert list(errors) == [field] and reason in errors[field][0], errors


def test_another_tenants_job_is_a_404(redis_url, queue):
    tenants = Tenants()
    app = tenants.app(redis_url, queue)
    job_id = fake_job(app, "succeeded", tenant=tenants.names["alice"])
    client = app.test_client()
    for path, method in (
        (f"/jobs/{job_id}/predict", "post"),
        (f"/jobs/{job_id}/predictions", "get"),
    ):
        rv = client.open(
            path, method=method, json={"instances": NEW}, headers=tenants.bearer("bob")
        )
        assert rv.status_code == 404, rv.get_json()
        rv = client.open(path, method=method, json={"instances": NEW})
        assert rv.status_code == 401
    rv = client.get(f"/jobs/{job_id}/predictions", headers=tenants.bearer("alice"))
    assert rv.status_code == 200


def test_predict_is_a_504_when_no_worker_answers_in_time(redis_url, spec):
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    app = create_app(
        {"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue, "PREDICT_TIMEOUT": 0.5}
    )
    job_id = fake_job(app, "succeeded")
    rv = app.test_client().post(f"/jobs/{job_id}/predict", json={"instances": NEW})
    assert rv.status_code == 504, rv.get_json()
    assert rv.content_type == "application/problem+json"
    validate_response(spec, "/jobs/{job_id}/predict", "post", rv)
    assert "SEQLAB_PREDICT_TIMEOUT" in rv.get_json()["detail"]


def test_large_training_sets_keep_predictions_out_of_the_job_document(jobs_client, spec):
    samples = INLINE_PREDICTIONS + 1
    rng = np.random.default_rng(0)
    x = rng.random((samples, 5, 1)).round(3)
    body = {
        "model": {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 2},
                                                    {"type": "Dense", "units": 1}]},
        "data": {"x": x.tolist(), "y": x[:, -1, :].tolist()},
        "fit": {"epochs": 1, "batch_size": 256},
    }  # fmt: skip
    rv = submit(jobs_client, body)
    location = rv.headers["Location"]
    rv = wait_for(jobs_client, location)
    validate_response(spec, "/jobs/{job_id}", "get", rv)
    job = rv.get_json()
    assert job["status"] == "succeeded", job.get("error")
    assert "predictions" not in job["result"]
    record = jobs_client.application.extensions["jobs"].get(job["id"])
    assert "predictions" not in record["result"]  # polls do not even read them

    rv = jobs_client.get(f"{location}/predictions")
    assert rv.status_code == 200
    validate_response(spec, "/jobs/{job_id}/predictions", "get", rv)
    predictions = rv.get_json()["predictions"]
    assert np.asarray(predictions).shape == (samples, 1)
    model_file = jobs_client.get(f"{location}/model").data
    np.testing.assert_allclose(predictions, keras_predict(model_file, x), rtol=1e-5, atol=1e-6)

    listed = jobs_client.get("/jobs?page_size=100").get_json()["jobs"]
    assert all("result" not in j for j in listed)
    assert jobs_client.delete(location).status_code == 204
    assert jobs_client.application.extensions["jobs"].get_predictions(job["id"]) is None


def test_small_training_sets_keep_them_in_the_document_too(trained):
    client, job_id = trained
    job = client.get(f"/jobs/{job_id}").get_json()
    rv = client.get(f"/jobs/{job_id}/predictions")
    assert rv.status_code == 200
    assert rv.get_json()["predictions"] == job["result"]["predictions"]


def test_predictions_of_a_queued_job_are_a_409(idle_app):
    job_id = fake_job(idle_app, "queued")
    assert idle_app.test_client().get(f"/jobs/{job_id}/predictions").status_code == 409


def test_documents_of_older_records_drop_many_inline_predictions():
    job = {
        "id": "0" * 32, "status": "succeeded", "created_at": "2026-01-01T00:00:00.000Z",
        "finished_at": "2026-01-01T00:00:01.000Z", "params": {},
        "request": {"model": {}, "compile": {}, "fit": {}, "seed": 0},
        "result": {"predictions": [[0.0]] * (INLINE_PREDICTIONS + 1)},
    }  # fmt: skip
    assert "predictions" not in job_document(job)["result"]
    job["result"]["predictions"] = [[0.0]] * INLINE_PREDICTIONS
    assert len(job_document(job)["result"]["predictions"]) == INLINE_PREDICTIONS


def test_a_stateful_model_predicts_from_zero_states_each_time(backend_client):
    """On both backends: the TensorFlow one keeps a stateful layer's states
    between calls, so the worker zeroes them before each answer."""
    rv = submit(backend_client, STATEFUL_JOB)
    job = wait_for(backend_client, rv.headers["Location"]).get_json()
    assert job["status"] == "succeeded", job.get("error")
    url = f"/jobs/{job['id']}/predict"
    instances = [[[0.5], [1.5], [2.5]], [[1.0], [0.0], [1.0]]]
    answers = [backend_client.post(url, json={"instances": instances}).get_json() for _ in range(2)]
    model_file = backend_client.get(f"/jobs/{job['id']}/model").data
    expected = keras_predict(model_file, instances)
    for answer in answers:
        np.testing.assert_allclose(answer["predictions"], expected, rtol=1e-5, atol=1e-6)
    rv = backend_client.post(url, json={"instances": instances[:1]})
    assert rv.status_code == 422
    assert "multiple of it; instances has 1" in rv.get_json()["errors"]["instances"][0]


def test_the_worker_logs_no_predictions(trained, worker, queue):
    client, job_id = trained
    rv = client.post(f"/jobs/{job_id}/predict", json={"instances": NEW})  # the predictor's
    assert rv.status_code == 200, rv.get_json()
    values = [repr(v) for v in np.ravel(rv.get_json()["predictions"])]
    # The task that APIs from before predictors send: Celery logged "Task
    # seqlab.predict[<id>] succeeded in 0.01s: {'predictions': [[[0.52..."
    store = client.application.extensions["jobs"]
    reply_key = store.reply_key(uuid.uuid4().hex)
    reply = {"reply_key": reply_key, "reply_by": time.time() + 60, "reply_ttl": 60}
    client.application.extensions["celery"].send_task(
        "seqlab.predict", args=[job_id, NEW], kwargs=reply, queue=queue, ignore_result=True
    )
    answer = store.wait_reply(reply_key, 60)
    assert answer is not None
    np.testing.assert_allclose(answer["predictions"], rv.get_json()["predictions"], rtol=1e-6)
    deadline, log = time.monotonic() + 10, ""
    while time.monotonic() < deadline:
        log = worker.log.read_text()
        if re.search(r"seqlab\.predict\[[^]]+\] succeeded in [0-9.e-]+s: <not logged>", log):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no success line of seqlab.predict in the worker's log:\n{log[-2000:]}")
    assert "predictor: ready" in log  # the predictor's lines go to the same log
    assert "seqlab.predict" in log and not any(value in log for value in values)
    assert "'predictions'" not in log and "[[[0.1]," not in log  # nor the instances


def test_the_model_cache_keeps_the_recent_models_within_its_bytes():
    cache = ModelCache(size=4, max_bytes=100)
    cache.put(("a", "1"), "model a", 60)
    cache.put(("b", "1"), "model b", 30)
    assert cache.get(("a", "1")) == "model a"  # now the most recent
    cache.put(("c", "1"), "model c", 20)  # 110 bytes: b, the least recent, goes
    assert cache.get(("b", "1")) is None
    assert (cache.get(("a", "1")), cache.get(("c", "1"))) == ("model a", "model c")
    cache.put(("d", "1"), "model d", 200)  # over the bytes alone: used, not kept
    assert cache.get(("d", "1")) is None and cache.held_bytes == 80
    for name in "efghi":
        cache.put((name, "1"), name, 1)
    assert cache.held_bytes == 4 and cache.get(("a", "1")) is None


def test_stored_predictions_are_sent_undecoded(idle_app, spec):
    # 200,000 outputs of 5 values (about 20 MB of JSON): the API sends the
    # stored text, holding about its size, where decoding and encoding it
    # took some five times that and seconds of CPU.
    job_id = fake_job(idle_app, "running")
    store = idle_app.extensions["jobs"]
    predictions = np.random.default_rng(0).random((200_000, 5)).tolist()
    token = store.get(job_id)["lease_token"]
    assert store.put_predictions_leased(job_id, token, predictions)
    stored = store.get_predictions_json(job_id)
    tracemalloc.start()
    try:
        rv = idle_app.test_client().get(f"/jobs/{job_id}/predictions")
        body = rv.get_data()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rv.status_code == 200
    validate_response(spec, "/jobs/{job_id}/predictions", "get", rv)
    assert body == b'{"predictions": ' + stored + b"}"
    assert int(rv.headers["Content-Length"]) == len(body)
    assert json.loads(body)["predictions"] == predictions
    # The stored text as redis-py reads it (its buffer, the bytes) and the
    # test client's joined body, and little else (decoded: 5 times).
    assert peak < 3.5 * len(stored)


@pytest.fixture(scope="module")
def jitted():
    """tests/predict_compare.py's figures: JAX, in a process of its own."""
    done = subprocess.run([sys.executable, str(COMPARE)], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_jitted_step_answers_what_keras_predict_does(jitted):
    """The predictor's one jitted call per batch (worker/predicting.py
    batch_predictor) gives ``model.predict``'s numbers to 1e-6 and
    ``predict_on_batch``'s exactly: for one batch and for many of the fit's
    batch size, call after call, on every model of the script's."""
    assert set(jitted) == {"many_to_many", "policies", "embedding", "two_by_two",
                           "encoder_decoder", "stateful"}  # fmt: skip
    for name, case in jitted.items():
        if name == "stateful":
            continue
        assert case["jitted"], name
        assert case["runs"] == 4 * 2, name
        assert case["equal_to_predict_on_batch"], name
        assert case["max_diff_to_predict"] <= 1e-6, (name, case)


def test_a_stateful_model_keeps_predict_on_batch(jitted):
    assert jitted["stateful"] == {"jitted": False}


@contextlib.contextmanager
def fake_predictor(app, answers=None):
    """A live predictor of the app's queue in a thread: it answers each
    request with fixed predictions (and the request it took, in
    ``answers``) until the block ends."""
    store: JobStore = app.extensions["jobs"]
    queue = app.config["SEQLAB_QUEUE"]
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            store.announce_predictor([queue], "test:fake", 5)
            request = store.take_predict([queue], 0.1)
            if request is not None:
                (answers if answers is not None else []).append(request)
                store.put_reply(request["reply_key"], {"predictions": [[0.5]]}, 60)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        store.redis.delete(store.predictors_key(queue))


def test_a_prediction_is_one_round_trip_and_names_the_model_file(idle_app):
    """The API reads a job's record once; later predictions send the push
    and the wait together, the push checking the record's status, and name
    the model file's digest (which the predictor finds its model by)."""
    job_id = fake_job(idle_app, "succeeded")
    store: JobStore = idle_app.extensions["jobs"]
    client = idle_app.test_client()
    taken = []
    with fake_predictor(idle_app, taken):
        assert client.post(f"/jobs/{job_id}/predict", json={"instances": NEW}).status_code == 200
        commands = commands_during(
            store.redis,
            lambda: client.post(f"/jobs/{job_id}/predict", json={"instances": NEW}),
        )
    assert [r["model_file"] for r in taken] == [store.model_file(job_id)] * 2
    assert store.model_file(job_id)["sha256"]
    # The API's own commands (not the fake predictor's, nor the script's):
    # one EVAL and one BLPOP, sent together.
    api = [
        c.split(" ")[0]
        for c in commands
        if c.startswith(("EVAL ", "BLPOP seqlab:reply:", f"HMGET {store.key(job_id)}"))
    ]
    assert api == ["EVAL", "BLPOP"], commands  # fmt: skip
    assert f"HGET {store.key(job_id)} status" in commands


def test_kept_facts_never_outlive_the_job(idle_app):
    """Predictions of a job deleted (or, were it possible, no longer
    succeeded) after the API kept its facts are its 404 or 409, whatever
    the body; nothing is pushed for them."""
    client = idle_app.test_client()
    store: JobStore = idle_app.extensions["jobs"]
    taken = []
    with fake_predictor(idle_app, taken):
        gone, changed = fake_job(idle_app, "succeeded"), fake_job(idle_app, "succeeded")
        for job_id in (gone, changed):
            rv = client.post(f"/jobs/{job_id}/predict", json={"instances": NEW})
            assert rv.status_code == 200, rv.get_json()
        assert store.remove_finished(gone) == "succeeded"
        store.redis.hset(store.key(changed), "status", json.dumps("failed"))
        for body in ({"instances": NEW}, {"instances": [[0.1, 0.2]]}, {}):
            assert client.post(f"/jobs/{gone}/predict", json=body).status_code == 404
            rv = client.post(f"/jobs/{changed}/predict", json=body)
            assert rv.status_code == 409 and "failed" in rv.get_json()["detail"]
    assert len(taken) == 2
    assert not store.redis.exists(store.predict_key(idle_app.config["SEQLAB_QUEUE"]))
    assert not list(store.redis.scan_iter("seqlab:reply:*"))  # the empty replies taken


def test_kept_facts_are_the_tenants_alone(redis_url):
    tenants = Tenants()
    app = tenants.app(redis_url, f"idle-{uuid.uuid4().hex[:8]}")
    job_id = fake_job(app, "succeeded", tenant=tenants.names["alice"])
    client = app.test_client()
    url = f"/jobs/{job_id}/predict"
    with fake_predictor(app):
        rv = client.post(url, json={"instances": NEW}, headers=tenants.bearer("alice"))
        assert rv.status_code == 200, rv.get_json()
        for body in ({"instances": NEW}, {"instances": [[0.1, 0.2]]}):
            assert client.post(url, json=body, headers=tenants.bearer("bob")).status_code == 404
            assert client.post(url, json=body).status_code == 401
        rv = client.post(url, json={"instances": [[0.1]]}, headers=tenants.bearer("alice"))
        assert rv.status_code == 422


def test_served_jobs_are_kept_within_their_bounds():
    spec = {"input_shape": [1, 1], "layers": []}
    cache = ServedJobs(size=3, max_chars=1000)
    for n in range(5):
        cache.put(f"j{n}", Served(None, spec, None, None, 30))  # type: ignore[arg-type]
    assert len(cache) == 3 and cache.get("j1") is None and cache.get("j4") is not None
    cache.put("big", Served(None, spec, None, None, 101))  # type: ignore[arg-type]
    assert cache.get("big") is None  # over a tenth of the characters: read each time
    for n in range(12):
        cache.put(f"k{n}", Served(None, spec, None, None, 100))  # type: ignore[arg-type]
    assert len(cache) == 3 and cache.get("k11") is not None
    cache.drop("k11")
    assert cache.get("k11") is None and len(cache) == 2


def test_no_live_predictor_is_an_empty_reply_taken_at_once(idle_app):
    store: JobStore = idle_app.extensions["jobs"]
    queue = idle_app.config["SEQLAB_QUEUE"]
    job_id = fake_job(idle_app, "succeeded")
    reply_key = store.reply_key(uuid.uuid4().hex)
    started = time.monotonic()
    assert store.ask_predict(queue, job_id, {"reply_key": reply_key}, 30, 5) == (0, None)
    running = fake_job(idle_app, "running")
    assert store.ask_predict(queue, running, {"reply_key": reply_key}, 30, 5) == (-1, None)
    assert time.monotonic() - started < 2  # neither waited
    assert not store.redis.exists(reply_key, store.predict_key(queue))
