"""``GET /jobs/<id>/events`` (service/jobs/events.py): a job's status and progress
as Server-Sent Events.

The streams are read over a real gunicorn, started as ``make up`` starts it
(``devtools.up.api_argv``: gthread workers), on the test Redis, with a real
Celery worker training the jobs and API keys on; a short keep-alive interval
(``FLASK_EVENTS_KEEPALIVE_SECONDS``). The cases that need no server (the
header's check, jobs without a stream, Redis going away) use the test client.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import serve_api
from conftest import start_redis
from openapi_check import validate_response
from specs import MANY_TO_MANY
from tenants import Tenants

from jobs.store import TERMINAL
from service import create_app

ROOT = Path(__file__).resolve().parent.parent
TENANTS = Tenants("alice", "bob")
#: Seconds of silence before a keep-alive comment, on the server under test.
KEEPALIVE = 1.0
#: gunicorn's processes and threads each: fewer processes than open streams.
PROCESSES, THREADS = 2, 8
#: A job that trains for a few seconds, reporting progress every half
#: second: long enough for several progress events on an idle machine with
#: JAX's compiled step cached (6,000 epochs took 1.5 s there and gave two).
SHORT = {"example": "many_to_many", "fit": {"epochs": 20000}}
#: A job that trains until cancelled.
LONG = {"example": "many_to_one", "fit": {"epochs": 100_000}}


@pytest.fixture(scope="module")
def api(redis_url, queue, worker, tmp_path_factory):
    """The API under gunicorn as ``make up`` runs it; yields its base URL."""
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with serve_api(
        log,
        processes=PROCESSES,
        threads=THREADS,
        REDIS_URL=redis_url,
        SEQLAB_QUEUE=queue,
        SEQLAB_API_KEYS=TENANTS.config,
        FLASK_EVENTS_KEEPALIVE_SECONDS=str(KEEPALIVE),
        # The kernel spreads connections over the processes unevenly: let one
        # process hold every stream a test opens (3 per process) and still
        # keep two threads for other requests. (Half the threads, the
        # default, turned the fifth stream on one process away with a 429.)
        SEQLAB_STREAM_THREADS=str(THREADS - 2),
    ) as base:
        yield base


def call(base, method, path, body=None, tenant="alice"):
    """(status, JSON body) of a request with a tenant's key (None: no key)."""
    headers = {"Content-Type": "application/json"}
    if tenant is not None:
        headers.update(TENANTS.bearer(tenant))
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def submit(base, body):
    status, job = call(base, "POST", "/train", body)
    assert status == 202, job
    return job["id"]


class Stream:
    """An open ``GET /jobs/<id>/events``, read with plain http.client."""

    def __init__(self, base, job_id, last_event_id=None, tenant="alice", timeout=60):
        self.job_id = job_id
        host, port = base.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        headers = dict(TENANTS.bearer(tenant)) if tenant else {}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.connection.request("GET", f"/jobs/{job_id}/events", headers=headers)
        self.response = self.connection.getresponse()
        #: Whether the server closed the stream (the body ended).
        self.ended = False

    def blocks(self):
        """Each block of lines up to a blank line, parsed, as it arrives:
        ``{"id", "event", "data"}`` for a message (``data`` decoded),
        ``{"retry"}``, or ``{"comment"}``; until the body ends."""
        block = {}
        while True:
            line = self.response.readline()
            if not line:
                self.ended = True
                return
            line = line.decode().rstrip("\r\n")
            if line.startswith(":"):
                yield {"comment": line[1:].strip()}
            elif line:
                name, _, value = line.partition(":")
                assert name not in block, f"{name} twice in one message"
                block[name] = json.loads(value) if name == "data" else value.removeprefix(" ")
            elif block:
                yield block
                block = {}

    def messages(self, until=None):
        """The messages (no comments), up to and including the first for
        which ``until`` holds, else to the end of the body."""
        found = []
        for block in self.blocks():
            if "id" in block:
                found.append(block)
                if until is not None and until(block):
                    break
        return found

    def close(self):
        self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def statuses(messages):
    return [m["data"]["status"] for m in messages if m["event"] == "status"]


def order(event_id):
    return tuple(int(part) for part in event_id.split("-"))


def is_final(message):
    return message["event"] == "status" and message["data"]["status"] in TERMINAL


