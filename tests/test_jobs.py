"""Training jobs end to end: a real Redis and a real Celery worker process."""

import base64
import glob
import io
import json
import time
import zipfile

import pytest
from openapi_check import validate_response
from specs import NAN_JOB

from jobs.store import INDEX
from jobs.store import JobStore
from seqlab import analyze
from seqlab.examples import EXAMPLES
from seqlab.examples import SEED_EXAMPLES
from service import create_app

TERMINAL = ("succeeded", "failed", "cancelled")
LONG = {"example": "many_to_one", "fit": {"epochs": 100_000}}


def wait_for(client, location, until=TERMINAL, timeout=120, check=None):
    """Poll a job until its status is in ``until``; returns the last response."""
    deadline = time.monotonic() + timeout
    while True:
        rv = client.get(location)
        assert rv.status_code == 200, rv.get_json()
        job = rv.get_json()
        if job["status"] in until and (check is None or check(job)):
            return rv
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.05)


def flat(values):
    if isinstance(values, list):
        return [x for v in values for x in flat(v)]
    return [values]


def submit(client, body):
    rv = client.post("/train", json=body)
    assert rv.status_code == 202, rv.get_json()
    return rv


@pytest.mark.parametrize("example", SEED_EXAMPLES)
def test_seed_examples_learn_their_targets(backend_client, spec, example):
    rv = submit(backend_client, {"example": example})
    validate_response(spec, "/train", "post", rv)
    job = rv.get_json()
    assert job["status"] == "queued"
    assert rv.headers["Location"] == f"/jobs/{job['id']}"

    rv = wait_for(backend_client, rv.headers["Location"])
    validate_response(spec, "/jobs/{job_id}", "get", rv)
    job = rv.get_json()
    assert job["status"] == "succeeded", job.get("error")
    result, preset = job["result"], EXAMPLES[example]
    predictions, targets = flat(result["predictions"]), flat(preset["data"]["y"])
    assert len(predictions) == len(targets)
    assert all(abs(p - t) <= 0.1 for p, t in zip(predictions, targets, strict=True)), predictions
    # One history point per epoch, and training went somewhere.
    loss = result["history"]["loss"]
    assert len(loss) == preset["fit"]["epochs"] == result["epochs_completed"]
    assert loss[-1] < loss[0] / 10
    # Keras's own count and summary equal the engine's.
    assert (
        result["keras_params"]
        == job["params"]["total_params"]
        == (170 if example == "many_to_one" else 146)
    )
    assert result["summary"] == job["params"]["summary"]
    assert result["backend"] == backend_client.backend
    # Whatever trained it; on a host without an NVIDIA device node no GPU can
    # be visible to JAX or TensorFlow, and the worker says "CPU".
    assert isinstance(result["device"], str) and result["device"]
    if not glob.glob("/dev/nvidia[0-9]*"):
        assert result["device"] == "CPU"
    assert set(result["timings"]) >= {"queued_seconds", "build_seconds", "train_seconds"}
    assert job["started_at"] <= job["finished_at"]


def test_trained_model_downloads_and_loads(jobs_client, tmp_path):
    location = submit(jobs_client, {"example": "many_to_one", "fit": {"epochs": 5}}).headers[
        "Location"
    ]
    assert wait_for(jobs_client, location).get_json()["status"] == "succeeded"
    rv = jobs_client.get(f"{location}/model")
    assert rv.status_code == 200
    assert "attachment" in rv.headers["Content-Disposition"]
    assert "config.json" in zipfile.ZipFile(io.BytesIO(rv.get_data())).namelist()


