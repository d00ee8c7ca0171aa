"""Job records in Redis, shared by the API (writes, reads, cancels) and the
worker (progress, results). Imports redis only: no Celery, no Keras.

A job is one Redis hash, ``seqlab:job:<id>``, whose fields are JSON values,
plus its membership in the sorted set ``seqlab:jobs`` (score: creation time)
for listing, and, once trained, ``seqlab:job:<id>:model`` (the ``.keras``
file). Every key of a job carries the job's TTL. State changes that depend
on the current state run in Lua, so a cancel and a worker starting the job
cannot both win.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any

import redis

PREFIX = "seqlab"
INDEX = f"{PREFIX}:jobs"
TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("queued", "running", *TERMINAL)

# KEYS[1] = job hash. ARGV = expected status, new status, then field/value
# pairs to set. Returns 1 if the job was in the expected status.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current or cjson.decode(current) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', cjson.encode(ARGV[2]))
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

# Set fields only while the job exists and is not finished (progress from a
# worker must not resurrect an expired job or overwrite a final state).
_UPDATE_LIVE = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return 0 end
local status = cjson.decode(current)
if status ~= 'queued' and status ~= 'running' then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


def now() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id() -> str:
    """A fresh job id; also the Celery task id."""
    return uuid.uuid4().hex


class JobStore:
    """Reads and writes job records.

    Args:
        client: a ``redis.Redis`` with ``decode_responses=False``.
        ttl: seconds a job (record, listing, model file) is kept.
    """

    def __init__(self, client: redis.Redis, ttl: int) -> None:
        self.redis = client
        self.ttl = ttl
        self._transition = client.register_script(_TRANSITION)
        self._update_live = client.register_script(_UPDATE_LIVE)

    @classmethod
    def from_url(cls, url: str, ttl: int) -> JobStore:
        """A store on the Redis at ``url``."""
        return cls(redis.Redis.from_url(url, socket_timeout=10, health_check_interval=30), ttl)

    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}"

    @staticmethod
    def model_key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}:model"

    # -- the API side -------------------------------------------------------

    def create(self, job_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Write a new queued job; returns the record."""
        record = {"id": job_id, "status": "queued", "created_at": now(), **fields}
        key = self.key(job_id)
        with self.redis.pipeline() as pipe:  # MULTI/EXEC: all or nothing
            pipe.hset(key, mapping={k: json.dumps(v) for k, v in record.items()})
            pipe.expire(key, self.ttl)
            pipe.zadd(INDEX, {job_id: time.time()})
            pipe.execute()
        return record

    def delete(self, job_id: str) -> None:
        """Remove every trace of a job (used when queueing it failed)."""
        with self.redis.pipeline() as pipe:
            pipe.delete(self.key(job_id), self.model_key(job_id))
            pipe.zrem(INDEX, job_id)
            pipe.execute()

    def get(self, job_id: str, fields: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        """The job record (or some of its fields), None if there is none."""
        key = self.key(job_id)
        if fields is None:
            raw = self.redis.hgetall(key)
            if not raw:
                return None
            return {k.decode(): json.loads(v) for k, v in raw.items()}
        values = self.redis.hmget(key, ["status", *fields])
        if values[0] is None:
            return None
        return {
            name: json.loads(v)
            for name, v in zip(("status", *fields), values, strict=True)
            if v is not None
        }

    def list_ids(self, offset: int, limit: int) -> list[str]:
        """Job ids, newest first; ids whose record expired are pruned."""
        ids = [i.decode() for i in self.redis.zrevrange(INDEX, offset, offset + limit - 1)]
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.exists(self.key(job_id))
            alive = pipe.execute()
        gone = [i for i, ok in zip(ids, alive, strict=True) if not ok]
        if gone:
            self.redis.zrem(INDEX, *gone)
        return [i for i, ok in zip(ids, alive, strict=True) if ok]

    def count(self) -> int:
        return int(self.redis.zcard(INDEX))

    def cancel(self, job_id: str) -> str | None:
        """Cancel a job: a queued one at once, a running one at its next epoch.

        Returns the status after the request ("cancelled", or "running"
        with ``cancel_requested`` set), or None if the job is finished or
        unknown (the caller tells those apart with :meth:`get`).
        """
        key = self.key(job_id)
        if self._transition(
            keys=[key],
            args=["queued", "cancelled", "finished_at", json.dumps(now())],
        ):
            return "cancelled"
        if self._update_live(keys=[key], args=["cancel_requested", "true"]):
            status = self.get(job_id, ())
            return status["status"] if status else None
        return None

    # -- the worker side ----------------------------------------------------

    def start(self, job_id: str, worker: str) -> dict[str, Any] | None:
        """Move a queued job to running; None if it was cancelled or is gone."""
        started = self._transition(
            keys=[self.key(job_id)],
            args=["queued", "running", "started_at", json.dumps(now()),
                  "worker", json.dumps(worker)],
        )  # fmt: skip
        return self.get(job_id) if started else None

    def update(self, job_id: str, **fields: Any) -> bool:
        """Set fields of a live (queued or running) job."""
        args = [x for k, v in fields.items() for x in (k, json.dumps(v))]
        return bool(self._update_live(keys=[self.key(job_id)], args=args))

    def cancel_requested(self, job_id: str) -> bool:
        return self.redis.hget(self.key(job_id), "cancel_requested") is not None

    def finish(self, job_id: str, status: str, **fields: Any) -> bool:
        """Move a running job to a final status with its results."""
        if status not in TERMINAL:
            raise ValueError(f"not a final status: {status}")
        args = ["running", status, "finished_at", json.dumps(now())]
        args += [x for k, v in fields.items() for x in (k, json.dumps(v))]
        return bool(self._transition(keys=[self.key(job_id)], args=args))

    def put_model(self, job_id: str, data: bytes) -> None:
        """Keep the trained ``.keras`` file for the job's lifetime."""
        ttl = self.redis.ttl(self.key(job_id))
        self.redis.set(self.model_key(job_id), data, ex=ttl if ttl and ttl > 0 else self.ttl)

    def get_model(self, job_id: str) -> bytes | None:
        value = self.redis.get(self.model_key(job_id))
        return bytes(value) if value is not None else None
