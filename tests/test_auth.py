"""API keys and tenants (service/auth.py): the guard, its 401s, the open
routes, tenant isolation on every job route, and the key configuration."""

import io
import logging
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import redis
import yaml
from openapi_check import validate_response
from tenants import Tenants

from service import create_app
from service.auth import ApiKeyError
from service.auth import load_keys

ROOT = Path(__file__).resolve().parent.parent
SPEC = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
SOME_ID = "0" * 32
BODIES = {
    ("/train", "post"): {"example": "one_to_one"},
    ("/sweeps", "post"): {"example": "one_to_one", "vary": {"seed": [0, 1]}},
    ("/params", "post"): {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 5}]},
}
QUICK = {"example": "many_to_one", "fit": {"epochs": 5}}


def _npz():
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((2, 5, 1), "float32"), y=np.zeros((2, 1), "float32"))
    return buffer.getvalue()


#: Binary request bodies (an upload), by operation.
UPLOADS = {("/datasets", "post"): _npz()}


def operations(guarded):
    """The spec's operations that need a key (``guarded``) or are open."""
    rv = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            security = operation.get("security", SPEC.get("security", []))
            if bool(security) == guarded:
                rv.append((path, method))
    return rv


def call(client, path, method, headers=None):
    url = path.replace("{job_id}", SOME_ID).replace("{dataset_id}", f"ds_{SOME_ID}")
    url = url.replace("{sweep_id}", SOME_ID).replace("{trial}", "0")
    if (path, method) in UPLOADS:
        return client.open(url, method=method.upper(), data=UPLOADS[path, method],
                           content_type="application/octet-stream", headers=headers)  # fmt: skip
    return client.open(url, method=method.upper(), json=BODIES.get((path, method)), headers=headers)


@pytest.fixture
def keyed_app(tenants, idle_app):
    """An app with keys on the test Redis, on a queue no worker serves."""
    return tenants.app(idle_app.config["REDIS_URL"], idle_app.config["SEQLAB_QUEUE"])


def test_the_spec_guards_every_job_route_and_opens_the_rest():
    guarded = {path for path, _ in operations(guarded=True)}
    assert guarded == {
        "/train",
        "/jobs",
        "/jobs/{job_id}",
        "/jobs/{job_id}/cancel",
        "/jobs/{job_id}/events",
        "/jobs/{job_id}/model",
        "/jobs/{job_id}/predict",
        "/jobs/{job_id}/predictions",
        "/jobs/{job_id}/plot.png",
        "/jobs/{job_id}/plot.svg",
        "/datasets",
        "/datasets/{dataset_id}",
        "/sweeps",
        "/sweeps/{sweep_id}",
        "/sweeps/{sweep_id}/cancel",
        "/sweeps/{sweep_id}/events",
        "/sweeps/{sweep_id}/plot.png",
        "/sweeps/{sweep_id}/plot.svg",
        "/sweeps/{sweep_id}/trials/{trial}/model",
        "/sweeps/{sweep_id}/trials/{trial}/predict",
    }
    assert {"/params", "/layers", "/examples", "/healthz", "/openapi.yaml", "/docs"} <= {
        path for path, _ in operations(guarded=False)
    }


@pytest.mark.parametrize(("path", "method"), operations(guarded=True))
@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, 'Bearer realm="seqlab"'),
        ("Basic YWxpY2U6czNjcjN0", 'Bearer realm="seqlab"'),  # another scheme: no error code
        ("Bearer not-a-key", 'Bearer realm="seqlab", error="invalid_token"'),
        ("Bearer ", 'Bearer realm="seqlab", error="invalid_token"'),
    ],
)
def test_guarded_routes_are_401_without_a_valid_key(
    keyed_app, spec, path, method, authorization, challenge
):
    client = keyed_app.test_client()
    store = keyed_app.extensions["jobs"]
    before = store.count()
    headers = {"Authorization": authorization} if authorization is not None else None
    rv = call(client, path, method, headers)
    assert rv.status_code == 401, rv.get_data()
    assert rv.content_type == "application/problem+json"
    assert rv.headers["WWW-Authenticate"] == challenge
    validate_response(spec, path, method, rv)
    assert store.count() == before  # nothing queued


@pytest.mark.parametrize(("path", "method"), operations(guarded=True))
def test_guarded_routes_answer_a_valid_key(keyed_app, tenants, path, method):
    rv = call(keyed_app.test_client(), path, method, tenants.bearer("alice"))
    assert rv.status_code in (200, 201, 202, 404), rv.get_data()  # 404: SOME_ID is no job
    assert "WWW-Authenticate" not in rv.headers


@pytest.mark.parametrize(("path", "method"), operations(guarded=False))
def test_open_routes_stay_open_with_keys(keyed_app, path, method):
    rv = call(keyed_app.test_client(), path, method)
    assert rv.status_code != 401 and "WWW-Authenticate" not in rv.headers
    if path in ("/params", "/layers", "/examples", "/healthz", "/openapi.yaml", "/docs"):
        assert rv.status_code == 200


