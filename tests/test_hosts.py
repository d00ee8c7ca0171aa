"""Workers on other hosts, over a real network that the tests cut.

Each test makes its hosts with network namespaces (devtools/netns.py): the
test's own Redis listens on the bridge, each worker runs on a host of its
own and reaches Redis, and the broker, only across the bridge. The job and
partition tests run on both brokers: Redis, and RabbitMQ (the machine's,
on a virtual host of the session's own, reached through a relay on the
bridge). Faults are real: a host's cable out, a worker's process group
killed, a slow and lossy link.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import math
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import pytest
from conftest import run_worker
from conftest import serve_api
from conftest import start_redis

from devtools.netns import Network
from devtools.netns import Relay
from devtools.netns import why_not
from jobs.store import TERMINAL
from service import create_app

pytestmark = pytest.mark.slow

#: Short leases, so that a lost worker is found in seconds: renewed every
#: 4/3 s, a job whose worker is cut off is queued again within 4 s plus a
#: reaper's period (1 s) of its last renewal.
LEASE_SECONDS = 4
WORKER_ENV = {
    "SEQLAB_LEASE_SECONDS": str(LEASE_SECONDS),
    "SEQLAB_REAPER_SECONDS": "1",
    "SEQLAB_HEARTBEAT_SECONDS": "1",
    # A command to a Redis across a cut cable gives up after 1.3 s (the
    # rule: at most a third of the lease, README "Scaling out").
    "SEQLAB_REDIS_TIMEOUT": "1.3",
    "SEQLAB_WARM_UP": "0",
}
#: Epochs of the long job: some seconds of training on this machine, so
#: that it is still running when its host is cut off and mended.
LONG_EPOCHS = 700


@pytest.fixture(scope="module")
def network():
    """Hosts of this module's own (skipped where namespaces cannot be made,
    unless ``SEQLAB_REQUIRE_NETNS`` is set, as ``.ci/run`` sets it)."""
    reason = why_not()
    if reason:
        if os.environ.get("SEQLAB_REQUIRE_NETNS"):
            pytest.fail(reason)
        pytest.skip(reason)
    with Network() as net:
        yield net


@pytest.fixture(scope="module")
def hosts(network):
    """Three hosts: two for workers, one for a Redis that the API loses."""
    return [network.add_host() for _ in range(3)]


@pytest.fixture(scope="module")
def hub(network, tmp_path_factory):
    """The test's Redis on the bridge: job records, events, results, and
    the Redis broker."""
    directory = tmp_path_factory.mktemp("hub")
    with start_redis(directory, None, bind=f"{network.gateway} 127.0.0.1") as url:
        yield f"{url}/0"


@dataclass
class Broker:
    """One broker, as the hosts reach it and as the API (here) does."""

    name: str
    for_hosts: str
    for_api: str | None


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request, network, hub):
    if request.param == "redis":
        return Broker("redis", hub, None)
    local = request.getfixturevalue("rabbitmq")
    # The machine's RabbitMQ listens on loopback: the hosts reach it through
    # a relay on the bridge (RabbitMQ then sees loopback clients, as guest needs).
    relay = Relay((network.gateway, 0), ("127.0.0.1", 5672))
    request.addfinalizer(relay.close)
    remote = local.replace("127.0.0.1:5672", f"{network.gateway}:{relay.address[1]}")
    return Broker("rabbitmq", remote, local)


def wait_until(predicate, timeout: float, what: str, every: float = 0.2):
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
    return value


def app_for(hub, broker, **config):
    return create_app({"TESTING": True, "REDIS_URL": hub, "BROKER_URL": broker.for_api, **config})


def long_body(epochs=LONG_EPOCHS):
    """A job of some seconds: an LSTM on 64 windows of a sine, batches of 8."""
    x = [[[math.sin(0.3 * (i + t))] for t in range(12)] for i in range(64)]
    y = [[math.sin(0.3 * (i + 12))] for i in range(64)]
    return {
        "model": {"input_shape": [12, 1], "layers": [{"type": "LSTM", "units": 16},
                                                     {"type": "Dense", "units": 1}]},
        "data": {"x": x, "y": y},
        "fit": {"epochs": epochs, "batch_size": 8},
    }  # fmt: skip


def submit(client, body):
    rv = client.post("/train", json=body)
    assert rv.status_code == 202, rv.get_json()
    return rv.get_json()["id"]


def record(app, job_id):
    return app.extensions["jobs"].get(job_id)


def statuses(app, job_id):
    """The job's status events, in order, from its event stream."""
    events = app.extensions["jobs"].events(job_id)
    return [json.loads(e.data)["status"] for e in events if e.kind == "status"]