@pytest.fixture(scope="module")
def trained(api):
    """A job followed live from its submission to its end: (id, the blocks
    read, seconds from the final event to the end of the body)."""
    job_id = submit(api, SHORT)
    with Stream(api, job_id) as stream:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type").startswith("text/event-stream")
        blocks, final_at = [], None
        for block in stream.blocks():
            blocks.append(block)
            if "id" in block and is_final(block):
                final_at = time.monotonic()
        closed = time.monotonic() - final_at
    return job_id, blocks, closed


def test_events_arrive_in_order_and_the_stream_ends_after_the_final_one(api, trained):
    job_id, blocks, closed = trained
    assert blocks[0] == {"retry": "2000"}
    messages = [block for block in blocks if "id" in block]
    assert statuses(messages) == ["queued", "running", "succeeded"]
    assert messages[-1]["event"] == "status"  # the last message, then the end
    assert closed < 0.5
    ids = [order(m["id"]) for m in messages]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    progress = [m["data"] for m in messages if m["event"] == "progress"]
    kinds = [m["event"] for m in messages]
    assert kinds.index("progress") > 1 and kinds[-2] == "progress"  # between running and the end
    assert len(progress) >= 3, progress
    done = [p["epoch"] * p["steps_per_epoch"] + p["step"] for p in progress]
    assert done == sorted(done) and len(set(done)) == len(done)
    epochs = [p["epoch"] for p in progress]
    assert epochs == sorted(epochs)
    assert epochs[-1] == progress[-1]["epochs"] == SHORT["fit"]["epochs"]

    status, job = call(api, "GET", f"/jobs/{job_id}")
    assert status == 200 and job["status"] == "succeeded"
    final = messages[-1]["data"]
    assert final["at"] == job["finished_at"] and final["attempt"] == job["attempt"] == 1
    assert final["final_metrics"] == job["result"]["final_metrics"]
    # The last progress is the last epoch's: its metrics are the final ones.
    assert progress[-1]["metrics"] == job["result"]["final_metrics"]
    assert progress[-1] == job["progress"]


def test_a_finished_jobs_stream_replays_it_and_ends_at_once(api, trained):
    job_id, blocks, _ = trained
    started = time.monotonic()
    with Stream(api, job_id) as stream:
        replay = list(stream.blocks())
    assert time.monotonic() - started < 1.0 and stream.ended
    assert replay == [block for block in blocks if "comment" not in block]
    # Resumed after its final event: nothing more, and the end at once.
    with Stream(api, job_id, last_event_id=replay[-1]["id"]) as resumed:
        assert list(resumed.blocks()) == [{"retry": "2000"}]


def test_a_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(api):
    job_id = submit(api, SHORT)
    with Stream(api, job_id) as first:
        head = first.messages(until=lambda m: m["event"] == "progress")
    # The client dropped; the job trains on meanwhile.
    time.sleep(1.0)
    with Stream(api, job_id, last_event_id=head[-1]["id"]) as second:
        tail = second.messages()
    assert second.ended and is_final(tail[-1])
    with Stream(api, job_id) as again:
        whole = again.messages()
    assert head + tail == whole
    assert statuses(head) == ["queued", "running"] and head[-1]["event"] == "progress"
    assert order(tail[0]["id"]) > order(head[-1]["id"])


def test_params_answers_at_once_while_more_streams_are_open_than_processes(api):
    job_ids = [submit(api, LONG) for _ in range(3 * PROCESSES)]
    with contextlib.ExitStack() as opened:
        streams = [opened.enter_context(Stream(api, job_id)) for job_id in job_ids]
        try:
            # Each stream is held open by the server: it has sent its first event.
            for stream in streams:
                assert stream.response.status == 200, stream.response.read()
                assert stream.messages(until=lambda m: True)[0]["data"]["status"] == "queued"
            for _ in range(5):
                started = time.monotonic()
                status, report = call(api, "POST", "/params", MANY_TO_MANY, tenant=None)
                assert time.monotonic() - started < 1.0
                assert status == 200 and report["total_params"] == 146
        finally:
            for job_id in job_ids:
                call(api, "POST", f"/jobs/{job_id}/cancel")
        # A cancel ends each stream, with the job's final status.
        for stream in streams:
            rest = stream.messages()
            assert stream.ended and rest[-1]["data"]["status"] == "cancelled"


