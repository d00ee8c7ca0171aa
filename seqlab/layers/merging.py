"""Merging layers: Concatenate, Add, Subtract, Multiply, Average, Maximum,
Minimum and Dot. None has weights; each takes a list of tensors.

Keras sources: ``keras/src/layers/merging/{base_merge,concatenate,subtract,
dot}.py``. Their checks live in ``build`` and ``compute_output_shape`` and
quote the shapes as Python prints them (``(None, 5, 3)``, ``(None,)``), so
the messages here use ``repr`` of tuples rather than :func:`format_shape`.

Masks (observed in Keras 3.15 with two ``Embedding(mask_zero=True)``
inputs): the element-wise merges pass on the OR of their inputs' masks
(None if one is missing), Concatenate the concatenation of the masks
(ones where one is missing), Dot none. Their ``call`` has no ``mask``
parameter; a mask-consuming layer after them adds the mask ops to the
graph: after Add ``not_equal``, ``not_equal_1``, ``logical_or``; after
Concatenate ``expand_dims``, ``zeros_like`` (per input), ``logical_or``
(per input), ``concatenate_<n>`` and ``any``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import ClassVar

from ..argspec import Arg
from ..argspec import Kind
from ..errors import SpecError
from ..registry import Layer
from ..registry import Output
from ..registry import Shape
from ..registry import register


def shapes_repr(shapes: Sequence[Shape]) -> str:
    """Several shapes as Keras's messages print them: ``[(None, 3), (None, 3)]``
    for a call on a list, ``((None, 3), (None, 3))`` for the tuple a
    Sequential model passes on after a layer with ``return_state``."""
    if isinstance(shapes, tuple):
        return repr(tuple(tuple(s) for s in shapes))
    return repr([tuple(s) for s in shapes])


class ListLayer(Layer):
    """A layer called on one list of tensors (``layer([a, b])``).

    ``call_output`` takes the list of shapes (the graph form);
    ``output_shape`` is what a Sequential model hands the layer: one shape,
    or a tuple of them after a layer with ``return_state`` (Keras's
    Sequential passes the outputs on as they are).
    """

    call_form = "list"

    def call_output(self, inputs: Any, options: Mapping[str, Any]) -> Output:
        if not isinstance(inputs, list):
            return self.output_shape(inputs)
        return self.compute_list_output(inputs)

    def output_shape(self, input_shape: Any) -> Output:
        if not isinstance(input_shape, list):
            self.refuse_one(input_shape)
        # Keras's Sequential hands on several outputs as a tuple.
        return self.compute_list_output(tuple(input_shape))

    def refuse_one(self, input_shape: Shape) -> None:
        """Keras's refusal of one tensor where a list is needed."""
        raise NotImplementedError

    def compute_list_output(self, shapes: Sequence[Shape]) -> Output:
        """Keras's ``build`` checks and ``compute_output_shape`` on a list."""
        raise NotImplementedError

    def macs(self, input_shape: Any, output: Output) -> int | None:
        return 0


