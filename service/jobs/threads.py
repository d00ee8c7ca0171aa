"""The API's threads held by long waits: event streams (``GET
/jobs/<id>/events``) and prediction waits (``POST /jobs/<id>/predict``).

Gunicorn's ``gthread`` workers accept connections whether or not a thread
is free, so a process whose threads all wait on streams leaves every other
request it accepted (``/healthz``, ``/params``, another tenant's ``GET
/jobs``) waiting too. Two caps keep threads free:

* per API process, a share of its threads (``SEQLAB_STREAM_THREADS``,
  by default half of gunicorn's ``--threads``) that streams and predict
  waits may hold together: a local count (:class:`ThreadBudget`);
* per tenant, open streams across every process and host
  (``SEQLAB_MAX_STREAMS_PER_TENANT``): counted in Redis, one lease per
  stream that the stream renews while it lives and gives back when it ends,
  so that a killed process's streams free their slots when their leases
  lapse (:meth:`jobs.store.JobStore.take_stream`).

A request over either cap is a 429 with ``Retry-After``; each stream ends
after ``SEQLAB_STREAM_SECONDS``, so the slots turn over and the clients
reconnect with ``Last-Event-ID``.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

from flask import Flask
from flask import current_app
from flask import request
from werkzeug.exceptions import TooManyRequests

from jobs.store import JobStore

from .. import auth

logger = logging.getLogger(__name__)

#: Threads per process assumed where gunicorn's are not known (the Flask
#: development server, tests): half of them is the default share.
DEFAULT_THREADS = 16
#: Seconds a stream's slot lease lives unless renewed; a stream renews it
#: every third of that (it wakes at least every keep-alive interval, ≤ 15 s).
LEASE_SECONDS = 45.0


def gunicorn_threads(
    argv: Sequence[str] = sys.argv, environ: Mapping[str, str] = os.environ
) -> int | None:
    """The threads per process of the gunicorn that runs this process: its
    ``--threads`` (command line, then ``GUNICORN_CMD_ARGS``), else
    ``WEB_THREADS`` (what ``make up`` and compose pass to it); None if
    neither says."""
    sources = []
    if argv and "gunicorn" in Path(argv[0]).parts + (Path(argv[0]).name,):
        sources.append(list(argv[1:]))
    sources.append(shlex.split(environ.get("GUNICORN_CMD_ARGS", "")))
    for args in sources:
        for i, arg in enumerate(args):
            value = None
            if arg == "--threads" and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith("--threads="):
                value = arg.partition("=")[2]
            if value is not None and value.isdigit() and int(value) > 0:
                return int(value)
    raw = environ.get("WEB_THREADS", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def stream_threads(value: object) -> int:
    """The per-process budget ``SEQLAB_STREAM_THREADS`` stands for: a number
    of threads, or ``auto`` (empty too): half of gunicorn's, at least one.

    :raise ValueError: for anything else, naming the setting.
    """
    raw = str(value if value is not None else "").strip().lower()
    if raw in ("", "auto"):
        return max(1, (gunicorn_threads() or DEFAULT_THREADS) // 2)
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    raise ValueError(
        f"SEQLAB_STREAM_THREADS must be a positive number of threads or 'auto'; it is {value!r}."
    )


class ThreadBudget:
    """The threads of this process that long waits may hold at once.

    Args:
        size: how many.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        #: Each holder's token, and when its wait ends at the latest (monotonic).
        self._held: dict[str, float] = {}

    def take(self, seconds: float) -> str | None:
        """A token for a wait of at most ``seconds``; None if none is free."""
        with self._lock:
            if len(self._held) >= self.size:
                return None
            token = uuid.uuid4().hex
            self._held[token] = time.monotonic() + seconds
            return token

    def give_back(self, token: str) -> None:
        """End a wait (a second call does nothing)."""
        with self._lock:
            self._held.pop(token, None)

    def retry_after(self) -> int:
        """Seconds until the first of the holders' waits ends, at the latest."""
        with self._lock:
            first = min(self._held.values(), default=time.monotonic())
        return max(1, math.ceil(first - time.monotonic()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)


def too_many(detail: str, retry_after: int) -> TooManyRequests:
    """A 429 with ``Retry-After`` (the problem handler writes it out)."""
    return TooManyRequests(detail, retry_after=retry_after)


def take_thread(what: str, seconds: float) -> str:
    """Hold one of this process's long-wait threads for ``what`` (at most
    ``seconds``); give it back with :func:`give_back_thread`.

    :raise 429: if the process has none free.
    """
    budget: ThreadBudget = current_app.extensions["thread_budget"]
    token = budget.take(seconds)
    if token is None:
        wait = budget.retry_after()
        raise too_many(
            f"This API process already holds {budget.size} threads in event streams and "
            f"prediction waits (SEQLAB_STREAM_THREADS), its share for them; {what} would "
            f"hold another: try again in {wait} s.",
            wait,
        )
    return token


def give_back_thread(token: str) -> None:
    """End a wait begun with :func:`take_thread`."""
    current_app.extensions["thread_budget"].give_back(token)


def stream_owner() -> str:
    """Whom a stream counts against: its tenant, or without API keys its
    client address (as the rate limit of ``POST /train`` counts)."""
    tenant = auth.caller()
    if tenant is not None:
        return f"tenant:{tenant}"
    return f"address:{request.remote_addr or 'unknown'}"


class StreamSlot:
    """The thread and the tenant's slot an open event stream holds.

    Take one with :meth:`take` in the view (before any byte is sent), call
    :meth:`renew` as the stream goes on, and :meth:`release` when it ends
    (idempotent: both the body's end and the response's close call it).
    """

    def __init__(self, store: JobStore, budget: ThreadBudget, owner: str, thread: str) -> None:
        self.store = store
        self.budget = budget
        self.owner = owner
        self.thread = thread
        self.member = f"{time.time() + stream_seconds():.3f}:{uuid.uuid4().hex}"
        self.renewed = time.monotonic()
        self.released = False

    @classmethod
    def take(cls, store: JobStore) -> StreamSlot:
        """The slots of a new stream of the caller's.

        :raise 429: over this process's budget or the tenant's cap.
        """
        seconds = stream_seconds()
        thread = take_thread("an event stream", seconds)
        slot = cls(store, current_app.extensions["thread_budget"], stream_owner(), thread)
        cap = int(current_app.config["MAX_STREAMS_PER_TENANT"])
        try:
            holders = store.take_stream(slot.owner, slot.member, LEASE_SECONDS, cap)
        except BaseException:
            slot.budget.give_back(thread)
            raise
        if holders is not None:
            slot.budget.give_back(thread)
            wait = retry_after(holders, seconds)
            who = "this API key" if slot.owner.startswith("tenant:") else "this client address"
            raise too_many(
                f"{cap} event streams are open for {who} (SEQLAB_MAX_STREAMS_PER_TENANT); "
                f"close one, or follow the job by polling GET /jobs/<id>: try again in {wait} s.",
                wait,
            )
        return slot

    def renew(self) -> None:
        """Renew the tenant's slot lease, every third of its lifetime at most.

        :raise redis.RedisError: if Redis is unreachable (the stream ends).
        """
        if time.monotonic() - self.renewed >= LEASE_SECONDS / 3:
            self.store.renew_stream(self.owner, self.member, LEASE_SECONDS)
            self.renewed = time.monotonic()

    def release(self) -> None:
        """Give the thread and the tenant's slot back (once)."""
        if self.released:
            return
        self.released = True
        self.budget.give_back(self.thread)
        try:
            self.store.release_stream(self.owner, self.member)
        except Exception:  # noqa: BLE001 (Redis away: the lease lapses by itself)
            logger.warning("could not give back the stream slot of %s", self.owner)


def retry_after(holders: Sequence[str], seconds: float) -> int:
    """Seconds until the first of ``holders`` (members ``<end>:<id>``, ``end``
    the epoch second its stream's time limit ends it) has ended."""
    ends = []
    for member in holders:
        head = member.partition(":")[0]
        try:
            ends.append(float(head))
        except ValueError:
            continue
    first = min(ends, default=time.time() + seconds)
    return max(1, min(math.ceil(seconds), math.ceil(first - time.time())))


def stream_seconds() -> float:
    """``SEQLAB_STREAM_SECONDS``: how long one stream may stay open."""
    return float(current_app.config["STREAM_SECONDS"])


def init_app(app: Flask) -> None:
    """Check the settings and make this process's thread budget.

    :raise ValueError: for a setting that is not a positive number, naming it.
    """
    budget = stream_threads(app.config["STREAM_THREADS"])
    cap = str(app.config["MAX_STREAMS_PER_TENANT"]).strip()
    if not (cap.isascii() and cap.isdigit() and int(cap) > 0):
        raise ValueError(
            f"SEQLAB_MAX_STREAMS_PER_TENANT must be a positive integer; it is {cap!r}."
        )
    app.config["MAX_STREAMS_PER_TENANT"] = int(cap)
    try:
        seconds = float(app.config["STREAM_SECONDS"])
    except (TypeError, ValueError):
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ValueError(
            f"SEQLAB_STREAM_SECONDS must be a positive number of seconds; "
            f"it is {app.config['STREAM_SECONDS']!r}."
        )
    app.config["STREAM_SECONDS"] = seconds
    app.extensions["thread_budget"] = ThreadBudget(budget)
