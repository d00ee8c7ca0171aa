"""The refusals Keras makes because of a layer's initializer and activation arguments.

Keras refuses some initializers when it constructs a layer (a ``Constant``
without a value) or builds its weights (``Identity`` on a weight that is not
2-D, ``Orthogonal`` on a 1-D one or on a bfloat16 variable), and some
activations when the model first runs (``threshold``, an odd ``glu``). The
engines run these checks on every layer; a layer whose own building order
matters (MultiHeadAttention, ConvLSTM1D) runs them itself at that point.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from .args import ACTIVATIONS
from .argspec import Kind
from .errors import SpecError
from .registry import LAYERS
from .registry import Layer
from .registry import Output
from .registry import Weight
from .registry import default_config
from .registry import to_snake_case

#: Keras's initializers that refuse some weight ranks when a layer is built,
#: by the class names (and aliases) the registry accepts.
_INIT_RANKS = {
    "identity": (
        lambda rank: rank == 2,
        "Identity matrix initializer can only be used for 2D matrices.",
    ),
    "orthogonal": (
        lambda rank: rank >= 2,
        "The tensor to initialize must be at least two-dimensional.",
    ),
}


def initializer_name(value: Any) -> str | None:
    """``GlorotUniform``, ``glorot_uniform`` or ``{"class_name": ...}`` → snake case."""
    if isinstance(value, dict):
        value = value.get("class_name")
    return _snake(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=256)
def _snake(name: str) -> str:
    return to_snake_case(name)


@functools.cache
def initializer_args(cls: type[Layer]) -> tuple[str, ...]:
    """The names of ``cls``'s ``*_initializer`` arguments."""
    return tuple(a.name for a in cls.all_args() if a.name.endswith("_initializer"))


def check_constant_initializers(layer_type: str, config: Mapping[str, Any]) -> None:
    """Raise where a ``Constant`` initializer has no ``value``.

    Keras's ``initializers.get("constant")`` deserializes the class with an
    empty config and ``Constant.from_config`` reads ``config["value"]``
    (``keras/src/initializers/constant_initializers.py``): the layer's
    constructor raises ``KeyError: 'value'``.
    """
    cls = LAYERS[layer_type]
    defaults = default_config(cls)
    for arg in initializer_args(cls):
        value = config[arg]
        # Keras's own defaults are never Constant (the common case: fast).
        if value is defaults[arg] or initializer_name(value) != "constant":
            continue
        if not isinstance(value, Mapping) or "value" not in (value.get("config") or {}):
            raise SpecError(
                f"KeyError: 'value': {layer_type} cannot create its {arg} "
                f"{value!r}: a Constant initializer needs a value, as in "
                '{"class_name": "Constant", "config": {"value": 1.0}}.',
                arg,
            )


def check_initializers(layer: Layer, weights: list[Weight]) -> None:
    """Raise where Keras's initializer of a weight refuses its rank.

    The initializer of weight ``w`` is the ``<w>_initializer`` argument
    (``recurrent_initializer`` for ``recurrent_kernel``). ``Identity`` wants
    a 2-D weight and ``Orthogonal`` at least 2-D
    (``keras/src/initializers/random_initializers.py``), and Keras calls
    them when the layer is built.
    """
    rules = {}
    defaults = default_config(type(layer))
    for arg in initializer_args(type(layer)):
        value = layer.config[arg]
        if value is defaults[arg]:
            continue  # Keras's defaults fit the weights they initialize
        rule = _INIT_RANKS.get(initializer_name(value) or "")
        if rule:
            rules[arg] = rule
    if not rules:
        return
    for w in weights:
        arg = initializer_arg(w)
        rule = rules.get(arg)
        shape = layer.initializer_shape(w)
        if rule and not rule[0](len(shape)):
            raise SpecError(
                f"{rule[1]} Received: shape={shape} of rank {len(shape)}. "
                f'It is the {arg} of layer "{layer.name}".'
            )


@functools.cache
def _activation_args(cls: type[Layer]) -> tuple[str, ...]:
    return tuple(
        a.name for a in cls.all_args() if a.kind is Kind.CHOICE and a.choices == ACTIVATIONS
    )


def check_activations(layer: Layer, output: Output) -> None:
    """Raise where an activation cannot run: Keras builds these models, and
    fails on their first call (a fit), so the worker must never get them.

    * ``threshold`` needs ``threshold`` and ``default_value`` arguments
      that a layer cannot pass (``keras/src/activations/activations.py``);
    * ``glu`` splits the last axis in two halves (``ops.glu``): an odd size
      cannot be split, and in a recurrent cell it halves the gates, so
      that the recurrence never runs whatever the units.
    """
    for arg in _activation_args(type(layer)):
        name = layer.config[arg]
        if name == "threshold":
            raise SpecError(
                "threshold() missing 2 required positional arguments: 'threshold' and "
                "'default_value'. Keras's `threshold` activation cannot be named by a "
                "layer: it needs arguments that a layer does not pass.",
                arg,
            )
        if name != "glu":
            continue
        if not layer.activations_on_output:
            raise SpecError(
                f"A `glu` {arg} halves the last axis it is applied to: a "
                f"{layer.type} cell applies it to its gates, whose halves no longer "
                "match its state, so the layer fails on its first call.",
                arg,
            )
        shape = output[0] if isinstance(output, list) else output
        if shape[-1] is not None and shape[-1] % 2:
            raise SpecError(
                f"axis size must be divisible by 2. Received: x.shape={tuple(shape)} with axis=-1",
                arg,
            )


def initializer_arg(weight: Weight) -> str:
    """The argument that initializes ``weight`` (``recurrent_kernel`` →
    ``recurrent_initializer``, ``kernel`` → ``kernel_initializer``)."""
    base = weight.name.rsplit("/", 1)[-1]
    return "recurrent_initializer" if base == "recurrent_kernel" else f"{base}_initializer"


def check_bfloat16_initializers(layer: Layer, weights: list[Weight]) -> None:
    """Raise where an ``Orthogonal`` initializer must make a bfloat16 variable.

    It takes a QR decomposition, and TensorFlow's ``Qr`` op has no bfloat16
    kernel: Keras on the TensorFlow backend refuses to build the layer (JAX
    builds it). The worker may run either backend, so the engine refuses it;
    ``orthogonal`` is the RNNs' default ``recurrent_initializer``.
    """
    for w in weights:
        arg = initializer_arg(w)
        if w.dtype == "bfloat16" and initializer_name(layer.config.get(arg)) == "orthogonal":
            raise SpecError(
                "Value for attr 'T' of bfloat16 is not in the list of allowed values: "
                "double, float, half, complex64, complex128 (TensorFlow's Qr op, for the "
                f'Orthogonal {arg} of layer "{layer.name}" under the bfloat16 policy). '
                "Choose another initializer, or the mixed_bfloat16 policy (float32 variables).",
                arg,
            )
