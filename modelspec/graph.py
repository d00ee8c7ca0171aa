"""The schema of the compact graph form (Functional models), from the registry.

A model with ``"inputs"`` is a graph::

    {"name"?, "inputs": [{"name"?, "shape", "batch_size"?, "dtype"?}, ...],
     "layers": [<entry>, ...], "outputs"?: <reference> | [<reference>, ...]}

An entry creates and calls a layer (``{"type", <constructor args>, "name"?,
"inputs"?, "initial_state"?, <call args>}``) or calls an earlier one again
(``{"call": <layer name>, "inputs"?, "initial_state"?, <call args>}``).
Constructor arguments come from ``Layer.all_args()``, call arguments from
``Layer.call_args``, the shape of ``inputs`` from ``Layer.call_form``; nobody
lists them here by hand. What needs the graph (a reference to a tensor that
does not exist, shapes, counts of states) is the engine's check, in Keras's
words.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow import validate

from seqlab import LAYERS
from seqlab import Layer
from seqlab.layers.recurrent import RNN

from . import fast
from .fields import DTYPES
from .fields import MAX_INT
from .fields import MAX_LAYERS
from .fields import MAX_NESTING
from .fields import MAX_RANK
from .fields import NAME
from .fields import Dimension
from .fields import LayerField
from .fields import StrictInt
from .fields import arg_field
from .fields import layer_schema_class

#: A model takes 1 to 64 inputs; a call, outputs and initial states as many tensors.
MAX_INPUTS = 64
#: ``name``, or ``name[node][tensor]`` (the summary's "Connected to" form).
REFERENCE = re.compile(r"\A([A-Za-z0-9_][A-Za-z0-9_.\-]{0,127})(?:\[(\d{1,6})\]\[(\d{1,6})\])?\Z")
REFERENCE_HELP = (
    'Must be a tensor reference: a layer or input name ("lstm"), or '
    '"name[call][output]" ("lstm[0][1]": output 1 of the layer\'s first call).'
)
#: The keys of a ``{"call": ...}`` entry besides the layer's call arguments.
CALL_KEYS = ("call", "inputs", "initial_state")
#: The tensor keywords of a ``query_value_key`` call.
QVK = ("query", "value", "key")


def takes_initial_state(layer: type[Layer]) -> bool:
    """Whether a layer's call takes ``initial_state``: recurrent layers and
    Bidirectional (which hands the states to its two layers)."""
    return issubclass(layer, RNN) or layer.type == "Bidirectional"


def check_reference(value: Any) -> str:
    """Validate one tensor reference; return it."""
    if value.__class__ is str and value.isascii() and value.isidentifier() and len(value) <= 128:
        return value  # a plain name (the common reference): REFERENCE matches it
    if not isinstance(value, str) or not REFERENCE.match(value):
        raise ma.ValidationError(REFERENCE_HELP)
    return value


def _reference_list(value: Any, low: int, high: int, what: str) -> list[str]:
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise ma.ValidationError(f"Must be a list of {low} to {high} {what}.")
    errors: dict[int, list[str]] = {}
    for i, item in enumerate(value):
        try:
            check_reference(item)
        except ma.ValidationError as error:
            errors[i] = error.messages  # type: ignore[assignment]
    if errors:
        raise ma.ValidationError(errors)  # type: ignore[arg-type]
    return value


class Reference(fields.Field):
    """One tensor reference: ``"lstm"`` or ``"lstm[0][1]"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return check_reference(value)


class References(fields.Field):
    """A list of tensor references (``initial_state``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        return _reference_list(value, 1, MAX_INPUTS, "tensor references")


class Outputs(fields.Field):
    """``outputs``: one reference (a single-output model) or a list of them."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, list):
            return _reference_list(value, 1, MAX_INPUTS, "tensor references")
        return check_reference(value)