def test_cancel_running_job_keeps_partial_history(backend_client, spec):
    location = submit(backend_client, LONG).headers["Location"]
    wait_for(backend_client, location, until=("running",), check=lambda j: "progress" in j)
    rv = backend_client.post(f"{location}/cancel")
    assert rv.status_code == 202
    validate_response(spec, "/jobs/{job_id}/cancel", "post", rv)
    assert rv.get_json()["cancel_requested"] is True

    job = wait_for(backend_client, location, timeout=30).get_json()
    assert job["status"] == "cancelled"
    done = job["result"]["epochs_completed"]
    assert 0 < done < 100_000
    # 100,000 epochs: the history has one point per block of 100 epochs,
    # the last one over the epochs of a partial block.
    assert job["result"]["history_block"] == 100
    assert len(job["result"]["history"]["loss"]) == -(-done // 100)
    assert backend_client.get(f"{location}/model").status_code == 200
    # A finished job cannot be cancelled again, but it can be deleted.
    rv = backend_client.post(f"{location}/cancel")
    assert rv.status_code == 409
    assert rv.content_type == "application/problem+json"
    assert "(cancelled)" in rv.get_json()["detail"]
    assert backend_client.delete(location).status_code == 204
    assert backend_client.get(f"{location}/model").status_code == 404


def test_cancel_queued_job_never_starts(jobs_client, jobs_app):
    running = submit(jobs_client, LONG).headers["Location"]
    wait_for(jobs_client, running, until=("running",))
    queued = submit(jobs_client, {"example": "one_to_one"}).headers["Location"]
    assert jobs_client.get(queued).get_json()["status"] == "queued"

    rv = jobs_client.post(f"{queued}/cancel")
    assert rv.status_code == 200
    assert rv.get_json()["status"] == "cancelled"
    assert jobs_client.post(f"{running}/cancel").status_code == 202
    assert wait_for(jobs_client, running).get_json()["status"] == "cancelled"
    # The worker took the cancelled job off the queue and left it alone.
    time.sleep(1.0)
    job = jobs_client.get(queued).get_json()
    assert (job["status"], job["started_at"]) == ("cancelled", None)
    assert "result" not in job
    assert jobs_client.get(f"{queued}/model").status_code == 409


def test_job_whose_loss_becomes_nan_fails_with_its_reason(backend_client):
    location = submit(backend_client, NAN_JOB).headers["Location"]
    job = wait_for(backend_client, location).get_json()
    assert job["status"] == "failed"
    assert "loss became" in job["error"]["message"]
    assert job["finished_at"] is not None


def test_wrong_data_shape_is_refused_and_nothing_is_queued(jobs_client, jobs_app, spec):
    jobs = jobs_app.extensions["jobs"]
    before = jobs.count()
    x = [[[0.0], [0.2], [0.4], [0.6]]]  # four steps; the model takes five
    rv = jobs_client.post("/train", json={"example": "many_to_one", "data": {"x": x, "y": [[0.0]]}})
    assert rv.status_code == 422
    validate_response(spec, "/train", "post", rv)
    errors = rv.get_json()["errors"]
    assert "(1, 4, 1)" in errors["data.x"][0] and "(None, 5, 1)" in errors["data.x"][0]
    assert "(1, 1)" in errors["data.y"][0] and "(None, 5)" in errors["data.y"][0]
    assert jobs.count() == before


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"example": "nope"}, "example"),
        ({"example": {}, "model": {}}, "example"),  # found by schemathesis: was a 500
        ({"example": "one_to_one", "fit": {"epochs": 0}}, "fit.epochs"),
        ({"example": "one_to_one", "compile": {"optimizer": "magic"}}, "compile.optimizer"),
        ({"example": "one_to_one", "compile": {"bogus": 1}}, "compile.bogus"),
        ({"example": "one_to_one", "data": {"x": [[1], [2, 3]], "y": [[1], [2]]}}, "data.x"),
        ({"example": "one_to_one", "data": {"x": [[[1e400]]], "y": [[1]]}}, None),
        (
            {
                "example": "one_to_one",
                "model": {"input_shape": [1, 1], "layers": [{"type": "LSTM"}]},
            },
            "model.layers.0.units",
        ),
        (
            {
                "example": "one_to_one",
                "model": {"input_shape": [1], "layers": [{"type": "LSTM", "units": 2}]},
            },
            "model.layers.0",
        ),
        ({"model": {"input_shape": [1], "layers": [{"type": "Dense", "units": 1}]}}, "data"),
        ({"example": "one_to_one", "fit": {"validation_split": 0.9}}, "fit.validation_split"),
    ],
)
def test_bad_train_requests_are_422(jobs_app, body, path):
    client = jobs_app.test_client()
    before = jobs_app.extensions["jobs"].count()
    rv = client.post("/train", json=body)
    if path is None:  # 1e400 is Infinity: not valid JSON
        assert rv.status_code == 400
        return
    assert rv.status_code == 422, rv.get_json()
    assert path in rv.get_json()["errors"], rv.get_json()
    assert jobs_app.extensions["jobs"].count() == before


