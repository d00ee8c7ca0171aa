"""Loss curves of a training job: ``GET /jobs/<id>/plot.png`` and ``plot.svg``.

Drawn in the API from the stored history: a finished job's ``result``, or
while it runs the ``history_so_far`` that the worker writes every few
seconds (worker/monitor.py). Drawn with matplotlib's object API on the Agg
canvas, never pyplot (whose global state is not for a threaded server), and
matplotlib is imported by the first plot only, so that the API's start and
``POST /params`` pay nothing for it.

A job with no history yet (queued, or running before its first epoch ended)
is a 409, as its model is: a client can tell "not yet" from a picture.
Guarded and owned like every job route (:func:`service.jobs.views.get_job_or_404`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import textwrap
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request
from werkzeug.exceptions import Conflict

from jobs.store import TERMINAL

from .views import get_job_or_404

bp = Blueprint("plots", __name__)

MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
#: A panel whose values span more than this ratio (two decades) gets a log axis.
LOG_SPAN = 100.0
#: Part of every ETag: change it with the drawing, so that caches let go of
#: pictures drawn the old way.
DRAWING = "2"
#: The suptitle's font size, in points.
TITLE_SIZE = 11
#: The part of the figure's width a line of the suptitle may take.
TITLE_WIDTH = 0.94
#: Up to this many points a line, each point gets a marker.
MARKERS_UP_TO = 60
#: What a plot needs of the record (never the training data).
FIELDS = ("id", "created_at", "request", "result", "history_so_far", "progress", "attempt")

# Matplotlib's font cache and text layout are shared by every thread of the
# process (gunicorn's gthread workers): one drawing at a time.
drawing_lock = threading.Lock()


@dataclass(frozen=True)
class Curves:
    """What one plot shows: the history points, per metric, and its words."""

    #: Metric name (``loss``, ``val_loss``, ``mae``...) to its points.
    history: dict[str, list[float]]
    #: Epochs per point (means over blocks past 1,000 epochs).
    block: int
    #: Epochs the points cover (the last block may be partial).
    epochs: int
    title: str
    subtitle: str


def block_middles(points: int, block: int, epochs: int) -> list[float]:
    """The epoch at which each history point is drawn.

    Point ``i`` is the mean of epochs ``i*block+1 .. (i+1)*block`` (the last
    block ends at ``epochs``, possibly short): it is drawn at their middle,
    so that with ``block`` 1 point ``i`` is epoch ``i+1``.
    """
    middles = []
    for i in range(points):
        first = i * block + 1
        last = max(first, min((i + 1) * block, epochs))
        middles.append((first + last) / 2)
    return middles


def use_log_scale(values: Iterable[float]) -> bool:
    """Whether values are drawn on a log axis: they span more than two
    decades (``LOG_SPAN``) and none is negative (a log axis has no place
    for them; zeros it leaves out)."""
    finite = [v for v in values if math.isfinite(v)]
    if any(v < 0 for v in finite):
        return False
    positive = [v for v in finite if v > 0]
    return len(positive) >= 2 and max(positive) / min(positive) > LOG_SPAN


def panels(names: Iterable[str]) -> list[list[str]]:
    """The metrics drawn together: the loss first, each metric then with
    its validation values (``mae`` with ``val_mae``)."""
    names = list(names)
    groups: list[list[str]] = []
    for name in ["loss", *sorted(n for n in names if n != "loss")]:
        if name.startswith("val_") and name[4:] in names:
            continue  # drawn with its training metric
        group = [n for n in (name, f"val_{name}") if n in names]
        if group:
            groups.append(group)
    return groups


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def job_curves(job: Mapping[str, Any]) -> Curves | None:
    """The curves of a job record, None while it has no history point."""
    result = job.get("result") or {}
    live = job.get("history_so_far") or {}
    if result.get("history", {}).get("loss"):
        source = result
        loss = (result.get("final_metrics") or {}).get("loss")
        title_loss = f"final loss {_fmt(loss)}"
    elif live.get("history", {}).get("loss") and live.get("attempt") == job.get("attempt"):
        # A job run again shows nothing of the run before (the attempt it names).
        source = live
        loss = (job.get("progress") or {}).get("loss")
        title_loss = (
            f"latest loss {_fmt(loss if loss is not None else live['history']['loss'][-1])}"
        )
    else:
        return None
    history = {name: [_finite(v) for v in values] for name, values in source["history"].items()}
    block = int(source.get("history_block") or 1)
    epochs = int(source.get("epochs_completed") or len(history["loss"]) * block)
    request_ = job.get("request") or {}
    # The engine's name for a model without one (seqlab/engine.py): a
    # graph's (it has inputs) is Keras's Functional default.
    model = request_.get("model") or {}
    model_name = model.get("name") or ("functional" if "inputs" in model else "sequential")
    asked = (request_.get("fit") or {}).get("epochs")
    words = [f"job {job['id'][:8]}"]
    if request_.get("example"):
        words.append(f"example {request_['example']}")
    words.append(f"{job['status']}, {epochs}" + (f" of {asked}" if asked else "") + " epochs")
    if block > 1:
        words.append(f"means over blocks of {block} epochs")
    return Curves(history, block, epochs, f"{model_name} · {title_loss}", " · ".join(words))


def _finite(value: Any) -> float:
    # JSON has no NaN; a stored non-finite value (a diverging metric) is a gap.
    value = float(value) if isinstance(value, int | float) else math.nan
    return value if math.isfinite(value) else math.nan


def etag(curves: Curves, fmt: str) -> str:
    """An entity tag of the picture, from what is drawn (not the bytes):
    the same history gives the same tag without drawing anything."""
    drawn = json.dumps([DRAWING, fmt, asdict(curves)], sort_keys=True, allow_nan=True)
    return hashlib.sha256(drawn.encode()).hexdigest()[:32]


def wrap_to_fit(text: str, fits: Callable[[str], bool]) -> str:
    """``text`` broken at spaces into lines that each ``fits`` (a word too
    long for a line is broken too): as few lines as :func:`textwrap.wrap`
    makes fit, as even as that many can be; one line if it fits whole."""
    if fits(text):
        return text

    def wrap(width: int) -> list[str]:
        return textwrap.wrap(text, width, break_on_hyphens=False)

    width = len(text)
    while True:
        width = max(1, min(width - 1, int(width * 0.92)))
        lines = wrap(width)
        if width == 1 or all(fits(line) for line in lines):
            break
    # Evened out: narrower while the lines are no more ("... of" / "100 epochs"
    # becomes two halves).
    while width > 1:
        narrower = wrap(width - 1)
        if len(narrower) > len(lines) or not all(fits(line) for line in narrower):
            break
        width, lines = width - 1, narrower
    return "\n".join(lines)


def render(curves: Curves, fmt: str) -> bytes:
    """The picture of ``curves`` as PNG or SVG bytes."""
    figure = draw(curves)
    out = io.BytesIO()
    # No dates or random ids in the file: the same curves, the same bytes.
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with drawing_lock, plot_settings():
        figure.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()


def plot_settings() -> Any:
    """Matplotlib's settings while drawing: the SVG keeps its text as text
    (smaller, searchable), with fixed ids (random otherwise)."""
    import matplotlib

    return matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "seqlab"})


def draw(curves: Curves) -> Any:
    """The matplotlib ``Figure`` of ``curves``, its title and subtitle
    wrapped to the figure's width (a job past 1,000 epochs says more)."""
    # Imported here: the API loads matplotlib with its first plot only.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import MaxNLocator

    groups = panels(curves.history)
    cols = 1 if len(groups) == 1 else 2 if len(groups) <= 4 else 3
    rows = math.ceil(len(groups) / cols)
    size = (8.0, 4.8) if cols == 1 else (5.2 * cols, 3.4 * rows + 1.0)
    with drawing_lock, plot_settings():
        figure = Figure(figsize=size, dpi=100, layout="constrained")
        canvas = FigureCanvasAgg(figure)
        renderer, font = canvas.get_renderer(), FontProperties(size=TITLE_SIZE)
        room = figure.bbox.width * TITLE_WIDTH

        def fits(line: str) -> bool:
            width, _, _ = renderer.get_text_width_height_descent(line, font, ismath=False)
            return bool(width <= room)

        # A no-break space while wrapping keeps each "·" at the end of a
        # line, never at the start of the next.
        title = [
            wrap_to_fit(text.replace(" · ", "\u00a0· "), fits).replace("\u00a0", " ")
            for text in (curves.title, curves.subtitle)
        ]
        figure.suptitle("\n".join(title), fontsize=TITLE_SIZE)
        axes = figure.subplots(rows, cols, squeeze=False).ravel()
        for ax, group in zip(axes, groups, strict=False):
            _draw_panel(ax, curves, group)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for ax in axes[len(groups) :]:
            ax.remove()
    return figure