class CallInputs(fields.Field):
    """A call's tensors, in the shape the layer's ``call_form`` takes.

    ``form`` None (a ``{"call": ...}`` entry whose layer the schema cannot
    name) accepts any of the shapes; the engine checks them on the layer.
    """

    def __init__(self, form: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.form = form

    def fast_deserialize(self, value: Any) -> Any:
        """``_deserialize`` for the fast loader (``modelspec.fast``)."""
        if value.__class__ is str and self.form in ("one", None):
            return check_reference(value)  # one reference by name: the common call
        return self._deserialize(value, None, None)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        form = self.form
        if isinstance(value, str):
            if form in ("list", "query_value_key"):
                raise ma.ValidationError(self._expected(form))
            return check_reference(value)
        if isinstance(value, list):
            if form == "one":
                raise ma.ValidationError(self._expected(form))
            if form == "query_value_key":
                return _reference_list(value, 2, 3, "tensor references: query, value and key")
            return _reference_list(value, 1, MAX_INPUTS, "tensor references")
        if isinstance(value, Mapping) and form in ("query_value_key", None):
            unknown = set(value) - set(QVK)
            if unknown or "query" not in value or "value" not in value:
                raise ma.ValidationError(
                    'Must be {"query": ref, "value": ref, "key"?: ref}; '
                    f"received the keys {sorted(map(str, value))}."
                )
            errors = {}
            for key in value:
                try:
                    check_reference(value[key])
                except ma.ValidationError as error:
                    errors[key] = error.messages
            if errors:
                raise ma.ValidationError(errors)
            return dict(value)
        raise ma.ValidationError(self._expected(form))

    @staticmethod
    def _expected(form: str | None) -> str:
        if form == "one":
            return "Must be one tensor reference (this layer takes one tensor)."
        if form == "list":
            return 'Must be a list of tensor references, e.g. ["lstm", "lstm_1"].'
        if form == "query_value_key":
            return (
                "Must be [query, value] or [query, value, key] (positional), or "
                '{"query": ref, "value": ref, "key"?: ref} (by keyword).'
            )
        return "Must be a tensor reference, a list of them, or {query, value, key}."


@functools.cache
def entry_schema_class(layer_type: str) -> type[ma.Schema]:
    """The schema of an entry that creates a ``layer_type`` layer and calls it:
    its constructor arguments, ``inputs``, ``initial_state`` where the call
    takes it, and its call arguments."""
    layer_cls = LAYERS[layer_type]
    declared = dict(layer_schema_class(layer_type, 0)._declared_fields)
    call = call_fields(layer_cls, layer_cls.call_form)
    declared.update(call)
    schema_cls = ma.Schema.from_dict(declared, name=f"{layer_type}EntrySchema")
    schema_cls.error_messages = {
        "unknown": f"Unknown field: a {layer_type} entry takes its Keras constructor "
        f"arguments (GET /layers), name, and the call's {', '.join(call)}."
    }
    return schema_cls


def call_fields(layer_cls: type[Layer] | None, form: str | None) -> dict[str, fields.Field]:
    """``inputs``, ``initial_state`` and the call arguments of a layer class
    (of every class when ``layer_cls`` is None)."""
    out: dict[str, fields.Field] = {"inputs": CallInputs(form)}
    classes = [layer_cls] if layer_cls is not None else list(LAYERS.values())
    if any(takes_initial_state(c) for c in classes):
        out["initial_state"] = References()
    for cls in classes:
        for arg in cls.call_args:
            out.setdefault(arg.name, arg_field(arg, 0))
    return out


@functools.lru_cache(maxsize=2048)
def entry_schema(layer_type: str, keys: frozenset[str]) -> ma.Schema:
    """``entry_schema_class`` restricted to the keys present (see ``layer_schema``)."""
    schema_cls = entry_schema_class(layer_type)
    declared = schema_cls._declared_fields
    required = {name for name, f in declared.items() if f.required}
    return schema_cls(only=(keys & declared.keys()) | required)


@functools.cache
def call_schema(layer_type: str | None) -> ma.Schema:
    """The schema of a ``{"call": ...}`` entry calling a ``layer_type`` layer
    (None: a layer the schema cannot name; the engine refuses it)."""
    layer_cls = LAYERS.get(layer_type) if layer_type else None
    declared: dict[str, fields.Field] = {"call": fields.String(required=True, validate=NAME)}
    declared.update(call_fields(layer_cls, layer_cls.call_form if layer_cls else None))
    schema_cls = ma.Schema.from_dict(declared, name=f"{layer_type or 'Any'}CallSchema")
    keys = ", ".join([*CALL_KEYS, *(k for k in declared if k not in CALL_KEYS)])
    schema_cls.error_messages = {"unknown": f"A call entry takes only {keys}."}
    return schema_cls()


class InputSpecSchema(ma.Schema):
    """One model input: ``keras.Input(shape, batch_size, dtype, name)``."""

    name = fields.String(validate=NAME, metadata={"description": "Default input_layer, ..."})
    shape = fields.List(
        Dimension(allow_none=True), required=True, validate=validate.Length(1, MAX_RANK)
    )
    batch_size = StrictInt(validate=validate.Range(1, MAX_INT), allow_none=True)
    dtype = fields.String(validate=validate.OneOf(DTYPES))


#: The registered types, hashable or not (a request's ``type`` may be an object).
_TYPES = tuple(LAYERS)


def _entry_names(entries: list[Any]) -> dict[str, str]:
    """The explicit names of the creating entries: name → layer type."""
    return {
        e["name"]: e["type"]
        for e in entries
        if isinstance(e, Mapping) and isinstance(e.get("name"), str) and e.get("type") in _TYPES
    }


class GraphEntries(fields.Field):
    """``layers`` of a graph: the entries, each loaded by its kind and type."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_LAYERS:
            raise ma.ValidationError(f"Must be a list of 1 to {MAX_LAYERS} layer entries.")
        named = _entry_names(value)
        auto = _auto_names(value)
        loaded, errors = [], {}
        for i, entry in enumerate(value):
            try:
                loaded.append(load_entry(entry, named, auto))
            except ma.ValidationError as error:
                errors[i] = error.messages
        if errors:
            raise ma.ValidationError(errors)  # type: ignore[arg-type]
        return loaded

    def fast_deserialize(self, value: Any) -> list[Any]:
        """``_deserialize`` for the fast loader (``modelspec.fast``): each
        entry through its compiled schema; the first error ends it."""
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_LAYERS:
            raise fast.Rejected
        # The names only serve ``{"call": ...}`` entries, to find their layer.
        if any(
            (entry.__class__ is dict or isinstance(entry, Mapping)) and "call" in entry
            for entry in value
        ):
            named, auto = _entry_names(value), _auto_names(value)
        else:
            named = auto = {}
        return [fast_entry(entry, named, auto) for entry in value]


def _auto_names(entries: list[Any]) -> dict[str, str]:
    """Layer types by the automatic name Keras gives the creating entries in
    order (wrapped layers first, as a program constructs them); enough for
    a ``{"call": ...}`` entry to find its layer's call arguments."""
    counts: dict[str, int] = {}
    out: dict[str, str] = {}
    for entry in entries:
        _auto_name(entry, 0, counts, out)
    return out


def _auto_name(spec: Any, depth: int, counts: dict[str, int], out: dict[str, str]) -> None:
    """Count the automatic names of ``spec`` (a creating entry at depth 0)
    and of the layers it wraps; record the entry's own in ``out``."""
    if not isinstance(spec, Mapping) or depth > MAX_NESTING:
        return
    if not isinstance(spec.get("type"), str) or spec["type"] not in LAYERS:
        return
    for key in ("layer", "backward_layer"):
        _auto_name(spec.get(key), depth + 1, counts, out)
    if isinstance(spec.get("name"), str):
        return
    prefix = LAYERS[spec["type"]].name_prefix()
    n = counts.get(prefix, 0)
    counts[prefix] = n + 1
    if depth == 0:
        out[f"{prefix}_{n}" if n else prefix] = spec["type"]


def load_entry(entry: Any, named: Mapping[str, str], auto: Mapping[str, str]) -> dict[str, Any]:
    """Validate one entry of a graph's ``layers``."""
    if not isinstance(entry, Mapping):
        raise ma.ValidationError(
            'Must be a layer entry: {"type": "Dense", "units": 1, "inputs": "x"} or '
            '{"call": "dense", "inputs": "y"}.'
        )
    if "call" in entry:
        if "type" in entry:
            raise ma.ValidationError(
                {"call": ['An entry either creates a layer ("type") or calls one ("call").']}
            )
        target = entry.get("call")
        layer_type = named.get(target) or auto.get(target) if isinstance(target, str) else None
        return call_schema(layer_type).load(entry)  # type: ignore[no-any-return]
    layer_type = entry.get("type")
    if not isinstance(layer_type, str) or layer_type not in LAYERS:
        LayerField().deserialize(entry)  # raises, naming the known types
    return entry_schema(layer_type, frozenset(entry)).load(entry)  # type: ignore[no-any-return]


@functools.cache
def full_entry_schema(layer_type: str) -> ma.Schema:
    """An instance of ``entry_schema_class`` with every field (the fast loader's)."""
    return entry_schema_class(layer_type)()


def fast_entry(entry: Any, named: Mapping[str, str], auto: Mapping[str, str]) -> dict[str, Any]:
    """``load_entry`` through the compiled schemas; raises ``ValidationError``
    (not necessarily marshmallow's) for anything they do not accept."""
    if entry.__class__ is not dict and not isinstance(entry, Mapping):
        raise fast.Rejected
    if "call" in entry:
        if "type" in entry:
            raise fast.Rejected
        target = entry.get("call")
        layer_type = named.get(target) or auto.get(target) if isinstance(target, str) else None
        return fast.schema_loader(call_schema(layer_type))(entry)  # type: ignore[no-any-return]
    layer_type = entry.get("type")
    if type(layer_type) is not str:
        raise fast.Rejected
    loader = _ENTRY_LOADERS.get(layer_type)
    if loader is None:
        if layer_type not in LAYERS:
            raise fast.Rejected
        loader = _ENTRY_LOADERS[layer_type] = fast.schema_loader(
            full_entry_schema(layer_type), sparse=True
        )
    return loader(entry)  # type: ignore[no-any-return]


#: ``fast_entry``'s compiled loader of each layer type's entries, made on first use.
_ENTRY_LOADERS: dict[str, fast.Loader] = {}


class GraphSpecSchema(ma.Schema):
    """A Functional model in the compact graph form."""

    name = fields.String(
        validate=NAME, metadata={"description": "Model name (default functional)."}
    )
    inputs = fields.List(
        fields.Nested(InputSpecSchema), required=True, validate=validate.Length(1, MAX_INPUTS)
    )
    layers = GraphEntries(required=True)
    outputs = Outputs()


graph_spec_schema = GraphSpecSchema()
