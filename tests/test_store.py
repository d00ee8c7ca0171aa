"""The job store (jobs/store.py) on a real Redis: where a job's parts
live, how long they last, and the state changes that must be atomic.

Jobs are queued through ``POST /train`` of an app whose queue no worker
serves (``idle_app``), then moved with the store as a worker would move them.
"""

import hashlib
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

import jobs.store
from jobs.store import EVENTS_MAXLEN
from jobs.store import INDEX
from jobs.store import TERMINAL
from jobs.store import index_key
from jobs.store import new_job_id
from seqlab.examples import EXAMPLES

RESULT = {"history": {"loss": [0.5, 0.25]}, "epochs_completed": 2}


@pytest.fixture
def store(idle_app):
    return idle_app.extensions["jobs"]


def queue_job(app, example="one_to_one"):
    rv = app.test_client().post("/train", json={"example": example})
    assert rv.status_code == 202, rv.get_json()
    return rv.get_json()["id"]


def keys_of(store, job_id):
    return sorted(k.decode() for k in store.redis.keys(f"{store.key(job_id)}*"))


def test_the_record_holds_no_training_data_and_the_worker_gets_it(idle_app, store):
    job_id = queue_job(idle_app)
    data = EXAMPLES["one_to_one"]["data"]
    record = store.redis.hgetall(store.key(job_id))
    assert "data" not in json.loads(record[b"request"])
    assert json.dumps(data["x"]).encode() not in b" ".join(record.values())
    # The data lives as long as the record, and the worker gets it with the job.
    assert all(0 < store.redis.ttl(key) <= store.ttl for key in keys_of(store, job_id))
    job = store.start(job_id, "test")
    assert job["request"]["data"] == {"x": data["x"], "y": data["y"]}
    store.delete(job_id)
    assert keys_of(store, job_id) == []


def test_the_index_expires_and_is_pruned_by_age_on_create(idle_app, store):
    stale = "f" * 32  # a job created two lifetimes ago, listed but long gone
    store.redis.zadd(INDEX, {stale: time.time() - 2 * store.ttl})
    job_id = queue_job(idle_app)
    assert store.redis.zscore(INDEX, stale) is None
    assert store.redis.zscore(INDEX, job_id) is not None
    assert 0 < store.redis.ttl(INDEX) <= store.ttl


def test_put_model_never_resurrects_an_expired_job(idle_app, store):
    job_id = queue_job(idle_app)
    store.start(job_id, "test")
    store.redis.delete(store.key(job_id))  # the record expired during training
    store.put_model(job_id, b"model")
    assert store.get_model(job_id) is None
    assert store.redis.exists(store.model_key(job_id)) == 0


def test_put_model_lives_as_long_as_its_job(idle_app, store):
    job_id = queue_job(idle_app)
    store.start(job_id, "test")
    store.redis.expire(store.key(job_id), 30)  # the job has half a minute left
    store.put_model(job_id, b"model")
    assert store.get_model(job_id) == b"model"
    assert 0 < store.redis.pttl(store.model_key(job_id)) <= 30_000
    # Its digest, kept with its size, spares a worker hashing it again.
    digest = hashlib.sha256(b"model").hexdigest()
    assert store.model_file(job_id) == {"bytes": 5, "chunks": 1, "sha256": digest}


@pytest.mark.parametrize(
    ("move", "outcome", "status"),
    [
        ((), "cancelled", "cancelled"),
        (("start",), "cancelling", "running"),
        (("start", "finish"), "ended", "succeeded"),
    ],
)
def test_cancel_returns_its_outcome_with_the_record_it_left(idle_app, store, move, outcome, status):
    job_id = queue_job(idle_app)
    if "start" in move:
        store.start(job_id, "test")
    if "finish" in move:
        store.finish(job_id, "succeeded", result=RESULT)
    got, job = store.cancel(job_id)
    assert (got, job["status"]) == (outcome, status)
    assert job.get("cancel_requested", False) is (outcome == "cancelling")
    assert store.get(job_id)["status"] == status


