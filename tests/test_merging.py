# ruff: noqa: E501 (Keras's messages are quoted whole, one case a line)
"""The merging layers (seqlab/layers/merging.py) against Keras 3.15.

A seeded sweep of calls (shapes, arguments, valid and invalid) built with
``keras.layers.<type>(**args)`` on ``keras.Input``s and compared with the
registry's answer: output shape, weights, and the refusal's text; the
reference's worked examples; and the Sequential path's refusals.
"""

from __future__ import annotations

import random
from typing import Any

import keras_oracle as oracle
import pytest
from call_oracle import differences
from call_oracle import engine_call
from call_oracle import engine_layer
from call_oracle import graph_answer
from call_oracle import graph_spec
from call_oracle import keras_call

from seqlab import SpecError
from seqlab import analyze

ELEMENTWISE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
DIMS = (None, 1, 2, 3, 3, 4)


def _derive(rng: random.Random, base: tuple[Any, ...]) -> tuple[Any, ...]:
    """A shape that broadcasts against ``base`` most of the time."""
    shape = list(base)
    for i in range(len(shape)):
        if rng.random() < 0.2:
            shape[i] = rng.choice((1, None))
    if shape and rng.random() < 0.2:
        shape = shape[rng.randint(1, len(shape)) :]  # drop leading axes
    if rng.random() < 0.1:
        shape = [rng.choice(DIMS) for _ in range(rng.randint(0, 3))]  # anything
    return tuple(shape)


def _batch(rng: random.Random) -> int | None:
    return rng.choice((None,) * 8 + (2, 3))


def merge_case(rng: random.Random) -> tuple[str, dict[str, Any], list[tuple[Any, ...]]]:
    """One random call of a merging layer: (type, args, input shapes)."""
    type_ = rng.choice((*ELEMENTWISE, "Concatenate", "Concatenate", "Dot", "Dot"))
    base = tuple(rng.choice(DIMS) for _ in range(rng.randint(0, 3)))
    args: dict[str, Any] = {}
    if type_ in ("Subtract", "Dot"):
        n = rng.choice((2,) * 8 + (1, 3))
    else:
        n = rng.randint(1, 4)
    if type_ == "Concatenate":
        axis = rng.choice((-1, -1, -1, 1, 2, -2, 0, 3, -4))
        args = {"axis": axis}
        shapes = []
        for _ in range(n):
            shape = list(base) if rng.random() < 0.8 else list(_derive(rng, base))
            at = axis - 1 if axis > 0 else axis  # the axis in the non-batch shape
            if axis and -len(shape) <= at < len(shape):
                shape[at] = rng.choice(DIMS)
            shapes.append((_batch(rng), *shape))
        return type_, args, shapes
    if type_ == "Dot":
        base = base or (3,)
        axes: Any = rng.choice((-1, 1, 2, [1, 2], [2, 1], [-1, 1], [1, -1], 0, 3))
        args = {"axes": axes, "normalize": rng.random() < 0.3}
        first = (None, *base)
        second = (None, *rng.sample(base, len(base))) if rng.random() < 0.5 else first
        shapes = [first, second] + [first] * (n - 2)
        return type_, args, shapes[:n]
    shapes = [(_batch(rng), *_derive(rng, base)) for _ in range(n)]
    return type_, args, shapes


SWEEP = [merge_case(random.Random(seed)) for seed in range(160)]


@pytest.mark.keras
def test_a_sweep_of_calls_agrees_with_keras() -> None:
    problems, verdicts = [], {"valid": 0, "invalid": 0}
    for type_, args, shapes in SWEEP:
        keras = keras_call(type_, args, shapes)
        engine = engine_call(type_, args, shapes)
        verdicts["invalid" if isinstance(keras, str) else "valid"] += 1
        for line in differences(engine, keras):
            problems.append(f"{type_}({args}) on {shapes}: {line}")
    assert not problems, "\n".join(problems[:20])
    # The sweep must exercise both sides of the rules.
    assert verdicts["valid"] >= 60 and verdicts["invalid"] >= 25, verdicts


@pytest.mark.keras
def test_the_sweep_through_the_graph_engine_agrees_with_keras() -> None:
    """The same calls as one-layer Functional models of the compact form."""
    problems = []
    for type_, args, shapes in SWEEP[:80]:
        keras = keras_call(type_, args, shapes)
        engine = graph_answer(graph_spec(type_, args, shapes))
        for line in differences(engine, keras):
            problems.append(f"{type_}({args}) on {shapes}: {line}")
    assert not problems, "\n".join(problems[:20])


# The reference's worked examples (keras-functional.md §3), hand-checked.
N = None
SHAPES = [
    ("Add", {}, [(N, N, 4), (N, 7, 4)], (N, N, 4)),
    ("Add", {}, [(N, 5, 3), (N, 3)], (N, 5, 3)),
    ("Add", {}, [(N, 5, 3), (N,)], (N, 5, 3)),
    ("Multiply", {}, [(N, 5, 1), (N, 1, 4)], (N, 5, 4)),
    ("Maximum", {}, [(N, 3), (N, 5, 3, 1)], (N, 5, 3, 3)),
    ("Average", {}, [(8, 3), (N, 3)], (8, 3)),
    ("Add", {}, [(N, 3)], (N, 3)),
    ("Concatenate", {}, [(N, N, 3), (N, 5, 3)], (N, N, 6)),
    ("Concatenate", {"axis": 1}, [(N, 5, 3), (N, N, 3)], (N, N, 3)),
    ("Concatenate", {}, [(N, 5, 3), (N, N, 3)], (N, 5, 6)),
    ("Concatenate", {"axis": 0}, [(N, 5, 3), (N, 5, 3)], (N, 5, 3)),
    ("Dot", {"axes": 1}, [(N, 8), (N, 8)], (N, 1)),
    ("Dot", {"axes": [1, 2]}, [(N, 5, 2), (N, 2, 5)], (N, 2, 2)),
    ("Dot", {"axes": [1, 2]}, [(N, 3, 5), (N, 10, 3)], (N, 5, 10)),
    ("Dot", {"axes": 1}, [(N, 4, 6), (N, 4, 7)], (N, 6, 7)),
    ("Dot", {"axes": -1, "normalize": True}, [(N, 4, 6), (N, 7, 6)], (N, 4, 7)),
]