@pytest.mark.parametrize(("seconds", "status"), [(100, 202), (1, 202), (101, 422), (0, 422)])
def test_a_job_may_ask_for_less_time_than_the_servers_limit(
    idle_app, spec, monkeypatch, seconds, status
):
    monkeypatch.setenv("SEQLAB_JOB_TIME_LIMIT", "100")
    body = {"example": "one_to_one", "fit": {"time_limit_seconds": seconds}}
    rv = idle_app.test_client().post("/train", json=body)
    validate_response(spec, "/train", "post", rv)
    assert rv.status_code == status, rv.get_json()
    if status == 202:
        assert rv.get_json()["request"]["fit"]["time_limit_seconds"] == seconds
    else:
        assert rv.get_json()["errors"] == {
            "fit.time_limit_seconds": [
                "Must be from 1 to 100 (SEQLAB_JOB_TIME_LIMIT, this server's limit). "
                f"Received: {seconds}."
            ]
        }


def test_unknown_jobs_are_404(jobs_app, spec):
    client = jobs_app.test_client()
    for rv in (
        client.get("/jobs/nope"),
        client.delete("/jobs/nope"),
        client.post("/jobs/nope/cancel"),
        client.get("/jobs/nope/model"),
    ):
        assert rv.status_code == 404
        assert rv.content_type == "application/problem+json"
    validate_response(spec, "/jobs/{job_id}", "get", client.get("/jobs/nope"))


def test_list_jobs_newest_first_in_pages(jobs_app, spec):
    client = jobs_app.test_client()
    ids = []
    for _ in range(3):
        # Cancelled at once: only their records matter here.
        job = client.post("/train", json={"example": "one_to_one"}).get_json()
        client.post(f"/jobs/{job['id']}/cancel")
        ids.append(job["id"])
        time.sleep(0.01)
    first = client.get("/jobs?page_size=2")
    validate_response(spec, "/jobs", "get", first)
    page = first.get_json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2]
    assert "result" not in page["jobs"][0]
    # Each entry names its model, as the engine counts it.
    seed = analyze(EXAMPLES["one_to_one"]["model"])
    assert page["jobs"][0]["model"] == {"name": seed.name, "total_params": seed.total_params}
    assert client.get(f"/jobs/{ids[0]}").get_json()["model"] == page["jobs"][0]["model"]
    second = client.get(f"/jobs?page_size=2&page_token={page['next_page_token']}").get_json()
    assert second["jobs"][0]["id"] == ids[0]
    for query, field in [
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_token=%%%", "page_token"),
        # What the offset tokens were: a number Redis refuses as an offset.
        (f"page_token={base64.urlsafe_b64encode(str(2**70).encode()).decode()}", "page_token"),
    ]:
        rv = client.get(f"/jobs?{query}")
        assert rv.status_code == 422, query
        assert field in rv.get_json()["errors"], rv.get_json()
        validate_response(spec, "/jobs", "get", rv)


def test_job_records_expire(jobs_app, redis_url):
    client = jobs_app.test_client()
    job = client.post("/train", json={"example": "one_to_one"}).get_json()
    client.post(f"/jobs/{job['id']}/cancel")
    store = jobs_app.extensions["jobs"]
    ttl = store.redis.ttl(store.key(job["id"]))
    assert 0 < ttl <= jobs_app.config["JOB_TTL"]


def test_redis_unreachable_is_503(redis_url):
    closed = "redis://127.0.0.1:1/0"
    client = create_app({"TESTING": True, "REDIS_URL": closed}).test_client()
    rv = client.post("/train", json={"example": "one_to_one"})
    assert rv.status_code == 503
    assert rv.content_type == "application/problem+json"
    assert rv.headers["Retry-After"]
    assert client.get(f"/jobs/{'a' * 32}").status_code == 503
    assert client.get("/jobs").status_code == 503
    assert client.delete(f"/jobs/{'a' * 32}").status_code == 503
    # Counting parameters needs no Redis.
    assert (
        client.post(
            "/params", json={"input_shape": [1], "layers": [{"type": "Dense", "units": 1}]}
        ).status_code
        == 200
    )


