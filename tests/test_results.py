"""A job's results, bounded (issue 17): the final predictions run in batches
and are capped (``SEQLAB_MAX_PREDICTION_BYTES``, ``fit.store_predictions``),
the model file is stored in chunks and streamed, and a write that Redis
refuses for good fails the job once instead of training it again."""

import json
import os
import uuid

import numpy as np
import pytest
from conftest import run_worker
from conftest import start_redis
from openapi_check import validate_response
from test_jobs import submit
from test_jobs import wait_for
from test_predict import NEW
from test_predict import fake_job
from test_predict import keras_predict

from jobs.store import MODEL_CHUNK_BYTES
from jobs.store import new_job_id
from modelspec.model import load_model_spec
from seqlab.cost import JSON_VALUE_BYTES
from seqlab.cost import prediction_bytes_bound
from seqlab.examples import example_request
from service import create_app

# --- predicting, in the worker's own functions (Keras in this process) -------


@pytest.fixture(scope="module")
def tagger():
    """The seed's many_to_many model, built as the worker builds it, and a
    request of 37 samples in batches of 8."""
    from worker import training

    training.configure_backend()
    spec = load_model_spec(example_request("many_to_many")["model"])
    model = training.build_model(spec)
    x = np.random.default_rng(0).random((37, 5, 1)).round(3)
    request = {
        "model": spec,
        "data": {"x": x.tolist(), "y": x.tolist()},
        "fit": {"batch_size": 8, "epochs": 1},
    }
    return model, request, x


def spy(monkeypatch, model):
    """Record the rows of each ``predict_on_batch`` call of ``model``."""
    rows = []
    real = model.predict_on_batch

    def recording(x):
        rows.append(len(x))
        return real(x)

    monkeypatch.setattr(model, "predict_on_batch", recording)
    return rows


def test_the_final_predict_runs_in_batches_and_equals_one_batch(tagger, monkeypatch):
    from worker import training

    model, request, x = tagger
    whole = model.predict_on_batch(x.astype("float32"))  # the old path: every sample at once
    rows = spy(monkeypatch, model)
    kept = training.predict_training_inputs(model, request, 10**9)
    # The forward pass never holds more than one batch's activations.
    assert rows == [8, 8, 8, 8, 5]
    assert kept.not_stored is None
    np.testing.assert_allclose(kept.values, whole, rtol=1e-6, atol=1e-7)


def test_predictions_over_the_cap_stop_after_the_first_batch(tagger, monkeypatch):
    from worker import training

    model, request, _ = tagger
    rows = spy(monkeypatch, model)
    bound = prediction_bytes_bound(37, 5)  # 5 steps × 1 unit a sample
    kept = training.predict_training_inputs(model, request, bound - 1)
    assert rows == [8]
    assert kept.values is None
    assert kept.not_stored["reason"] == "too_large"
    assert (kept.not_stored["bytes_bound"], kept.not_stored["limit_bytes"]) == (bound, bound - 1)
    assert "SEQLAB_MAX_PREDICTION_BYTES" in kept.not_stored["message"]
    assert training.predict_training_inputs(model, request, bound).values is not None

    rows.clear()
    off = {**request, "fit": {**request["fit"], "store_predictions": False}}
    kept = training.predict_training_inputs(model, off, 10**9)
    assert rows == [] and kept.not_stored["reason"] == "disabled"


def test_the_bound_holds_for_the_longest_numbers():
    values = np.full((3, 4, 2), -1.2345678901234567e-308).tolist()
    assert len(json.dumps(values)) <= prediction_bytes_bound(3, 8)
    assert JSON_VALUE_BYTES == 30


def test_a_predict_request_runs_in_batches_of_the_fit_batch_size(tagger, idle_app, monkeypatch):
    """``POST /jobs/<id>/predict``'s work on the worker (the API checked the
    instances): the saved model loaded, 37 instances in batches of 8."""
    import keras

    from worker import predicting
    from worker import training

    model, request, x = tagger
    expected = model.predict(x.astype("float32"), verbose=0)  # Keras's own batches
    store = idle_app.extensions["jobs"]
    job_id = new_job_id()
    store.create(job_id, {"request": {"model": request["model"], "fit": request["fit"]}}, {})
    token, _ = store.claim(job_id, "host:test", "q", lease_seconds=30)
    assert store.finish_leased(job_id, token, "succeeded", training.save(model))
    # Every model's predict_on_batch, the loaded one's included, and the
    # jitted step that stands for it under JAX (worker/predicting.py).
    rows = []
    real = keras.Model.predict_on_batch
    real_predictor = predicting.batch_predictor

    def recording(self, x):
        rows.append(len(x))
        return real(self, x)

    def recording_predictor(model):
        on_batch = real_predictor(model)
        assert (on_batch is not None) == (keras.backend.backend() == "jax")
        if on_batch is None:
            return None

        def recorded(x):
            rows.append(len(x))
            return on_batch(x)

        return recorded

    monkeypatch.setattr(keras.Model, "predict_on_batch", recording)
    monkeypatch.setattr(predicting, "batch_predictor", recording_predictor)

    answer = predicting.predict(store, job_id, x.tolist())
    assert rows == [8, 8, 8, 8, 5]
    assert answer["model_cached"] is False
    np.testing.assert_allclose(answer["predictions"], expected, rtol=1e-5, atol=1e-6)
    # A record from before model files had a digest: the file is read and
    # hashed, and finds the same loaded model.
    info = store.model_file(job_id)
    assert set(info) == {"bytes", "chunks", "sha256"}
    del info["sha256"]
    store.redis.hset(store.key(job_id), "model_file", json.dumps(info))
    again = predicting.predict(store, job_id, x[:3].tolist())
    assert again["model_cached"] is True
    np.testing.assert_allclose(again["predictions"], expected[:3], rtol=1e-5, atol=1e-6)


