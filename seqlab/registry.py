"""The layer registry: one :class:`Layer` subclass per supported Keras layer.

A subclass names its Keras class (``type``), lists its Keras constructor
arguments with their Keras defaults (``args``), and implements the rules
Keras applies when the layer is built on an input shape: the input rank check
(``ndim``/``min_ndim``, Keras's ``InputSpec``), ``compute_output_shape`` and
the weight shapes (``build_weights``). Everything else (request validation,
the Keras builder in the worker, the tests) is derived from ``LAYERS``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any
from typing import ClassVar
from typing import NamedTuple
from typing import TypeVar

from .args import COMMON
from .argspec import Arg
from .errors import SpecError

#: A tensor shape; ``None`` stands for an unknown dimension (the batch, say).
Shape = tuple[int | None, ...]
#: What a layer returns: one shape, or a list of shapes for several outputs.
Output = Shape | list[Shape]


#: Bytes per scalar of each variable dtype (Keras's ``DTYPE_TO_SIZE`` / 8).
DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
#: The variable dtype of each dtype policy; None is the global policy.
VARIABLE_DTYPES = {
    None: "float32",
    "mixed_float16": "float32",
    "mixed_bfloat16": "float32",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "float32": "float32",
    "float64": "float64",
}

#: The compute dtype of each dtype policy: the ``mixed_*`` policies compute
#: in 16 bits (their variables are float32); None is the global float32. A
#: layer's outputs have it, and Keras converts an input of another float
#: dtype to it (``Layer.__call__``).
COMPUTE_DTYPES = {
    None: "float32",
    "mixed_float16": "float16",
    "mixed_bfloat16": "bfloat16",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "float32": "float32",
    "float64": "float64",
}


class Weight(NamedTuple):
    """One variable a layer creates when Keras builds it."""

    name: str
    shape: tuple[int, ...]
    trainable: bool = True
    #: The variable's dtype: its layer's policy's variable dtype.
    dtype: str = "float32"

    @property
    def size(self) -> int:
        """The number of scalars in the variable."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """The variable's memory, as Keras's ``weight_memory_size`` counts it."""
        return math.prod(self.shape) * DTYPE_BYTES[self.dtype]


def to_snake_case(name: str) -> str:
    """Keras's ``keras.src.utils.naming.to_snake_case``.

    >>> to_snake_case("SimpleRNN"), to_snake_case("ConvLSTM1D")
    ('simple_rnn', 'conv_lstm1d')
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@functools.cache
def _prefix(type_name: str) -> str:
    return to_snake_case(type_name)


@functools.cache
def default_config(cls: type[Layer]) -> dict[str, Any]:
    """Every optional argument of a layer class at its Keras default (shared: do not mutate)."""
    return {a.name: a.default for a in cls.all_args() if not a.required}


def dim(value: int | None) -> str:
    """Format one dimension the way Keras messages do."""
    return "None" if value is None else str(value)