class Merge(ListLayer):
    """The element-wise merges (``base_merge.Merge``): numpy-style
    broadcasting of the non-batch shapes, right-aligned."""

    example: ClassVar[tuple[dict[str, Any], Any]] = ({}, [(5, 3), (5, 3)])
    supports_masking = True
    #: base_merge.py compute_mask: OR of the masks when all are given.
    mask_combine = "or"
    #: The arithmetic of ``formula`` and the summary line's verb.
    args = ()

    def refuse_one(self, input_shape: Shape) -> None:
        raise SpecError(
            "A merge layer should be called on a list of inputs. "
            f"Received: input_shape={tuple(input_shape)!r} (not a list of shapes)"
        )

    @staticmethod
    def broadcast(shape1: Shape, shape2: Shape) -> Shape:
        """``Merge._compute_elemwise_op_output_shape`` of two non-batch shapes."""
        if len(shape1) < len(shape2):
            shape1, shape2 = shape2, shape1
        if not shape2:
            return shape1
        out = list(shape1[: -len(shape2)])
        for i, j in zip(shape1[-len(shape2) :], shape2, strict=True):
            if i is None or j is None:
                out.append(None)
            elif i == 1:
                out.append(j)
            elif j == 1 or i == j:
                out.append(i)
            else:
                raise SpecError(
                    "Inputs have incompatible shapes. "
                    f"Received shapes {tuple(shape1)!r} and {tuple(shape2)!r}"
                )
        return tuple(out)

    def compute_list_output(self, shapes: Sequence[Shape]) -> Output:
        # Merge.build: the batch sizes, then the shapes folded left to right.
        batches = {s[0] for s in shapes if s} - {None}
        if len(batches) > 1:
            raise SpecError(
                "Cannot merge tensors with different batch sizes. "
                f"Received tensors with shapes {shapes_repr(shapes)}"
            )
        out = tuple(shapes[0][1:])
        for shape in shapes[1:]:
            out = self.broadcast(out, tuple(shape[1:]))
        self.check_count(shapes)
        # A rank-0 input has no batch axis: ``s[0]`` is skipped when empty.
        return (batches.pop() if len(batches) == 1 else None, *out)

    def check_count(self, shapes: Sequence[Shape]) -> None:
        """Subtract's rule on the number of inputs (after the shape fold)."""


@register
class Add(Merge):
    type = "Add"
    summary = "Adds a list of tensors element-wise (numpy broadcasting of the non-batch axes)."


@register
class Subtract(Merge):
    type = "Subtract"
    summary = "Subtracts the second of two tensors from the first, element-wise."
    list_inputs = (2, 2)

    def check_count(self, shapes: Sequence[Shape]) -> None:
        if len(shapes) != 2:
            raise SpecError(
                "A `Subtract` layer should be called on exactly 2 inputs. "
                f"Received: input_shape={shapes_repr(shapes)}"
            )


@register
class Multiply(Merge):
    type = "Multiply"
    summary = "Multiplies a list of tensors element-wise."


@register
class Average(Merge):
    type = "Average"
    summary = "Averages a list of tensors element-wise."


@register
class Maximum(Merge):
    type = "Maximum"
    summary = "The element-wise maximum of a list of tensors."


@register
class Minimum(Merge):
    type = "Minimum"
    summary = "The element-wise minimum of a list of tensors."


@register
class Concatenate(ListLayer):
    type = "Concatenate"
    example = ({"axis": -1}, [(5, 3), (5, 2)])
    summary = "Joins a list of tensors along `axis`; the other axes must match."
    supports_masking = True
    mask_combine = "concatenate"
    args = (Arg("axis", Kind.INT, -1, doc="The axis to join along (-1: the features)."),)

    def refuse_one(self, input_shape: Shape) -> None:
        raise SpecError(
            "A `Concatenate` layer should be called on a list of at least 1 "
            f"input. Received: input_shape={tuple(input_shape)!r}"
        )

    def compute_list_output(self, shapes: Sequence[Shape]) -> Output:
        axis: int = self.config["axis"]
        # Concatenate.build, literally: the axis is deleted by its index as
        # given (a non-negative axis beyond a shape's rank deletes nothing),
        # the "squeezable axes" loop of Keras never deletes anything, and
        # the batch axis is compared too.
        reduced = set()
        for shape in shapes:
            dims = list(shape)
            if len(dims) > axis:
                if not -len(dims) <= axis:
                    raise SpecError(
                        "list assignment index out of range (Keras's Concatenate "
                        f"deletes axis {axis} of each input shape: "
                        f"{shapes_repr(shapes)})."
                    )
                del dims[axis]
            reduced.add(tuple(dims))
        if len(reduced) != 1:
            message = (
                "A `Concatenate` layer requires inputs with matching shapes "
                f"except for the concatenation axis. Received: input_shape={shapes_repr(shapes)}"
            )
            ranks = {len(s) for s in reduced}
            if len(ranks) != 1:
                raise SpecError(message)
            for i in range(ranks.pop()):
                if len({s[i] for s in reduced if s[i] is not None}) > 1:
                    raise SpecError(message)
        # compute_output_shape: the first input's shape, ``axis`` summed.
        out = list(shapes[0])
        for shape in shapes[1:]:
            if not -len(out) <= axis < len(out):
                raise SpecError(
                    "list index out of range (Keras's Concatenate reads axis "
                    f"{axis} of the first input's shape {tuple(shapes[0])!r}, which has "
                    f"rank {len(out)})."
                )
            if not -len(shape) <= axis < len(shape):
                raise SpecError(
                    "tuple index out of range (Keras's Concatenate reads axis "
                    f"{axis} of input shape {tuple(shape)!r})."
                )
            if out[axis] is None or shape[axis] is None:
                out[axis] = None
                break
            out[axis] += shape[axis]  # type: ignore[operator]
        return tuple(out)


