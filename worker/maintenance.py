"""The worker's main process keeps the fleet honest, from a thread of its own.

Every ``SEQLAB_HEARTBEAT_SECONDS`` it says the worker is alive (for
``GET /readyz``, :mod:`jobs.presence`), and every ``SEQLAB_REAPER_SECONDS``
it sweeps for running jobs whose lease has expired (:mod:`jobs.reaper`),
so that the job of a dead worker is settled even when no one reads it. The
main process never trains, so this thread runs whatever the jobs do. It
starts once the worker is ready and stops with it; no Keras here.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from celery.signals import worker_ready
from celery.signals import worker_shutdown

from jobs import presence
from jobs import settings
from jobs.presence import worker_name
from jobs.reaper import Reaper
from jobs.reaper import default_reaper
from jobs.reaper import send_train_task
from jobs.store import JobStore

from .backend import backend_name
from .device import device

logger = logging.getLogger(__name__)

_state: dict[str, Any] = {}


def node_reaper() -> tuple[Reaper, str] | None:
    """This worker's reaper and its name as job records give it, in a
    worker's main process once ready; None elsewhere."""
    if "reaper" not in _state:
        return None
    return _state["reaper"], _state["worker"]


class Maintenance:
    """The heartbeat and the reaper's sweeps of one worker node."""

    def __init__(self, node: str, worker: str, queues: list[str], app: Any) -> None:
        self.node, self.queues = node, queues
        # A store of its own: the pool's children must not share its connections.
        self.store = JobStore.from_url(settings.redis_url(), settings.job_ttl())
        self.reaper = default_reaper(
            self.store, lambda job_id, queue, limit: send_train_task(app, job_id, queue, limit)
        )
        self.worker = worker
        # Published with each heartbeat: the API refuses what it cannot train.
        self.backend = backend_name()
        # And its device's memory: the API routes jobs by it.
        self.device = device()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seqlab-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and say this worker has left."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            presence.leave(self.store.redis, self.node)
        except redis.RedisError as error:
            logger.warning("could not say this worker left (%s); its heartbeat expires", error)

    def _run(self) -> None:
        beat_every, sweep_every = settings.heartbeat_seconds(), settings.reaper_interval()
        next_sweep = time.monotonic()
        while True:
            try:
                presence.beat(
                    self.store.redis, self.node, self.queues, 3 * beat_every, self.backend,
                    self.device,
                )  # fmt: skip
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + sweep_every
                    self.reaper.sweep(pending_after=max(30.0, 3 * sweep_every))
            except redis.RedisError as error:
                logger.warning("heartbeat or sweep skipped: Redis unreachable (%s)", error)
            except Exception:  # noqa: BLE001 (the thread must outlive any one failure)
                logger.exception("heartbeat or sweep failed")
            if self._stop.wait(min(beat_every, sweep_every)):
                return


@worker_ready.connect
def _start(sender: Any = None, **_: Any) -> None:
    """The worker is consuming: start its heartbeat and sweeps."""

    node = sender.hostname
    queues = sorted(queue.name for queue in sender.task_consumer.queues)
    maintenance = Maintenance(node, worker_name(node), queues, sender.app)
    _state.update(maintenance=maintenance, reaper=maintenance.reaper, worker=maintenance.worker)
    maintenance.start()


@worker_shutdown.connect
def _stop(**_: Any) -> None:
    maintenance = _state.pop("maintenance", None)
    _state.clear()
    if maintenance is not None:
        maintenance.stop()
