"""A picture of a model's graph in SVG, as Keras's ``plot_model`` draws it.

``render_svg(report)`` draws what ``keras.utils.plot_model(model,
show_shapes=True, show_layer_names=True)`` draws
(``keras/src/utils/model_visualization.py``), laid out here without
Graphviz:

* one box per operation Keras draws: a Sequential model's layers (Keras 3's
  ``Sequential.layers`` leaves out the InputLayer, so its picture starts at
  the first layer), a Functional model's ``model.operations`` (its
  InputLayers, its layers, a shared layer once, and the operations that
  compute masks, drawn dashed);
* each box a header ``name (Class)`` over rows ``Input shape: …`` (not for
  an InputLayer, as in Keras), ``Output shape: …`` and ``Params: …``
  (which Keras leaves out; the summary's ``Param #``). Keras puts the
  two shapes side by side in one row; here they are stacked, which keeps
  the boxes of a wide graph narrow. A shared layer shows the shapes of its
  last call in the model, as the summary and ``POST /params`` do;
* one arrow per pair of connected operations, as Keras's ``add_edge``
  draws one (``mha(x, x)`` gets one arrow; a shared layer one from each
  source), from the source's bottom to the target's top.

The layout is layered (Sugiyama, as Graphviz's ``dot``): each box gets the
rank of its longest path from the inputs (the inputs on top), an edge over
several ranks is cut by a point per rank it crosses (up to
``MAX_BENDS`` points in all, the shortest edges first; longer ones are then
drawn straight), a few barycenter sweeps order each rank to cut crossings
(the best order seen is kept), and a few passes of a least-squares
placement under each rank's order and spacing (isotonic regression, the
pool-adjacent-violators algorithm) set each box's x near its neighbours'.
Text widths are estimated for a monospace font (``CHAR_WIDTH`` em a
character); long texts are wrapped, at most ``MAX_LINES`` lines each.

The output is deterministic, uses presentation attributes only (no
``style``, no external fonts or references, so that a page's
Content-Security-Policy takes it inline), and every text is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from xml.sax.saxutils import escape

from .cells import cell_len
from .engine import ModelReport
from .registry import Output
from .registry import format_output

#: Font sizes (px) of a box's header and rows, and of the caption.
HEADER_SIZE = 13
ROW_SIZE = 12
#: A monospace character's advance, in em (DejaVu Sans Mono, Menlo,
#: Consolas: 0.60-0.62).
CHAR_WIDTH = 0.62
#: Line heights (px).
HEADER_LINE = 17
ROW_LINE = 15
#: Padding inside a box (px).
PAD_X = 10
PAD_Y = 6
#: Narrowest box (px).
MIN_BOX_WIDTH = 120
#: Characters a line of a box holds before it wraps; lines a text may take.
LINE_CHARS = 48
MAX_LINES = 12
LONGEST = LINE_CHARS * MAX_LINES
#: Space between boxes of a rank, beside an edge's bend point, between ranks,
#: and around the picture (px).
BOX_GAP = 28
BEND_GAP = 18
BENDS_GAP = 8
BEND_WIDTH = 6
RANK_GAP = 46
MARGIN = 16
CAPTION_HEIGHT = 26
#: How far apart the arrows leaving or entering one side of a box are (px).
PORT_SPACING = 14
#: The points added to cut edges at the ranks they cross, in all: a bound on
#: the layout's work and the picture's size (edges beyond it are straight).
MAX_BENDS = 4000
#: Barycenter sweeps (down and up, alternately) and placement passes.
SWEEPS = 8
PLACEMENTS = 6

FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
INK = "#1f2937"
EDGE_INK = "#4b5563"
HEADERS = {"layer": "#1f2937", "input": "#0f5f73", "op": "#6b7280"}
ARROW_ID = "seqlab-arrow"

_REF = re.compile(r"^(.*)\[(\d+)\]\[(\d+)\]$")
#: Characters XML 1.0 cannot hold, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(slots=True)
class _Box:
    """One operation as drawn: its texts, size and place."""

    name: str
    type: str
    kind: str  # "input" | "layer" | "op"
    #: Each text of the box: its class (``name``, ``input``, ``output``,
    #: ``params``) and its wrapped lines.
    texts: list[tuple[str, list[str]]]
    #: The texts unwrapped (up to ``LINE_CHARS * MAX_LINES`` characters
    #: each), for the box's tooltip.
    full: list[str]
    width: float = 0.0
    height: float = 0.0
    header_height: float = 0.0
    x: float = 0.0  # center
    y: float = 0.0  # top


@dataclass(slots=True)
class _Layout:
    """The graph as laid out: boxes, then bend points, by index."""

    boxes: list[_Box]
    edges: list[tuple[int, int]]
    rank: list[int] = field(default_factory=list)
    width: list[float] = field(default_factory=list)
    order: list[list[int]] = field(default_factory=list)
    preds: list[list[int]] = field(default_factory=list)
    succs: list[list[int]] = field(default_factory=list)
    #: Each edge's points between its two boxes (bend point indices).
    chains: list[list[int]] = field(default_factory=list)
    x: list[float] = field(default_factory=list)
    band_top: list[float] = field(default_factory=list)
    band_height: list[float] = field(default_factory=list)


# -- what each box says --------------------------------------------------------


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _split(text: str, pattern: str) -> list[str]:
    return [piece for piece in re.split(pattern, text) if piece]


def wrap(text: str, width: int = LINE_CHARS, indent: str = "  ") -> list[str]:
    """Lines of at most ``width`` cells: broken between shapes (after
    ``"), "``), else after a comma or space, else anywhere; lines after the
    first indented; at most ``MAX_LINES``, the last then ending in ``…``."""
    if cell_len(text) <= width:
        return [text]
    pieces: list[str] = []
    for coarse in _split(text, r"(?<=\), )"):
        if cell_len(coarse) <= width - len(indent):
            pieces.append(coarse)
            continue
        for fine in _split(coarse, r"(?<=[, ])"):
            step = width - len(indent)
            pieces += [fine[i : i + step] for i in range(0, len(fine), step)]
    lines: list[str] = []
    line = ""
    for piece in pieces:
        room = width - (len(indent) if lines else 0)
        if line and cell_len((line + piece).rstrip()) > room:
            lines.append(line.rstrip())
            line = ""
        line += piece
    if line.strip():
        lines.append(line.rstrip())
    lines = [lines[0]] + [indent + x for x in lines[1:]]
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES]
        lines[-1] = lines[-1][: width - 1] + "…"
    return lines


def _shape_of(ref: str, shapes: dict[str, list[Output]]) -> Output | None:
    """The shape of a tensor reference ``name[call][output]``: None when it
    cannot be told (a call outside the model)."""
    match = _REF.match(ref)
    if match is None:
        return None
    name, node, index = match.group(1), int(match.group(2)), int(match.group(3))
    calls = shapes.get(name)
    if not calls:
        return None
    output = calls[min(node, len(calls) - 1)]
    if isinstance(output, list):
        return output[index] if index < len(output) else None
    return output if index == 0 else None


def _format_tensors(shapes: Sequence[Output | None]) -> str:
    """One tensor's shape, or several as Keras prints a list of them."""
    texts = ["?" if s is None else format_output(s) for s in shapes]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def _params_text(params: int, trainable: int) -> str:
    """``Params: 1,234``; a frozen part said."""
    text = f"Params: {params:,}"
    if trainable < params:
        frozen = params - trainable
        text += " (non-trainable)" if trainable == 0 else f" ({frozen:,} non-trainable)"
    return text