# --- the model file in chunks -------------------------------------------------


def test_a_large_model_file_is_stored_in_chunks_and_streamed(idle_app, spec):
    store = idle_app.extensions["jobs"]
    client = idle_app.test_client()
    job_id = fake_job(idle_app, "running")
    token = store.get(job_id)["lease_token"]
    store.redis.expire(store.key(job_id), 60)
    model = os.urandom(2 * MODEL_CHUNK_BYTES + 5)
    assert store.finish_leased(job_id, token, "succeeded", model, result={"history": {}})

    keys = sorted(k.decode() for k in store.redis.keys(f"{store.model_key(job_id)}*"))
    assert keys == [store.model_key(job_id), f"{store.model_key(job_id)}:1",
                    f"{store.model_key(job_id)}:2"]  # fmt: skip
    assert all(store.redis.strlen(k) <= MODEL_CHUNK_BYTES for k in keys)
    assert all(0 < store.redis.pttl(k) <= 60_000 for k in keys)
    assert store.get_model(job_id) == model

    rv = client.get(f"/jobs/{job_id}/model")
    assert rv.status_code == 200
    assert rv.is_streamed
    assert rv.headers["Content-Length"] == str(len(model))
    assert rv.content_type == "application/octet-stream"
    assert rv.get_data() == model

    # A lost chunk is a 409 before any byte is sent, not a truncated file.
    store.redis.delete(f"{store.model_key(job_id)}:1")
    assert client.get(f"/jobs/{job_id}/model").status_code == 409
    assert client.delete(f"/jobs/{job_id}").status_code == 204
    assert store.redis.keys(f"{store.model_key(job_id)}*") == []


def test_a_late_worker_writes_no_chunk(idle_app):
    store = idle_app.extensions["jobs"]
    job_id = fake_job(idle_app, "running")
    model = os.urandom(MODEL_CHUNK_BYTES + 1)
    assert not store.finish_leased(job_id, "not-the-token", "succeeded", model, result={})
    assert store.redis.keys(f"{store.model_key(job_id)}*") == []


# --- the cap on POST /jobs/<id>/predict ---------------------------------------


def test_predict_refuses_outputs_over_the_cap_before_queueing(idle_app, spec, monkeypatch):
    job_id = fake_job(idle_app, "succeeded")  # no worker: a 504 if it were queued
    bound = prediction_bytes_bound(2, 5)  # two instances of 5 steps × 1 unit
    monkeypatch.setenv("SEQLAB_MAX_PREDICTION_BYTES", str(bound - 1))
    rv = idle_app.test_client().post(f"/jobs/{job_id}/predict", json={"instances": NEW})
    assert rv.status_code == 422, rv.get_json()
    validate_response(spec, "/jobs/{job_id}/predict", "post", rv)
    problem = rv.get_json()
    assert "SEQLAB_MAX_PREDICTION_BYTES" in problem["errors"]["instances"][0]
    assert "at most 1 instances" in problem["errors"]["instances"][0]


# --- a real worker with a small cap -------------------------------------------

CAP = 200  # bytes: one sample of up to 6 output values


@pytest.fixture(scope="module")
def capped(redis_url, tmp_path_factory):
    """A client whose jobs a worker with SEQLAB_MAX_PREDICTION_BYTES=200 trains."""
    queue = f"capped-{uuid.uuid4().hex[:8]}"
    log = tmp_path_factory.mktemp("capped") / "worker.log"
    with run_worker(redis_url, queue, log, SEQLAB_MAX_PREDICTION_BYTES=str(CAP)):
        app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue})
        yield app.test_client()


