"""Job records in Redis, shared by the API (writes, reads, cancels, deletes)
and the worker (progress, results). Imports redis only: no Celery, no Keras.

A job is the hash ``seqlab:job:<id>``, whose fields are JSON values; its
training data ``seqlab:job:<id>:data`` (JSON), apart so that polls and
listings never read it; once trained, the ``.keras`` file in chunks of
:data:`MODEL_CHUNK_BYTES` (the first at ``seqlab:job:<id>:model``, the
others at ``seqlab:job:<id>:model:<n>``, their count, the file's size and
its SHA-256 in the record's ``model_file``: no Redis value nears its 512 MB
limit, and Redis serves other clients between chunks) and
``seqlab:job:<id>:predictions`` (the model's outputs for the training
inputs, JSON: apart, as they grow with the data; at most
``SEQLAB_MAX_PREDICTION_BYTES``, see :func:`seqlab.cost.prediction_bytes_bound`); and
its membership in the sorted set ``seqlab:jobs``
(score: creation time) for listing, and in its tenant's
``seqlab:tenant:<name>:jobs`` when it has one (the API key that made it:
the record's ``tenant``). Every key of a job carries the job's TTL; each
index carries it too, refreshed and pruned by age on each create.
State changes that depend on the current state run in Lua (the scripts in
``jobs/lua/``, registered by :mod:`jobs.scripts`), so a cancel and a worker
starting or ending the job cannot both win, and each answer describes one
moment.

Every state change and every progress write also appends an event to the
Redis Stream ``seqlab:job:<id>:events`` in the same atomic step (a reader
never sees a state without its event): ``status`` events (``{"status",
"at", "attempt"?, "reason"?, "error"?, "final_metrics"?}``; ``reason``
``"worker_lost"`` on a job given back to the queue) and ``progress`` events
(the progress object as stored). The stream keeps about the last
``EVENTS_MAXLEN`` events and expires with the record. ``GET
/jobs/<id>/events`` (service/jobs/events.py) serves it as Server-Sent Events.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import NamedTuple

import redis

from jobs import scripts
from jobs import settings

PREFIX = "seqlab"
INDEX = f"{PREFIX}:jobs"
TERMINAL = ("succeeded", "failed", "cancelled")
#: Running jobs (score: when they started), for the reaper's sweeps.
RUNNING = f"{PREFIX}:running"
#: Jobs given back to the queue whose task is not yet known to be published
#: (score: when), so that a reaper that dies between the two is made good.
REQUEUE = f"{PREFIX}:requeue"
STATUSES = ("queued", "running", *TERMINAL)
#: The most index entries one page of jobs filtered by status reads.
PAGE_SCAN = 1000

#: Bytes per Redis value of a model file (as jobs/datasets.py stores arrays).
MODEL_CHUNK_BYTES = 4 * 1024 * 1024


#: Events a job's stream keeps, about (Redis trims whole nodes of entries):
#: some 15 minutes of progress at two reports a second, and every state change
#: of a shorter job.
EVENTS_MAXLEN = 2000

# What new_job_id makes: anything else names no job (and must never be
# spliced into a key, where "<id>:model" would reach another job's model).
JOB_ID = re.compile(r"[0-9a-f]{32}")


def stream_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id (``<ms>-<seq>``, or ``<ms>``) as comparable numbers."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def now() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id() -> str:
    """A fresh job id; also the Celery task id."""
    return uuid.uuid4().hex


def is_job_id(value: str) -> bool:
    """Whether ``value`` has the form of a job id (32 lowercase hex digits)."""
    return JOB_ID.fullmatch(value) is not None


def index_key(tenant: str | None) -> str:
    """The sorted set that lists a tenant's jobs; every job's for None."""
    return INDEX if tenant is None else f"{PREFIX}:tenant:{tenant}:jobs"


def _indexes(tenant: str | None) -> list[str]:
    """The indexes that list a job of ``tenant``."""
    return [INDEX] if tenant is None else [INDEX, index_key(tenant)]


def _decode(names: tuple[str, ...], values: list[bytes | None]) -> dict[str, Any]:
    return {n: json.loads(v) for n, v in zip(names, values, strict=True) if v is not None}


class Event(NamedTuple):
    """One entry of a job's event stream."""

    #: The stream entry id (``<ms>-<seq>``), the SSE ``id``.
    id: str
    #: ``"status"`` or ``"progress"``.
    kind: str
    #: The event's data: one line of JSON.
    data: str

    @property
    def terminal(self) -> bool:
        """Whether this is the status event of a final state (the last one)."""
        return self.kind == "status" and json.loads(self.data)["status"] in TERMINAL


