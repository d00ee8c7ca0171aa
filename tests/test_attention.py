# ruff: noqa: E501 (Keras's messages are quoted whole, one case a line)
"""The attention layers (seqlab/layers/attention.py) against Keras 3.15.

Seeded sweeps of calls of Attention, AdditiveAttention and
MultiHeadAttention (arguments, shapes, call options, dtype policies, frozen
layers; valid and invalid) built with ``keras.layers.<type>(**args)`` on
``keras.Input``s and compared with the registry: outputs (with the scores),
weights (paths, shapes, trainable flags, dtypes), sublayers and refusals.
"""

from __future__ import annotations

import random
from typing import Any

import keras_oracle as oracle
import pytest
from call_oracle import call_report
from call_oracle import differences
from call_oracle import engine_call
from call_oracle import engine_layer
from call_oracle import graph_answer
from call_oracle import graph_spec
from call_oracle import keras_call
from call_oracle import keras_first_call_fails

from seqlab import SpecError
from seqlab import analyze
from seqlab.memory import kept_bytes

DIMS = (None, 2, 3, 4, 5)
POLICIES = (None,) * 6 + ("float16", "mixed_float16", "float64")


def _common(rng: random.Random) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if rng.random() < 0.15:
        args["trainable"] = False
    policy = rng.choice(POLICIES)
    if policy:
        args["dtype"] = policy
    return args


def _options(rng: random.Random) -> dict[str, Any]:
    return {
        key: True for key in ("return_attention_scores", "use_causal_mask") if rng.random() < 0.4
    }


def attention_case(rng: random.Random) -> tuple[str, dict[str, Any], list[Any], dict[str, Any]]:
    """A random call of Attention or AdditiveAttention."""
    type_ = rng.choice(("Attention", "AdditiveAttention"))
    args = _common(rng)
    if rng.random() < 0.5:
        args["use_scale"] = rng.random() < 0.5
    if type_ == "Attention" and rng.random() < 0.4:
        args["score_mode"] = "concat"
    if rng.random() < 0.2:
        args["dropout"] = 0.1
    d = rng.choice((2, 3, 4, None) if rng.random() < 0.2 else (2, 3, 4))
    tq, tv = rng.choice(DIMS), rng.choice(DIMS)
    rank = rng.choice((3,) * 8 + (2, 4))
    lead = (3,) * (rank - 3)
    steps_q, steps_v = ((tq,), (tv,)) if rank > 2 else ((), ())
    query = (None, *lead, *steps_q, d)
    value = (None, *lead, *steps_v, rng.choice((d, 3, 6)))
    shapes = [query, value]
    n = rng.choice((2,) * 6 + (3, 3, 1, 4))
    if n >= 3:
        shapes.append((None, *lead, *steps_v, d))
    if n == 4:
        shapes.append(value)
    if n == 1:
        shapes = [query]
    return type_, args, shapes, _options(rng)


def mha_case(rng: random.Random) -> tuple[str, dict[str, Any], list[Any], dict[str, Any]]:
    """A random call of MultiHeadAttention."""
    args = {"num_heads": rng.randint(1, 3), "key_dim": rng.randint(1, 5), **_common(rng)}
    if rng.random() < 0.4:
        args["value_dim"] = rng.randint(1, 4)
    if rng.random() < 0.3:
        args["use_bias"] = False
    if rng.random() < 0.3:
        args["use_gate"] = True
    if rng.random() < 0.3:
        args["output_shape"] = rng.choice((3, [2], [2, 3], 0, [4, -1]))
    if rng.random() < 0.15:
        args["dropout"] = 0.2
    if rng.random() < 0.2:
        # Identity refuses the 3-D kernels (not the 2-D biases), Orthogonal
        # takes them: Keras's initializers run when the projections build.
        args["kernel_initializer"] = rng.choice(("identity", "orthogonal", "he_uniform"))
    if rng.random() < 0.1:
        args["bias_initializer"] = rng.choice(("identity", "ones"))
    rank = rng.choice((3,) * 7 + (4, 2))
    dq = rng.choice((4, 6, 8) if rng.random() < 0.9 else (None,))
    tq, tv = rng.choice(DIMS), rng.choice(DIMS)
    middle_q = (3,) * (rank - 3) + (tq,) if rank > 2 else ()
    middle_v = (3,) * (rank - 3) + (tv,) if rank > 2 else ()
    if rank == 4 and rng.random() < 0.5:
        args["attention_axes"] = rng.choice((1, [1, 2], 2, -2))
    query = (None, *middle_q, dq)
    value = (None, *middle_v, rng.choice((4, 5, 8)))
    shapes = [query, value]
    if rng.random() < 0.4:
        key_middle = middle_v if rng.random() < 0.8 else (*middle_v[:-1], 7)
        shapes.append((None, *key_middle, rng.choice((3, 4, 6))))
    return "MultiHeadAttention", args, shapes, _options(rng)


