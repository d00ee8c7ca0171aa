"""The model's picture (seqlab/picture.py): ``POST /params`` with ``Accept:
image/svg+xml`` and ``seqlab params --svg``.

Every valid model of both corpora is drawn and the drawing held to the JSON
document of the same model: a box per layer with its name, class, output
shape and parameters, an arrow per connection, no two boxes overlapping,
every arrow going down from its source's bottom to its target's top, the
inputs on top. The route's content negotiation, its cache, the worst legal
request's time and size, escaping, and (in a headless Chromium, when one is
installed) that no text leaves its box with a real monospace font.
"""

from __future__ import annotations

import functools
import json
import re
import time
import xml.etree.ElementTree as ET
from itertools import combinations
from pathlib import Path

import corpus
import graph_corpus
import pytest
from browser import Browser
from browser import chromium
from marshmallow import ValidationError
from openapi_check import validate_response
from specs import SEQ2SEQ

from modelspec.errors import ApiValidationError
from modelspec.params import model_report
from modelspec.params import params_document
from seqlab import analyze
from seqlab.picture import LINE_CHARS
from seqlab.picture import MAX_LINES
from seqlab.picture import render_svg
from seqlab.picture import wrap
from seqlab.registry import format_output
from service import create_app

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
SVG_TYPE = "image/svg+xml"
SEQUENTIAL_SPECS = 240
GRAPH_SPECS = 320

needs_chromium = pytest.mark.skipif(
    chromium() is None,
    reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)",
)

#: Two inputs, two outputs, a layer shared by both inputs, a concatenation.
TWO_IN_TWO_OUT = {
    "name": "two_in_two_out",
    "inputs": [{"name": "text", "shape": [12, 8]}, {"name": "meta", "shape": [12, 8]}],
    "layers": [
        {"type": "Dense", "units": 16, "name": "shared_proj", "inputs": "text"},
        {"call": "shared_proj", "inputs": "meta"},
        {"type": "LSTM", "units": 16, "return_sequences": True, "name": "text_rnn",
         "inputs": "shared_proj"},
        {"type": "GRU", "units": 16, "return_sequences": True, "name": "meta_rnn",
         "inputs": "shared_proj[1][0]"},
        {"type": "Concatenate", "name": "merged", "inputs": ["text_rnn", "meta_rnn"]},
        {"type": "GlobalAveragePooling1D", "inputs": "merged"},
        {"type": "Dense", "units": 1, "name": "score", "inputs": "global_average_pooling1d"},
        {"type": "Dense", "units": 5, "name": "tags", "inputs": "merged", "trainable": False},
    ],
    "outputs": ["score", "tags"],
}  # fmt: skip

#: A Sequential model (no InputLayer box, as Keras 3 draws it).
STACK = {
    "input_shape": [5, 3],
    "layers": [
        {"type": "LSTM", "units": 4, "return_sequences": True},
        {"type": "Bidirectional", "layer": {"type": "GRU", "units": 3}},
        {"type": "Dense", "units": 2},
    ],
}

#: Two inputs through one shared embedding and encoder; the masks make two
#: mask operations.
SIAMESE = {
    "inputs": [{"name": "left", "shape": [10], "dtype": "int32"},
               {"name": "right", "shape": [10], "dtype": "int32"}],
    "layers": [
        {"type": "Embedding", "input_dim": 100, "output_dim": 8, "mask_zero": True,
         "name": "embed", "inputs": "left"},
        {"type": "LSTM", "units": 16, "name": "encoder"},
        {"call": "embed", "inputs": "right"},
        {"call": "encoder", "inputs": "embed[1][0]"},
        {"type": "Dot", "axes": 1, "normalize": True, "inputs": ["encoder", "encoder[1][0]"]},
    ],
}  # fmt: skip


def _long(stem: str) -> str:
    return (stem + "_" + "x" * 128)[:128]


