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
from seqlab import SpecError
from seqlab import analyze
from seqlab import render_summary
from seqlab.registry import describe

from .cache import LRUCache
from .cache import digest_key
from .problems import ApiValidationError
from .requests import get_json_body
from .schemas import load_model_spec

bp = Blueprint("api", __name__)

#: Answers larger than this are not kept: the cache is for the common small
#: models. Keys are 32-byte digests of the body, so 1,024 entries hold at
#: most 1,024 × (64 KiB + 32 B), 64 MiB of data (about 65 MiB with Python's
#: per-entry overhead) a process.
MAX_CACHED_BYTES = 64 * 1024

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


@bp.post("/params")
def count_params() -> Response:
    """Count a model's parameters and output shapes, exactly as Keras 3 does."""
    body = get_json_body()  # 400/413/415 before any cache lookup
    cache: LRUCache = current_app.extensions["params_cache"]
    key = digest_key(request.get_data(cache=True))
    cached = cache.get(key)
    if cached is None:
        try:
            report = analyze(load_model_spec(body))
        except SpecError as error:
            path = error.path or "body"
            raise ApiValidationError(f"{path}: {error.message}", {path: [error.message]}) from None
        cached = json.dumps(
            {**report.to_dict(), "summary": render_summary(report)}, ensure_ascii=False
        ).encode()
        if len(cached) <= MAX_CACHED_BYTES:
            cache.put(key, cached)
    return Response(cached, mimetype="application/json")


@bp.get("/layers")
def list_layers() -> dict[str, Any]:
    """List the supported layers, their Keras arguments and an example each."""
    return {"layers": [describe(layer) for layer in LAYERS.values()]}
