"""The training task on a real worker: cancels and progress inside long
epochs, flat memory, stateful models, Redis blips, clean error messages."""

import contextlib
import math
import threading
import time
from datetime import datetime
from types import SimpleNamespace

import pytest
import redis
from conftest import free_port
from conftest import run_worker
from conftest import start_redis
from openapi_check import validate_response
from specs import KERAS_LOOP_EPOCHS
from specs import STATEFUL_JOB
from test_health import ROUTES
from test_jobs import submit
from test_jobs import wait_for

from jobs.store import JobStore
from service import create_app
from worker import tasks
from worker.tasks import failure

pytestmark = pytest.mark.slow


def dense_job(samples, features, epochs, batch_size):
    """A Dense regression on ``samples`` × ``features`` of small integers."""
    x = [[(i + j) % 3 for j in range(features)] for i in range(samples)]
    return {
        "model": {"input_shape": [features], "layers": [{"type": "Dense", "units": 1}]},
        "data": {"x": x, "y": [[i % 2] for i in range(samples)]},
        "compile": {"optimizer": "sgd", "learning_rate": 1e-4},
        "fit": {"epochs": epochs, "batch_size": batch_size, "shuffle": True},
    }


def test_cancel_takes_effect_within_two_seconds_in_long_epochs(jobs_client):
    # 1,000 steps an epoch, 100,000 epochs: history blocks of 100 epochs.
    location = submit(jobs_client, dense_job(1000, 1, 100_000, 1)).headers["Location"]
    job = wait_for(jobs_client, location, until=("running",), check=lambda j: "progress" in j)
    progress = job.get_json()["progress"]
    assert progress["epochs"] == 100_000 and progress["steps_per_epoch"] == 1000
    started = time.monotonic()
    assert jobs_client.post(f"{location}/cancel").status_code == 202
    job = wait_for(jobs_client, location, timeout=30).get_json()
    took = time.monotonic() - started
    assert job["status"] == "cancelled"
    assert took < 2.0, f"the cancel took {took:.1f} s"
    assert job["result"]["epochs_completed"] < 100


def test_memory_does_not_grow_with_epochs(jobs_client):
    # 250 samples of 1,000 features in one batch: 1 MB of inputs an epoch.
    peaks = {}
    for epochs in (10, 3000):
        location = submit(jobs_client, dense_job(250, 1000, epochs, 250)).headers["Location"]
        job = wait_for(jobs_client, location, timeout=300).get_json()
        assert job["status"] == "succeeded", job.get("error")
        assert job["result"]["epochs_completed"] == epochs
        peaks[epochs] = job["result"]["peak_rss_bytes"]
    # Materialising every epoch's batches would take 3 GB at 3,000 epochs.
    assert peaks[3000] - peaks[10] < 64 * 2**20, peaks


def test_stateful_model_trains_and_predicts_in_its_batch_size(jobs_client):
    job = wait_for(jobs_client, submit(jobs_client, STATEFUL_JOB).headers["Location"]).get_json()
    assert job["status"] == "succeeded", job.get("error")
    assert len(job["result"]["predictions"]) == 4
    assert len(job["result"]["history"]["loss"]) == 3


class RestartableRedis:
    """A Redis of a test's own on a free port, that it may stop and restart;
    its data survives in ``directory`` (SHUTDOWN SAVE, then reloaded; or,
    started with ``--appendonly yes``, its append-only file alone)."""

    def __init__(self, directory, *extra):
        self.directory, self.port, self.extra = directory, free_port(), extra
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server = None

    def start(self):
        self.server = start_redis(self.directory, self.port, *self.extra)
        self.server.__enter__()

    def stop(self, save=True):
        with contextlib.suppress(redis.exceptions.ConnectionError):
            redis.Redis.from_url(self.url).shutdown(save=save, nosave=not save)
        self.server.__exit__(None, None, None)


@pytest.fixture
def own_redis(tmp_path):
    server = RestartableRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_redis_blip_does_not_fail_the_job(own_redis, tmp_path):
    url, queue = own_redis.url, "blip"
    app = create_app({"TESTING": True, "REDIS_URL": url, "SEQLAB_QUEUE": queue})
    client = app.test_client()
    with run_worker(url, queue, tmp_path / "worker.log", SEQLAB_WARM_UP="0"):
        location = submit(
            client, {"example": "many_to_one", "fit": {"epochs": KERAS_LOOP_EPOCHS}}
        ).headers["Location"]
        wait_for(client, location, until=("running",), check=lambda j: "progress" in j)
        own_redis.stop()
        time.sleep(4)  # progress writes and cancel checks fail meanwhile
        own_redis.start()
        job = wait_for(client, location, timeout=120).get_json()
    assert job["status"] == "succeeded", job.get("error")
    assert job["result"]["epochs_completed"] == KERAS_LOOP_EPOCHS


def test_stored_errors_carry_no_terminal_colours():
    error = failure("ValueError", "\x1b[1mInput 0\x1b[0m is \x1b[31mbad\x1b[0m", "\x1b[2mtb\x1b[0m")
    assert error == {"type": "ValueError", "message": "Input 0 is bad", "traceback": "tb"}