def worst_request() -> dict:
    """About the costliest picture a legal request draws: 64 inputs (the
    most a model takes) of rank 8 and the longest dimensions, 200 layers
    (the most) of 128-character names, each adding the one before and 63
    inputs (64 tensors, the most a call takes): 264 boxes, 12,664 arrows,
    most of them over many ranks."""
    inputs = [{"name": f"i{k}", "shape": [2**31 - 1] * 7} for k in range(64)]
    layers = [{"type": "Add", "name": _long("a0"), "inputs": [f"i{k}" for k in range(64)]}]
    for n in range(1, 200):
        refs = [layers[-1]["name"]] + [f"i{k}" for k in range(1, 64)]
        layers.append({"type": "Add", "name": _long(f"a{n}"), "inputs": refs})
    return {"inputs": inputs, "layers": layers, "outputs": layers[-1]["name"]}


# -- reading a picture -----------------------------------------------------------


def lines_of(element: ET.Element) -> list[str]:
    return [span.text or "" for span in element.iter(f"{SVG}tspan")]


def unwrapped(lines: list[str]) -> str:
    """A wrapped text without its breaks and indents (spaces left out)."""
    return "".join(lines).replace(" ", "")


def same_text(lines: list[str], text: str) -> bool:
    return unwrapped(lines) == text.replace(" ", "")


def rect_of(group: ET.Element) -> tuple[float, float, float, float]:
    rect = group.find(f"{SVG}rect[@class='box']")
    assert rect is not None
    return tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def path_points(d: str) -> list[tuple[float, float]]:
    """Every point of a path of M, L and C commands, control points included."""
    assert re.fullmatch(r"M[-\d. ]+(?:[LC][-\d. ]+)*", d), d
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


class Picture:
    """The boxes and arrows of an SVG document."""

    def __init__(self, svg: str) -> None:
        self.root = ET.fromstring(svg)
        assert self.root.tag == f"{SVG}svg"
        self.width = float(self.root.get("width"))
        self.height = float(self.root.get("height"))
        assert self.root.get("viewBox") == f"0 0 {self.root.get('width')} {self.root.get('height')}"
        self.boxes: dict[str, ET.Element] = {}
        self.kinds: dict[str, str] = {}
        for group in self.root.iter(f"{SVG}g"):
            if group.get("class") in ("layer", "op"):
                name = group.get("data-name")
                assert name not in self.boxes, f"two boxes for {name}"
                self.boxes[name] = group
                self.kinds[name] = group.get("class")
        self.edges = [
            (path.get("data-from"), path.get("data-to"), path.get("d"))
            for path in self.root.iter(f"{SVG}path")
            if path.get("class") == "edge"
        ]

    def layers(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind == "layer"]

    def text(self, name: str, cls: str) -> list[str] | None:
        element = self.boxes[name].find(f"{SVG}text[@class='{cls}']")
        return None if element is None else lines_of(element)


def source_of(ref: str) -> str:
    return re.sub(r"\[\d+\]\[\d+\]$", "", ref)


