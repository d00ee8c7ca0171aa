"""Query parameters: each route takes those openapi.yaml declares, no other.

A body with an unknown field is a 422 (the schemas refuse it); so is a
query with an unknown parameter, for every route at once: a misspelt or
unsupported parameter (``GET /jobs?limit=2``) would otherwise be ignored
silently and the client would believe it had been applied. The known
parameters are read from the contract when the app starts, so that the
code and the document cannot drift apart.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from flask import request

from modelspec.errors import ApiValidationError

from .docs import OPENAPI_PATH

#: The operations of an OpenAPI path item.
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
#: A Flask rule's variable (``<job_id>``, ``<int:n>``), an OpenAPI ``{job_id}``.
_RULE_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")

UNKNOWN = "Unknown query parameter."


def openapi_path(rule: str) -> str:
    """The OpenAPI path of a Flask rule: ``/jobs/<job_id>`` → ``/jobs/{job_id}``."""
    return _RULE_VARIABLE.sub(r"{\1}", rule)


@cache
def contract_queries(path: Path = OPENAPI_PATH) -> dict[tuple[str, str], frozenset[str]]:
    """The query parameters of every operation of the contract, by
    (OpenAPI path, lower-case method), the path item's own included."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))

    def resolve(parameter: dict[str, Any]) -> dict[str, Any]:
        ref = parameter.get("$ref")
        if ref is None:
            return parameter
        node: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return resolve(node)

    known: dict[tuple[str, str], frozenset[str]] = {}
    for name, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in HTTP_METHODS:
            if method in item:
                declared = [resolve(p) for p in (*shared, *item[method].get("parameters", []))]
                known[name, method] = frozenset(p["name"] for p in declared if p["in"] == "query")
    return known


def known_queries(rule: str, method: str) -> frozenset[str]:
    """The query parameters a route takes: those the contract declares for
    it (HEAD takes GET's); none for an operation it does not describe."""
    method = "get" if method.lower() == "head" else method.lower()
    return contract_queries().get((openapi_path(rule), method), frozenset())


def refuse_unknown_queries() -> None:
    """Before every request: a 422 naming each query parameter the route
    does not take.

    OPTIONS (Flask's own answer, which reads nothing) and requests that
    match no route (a 404 or 405 follows) are left alone.
    """
    if not request.args:  # most requests, checked first: nothing to refuse
        return
    rule = request.url_rule
    if rule is None or request.method == "OPTIONS":
        return
    known = known_queries(rule.rule, request.method)
    unknown = sorted(set(request.args) - known)
    if not unknown:
        return
    takes = ", ".join(sorted(known)) if known else "no query parameters"
    names = ", ".join(unknown)
    raise ApiValidationError(
        f"Unknown query parameter{'s' if len(unknown) > 1 else ''} {names}:"
        f" {request.method} {openapi_path(rule.rule)} takes {takes}.",
        {name: [UNKNOWN] for name in unknown},
    )


def init_app(app: Flask) -> None:
    """Refuse unknown query parameters on every route; read the contract now,
    so that a broken openapi.yaml stops the app from starting."""
    contract_queries()
    app.before_request(refuse_unknown_queries)
