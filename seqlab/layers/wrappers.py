"""Wrappers: TimeDistributed and Bidirectional.

Keras sources: ``keras/src/layers/rnn/time_distributed.py`` and
``bidirectional.py``. A wrapper's ``layer`` argument holds a configured
:class:`~seqlab.registry.Layer`; the engine builds it before the wrapper,
in the order Keras code constructs them, so automatic names agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import ClassVar

from ..argspec import Arg
from ..argspec import Kind
from ..errors import SpecError
from ..registry import Layer
from ..registry import Output
from ..registry import Shape
from ..registry import Weight
from ..registry import format_shape
from ..registry import register

#: What Bidirectional may wrap: the layers with ``go_backwards``.
RECURRENT = ("LSTM", "GRU", "SimpleRNN", "ConvLSTM1D")


class Wrapper(Layer):
    """A layer that owns other layers and builds them on its input."""

    #: ``trainable=False`` on a wrapper does not reach its layers' variables:
    #: ``Layer.__init__`` applies it before the wrapper has its layers
    #: (``Wrapper.__init__`` and ``Bidirectional.__init__`` set them after
    #: ``super().__init__(**kwargs)``), so the model still trains them.
    freezes_variables: ClassVar[bool] = False

    @property
    def variable_dtype(self) -> str | None:
        # The wrapper's dtype policy does not reach its layers either: Keras
        # re-creates them from their own configs, policies included.
        return None

    def placed_sublayers(self, input_shape: Shape) -> list[tuple[Layer, Shape]]:
        """Each owned layer with the input shape it is built on."""
        raise NotImplementedError

    def build_weights(self, input_shape: Shape) -> list[Weight]:
        # A call builds the layer, and its report and formula read the same
        # weights again: they are made once per input (of this layer object,
        # which lives as long as one analysis).
        built = self.__dict__.get("_built")
        if built is not None and built[0] == input_shape:
            return list(built[1])
        # Each variable keeps the flag and dtype its own layer gave it.
        weights = [
            Weight(f"{layer.name}/{w.name}", w.shape, w.trainable, w.dtype)
            for layer, shape in self.placed_sublayers(input_shape)
            for w in layer.variables(shape)
        ]
        self._built = (input_shape, weights)
        return list(weights)


@register
class TimeDistributed(Wrapper):
    type = "TimeDistributed"
    example = ({"layer": {"type": "Dense", "units": 1}}, (5, 5))
    summary = "Applies `layer` to every time step (axis 1) of its input."
    args = (Arg("layer", Kind.LAYER, doc="The layer applied to each time step."),)
    supports_masking = True
    call_mask = True

    @property
    def layer(self) -> Layer:
        return self.config["layer"]  # type: ignore[no-any-return]

    @property
    def sublayers(self) -> list[Layer]:
        return [self.layer]

    def check_input(self, input_shape: Shape) -> None:
        if len(input_shape) < 3:
            raise SpecError(
                "`TimeDistributed` Layer should be passed an `input_shape` with "
                f"at least 3 dimensions, received: {format_shape(input_shape)}"
            )

    def child_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], *input_shape[2:])

    def placed_sublayers(self, input_shape: Shape) -> list[tuple[Layer, Shape]]:
        return [(self.layer, self.child_shape(input_shape))]

    def compute_output_shape(self, input_shape: Shape) -> Output:
        shape = self.child_shape(input_shape)
        inner = self.layer
        if inner.type == "ConvLSTM1D" and len(shape) == 3 and inner.ndim == 4:
            # Keras's TimeDistributed builds and calls its layer without the
            # InputSpec check: a ConvLSTM1D given 3-D steps fails in the
            # convolution of one 2-D step, with one gate's kernel.
            c = inner.config
            kernel = (c["kernel_size"][0], shape[-1], c["filters"])
            raise SpecError(
                "Kernel shape must have the same length as input, but received kernel of "
                f"shape {format_shape(kernel)} and input of shape {format_shape(shape[::2])}."
            )
        child = self.layer.output_shape(shape)
        if isinstance(child, list):
            raise SpecError(
                f"`TimeDistributed` cannot wrap layer {self.layer.name!r}: it "
                "returns several tensors (return_state=True)."
            )
        return (child[0], input_shape[1], *child[1:])

    def formula(self, input_shape: Shape) -> str:
        return self.layer.formula(self.child_shape(input_shape))

    def macs(self, input_shape: Shape, output: Output) -> int | None:
        child = self.child_shape(input_shape)
        inner = self.layer.macs(child, self.layer.output_shape(child))
        steps = input_shape[1]
        if inner is None or steps is None:
            return None
        return steps * inner


def _with(layer: Layer, name: str, **changes: Any) -> Layer:
    """A copy of ``layer`` under another name (Keras re-creates it from config)."""
    return type(layer)({**layer.config, **changes}, name)


@register
class Bidirectional(Wrapper):
    type = "Bidirectional"
    example = ({"layer": {"type": "LSTM", "units": 5}}, (10, 3))
    summary = "Runs a recurrent layer forwards and backwards and merges the two."
    args = (
        Arg("layer", Kind.LAYER, layer_types=RECURRENT, doc="The recurrent layer."),
        Arg(
            "merge_mode",
            Kind.CHOICE,
            "concat",
            choices=("concat", "sum", "mul", "ave"),
            nullable=True,
        ),  # fmt: skip
        Arg(
            "backward_layer",
            Kind.LAYER,
            None,
            nullable=True,
            layer_types=RECURRENT,
            doc="A different layer for the backward pass (go_backwards=True).",
        ),  # fmt: skip
    )

    def __init__(self, config: Mapping[str, Any], name: str) -> None:
        super().__init__(config, name)
        inner: Layer = self.config["layer"]
        base = inner.name.removeprefix("forward_")
        self.forward = _with(inner, f"forward_{base}")
        backward = self.config["backward_layer"]
        if backward is None:
            # Keras's copy always runs backwards (bidirectional.py:
            # ``config["config"]["go_backwards"] = True``).
            base = inner.name.removeprefix("backward_")
            backward = _with(inner, f"backward_{base}", go_backwards=True)
        self.backward: Layer = backward

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        forward, backward = config["layer"], config["backward_layer"]
        fwd = forward.config
        # Without backward_layer the copy has go_backwards=True, which a
        # forward layer with go_backwards=True contradicts (_verify_layer_config).
        bwd = {**fwd, "go_backwards": True} if backward is None else backward.config
        if fwd["go_backwards"] == bwd["go_backwards"]:
            raise SpecError(
                "Forward layer and backward layer should have different "
                f"`go_backwards` value. Received: forward_layer.go_backwards "
                f"{fwd['go_backwards']}, backward_layer.go_backwards="
                f"{bwd['go_backwards']}",
                "layer.go_backwards" if backward is None else "backward_layer.go_backwards",
            )
        for attr in ("stateful", "return_sequences", "return_state"):
            if fwd[attr] != bwd[attr]:
                raise SpecError(
                    "Forward layer and backward layer are expected to have the "
                    f'same value for attribute "{attr}", got "{fwd[attr]}" for '
                    f'forward layer and "{bwd[attr]}" for backward layer',
                    f"backward_layer.{attr}",
                )
        if fwd["stateful"] and fwd["return_state"]:
            # Bidirectional.compute_mask (bidirectional.py) returns
            # ``(output_mask,) + state_mask * 2`` with ``state_mask`` a
            # generator once stateful layers have their state variables.
            raise SpecError(
                "TypeError: unsupported operand type(s) for *: 'generator' and "
                "'int'. Keras cannot build a Bidirectional layer whose layers "
                "are both stateful and return_state (Bidirectional.compute_mask).",
                "layer.return_state",
            )

    supports_masking = True
    call_mask = True

    def mask_outputs(self) -> int:
        # bidirectional.py compute_mask: the sequences keep the mask, both
        # of them when merge_mode is None.
        if not self.forward.config["return_sequences"]:
            return 0
        return 2 if self.config["merge_mode"] is None else 1

    def mask_failure(self, input_shape: Shape, mask_shape: Shape) -> str | None:
        # Both directions get the mask.
        return self.forward.mask_failure(input_shape, mask_shape) or self.backward.mask_failure(
            input_shape, mask_shape
        )

    def call_failure(self, inputs: Any, options: Mapping[str, Any]) -> str | None:
        # compute_output_shape reads the forward layer alone; a backward
        # layer of other units gives other tensors when the model runs
        # (a concat narrower than declared, a sum that cannot broadcast).
        forward = self.forward.compute_output_shape(inputs)
        backward = self.backward.compute_output_shape(inputs)
        if forward == backward:
            return None
        first = forward[0] if isinstance(forward, list) else forward
        other = backward[0] if isinstance(backward, list) else backward
        return (
            f"Bidirectional declares its output from the forward layer ({first} per "
            f"direction) but runs the backward layer's ({other}): the tensors differ from "
            "the shapes Keras built the model with"
        )

    def initial_state_shapes(self, input_shape: Shape) -> list[Shape] | None:
        # The forward layer's states, then the backward layer's.
        return [
            *(self.forward.initial_state_shapes(input_shape) or []),
            *(self.backward.initial_state_shapes(input_shape) or []),
        ]

    @property
    def sublayers(self) -> list[Layer]:
        return [self.forward, self.backward]

    def placed_sublayers(self, input_shape: Shape) -> list[tuple[Layer, Shape]]:
        return [(self.forward, input_shape), (self.backward, input_shape)]

    def check_input(self, input_shape: Shape) -> None:
        # Bidirectional takes its layer's InputSpec: a wrong rank names it.
        self.ndim = self.forward.ndim
        super().check_input(input_shape)
        self.forward.check_input(input_shape)
        self.backward.check_input(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Output:
        # Keras takes the shape from the forward layer alone, even when a
        # custom backward layer has other units (bidirectional.py).
        output = self.forward.compute_output_shape(input_shape)
        self.backward.compute_output_shape(input_shape)  # its own errors
        states: list[Shape] = []
        if isinstance(output, list):
            output, states = output[0], output[1:]
        mode = self.config["merge_mode"]
        if mode == "concat":
            merged: Output = (*output[:-1], 2 * output[-1])  # type: ignore[operator]
        elif mode is None:
            merged = [output, output]
        else:
            merged = output
        if not states:
            return merged
        head = merged if isinstance(merged, list) else [merged]
        return head + states + states

    def formula(self, input_shape: Shape) -> str:
        fwd = self.forward.formula(input_shape).rsplit(" = ", 1)
        bwd = self.backward.formula(input_shape).rsplit(" = ", 1)
        total = int(fwd[1]) + int(bwd[1])
        if fwd[0] == bwd[0]:
            return f"2 × ({fwd[0]}) = {total}"
        return f"({fwd[0]}) + ({bwd[0]}) = {total}"

    def macs(self, input_shape: Shape, output: Output) -> int | None:
        counts = [
            layer.macs(input_shape, layer.compute_output_shape(input_shape))
            for layer in (self.forward, self.backward)
        ]
        if None in counts:
            return None
        return sum(counts)  # type: ignore[arg-type]
