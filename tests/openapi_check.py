"""Helpers that hold the app to openapi.yaml; reusable by any test module.

Import them as ``from openapi_check import validate_response``: pytest puts
``tests/`` on ``sys.path`` because it has no ``__init__.py``.
"""

import json
import re

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# Flask adds HEAD and OPTIONS to every rule by itself; the spec lists neither.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}

# The base URI under which the spec is registered, so that "#/components/..."
# references inside it resolve, recursive schemas included.
SPEC_URI = "urn:seqlab:openapi"


def spec_operations(spec):
    """The set of (path, method) pairs that the spec documents."""
    return {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def app_operations(app):
    """The set of (path, method) pairs that the app routes, in spec syntax."""
    rv = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        # "<int:id>" and "<id>" both become "{id}".
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - IMPLICIT_METHODS:
            rv.add((path, method.lower()))
    return rv


def validate_response(spec, path, method, response):
    """Assert that a test-client response matches what the spec documents.

    ``path`` is the spec's path template (``"/jobs/{id}"``), not the URL.
    The response is looked up by exact status, then ``4XX``-style range,
    then ``default``; its media type must be documented, required headers
    present, and the body valid against the schema.
    """
    operation = spec["paths"][path][method.lower()]
    status = str(response.status_code)
    pointer = f"/paths/{_escape(path)}/{method.lower()}/responses"
    for key in (status, f"{status[0]}XX", "default"):
        if key in operation["responses"]:
            pointer += f"/{key}"
            break
    else:
        raise AssertionError(f"{method.upper()} {path}: {status} is not documented")
    validate_against(spec, pointer, response)


def validate_against(spec, pointer, response):
    """Assert that a response matches the response object at a JSON pointer.

    Use it directly for responses that no operation lists, such as a 404 for
    an unknown path: ``validate_against(spec, "/components/responses/NotFound",
    response)``.
    """
    pointer, documented = _follow_refs(spec, pointer)
    for name, header in documented.get("headers", {}).items():
        if header.get("required"):
            assert name in response.headers, f"missing required header {name}"
    content = documented.get("content", {})
    if not content:  # documented without a body (204)
        assert response.get_data() == b"", f"{pointer} documents no body"
        return
    media_type = response.mimetype
    assert media_type in content, f"{media_type} is not documented at {pointer}: {sorted(content)}"
    if "schema" not in content[media_type]:
        return
    if media_type == "application/json" or media_type.endswith("+json"):
        body = json.loads(response.get_data())
    elif media_type == "application/yaml":
        body = yaml.safe_load(response.get_data())
    else:
        body = response.get_data(as_text=True)
    schema_pointer = f"{pointer}/content/{_escape(media_type)}/schema"
    validator = Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{schema_pointer}"}, registry=_registry(spec)
    )
    validator.validate(body)


def _registry(spec):
    return Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))


def _follow_refs(spec, pointer):
    """Resolve a pointer and any chain of response ``$ref``s it leads to."""
    node = _lookup(spec, pointer)
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are supported: {ref}"
        pointer = ref[1:]
        node = _lookup(spec, pointer)
    return pointer, node


def _lookup(spec, pointer):
    node = spec
    for part in pointer.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _escape(segment):
    """Escape one JSON-pointer segment (RFC 6901)."""
    return segment.replace("~", "~0").replace("/", "~1")
