"""Schemathesis against openapi.yaml and the app: no 5xx, and every
response (status, content type, headers, body) is what the document says.

The app runs on a real Redis; its queue is one that no worker serves
(``idle_app``), so the jobs the generated requests queue stay queued.
"""

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import response_headers_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance

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