def prediction_samples(predictions: Any) -> int:
    """How many samples predictions hold: a list, or (a graph model's
    several outputs) an object of lists by output name."""
    if isinstance(predictions, Mapping):
        return max((len(v) for v in predictions.values()), default=0)
    return len(predictions)


def model_chunks(data: bytes) -> list[memoryview]:
    """A model file cut in values of at most :data:`MODEL_CHUNK_BYTES` (one,
    empty, for an empty file)."""
    view = memoryview(data)
    count = max(1, -(-len(view) // MODEL_CHUNK_BYTES))
    return [view[n * MODEL_CHUNK_BYTES : (n + 1) * MODEL_CHUNK_BYTES] for n in range(count)]


def model_file_info(data: bytes, chunks: list[memoryview]) -> dict[str, Any]:
    """The record's ``model_file``: the file's size, its chunks, and its
    SHA-256 (hex), computed once here so that a worker predicting with a
    model it has loaded already never reads the file to hash it again."""
    return {"bytes": len(data), "chunks": len(chunks), "sha256": hashlib.sha256(data).hexdigest()}


class ModelGone(Exception):
    """A chunk of a model file expired or was deleted while it was read."""


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None: what JSON can
    carry (a metric may be NaN while the loss is not)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def outcome_members(fields: Mapping[str, Any]) -> str:
    """The members a final status event adds for a job's outcome fields:
    ``error`` (its type and message, no traceback) and ``final_metrics``;
    JSON members without braces, "" for none."""
    members: dict[str, Any] = {}
    error = fields.get("error")
    if error:
        members["error"] = {"type": error["type"], "message": error["message"]}
    result = fields.get("result")
    if result and "final_metrics" in result:
        members["final_metrics"] = finite(result["final_metrics"])
    return json.dumps(members, allow_nan=False)[1:-1]


#: What Redis answers when a write can never succeed as it is: out of
#: memory under ``maxmemory`` (``noeviction``), or a value over its limits.
TOO_LARGE = ("exceeds maximum allowed size", "invalid bulk length", "max-bulk-len")
FULL = ("OOM command not allowed",)


def permanent_error(error: BaseException) -> str | None:
    """``"StorageFull"`` or ``"ResultTooLarge"`` where Redis refused a write
    that retrying will not make succeed, else None (Redis unreachable, a
    timeout, a replica failing over: worth retrying)."""
    if not isinstance(error, redis.ResponseError):
        return None
    message = str(error)
    if isinstance(error, redis.exceptions.OutOfMemoryError) or any(m in message for m in FULL):
        return "StorageFull"
    if any(m in message for m in TOO_LARGE):
        return "ResultTooLarge"
    return None


class JobStore:
    """Reads and writes job records.

    Args:
        client: a ``redis.Redis`` with ``decode_responses=False``.
        ttl: seconds a job (record, data, model file, listing) is kept.
    """

    def __init__(self, client: redis.Redis, ttl: int) -> None:
        self.redis = client
        self.ttl = ttl
        #: The Lua scripts (jobs/lua/), by name: ``self.scripts.claim(keys=..., args=...)``.
        self.scripts = scripts.register(client, {"EVENTS_MAXLEN": EVENTS_MAXLEN})

    @classmethod
    def from_url(cls, url: str, ttl: int) -> JobStore:
        """A store on the Redis at ``url``."""
        client = redis.Redis.from_url(
            url,
            socket_timeout=settings.redis_timeout(),
            # Without it, a connect to a host cut off waits out the kernel's
            # SYN retries (about two minutes).
            socket_connect_timeout=settings.redis_connect_timeout(),
            health_check_interval=30,
        )
        return cls(client, ttl)

    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}"

    @staticmethod
    def data_key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}:data"

    @staticmethod
    def model_key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}:model"

    @staticmethod
    def model_chunk_key(job_id: str, n: int) -> str:
        """The key of chunk ``n`` of the model file (the first: :meth:`model_key`)."""
        return f"{PREFIX}:job:{job_id}:model" + (f":{n}" if n else "")

    @staticmethod
    def predictions_key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}:predictions"

    @staticmethod
    def lease_key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}:lease"

    @staticmethod
    def events_key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}:events"

    # -- the API side -------------------------------------------------------

    def create(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        data: Mapping[str, Any],
        tenant: str | None = None,
        *,
        listed: bool = True,
    ) -> dict[str, Any]:
        """Write a new queued job and its training data; returns the record.

        A job of a ``tenant`` records it and is listed in its index too;
        one not ``listed`` (a sweep's trial: its sweep lists it) in none.
        """
        return self.create_many([(job_id, fields, data)], tenant, listed=listed)[0]

    def create_many(
        self,
        jobs: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]],
        tenant: str | None = None,
        *,
        listed: bool = True,
    ) -> list[dict[str, Any]]:
        """:meth:`create` of each ``(job_id, fields, data)``, all in one
        step (MULTI/EXEC: all or none): a sweep's trials."""
        records, created = [], time.time()
        with self.redis.pipeline() as pipe:
            for job_id, fields, data in jobs:
                record = {"id": job_id, "status": "queued", "created_at": now(), **fields}
                if tenant is not None:
                    record["tenant"] = tenant
                key = self.key(job_id)
                queued = {"status": "queued", "at": record["created_at"]}
                pipe.hset(key, mapping={k: json.dumps(v) for k, v in record.items()})
                pipe.expire(key, self.ttl)
                pipe.set(self.data_key(job_id), json.dumps(data), ex=self.ttl)
                events = self.events_key(job_id)
                pipe.xadd(events, {"event": "status", "data": json.dumps(queued)},
                          maxlen=EVENTS_MAXLEN, approximate=True)  # fmt: skip
                pipe.expire(events, self.ttl)
                for index in _indexes(tenant) if listed else ():
                    pipe.zadd(index, {job_id: created})
                records.append(record)
            for index in _indexes(tenant) if listed else ():
                # Members older than a job's lifetime name expired jobs; and with
                # the TTL refreshed here an index outlives its newest job only.
                pipe.zremrangebyscore(index, "-inf", f"({created - self.ttl!r}")
                pipe.expire(index, self.ttl)
            pipe.execute()
        return records

    def delete(self, job_id: str, tenant: str | None = None) -> None:
        """Remove every trace of a job (used when queueing it failed)."""
        with self.redis.pipeline() as pipe:
            pipe.delete(self.key(job_id), self.data_key(job_id), self.model_key(job_id),
                        self.events_key(job_id), self.predictions_key(job_id))  # fmt: skip
            for index in _indexes(tenant):
                pipe.zrem(index, job_id)
            pipe.execute()

    def remove_finished(self, job_id: str, tenant: str | None = None) -> str | None:
        """Delete a finished job with its data, model, events and index
        entries (``tenant``: the record's).

        Returns the job's status (a live job is left as it is), or None if
        there is no such job.
        """
        indexes = _indexes(tenant)
        while True:
            # The script deletes only keys it is given (Redis Cluster's rule),
            # so the model file's chunks are counted here first; it deletes
            # nothing, answering 0, if model_file changed meanwhile.
            info = self.redis.hget(self.key(job_id), "model_file")
            chunks = int(json.loads(info).get("chunks") or 1) if info else 1
            keys = [self.key(job_id), self.data_key(job_id), self.model_key(job_id),
                    self.events_key(job_id), self.predictions_key(job_id), *indexes,
                    *(self.model_chunk_key(job_id, n) for n in range(1, chunks))]  # fmt: skip
            args = [job_id, len(indexes), info or b"", *TERMINAL]
            status = self.scripts.remove_finished(keys=keys, args=args)
            if status != 0:
                return status.decode() if status is not None else None

    def get(self, job_id: str, fields: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        """The job record (or some of its fields), None if there is none.

        The training data is not part of it (see :meth:`start`).
        """
        key = self.key(job_id)
        if fields is None:
            raw = self.redis.hgetall(key)
            if not raw:
                return None
            return {k.decode(): json.loads(v) for k, v in raw.items()}
        values = self.redis.hmget(key, ["status", *fields])
        if values[0] is None:
            return None
        return _decode(("status", *fields), values)

    def page(
        self,
        limit: int,
        after: tuple[float, str] | None,
        fields: tuple[str, ...],
        tenant: str | None = None,
        status: str | None = None,
    ) -> tuple[list[dict[str, Any]], tuple[float, str] | None]:
        """Jobs newest first: up to ``limit`` records (``status`` and
        ``fields``) strictly after the cursor ``after``, in (creation desc,
        id desc) order; and the cursor after the last of them, None if no
        more follow. Only ``tenant``'s jobs if given, else every job; only
        jobs of that ``status`` if given.

        A cursor is the (creation score, id) of a job, so jobs created
        meanwhile, being newer, neither repeat nor shift a page. Ids whose
        record expired are pruned from the index on the way. With a status
        the index is read past the jobs of other statuses, up to
        :data:`PAGE_SCAN` of them: then the page may be short (even empty)
        and its cursor is that of the last job read, so that the next page
        goes on from there, and none is skipped.
        """
        names, index = ("status", *fields), index_key(tenant)
        page: list[tuple[tuple[float, str], dict[str, Any]]] = []
        scanned = 0
        while len(page) <= limit:
            if status is not None and scanned >= PAGE_SCAN:
                return [record for _, record in page], after
            wanted = limit + 1 - len(page)
            # Filtered, read in larger batches: most entries may not match.
            count = wanted if status is None else max(wanted, min(PAGE_SCAN - scanned, 200))
            candidates = self._after(index, after, count)
            if not candidates:
                break
            scanned += len(candidates)
            with self.redis.pipeline(transaction=False) as pipe:
                for _, job_id in candidates:
                    pipe.hmget(self.key(job_id), names)
                found = list(zip(candidates, pipe.execute(), strict=True))
            gone = [job_id for (_, job_id), values in found if values[0] is None]
            if gone:
                self.redis.zrem(index, *gone)
            page += [
                (at, record)
                for at, values in found
                if values[0] is not None
                for record in [_decode(names, values)]
                if status is None or record["status"] == status
            ]
            after = candidates[-1]
        more = len(page) > limit
        return [record for _, record in page[:limit]], page[limit - 1][0] if more else None

    def _after(
        self, index: str, after: tuple[float, str] | None, count: int
    ) -> list[tuple[float, str]]:
        """Up to ``count`` (score, id) entries of ``index`` after a cursor."""
        if after is None:
            entries = self.redis.zrevrange(index, 0, count - 1, withscores=True)
            return [(score, m.decode()) for m, score in entries]
        score, last = after
        # Jobs created at the same instant (rare) are ordered by id; then
        # come the strictly older ones.
        tied = self.redis.zrevrangebyscore(index, score, score, withscores=True)
        older = self.redis.zrevrangebyscore(
            index, f"({score!r}", "-inf", start=0, num=count, withscores=True
        )
        entries = [(s, m.decode()) for m, s in tied if m.decode() < last]
        entries += [(s, m.decode()) for m, s in older]
        return entries[:count]

    def count(self, tenant: str | None = None) -> int:
        """How many jobs an index lists (``tenant``'s, or every job's)."""
        return int(self.redis.zcard(index_key(tenant)))

    def cancel(self, job_id: str) -> tuple[str, dict[str, Any]] | None:
        """Cancel a job: a queued one at once, a running one at its next epoch.

        Returns the outcome, ``"cancelled"`` (it was queued), ``"cancelling"``
        (it runs, with ``cancel_requested`` set) or ``"ended"`` (it had
        finished: nothing changed), with the record as the cancel left it,
        read in the same atomic step; None if there is no such job.
        """
        keys = [self.key(job_id), self.events_key(job_id)]
        answer = self.scripts.cancel(keys=keys, args=[json.dumps(now())])
        if answer is None:
            return None
        outcome, flat = answer
        record = {flat[i].decode(): json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}
        return outcome.decode(), record

    # -- events: what GET /jobs/<id>/events serves ----------------------------

    def events(
        self, job_id: str, after: str = "0", *, block_ms: int | None = None, count: int = 500
    ) -> list[Event]:
        """Up to ``count`` of the job's events strictly after the stream id
        ``after`` (``"0"``: from the first one kept), oldest first. With
        ``block_ms``, waits up to that long for one when none follows (the
        client's socket timeout must be longer); [] if none came."""
        reply = self.redis.xread({self.events_key(job_id): after}, count=count, block=block_ms)
        if not reply:
            return []
        [(_, entries)] = reply
        return [
            Event(entry_id.decode(), fields[b"event"].decode(), fields[b"data"].decode())
            for entry_id, fields in entries
        ]

    def has_events(self, job_id: str) -> bool:
        """Whether the job has an event stream (one made before streams
        existed has none)."""
        return bool(self.redis.exists(self.events_key(job_id)))

    def lost_after(self, job_id: str, after: str) -> tuple[str, str] | None:
        """Whether events after ``after`` were trimmed from the job's stream
        (it keeps about :data:`EVENTS_MAXLEN`): (the first kept id, the last
        one) if so, None if not (or if the job has no stream)."""
        try:
            info = self.redis.xinfo_stream(self.events_key(job_id))
        except redis.ResponseError:  # no such key: nothing kept, nothing trimmed
            return None
        first, last = info.get("first-entry"), info.get("last-entry")
        if first is None or last is None:
            return None
        first_id, last_id = first[0].decode(), last[0].decode()
        # Redis 7 counts the entries ever added: more than it holds, some were
        # trimmed (the oldest). Trimming does not say up to which id, so an
        # id older than the first kept one counts as having missed some.
        added = info.get("entries-added")
        trimmed = added is None or int(added) > int(info["length"])
        gone = (
            trimmed and after not in ("0", "0-0") and stream_order(after) < stream_order(first_id)
        )
        return (first_id, last_id) if gone else None

    # -- open event streams, per tenant: what GET /jobs/<id>/events counts ----

    @staticmethod
    def streams_key(tenant: str) -> str:
        return f"{PREFIX}:streams:{tenant}"

    def take_stream(
        self, tenant: str, member: str, lease_seconds: float, cap: int
    ) -> list[str] | None:
        """Take one of ``tenant``'s ``cap`` stream slots for ``member``, under a
        lease of ``lease_seconds`` (renew it with :meth:`renew_stream`);
        None if taken, else the members that hold every slot."""
        answer = self.scripts.take_stream(
            keys=[self.streams_key(tenant)],
            args=[member, max(1, int(lease_seconds * 1000)), cap],
        )
        if answer[0] == 1:
            return None
        return [m.decode() for m in answer[1]]

    def renew_stream(self, tenant: str, member: str, lease_seconds: float) -> None:
        """Renew the lease of an open stream's slot."""
        self.scripts.renew_stream(
            keys=[self.streams_key(tenant)], args=[member, max(1, int(lease_seconds * 1000))]
        )

    def release_stream(self, tenant: str, member: str) -> None:
        """Give a stream's slot back."""
        self.redis.zrem(self.streams_key(tenant), member)

    # -- predictions' replies: one list per request, kept a minute at most ---

    @staticmethod
    def reply_key(request_id: str) -> str:
        return f"{PREFIX}:reply:{request_id}"

    def put_reply(self, key: str, answer: Mapping[str, Any], ttl: int) -> None:
        """Hand ``answer`` to whoever waits on ``key`` (:meth:`wait_reply`);
        it expires after ``ttl`` seconds if no one takes it."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(answer))
            pipe.expire(key, ttl)
            pipe.execute()

    def wait_reply(self, key: str, timeout: float) -> dict[str, Any] | None:
        """The answer put on ``key``, taken (the key goes with it), waiting up
        to ``timeout`` seconds; None if none came."""
        raw = self.wait_reply_json(key, timeout)
        return json.loads(raw) if raw is not None else None

    def wait_reply_json(self, key: str, timeout: float) -> bytes | None:
        """:meth:`wait_reply`'s answer as the JSON it was put as, undecoded.
        Waits in short blocking reads, so that the client's socket timeout
        never cuts one."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            # BLPOP takes seconds with millisecond resolution; 0 would block forever.
            popped = self.redis.blpop([key], timeout=max(0.01, min(left, 5.0)))
            if popped is not None:
                return popped[1]  # type: ignore[no-any-return]
        return None

    # -- prediction requests: one list per queue, read by its predictors ----
    #
    # A worker's predictor process (worker/predictor.py) pops requests from its
    # queues' lists while its pool trains, and answers on each request's own
    # reply list (above). It says it is live by setting its queues' presence
    # keys every second with a short TTL: the API pushes a request only while
    # one is set, else it sends the Celery task (workers without predictors).

    @staticmethod
    def predict_key(queue: str) -> str:
        return f"{PREFIX}:predict:{queue}"

    @staticmethod
    def predictors_key(queue: str) -> str:
        return f"{PREFIX}:predictors:{queue}"

    def push_predict(self, queue: str, request: Mapping[str, Any], ttl: float) -> bool:
        """Hand ``request`` to a live predictor of ``queue``; False (nothing
        written) if none is live. The list expires ``ttl`` s after the last
        push, so requests no predictor takes do not outlive their waits long."""
        keys = [self.predictors_key(queue), self.predict_key(queue)]
        args = [json.dumps(request), max(1, int(ttl * 1000))]
        return bool(self.scripts.push_predict(keys=keys, args=args))

    def ask_predict(
        self, queue: str, job_id: str, request: Mapping[str, Any], ttl: float, wait: float
    ) -> tuple[int, bytes | None]:
        """:meth:`push_predict` of ``request`` (its ``reply_key`` named) if
        the job's record still says it succeeded, and the first ``wait``
        seconds (at least 10 ms) of the wait for its answer, in one round
        trip: the script and a ``BLPOP`` on the reply list sent together.

        Returns (1, the answer as put, undecoded, or None if none came yet)
        where pushed; (0, None) where no predictor of ``queue`` is live and
        (-1, None) where the job is gone or not succeeded: nothing pushed
        then (the script put an empty reply, which the ``BLPOP`` took).
        """
        reply_key = request["reply_key"]
        keys = [self.predictors_key(queue), self.predict_key(queue), self.key(job_id), reply_key]
        ttl_ms = max(1, int(ttl * 1000))
        # EVAL with the text, not EVALSHA: a NOSCRIPT (Redis restarted) would
        # leave the BLPOP behind it waiting for a reply that never comes.
        script = self.scripts.push_predict.script
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.eval(script, len(keys), *keys, json.dumps(request), ttl_ms, ttl_ms)
            pipe.blpop([reply_key], timeout=max(0.01, wait))
            pushed, popped = pipe.execute()
        pushed = int(pushed)
        if pushed != 1:
            return pushed, None
        return 1, None if popped is None else popped[1]

    def take_predict(self, queues: list[str], timeout: float) -> dict[str, Any] | None:
        """The oldest request of any of ``queues``, waiting up to ``timeout``
        seconds (at least 10 ms); None if none came."""
        popped = self.redis.blpop([self.predict_key(q) for q in queues], timeout=max(0.01, timeout))
        return None if popped is None else json.loads(popped[1])

    def announce_predictor(self, queues: list[str], name: str, ttl: float) -> None:
        """Say that a predictor serving ``queues`` is live for ``ttl`` seconds."""
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.set(self.predictors_key(queue), name, px=max(1, int(ttl * 1000)))
            pipe.execute()

    # -- the worker side ----------------------------------------------------

    def start(self, job_id: str, worker: str) -> dict[str, Any] | None:
        """Move a queued job to running; None if it was cancelled or is gone.

        Returns the whole record, its ``request`` with the training ``data``.
        Workers use :meth:`claim`: a job started here holds no lease, and
        the first reaper that sees it settles it as lost.
        """
        started = self.scripts.transition(
            keys=[self.key(job_id), self.events_key(job_id)],
            args=["queued", "running", "started_at", json.dumps(now()), "",
                  "worker", json.dumps(worker)],
        )  # fmt: skip
        if not started:
            return None
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.key(job_id))
            pipe.get(self.data_key(job_id))
            raw, data = pipe.execute()
        job = {k.decode(): json.loads(v) for k, v in raw.items()}
        if data is not None:  # a job queued before the data had a key of its own has it inline
            job["request"]["data"] = json.loads(data)
        return job

    def update(self, job_id: str, **fields: Any) -> bool:
        """Set fields of a live (queued or running) job (``progress``: an event too)."""
        args = [x for k, v in fields.items() for x in (k, json.dumps(v))]
        keys = [self.key(job_id), self.events_key(job_id)]
        return bool(self.scripts.update_live(keys=keys, args=args))

    def cancel_requested(self, job_id: str) -> bool:
        return self.redis.hget(self.key(job_id), "cancel_requested") is not None

    def finish(self, job_id: str, status: str, **fields: Any) -> bool:
        """Move a running job to a final status with its results."""
        if status not in TERMINAL:
            raise ValueError(f"not a final status: {status}")
        args = ["running", status, "finished_at", json.dumps(now()), outcome_members(fields)]
        args += [x for k, v in fields.items() for x in (k, json.dumps(v))]
        keys = [self.key(job_id), self.events_key(job_id)]
        return bool(self.scripts.transition(keys=keys, args=args))

    def put_model(self, job_id: str, data: bytes) -> bool:
        """Keep the trained ``.keras`` file for the job's remaining lifetime,
        in chunks; False (and nothing more stored) if the job's record is gone."""
        chunks = self._put_later_chunks(job_id, "", data)
        if chunks is None:
            return False
        info = json.dumps(model_file_info(data, chunks))
        keys = [self.key(job_id), self.model_key(job_id)]
        return bool(self.scripts.put_model(keys=keys, args=[chunks[0], info]))

    def _put_later_chunks(self, job_id: str, token: str, data: bytes) -> list[memoryview] | None:
        """Store every chunk of a model file but the first (which the caller
        stores with the record, in one step); its chunks, or None if the job
        is gone (or, given a lease ``token``, no longer held by it).

        :raise redis.ResponseError: where Redis refuses a chunk (out of memory).
        """
        chunks = model_chunks(data)
        for n, chunk in enumerate(chunks[1:], start=1):
            keys = [self.key(job_id), self.model_chunk_key(job_id, n)]
            if not self.scripts.put_model_chunk(keys=keys, args=[token, chunk]):
                return None
        return chunks

    def model_file(self, job_id: str) -> dict[str, Any] | None:
        """The stored model file's ``bytes``, ``chunks`` and ``sha256`` (not
        in a record from before digests), None if there is none (a record
        from before chunks: its one value's length)."""
        info = self.redis.hget(self.key(job_id), "model_file")
        if info is not None:
            return json.loads(info)  # type: ignore[no-any-return]
        size = int(self.redis.strlen(self.model_key(job_id)))
        if not size and not self.redis.exists(self.model_key(job_id)):
            return None
        return {"bytes": size, "chunks": 1}

    def model_file_complete(self, job_id: str, info: Mapping[str, int]) -> bool:
        """Whether every chunk of the model file ``info`` describes is there."""
        keys = [self.model_chunk_key(job_id, n) for n in range(info["chunks"])]
        return int(self.redis.exists(*keys)) == len(keys)

    def iter_model(self, job_id: str, info: Mapping[str, int]) -> Iterator[bytes]:
        """The model file's chunks, read one at a time (a download streams them).

        :raise ModelGone: if a chunk expired or was deleted meanwhile.
        """
        for n in range(info["chunks"]):
            chunk = self.redis.get(self.model_chunk_key(job_id, n))
            if chunk is None:
                raise ModelGone(job_id)
            yield bytes(chunk)

    def get_model(self, job_id: str) -> bytes | None:
        """The whole model file, None if there is none (or a chunk is gone)."""
        info = self.model_file(job_id)
        if info is None:
            return None
        try:
            return b"".join(self.iter_model(job_id, info))
        except ModelGone:
            return None

    def drop_results(self, job_id: str, chunks: int) -> None:
        """Delete the model file's ``chunks`` and the predictions a worker
        stored before its final write failed for good (DEL frees memory
        even when Redis refuses writes for lack of it)."""
        keys = [self.model_chunk_key(job_id, n) for n in range(max(chunks, 1))]
        self.redis.delete(*keys, self.predictions_key(job_id))

    def get_predictions(self, job_id: str) -> list[Any] | None:
        """The predictions on the training inputs stored apart, None if none are."""
        value = self.get_predictions_json(job_id)
        return json.loads(value) if value is not None else None

    def get_predictions_json(self, job_id: str) -> bytes | None:
        """Those predictions as the JSON they are stored as, undecoded."""
        value = self.redis.get(self.predictions_key(job_id))
        return value  # type: ignore[no-any-return]

    # -- leases: the worker side --------------------------------------------
    #
    # A running job belongs to the holder of its lease token. A worker claims
    # a queued job with a fresh token; the record keeps the token
    # (``lease_token``) and the key ``<job>:lease`` holds it with a TTL that
    # the worker keeps renewing. Every write of a worker names its token and
    # is a no-op once the record holds another (the job was given back and
    # claimed again) or none: a worker that was merely slow cannot touch a
    # re-run.

    def claim(
        self, job_id: str, worker: str, queue: str, lease_seconds: float
    ) -> tuple[str, dict[str, Any]] | None:
        """Move a queued job to running under a fresh lease.

        Returns the lease token, which every later write must name, and the
        whole record with its training data (its ``attempt``: 1 on a first
        run); None if the job is not queued (cancelled, gone, or already
        claimed: a duplicate delivery of its task).
        """
        token = uuid.uuid4().hex
        keys = [self.key(job_id), self.lease_key(job_id), RUNNING, REQUEUE,
                self.events_key(job_id)]  # fmt: skip
        args = [job_id, token, int(lease_seconds * 1000), json.dumps(now()),
                json.dumps(worker), json.dumps(queue), time.time()]  # fmt: skip
        if not self.scripts.claim(keys=keys, args=args):
            return None
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.key(job_id))
            pipe.get(self.data_key(job_id))
            raw, data = pipe.execute()
        job = {k.decode(): json.loads(v) for k, v in raw.items()}
        if data is not None:
            job["request"]["data"] = json.loads(data)
        return token, job

    def renew(self, job_id: str, token: str, lease_seconds: float) -> bool:
        """Extend the lease; False once the job is no longer ours (given back,
        ended, cancelled by a reaper, deleted)."""
        keys = [self.key(job_id), self.lease_key(job_id)]
        return bool(self.scripts.renew(keys=keys, args=[token, int(lease_seconds * 1000)]))

    def update_leased(self, job_id: str, token: str, **fields: Any) -> bool:
        """Set fields (progress: an event too) of the job while it runs under ``token``."""
        args = [token, *(x for k, v in fields.items() for x in (k, json.dumps(v)))]
        keys = [self.key(job_id), self.events_key(job_id)]
        return bool(self.scripts.update_leased(keys=keys, args=args))

    def finish_leased(
        self, job_id: str, token: str, status: str, model: bytes | None = None, **fields: Any
    ) -> bool:
        """End the job running under ``token`` with its outcome and model
        file, in one step (a file of several chunks: all but the first
        stored just before); False (nothing written) if it is not ours.

        :raise redis.ResponseError: where Redis refuses a write (out of
            memory, a value over its size limit): see :func:`permanent_error`.
        """
        if status not in TERMINAL:
            raise ValueError(f"not a final status: {status}")
        first: bytes | memoryview | None = None
        if model is not None:
            # The chunks after the first go before the step that ends the
            # job, which stores the first with the record that counts them.
            chunks = self._put_later_chunks(job_id, token, model)
            if chunks is None:
                return False
            first = chunks[0]
            fields = {**fields, "model_file": model_file_info(model, chunks)}
        keys = [self.key(job_id), self.lease_key(job_id), self.model_key(job_id), RUNNING,
                self.events_key(job_id)]  # fmt: skip
        args: list[Any] = [job_id, token, status, json.dumps(now())]
        args += ["1", first] if first is not None else ["0", ""]
        args.append(outcome_members(fields))
        args += [x for k, v in fields.items() for x in (k, json.dumps(v))]
        return bool(self.scripts.finish_leased(keys=keys, args=args))

    def put_predictions_leased(self, job_id: str, token: str, predictions: list[Any]) -> bool:
        """Store the predictions on the training inputs apart from the record
        (for its remaining lifetime) while the job runs under ``token``;
        False (nothing written) if it is not ours."""
        keys = [self.key(job_id), self.predictions_key(job_id)]
        data = json.dumps(finite(predictions), allow_nan=False)
        return bool(self.scripts.put_predictions(keys=keys, args=[token, data]))

    # -- leases: the reaper side ----------------------------------------------

    def running_ids(self) -> list[str]:
        """The jobs that were running at their last state change."""
        return [m.decode() for m in self.redis.zrange(RUNNING, 0, -1)]

    def leases_alive(self, job_ids: list[str]) -> list[bool]:
        """Whether each job's lease is held now (one round trip)."""
        if not job_ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(self.lease_key(job_id))
            return [bool(n) for n in pipe.execute()]

    def reap(
        self,
        job_id: str,
        retries: int,
        *,
        worker: str = "",
        reason: str,
        error: Mapping[str, str] | None = None,
    ) -> str:
        """Settle a running job whose worker is gone: fail it with ``error``
        if given, else cancel it (a cancel was asked for), queue it again
        (while ``attempt <= retries``; ``requeue_reason`` ``"worker_lost"``
        in the record and its ``queued`` event) or fail it with
        ``WorkerLost``. Acts only if its lease has expired, or, given a
        ``worker``, at once if that worker holds it. Atomic: of any number
        of reapers, one acts.
        Returns ``"alive"``, ``"gone"``, ``"not_running"``, ``"cancelled"``,
        ``"requeued"`` or ``"failed"``.
        """
        keys = [self.key(job_id), self.lease_key(job_id), RUNNING, REQUEUE,
                self.events_key(job_id)]  # fmt: skip
        failed = json.dumps(dict(error)) if error is not None else ""
        args = [job_id, retries, json.dumps(now()), time.time(), worker, reason, failed]
        return bytes(self.scripts.reap(keys=keys, args=args)).decode()

    def requeue_pending(self, older_than: float) -> list[str]:
        """Jobs given back to the queue ``older_than`` seconds ago or more
        whose task was not seen published (their reaper died meanwhile)."""
        members = self.redis.zrangebyscore(REQUEUE, "-inf", time.time() - older_than)
        return [m.decode() for m in members]

    def requeue_published(self, job_id: str) -> None:
        """The task of a job given back is in the queue."""
        self.redis.zrem(REQUEUE, job_id)
