"""Interactive API documentation: ``GET /docs``, Swagger UI on openapi.yaml.

Swagger UI's files come from the ``flask-swagger-ui`` package, which
bundles its ``dist/`` (Swagger UI 5, which reads OpenAPI 3.1), and are
served by the API itself: the page loads nothing from another host, which
its Content-Security-Policy (service/web.py, shared with the pages)
enforces in the browser. The package's own
blueprint is not used: its page starts Swagger UI from an inline script
(which that policy forbids) and leaves Swagger UI's validator badge on,
fetched from validator.swagger.io.

"Try it out" sends requests to the server that served the page (the
spec's ``servers`` is relative). Open to everyone, like ``/openapi.yaml``;
the page's "Authorize" button takes an API key for the guarded routes.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from flask import Blueprint
from flask import Response
from flask import render_template
from werkzeug.exceptions import NotFound

from .web import asset_response
from .web import html_page

bp = Blueprint("docs", __name__, template_folder="templates")

#: The API contract, committed at the repository root.
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"

#: The files of Swagger UI's dist that the page loads.
SWAGGER_ASSETS = frozenset(
    {"swagger-ui-bundle.js", "swagger-ui.css", "index.css", "favicon-16x16.png",
     "favicon-32x32.png"}
)  # fmt: skip
#: The page's own files, beside this module.
OWN_ASSETS = frozenset({"docs.js"})
OWN_DIR = Path(__file__).resolve().parent / "static"


@cache
def swagger_dist() -> Path:
    """The folder of Swagger UI's files in the flask-swagger-ui package
    (found without importing it)."""
    spec = importlib.util.find_spec("flask_swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("flask-swagger-ui is not installed: pip install flask-swagger-ui")
    return Path(next(iter(spec.submodule_search_locations))) / "dist"


@bp.get("/docs")
def docs() -> Response:
    """Swagger UI on this API's openapi.yaml."""
    return html_page(render_template("docs.html"))


@bp.get("/docs/<asset>")
def asset(asset: str) -> Response:
    """One of the files the documentation page loads.

    :raise 404: for any other name.
    """
    if asset in SWAGGER_ASSETS:
        folder = swagger_dist()
    elif asset in OWN_ASSETS:
        folder = OWN_DIR
    else:
        raise NotFound(f"The documentation has no file {asset[:64]!r}.")
    return asset_response(folder, asset)


@cache
def _openapi_document() -> bytes:
    return OPENAPI_PATH.read_bytes()


@bp.get("/openapi.yaml")
def get_openapi() -> Response:
    """Serve the OpenAPI document that describes this API."""
    return Response(_openapi_document(), mimetype="application/yaml")
