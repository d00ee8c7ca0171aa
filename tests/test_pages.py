"""The pages for people (service/pages/): ``GET /`` the calculator,
``GET /ui/jobs`` the jobs list, ``GET /ui/jobs/<id>`` a job live.

The browser tests drive a real headless Chromium (tests/browser.py) against
a real gunicorn on the test Redis, with the session's real Celery worker
training what the pages queue; every host but 127.0.0.1 is unresolvable, so
a page that needed the internet would break here. Expected counts come
from the engine (``params_document``), never written out.

``tests/data/*.to_json.json`` are what Keras 3.15 wrote for
``model.to_json()`` (JAX backend): ``gru_classifier``, a Sequential
``GRU(16, return_sequences) → Dropout → GRU(8) → Dense(2, softmax)`` on
(12, 3), and ``seq2seq``, the Functional encoder-decoder with attention of
the README; Keras counted 1,650 and 834 parameters.

Set ``SEQLAB_SCREENSHOTS=<folder>`` to keep the screenshots that
``test_pages_fit_375_and_1440_pixels`` takes of each page at both widths.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest
from browser import Browser
from browser import chromium
from conftest import serve_api
from openapi_check import validate_response
from tenants import Tenants

from modelspec.params import params_document
from seqlab.examples import EXAMPLES
from service import web
from service.pages import views

SVG_G = "{http://www.w3.org/2000/svg}g"

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
TENANTS = Tenants("alice", "bob")
SEED = EXAMPLES["many_to_many"]["model"]

needs_chromium = pytest.mark.skipif(
    chromium() is None,
    reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)",
)

READY = "document.body.dataset.ready === 'true'"


# --- servers and a browser ------------------------------------------------------


@pytest.fixture(scope="module")
def server(redis_url, queue, tmp_path_factory):
    """The API under gunicorn without API keys; the tests that train take
    the session's worker too, which serves its queue."""
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with serve_api(log, REDIS_URL=redis_url, SEQLAB_QUEUE=queue) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_server(redis_url, queue, tmp_path_factory):
    """The same with API keys (alice's and bob's), and event streams that
    last a second: a client must reconnect, with Last-Event-ID, to go on."""
    log = tmp_path_factory.mktemp("gunicorn-keys") / "gunicorn.log"
    with serve_api(log, REDIS_URL=redis_url, SEQLAB_QUEUE=queue,
                   SEQLAB_API_KEYS=TENANTS.config, SEQLAB_STREAM_SECONDS="1") as url:  # fmt: skip
        yield url


@pytest.fixture
def browser(tmp_path):
    with Browser(tmp_path / "profile") as b:
        b.set_viewport(1440, 900)
        yield b