ATTENTION_SWEEP = [attention_case(random.Random(seed)) for seed in range(120)]
MHA_SWEEP = [mha_case(random.Random(1000 + seed)) for seed in range(120)]


def _run(sweep: list[Any], *, keywords: bool = False) -> tuple[list[str], dict[str, int]]:
    problems, verdicts = [], {"valid": 0, "invalid": 0}
    for type_, args, shapes, options in sweep:
        keras = keras_call(type_, args, shapes, options, keywords=keywords)
        engine = engine_call(type_, args, shapes, options)
        verdicts["invalid" if isinstance(keras, str) else "valid"] += 1
        for line in differences(engine, keras):
            problems.append(f"{type_}({args}) on {shapes} {options}: {line}")
    return problems, verdicts


@pytest.mark.keras
def test_a_sweep_of_attention_calls_agrees_with_keras() -> None:
    problems, verdicts = _run(ATTENTION_SWEEP)
    assert not problems, "\n".join(problems[:20])
    assert verdicts["valid"] >= 60 and verdicts["invalid"] >= 10, verdicts


@pytest.mark.keras
def test_a_sweep_of_multi_head_attention_calls_agrees_with_keras() -> None:
    problems, verdicts = _run(MHA_SWEEP)
    assert not problems, "\n".join(problems[:20])
    assert verdicts["valid"] >= 60 and verdicts["invalid"] >= 10, verdicts


@pytest.mark.keras
def test_multi_head_attention_called_by_keyword_agrees_with_keras() -> None:
    # layer(query=, value=, key=) builds the same layer as the positional call.
    problems, _ = _run(MHA_SWEEP[:40], keywords=True)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.keras
@pytest.mark.parametrize("sweep", ["attention", "mha"])
def test_the_sweeps_through_the_graph_engine_agree_with_keras(sweep: str) -> None:
    """The same calls as one-layer Functional models of the compact form
    (call options beside the arguments; several outputs with the scores)."""
    cases = ATTENTION_SWEEP if sweep == "attention" else MHA_SWEEP
    problems = []
    for type_, args, shapes, options in cases[:60]:
        keras = keras_call(type_, args, shapes, options)
        engine = graph_answer(graph_spec(type_, args, shapes, options))
        if (
            isinstance(engine, str)
            and "fails on its first call" in engine
            and not isinstance(keras, str)
            and keras_first_call_fails(type_, args, shapes, options)
        ):
            continue  # Keras builds it but cannot run it: refused, as the worker could not
        for line in differences(engine, keras):
            problems.append(f"{type_}({args}) on {shapes} {options}: {line}")
    assert not problems, "\n".join(problems[:20])


# -- by hand: the reference's numbers (keras-functional.md §3) ---------------

N = None


