"""Hold the model Keras built to what the engine counted before it was queued.

The API accepted the job on the engine's numbers (parameters, shapes, the
summary it showed); a job must not train something else. Any difference is
a bug in the engine, reported loudly rather than trained silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class EngineMismatch(Exception):
    """Keras built a model that differs from the engine's report."""


def keras_shape(tensor: Any) -> Any:
    """A Keras output (a tensor or a list of them) as JSON-like lists."""
    if isinstance(tensor, list | tuple):
        return [list(t.shape) for t in tensor]
    return list(tensor.shape)


def layer_output(layer: Any) -> Any:
    """A layer's output; for a layer called more than once (shared in a
    graph), its last call's, as Keras's summary and the engine show it
    (``layer.output`` would be the first call's)."""
    nodes = layer._inbound_nodes
    if len(nodes) > 1:
        tensors = nodes[-1].output_tensors
        return tensors[0] if len(tensors) == 1 else list(tensors)
    return layer.output


def differences(model: Any, expected: Mapping[str, Any]) -> list[str]:
    """How ``model`` differs from the engine's ``expected`` job params.

    Compared: the total and the trainable split, and per layer (in
    ``model.layers`` order: a graph's InputLayers included, a shared layer
    once) the name, the class, the output shape and the parameter count.
    """
    found = []
    total = int(model.count_params())
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    for label, keras_value, engine_value in (
        ("total parameters", total, expected["total_params"]),
        ("trainable parameters", trainable, expected["trainable_params"]),
        ("non-trainable parameters", total - trainable, expected["non_trainable_params"]),
    ):
        if keras_value != engine_value:
            found.append(f"{label}: Keras {keras_value:,}, seqlab {engine_value:,}")
    layers = expected["layers"]
    if len(model.layers) != len(layers):
        found.append(f"layers: Keras {len(model.layers)}, seqlab {len(layers)}")
        return found
    for layer, mine in zip(model.layers, layers, strict=True):
        keras_layer = {
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": keras_shape(layer_output(layer)),
            "params": int(layer.count_params()),
        }
        for key, value in keras_layer.items():
            if value != mine[key]:
                found.append(f"layer {mine['name']!r} {key}: Keras {value}, seqlab {mine[key]}")
    return found


def check_agreement(model: Any, expected: Mapping[str, Any]) -> None:
    """Raise :class:`EngineMismatch` naming every difference."""
    found = differences(model, expected)
    if found:
        raise EngineMismatch(
            "Keras built a different model than seqlab counted (a seqlab bug; the job "
            "was not trained): " + "; ".join(found) + "."
        )
