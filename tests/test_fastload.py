"""The fast loader (``modelspec.fast``) against marshmallow itself.

Over the test corpora (valid and invalid specs, Sequential and graphs), the
registry's examples and seeded mutations of valid specs (the fuzz tests'
junk values, unknown members, deleted members), the compiled loader
accepts exactly the bodies marshmallow accepts, with the same values (an
integer loaded as a float stays a float); a body it refuses is loaded by
marshmallow, so that the 422 is marshmallow's.
"""

import copy
import json
import random

import marshmallow as ma
import pytest
from corpus import generate
from graph_corpus import generate as generate_graphs
from specs import layer_graph
from test_fuzz import GRAPH_KEYS
from test_fuzz import graph_seeds
from test_fuzz import mutate
from test_fuzz import nodes
from test_fuzz import seeds

from modelspec import fast
from modelspec.fields import MAX_DEPTH
from modelspec.graph import graph_spec_schema
from modelspec.model import check_depth
from modelspec.model import load_model_spec
from modelspec.model import model_spec_schema
from seqlab import LAYERS


def canonical(value):
    """A value's JSON with sorted keys: 0 and 0.0, 1 and true differ."""
    return json.dumps(value, sort_keys=True)


def schema_of(body):
    return graph_spec_schema if "inputs" in body else model_spec_schema


def verdicts(body):
    """(marshmallow's result or None, the fast loader's result or None)."""
    schema = schema_of(body)
    try:
        expected = schema.load(body)
    except ma.ValidationError:
        expected = None
    try:
        got = fast.schema_loader(schema)(body)
    except ma.ValidationError:
        got = None
    return expected, got


def bodies():
    rng = random.Random(20260612)
    out = [*generate(300, seed=1), *generate_graphs(160, seed=1), *seeds(), *graph_seeds()]
    out += [layer_graph(t) for t in sorted(LAYERS)]
    sequential, graphs = seeds(), graph_seeds()
    out += [mutate(rng.choice(sequential), rng) for _ in range(700)]
    out += [mutate(rng.choice(graphs), rng, GRAPH_KEYS) for _ in range(700)]
    out += [b for seed in [*sequential, *graphs] for b in replaced_leaves(seed)]
    return [b for b in out if isinstance(b, dict) and schema_reaches(b)]


#: What every leaf of a seed is replaced with in turn: each kind of JSON
#: scalar, and values at the edges of the schema's ranges.
LEAVES = [None, True, False, 0, -1, 1, 2**31, 0.5, 1.0, 10**400, "", "x", "same", [], [1], {}]


def replaced_leaves(spec):
    """Copies of ``spec`` with one scalar (or empty container) replaced."""
    for path in nodes(spec):
        parent = spec
        for key in path[:-1]:
            parent = parent[key]
        if not path or isinstance(parent[path[-1]], dict | list) and parent[path[-1]]:
            continue
        for leaf in LEAVES:
            body = copy.deepcopy(spec)
            target = body
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = copy.deepcopy(leaf)
            yield body


def schema_reaches(body):
    """Whether ``load_model_spec`` hands the body to a schema (not too deep)."""
    try:
        check_depth(body)
    except ma.ValidationError:
        return False
    return True


BODIES = bodies()


def test_the_corpus_has_both_verdicts():
    valid = sum(verdicts(b)[0] is not None for b in BODIES)
    assert 400 < valid < len(BODIES) - 400


@pytest.mark.parametrize("index", range(0, len(BODIES), 500))
def test_fast_loader_agrees_with_marshmallow(index):
    for body in BODIES[index : index + 500]:
        expected, got = verdicts(body)
        assert (got is None) == (expected is None), body
        if got is not None:
            assert canonical(got) == canonical(expected), body
            # The model's members in the schema's order, as marshmallow's.
            assert list(got) == list(expected)


def test_a_refused_body_gets_marshmallows_errors():
    body = {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 0, "bogus": 1}]}
    with pytest.raises(ma.ValidationError) as fast_error:
        load_model_spec(body)
    with pytest.raises(ma.ValidationError) as error:
        model_spec_schema.load(body)
    assert fast_error.value.messages == error.value.messages


def deepest(value, depth=0):
    """The level of the deepest array or object in a JSON value (0: itself)."""
    below = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max([depth, *(deepest(v, depth + 1) for v in below if isinstance(v, dict | list))])


@pytest.mark.parametrize("levels", [60, 62, 63, 64, 65, 70])
def test_check_depth_refuses_exactly_what_nests_too_deep(levels):
    deep = []
    for _ in range(levels - 3):
        deep = [deep] if levels % 2 else {"config": deep}
    body = {"input_shape": [5, 1], "layers": [{"type": "Dense", "units": 1, "bias": deep}]}
    refused = deepest(body) >= MAX_DEPTH
    try:
        check_depth(body)
    except ma.ValidationError:
        assert refused
    else:
        assert not refused