def test_multi_head_attention_of_the_reference() -> None:
    layer = engine_layer("MultiHeadAttention", {"num_heads": 2, "key_dim": 4})
    shapes = [(N, 10, 16), (N, 12, 8)]
    scores = {"return_attention_scores": True}
    # Scores are (batch, heads, Tq, Tq): Keras's symbolic shape, not Tv.
    assert layer.call_output(shapes, scores) == [(N, 10, 16), (N, 2, 10, 10)]
    report = call_report(layer, shapes, {})
    assert report.params == 424
    assert layer.formula(shapes) == (
        "2 × 4 × (16 + 8) + 2 × 4 × 8 + 2 × 4 × 16 + (2 × 2 × 4 + 2 × 4 + 16) = 424"
    )
    assert [s.name for s in report.sublayers] == [
        "query", "key", "value", "softmax", "dropout", "attention_output",
    ]  # fmt: skip
    # Projections 10·16·8 + 12·8·8 + 12·8·8 + 10·8·16, then 2 heads of
    # 10 × 12 scores over 4 features and sums over 4 values.
    assert layer.macs(shapes, report.output_shape) == 1280 + 768 + 768 + 1280 + 2 * 10 * 12 * 8


def test_multi_head_attention_output_shape_and_gate() -> None:
    layer = engine_layer(
        "MultiHeadAttention",
        {"num_heads": 2, "key_dim": 4, "use_gate": True, "output_shape": [3, 5]},
    )
    shapes = [(N, 10, 16), (N, 12, 8)]
    assert layer.call_output(shapes, {}) == (N, 10, 3, 5)
    weights = [(w.name, w.shape) for w in layer.variables(shapes)]
    assert weights[4:6] == [("gate/kernel", (16, 2, 4)), ("gate/bias", (2, 4))]
    assert weights[-2:] == [
        ("attention_output/kernel", (2, 4, 3, 5)),
        ("attention_output/bias", (3, 5)),
    ]
    assert sum(w.size for w in layer.variables(shapes)) == 551


def test_attention_weights_and_scores() -> None:
    both = engine_layer("Attention", {"use_scale": True, "score_mode": "concat"})
    shapes = [(N, 6, 4), (N, 7, 5)]
    # No check of query against key features: (6, 4) over (7, 5) builds.
    assert both.call_output(shapes, {"return_attention_scores": True}) == [(N, 6, 5), (N, 6, 7)]
    assert [(w.name, w.shape) for w in both.variables(shapes)] == [
        ("scale", ()), ("concat_score_weight", ()),
    ]  # fmt: skip
    assert both.formula(shapes) == "1 + 1 = 2"
    additive = engine_layer("AdditiveAttention", {})
    assert [(w.name, w.shape) for w in additive.variables(shapes)] == [("scale", (4,))]
    assert additive.formula(shapes) == "4 = 4"
    assert additive.macs(shapes, (N, 6, 5)) == 6 * 7 * (4 + 5)
    assert additive.macs([(N, N, 4), (N, 7, 5)], (N, N, 5)) is None


def test_frozen_multi_head_attention_keeps_training_its_projections() -> None:
    # As in Keras: trainable=False is set before build creates the
    # projections, so the model's trainable weights still hold them.
    layer = engine_layer("MultiHeadAttention", {"num_heads": 1, "key_dim": 2, "trainable": False})
    report = call_report(layer, [(N, 3, 4), (N, 3, 4)], {})
    assert report.trainable_params == 0
    assert report.model_trainable_params == report.params == 4 * 2 * 3 + 2 * 4 + 2 * 3 + 4


REFUSALS = [
    (
        "Attention",
        {},
        [(N, 6, 4)],
        "Attention layer accepts inputs list of length 2 or 3, namely [query, value] or [query, value, key]. Received length: 1.",
    ),
    (
        "AdditiveAttention",
        {},
        [(N, 6, 4)] * 4,
        "AdditiveAttention layer accepts inputs list of length 2 or 3, namely [query, value] or [query, value, key]. Received length: 4.",
    ),
    (
        "AdditiveAttention",
        {},
        [(N, 6, N), (N, 6, 4)],
        "Shapes used to initialize variables must be fully-defined (no `None` dimensions). Received: shape=(None,) for variable path='probe/scale'",
    ),
    (
        "MultiHeadAttention",
        {"num_heads": 2, "key_dim": 4},
        [(N, 6, 4), (N, 7, 5), (N, 8, 5)],
        "All dimensions of `value` and `key`, except the last one, must be equal. Received: value_shape=(None, 7, 5) and key_shape=(None, 8, 5)",
    ),
]


