"""The layer registry against Keras's own classes, and what it derives.

Parametrized over ``seqlab.LAYERS``: a newly registered layer is checked
without any change here, and one without a Keras class fails.

* every registered type is a class of ``keras.layers``;
* every registry argument is accepted by that class (its ``__init__`` or,
  through ``**kwargs``, a base class's) with the registry's default as the
  Keras default, and every key of a default-constructed layer's
  ``get_config()`` is a registry argument, so ``model.to_json()`` of any
  supported layer reads back;
* each layer's formula is arithmetic that evaluates to its count;
* automatic names follow a fresh Keras session;
* ``import seqlab`` stays light.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import warnings
from typing import Any

import keras_oracle as oracle
import pytest

from seqlab import LAYERS
from seqlab import analyze
from seqlab import from_keras_json
from seqlab.args import ACTIVATIONS
from seqlab.argspec import Arg
from seqlab.argspec import Kind
from seqlab.engine import Namer
from seqlab.engine import configure_layer
from seqlab.objects import CONSTRAINTS
from seqlab.objects import INITIALIZERS
from seqlab.objects import REGULARIZERS

TYPES = sorted(LAYERS)
#: get_config keys that are not constructor arguments of the layer itself.
NOT_ARGUMENTS = {"name", "dtype"}


def keras_class(type_: str) -> Any:
    keras = oracle.import_keras()
    return getattr(keras.layers, type_)


def example_spec(type_: str) -> dict[str, Any]:
    args, _ = LAYERS[type_].example
    return {"type": type_, **args}


def example_layer(type_: str) -> Any:
    """The registry's example layer, constructed (not built) by the worker."""
    from worker.builder import build_layer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oracle.import_keras().backend.clear_session(free_memory=False)
        return build_layer(example_spec(type_))


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The arguments ``cls(...)`` accepts: its ``__init__``'s, and through
    ``**kwargs`` those of the base classes it passes them to (the first
    definition of a name wins, as it holds the default)."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        signature = inspect.signature(init)
        for name, param in signature.parameters.items():
            if name != "self" and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                params.setdefault(name, param)
        if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            break
    return params


def same_default(arg: Arg, registry: Any, keras_value: Any) -> bool:
    """Whether two defaults mean the same to Keras."""
    keras = oracle.import_keras()
    if arg.kind is Kind.CHOICE and set(arg.choices) <= set(ACTIVATIONS):
        # Keras serializes activation None as "linear".
        return keras.activations.get(registry) is keras.activations.get(keras_value)
    if arg.kind is Kind.OBJECT and registry is not None:
        getter = {
            INITIALIZERS: keras.initializers.get,
            REGULARIZERS: keras.regularizers.get,
            CONSTRAINTS: keras.constraints.get,
        }[arg.choices]
        return type(getter(registry)) is type(getter(keras_value))
    if arg.kind is Kind.INT_TUPLE and isinstance(keras_value, tuple | list):
        return registry in (keras_value[0], list(keras_value), tuple(keras_value))
    return bool(registry == keras_value)


@pytest.mark.keras
@pytest.mark.parametrize("type_", TYPES)
def test_registered_type_is_a_keras_layer(type_: str) -> None:
    keras = oracle.import_keras()
    assert isinstance(keras_class(type_), type)
    assert issubclass(keras_class(type_), keras.layers.Layer)


@pytest.mark.keras
@pytest.mark.parametrize("type_", TYPES)
def test_registry_arguments_are_keras_arguments_with_keras_defaults(type_: str) -> None:
    params = constructor_parameters(keras_class(type_))
    config = example_layer(type_).get_config()
    problems = []
    for arg in LAYERS[type_].all_args():
        if arg.name in params:
            default = params[arg.name].default
            if arg.required != (default is inspect.Parameter.empty):
                problems.append(f"{arg.name}: required {arg.required}, Keras default {default!r}")
            elif not arg.required and not same_default(arg, arg.default, default):
                problems.append(f"{arg.name}: default {arg.default!r}, Keras {default!r}")
        elif arg.name in config:
            # Only in get_config: compare with a default-constructed layer.
            if arg.name not in example_spec(type_) and not same_default(
                arg, arg.default, config[arg.name]
            ):
                problems.append(
                    f"{arg.name}: default {arg.default!r}, get_config {config[arg.name]!r}"
                )
        else:
            problems.append(f"{arg.name}: not an argument of keras.layers.{type_}")
    assert not problems, problems


