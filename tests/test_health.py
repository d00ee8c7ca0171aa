"""Liveness (``GET /healthz``), readiness (``GET /readyz``) and the 503 that
every route needing Redis answers while Redis is away (service/health.py)."""

import time
import uuid

import pytest
import redis
from conftest import free_port
from openapi_check import validate_response
from test_jobs import submit

from service import create_app


def down_app():
    """An app whose Redis does not run: nothing listens on its port."""
    return create_app({"TESTING": True, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})


def assert_unavailable(rv):
    assert rv.status_code == 503, rv.get_data()
    assert rv.content_type == "application/problem+json"
    assert rv.get_json()["status"] == 503
    assert int(rv.headers["Retry-After"]) > 0


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_503_within_its_timeout_when_redis_is_down(spec):
    client = down_app().test_client()
    started = time.monotonic()
    rv = client.get("/readyz")
    assert time.monotonic() - started < 2
    assert_unavailable(rv)
    validate_response(spec, "/readyz", "get", rv)
    assert client.get("/healthz").status_code == 200  # liveness touches nothing


def test_readyz_without_workers_counts_the_queued_jobs(idle_app, spec):
    client = idle_app.test_client()
    rv = client.get("/readyz")
    validate_response(spec, "/readyz", "get", rv)
    queue = idle_app.config["SEQLAB_QUEUE"]
    assert rv.status_code == 200
    assert rv.get_json()["workers"] == 0  # ready all the same: jobs can be queued and read
    assert rv.get_json()["queue"] == {"name": queue, "depth": 0}
    submit(client, {"example": "one_to_one"})
    assert client.get("/readyz").get_json()["queue"] == {"name": queue, "depth": 1}


def test_readyz_counts_the_workers_that_serve_the_queue(jobs_client, jobs_app, redis_url, spec):
    deadline = time.monotonic() + 20
    while (rv := jobs_client.get("/readyz")).get_json()["workers"] != 1:
        assert time.monotonic() < deadline, rv.get_json()
        time.sleep(0.2)
    validate_response(spec, "/readyz", "get", rv)
    assert rv.get_json()["status"] == "ready"
    # The same worker serves no other queue.
    other = create_app(
        {"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": f"other-{uuid.uuid4().hex[:8]}"}
    )
    assert other.test_client().get("/readyz").get_json()["workers"] == 0


def test_priority_lists_count_in_the_depth(idle_app):
    # Kombu keeps messages sent with a priority in lists of their own.
    queue = idle_app.config["SEQLAB_QUEUE"]
    client = redis.Redis.from_url(idle_app.config["REDIS_URL"])
    client.lpush(f"{queue}\x06\x163", b"{}")
    client.lpush(f"{queue}\x06\x169", b"{}", b"{}")
    assert idle_app.test_client().get("/readyz").get_json()["queue"]["depth"] == 3
    client.delete(f"{queue}\x06\x163", f"{queue}\x06\x169")


JOB = "0" * 32
ROUTES = [
    ("post", "/train", "/train", {"example": "one_to_one"}),
    ("get", "/jobs", "/jobs", None),
    ("get", "/jobs/{job_id}", f"/jobs/{JOB}", None),
    ("delete", "/jobs/{job_id}", f"/jobs/{JOB}", None),
    ("post", "/jobs/{job_id}/cancel", f"/jobs/{JOB}/cancel", None),
    ("get", "/jobs/{job_id}/model", f"/jobs/{JOB}/model", None),
]


@pytest.mark.parametrize(("method", "path", "url", "body"), ROUTES)
def test_every_route_that_needs_redis_is_503_while_it_is_down(spec, method, path, url, body):
    rv = getattr(down_app().test_client(), method)(url, json=body)
    assert_unavailable(rv)
    validate_response(spec, path, method, rv)


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (redis.exceptions.ConnectionError("refused"), "unreachable"),
        (redis.exceptions.TimeoutError("timed out"), "unreachable"),
        (redis.exceptions.BusyLoadingError("loading"), "loading its data"),
        (redis.exceptions.OutOfMemoryError("OOM"), "refuses writes"),
        (redis.exceptions.ReadOnlyError("replica"), "refuses writes"),
    ],
)
def test_redis_errors_are_503_on_every_route(app, error, detail):
    # Any route, present or to come (a rate limiter, an idempotency store).
    @app.get("/uses-redis")
    def uses_redis():
        raise error

    rv = app.test_client().get("/uses-redis")
    assert_unavailable(rv)
    assert detail in rv.get_json()["detail"]


def test_params_needs_no_redis():
    rv = (
        down_app()
        .test_client()
        .post("/params", json={"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 5}]})
    )
    assert rv.status_code == 200
