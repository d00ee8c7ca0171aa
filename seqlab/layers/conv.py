"""Convolution and pooling over one spatial axis.

Keras sources: ``keras/src/layers/convolutional/base_conv.py``,
``keras/src/layers/pooling/base_pooling.py``, ``base_global_pooling.py`` and
the shape rules in ``keras/src/ops/operation_utils.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import ClassVar

from .. import args as a
from ..argspec import REQUIRED
from ..argspec import Arg
from ..argspec import Kind
from ..errors import SpecError
from ..registry import Layer
from ..registry import Output
from ..registry import Shape
from ..registry import Weight
from ..registry import format_shape
from ..registry import register


def conv_options(*, causal: bool, groups: bool) -> tuple[Arg, ...]:
    """strides, padding, data_format, dilation_rate (and groups), as in Keras."""
    paddings = ("valid", "same", "causal") if causal else ("valid", "same")
    return (
        Arg("strides", Kind.INT_TUPLE, 1, minimum=1, length=1),
        Arg("padding", Kind.CHOICE, "valid", choices=paddings),
        a.data_format(),
        Arg("dilation_rate", Kind.INT_TUPLE, 1, minimum=1, length=1),
        *((a.positive_int("groups", 1),) if groups else ()),
    )


def check_strides_dilation(config: Mapping[str, Any]) -> None:
    """Keras refuses strides > 1 together with dilation_rate > 1."""
    if config["strides"][0] > 1 and config["dilation_rate"][0] > 1:
        raise SpecError(
            "`strides > 1` not supported in conjunction with "
            f"`dilation_rate > 1`. Received: strides={tuple(config['strides'])} "
            f"and dilation_rate={tuple(config['dilation_rate'])}",
            "strides",
        )


def conv_length(
    input_shape: Shape, length: int | None, kernel: tuple[int, ...], config: Mapping[str, Any]
) -> int | None:
    """Output length of a 1-D convolution (``compute_conv_output_shape``) of
    an input of ``input_shape`` (batch, length and channels) by a kernel of
    shape ``kernel``; the error is Keras's, numpy's printing included."""
    if length is None:
        return None
    k, s, d = config["kernel_size"][0], config["strides"][0], config["dilation_rate"][0]
    if config["padding"] == "valid":
        out = (length - d * (k - 1) - 1) // s + 1
        if out <= 0:
            raise SpecError(
                "Computed output size would be zero or negative. Received "
                f"`inputs shape={tuple(input_shape)}`, `kernel shape={kernel}`, "
                f"`dilation_rate=[{d}]`, `strides=({s},)`, `padding=valid`."
            )
        return out
    # "same" and "causal" (a left pad of d·(k−1), then "valid").
    return (length - 1) // s + 1


class ChannelsMixin(Layer):
    """Where the length and channel axes are, by ``data_format``."""

    @property
    def channels_first(self) -> bool:
        return self.config["data_format"] == "channels_first"

    def length_axis(self) -> int:
        return -1 if self.channels_first else 1

    def channel_axis(self) -> int:
        return 1 if self.channels_first else -1

    def with_length(self, input_shape: Shape, length: int | None, channels: int | None) -> Shape:
        if self.channels_first:
            return (input_shape[0], channels, length)
        return (input_shape[0], length, channels)


@register
class Conv1D(ChannelsMixin):
    type = "Conv1D"
    example = ({"filters": 8, "kernel_size": 3}, (20, 4))
    summary = "1-D convolution over time: kernel (kernel_size, channels / groups, filters)."
    min_ndim = 3

    def built_input_spec(self, input_shape: Shape) -> tuple[int | None, dict[int, int]]:
        # base_conv.py: InputSpec(min_ndim=3, axes={channel_axis: channels}).
        size = input_shape[self.channel_axis()]
        return None, {} if size is None else {self.channel_axis(): size}

    args = (
        a.positive_int("filters"),
        Arg("kernel_size", Kind.INT_TUPLE, minimum=1, length=1),
        *conv_options(causal=True, groups=True),
        *a.kernel_args(),
    )

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        if config["filters"] % config["groups"]:
            raise SpecError(
                "The number of filters must be evenly divisible by the number "
                f"of groups. Received: groups={config['groups']}, "
                f"filters={config['filters']}.",
                "groups",
            )
        check_strides_dilation(config)

    def check_input(self, input_shape: Shape) -> None:
        # Keras's order: the InputSpec, then build's channel and group
        # checks, then the convolution's rank check when it is called.
        super().check_input(input_shape)
        channels = input_shape[self.channel_axis()]
        if channels is None:
            raise SpecError(
                f'Layer "{self.name}" (Conv1D) needs a known number of input '
                f"channels. Received: input_shape={format_shape(input_shape)}"
            )
        if channels % self.config["groups"]:
            raise SpecError(
                "The number of input channels must be evenly divisible by the "
                f"number of groups. Received groups={self.config['groups']}, but "
                f"the input has {channels} channels (full input shape is "
                f"{format_shape(input_shape)})."
            )
        if len(input_shape) != 3:
            kernel = (self.config["kernel_size"][0], channels // self.config["groups"],
                      self.config["filters"])  # fmt: skip
            raise SpecError(
                "Kernel shape must have the same length as input, but received "
                f"kernel of shape {format_shape(kernel)} and input of shape "
                f"{format_shape(input_shape)}."
            )

    def compute_output_shape(self, input_shape: Shape) -> Output:
        c = self.config
        channels = input_shape[self.channel_axis()]
        assert channels is not None  # check_input
        kernel = (c["kernel_size"][0], channels // c["groups"], c["filters"])
        length = conv_length(input_shape, input_shape[self.length_axis()], kernel, c)
        return self.with_length(input_shape, length, c["filters"])

    def build_weights(self, input_shape: Shape) -> list[Weight]:
        c = self.config
        channels = input_shape[self.channel_axis()]
        assert channels is not None
        weights = [Weight("kernel", (c["kernel_size"][0], channels // c["groups"], c["filters"]))]
        if c["use_bias"]:
            weights.append(Weight("bias", (c["filters"],)))
        return weights

    def formula(self, input_shape: Shape) -> str:
        c = self.config
        k, f, g = c["kernel_size"][0], c["filters"], c["groups"]
        ch = input_shape[self.channel_axis()]
        per_group = f"({ch} / {g})" if g > 1 else str(ch)
        bias = f" + {f}" if c["use_bias"] else ""
        p = sum(w.size for w in self.build_weights(input_shape))
        return f"{k} × {per_group} × {f}{bias} = {p}"

    def macs(self, input_shape: Shape, output: Output) -> int | None:
        assert not isinstance(output, list)
        out_len = output[self.length_axis()]
        if out_len is None:
            return None
        c = self.config
        ch = input_shape[self.channel_axis()]
        assert ch is not None
        return out_len * c["kernel_size"][0] * (ch // c["groups"]) * c["filters"]


class Pooling1D(ChannelsMixin):
    """Max and average pooling share their arguments and shape rule."""

    ndim = 3
    pool_default: ClassVar[Any] = 2

    @classmethod
    def pooling_args(cls, pool_default: Any) -> tuple[Arg, ...]:
        return (
            Arg("pool_size", Kind.INT_TUPLE, pool_default, minimum=1, length=1),
            Arg("strides", Kind.INT_TUPLE, None, minimum=1, length=1, nullable=True),
            # Pooling keeps `padding` verbatim: "SAME" is an error in Keras.
            Arg("padding", Kind.CHOICE, "valid", choices=("valid", "same")),
            a.data_format(),
        )

    def compute_output_shape(self, input_shape: Shape) -> Output:
        c = self.config
        p = c["pool_size"][0]
        s = (c["strides"] or c["pool_size"])[0]
        length = input_shape[self.length_axis()]
        channels = input_shape[self.channel_axis()]
        if length is None:
            out = None
        elif c["padding"] == "valid":
            out = (length - p) // s + 1
            if out <= 0:
                # Keras prints numpy arrays: [None 4 5], [6]; strides a tuple.
                shape = " ".join(str(d) for d in input_shape)
                raise SpecError(
                    "Computed output size would be zero or negative. Received: "
                    f"`inputs.shape=[{shape}]`, `pool_size=[{p}]`, "
                    f"`strides=({s},)`, `padding=valid`."
                )
        else:
            out = (length - 1) // s + 1
        return self.with_length(input_shape, out, channels)


@register
class MaxPooling1D(Pooling1D):
    type = "MaxPooling1D"
    example = ({}, (21, 4))
    summary = "Maximum over windows of pool_size steps."
    args = Pooling1D.pooling_args(2)


@register
class AveragePooling1D(Pooling1D):
    type = "AveragePooling1D"
    example = ({"pool_size": 3}, (20, 4))
    summary = "Mean over windows of pool_size steps."
    args = Pooling1D.pooling_args(REQUIRED)


class GlobalPooling1D(ChannelsMixin):
    ndim = 3
    args = (a.data_format(), a.flag("keepdims", False))

    def compute_output_shape(self, input_shape: Shape) -> Output:
        channels = input_shape[self.channel_axis()]
        if self.config["keepdims"]:
            return self.with_length(input_shape, 1, channels)
        return (input_shape[0], channels)


@register
class GlobalAveragePooling1D(GlobalPooling1D):
    type = "GlobalAveragePooling1D"
    example = ({}, (20, 4))
    summary = "Mean over the time axis."
    #: Its call takes the mask (a masked mean); compute_mask returns None.
    supports_masking = True
    call_mask = True

    def mask_outputs(self) -> int:
        return 0


@register
class GlobalMaxPooling1D(GlobalPooling1D):
    type = "GlobalMaxPooling1D"
    example = ({}, (20, 4))
    summary = "Maximum over the time axis."
