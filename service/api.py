"""The API's views. Keep them thin: parse, call seqlab, return."""

from functools import cache
from pathlib import Path

from flask import Blueprint
from flask import Response

bp = Blueprint("api", __name__)

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


# --- POST /params ---------------------------------------------------------
# The parameter-count view goes here (a separate change): read the body with
# requests.get_json_object(), load it with a marshmallow schema, call seqlab,
# and return the counts; raise problems.ApiValidationError for errors that
# seqlab finds. Document it in openapi.yaml in the same change:
# tests/test_openapi.py fails while the routes and the spec disagree.
