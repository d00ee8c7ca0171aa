"""No input makes POST /params answer 500: seeded mutations of valid specs.

Under ``TESTING`` Flask re-raises unhandled exceptions, so a crash fails the
test with its traceback instead of hiding behind a 500.
"""

import copy
import random

import pytest
from openapi_check import validate_response

from seqlab import LAYERS

JUNK = [
    None, True, False, 0, -1, 1, 2, 3, 7, 2**31, 2**63, -(2**40), 0.5, -0.5, 1e308, 1.0,
    "", "x", "LSTM", "same", "causal", "relu", "glorot_uniform", [], [0], [-1], [1, 2],
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
            parent[key] = junk(rng)
        elif action < 0.75 and isinstance(parent, dict):
            del parent[key]
        elif action < 0.9 and isinstance(parent, dict):
            parent[rng.choice(["units", "padding", "layer", "bogus", "name", "axis"])] = junk(rng)
        elif isinstance(parent, list):
            parent.append(junk(rng))
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
