"""Read the JSON that Keras 3's ``model.to_json()`` writes.

A Sequential document is turned into the compact spec form
(``{"input_shape", "layers": [{"type": ..., ...}]}``); a Functional one into
the compact graph form (``{"inputs", "layers", "outputs"}``, see
``seqlab.functional_json``); each layer is read by
``seqlab.keras_layer_json``. Either is then validated like any other spec,
so an argument seqlab does not know is refused, not silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import SpecError
from .functional_json import from_functional_json
from .keras_layer_json import convert_layer
from .keras_layer_json import is_keras_object


def is_keras_json(body: object) -> bool:
    """Whether ``body`` looks like a serialized Keras model."""
    mapping = body.__class__ is dict or isinstance(body, Mapping)
    return mapping and "class_name" in body and "config" in body  # type: ignore[operator]


def _batch_shape(config: Mapping[str, Any]) -> list[Any] | None:
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    return list(shape) if isinstance(shape, list) else None


def from_keras_json(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a serialized ``keras.Sequential`` to the compact spec form,
    or a serialized Functional model to the compact graph form.

    Raises:
        SpecError: the document is not a Sequential model with a known
            input shape.
    """
    if doc.get("class_name") == "Functional":
        return from_functional_json(doc)
    if doc.get("class_name") != "Sequential":
        raise SpecError(
            "Only Sequential and Functional models are supported. "
            f"Received: class_name={doc.get('class_name')!r}",
            "class_name",
        )
    config = doc.get("config")
    if not isinstance(config, Mapping) or not isinstance(config.get("layers"), list):
        raise SpecError("Expected `config.layers`, a list of layers.", "config.layers")
    layers = list(config["layers"])
    spec: dict[str, Any] = {}
    if config.get("name"):
        spec["name"] = config["name"]
    shape = None
    first = layers[0] if layers else None
    first_ok = is_keras_object(first) and isinstance(first["config"], Mapping)
    if first_ok and layers[0]["class_name"] == "InputLayer":
        input_config = layers.pop(0)["config"]
        shape = _batch_shape(input_config)
        if input_config.get("dtype"):
            spec["dtype"] = input_config["dtype"]
    if shape is None:
        shape = config.get("build_input_shape")
    if shape is None and first_ok:
        shape = _batch_shape(layers[0]["config"])  # Keras 2 style
        layers[0] = {**layers[0], "config": {
            k: v for k, v in layers[0]["config"].items()
            if k not in ("batch_shape", "batch_input_shape")
        }}  # fmt: skip
    if not isinstance(shape, list) or not shape:
        raise SpecError(
            "The model has no input shape: it needs an InputLayer (keras.Input) or a built model.",
            "config.layers",
        )
    spec["input_shape"] = shape[1:]
    if shape[0] is not None:
        spec["batch_size"] = shape[0]
    spec["layers"] = [convert_layer(obj, f"layers.{i}") for i, obj in enumerate(layers)]
    return spec