def test_unknown_paths_stay_404_with_keys(keyed_app):
    assert keyed_app.test_client().get("/no-such-route").status_code == 404
    assert keyed_app.test_client().post("/healthz").status_code == 405


def wait_until_done(client, location, headers, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(location, headers=headers).get_json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def replay(client, requests, headers):
    return {
        (method, url): client.open(url, method=method, headers=headers) for method, url in requests
    }


def test_another_tenants_job_answers_exactly_as_an_unknown_one(redis_url, queue, worker):
    tenants = Tenants()
    client = tenants.app(redis_url, queue).test_client()
    alice, bob = tenants.bearer("alice"), tenants.bearer("bob")
    location = client.post("/train", json=QUICK, headers=alice).headers["Location"]
    job_id = location.rsplit("/", 1)[1]
    assert wait_until_done(client, location, alice)["status"] == "succeeded"
    requests = [
        ("GET", location),
        ("GET", f"{location}/model"),
        ("POST", f"{location}/cancel"),
        ("DELETE", location),
    ]
    as_bob = replay(client, requests, bob)
    assert {rv.status_code for rv in as_bob.values()} == {404}
    # Bob's cancel and delete changed nothing: the job and its model are Alice's.
    assert client.get(location, headers=alice).get_json()["status"] == "succeeded"
    assert client.get(f"{location}/model", headers=alice).status_code == 200
    assert client.post(f"{location}/cancel", headers=alice).status_code == 409
    assert job_id in [j["id"] for j in client.get("/jobs", headers=alice).get_json()["jobs"]]
    assert job_id not in [j["id"] for j in client.get("/jobs", headers=bob).get_json()["jobs"]]

    assert client.delete(location, headers=alice).status_code == 204
    # Now the id is unknown to everyone: Bob's answers were those very bytes.
    for answers in (replay(client, requests, bob), replay(client, requests, alice)):
        for request, rv in answers.items():
            before = as_bob[request]
            assert rv.status_code == before.status_code == 404
            assert rv.headers == before.headers
            assert rv.get_data() == before.get_data()


def test_another_tenant_can_neither_cancel_nor_delete_a_job(keyed_app, tenants):
    client = keyed_app.test_client()
    alice, bob = tenants.bearer("alice"), tenants.bearer("bob")
    location = client.post("/train", json={"example": "one_to_one"}, headers=alice).headers[
        "Location"
    ]
    assert client.post(f"{location}/cancel", headers=bob).status_code == 404
    assert client.get(location, headers=alice).get_json()["status"] == "queued"
    assert client.post(f"{location}/cancel", headers=alice).status_code == 200
    assert client.delete(location, headers=bob).status_code == 404
    assert client.get(location, headers=alice).get_json()["status"] == "cancelled"
    assert client.delete(location, headers=alice).status_code == 204


def test_listing_shows_only_the_callers_jobs_page_by_page(keyed_app, tenants):
    client = keyed_app.test_client()
    created = {"alice": [], "bob": []}
    for name in ("alice", "bob", "alice", "alice", "bob"):
        rv = client.post("/train", json={"example": "one_to_one"}, headers=tenants.bearer(name))
        created[name].append(rv.get_json()["id"])
        time.sleep(0.002)
    for name, ids in created.items():
        listed, token = [], None
        while True:
            query = "page_size=2" + (f"&page_token={token}" if token else "")
            page = client.get(f"/jobs?{query}", headers=tenants.bearer(name)).get_json()
            assert len(page["jobs"]) <= 2
            listed += [job["id"] for job in page["jobs"]]
            token = page["next_page_token"]
            if token is None:
                break
        assert listed == ids[::-1]


def test_the_record_names_its_tenant_and_no_secret_is_stored_or_logged(keyed_app, tenants, caplog):
    caplog.set_level(logging.DEBUG)
    tenants.app(keyed_app.config["REDIS_URL"], keyed_app.config["SEQLAB_QUEUE"])  # start-up logs
    client = keyed_app.test_client()
    alice = tenants.bearer("alice")
    near_miss = {"Authorization": f"Bearer {tenants.secrets['bob'][:-1]}x"}
    job = client.post("/train", json={"example": "one_to_one"}, headers=alice).get_json()
    assert client.get("/jobs", headers=near_miss).status_code == 401
    assert (
        client.post("/train", json={"example": "one_to_one"}, headers=near_miss).status_code == 401
    )

    store = keyed_app.extensions["jobs"]
    assert store.get(job["id"])["tenant"] == tenants.names["alice"]
    stored = b" ".join(everything_in(store.redis))
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "refused an unknown API key" in logged  # the near miss was logged, not its token
    for secret in [*tenants.secrets.values(), near_miss["Authorization"].split()[1]]:
        assert secret.encode() not in stored
        assert secret not in logged


def everything_in(client: redis.Redis):
    """Every key and value of the database, as bytes."""
    for key in client.scan_iter(count=1000):
        yield key
        kind = client.type(key)
        if kind == b"string":
            yield client.get(key) or b""
        elif kind == b"hash":
            yield from (x for kv in client.hgetall(key).items() for x in kv)
        elif kind == b"list":
            yield from client.lrange(key, 0, -1)
        elif kind == b"set":
            yield from client.smembers(key)
        elif kind == b"zset":
            yield from client.zrange(key, 0, -1)


def test_jobs_made_while_open_belong_to_no_tenant(idle_app, tenants):
    job = idle_app.test_client().post("/train", json={"example": "one_to_one"}).get_json()
    assert "tenant" not in idle_app.extensions["jobs"].get(job["id"])
    keyed = tenants.app(idle_app.config["REDIS_URL"], idle_app.config["SEQLAB_QUEUE"])
    rv = keyed.test_client().get(f"/jobs/{job['id']}", headers=tenants.bearer("alice"))
    assert rv.status_code == 404
    # While open, every job is everyone's, whichever tenant made it.
    theirs = keyed.test_client().post(
        "/train", json={"example": "one_to_one"}, headers=tenants.bearer("alice")
    )
    assert idle_app.test_client().get(theirs.headers["Location"]).status_code == 200


def test_an_open_api_says_so_once_at_start_up(caplog):
    caplog.set_level(logging.INFO)
    create_app({"TESTING": True})
    said = [r for r in caplog.records if "API keys are off" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    caplog.clear()
    tenants = Tenants()
    create_app({"TESTING": True, "API_KEYS": tenants.config})
    assert not [r for r in caplog.records if "API keys are off" in r.getMessage()]
    assert any(tenants.names["alice"] in r.getMessage() for r in caplog.records)


def test_short_secrets_are_named_at_start_up(caplog):
    create_app({"TESTING": True, "API_KEYS": "alice:s3cr3t,bob:" + "t" * 40})
    warned = [r.getMessage() for r in caplog.records if "easy to guess" in r.getMessage()]
    assert len(warned) == 1 and "alice" in warned[0] and "bob" not in warned[0]
    assert "s3cr3t" not in caplog.text


def test_keys_come_from_the_variable_and_the_file_together(tmp_path, monkeypatch):
    keys_file = tmp_path / "keys"
    keys_file.write_text("# team keys\n\n  carol:c-secret_1 \r\n# dave:old\ndave:d+s/e=\n")
    monkeypatch.setenv("SEQLAB_API_KEYS", "alice:a.secret~,bob:b-secret,")
    monkeypatch.setenv("SEQLAB_API_KEYS_FILE", str(keys_file))
    app = create_app({"TESTING": True})
    ring = app.extensions["api_keys"]
    assert ring.names == ["alice", "bob", "carol", "dave"]
    for name, secret in [("alice", "a.secret~"), ("carol", "c-secret_1"), ("dave", "d+s/e=")]:
        assert ring.tenant_of(secret) == name
    assert ring.tenant_of("old") is None and ring.tenant_of("") is None
    rv = app.test_client().get("/jobs", headers={"Authorization": "bearer d+s/e="})
    assert rv.status_code != 401  # the scheme is case-insensitive


def test_empty_variables_leave_the_api_open(monkeypatch):
    monkeypatch.setenv("SEQLAB_API_KEYS", " ")
    assert create_app({"TESTING": True}).extensions["api_keys"] is None
    assert load_keys("", None) is None


@pytest.mark.parametrize(
    ("keys", "lines", "message"),
    [
        ("alice", None, "SEQLAB_API_KEYS entry 1: expected name:secret"),
        ("alice:", None, "the secret of 'alice' is empty"),
        ("alice:TopSecret1,alice:TopSecret2", None, "entry 2: the name 'alice' is also given"),
        ("alice:TopSecret1,bob:TopSecret1", None, "the secret of 'bob' is also the secret at"),
        ("al ice:TopSecret1", None, "the name 'al ice' is not"),
        (":TopSecret1", None, "the name '' is not"),
        ("alice:Top Secret1", None, "characters that a Bearer token cannot carry"),
        ("alice:TopSecret1", "bob:TopSecret2\nalice:TopSecret3\n", "line 2: the name 'alice'"),
        (None, "# nothing yet\n\n", "holds no key"),
        (None, "bob TopSecret2\n", "line 1: expected name:secret"),
    ],
)
def test_malformed_key_configuration_is_refused_at_start_up(tmp_path, keys, lines, message):
    config = {"TESTING": True, "API_KEYS": keys}
    if lines is not None:
        config["API_KEYS_FILE"] = str(tmp_path / "keys")
        (tmp_path / "keys").write_text(lines)
    with pytest.raises(ApiKeyError, match=message) as refused:
        create_app(config)
    assert "TopSecret" not in str(refused.value)


def test_a_missing_keys_file_is_refused(tmp_path):
    missing = tmp_path / f"{uuid.uuid4().hex}.keys"
    with pytest.raises(ApiKeyError, match="cannot be read"):
        create_app({"TESTING": True, "API_KEYS_FILE": str(missing)})