def test_a_job_past_its_time_limit_fails_keeping_its_history_and_model(jobs_client, spec):
    # A short job first, so that the worker has loaded Keras: the limit
    # counts from the job's start, and a cold worker spends it loading.
    wait_for(jobs_client, submit(jobs_client, {"example": "one_to_one"}).headers["Location"])
    body = {"example": "many_to_one", "fit": {"epochs": 100_000, "time_limit_seconds": 2}}
    location = submit(jobs_client, body).headers["Location"]
    rv = wait_for(jobs_client, location, timeout=60)
    validate_response(spec, "/jobs/{job_id}", "get", rv)
    job = rv.get_json()
    assert job["status"] == "failed"
    assert job["error"]["type"] == "TimeLimitExceeded"
    done = job["result"]["epochs_completed"]
    assert 0 < done < 100_000
    assert f"time limit of 2 s after {done} of 100000 epochs" in job["error"]["message"]
    # In blocks of 100 epochs (100,000 asked for), the last one partial.
    assert len(job["result"]["history"]["loss"]) == math.ceil(done / 100)
    assert job["result"]["history_block"] == 100
    assert job["request"]["fit"]["time_limit_seconds"] == 2
    ran = datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
    assert ran.total_seconds() < 2 + 5  # stopped by the training loop, not Celery's backstops
    model = jobs_client.get(f"{location}/model")
    assert model.status_code == 200 and model.data[:2] == b"PK"  # a .keras file is a zip


def test_a_job_queued_before_a_redis_restart_runs_after_it(tmp_path, spec):
    # Append-only persistence, as in docker-compose.yml and make up.
    server = RestartableRedis(tmp_path, "--appendonly", "yes", "--appendfsync", "everysec")
    server.start()
    try:
        url, queue = server.url, "restart"
        client = create_app(
            {"TESTING": True, "REDIS_URL": url, "SEQLAB_QUEUE": queue}
        ).test_client()
        queued = submit(client, {"example": "one_to_one"})
        location = queued.headers["Location"]
        server.stop(save=False)  # no snapshot: only the append-only file keeps the job

        # While Redis is down: 503 with Retry-After wherever Redis is needed.
        for method, path, route, body in [*ROUTES, ("get", "/jobs/{job_id}", location, None)]:
            rv = getattr(client, method)(route, json=body)
            assert rv.status_code == 503 and rv.headers["Retry-After"], (route, rv.get_json())
            validate_response(spec, path, method, rv)
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200

        server.start()
        # The API recovers by itself, and the job is there, still queued.
        ready = client.get("/readyz").get_json()
        assert ready["queue"] == {"name": queue, "depth": 1} and ready["workers"] == 0
        assert client.get(location).get_json()["status"] == "queued"
        with run_worker(url, queue, tmp_path / "worker.log", SEQLAB_WARM_UP="0"):
            job = wait_for(client, location, timeout=180).get_json()
            again = wait_for(client, submit(client, {"example": "one_to_one"}).headers["Location"])
        assert job["status"] == again.get_json()["status"] == "succeeded", job.get("error")
        # Nothing lost: the very request, its data, and a whole training.
        assert job["request"] == queued.get_json()["request"]
        assert len(job["result"]["history"]["loss"]) == job["request"]["fit"]["epochs"]
    finally:
        server.stop()


class SentTasks:
    """What :func:`worker.tasks.claim` needs of a bound task: its request,
    and an app whose ``send_task`` records what it sends."""

    def __init__(self, job_id):
        self.name = "seqlab.train"
        self.request = SimpleNamespace(args=[job_id], id=job_id, timelimit=(45, 15))
        self.sent = []
        self.app = SimpleNamespace(send_task=lambda *a, **kw: self.sent.append((a, kw)))


def test_a_claim_rides_out_a_redis_outage(own_redis, monkeypatch):
    """The task's message is already taken: a claim that gave up at the first
    error would leave the job queued with nothing to run it."""
    jobs = JobStore.from_url(own_redis.url, 60)
    jobs.create("c" * 32, {"request": {"fit": {}}, "params": {}}, {})
    own_redis.stop()
    timer = threading.Timer(1.5, own_redis.start)
    timer.start()
    task = SentTasks("c" * 32)
    claimed = tasks.claim(task, jobs, "c" * 32, "w", "q")
    timer.join()
    assert claimed is not None and claimed[1]["status"] == "running"
    assert task.sent == []


def test_a_claim_that_never_reaches_redis_sends_the_task_again(own_redis, monkeypatch):
    monkeypatch.setenv("SEQLAB_FINAL_WRITE_SECONDS", "1")
    jobs = JobStore.from_url(own_redis.url, 60)
    own_redis.stop()
    try:
        task = SentTasks("d" * 32)
        assert tasks.claim(task, jobs, "d" * 32, "w", "q") is None
    finally:
        own_redis.start()
    ((args, options),) = task.sent
    assert args == ("seqlab.train",)
    assert options == {"args": ["d" * 32], "task_id": "d" * 32, "queue": "q",
                       "time_limit": 45, "soft_time_limit": 15}  # fmt: skip
