"""Follow a job to its end: over its event stream, else by polling.

:func:`follow` reports each status change and progress update to a
:class:`Listener` and returns when the job has ended. It reads
``GET /jobs/<id>/events`` (Server-Sent Events); when the stream drops it
reconnects with ``Last-Event-ID`` (so nothing is missed or repeated) a few
times, and when the route is missing or the stream keeps dropping it polls
``GET /jobs/<id>`` instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from typing import Protocol

from .client import Api
from .errors import ApiError
from .sse import DROPPED
from .sse import EventParser
from .sse import NoStream
from .sse import open_events

#: The states a job ends in.
TERMINAL = ("succeeded", "failed", "cancelled")
#: Seconds between polls of ``GET /jobs/<id>``.
POLL_SECONDS = 0.5
#: Reconnects in a row, without an event between them, before polling instead.
RECONNECTS = 5
#: Seconds a watcher keeps retrying while the API is unreachable or answers 5xx.
PATIENCE_SECONDS = 60.0


class Listener(Protocol):
    """What a follower reports to."""

    def status(self, event: dict[str, Any]) -> None:
        """A state change: ``{"status", "at"?, "attempt"?, "error"?, ...}``."""

    def progress(self, progress: dict[str, Any]) -> None:
        """A progress update: the job's ``progress`` object."""

    def note(self, message: str) -> None:
        """How the job is being followed (shown with ``--verbose``)."""


def follow(
    api: Api,
    job_id: str,
    listener: Listener,
    *,
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Report the job's events to ``listener`` until it has ended.

    :raise ApiError: if the job is gone (404), the key is refused (401), or
        the API stays unreachable for :data:`PATIENCE_SECONDS`.
    """
    if _follow_events(api, job_id, listener, sleep):
        return
    _poll(api, job_id, listener, poll_seconds, sleep)


def _follow_events(api: Api, job_id: str, listener: Listener, sleep: Callable) -> bool:
    """Follow the event stream; True once the terminal event came, False
    when it is time to poll instead."""
    parser = EventParser()
    drops = 0
    while drops <= RECONNECTS:
        seen = False
        try:
            after = f" after event {parser.last_id}" if parser.last_id else ""
            listener.note(f"following /jobs/{job_id}/events{after}")
            for event in open_events(api, job_id, parser):
                seen = True
                if _dispatch(event.type, event.data, listener):
                    return True
            reason = "the stream ended before the job did"
        except NoStream as error:
            listener.note(f"no event stream ({error}): polling /jobs/{job_id}")
            return False
        except ApiError as error:
            if not error.transient:
                raise
            reason = str(error)
        except DROPPED as error:
            reason = f"the stream dropped ({error!r})"
        drops = 0 if seen else drops + 1
        listener.note(f"{reason}; reconnecting")
        sleep((parser.retry_ms or 2000) / 1000 if drops > 1 else 0.1)
    listener.note(f"the stream keeps dropping: polling /jobs/{job_id}")
    return False


def _dispatch(kind: str, data: str, listener: Listener) -> bool:
    """Hand one event to the listener; True for a terminal status."""
    try:
        payload = json.loads(data)
    except ValueError:
        return False  # not ours to understand: skip it
    if not isinstance(payload, dict):
        return False
    if kind == "progress":
        listener.progress(payload)
    elif kind == "status":
        listener.status(payload)
        return payload.get("status") in TERMINAL
    elif kind == "lost":
        # The server kept fewer events than we missed; the job's status follows.
        listener.note(f"events after {payload.get('last_event_id')} were lost")
    return False


def patient_get(
    api: Api,
    path: str,
    listener: Listener | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``GET path``, retried while the API is unreachable or answers 5xx
    (a restart, Redis blinking: 503), for up to :data:`PATIENCE_SECONDS`.

    :raise ApiError: a 4xx at once, else the last error once patience ran out.
    """
    started = time.monotonic()
    while True:
        try:
            return api.get(path)
        except ApiError as error:
            if not error.transient or time.monotonic() - started > PATIENCE_SECONDS:
                raise
            if listener is not None:
                listener.note(f"{error}; retrying")
            sleep(1.0)


def _poll(api: Api, job_id: str, listener: Listener, poll_seconds: float, sleep: Callable) -> None:
    """Poll ``GET /jobs/<id>``, reporting what changed, until the job ends."""
    status = progress = None
    while True:
        job = patient_get(api, f"/jobs/{job_id}", listener, sleep)
        if job.get("progress") not in (None, progress):
            progress = job["progress"]
            listener.progress(progress)
        if (job["status"], job.get("attempt")) != status:
            status = (job["status"], job.get("attempt"))
            listener.status(status_event(job))
        if job["status"] in TERMINAL:
            return
        sleep(poll_seconds)


def status_event(job: dict[str, Any]) -> dict[str, Any]:
    """The ``status`` event a job document stands for (as the stream sends it)."""
    event: dict[str, Any] = {"status": job["status"]}
    for key in ("attempt", "error"):
        if key in job:
            event[key] = job[key]
    if "final_metrics" in job.get("result", {}):
        event["final_metrics"] = job["result"]["final_metrics"]
    return event