def dense(samples, features=3, units=1, **fit):
    rng = np.random.default_rng(1)
    return {
        "model": {"input_shape": [features], "layers": [{"type": "Dense", "units": units}]},
        "data": {
            "x": rng.random((samples, features)).round(3).tolist(),
            "y": rng.random((samples, units)).round(3).tolist(),
        },  # fmt: skip
        "fit": {"epochs": 1, **fit},
    }


def test_a_worker_keeps_predictions_under_the_cap_only(capped, spec):
    small = wait_for(capped, submit(capped, dense(1)).headers["Location"])
    over = wait_for(capped, submit(capped, dense(10)).headers["Location"])
    off = dense(1, store_predictions=False)
    disabled = wait_for(capped, submit(capped, off).headers["Location"])
    for rv in (small, over, disabled):
        validate_response(spec, "/jobs/{job_id}", "get", rv)
        assert rv.get_json()["status"] == "succeeded", rv.get_json().get("error")

    assert len(small.get_json()["result"]["predictions"]) == 1
    result = over.get_json()["result"]
    assert "predictions" not in result
    assert result["predictions_not_stored"]["reason"] == "too_large"
    assert result["predictions_not_stored"]["bytes_bound"] == prediction_bytes_bound(10, 1)
    assert result["predictions_not_stored"]["limit_bytes"] == CAP
    assert disabled.get_json()["request"]["fit"]["store_predictions"] is False
    assert disabled.get_json()["result"]["predictions_not_stored"]["reason"] == "disabled"
    for rv, words in ((over, "SEQLAB_MAX_PREDICTION_BYTES"), (disabled, "store_predictions")):
        job_id = rv.get_json()["id"]
        answer = capped.get(f"/jobs/{job_id}/predictions")
        assert answer.status_code == 404
        assert answer.content_type == "application/problem+json"
        assert words in answer.get_json()["detail"]
        validate_response(spec, "/jobs/{job_id}/predictions", "get", answer)
        assert capped.application.extensions["jobs"].get_predictions(job_id) is None


def test_a_chunked_model_downloads_and_predicts(capped):
    # 800 × 800 weights with Adam's two moments: some 7.7 MB, two chunks.
    rv = wait_for(capped, submit(capped, dense(2, 800, 800)).headers["Location"], timeout=180)
    job = rv.get_json()
    assert job["status"] == "succeeded", job.get("error")
    store = capped.application.extensions["jobs"]
    assert store.model_file(job["id"])["chunks"] == 2
    download = capped.get(f"/jobs/{job['id']}/model")
    model_file = download.get_data()
    assert int(download.headers["Content-Length"]) == len(model_file) > MODEL_CHUNK_BYTES
    instances = np.random.default_rng(2).random((1, 800)).round(3)
    answer = capped.post(f"/jobs/{job['id']}/predict", json={"instances": instances.tolist()})
    assert answer.status_code == 200, answer.get_json()
    expected = keras_predict(model_file, instances)
    np.testing.assert_allclose(answer.get_json()["predictions"], expected, rtol=1e-5, atol=1e-6)


# --- a write Redis refuses for good -------------------------------------------


def test_a_result_redis_has_no_room_for_fails_the_job_once(tmp_path, spec):
    # 2,000 × 2,000 weights with Adam's state: a .keras file of some 48 MB,
    # into a Redis of 24 MB that evicts nothing.
    with start_redis(tmp_path, None, "--maxmemory", "24mb",
                     "--maxmemory-policy", "noeviction") as url:  # fmt: skip
        url, queue = f"{url}/0", "full"
        app = create_app({"TESTING": True, "REDIS_URL": url, "SEQLAB_QUEUE": queue})
        client = app.test_client()
        # Short retries, lease and sweeps: a job trained again would show within seconds.
        env = {"SEQLAB_WARM_UP": "0", "SEQLAB_FINAL_WRITE_SECONDS": "3",
               "SEQLAB_LEASE_SECONDS": "3", "SEQLAB_REAPER_SECONDS": "1"}  # fmt: skip
        with run_worker(url, queue, tmp_path / "worker.log", **env):
            location = submit(client, dense(1, 2000, 2000)).headers["Location"]
            rv = wait_for(client, location, timeout=180)
            job = rv.get_json()
            validate_response(spec, "/jobs/{job_id}", "get", rv)
            assert job["status"] == "failed", job
            assert job["error"]["type"] == "StorageFull", job["error"]
            assert "maxmemory is 25165824 bytes" in job["error"]["message"]
            assert "a model file of" in job["error"]["message"]
            assert job["attempt"] == 1
            assert job["result"]["predictions_not_stored"]["reason"] == "storage_refused"
            store = client.application.extensions["jobs"]
            statuses = [json.loads(e.data)["status"] for e in store.events(job["id"])
                        if e.kind == "status"]  # fmt: skip
            assert statuses == ["queued", "running", "failed"]
            assert store.redis.keys(f"{store.model_key(job['id'])}*") == []
            assert client.get(f"{location}/model").status_code == 409