@pytest.mark.keras
@pytest.mark.parametrize("type_", TYPES)
def test_object_defaults_build_the_keras_objects(type_: str) -> None:
    """An initializer default makes the class the Keras layer holds."""
    keras = oracle.import_keras()
    layer = example_layer(type_)
    for arg in LAYERS[type_].all_args():
        if arg.kind is not Kind.OBJECT or arg.default is None:
            continue
        # An RNN's cell holds them; MultiHeadAttention as private attributes.
        held = (
            getattr(layer, arg.name, None)
            or getattr(layer, f"_{arg.name}", None)
            or getattr(getattr(layer, "cell", None), arg.name)
        )
        assert type(keras.initializers.get(arg.default)) is type(held), arg.name


@pytest.mark.keras
@pytest.mark.parametrize("type_", TYPES)
def test_every_config_key_is_a_registry_argument(type_: str) -> None:
    registry = {a.name for a in LAYERS[type_].all_args()}
    config = example_layer(type_).get_config()
    assert set(config) - NOT_ARGUMENTS <= registry


@pytest.mark.keras
@pytest.mark.parametrize("type_", TYPES)
def test_to_json_of_each_layer_reads_back(type_: str) -> None:
    """The example layer's model.to_json() gives the engine's report."""
    if LAYERS[type_].call_form != "one":
        functional_round_trip(type_)
        return
    _, input_shape = LAYERS[type_].example
    spec = {"input_shape": list(input_shape), "layers": [example_spec(type_)]}
    if type_ == "Embedding":
        spec["dtype"] = "int32"
    keras = oracle.keras_report(spec)
    assert isinstance(keras, dict), keras
    engine = oracle.report_fields(analyze(from_keras_json(json.loads(keras["json"]))))
    assert oracle.compare(engine, keras) == []


def functional_round_trip(type_: str) -> None:
    """A layer of several tensors in a one-layer Functional model built from
    its example shapes: ``model.to_json()`` read back gives Keras's layers,
    shapes and counts."""
    keras = oracle.import_keras()
    args, shapes = LAYERS[type_].example
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.backend.clear_session(free_memory=False)
        inputs = [keras.Input(tuple(s)) for s in shapes]
        layer = getattr(keras.layers, type_)(**args)
        if LAYERS[type_].call_form == "query_value_key":
            output = layer(*inputs)
        else:
            output = layer(inputs)
        model = keras.Model(inputs, output)
    report = analyze(from_keras_json(json.loads(model.to_json())))
    assert [x.name for x in report.layers] == [x.name for x in model.layers]
    assert [x.params for x in report.layers] == [x.count_params() for x in model.layers]
    assert [x.output_shape for x in report.layers[-1:]] == [tuple(output.shape)]
    assert report.total_params == model.count_params()


# -- formulas ---------------------------------------------------------------

VARIANTS = [
    ("Conv1D", {"filters": 8, "kernel_size": 3, "groups": 2}, (20, 4)),
    ("Conv1D", {"filters": 8, "kernel_size": 3, "use_bias": False}, (20, 4)),
    ("GRU", {"units": 5, "reset_after": False}, (10, 3)),
    ("LSTM", {"units": 5, "use_bias": False}, (10, 3)),
    ("Dense", {"units": 4, "use_bias": False}, (10, 3)),
    ("BatchNormalization", {"renorm": True, "center": False}, (20, 4)),
    ("LayerNormalization", {"axis": [1, 2]}, (20, 4)),
    ("ConvLSTM1D", {"filters": 4, "kernel_size": 2, "use_bias": False}, (5, 20, 4)),
    (
        "Bidirectional",
        {
            "layer": {"type": "LSTM", "units": 5},
            "backward_layer": {"type": "LSTM", "units": 7, "go_backwards": True},
        },
        (10, 3),
    ),
    ("TimeDistributed", {"layer": {"type": "Conv1D", "filters": 8, "kernel_size": 3}}, (5, 20, 3)),
    ("Attention", {"use_scale": True, "score_mode": "concat"}, [(6, 4), (8, 4)]),
    ("AdditiveAttention", {"use_scale": False}, [(6, 4), (8, 4)]),
    ("MultiHeadAttention", {"num_heads": 3, "key_dim": 2, "use_gate": True}, [(5, 4), (7, 6)]),
    (
        "MultiHeadAttention",
        {"num_heads": 2, "key_dim": 3, "value_dim": 5, "output_shape": [2, 3], "use_bias": False},
        [(5, 4), (7, 6), (7, 2)],
    ),
    (
        "MultiHeadAttention",
        {"num_heads": 2, "key_dim": 3, "use_gate": True, "output_shape": 7},
        [(5, 4), (7, 6)],
    ),
]
FORMULA_CASES = [(t, *LAYERS[t].example) for t in TYPES] + VARIANTS


