"""Recurrent layers: SimpleRNN, GRU, LSTM and ConvLSTM1D.

Keras sources: ``keras/src/layers/rnn/{rnn,simple_rnn,gru,lstm,conv_lstm}.py``.
"""

from __future__ import annotations

from typing import ClassVar

from .. import args as a
from ..argspec import Arg
from ..argspec import Kind
from ..checks import check_bfloat16_initializers
from ..errors import SpecError
from ..registry import Layer
from ..registry import Output
from ..registry import Shape
from ..registry import Weight
from ..registry import feature_dim
from ..registry import format_shape
from ..registry import register
from .conv import conv_length
from .conv import conv_options

# The RNN base-class arguments, in Keras's order (`keras.layers.RNN`).
RNN_FLAGS = (
    a.flag("return_sequences", False),
    a.flag("return_state", False),
    a.flag("go_backwards", False),
    a.flag("stateful", False),
    a.flag("unroll", False),
    a.flag("zero_output_for_mask", False),
)


def cell_args(*, recurrent_activation: bool, forget_bias: bool) -> tuple[Arg, ...]:
    """The cell arguments LSTM, GRU and SimpleRNN share (units excluded)."""
    return (
        a.activation("activation", "tanh"),
        *((a.activation("recurrent_activation", "sigmoid"),) if recurrent_activation else ()),
        a.flag("use_bias", True),
        a.initializer("kernel_initializer", "glorot_uniform"),
        a.initializer("recurrent_initializer", "orthogonal"),
        a.initializer("bias_initializer", "zeros"),
        *((a.flag("unit_forget_bias", True),) if forget_bias else ()),
        a.regularizer("kernel_regularizer"),
        a.regularizer("recurrent_regularizer"),
        a.regularizer("bias_regularizer"),
        a.regularizer("activity_regularizer"),
        a.constraint("kernel_constraint"),
        a.constraint("recurrent_constraint"),
        a.constraint("bias_constraint"),
        a.rate("dropout", 0.0),
        a.rate("recurrent_dropout", 0.0),
        a.seed(),
    )  # fmt: skip


