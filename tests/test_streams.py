"""The API's threads held by long waits (service/jobs/threads.py): event
streams capped per tenant (counted in Redis, over processes) and per API
process, each stream ending after ``SEQLAB_STREAM_SECONDS``, ``event:
lost`` for a ``Last-Event-ID`` older than the kept events, and prediction
answers that leave nothing in Redis for longer than a minute.

The caps are checked against a real gunicorn (2 processes × 4 threads, as
``make up`` runs it) on the test Redis; the rest with test clients, whose
apps stand for API processes (each has its own thread budget).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
import urllib.request
import uuid

import pytest
import redis
from conftest import run_worker
from conftest import serve_api
from openapi_check import validate_response
from specs import KERAS_LOOP_EPOCHS
from tenants import Tenants
from test_jobs import submit as submit_with
from test_jobs import wait_for

from jobs.store import EVENTS_MAXLEN
from seqlab_cli.client import Api
from seqlab_cli.follow import follow
from service import create_app
from service.jobs.threads import gunicorn_threads
from service.jobs.threads import stream_threads

PARAMS = {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 5}]}
NEW = [[[0.1], [0.3], [0.5], [0.7], [0.9]]]


def idle_job(tenants, redis_url, tenant="alice", example="one_to_one"):
    """A job of ``tenant``'s that stays queued (its queue has no worker)."""
    app = tenants.app(redis_url, f"idle-{uuid.uuid4().hex[:8]}")
    rv = app.test_client().post("/train", json={"example": example}, headers=tenants.bearer(tenant))
    assert rv.status_code == 202, rv.get_json()
    return rv.get_json()["id"]


