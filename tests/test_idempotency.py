"""Idempotent submits (service/jobs/idempotency.py): POST /train with an
Idempotency-Key, on the real Redis, with real concurrent requests."""

import threading
import uuid

import pytest
from openapi_check import validate_response
from tenants import Tenants

from service import create_app
from service.jobs.idempotency import REPLAY_SECONDS
from service.jobs.idempotency import IdempotentRequest

BODY = {"example": "one_to_one", "fit": {"epochs": 3}}


def key():
    return str(uuid.uuid4())


def post(client, body=BODY, idempotency_key=None, headers=None, **kwargs):
    headers = dict(headers or {})
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return client.post("/train", json=body, headers=headers, **kwargs)


def test_the_same_key_and_body_answer_with_the_same_job(idle_app, spec):
    client, store = idle_app.test_client(), idle_app.extensions["jobs"]
    before = store.count()
    k = key()
    first = post(client, idempotency_key=k)
    again = post(client, idempotency_key=k)
    assert first.status_code == again.status_code == 202
    validate_response(spec, "/train", "post", again)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert store.count() == before + 1
    # Formatting and member order are not part of the body's identity.
    raw = '{ "fit": {"epochs": 3},\n  "example": "one_to_one" }'
    same = client.post(
        "/train", data=raw, content_type="application/json", headers={"Idempotency-Key": k}
    )
    assert same.get_json()["id"] == first.get_json()["id"]
    # A request without a key is a new job, as before.
    assert post(client).get_json()["id"] != first.get_json()["id"]


def test_the_key_answers_with_its_job_whatever_its_state(idle_app):
    client = idle_app.test_client()
    k = key()
    location = post(client, idempotency_key=k).headers["Location"]
    assert client.post(f"{location}/cancel").status_code == 200
    again = post(client, idempotency_key=k)
    assert (again.status_code, again.headers["Location"]) == (202, location)
    assert again.get_json()["status"] == "cancelled"
    # Once the job is deleted the key is free: a new job.
    assert client.delete(location).status_code == 204
    fresh = post(client, idempotency_key=k)
    assert fresh.status_code == 202 and fresh.headers["Location"] != location
    assert "Idempotent-Replayed" not in fresh.headers


def test_the_same_key_with_another_body_is_422(idle_app, spec):
    client, store = idle_app.test_client(), idle_app.extensions["jobs"]
    k = key()
    post(client, idempotency_key=k)
    before = store.count()
    rv = post(client, {"example": "one_to_one", "fit": {"epochs": 4}}, idempotency_key=k)
    assert rv.status_code == 422
    validate_response(spec, "/train", "post", rv)
    assert "another request body" in rv.get_json()["errors"]["Idempotency-Key"][0]
    assert store.count() == before


@pytest.mark.parametrize("value", ["", "x" * 256, "caf\u00e9", "tab\there", "del\x7f"])
def test_malformed_keys_are_422_naming_the_header(idle_app, spec, value):
    client, store = idle_app.test_client(), idle_app.extensions["jobs"]
    before = store.count()
    rv = post(client, idempotency_key=value)
    assert rv.status_code == 422, rv.get_json()
    validate_response(spec, "/train", "post", rv)
    assert list(rv.get_json()["errors"]) == ["Idempotency-Key"]
    assert store.count() == before


def test_the_longest_key_is_fine(idle_app):
    assert post(idle_app.test_client(), idempotency_key="k" * 255).status_code == 202


def test_a_refused_request_leaves_its_key_free(idle_app):
    client = idle_app.test_client()
    k = key()
    assert post(client, {"example": "nope"}, idempotency_key=k).status_code == 422
    assert post(client, idempotency_key=k).status_code == 202


def test_concurrent_requests_with_one_key_create_one_job(idle_app):
    store = idle_app.extensions["jobs"]
    before, k, n = store.count(), key(), 8
    start = threading.Barrier(n)
    answers = [None] * n

    def submit(i):
        client = idle_app.test_client()
        start.wait()
        answers[i] = post(client, idempotency_key=k)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [rv.status_code for rv in answers] == [202] * n
    assert len({rv.get_json()["id"] for rv in answers}) == 1
    assert sum("Idempotent-Replayed" not in rv.headers for rv in answers) == 1
    assert store.count() == before + 1


def test_a_key_still_being_claimed_is_409_after_a_short_wait(redis_url, spec):
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    app = create_app(
        {
            "TESTING": True,
            "REDIS_URL": redis_url,
            "SEQLAB_QUEUE": queue,
            "IDEMPOTENCY_WAIT_SECONDS": 0.2,
        }
    )
    store, k = app.extensions["jobs"], key()
    # A request that has claimed the key and not yet queued its job.
    other = IdempotentRequest(store.redis, None, k, BODY, wait=0)
    assert other.claim("f" * 32, lambda job_id: None) is None
    rv = post(app.test_client(), idempotency_key=k)
    assert rv.status_code == 409
    validate_response(spec, "/train", "post", rv)
    assert rv.headers["Retry-After"] == "1"
    # It gave up (its queueing failed): the next request creates the job.
    other.release()
    assert post(app.test_client(), idempotency_key=k).status_code == 202


def test_a_job_that_could_not_be_queued_frees_its_key(redis_url, idle_app):
    k = key()
    broken = create_app(
        {"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": idle_app.config["SEQLAB_QUEUE"]}
    )
    # The job store answers, the broker does not: a real failure to queue.
    broken.extensions["celery"].conf.broker_url = "redis://127.0.0.1:1/0"
    assert post(broken.test_client(), idempotency_key=k).status_code == 503
    rv = post(idle_app.test_client(), idempotency_key=k)
    assert rv.status_code == 202
    assert "Idempotent-Replayed" not in rv.headers
    assert idle_app.extensions["jobs"].get(rv.get_json()["id"])["status"] == "queued"


def test_the_key_lasts_a_day_once_its_job_is_queued(idle_app):
    k = key()
    post(idle_app.test_client(), idempotency_key=k)
    claim = IdempotentRequest(idle_app.extensions["jobs"].redis, None, k, BODY, wait=0)
    assert REPLAY_SECONDS - 60 < claim.redis.ttl(claim.redis_key) <= REPLAY_SECONDS


def test_keys_are_per_tenant(idle_app):
    tenants = Tenants()
    app = tenants.app(idle_app.config["REDIS_URL"], idle_app.config["SEQLAB_QUEUE"])
    client, k = app.test_client(), key()
    alice = post(client, idempotency_key=k, headers=tenants.bearer("alice"))
    bob = post(client, idempotency_key=k, headers=tenants.bearer("bob"))
    assert alice.status_code == bob.status_code == 202
    assert alice.get_json()["id"] != bob.get_json()["id"]
    # Alice's key is no conflict for Bob's other body under the same key.
    shared = key()
    assert post(client, idempotency_key=shared, headers=tenants.bearer("alice")).status_code == 202
    other = post(client, {"example": "many_to_one"}, idempotency_key=shared,
                 headers=tenants.bearer("bob"))  # fmt: skip
    assert other.status_code == 202 and "Idempotent-Replayed" not in other.headers
    # Each replays its own.
    for name, first in (("alice", alice), ("bob", bob)):
        again = post(client, idempotency_key=k, headers=tenants.bearer(name))
        assert again.get_json()["id"] == first.get_json()["id"]
    # Open, the same key is another scope again.
    assert post(idle_app.test_client(), idempotency_key=k).get_json()["id"] not in {
        alice.get_json()["id"],
        bob.get_json()["id"],
    }
