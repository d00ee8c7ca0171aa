"""GET /docs: Swagger UI on openapi.yaml, and GET /openapi.yaml itself,
served by the API (service/docs.py).

The browser tests run a real headless Chromium (Debian's ``chromium``,
which ``.ci/run`` installs) against a real gunicorn, with every host but
127.0.0.1 unresolvable: the page must render, and "Try it out" must work,
offline.
"""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import Browser
from browser import chromium
from conftest import serve_api
from openapi_check import HTTP_METHODS
from openapi_check import validate_response
from tenants import Tenants

ROOT = Path(__file__).resolve().parent.parent

needs_chromium = pytest.mark.skipif(
    chromium() is None,
    reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)",
)

# Resolves once Swagger UI has drawn every operation, with what it shows.
OPERATIONS_JS = r"""
new Promise((resolve, reject) => {
  const started = Date.now();
  (function look() {
    const blocks = document.querySelectorAll(".opblock");
    if (blocks.length >= %d) {
      resolve([...blocks].map(b => ({
        id: b.id,
        method: b.querySelector(".opblock-summary-method").textContent.toLowerCase(),
        path: b.querySelector(".opblock-summary-path").dataset.path,
        operationId: (b.querySelector(".opblock-summary-operation-id") || {}).textContent,
      })));
    } else if (Date.now() - started > 20000) {
      reject(new Error("Swagger UI drew " + blocks.length + " operations"));
    } else {
      setTimeout(look, 50);
    }
  })();
})
"""

# Clicks through "Try it out" and "Execute" on POST /params (whose request
# body starts as the spec's example) and resolves with the answer shown.
TRY_IT_OUT_JS = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const until = async (find, what) => {
    const end = Date.now() + 20000;
    while (Date.now() < end) { const found = find(); if (found) return found; await sleep(50); }
    throw new Error("no " + what + " on the page");
  };
  const op = await until(() => document.getElementById("operations-default-count_params"),
                         "POST /params");
  op.querySelector(".opblock-summary-control").click();
  (await until(() => op.querySelector(".try-out__btn"), "Try it out button")).click();
  (await until(() => op.querySelector(".execute"), "Execute button")).click();
  const row = await until(() => op.querySelector(".live-responses-table tr.response"), "answer");
  const body = await until(() => row.querySelector(".response-col_description pre code"), "body");
  return {status: row.querySelector(".response-col_status").textContent.trim(),
          body: body.textContent};
})()
"""


def spec_operations(spec):
    return {
        (path, method): item[method]["operationId"]
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The URL of the API under a real gunicorn on a free port (no Redis:
    /docs, /openapi.yaml and /params need none)."""
    with serve_api(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as url:
        yield url


@pytest.fixture
def browser(tmp_path):
    with Browser(tmp_path / "profile") as b:
        yield b


@needs_chromium
def test_docs_page_shows_every_operation_of_the_spec(server, browser, spec):
    expected = spec_operations(spec)
    browser.open(f"{server}/docs")
    shown = browser.evaluate(OPERATIONS_JS % len(expected))
    assert {(op["path"], op["method"]): op["operationId"] for op in shown} == expected
    assert {op["id"] for op in shown} == {f"operations-default-{i}" for i in expected.values()}


@needs_chromium
def test_try_it_out_counts_params_on_the_serving_instance(server, browser):
    browser.open(f"{server}/docs")
    answer = browser.evaluate(TRY_IT_OUT_JS)
    assert answer["status"] == "200"
    # The spec's example: the seed's many_to_many model, 146 parameters.
    assert json.loads(answer["body"])["total_params"] == 146
    assert any(url.startswith(f"{server}/params") for url in browser.requests)


@needs_chromium
def test_docs_page_loads_nothing_from_another_host(server, browser, spec):
    browser.open(f"{server}/docs")
    browser.evaluate(OPERATIONS_JS % len(spec_operations(spec)))
    assert f"{server}/docs/swagger-ui-bundle.js" in browser.requests
    assert f"{server}/openapi.yaml" in browser.requests
    others = [
        url
        for url in browser.requests
        if not (url.startswith(f"{server}/") or url.startswith("data:"))
    ]
    assert others == []
    # Nothing was refused by the page's Content-Security-Policy, nor failed.
    assert [line for line in browser.log if line.startswith("error")] == []


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_docs_page_is_open_and_names_only_its_own_files(redis_url, spec):
    # Open with API keys on, as /openapi.yaml is.
    client = Tenants().app(redis_url, "idle").test_client()
    rv = client.get("/docs")
    assert rv.status_code == 200
    validate_response(spec, "/docs", "get", rv)
    policy = dict(
        (directive.split()[0], directive.split()[1:])
        for directive in rv.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == ["'self'"]
    # No directive names a host: only 'self', 'none' and data: (icons).
    assert {s for sources in policy.values() for s in sources} <= {"'self'", "'none'", "data:"}
    links = _Links()
    links.feed(rv.get_data(as_text=True))
    assert len(links.urls) == 7  # 2 styles, 2 icons, 2 scripts, openapi.yaml
    for url in links.urls:
        assert re.fullmatch(r"/[\w./-]*", url), url  # a path on this server
        with client.get(url) as asset:  # closes the file it sends
            assert asset.status_code == 200, url
            if url.startswith("/docs/"):
                validate_response(spec, "/docs/{asset}", "get", asset)
                assert asset.headers["Cache-Control"] == "public, max-age=86400"


def test_docs_serves_no_other_file(client, spec):
    for name in ("nope.js", "..%2Fservice%2Fdocs.py", "LICENSE", "oauth2-redirect.html"):
        rv = client.get(f"/docs/{name}")
        assert rv.status_code == 404, name
        validate_response(spec, "/docs/{asset}", "get", rv)


def test_openapi_document(client):
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.get_data() == (ROOT / "openapi.yaml").read_bytes()