def arithmetic(expression: str) -> float:
    """Evaluate ``4 × ((1 + 5) × 5 + 5)``: numbers and + - × / ( ) only."""
    code = expression.replace("×", "*")
    assert set(code) <= set("0123456789+-*/() "), expression
    return eval(code, {"__builtins__": {}}, {})  # only digits and operators, checked above


@pytest.mark.parametrize(
    ("type_", "args", "input_shape"),
    FORMULA_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(FORMULA_CASES)],
)
def test_formula_evaluates_to_the_count(type_: str, args: dict, input_shape: Any) -> None:
    if LAYERS[type_].call_form == "one":
        report = analyze({"input_shape": list(input_shape), "layers": [{"type": type_, **args}]})
        (layer,) = report.layers
        formula, params = layer.formula, layer.params
    else:  # several tensors: the layer itself, built on the call's shapes
        layer = configure_layer({"type": type_, **args}, Namer(), "layers.0")
        shapes = [(None, *s) for s in input_shape]
        layer.call_output(shapes, {})
        formula = layer.formula(shapes)
        params = sum(w.size for w in layer.variables(shapes))
    lhs, _, rhs = formula.rpartition(" = ")
    if not lhs:  # a weightless layer's formula is just its count
        lhs = rhs
    assert arithmetic(lhs) == int(rhs) == params, formula


# -- automatic names ----------------------------------------------------------

NAMING = [
    (
        [{"type": "LSTM", "units": 2, "return_sequences": True}, {"type": "LSTM", "units": 2}],
        ["lstm", "lstm_1"],
        [[], []],
    ),
    (
        [
            {
                "type": "Bidirectional",
                "layer": {"type": "LSTM", "units": 2, "return_sequences": True},
            },
            {"type": "LSTM", "units": 2},
        ],
        ["bidirectional", "lstm_1"],
        [["forward_lstm", "backward_lstm"], []],
    ),
    (
        [
            {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}},
            {"type": "Dense", "units": 1},
        ],
        ["time_distributed", "dense_1"],
        [["dense"], []],
    ),
    (
        [{"type": "LSTM", "units": 2, "name": "encoder", "return_sequences": True}]
        + [{"type": "LSTM", "units": 2}],
        ["encoder", "lstm"],
        [[], []],
    ),
    (
        [
            {"type": "GRU", "units": 2, "return_sequences": True},
            {
                "type": "Bidirectional",
                "layer": {"type": "GRU", "units": 2, "return_sequences": True},
            },
            {"type": "GRU", "units": 2},
        ],
        ["gru", "bidirectional", "gru_2"],
        [[], ["forward_gru_1", "backward_gru_1"], []],
    ),
]


@pytest.mark.keras
@pytest.mark.parametrize(("layers", "names", "sublayers"), NAMING)
def test_automatic_names_follow_a_fresh_keras_session(
    layers: list[dict[str, Any]], names: list[str], sublayers: list[list[str]]
) -> None:
    spec = {"input_shape": [4, 3], "layers": layers}
    report = analyze(spec)
    assert [x.name for x in report.layers] == names
    assert [[s.name for s in x.sublayers] for x in report.layers] == sublayers
    keras = oracle.keras_report(spec)
    assert isinstance(keras, dict), keras
    assert (keras["names"], keras["sublayer_names"]) == (names, sublayers)


# -- the engine stays light ---------------------------------------------------


def test_import_seqlab_loads_no_framework() -> None:
    heavy = ("flask", "celery", "marshmallow", "tensorflow", "keras")
    code = "import json, sys, seqlab; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert not loaded & set(heavy)
