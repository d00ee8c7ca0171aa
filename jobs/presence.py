"""Which workers are alive and how many jobs wait: for ``GET /readyz``.

A Celery broadcast ping is no use here: a worker's pool is busy for as long
as a job trains. Instead each worker's main process refreshes a heartbeat
key (``seqlab:worker:<node>``, with the queues it serves) every
``SEQLAB_HEARTBEAT_SECONDS`` with a TTL of three times that, and lists its
node in the set ``seqlab:workers``; a worker counts as alive while its key
lives, so one that vanishes without a word drops out within the TTL.
Imports redis only.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

import redis

from .store import PREFIX

WORKERS = f"{PREFIX}:workers"

#: Kombu's Redis transport keeps a queue's messages in one list per priority
#: step: the queue's own name for priority 0 (the default), then the name,
#: this separator and the step (``kombu.transport.redis.Channel._q_for_pri``).
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)


def worker_name(node: str | None) -> str:
    """How a job record names the worker that runs it: host and Celery node."""
    return f"{socket.gethostname()}:{node or ''}"


def worker_key(node: str) -> str:
    return f"{PREFIX}:worker:{node}"


def beat(
    client: redis.Redis,
    node: str,
    queues: Iterable[str],
    ttl: float,
    backend: str | None = None,
    device: Mapping[str, Any] | None = None,
) -> None:
    """Say that worker ``node``, serving ``queues`` with Keras's ``backend``,
    is alive for ``ttl`` seconds; ``device``: its ``{"device": "gpu"|"cpu",
    "memory_bytes": n}``, by which jobs are routed (:mod:`jobs.routing`)."""
    value = json.dumps(
        {"node": node, "host": socket.gethostname(), "pid": os.getpid(),
         "queues": sorted(queues), "backend": backend, **(device or {}), "at": time.time()}
    )  # fmt: skip
    with client.pipeline(transaction=False) as pipe:
        pipe.set(worker_key(node), value, px=int(ttl * 1000))
        pipe.sadd(WORKERS, node)
        pipe.execute()


def leave(client: redis.Redis, node: str) -> None:
    """Say that worker ``node`` has stopped."""
    with client.pipeline(transaction=False) as pipe:
        pipe.delete(worker_key(node))
        pipe.srem(WORKERS, node)
        pipe.execute()


def live_records(client: redis.Redis, queue: str | None = None) -> list[dict]:
    """The heartbeat records of the live workers serving ``queue`` (of all
    live workers, None); forgets the dead ones."""
    nodes = sorted(m.decode() for m in client.smembers(WORKERS))
    if not nodes:
        return []
    values = client.mget([worker_key(node) for node in nodes])
    dead = [node for node, value in zip(nodes, values, strict=True) if value is None]
    if dead:
        client.srem(WORKERS, *dead)
    records = [json.loads(value) for value in values if value is not None]
    return [record for record in records if queue is None or queue in record["queues"]]


def backends_of(records: Iterable[Mapping[str, Any]], queue: str) -> set[str] | None:
    """The Keras backends of the workers in ``records`` serving ``queue``;
    None when none does (or none says: a worker from before backends were
    published)."""
    backends = {r.get("backend") for r in records if queue in r["queues"]} - {None}
    return backends or None


def live_backends(client: redis.Redis, queue: str) -> set[str] | None:
    """The Keras backends of the live workers serving ``queue`` (:func:`backends_of`)."""
    return backends_of(live_records(client), queue)


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold ``queue``'s messages, one per priority step."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting in ``queue`` (not those a worker has taken)."""
    with client.pipeline(transaction=False) as pipe:
        for key in queue_keys(queue):
            pipe.llen(key)
        return sum(pipe.execute())
