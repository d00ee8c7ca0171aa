"""A sweep as it runs: ``GET /sweeps/<id>/events`` (Server-Sent Events) and
``GET /sweeps/<id>/plot.png|svg`` (every trial's loss curve, overlaid).

A sweep's state is its trials' job records, so its stream reads them (one
Redis round trip for all trials) and sends what changed: ``event: trial``
for a trial whose status or progress moved, ``event: status`` for the
sweep's own status (with its counts and best trial), and ends after the
final one. Between reads it waits on the trials' own event streams (one
``XREAD BLOCK`` over all of them), so a change is sent as it is written,
at most one read every :data:`MIN_READ_SECONDS`. The stream holds a thread and a slot
of the tenant's stream cap, as a job's does (service/jobs/threads.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import redis
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request
from flask import stream_with_context
from werkzeug.exceptions import Conflict

from jobs.store import finite
from seqlab.sweeps import TERMINAL

from ..jobs.plots import MEDIA_TYPES
from ..jobs.plots import block_middles
from ..jobs.plots import drawing_lock
from ..jobs.plots import plot_settings
from ..jobs.plots import use_log_scale
from ..jobs.threads import StreamSlot
from .documents import sweep_document
from .views import get_sweep_or_404
from .views import trial_records

bp = Blueprint("sweep_live", __name__)

#: Seconds at least between two reads of a sweep's trials by its stream
#: (hundreds of trials each report progress twice a second).
MIN_READ_SECONDS = 0.05
#: A legend names each trial's values up to this many trials.
LEGEND_UP_TO = 16
#: The job fields a plot reads of each trial.
PLOT_FIELDS = ("result", "history_so_far", "attempt")


def event(kind: str, data: Mapping[str, Any]) -> str:
    """One SSE message, its data one line of JSON."""
    return f"event: {kind}\ndata: {json.dumps(finite(dict(data)), allow_nan=False)}\n\n"


@bp.get("/sweeps/<sweep_id>/events")
def sweep_events(sweep_id: str) -> Response:
    """The sweep's trial and status events, live; ends after the final status."""
    sweep = get_sweep_or_404(sweep_id)
    slot = StreamSlot.take(current_app.extensions["jobs"])
    keepalive = float(current_app.config["EVENTS_KEEPALIVE_SECONDS"])
    seconds = float(current_app.config["STREAM_SECONDS"])
    events = current_app.extensions["events"]  # the blocking reads' own client
    response = Response(
        stream_with_context(follow(sweep, slot, keepalive, seconds, events)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(slot.release)
    return response


def follow(
    sweep: Mapping[str, Any], slot: StreamSlot, keepalive: float, seconds: float, events: Any
) -> Iterator[str]:
    """The body of a sweep's event stream (see the module's docstring);
    ``events``: a job store on a client whose reads may block."""
    yield "retry: 2000\n\n"
    deadline, quiet_since = time.monotonic() + seconds, time.monotonic()
    seen: list[tuple[str, Any]] = []
    last_status: dict[str, Any] | None = None
    # Each trial's event stream, read from its start: only what comes after
    # the entries read so far wakes the stream.
    after = {events.events_key(trial["job"]): "0-0" for trial in sweep["trials"]}
    try:
        while True:
            slot.renew()
            read_at = time.monotonic()
            # Past everything written so far: what comes after the read wakes us.
            advance(after, events.redis.xread(after))
            jobs = trial_records(sweep, ("progress", "result"))
            sent = False
            for number, job in enumerate(jobs):
                state = (job["status"], job.get("progress"))
                if number < len(seen) and seen[number] == state:
                    continue
                data: dict[str, Any] = {"trial": number, "status": job["status"]}
                if "progress" in job:
                    data["progress"] = job["progress"]
                if job["status"] in TERMINAL and job.get("result"):
                    data["final_metrics"] = job["result"].get("final_metrics")
                yield event("trial", data)
                sent = True
            seen = [(job["status"], job.get("progress")) for job in jobs]
            document = sweep_document(sweep, jobs, full=False)
            status = {k: document[k] for k in ("status", "trial_statuses", "best")}
            if status != last_status:
                yield event("status", status)
                last_status, sent = status, True
            if document["status"] in TERMINAL:
                return
            now = time.monotonic()
            if now >= deadline:
                yield event("reconnect", {"stream_seconds": seconds})
                return
            if sent:
                quiet_since = now
            elif now - quiet_since >= keepalive:
                yield ": keep-alive\n\n"
                quiet_since = now
            wait = max(0.001, min(keepalive, deadline - now))
            events.redis.xread(after, block=int(wait * 1000))
            time.sleep(max(0.0, MIN_READ_SECONDS - (time.monotonic() - read_at)))
    except redis.RedisError:
        return
    finally:
        slot.release()


def advance(after: dict[str, Any], read: Any) -> None:
    """Move each stream's last-read id past the entries ``XREAD`` returned."""
    for key, entries in read or []:
        after[key.decode() if isinstance(key, bytes) else key] = entries[-1][0]


def trial_curves(job: Mapping[str, Any], metric: str) -> tuple[list[float], list[float]]:
    """A trial's points of ``metric`` (x: epochs, y: values): the whole
    history once ended, the history so far while it runs."""
    result = job.get("result") or {}
    live = job.get("history_so_far") or {}
    source = result if result.get("history") else live
    values = (source.get("history") or {}).get(metric) or []
    if not values:
        return [], []
    block = int(source.get("history_block") or 1)
    epochs = int(source.get("epochs_completed") or len(values) * block)
    ys = [float(v) if isinstance(v, int | float) else math.nan for v in values]
    return block_middles(len(ys), block, epochs), ys


def render_overlay(
    sweep: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], metrics: list[str], fmt: str
) -> bytes:
    """Every trial's curve of each of ``metrics`` (one panel each), overlaid."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with drawing_lock, plot_settings():
        figure = Figure(figsize=(6.0 * len(metrics), 4.6), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(1, len(metrics), squeeze=False).ravel()
        best = (sweep_document(sweep, jobs, full=False)["best"] or {}).get("trial")
        for ax, metric in zip(axes, metrics, strict=True):
            values: list[float] = []
            for number, job in enumerate(jobs):
                x, y = trial_curves(job, metric)
                if not x:
                    continue
                values += y
                label = ", ".join(f"{k}={v}" for k, v in sweep["trials"][number]["values"].items())
                ax.plot(
                    x, y, linewidth=2.2 if number == best else 1.0,
                    alpha=1.0 if number == best else 0.6,
                    label=f"{number}: {label}" + (" (best)" if number == best else ""),
                )  # fmt: skip
            if use_log_scale(values):
                ax.set_yscale("log", nonpositive="mask")
            ax.set_title(metric, fontsize=10)
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            if len(jobs) <= LEGEND_UP_TO and values:
                ax.legend(fontsize=7)
        figure.suptitle(f"sweep {sweep['id'][:8]} · {len(jobs)} trials", fontsize=11)
        out = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        figure.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()


def plot(sweep_id: str, fmt: str) -> Response:
    """The sweep's overlaid curves as ``fmt``: the objective's metric, and
    the loss beside it where the objective is another.

    :raise 409: while no trial has a history point.
    """
    sweep = get_sweep_or_404(sweep_id)
    jobs = trial_records(sweep, PLOT_FIELDS)
    metric = sweep["objective"]["metric"]
    metrics = ["loss"] if metric == "loss" else ["loss", metric]
    if not any(trial_curves(job, "loss")[0] for job in jobs):
        raise Conflict(
            f"No trial of sweep {sweep_id} has a history point yet; its curves appear "
            "once a trial's first epochs have ended."
        )
    image = render_overlay(sweep, jobs, metrics, fmt)
    tag = hashlib.sha256(image).hexdigest()[:32]
    headers = {"ETag": f'"{tag}"', "Cache-Control": "private, no-cache"}
    if request.if_none_match.contains(tag):
        return Response(status=304, headers=headers)
    return Response(image, mimetype=MEDIA_TYPES[fmt], headers=headers)


@bp.get("/sweeps/<sweep_id>/plot.png")
def plot_png(sweep_id: str) -> Response:
    """Every trial's loss curve, overlaid, as a PNG image."""
    return plot(sweep_id, "png")


@bp.get("/sweeps/<sweep_id>/plot.svg")
def plot_svg(sweep_id: str) -> Response:
    """Every trial's loss curve, overlaid, as an SVG image."""
    return plot(sweep_id, "svg")
