"""BatchNormalization and LayerNormalization.

Keras sources: ``keras/src/layers/normalization/batch_normalization.py`` and
``layer_normalization.py``.
"""

from __future__ import annotations

from typing import Any

from .. import args as a
from ..argspec import Arg
from ..argspec import Kind
from ..errors import SpecError
from ..registry import Layer
from ..registry import Shape
from ..registry import Weight
from ..registry import format_shape
from ..registry import register


def normalized_axes(
    layer: Layer, input_shape: Shape, axis: Any, *, known: bool = True
) -> list[int]:
    """The axes as non-negative indices; each must exist and, where weights
    span them (``known``), have a known size."""
    rank = len(input_shape)
    axes = [axis] if isinstance(axis, int) else list(axis)
    out = []
    for ax in axes:
        if not -rank <= ax < rank:
            raise SpecError(
                f"Invalid axis: {ax} for layer {layer.name!r}: the input has "
                f"rank {rank}. Received: input_shape={format_shape(input_shape)}"
            )
        ax %= rank
        # No rule against the batch axis 0 in Keras (it indexes
        # ``input_shape[axis]`` in build): it only has to be known.
        if known and input_shape[ax] is None:
            raise SpecError(
                f"Axis {ax} of input tensor should have a defined dimension but "
                f"the layer received an input with shape {format_shape(input_shape)}."
            )
        out.append(ax)
    return out


@register
class BatchNormalization(Layer):
    type = "BatchNormalization"
    example = ({}, (20, 4))
    summary = "Normalizes with batch statistics; moving mean/variance are non-trainable."
    supports_masking = True
    call_mask = True
    args = (
        Arg("axis", Kind.INT, -1),
        Arg("momentum", Kind.FLOAT, 0.99, minimum=0.0, maximum=1.0),
        Arg("epsilon", Kind.FLOAT, 0.001, minimum=0.0),
        a.flag("center", True),
        a.flag("scale", True),
        a.initializer("beta_initializer", "zeros"),
        a.initializer("gamma_initializer", "ones"),
        a.initializer("moving_mean_initializer", "zeros"),
        a.initializer("moving_variance_initializer", "ones"),
        a.regularizer("beta_regularizer"),
        a.regularizer("gamma_regularizer"),
        a.constraint("beta_constraint"),
        a.constraint("gamma_constraint"),
        a.flag("synchronized", False),
        # renorm adds three non-trainable vectors (Keras 3.14 and later).
        a.flag("renorm", False),
        a.unsupported("renorm_clipping"),
        Arg("renorm_momentum", Kind.FLOAT, 0.99, minimum=0.0, maximum=1.0),
    )

    def channels(self, input_shape: Shape) -> int:
        (ax,) = normalized_axes(self, input_shape, self.config["axis"])
        size = input_shape[ax]
        assert size is not None
        return size

    def build_weights(self, input_shape: Shape) -> list[Weight]:
        c = self.channels(input_shape)
        weights = []
        if self.config["scale"]:
            weights.append(Weight("gamma", (c,)))
        if self.config["center"]:
            weights.append(Weight("beta", (c,)))
        weights += [
            Weight("moving_mean", (c,), trainable=False),
            Weight("moving_variance", (c,), trainable=False),
        ]
        if self.config["renorm"]:
            weights += [
                Weight(name, (c,), trainable=False)
                for name in ("moving_stddev", "renorm_mean", "renorm_stddev")
            ]
        return weights

    def built_input_spec(self, input_shape: Shape) -> tuple[int | None, dict[int, int]]:
        # batch_normalization.py: InputSpec(ndim=len(input_shape), axes={axis: size}).
        return len(input_shape), {self.config["axis"]: self.channels(input_shape)}

    def formula(self, input_shape: Shape) -> str:
        c = self.channels(input_shape)
        n = len(self.build_weights(input_shape))
        return f"{n} × {c} = {n * c}"


@register
class LayerNormalization(Layer):
    type = "LayerNormalization"
    example = ({}, (20, 4))
    summary = "Normalizes each sample over `axis`; gamma and beta per feature."
    supports_masking = True
    #: Keras sets ``self.autocast = False``: float16 inputs are not cast.
    autocast = False
    args = (
        Arg("axis", Kind.AXIS, -1),
        Arg("epsilon", Kind.FLOAT, 0.001, minimum=0.0),
        a.flag("center", True),
        a.flag("scale", True),
        a.flag("rms_scaling", False),
        a.initializer("beta_initializer", "zeros"),
        a.initializer("gamma_initializer", "ones"),
        a.regularizer("beta_regularizer"),
        a.regularizer("gamma_regularizer"),
        a.constraint("beta_constraint"),
        a.constraint("gamma_constraint"),
    )

    def param_shape(self, input_shape: Shape) -> tuple[int, ...]:
        axis = self.config["axis"]
        # Keras indexes the axes whether or not it creates weights on them;
        # only weights need known sizes (layer_normalization.py, build).
        normalized_axes(self, input_shape, axis, known=self.has_weights)
        # Keras sorts the axes as given (negative ones first) and keeps
        # duplicates: the weights span those axes in that order.
        axes = [axis] if isinstance(axis, int) else sorted(axis)
        return tuple(input_shape[ax] for ax in axes)  # type: ignore[misc]

    @property
    def has_weights(self) -> bool:
        c = self.config
        return bool(c["scale"] or c["center"] or c["rms_scaling"])

    def build_weights(self, input_shape: Shape) -> list[Weight]:
        shape = self.param_shape(input_shape)
        weights = []
        # rms_scaling keeps gamma only (layer_normalization.py).
        if self.config["scale"] or self.config["rms_scaling"]:
            weights.append(Weight("gamma", shape))
        if self.config["center"] and not self.config["rms_scaling"]:
            weights.append(Weight("beta", shape))
        return weights

    def formula(self, input_shape: Shape) -> str:
        n = len(self.build_weights(input_shape))
        size = " × ".join(str(d) for d in self.param_shape(input_shape))
        total = sum(w.size for w in self.build_weights(input_shape))
        return f"{n} × {size} = {total}" if n else "0"
