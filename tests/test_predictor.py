"""The worker's predictor (worker/predictor.py, worker/serving.py): a
process beside the pool that answers ``POST /jobs/<id>/predict`` while the
pool trains. Real Redis, real Celery workers, real processes killed."""

import os
import signal
import time
import uuid
from pathlib import Path

from conftest import run_worker
from test_jobs import LONG
from test_jobs import submit
from test_jobs import wait_for
from test_predict import NEW

from service import create_app

#: The most seconds a prediction may take while the worker trains (the
#: API would wait SEQLAB_PREDICT_TIMEOUT, 30 s, for a worker that answers
#: only once its job ends).
PROMPT = 5.0


def predictors(queue):
    """The pids of the predictor processes serving ``queue`` on this host."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if b"worker.predictor" in argv and queue.encode() in argv:
            found.append(int(entry.name))
    return found


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return value


def test_a_prediction_is_answered_while_the_worker_trains(redis_url, queue, worker):
    app = create_app(
        {"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue, "PREDICT_TIMEOUT": 15}
    )
    client = app.test_client()
    trained = wait_for(client, submit(client, {"example": "many_to_many"}).headers["Location"])
    assert trained.get_json()["status"] == "succeeded"
    url = f"/jobs/{trained.get_json()['id']}/predict"
    long_job = submit(client, LONG).headers["Location"]
    try:
        # The pool's one process is in the job's epochs.
        wait_for(client, long_job, until=("running",), check=lambda job: job.get("progress"))
        for _ in range(3):  # the first loads the model; each well under the timeout
            started = time.monotonic()
            rv = client.post(url, json={"instances": NEW})
            elapsed = time.monotonic() - started
            assert rv.status_code == 200, rv.get_json()
            assert elapsed < PROMPT, f"answered in {elapsed:.1f} s while the worker trains"
        assert rv.get_json()["model_cached"] is True
        assert client.get(long_job).get_json()["status"] == "running"
    finally:
        client.post(f"{long_job}/cancel")
        wait_for(client, long_job)


def test_a_request_left_after_its_wait_is_dropped(redis_url, queue, worker):
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue})
    client = app.test_client()
    store = app.extensions["jobs"]
    job = wait_for(client, submit(client, {"example": "many_to_many"}).headers["Location"])
    job_id = job.get_json()["id"]
    stale_key = store.reply_key(uuid.uuid4().hex)
    request = {"job_id": job_id, "instances": NEW, "reply_key": stale_key,
               "reply_by": time.time() - 1, "reply_ttl": 60}  # fmt: skip
    assert store.push_predict(queue, request, ttl=30)
    # The predictor takes requests in order: the stale one went first.
    assert client.post(f"/jobs/{job_id}/predict", json={"instances": NEW}).status_code == 200
    assert not store.redis.exists(stale_key)
    assert store.redis.llen(store.predict_key(queue)) == 0


def test_no_request_is_pushed_where_no_predictor_is_live(idle_app):
    store = idle_app.extensions["jobs"]
    queue = idle_app.config["SEQLAB_QUEUE"]
    assert not store.push_predict(queue, {"job_id": "x"}, ttl=30)
    assert not store.redis.exists(store.predict_key(queue))


def test_a_dead_predictor_is_restarted_and_none_outlives_its_worker(redis_url, tmp_path):
    queue = f"test-pred-{uuid.uuid4().hex[:8]}"
    with run_worker(redis_url, queue, tmp_path / "a.log", predictor=True, SEQLAB_WARM_UP="0") as a:
        [first] = predictors(queue)
        os.kill(first, signal.SIGKILL)
        second = wait_until(
            lambda: [pid for pid in predictors(queue) if pid != first], 30, "not restarted"
        )
        assert len(second) == 1
        # What the tests' fixtures do to a worker: SIGTERM to its group.
        os.killpg(a.pid, signal.SIGTERM)
        a.wait(timeout=30)
        wait_until(lambda: not predictors(queue), 10, f"left behind: {predictors(queue)}")
    with run_worker(redis_url, queue, tmp_path / "b.log", predictor=True, SEQLAB_WARM_UP="0") as b:
        assert len(predictors(queue)) == 1
        os.kill(b.pid, signal.SIGKILL)  # the main process alone, no shutdown at all
        b.wait(timeout=10)
        wait_until(lambda: not predictors(queue), 10, f"left behind: {predictors(queue)}")