def _box(name: str, type_: str, kind: str, rows: Iterable[tuple[str, str]]) -> _Box:
    header = f"{name} ({type_})"
    texts = [("name", wrap(header))]
    full = [header]
    for cls, text in rows:
        texts.append((cls, wrap(text)))
        full.append(text if len(text) <= LONGEST else text[: LONGEST - 1] + "…")
    return _Box(_clean(name), _clean(type_), kind, texts, full)


def _sequential_boxes(report: ModelReport) -> tuple[list[_Box], list[tuple[int, int]]]:
    boxes = [
        _box(
            layer.name,
            layer.type,
            "layer",
            [
                ("input", "Input shape: " + format_output(layer.input_shape)),
                ("output", "Output shape: " + format_output(layer.output_shape)),
                ("params", _params_text(layer.params, layer.trainable_params)),
            ],
        )
        for layer in report.layers
    ]
    return boxes, [(i, i + 1) for i in range(len(boxes) - 1)]


def _graph_boxes(report: Any) -> tuple[list[_Box], list[tuple[int, int]]]:
    layers = {layer.name: layer for layer in report.layers}
    calls: dict[str, list[Any]] = {}
    for call in report.calls:
        calls.setdefault(call.name, []).append(call)
    inputs = {name for name, _ in report.inputs}
    # Each operation's output per call, to tell the shape of a reference.
    shapes: dict[str, list[Output]] = {}
    for name, _, output, _, _ in report.rows:
        shapes[name] = [c.output_shape for c in calls[name]] if name in calls else [output]
    boxes: list[_Box] = []
    index: dict[str, int] = {}
    for name, type_, output, _, connected in report.rows:
        layer = layers.get(name)
        rows: list[tuple[str, str]] = []
        if name in inputs and type_ == "InputLayer":
            kind = "input"
        else:
            kind = "layer" if layer is not None else "op"
            # The last call's tensors (a shared layer's calls each list theirs).
            refs = calls[name][-1].connected_to if name in calls else connected
            rows.append(
                ("input", "Input shape: " + _format_tensors([_shape_of(r, shapes) for r in refs]))
            )
        rows.append(("output", "Output shape: " + format_output(output)))
        if kind == "layer":
            assert layer is not None
            rows.append(("params", _params_text(layer.params, layer.trainable_params)))
        index[name] = len(boxes)
        boxes.append(_box(name, type_, kind, rows))
    edges: dict[tuple[int, int], None] = {}
    for name, _, _, _, connected in report.rows:
        for ref in connected:
            match = _REF.match(ref)
            source = index.get(match.group(1) if match else ref)
            if source is not None:
                edges[(source, index[name])] = None
    return boxes, list(edges)


