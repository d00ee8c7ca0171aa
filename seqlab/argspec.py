"""Argument specifications: how one Keras constructor argument is described.

:class:`Arg` (with its :class:`Kind` and the ``REQUIRED`` marker) is the
vocabulary of both the layers' argument lists (``seqlab.args``) and the
Keras object classes' config arguments (``seqlab.objects``). It lives apart
from both so that ``args`` can build on ``objects`` (the names of the
allowlisted initializers, regularizers and constraints) without a circle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Kind(enum.Enum):
    """How an argument's JSON value is validated and handed to Keras."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    #: One string out of ``choices`` (or null where ``nullable``).
    CHOICE = "choice"
    #: An int, or a list of exactly ``length`` ints (``kernel_size=3`` or ``[3]``).
    INT_TUPLE = "int_tuple"
    #: A list of ints (``Reshape.target_shape``, ``Permute.dims``).
    INT_LIST = "int_list"
    #: An int or a non-empty list of ints (normalization axes).
    AXIS = "axis"
    #: A Keras object named by a string out of ``choices`` or serialized as
    #: ``{"class_name": ..., "config": {...}}`` (initializers, regularizers,
    #: constraints). Only allowlisted classes are accepted.
    OBJECT = "object"
    #: A nested layer spec (``TimeDistributed.layer``, ``Bidirectional.layer``).
    LAYER = "layer"
    #: A Keras argument that seqlab accepts only at its default, null
    #: (``quantization_config``, ``lora_rank``): it changes the weights in
    #: ways the engine does not model.
    NULL = "null"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Default of an argument that has none in Keras.
REQUIRED: Any = _Required()


@dataclass(frozen=True, slots=True)
class Arg:
    """One Keras constructor argument.

    Args:
        name: the Keras argument name.
        kind: how the value is validated.
        default: the Keras default, or ``REQUIRED``.
        minimum, maximum: inclusive bounds for numbers (and for the ints of
            ``INT_TUPLE``/``INT_LIST``).
        exclusive_maximum: ``maximum`` itself is not allowed.
        exclusive_minimum: ``minimum`` itself is not allowed.
        choices: allowed strings for ``CHOICE`` and ``OBJECT``.
        nullable: null is a valid value.
        length: the tuple length for ``INT_TUPLE``.
        layer_types: the layer types a ``LAYER`` argument may hold (empty:
            any registered layer).
        doc: one line for the API documentation.
    """

    name: str
    kind: Kind
    default: Any = REQUIRED
    minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: bool = False
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False
    length: int | None = None
    layer_types: tuple[str, ...] = ()
    doc: str = ""

    @property
    def required(self) -> bool:
        """Whether Keras has no default for this argument."""
        return self.default is REQUIRED
