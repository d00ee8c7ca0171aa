"""Lost workers' jobs (jobs/reaper.py): given back to the queue or failed,
by the API on reads and by every worker's sweeps, never left ``running``.

The fault tests SIGKILL a real worker's whole process group mid-job, with
short leases (``SEQLAB_LEASE_SECONDS``) so that they take seconds.
"""

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import redis
from conftest import run_worker
from openapi_check import validate_response
from specs import KERAS_LOOP_EPOCHS
from test_jobs import submit
from test_jobs import wait_for

from jobs.reaper import LEASE_EXPIRED
from service import create_app

#: Fast leases, sweeps and heartbeats, for workers under test.
FAST = {
    "SEQLAB_LEASE_SECONDS": "2",
    "SEQLAB_REAPER_SECONDS": "1",
    "SEQLAB_HEARTBEAT_SECONDS": "1",
    "SEQLAB_WARM_UP": "0",
}
#: Long enough to be killed while it trains, short enough to run again.
JOB = {"example": "many_to_one", "fit": {"epochs": KERAS_LOOP_EPOCHS}}


def queued_messages(app):
    """The task messages waiting in the app's queue, oldest first."""
    client = redis.Redis.from_url(app.config["REDIS_URL"])
    return [json.loads(m) for m in reversed(client.lrange(app.config["SEQLAB_QUEUE"], 0, -1))]


def lost(store, job_id, queue="q", worker="host:a"):
    """Claim a queued job from ``queue`` as ``worker`` would; let its lease lapse."""
    store.claim(job_id, worker, queue, lease_seconds=30)
    store.redis.delete(store.lease_key(job_id))


# --- the API's reaper, on reads (no worker needed) ----------------------------


def test_tasks_carry_celery_time_limits_behind_the_jobs(idle_app):
    submit(idle_app.test_client(), {"example": "one_to_one", "fit": {"time_limit_seconds": 120}})
    submit(idle_app.test_client(), {"example": "one_to_one"})
    limits = [m["headers"]["timelimit"] for m in queued_messages(idle_app)]
    # [hard, soft]: the training loop stops a job at its limit; Celery's soft
    # limit interrupts a step that outlasts it, the hard one kills the process.
    assert limits == [[120 + 45, 120 + 15], [3600 + 45, 3600 + 15]]


def test_reading_a_lost_job_gives_it_back_to_the_queue(idle_app, spec):
    client = idle_app.test_client()
    body = {"example": "one_to_one", "fit": {"time_limit_seconds": 60}}
    job_id = submit(client, body).get_json()["id"]
    # A worker took its task (acknowledged: the message is gone), then died.
    queue = idle_app.config["SEQLAB_QUEUE"]
    redis.Redis.from_url(idle_app.config["REDIS_URL"]).delete(queue)
    lost(idle_app.extensions["jobs"], job_id, queue)

    rv = client.get(f"/jobs/{job_id}")
    validate_response(spec, "/jobs/{job_id}", "get", rv)
    job = rv.get_json()
    assert (job["status"], job["attempt"], job["started_at"]) == ("queued", 1, None)
    # Its task is published again, to the queue it came from, with its limits.
    [message] = queued_messages(idle_app)
    assert message["headers"]["id"] == job_id and message["headers"]["timelimit"] == [105, 75]
    # Published: no longer pending (other tests' jobs may be).
    assert job_id not in idle_app.extensions["jobs"].requeue_pending(older_than=0)


def test_listing_settles_the_lost_jobs_it_shows(redis_url):
    app = create_app(
        {"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": f"idle-{uuid.uuid4().hex[:8]}",
         "JOB_RETRIES": 0}
    )  # fmt: skip
    client = app.test_client()
    store = app.extensions["jobs"]
    ids = [submit(client, {"example": "one_to_one"}).get_json()["id"] for _ in range(3)]
    lost(store, ids[0])
    store.claim(ids[1], "host:b", "q", lease_seconds=30)  # alive
    jobs = {job["id"]: job for job in client.get("/jobs?page_size=100").get_json()["jobs"]}
    assert jobs[ids[0]]["status"] == "failed"
    assert jobs[ids[0]]["error"]["type"] == "WorkerLost"
    assert LEASE_EXPIRED in jobs[ids[0]]["error"]["message"]
    assert (jobs[ids[1]]["status"], jobs[ids[2]]["status"]) == ("running", "queued")


def test_cancelling_a_lost_job_ends_it_cancelled_on_the_next_read(idle_app):
    client = idle_app.test_client()
    job_id = submit(client, {"example": "one_to_one"}).get_json()["id"]
    lost(idle_app.extensions["jobs"], job_id, idle_app.config["SEQLAB_QUEUE"])
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 202
    assert client.get(f"/jobs/{job_id}").get_json()["status"] == "cancelled"
    assert client.delete(f"/jobs/{job_id}").status_code == 204


# --- real workers, SIGKILLed mid-job ------------------------------------------


@pytest.fixture
def fault_queue():
    return f"fault-{uuid.uuid4().hex[:8]}"