def _measure(box: _Box) -> None:
    header = box.texts[0][1]
    widest = max(
        max(cell_len(line) for line in header) * HEADER_SIZE * CHAR_WIDTH,
        max(
            (cell_len(line) * ROW_SIZE * CHAR_WIDTH for _, ls in box.texts[1:] for line in ls),
            default=0,
        ),
    )
    box.width = max(MIN_BOX_WIDTH, round(widest + 2 * PAD_X))
    box.header_height = len(header) * HEADER_LINE + 2 * PAD_Y
    rows = sum(len(lines) for _, lines in box.texts[1:])
    box.height = box.header_height + (rows * ROW_LINE + 2 * PAD_Y if rows else 0)


# -- the layout ------------------------------------------------------------------


def _ranks(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Each box's longest path from a source (the inputs, or a Sequential
    model's first layer, on rank 0), in one pass over a topological order."""
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        preds[v].append(u)
        succs[u].append(v)
    # Kahn's algorithm, in box order.
    waiting = [len(p) for p in preds]
    ready = [i for i in range(n) if not waiting[i]]
    rank = [0] * n
    k = 0
    while k < len(ready):
        u = ready[k]
        k += 1
        for v in succs[u]:
            rank[v] = max(rank[v], rank[u] + 1)
            waiting[v] -= 1
            if not waiting[v]:
                ready.append(v)
    if len(ready) < n:  # pragma: no cover - a model's graph has no cycle
        raise ValueError("the model's graph has a cycle")
    return rank


def _layout(boxes: list[_Box], edges: list[tuple[int, int]], first: list[int]) -> _Layout:
    n = len(boxes)
    lay = _Layout(boxes, edges)
    rank = _ranks(n, edges)
    width = [b.width for b in boxes]
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    chains: list[list[int]] = [[] for _ in edges]
    # Bend points for the edges over several ranks, shortest first, in budget.
    budget = MAX_BENDS
    by_span = sorted(range(len(edges)), key=lambda e: (rank[edges[e][1]] - rank[edges[e][0]], e))
    for e in by_span:
        u, v = edges[e]
        span = rank[v] - rank[u]
        if span > 1 and span - 1 > budget:
            continue  # drawn straight, left out of the ordering
        budget -= span - 1
        previous = u
        for r in range(rank[u] + 1, rank[v]):
            d = len(rank)
            rank.append(r)
            width.append(BEND_WIDTH)
            preds.append([previous])
            succs.append([])
            succs[previous].append(d)
            chains[e].append(d)
            previous = d
        preds[v].append(previous)
        succs[previous].append(v)
    total = len(rank)
    ranks = max(rank) + 1 if rank else 0
    # First order: the inputs in the model's order, then the rest in box order.
    start = {b: i for i, b in enumerate(first)}
    order: list[list[int]] = [[] for _ in range(ranks)]
    for i in sorted(range(total), key=lambda i: (start.get(i, len(start)), i)):
        order[rank[i]].append(i)
    lay.rank, lay.width, lay.preds, lay.succs, lay.chains = rank, width, preds, succs, chains
    lay.order = _reduce_crossings(order, preds, succs)
    lay.x = _place(lay, n)
    return lay


def _positions(order: list[list[int]], size: int) -> list[int]:
    pos = [0] * size
    for row in order:
        for i, v in enumerate(row):
            pos[v] = i
    return pos


def _crossings(order: list[list[int]], succs: list[list[int]], size: int) -> int:
    """Edge crossings between consecutive ranks (inversions, by a Fenwick tree)."""
    pos = _positions(order, size)
    total = 0
    for r in range(len(order) - 1):
        ends = sorted((pos[u], pos[v]) for u in order[r] for v in succs[u])
        if len(ends) < 2:
            continue
        tree = [0] * (len(order[r + 1]) + 1)
        seen = 0
        for _, p in ends:
            # Edges seen so far that end right of p cross this one.
            i, below = p + 1, 0
            while i > 0:
                below += tree[i]
                i -= i & -i
            total += seen - below
            seen += 1
            i = p + 1
            while i < len(tree):
                tree[i] += 1
                i += i & -i
    return total


def _reduce_crossings(
    order: list[list[int]], preds: list[list[int]], succs: list[list[int]]
) -> list[list[int]]:
    size = len(preds)
    best = [row[:] for row in order]
    best_count = _crossings(order, succs, size)
    pos = _positions(order, size)
    for sweep in range(SWEEPS):
        if best_count == 0:
            break
        down = sweep % 2 == 0
        ranks = range(1, len(order)) if down else range(len(order) - 2, -1, -1)
        for r in ranks:
            row = order[r]
            keys = {}
            for v in row:
                near = preds[v] if down else succs[v]
                keys[v] = (sum(pos[u] for u in near) / len(near)) if near else float(pos[v])
            row.sort(key=lambda v: (keys[v], pos[v]))
            for i, v in enumerate(row):
                pos[v] = i
        count = _crossings(order, succs, size)
        if count < best_count:
            best, best_count = [row[:] for row in order], count
    return best


def _isotonic(targets: list[float], weights: list[float], gaps: list[float]) -> list[float]:
    """Positions nearest ``targets`` (weighted least squares) with
    ``x[i+1] - x[i] >= gaps[i]``: pool-adjacent-violators on the offsets."""
    offsets = [0.0]
    for g in gaps:
        offsets.append(offsets[-1] + g)
    blocks: list[list[float]] = []  # [weight, weighted sum, count]
    for t, w, o in zip(targets, weights, offsets, strict=True):
        blocks.append([w, w * (t - o), 1])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][0] > blocks[-1][1] / blocks[-1][0]:
            w2, s2, c2 = blocks.pop()
            blocks[-1][0] += w2
            blocks[-1][1] += s2
            blocks[-1][2] += c2
    out: list[float] = []
    for w, s, c in blocks:
        out += [s / w] * int(c)
    return [y + o for y, o in zip(out, offsets, strict=True)]


