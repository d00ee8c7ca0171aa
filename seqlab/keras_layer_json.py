"""Read one layer of the JSON that Keras 3's ``model.to_json()`` writes.

A serialized layer (``{"class_name": ..., "config": {...}}``) becomes a
compact layer spec (``{"type": ..., <its arguments>}``). Both readers of a
model document use it: ``seqlab.keras_json`` (Sequential) and
``seqlab.functional_json`` (Functional).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import SpecError

#: The classes ``to_json`` writes a layer's float dtype policy as (Keras 3.0
#: wrote ``FloatDTypePolicy``); quantized policies are left for the schema
#: to refuse.
_POLICY_CLASSES = frozenset({"DTypePolicy", "FloatDTypePolicy"})


def is_keras_object(value: Any) -> bool:
    """Whether ``value`` is a serialized Keras object (``{"class_name", "config"}``)."""
    return isinstance(value, Mapping) and "class_name" in value and "config" in value


def _policy_name(value: Any) -> Any:
    """``{"class_name": "DTypePolicy", "config": {"name": "float64"}}`` → ``"float64"``;
    a plain string or anything else as it is."""
    # A class_name of any JSON type may come in: test membership on strings only.
    if is_keras_object(value) and str(value["class_name"]) in _POLICY_CLASSES:
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
    if not is_keras_object(obj) or not isinstance(obj["config"], Mapping):
        raise SpecError("Expected a serialized Keras layer.", path)
    spec: dict[str, Any] = {"type": obj["class_name"]}
    for key, value in obj["config"].items():
        if key == "dtype":
            spec[key] = _policy_name(value)
        elif (str(obj["class_name"]), key) in _EMPTY_MEANS_NULL and value == {}:
            spec[key] = None
        elif key in ("layer", "backward_layer") and value is not None:
            spec[key] = convert_layer(value, f"{path}.{key}")
        elif is_keras_object(value):
            # An initializer, regularizer or constraint; `module` and
            # `registered_name` only say where Keras keeps the class.
            spec[key] = {"class_name": value["class_name"], "config": value["config"]}
        else:
            spec[key] = value
    return spec
