"""service/sweeps/views.py without a worker: what POST /sweeps checks and
writes, and the routes of a queued sweep (its queue has no worker: the
trials stay queued). A sweep trained by a real worker: tests/test_sweep_train.py."""

import uuid

import pytest
import redis

from service import create_app

MANY_TO_ONE = {
    "example": "many_to_one",
    "vary": {"seed": [0, 1], "compile.learning_rate": [0.01, 0.05]},
}


def keys_of(redis_url, sweep_or_job_ids=()):
    return set(redis.Redis.from_url(redis_url).keys("seqlab:*"))


@pytest.fixture
def client(idle_app):
    return idle_app.test_client()


def test_a_sweep_is_queued_with_a_job_per_trial_and_one_model(client):
    response = client.post("/sweeps", json=MANY_TO_ONE)
    assert response.status_code == 202, response.get_json()
    sweep = response.get_json()
    assert response.headers["Location"] == f"/sweeps/{sweep['id']}"
    assert sweep["status"] == "queued"
    assert sweep["trial_count"] == 4
    assert sweep["trial_statuses"] == {"queued": 4}
    assert sweep["objective"] == {"metric": "loss", "mode": "min"}
    assert sweep["best"] is None
    assert [t["values"] for t in sweep["trials"]] == [
        {"seed": 0, "compile.learning_rate": 0.01},
        {"seed": 0, "compile.learning_rate": 0.05},
        {"seed": 1, "compile.learning_rate": 0.01},
        {"seed": 1, "compile.learning_rate": 0.05},
    ]
    # One structure: LSTM(5) on 1 feature, 4 × ((1 + 5) × 5 + 5) = 140, + Dense(5) 30.
    assert len(sweep["models"]) == 1
    assert sweep["models"][0]["trials"] == [0, 1, 2, 3]
    assert sweep["models"][0]["total_params"] == 170
    assert all(t["total_params"] == 170 for t in sweep["trials"])
    # Each trial is a job of its own, with its values, named by its sweep.
    job = client.get(sweep["trials"][3]["links"]["job"]).get_json()
    assert job["status"] == "queued"
    assert job["sweep"] == {"id": sweep["id"], "trial": 3}
    assert job["request"]["seed"] == 1
    assert job["request"]["compile"]["learning_rate"] == 0.05
    # ... that the jobs list does not show: its sweep lists it.
    listed = {j["id"] for j in client.get("/jobs?page_size=100").get_json()["jobs"]}
    assert not listed & {t["job"] for t in sweep["trials"]}
    assert client.get(f"/sweeps/{sweep['id']}").get_json()["trials"] == sweep["trials"]
    assert sweep["id"] in {s["id"] for s in client.get("/sweeps").get_json()["sweeps"]}


def test_the_data_is_stored_once_for_every_trial(client, redis_url):
    sweep = client.post("/sweeps", json=MANY_TO_ONE).get_json()
    db = redis.Redis.from_url(redis_url)
    assert db.get(f"seqlab:sweep:{sweep['id']}:data") is not None
    for trial in sweep["trials"]:
        assert db.get(f"seqlab:job:{trial['job']}:data") == f'{{"sweep": "{sweep["id"]}"}}'.encode()


