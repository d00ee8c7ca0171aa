"""The queue of a job being submitted: :func:`jobs.routing.choose_queue`
over the app's settings and the live workers' heartbeats."""

from __future__ import annotations

from flask import Flask
from flask import current_app
from flask import g

from jobs import presence
from jobs.routing import Queues
from jobs.routing import Route
from jobs.routing import TooLarge
from jobs.routing import choose_queue
from modelspec.errors import ApiValidationError


def queues(app: Flask | None = None) -> Queues:
    """The app's routing settings (``SEQLAB_QUEUE`` pins one queue)."""
    config = (app or current_app).config
    return Queues(
        pinned=config["SEQLAB_QUEUE"],
        gpu=config["SEQLAB_GPU_QUEUE"],
        cpu=config["SEQLAB_CPU_QUEUE"],
        cpu_job_bytes=int(config["SEQLAB_CPU_JOB_BYTES"]),
    )


def default_queue(app: Flask | None = None) -> str:
    """The queue of what is not routed by size (predictions through Celery,
    the readiness probe's first figure): the pinned queue, else the GPU one."""
    routing = queues(app)
    return routing.pinned or routing.gpu


def live_workers() -> list[dict]:
    """The live workers' heartbeat records, read once per request: routing
    and the backends check read them for each job, a sweep for each trial."""
    live = g.get("live_workers")
    if live is None:
        live = g.live_workers = presence.live_records(current_app.extensions["jobs"].redis)
    return live  # type: ignore[no-any-return]


def route(need: int) -> Route:
    """The queue of a job estimated to need ``need`` bytes of worker memory.

    :raise ApiValidationError: 422 under ``model`` when live workers serve
        its queues but none has the memory, with the figures.
    """
    try:
        return choose_queue(need, live_workers(), queues())
    except TooLarge as error:
        raise ApiValidationError(f"model: {error}", {"model": [str(error)]}) from None
