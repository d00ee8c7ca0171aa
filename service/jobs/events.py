"""Live progress of a job: ``GET /jobs/<id>/events``, Server-Sent Events.

The worker's store appends an event to the job's Redis Stream with every
state change and progress write (jobs/store.py); this view replays the
stream and then follows it with ``XREAD BLOCK``, one SSE message per entry
(``id:`` the entry id, ``event: status|progress``, one ``data:`` line of
JSON), and closes the response after the final status event. A client that
reconnects with ``Last-Event-ID`` resumes strictly after that entry.

Each open stream holds one server thread and one Redis connection while it
waits, so the API runs under gunicorn's ``gthread`` workers (README,
"Running it"), and the streams are capped per process and per tenant
(:mod:`service.jobs.threads`: over a cap, a 429 with ``Retry-After``). A
stream ends after ``SEQLAB_STREAM_SECONDS`` with an ``event: reconnect``
(the client reconnects with ``Last-Event-ID``), so that no stream holds its
thread for as long as a job waits in the queue. A ``Last-Event-ID`` older
than the oldest kept event gets ``event: lost`` and then the job's current
status, not a silent gap. The blocking reads use a Redis client of their
own, whose socket timeout outlasts the keep-alive interval; the store's
client waits 10 s at most.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import redis
from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import request
from flask import stream_with_context

from jobs.reaper import Reaper
from jobs.store import TERMINAL
from jobs.store import Event
from jobs.store import JobStore
from jobs.store import finite
from modelspec.errors import ApiValidationError

from .threads import StreamSlot
from .views import get_job_or_404

bp = Blueprint("events", __name__)
logger = logging.getLogger(__name__)

HEADER = "Last-Event-ID"
#: A Redis stream entry id: two unsigned 64-bit integers.
STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
UINT64_MAX = 2**64 - 1
#: Milliseconds an EventSource waits before reconnecting (sent once, first).
RETRY_MS = 2000
#: The id of the status event made up from the record of a job that has no
#: stream (queued before streams existed, or its stream lost).
SYNTHETIC_ID = "0-1"
KEEP_ALIVE = ": keep-alive\n\n"
LAST_EVENT_ID_ERROR = (
    "Not an event id of this stream: send back the id: of the last event received "
    "(<milliseconds>-<sequence>, e.g. 1700000000000-0), or leave the header out."
)


def init_app(app: Flask) -> None:
    """Register the route and the Redis client of its blocking reads.

    :raise ValueError: if ``EVENTS_KEEPALIVE_SECONDS`` is not a number of
        seconds in (0, 15] (the contract promises a comment every 15 s).
    """
    value = app.config["EVENTS_KEEPALIVE_SECONDS"]
    try:
        keepalive = float(value)
    except (TypeError, ValueError):
        keepalive = math.nan
    if not 0 < keepalive <= 15:
        raise ValueError(f"EVENTS_KEEPALIVE_SECONDS must be seconds in (0, 15], not {value!r}")
    # Connections are made as streams need them (one each while it waits)
    # and reused; a blocking read waits `keepalive` s, its socket longer.
    client = redis.Redis.from_url(
        app.config["REDIS_URL"],
        socket_timeout=keepalive + 10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    app.extensions["events"] = JobStore(client, int(app.config["JOB_TTL"]))
    app.register_blueprint(bp)


def last_event_id() -> str | None:
    """The ``Last-Event-ID`` header, if sent (empty counts as not sent, as
    an EventSource sends none before its first id).

    :raise 422: naming the header, if it is not a stream entry id.
    """
    value = request.headers.get(HEADER, "").strip()
    if not value:
        return None
    match = STREAM_ID.fullmatch(value)
    if match is None or max(int(part) for part in match.groups()) > UINT64_MAX:
        shown = value if len(value) <= 64 else f"{value[:64]}…"
        raise ApiValidationError(f"{HEADER}: {LAST_EVENT_ID_ERROR} Got {shown!r}.",
                                 {HEADER: [LAST_EVENT_ID_ERROR]})  # fmt: skip
    return value


@bp.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Response:
    """The job's status and progress events, live, as Server-Sent Events;
    the response ends after the final status event."""
    after = last_event_id()
    get_job_or_404(job_id, fields=())  # the ownership check, before streaming
    # A thread of this process and a slot of the tenant's, or a 429.
    slot = StreamSlot.take(current_app.extensions["jobs"])
    follower = Follower(
        job_id,
        current_app.extensions["events"],
        current_app.extensions["reaper"],
        float(current_app.config["EVENTS_KEEPALIVE_SECONDS"]),
        seconds=float(current_app.config["STREAM_SECONDS"]),
        slot=slot,
    )
    response = Response(
        stream_with_context(follower.stream(after)),
        mimetype="text/event-stream",
        # no-cache: each read is live; X-Accel-Buffering: nginx passes it on at once.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    # The body's end releases the slot; so does a close before it began
    # (a HEAD, a client gone before the first byte).
    response.call_on_close(slot.release)
    return response


def message(event: Event) -> str:
    """One SSE message (its data is one line of JSON)."""
    return f"id: {event.id}\nevent: {event.kind}\ndata: {event.data}\n\n"


def notice(kind: str, data: dict[str, Any]) -> str:
    """An SSE message without an ``id:`` (a client's ``Last-Event-ID`` stays
    the last event's): ``lost``, ``reconnect``."""
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


#: The record's fields that say when a job took its status, first found first.
STATUS_TIMES = {"queued": ("requeued_at", "created_at"), "running": ("started_at",)}


def synthesized(record: dict[str, Any]) -> Event:
    """The status event of a job without a stream, made up from its record
    as the store writes it (jobs/store.py)."""
    status = record["status"]
    times = STATUS_TIMES.get(status, ("finished_at",))
    at = next((record[name] for name in times if record.get(name)), record["created_at"])
    data: dict[str, Any] = {"status": status, "at": at}
    if "attempt" in record:
        data["attempt"] = record["attempt"]
    if status == "queued" and "requeue_reason" in record:
        data["reason"] = record["requeue_reason"]
    if "error" in record:
        data["error"] = {"type": record["error"]["type"], "message": record["error"]["message"]}
    if status in TERMINAL and "final_metrics" in record.get("result", {}):
        data["final_metrics"] = record["result"]["final_metrics"]
    return Event(SYNTHETIC_ID, "status", json.dumps(finite(data), allow_nan=False))


class Follower:
    """Reads one job's events for one client: the kept ones, then live.

    Args:
        job_id: the job (its ownership already checked).
        store: a store on the events' own Redis client (blocking reads).
        reaper: settles the job if its worker was lost, as polls do, so a
            stream never waits on a dead worker's job.
        keepalive: seconds of silence after which a comment is sent.
        seconds: how long the stream may last (``SEQLAB_STREAM_SECONDS``);
            then it ends with ``event: reconnect``.
        slot: the thread and tenant's slot it holds: renewed while it lives,
            released when it ends.
    """

    def __init__(
        self,
        job_id: str,
        store: JobStore,
        reaper: Reaper,
        keepalive: float,
        *,
        seconds: float = math.inf,
        slot: StreamSlot | None = None,
    ) -> None:
        self.job_id = job_id
        self.store = store
        self.reaper = reaper
        self.block_ms = max(1, int(keepalive * 1000))
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.slot = slot

    def stream(self, after: str | None) -> Iterator[str]:
        """The response body. It ends after the final status event, or at
        once if the job has ended and no event after ``after`` is left; and
        quietly if Redis goes away (the client reconnects with its last id)."""
        yield f"retry: {RETRY_MS}\n\n"
        try:
            if after is None:
                after = "0"
                if not self.store.has_events(self.job_id):
                    record = self.store.get(self.job_id)
                    if record is None:
                        return
                    yield message(synthesized(record))
                    if record["status"] in TERMINAL:
                        return
                    after = SYNTHETIC_ID
            else:
                lost = self.store.lost_after(self.job_id, after)
                if lost is not None:
                    first, last = lost
                    # Say so, then the job's state now (as of the last entry):
                    # what the events the client missed came to.
                    yield notice("lost", {"last_event_id": after, "first_kept_id": first})
                    record = self.store.get(self.job_id)
                    if record is None:
                        return
                    now = synthesized(record)
                    yield message(Event(last, now.kind, now.data))
                    if record["status"] in TERMINAL:
                        return
                    after = last
            yield from self.follow(after)
        except redis.RedisError as error:
            logger.warning("events of job %s: Redis failed (%s); stream ended", self.job_id, error)
        finally:
            if self.slot is not None:
                self.slot.release()

    def follow(self, after: str) -> Iterator[str]:
        """Messages after ``after`` until the final one, keep-alives between;
        ``event: reconnect`` at the stream's time limit."""
        while True:
            if self.slot is not None:
                self.slot.renew()
            left_ms = int((self.deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                yield notice("reconnect", {"stream_seconds": self.seconds})
                return
            # The status first, then the events: a job that had ended by then
            # has its final event in the stream (written in the same step).
            status = self.status()
            events = self.store.events(self.job_id, after)
            if not events:
                if status is None or status in TERMINAL:
                    return  # sent already (or never streamed: an old job)
                events = self.store.events(
                    self.job_id, after, block_ms=max(1, min(self.block_ms, left_ms))
                )
            if not events:
                yield KEEP_ALIVE  # after keepalive seconds without an event
                continue
            for event in events:
                yield message(event)
                if event.terminal:
                    return
            after = events[-1].id

    def status(self) -> str | None:
        """The job's status now, a lost worker's job settled first (its
        requeue or failure is then an event of the stream); None if gone."""
        job = self.store.get(self.job_id, ("id",))
        if job is not None and job["status"] == "running":
            job = self.reaper.settle(job)
        return None if job is None else str(job["status"])