@register
class Dot(ListLayer):
    type = "Dot"
    example = ({"axes": -1}, [(5, 4), (6, 4)])
    summary = "Dot products of two tensors' samples along `axes`; `normalize` gives cosines."
    list_inputs = (2, 2)
    args = (
        Arg(
            "axes",
            Kind.AXIS,
            doc="One axis for both inputs, or [axis of the first, axis of the second].",
        ),
        Arg("normalize", Kind.BOOL, False),
    )

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        axes = config["axes"]
        if not isinstance(axes, int) and len(axes) != 2:
            raise SpecError(
                "Invalid format for argument `axes`: it should contain two "
                f"elements. Received: axes={axes!r}",
                "axes",
            )

    def refuse_one(self, input_shape: Shape) -> None:
        raise SpecError(
            "A `Dot` layer should be called on a list of 2 inputs. "
            f"Received: input_shape={tuple(input_shape)!r}"
        )

    def axes(self, shape1: Shape, shape2: Shape) -> tuple[int, int]:
        """The axis of each input, as ``Dot.build`` reads ``axes``."""
        axes = self.config["axes"]
        if isinstance(axes, int):
            if axes < 0:
                return axes % len(shape1), axes % len(shape2)
            return axes, axes
        return axes[0], axes[1]

    def compute_list_output(self, shapes: Sequence[Shape]) -> Output:
        if len(shapes) != 2:
            raise SpecError(
                "A `Dot` layer should be called on a list of 2 inputs. "
                f"Received: input_shape={shapes_repr(shapes)}"
            )
        shape1, shape2 = (tuple(s) for s in shapes)
        ax1, ax2 = self.axes(shape1, shape2)
        for ax, shape in ((ax1, shape1), (ax2, shape2)):
            if not -len(shape) <= ax < len(shape):
                raise SpecError(
                    f"tuple index out of range (Dot reads axis {ax} of input shape {shape!r})."
                )
        if shape1[ax1] != shape2[ax2]:
            raise SpecError(
                f"Incompatible input shapes: axis values {shape1[ax1]} (at axis "
                f"{ax1}) != {shape2[ax2]} (at axis {ax2}). Full input shapes: "
                f"{shape1!r}, {shape2!r}"
            )
        # compute_output_shape pops the axes, then the second batch axis.
        first, second = list(shape1), list(shape2)
        first.pop(ax1)
        second.pop(ax2)
        if not second:
            raise SpecError(
                f"pop from empty list (Dot drops the batch axis of {shape2!r} after axis {ax2})."
            )
        second.pop(0)
        out = first + second
        if len(out) == 1:
            out.append(1)
        return tuple(out)

    def macs(self, input_shape: Any, output: Output) -> int | None:
        # One multiply-accumulate per output value and step of the reduced axis.
        shape1, shape2 = input_shape
        ax1, _ = self.axes(shape1, shape2)
        rest = [*output[1:], shape1[ax1]]  # type: ignore[index]
        if None in rest:
            return None
        return math.prod(rest)  # type: ignore[arg-type]
