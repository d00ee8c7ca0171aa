"""The rate limit of POST /train (service/jobs/ratelimit.py): per tenant or
client address, counted in the real Redis and shared by every app on it."""

import time
import uuid

import pytest
from openapi_check import validate_response
from tenants import Tenants

from service import create_app

BODY = {"example": "one_to_one"}


@pytest.fixture
def limited(idle_app):
    """Apps limited to 2 POST /train a minute, on the test Redis; each call
    is another app instance, as each gunicorn process has its own."""

    def make(**config):
        return create_app(
            {
                "TESTING": True,
                "REDIS_URL": idle_app.config["REDIS_URL"],
                "SEQLAB_QUEUE": idle_app.config["SEQLAB_QUEUE"],
                "TRAIN_RATE_LIMIT": "2/minute",
                **config,
            }
        )

    return make


def address():
    """A client address of the test's own, so tests share no window."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def test_over_the_limit_is_429_with_retry_after(limited, spec):
    client = limited().test_client()
    store = client.application.extensions["jobs"]
    environ = {"REMOTE_ADDR": address()}
    for _ in range(2):
        assert client.post("/train", json=BODY, environ_base=environ).status_code == 202
    before = store.count()
    rv = client.post("/train", json=BODY, environ_base=environ)
    assert rv.status_code == 429
    assert rv.content_type == "application/problem+json"
    validate_response(spec, "/train", "post", rv)
    assert 1 <= int(rv.headers["Retry-After"]) <= 60
    assert "2 per 1 minute" in rv.get_json()["detail"]
    assert store.count() == before  # nothing queued
    # Polling is not limited.
    assert client.get("/jobs", environ_base=environ).status_code == 200


def test_the_count_is_shared_by_every_app_on_the_redis(limited):
    environ = {"REMOTE_ADDR": address()}
    first, second = limited().test_client(), limited().test_client()
    assert first.post("/train", json=BODY, environ_base=environ).status_code == 202
    assert second.post("/train", json=BODY, environ_base=environ).status_code == 202
    assert first.post("/train", json=BODY, environ_base=environ).status_code == 429
    assert second.post("/train", json=BODY, environ_base=environ).status_code == 429


def test_without_keys_each_client_address_has_its_own_count(limited):
    client = limited().test_client()
    one, other = {"REMOTE_ADDR": address()}, {"REMOTE_ADDR": address()}
    for _ in range(2):
        client.post("/train", json=BODY, environ_base=one)
    assert client.post("/train", json=BODY, environ_base=one).status_code == 429
    assert client.post("/train", json=BODY, environ_base=other).status_code == 202


def test_with_keys_each_tenant_has_its_own_count_wherever_it_calls_from(limited):
    tenants = Tenants()
    first = limited(API_KEYS=tenants.config).test_client()
    second = limited(API_KEYS=tenants.config).test_client()
    alice, bob = tenants.bearer("alice"), tenants.bearer("bob")
    # Requests without a valid key are refused before they count.
    for _ in range(3):
        assert first.post("/train", json=BODY).status_code == 401
    for client in (first, second):
        rv = client.post(
            "/train", json=BODY, headers=alice, environ_base={"REMOTE_ADDR": address()}
        )
        assert rv.status_code == 202
    rv = second.post("/train", json=BODY, headers=alice, environ_base={"REMOTE_ADDR": address()})
    assert rv.status_code == 429
    assert tenants.names["alice"] in rv.get_json()["detail"]
    assert first.post("/train", json=BODY, headers=bob).status_code == 202


def test_every_limit_of_a_list_applies(limited):
    client = limited(TRAIN_RATE_LIMIT="5/minute;1/second").test_client()
    environ = {"REMOTE_ADDR": address()}
    assert client.post("/train", json=BODY, environ_base=environ).status_code == 202
    rv = client.post("/train", json=BODY, environ_base=environ)
    assert rv.status_code == 429 and "1 per 1 second" in rv.get_json()["detail"]
    time.sleep(1.1)
    assert client.post("/train", json=BODY, environ_base=environ).status_code == 202


def test_no_limit_by_default(idle_app):
    assert idle_app.extensions["train_rate_limit"] is None


@pytest.mark.parametrize("spec", ["often", "30/fortnight", "-1/minute"])
def test_a_malformed_limit_is_refused_at_start_up(spec):
    with pytest.raises(ValueError, match="is not a rate limit such as '30/minute'"):
        create_app({"TESTING": True, "TRAIN_RATE_LIMIT": spec})


def test_without_redis_the_limited_route_is_503(limited):
    client = limited(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    rv = client.post("/train", json=BODY)
    assert rv.status_code == 503
    assert rv.content_type == "application/problem+json"
    assert rv.headers["Retry-After"]
