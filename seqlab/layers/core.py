"""Core layers: Dense, Embedding, and the weightless per-element layers.

Keras sources: ``keras/src/layers/core/{dense,embedding,activation,masking}.py``
and ``keras/src/layers/regularization/{dropout,spatial_dropout}.py``.
"""

from __future__ import annotations

import math

from .. import args as a
from ..argspec import Arg
from ..argspec import Kind
from ..registry import Layer
from ..registry import Output
from ..registry import Shape
from ..registry import Weight
from ..registry import feature_dim
from ..registry import register


@register
class Dense(Layer):
    type = "Dense"
    example = ({"units": 4}, (10, 3))
    summary = "Fully connected on the last axis; on 3-D input it acts per time step."
    min_ndim = 2
    supports_masking = True
    args = (
        a.positive_int("units"),
        *a.kernel_args(),
        a.unsupported("quantization_config"),
    )

    def built_input_spec(self, input_shape: Shape) -> tuple[int | None, dict[int, int]]:
        # dense.py: InputSpec(min_ndim=2, axes={-1: input_shape[-1]}).
        return None, {-1: feature_dim(self, input_shape)}

    def compute_output_shape(self, input_shape: Shape) -> Output:
        return (*input_shape[:-1], self.config["units"])

    def build_weights(self, input_shape: Shape) -> list[Weight]:
        i, u = feature_dim(self, input_shape), self.config["units"]
        weights = [Weight("kernel", (i, u))]
        if self.config["use_bias"]:
            weights.append(Weight("bias", (u,)))
        return weights

    def formula(self, input_shape: Shape) -> str:
        i, u = input_shape[-1], self.config["units"]
        if self.config["use_bias"]:
            return f"{i} × {u} + {u} = {i * u + u}"  # type: ignore[operator]
        return f"{i} × {u} = {i * u}"  # type: ignore[operator]

    def macs(self, input_shape: Shape, output: Output) -> int | None:
        positions = input_shape[1:-1]
        if None in positions:
            return None
        return math.prod(positions) * input_shape[-1] * self.config["units"]  # type: ignore[arg-type, operator]


@register
class Embedding(Layer):
    type = "Embedding"
    example = ({"input_dim": 1000, "output_dim": 64}, (10,))
    summary = "Looks up integer token ids in an (input_dim, output_dim) table."
    args = (
        a.positive_int("input_dim"),
        a.positive_int("output_dim"),
        a.initializer("embeddings_initializer", "uniform"),
        a.regularizer("embeddings_regularizer"),
        a.regularizer("activity_regularizer"),
        a.constraint("embeddings_constraint"),
        a.flag("mask_zero", False),
        a.unsupported("lora_rank"),
        a.unsupported("lora_alpha"),
        a.unsupported("quantization_config"),
    )

    def mask_ops(self) -> tuple[str, ...]:
        # embedding.py: supports_masking = mask_zero; compute_mask is
        # ops.not_equal(inputs, 0).
        return ("NotEqual",) if self.config["mask_zero"] else ()

    def compute_output_shape(self, input_shape: Shape) -> Output:
        return (*input_shape, self.config["output_dim"])

    def build_weights(self, input_shape: Shape) -> list[Weight]:
        return [Weight("embeddings", (self.config["input_dim"], self.config["output_dim"]))]

    def formula(self, input_shape: Shape) -> str:
        v, d = self.config["input_dim"], self.config["output_dim"]
        return f"{v} × {d} = {v * d}"


@register
class Dropout(Layer):
    type = "Dropout"
    example = ({"rate": 0.2}, (20, 4))
    summary = "Zeroes a fraction `rate` of the inputs while training."
    #: No InputSpec, and ``compute_output_shape`` returns its input
    #: (``keras/src/layers/regularization/dropout.py``): after a layer with
    #: several outputs (return_state) Keras builds it on the list and
    #: passes the list on.
    passes_several_tensors = True
    supports_masking = True
    args = (
        Arg("rate", Kind.FLOAT, minimum=0.0, maximum=1.0),
        Arg("noise_shape", Kind.INT_LIST, None, minimum=1, nullable=True),
        a.seed(),
    )


@register
class SpatialDropout1D(Layer):
    type = "SpatialDropout1D"
    example = ({"rate": 0.2}, (20, 4))
    summary = "Drops whole feature channels across all time steps."
    ndim = 3
    supports_masking = True
    args = (Arg("rate", Kind.FLOAT, minimum=0.0, maximum=1.0), a.seed())

    @classmethod
    def all_args(cls) -> tuple[Arg, ...]:
        # ``SpatialDropout1D.__init__(self, rate, seed=None, name=None,
        # dtype=None)`` takes no ``trainable`` (nor **kwargs), and its
        # get_config has none: it is always trainable (it has no weights).
        return (*cls.args, a.DTYPE)

    @property
    def trainable(self) -> bool:
        return True


@register
class Activation(Layer):
    type = "Activation"
    example = ({"activation": "relu"}, (20, 4))
    summary = "Applies an activation function element-wise."
    #: As Dropout (``keras/src/layers/activations/activation.py``).
    passes_several_tensors = True
    supports_masking = True
    args = (Arg("activation", Kind.CHOICE, choices=a.ACTIVATIONS),)


@register
class Masking(Layer):
    type = "Masking"
    example = ({}, (20, 4))
    summary = "Masks time steps whose features all equal mask_value."
    supports_masking = True
    args = (Arg("mask_value", Kind.FLOAT, 0.0),)

    def mask_ops(self) -> tuple[str, ...]:
        # masking.py: compute_mask is ops.any(ops.not_equal(inputs, mask_value), axis=-1).
        return ("NotEqual", "Any")


@register
class ReLU(Layer):
    type = "ReLU"
    #: As Dropout (``keras/src/layers/activations/relu.py``): no InputSpec,
    #: the output shape is the input's, a list included.
    passes_several_tensors = True
    supports_masking = True
    example = ({"max_value": 6.0}, (20, 4))
    summary = (
        "Rectified linear unit: x above threshold (capped at max_value), "
        "negative_slope × (x - threshold) below."
    )
    args = (
        Arg("max_value", Kind.FLOAT, None, minimum=0.0, nullable=True),
        Arg("negative_slope", Kind.FLOAT, 0.0, minimum=0.0),
        Arg("threshold", Kind.FLOAT, 0.0, minimum=0.0),
    )
