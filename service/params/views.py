"""``POST /params`` and ``GET /layers``: a model's counts, and what the registry
holds. Keep them thin: parse, call seqlab, return."""

import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request

from modelspec.errors import ApiValidationError
from modelspec.fields import MAX_INT
from modelspec.graph import takes_initial_state
from modelspec.params import params_document
from modelspec.params import params_picture
from seqlab import LAYERS
from seqlab import Layer
from seqlab.memory import OPTIMIZERS
from seqlab.registry import describe
from seqlab.registry import describe_arg
from seqlab.summary import PIPED_LINE_LENGTH

from ..requests import get_json_body
from .cache import LRUCache
from .cache import digest_key

bp = Blueprint("params", __name__)

#: Answers larger than this are not kept: the cache is for the common small
#: models. Keys are 32-byte digests of the body, so 1,024 entries hold at
#: most 1,024 × (64 KiB + 32 B), 64 MiB of data (about 65 MiB with Python's
#: per-entry overhead) a process.
MAX_CACHED_BYTES = 64 * 1024

#: The widths ``POST /params?line_length=`` may ask for: Keras's summary
#: needs every column at least 4 wide (under 40 it raises "Insufficient
#: console width"), and 250 is wider than any screen.
LINE_LENGTHS = (40, 250)


#: What ``POST /params`` answers, by its request's ``Accept``: the document
#: (first: the answer to ``*/*``, to no ``Accept``, and to an ``Accept``
#: that takes neither, as before there was a choice) or its picture.
JSON = "application/json"
SVG = "image/svg+xml"
MEDIA_TYPES = (JSON, SVG)


#: What ``POST /params`` answers, with no whitespace left out (as
#: ``json.dumps(document, ensure_ascii=False)``): one encoder for every
#: request. The document is a tree, so the check for cycles is left out.
ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def _int_arg(
    args: Mapping[str, str], name: str, low: int, high: int, errors: dict[str, list[str]]
) -> int | None:
    """An integer query parameter from ``low`` to ``high``; None when absent."""
    if name not in args:
        return None
    raw = args[name]
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 12 else low - 1
    if not low <= value <= high:
        errors[name] = [f"Must be an integer from {low} to {high}."]
    return value


def estimate_options() -> tuple[int | None, str, int]:
    """The query parameters of ``POST /params``: ``train_batch_size`` and
    ``optimizer`` (what its training memory estimate assumes) and
    ``line_length`` (the width of the summary).

    :raise 422: naming the parameter, for a value it cannot take.
    """
    args = request.args
    if not args:  # the common request: every default
        return None, "adam", PIPED_LINE_LENGTH
    errors: dict[str, list[str]] = {}
    batch_size = _int_arg(args, "train_batch_size", 1, MAX_INT, errors)
    optimizer = args.get("optimizer", "adam")
    if optimizer not in OPTIMIZERS:
        errors["optimizer"] = [f"Must be one of: {', '.join(OPTIMIZERS)}."]
    line_length = _int_arg(args, "line_length", *LINE_LENGTHS, errors)
    if errors:
        first = next(iter(errors))
        raise ApiValidationError(f"{first}: {errors[first][0]}", errors)
    return batch_size, optimizer, line_length or PIPED_LINE_LENGTH


@bp.post("/params")
def count_params() -> Response:
    """Count a model's parameters and output shapes, exactly as Keras 3 does,
    and estimate the memory of training it; or, for ``Accept:
    image/svg+xml``, draw the model's graph."""
    body = get_json_body()  # 400/413/415 before any cache lookup
    batch_size, optimizer, line_length = estimate_options()
    media_type = request.accept_mimetypes.best_match(MEDIA_TYPES, default=JSON)
    answer = params_answer(
        request.get_data(cache=True),
        body,
        current_app.extensions["params_cache"],
        batch_size,
        optimizer,
        line_length,
        media_type,
    )
    return _answer(answer, media_type)


def params_answer(
    data: bytes,
    body: object,
    cache: LRUCache,
    batch_size: int | None = None,
    optimizer: str = "adam",
    line_length: int = PIPED_LINE_LENGTH,
    media_type: str = JSON,
) -> bytes:
    """What ``POST /params`` answers for a request body (``data``, parsed
    as ``body``), its options and media type (the document, or the SVG
    picture): from ``cache`` when it holds it, else computed (and kept when
    small enough).

    :raise marshmallow.ValidationError, ApiValidationError: as
        ``params_document``, for a model the API refuses.
    """
    key = None
    if cache.maxsize > 0:  # PARAMS_CACHE_SIZE=0: no key to make
        # The picture depends on the body alone. Its key's suffix ends in a
        # letter, the document's in a digit: the two never share a key.
        if media_type == SVG:
            options = f"\0{SVG}".encode()
        else:
            options = f"\0{batch_size}\0{optimizer}\0{line_length}".encode()
        key = digest_key(data + options)
        cached = cache.get(key)
        if cached is not None:
            return cached
    if media_type == SVG:
        answer = params_picture(body).encode()
    else:
        document = params_document(body, batch_size, optimizer, line_length)
        answer = ENCODER.encode(document).encode()
    if key is not None and len(answer) <= MAX_CACHED_BYTES:
        cache.put(key, answer)
    return answer


def _answer(answer: bytes, media_type: str) -> Response:
    """The answer in its media type; either one varies with ``Accept``."""
    response = Response(answer, content_type=media_type)
    response.vary.add("Accept")
    return response


@bp.get("/layers")
def list_layers() -> dict[str, Any]:
    """List the supported layers, their Keras arguments, how a graph calls
    them (``call_form``, ``list_inputs``, ``call_args``) and an example each."""
    return {"layers": [describe_layer(layer) for layer in LAYERS.values()]}


def describe_layer(layer: type[Layer]) -> dict[str, Any]:
    """``describe`` plus the call interface of a layer in a graph."""
    low, high = layer.list_inputs
    out = describe(layer)
    out["call_form"] = layer.call_form
    if layer.call_form == "list":
        out["list_inputs"] = {"min": low, "max": high}
    out["call_args"] = [describe_arg(arg) for arg in layer.call_args]
    out["initial_state"] = takes_initial_state(layer)
    return out