def _draw_panel(ax: Any, curves: Curves, group: list[str]) -> None:
    for name in group:
        values = curves.history[name]
        x = block_middles(len(values), curves.block, curves.epochs)
        label = "validation" if name.startswith("val_") else "training"
        marker = "o" if len(values) <= MARKERS_UP_TO else None
        ax.plot(x, values, label=label, marker=marker, markersize=3, linewidth=1.5)
    values = [v for name in group for v in curves.history[name]]
    if use_log_scale(values):
        ax.set_yscale("log", nonpositive="mask")
    ax.set_title(group[0], fontsize=10)
    ax.set_xlabel("epoch")
    ax.grid(True, which="major", alpha=0.3)
    if len(group) > 1:
        ax.legend(fontsize=8)


def plot(job_id: str, fmt: str) -> Response:
    """The loss curve of a job as ``fmt`` (png or svg): the curve so far
    while it runs, the whole one after.

    :raise 404: as any job route, for an unknown or another tenant's job.
    :raise 409: while the job has no history point yet.
    """
    job = current_app.extensions["reaper"].settle(get_job_or_404(job_id, fields=FIELDS))
    curves = job_curves(job)
    if curves is None and job["status"] in TERMINAL:
        raise Conflict(
            f"Job {job_id} ended ({job['status']}) before its first epoch: no loss curve."
        )
    if curves is None:
        raise Conflict(
            f"Job {job_id} is {job['status']} and has no history yet; its loss curve "
            "appears once its first epoch has ended."
        )
    tag = etag(curves, fmt)
    headers = {
        "ETag": f'"{tag}"',
        # A finished job's picture never changes; a running one's is
        # checked again each time (a 304 while no epoch has ended).
        "Cache-Control": "private, max-age=86400"
        if job["status"] in TERMINAL
        else "private, no-cache",
    }
    if request.if_none_match.contains(tag):
        return Response(status=304, headers=headers)
    return Response(render(curves, fmt), mimetype=MEDIA_TYPES[fmt], headers=headers)


@bp.get("/jobs/<job_id>/plot.png")
def plot_png(job_id: str) -> Response:
    """The loss curve of a job as a PNG image."""
    return plot(job_id, "png")


@bp.get("/jobs/<job_id>/plot.svg")
def plot_svg(job_id: str) -> Response:
    """The loss curve of a job as an SVG image."""
    return plot(job_id, "svg")