def test_cancel_and_remove_of_unknown_jobs(store):
    assert store.cancel("0" * 32) is None
    assert store.remove_finished("0" * 32) is None


def test_remove_finished_deletes_every_key_and_only_of_a_finished_job(idle_app, store):
    job_id = queue_job(idle_app)
    assert store.remove_finished(job_id) == "queued"
    store.start(job_id, "test")
    store.put_model(job_id, b"model")
    assert store.remove_finished(job_id) == "running"
    assert keys_of(store, job_id) == sorted(
        [
            store.key(job_id),
            store.data_key(job_id),
            store.events_key(job_id),
            store.model_key(job_id),
        ]
    )
    store.finish(job_id, "failed", error={"type": "X", "message": "x"})
    assert store.remove_finished(job_id) == "failed"
    assert keys_of(store, job_id) == []
    assert store.redis.zscore(INDEX, job_id) is None
    assert store.remove_finished(job_id) is None


def test_remove_finished_names_every_chunk_and_deletes_nothing_if_they_changed(
    idle_app, store, monkeypatch
):
    monkeypatch.setattr(jobs.store, "MODEL_CHUNK_BYTES", 4)
    job_id = queue_job(idle_app)
    store.start(job_id, "test")
    store.finish(job_id, "succeeded", result=RESULT)
    assert store.put_model(job_id, b"0123456789")
    assert store.model_file(job_id) == {
        "bytes": 10, "chunks": 3, "sha256": hashlib.sha256(b"0123456789").hexdigest()
    }  # fmt: skip
    # The script is given every key it deletes, the chunks counted from the
    # model_file its caller read; one read before the file was replaced
    # names too few, and deletes nothing.
    stale = json.dumps({"bytes": 4, "chunks": 1})
    keys = [store.key(job_id), store.data_key(job_id), store.model_key(job_id),
            store.events_key(job_id), store.predictions_key(job_id), INDEX]  # fmt: skip
    assert store.scripts.remove_finished(keys=keys, args=[job_id, 1, stale, *TERMINAL]) == 0
    assert store.get_model(job_id) == b"0123456789"
    assert store.remove_finished(job_id) == "succeeded"
    assert keys_of(store, job_id) == []
    assert store.redis.zscore(INDEX, job_id) is None


