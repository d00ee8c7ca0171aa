"""Jobs routed by size (jobs/routing.py): the pure choice, then the API's
over the live workers' real heartbeat records in Redis."""

from __future__ import annotations

import uuid

import pytest
import redis
from openapi_check import validate_response

from jobs import presence
from jobs.routing import Queues
from jobs.routing import TooLarge
from jobs.routing import choose_queue
from service import create_app

GiB = 1 << 30
QUEUES = Queues(pinned=None, gpu="gpu", cpu="cpu", cpu_job_bytes=GiB)


def worker(node, queues, memory):
    return {"node": node, "queues": queues, "memory_bytes": memory}


CPU = worker("cpu@a", ["cpu"], 4 * GiB)
GPU = worker("gpu@b", ["gpu", "cpu"], 80 * GiB)
GPU_ONLY = worker("gpu@f", ["gpu"], 80 * GiB)


@pytest.mark.parametrize(
    ("need", "live", "queue"),
    [
        (GiB // 2, [CPU, GPU], "cpu"),  # small: the CPU queue
        (2 * GiB, [CPU, GPU], "gpu"),  # large: the GPU queue
        (GiB // 2, [GPU_ONLY], "gpu"),  # small, no CPU worker: the GPU host takes it
        (GiB // 2, [GPU], "cpu"),  # a GPU host serving both takes it from `cpu`
        (2 * GiB, [CPU], "cpu"),  # large, only CPU workers, one with the memory
        (GiB, [CPU, GPU], "cpu"),  # the threshold is inclusive
        (GiB // 2, [worker("old@c", ["cpu"], None)], "cpu"),  # no figure: taken to fit
    ],
)
def test_the_queue_by_size_and_live_workers(need, live, queue):
    assert choose_queue(need, live, QUEUES).queue == queue
    assert choose_queue(need, live, QUEUES).warnings == []


def test_with_no_worker_alive_it_goes_by_size_with_a_warning():
    for need, queue in ((GiB // 2, "cpu"), (2 * GiB, "gpu")):
        route = choose_queue(need, [worker("other@d", ["elsewhere"], GiB)], QUEUES)
        assert route.queue == queue
        (warning,) = route.warnings
        assert warning.startswith(f"No worker serves the queue {queue!r} now")
        assert f"{need:,} bytes" in warning


def test_too_large_for_every_live_worker_names_the_figures():
    with pytest.raises(TooLarge) as error:
        choose_queue(100 * GiB, [CPU, GPU], QUEUES)
    message = str(error.value)
    assert f"{100 * GiB:,} bytes of worker memory" in message
    assert f"the largest, gpu@b, has {80 * GiB:,} bytes (2 live)" in message


def test_a_pinned_queue_takes_every_job():
    pinned = Queues(pinned="only", gpu="gpu", cpu="cpu", cpu_job_bytes=GiB)
    assert choose_queue(GiB // 2, [worker("w@e", ["only"], 8 * GiB)], pinned).queue == "only"
    assert choose_queue(4 * GiB, [worker("w@e", ["only"], 8 * GiB)], pinned).queue == "only"
    with pytest.raises(TooLarge):
        choose_queue(16 * GiB, [worker("w@e", ["only"], 8 * GiB)], pinned)


# --- the API, over heartbeat records in the test Redis ----------------------


@pytest.fixture
def routed(redis_url):
    """An app that routes by size to queues of its own, and a way to say
    that a worker serving some of them is alive (its heartbeat record, as
    a worker writes it); the records are removed at the end."""
    tag = uuid.uuid4().hex[:8]
    cpu, gpu = f"cpu-{tag}", f"gpu-{tag}"
    client = redis.Redis.from_url(redis_url)
    nodes = []

    def alive(name, queues, memory):
        node = f"{name}-{tag}@test"
        presence.beat(client, node, queues, 30, "jax", {"device": "cpu", "memory_bytes": memory})
        nodes.append(node)

    def app(**config):
        return create_app(
            {"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": None,
             "SEQLAB_CPU_QUEUE": cpu, "SEQLAB_GPU_QUEUE": gpu, **config}
        )  # fmt: skip

    yield app, alive, cpu, gpu
    for node in nodes:
        presence.leave(client, node)


SMALL = {"example": "one_to_one"}
LARGE = {"example": "many_to_many"}


def need_of(app, body):
    """The job's training-memory estimate, as the API computes it."""
    rv = app.test_client().post("/train", json=body)
    assert rv.status_code == 202, rv.get_json()
    return rv.get_json()["estimated_cost"]["worker_memory_bytes"]


@pytest.fixture
def needs(routed):
    app, *_ = routed
    # On a queue of their own, so that the routed queues start empty.
    probe = app(SEQLAB_QUEUE=f"probe-{uuid.uuid4().hex[:8]}")
    small, large = need_of(probe, SMALL), need_of(probe, LARGE)
    assert small < large
    return small, large


def test_the_api_routes_by_size_and_shows_the_queue(routed, needs, spec):
    make, alive, cpu, gpu = routed
    small, large = needs
    app = make(SEQLAB_CPU_JOB_BYTES=small)  # the small job fits, the large one not
    alive("cpu", [cpu], small * 4)
    alive("gpu", [gpu, cpu], large * 4)
    client = app.test_client()
    for body, queue in ((SMALL, cpu), (LARGE, gpu)):
        rv = client.post("/train", json=body)
        assert rv.status_code == 202, rv.get_json()
        job = client.get(rv.headers["Location"])
        validate_response(spec, "/jobs/{job_id}", "get", job)
        assert job.get_json()["queue"] == queue
        assert "warnings" not in job.get_json()
    ready = client.get("/readyz")
    validate_response(spec, "/readyz", "get", ready)
    listed = {q["name"]: q for q in ready.get_json()["queues"]}
    assert listed[cpu]["workers"] == 2 and listed[gpu]["workers"] == 1
    assert listed[cpu]["depth"] == 1 and listed[gpu]["depth"] == 1


def test_a_job_too_large_for_every_live_worker_is_refused_with_the_figures(routed, needs, spec):
    make, alive, cpu, gpu = routed
    small, large = needs
    app = make(SEQLAB_CPU_JOB_BYTES=small)
    alive("cpu", [cpu], small)
    alive("gpu", [gpu], large - 1)
    jobs = app.extensions["jobs"]
    before = jobs.count()
    rv = app.test_client().post("/train", json=LARGE)
    assert rv.status_code == 422
    validate_response(spec, "/train", "post", rv)
    (reason,) = rv.get_json()["errors"]["model"]
    assert f"estimated to take {large:,} bytes of worker memory" in reason
    assert f"has {large - 1:,} bytes (2 live)" in reason
    assert jobs.count() == before  # nothing written, nothing queued
    # The small one still fits its CPU worker.
    assert app.test_client().post("/train", json=SMALL).status_code == 202


def test_where_only_one_kind_of_worker_lives_it_takes_what_fits(routed, needs):
    make, alive, cpu, gpu = routed
    small, large = needs
    app = make(SEQLAB_CPU_JOB_BYTES=small)
    alive("gpu-only", [gpu], large * 4)
    rv = app.test_client().post("/train", json=SMALL)
    assert rv.get_json()["queue"] == gpu  # no CPU worker: the GPU host runs it


def test_with_no_worker_alive_the_job_waits_with_a_warning(routed, needs):
    make, _, cpu, gpu = routed
    small, large = needs
    app = make(SEQLAB_CPU_JOB_BYTES=small)
    for body, queue, need in ((SMALL, cpu, small), (LARGE, gpu, large)):
        doc = app.test_client().post("/train", json=body).get_json()
        assert doc["queue"] == queue
        assert doc["warnings"][0] == (
            f"No worker serves the queue {queue!r} now: the job waits until one starts. "
            f"It is estimated to need {need:,} bytes of worker memory."
        )


def test_a_sweeps_trials_go_to_their_size_s_queue(routed, needs):
    make, alive, cpu, gpu = routed
    small, _ = needs
    app = make(SEQLAB_CPU_JOB_BYTES=small)
    alive("cpu", [cpu], small * 4)
    client = app.test_client()
    rv = client.post("/sweeps", json={**SMALL, "vary": {"seed": [0, 1]}})
    assert rv.status_code == 202, rv.get_json()
    for trial in rv.get_json()["trials"]:
        assert client.get(f"/jobs/{trial['job']}").get_json()["queue"] == cpu


def test_a_worker_publishes_its_device_and_memory(jobs_app, worker, queue):
    (record,) = presence.live_records(jobs_app.extensions["jobs"].redis, queue)
    assert record["device"] == "cpu"  # no GPU on a test machine
    assert record["memory_bytes"] > GiB
