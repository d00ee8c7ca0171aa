"""Why a request was refused, by field: the ``errors`` map of a 422.

Plain exceptions and marshmallow's messages flattened to dotted paths, so
that the API's problem documents (service/problems.py) and the offline
``seqlab params`` command refuse a model in the same words.
"""

from collections.abc import Mapping

from marshmallow.exceptions import SCHEMA

#: The ``errors`` key for problems with the request body as a whole.
BODY = "body"


class ApiValidationError(Exception):
    """The request is well-formed but its content is invalid (422).

    Raise it from a view for errors that a schema cannot see, such as a
    layer whose input shape is too small for its kernel.

    :param detail: a sentence for a human, e.g. ``"layers.2: ..."``.
    :param errors: reasons by dotted field path. Without it the error is
        filed under ``body``, so a 422 always carries ``errors``.
    """

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors if errors else {BODY: [detail]}


def flatten_errors(messages: object) -> dict[str, list[str]]:
    """Turn marshmallow's nested error messages into dotted paths.

    List indices become path segments, and marshmallow's ``_schema`` key
    (an error about the enclosing object itself) adds none; an error about
    the whole body is filed under ``body``.

    >>> flatten_errors({"layers": {2: {"units": ["Too small."]}}})
    {'layers.2.units': ['Too small.']}
    >>> flatten_errors({"layers": {0: {"_schema": ["Bad layer."]}}})
    {'layers.0': ['Bad layer.']}
    >>> flatten_errors({"_schema": ["Invalid input type."]})
    {'body': ['Invalid input type.']}
    """
    rv: dict[str, list[str]] = {}
    _flatten(messages, (), rv)
    return rv


def _flatten(messages: object, path: tuple[str, ...], rv: dict[str, list[str]]) -> None:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            _flatten(value, path if key == SCHEMA else (*path, str(key)), rv)
    elif isinstance(messages, list | tuple):
        for message in messages:
            _flatten(message, path, rv)
    else:
        # A leaf: normally a string, but custom validators may raise anything.
        rv.setdefault(".".join(path) or BODY, []).append(str(messages))


def summarize_errors(errors: dict[str, list[str]]) -> str:
    """Name the first error in a sentence, so ``detail`` alone is useful."""
    if not errors:
        return "The request body is invalid."
    path, reasons = next(iter(errors.items()))
    rv = f"{path}: {reasons[0]}"
    more = sum(len(r) for r in errors.values()) - 1
    if more > 0:
        rv += f" (and {more:,} more {'error' if more == 1 else 'errors'})"
    return rv


#: The most fields a 422's ``errors`` lists: a body of 60,000 unknown members
#: would otherwise be answered with megabytes of them (``detail`` still
#: counts them all).
MAX_LISTED_ERRORS = 20


def listed_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The first :data:`MAX_LISTED_ERRORS` fields of ``errors``, in order."""
    if len(errors) <= MAX_LISTED_ERRORS:
        return errors
    return dict(list(errors.items())[:MAX_LISTED_ERRORS])
