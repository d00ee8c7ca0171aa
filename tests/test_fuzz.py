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
