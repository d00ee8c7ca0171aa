"""No input makes the API answer 500: seeded mutations of valid specs for
POST /params and of train requests for POST /train; odd ids, page tokens
and page sizes for the job routes.

Under ``TESTING`` Flask re-raises unhandled exceptions, so a crash fails the
test with its traceback instead of hiding behind a 500.
"""

import base64
import copy
import json
import random
from urllib.parse import quote

import pytest
from openapi_check import validate_response

from seqlab import LAYERS
from seqlab.examples import EXAMPLES
from seqlab.examples import example_request

JUNK = [
    None, True, False, 0, -1, 1, 2, 3, 7, 2**31, 2**63, -(2**40), 0.5, -0.5, 1e308, 1.0,
    "", "x", "LSTM", "same", "causal", "relu", "glorot_uniform", [], [0], [-1], [1, 2],
    "encoder[0][1]", "emb[1][0]", "dense[9][0]", "input_layer", "a[0][0", ["a", "b"],
    {"query": "a", "value": "b"}, {"call": "enc"}, ["tok", 0, 0], [["out", 0, 5]],
    [2, 1], [None], [3, -1], {}, {"type": "Dense"}, {"type": "LSTM", "units": 2},
    {"class_name": "L2", "config": {"l2": 0.1}}, {"class_name": "Lambda", "config": {}},
    # Integers JSON allows but a float cannot hold (OverflowError in float()).
    10**400, -(10**400), 2**1024, [10**400], {"class_name": "L2", "config": {"l2": 2**1024}},
]  # fmt: skip

#: Nesting deeper than the schema allows, yet shallow enough for the JSON
#: parser (about 1,000 levels), so that validation, not parsing, meets it.
DEEP = 600


def deep_list(depth=DEEP):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def deep_object(depth=DEEP):
    value = {}
    for _ in range(depth):
        value = {"config": value}
    return value


def deep_keras_object():
    return {"class_name": "L2", "config": {"l2": deep_list()}}


#: Made fresh for each use (deepcopy of a deep value would itself recurse).
DEEP_JUNK = [deep_list, deep_object, deep_keras_object]


def seeds():
    """One valid spec per registered layer (its example), plus stacks."""
    out = []
    for layer_type, layer_cls in sorted(LAYERS.items()):
        if layer_cls.call_form != "one":
            continue  # several tensors: not a Sequential model's layer
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
    out.append(
        {
            "input_shape": [5, 1],
            "layers": [
                {
                    "type": "Dense",
                    "units": 2,
                    "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.1}},
                    "kernel_initializer": {"class_name": "RandomNormal", "config": {"stddev": 1}},
                    "bias_constraint": "non_neg",
                },
            ],
        }
    )
    return out


