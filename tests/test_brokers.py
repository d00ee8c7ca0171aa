"""RabbitMQ as the broker (SEQLAB_BROKER_URL), as the API sees it: quorum
queues, the depth /readyz reports, and a broker away. The jobs themselves
run on both brokers in tests/test_hosts.py."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest
from conftest import free_port
from openapi_check import validate_response

from service import create_app

pytestmark = pytest.mark.slow


def queues_of(url):
    """``{name: type}`` of the queues on the virtual host of an amqp:// URL."""
    vhost = url.rsplit("/", 1)[1]
    listed = subprocess.run(
        [shutil.which("rabbitmqctl") or "rabbitmqctl", "-q", "list_queues", "-p", vhost,
         "--no-table-headers", "name", "type"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(line.split() for line in listed.splitlines())


def test_jobs_wait_in_a_quorum_queue_that_readyz_counts(rabbitmq, redis_url, spec):
    queue = f"rabbit-{uuid.uuid4().hex[:8]}"
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "BROKER_URL": rabbitmq,
                      "SEQLAB_QUEUE": queue})  # fmt: skip
    client = app.test_client()
    rv = client.get("/readyz")
    validate_response(spec, "/readyz", "get", rv)
    assert rv.get_json()["broker"] == "rabbitmq"
    assert rv.get_json()["queue"] == {"name": queue, "depth": 0}  # not declared yet
    for _ in range(2):
        assert client.post("/train", json={"example": "one_to_one"}).status_code == 202
    # Published with confirms: the broker has both messages when the 202s come.
    assert client.get("/readyz").get_json()["queue"] == {"name": queue, "depth": 2}
    # (rabbitmqctl's message counts lag by seconds: the type only.)
    assert queues_of(rabbitmq)[queue] == "quorum"


def test_an_unreachable_broker_is_a_503_with_nothing_written(redis_url, spec):
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "BROKER_URL": nowhere,
                      "SEQLAB_QUEUE": f"rabbit-{uuid.uuid4().hex[:8]}"})  # fmt: skip
    client = app.test_client()
    jobs = app.extensions["jobs"]
    before = jobs.count()
    rv = client.post("/train", json={"example": "one_to_one"})
    assert rv.status_code == 503, rv.get_json()
    assert rv.headers["Retry-After"].isdigit()
    validate_response(spec, "/train", "post", rv)
    assert jobs.count() == before
    rv = client.get("/readyz")
    assert rv.status_code == 503
    assert "RabbitMQ" in rv.get_json()["detail"]
