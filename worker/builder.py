"""Build the Keras model of a validated spec, through the registry.

The registry is the allowlist: only registered layer classes are looked up
in ``keras.layers``, only their registered arguments are passed, and Keras
objects (initializers, regularizers, constraints) come only as allowlisted
names or ``{"class_name", "config"}`` pairs. No Lambda, no custom objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from seqlab import LAYERS
from seqlab.args import Kind

if TYPE_CHECKING:
    import keras


def build_layer(spec: Mapping[str, Any]) -> keras.Layer:
    """Instantiate one Keras layer; wrapped layers are built first, as in
    ``Bidirectional(LSTM(5))``, so Keras's automatic names match the engine's.

    Only the arguments present in ``spec`` are passed: the others take
    Keras's own defaults, which the tests hold equal to the registry's.
    """
    import keras

    layer_cls = LAYERS[spec["type"]]
    kwargs: dict[str, Any] = {}
    for arg in layer_cls.all_args():
        if arg.name not in spec:
            continue
        value = spec[arg.name]
        if arg.kind is Kind.LAYER and value is not None:
            value = build_layer(value)
        elif arg.kind is Kind.OBJECT and isinstance(value, Mapping):
            value = {"class_name": value["class_name"], "config": dict(value["config"])}
        kwargs[arg.name] = value
    if spec.get("name"):
        kwargs["name"] = spec["name"]
    return getattr(keras.layers, layer_cls.type)(**kwargs)


def build_model(spec: Mapping[str, Any], *, fresh_session: bool = True) -> keras.Sequential:
    """The ``keras.Sequential`` model of a validated spec.

    With ``fresh_session`` (the default) Keras's global name counters are
    reset first, so layer names are those ``POST /params`` reports.
    """
    import keras

    if fresh_session:
        keras.backend.clear_session()
    inputs = keras.Input(
        shape=tuple(spec["input_shape"]),
        batch_size=spec.get("batch_size"),
        dtype=spec.get("dtype") or "float32",
    )
    layers = [build_layer(layer) for layer in spec["layers"]]
    return keras.Sequential([inputs, *layers], name=spec.get("name"))