def call(base, method, path, body=None, tenant=None):
    """(status, JSON body) of an API request, with a tenant's key if given."""
    headers = {"Content-Type": "application/json"}
    if tenant is not None:
        headers.update(TENANTS.bearer(tenant))
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for_status(base, job_id, statuses, tenant=None, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        status, job = call(base, "GET", f"/jobs/{job_id}", tenant=tenant)
        assert status == 200, job
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"job {job_id} is still {job['status']}"
        time.sleep(0.2)


def assert_stayed_home(browser, base):
    """Every request went to the server under test, nothing was refused by
    the Content-Security-Policy, and no script threw or logged an error."""
    others = [
        url
        for url in browser.requests
        if not url.startswith((f"{base}/", "data:", "blob:", "about:"))
    ]
    assert others == []
    refused = [line for line in browser.log if "Content Security Policy" in line]
    assert refused == []
    assert [line for line in browser.console if line.startswith(("error", "exception"))] == []


#: The form controls of the page, hidden ones included (a closed "Other
#: arguments" holds most of them), that have no label, aria-label or
#: aria-labelledby with text (nor, for a button, text of its own).
UNLABELLED_JS = """
[...document.querySelectorAll('input, select, textarea, button')].filter(el => {
  const text = (node) => Boolean(node && node.textContent.trim());
  const labelled = [...(el.labels || [])].some(text)
    || (el.getAttribute('aria-label') || '').trim()
    || (el.getAttribute('aria-labelledby') || '').split(' ')
         .some(id => text(document.getElementById(id)))
    || (el.tagName === 'BUTTON' && text(el));
  return !labelled;
}).map(el => el.outerHTML.slice(0, 100))
"""


def engine_total(model):
    return params_document(model)["total_params"]


def text_of(browser, selector):
    return browser.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")


def open_calculator(browser, base, fragment=""):
    browser.load(f"{base}/{fragment}")
    browser.wait_for(READY)


def wait_for_total(browser, total):
    shown = f"{total:,}"
    browser.wait_for(
        f"document.querySelector('#total-params').textContent === {json.dumps(shown)}"
        " && document.querySelector('#problem').hidden"
    )


# --- the calculator ---------------------------------------------------------------


@needs_chromium
def test_calculator_opens_on_the_seed_model(server, browser):
    open_calculator(browser, server)
    assert "Total params: 146" in text_of(browser, "#summary")
    assert text_of(browser, "#total-params") == "146"
    assert browser.evaluate("document.querySelectorAll('#layers > li').length") == 2
    assert browser.evaluate("document.querySelector('[data-path=\"layers.0.units\"]').value") == "5"
    # The model is in the address, for a link to share.
    fragment = browser.evaluate("decodeURIComponent(location.hash.slice(1))")
    assert json.loads(fragment) == {"model": SEED}
    # Each layer's formula and MACs, and the memory estimate, are shown.
    rows = browser.evaluate(
        "[...document.querySelectorAll('#layer-table tbody tr')].map(r => r.textContent)"
    )
    assert "4 × ((1 + 5) × 5 + 5) = 140" in rows[0] and "600" in rows[0]
    assert text_of(browser, "#train-memory") != "…"
    assert_stayed_home(browser, server)


@needs_chromium
def test_changing_units_counts_again(server, browser):
    open_calculator(browser, server)
    browser.type_into('[data-path="layers.0.units"]', "8")
    model = copy.deepcopy(SEED)
    model["layers"][0]["units"] = 8
    expected = engine_total(model)
    assert expected != 146
    wait_for_total(browser, expected)
    assert f"Total params: {expected:,} (" in text_of(browser, "#summary")
    fragment = browser.evaluate("decodeURIComponent(location.hash.slice(1))")
    assert json.loads(fragment) == {"model": model}
    # The estimate follows its own inputs (POST /params?train_batch_size=&optimizer=).
    browser.type_into("#train-batch", "128")
    browser.evaluate(
        "(() => { const s = document.querySelector('#optimizer'); s.value = 'sgd';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    memory = params_document(model, 128, "sgd")["train_memory"]
    browser.wait_for(
        "document.querySelector('#memory-parts').textContent.startsWith('Batch 128, sgd')"
    )
    assert memory["optimizer_state"] == 0
    assert_stayed_home(browser, server)


@needs_chromium
def test_the_calculator_draws_the_models_graph(server, browser, client):
    """The picture panel shows POST /params's SVG (Accept: image/svg+xml):
    a box per layer, the same names as the API's drawing, redrawn on edit."""
    open_calculator(browser, server)
    boxes = "[...document.querySelectorAll('#picture-box g.layer')].map(g => g.dataset.name)"
    browser.wait_for(f"{boxes}.length > 0")
    drawn = client.post("/params", json=SEED, headers={"Accept": "image/svg+xml"})
    assert drawn.mimetype == "image/svg+xml"
    names = [g.get("data-name") for g in ElementTree.fromstring(drawn.data).iter(SVG_G)
             if g.get("class") == "layer"]  # fmt: skip
    assert browser.evaluate(boxes) == names == ["lstm", "time_distributed"]
    assert not browser.evaluate("document.querySelector('#picture').hidden")
    # An edit redraws: the LSTM's box shows its new count.
    browser.type_into('[data-path="layers.0.units"]', "7")
    browser.wait_for(
        "[...document.querySelectorAll('#picture-box text.params')]"
        ".some(t => t.textContent.includes(String(4 * ((1 + 7) * 7 + 7))))"
    )
    assert_stayed_home(browser, server)


@needs_chromium
def test_a_refused_value_shows_the_422_at_its_field(server, browser, client):
    open_calculator(browser, server)
    browser.type_into('[data-path="layers.0.units"]', "0")
    model = copy.deepcopy(SEED)
    model["layers"][0]["units"] = 0
    answer = client.post("/params", json=model)
    assert answer.status_code == 422
    problem = answer.get_json()
    browser.wait_for("!document.querySelector('#problem').hidden")
    assert problem["detail"] in text_of(browser, "#problem")
    field = '[data-path="layers.0.units"]'
    assert browser.evaluate(f"document.querySelector('{field}').getAttribute('aria-invalid')") == (
        "true"
    )
    note = browser.evaluate(
        f"(() => {{ const el = document.querySelector('{field}');"
        " return document.getElementById(el.getAttribute('aria-describedby').split(' ').pop())"
        ".textContent; })()"
    )
    assert problem["errors"]["layers.0.units"][0] in note
    # A wrapped layer's argument is found too (layers.1.layer.units).
    browser.type_into('[data-path="layers.0.units"]', "5")
    wait_for_total(browser, 146)
    assert browser.evaluate("document.querySelectorAll('[aria-invalid]').length") == 0
    browser.type_into('[data-path="layers.1.layer.units"]', "-3")
    browser.wait_for(
        "document.querySelector('[data-path=\"layers.1.layer.units\"]')"
        ".getAttribute('aria-invalid') === 'true'"
    )
    assert_stayed_home(browser, server)


@needs_chromium
def test_a_link_opens_its_model(server, browser):
    model = {
        "input_shape": [None, 3],
        "layers": [
            {"type": "GRU", "units": 4, "return_sequences": True},
            {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 3}, "merge_mode": "sum"},
            {"type": "Dense", "units": 2, "activation": "softmax"},
        ],
    }
    state = {"model": model, "train_batch_size": 8, "optimizer": "rmsprop"}
    fragment = "#" + urllib.parse.quote(json.dumps(state), safe="")
    open_calculator(browser, server, fragment)
    wait_for_total(browser, engine_total(model))
    form = browser.evaluate(
        """({
          shape: document.querySelector('#input-shape').value,
          types: [...document.querySelectorAll('#layers > li legend .type')]
                   .map(e => e.textContent),
          units: document.querySelector('[data-path="layers.0.units"]').value,
          inner: document.querySelector('[data-path="layers.1.layer.type"]').value,
          merge: document.querySelector('[data-path="layers.1.merge_mode"]').value,
          batch: document.querySelector('#train-batch').value,
          optimizer: document.querySelector('#optimizer').value,
        })"""
    )
    assert form == {
        "shape": "None, 3",
        "types": ["GRU", "Bidirectional", "Dense"],
        "units": "4",
        "inner": "LSTM",
        "merge": '"sum"',
        "batch": "8",
        "optimizer": "rmsprop",
    }
    # An open length: MACs and the activations are unknown, as the API says.
    assert text_of(browser, "#train-memory").startswith("unknown")
    saved = json.loads(browser.evaluate("decodeURIComponent(location.hash.slice(1))"))
    assert saved == state
    assert_stayed_home(browser, server)


@needs_chromium
@pytest.mark.parametrize("name", ["gru_classifier", "seq2seq"])
def test_pasting_keras_to_json_counts_it(server, browser, name):
    text = (DATA / f"{name}.to_json.json").read_text()
    open_calculator(browser, server)
    browser.click('input[name="mode"][value="json"]')
    browser.wait_for("!document.querySelector('#json-mode').hidden")
    browser.type_into("#model-json", text)
    expected = engine_total(json.loads(text))
    wait_for_total(browser, expected)
    assert f'Model: "{name}"' in text_of(browser, "#summary")
    # Pasted text that is not JSON is named at the text area, and nothing is sent.
    browser.type_into("#model-json", text[:-5])
    browser.wait_for("document.querySelector('#model-json').ariaInvalid === 'true'")
    assert "not JSON" in text_of(browser, "#problem")
    # The pasted model is in the address too.
    saved = json.loads(browser.evaluate("decodeURIComponent(location.hash.slice(1))"))
    assert saved == {"json": text[:-5]}
    assert_stayed_home(browser, server)


@needs_chromium
def test_the_model_goes_along_between_the_form_and_the_text(server, browser):
    open_calculator(browser, server)
    browser.type_into('[data-path="layers.0.units"]', "7")
    browser.click('input[name="mode"][value="json"]')
    model = json.loads(browser.evaluate("document.querySelector('#model-json').value"))
    assert model["layers"][0]["units"] == 7
    model["layers"][0]["units"] = 9
    browser.type_into("#model-json", json.dumps(model))
    wait_for_total(browser, engine_total(model))
    browser.click('input[name="mode"][value="form"]')
    assert browser.evaluate("document.querySelector('[data-path=\"layers.0.units\"]').value") == "9"
    # A graph in a link opens as text: the form holds Sequential stacks.
    graph = EXAMPLES["encoder_decoder"]["model"]
    fragment = "#" + urllib.parse.quote(json.dumps({"model": graph}), safe="")
    open_calculator(browser, server, fragment)
    wait_for_total(browser, engine_total(graph))
    assert browser.evaluate("document.querySelector('input[value=\"json\"]').checked")
    assert_stayed_home(browser, server)


@needs_chromium
def test_layers_are_added_moved_and_removed(server, browser):
    open_calculator(browser, server)
    browser.evaluate(
        "(() => { const s = document.querySelector('#add-type'); s.value = 'Dropout';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    browser.click("#add-layer")
    # The new layer starts as the registry's example (GET /layers).
    model = copy.deepcopy(SEED)
    model["layers"].append({"type": "Dropout", "rate": 0.5})
    wait_for_total(browser, engine_total(model))
    browser.click("#f-layers-2-up")  # Dropout before TimeDistributed
    browser.wait_for(
        "[...document.querySelectorAll('#layers > li legend .type')].map(e => e.textContent)"
        ".join() === 'LSTM,Dropout,TimeDistributed'"
    )
    browser.click("#f-layers-0-remove")
    browser.wait_for("document.querySelectorAll('#layers > li').length === 2")
    # Dropout then TimeDistributed(Dense(1)) on (5, 1): Dense sees 1 feature.
    wait_for_total(browser, engine_total({"input_shape": [5, 1], "layers": [
        {"type": "Dropout", "rate": 0.5},
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1}}]}))  # fmt: skip
    assert_stayed_home(browser, server)


