"""Sweep records in Redis.

A sweep is a document written once (its trials, their jobs, its groups),
the training data its trials share (stored once, however many trials), and
an entry in its tenant's index. Its trials are ordinary job records
(:class:`~jobs.store.JobStore`), not listed among the tenant's jobs, whose
data names the sweep's (``{"sweep": id}``, :func:`shared_data`); their
status and results are the sweep's live state, read with the sweep.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from .store import PREFIX
from .store import JobStore
from .store import is_job_id

#: The field of a trial job's record naming its sweep and trial number.
TRIAL_FIELD = "sweep"


def new_sweep_id() -> str:
    """A fresh sweep id (the form of a job id: 32 lowercase hex digits)."""
    return uuid.uuid4().hex


def is_sweep_id(value: str) -> bool:
    """Whether ``value`` has the form of a sweep id."""
    return is_job_id(value)


class SweepStore:
    """Reads and writes sweeps, beside the job store of their trials.

    Args:
        jobs: the job store (its Redis and time to live are the sweeps').
    """

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs
        self.redis: redis.Redis = jobs.redis
        self.ttl = jobs.ttl

    @staticmethod
    def key(sweep_id: str) -> str:
        return f"{PREFIX}:sweep:{sweep_id}"

    @staticmethod
    def data_key(sweep_id: str) -> str:
        return f"{PREFIX}:sweep:{sweep_id}:data"

    @staticmethod
    def index_key(tenant: str | None) -> str:
        return f"{PREFIX}:sweeps" if tenant is None else f"{PREFIX}:tenant:{tenant}:sweeps"

    def create(
        self, document: Mapping[str, Any], data: Mapping[str, Any] | None, tenant: str | None
    ) -> None:
        """Write a sweep's document and its shared data (None: its trials
        read datasets), and list it in its tenant's index."""
        sweep_id, created = document["id"], time.time()
        index = self.index_key(tenant)
        with self.redis.pipeline() as pipe:  # MULTI/EXEC: all or nothing
            pipe.set(self.key(sweep_id), json.dumps({**document, "tenant": tenant}), ex=self.ttl)
            if data is not None:
                pipe.set(self.data_key(sweep_id), json.dumps(data), ex=self.ttl)
            pipe.zadd(index, {sweep_id: created})
            pipe.zremrangebyscore(index, "-inf", f"({created - self.ttl!r}")
            pipe.expire(index, self.ttl)
            pipe.execute()

    def get(self, sweep_id: str) -> dict[str, Any] | None:
        """The sweep's document (with its ``tenant``), None if there is none."""
        raw = self.redis.get(self.key(sweep_id))
        return None if raw is None else json.loads(raw)

    def ids(self, tenant: str | None, limit: int) -> list[str]:
        """The ids of ``tenant``'s newest sweeps, newest first (those whose
        document expired are pruned on the way)."""
        index = self.index_key(tenant)
        ids = [m.decode() for m in self.redis.zrevrange(index, 0, limit - 1)]
        with self.redis.pipeline(transaction=False) as pipe:
            for sweep_id in ids:
                pipe.exists(self.key(sweep_id))
            alive = pipe.execute()
        gone = [i for i, there in zip(ids, alive, strict=True) if not there]
        if gone:
            self.redis.zrem(index, *gone)
        return [i for i, there in zip(ids, alive, strict=True) if there]

    def trials(self, document: Mapping[str, Any], fields: tuple[str, ...]) -> list[dict[str, Any]]:
        """The ``status`` and ``fields`` of each trial's job, in trial order
        (``{"status": "expired"}`` for a job that is gone), in one round trip."""
        names = ("status", *fields)
        with self.redis.pipeline(transaction=False) as pipe:
            for trial in document["trials"]:
                pipe.hmget(self.jobs.key(trial["job"]), names)
            rows = pipe.execute()
        records = []
        for values in rows:
            if values[0] is None:
                records.append({"status": "expired"})
            else:
                records.append(
                    {n: json.loads(v) for n, v in zip(names, values, strict=True) if v is not None}
                )
        return records

    def load_data(self, sweep_id: str) -> dict[str, Any] | None:
        """A sweep's shared data (``x``, ``y``), None once it is gone."""
        raw = self.redis.get(self.data_key(sweep_id))
        return None if raw is None else json.loads(raw)

    def delete(self, sweep_id: str, tenant: str | None) -> None:
        """Remove the sweep's document, data and index entry (its trials'
        jobs are removed by the caller, each once it has ended)."""
        with self.redis.pipeline() as pipe:
            pipe.delete(self.key(sweep_id), self.data_key(sweep_id))
            pipe.zrem(self.index_key(tenant), sweep_id)
            pipe.execute()


def shared_data(sweep_id: str) -> dict[str, str]:
    """What a trial job stores as its data: the name of its sweep's."""
    return {"sweep": sweep_id}
