"""Attention layers: Attention, AdditiveAttention and MultiHeadAttention.

Keras sources: ``keras/src/layers/attention/{attention,additive_attention,
multi_head_attention}.py`` (and ``core/einsum_dense.py`` for MHA's
projections). ``Attention`` and ``AdditiveAttention`` are called on a list
``[query, value]`` or ``[query, value, key]``; ``MultiHeadAttention`` on
``query, value[, key]``. None of them checks that the query's features match
the key's; MultiHeadAttention checks that value and key agree but for their
last axis.

Their ``macs`` count the weight products (MHA's projections) and the two
products of attention itself: the scores (query · key over the features)
and the weighted sum of the values.

Masks (Keras 3.15): the output of all three carries the query's mask.
Attention and AdditiveAttention take ``mask`` in their call; a
mask-consuming layer after them adds ``not_equal`` (before the attention
row) and ``convert_to_tensor`` (after it) to the graph. After
MultiHeadAttention, whose call takes ``query_mask``/``value_mask``/
``key_mask`` rather than ``mask``, it adds ``not_equal`` after the
attention row. MultiHeadAttention's build also creates a ``Softmax`` and a
``Dropout`` that take the automatic names ``softmax`` and ``dropout`` (see
the class).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import ClassVar

from .. import args as a
from ..argspec import Arg
from ..argspec import Kind
from ..checks import check_initializers
from ..errors import SpecError
from ..registry import Layer
from ..registry import Output
from ..registry import Shape
from ..registry import Weight
from ..registry import register
from .core import Dropout
from .merging import ListLayer
from .wrappers import Wrapper

#: What a call of an attention layer takes besides its tensors, with
#: Keras's call defaults.
ATTENTION_CALL_ARGS = (
    a.flag("use_causal_mask", False),
    a.flag("return_attention_scores", False),
)


def rate(name: str) -> Arg:
    """A dropout rate of the attention weights, in [0, 1] (Keras's Dropout)."""
    return Arg(name, Kind.FLOAT, 0.0, minimum=0.0, maximum=1.0)


def fully_defined(layer: str, variable: str, shape: tuple[int | None, ...]) -> None:
    """Keras's refusal of a variable whose shape has an unknown dimension
    (``layer``: the name of the layer that creates it)."""
    if None in shape:
        raise SpecError(
            "Shapes used to initialize variables must be fully-defined (no `None` "
            f"dimensions). Received: shape={shape!r} for variable "
            f"path='{layer}/{variable}'"
        )


def attention_products(query: Shape, key_steps: int | None, features: int | None) -> int | None:
    """Multiply-accumulates of scores and weighted sum: every query position
    against every key step, over ``features`` (query's plus value's)."""
    dims = [*query[1:-1], key_steps, features]
    if None in dims:
        return None
    return math.prod(dims)  # type: ignore[arg-type]


class BaseAttention(ListLayer):
    """Luong-style (Attention) and Bahdanau-style (AdditiveAttention)."""

    example: ClassVar[tuple[dict[str, Any], Any]] = ({}, [(6, 4), (8, 4)])
    list_inputs = (2, 3)
    call_args = ATTENTION_CALL_ARGS
    supports_masking = True
    #: attention.py compute_mask: ops.convert_to_tensor(mask[0]).
    mask_combine = "convert"

    def refuse_one(self, input_shape: Any) -> None:
        raise SpecError(
            f"{self.type} layer must be called on a list of inputs, namely "
            "[query, value] or [query, value, key]. "
            f"Received: inputs={self.shapes_text(input_shape)}."
        )

    @staticmethod
    def shapes_text(shapes: Any) -> str:
        if shapes and isinstance(shapes[0], tuple | list):
            return repr(tuple(tuple(s) for s in shapes))
        return repr(tuple(shapes))

    def output_shape(self, input_shape: Any) -> Output:
        # A Sequential model hands on one tensor, or a tuple of several
        # (return_state): ``_validate_inputs`` wants a list either way.
        self.refuse_one(input_shape)
        raise AssertionError  # unreachable

    def call_output(self, inputs: Any, options: Mapping[str, Any]) -> Output:
        if not isinstance(inputs, list):
            self.refuse_one(inputs)
        output = self.compute_list_output(inputs)
        if not options.get("return_attention_scores"):
            return output
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        if len(key) < 2:
            raise SpecError(
                f"tuple index out of range ({self.type} reads the steps, axis -2, of "
                f"the key {tuple(key)!r} for its scores)."
            )
        return [output, (*query[:-1], key[-2])]

    def call_failure(self, inputs: Any, options: Mapping[str, Any]) -> str | None:
        # attention.py / additive_attention.py ``_calculate_scores`` and
        # ``_apply_scores``: the scores are matmul(query, key^T) ("dot") or
        # sum(tanh(query[..., None, :] + key[..., None, :, :])) ("concat",
        # AdditiveAttention), then matmul(weights, value). Keras's symbolic
        # build checks none of it; the sizes must agree when it runs.
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        dq, dk = query[-1], key[-1]
        added = self.type == "AdditiveAttention" or self.config.get("score_mode") == "concat"
        if None not in (dq, dk) and dq != dk and not (added and 1 in (dq, dk)):
            how = "Incompatible shapes" if added else "Matrix size-incompatible"
            return (
                f"{how}: the query's last axis ({dq}) and the key's ({dk}) must agree "
                f"for the {'added' if added else 'dot-product'} scores"
            )
        tk, tv = key[-2], value[-2]
        if None not in (tk, tv) and tk != tv:
            return (
                f"Matrix size-incompatible: the scores have {tk} key steps, the value "
                f"{tv} steps (they are multiplied)"
            )
        return None

    def compute_list_output(self, shapes: Sequence[Shape]) -> Output:
        if not 2 <= len(shapes) <= 3:
            raise SpecError(
                f"{self.type} layer accepts inputs list of length 2 or 3, namely "
                f"[query, value] or [query, value, key]. Received length: {len(shapes)}."
            )
        self.build_weights(list(shapes))  # its refusals come first, in build
        query, value = shapes[0], shapes[1]
        return (*query[:-1], value[-1])

    def macs(self, input_shape: Any, output: Output) -> int | None:
        query, value = input_shape[0], input_shape[1]
        key = input_shape[2] if len(input_shape) > 2 else value
        features = None if None in (query[-1], value[-1]) else query[-1] + value[-1]
        return attention_products(query, key[-2] if len(key) > 1 else None, features)

    def formula(self, input_shape: Any) -> str:
        sizes = [w.size for w in self.build_weights(input_shape)]
        if not sizes:
            return "0"
        return f"{' + '.join(str(s) for s in sizes)} = {sum(sizes)}"


@register
class Attention(BaseAttention):
    type = "Attention"
    summary = (
        "Dot-product (Luong) attention of a query over [value, key]: "
        "output (*query[:-1], value features)."
    )
    args = (
        a.flag("use_scale", False),
        Arg("score_mode", Kind.CHOICE, "dot", choices=("dot", "concat")),
        rate("dropout"),
        a.seed(),
    )

    def build_weights(self, input_shape: Any) -> list[Weight]:
        weights = []
        if self.config["use_scale"]:
            weights.append(Weight("scale", ()))
        if self.config["score_mode"] == "concat":
            weights.append(Weight("concat_score_weight", ()))
        return weights


@register
class AdditiveAttention(BaseAttention):
    type = "AdditiveAttention"
    summary = (
        "Additive (Bahdanau) attention of a query over [value, key]; "
        "use_scale learns one scale per query feature."
    )
    args = (
        a.flag("use_scale", True),
        rate("dropout"),
        # Not in its signature, but passed on to Attention through **kwargs
        # and written by get_config.
        a.seed(),
    )

    def build_weights(self, input_shape: Any) -> list[Weight]:
        if not self.config["use_scale"]:
            return []
        shape = (input_shape[0][-1],)
        fully_defined(self.name, "scale", shape)
        return [Weight("scale", shape)]  # type: ignore[arg-type]


class EinsumDense(Layer):
    """One of MultiHeadAttention's projections (an unregistered
    ``EinsumDense``): its kernel spans the last ``bound`` input axes and the
    output axes, its bias the output axes."""

    type = "EinsumDense"
    args = (
        a.initializer("kernel_initializer", "glorot_uniform"),
        a.initializer("bias_initializer", "zeros"),
    )

    @property
    def kernel(self) -> tuple[int, ...]:
        return self.config["kernel"]  # type: ignore[no-any-return]

    def compute_output_shape(self, input_shape: Shape) -> Output:
        bound = self.config["bound"]
        return (*input_shape[:-bound], *self.kernel[bound:])

    def build_weights(self, input_shape: Shape) -> list[Weight]:
        fully_defined(self.config["parent"], f"{self.name}/kernel", self.kernel)
        weights = [Weight("kernel", self.kernel)]
        if self.config["use_bias"]:
            weights.append(Weight("bias", self.kernel[self.config["bound"] :]))
        return weights


class Softmax(Layer):
    """MultiHeadAttention's softmax over the scores (no weights)."""

    type = "Softmax"


@register
class MultiHeadAttention(Wrapper):
    """Keras's MultiHeadAttention: ``query``, ``key``, ``value`` projections
    to ``num_heads`` heads, scaled dot-product attention over
    ``attention_axes``, and the ``attention_output`` projection.

    ``trainable=False`` does not reach the projections' variables (they are
    created in ``build``, after the flag), so the model still trains them,
    as for a wrapper; the ``dtype`` policy does reach them.

    Building it (its first call) creates a ``Softmax`` and a ``Dropout``
    that take Keras's automatic names: ``softmax_name`` and
    ``dropout_name`` say which (``softmax``, ``dropout`` in a fresh session);
    the graph engine sets them from its counters (``build_names``).
    """

    type = "MultiHeadAttention"
    example = ({"num_heads": 2, "key_dim": 4}, [(10, 16), (12, 8)])
    summary = (
        "Multi-head attention of query over value (and key): "
        "output (*query[:-1], output_shape or query features)."
    )
    call_form = "query_value_key"
    list_inputs = (2, 3)
    call_args = ATTENTION_CALL_ARGS
    supports_masking = True
    #: No compute_mask of its own: the output keeps the query's mask.
    mask_combine = "query"
    build_names = (("softmax_name", "softmax"), ("dropout_name", "dropout"))
    args = (
        a.positive_int("num_heads"),
        a.positive_int("key_dim"),
        Arg("value_dim", Kind.INT, None, minimum=1, nullable=True, doc="Defaults to key_dim."),
        rate("dropout"),
        a.flag("use_bias", True),
        Arg(
            "output_shape",
            Kind.AXIS,
            None,
            nullable=True,
            doc="The output's last axes (an int or a list); null: the query's features.",
        ),
        Arg(
            "attention_axes",
            Kind.AXIS,
            None,
            nullable=True,
            doc="The axes attention runs over; null: every axis but batch, heads and features.",
        ),
        Arg("sliding_window", Kind.INT, None, minimum=1, nullable=True),
        a.unsupported("flash_attention"),
        a.initializer("kernel_initializer", "glorot_uniform"),
        a.initializer("bias_initializer", "zeros"),
        a.regularizer("kernel_regularizer"),
        a.regularizer("bias_regularizer"),
        a.regularizer("activity_regularizer"),
        a.constraint("kernel_constraint"),
        a.constraint("bias_constraint"),
        a.flag("use_gate", False),
        a.seed(),
    )

    def __init__(self, config: Mapping[str, Any], name: str) -> None:
        super().__init__(config, name)
        self.softmax_name = "softmax"
        self.dropout_name = "dropout"

    # -- arguments ---------------------------------------------------------

    @property
    def heads(self) -> int:
        return self.config["num_heads"]  # type: ignore[no-any-return]

    @property
    def value_dim(self) -> int:
        """``value_dim``, or ``key_dim`` when null (Keras: ``value_dim or key_dim``)."""
        return self.config["value_dim"] or self.config["key_dim"]  # type: ignore[no-any-return]

    @property
    def projected_shape(self) -> tuple[int, ...] | None:
        """``output_shape`` as Keras keeps it: a tuple, or None (0 is None)."""
        shape = self.config["output_shape"]
        if not shape:
            return None
        return (shape,) if isinstance(shape, int) else tuple(shape)

    # -- calls ---------------------------------------------------------------

    def output_shape(self, input_shape: Any) -> Output:
        # Built on one shape (inside TimeDistributed): ``build(query_shape,
        # value_shape, key_shape=None)`` misses its value. (A Sequential
        # model refuses the layer before: ``seqlab.engine.analyze_sequential``.)
        raise SpecError(
            "MultiHeadAttention.build() missing 1 required positional argument: 'value_shape'"
        )

    @staticmethod
    def split(inputs: Sequence[Shape]) -> tuple[Shape, Shape, Shape]:
        """Query, value and key (the value when no key is given)."""
        query, value = tuple(inputs[0]), tuple(inputs[1])
        key = tuple(inputs[2]) if len(inputs) > 2 and inputs[2] is not None else value
        return query, value, key

    def call_output(self, inputs: Any, options: Mapping[str, Any]) -> Output:
        """``inputs`` is ``[query, value]`` or ``[query, value, key]`` (in
        that order, however the call named them)."""
        query, value, key = self.split(inputs)
        self.check_value_key(value, key)
        self.build_weights(inputs)  # Keras builds before computing shapes
        o = self.projected_shape
        output: Shape = (*query[:-1], *o) if o else query
        if not options.get("return_attention_scores"):
            return output
        # compute_output_spec: (batch, heads, Tq, Tq), whatever the value's
        # length or the attention axes.
        steps = query[1] if len(query) > 1 else None
        return [output, (query[0], self.heads, steps, steps)]

    @staticmethod
    def check_value_key(value: Shape, key: Shape) -> None:
        if value[1:-1] != key[1:-1]:
            raise SpecError(
                "All dimensions of `value` and `key`, except the last one, must be "
                f"equal. Received: value_shape={value!r} and key_shape={key!r}"
            )

    # -- weights -------------------------------------------------------------

    def part(self, name: str, kernel: tuple[int, ...], bound: int) -> EinsumDense:
        """One projection, configured as MHA's ``_get_common_kwargs_for_sublayer``."""
        c = self.config
        config = {
            "kernel": kernel,
            "bound": bound,
            "use_bias": c["use_bias"],
            # Its name, not itself: the layer keeps its parts (no cycle).
            "parent": self.name,
            "kernel_initializer": c["kernel_initializer"],
            "bias_initializer": c["bias_initializer"],
            "trainable": True,
            "dtype": c["dtype"],
        }
        part = EinsumDense(config, name)
        part.custom_initializers = self.custom_initializers
        return part

    def placed_sublayers(self, input_shape: Any) -> list[tuple[Layer, Shape]]:
        # Its weights and its report place the same layers (see
        # Wrapper.build_weights): they are made once per input.
        placed = self.__dict__.get("_placed")
        if placed is not None and placed[0] == input_shape:
            return placed[1]
        parts = self.make_sublayers(input_shape)
        self._placed = (input_shape, parts)
        return parts

    def make_sublayers(self, input_shape: Any) -> list[tuple[Layer, Shape]]:
        """The projections, softmax and dropout, each with its input shape."""
        query, value, key = self.split(input_shape)
        h, k, v = self.heads, self.config["key_dim"], self.value_dim
        o = self.projected_shape or (query[-1],)
        heads_v: Shape = (*query[:-1], h, v)
        parts: list[tuple[Layer, Shape]] = [
            (self.part("query", (query[-1], h, k), 1), query),  # type: ignore[arg-type]
            (self.part("key", (key[-1], h, k), 1), key),  # type: ignore[arg-type]
        ]
        if self.config["use_gate"]:
            parts.append((self.part("gate", (query[-1], h, v), 1), query))  # type: ignore[arg-type]
        parts.append((self.part("value", (value[-1], h, v), 1), value))  # type: ignore[arg-type]
        common = {"trainable": True, "dtype": self.config["dtype"]}
        scores: Shape = (query[0], h, *query[1:-1], *key[1:-1])
        parts.append((Softmax(common, self.softmax_name), scores))
        dropout = Dropout(
            {"rate": self.config["dropout"], "noise_shape": None, "seed": self.config["seed"]}
            | common,
            self.dropout_name,
        )
        parts.append((dropout, scores))
        parts.append((self.part("attention_output", (h, v, *o), 2), heads_v))  # type: ignore[arg-type]
        return parts

    def build_weights(self, input_shape: Any) -> list[Weight]:
        weights = super().build_weights(input_shape)
        for i, w in enumerate(weights):
            if w.shape and min(w.shape) < 0:
                if self.custom_initializers:
                    # Keras initializes the weights created before this one
                    # first: their initializers' refusals come first.
                    check_initializers(self, weights[:i])
                raise SpecError(
                    f"Cannot convert '{w.shape!r}' to a shape. Negative dimensions are "
                    f"not allowed. (The {w.name} of layer '{self.name}': "
                    "output_shape must be positive.)"
                )
        return weights

    def formula(self, input_shape: Any) -> str:
        query, value, key = self.split(input_shape)
        h, k, v = self.heads, self.config["key_dim"], self.value_dim
        o = self.projected_shape or (query[-1],)
        o_text = " × ".join(str(d) for d in o)
        terms = [
            f"{h} × {k} × ({query[-1]} + {key[-1]})",
            f"{h} × {v} × {value[-1]}",
            f"{h} × {v} × {o_text}",
        ]
        if self.config["use_gate"]:
            terms.insert(1, f"{query[-1]} × {h} × {v}")
        if self.config["use_bias"]:
            gate_bias = f" + {h} × {v}" if self.config["use_gate"] else ""
            terms.append(f"(2 × {h} × {k} + {h} × {v}{gate_bias} + {o_text})")
        total = sum(w.size for w in self.build_weights(input_shape))
        return f"{' + '.join(terms)} = {total}"

    def macs(self, input_shape: Any, output: Output) -> int | None:
        query, value, key = self.split(input_shape)
        h, k, v = self.heads, self.config["key_dim"], self.value_dim
        o = self.projected_shape or (query[-1],)

        def positions(shape: Shape) -> int | None:
            rest = shape[1:-1]
            return None if None in rest else math.prod(rest)  # type: ignore[arg-type]

        q_pos, k_pos, v_pos = positions(query), positions(key), positions(value)
        if None in (q_pos, k_pos, v_pos, query[-1], key[-1], value[-1], *o):
            return None
        projections = (
            q_pos * query[-1] * h * k  # type: ignore[operator]
            + k_pos * key[-1] * h * k  # type: ignore[operator]
            + v_pos * value[-1] * h * v  # type: ignore[operator]
            + q_pos * h * v * math.prod(o)  # type: ignore[operator]
        )
        if self.config["use_gate"]:
            projections += q_pos * query[-1] * h * v  # type: ignore[operator]
        # Scores and weighted sum: each query position against each key
        # position of the attention axes, per head, over K then V features.
        return projections + q_pos * self.attended(key) * h * (k + v)  # type: ignore[operator]

    def attended(self, key: Shape) -> int:
        """Key positions each query position attends to (the attention
        axes of the key; by default every axis between batch and features)."""
        rank = len(key) + 1  # the projected rank: (batch, ..., heads, dim)
        axes = self.config["attention_axes"]
        if axes is None:
            axes = tuple(range(1, rank - 2))
        elif isinstance(axes, int):
            axes = (axes,)
        dims = []
        for axis in axes:
            axis = axis if axis >= 0 else rank - 1 + axis
            if 1 <= axis < len(key) - 1 and key[axis] is not None:
                dims.append(key[axis])
        return math.prod(dims)
