"""The common POST /params answered below Flask (service/params/direct.py):
the same status, headers and bytes as Flask's own path for every request,
the direct path taken where nothing in the app would touch the request,
and Flask's path for everything else."""

import io
import json

import pytest
from corpus import generate
from flask import signals
from graph_corpus import generate as generate_graphs
from werkzeug.test import EnvironBuilder

from service import create_app
from service.params.direct import DirectParams

DENSE = {"input_shape": [3], "layers": [{"type": "Dense", "units": 2}]}


class Spy:
    """Flask's own WSGI callable, counting the requests it gets."""

    def __init__(self, app):
        self.direct: DirectParams = app.wsgi_app
        self.flask = self.direct.wsgi_app
        self.calls = 0
        self.direct.wsgi_app = self

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.flask(environ, start_response)


def call(wsgi, body=None, raw=None, **kwargs):
    """(status, headers, body) of one request through a WSGI callable."""
    kwargs.setdefault("path", "/params")
    kwargs.setdefault("method", "POST")
    kwargs.setdefault("content_type", "application/json")
    data = raw if raw is not None else json.dumps(body).encode()
    environ = EnvironBuilder(data=data, **kwargs).get_environ()
    environ["wsgi.input"] = io.BytesIO(data)
    started = []
    out = wsgi(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    try:
        answer = b"".join(out)
    finally:
        out.close()
    status, headers = started[-1]
    # Werkzeug lists a 405's Allow in no fixed order.
    headers = [(k, ", ".join(sorted(v.split(", "))) if k == "Allow" else v) for k, v in headers]
    return status, headers, answer


@pytest.fixture(params=[0, 1024], ids=["uncached", "cached"])
def spy(request):
    return Spy(create_app({"TESTING": True, "PARAMS_CACHE_SIZE": request.param}))


BODIES = [
    *generate(150, seed=0),
    *generate_graphs(80, seed=0),
    DENSE,
    {"inputs": [{"shape": [4]}], "layers": [{"type": "Dense", "units": 1}], "outputs": "nope"},
    [],
    "not a model",
    {"input_shape": [3], "layers": [{"type": "Dense", "units": 2, "name": "a b"}]},
]
RAW = [b"", b"  ", b"{", b"NaN", b'{"a": Infinity}', b"\xff\xfe{", b"[" * 100 + b"]" * 100]


def test_every_answer_is_flasks_own(spy):
    """Valid models and refusals (422, 400): the direct path's bytes, or
    Flask's for what it leaves to Flask, are what Flask alone answers."""
    for body in BODIES:
        assert call(spy.direct, body) == call(spy.flask, body), body
    for raw in RAW:
        assert call(spy.direct, raw=raw) == call(spy.flask, raw=raw), raw


def test_the_common_request_skips_flask(spy):
    before = spy.calls
    for body in generate(60, seed=1):
        status, _, _ = call(spy.direct, body)
        if status.startswith("200"):
            assert spy.calls == before, body
        else:
            before = spy.calls  # a refusal is Flask's
    assert call(spy.direct, DENSE)[0] == "200 OK"
    assert spy.calls == before


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"query_string": "line_length=100"},
        {"query_string": "unknown=1"},
        {"content_type": "application/json; charset=utf-8"},
        {"content_type": "application/vnd.seqlab+json"},
        {"content_type": "text/plain"},
        {"headers": {"Transfer-Encoding": "chunked"}},
        {"path": "/params/"},
        {"method": "PUT"},
        {"path": "/layers", "method": "GET"},
        {"headers": {"Accept": "image/svg+xml"}},
        {"headers": {"Accept": "image/*, application/json;q=0.5"}},
    ],
)
def test_other_requests_are_flasks(spy, request_kwargs):
    answer = call(spy.direct, DENSE, **request_kwargs)
    assert spy.calls == 1
    assert answer == call(spy.flask, DENSE, **request_kwargs)


@pytest.mark.parametrize(
    "accept", ["*/*", "application/json", "application/json, image/svg+xml", "text/html,*/*;q=0.8"]
)
def test_an_accept_of_the_document_is_direct(spy, accept):
    answer = call(spy.direct, DENSE, headers={"Accept": accept})
    assert spy.calls == 0
    assert answer == call(spy.flask, DENSE, headers={"Accept": accept})
    assert ("Vary", "Accept") in answer[1]


def test_a_body_over_the_limit_or_short_is_flasks(spy):
    spy.direct.app.config["MAX_CONTENT_LENGTH"] = 20
    status, _, _ = call(spy.direct, DENSE)
    assert (status, spy.calls) == ("413 REQUEST ENTITY TOO LARGE", 1)
    spy.direct.app.config["MAX_CONTENT_LENGTH"] = 1_048_576
    environ = EnvironBuilder(
        path="/params", method="POST", content_type="application/json", data=b"{}"
    ).get_environ()
    environ["CONTENT_LENGTH"] = "100"  # the client sends 2 bytes and leaves
    started = []
    b"".join(spy.direct(environ, lambda status, headers: started.append(status)))
    assert started == ["400 BAD REQUEST"]


def test_a_hook_it_does_not_know_turns_it_off(spy):
    app = spy.direct.app
    seen = []
    app.before_request_funcs[None].append(lambda: seen.append(1))
    assert call(spy.direct, DENSE)[0] == "200 OK"
    assert (seen, spy.calls) == ([1], 1)
    app.before_request_funcs[None].pop()
    call(spy.direct, DENSE)
    assert spy.calls == 1
    app.after_request_funcs["params"].append(lambda response: response)
    call(spy.direct, DENSE)
    assert spy.calls == 2


def test_a_signal_receiver_turns_it_off(spy):
    seen = []

    def started(sender, **extra):
        seen.append(sender)

    with signals.request_started.connected_to(started):
        call(spy.direct, DENSE)
    assert (seen, spy.calls) == ([spy.direct.app], 1)
    call(spy.direct, DENSE)
    assert spy.calls == 1


def test_it_serves_an_app_with_api_keys(tenants):
    """/params is open to every caller with keys set too: no key needed."""
    spy = Spy(create_app({"TESTING": True, "API_KEYS": tenants.config}))
    status, _, _ = call(spy.direct, DENSE)
    assert (status, spy.calls) == ("200 OK", 0)


@pytest.mark.parametrize(("key", "value"), [("SERVER_NAME", "api.example"), ("TRUSTED_HOSTS", [])])
def test_host_settings_are_flasks(spy, key, value):
    spy.direct.app.config[key] = value
    answer = call(spy.direct, DENSE)
    assert spy.calls == 1
    assert answer == call(spy.flask, DENSE)


def test_another_view_on_the_route_is_flasks(spy):
    app = spy.direct.app
    app.view_functions["params.count_params"] = lambda: {"other": True}
    status, _, body = call(spy.direct, DENSE)
    assert (status, body, spy.calls) == ("200 OK", b'{"other":true}\n', 1)