def node_of(job):
    """Which test host's worker a record names (its node ``h<k>-...@host``)."""
    return job["worker"].split(":", 1)[1].split("-", 1)[0]


@dataclass
class Running:
    """A worker running on a host of the test network."""

    process: object
    host: object
    log: object


@contextlib.contextmanager
def two_hosts(hub, broker, hosts, tmp_path):
    """An app on a queue of its own and a worker on each of two hosts
    (``h1``, ``h2``); yields the app and the workers by name."""
    queue = f"hosts-{uuid.uuid4().hex[:8]}"
    env = {**WORKER_ENV, "SEQLAB_BROKER_URL": broker.for_hosts}
    with contextlib.ExitStack() as stack:
        running = {}
        for k, host in enumerate(hosts[:2], 1):
            log = tmp_path / f"h{k}.log"
            process = stack.enter_context(
                run_worker(hub, queue, log, name=f"h{k}-{queue}", prefix=host.prefix(), **env)
            )
            running[f"h{k}"] = Running(process, host, log)
        yield app_for(hub, broker, SEQLAB_QUEUE=queue), running


def test_a_host_cut_off_mid_job_is_replaced_and_its_late_writes_refused(
    network, hosts, hub, broker, tmp_path
):
    with two_hosts(hub, broker, hosts, tmp_path) as (app, running):
        client = app.test_client()
        job_id = submit(client, long_body())
        first = wait_until(
            lambda: (r := record(app, job_id))["status"] == "running" and "progress" in r and r,
            120, "the job to run",
        )  # fmt: skip
        cut_name = node_of(first)
        cut_host, cut_log = running[cut_name].host, running[cut_name].log
        network.cut(cut_host)
        cut_at = time.monotonic()
        # Another host runs it again within the lease plus the reaper's period.
        again = wait_until(
            lambda: (r := record(app, job_id)).get("attempt") == 2 and r["status"] == "running"
            and r, 60, "the job to run again",
        )  # fmt: skip
        waited = time.monotonic() - cut_at
        assert node_of(again) != cut_name
        # Still training on the cut-off host: it never heard.
        assert running[cut_name].process.poll() is None
        network.mend(cut_host)
        done = wait_until(
            lambda: (r := record(app, job_id))["status"] not in ("queued", "running") and r,
            240, "the job to end",
        )  # fmt: skip
        # The cut-off worker learns that the job is no longer its own, and drops it.
        wait_until(lambda: b"is no longer this worker's" in cut_log.read_bytes(), 120,
                   "the cut-off worker to drop the job")  # fmt: skip
        time.sleep(2 * LEASE_SECONDS)  # any late write it still had would land by now
        final = record(app, job_id)
    assert done["status"] == "succeeded", done.get("error")
    assert final["status"] == "succeeded" and final["attempt"] == 2
    assert node_of(final) == node_of(again)
    assert final["finished_at"] == done["finished_at"]
    # Exactly one success in the job's stream; the lost run shows as given back.
    assert statuses(app, job_id) == ["queued", "running", "queued", "running", "succeeded"]
    # The stored model is the one its record describes, written once.
    model = client.get(f"/jobs/{job_id}/model")
    assert model.status_code == 200
    assert hashlib.sha256(model.data).hexdigest() == final["model_file"]["sha256"]
    assert waited < LEASE_SECONDS + 1 + 10, waited