def check_picture(body: object) -> Picture:
    """Draw ``body``'s model and hold the drawing to its JSON document."""
    _, report = model_report(body)
    document = params_document(body)
    svg = render_svg(report)
    picture = Picture(svg)
    layers = document["layers"]
    graph = "inputs" in document

    # A box per layer of the document, in its words.
    assert picture.layers() == [layer["name"] for layer in layers]
    for layer in layers:
        name, box = layer["name"], picture.boxes[layer["name"]]
        assert box.get("data-type") == layer["type"]
        assert same_text(picture.text(name, "name"), f"{name} ({layer['type']})")
        shape = layer["output_shape"]
        shape = [tuple(s) for s in shape] if shape and isinstance(shape[0], list) else tuple(shape)
        output = picture.text(name, "output")
        assert same_text(output, "Output shape: " + format_output(shape)), (output, shape)
        params = picture.text(name, "params")
        if layer["type"] == "InputLayer":
            assert params is None and picture.text(name, "input") is None
        else:
            assert unwrapped(params).startswith(f"Params:{layer['params']:,}"), params
            assert picture.text(name, "input")[0].startswith("Input shape: ")

    # An arrow per pair of connected operations (the mask operations too).
    if graph:
        rows = report.rows
        assert list(picture.boxes) == [row[0] for row in rows]
        expected = {(source_of(ref), row[0]) for row in rows for ref in row[4]}
        for layer in layers:
            assert {(source_of(ref), layer["name"]) for ref in layer["connected_to"]} <= expected
    else:
        names = [layer["name"] for layer in layers]
        expected = set(zip(names, names[1:], strict=False))
    pairs = [(a, b) for a, b, _ in picture.edges]
    assert len(pairs) == len(set(pairs)) and set(pairs) == expected

    # No two boxes overlap; all lie inside the picture.
    rects = {name: rect_of(box) for name, box in picture.boxes.items()}
    for (a, (ax, ay, aw, ah)), (b, (bx, by, bw, bh)) in combinations(rects.items(), 2):
        apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
        assert apart, f"{a} and {b} overlap"
    for x, y, w, h in rects.values():
        assert 0 <= x and x + w <= picture.width and 0 <= y and y + h <= picture.height

    # Every arrow goes down, from its source's bottom to its target's top.
    for source, target, d in picture.edges:
        points = path_points(d)
        sx, sy, sw, sh = rects[source]
        tx, ty, tw, _ = rects[target]
        assert points[0][1] == pytest.approx(sy + sh, abs=0.11)
        assert sx <= points[0][0] <= sx + sw
        assert points[-1][1] == pytest.approx(ty, abs=0.11)
        assert tx <= points[-1][0] <= tx + tw
        ys = [y for _, y in points]
        assert ys == sorted(ys), f"{source} -> {target} goes up: {d}"

    # The inputs on top: above every other box (in a Sequential model, its
    # first layer: Keras 3 draws no InputLayer for it).
    tops = [name for name in picture.boxes if picture.boxes[name].get("data-kind") == "input"]
    if not graph:
        tops = [layers[0]["name"]]
    assert tops
    lowest_input = max(rects[name][1] + rects[name][3] for name in tops)
    others = [rects[name][1] for name in rects if name not in tops]
    assert all(lowest_input < top for top in others)
    return picture


# -- the corpora -----------------------------------------------------------------


@functools.cache
def sequential_corpus() -> list:
    return corpus.generate(SEQUENTIAL_SPECS)


@functools.cache
def graph_specs() -> list:
    return graph_corpus.generate(GRAPH_SPECS)


def valid(body: object) -> bool:
    try:
        model_report(body)
    except (ValidationError, ApiValidationError):
        return False
    return True


@pytest.mark.parametrize("corpus", [sequential_corpus, graph_specs], ids=["sequential", "graph"])
def test_corpus_pictures(corpus):
    """Every valid spec of the corpus (those broken on purpose have no picture)."""
    for i, body in enumerate(corpus()):
        if valid(body):
            try:
                check_picture(body)
            except AssertionError as error:
                raise AssertionError(f"spec {i} of {corpus.__name__}: {body}") from error


def test_the_corpora_hold_enough_valid_models():
    assert sum(map(valid, sequential_corpus())) > SEQUENTIAL_SPECS // 2
    assert sum(map(valid, graph_specs())) > GRAPH_SPECS // 2


# -- particular models -----------------------------------------------------------


def test_two_inputs_two_outputs_shared_layer_and_concatenate():
    picture = check_picture(TWO_IN_TWO_OUT)
    rects = {name: rect_of(box) for name, box in picture.boxes.items()}
    # The shared layer is one box with an arrow from each input, and shows
    # its last call's shapes (as the document's output_shape).
    pairs = {(a, b) for a, b, _ in picture.edges}
    assert {("text", "shared_proj"), ("meta", "shared_proj")} <= pairs
    assert picture.text("shared_proj", "input") == ["Input shape: (None, 12, 8)"]
    assert picture.text("shared_proj", "params") == ["Params: 144"]
    # Each recurrent branch takes the shared layer's output; the
    # concatenation takes both, its input shape listing both.
    assert {("shared_proj", "text_rnn"), ("shared_proj", "meta_rnn")} <= pairs
    assert {("text_rnn", "merged"), ("meta_rnn", "merged")} <= pairs
    assert picture.text("merged", "input") == ["Input shape: [(None, 12, 16), (None, 12, 16)]"]
    assert picture.text("merged", "output") == ["Output shape: (None, 12, 32)"]
    # Two outputs, nothing below them; a frozen layer says so.
    assert not {a for a, _ in pairs} & {"score", "tags"}
    assert picture.text("tags", "params") == ["Params: 165 (non-trainable)"]
    # Ranks: inputs, shared, the two RNNs side by side, merged, then below.
    y = {name: rects[name][1] for name in rects}
    assert y["text"] == y["meta"] < y["shared_proj"] < y["text_rnn"] == y["meta_rnn"] < y["merged"]
    assert y["merged"] < y["global_average_pooling1d"] < y["score"]
    assert y["merged"] < y["tags"]
    # Inputs in the model's order; no arrows cross here.
    assert rects["text"][0] < rects["meta"][0]
    assert rects["text_rnn"][0] < rects["meta_rnn"][0]
    title = picture.root.find(f"{SVG}title").text
    assert title == 'Model "two_in_two_out": 9 layers, 9 connections, 4,086 parameters'