def parent_pid(pid):
    """The parent of a process, from /proc (the tests run on Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def test_tests_use_a_redis_of_their_own_unless_one_is_named(redis_server):
    # The fixture flushes its database: it may do so only to a Redis it
    # started, or to the one that SEQLAB_TEST_REDIS_URL names on purpose.
    named = os.environ.get("SEQLAB_TEST_REDIS_URL")
    if named:
        assert redis_server == named
        return
    info = redis.Redis.from_url(redis_server).info("server")
    assert parent_pid(info["process_id"]) == os.getpid()


def test_a_tenants_jobs_are_indexed_paged_and_pruned_apart(store):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    own = index_key(tenant)
    stale = "e" * 32  # listed two lifetimes ago, long gone
    store.redis.zadd(own, {stale: time.time() - 2 * store.ttl})
    ids = []
    for _ in range(3):
        ids.append(new_job_id())
        store.create(ids[-1], {"request": {}}, {}, tenant=tenant)
        time.sleep(0.002)
    other = new_job_id()
    store.create(other, {"request": {}}, {})  # no tenant: the global index only
    assert store.get(ids[0])["tenant"] == tenant and "tenant" not in store.get(other)
    assert store.redis.zscore(own, stale) is None  # pruned by age on create
    assert 0 < store.redis.ttl(own) <= store.ttl
    assert {store.redis.zscore(INDEX, i) is not None for i in [*ids, other]} == {True}
    assert store.count(tenant) == 3

    page, cursor = store.page(2, None, (), tenant=tenant)
    assert [job["status"] for job in page] == ["queued", "queued"] and cursor is not None
    rest, end = store.page(2, cursor, ("id",), tenant=tenant)
    assert [job["id"] for job in rest] == [ids[0]] and end is None
    # A record that expired is pruned from the index being read.
    store.redis.delete(store.key(ids[1]))
    assert [job["id"] for job in store.page(5, None, ("id",), tenant=tenant)[0]] == [
        ids[2],
        ids[0],
    ]
    assert store.redis.zscore(own, ids[1]) is None

    store.cancel(ids[2])
    assert store.remove_finished(ids[2], tenant) == "cancelled"
    store.delete(ids[0], tenant)
    for job_id in (ids[0], ids[2]):
        assert store.redis.zscore(own, job_id) is None
        assert store.redis.zscore(INDEX, job_id) is None
    assert store.count(tenant) == 0


# --- leases: a running job belongs to its lease token ------------------------


def lapse(store, job_id):
    """The lease expires: its worker stopped renewing it."""
    store.redis.delete(store.lease_key(job_id))


def test_claim_takes_a_queued_job_once_under_a_lease(idle_app, store):
    job_id = queue_job(idle_app)
    token, job = store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    assert job["status"] == "running" and job["attempt"] == 1 and job["queue"] == "gpu"
    assert job["request"]["data"] == {k: EXAMPLES["one_to_one"]["data"][k] for k in ("x", "y")}
    assert store.redis.get(store.lease_key(job_id)) == token.encode()
    assert 0 < store.redis.pttl(store.lease_key(job_id)) <= 30_000
    # A redelivered or re-published task of a running job does nothing.
    assert store.claim(job_id, "host:b", "gpu", lease_seconds=30) is None
    assert store.get(job_id)["worker"] == "host:a"


def test_a_live_lease_keeps_the_job_from_every_reaper(idle_app, store):
    job_id = queue_job(idle_app)
    store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    assert store.reap(job_id, 1, reason="test") == "alive"
    assert store.get(job_id)["status"] == "running"


def test_a_lapsed_lease_gives_the_job_back_then_fails_it_past_its_retries(idle_app, store):
    job_id = queue_job(idle_app)
    store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    lapse(store, job_id)
    assert store.reap(job_id, 1, reason="it stopped renewing the job's lease") == "requeued"
    job = store.get(job_id)
    assert (job["status"], job["attempt"]) == ("queued", 1)
    assert "started_at" not in job and "worker" not in job and "requeued_at" in job
    assert store.requeue_pending(older_than=0) == [job_id]

    token, job = store.claim(job_id, "host:b", "gpu", lease_seconds=30)
    assert job["attempt"] == 2
    assert store.requeue_pending(older_than=0) == []  # claimed: its task was published
    lapse(store, job_id)
    assert store.reap(job_id, 1, reason="it stopped renewing the job's lease") == "failed"
    job = store.get(job_id)
    assert job["status"] == "failed" and job["finished_at"]
    assert job["error"] == {
        "type": "WorkerLost",
        "message": "The worker running this job (host:b) was lost: it stopped renewing the "
        "job's lease. It ran 2 time(s), the most allowed (SEQLAB_JOB_RETRIES=1).",
    }
    assert job_id not in store.running_ids()


def test_a_lost_job_that_was_being_cancelled_ends_cancelled(idle_app, store):
    job_id = queue_job(idle_app)
    store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    assert store.cancel(job_id)[0] == "cancelling"
    lapse(store, job_id)
    assert store.reap(job_id, 1, reason="test") == "cancelled"
    assert store.get(job_id)["status"] == "cancelled"


def test_of_many_racing_reapers_one_acts(idle_app, store):
    job_id = queue_job(idle_app)
    store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    lapse(store, job_id)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: store.reap(job_id, 1, reason="test"), range(16)))
    assert sorted(set(outcomes)) == ["not_running", "requeued"]
    assert outcomes.count("requeued") == 1


def test_a_late_worker_cannot_touch_the_rerun_of_its_job(idle_app, store):
    job_id = queue_job(idle_app)
    late, _ = store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    lapse(store, job_id)  # the first worker stalls past its lease
    store.reap(job_id, 1, reason="test")
    rerun, _ = store.claim(job_id, "host:b", "gpu", lease_seconds=30)

    assert not store.renew(job_id, late, lease_seconds=30)
    assert not store.update_leased(job_id, late, progress={"epoch": 99})
    assert not store.finish_leased(job_id, late, "succeeded", b"late model", result=RESULT)
    job = store.get(job_id)
    assert (job["status"], job["worker"], job.get("progress")) == ("running", "host:b", None)
    assert store.get_model(job_id) is None
    assert store.redis.get(store.lease_key(job_id)) == rerun.encode()

    assert store.update_leased(job_id, rerun, progress={"epoch": 1})
    assert store.finish_leased(job_id, rerun, "succeeded", b"model", result=RESULT)
    job = store.get(job_id)
    assert (job["status"], job["progress"], job["result"]) == ("succeeded", {"epoch": 1}, RESULT)
    assert store.get_model(job_id) == b"model"
    assert store.redis.exists(store.lease_key(job_id)) == 0
    assert job_id not in store.running_ids()
    # A finished job is no reaper's business, nor a late renewal's.
    assert store.reap(job_id, 1, reason="test") == "not_running"
    assert not store.renew(job_id, rerun, lease_seconds=30)


def test_a_lapsed_lease_is_taken_up_again_if_no_reaper_came(idle_app, store):
    # Redis was away longer than the lease: the worker carries on.
    job_id = queue_job(idle_app)
    token, _ = store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    lapse(store, job_id)
    assert store.renew(job_id, token, lease_seconds=30)
    assert store.leases_alive([job_id]) == [True]


def test_a_dying_process_is_settled_at_once_by_its_own_worker_only(idle_app, store):
    job_id = queue_job(idle_app)
    store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    assert store.reap(job_id, 1, worker="host:b", reason="test") == "alive"
    error = {"type": "TimeLimitExceeded", "message": "killed"}
    assert store.reap(job_id, 1, worker="host:a", reason="test", error=error) == "failed"
    assert store.get(job_id)["error"] == error


# --- events: every state change and progress write, in the job's stream ------


def events_of(store, job_id):
    """(kind, data) of every event the job's stream keeps, oldest first."""
    return [(event.kind, json.loads(event.data)) for event in store.events(job_id)]


