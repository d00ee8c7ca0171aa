"""Read the JSON that Keras 3's ``model.to_json()`` writes.

A Sequential document is turned into the compact spec form
(``{"input_shape", "layers": [{"type": ..., ...}]}``); a Functional one into
the compact graph form (``{"inputs", "layers", "outputs"}``, see
``seqlab.functional_json``). Either is then validated like any other spec,
so an argument seqlab does not know is refused, not silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import SpecError

#: The classes ``to_json`` writes a layer's float dtype policy as (Keras 3.0
#: wrote ``FloatDTypePolicy``); quantized policies are left for the schema
#: to refuse.
_POLICY_CLASSES = frozenset({"DTypePolicy", "FloatDTypePolicy"})


def is_keras_json(body: object) -> bool:
    """Whether ``body`` looks like a serialized Keras model."""
    return isinstance(body, Mapping) and "class_name" in body and "config" in body


def _keras_object(value: Any) -> bool:
    return isinstance(value, Mapping) and "class_name" in value and "config" in value


def _policy_name(value: Any) -> Any:
    """``{"class_name": "DTypePolicy", "config": {"name": "float64"}}`` → ``"float64"``;
    a plain string or anything else as it is."""
    # A class_name of any JSON type may come in: test membership on strings only.
    if _keras_object(value) and str(value["class_name"]) in _POLICY_CLASSES:
        config = value["config"]
        if isinstance(config, Mapping) and set(config) == {"name"}:
            return config["name"]
    return value


#: Arguments whose empty default Keras's get_config writes as ``{}`` where
#: the layer was given None: BatchNormalization(renorm=True) stores
#: ``renorm_clipping or {}``. Read back as the null the schema accepts.
_EMPTY_MEANS_NULL = {("BatchNormalization", "renorm_clipping")}


def convert_layer(obj: Mapping[str, Any], path: str) -> dict[str, Any]:
    """One serialized layer → ``{"type": ..., <its config>}``."""
    return _convert_layer(obj, path)


def _convert_layer(obj: Mapping[str, Any], path: str) -> dict[str, Any]:
    if not _keras_object(obj) or not isinstance(obj["config"], Mapping):
        raise SpecError("Expected a serialized Keras layer.", path)
    spec: dict[str, Any] = {"type": obj["class_name"]}
    for key, value in obj["config"].items():
        if key == "dtype":
            spec[key] = _policy_name(value)
        elif (str(obj["class_name"]), key) in _EMPTY_MEANS_NULL and value == {}:
            spec[key] = None
        elif key in ("layer", "backward_layer") and value is not None:
            spec[key] = _convert_layer(value, f"{path}.{key}")
        elif _keras_object(value):
            # An initializer, regularizer or constraint; `module` and
            # `registered_name` only say where Keras keeps the class.
            spec[key] = {"class_name": value["class_name"], "config": value["config"]}
        else:
            spec[key] = value
    return spec


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
        from .functional_json import from_functional_json  # a cycle at import time

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
    first_ok = _keras_object(first) and isinstance(first["config"], Mapping)
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
    spec["layers"] = [_convert_layer(obj, f"layers.{i}") for i, obj in enumerate(layers)]
    return spec
