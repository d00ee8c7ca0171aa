"""No input makes the API answer 500: seeded mutations of valid specs for
POST /params; odd ids, page tokens and page sizes for the job routes.

Under ``TESTING`` Flask re-raises unhandled exceptions, so a crash fails the
test with its traceback instead of hiding behind a 500.
"""

import base64
import copy
import random
from urllib.parse import quote

import pytest
from openapi_check import validate_response

from seqlab import LAYERS

JUNK = [
    None, True, False, 0, -1, 1, 2, 3, 7, 2**31, 2**63, -(2**40), 0.5, -0.5, 1e308, 1.0,
    "", "x", "LSTM", "same", "causal", "relu", "glorot_uniform", [], [0], [-1], [1, 2],
    [2, 1], [None], [3, -1], {}, {"type": "Dense"}, {"type": "LSTM", "units": 2},
    {"class_name": "L2", "config": {"l2": 0.1}}, {"class_name": "Lambda", "config": {}},
]  # fmt: skip


def seeds():
    """One valid spec per registered layer (its example), plus stacks."""
    out = []
    for layer_type, layer_cls in sorted(LAYERS.items()):
        args, shape = layer_cls.example
        out.append({"input_shape": list(shape), "layers": [{"type": layer_type, **args}]})
    out.append(
        {
            "input_shape": [5, 1],
            "layers": [
                {
                    "type": "Bidirectional",
                    "layer": {"type": "GRU", "units": 3, "return_sequences": True},
                },
                {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1}},
            ],
        }
    )
    return out