def test_sequential_has_no_input_box_and_a_chain_of_arrows():
    picture = check_picture(STACK)
    assert list(picture.boxes) == ["lstm", "bidirectional", "dense"]
    assert picture.text("lstm", "input") == ["Input shape: (None, 5, 3)"]
    assert [(a, b) for a, b, _ in picture.edges] == [
        ("lstm", "bidirectional"),
        ("bidirectional", "dense"),
    ]
    # A chain is drawn straight down.
    for _, _, d in picture.edges:
        assert len({x for x, _ in path_points(d)}) == 1


def test_encoder_decoder_states_and_several_outputs():
    picture = check_picture(SEQ2SEQ)
    assert picture.text("encoder", "output") == [
        "Output shape: [(None, 7, 8), (None, 8),",
        "  (None, 8)]",
    ]
    # The decoder's initial states are among its inputs, as in Keras's
    # layer.input (one arrow from the encoder for the two of them).
    assert (
        unwrapped(picture.text("decoder", "input")) == "Inputshape:[(None,5,4),(None,8),(None,8)]"
    )
    assert [(a, b) for a, b, _ in picture.edges].count(("encoder", "decoder")) == 1


def test_mask_operations_are_dashed_boxes_and_a_shared_layer_one_box():
    picture = check_picture(SIAMESE)
    assert picture.kinds["not_equal"] == picture.kinds["not_equal_1"] == "op"
    assert picture.boxes["not_equal"].find(f"{SVG}rect[@class='box']").get("stroke-dasharray")
    assert picture.text("not_equal", "params") is None
    pairs = {(a, b) for a, b, _ in picture.edges}
    assert {("left", "embed"), ("right", "embed"), ("not_equal", "encoder")} <= pairs
    assert ("encoder", "dot") in pairs  # one arrow for the two calls' outputs


def test_long_texts_wrap_within_their_lines():
    assert wrap("short") == ["short"]
    text = "Input shape: [" + ", ".join(["(None, 2147483647, 2147483647)"] * 3) + "]"
    lines = wrap(text)
    assert all(len(line) <= LINE_CHARS for line in lines)
    assert unwrapped(lines) == text.replace(" ", "")
    assert all(line.startswith("  ") for line in lines[1:])
    name = "n" * 128 + " (Dense)"
    assert unwrapped(wrap(name)) == name.replace(" ", "")
    many = "Input shape: [" + ", ".join(["(None, 2147483647, 2147483647)"] * 64) + "]"
    lines = wrap(many)
    assert len(lines) == MAX_LINES and lines[-1].endswith("…")
    assert all(len(line) <= LINE_CHARS for line in lines)


def test_every_text_is_escaped():
    report = analyze(STACK)
    nasty = "a<b>&\"c'\x01]]>"
    report.name = nasty
    report.layers[0].name = nasty
    report.layers[1].type = "</text><script>alert(1)</script>"
    picture = Picture(render_svg(report))
    assert list(picture.boxes) == ["a<b>&\"c'\ufffd]]>", "bidirectional", "dense"]
    assert picture.text("a<b>&\"c'\ufffd]]>", "name") == ["a<b>&\"c'\ufffd]]> (LSTM)"]
    assert picture.boxes["bidirectional"].get("data-type") == "</text><script>alert(1)</script>"
    assert not list(picture.root.iter(f"{SVG}script"))
    assert picture.edges[0][0] == "a<b>&\"c'\ufffd]]>"
    assert picture.root.find(f"{SVG}title").text.startswith('Model "a<b>&"c\'\ufffd]]>"')