def test_every_state_change_and_progress_write_is_an_event(idle_app, store):
    job_id = queue_job(idle_app)
    token, _ = store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    progress = {"epoch": 1, "epochs": 2, "step": 0, "loss": 0.5, "metrics": {"loss": 0.5}}
    assert store.update_leased(job_id, token, progress=progress)
    result = {**RESULT, "final_metrics": {"loss": 0.1234567890123456789, "mae": float("nan")}}
    assert store.finish_leased(job_id, token, "succeeded", b"model", result=result)

    job = store.get(job_id)
    assert events_of(store, job_id) == [
        ("status", {"status": "queued", "at": job["created_at"]}),
        ("status", {"status": "running", "at": job["started_at"], "attempt": 1}),
        ("progress", progress),
        ("status", {"status": "succeeded", "at": job["finished_at"], "attempt": 1,
                    "final_metrics": {"loss": 0.1234567890123456789, "mae": None}}),
    ]  # fmt: skip
    ids = [event.id for event in store.events(job_id)]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert [event.terminal for event in store.events(job_id)] == [False, False, False, True]
    # Resuming after an event gives the ones after it, no more.
    assert [event.id for event in store.events(job_id, ids[1])] == ids[2:]
    assert store.events(job_id, ids[-1], block_ms=50) == []
    # The stream expires with the record.
    lifetimes = [store.redis.pttl(key) for key in (store.events_key(job_id), store.key(job_id))]
    assert lifetimes[1] > 0 and abs(lifetimes[0] - lifetimes[1]) < 50