@pytest.fixture
def idle_job(redis_url):
    """A job of alice's that stays queued (its queue has no worker)."""
    app = TENANTS.app(redis_url, f"idle-{uuid.uuid4().hex[:8]}")
    rv = app.test_client().post("/train", json={"example": "one_to_one"},
                                headers=TENANTS.bearer("alice"))  # fmt: skip
    assert rv.status_code == 202, rv.get_json()
    return rv.get_json()["id"]


def test_an_idle_stream_gets_keep_alive_comments(api, idle_job):
    with Stream(api, idle_job) as stream:
        blocks = stream.blocks()
        assert next(blocks) == {"retry": "2000"}
        assert next(blocks)["data"]["status"] == "queued"
        times = []
        for block in blocks:
            assert block == {"comment": "keep-alive"}
            times.append(time.monotonic())
            if len(times) == 3:
                break
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(KEEPALIVE * 0.8 < gap < KEEPALIVE * 3 for gap in gaps), gaps
        assert call(api, "POST", f"/jobs/{idle_job}/cancel")[0] == 200
        assert statuses(stream.messages()) == ["cancelled"] and stream.ended


def test_another_tenants_job_is_the_404_of_an_unknown_one(api, idle_job):
    answers = []
    for job_id in (idle_job, uuid.uuid4().hex):  # alice's, and no one's
        with Stream(api, job_id, tenant="bob") as stream:
            assert stream.response.status == 404
            assert stream.response.getheader("Content-Type") == "application/problem+json"
            body = json.loads(stream.response.read())
        answers.append({**body, "detail": body["detail"].replace(job_id, "<id>")})
    assert answers[0] == answers[1]
    with Stream(api, idle_job, tenant=None) as anonymous:
        assert anonymous.response.status == 401


# --- without a server: the test client ----------------------------------------


@pytest.fixture
def app(redis_url):
    """An app on the test Redis whose queue no worker serves, with a short
    keep-alive interval."""
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    return create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": queue,
                       "EVENTS_KEEPALIVE_SECONDS": 0.5})  # fmt: skip


def queue_job(app):
    rv = app.test_client().post("/train", json={"example": "one_to_one"})
    assert rv.status_code == 202, rv.get_json()
    return rv.get_json()["id"]


def parse(body):
    """The messages of an event-stream body: [(id, event, data)]."""
    found = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "id" in fields:
            found.append((fields["id"], fields["event"], json.loads(fields["data"])))
    return found


@pytest.mark.parametrize(
    "value", ["abc", "1-2-3", "1700000000000", "-1-0", "1.5-0", "18446744073709551616-0", "1-0 x"]
)
def test_a_malformed_last_event_id_is_a_422_naming_the_header(app, spec, value):
    job_id = queue_job(app)
    rv = app.test_client().get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": value})
    validate_response(spec, "/jobs/{job_id}/events", "get", rv)
    assert rv.status_code == 422
    assert list(rv.get_json()["errors"]) == ["Last-Event-ID"]
    assert rv.get_json()["detail"].startswith("Last-Event-ID: ")


def test_a_finished_jobs_stream_matches_the_spec(app, spec):
    job_id = queue_job(app)
    store = app.extensions["jobs"]
    store.start(job_id, "test")
    store.update(
        job_id,
        progress={
            "epoch": 1,
            "epochs": 1,
            "step": 0,
            "steps_per_epoch": 1,
            "loss": 0.5,
            "metrics": {"loss": 0.5},
            "eta_seconds": 0.0,
        },
    )
    store.finish(job_id, "succeeded", result={"final_metrics": {"loss": 0.5}})  # fmt: skip
    client = app.test_client()
    rv = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": ""})  # empty: none
    validate_response(spec, "/jobs/{job_id}/events", "get", rv)
    assert rv.headers["Cache-Control"] == "no-cache"
    events = parse(rv.get_data(as_text=True))
    assert [(kind, data.get("status")) for _, kind, data in events] == [
        ("status", "queued"), ("status", "running"), ("progress", None), ("status", "succeeded")
    ]  # fmt: skip
    validate_response(spec, "/jobs/{job_id}/events", "get", client.get("/jobs/x/events"))


