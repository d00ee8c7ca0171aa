"""Request schemas, generated from the layer registry.

Each registered layer gets a marshmallow schema whose fields are its Keras
arguments (``seqlab.LAYERS[type].all_args()``); nobody lists a layer's
arguments here by hand. Loading leaves out what the request left out, so
Keras's own defaults apply downstream.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow import validate

from seqlab import LAYERS
from seqlab import Layer
from seqlab.argspec import Arg
from seqlab.argspec import Kind
from seqlab.objects import KERAS_CLASSES

from . import fast

#: Wrappers may nest (TimeDistributed(Bidirectional(LSTM))), but not deeply.
MAX_NESTING = 4
MAX_LAYERS = 200
MAX_RANK = 8
#: No dimension, unit or filter count beyond what a tensor index can hold.
MAX_INT = 2**31 - 1
#: The largest integer a float holds (finite); larger JSON integers are refused.
MAX_FLOAT = int(sys.float_info.max)
#: How deep arrays and objects may nest in a model. The deepest valid model
#: (wrappers nested MAX_NESTING deep, to_json form) is under 30 levels;
#: the limit keeps every recursive step (conversion, validation, error
#: messages) far from Python's recursion limit.
MAX_DEPTH = 64
NAME = validate.Regexp(
    r"\A[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\Z",
    error="Must be 1-128 letters, digits, '_', '.' or '-' (Keras names may not contain '/').",
)
DTYPES = (
    "float32",
    "float16",
    "bfloat16",
    "float64",
    "int32",
    "int64",
    "uint8",
    "bool",
)


class StrictBool(fields.Boolean):
    """A JSON true/false only (marshmallow would also take "yes" or 1)."""

    #: What the fast loader passes as it is (``modelspec.fast``).
    fast_type = bool

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictInt(fields.Integer):
    """A JSON integer: no floats, no strings, no booleans."""

    #: What the fast loader passes as it is (``modelspec.fast``).
    fast_type = int

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)  # type: ignore[no-any-return]

    def fast_deserialize(self, value: Any) -> int:
        """``_deserialize`` for the fast loader (``modelspec.fast``)."""
        return value if type(value) is int else self._deserialize(value, None, None)


class FiniteFloat(fields.Float):
    """A JSON number (integers too), finite."""

    default_error_messages = {"too_large": "Must be a finite number; this integer is too large."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        # An integer beyond float range (10**400 written out) is valid JSON;
        # float() and math.isfinite() raise OverflowError on it.
        if isinstance(value, int) and abs(value) > MAX_FLOAT:
            raise self.make_error("too_large")
        if not math.isfinite(value):
            raise self.make_error("special")
        return float(value)


def _check_ints(values: list[Any], arg: Arg) -> list[int]:
    low = int(arg.minimum) if arg.minimum is not None else -MAX_INT
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ma.ValidationError(f"Must be integers. Received: {v!r}.")
        if not low <= v <= MAX_INT:
            raise ma.ValidationError(f"Each value must be between {low} and {MAX_INT}.")
    return values


class IntTuple(fields.Field):
    """``3`` or ``[3]``: an int or a list of ``length`` ints, loaded as a list."""

    def __init__(self, arg: Arg, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arg = arg

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[int]:
        n = self.arg.length or 1
        values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(values, list) or len(values) != n:
            raise ma.ValidationError(f"Must be an integer or a list of {n} integer(s).")
        return _check_ints(values, self.arg)


class IntList(fields.Field):
    """A non-empty list of ints (``target_shape``, ``dims``, ``noise_shape``)."""

    def __init__(self, arg: Arg, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arg = arg

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[int]:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_RANK:
            raise ma.ValidationError(f"Must be a list of 1 to {MAX_RANK} integers.")
        return _check_ints(value, self.arg)


class Axis(fields.Field):
    """An int or a non-empty list of ints."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_RANK:
            raise ma.ValidationError("Must be an integer or a list of integers.")
        _check_ints(values, Arg("axis", Kind.AXIS, minimum=-MAX_RANK))
        return value


