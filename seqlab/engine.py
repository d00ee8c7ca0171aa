"""Walk a Sequential model spec the way Keras builds it, without Keras.

``analyze_sequential(spec)`` names every layer as a fresh Keras session
would, checks each layer against its input exactly where Keras raises, and
returns the output shapes, weights and parameter counts that
``model.summary()`` shows. The reports, the naming, and the configuring and
building of one layer are the graph engine's (``seqlab.graph``) building
blocks too; ``seqlab.analyze`` picks the engine a spec needs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from typing import Any

from .argspec import Kind
from .checks import check_activations
from .checks import check_bfloat16_initializers
from .checks import check_constant_initializers
from .checks import check_initializers
from .checks import initializer_args
from .errors import SpecError
from .layers.wrappers import Wrapper
from .registry import DTYPE_BYTES
from .registry import LAYERS
from .registry import Layer
from .registry import Output
from .registry import Shape
from .registry import Weight
from .registry import default_config

_UNSET: Any = object()


@dataclass(slots=True)
class LayerReport:
    """What Keras knows about one built layer.

    The counts are computed when the layer is analyzed; the ``formula`` and
    ``macs``, which Keras does not report, on first use (a summary or a
    parameter total needs neither).
    """

    name: str
    type: str
    output_shape: Output
    weights: list[Weight]
    layer: Layer = field(repr=False, compare=False)
    #: What the weights were built on: one shape, or for a layer called on
    #: several tensors (a graph's merge or attention layer) a list of them.
    input_shape: Any = field(repr=False)
    sublayers: list[LayerReport] = field(default_factory=list)
    #: False for a frozen layer: Keras's ``layer.trainable_weights`` is then
    #: empty, whatever the variables' own ``trainable`` flags (``weights``).
    trainable: bool = True
    #: In a graph, the tensors of every call of the layer in the model, as
    #: Keras's summary writes them (``"lstm[0][1]"``); in each of a shared
    #: layer's ``GraphReport.calls``, that call's own; empty in a Sequential.
    connected_to: list[str] = field(default_factory=list)
    #: Keras's ``Param #`` (all weights) and the trainable part of it.
    params: int = field(init=False)
    trainable_params: int = field(init=False)
    #: The part the model's ``trainable_weights`` (the summary footer)
    #: counts: the variables' flags, whether or not the layer is frozen.
    model_trainable_params: int = field(init=False)
    #: Bytes of all the weights, each in its own dtype, and of the
    #: trainable-flagged ones (Keras's ``weight_memory_size``).
    param_bytes: int = field(init=False)
    model_trainable_bytes: int = field(init=False)

    _formula: str | None = field(default=None, init=False, repr=False, compare=False)
    _macs: Any = field(default=_UNSET, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        total = trainable = total_bytes = trainable_bytes = 0
        for _, shape, flag, dtype in self.weights:
            size = math.prod(shape)
            nbytes = size * DTYPE_BYTES[dtype]
            total += size
            total_bytes += nbytes
            if flag:
                trainable += size
                trainable_bytes += nbytes
        self.params, self.model_trainable_params = total, trainable
        self.param_bytes, self.model_trainable_bytes = total_bytes, trainable_bytes
        self.trainable_params = trainable if self.trainable else 0

    def for_call(self, input_shape: Any, output_shape: Output) -> LayerReport:
        """The same layer on another call's shapes (a shared layer in a
        graph): ``dataclasses.replace`` without its cost, the counts copied
        (the same weights), ``formula`` and ``macs`` left to compute on first
        use from the new shapes."""
        other = object.__new__(LayerReport)
        for name in _COPIED_FIELDS:
            setattr(other, name, getattr(self, name))
        other.input_shape = input_shape
        other.output_shape = output_shape
        other._formula = None
        other._macs = _UNSET
        return other

    @property
    def formula(self) -> str:
        """The count as arithmetic with the numbers filled in."""
        if self._formula is None:
            self._formula = self.layer.formula(self.input_shape)
        return self._formula

    @property
    def macs(self) -> int | None:
        """Multiply-accumulates per sample; None when a length is unknown."""
        if self._macs is _UNSET:
            self._macs = self.layer.macs(self.input_shape, self.output_shape)
        return self._macs  # type: ignore[no-any-return]

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shapes as lists, unknown dimensions as None)."""
        output = self.output_shape
        out = {
            "name": self.name,
            "type": self.type,
            "output_shape": [list(s) for s in output] if output.__class__ is list else list(output),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.params - self.trainable_params,
            "macs": self.macs,
            "formula": self.formula,
            "weights": [
                {"name": name, "shape": list(shape), "trainable": trainable, "dtype": dtype}
                for name, shape, trainable, dtype in self.weights
            ],
        }
        if self.sublayers:
            out["sublayers"] = [s.to_dict() for s in self.sublayers]
        return out