@pytest.mark.parametrize(("type_", "args", "shapes", "message"), REFUSALS)
def test_refusals_quote_keras(type_, args, shapes, message) -> None:
    with pytest.raises(SpecError) as caught:
        engine_layer(type_, args).call_output(shapes, {})
    assert caught.value.message == message


# -- in a Sequential model ------------------------------------------------------

SEQUENTIAL = [
    [{"type": "Attention"}],
    [{"type": "AdditiveAttention"}],
    [{"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 2}],
    [{"type": "Dense", "units": 3}, {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 2}],
    [{"type": "GRU", "units": 4, "return_state": True}, {"type": "Attention"}],
    [{"type": "ReLU", "max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5}],
    # ReLU, not in the Sequential corpus yet (tests/corpus.py), is compared here.
    [
        {"type": "LSTM", "units": 4, "return_sequences": True},
        {"type": "ReLU", "trainable": False, "dtype": "float16"},
    ],
    [{"type": "TimeDistributed", "layer": {"type": "ReLU"}}, {"type": "Flatten"}],
    [{"type": "LSTM", "units": 4, "return_state": True}, {"type": "ReLU"}],
    [
        {"type": "Dense", "units": 4},
        {"type": "ReLU", "max_value": None},
        {"type": "Dense", "units": 1},
    ],
]


@pytest.mark.keras
@pytest.mark.parametrize("layers", SEQUENTIAL, ids=lambda ls: "-".join(x["type"] for x in ls))
def test_in_a_sequential_model_as_keras(layers: list[dict[str, Any]]) -> None:
    spec = {"input_shape": [5, 3], "layers": layers}
    keras = oracle.keras_report(spec)
    engine = oracle.engine_report(spec)
    assert oracle.compare(engine, keras) == [], (engine, keras)
    if isinstance(keras, str):
        assert engine.split(": ", 1)[1].startswith(oracle.keras_reason(keras))


def test_multi_head_attention_in_a_sequential_model_is_refused_at_its_layer() -> None:
    spec = {
        "input_shape": [5, 3],
        "layers": [
            {"type": "Dense", "units": 2},
            {"type": "MultiHeadAttention", "num_heads": 1, "key_dim": 2},
        ],
    }
    with pytest.raises(SpecError) as caught:
        analyze(spec)
    assert caught.value.path == "layers.1"
    assert caught.value.message.startswith(
        "Layers added to a Sequential model can only have a single required positional argument"
    )


@pytest.mark.parametrize(
    ("type_", "args", "shapes"),
    [
        ("Attention", {}, [(N, 6, 4), (N, 8, 4)]),
        ("AdditiveAttention", {}, [(N, 6, 4), (N, 8, 4), (N, 8, 3)]),
        (
            "MultiHeadAttention",
            {"num_heads": 2, "key_dim": 4, "use_gate": True},
            [(N, 10, 16), (N, 12, 8)],
        ),
    ],
)
def test_training_memory_rule(type_, args, shapes) -> None:
    report = call_report(engine_layer(type_, args), shapes, {})
    assert kept_bytes(report) > 4 * 10  # at least the scores and the output
    unknown = call_report(engine_layer(type_, args), [(N, N, s[-1]) for s in shapes], {})
    assert kept_bytes(unknown) is None


# -- the request schema (modelspec/fields.py derives it from the registry) -----

SCHEMA = [
    (
        "MultiHeadAttention",
        {
            "num_heads": 2,
            "key_dim": 4,
            "output_shape": [3, 5],
            "attention_axes": 1,
            "use_gate": True,
            "dtype": "mixed_float16",
        },
        None,
    ),
    (
        "MultiHeadAttention",
        {"num_heads": 2, "key_dim": 4, "flash_attention": True},
        "flash_attention",
    ),
    ("MultiHeadAttention", {"num_heads": 2}, "key_dim"),
    ("Attention", {"use_scale": True, "score_mode": "concat", "dropout": 0.5, "seed": 1}, None),
    ("Attention", {"score_mode": "add"}, "score_mode"),
    ("AdditiveAttention", {"use_scale": False, "trainable": False}, None),
    ("Dot", {"axes": [1, 2], "normalize": True}, None),
    ("Dot", {}, "axes"),
    ("Concatenate", {"axis": 1}, None),
    ("ReLU", {"max_value": None, "negative_slope": 0.2}, None),
    ("ReLU", {"threshold": -1.0}, "threshold"),
]


@pytest.mark.parametrize(("type_", "args", "refused"), SCHEMA)
def test_arguments_validate_in_the_request_schema(type_, args, refused) -> None:
    import marshmallow as ma

    from modelspec.fields import layer_schema_class

    schema = layer_schema_class(type_)()
    if refused is None:
        assert schema.load({"type": type_, **args})["type"] == type_
    else:
        with pytest.raises(ma.ValidationError) as caught:
            schema.load({"type": type_, **args})
        assert set(caught.value.messages) == {refused}


@pytest.mark.keras
def test_multi_head_attention_build_takes_softmax_and_dropout_names() -> None:
    """Keras's MHA build creates an unnamed Softmax and Dropout: they take
    numbers from the counters the model's own layers use."""
    spec = {
        "inputs": [{"name": "x", "shape": [5, 4]}],
        "layers": [
            {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 2, "inputs": ["x", "x"]},
            {"type": "Dropout", "rate": 0.1},
            {
                "type": "MultiHeadAttention",
                "num_heads": 2,
                "key_dim": 2,
                "inputs": ["dropout_1", "x"],
            },
            {"type": "Dropout", "rate": 0.1},
        ],
    }
    report = analyze(spec)
    engine = (
        [x.name for x in report.layers],
        [[s.name for s in x.sublayers] for x in report.layers],
    )
    keras = oracle.import_keras()
    keras.backend.clear_session()
    x = keras.Input((5, 4), name="x")
    # Each layer constructed, then called, in entry order (the compact form's
    # program): the first call builds MHA before the next Dropout exists.
    attended = keras.layers.MultiHeadAttention(2, 2)(x, x)
    y = keras.layers.Dropout(0.1)(attended)
    attended = keras.layers.MultiHeadAttention(2, 2)(y, x)
    model = keras.Model(x, keras.layers.Dropout(0.1)(attended))
    expected = (
        [layer.name for layer in model.layers],
        [[s.name for s in oracle._sublayers(layer)] for layer in model.layers],
    )
    assert engine == expected
    assert engine[0] == [
        "x",
        "multi_head_attention",
        "dropout_1",
        "multi_head_attention_1",
        "dropout_3",
    ]


WRAPPED = [
    {"type": "Add"},
    {"type": "Concatenate"},
    {"type": "Dot", "axes": 1},
    {"type": "Attention"},
    {"type": "MultiHeadAttention", "num_heads": 1, "key_dim": 2},
]


@pytest.mark.keras
@pytest.mark.parametrize("inner", WRAPPED, ids=lambda x: x["type"])
def test_wrapped_in_time_distributed_as_keras(inner: dict[str, Any]) -> None:
    """TimeDistributed builds its layer on one shape: each refuses it with
    the words of its own build (MHA's misses ``value_shape``)."""
    spec = {"input_shape": [5, 3, 4], "layers": [{"type": "TimeDistributed", "layer": inner}]}
    keras = oracle.keras_report(spec)
    engine = oracle.engine_report(spec)
    assert isinstance(keras, str) and isinstance(engine, str)
    assert engine.split(": ", 1)[1].startswith(oracle.keras_reason(keras)), (engine, keras)
