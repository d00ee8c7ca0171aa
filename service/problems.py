"""One error shape for the whole API: RFC 9457 ``application/problem+json``.

Every error response has the body::

    {"type": "about:blank", "title": "Not Found", "status": 404,
     "detail": "The requested URL was not found on the server. ..."}

and validation errors (422) add ``errors``, a map from a dotted field path
to its reasons::

    {"errors": {"layers.2.units": ["Must be greater than or equal to 1."]}}

The path ``body`` stands for the request body as a whole.
"""

from typing import Any

from flask import Flask
from flask import Response
from flask import current_app
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from modelspec.errors import ApiValidationError
from modelspec.errors import flatten_errors
from modelspec.errors import listed_errors
from modelspec.errors import summarize_errors

#: The media type of every error response.
PROBLEM_MIMETYPE = "application/problem+json"


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: dict[str, list[str]] | None = None,
) -> Response:
    """Build an ``application/problem+json`` response.

    :param status: the HTTP status code, repeated in the body.
    :param detail: a sentence explaining this occurrence of the problem.
    :param title: defaults to the status code's reason phrase, which RFC 9457
        asks for when ``type`` is ``about:blank``.
    :param errors: reasons by dotted field path, for validation errors.
    """
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTP_STATUS_CODES.get(status, "Unknown Error"),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    rv = current_app.json.response(body)
    rv.status_code = status
    rv.content_type = PROBLEM_MIMETYPE
    return rv


def handle_http_exception(e: HTTPException) -> Response:
    """Render a werkzeug HTTP error (404, 405, 413, ...) as a problem."""
    rv = problem(e.code or 500, e.description or e.name, title=e.name)
    # Keep the headers the error asks for, such as Allow on a 405.
    for key, value in e.get_headers():
        if key.lower() != "content-type":
            rv.headers.add(key, value)
    return rv


def handle_marshmallow_error(e: ValidationError) -> Response:
    """Render a schema validation failure as a 422 problem."""
    errors = flatten_errors(e.normalized_messages())
    return problem(422, summarize_errors(errors), errors=listed_errors(errors))


def handle_api_validation_error(e: ApiValidationError) -> Response:
    """Render an :class:`ApiValidationError` as a 422 problem."""
    return problem(422, e.detail, errors=e.errors)


def init_app(app: Flask) -> None:
    """Register the error handlers on the application.

    There is deliberately no handler for ``Exception``. Flask logs any
    unhandled exception and then passes an ``InternalServerError`` to the
    ``HTTPException`` handler, so clients still get a problem+json 500;
    in tests and debug mode the exception propagates instead of hiding
    the bug behind a 500.
    """
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ValidationError, handle_marshmallow_error)
    app.register_error_handler(ApiValidationError, handle_api_validation_error)
