"""A model request in any form, validated into the engine's compact spec.

The forms: the compact Sequential form (``{"input_shape", "layers"}``), the
compact graph form (``{"inputs", "layers", "outputs"}``, :mod:`modelspec.graph`)
and Keras's own ``model.to_json()`` of either kind. ``POST /params``,
``POST /train`` and the offline ``seqlab params`` all load models here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow import validate

from seqlab import analyze
from seqlab import from_keras_json
from seqlab import is_keras_json
from seqlab.functional_json import build_configs
from seqlab.functional_json import check_build_configs
from seqlab.functional_json import with_session_names

from . import fast
from .fields import DTYPES
from .fields import MAX_DEPTH
from .fields import MAX_INT
from .fields import MAX_LAYERS
from .fields import MAX_RANK
from .fields import NAME
from .fields import Dimension
from .fields import LayerField
from .fields import StrictInt
from .graph import graph_spec_schema


class ModelSpecSchema(ma.Schema):
    """A Sequential model: its input and its layers (the compact form)."""

    name = fields.String(
        validate=NAME, metadata={"description": "Model name (default sequential)."}
    )
    input_shape = fields.List(
        Dimension(allow_none=True),
        required=True,
        validate=validate.Length(1, MAX_RANK),
        metadata={"description": "Input shape without the batch dimension; null for unknown."},
    )
    batch_size = StrictInt(validate=validate.Range(1, MAX_INT), allow_none=True)
    dtype = fields.String(validate=validate.OneOf(DTYPES))
    layers = fields.List(LayerField(), required=True, validate=validate.Length(1, MAX_LAYERS))


model_spec_schema = ModelSpecSchema()


#: The JSON values that hold nothing (``nests`` skips them without isinstance).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def nests(body: object, limit: int) -> bool:
    """Whether ``body`` holds an array or object ``limit`` or more levels
    down (``body`` itself is level 0): a pass level by level, without paths."""
    level = [body] if body.__class__ in (dict, list) or isinstance(body, Mapping | list) else []
    depth = 0
    while level:
        if depth >= limit:
            return True
        below = []
        for value in level:
            # A dict (what json.loads makes) is a Mapping without isinstance.
            mapping = value.__class__ is dict or (
                value.__class__ is not list and isinstance(value, Mapping)
            )
            for item in value.values() if mapping else value:
                kind = type(item)
                if kind is dict or kind is list:
                    below.append(item)
                elif kind not in _SCALARS and isinstance(item, Mapping | list):
                    below.append(item)
        level = below
        depth += 1
    return False


def check_depth(body: object, limit: int = MAX_DEPTH) -> None:
    """Refuse arrays and objects nested more than ``limit`` deep.

    Iterative, so that the check itself cannot overflow the stack.
    Raises ``marshmallow.ValidationError`` keyed by the path of the first
    place too deep (``layers.0.kernel_regularizer.config.l2``), found by a
    second walk once ``nests`` has found that there is one.
    """
    if not nests(body, limit):
        return
    stack: list[tuple[object, tuple[str, ...]]] = [(body, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, Mapping):
            items: Any = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            continue
        if len(path) >= limit:
            message = f"Nested more than {limit} levels deep."
            error: Any = [message]
            # Name the member that holds the nesting, not each list index in it.
            while path and path[-1].isdigit():
                path = path[:-1]
            for key in reversed(path):
                error = {key: error}
            raise ma.ValidationError(error if path else message)
        # Only containers can nest: scalars (most of a body) are not stacked.
        stack.extend(
            (item, (*path, str(key))) for key, item in items if isinstance(item, Mapping | list)
        )


def load_model_spec(body: object, *, strict: bool = True) -> dict[str, Any]:
    """Validate a model in any form and return its compact spec.

    ``body`` is the compact form (``{"input_shape", "layers"}``), the
    compact graph form (``{"inputs", "layers", "outputs"}``) or what Keras's
    ``model.to_json()`` writes for a Sequential or a Functional model, as an
    object or as the JSON string itself. A Functional document's
    ``build_config``s are checked against its graph (``seqlab.functional_json``),
    which, ``strict``, refuses a model that fails on its first call (as
    ``seqlab.analyze`` does); ``POST /params`` reads those too.
    Raises ``marshmallow.ValidationError`` or ``seqlab.SpecError``.
    """
    if isinstance(body, str):
        # A pasted `model.to_json()` string, sent as a JSON string.
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            raise ma.ValidationError("A string body must hold Keras model JSON.") from None
    check_depth(body)
    built = None
    if is_keras_json(body):
        if body.get("class_name") == "Functional":  # type: ignore[union-attr]
            built = build_configs(body)  # type: ignore[arg-type]
        body = from_keras_json(body)  # type: ignore[arg-type]
    if body.__class__ is not dict and not isinstance(body, Mapping):
        raise ma.ValidationError("Must be a JSON object.")
    if "inputs" not in body:
        return fast.load(model_spec_schema, body)  # type: ignore[no-any-return]
    spec: dict[str, Any] = fast.load(graph_spec_schema, body)
    if built is not None:
        spec, report = with_session_names(spec, functools.partial(analyze, strict=strict))
        check_build_configs(report, built)
    return spec
