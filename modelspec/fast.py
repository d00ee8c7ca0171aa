"""marshmallow's verdict on the common valid request, without its machinery.

``Schema.load`` visits each field through several layers of bookkeeping
(error stores, getters, partial options, the ``And`` of its validators),
which is most of the cost of a small ``POST /params``. :func:`load` first
runs a loader compiled once per schema from the same field objects: each
field's own ``_deserialize`` and validators, called directly, the first
``ValidationError`` ending the attempt. A body that passes gets what
``Schema.load`` returns (the same values; a layer's members in the
request's order, which marshmallow's ``only`` leaves unspecified); any
other body is loaded again by marshmallow itself, so that every error is
marshmallow's, in its words and shape. ``tests/test_fastload.py`` holds the
two to the same verdicts and values over the test corpus.

A field class takes part with a ``fast_deserialize(value)`` method (what
``_deserialize`` returns for a value that is not None; it may raise
``ValidationError`` for anything it does not accept); fields without one
run their ``_deserialize``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow import validate
from marshmallow.utils import missing

Loader = Callable[[Any], Any]


class Rejected(ma.ValidationError):
    """Raised inside a compiled loader: the body is left to marshmallow."""

    def __init__(self) -> None:
        super().__init__("not the fast path")


_FIELDS: dict[int, tuple[fields.Field, Loader]] = {}
_SCHEMAS: dict[int, tuple[ma.Schema, Loader]] = {}


def load(schema: ma.Schema, data: Any) -> Any:
    """``schema.load(data)``: through the compiled loader when it accepts
    ``data``, else through marshmallow (which raises its own errors)."""
    try:
        return schema_loader(schema)(data)
    except ma.ValidationError:
        return schema.load(data)


def field_loader(field: fields.Field) -> Loader:
    """The compiled ``field.deserialize`` (cached per field object)."""
    cached = _FIELDS.get(id(field))
    if cached is not None and cached[0] is field:
        return cached[1]
    loader = _compile_field(field)
    _FIELDS[id(field)] = (field, loader)
    return loader


def schema_loader(schema: ma.Schema, *, sparse: bool = False) -> Loader:
    """The compiled ``schema.load`` (cached per schema instance).

    ``sparse``: the members of the request in its order, each looked up
    among the schema's fields (for schemas of many optional fields, such as
    a layer's); otherwise every field in the schema's order.
    """
    cached = _SCHEMAS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    loader = _compile_schema(schema, sparse)
    _SCHEMAS[id(schema)] = (schema, loader)
    return loader


def _marshmallow_schema(schema: ma.Schema) -> Loader:
    def load_(data: Any) -> Any:
        return schema.load(data)

    return load_


def _compile_schema(schema: ma.Schema, sparse: bool) -> Loader:
    if (
        any(schema._hooks.values())
        or schema.many
        or schema.unknown != ma.RAISE
        or schema.partial
        or any(f.data_key is not None or f.attribute for f in schema.load_fields.values())
    ):
        return _marshmallow_schema(schema)
    loaders = {name: field_loader(f) for name, f in schema.load_fields.items()}
    required = tuple(name for name, f in schema.load_fields.items() if f.required)
    ordered = tuple(loaders.items())

    if sparse:

        def load_sparse(data: Any) -> dict[str, Any]:
            if data.__class__ is not dict and not isinstance(data, Mapping):
                raise Rejected
            out = {}
            for key, value in data.items():
                loader = loaders.get(key)
                if loader is None:
                    raise Rejected  # unknown
                out[key] = loader(value)
            for name in required:
                if name not in out:
                    raise Rejected
            return out

        return load_sparse

    def load_ordered(data: Any) -> dict[str, Any]:
        if data.__class__ is not dict and not isinstance(data, Mapping):
            raise Rejected
        out = {}
        for name, loader in ordered:
            value = data.get(name, missing)
            if value is missing:
                if name in required:
                    raise Rejected
                continue
            out[name] = loader(value)
        if len(out) != len(data):
            raise Rejected  # unknown members
        return out

    return load_ordered


def _core(field: fields.Field) -> Loader:
    """What ``field._deserialize`` returns for a value that is not None."""
    fast = getattr(field, "fast_deserialize", None)
    if fast is not None:
        return fast  # type: ignore[no-any-return]
    deserialize = field._deserialize
    if type(field) is fields.String:

        def string(value: Any) -> Any:
            return value if type(value) is str else deserialize(value, None, None)

        return string
    if type(field) is fields.List:
        inner = field_loader(field.inner)

        def list_(value: Any) -> Any:
            if type(value) is list:
                return [inner(item) for item in value]
            return deserialize(value, None, None)

        return list_
    if (
        type(field) is fields.Nested
        and not field.many
        and field.unknown is None
        and not field.only
        and not field.exclude
        and isinstance(field.schema, ma.Schema)
    ):
        return schema_loader(field.schema)

    def generic(value: Any) -> Any:
        return deserialize(value, None, None)

    return generic


def _compile_field(field: fields.Field) -> Loader:
    if field.pre_load or field.post_load:

        def marshmallow_field(value: Any) -> Any:
            return field.deserialize(value)

        return marshmallow_field
    loader = _compile_checks(field)
    kind = str if type(field) is fields.String else getattr(field, "fast_type", None)
    if kind is None:
        return loader
    return _plain(kind, tuple(field.validators), loader)


def _plain(kind: type, validators: tuple[Any, ...], loader: Loader) -> Loader:
    """``loader`` with the common value first: one of exactly the type
    ``kind`` that the field returns as it is (a string, an int, a bool),
    checked inline by its validator where it is one of the usual ones;
    any other value goes through ``loader``."""
    if not validators:

        def plain(value: Any) -> Any:
            return value if value.__class__ is kind else loader(value)

        return plain
    (validator,) = validators if len(validators) == 1 else (None,)
    if (
        type(validator) is validate.Range
        and kind is int
        and validator.min_inclusive
        and validator.max_inclusive
    ):
        low = -math.inf if validator.min is None else validator.min
        high = math.inf if validator.max is None else validator.max

        def int_in_range(value: Any) -> Any:
            if value.__class__ is int and low <= value <= high:
                return value
            return loader(value)

        return int_in_range
    if type(validator) is validate.Regexp and kind is str:
        match = validator.regex.match

        def matching(value: Any) -> Any:
            if value.__class__ is str and match(value) is not None:
                return value
            return loader(value)

        return matching
    if type(validator) is validate.OneOf and kind is str:
        choices = frozenset(c for c in validator.choices if isinstance(c, str))

        def one_of(value: Any) -> Any:
            return value if value.__class__ is str and value in choices else loader(value)

        return one_of
    return loader


def _compile_checks(field: fields.Field) -> Loader:
    """The field's ``_deserialize`` (its fast form) with None and its validators."""
    core = _core(field)
    validators = tuple(field.validators)
    allow_none = field.allow_none
    checks = [_check(v) for v in validators]

    if len(checks) == 1 and checks[0] is not None:
        check = checks[0]

        def load_checked(value: Any) -> Any:
            if value is None:
                if allow_none:
                    return None
                raise Rejected
            out = core(value)
            if not check(out):
                raise Rejected
            return out

        return load_checked

    def load_field(value: Any) -> Any:
        if value is None:
            if allow_none:
                return None
            raise Rejected
        out = core(value)
        for validator in validators:
            if validator(out) is False:
                raise Rejected
        return out

    if validators:
        return load_field

    def load_unvalidated(value: Any) -> Any:
        if value is None:
            if allow_none:
                return None
            raise Rejected
        return core(value)

    return load_unvalidated


def _check(validator: Any) -> Callable[[Any], bool] | None:
    """A marshmallow validator's verdict as a predicate (True: it passes),
    without its call and error formatting, for the validators the schemas
    use (``Range``, ``OneOf``, ``Length``, ``Regexp``); None for others."""
    kind = type(validator)
    if kind is validate.Range:
        low, high = validator.min, validator.max
        low_in, high_in = validator.min_inclusive, validator.max_inclusive

        def in_range(value: Any) -> bool:
            if low is not None and (value < low if low_in else value <= low):
                return False
            return not (high is not None and (value > high if high_in else value >= high))

        return in_range
    if kind is validate.OneOf:
        choices = validator.choices

        def one_of(value: Any) -> bool:
            try:
                return value in choices
            except TypeError:
                return False

        return one_of
    if kind is validate.Length and validator.equal is None:
        shortest, longest = validator.min, validator.max

        def length(value: Any) -> bool:
            size = len(value)
            return not (
                (shortest is not None and size < shortest)
                or (longest is not None and size > longest)
            )

        return length
    if kind is validate.Regexp:
        match = validator.regex.match
        return lambda value: match(value) is not None
    return None