@pytest.mark.parametrize(("type_", "args", "shapes", "expected"), SHAPES)
def test_output_shapes_of_the_reference(type_, args, shapes, expected) -> None:
    layer = engine_layer(type_, args)
    assert layer.call_output(shapes, {}) == expected
    assert layer.variables(shapes) == [] and layer.formula(shapes) == "0"


REFUSALS = [
    ("Add", {}, [(N, 5, 3), (N, 6, 3)], "Inputs have incompatible shapes. Received shapes (5, 3) and (6, 3)"),
    ("Add", {}, [(2, 3), (3, 3)], "Cannot merge tensors with different batch sizes. Received tensors with shapes [(2, 3), (3, 3)]"),
    ("Subtract", {}, [(N, 3)] * 3, "A `Subtract` layer should be called on exactly 2 inputs. Received: input_shape=[(None, 3), (None, 3), (None, 3)]"),
    ("Concatenate", {}, [(N, 5, 3), (N, 6, 3)], "A `Concatenate` layer requires inputs with matching shapes except for the concatenation axis. Received: input_shape=[(None, 5, 3), (None, 6, 3)]"),
    ("Concatenate", {"axis": 1}, [(N, 5, 1), (N, 5, 3)], "A `Concatenate` layer requires inputs with matching shapes except for the concatenation axis."),
    ("Dot", {"axes": 1}, [(N, 5), (N, 6)], "Incompatible input shapes: axis values 5 (at axis 1) != 6 (at axis 1). Full input shapes: (None, 5), (None, 6)"),
    ("Dot", {"axes": 1}, [(N, N), (N, 6)], "Incompatible input shapes: axis values None (at axis 1) != 6 (at axis 1)."),
    ("Dot", {"axes": 1}, [(N, 5)] * 3, "A `Dot` layer should be called on a list of 2 inputs. Received: input_shape=[(None, 5), (None, 5), (None, 5)]"),
]  # fmt: skip


@pytest.mark.parametrize(("type_", "args", "shapes", "message"), REFUSALS)
def test_refusals_quote_keras(type_, args, shapes, message) -> None:
    with pytest.raises(SpecError) as caught:
        engine_layer(type_, args).call_output(shapes, {})
    assert caught.value.message.startswith(message)


def test_dot_axes_must_be_one_or_two() -> None:
    with pytest.raises(SpecError) as caught:
        engine_layer("Dot", {"axes": [1, 2, 3]})
    assert caught.value.message == (
        "Invalid format for argument `axes`: it should contain two elements. "
        "Received: axes=[1, 2, 3]"
    )
    assert caught.value.path == "layers.0.axes"


def test_dot_counts_its_products() -> None:
    # (5, 2) · (2, 5) over axis 1 of each: a (2, 2) result, 5 products each.
    layer = engine_layer("Dot", {"axes": [1, 2]})
    shapes = [(None, 5, 2), (None, 2, 5)]
    assert layer.macs(shapes, layer.call_output(shapes, {})) == 2 * 2 * 5
    assert layer.macs([(None, None, 2), (None, 2, 5)], (None, 2, 2)) is None


# -- in a Sequential model ------------------------------------------------------

SEQUENTIAL = [
    [{"type": "Add"}],
    [{"type": "Concatenate"}],
    [{"type": "Dot", "axes": 1}],
    [{"type": "LSTM", "units": 4, "return_state": True}, {"type": "Add"}],
    [{"type": "LSTM", "units": 4, "return_state": True}, {"type": "Concatenate"}],
    [{"type": "LSTM", "units": 4, "return_state": True}, {"type": "Subtract"}],
    [{"type": "GRU", "units": 4, "return_state": True}, {"type": "Dot", "axes": 1}],
    [{"type": "GRU", "units": 4, "return_state": True}, {"type": "Maximum"}, {"type": "Dense", "units": 2}],
]  # fmt: skip


@pytest.mark.keras
@pytest.mark.parametrize("layers", SEQUENTIAL, ids=lambda ls: "-".join(x["type"] for x in ls))
def test_in_a_sequential_model_as_keras(layers: list[dict[str, Any]]) -> None:
    """One tensor is refused with Keras's words; the tuple a Sequential hands
    on after ``return_state`` is merged as Keras merges it."""
    spec = {"input_shape": [5, 3], "layers": layers}
    keras = oracle.keras_report(spec)
    engine = oracle.engine_report(spec)
    assert oracle.compare(engine, keras) == [], (engine, keras)
    if isinstance(keras, str):
        assert engine.split(": ", 1)[1].startswith(oracle.keras_reason(keras))


def test_one_tensor_in_a_sequential_model_is_refused_at_its_layer() -> None:
    with pytest.raises(SpecError) as caught:
        analyze({"input_shape": [5, 3], "layers": [{"type": "Dense", "units": 2}, {"type": "Add"}]})
    assert caught.value.path == "layers.1"
    assert caught.value.message == (
        "A merge layer should be called on a list of inputs. "
        "Received: input_shape=(None, 5, 2) (not a list of shapes)"
    )