def test_queueing_failure_leaves_no_record(jobs_app, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(jobs_app.extensions["celery"], "send_task", broken)
    before = jobs_app.extensions["jobs"].count()
    rv = jobs_app.test_client().post("/train", json={"example": "one_to_one"})
    assert rv.status_code == 503
    assert jobs_app.extensions["jobs"].count() == before


def test_examples_are_the_seed_programs(app, spec):
    rv = app.test_client().get("/examples")
    validate_response(spec, "/examples", "get", rv)
    examples = {e["name"]: e for e in rv.get_json()["examples"]}
    assert {k: (v["fit"]["epochs"], v["fit"]["batch_size"]) for k, v in examples.items()} == {
        "one_to_one": (1000, 5),
        "many_to_one": (500, 1),
        "many_to_many": (1000, 1),
        # The Functional presets (tests/test_examples.py).
        "encoder_decoder": (100, 32),
        "attention": (100, 32),
    }


def test_metrics_and_validation_split_are_recorded_per_epoch(jobs_client):
    body = {
        "example": "one_to_one",
        "compile": {"metrics": ["mae"]},
        "fit": {"epochs": 20, "validation_split": 0.4, "batch_size": 2},
    }
    job = wait_for(jobs_client, submit(jobs_client, body).headers["Location"]).get_json()
    assert job["status"] == "succeeded", job.get("error")
    history = job["result"]["history"]
    assert set(history) == {"loss", "mae", "val_loss", "val_mae"}
    assert all(len(v) == 20 for v in history.values())
    assert job["result"]["final_metrics"]["val_loss"] == history["val_loss"][-1]


def test_short_last_batch_trains_the_same_steps(jobs_client):
    # 5 samples in batches of 2: every epoch is 2 + 2 + 1, three steps.
    body = {"example": "one_to_one", "fit": {"epochs": 30, "batch_size": 2}}
    job = wait_for(jobs_client, submit(jobs_client, body).headers["Location"]).get_json()
    assert job["status"] == "succeeded", job.get("error")
    assert len(job["result"]["history"]["loss"]) == 30


# --- the job store seen through the routes: ids, paging, delete, cancel -----


def queue_job(client):
    """A job queued on ``idle_app``'s queue, which no worker serves."""
    rv = client.post("/train", json={"example": "one_to_one"})
    assert rv.status_code == 202, rv.get_json()
    return rv.get_json()["id"]


def test_polls_do_not_read_the_training_data(idle_app, spec):
    client = idle_app.test_client()
    job_id = queue_job(client)
    store = idle_app.extensions["jobs"]
    # Drop every key of the job but its record: a poll and a listing need no more.
    for key in store.redis.keys(f"{store.key(job_id)}:*"):
        store.redis.delete(key)
    rv = client.get(f"/jobs/{job_id}")
    assert rv.status_code == 200
    validate_response(spec, "/jobs/{job_id}", "get", rv)
    assert rv.get_json()["request"]["data_shapes"] == {"x": [5, 1, 1], "y": [5, 1]}
    listed = client.get("/jobs?page_size=100").get_json()["jobs"]
    assert job_id in [job["id"] for job in listed]
    # The record itself never held the data.
    record = store.redis.hgetall(store.key(job_id))
    assert "data" not in json.loads(record[b"request"])


def test_ids_of_another_format_are_404_like_unknown_ones(idle_app, spec):
    client = idle_app.test_client()
    job_id = queue_job(client)
    store = idle_app.extensions["jobs"]
    store.start(job_id, "test")
    store.put_model(job_id, b"model")  # now seqlab:job:<id>:model exists, a string
    unknown = "0" * 32
    for odd in (f"{job_id}:model", f"{job_id}:data", job_id.upper(), f"{job_id}0", unknown):
        for method, path in [
            ("get", f"/jobs/{odd}"),
            ("get", f"/jobs/{odd}/model"),
            ("post", f"/jobs/{odd}/cancel"),
            ("delete", f"/jobs/{odd}"),
        ]:
            rv = client.open(path, method=method.upper())
            assert rv.status_code == 404, (method, path)
            assert rv.content_type == "application/problem+json"
            assert rv.get_json()["detail"].startswith(f"There is no job {odd!r}")
    validate_response(spec, "/jobs/{job_id}", "get", client.get(f"/jobs/{job_id}:model"))


def test_list_jobs_pages_by_cursor(idle_app):
    client = idle_app.test_client()
    store = idle_app.extensions["jobs"]
    ids = [queue_job(client) for _ in range(5)]
    expired = ids.pop(2)  # its record expired; the index still lists it
    store.redis.delete(store.key(expired))
    # Two jobs created at the very same moment are ordered by id.
    tied = store.redis.zscore(INDEX, ids[1])
    store.redis.zadd(INDEX, {ids[2]: tied})
    newest_first = [ids[3], *sorted(ids[1:3], reverse=True), ids[0]]

    seen, token = [], None
    while True:
        query = "page_size=1" + (f"&page_token={token}" if token else "")
        page = client.get(f"/jobs?{query}").get_json()
        assert len(page["jobs"]) == 1  # full, though a listed record expired
        seen += [job["id"] for job in page["jobs"]]
        if len(seen) == 2:
            later = queue_job(client)  # created between two pages
        token = page["next_page_token"]
        if token is None:
            break
    mine = [job_id for job_id in seen if job_id in ids]
    assert mine == newest_first
    assert later not in seen  # it is newer than every page still to come
    assert len(seen) == len(set(seen))  # nothing repeats
    assert store.redis.zscore(INDEX, expired) is None  # pruned on the way


def test_delete_removes_a_finished_job_and_refuses_a_live_one(idle_app, spec):
    client = idle_app.test_client()
    store = idle_app.extensions["jobs"]
    job_id = queue_job(client)
    for move in ("queued", "running"):
        if move == "running":
            store.start(job_id, "test")
        rv = client.delete(f"/jobs/{job_id}")
        assert rv.status_code == 409, move
        validate_response(spec, "/jobs/{job_id}", "delete", rv)
        assert f"/jobs/{job_id}/cancel" in rv.get_json()["detail"]
        assert store.get(job_id)["status"] == move
    store.put_model(job_id, b"model")
    store.finish(job_id, "succeeded", result={"history": {"loss": [0.1]}})

    rv = client.delete(f"/jobs/{job_id}")
    assert rv.status_code == 204
    assert rv.get_data() == b""
    validate_response(spec, "/jobs/{job_id}", "delete", rv)
    assert store.redis.keys(f"{store.key(job_id)}*") == []
    assert store.redis.zscore(INDEX, job_id) is None
    # Gone: a second DELETE, like any request for it, is 404.
    rv = client.delete(f"/jobs/{job_id}")
    assert rv.status_code == 404
    validate_response(spec, "/jobs/{job_id}", "delete", rv)
    assert client.get(f"/jobs/{job_id}").status_code == 404


@pytest.mark.parametrize("finish_after", range(1, 6))
def test_cancel_answer_agrees_with_its_body_whenever_the_job_ends(
    idle_app, redis_url, monkeypatch, spec, finish_after
):
    """The worker finishes the job after the cancel request's n-th Redis
    command: the answer must describe one moment, never 202 for a finished job."""
    client = idle_app.test_client()
    store = idle_app.extensions["jobs"]
    job_id = queue_job(client)
    store.start(job_id, "test")
    worker = JobStore.from_url(redis_url, store.ttl)  # the worker's own connection
    execute, calls = store.redis.execute_command, []

    def interleaved(*args, **kwargs):
        reply = execute(*args, **kwargs)
        calls.append(args[0])
        if len(calls) == finish_after:
            assert worker.finish(job_id, "succeeded", result={"history": {"loss": [0.1]}})
        return reply

    monkeypatch.setattr(store.redis, "execute_command", interleaved)
    rv = client.post(f"/jobs/{job_id}/cancel")
    if rv.status_code == 202:
        assert rv.get_json()["status"] == "running"
        assert rv.get_json()["cancel_requested"] is True
    else:
        assert rv.status_code == 409, rv.get_json()
        assert "(succeeded)" in rv.get_json()["detail"]
    validate_response(spec, "/jobs/{job_id}/cancel", "post", rv)