#: What ``LayerReport.for_call`` copies as is.
_COPIED_FIELDS = tuple(
    f.name
    for f in fields(LayerReport)
    if f.name not in ("input_shape", "output_shape", "_formula", "_macs")
)


@dataclass(slots=True)
class ModelReport:
    """A whole model: its layers and totals."""

    name: str
    input_shape: Shape
    layers: list[LayerReport]
    #: Why the model, which Keras builds and counts, fails on its first call
    #: (fit or predict), in the order of the spec; each names its field.
    #: Filled by ``analyze(spec, strict=False)`` only: by default the first
    #: is raised.
    first_call_failures: list[SpecError] = field(default_factory=list)
    #: The four sums below, over ``layers`` (a report's layers do not change
    #: once analyzed), added up on first use: a ``POST /params`` answer, its
    #: summary and its memory estimates read them a dozen times.
    _sums: tuple[int, int, int, int] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def _totals(self) -> tuple[int, int, int, int]:
        sums = self._sums
        if sums is None:
            params = trainable = nbytes = trainable_bytes = 0
            for layer in self.layers:
                params += layer.params
                # Keras sums the variables' flags (``Layer.trainable_weights``
                # of the model), not the layers' own trainable_weights.
                trainable += layer.model_trainable_params
                nbytes += layer.param_bytes
                trainable_bytes += layer.model_trainable_bytes
            sums = self._sums = (params, trainable, nbytes, trainable_bytes)
        return sums

    @property
    def total_params(self) -> int:
        return self._totals()[0]

    @property
    def trainable_params(self) -> int:
        return self._totals()[1]

    @property
    def non_trainable_params(self) -> int:
        params, trainable, _, _ = self._totals()
        return params - trainable

    @property
    def param_bytes(self) -> int:
        """The weights' memory, each variable in its own dtype."""
        return self._totals()[2]

    @property
    def trainable_bytes(self) -> int:
        """The memory of the variables the model trains (the footer's)."""
        return self._totals()[3]

    @property
    def non_trainable_bytes(self) -> int:
        _, _, nbytes, trainable_bytes = self._totals()
        return nbytes - trainable_bytes

    @property
    def macs(self) -> int | None:
        counts = [layer.macs for layer in self.layers]
        return None if None in counts else sum(counts)  # type: ignore[arg-type]

    @property
    def output_shape(self) -> Output:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    def counts(self) -> dict[str, Any]:
        """The totals, and each layer's name, type, output shape and count:
        what a training job records and holds the built Keras model to."""
        return {
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "layers": [
                {
                    "name": layer.name,
                    "type": layer.type,
                    "output_shape": shape_to_json(layer.output_shape),
                    "params": layer.params,
                }
                for layer in self.layers
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the model, its layers and its totals."""
        total, trainable = self.total_params, self.trainable_params
        return {
            "name": self.name,
            "input_shape": shape_to_json(self.input_shape),
            "output_shape": shape_to_json(self.output_shape),
            "layers": [layer.to_dict() for layer in self.layers],
            "total_params": total,
            "trainable_params": trainable,
            "non_trainable_params": total - trainable,
            "param_bytes": self.param_bytes,
            "macs": self.macs,
        }


def shape_to_json(output: Output) -> list[Any]:
    """``(None, 5)`` → ``[None, 5]``; a list of shapes → a list of lists."""
    if isinstance(output, list):
        return [list(s) for s in output]
    return list(output)


class Namer:
    """Keras's automatic names, as in a fresh session (``naming.uniquify``).

    The first ``LSTM`` is ``lstm``, the next ``lstm_1``; explicitly named
    layers do not advance the counter.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def auto(self, prefix: str) -> str:
        n = self.counts.get(prefix, 0)
        self.counts[prefix] = n + 1
        return f"{prefix}_{n}" if n else prefix


def configure_layer(spec: Mapping[str, Any], namer: Namer, path: str) -> Layer:
    """Configure one layer spec, wrapped layers first, as Keras code does.

    ``spec`` is ``{"type": <Keras class>, "name"?: str, <argument>: value}``
    with values already validated by the schema; missing arguments take their
    Keras defaults.
    """
    cls = LAYERS.get(spec.get("type", ""))
    if cls is None:
        raise SpecError(f"Unknown layer type {spec.get('type')!r}.", f"{path}.type")
    plan = _plan(cls)
    config = dict(plan.defaults)
    for name, required, kind, length in plan.special:
        if name not in spec:
            if required:
                raise SpecError("Missing data for required field.", f"{path}.{name}")
            continue
        value = spec[name]
        if kind is Kind.LAYER and value is not None:
            value = configure_layer(value, namer, f"{path}.{name}")
        elif kind is Kind.INT_TUPLE and isinstance(value, int):
            value = [value] * length  # Keras's standardize_tuple
        config[name] = value
    copied = plan.copied
    for key, value in spec.items():
        if key in copied:
            config[key] = value
    # Keras's default initializers always fit; only chosen ones are checked.
    custom_init = not plan.initializers.isdisjoint(spec)
    try:
        if custom_init:
            check_constant_initializers(cls.type, config)
        cls.validate_config(config)
    except SpecError as error:
        raise error.at(path) from None
    layer = cls(config, spec.get("name") or namer.auto(plan.prefix))
    layer.custom_initializers = custom_init
    return layer


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``configure_layer`` needs of a layer class, worked out once."""

    #: Every optional argument at its Keras default, ints of INT_TUPLE
    #: arguments already as Keras's standardized one-element lists.
    defaults: dict[str, Any]
    #: Arguments that need more than copying: required, nested, tuples, as
    #: (name, required, kind, length of a tuple).
    special: tuple[tuple[str, bool, Kind, int], ...]
    #: The other arguments: copied from the spec as they are.
    copied: frozenset[str]
    prefix: str
    #: The ``*_initializer`` arguments.
    initializers: frozenset[str]


@functools.cache
def _plan(cls: type[Layer]) -> _Plan:
    defaults = default_config(cls)
    standardized = {
        name: [value] * (arg.length or 1)
        if arg.kind is Kind.INT_TUPLE and isinstance(value, int)
        else value
        for arg in cls.all_args()
        if not arg.required
        for name, value in [(arg.name, defaults[arg.name])]
    }
    special = tuple(
        a for a in cls.all_args() if a.required or a.kind in (Kind.LAYER, Kind.INT_TUPLE)
    )
    names = {a.name for a in special}
    return _Plan(
        standardized,
        tuple((a.name, a.required, a.kind, a.length or 1) for a in special),
        frozenset(name for name in standardized if name not in names),
        cls.name_prefix(),
        frozenset(initializer_args(cls)),
    )


def report_layer(
    layer: Layer,
    input_shape: Any,
    output: Output | None = None,
    failures: list[SpecError] | None = None,
) -> LayerReport:
    """Build ``layer`` on ``input_shape``: its output, weights and counts.

    ``output`` is the output when the caller has it already (a graph's
    call, through ``Layer.call_output``); ``input_shape`` is then what the
    layer is built on, one shape or a list of them. An activation that
    cannot run (Keras builds the layer, its first call fails) is raised, or
    with ``failures`` appended to it and the layer reported all the same.
    """
    if output is None:
        output = layer.output_shape(input_shape)
    weights = layer.variables(input_shape)
    trainable = layer.trainable
    if layer.custom_initializers:
        check_initializers(layer, weights)
    if layer.variable_dtype == "bfloat16":
        check_bfloat16_initializers(layer, weights)
    try:
        check_activations(layer, output)
    except SpecError as error:
        if failures is None:
            raise
        failures.append(error)
    sublayers = (
        [
            report_layer(sub, shape, None, failures)
            for sub, shape in layer.placed_sublayers(input_shape)
        ]
        if isinstance(layer, Wrapper)
        else []
    )
    # Positional: this runs once per layer of every request.
    return LayerReport(
        layer.name, layer.type, output, weights, layer, input_shape, sublayers, trainable
    )


def input_shape_of(spec: Mapping[str, Any]) -> Shape:
    """The model's input shape, batch dimension first."""
    return (spec.get("batch_size"), *spec["input_shape"])


def _mask_after(
    layer: Layer, shape: Output, mask: Shape | None, path: str, failures: list[SpecError]
) -> Shape | None:
    """The mask after ``layer`` (as the graph engine's masks: made by
    Masking/Embedding, passed on by a layer that supports masking), having
    added to ``failures`` a call that its input's mask makes fail on the
    first run."""
    if isinstance(shape, list):
        return None
    if mask is not None and layer.call_mask:
        failure = layer.mask_failure(shape, mask)
        if failure is not None:
            failures.append(
                SpecError(
                    f"{failure}. Keras builds the model, but it fails on its first call "
                    f'(fit or predict): layer "{layer.name}" ({layer.type}) on input '
                    f"{tuple(shape)} with a mask {tuple(mask)}.",
                    path,
                )
            )
    kinds = layer.mask_ops()
    if kinds:
        made: Shape = shape
        for kind in kinds:
            made = made if kind == "NotEqual" else made[:-1]
        return made
    if mask is not None and layer.call_form == "one" and layer.mask_outputs() > 0:
        return mask
    return None


def analyze_sequential(spec: Mapping[str, Any], *, strict: bool = True) -> ModelReport:
    """Analyze a Sequential model spec as Keras 3 would build it.

    (:func:`seqlab.analyze` dispatches a spec here, or a graph spec to
    :func:`seqlab.graph.analyze_graph`.)

    Args:
        spec: ``{"input_shape": [...], "layers": [...], "batch_size"?: int,
            "name"?: str}``, validated by the schema.
        strict: raise the first of the model's first-call failures (a model
            Keras builds but cannot run); with False, report them in
            ``first_call_failures``.

    Returns:
        The per-layer report and totals.

    Raises:
        SpecError: where Keras would refuse the model (or, ``strict``, fail
            on its first call); its ``path`` names the layer (``layers.2``)
            or argument.
    """
    namer = Namer()
    built = [configure_layer(s, namer, f"layers.{i}") for i, s in enumerate(spec["layers"])]
    # The InputLayer that keras.Input adds is a layer of the model too.
    seen = {"input_layer"}
    model_input = input_shape_of(spec)
    shape: Output = model_input
    reports = []
    # The shape of the Keras mask the running tensor carries, or None: only
    # to refuse a call that fails on it when the model runs.
    mask: Shape | None = None
    # Collected, not raised: a later layer that Keras refuses to build is
    # Keras's verdict on the model.
    failures: list[SpecError] = []
    for i, layer in enumerate(built):
        path = f"layers.{i}"
        if layer.name in seen:
            raise SpecError(
                "All layers added to a Sequential model should have unique "
                f"names. Name '{layer.name}' is already the name of a layer in "
                "this model. Update the `name` argument to pass a unique name.",
                f"{path}.name",
            )
        seen.add(layer.name)
        if layer.call_form == "query_value_key":
            # Sequential.add refuses a call of two required tensors outright.
            raise SpecError(
                "Layers added to a Sequential model can only have a single required "
                f"positional argument, the input tensor. Layer {layer.type} has multiple "
                'required positional arguments: [<Parameter "query">, <Parameter "value">]',
                path,
            )
        # A list layer (Add, Concatenate, Attention) takes several tensors
        # as Keras's Sequential hands them on, and judges them itself.
        several = isinstance(shape, list)
        if several and not layer.passes_several_tensors and layer.call_form == "one":
            raise SpecError(
                f'Layer "{layer.name}" expects 1 input(s), but it received '
                f"{len(shape)} input tensors. Only the last layer of a "
                "Sequential model may return several tensors (return_state).",
                path,
            )
        found: list[SpecError] = []
        try:
            report = report_layer(layer, shape, None, found)
        except SpecError as error:
            raise error.at(path) from None
        failures += [error.at(path) for error in found]
        reports.append(report)
        mask = _mask_after(layer, shape, mask, path, failures)
        shape = report.output_shape
    if failures and strict:
        raise failures[0]
    return ModelReport(spec.get("name") or "sequential", model_input, reports, failures)