class Layer:
    """A layer of a model spec, configured and named as Keras would.

    Subclasses set ``type`` and ``args`` and override the rules they need.
    ``config`` holds every argument of ``args`` (defaults filled in);
    argument values of kind ``LAYER`` are :class:`Layer` instances.
    """

    #: The Keras class name, e.g. ``"LSTM"``; also the request's ``type``.
    type: ClassVar[str] = ""
    #: The Keras constructor arguments, Keras defaults included.
    args: ClassVar[tuple[Arg, ...]] = ()
    #: Keras's ``InputSpec(ndim=...)`` / ``InputSpec(min_ndim=...)``.
    ndim: ClassVar[int | None] = None
    min_ndim: ClassVar[int | None] = None
    #: One line for the API documentation.
    summary: ClassVar[str] = ""
    #: Whether ``trainable=False`` makes the layer's variables non-trainable
    #: (Keras's ``Layer._track_variable``); see the exceptions that unset it.
    freezes_variables: ClassVar[bool] = True
    #: Whether the layer takes a list of tensors (after ``return_state``) and
    #: passes it on, as layers without an InputSpec do.
    passes_several_tensors: ClassVar[bool] = False
    #: Whether the layer's activations apply to its output (Dense, Conv1D,
    #: Activation); a recurrent cell applies them to its gates and state.
    activations_on_output: ClassVar[bool] = True
    #: A typical use: (arguments, input shape without the batch). The docs
    #: and the tests build every registered layer from it. A layer whose
    #: call takes several tensors (``call_form`` not ``"one"``) gives a
    #: list of shapes, one per tensor, in call order.
    example: ClassVar[tuple[dict[str, Any], Any]] = ({}, ())

    # -- calls in a graph (Functional models) ------------------------------

    #: How a call takes its tensors, in Keras's call signature:
    #: ``"one"``: one tensor (``layer(x)``); ``"list"``: one list of tensors
    #: (``Concatenate()([a, b])``, ``Attention()([q, v])``);
    #: ``"query_value_key"``: ``query``, ``value`` and optional ``key``,
    #: positional or by keyword (``MultiHeadAttention()(q, v)``).
    call_form: ClassVar[str] = "one"
    #: For ``"list"`` calls: how many tensors the list may hold
    #: (minimum, maximum or None).
    list_inputs: ClassVar[tuple[int, int | None]] = (1, None)
    #: Keyword arguments of the layer's call that are not tensors, with
    #: Keras's call defaults (``use_causal_mask``, ``return_attention_scores``).
    #: Validated from the registry like constructor arguments.
    call_args: ClassVar[tuple[Arg, ...]] = ()

    # -- masks and states in a graph (set by the layers that have them) ---

    #: Keras's ``supports_masking``: the layer passes the mask of its input
    #: on (to its first output, see :meth:`mask_outputs`); a layer without
    #: it drops the mask.
    supports_masking: ClassVar[bool] = False
    #: Whether Keras's ``call`` has a ``mask`` parameter: the layer consumes
    #: the mask, and a one-tensor call records it as a ``mask`` keyword.
    call_mask: ClassVar[bool] = False

    #: For a layer called on several tensors (``call_form`` not ``"one"``):
    #: how Keras's ``compute_mask`` makes its output's mask from the inputs'
    #: masks. None: no mask; ``"query"``: the first tensor's (the default
    #: ``compute_mask``, MultiHeadAttention); ``"convert"``: a
    #: ``ConvertToTensor`` op of the query's (Attention); ``"or"``: a
    #: ``LogicalOr`` chain when every input is masked (the merges);
    #: ``"concatenate"``: Concatenate's ``OnesLike``/``ExpandDims``/
    #: ``ZerosLike``/``LogicalOr``, ``Concatenate`` and ``Any`` ops.
    mask_combine: ClassVar[str | None] = None
    #: Keras's ``Layer.autocast``: ``__call__`` casts a float input of another
    #: dtype to the layer's compute dtype (a ``cast`` op, which takes a name).
    autocast: ClassVar[bool] = True
    #: Layers Keras creates when it builds this one, which take automatic
    #: names then: (attribute that holds the name, name prefix), in order.
    build_names: ClassVar[tuple[tuple[str, str], ...]] = ()

    def mask_outputs(self) -> int:
        """How many leading outputs carry the input's mask (``compute_mask``)."""
        return 1 if self.supports_masking else 0

    def mask_ops(self) -> tuple[str, ...]:
        """The ops that make a new mask from the layer's input, in creation
        order (``Embedding(mask_zero=True)``: ``NotEqual``; ``Masking``:
        ``NotEqual``, ``Any``); the last one's output is the mask."""
        return ()

    def built_input_spec(self, input_shape: Shape) -> tuple[int | None, dict[int, int]]:
        """The ``ndim`` and ``axes`` of the ``InputSpec`` Keras sets when it
        builds the layer on ``input_shape`` (Dense, Conv1D,
        BatchNormalization): a later call of a shared layer must match them."""
        return None, {}

    def call_failure(self, inputs: Any, options: Mapping[str, Any]) -> str | None:
        """Why a call that Keras builds fails when the model first runs (fit
        or predict), or None. ``inputs`` and ``options`` as for
        :meth:`call_output`; the graph engine refuses such a call when it
        is part of the model."""
        return None

    def mask_failure(self, input_shape: Shape, mask_shape: Shape) -> str | None:
        """Why a call on a tensor that carries a Keras mask of ``mask_shape``
        fails when the model first runs, or None (ConvLSTM1D: the mask keeps
        the input's length, the state has the output's)."""
        return None

    def initial_state_shapes(self, input_shape: Shape) -> list[Shape] | None:
        """The states an ``initial_state`` must give (batch excluded), or
        None when the layer's call takes no ``initial_state``."""
        return None

    def __init__(self, config: Mapping[str, Any], name: str) -> None:
        # The engine hands each layer a dict of its own: no copy needed.
        self.config = config  # type: ignore[assignment]
        self.name = name
        #: Set by the engine: an ``*_initializer`` argument was given, so
        #: the initializers' rank rules must be checked.
        self.custom_initializers = True

    # -- class-level information -----------------------------------------

    @classmethod
    def all_args(cls) -> tuple[Arg, ...]:
        """This layer's arguments followed by those every layer takes."""
        return cls.args + COMMON

    @classmethod
    def name_prefix(cls) -> str:
        """The stem of Keras's automatic names (``lstm`` → ``lstm_1`` ...)."""
        return _prefix(cls.type)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Raise :class:`SpecError` where the Keras constructor would raise.

        Single-argument rules (types, ranges) are the schema's job; this is
        for rules across arguments. ``path`` of the error is the argument.
        """

    # -- building on an input shape --------------------------------------

    @property
    def trainable(self) -> bool:
        """False when the layer is frozen (``trainable=False``)."""
        return bool(self.config["trainable"])

    @property
    def sublayers(self) -> list[Layer]:
        """Layers this one owns (wrappers); empty for plain layers."""
        return []

    def check_input(self, input_shape: Shape) -> None:
        """Keras's ``InputSpec`` rank check, worded as Keras 3.15's
        ``assert_input_compatibility`` (a Sequential's inputs are unnamed)."""
        rank = len(input_shape)
        if self.ndim is not None and rank != self.ndim:
            expected = f"ndim={self.ndim}"
        elif self.min_ndim is not None and rank < self.min_ndim:
            expected = f"min_ndim={self.min_ndim}"
        else:
            return
        raise SpecError(
            f"Input 0 with name 'None' of layer '{self.name}' is incompatible with the "
            f"layer: expected {expected}, found ndim={rank}. "
            f"Full shape received: {tuple(input_shape)}"
        )

    def output_shape(self, input_shape: Shape) -> Output:
        """Check the input as Keras does, then compute the output shape."""
        self.check_input(input_shape)
        return self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Output:
        """The output shape for an input of ``input_shape``."""
        return input_shape

    def call_output(self, inputs: Any, options: Mapping[str, Any]) -> Output:
        """The output of one call in a graph.

        ``inputs`` is one shape for ``call_form == "one"``, else the list of
        the call's tensor shapes in call order; ``options`` holds the call's
        ``call_args`` (defaults filled in). Layers whose outputs depend on a
        call option (``return_attention_scores``) override this.
        """
        return self.output_shape(inputs)

    def build_weights(self, input_shape: Shape) -> list[Weight]:
        """The variables Keras creates when building on ``input_shape``."""
        return []

    @property
    def variable_dtype(self) -> str | None:
        """The dtype Keras creates this layer's variables in (from its
        ``dtype`` policy); None where the variables are other layers' own."""
        return VARIABLE_DTYPES[self.config["dtype"]]

    def variables(self, input_shape: Shape) -> list[Weight]:
        """``build_weights`` with the ``trainable`` flag and dtype Keras gives
        them: not trainable when the layer is frozen and freezing reaches its
        variables; the dtype of the layer's policy."""
        weights = self.build_weights(input_shape)
        frozen = not self.trainable and self.freezes_variables
        dtype = self.variable_dtype
        if not frozen and dtype in (None, "float32"):
            return weights  # the common case: build_weights's own defaults
        return [
            Weight(w.name, w.shape, w.trainable and not frozen, dtype or w.dtype) for w in weights
        ]

    def initializer_shape(self, weight: Weight) -> tuple[int, ...]:
        """The shape Keras first calls ``weight``'s initializer with."""
        return weight.shape

    def formula(self, input_shape: Shape) -> str:
        """The parameter count as an expression with the numbers filled in.

        It reads ``<expression> = <count>`` and is exact arithmetic:
        ``4 × ((1 + 5) × 5 + 5) = 140``.
        """
        return "0"

    def macs(self, input_shape: Shape, output: Output) -> int | None:
        """Multiply-accumulates of the weight products, per sample.

        ``None`` when a dimension they depend on is unknown.
        """
        return 0


def format_shape(shape: Shape) -> str:
    """Format a shape as Keras prints it: ``(None, 5)``; rank 1 is ``(None)``."""
    if shape.__class__ is tuple and len(shape) > 1:
        # A tuple of ints and Nones prints so itself (anything else is quoted).
        text = repr(shape)
        if "'" not in text:
            return text
    return "(" + ", ".join(dim(d) for d in shape) + ")"


def format_output(output: Output) -> str:
    """Format one output shape, or a list of them: ``[(None, 5), (None, 5)]``."""
    if isinstance(output, list):
        return "[" + ", ".join(format_shape(s) for s in output) + "]"
    return format_shape(output)


def feature_dim(layer: Layer, input_shape: Shape, axis: int = -1) -> int:
    """The size of ``axis``, which must be known to create weights on it."""
    size = input_shape[axis]
    if size is None:
        raise SpecError(
            f'Layer "{layer.name}" ({layer.type}) needs a known size for axis '
            f"{axis} of its input to create its weights. "
            f"Received: input_shape={format_shape(input_shape)}"
        )
    return size


#: Every supported layer, keyed by its Keras class name.
LAYERS: dict[str, type[Layer]] = {}

L = TypeVar("L", bound=type[Layer])


def register(cls: L) -> L:
    """Class decorator adding a layer to ``LAYERS``."""
    if not cls.type or cls.type in LAYERS:
        raise ValueError(f"bad or duplicate layer type {cls.type!r}")
    LAYERS[cls.type] = cls
    return cls


def describe(layer: type[Layer]) -> dict[str, Any]:
    """A JSON-ready description of a registered layer, for documentation."""
    args, input_shape = layer.example
    several = layer.call_form != "one"
    out = {
        "type": layer.type,
        "summary": layer.summary,
        "args": [describe_arg(arg) for arg in layer.all_args()],
        "example": {
            # One shape per tensor of the call for layers of several tensors.
            "input_shape": [list(s) for s in input_shape] if several else list(input_shape),
            "layer": {"type": layer.type, **args},
        },
    }
    if several:
        out["call_form"] = layer.call_form
    if layer.call_args:
        out["call_args"] = [describe_arg(arg) for arg in layer.call_args]
    return out


def describe_arg(arg: Arg) -> dict[str, Any]:
    """One argument: its kind, Keras default and constraints."""
    out: dict[str, Any] = {
        "name": arg.name,
        "kind": arg.kind.value,
        "required": arg.required,
    }
    if not arg.required:
        out["default"] = arg.default
    for key in ("minimum", "maximum", "length", "doc"):
        value = getattr(arg, key)
        if value not in (None, ""):
            out[key] = value
    if arg.exclusive_maximum:
        out["exclusive_maximum"] = True
    if arg.exclusive_minimum:
        out["exclusive_minimum"] = True
    if arg.nullable:
        out["nullable"] = True
    if arg.choices and arg.kind.value == "choice":
        out["choices"] = list(arg.choices)
    elif arg.choices:
        out["classes"] = list(arg.choices)
    if arg.layer_types:
        out["layer_types"] = list(arg.layer_types)
    return out