def test_the_picture_is_self_contained_and_deterministic():
    svg = render_svg(model_report(TWO_IN_TWO_OUT)[1])
    assert svg == render_svg(model_report(TWO_IN_TWO_OUT)[1])
    # No scripts, styles, fonts, images or links: only local references.
    assert not re.search(r"<(script|style|image|a|foreignObject)\b|style=|href|@import", svg)
    assert set(re.findall(r"url\(([^)]*)\)", svg)) == {"#seqlab-arrow"}
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


# -- the route -------------------------------------------------------------------


def post(client, body, accept=None, query=""):
    headers = {"Accept": accept} if accept is not None else {}
    return client.post(f"/params{query}", json=body, headers=headers)


@pytest.mark.parametrize(
    ("accept", "picture"),
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        ("text/html", False),  # takes neither: the document, as before
        ("image/png", False),
        ("image/svg+xml", True),
        ("image/*", True),
        ("image/svg+xml, application/json;q=0.9", True),
        ("application/json, image/svg+xml;q=0.5", False),
        ("image/svg+xml, application/json", False),  # a tie: the document
        ("*/*;q=0.1, image/svg+xml", True),
    ],
)
def test_accept_chooses_the_document_or_the_picture(client, spec, accept, picture):
    rv = post(client, TWO_IN_TWO_OUT, accept)
    assert rv.status_code == 200
    validate_response(spec, "/params", "post", rv)
    assert rv.headers["Vary"] == "Accept"
    if picture:
        assert rv.mimetype == SVG_TYPE
        assert Picture(rv.get_data(as_text=True)).layers()[:2] == ["text", "meta"]
    else:
        assert rv.mimetype == "application/json"
        assert rv.get_json()["total_params"] == 4086


def test_the_picture_is_what_render_svg_draws(client):
    rv = post(client, SEQ2SEQ, SVG_TYPE)
    assert rv.get_data(as_text=True) == render_svg(model_report(SEQ2SEQ)[1])


def test_errors_stay_problem_json(client, spec):
    broken = json.loads(json.dumps(STACK))
    broken["layers"][0]["units"] = -1  # the schema's 422
    rv = post(client, broken, SVG_TYPE)
    assert rv.status_code == 422 and rv.mimetype == "application/problem+json"
    validate_response(spec, "/params", "post", rv)
    refused = {"input_shape": [5], "layers": [{"type": "LSTM", "units": 2}]}  # Keras's 422
    rv = post(client, refused, SVG_TYPE)
    assert rv.status_code == 422 and rv.mimetype == "application/problem+json"
    assert "layers.0" in rv.get_json()["errors"]
    rv = post(client, STACK, SVG_TYPE, "?optimizer=magic")  # query parameters still checked
    assert rv.status_code == 422 and "optimizer" in rv.get_json()["errors"]
    rv = client.post("/params", data="{", content_type="application/json",
                     headers={"Accept": SVG_TYPE})  # fmt: skip
    assert rv.status_code == 400 and rv.mimetype == "application/problem+json"


@pytest.mark.parametrize("size", [0, 1024])
def test_the_cache_keeps_the_document_and_the_picture_apart(size):
    app = create_app({"TESTING": True, "PARAMS_CACHE_SIZE": size})
    client = app.test_client()
    for _ in range(2):  # the second round from the cache
        for accept in ("application/json", SVG_TYPE, None, "image/*"):
            rv = post(client, STACK, accept)
            assert rv.status_code == 200
            if accept in (SVG_TYPE, "image/*"):
                assert rv.mimetype == SVG_TYPE
                assert rv.get_data(as_text=True) == render_svg(model_report(STACK)[1])
            else:
                assert rv.mimetype == "application/json"
                assert rv.get_json() == params_document(STACK)
    assert len(app.extensions["params_cache"]) == (2 if size else 0)
    # The picture ignores the query's estimate options: one entry for it.
    post(client, STACK, SVG_TYPE, "?optimizer=sgd")
    assert len(app.extensions["params_cache"]) == (2 if size else 0)