# --- training from the page ----------------------------------------------------------


@needs_chromium
def test_train_this_opens_the_job_live(server, worker, browser):
    open_calculator(browser, server)
    browser.evaluate(
        "(() => { const s = document.querySelector('#preset'); s.value = 'many_to_one';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    # many_to_one's data: the model must give 5 values per sample.
    browser.click("#f-layers-1-remove")
    browser.wait_for("document.querySelectorAll('#layers > li').length === 1")
    browser.click('[data-path="layers.0.return_sequences"]')  # off: one vector per sample
    browser.evaluate(
        "(() => { const s = document.querySelector('#add-type'); s.value = 'Dense';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    browser.click("#add-layer")
    browser.type_into('[data-path="layers.1.units"]', "5")
    wait_for_total(browser, engine_total(EXAMPLES["many_to_one"]["model"]))
    browser.type_into("#epochs", "2000")
    browser.click("#train")
    browser.wait_for("location.pathname.startsWith('/ui/jobs/')", timeout=30)
    job_id = browser.evaluate("location.pathname").rsplit("/", 1)[1]
    browser.wait_for(READY)
    # Status and progress arrive on the event stream, live.
    browser.wait_for("document.querySelector('#status').dataset.status === 'succeeded'", 120)
    assert int(browser.evaluate("document.querySelector('#live').dataset.events || '0'")) >= 2
    assert any(url == f"{server}/jobs/{job_id}/events" for url in browser.requests)
    status, job = call(server, "GET", f"/jobs/{job_id}")
    assert job["status"] == "succeeded"
    assert job["request"]["fit"]["epochs"] == 2000
    logged = sorted(job["result"]["history"])
    browser.wait_for(f"document.querySelectorAll('#chart path.series').length === {len(logged)}")
    drawn = browser.evaluate(
        "[...document.querySelectorAll('#chart path.series')].map(p => p.dataset.name).sort()"
    )
    assert drawn == logged
    assert f"{job['params']['total_params']:,} params" in text_of(browser, "#model-name")
    assert job["result"]["device"] in text_of(browser, "#details")
    # Predict: the form starts with one all-zero instance of the input shape.
    assert json.loads(browser.evaluate("document.querySelector('#instances').value")) == [[[0]] * 5]
    browser.click("#predict")
    browser.wait_for("document.querySelector('#prediction').textContent.startsWith('[[')", 60)
    # Download, then delete (after a confirmation).
    browser.click("#download")
    browser.wait_for(
        "document.querySelector('#action-message').textContent.endsWith('downloaded.')"
    )
    browser.click("#delete")
    browser.wait_for("!document.querySelector('#confirm-delete').hidden")
    browser.click("#confirm-yes")
    browser.wait_for("location.pathname === '/ui/jobs'")
    assert call(server, "GET", f"/jobs/{job_id}")[0] == 404
    assert_stayed_home(browser, server)


# --- the jobs list -----------------------------------------------------------------


def select_status(browser, status):
    browser.evaluate(
        f"(() => {{ const s = document.querySelector('#status-filter'); s.value = '{status}';"
        " s.dispatchEvent(new Event('change')); })()"
    )


def listed(browser):
    return browser.evaluate(
        "[...document.querySelectorAll('#jobs-table tbody tr')]"
        ".map(r => [r.dataset.job, r.dataset.status])"
    )


@needs_chromium
def test_the_jobs_list_filters_by_status(server, worker, browser):
    _, done = call(server, "POST", "/train", {"example": "many_to_one", "fit": {"epochs": 50}})
    _, stopped = call(server, "POST", "/train",
                      {"example": "many_to_one", "fit": {"epochs": 100_000}})  # fmt: skip
    assert call(server, "POST", f"/jobs/{stopped['id']}/cancel")[0] in (200, 202)
    wait_for_status(server, done["id"], {"succeeded"})
    wait_for_status(server, stopped["id"], {"cancelled"})
    browser.load(f"{server}/ui/jobs")
    browser.wait_for(READY)
    rows = dict(listed(browser))
    assert rows[done["id"]] == "succeeded" and rows[stopped["id"]] == "cancelled"
    for status, mine, other in (("cancelled", stopped, done), ("succeeded", done, stopped)):
        select_status(browser, status)
        browser.wait_for(
            f"[...document.querySelectorAll('#jobs-table tbody tr')].some("
            f"r => r.dataset.job === '{mine['id']}') && [...document.querySelectorAll("
            f"'#jobs-table tbody tr')].every(r => r.dataset.status === '{status}')"
        )
        assert other["id"] not in dict(listed(browser))
        assert any(f"/jobs?page_size=20&status={status}" in url for url in browser.requests)
    # The filter is in the address: a reload keeps it.
    assert browser.evaluate("location.hash") == "#status=succeeded"
    browser.load(f"{server}/ui/jobs#status=succeeded")
    browser.wait_for(READY)
    assert browser.evaluate("document.querySelector('#status-filter').value") == "succeeded"
    # A row shows the model's name and parameters from the list entry alone.
    row = f"#jobs-table tr[data-job='{done['id']}']"
    seed = EXAMPLES["many_to_one"]["model"]
    browser.wait_for(
        f"document.querySelector(\"{row} td.params\").textContent === '{engine_total(seed):,}'"
    )
    assert text_of(browser, f"{row} td.model") == "sequential"
    assert not any(f"/jobs/{done['id']}" in url for url in browser.requests)
    # Ticked jobs are overlaid on one chart: a curve per ticked job.
    browser.click(f"#compare-{done['id']}")
    browser.wait_for("document.querySelectorAll('#compare-chart path.series').length === 1")
    assert_stayed_home(browser, server)


# --- API keys -------------------------------------------------------------------------


@needs_chromium
def test_with_keys_the_pages_ask_for_one_and_show_its_tenants_jobs(keyed_server, browser):
    base = keyed_server
    _, alices = call(base, "POST", "/train", {"example": "many_to_one", "fit": {"epochs": 20}},
                     tenant="alice")  # fmt: skip
    _, bobs = call(base, "POST", "/train", {"example": "one_to_one", "fit": {"epochs": 20}},
                   tenant="bob")  # fmt: skip
    browser.load(f"{base}/ui/jobs")
    browser.wait_for("!document.querySelector('#key-panel').hidden")
    assert browser.evaluate("document.activeElement.id") == "key-input"
    browser.type_into("#key-input", TENANTS.secrets["bob"])
    browser.click("#key-form button[type=submit]")
    browser.wait_for(READY)
    jobs = dict(listed(browser))
    assert bobs["id"] in jobs
    assert alices["id"] not in jobs
    assert browser.evaluate("document.querySelector('#more').hidden")  # one page holds them
    assert browser.evaluate("sessionStorage.getItem('seqlab.apiKey')") == TENANTS.secrets["bob"]
    assert not browser.evaluate("document.querySelector('#key-status').hidden")
    # Alice's job page, with bob's key: the API says no such job.
    browser.load(f"{base}/ui/jobs/{alices['id']}")
    browser.wait_for("!document.querySelector('#job-problem').hidden")
    assert "No such job" in text_of(browser, "#job-problem")
    # ... and nothing of a job: no status, chart or buttons.
    assert browser.evaluate(
        "[...document.querySelectorAll('main > .panel, main > .two')].every(p => p.hidden)"
    )
    # The key never went into a URL.
    assert not [url for url in browser.requests if TENANTS.secrets["bob"] in url]
    # Forget it: the page asks again.
    browser.click("#forget-key")
    browser.wait_for("!document.querySelector('#key-panel').hidden")
    assert browser.evaluate("sessionStorage.getItem('seqlab.apiKey')") is None
    # The calculator needs no key: /params is open.
    open_calculator(browser, base)
    assert "Total params: 146" in text_of(browser, "#summary")
    assert browser.evaluate("document.querySelector('#key-panel').hidden")
    assert_stayed_home(browser, base)


@needs_chromium
def test_a_job_page_follows_its_events_across_reconnects(keyed_server, worker, browser):
    base = keyed_server
    # Several seconds of training: the server ends each stream after 1 s.
    body = {"example": "many_to_many", "fit": {"epochs": 20_000}}
    _, job = call(base, "POST", "/train", body, tenant="alice")
    browser.load(f"{base}/ui/jobs/{job['id']}")
    browser.wait_for("!document.querySelector('#key-panel').hidden")
    browser.type_into("#key-input", TENANTS.secrets["alice"])
    browser.click("#key-form button[type=submit]")
    browser.wait_for("document.querySelector('#status').dataset.status === 'succeeded'", 180)
    streams = [r for r in browser.sent if r["url"] == f"{base}/jobs/{job['id']}/events"]
    keyed = [r for r in streams if r["headers"].get("Authorization") == "Bearer "
             + TENANTS.secrets["alice"]]  # fmt: skip
    resumed = [r["headers"]["Last-Event-ID"] for r in keyed if "Last-Event-ID" in r["headers"]]
    assert resumed, f"{len(streams)} streams, none resumed"
    # Each reconnect resumed after an event the page had: ids only grow.
    order = [tuple(map(int, event_id.split("-"))) for event_id in resumed]
    assert order == sorted(order)
    # The whole history is drawn once the job has ended.
    browser.wait_for("document.querySelectorAll('#chart path.series').length === 1")
    assert_stayed_home(browser, base)


# --- layout and names ----------------------------------------------------------------


@needs_chromium
def test_pages_fit_375_and_1440_pixels(server, worker, browser, tmp_path):
    _, job = call(server, "POST", "/train", {"example": "many_to_many", "fit": {"epochs": 200,
                  "validation_split": 0.0}})  # fmt: skip
    wait_for_status(server, job["id"], {"succeeded"})
    folder = Path(os.environ.get("SEQLAB_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    pages = {"calculator": "/", "jobs": "/ui/jobs", "job": f"/ui/jobs/{job['id']}"}
    for width in (375, 1440):
        browser.set_viewport(width, 900, mobile=width < 600)
        for name, path in pages.items():
            browser.load(f"{server}{path}")
            browser.wait_for(READY)
            if name == "job":
                browser.wait_for("document.querySelector('#chart svg')")
            sizes = browser.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
            assert sizes[0] <= sizes[1], f"{name} scrolls sideways at {width} px: {sizes}"
            assert browser.unnamed_controls() == [], f"{name} at {width} px"
            assert browser.evaluate(UNLABELLED_JS) == [], f"{name} at {width} px"
            browser.capture(folder / f"{name}-{width}.png")
    assert_stayed_home(browser, server)


@needs_chromium
def test_every_control_is_reachable_by_keyboard(server, browser):
    open_calculator(browser, server)
    # Tab through the page: every enabled, visible control takes the focus.
    name_of = "el.id || el.dataset.path || el.getAttribute('aria-label') || el.textContent"
    reached = set()
    for _ in range(150):
        browser.send("Input.dispatchKeyEvent", type="keyDown", key="Tab", code="Tab",
                     windowsVirtualKeyCode=9)  # fmt: skip
        browser.send("Input.dispatchKeyEvent", type="keyUp", key="Tab", code="Tab",
                     windowsVirtualKeyCode=9)  # fmt: skip
        reached.add(browser.evaluate(f"(el => {name_of})(document.activeElement)"))
    controls = browser.evaluate(
        "[...document.querySelectorAll('input, select, textarea, button, summary, a[href]')]"
        ".filter(el => !el.disabled && el.checkVisibility() && !el.closest('[hidden]')"
        " && !(el.type === 'radio' && !el.checked))"
        f".map(el => {name_of})"
    )
    assert set(controls) - reached == set()


# --- without a browser: routes, headers, files -------------------------------------


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []
        self.inline = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.urls += [value for name, value in attrs.items() if name in ("src", "href") and value]
        if tag == "script" and "src" not in attrs:
            self.inline.append("script")
        if tag == "style" or "style" in attrs or any(name.startswith("on") for name in attrs):
            self.inline.append(tag)


@pytest.mark.parametrize(
    ("path", "template"),
    [("/", "/"), ("/ui/jobs", "/ui/jobs"), ("/ui/jobs/" + "0" * 32, "/ui/jobs/{job_id}")],
)
def test_pages_are_open_and_load_only_their_own_files(redis_url, spec, path, template):
    # Open with API keys on: the data behind them is what is guarded.
    client = TENANTS.app(redis_url, "idle").test_client()
    rv = client.get(path)
    assert rv.status_code == 200
    validate_response(spec, template, "get", rv)
    # One policy for every page, the one of /docs.
    assert rv.headers["Content-Security-Policy"] == web.CONTENT_SECURITY_POLICY
    assert client.get("/docs").headers["Content-Security-Policy"] == web.CONTENT_SECURITY_POLICY
    links = _Links()
    links.feed(rv.get_data(as_text=True))
    assert links.inline == []
    for url in links.urls:
        assert re.fullmatch(r"/[\w./-]*|#[\w-]+", url), url  # a path on this server
        if not url.startswith("/ui/static/"):
            continue
        with client.get(url) as asset:
            assert asset.status_code == 200, url
            validate_response(spec, "/ui/static/{version}/{name}", "get", asset)
            assert asset.headers["Cache-Control"] == "public, max-age=86400"
            assert asset.headers["Content-Security-Policy"] == web.CONTENT_SECURITY_POLICY
            assert asset.headers["X-Content-Type-Options"] == "nosniff"


def test_the_files_are_the_allowlist_and_no_other(client, spec):
    assert views.ASSETS == {p.name for p in views.STATIC_DIR.iterdir()}
    version = views.assets_version()
    for name in ("nope.js", "..%2Fviews.py", "..", "docs.js"):
        rv = client.get(f"/ui/static/{version}/{name}")
        assert rv.status_code == 404, name
        validate_response(spec, "/ui/static/{version}/{name}", "get", rv)


def test_the_files_have_no_inline_markup_or_eval():
    # The page scripts build the DOM with createElement and textContent:
    # nothing from a request becomes markup, and the CSP needs no exception.
    for path in views.STATIC_DIR.glob("*.js"):
        # Comments may name what the code does not do.
        source = re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(), flags=re.DOTALL)
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                          "eval(", "new Function", "setAttribute(\"style\""):  # fmt: skip
            assert forbidden not in source, f"{path.name} uses {forbidden}"
        # Imports are relative: the files load from their own folder.
        for target in re.findall(r'from "([^"]+)"', source):
            assert target.startswith("./") and target[2:] in views.ASSETS, (path.name, target)


def test_a_job_page_for_an_id_of_another_form_is_a_404(client, spec):
    for job_id in ("xyz", "A" * 32, "0" * 31):
        rv = client.get(f"/ui/jobs/{job_id}")
        assert rv.status_code == 404
        validate_response(spec, "/ui/jobs/{job_id}", "get", rv)


def test_a_new_file_is_a_new_url(monkeypatch, tmp_path):
    for name in views.ASSETS:
        (tmp_path / name).write_bytes((views.STATIC_DIR / name).read_bytes())
    monkeypatch.setattr(views, "STATIC_DIR", tmp_path)
    views.assets_version.cache_clear()
    try:
        before = views.assets_version()
        (tmp_path / "dom.js").write_text("// changed\n")
        views.assets_version.cache_clear()
        assert views.assets_version() != before
    finally:
        views.assets_version.cache_clear()


# --- sweeps ---------------------------------------------------------------------

SWEEP = {
    "example": "many_to_one",
    "fit": {"epochs": 40},
    "vary": {"seed": [0, 1, 2], "compile.learning_rate": [0.01, 0.05]},
}
ROWS_JS = "[...document.querySelectorAll('#trials tbody tr')]"


def wait_for_sweep(base, sweep_id, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        status, sweep = call(base, "GET", f"/sweeps/{sweep_id}")
        assert status == 200, sweep
        if sweep["status"] in ("succeeded", "failed", "cancelled"):
            return sweep
        assert time.monotonic() < deadline, f"sweep {sweep_id} is still {sweep['status']}"
        time.sleep(0.2)


@needs_chromium
def test_a_sweep_page_fills_its_table_live_and_sorts_by_any_column(server, browser, worker):
    status, sweep = call(server, "POST", "/sweeps", SWEEP)
    assert status == 202, sweep
    browser.load(f"{server}/ui/sweeps/{sweep['id']}")
    browser.wait_for(READY)
    # Live: the page follows the sweep's events until every trial has ended.
    browser.wait_for("document.body.dataset.status === 'succeeded'", timeout=120)
    done = wait_for_sweep(server, sweep["id"])
    assert browser.evaluate(f"{ROWS_JS}.length") == 6
    headers = browser.evaluate(
        "[...document.querySelectorAll('#trials thead th')].map(th => th.textContent)"
    )
    assert headers == ["Trial", "seed", "compile.learning_rate", "Status", "Params", "Epochs",
                       "loss"]  # fmt: skip
    # The best trial is marked, and its row is the API's best.
    best = done["best"]["trial"]
    assert browser.evaluate(f"{ROWS_JS}.filter(r => r.classList.contains('best'))"
                            ".map(r => r.dataset.trial)") == [str(best)]  # fmt: skip
    assert browser.evaluate("document.querySelector('tr.best td a').textContent") == f"★ {best}"
    # Sorting by loss orders the rows by the API's final losses; again, the other way.
    losses = {t["trial"]: t["result"]["final_metrics"]["loss"] for t in done["trials"]}
    browser.click("#trials button[data-column='m:loss']")
    order = browser.evaluate(f"{ROWS_JS}.map(r => Number(r.dataset.trial))")
    assert order == sorted(losses, key=losses.get)
    browser.click("#trials button[data-column='m:loss']")
    assert browser.evaluate(f"{ROWS_JS}.map(r => Number(r.dataset.trial))") == order[::-1]
    assert (
        browser.evaluate("document.querySelector('#trials th[aria-sort=descending]').textContent")
        == "loss"
    )
    # By a varied value: numbers as numbers.
    browser.click("#trials button[data-column='v:seed']")
    seeds = browser.evaluate(f"{ROWS_JS}.map(r => r.children[1].textContent)")
    assert seeds == ["0", "0", "1", "1", "2", "2"]
    # The curves: one line per trial; each trial links to its job's page.
    assert browser.evaluate("document.body.dataset.lines") == "6"
    links = browser.evaluate("[...document.querySelectorAll('#trials tbody a')].map(a => a.href)")
    assert sorted(links) == sorted(f"{server}/ui/jobs/{t['job']}" for t in done["trials"])
    assert browser.evaluate("document.querySelector('#cancel').disabled") is True
    # The list page shows it.
    browser.load(f"{server}/ui/sweeps")
    browser.wait_for(READY)
    assert browser.evaluate(f"Boolean(document.querySelector('tr[data-sweep=\"{sweep['id']}\"]'))")
    if os.environ.get("SEQLAB_SCREENSHOTS"):
        browser.load(f"{server}/ui/sweeps/{sweep['id']}")
        browser.wait_for(READY)
        browser.capture(Path(os.environ["SEQLAB_SCREENSHOTS"]) / "sweep.png")
    assert_stayed_home(browser, server)


@needs_chromium
def test_a_queued_sweep_can_be_cancelled_from_its_page(redis_url, browser, tmp_path):
    """On a queue no worker serves, the sweep stays queued until the page cancels it."""
    with serve_api(tmp_path / "gunicorn.log", REDIS_URL=redis_url,
                   SEQLAB_QUEUE="idle-pages") as base:  # fmt: skip
        status, sweep = call(base, "POST", "/sweeps", SWEEP)
        assert status == 202
        browser.load(f"{base}/ui/sweeps/{sweep['id']}")
        browser.wait_for(READY)
        assert text_of(browser, "#status") == "queued"
        assert browser.evaluate(f"{ROWS_JS}.length") == 6
        browser.click("#cancel")
        browser.wait_for("document.body.dataset.status === 'cancelled'")
        assert text_of(browser, "#counts") == "6 trials: 6 cancelled"
        assert_stayed_home(browser, base)


@needs_chromium
def test_an_unknown_sweeps_page_says_so(server, browser):
    browser.load(f"{server}/ui/sweeps/{'0' * 32}")
    browser.wait_for(READY)
    assert "There is no sweep" in text_of(browser, "#sweep-problem")
    assert browser.evaluate("document.querySelector('#trials').closest('section').hidden")


def test_a_sweep_page_for_an_id_of_another_form_is_a_404(client, spec):
    rv = client.get("/ui/sweeps/xyz")
    assert rv.status_code == 404
    validate_response(spec, "/ui/sweeps/{sweep_id}", "get", rv)
