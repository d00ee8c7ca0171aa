import logging

import marshmallow as ma
import pytest
from flask import Blueprint
from werkzeug.exceptions import ServiceUnavailable

from modelspec.errors import MAX_LISTED_ERRORS
from modelspec.errors import ApiValidationError
from modelspec.errors import flatten_errors
from service import create_app
from service.requests import get_json_body
from service.requests import get_json_object

PROBLEM_KEYS = {"type", "title", "status", "detail"}
TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# Test-only views that exercise the error paths before the real POST views exist.
testing = Blueprint("testing", __name__)


class LayerSchema(ma.Schema):
    units = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1))

    @ma.validates_schema
    def check_units(self, data, **kwargs):
        if data.get("units") == 13:
            raise ma.ValidationError("Unlucky layer.")


class ModelSchema(ma.Schema):
    layers = ma.fields.List(ma.fields.Nested(LayerSchema), required=True)


@testing.post("/echo")
def echo():
    return {"body": get_json_body()}


@testing.post("/echo-object")
def echo_object():
    return get_json_object()


@testing.post("/model")
def load_model():
    return ModelSchema().load(get_json_object())


@testing.post("/invalid")
def invalid():
    raise ApiValidationError("layers.1: Too deep.", {"layers.1": ["Too deep."]})


@testing.post("/invalid-body")
def invalid_body():
    raise ApiValidationError("The model has no layers.")


@testing.get("/unavailable")
def unavailable():
    raise ServiceUnavailable(retry_after=30)


@testing.get("/boom")
def boom():
    raise RuntimeError("a secret the client must not see")


@pytest.fixture
def app(app):
    app.register_blueprint(testing)
    return app


def assert_problem(response, status):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert PROBLEM_KEYS <= body.keys()
    assert body["status"] == response.status_code
    assert body["type"] == "about:blank"
    assert body["title"] == TITLES[status]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("get", "/no-such-route", {}, 404),
        ("post", "/no-such-route", {"json": {}}, 404),
        ("post", "/healthz", {}, 405),
        ("post", "/echo", {"data": "{}", "content_type": "text/plain"}, 415),
        ("post", "/echo", {"data": "{}"}, 415),
        ("post", "/echo", {"data": "{", "content_type": "application/json"}, 400),
        ("post", "/echo", {"data": "", "content_type": "application/json"}, 400),
        (
            "post",
            "/echo",
            {"data": b" " * (1_048_576 + 1), "content_type": "application/json"},
            413,
        ),
        ("post", "/echo-object", {"json": [1, 2]}, 422),
        ("get", "/unavailable", {}, 503),
    ],
)
def test_error_shape(client, method, url, kwargs, status):
    assert_problem(client.open(url, method=method, **kwargs), status)


def test_405_keeps_allow_header(client):
    response = client.post("/healthz")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_other_headers_kept(client):
    response = client.get("/unavailable")
    assert response.headers["Retry-After"] == "30"
    assert response.headers.getlist("Content-Type") == ["application/problem+json"]


def test_413_with_smaller_limit():
    app = create_app({"TESTING": True, "MAX_CONTENT_LENGTH": 8})
    app.register_blueprint(testing)
    response = app.test_client().post("/echo", json=[1, 2, 3, 4, 5])
    assert_problem(response, 413)


def test_415_names_the_content_type(client):
    response = client.post("/echo", data="a=1", content_type="text/plain")
    assert "text/plain" in response.get_json()["detail"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.seqlab+json",
    ],
)
def test_json_content_types_accepted(client, content_type):
    response = client.post("/echo", data='{"a": 1}', content_type=content_type)
    assert response.status_code == 200
    assert response.get_json() == {"body": {"a": 1}}


@pytest.mark.parametrize(
    ("data", "value"), [('[1, "x"]', [1, "x"]), ('"x"', "x"), ("3", 3), ("null", None)]
)
def test_get_json_body_returns_any_value(client, data, value):
    response = client.post("/echo", data=data, content_type="application/json")
    assert response.get_json() == {"body": value}


def test_malformed_json_detail_has_position(client):
    response = client.post("/echo", data='{"a": }', content_type="application/json")
    body = assert_problem(response, 400)
    assert body["detail"] == (
        "The request body is not valid JSON: Expecting value (line 1, column 7)."
    )


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000,
        b'{"units": NaN}',
        b"[Infinity]",
        b"1" * 5000,
        b"\xff\xfe\xff",
        b"\x80",
        b"   ",
    ],
)
def test_hostile_json_is_400(client, data):
    response = client.post("/echo", data=data, content_type="application/json")
    assert_problem(response, 400)


