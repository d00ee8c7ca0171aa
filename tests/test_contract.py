"""Schemathesis against openapi.yaml and the app: no 5xx, and every
response (status, content type, headers, body) is what the document says.

The app runs on a real Redis; its queue is one that no worker serves, so
the jobs the generated requests queue stay queued. It runs open (no API
keys) and with keys, the generated requests then carrying a valid key.
"""

import uuid
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import response_headers_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance
from tenants import Tenants

#: Examples per operation: enough to reach every documented answer of the
#: small routes, bounded so that the whole run takes well under a minute.
MAX_EXAMPLES = 30

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# Loaded from the file, not through a fixture: schemathesis's lazy fixture
# loader does not work with pytest 9; the app is handed to each call instead.
schema = schemathesis.openapi.from_path(Path(__file__).resolve().parent.parent / "openapi.yaml")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_openapi(case, idle_app):
    case.call_and_validate(app=idle_app, checks=CHECKS)


TENANTS = Tenants("alice")


@pytest.fixture
def keyed_app(redis_url):
    return TENANTS.app(redis_url, f"idle-{uuid.uuid4().hex[:8]}")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES // 2,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_openapi_with_api_keys(case, keyed_app):
    case.call_and_validate(app=keyed_app, checks=CHECKS, headers=TENANTS.bearer("alice"))
