"""One call of one layer on several tensors, in Keras and in the registry.

The oracle of the tests of the layers that take several tensors (merging and
attention layers): ``keras_call`` constructs ``keras.layers.<type>(**args)``
and calls it on ``keras.Input``s of the given shapes (batch first), as a
Functional model would; ``engine_call`` asks the registry's layer the same
(``call_output``, ``variables``, ``placed_sublayers``) without the graph
engine. Both return the same fields, or the refusal as text.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

from keras_oracle import import_keras
from keras_oracle import keras_reason

from seqlab import LAYERS
from seqlab import SpecError
from seqlab.engine import LayerReport
from seqlab.engine import Namer
from seqlab.engine import configure_layer
from seqlab.engine import report_layer
from seqlab.layers.wrappers import Wrapper
from seqlab.registry import Layer
from seqlab.registry import Shape

#: The name both sides give the layer, so weight paths compare.
NAME = "probe"


def _shapes(output: Any) -> Any:
    if isinstance(output, list | tuple):
        return [tuple(t.shape) for t in output]
    return tuple(output.shape)


def _auto_number(name: str) -> str:
    # MultiHeadAttention's Softmax and Dropout take automatic names in the
    # session (``softmax_3``); the engine names them as in a fresh one.
    return re.sub(r"_\d+$", "", name)


def keras_call(
    type_: str,
    args: Mapping[str, Any],
    shapes: list[Shape],
    options: Mapping[str, Any] | None = None,
    *,
    keywords: bool = False,
) -> dict[str, Any] | str:
    """Build ``keras.layers.<type_>(**args)`` on inputs of ``shapes``.

    ``keywords``: call MultiHeadAttention as ``layer(query=, value=, key=)``.
    Returns the output shape(s), the weights (path below the layer, shape,
    the variable's trainable flag, dtype) and the sublayer names, or
    ``"<Exception>: <message>"``.
    """
    keras = import_keras()
    options = dict(options or {})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layer = getattr(keras.layers, type_)(name=NAME, **args)
            tensors = [keras.Input(batch_shape=tuple(s)) for s in shapes]
            if LAYERS[type_].call_form == "query_value_key":
                if keywords:
                    names = ("query", "value", "key")
                    output = layer(**dict(zip(names, tensors, strict=False)), **options)
                else:
                    output = layer(*tensors, **options)
            else:
                output = layer(tensors, **options)
    except Exception as error:  # noqa: BLE001 - any refusal is Keras's answer
        return f"{type(error).__name__}: {error}"
    subs = layer._flatten_layers(include_self=False, recursive=False)
    return {
        "output": _shapes(output),
        "weights": [
            (w.path.removeprefix(f"{NAME}/"), tuple(w.shape), bool(w.trainable), str(w.dtype))
            for w in layer.weights
        ],
        "sublayers": [_auto_number(s.name) for s in subs],
        "params": layer.count_params(),
    }


def keras_first_call_fails(
    type_: str,
    args: Mapping[str, Any],
    shapes: list[Shape],
    options: Mapping[str, Any] | None = None,
) -> bool:
    """Whether the one-layer model that Keras builds fails on its first
    call (``predict`` on zeros, unknown sizes taken as 3): the graph engine
    refuses such a call (``Layer.call_failure``), as the worker could not
    train it."""
    import numpy as np

    keras = import_keras()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tensors = [keras.Input(shape=tuple(s[1:])) for s in shapes]
        layer = getattr(keras.layers, type_)(name=NAME, **args)
        if LAYERS[type_].call_form == "query_value_key":
            output = layer(*tensors, **dict(options or {}))
        else:
            output = layer(tensors, **dict(options or {}))
        model = keras.Model(tensors, output)
        data = [np.zeros((2, *(3 if d is None else d for d in s[1:]))) for s in shapes]
        try:
            model.predict(data, verbose=0)
        except Exception:  # noqa: BLE001 - any failure is Keras's verdict
            return True
    return False


def engine_layer(type_: str, args: Mapping[str, Any]) -> Layer:
    """The registry's layer, configured as the engine configures it."""
    return configure_layer({"type": type_, "name": NAME, **args}, Namer(), "layers.0")


def call_report(layer: Layer, shapes: list[Shape], options: Mapping[str, Any]) -> LayerReport:
    """What the graph engine reports for a layer's first call."""
    output = layer.call_output(list(shapes), options)
    sublayers = (
        [report_layer(sub, shape) for sub, shape in layer.placed_sublayers(list(shapes))]
        if isinstance(layer, Wrapper)
        else []
    )
    weights = layer.variables(list(shapes))  # type: ignore[arg-type]
    return LayerReport(
        layer.name, layer.type, output, weights, layer, list(shapes), sublayers, layer.trainable
    )


def engine_call(
    type_: str,
    args: Mapping[str, Any],
    shapes: list[Shape],
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any] | str:
    """The registry's answer for the call ``keras_call`` makes."""
    defaults = {a.name: a.default for a in LAYERS[type_].call_args}
    try:
        layer = engine_layer(type_, args)
        report = call_report(layer, shapes, {**defaults, **(options or {})})
    except SpecError as error:
        return f"SpecError: {error.message}"
    check_formula_and_macs(report)
    return {
        "output": report.output_shape,
        "weights": [(w.name, w.shape, w.trainable, w.dtype) for w in report.weights],
        "sublayers": [s.name for s in report.sublayers],
        "params": report.params,
    }


def check_formula_and_macs(report: LayerReport) -> None:
    """The formula is exact arithmetic ending in the count; MACs are a
    non-negative int, or None when a length is unknown."""
    formula = report.formula
    lhs, _, rhs = formula.rpartition(" = ")
    code = (lhs or rhs).replace("×", "*")
    assert set(code) <= set("0123456789+-*/() "), formula
    value = eval(code, {"__builtins__": {}}, {})  # digits and operators only, checked above
    assert value == int(rhs) == report.params, formula
    macs = report.macs
    assert macs is None or (isinstance(macs, int) and macs >= 0), macs


def differences(engine: dict[str, Any] | str, keras: dict[str, Any] | str) -> list[str]:
    """Where the two answers differ (empty: they agree). A refusal agrees
    when the engine's message starts with Keras's reason."""
    if isinstance(engine, str) or isinstance(keras, str):
        if isinstance(engine, str) and isinstance(keras, str):
            reason = keras_reason(keras)
            if engine.split(": ", 1)[1].startswith(reason):
                return []
            return [f"refusal: engine {engine!r} / keras {reason!r}"]
        return [f"verdict: engine {engine!r} / keras {keras!r}"]
    return [
        f"{key}: engine {engine[key]!r} / keras {keras[key]!r}"
        for key in engine
        if engine[key] != keras[key]
    ]


def graph_spec(
    type_: str,
    args: Mapping[str, Any],
    shapes: list[Shape],
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The compact graph form of the model ``inputs → layer(inputs)``."""
    inputs = [
        {"name": f"in{i}", "shape": list(s[1:]), "batch_size": s[0]} for i, s in enumerate(shapes)
    ]
    layer = {"type": type_, "name": NAME, **args, **(options or {})}
    layer["inputs"] = [item["name"] for item in inputs]
    return {"inputs": inputs, "layers": [layer]}


def graph_answer(spec: Mapping[str, Any]) -> dict[str, Any] | str:
    """What ``seqlab.analyze`` says of a one-layer graph, as ``keras_call``
    reports it (the output shape(s), weights and sublayers of the layer)."""
    from seqlab import analyze

    try:
        report = analyze(spec)
    except SpecError as error:
        return f"SpecError: {error.message}"
    layer = report.layers[-1]
    output = layer.output_shape
    return {
        "output": [tuple(s) for s in output] if isinstance(output, list) else tuple(output),
        "weights": [(w.name, w.shape, w.trainable, w.dtype) for w in layer.weights],
        "sublayers": [s.name for s in layer.sublayers],
        "params": report.total_params,
    }