def _place(lay: _Layout, boxes: int) -> list[float]:
    """Each box's and bend point's x (its center)."""
    width = lay.width
    x = [0.0] * len(width)

    def gap(a: int, b: int) -> float:
        space = (BOX_GAP, BEND_GAP, BENDS_GAP)[(a >= boxes) + (b >= boxes)]
        return (width[a] + width[b]) / 2 + space

    gaps = [[gap(a, b) for a, b in zip(row, row[1:], strict=False)] for row in lay.order]
    for row, row_gaps in zip(lay.order, gaps, strict=True):
        at = 0.0
        for i, v in enumerate(row):
            x[v] = at
            if i < len(row_gaps):
                at += row_gaps[i]
    weights = [1.0 if v < boxes else 2.0 for v in range(len(width))]

    def settle(r: int, neighbours: Sequence[list[int]]) -> None:
        row = lay.order[r]
        targets = []
        for v in row:
            near = neighbours[v]
            targets.append(sum(x[u] for u in near) / len(near) if near else x[v])
        for v, value in zip(
            row, _isotonic(targets, [weights[v] for v in row], gaps[r]), strict=True
        ):
            x[v] = value

    # Down (each under its sources) and up (each over its targets), ending
    # down: a chain stays straight, a merge sits centred under its sources.
    ranks = len(lay.order)
    for _ in range(PLACEMENTS):
        for r in range(1, ranks):
            settle(r, lay.preds)
        for r in range(ranks - 2, -1, -1):
            settle(r, lay.succs)
    for r in range(1, ranks):
        settle(r, lay.preds)
    left = min((x[v] - width[v] / 2 for v in range(len(width))), default=0.0)
    return [value - left + MARGIN for value in x]