def test_trials_of_other_widths_are_other_models(client):
    body = {"example": "many_to_one", "vary": {"model.layers.0.units": [4, 8], "seed": [0, 1]}}
    sweep = client.post("/sweeps", json=body).get_json()
    assert [m["trials"] for m in sweep["models"]] == [[0, 1], [2, 3]]
    # LSTM(4): 4 × ((1 + 4) × 4 + 4) = 96, + Dense(5) 25;
    # LSTM(8): 4 × ((1 + 8) × 8 + 8) = 320, + 45.
    assert [m["total_params"] for m in sweep["models"]] == [121, 365]
    assert [t["total_params"] for t in sweep["trials"]] == [121, 121, 365, 365]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"example": "many_to_one"}, "vary", "Missing data"),
        ({"example": "many_to_one", "vary": {"data.x": [[1]]}}, "vary.data.x", "shared by every"),
        ({"example": "many_to_one", "vary": {"seed": []}}, "vary.seed", "non-empty list"),
        (
            {"example": "many_to_one", "vary": {"model.layers.0.units": [4, 0]}},
            "model.layers.0.units",
            "trial 1 (model.layers.0.units = 0): Must be greater than or equal to 1",
        ),
        (
            {"example": "many_to_one", "vary": {"seed": [0], "fit.batch_size": [1, "x"]}},
            "fit.batch_size",
            "trial 1 (seed = 0, fit.batch_size = 'x'): Not a valid integer.",
        ),
        (
            {"example": "many_to_one", "vary": {"model.layers.2.units": [3]}},
            "vary.model.layers.2.units",
            "model.layers is a list of 2 items",
        ),
        (
            {"example": "many_to_one", "vary": {"seed": [0]}, "objective": {"metric": "val_loss"}},
            "objective.metric",
            "trial 0 logs loss. Received: 'val_loss'",
        ),
        (
            {
                "example": "many_to_one",
                "vary": {"seed": [0]},
                "objective": {"metric": "loss", "mode": "up"},
            },
            "objective.mode",
            "Must be one of: min, max.",
        ),
        (
            {"example": "nope", "vary": {"seed": [0]}},
            "example",
            "Must be one of",
        ),
        (
            # The model's input does not fit the data (5 steps of 1 feature).
            {"example": "many_to_one", "vary": {"model.input_shape": [[5, 1], [5, 2]]}},
            "data.x",
            "trial 1 (model.input_shape = [5, 2])",
        ),
    ],
)
def test_a_bad_sweep_is_a_422_naming_the_field_and_nothing_is_written(
    client, redis_url, body, field, words
):
    before = keys_of(redis_url)
    response = client.post("/sweeps", json=body)
    problem = response.get_json()
    assert response.status_code == 422, problem
    assert response.content_type == "application/problem+json"
    assert field in problem["errors"], problem
    assert words in " ".join(problem["errors"][field]) + problem["detail"]
    assert keys_of(redis_url) - before == set()


def test_the_trial_limit_is_configurable(redis_url):
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": "idle-x",
                      "SEQLAB_MAX_TRIALS": 3})  # fmt: skip
    response = app.test_client().post("/sweeps", json=MANY_TO_ONE)
    assert response.status_code == 422
    assert (
        "The sweep has 2 × 2 = 4 trials, over the limit of 3 (SEQLAB_MAX_TRIALS)"
        in (response.get_json()["errors"]["vary"][0])
    )


def test_trials_that_train_together_are_counted_together(redis_url, idle_app):
    """One trial fits the worker's memory; 32 trained at once do not."""
    lone = idle_app.test_client().post("/train", json={"example": "many_to_one"}).get_json()
    memory = lone["estimated_cost"]["worker_memory_bytes"]
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": "idle-y",
                      "SEQLAB_WORKER_MEMORY_BYTES": memory * 4})  # fmt: skip
    client = app.test_client()
    assert client.post("/sweeps", json={**MANY_TO_ONE, "vary": {"seed": [0, 1]}}).status_code == 202
    response = client.post("/sweeps", json={**MANY_TO_ONE, "vary": {"seed": list(range(32))}})
    assert response.status_code == 422
    message = response.get_json()["errors"]["vary"][0]
    assert "The 32 trials of one model structure (trials 0…31) train together" in message
    assert "SEQLAB_WORKER_MEMORY_BYTES" in message
    # Apart (other structures), the same trials fit.
    apart = {"example": "many_to_one", "vary": {"model.layers.0.units": list(range(1, 9))}}
    assert client.post("/sweeps", json=apart).status_code == 202


def test_what_a_sweep_keeps_in_redis_is_bounded(redis_url):
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": "idle-z",
                      "SEQLAB_MAX_SWEEP_STORED_BYTES": 100_000})  # fmt: skip
    response = app.test_client().post(
        "/sweeps", json={**MANY_TO_ONE, "vary": {"seed": list(range(64))}}
    )
    assert response.status_code == 422
    assert "SEQLAB_MAX_SWEEP_STORED_BYTES" in response.get_json()["errors"]["vary"][0]