def test_the_worst_legal_request_is_drawn_quickly_and_bounded(client):
    body = worst_request()
    data = json.dumps(body)
    assert len(data) < client.application.config["MAX_CONTENT_LENGTH"]
    started = time.perf_counter()
    rv = client.post("/params", data=data, content_type="application/json",
                     headers={"Accept": SVG_TYPE})  # fmt: skip
    took = time.perf_counter() - started
    assert rv.status_code == 200, rv.get_data(as_text=True)[:500]
    # About 0.7 s and 3.8 MB on a developer's machine: generous bounds.
    assert took < 15
    assert len(rv.data) < 6_000_000
    picture = Picture(rv.get_data(as_text=True))
    assert len(picture.boxes) == 264 and len(picture.edges) == 64 + 199 * 64
    # The longest texts are cut at MAX_LINES lines.
    assert len(picture.text(_long("a5"), "input")) == MAX_LINES


def test_the_readme_shows_the_apis_picture(client):
    """docs/seq2seq-graph.svg is the picture of the README's first
    Functional request (regenerate it with seqlab params SPEC --svg)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n### Functional models\n", 1)[1]
    body = json.loads(re.search(r"```json\n(.*?)```", section, re.DOTALL).group(1))
    assert "docs/seq2seq-graph.svg" in section
    drawn = post(client, body, SVG_TYPE).get_data(as_text=True)
    assert (ROOT / "docs" / "seq2seq-graph.svg").read_text() == drawn


# -- the command line --------------------------------------------------------------


def test_seqlab_params_svg_writes_the_picture(tmp_path):
    from click.testing import CliRunner

    from seqlab_cli.main import cli

    model = tmp_path / "model.json"
    model.write_text(json.dumps(TWO_IN_TWO_OUT))
    out = tmp_path / "model.svg"
    rv = CliRunner().invoke(cli, ["params", str(model), "--svg", str(out), "--json"])
    assert rv.exit_code == 0, rv.output
    assert json.loads(rv.stdout)["total_params"] == 4086  # stdout stays one document
    assert out.read_text() == render_svg(model_report(TWO_IN_TWO_OUT)[1])
    rv = CliRunner().invoke(cli, ["params", str(model), "--svg", str(tmp_path / "no" / "x.svg")])
    assert rv.exit_code != 0 and "Cannot write" in rv.output


# -- in a browser ------------------------------------------------------------------

#: Each text's box, its box's rectangle and header, as Chromium lays them
#: out, once the document has loaded.
MEASURE_JS = r"""
new Promise(resolve => {
  const measure = () => resolve([...document.querySelectorAll("g.layer, g.op")].map(g => {
    const r = g.querySelector("rect.box").getBBox();
    const h = g.querySelector("rect.header").getBBox();
    return {
      name: g.dataset.name,
      box: [r.x, r.y, r.width, r.height],
      header: [h.x, h.y, h.width, h.height],
      texts: [...g.querySelectorAll("text")].map(t => {
        const b = t.getBBox();
        return {cls: t.getAttribute("class"), box: [b.x, b.y, b.width, b.height]};
      }),
    };
  }));
  if (document.readyState === "complete") measure();
  else window.addEventListener("load", measure);
})
"""


def inside(inner, outer, slack=0.5):
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return (
        ox - slack <= x
        and x + w <= ox + ow + slack
        and oy - slack <= y
        and y + h <= oy + oh + slack
    )


@needs_chromium
def test_no_text_leaves_its_box_in_chromium(tmp_path):
    long_names = {
        "inputs": [{"name": _long("input"), "shape": [2**31 - 1] * 7}],
        "layers": [
            {"type": "Dense", "units": 2**20, "name": _long("dense")},
            {"type": "Dense", "units": 3, "inputs": _long("input"), "name": "wide"},
            {"type": "Concatenate", "inputs": [_long("dense"), "wide"]},
        ],
    }
    models = [TWO_IN_TWO_OUT, SEQ2SEQ, SIAMESE, STACK, long_names]
    models += [body for body in graph_specs()[:24] if valid(body)][:6]
    with Browser(tmp_path / "profile") as browser:
        for i, body in enumerate(models):
            path = tmp_path / f"model{i}.svg"
            path.write_text(render_svg(model_report(body)[1]))
            browser.open(path.as_uri())
            boxes = browser.evaluate(MEASURE_JS)
            assert boxes, f"model {i} drew nothing"
            for box in boxes:
                for text in box["texts"]:
                    outer = box["header"] if text["cls"] == "name" else box["box"]
                    assert inside(text["box"], outer), (i, box["name"], text)
