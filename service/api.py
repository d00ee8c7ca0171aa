"""The API's views. Keep them thin: parse, call seqlab, return."""

import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request

from seqlab import LAYERS
from seqlab import Layer
from seqlab import SpecError
from seqlab import analyze
from seqlab import render_summary
from seqlab.memory import train_memory
from seqlab.registry import describe
from seqlab.registry import describe_arg
from seqlab.summary import CONSOLE_WIDTH
from seqlab.summary import PIPED_LINE_LENGTH

from .cache import LRUCache
from .cache import digest_key
from .graph_schemas import takes_initial_state
from .problems import ApiValidationError
from .requests import get_json_body
from .schemas import MAX_INT
from .schemas import load_model_spec
from .train_schemas import OPTIMIZERS

bp = Blueprint("api", __name__)

#: Answers larger than this are not kept: the cache is for the common small
#: models. Keys are 32-byte digests of the body, so 1,024 entries hold at
#: most 1,024 × (64 KiB + 32 B), 64 MiB of data (about 65 MiB with Python's
#: per-entry overhead) a process.
MAX_CACHED_BYTES = 64 * 1024

#: The widths ``POST /params?line_length=`` may ask for: Keras's summary
#: needs every column at least 4 wide (under 40 it raises "Insufficient
#: console width"), and 250 is wider than any screen.
LINE_LENGTHS = (40, 250)

#: The API contract, committed at the repository root.
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"


@bp.get("/healthz")
def get_health() -> dict[str, str]:
    """Report that the process is up."""
    # The baseline of the throughput benchmark: touch nothing else.
    return {"status": "ok"}


@cache
def _openapi_document() -> bytes:
    return OPENAPI_PATH.read_bytes()


@bp.get("/openapi.yaml")
def get_openapi() -> Response:
    """Serve the OpenAPI document that describes this API."""
    return Response(_openapi_document(), mimetype="application/yaml")


def _int_arg(name: str, low: int, high: int, errors: dict[str, list[str]]) -> int | None:
    """An integer query parameter from ``low`` to ``high``; None when absent."""
    if name not in request.args:
        return None
    raw = request.args[name]
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
    errors: dict[str, list[str]] = {}
    batch_size = _int_arg("train_batch_size", 1, MAX_INT, errors)
    optimizer = request.args.get("optimizer", "adam")
    if optimizer not in OPTIMIZERS:
        errors["optimizer"] = [f"Must be one of: {', '.join(OPTIMIZERS)}."]
    line_length = _int_arg("line_length", *LINE_LENGTHS, errors)
    if errors:
        first = next(iter(errors))
        raise ApiValidationError(f"{first}: {errors[first][0]}", errors)
    return batch_size, optimizer, line_length or PIPED_LINE_LENGTH


def params_document(
    body: object,
    batch_size: int | None = None,
    optimizer: str = "adam",
    line_length: int = PIPED_LINE_LENGTH,
) -> dict[str, Any]:
    """The document of ``POST /params`` for a request body (any form):
    the counts, the training memory estimate for ``batch_size`` and
    ``optimizer``, and the summary ``line_length`` wide. The ``seqlab
    params`` command prints it too.

    :raise marshmallow.ValidationError: for a body the schema refuses.
    :raise ApiValidationError: for a model Keras would refuse, naming the layer.
    """
    try:
        spec = load_model_spec(body)
        report = analyze(spec)
    except SpecError as error:
        path = error.path or "body"
        raise ApiValidationError(f"{path}: {error.message}", {path: [error.message]}) from None
    memory = train_memory(report, batch_size, optimizer, spec.get("dtype"))
    return {
        **report.to_dict(),
        "train_memory_bytes": memory.total,
        "train_memory": memory.to_dict(),
        # As Keras prints it on a console at least that wide (COLUMNS), so
        # that a width over the piped console's 80 columns is not cut.
        "summary": render_summary(report, line_length, max(CONSOLE_WIDTH, line_length)),
    }


@bp.post("/params")
def count_params() -> Response:
    """Count a model's parameters and output shapes, exactly as Keras 3 does,
    and estimate the memory of training it."""
    body = get_json_body()  # 400/413/415 before any cache lookup
    batch_size, optimizer, line_length = estimate_options()
    cache: LRUCache = current_app.extensions["params_cache"]
    options = f"\0{batch_size}\0{optimizer}\0{line_length}".encode()
    key = digest_key(request.get_data(cache=True) + options)
    cached = cache.get(key)
    if cached is None:
        document = params_document(body, batch_size, optimizer, line_length)
        cached = json.dumps(document, ensure_ascii=False).encode()
        if len(cached) <= MAX_CACHED_BYTES:
            cache.put(key, cached)
    return Response(cached, mimetype="application/json")


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