def kill_group(process):
    """SIGKILL the worker's whole process group: main process and pool."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def running_job(client):
    """Queue JOB and wait until it trains; returns its URL."""
    location = submit(client, JOB).headers["Location"]
    wait_for(client, location, until=("running",), check=lambda j: "progress" in j, timeout=180)
    return location


def until_not_running(client, location, timeout=60):
    started = time.monotonic()
    job = wait_for(client, location, until=("queued", "failed", "cancelled", "succeeded"),
                   timeout=timeout).get_json()  # fmt: skip
    return job, time.monotonic() - started


@pytest.mark.slow
def test_a_killed_workers_job_is_queued_again_and_runs_on_the_next_worker(
    redis_url, fault_queue, tmp_path
):
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": fault_queue})
    client = app.test_client()
    with run_worker(redis_url, fault_queue, tmp_path / "first.log", **FAST) as first:
        location = running_job(client)
        kill_group(first)
    # No worker is alive: the API's reads settle the job.
    job, took = until_not_running(client, location)
    assert job["status"] == "queued" and job["attempt"] == 1, job
    assert took < 60
    # Its events say why it is queued again.
    store = app.extensions["jobs"]
    queued = [json.loads(e.data) for e in store.events(job["id"]) if e.kind == "status"][-1]
    assert (queued["status"], queued["reason"]) == ("queued", "worker_lost")
    with run_worker(redis_url, fault_queue, tmp_path / "second.log", **FAST):
        job = wait_for(client, location, timeout=240).get_json()
    assert job["status"] == "succeeded", job.get("error")
    assert job["attempt"] == 2
    assert job["result"]["epochs_completed"] == KERAS_LOOP_EPOCHS


@pytest.mark.slow
def test_without_retries_a_killed_workers_job_fails_worker_lost(redis_url, fault_queue, tmp_path):
    app = create_app(
        {"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": fault_queue, "JOB_RETRIES": 0}
    )
    client = app.test_client()
    env = {**FAST, "SEQLAB_JOB_RETRIES": "0"}
    with run_worker(redis_url, fault_queue, tmp_path / "w.log", **env) as worker:
        location = running_job(client)
        kill_group(worker)
    job, took = until_not_running(client, location)
    assert job["status"] == "failed" and took < 60, job
    assert job["error"]["type"] == "WorkerLost"
    assert "SEQLAB_JOB_RETRIES=0" in job["error"]["message"]
    assert queued_messages(app) == []  # nothing left to run it again


@pytest.mark.slow
def test_a_second_worker_reruns_the_job_of_a_killed_one(redis_url, fault_queue, tmp_path):
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": fault_queue})
    client = app.test_client()
    store = app.extensions["jobs"]
    with (
        run_worker(redis_url, fault_queue, tmp_path / "a.log", f"a-{fault_queue}", **FAST) as a,
        run_worker(redis_url, fault_queue, tmp_path / "b.log", f"b-{fault_queue}", **FAST) as b,
    ):
        location = running_job(client)
        job_id = location.rsplit("/", 1)[1]
        first = store.get(job_id)["worker"]
        victim, survivor = (a, b) if f":a-{fault_queue}@" in first else (b, a)
        kill_group(victim)
        # Nobody reads the job through the API: the survivor's sweep settles
        # it, and the survivor runs it again.
        deadline = time.monotonic() + 240
        while (job := store.get(job_id))["status"] not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert survivor.poll() is None
    assert job["status"] == "succeeded", job.get("error")
    assert job["attempt"] == 2 and job["worker"] != first


def pool_children(pid):
    """The pool processes of a worker's main process (from /proc): its
    children but its predictor (worker/predictor.py)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status and b"worker.predictor" not in cmdline(entry):
                children.append(int(entry.name))
    return children


def cmdline(entry):
    """A process's command line (empty once it has ended)."""
    try:
        return (entry / "cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.slow
def test_a_pool_process_killed_mid_job_is_settled_at_once_by_its_worker(
    redis_url, fault_queue, tmp_path
):
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": fault_queue})
    client = app.test_client()
    # A long lease: only the worker's own main process can settle it quickly.
    env = {**FAST, "SEQLAB_LEASE_SECONDS": "600"}
    with run_worker(redis_url, fault_queue, tmp_path / "w.log", **env) as worker:
        location = running_job(client)
        [child] = pool_children(worker.pid)
        os.kill(child, signal.SIGKILL)  # out of memory, say
        started = time.monotonic()
        # Queued again at once (its new pool process may take it as soon).
        given_back = lambda job: job["status"] == "queued" or job["attempt"] == 2  # noqa: E731
        wait_for(client, location, until=("queued", "running"), check=given_back, timeout=30)
        assert time.monotonic() - started < 10
        job = wait_for(client, location, timeout=240).get_json()
    assert job["status"] == "succeeded", job.get("error")
    assert job["attempt"] == 2
    events = app.extensions["jobs"].events(job["id"])
    statuses = [(d["status"], d.get("reason")) for d in
                (json.loads(e.data) for e in events if e.kind == "status")]  # fmt: skip
    assert statuses == [("queued", None), ("running", None), ("queued", "worker_lost"),
                        ("running", None), ("succeeded", None)]  # fmt: skip
