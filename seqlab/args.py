"""Argument definitions: the Keras constructor arguments a layer accepts.

Each layer in the registry lists its arguments as :class:`~seqlab.argspec.Arg`
values, with the Keras argument name and the Keras default. The API's
marshmallow schemas, the worker's Keras builder and the tests are all
generated from these lists. This module holds the constructors of the
argument shapes that recur across layers.
"""

from __future__ import annotations

from typing import Any

from .argspec import REQUIRED
from .argspec import Arg
from .argspec import Kind
from .objects import CONSTRAINTS
from .objects import INITIALIZERS
from .objects import REGULARIZERS

# Names as `keras.activations.get` accepts them (Keras 3.12-3.15). The
# object names (INITIALIZERS, REGULARIZERS, CONSTRAINTS) come from the
# object descriptions in `objects.py`.
ACTIVATIONS = (
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid",
    "hard_silu", "hard_swish", "hard_tanh", "leaky_relu", "linear",
    "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu", "sigmoid",
    "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus",
    "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh",
    "tanh_shrink", "threshold",
)  # fmt: skip
# Small constructors for the argument shapes that recur across layers.


def activation(name: str, default: str | None) -> Arg:
    """An activation function argument (null means linear, as in Keras)."""
    return Arg(name, Kind.CHOICE, default, choices=ACTIVATIONS, nullable=True)


def initializer(name: str, default: str) -> Arg:
    """A weight initializer argument."""
    return Arg(name, Kind.OBJECT, default, choices=INITIALIZERS)


def regularizer(name: str) -> Arg:
    """A weight or activity regularizer argument (default none)."""
    return Arg(name, Kind.OBJECT, None, choices=REGULARIZERS, nullable=True)


def constraint(name: str) -> Arg:
    """A weight constraint argument (default none)."""
    return Arg(name, Kind.OBJECT, None, choices=CONSTRAINTS, nullable=True)


def rate(name: str, default: float | None = None) -> Arg:
    """A dropout rate in [0, 1)."""
    return Arg(
        name, Kind.FLOAT, REQUIRED if default is None else default,
        minimum=0.0, maximum=1.0, exclusive_maximum=True,
    )  # fmt: skip


def positive_int(name: str, default: int | None = None, **kw: Any) -> Arg:
    """An integer >= 1."""
    return Arg(name, Kind.INT, REQUIRED if default is None else default, minimum=1, **kw)


def flag(name: str, default: bool) -> Arg:
    """A boolean argument."""
    return Arg(name, Kind.BOOL, default)


def seed() -> Arg:
    """The random seed of dropout and initializers (null: unseeded)."""
    return Arg("seed", Kind.INT, None, minimum=0, nullable=True)


def data_format() -> Arg:
    """Keras's data_format; null means the Keras default, channels_last."""
    return Arg(
        "data_format", Kind.CHOICE, None,
        choices=("channels_last", "channels_first"), nullable=True,
    )  # fmt: skip


def unsupported(name: str) -> Arg:
    """A Keras argument seqlab accepts only as null (see ``Kind.NULL``)."""
    return Arg(name, Kind.NULL, None, nullable=True)


def kernel_args() -> tuple[Arg, ...]:
    """What Dense and Conv1D share: activation, bias, and the kernel's and
    bias's initializers, regularizers and constraints (LoRA unsupported)."""
    return (
        activation("activation", None),
        flag("use_bias", True),
        initializer("kernel_initializer", "glorot_uniform"),
        initializer("bias_initializer", "zeros"),
        regularizer("kernel_regularizer"),
        regularizer("bias_regularizer"),
        regularizer("activity_regularizer"),
        constraint("kernel_constraint"),
        constraint("bias_constraint"),
        unsupported("lora_rank"),
        unsupported("lora_alpha"),
    )


#: Layer dtype policies (``keras.DTypePolicy`` names): the variables are
#: created in the policy's variable dtype, float32 for the ``mixed_*`` ones.
DTYPE_POLICIES = (
    "float32", "float16", "bfloat16", "float64", "mixed_float16", "mixed_bfloat16",
)  # fmt: skip
#: The ``dtype`` every layer takes; null is Keras's global policy, float32.
DTYPE = Arg(
    "dtype", Kind.CHOICE, None, choices=DTYPE_POLICIES, nullable=True,
    doc="The layer's dtype policy; null is the global policy (float32).",
)  # fmt: skip

#: Arguments every Keras layer takes (besides ``name``, handled apart).
COMMON = (flag("trainable", True), DTYPE)