class RNN(Layer):
    """What every recurrent layer shares: sequences in, states out."""

    ndim = 3
    activations_on_output = False
    supports_masking = True
    call_mask = True
    #: Gate blocks in the kernels: 1 for SimpleRNN, 3 for GRU, 4 for LSTM.
    gates: ClassVar[int] = 1
    #: Number of state tensors returned with ``return_state``.
    states: ClassVar[int] = 1

    def check_input(self, input_shape: Shape) -> None:
        super().check_input(input_shape)
        if self.config["stateful"] and input_shape[0] is None:
            raise SpecError(
                "When using `stateful=True` in a RNN, the batch size must be "
                f"static. Found dynamic batch size: "
                f"sequence.shape={format_shape(input_shape)}. "
                "Give the model a `batch_size`."
            )

    def step_output(self, input_shape: Shape) -> Shape:
        """The shape of one time step's output, batch included."""
        return (input_shape[0], self.config["units"])

    def mask_outputs(self) -> int:
        # rnn.py compute_mask: the mask goes on with the sequences only.
        return 1 if self.config["return_sequences"] else 0

    def initial_state_shapes(self, input_shape: Shape) -> list[Shape] | None:
        # One state per returned state, each one time step's output.
        return [self.step_output(input_shape)[1:]] * self.states

    def compute_output_shape(self, input_shape: Shape) -> Output:
        step = self.step_output(input_shape)
        if self.config["return_sequences"]:
            output: Shape = (step[0], input_shape[1], *step[1:])
        else:
            output = step
        if self.config["return_state"]:
            return [output] + [step] * self.states
        return output

    def build_weights(self, input_shape: Shape) -> list[Weight]:
        i = feature_dim(self, input_shape)
        h = self.config["units"]
        g = self.gates
        weights = [Weight("kernel", (i, g * h)), Weight("recurrent_kernel", (h, g * h))]
        if self.config["use_bias"]:
            weights.append(Weight("bias", self.bias_shape(h)))
        return weights

    def initializer_shape(self, weight: Weight) -> tuple[int, ...]:
        # With unit_forget_bias, LSTM and ConvLSTM cells build the bias from
        # bias_initializer((units,)), ones((units,)) and a (2 × units,) part.
        if weight.name == "bias" and self.config.get("unit_forget_bias"):
            return (weight.shape[0] // self.gates,)
        return weight.shape

    def bias_shape(self, h: int) -> tuple[int, ...]:
        """The shape of the (single) bias vector."""
        return (self.gates * h,)

    def formula(self, input_shape: Shape) -> str:
        i, h = input_shape[-1], self.config["units"]
        bias = f" + {self.bias_term(h)}" if self.config["use_bias"] else ""
        inner = f"({i} + {h}) × {h}{bias}"
        p = (i + h) * h + (self.bias_size(h) if self.config["use_bias"] else 0)  # type: ignore[operator]
        if self.gates == 1:
            return f"{inner} = {p}"
        return f"{self.gates} × ({inner}) = {self.gates * p}"

    def bias_term(self, h: int) -> str:
        """The bias of one gate block, as written in the formula."""
        return str(h)

    def bias_size(self, h: int) -> int:
        """The bias scalars of one gate block."""
        return h

    def macs(self, input_shape: Shape, output: Output) -> int | None:
        steps, i, h = input_shape[1], input_shape[-1], self.config["units"]
        if steps is None or i is None:
            return None
        return steps * self.gates * h * (i + h)


@register
class SimpleRNN(RNN):
    type = "SimpleRNN"
    example = ({"units": 5}, (10, 3))
    summary = "Fully-connected RNN: h = activation(x·W + h·U + b)."
    args = (
        a.positive_int("units"),
        *cell_args(recurrent_activation=False, forget_bias=False),
        *RNN_FLAGS,
    )


@register
class GRU(RNN):
    type = "GRU"
    example = ({"units": 5}, (10, 3))
    summary = "Gated recurrent unit; reset_after=True (the Keras 3 default) has two biases."
    gates = 3
    args = (
        a.positive_int("units"),
        *cell_args(recurrent_activation=True, forget_bias=False),
        *RNN_FLAGS,
        a.flag("reset_after", True),
    )

    def initializer_shape(self, weight: Weight) -> tuple[int, ...]:
        # With unit_forget_bias, LSTM and ConvLSTM cells build the bias from
        # bias_initializer((units,)), ones((units,)) and a (2 × units,) part.
        if weight.name == "bias" and self.config.get("unit_forget_bias"):
            return (weight.shape[0] // self.gates,)
        return weight.shape

    def bias_shape(self, h: int) -> tuple[int, ...]:
        # Separate input and recurrent biases when reset_after (gru.py).
        return (2, 3 * h) if self.config["reset_after"] else (3 * h,)

    def bias_term(self, h: int) -> str:
        return f"2 × {h}" if self.config["reset_after"] else str(h)

    def bias_size(self, h: int) -> int:
        return 2 * h if self.config["reset_after"] else h


@register
class LSTM(RNN):
    type = "LSTM"
    example = ({"units": 5}, (1, 1))
    summary = "Long short-term memory: four gates, one bias; states h and c."
    gates = 4
    states = 2
    args = (
        a.positive_int("units"),
        *cell_args(recurrent_activation=True, forget_bias=True),
        *RNN_FLAGS,
    )


@register
class ConvLSTM1D(RNN):
    type = "ConvLSTM1D"
    #: ConvLSTM creates its cell without passing ``trainable`` on
    #: (``keras/src/layers/rnn/conv_lstm.py``, ``ConvLSTM.__init__``; LSTM
    #: passes ``trainable=kwargs.get("trainable", True)``), so a frozen
    #: ConvLSTM1D's variables stay trainable for the model and for wrappers.
    freezes_variables = False
    example = ({"filters": 8, "kernel_size": 3}, (5, 20, 4))
    summary = "LSTM whose input and recurrent transforms are 1-D convolutions."
    ndim = 4
    gates = 4
    states = 2
    args = (
        a.positive_int("filters"),
        Arg("kernel_size", Kind.INT_TUPLE, minimum=1, length=1),
        *conv_options(causal=False, groups=False),
        *cell_args(recurrent_activation=True, forget_bias=True),
        *RNN_FLAGS,
    )

    @classmethod
    def validate_config(cls, config: dict) -> None:  # type: ignore[override]
        # conv_lstm.py words it apart from Conv1D's check.
        if config["strides"][0] > 1 and config["dilation_rate"][0] > 1:
            raise SpecError(
                "Specifying `strides > 1` is not compatible with `dilation_rate > 1`. "
                "Please provide `strides=1` or `dilation_rate=1`. Received: "
                f"strides={tuple(config['strides'])} and "
                f"dilation_rate={tuple(config['dilation_rate'])}",
                "strides",
            )

    @property
    def channels_first(self) -> bool:
        return self.config["data_format"] == "channels_first"

    def channels(self, input_shape: Shape) -> int | None:
        return input_shape[2] if self.channels_first else input_shape[-1]

    def length(self, input_shape: Shape) -> int | None:
        return input_shape[-1] if self.channels_first else input_shape[2]

    @staticmethod
    def step_input(input_shape: Shape) -> Shape:
        """One time step's input, as the cell sees it (and Keras quotes it)."""
        return (input_shape[0], *input_shape[2:])

    def output_shape(self, input_shape: Shape) -> Output:
        # Keras builds the cell's weights before it computes the output
        # length: a bfloat16 Orthogonal recurrent kernel fails first (Qr).
        self.check_input(input_shape)
        if self.variable_dtype == "bfloat16":
            check_bfloat16_initializers(self, self.variables(input_shape))
        return self.compute_output_shape(input_shape)

    def check_input(self, input_shape: Shape) -> None:
        super().check_input(input_shape)
        if self.length(input_shape) is None:
            raise SpecError(
                "ConvLSTM layers only support static input shapes for the "
                "spatial dimension. Received invalid input shape: "
                f"input_shape={self.step_input(input_shape)}"
            )
        if self.channels(input_shape) is None:
            raise SpecError(
                "The channel dimension of the inputs (last axis) should be "
                "defined. Found None. Full input shape received: "
                f"input_shape={self.step_input(input_shape)}"
            )

    def step_output(self, input_shape: Shape) -> Shape:
        c = self.config
        f = c["filters"]
        step = self.step_input(input_shape)
        kernel = (c["kernel_size"][0], self.channels(input_shape), f)
        out = conv_length(step, self.length(input_shape), kernel, c)
        return (input_shape[0], f, out) if self.channels_first else (input_shape[0], out, f)

    def mask_failure(self, input_shape: Shape, mask_shape: Shape) -> str | None:
        # The RNN loop selects each step's new state where the step's mask is
        # set: a mask of the input's length (batch, steps, length) cannot
        # broadcast with a state of another length (verified on Keras 3.15:
        # `model(zeros)` fails; channels_first is not modelled).
        if self.channels_first or len(mask_shape) != 3:
            return None
        f = self.config["filters"]
        out, got = self.step_output(input_shape)[1], mask_shape[2]
        if out is None or got is None or out == got:
            return None
        return (
            f"Exception encountered when calling {self.type}.call(): condition "
            f"[batch,{got},{f}], then [batch,{out},{f}], and else [batch,{out},{f}] must be "
            f"broadcastable [Op:SelectV2]: the input's mask keeps its length {got}, the "
            f"state has the output's length {out}"
        )

    def build_weights(self, input_shape: Shape) -> list[Weight]:
        c = self.config
        k, f, ch = c["kernel_size"][0], c["filters"], self.channels(input_shape)
        assert ch is not None
        weights = [
            Weight("kernel", (k, ch, 4 * f)),
            Weight("recurrent_kernel", (k, f, 4 * f)),
        ]
        if c["use_bias"]:
            weights.append(Weight("bias", (4 * f,)))
        return weights

    def formula(self, input_shape: Shape) -> str:
        c = self.config
        k, f, ch = c["kernel_size"][0], c["filters"], self.channels(input_shape)
        bias = f" + {f}" if c["use_bias"] else ""
        p = sum(w.size for w in self.build_weights(input_shape))
        return f"4 × ({k} × {ch} × {f} + {k} × {f} × {f}{bias}) = {p}"

    def macs(self, input_shape: Shape, output: Output) -> int | None:
        c = self.config
        steps, ch = input_shape[1], self.channels(input_shape)
        out_len = self.step_output(input_shape)[2 if self.channels_first else 1]
        if steps is None or ch is None or out_len is None:
            return None
        k, f = c["kernel_size"][0], c["filters"]
        return steps * out_len * 4 * f * k * (ch + f)