def test_a_killed_hosts_job_runs_again_on_another_host(hosts, hub, broker, tmp_path):
    with two_hosts(hub, broker, hosts, tmp_path) as (app, running):
        client = app.test_client()
        job_id = submit(client, long_body(epochs=200))
        first = wait_until(
            lambda: (r := record(app, job_id))["status"] == "running" and r, 120, "the job to run"
        )
        os.killpg(running[node_of(first)].process.pid, signal.SIGKILL)
        done = wait_until(
            lambda: (r := client.get(f"/jobs/{job_id}").get_json())["status"]
            not in ("queued", "running") and r, 120, "the job to end",
        )  # fmt: skip
        final = record(app, job_id)
        other = running[node_of(final)].log.read_bytes()
    assert done["status"] == "succeeded" and done["attempt"] == 2, done
    assert node_of(final) != node_of(first)
    assert statuses(app, job_id) == ["queued", "running", "queued", "running", "succeeded"]
    if broker.name == "rabbitmq":
        # Acknowledged late, the dead worker's message went straight to the
        # other host: its claim found the job running and dropped it, and
        # the job ran again only through its lease.
        assert f"job {job_id} is not queued".encode() in other


def test_jobs_finish_over_a_slow_lossy_link_with_their_leases_renewed(
    network, hosts, hub, broker, tmp_path
):
    """200 ms each way and 5 % of segments lost (held a retransmission
    timeout), between the worker's host and Redis and the broker alike."""
    queue = f"hosts-{uuid.uuid4().hex[:8]}"
    app = app_for(hub, broker, SEQLAB_QUEUE=queue)
    client = app.test_client()
    redis_port = int(hub.rsplit(":", 1)[1].split("/")[0])
    slow = dict(delay=0.2, loss=0.05, seed=7)
    redis_relay = Relay((network.gateway, 0), ("127.0.0.1", redis_port), **slow)
    relays = [redis_relay]
    slow_redis = f"redis://{network.gateway}:{redis_relay.address[1]}/0"
    broker_url = slow_redis
    if broker.name == "rabbitmq":
        amqp_relay = Relay((network.gateway, 0), ("127.0.0.1", 5672), **slow)
        relays.append(amqp_relay)
        slow_amqp = f"{network.gateway}:{amqp_relay.address[1]}"
        broker_url = broker.for_api.replace("127.0.0.1:5672", slow_amqp)
    # Commands wait 3 s (a round trip and two lost segments), and the lease
    # is three of those (the rule in README "Scaling out").
    env = {**WORKER_ENV, "SEQLAB_REDIS_TIMEOUT": "3", "SEQLAB_LEASE_SECONDS": "9",
           "SEQLAB_BROKER_URL": broker_url}  # fmt: skip
    log = tmp_path / "slow.log"
    try:
        host = hosts[0].prefix()
        with run_worker(slow_redis, queue, log, name=f"h1-{queue}", prefix=host, **env):
            ids = [submit(client, {"example": "many_to_one", "seed": n}) for n in range(2)]
            ids.append(submit(client, long_body(epochs=300)))
            for job_id in ids:
                wait_until(
                    lambda job_id=job_id: record(app, job_id)["status"] in TERMINAL,
                    240, "the jobs to end", every=0.5,
                )  # fmt: skip
    finally:
        for relay in relays:
            relay.close()
    for job_id in ids:
        job = record(app, job_id)
        assert job["status"] == "succeeded", job.get("error")
        assert job["attempt"] == 1  # never taken for lost
        assert statuses(app, job_id) == ["queued", "running", "succeeded"]
    # Each renewal crossed the slow link in time: none was missed.
    assert b"lease not renewed" not in log.read_bytes()
    assert b"requeued" not in log.read_bytes()


