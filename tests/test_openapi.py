import jsonschema
import marshmallow as ma
import pytest
from openapi_check import app_operations
from openapi_check import spec_operations
from openapi_check import validate_against
from openapi_check import validate_response
from openapi_spec_validator import validate


def test_spec_is_valid(spec):
    validate(spec)


def test_spec_and_routes_agree(app, spec):
    assert spec_operations(spec) == app_operations(app)


def test_app_operations_maps_converters(app):
    @app.get("/jobs/<int:job_id>/logs/<name>")
    def job_logs(job_id, name):
        return {}

    assert ("/jobs/{job_id}/logs/{name}", "get") in app_operations(app)


def test_healthz_matches_spec(client, spec):
    validate_response(spec, "/healthz", "get", client.get("/healthz"))


def test_openapi_matches_spec(client, spec):
    validate_response(spec, "/openapi.yaml", "get", client.get("/openapi.yaml"))


def test_404_matches_spec(client, spec):
    response = client.get("/no-such-route")
    validate_against(spec, "/components/responses/NotFound", response)
    # The operations' "default" response covers errors too.
    validate_response(spec, "/healthz", "get", response)


def test_405_matches_spec(client, spec):
    response = client.post("/healthz")
    validate_against(spec, "/components/responses/MethodNotAllowed", response)


def test_validate_response_rejects_wrong_body(client, spec):
    response = client.get("/healthz")
    response.set_data(b'{"status": "degraded"}')
    with pytest.raises(jsonschema.ValidationError):
        validate_response(spec, "/healthz", "get", response)


def test_validate_response_rejects_undocumented_media_type(client, spec):
    response = client.get("/healthz")
    response.mimetype = "text/plain"
    with pytest.raises(AssertionError, match="text/plain is not documented"):
        validate_response(spec, "/healthz", "get", response)


def test_validate_response_requires_documented_headers(client, spec):
    response = client.post("/healthz")
    del response.headers["Allow"]
    with pytest.raises(AssertionError, match="Allow"):
        validate_against(spec, "/components/responses/MethodNotAllowed", response)


def test_validation_problem_matches_spec(app, spec):
    # The 422 schema that POST views will reference, against a real 422.
    @app.post("/invalid")
    def invalid():
        raise ma.ValidationError({"layers": {0: {"units": ["Too small."]}}})

    response = app.test_client().post("/invalid")
    assert response.status_code == 422
    validate_against(spec, "/components/responses/UnprocessableContent", response)
    response.set_data(response.get_data().replace(b'"errors"', b'"other"'))
    with pytest.raises(jsonschema.ValidationError):
        validate_against(spec, "/components/responses/UnprocessableContent", response)