def test_a_lost_workers_job_given_back_has_a_queued_event_again(idle_app, store):
    job_id = queue_job(idle_app)
    store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    lapse(store, job_id)
    assert store.reap(job_id, 1, reason="test") == "requeued"
    store.claim(job_id, "host:b", "gpu", lease_seconds=30)
    lapse(store, job_id)
    assert store.reap(job_id, 1, reason="test") == "failed"

    statuses = [(data["status"], data.get("attempt"), data.get("reason"))
                for _, data in events_of(store, job_id)]  # fmt: skip
    assert statuses == [("queued", None, None), ("running", 1, None),
                        ("queued", 1, "worker_lost"), ("running", 2, None),
                        ("failed", 2, None)]  # fmt: skip
    assert store.get(job_id)["requeue_reason"] == "worker_lost"
    _, failed = events_of(store, job_id)[-1]
    assert failed["error"] == store.get(job_id)["error"]
    assert failed["error"]["type"] == "WorkerLost"


@pytest.mark.parametrize("how", ["cancel", "reap_cancelled", "reap_failed", "finish"])
def test_each_way_a_job_ends_is_its_last_event(idle_app, store, how):
    job_id = queue_job(idle_app)
    if how == "cancel":
        store.cancel(job_id)  # queued: cancelled at once
    else:
        store.start(job_id, "test")
        if how == "reap_cancelled":
            store.cancel(job_id)  # running: only asked; no event yet
            assert [data["status"] for _, data in events_of(store, job_id)][-1] == "running"
            assert store.reap(job_id, 1, reason="test") == "cancelled"
        elif how == "reap_failed":
            error = {"type": "TimeLimitExceeded", "message": "killed", "traceback": "tb"}
            store.redis.hset(store.key(job_id), "worker", json.dumps("host:a"))
            assert store.reap(job_id, 1, worker="host:a", reason="test", error=error) == "failed"
        else:
            store.finish(job_id, "failed", error={"type": "X", "message": "x", "traceback": "tb"})
    job = store.get(job_id)
    kind, data = events_of(store, job_id)[-1]
    assert (kind, data["status"], data["at"]) == ("status", job["status"], job["finished_at"])
    if "error" in job:  # as GET /jobs/<id> shows it: no traceback
        assert data["error"] == {k: job["error"][k] for k in ("type", "message")}
    assert store.events(job_id)[-1].terminal


def test_a_write_that_changes_nothing_is_no_event(idle_app, store):
    job_id = queue_job(idle_app)
    late, _ = store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    lapse(store, job_id)
    store.reap(job_id, 1, reason="test")
    before = len(store.events(job_id))
    assert not store.update_leased(job_id, late, progress={"epoch": 99})
    assert not store.finish_leased(job_id, late, "succeeded", b"late model", result=RESULT)
    assert store.claim(job_id, "host:b", "gpu", lease_seconds=30) is not None
    assert store.claim(job_id, "host:c", "gpu", lease_seconds=30) is None
    assert [data["status"] for _, data in events_of(store, job_id)[before:]] == ["running"]


def test_the_stream_is_trimmed_to_about_its_maximum(idle_app, store):
    job_id = queue_job(idle_app)
    token, _ = store.claim(job_id, "host:a", "gpu", lease_seconds=30)
    with store.redis.pipeline(transaction=False) as pipe:
        for epoch in range(EVENTS_MAXLEN + 500):
            store.scripts.update_leased(
                keys=[store.key(job_id), store.events_key(job_id)],
                args=[token, "progress", json.dumps({"epoch": epoch})],
                client=pipe,
            )
        pipe.execute()
    kept = store.redis.xlen(store.events_key(job_id))
    # Redis trims whole nodes (100 entries): at least the maximum, about as many.
    assert EVENTS_MAXLEN <= kept <= EVENTS_MAXLEN + 100
    last = store.redis.xrevrange(store.events_key(job_id), count=1)[0][1]
    assert json.loads(last[b"data"]) == {"epoch": EVENTS_MAXLEN + 499}