def nodes(value, path=()):
    """Every (path, container) place inside a JSON value, down to 12 levels."""
    yield path
    if len(path) >= 12:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from nodes(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from nodes(item, (*path, i))


def junk(rng):
    if rng.random() < 0.1:
        return rng.choice(DEEP_JUNK)()
    return copy.deepcopy(rng.choice(JUNK))


#: Keys a mutation adds to an object of a Sequential spec, and of a graph.
SPEC_KEYS = ["units", "padding", "layer", "bogus", "name", "axis"]
GRAPH_KEYS = [*SPEC_KEYS, "inputs", "call", "initial_state", "outputs", "type", "mask",
              "use_causal_mask", "keras_history", "inbound_nodes", "args", "kwargs"]  # fmt: skip


def mutate(spec, rng, keys=SPEC_KEYS):
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
            parent[key] = junk(rng)
        elif action < 0.75 and isinstance(parent, dict):
            del parent[key]
        elif action < 0.9 and isinstance(parent, dict):
            parent[rng.choice(keys)] = junk(rng)
        elif isinstance(parent, list):
            parent.append(junk(rng))
    return spec


def kt(name, node=0, tensor=0):
    """A serialized KerasTensor, as ``to_json`` writes it."""
    history = [name, node, tensor]
    return {"class_name": "__keras_tensor__", "config": {"keras_history": history}}


def keras_layer(class_name, name, nodes, build=None, **config):
    """A layer of a Functional ``to_json`` (configs trimmed to what matters)."""
    obj = {"module": "keras.layers", "class_name": class_name,
           "config": {"name": name, **config}, "name": name, "inbound_nodes": nodes}  # fmt: skip
    if build is not None:
        obj["build_config"] = {"input_shape": build}
    return obj


def functional_json():
    """``to_json`` of Embedding(mask_zero) → LSTM with states → Dense, two inputs."""
    tok = {"class_name": "InputLayer", "name": "tok", "inbound_nodes": [],
           "config": {"batch_shape": [None, 6], "dtype": "int32", "name": "tok"}}  # fmt: skip
    dec = {"class_name": "InputLayer", "name": "dec", "inbound_nodes": [],
           "config": {"batch_shape": [None, 4, 3], "dtype": "float32", "name": "dec"}}  # fmt: skip
    not_equal = {"module": "keras.src.ops.numpy", "class_name": "NotEqual", "name": "not_equal",
                 "config": {"name": "not_equal"},
                 "inbound_nodes": [{"args": [kt("tok"), 0], "kwargs": {}}]}  # fmt: skip
    layers = [
        tok,
        dec,
        keras_layer("Embedding", "emb", [{"args": [kt("tok")], "kwargs": {}}], [None, 6],
                    input_dim=10, output_dim=4, mask_zero=True),
        not_equal,
        keras_layer("LSTM", "enc", [{"args": [kt("emb")], "kwargs": {
            "training": False, "mask": kt("not_equal")}}], [None, 6, 4],
            units=5, return_state=True),
        keras_layer("GRU", "gru", [{"args": [kt("dec")], "kwargs": {
            "initial_state": [kt("enc", 0, 1)]}}], None, units=5, return_sequences=True),
        keras_layer("Dense", "out", [{"args": [kt("gru")], "kwargs": {}}], [None, 4, 5], units=2,
                    dtype={"class_name": "DTypePolicy", "config": {"name": "float32"}}),
    ]  # fmt: skip
    config = {"name": "functional", "trainable": True, "layers": layers,
              "input_layers": [["tok", 0, 0], ["dec", 0, 0]],
              "output_layers": ["out", 0, 0]}  # fmt: skip
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": config, "registered_name": "Functional"}  # fmt: skip


def graph_seeds():
    """Valid graphs: each layer of several tensors on its example, and the
    model families of Functional models (states, attention, shared layers,
    keyword calls, several outputs), in the compact form and as to_json."""
    out = []
    for layer_type, layer_cls in sorted(LAYERS.items()):
        if layer_cls.call_form == "one":
            continue
        args, shapes = layer_cls.example
        inputs = [{"name": f"in_{i}", "shape": list(s)} for i, s in enumerate(shapes)]
        entry = {"type": layer_type, **args, "inputs": [x["name"] for x in inputs]}
        out.append({"inputs": inputs, "layers": [entry]})
    out.append(
        {
            "name": "seq2seq",
            "inputs": [{"name": "source", "shape": [7, 3]}, {"name": "target", "shape": [5, 4]}],
            "layers": [
                {
                    "type": "LSTM",
                    "units": 8,
                    "return_state": True,
                    "return_sequences": True,
                    "name": "encoder",
                    "inputs": "source",
                },
                {
                    "type": "LSTM",
                    "units": 8,
                    "return_sequences": True,
                    "name": "decoder",
                    "inputs": "target",
                    "initial_state": ["encoder[0][1]", "encoder[0][2]"],
                },
                {"type": "Attention", "inputs": ["decoder", "encoder"], "use_causal_mask": True},
                {"type": "Concatenate", "inputs": ["decoder", "attention"]},
                {"type": "Dense", "units": 2},
            ],
            "outputs": "dense",
        }
    )
    out.append(
        {
            "inputs": [
                {"name": "a", "shape": [5], "dtype": "int32"},
                {"name": "b", "shape": [5], "dtype": "int32"},
            ],
            "layers": [
                {
                    "type": "Embedding",
                    "input_dim": 20,
                    "output_dim": 4,
                    "mask_zero": True,
                    "name": "emb",
                    "inputs": "a",
                },
                {"type": "Bidirectional", "layer": {"type": "GRU", "units": 3}, "name": "enc"},
                {"call": "emb", "inputs": "b"},
                {"call": "enc", "inputs": "emb[1][0]"},
                {"type": "Subtract", "inputs": ["enc", "enc[1][0]"]},
            ],
        }
    )
    out.append(
        {
            "inputs": [{"shape": [9, 16], "batch_size": 2}],
            "layers": [
                {
                    "type": "MultiHeadAttention",
                    "num_heads": 2,
                    "key_dim": 8,
                    "inputs": {"query": "input_layer", "value": "input_layer"},
                    "return_attention_scores": True,
                },
                {"type": "Add", "inputs": ["input_layer", "multi_head_attention"]},
                {"type": "LayerNormalization"},
                {"type": "GlobalAveragePooling1D"},
                {"type": "Dense", "units": 3, "trainable": False},
            ],
            "outputs": ["dense", "multi_head_attention[0][1]"],
        }
    )
    out.append(functional_json())
    out.append(json.dumps(functional_json()))
    return out  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_mutated_graphs_never_fail_the_server(client, spec, seed):
    rng = random.Random(seed)
    statuses = set()
    for base in graph_seeds():
        rv = client.post("/params", json=base)
        assert rv.status_code == 200, (base, rv.get_json())
        if isinstance(base, str):
            continue
        for _ in range(40):
            body = mutate(base, rng, GRAPH_KEYS)
            rv = client.post("/params", json=body)
            assert rv.status_code in (200, 422), (body, rv.get_json())
            statuses.add(rv.status_code)
            if rv.status_code == 422 or rng.random() < 0.1:
                validate_response(spec, "/params", "post", rv)
    assert statuses == {200, 422}


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


# -- POST /train: hostile data, compile and fit ------------------------------

#: Values that break a train request's data or settings in as many ways as
#: possible: integers no float64 holds, bools, strings, lists, objects.
TRAIN_JUNK = [
    10**400, -(10**400), 10**309, 2**64, 2**31, 300, 256, -1, 0, 1, 2, 7, 0.5, 1.7, -0.0,
    1e39, 65520, 1e308, True, False, None, "", "1", "x", [], [[]], [1], [[1, 2], [3]], {},
    {"x": 1}, "adam", "mse", "sparse_categorical_crossentropy",
]  # fmt: skip
DTYPES = ["float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "bool"]


def train_seeds():
    """The seed examples, and models whose data have value rules."""
    out = [{"example": name} for name in sorted(EXAMPLES)]
    out.append(
        {
            "model": {
                "input_shape": [3],
                "dtype": "int32",
                "layers": [
                    {"type": "Embedding", "input_dim": 5, "output_dim": 2},
                    {"type": "Flatten"},
                    {"type": "Dense", "units": 3, "activation": "softmax"},
                ],
            },
            "data": {"x": [[0, 1, 4], [3, 2, 1]], "y": [[2], [0]]},
            "compile": {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
            "fit": {"epochs": 2, "batch_size": 1},
        }
    )
    out.append(
        {
            "model": {
                "input_shape": [3, 1],
                "batch_size": 2,
                "layers": [
                    {"type": "LSTM", "units": 2, "stateful": True},
                    {"type": "Dropout", "rate": 0.5, "noise_shape": [1, 2]},
                ],
            },
            "data": {"x": [[[0.1]] * 3] * 4, "y": [[0.5, 0.5]] * 4},
            "fit": {"batch_size": 2, "validation_split": 0.5},
        }
    )
    # Functional models: data by input/output name and in order, a token
    # input read by an Embedding, losses and loss weights per output.
    graph = {
        "inputs": [{"name": "tok", "shape": [3], "dtype": "int32"}, {"name": "vec", "shape": [2]}],
        "layers": [
            {"type": "Embedding", "input_dim": 5, "output_dim": 2, "inputs": "tok"},
            {"type": "Flatten"},
            {"type": "Concatenate", "inputs": ["flatten", "vec"]},
            {"type": "Dense", "units": 3, "activation": "softmax", "name": "cls"},
            {"type": "Dense", "units": 1, "name": "reg", "inputs": "concatenate"},
        ],
        "outputs": ["cls", "reg"],
    }
    x = {"tok": [[0, 1, 4], [3, 2, 1]], "vec": [[0.5, 1.0], [2.0, -1.0]]}
    out.append(
        {
            "model": graph,
            "data": {"x": x, "y": {"cls": [[2], [0]], "reg": [[0.1], [0.2]]}},
            "compile": {
                "loss": {"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                "loss_weights": {"cls": 1.0, "reg": 0.5},
                "metrics": {"cls": ["accuracy"]},
            },
            "fit": {"epochs": 2, "batch_size": 1},
        }
    )
    out.append(
        {
            "model": graph,
            "data": {"x": [x["tok"], x["vec"]], "y": [[[0, 1, 0]] * 2, [[0.1], [0.2]]]},
            "compile": {"loss": ["categorical_crossentropy", "mse"], "loss_weights": [1, 2]},
            "fit": {"epochs": 2, "batch_size": 1, "validation_split": 0.5},
        }
    )
    return out


def leaf_paths(value, path=()):
    """Every place inside ``value``, lists and objects included."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaf_paths(item, (*path, i))


def put(body, path, value):
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value


def mutate_train(body, rng):
    """One to three hostile edits of a train request; returns the body and,
    for very deep nesting (which json.dumps cannot write), its JSON text."""
    body = copy.deepcopy(body)
    deep = None
    if "example" in body:
        body = {**example_request(body["example"]), **body}
    for _ in range(rng.randint(1, 3)):
        action = rng.random()
        data = body.get("data")
        name = rng.choice(["x", "y"])
        if action < 0.55 and not (isinstance(data, dict) and name in data):
            continue  # an earlier edit replaced the data
        if action < 0.45:  # a value somewhere in the data
            path = rng.choice(list(leaf_paths(data[name])))
            if path:
                put(data[name], path, copy.deepcopy(rng.choice(TRAIN_JUNK)))
            else:
                data[name] = copy.deepcopy(rng.choice(TRAIN_JUNK))
        elif action < 0.55:  # ragged: one list longer or shorter
            tensor = data[name]
            lists = [p for p in leaf_paths(tensor) if isinstance(get(tensor, p), list)]
            if not lists:
                continue
            target = get(tensor, rng.choice(lists))
            if target and rng.random() < 0.5:
                target.pop()
            else:
                target.append(copy.deepcopy(target[0]) if target else 0)
        elif action < 0.62:  # deep nesting
            depth = rng.choice([40, 400, 4000, 40_000])
            deep = (name, depth)
        elif action < 0.82:  # compile and fit
            section = rng.choice(["compile", "fit"])
            key = rng.choice(
                {
                    "compile": [
                        "optimizer",
                        "loss",
                        "loss_weights",
                        "metrics",
                        "learning_rate",
                        "bogus",
                    ],
                    "fit": ["epochs", "batch_size", "shuffle", "validation_split", "bogus"],
                }[section]
            )
            if not isinstance(body.get(section), dict):
                body[section] = {}
            body[section][key] = copy.deepcopy(rng.choice(TRAIN_JUNK))
        elif action < 0.92:  # another input dtype for the same data
            body["model"]["dtype"] = rng.choice(DTYPES)
        else:  # the top level
            body[rng.choice(["data", "seed", "compile", "fit"])] = copy.deepcopy(
                rng.choice(TRAIN_JUNK)
            )
    if deep is None:
        return body, None
    tensor, depth = deep
    if isinstance(body.get("data"), dict):
        body["data"][tensor] = "DEEP"
    text = json.dumps(body).replace('"DEEP"', "[" * depth + "0" + "]" * depth)
    return body, text


def get(value, path):
    for key in path:
        value = value[key]
    return value


@pytest.mark.parametrize("seed", range(4))
def test_hostile_train_bodies_never_fail_the_server(idle_app, spec, seed):
    """Huge integers, deep nesting, ragged lists, bools and strings at
    random places in the data, compile and fit: never a 500, and nothing
    queued for a refusal."""
    client = idle_app.test_client()
    jobs = idle_app.extensions["jobs"]
    rng = random.Random(seed)
    statuses = set()
    for base in train_seeds():
        for _ in range(30):
            body, text = mutate_train(base, rng)
            before = jobs.count()
            if text is None:
                rv = client.post("/train", json=body)
            else:
                rv = client.post("/train", data=text, content_type="application/json")
            assert rv.status_code in (202, 400, 422), (body, rv.get_json())
            statuses.add(rv.status_code)
            if rv.status_code == 202:
                assert jobs.count() == before + 1
                client.delete(f"/jobs/{rv.get_json()['id']}")  # never trained
            else:
                assert jobs.count() == before, (body, rv.get_json())
                validate_response(spec, "/train", "post", rv)
    assert {202, 422} <= statuses


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


def places(spec):
    """Every place in ``spec`` (paths into objects and lists), the root aside."""
    return [path for path in nodes(spec) if path]


def replaced(spec, path, value):
    spec = copy.deepcopy(spec)
    parent = spec
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return spec


@pytest.mark.parametrize("make", [lambda: 10**400, lambda: -(10**400), lambda: 2**1024, *DEEP_JUNK])
def test_huge_integers_and_deep_nesting_anywhere_are_422(client, spec, make):
    """At every place of every seed spec: a 422 naming the place, or a
    field on the way to it, never a crash."""
    for base in seeds():
        for path in places(base):
            rv = client.post("/params", json=replaced(base, path, make()))
            assert rv.status_code == 422, (path, rv.get_json())
            dotted = ".".join(map(str, path))
            errors = rv.get_json()["errors"]
            assert any(dotted.startswith(key) or key.startswith(dotted) for key in errors), (
                dotted,
                errors,
            )
    validate_response(spec, "/params", "post", rv)


@pytest.mark.parametrize("make", [lambda: 10**400, lambda: 2**1024, *DEEP_JUNK])
def test_huge_integers_and_deep_nesting_in_graphs_are_422(client, spec, make):
    """The same at every place of every compact graph seed; in a Functional
    ``to_json`` document, where Keras ignores some places (a tensor's stored
    shape, ``training``), never a crash."""
    for base in graph_seeds():
        if isinstance(base, str):
            continue
        keras_json = "class_name" in base
        for path in places(base):
            rv = client.post("/params", json=replaced(base, path, make()))
            if keras_json:
                assert rv.status_code in (200, 422), (path, rv.get_json())
                continue
            assert rv.status_code == 422, (path, rv.get_json())
            dotted = ".".join(map(str, path))
            errors = rv.get_json()["errors"]
            assert any(dotted.startswith(key) or key.startswith(dotted) for key in errors), (
                dotted,
                errors,
            )
    validate_response(spec, "/params", "post", rv)
