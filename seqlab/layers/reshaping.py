"""Reshaping layers: Flatten, RepeatVector, Reshape, Permute (no weights).

Keras sources: ``keras/src/layers/reshaping/`` and
``compute_reshape_output_shape`` in ``keras/src/ops/operation_utils.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import args as a
from ..argspec import Arg
from ..argspec import Kind
from ..errors import SpecError
from ..registry import Layer
from ..registry import Output
from ..registry import Shape
from ..registry import register


@register
class Flatten(Layer):
    type = "Flatten"
    example = ({}, (20, 4))
    summary = "Collapses every axis but the batch into one."
    min_ndim = 1
    args = (a.data_format(),)

    def compute_output_shape(self, input_shape: Shape) -> Output:
        rest = input_shape[1:]
        if not rest:
            return (input_shape[0], 1)
        return (input_shape[0], None if None in rest else math.prod(rest))  # type: ignore[arg-type]


@register
class RepeatVector(Layer):
    type = "RepeatVector"
    example = ({"n": 3}, (4,))
    summary = "Repeats a (batch, features) input n times: (batch, n, features)."
    ndim = 2
    args = (a.positive_int("n"),)

    def compute_output_shape(self, input_shape: Shape) -> Output:
        return (input_shape[0], self.config["n"], input_shape[1])


@register
class Reshape(Layer):
    type = "Reshape"
    example = ({"target_shape": [5, -1]}, (20, 4))
    summary = "Reshapes to target_shape (batch excluded); one -1 is inferred."
    args = (Arg("target_shape", Kind.INT_LIST, minimum=-1),)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        target = tuple(config["target_shape"])
        if target.count(-1) > 1:
            raise SpecError(
                "There must be at most one unknown dimension (-1) in "
                f"`target_shape`. Received: target_shape={target}.",
                "target_shape",
            )

    def compute_output_shape(self, input_shape: Shape) -> Output:
        target = tuple(self.config["target_shape"])
        rest = input_shape[1:]
        if None in rest:
            return (input_shape[0], *(None if d == -1 else d for d in target))
        size = math.prod(rest)  # type: ignore[arg-type]
        if -1 not in target:
            if size != math.prod(target):
                raise SpecError(
                    "The total size of the tensor must be unchanged. Received: "
                    f"input_shape={rest}, target_shape={target}"
                )
            return (input_shape[0], *target)
        known = math.prod(d for d in target if d != -1)
        if known == 0 or size % known:
            raise SpecError(
                "The total size of the tensor must be unchanged, however, the "
                "input size cannot by divided by the specified dimensions in "
                f"target_shape. Received: input_shape={rest}, "
                f"target_shape={target}"
            )
        return (input_shape[0], *(size // known if d == -1 else d for d in target))


@register
class Permute(Layer):
    type = "Permute"
    example = ({"dims": [2, 1]}, (20, 4))
    summary = "Permutes the non-batch axes; dims are 1-indexed, e.g. [2, 1]."
    args = (Arg("dims", Kind.INT_LIST, minimum=1),)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        dims = config["dims"]
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise SpecError(
                "Invalid permutation argument `dims` for Permute Layer. The set "
                "of indices in `dims` must be consecutive and start from 1. "
                f"Received dims={list(dims)}",
                "dims",
            )

    def check_input(self, input_shape: Shape) -> None:
        self.ndim = len(self.config["dims"]) + 1  # InputSpec(ndim=len(dims) + 1)
        super().check_input(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Output:
        return (input_shape[0], *(input_shape[d] for d in self.config["dims"]))