def nodes(value, path=()):
    """Every (path, container) place inside a JSON value."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from nodes(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from nodes(item, (*path, i))


def mutate(spec, rng):
    spec = copy.deepcopy(spec)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(list(nodes(spec)))
        if not path:
            continue
        parent = spec
        for key in path[:-1]:
            parent = parent[key]
        key, action = path[-1], rng.random()
        if action < 0.6:
            parent[key] = copy.deepcopy(rng.choice(JUNK))
        elif action < 0.75 and isinstance(parent, dict):
            del parent[key]
        elif action < 0.9 and isinstance(parent, dict):
            parent[rng.choice(["units", "padding", "layer", "bogus", "name", "axis"])] = rng.choice(
                JUNK
            )
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(rng.choice(JUNK)))
    return spec


@pytest.mark.parametrize("seed", range(8))
def test_mutated_specs_never_fail_the_server(client, spec, seed):
    rng = random.Random(seed)
    statuses = set()
    for base in seeds():
        for _ in range(40):
            body = mutate(base, rng)
            rv = client.post("/params", json=body)
            assert rv.status_code in (200, 422), (body, rv.get_json())
            statuses.add(rv.status_code)
            if rv.status_code == 422 or rng.random() < 0.1:
                validate_response(spec, "/params", "post", rv)
    assert statuses == {200, 422}


# --- the job routes: odd ids, page tokens and page sizes ----------------------


def b64(text):
    return base64.urlsafe_b64encode(text.encode()).decode()


def odd_ids(job_id):
    """Path segments that are not job ids, as sent (percent-encoded where
    needed); the real job ``job_id`` has a model and data key beside it."""
    return [
        f"{job_id}:model", f"{job_id}:data", f"{job_id}:", job_id.upper(), job_id[:-1],
        f"{job_id}0", f" {job_id}", "x:model", "..", ".", "*", "seqlab:jobs", "%00",
        f"{job_id}%00", "a%2Fb", "%3F", "%20", "-1", "0", str(2**64), "9" * 5000, "1e400", "null",
        "a" * 10_000, "[" * 10_000, quote("ジョブ"), quote("\u202e" + job_id), quote("é" * 32),
    ]  # fmt: skip


@pytest.fixture
def jobs_with_files(idle_app):
    """Two queued jobs, one moved to running with a model file: every kind of
    key a job id could be made to reach exists in Redis."""
    client, store = idle_app.test_client(), idle_app.extensions["jobs"]
    ids = []
    for _ in range(2):
        rv = client.post("/train", json={"example": "one_to_one"})
        assert rv.status_code == 202
        ids.append(rv.get_json()["id"])
    store.claim(ids[0], "fuzz", "q", lease_seconds=600)  # running, its lease held
    store.put_model(ids[0], b"model")
    return ids


def test_odd_job_ids_are_404_on_every_job_route(idle_app, spec, jobs_with_files):
    client = idle_app.test_client()
    routes = [
        ("GET", "/jobs/{}", "/jobs/{job_id}"),
        ("GET", "/jobs/{}/model", "/jobs/{job_id}/model"),
        ("POST", "/jobs/{}/cancel", "/jobs/{job_id}/cancel"),
        ("DELETE", "/jobs/{}", "/jobs/{job_id}"),
    ]
    deep = "[" * 100_000  # a body no job route reads, however nested
    for odd in odd_ids(jobs_with_files[0]):
        for method, template, documented in routes:
            rv = client.open(template.format(odd), method=method, data=deep,
                             content_type="application/json")  # fmt: skip
            assert rv.status_code == 404, (method, odd[:80], rv.get_json())
            assert rv.content_type == "application/problem+json"
            validate_response(spec, documented, method, rv)
    # The jobs themselves are untouched.
    assert client.get(f"/jobs/{jobs_with_files[0]}").get_json()["status"] == "running"
    assert client.get(f"/jobs/{jobs_with_files[0]}/model").get_data() == b"model"


PAGE_SIZES = ["", "0", "-1", "101", "1.5", "1e3", "abc", str(2**63), str(2**70), "9" * 5000,
              "[]", "%00", "20", "1", "100", "\u0661\u0660"]  # fmt: skip


def page_tokens(job_id):
    """Tokens we never issued, and cursors of valid form at odd places."""
    bad = [
        "", "%%%", "MA==", "=", "=" * 1000, "a" * 10_000, "%00", quote("é"), b64(str(2**70)),
        b64("-1"), b64(f"{2**70}"), b64(f"nan:{job_id}"), b64(f"inf:{job_id}"),
        b64(f"-inf:{job_id}"), b64(f"1e400:{job_id}"), b64("1" * 5000 + f":{job_id}"),
        b64(f"1:{job_id}:model"), b64("1:x:model"), b64("1:"), b64(":"), b64("[" * 100_000),
        b64(f"1:{job_id.upper()}"), b64("(1:" + job_id), quote(b64("é") + "é"),
    ]  # fmt: skip
    good = [b64(f"{1e308!r}:{job_id}"), b64(f"{-1e308!r}:{job_id}"), b64(f"0.0:{'f' * 32}")]
    return bad, good


@pytest.mark.parametrize("seed", range(2))
def test_odd_page_sizes_and_tokens_are_422_never_500(idle_app, spec, jobs_with_files, seed):
    client = idle_app.test_client()
    bad, good = page_tokens(jobs_with_files[0])
    queries = [f"page_size={size}" for size in PAGE_SIZES]
    queries += [f"page_token={token}" for token in bad + good]
    rng = random.Random(seed)
    queries += [
        f"page_size={rng.choice(PAGE_SIZES)}&page_token={rng.choice(bad + good)}" for _ in range(40)
    ]
    for query in queries:
        rv = client.get(f"/jobs?{query}")
        assert rv.status_code in (200, 422), (query[:80], rv.get_json())
        validate_response(spec, "/jobs", "get", rv)
        if rv.status_code == 422:
            assert set(rv.get_json()["errors"]) <= {"page_size", "page_token"}
    for token in bad:
        rv = client.get(f"/jobs?page_token={token}")
        assert rv.status_code == 422, token[:80]
        assert "page_token" in rv.get_json()["errors"]
    for token in good:
        assert client.get(f"/jobs?page_token={token}").status_code == 200