class KerasObject(fields.Field):
    """An allowlisted Keras object: ``"glorot_uniform"`` or
    ``{"class_name": "L2", "config": {"l2": 0.01}}`` (what ``to_json`` writes).

    A config is validated against the class's arguments in
    ``seqlab.objects``: Keras's names, types and limits; an unknown key is
    refused, as Keras's ``from_config`` raises on an unexpected keyword.
    """

    def __init__(self, arg: Arg, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = arg.choices

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        name = value.get("class_name") if isinstance(value, Mapping) else value
        if not isinstance(name, str) or name not in self.choices:
            shown = name if isinstance(name, str) else type(name).__name__
            raise ma.ValidationError(
                f"Must be one of {', '.join(self.choices)}, as a string or as "
                f'{{"class_name": ..., "config": {{...}}}}. Received: {shown!r}.'
            )
        if isinstance(value, Mapping):
            if set(value) - {"class_name", "config", "module", "registered_name"}:
                raise ma.ValidationError("Unknown keys in a Keras object.")
            config = value.get("config", {})
            if not isinstance(config, Mapping):
                raise ma.ValidationError({"config": ["Must be an object."]})
            try:
                loaded = object_config_schema(KERAS_CLASSES[name].name).load(config)
            except ma.ValidationError as error:
                raise ma.ValidationError({"config": error.messages}) from None
            return {"class_name": name, "config": loaded}
        return value


@functools.cache
def object_config_schema(class_name: str) -> ma.Schema:
    """The schema of one Keras object class's config (``seqlab.objects``)."""
    keras_class = KERAS_CLASSES[class_name]
    known = ", ".join(a.name for a in keras_class.args) or "none"
    schema_cls = ma.Schema.from_dict(
        {a.name: arg_field(a, 0) for a in keras_class.args}, name=f"{class_name}ConfigSchema"
    )
    schema_cls.error_messages = {
        "unknown": f"Unknown argument: Keras's {class_name} takes {known}."
    }
    return schema_cls()


class NullOnly(fields.Field):
    """A Keras argument seqlab cannot model; only its default, null, passes."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> None:
        raise ma.ValidationError("seqlab does not support this argument; leave it null.")


class LayerField(fields.Field):
    """A nested layer spec, loaded with the schema of its ``type``."""

    def __init__(self, types: tuple[str, ...] = (), depth: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.types = types or tuple(LAYERS)
        self.depth = depth
        self._type_set = frozenset(self.types)
        #: ``fast_deserialize``'s compiled loader of each type, made on first use.
        self._loaders: dict[str, fast.Loader] = {}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ma.ValidationError('Must be a layer object, e.g. {"type": "Dense", "units": 1}.')
        layer_type = value.get("type")
        if not isinstance(layer_type, str) or layer_type not in self.types:
            if not isinstance(layer_type, str):
                known, layer_type = "Missing or invalid", type(layer_type).__name__
            else:
                known = "Unsupported here:" if layer_type in LAYERS else "Unknown"
            allowed = ", ".join(self.types)
            raise ma.ValidationError(
                {"type": [f"{known} layer type {layer_type!r}. Must be one of: {allowed}."]}
            )
        if self.depth >= MAX_NESTING:
            raise ma.ValidationError(f"Layers may be nested at most {MAX_NESTING} deep.")
        return layer_schema(layer_type, self.depth, frozenset(value)).load(value)

    def fast_deserialize(self, value: Any) -> Any:
        """``_deserialize`` for the fast loader (``modelspec.fast``): the layer
        through its type's compiled schema."""
        mapping = value.__class__ is dict or isinstance(value, Mapping)
        layer_type = value.get("type") if mapping else None
        if type(layer_type) is not str or layer_type not in self._type_set:
            return self._deserialize(value, None, None)  # raises
        loader = self._loaders.get(layer_type)
        if loader is None:
            if self.depth >= MAX_NESTING:
                raise ma.ValidationError(f"Layers may be nested at most {MAX_NESTING} deep.")
            schema = full_layer_schema(layer_type, self.depth)
            loader = self._loaders[layer_type] = fast.schema_loader(schema, sparse=True)
        return loader(value)


def arg_field(arg: Arg, depth: int) -> fields.Field:
    """The marshmallow field for one registry argument."""
    opts: dict[str, Any] = {"required": arg.required, "allow_none": arg.nullable}
    if arg.doc:
        opts["metadata"] = {"description": arg.doc}
    if arg.kind is Kind.INT:
        low = -MAX_INT if arg.minimum is None else arg.minimum
        high = MAX_INT if arg.maximum is None else arg.maximum
        return StrictInt(validate=validate.Range(low, high), **opts)
    if arg.kind is Kind.FLOAT:
        return FiniteFloat(
            validate=validate.Range(
                arg.minimum,
                arg.maximum,
                min_inclusive=not arg.exclusive_minimum,
                max_inclusive=not arg.exclusive_maximum,
            ),
            **opts,
        )
    if arg.kind is Kind.BOOL:
        return StrictBool(**opts)
    if arg.kind is Kind.CHOICE:
        return fields.String(validate=validate.OneOf(arg.choices), **opts)
    if arg.kind is Kind.INT_TUPLE:
        return IntTuple(arg, **opts)
    if arg.kind is Kind.INT_LIST:
        return IntList(arg, **opts)
    if arg.kind is Kind.AXIS:
        return Axis(**opts)
    if arg.kind is Kind.OBJECT:
        return KerasObject(arg, **opts)
    if arg.kind is Kind.LAYER:
        return LayerField(arg.layer_types, depth + 1, **opts)
    return NullOnly(**opts)


@functools.cache
def layer_schema_class(layer_type: str, depth: int = 0) -> type[ma.Schema]:
    """The schema of one layer type at one nesting depth: every argument."""
    layer_cls: type[Layer] = LAYERS[layer_type]
    spec_fields: dict[str, fields.Field] = {
        "type": fields.String(required=True),
        "name": fields.String(validate=NAME),
    }
    spec_fields.update({a.name: arg_field(a, depth) for a in layer_cls.all_args()})
    return ma.Schema.from_dict(spec_fields, name=f"{layer_type}Schema")


@functools.cache
def full_layer_schema(layer_type: str, depth: int) -> ma.Schema:
    """An instance of ``layer_schema_class`` with every field (the fast loader's)."""
    return layer_schema_class(layer_type, depth)()


@functools.lru_cache(maxsize=2048)
def layer_schema(layer_type: str, depth: int, keys: frozenset[str]) -> ma.Schema:
    """A schema for a layer that sets ``keys``.

    marshmallow visits every declared field on each load, and an LSTM has
    thirty; restricting the instance to the keys present (plus the required
    ones) validates the same values several times faster. Unknown keys are
    still refused, as they are not fields of the full schema either.
    """
    schema_cls = layer_schema_class(layer_type, depth)
    declared = schema_cls._declared_fields
    required = {name for name, f in declared.items() if f.required}
    return schema_cls(only=(keys & declared.keys()) | required)


class Dimension(fields.Field):
    """One input dimension: a positive int, or null for a variable length."""

    def fast_deserialize(self, value: Any) -> int | None:
        """``_deserialize`` for the fast loader (``modelspec.fast``)."""
        if type(value) is int and 1 <= value <= MAX_INT:
            return value
        return self._deserialize(value, None, None)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT:
            raise ma.ValidationError("Must be a positive integer or null.")
        return value