# -- drawing ---------------------------------------------------------------------


def _n(value: float) -> str:
    """A coordinate: one decimal at most."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _attr(value: str) -> str:
    return escape(_clean(value), {'"': "&quot;"})


def _ports(centre: float, width: float, count: int) -> list[float]:
    """``count`` x positions centred on a box side, ``PORT_SPACING`` apart
    while the box is wide enough."""
    if count == 1:
        return [centre]
    spread = min((count - 1) * PORT_SPACING, width - 2 * PAD_X)
    return [centre - spread / 2 + spread * i / (count - 1) for i in range(count)]


def _edge_paths(lay: _Layout) -> list[str]:
    boxes, x = lay.boxes, lay.x
    n = len(boxes)

    def top(v: int) -> float:
        return boxes[v].y if v < n else lay.band_top[lay.rank[v]]

    def bottom(v: int) -> float:
        if v < n:
            return boxes[v].y + boxes[v].height
        return lay.band_top[lay.rank[v]] + lay.band_height[lay.rank[v]]

    # Where each edge leaves its source and enters its target: the ports of
    # a side ordered by the x of the edge's next (or previous) point.
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    leaving: list[list[int]] = [[] for _ in range(n)]
    entering: list[list[int]] = [[] for _ in range(n)]
    for e, (u, v) in enumerate(lay.edges):
        leaving[u].append(e)
        entering[v].append(e)
    for v in range(n):
        box = boxes[v]
        out = sorted(leaving[v], key=lambda e: (x[(lay.chains[e] or [lay.edges[e][1]])[0]], e))
        for e, px in zip(out, _ports(x[v], box.width, len(out)), strict=True):
            starts[e] = px
        into = sorted(entering[v], key=lambda e: (x[(lay.chains[e] or [lay.edges[e][0]])[-1]], e))
        for e, px in zip(into, _ports(x[v], box.width, len(into)), strict=True):
            ends[e] = px
    paths = []
    for e, (u, v) in enumerate(lay.edges):
        px, py = starts[e], bottom(u)
        d = [f"M{_n(px)} {_n(py)}"]
        for q in [*lay.chains[e], v]:
            qx = ends[e] if q == v else x[q]
            qy = top(q)
            mid = (py + qy) / 2
            if abs(qx - px) < 0.05:
                d.append(f"L{_n(qx)} {_n(qy)}")
            else:
                d.append(f"C{_n(px)} {_n(mid)} {_n(qx)} {_n(mid)} {_n(qx)} {_n(qy)}")
            px, py = qx, qy
            if q != v:
                py = bottom(q)
                d.append(f"L{_n(px)} {_n(py)}")
        source, target = _attr(boxes[u].name), _attr(boxes[v].name)
        paths.append(
            f'<path class="edge" data-from="{source}" data-to="{target}" d="{"".join(d)}"/>'
        )
    return paths


def _draw_box(box: _Box) -> list[str]:
    left, top = box.x - box.width / 2, box.y
    dashed = ' stroke-dasharray="4 3"' if box.kind == "op" else ""
    out = [
        f'<g class="{"op" if box.kind == "op" else "layer"}" data-name="{_attr(box.name)}" '
        f'data-type="{_attr(box.type)}" data-kind="{box.kind}">',
        f"<title>{escape(_clean(chr(10).join(box.full)))}</title>",
        f'<rect class="box" x="{_n(left)}" y="{_n(top)}" width="{_n(box.width)}" '
        f'height="{_n(box.height)}" fill="#fff" stroke="{INK}" stroke-width="1.5"{dashed}/>',
        f'<rect class="header" x="{_n(left)}" y="{_n(top)}" width="{_n(box.width)}" '
        f'height="{_n(box.header_height)}" fill="{HEADERS[box.kind]}"/>',
    ]
    y = top + PAD_Y
    for k, (cls, lines) in enumerate(box.texts):
        size, height = (HEADER_SIZE, HEADER_LINE) if k == 0 else (ROW_SIZE, ROW_LINE)
        if k == 1:
            y = top + box.header_height + PAD_Y
        paint = ' fill="#fff" font-weight="bold"' if k == 0 else f' fill="{INK}"'
        tx = _n(left + PAD_X)
        spans = "".join(
            f'<tspan x="{tx}" y="{_n(y + (i + 0.75) * height)}">{escape(_clean(line))}</tspan>'
            for i, line in enumerate(lines)
        )
        out.append(f'<text class="{cls}" font-size="{size}"{paint}>{spans}</text>')
        y += len(lines) * height
    out.append("</g>")
    return out


def render_svg(report: ModelReport) -> str:
    """An SVG document picturing ``report``'s model: a box per layer (name,
    class, input and output shapes, parameters), an arrow per connection,
    laid out top to bottom from the inputs."""
    rows = getattr(report, "rows", None)
    if rows is not None:
        boxes, edges = _graph_boxes(report)
        names = {b.name: i for i, b in enumerate(boxes)}
        first = [names[name] for name, _ in report.inputs if name in names]  # type: ignore[attr-defined]
    else:
        boxes, edges = _sequential_boxes(report)
        first = [0] if boxes else []
    for box in boxes:
        _measure(box)
    lay = _layout(boxes, edges, first)
    # Ranks from the top: each as tall as its tallest box, boxes centred in it.
    ranks = len(lay.order)
    heights = [0.0] * ranks
    for i, box in enumerate(boxes):
        heights[lay.rank[i]] = max(heights[lay.rank[i]], box.height)
    tops, y = [], MARGIN + CAPTION_HEIGHT
    for h in heights:
        tops.append(y)
        y += h + RANK_GAP
    lay.band_top, lay.band_height = tops, heights
    caption = (
        f'Model: "{report.name}"  ·  Total params: {report.total_params:,}'
        f"  ·  Trainable: {report.trainable_params:,}"
    )
    right = max((lay.x[v] + lay.width[v] / 2 for v in range(len(lay.width))), default=0.0)
    width = max(right + MARGIN, MARGIN * 2 + cell_len(caption) * ROW_SIZE * CHAR_WIDTH)
    shift = (width - right - MARGIN) / 2  # centred under a wider caption
    lay.x = [x + shift for x in lay.x]
    for i, box in enumerate(boxes):
        box.x = lay.x[i]
        box.y = tops[lay.rank[i]] + (heights[lay.rank[i]] - box.height) / 2
    height = (y - RANK_GAP if ranks else y) + MARGIN
    w, h = _n(round(width)), _n(round(height))
    layers = sum(1 for b in boxes if b.kind != "op")
    title = (
        f'Model "{report.name}": {_count(layers, "layer")}, '
        f"{_count(len(edges), 'connection')}, {_count(report.total_params, 'parameter')}"
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" aria-labelledby="seqlab-graph-title" font-family="{FONT_FAMILY}">',
        f'<title id="seqlab-graph-title">{escape(_clean(title))}</title>',
        f'<defs><marker id="{ARROW_ID}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" '
        f'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0 0L10 5L0 10z" fill="{EDGE_INK}"/></marker></defs>',
        f'<rect class="background" width="{w}" height="{h}" fill="#fff"/>',
        f'<text class="caption" x="{MARGIN}" y="{MARGIN + 12}" font-size="{ROW_SIZE}" '
        f'fill="{INK}">{escape(_clean(caption))}</text>',
        f'<g class="edges" fill="none" stroke="{EDGE_INK}" stroke-width="1.5" '
        f'marker-end="url(#{ARROW_ID})">',
        *_edge_paths(lay),
        "</g>",
        '<g class="layers">',
    ]
    for box in boxes:
        out += _draw_box(box)
    out += ["</g>", "</svg>", ""]
    return "\n".join(out)