#: The routes that need Redis, with a request each: every one must answer
#: 503 with Retry-After while the API is cut off from Redis.
def redis_routes(job_id):
    return [
        ("GET", "/readyz", None),
        ("GET", "/jobs", None),
        ("GET", f"/jobs/{job_id}", None),
        ("GET", f"/jobs/{job_id}/events", None),
        ("GET", f"/jobs/{job_id}/plot.png", None),
        ("GET", f"/jobs/{job_id}/model", None),
        ("POST", f"/jobs/{job_id}/predict", {"instances": [[[0.5]]]}),
        ("POST", f"/jobs/{job_id}/cancel", None),
        ("DELETE", f"/jobs/{job_id}", None),
        ("POST", "/train", {"example": "one_to_one"}),
        ("GET", "/datasets", None),
        ("GET", f"/datasets/ds_{job_id}", None),
        ("GET", "/sweeps", None),
        ("GET", f"/sweeps/{job_id}", None),
        ("POST", "/sweeps", {"example": "one_to_one", "vary": {"seed": [0, 1]}}),
    ]


def call(base, method, path, body, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as rv:
            return rv.status, dict(rv.headers), rv.read(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read(), time.monotonic() - started


def test_the_api_cut_off_from_redis_answers_503_and_recovers_by_itself(
    network, hosts, tmp_path, spec
):
    """Redis on a host of its own, the API here: the Redis host's cable out."""
    redis_host = hosts[2]
    directory = tmp_path / "redis"
    directory.mkdir()
    with start_redis(directory, None, bind=redis_host.address, prefix=redis_host.prefix()) as url:
        env = {"REDIS_URL": f"{url}/0", "SEQLAB_QUEUE": f"idle-{uuid.uuid4().hex[:8]}",
               "SEQLAB_REDIS_TIMEOUT": "2"}  # fmt: skip
        with serve_api(tmp_path / "api.log", processes=1, threads=32, **env) as base:
            status, _, body, _ = call(base, "POST", "/train", {"example": "one_to_one"})
            assert status == 202
            job_id = json.loads(body)["id"]
            network.cut(redis_host)
            try:
                routes = redis_routes(job_id)
                with concurrent.futures.ThreadPoolExecutor(len(routes)) as pool:
                    answers = list(pool.map(lambda r: call(base, *r), routes))
                # What needs no Redis still answers at once.
                assert call(base, "GET", "/healthz", None)[0] == 200
                assert call(base, "GET", "/ui/jobs", None)[0] == 200  # its script reads /jobs
                assert call(base, "POST", "/params", long_body()["model"])[0] == 200
            finally:
                network.mend(redis_host)
            for route, answer in zip(routes, answers, strict=True):
                (method, path, _), (status, headers, body, seconds) = route, answer
                assert status == 503, (method, path, status, body[:300])
                assert headers.get("Retry-After", "").isdigit(), (method, path, headers)
                problem = json.loads(body)
                assert problem["status"] == 503 and problem["detail"], (method, path)
                # Within the Redis timeouts, never a thread held for good.
                assert seconds < 20, (method, path, seconds)
            # Back by itself: the same API answers once Redis is reachable.
            wait_until(lambda: call(base, "GET", "/readyz", None)[0] == 200, 30, "readiness")
            status, _, body, _ = call(base, "GET", f"/jobs/{job_id}", None)
            assert status == 200 and json.loads(body)["status"] == "queued"
            assert call(base, "POST", "/train", {"example": "one_to_one"})[0] == 202


def need_of(app, body):
    """A job's training-memory estimate, as the API computes it (queued
    on a queue no worker serves, then cancelled)."""
    client = app.test_client()
    rv = client.post("/train", json=body)
    assert rv.status_code == 202, rv.get_json()
    client.post(f"/jobs/{rv.get_json()['id']}/cancel")
    return rv.get_json()["estimated_cost"]["worker_memory_bytes"]


def test_jobs_are_routed_by_size_to_the_hosts_with_the_memory(hosts, hub, broker, tmp_path):
    """A CPU host (small memory) on the `cpu` queue, a GPU host (large) on
    `gpu`: each job runs where its size sends it, and one too large for
    both is refused before anything is written."""
    tag = uuid.uuid4().hex[:8]
    cpu, gpu = f"cpu-{tag}", f"gpu-{tag}"
    small_body, large_body = {"example": "one_to_one"}, long_body(epochs=5)
    probe = app_for(hub, broker, SEQLAB_QUEUE=f"idle-{tag}")
    small, large = need_of(probe, small_body), need_of(probe, large_body)
    assert small < large
    app = app_for(hub, broker, SEQLAB_QUEUE=None, SEQLAB_CPU_QUEUE=cpu, SEQLAB_GPU_QUEUE=gpu,
                  SEQLAB_CPU_JOB_BYTES=small)  # fmt: skip
    client = app.test_client()
    env = {**WORKER_ENV, "SEQLAB_BROKER_URL": broker.for_hosts}
    cpu_host = run_worker(hub, cpu, tmp_path / "cpu.log", name=f"h1-{tag}",
                          prefix=hosts[0].prefix(), SEQLAB_DEVICE_MEMORY_BYTES=str(large - 1),
                          **env)  # fmt: skip
    gpu_host = run_worker(hub, gpu, tmp_path / "gpu.log", name=f"h2-{tag}",
                          prefix=hosts[1].prefix(), SEQLAB_DEVICE_MEMORY_BYTES=str(2 * large),
                          **env)  # fmt: skip
    with cpu_host, gpu_host:
        wait_until(
            lambda: (
                len(client.get("/readyz").get_json()["queues"]) == 2
                and client.get("/readyz").get_json()["workers"] == 2
            ),
            30,
            "both heartbeats",
        )
        ids = {submit(client, small_body): ("h1", cpu), submit(client, large_body): ("h2", gpu)}
        for job_id, (host, queue) in ids.items():
            wait_until(lambda job_id=job_id: record(app, job_id)["status"] in TERMINAL, 120,
                       "the job to end")  # fmt: skip
            job = record(app, job_id)
            assert job["status"] == "succeeded", job.get("error")
            assert (node_of(job), job["queue"]) == (host, queue)
        # Too large for both hosts: refused with the figures, nothing written.
        huge = long_body(epochs=5)
        huge["model"]["layers"][0]["units"] = 512
        before = app.extensions["jobs"].count()
        rv = client.post("/train", json=huge)
        assert rv.status_code == 422, rv.get_json()
        (reason,) = rv.get_json()["errors"]["model"]
        assert f"the largest, h2-{tag}@" in reason and f"has {2 * large:,} bytes" in reason
        assert app.extensions["jobs"].count() == before


def test_an_idle_host_takes_the_next_jobs_while_the_other_trains(hosts, hub, broker, tmp_path):
    """No busy worker holds a job back: on Redis the transport's prefetch is
    off; on RabbitMQ acknowledgement is late, so a worker that trains has
    no room for another message."""
    with two_hosts(hub, broker, hosts, tmp_path) as (app, running):
        client = app.test_client()
        long_id = submit(client, long_body(epochs=20000))  # cancelled at the end
        first = wait_until(
            lambda: (r := record(app, long_id))["status"] == "running" and "progress" in r and r,
            120, "the long job to run",
        )  # fmt: skip
        busy = node_of(first)
        ids = [submit(client, {"example": "one_to_one", "seed": n}) for n in range(4)]
        for job_id in ids:
            wait_until(lambda job_id=job_id: record(app, job_id)["status"] in TERMINAL, 120,
                       "the short jobs to end")  # fmt: skip
        assert record(app, long_id)["status"] == "running"  # still training
        assert [node_of(record(app, job_id)) for job_id in ids] == [
            "h2" if busy == "h1" else "h1"
        ] * 4
        assert all(record(app, job_id)["status"] == "succeeded" for job_id in ids)
        client.post(f"/jobs/{long_id}/cancel")
        wait_until(lambda: record(app, long_id)["status"] in TERMINAL, 60, "the cancel")
