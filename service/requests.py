"""Reading JSON request bodies, with every failure a clean problem response."""

import json
from typing import Any
from typing import NoReturn

from flask import request
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import UnsupportedMediaType

from modelspec.errors import BODY
from modelspec.errors import ApiValidationError


def get_json_body() -> object:
    """Parse the request body as JSON and return any JSON value.

    :raise 415: if the Content-Type is not ``application/json`` or
        ``application/*+json`` (parameters such as ``charset`` are ignored).
    :raise 413: if the body is larger than ``MAX_CONTENT_LENGTH``.
    :raise 400: if the body is not valid JSON.
    """
    # werkzeug's is_json accepts exactly application/json and application/*+json.
    if not request.is_json:
        received = request.content_type or "none"
        raise UnsupportedMediaType(
            f"The request body must be JSON (Content-Type: application/json);"
            f" received Content-Type: {received}."
        )
    # Reading the body enforces MAX_CONTENT_LENGTH (413).
    return parse_json(request.get_data(cache=True))


def parse_json(data: bytes) -> object:
    """A request body's JSON value (``get_json_body`` without the request:
    UTF-8, -16 or -32, NaN and Infinity refused).

    :raise 400: if the body is empty or not valid JSON.
    """
    if not data.strip():
        raise BadRequest("The request body is empty; expected a JSON document.")
    try:
        # Parse with the standard library rather than request.get_json():
        # Flask hides the parser's message outside debug mode, and we also
        # refuse NaN and Infinity, which are not JSON.
        # json.loads as it reads bytes, with one decoder made once (loads
        # would make one a call for its parse_constant).
        return _DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
    except json.JSONDecodeError as e:
        raise BadRequest(
            f"The request body is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})."
        ) from e
    except RecursionError as e:
        raise BadRequest("The request body is not valid JSON: nested too deeply.") from e
    except UnicodeDecodeError as e:
        raise BadRequest(
            "The request body is not valid JSON: it is not UTF-8, UTF-16 or UTF-32."
        ) from e
    except ValueError as e:
        # NaN/Infinity, or an integer over Python's 4300-digit limit; that
        # message ends in advice for Python programmers, so cut it at ";".
        reason = str(e).split(";")[0]
        raise BadRequest(f"The request body is not valid JSON: {reason}.") from e


def get_json_object() -> dict[str, Any]:
    """Parse the request body as JSON and require a JSON object.

    :raise 415, 413, 400: as :func:`get_json_body`.
    :raise 422: if the body is valid JSON but not an object, with
        ``errors == {"body": ["Must be a JSON object."]}``.
    """
    rv = get_json_body()
    if not isinstance(rv, dict):
        raise ApiValidationError(
            "The request body must be a JSON object.",
            {BODY: ["Must be a JSON object."]},
        )
    return rv


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
