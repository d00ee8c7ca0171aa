"""``POST /params`` answered below Flask, for the common request.

Flask's request machinery (the request and app contexts, routing, the
request hooks and signals, the response object) costs as much as the
answer of a small model itself. The common request needs none of it: a
``POST /params`` with no query, ``Content-Type: application/json``, a
``Content-Length`` within ``MAX_CONTENT_LENGTH`` and an ``Accept`` that
asks for the JSON document (none, or one that prefers it to the picture),
which the app's request hooks all let through untouched (the route is open
to every caller, takes no query parameter and brings no large body).
:class:`DirectParams`, a WSGI middleware around ``app.wsgi_app``, answers
such a request itself with the view's own bytes (``views.params_answer``:
the same parser, cache, document and encoder) and the headers Flask would
send.

Anything else goes through Flask as before, the body handed on as read:
another route, method, query, media type, accepted type or length; an app
with any
request hook, signal receiver, routing or host setting this module does not
know to leave the request alone (so that a hook added later is never
skipped; the fast path is then simply not taken); and every request whose
answer is not a 200 (a body the JSON parser, the schema or the engine
refuses, or any exception), so that every error is the app's own, in its
words (such a body is parsed, and loaded as far as it goes, twice).
``tests/test_params_direct.py`` holds both paths to the same status,
headers and bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

from flask import Flask
from flask import signals
from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_accept_header

from ..requests import parse_json
from . import views

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

#: The request hooks known to let the direct path's requests through
#: untouched, by kind and ``module.qualname``: the API-key guard (``/params``
#: is open), the check of query parameters (there are none) and the
#: large-body slots (for ``POST /train`` and ``POST /datasets`` only).
PASSING_HOOKS = frozenset(
    {
        ("before_request", "service.auth._guard"),
        ("before_request", "service.queries.refuse_unknown_queries"),
        ("before_request", "service.limits.before_large_body_route"),
        ("teardown_request", "service.limits.give_body_slot"),
    }
)
#: The signals Flask sends around a request that the direct path does not send.
SIGNALS = (
    signals.request_started,
    signals.request_finished,
    signals.request_tearing_down,
    signals.appcontext_pushed,
    signals.appcontext_tearing_down,
    signals.appcontext_popped,
)
#: The view's endpoint (the blueprint's name first).
ENDPOINT = "params.count_params"
#: ``Accept`` headers that ask for the document (what ``curl`` and most
#: clients send), known without parsing them.
JSON_ACCEPTS = frozenset({"*/*", views.JSON})


def wants_json(accept: str | None) -> bool:
    """Whether the view answers a request of this ``Accept`` with the JSON
    document (its own negotiation: ``best_match`` of its media types)."""
    if accept is None or accept in JSON_ACCEPTS:
        return True
    chosen = parse_accept_header(accept, MIMEAccept).best_match(views.MEDIA_TYPES, views.JSON)
    return chosen == views.JSON  # type: ignore[no-any-return]


class Answer(list[bytes]):
    """The response body: one chunk, and the ``close`` servers call."""

    def close(self) -> None:
        pass


class DirectParams:
    """WSGI middleware: the common ``POST /params`` without Flask (see the module)."""

    def __init__(self, app: Flask, wsgi_app: Callable[[Environ, StartResponse], Iterable[bytes]]):
        self.app = app
        self.wsgi_app = wsgi_app
        #: The hooks last found to pass (a registry that changes is checked again).
        self._passing: tuple[Any, ...] | None = None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != "/params"
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING")
            or environ.get("CONTENT_TYPE") != "application/json"
            or "HTTP_TRANSFER_ENCODING" in environ
            or not wants_json(environ.get("HTTP_ACCEPT"))
        ):
            return self.wsgi_app(environ, start_response)
        length = environ.get("CONTENT_LENGTH") or ""
        size = int(length) if length.isdigit() and length.isascii() else 0
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        if not size or (limit is not None and size > limit) or not self.passes():
            return self.wsgi_app(environ, start_response)
        data = read(environ["wsgi.input"], size)
        try:
            if len(data) < size:
                raise EOFError  # the client left: Flask answers it
            cache = self.app.extensions["params_cache"]
            answer = views.params_answer(data, parse_json(data), cache)
        except Exception:  # noqa: BLE001 (any other answer is Flask's, as before)
            environ["wsgi.input"] = io.BytesIO(data)
            return self.wsgi_app(environ, start_response)
        start_response(
            "200 OK",
            [
                ("Content-Type", views.JSON),
                ("Content-Length", str(len(answer))),
                ("Vary", "Accept"),
            ],
        )
        return Answer((answer,))

    def passes(self) -> bool:
        """Whether Flask would hand this app's direct requests to the view
        untouched: the route, the hooks and signals, the host settings."""
        app = self.app
        registries = (
            app.before_request_funcs,
            app.after_request_funcs,
            app.teardown_request_funcs,
            app.url_value_preprocessors,
        )
        current = tuple([(*r.get(None, ()), *r.get("params", ())) for r in registries])
        if current != self._passing:
            self._passing = current if self._check(current) else None
            if self._passing is None:
                return False
        keys = app.extensions["api_keys"]
        return (
            (keys is None or "params" in app.extensions["open_blueprints"])
            and app.config["SERVER_NAME"] is None
            and app.config.get("TRUSTED_HOSTS") is None
            and not any([signal.receivers for signal in SIGNALS])
        )

    def _check(self, current: tuple[Any, ...]) -> bool:
        kinds = ("before_request", "after_request", "teardown_request", "url_value_preprocessor")
        for kind, funcs in zip(kinds, current, strict=True):
            for func in funcs:
                if (kind, f"{func.__module__}.{func.__qualname__}") not in PASSING_HOOKS:
                    return False
        app = self.app
        if app.url_map.host_matching or app.subdomain_matching:
            return False
        if app.view_functions.get(ENDPOINT) is not views.count_params:
            return False
        try:
            matched = app.url_map.bind("localhost").match("/params", "POST")
        except HTTPException:  # no such route (404, 405), or a redirect
            return False
        return matched == (ENDPOINT, {})  # type: ignore[no-any-return]


def read(stream: Any, length: int) -> bytes:
    """``length`` bytes of the request body, or what came before it ended
    or failed (Flask then answers the short body as it would have)."""
    chunks = []
    try:
        while length > 0:
            chunk = stream.read(length)
            if not chunk:
                break
            chunks.append(chunk)
            length -= len(chunk)
    except (OSError, ValueError):
        pass
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def init_app(app: Flask) -> None:
    """Answer the common ``POST /params`` below Flask."""
    app.wsgi_app = DirectParams(app, app.wsgi_app)  # type: ignore[method-assign]