def test_a_queued_sweep_is_cancelled_at_once_then_deleted_with_its_trials(client, redis_url):
    sweep = client.post("/sweeps", json=MANY_TO_ONE).get_json()
    assert client.delete(f"/sweeps/{sweep['id']}").status_code == 409
    response = client.post(f"/sweeps/{sweep['id']}/cancel")
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert response.get_json()["trial_statuses"] == {"cancelled": 4}
    assert client.post(f"/sweeps/{sweep['id']}/cancel").status_code == 409
    assert client.delete(f"/sweeps/{sweep['id']}").status_code == 204
    assert client.get(f"/sweeps/{sweep['id']}").status_code == 404
    for trial in sweep["trials"]:
        assert client.get(f"/jobs/{trial['job']}").status_code == 404
    left = [
        k for k in redis.Redis.from_url(redis_url).keys("seqlab:*") if sweep["id"].encode() in k
    ]
    assert left == []


def test_a_trials_model_before_it_trained_is_a_409_and_an_unknown_trial_a_404(client):
    sweep = client.post("/sweeps", json=MANY_TO_ONE).get_json()
    assert client.get(f"/sweeps/{sweep['id']}/trials/0/model").status_code == 409
    for number in ("4", "-1", "x"):
        assert client.get(f"/sweeps/{sweep['id']}/trials/{number}/model").status_code == 404
    assert client.get(f"/sweeps/{sweep['id']}/plot.png").status_code == 409


@pytest.mark.parametrize("sweep_id", ["0" * 32, "nope", "x" * 200])
def test_an_unknown_sweep_is_a_404_on_every_route(client, sweep_id):
    for method, path in [
        ("get", ""), ("delete", ""), ("post", "/cancel"), ("get", "/events"), ("get", "/plot.svg"),
        ("get", "/trials/0/model"), ("post", "/trials/0/predict"),
    ]:  # fmt: skip
        response = getattr(client, method)(f"/sweeps/{sweep_id}{path}", json={"instances": []})
        assert response.status_code == 404, (method, path)
        assert response.content_type == "application/problem+json"


def test_another_tenants_sweep_looks_exactly_like_a_missing_one(tenants, redis_url):
    app = tenants.app(redis_url, f"idle-{uuid.uuid4().hex[:8]}")
    client = app.test_client()
    sweep = client.post("/sweeps", json=MANY_TO_ONE, headers=tenants.bearer("alice")).get_json()
    for path in (f"/sweeps/{sweep['id']}", f"/sweeps/{sweep['id']}/trials/0/model"):
        theirs = client.get(path, headers=tenants.bearer("bob"))
        missing = client.get(path.replace(sweep["id"], "0" * 32), headers=tenants.bearer("bob"))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.get_json()["detail"] == missing.get_json()["detail"].replace(
            "0" * 32, sweep["id"]
        )
    assert client.get("/sweeps", headers=tenants.bearer("bob")).get_json()["sweeps"] == []
    assert (
        client.get(f"/jobs/{sweep['trials'][0]['job']}", headers=tenants.bearer("bob")).status_code
        == 404
    )
    mine = client.get("/sweeps", headers=tenants.bearer("alice")).get_json()["sweeps"]
    assert [s["id"] for s in mine] == [sweep["id"]]


def test_an_idempotency_key_gives_the_first_sweep_again(client):
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = client.post("/sweeps", json=MANY_TO_ONE, headers=headers)
    again = client.post("/sweeps", json=MANY_TO_ONE, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]


def test_an_unreachable_queue_is_a_503_and_nothing_is_left_written(redis_url):
    from conftest import free_port

    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SEQLAB_QUEUE": "idle-q"})
    # Records go to the test Redis; the producer's broker is a port nothing listens on.
    app.extensions["celery"].conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    before = keys_of(redis_url)
    response = app.test_client().post("/sweeps", json=MANY_TO_ONE)
    assert response.status_code == 503
    assert keys_of(redis_url) - before == set()


def test_the_datas_values_are_checked_against_each_model_structure(client, redis_url):
    """Values are read once per structure, not once per trial: a second
    structure that the same values do not fit is still refused."""
    before = keys_of(redis_url)
    body = {"example": "many_to_one", "vary": {"seed": [0, 1], "model.dtype": ["float32", "uint8"]}}
    response = client.post("/sweeps", json=body)
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert any(
        "trial 1 (seed = 0, model.dtype = 'uint8')" in m for ms in errors.values() for m in ms
    )
    assert keys_of(redis_url) - before == set()