def timed(base, method, path, headers=None, body=None):
    """(status, seconds) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
        return response.status, time.monotonic() - started


def open_stream(base, job_id, headers, timeout):
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    connection.request("GET", f"/jobs/{job_id}/events", headers=headers)
    return connection, connection.getresponse()


def open_slots(redis_client, tenants, name):
    return redis_client.zcard(f"seqlab:streams:tenant:{tenants.names[name]}")


def test_one_tenants_streams_leave_threads_for_everyone_else(redis_url, queue, tmp_path):
    tenants = Tenants("alice", "bob")
    job_id = idle_job(tenants, redis_url)
    opened, refused = [], []
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(
            serve_api(
                tmp_path / "gunicorn.log",
                processes=2,
                threads=4,
                REDIS_URL=redis_url,
                SEQLAB_QUEUE=queue,
                SEQLAB_API_KEYS=tenants.config,
                SEQLAB_MAX_STREAMS_PER_TENANT="3",
                FLASK_EVENTS_KEEPALIVE_SECONDS="0.5",
            )  # fmt: skip
        )
        for i in range(60):
            try:
                connection, response = open_stream(base, job_id, tenants.bearer("alice"), 3)
            except TimeoutError:
                pytest.fail(f"stream {i + 1} of 60 got no answer within 3 s")
            stack.callback(connection.close)
            if response.status == 200:
                assert response.readline() == b"retry: 2000\n"  # held open by the server
                opened.append(response)
            else:
                refused.append((response.status, dict(response.getheaders()), response.read()))
        # The tenant's cap (3) or the processes' share of threads (2 of 4 each).
        assert 1 <= len(opened) <= 3 and len(refused) == 60 - len(opened)
        for status, headers, body in refused:
            assert status == 429 and headers["Content-Type"] == "application/problem+json"
            assert 1 <= int(headers["Retry-After"]) <= 300
            detail = json.loads(body)["detail"]
            assert "SEQLAB_MAX_STREAMS_PER_TENANT" in detail or "SEQLAB_STREAM_THREADS" in detail
        # Everyone else is served at once while alice's streams stay open.
        for _ in range(5):
            for method, path, headers, body in (
                ("GET", "/healthz", None, None),
                ("POST", "/params", None, PARAMS),
                ("GET", "/jobs", tenants.bearer("bob"), None),
            ):
                status, seconds = timed(base, method, path, headers, body)
                assert status == 200 and seconds < 1.0, (path, status, seconds)
        redis_client = redis.Redis.from_url(redis_url)
        assert open_slots(redis_client, tenants, "alice") == len(opened)
    # Closed by the client: each stream notices at its next keep-alive and
    # gives its slot back.
    deadline = time.monotonic() + 10
    while open_slots(redis_client, tenants, "alice"):
        assert time.monotonic() < deadline, "the closed streams kept their slots"
        time.sleep(0.1)


def test_the_tenant_cap_holds_across_processes(redis_url, spec):
    tenants = Tenants("alice", "bob")
    # Two apps: two API processes, each with threads to spare.
    first, second = (tenants.app(redis_url, "idle", MAX_STREAMS_PER_TENANT=2) for _ in range(2))
    job_id, bobs = idle_job(tenants, redis_url), idle_job(tenants, redis_url, "bob")
    alice, bob = tenants.bearer("alice"), tenants.bearer("bob")
    held = [
        first.test_client().get(f"/jobs/{job_id}/events", headers=alice, buffered=False),
        second.test_client().get(f"/jobs/{job_id}/events", headers=alice, buffered=False),
    ]
    assert [rv.status_code for rv in held] == [200, 200]
    over = first.test_client().get(f"/jobs/{job_id}/events", headers=alice, buffered=False)
    over.close()
    assert over.status_code == 429
    validate_response(spec, "/jobs/{job_id}/events", "get", over)
    assert "2 event streams are open" in over.get_json()["detail"]
    assert "SEQLAB_MAX_STREAMS_PER_TENANT" in over.get_json()["detail"]
    assert 1 <= int(over.headers["Retry-After"]) <= 300
    other = first.test_client().get(f"/jobs/{bobs}/events", headers=bob, buffered=False)
    assert other.status_code == 200  # another tenant's count
    for rv in reversed([*held, other]):  # streams hold Flask contexts: last first
        rv.close()
    again = second.test_client().get(f"/jobs/{job_id}/events", headers=alice, buffered=False)
    assert again.status_code == 200  # closing gave the slots back
    again.close()


def test_streams_and_predict_waits_share_each_processes_threads(redis_url, spec):
    tenants = Tenants("alice", "bob")
    app = tenants.app(redis_url, "idle", STREAM_THREADS="1")
    job_id = idle_job(tenants, redis_url)
    bobs = idle_job(tenants, redis_url, "bob", example="many_to_many")
    client = app.test_client()
    held = client.get(f"/jobs/{job_id}/events", headers=tenants.bearer("alice"), buffered=False)
    assert held.status_code == 200
    over = client.get(f"/jobs/{bobs}/events", headers=tenants.bearer("bob"), buffered=False)
    over.close()
    assert over.status_code == 429
    validate_response(spec, "/jobs/{job_id}/events", "get", over)
    assert "SEQLAB_STREAM_THREADS" in over.get_json()["detail"]
    assert 1 <= int(over.headers["Retry-After"]) <= 300
    # A succeeded job of bob's: its predict wait needs a thread too.
    store = app.extensions["jobs"]
    token, _ = store.claim(bobs, "host:test", "idle", lease_seconds=30)
    assert store.finish_leased(bobs, token, "succeeded", b"not a model", result={})
    rv = client.post(f"/jobs/{bobs}/predict", json={"instances": NEW},
                     headers=tenants.bearer("bob"))  # fmt: skip
    assert rv.status_code == 429 and "SEQLAB_STREAM_THREADS" in rv.get_json()["detail"]
    validate_response(spec, "/jobs/{job_id}/predict", "post", rv)
    held.close()
    freed = client.get(f"/jobs/{job_id}/events", headers=tenants.bearer("alice"), buffered=False)
    assert freed.status_code == 200
    freed.close()


def test_a_killed_processes_slot_lapses_with_its_lease(redis_url):
    store = Tenants().app(redis_url, "idle").extensions["jobs"]
    owner = f"tenant:gone-{uuid.uuid4().hex[:8]}"
    assert store.take_stream(owner, "1:a", 0.3, 1) is None
    assert store.take_stream(owner, "1:b", 0.3, 1) == ["1:a"]  # never released...
    time.sleep(0.4)
    assert store.take_stream(owner, "1:b", 0.3, 1) is None  # ...it lapsed
    assert 0 < store.redis.pttl(store.streams_key(owner)) <= 300


def chunks_until_end(rv, seconds):
    """Every chunk of a streamed response, failing after ``seconds``."""
    found, deadline = [], time.monotonic() + seconds
    for chunk in rv.response:
        found.append(chunk.decode())
        assert time.monotonic() < deadline, f"the stream did not end: {found[-3:]}"
    rv.close()
    return found


def chunks_until_quiet(rv):
    """The chunks of a streamed response up to its first keep-alive (the
    replay done), or its end."""
    found = []
    for chunk in rv.response:
        if chunk == b": keep-alive\n\n":
            break
        found.append(chunk.decode())
    rv.close()
    return found


def test_a_stream_ends_at_its_time_limit_and_gives_its_slot_back(redis_url):
    tenants = Tenants("alice")
    app = tenants.app(redis_url, "idle", STREAM_SECONDS=1, EVENTS_KEEPALIVE_SECONDS=0.3)
    job_id = idle_job(tenants, redis_url)
    started = time.monotonic()
    rv = app.test_client().get(f"/jobs/{job_id}/events", headers=tenants.bearer("alice"),
                               buffered=False)  # fmt: skip
    chunks = chunks_until_end(rv, 5)
    assert 0.9 < time.monotonic() - started < 3
    assert chunks[-1] == 'event: reconnect\ndata: {"stream_seconds": 1.0}\n\n'
    assert open_slots(app.extensions["jobs"].redis, tenants, "alice") == 0


def test_a_last_event_id_older_than_the_kept_events_gets_a_lost_event(redis_url):
    tenants = Tenants("alice")
    app = tenants.app(redis_url, "idle", EVENTS_KEEPALIVE_SECONDS=0.3)
    job_id = idle_job(tenants, redis_url)
    store = app.extensions["jobs"]
    key = store.events_key(job_id)
    [(queued_id, _)] = store.redis.xrange(key)
    # Progress written as the worker writes it, past what the stream keeps.
    with store.redis.pipeline(transaction=False) as pipe:
        for epoch in range(EVENTS_MAXLEN + 500):
            pipe.xadd(key, {"event": "progress", "data": json.dumps({"epoch": epoch})},
                      maxlen=EVENTS_MAXLEN, approximate=True)  # fmt: skip
        pipe.execute()
    [(first, _)] = store.redis.xrange(key, count=1)
    [(last, _)] = store.redis.xrevrange(key, count=1)
    assert first != queued_id  # the queued event is gone
    client = app.test_client()
    headers = {**tenants.bearer("alice"), "Last-Event-ID": queued_id.decode()}
    rv = client.get(f"/jobs/{job_id}/events", headers=headers, buffered=False)
    chunks = chunks_until_quiet(rv)
    assert chunks[0] == "retry: 2000\n\n"
    lost = {"last_event_id": queued_id.decode(), "first_kept_id": first.decode()}
    assert chunks[1] == f"event: lost\ndata: {json.dumps(lost)}\n\n"
    # Then the job's status now, with the id of the last kept event.
    lines = chunks[2].splitlines()
    assert lines[:2] == [f"id: {last.decode()}", "event: status"]
    assert json.loads(lines[2].removeprefix("data: "))["status"] == "queued"
    # Resuming within the kept events loses nothing: no such event.
    headers["Last-Event-ID"] = first.decode()
    rv = client.get(f"/jobs/{job_id}/events", headers=headers, buffered=False)
    body = "".join(chunks_until_quiet(rv))
    assert "event: lost" not in body and body.count("event: progress") > 1000


class Recorder:
    def __init__(self):
        self.events, self.notes = [], []

    def status(self, event):
        self.events.append(("status", event["status"]))

    def progress(self, progress):
        self.events.append(("progress", progress["epoch"]))

    def note(self, message):
        self.notes.append(message)


def test_the_cli_follows_a_job_across_streams_the_server_ends(redis_url, queue, worker, tmp_path):
    tenants = Tenants("alice")
    with serve_api(tmp_path / "gunicorn.log", processes=1, threads=4, REDIS_URL=redis_url,
                   SEQLAB_QUEUE=queue, SEQLAB_API_KEYS=tenants.config,
                   SEQLAB_STREAM_SECONDS="1") as base:  # fmt: skip
        api = Api(base, tenants.secrets["alice"])
        job = api.call(
            "POST", "/train", {"example": "many_to_many", "fit": {"epochs": KERAS_LOOP_EPOCHS}}
        ).json()
        listener = Recorder()
        follow(api, job["id"], listener, sleep=time.sleep)
    statuses = [value for kind, value in listener.events if kind == "status"]
    assert statuses == ["queued", "running", "succeeded"], listener.notes
    epochs = [value for kind, value in listener.events if kind == "progress"]
    assert epochs == sorted(set(epochs)) and epochs  # nothing twice, in order
    reconnects = [n for n in listener.notes if n.startswith("following") and "after event" in n]
    assert reconnects, listener.notes  # the server ended streams: the CLI went on
    assert not any("polling" in note for note in listener.notes), listener.notes


def test_predicts_that_time_out_leave_nothing_in_redis(redis_url, tmp_path):
    # Through the training queue (a worker without a predictor, or an older
    # one): a worker busy training takes predictions only when it is done.
    queue = f"test-nopredictor-{uuid.uuid4().hex[:8]}"
    jobs_app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue})
    jobs_client = jobs_app.test_client()
    redis_client = jobs_app.extensions["jobs"].redis
    with run_worker(redis_url, queue, tmp_path / "worker.log", SEQLAB_PREDICTOR="0"):
        rv = submit_with(jobs_client, {"example": "many_to_many"})
        trained = wait_for(jobs_client, rv.headers["Location"]).get_json()
        assert trained["status"] == "succeeded"
        before = set(redis_client.scan_iter("celery-task-meta-*"))
        # The worker trains a long job: predictions wait behind it, and time out.
        busy = submit_with(jobs_client, {"example": "many_to_one", "fit": {"epochs": 100_000}})
        wait_for(jobs_client, busy.headers["Location"], until=("running",))
        jobs_app.config["PREDICT_TIMEOUT"] = 0.5
        for _ in range(5):
            rv = jobs_client.post(f"/jobs/{trained['id']}/predict", json={"instances": NEW})
            assert rv.status_code == 504, rv.get_json()
        assert jobs_client.post(f"{busy.headers['Location']}/cancel").status_code == 202
        # The worker takes the five now (expired), then this one, in order.
        jobs_app.config["PREDICT_TIMEOUT"] = 60
        rv = jobs_client.post(f"/jobs/{trained['id']}/predict", json={"instances": NEW})
        assert rv.status_code == 200, rv.get_json()
    left = {
        key: redis_client.ttl(key)
        for pattern in ("celery-task-meta-*", "seqlab:reply:*")
        for key in redis_client.scan_iter(pattern)
        if key not in before
    }
    assert all(0 < ttl <= 60 for ttl in left.values()), left


def test_stream_threads_default_to_half_of_gunicorns():
    argv = ["/venv/lib/python3.11/site-packages/gunicorn/__main__.py", "--threads", "8"]
    assert gunicorn_threads(argv, {}) == 8
    assert gunicorn_threads(["/venv/bin/gunicorn", "--threads=6"], {}) == 6
    assert gunicorn_threads(["pytest"], {"GUNICORN_CMD_ARGS": "--threads 10"}) == 10
    assert gunicorn_threads(["pytest"], {"WEB_THREADS": "12"}) == 12
    assert gunicorn_threads(["pytest"], {}) is None
    assert stream_threads("3") == 3
    for bad in ("0", "-1", "half", "1.5"):
        with pytest.raises(ValueError, match="SEQLAB_STREAM_THREADS"):
            stream_threads(bad)


@pytest.mark.parametrize(
    ("key", "value", "name"),
    [
        ("MAX_STREAMS_PER_TENANT", "0", "SEQLAB_MAX_STREAMS_PER_TENANT"),
        ("MAX_STREAMS_PER_TENANT", "many", "SEQLAB_MAX_STREAMS_PER_TENANT"),
        ("STREAM_SECONDS", "0", "SEQLAB_STREAM_SECONDS"),
        ("STREAM_SECONDS", "forever", "SEQLAB_STREAM_SECONDS"),
        ("STREAM_THREADS", "none", "SEQLAB_STREAM_THREADS"),
    ],
)
def test_the_api_refuses_to_start_with_bad_stream_settings(redis_url, key, value, name):
    with pytest.raises(ValueError, match=name):
        Tenants().app(redis_url, "idle", **{key: value})