def test_a_job_without_a_stream_gets_one_event_made_from_its_record(app):
    # Jobs queued before the server kept events have no stream.
    store, client = app.extensions["jobs"], app.test_client()
    ended = queue_job(app)
    store.start(ended, "test")
    store.finish(ended, "failed", error={"type": "X", "message": "x", "traceback": "tb"})
    store.redis.delete(store.events_key(ended))
    record = store.get(ended)
    body = client.get(f"/jobs/{ended}/events").get_data(as_text=True)
    assert parse(body) == [("0-1", "status", {"status": "failed", "at": record["finished_at"],
                                              "error": {"type": "X", "message": "x"}})]  # fmt: skip
    # Resumed after it: nothing more, and the end.
    rv = client.get(f"/jobs/{ended}/events", headers={"Last-Event-ID": "0-1"})
    assert parse(rv.get_data(as_text=True)) == []

    # A live job: its made-up event, then what is written from now on.
    live = queue_job(app)
    store.redis.delete(store.events_key(live))
    rv = client.get(f"/jobs/{live}/events", buffered=False)
    chunks = iter(rv.response)
    assert next(chunks) == b"retry: 2000\n\n"
    [(event_id, _, data)] = parse(next(chunks).decode())
    assert (event_id, data) == ("0-1", {"status": "queued", "at": store.get(live)["created_at"]})
    store.cancel(live)
    [(_, _, data)] = parse(next(chunks).decode())
    assert data["status"] == "cancelled"
    assert list(chunks) == []
    rv.close()


def test_the_stream_ends_quietly_when_redis_goes_away(tmp_path):
    with contextlib.ExitStack() as redis_server:
        url = redis_server.enter_context(start_redis(tmp_path))
        app = create_app({"TESTING": True, "REDIS_URL": f"{url}/0", "SEQLAB_QUEUE": "idle",
                          "EVENTS_KEEPALIVE_SECONDS": 5})  # fmt: skip
        job_id = queue_job(app)
        rv = app.test_client().get(f"/jobs/{job_id}/events", buffered=False)
        chunks = iter(rv.response)
        assert [next(chunks), parse(next(chunks).decode())[0][2]["status"]] == [
            b"retry: 2000\n\n", "queued"
        ]  # fmt: skip
        # Redis stops while the view waits in its blocking read.
        threading.Timer(0.5, redis_server.close).start()
        started = time.monotonic()
        assert list(chunks) == []  # the end, not an exception (TESTING re-raises)
        assert time.monotonic() - started < 4
        rv.close()


def test_a_head_request_reads_no_events(app):
    job_id = queue_job(app)
    rv = app.test_client().head(f"/jobs/{job_id}/events")
    assert rv.status_code == 200 and rv.mimetype == "text/event-stream"
    assert rv.get_data() == b""


@pytest.mark.parametrize("value", [0, -1, 15.5, "soon", None, float("nan")])
def test_the_api_refuses_to_start_with_a_keep_alive_past_15_seconds(redis_url, value):
    with pytest.raises(ValueError, match="EVENTS_KEEPALIVE_SECONDS must be seconds in"):
        create_app({"TESTING": True, "REDIS_URL": redis_url, "EVENTS_KEEPALIVE_SECONDS": value})


def test_a_stream_settles_a_lost_workers_job_as_a_poll_does(app):
    store = app.extensions["jobs"]
    job_id = queue_job(app)
    store.claim(job_id, "host:a", app.config["SEQLAB_QUEUE"], lease_seconds=30)
    store.redis.delete(store.lease_key(job_id))  # its worker died: the lease lapsed
    rv = app.test_client().get(f"/jobs/{job_id}/events", buffered=False)
    chunks = iter(rv.response)
    assert next(chunks) == b"retry: 2000\n\n"
    seen = [(data["status"], data.get("attempt"), data.get("reason")) for _, _, data in
            (parse(next(chunks).decode())[0] for _ in range(3))]  # fmt: skip
    assert seen == [("queued", None, None), ("running", 1, None), ("queued", 1, "worker_lost")]
    assert next(chunks) == b": keep-alive\n\n"  # given back: it waits for a worker
    assert store.get(job_id)["status"] == "queued"
    rv.close()
    # Its events lost (expired, a stream from before): made up from the
    # record, with the reason still.
    store.redis.delete(store.events_key(job_id))
    rv = app.test_client().get(f"/jobs/{job_id}/events", buffered=False)
    chunks = iter(rv.response)
    assert next(chunks) == b"retry: 2000\n\n"
    [(_, _, data)] = parse(next(chunks).decode())
    assert (data["status"], data["attempt"], data["reason"]) == ("queued", 1, "worker_lost")
    rv.close()