@pytest.mark.parametrize("data", ["[]", '"x"', "1", "null"])
def test_body_must_be_object(client, data):
    response = client.post("/echo-object", data=data, content_type="application/json")
    body = assert_problem(response, 422)
    assert body["errors"] == {"body": ["Must be a JSON object."]}


def test_marshmallow_errors_are_422(client):
    payload = {"layers": [{"units": 4}, {"units": 13}, {"units": 0}], "extra": 1}
    response = client.post("/model", json=payload)
    body = assert_problem(response, 422)
    assert body["errors"] == {
        "layers.1": ["Unlucky layer."],
        "layers.2.units": ["Must be greater than or equal to 1."],
        "extra": ["Unknown field."],
    }
    # The detail names the first error in schema order.
    assert body["detail"] == "layers.1: Unlucky layer. (and 2 more errors)"


def test_marshmallow_single_error_detail(client):
    response = client.post("/model", json={"layers": [{"units": 0}]})
    body = assert_problem(response, 422)
    assert body["detail"] == "layers.0.units: Must be greater than or equal to 1."


def test_api_validation_error(client):
    body = assert_problem(client.post("/invalid"), 422)
    assert body["detail"] == "layers.1: Too deep."
    assert body["errors"] == {"layers.1": ["Too deep."]}


def test_api_validation_error_without_errors(client):
    body = assert_problem(client.post("/invalid-body"), 422)
    assert body["errors"] == {"body": ["The model has no layers."]}


def test_unhandled_exception_is_logged_500(caplog):
    # Outside tests Flask does not propagate exceptions; emulate production.
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False})
    app.register_blueprint(testing)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/boom")
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert "errors" not in body
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


def test_unhandled_exception_propagates_in_tests(client):
    # Bugs must fail tests loudly, not hide behind a tidy 500.
    with pytest.raises(RuntimeError):
        client.get("/boom")


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ({"units": ["Missing."]}, {"units": ["Missing."]}),
        (
            {"layers": {2: {"units": ["Must be greater than or equal to 1."]}}},
            {"layers.2.units": ["Must be greater than or equal to 1."]},
        ),
        ({"layers": {0: {"_schema": ["x"]}}}, {"layers.0": ["x"]}),
        ({"_schema": ["Invalid input type."]}, {"body": ["Invalid input type."]}),
        (["Whole body."], {"body": ["Whole body."]}),
        (
            {"a": {"b": {3: {"c": ["one", "two"]}, "_schema": ["b itself"]}}},
            {"a.b.3.c": ["one", "two"], "a.b": ["b itself"]},
        ),
        (
            # fields.Dict reports bad keys and values under "key" and "value".
            {"shape": {"x": {"key": ["Bad key."], "value": ["Bad value."]}}},
            {"shape.x.key": ["Bad key."], "shape.x.value": ["Bad value."]},
        ),
        ({"a": "just a string"}, {"a": ["just a string"]}),
        ({"a": [{"b": ["nested in a list"]}]}, {"a.b": ["nested in a list"]}),
        ({0: {"name": ["many=True"]}}, {"0.name": ["many=True"]}),
        ({"a": []}, {}),
        ({}, {}),
    ],
)
def test_flatten_errors(messages, expected):
    assert flatten_errors(messages) == expected


def test_flatten_real_marshmallow_errors():
    with pytest.raises(ma.ValidationError) as info:
        ModelSchema().load({"layers": [{"units": 1}, {}, "x"]})
    assert flatten_errors(info.value.normalized_messages()) == {
        "layers.1.units": ["Missing data for required field."],
        "layers.2": ["Invalid input type."],
    }


def test_detail_counts_one_more_error(client):
    response = client.post("/model", json={"layers": [{"units": 0}], "extra": 1})
    body = assert_problem(response, 422)
    assert body["detail"] == (
        "layers.0.units: Must be greater than or equal to 1. (and 1 more error)"
    )


def test_a_refusal_lists_at_most_twenty_fields_and_counts_them_all(client):
    # The finding: a body of 60,000 unknown members was answered with every
    # one of them (a 49.6 MB 422 through POST /train); 40,000 fit in the 1 MiB
    # body of POST /params.
    body = {"input_shape": [5, 1], "layers": [{"type": "Dense", "units": 1}]}
    body.update({f"m{i}": 1 for i in range(40_000)})
    response = client.post("/params", json=body)
    problem = assert_problem(response, 422)
    listed = list(problem["errors"])
    assert len(listed) == MAX_LISTED_ERRORS and set(listed) <= {f"m{i}" for i in range(40_000)}
    assert all(reasons == ["Unknown field."] for reasons in problem["errors"].values())
    # The detail names the first listed (marshmallow's order of unknown
    # members is its own) and counts them all.
    assert problem["detail"] == f"{listed[0]}: Unknown field. (and 39,999 more errors)"
    assert len(response.data) < 5_000
