"""Uploaded datasets in Redis, shared by the API (writes, reads, deletes)
and the worker (reads the arrays of a dataset job). Imports redis and
numpy only.

A dataset is the hash ``seqlab:dataset:<id>`` (JSON fields: ``id``,
``created_at``, ``tenant`` when keys are on, ``arrays``: per array its
``shape``, ``dtype``, ``bytes`` and ``chunks``, and ``bytes`` in all); each
array's raw little-endian C-order bytes in chunks of :data:`CHUNK_BYTES`
under ``seqlab:dataset:<id>:<name>:<n>`` (Redis serves other clients
between chunks, where one 64 MiB value would block it); and its membership
in the sorted set ``seqlab:datasets`` or its tenant's
``seqlab:tenant:<name>:datasets`` (score: creation time). Every key carries
the dataset's TTL. The chunks are written first and the record last, so a
dataset is visible only once whole.

An upload holds a slot of its tenant's ``SEQLAB_MAX_DATASETS`` before its
body is read (:meth:`DatasetStore.reserve`): a token in the sorted set
``seqlab:dataset-uploads`` or ``seqlab:tenant:<name>:dataset-uploads``
(score: when the hold lapses), counted with the stored datasets in one Lua
script, so that concurrent uploads cannot all pass the count. Storing the
dataset turns the hold into its index entry in one transaction; a refused
upload releases it; one whose process dies leaves it to lapse after
:data:`HOLD_SECONDS`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from . import scripts
from .store import PREFIX
from .store import now
from .sweeps import SweepStore

#: The arrays an upload may hold: training inputs and targets, and
#: optionally validation ones.
ARRAY_NAMES = ("x", "y", "x_val", "y_val")
#: Bytes per Redis value of an array.
CHUNK_BYTES = 4 * 1024 * 1024

#: Seconds an upload holds its slot at most: longer than any upload takes
#: (64 MiB at 1 Mbit/s is 9 minutes), short enough that the hold of an API
#: process that died mid-upload frees the slot the same hour.
HOLD_SECONDS = 900.0

DATASET_ID = re.compile(r"ds_[0-9a-f]{32}")


def new_dataset_id() -> str:
    """A fresh dataset id (``ds_`` and 32 hex digits: never a job's)."""
    return f"ds_{uuid.uuid4().hex}"


def is_dataset_id(value: str) -> bool:
    """Whether ``value`` has the form of a dataset id."""
    return DATASET_ID.fullmatch(value) is not None


def index_key(tenant: str | None) -> str:
    """The sorted set that lists a tenant's datasets (the open API's for None)."""
    return f"{PREFIX}:datasets" if tenant is None else f"{PREFIX}:tenant:{tenant}:datasets"


def uploads_key(tenant: str | None) -> str:
    """The sorted set of a tenant's uploads under way (their slot holds)."""
    if tenant is None:
        return f"{PREFIX}:dataset-uploads"
    return f"{PREFIX}:tenant:{tenant}:dataset-uploads"


class DatasetGone(Exception):
    """A job's dataset was deleted or expired before the worker read it."""


class DatasetStore:
    """Reads and writes datasets.

    Args:
        client: a ``redis.Redis`` with ``decode_responses=False``.
        ttl: seconds a dataset is kept.
        hold_seconds: seconds an upload's slot is held at most.
    """

    def __init__(self, client: redis.Redis, ttl: int, hold_seconds: float = HOLD_SECONDS) -> None:
        self.redis = client
        self.ttl = ttl
        self.hold_seconds = hold_seconds
        self.scripts = scripts.register(client, names=("reserve_dataset",))

    @staticmethod
    def key(dataset_id: str) -> str:
        return f"{PREFIX}:dataset:{dataset_id}"

    @staticmethod
    def chunk_key(dataset_id: str, name: str, n: int) -> str:
        return f"{PREFIX}:dataset:{dataset_id}:{name}:{n}"

    def reserve(self, tenant: str | None, limit: int) -> str | None:
        """Hold one of ``tenant``'s ``limit`` dataset slots for an upload;
        returns the hold's token, None if its datasets and uploads under
        way already take them all. Pass the token to :meth:`create`, or to
        :meth:`release` if the upload is refused."""
        token = uuid.uuid4().hex
        clock = time.time()
        held = self.scripts.reserve_dataset(
            keys=[index_key(tenant), uploads_key(tenant)],
            args=[repr(clock), repr(clock - self.ttl), limit, token, repr(self.hold_seconds)],
        )
        return token if held else None

    def release(self, tenant: str | None, hold: str) -> None:
        """Give back the slot an upload held (a refused or failed upload)."""
        self.redis.zrem(uploads_key(tenant), hold)

    def create(
        self, arrays: Mapping[str, Any], tenant: str | None, hold: str | None = None
    ) -> dict[str, Any]:
        """Store validated numpy ``arrays`` by name; returns the record. The
        slot ``hold`` (from :meth:`reserve`) becomes the dataset's, in the
        same transaction that lists it.

        :raise redis.RedisError: with nothing left behind (the hold kept).
        """
        import numpy as np

        dataset_id = new_dataset_id()
        described: dict[str, Any] = {}
        written: list[str] = []
        try:
            for name, array in arrays.items():
                little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
                raw = memoryview(little.reshape(-1).view(np.uint8))
                chunks = max(1, -(-len(raw) // CHUNK_BYTES))
                for n in range(chunks):
                    key = self.chunk_key(dataset_id, name, n)
                    written.append(key)
                    self.redis.set(key, raw[n * CHUNK_BYTES : (n + 1) * CHUNK_BYTES], ex=self.ttl)
                described[name] = {
                    "shape": list(array.shape),
                    "dtype": array.dtype.name,
                    "bytes": len(raw),
                    "chunks": chunks,
                }
            record = {
                "id": dataset_id,
                "created_at": now(),
                "arrays": described,
                "bytes": sum(a["bytes"] for a in described.values()),
            }
            if tenant is not None:
                record["tenant"] = tenant
            created = time.time()
            with self.redis.pipeline() as pipe:
                pipe.hset(
                    self.key(dataset_id), mapping={k: json.dumps(v) for k, v in record.items()}
                )
                pipe.expire(self.key(dataset_id), self.ttl)
                index = index_key(tenant)
                pipe.zadd(index, {dataset_id: created})
                pipe.expire(index, self.ttl)
                if hold is not None:
                    pipe.zrem(uploads_key(tenant), hold)
                pipe.execute()
        except BaseException:
            if written:
                self.redis.delete(*written)
            raise
        return record

    def get(self, dataset_id: str) -> dict[str, Any] | None:
        """The record, None if there is none (ids of another form included)."""
        if not is_dataset_id(dataset_id):
            return None
        raw = self.redis.hgetall(self.key(dataset_id))
        if not raw:
            return None
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def page(self, tenant: str | None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` datasets of ``tenant``, newest first."""
        index = index_key(tenant)
        self.redis.zremrangebyscore(index, "-inf", f"({time.time() - self.ttl!r}")
        ids = [i.decode() for i in self.redis.zrevrange(index, 0, limit - 1)]
        records = [self.get(i) for i in ids]
        return [r for r in records if r is not None]

    def delete(self, record: Mapping[str, Any]) -> bool:
        """Remove a dataset; False if it was already gone (a concurrent delete)."""
        dataset_id = record["id"]
        keys = [
            self.chunk_key(dataset_id, name, n)
            for name, array in record["arrays"].items()
            for n in range(array["chunks"])
        ]
        with self.redis.pipeline() as pipe:
            pipe.delete(self.key(dataset_id))
            pipe.delete(*keys)
            pipe.zrem(index_key(record.get("tenant")), dataset_id)
            removed, *_ = pipe.execute()
        return bool(removed)

    def load(self, dataset_id: str, names: tuple[str, ...]) -> dict[str, Any]:
        """The numpy arrays ``names`` of a dataset.

        :raise DatasetGone: if the dataset (or a chunk of it) no longer exists.
        """
        import numpy as np

        record = self.get(dataset_id)
        if record is None:
            raise DatasetGone(dataset_id)
        arrays = {}
        for name in names:
            meta = record["arrays"][name]
            keys = [self.chunk_key(dataset_id, name, n) for n in range(meta["chunks"])]
            parts = [self.redis.get(key) for key in keys]
            if any(part is None for part in parts):
                raise DatasetGone(dataset_id)
            dtype = np.dtype(meta["dtype"]).newbyteorder("<")
            buffer = b"".join(parts)  # type: ignore[arg-type]
            arrays[name] = np.frombuffer(buffer, dtype=dtype).reshape(meta["shape"])
        return arrays


def resolve(data: Mapping[str, Any], datasets: DatasetStore) -> dict[str, Any]:
    """A job's stored data with its datasets' arrays loaded: ``x`` and ``y``
    (inline lists or arrays) and ``validation``, an ``(x, y)`` pair or absent.

    :raise DatasetGone: if a dataset was deleted or expired meanwhile.
    """
    resolved: dict[str, Any] = {}
    if "sweep" in data:  # a sweep's trial: the data its trials share (jobs/sweeps.py)
        raw = datasets.redis.get(SweepStore.data_key(data["sweep"]))
        if raw is None:
            raise DatasetGone(f"the data of sweep {data['sweep']}")
        data = {**json.loads(raw), **{k: v for k, v in data.items() if k != "sweep"}}
    if "dataset" in data:
        arrays = datasets.load(data["dataset"], ("x", "y"))
        resolved["x"], resolved["y"] = arrays["x"], arrays["y"]
    else:
        resolved["x"], resolved["y"] = data["x"], data["y"]
    if "validation" in data:
        ref = data["validation"]
        arrays = datasets.load(ref["dataset"], (ref["x"], ref["y"]))
        resolved["validation"] = (arrays[ref["x"]], arrays[ref["y"]])
    return resolved
