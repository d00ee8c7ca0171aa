"""Settle the jobs of lost workers: give them back to the queue, or fail them.

A running job holds a lease that its worker renews (:mod:`worker.tasks`); a
job whose lease has expired has lost its worker (killed, out of memory, its
host gone). A :class:`Reaper` then queues it again, at most
``SEQLAB_JOB_RETRIES`` times, or ends it ``failed`` with ``WorkerLost``
(``cancelled`` if a cancel was asked for). The transition is one Lua step in
the store, so of the reapers that race (the API's, on reads; every worker's,
in sweeps) one acts; the task of a job given back is then published again.

The API uses it with its Celery producer, each worker's main process with
the worker's app: no Keras, no Celery import here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import settings
from .store import JobStore

logger = logging.getLogger(__name__)

#: Why a job whose lease expired is settled, for its error message.
LEASE_EXPIRED = "it stopped renewing the job's lease"

#: ``publish(job_id, queue, requested_time_limit)``: put the job's task in the queue.
Publish = Callable[[str, str, Any], None]


def send_train_task(celery: Any, job_id: str, queue: str, time_limit: int | None) -> None:
    """Queue the training task of a job with Celery's time limits for it
    (the task id is the job id); the API and the reapers all send it so."""
    celery.send_task(
        "seqlab.train",
        args=[job_id],
        task_id=job_id,
        queue=queue,
        **settings.celery_time_limits(time_limit),
    )


def send_group_task(celery: Any, job_ids: list[str], queue: str, time_limit: int | None) -> str:
    """Queue the task that trains a sweep's trials of one structure together
    (``seqlab.train_group``), with one job's time limits: the group runs
    within them (worker/tasks.py). Returns the task's id."""
    task_id = f"group-{job_ids[0]}"
    celery.send_task(
        "seqlab.train_group",
        args=[job_ids],
        task_id=task_id,
        queue=queue,
        **settings.celery_time_limits(time_limit),
    )
    return task_id


class Reaper:
    """Finds and settles running jobs whose worker is gone.

    Args:
        store: the job store.
        publish: sends a job's task to a queue (see :data:`Publish`).
        retries: how many times a lost job is queued again.
        queue: the queue of a job whose record names none.
    """

    def __init__(self, store: JobStore, publish: Publish, retries: int, queue: str) -> None:
        self.store = store
        self.publish = publish
        self.retries = retries
        self.queue = queue

    def settle(self, job: dict[str, Any]) -> dict[str, Any]:
        """A job record as it stands once settled: a running job whose lease
        has expired is settled first and read again. One Redis read for a
        running job with a live lease, none for any other."""
        if job["status"] != "running" or self.store.leases_alive([job["id"]])[0]:
            return job
        self.reap(job["id"])
        return self.store.get(job["id"]) or job

    def settle_page(
        self, records: list[dict[str, Any]], fields: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        """:meth:`settle` for a page of records (``status`` and ``fields``,
        which include ``id``): one round trip for all the running ones."""
        running = [i for i, record in enumerate(records) if record["status"] == "running"]
        alive = self.store.leases_alive([records[i]["id"] for i in running])
        settled = list(records)
        for i, held in zip(running, alive, strict=True):
            if not held:
                self.reap(records[i]["id"])
                settled[i] = self.store.get(records[i]["id"], fields) or records[i]
        return settled

    def reap(
        self,
        job_id: str,
        *,
        worker: str = "",
        reason: str = LEASE_EXPIRED,
        error: dict[str, str] | None = None,
    ) -> str:
        """Settle one job if its worker is gone (see :meth:`JobStore.reap`);
        publish its task again if it was given back. Returns the outcome."""
        outcome = self.store.reap(job_id, self.retries, worker=worker, reason=reason, error=error)
        if outcome not in ("alive", "gone", "not_running"):
            logger.warning("job %s: its worker was lost (%s); %s", job_id, reason, outcome)
        if outcome == "requeued":
            self.republish(job_id)
        return outcome

    def republish(self, job_id: str) -> None:
        """Publish the task of a job given back to the queue. A failure is
        logged: the job stays pending and a later sweep publishes it."""
        job = self.store.get(job_id, ("queue", "request"))
        try:
            if job is not None and job["status"] == "queued":
                limit = job["request"]["fit"].get("time_limit_seconds")
                self.publish(job_id, job.get("queue") or self.queue, limit)
            self.store.requeue_published(job_id)
        except Exception:  # noqa: BLE001 (a sweep retries; the caller must not fail)
            logger.exception("job %s: could not queue it again; a later sweep will", job_id)

    def sweep(self, pending_after: float = 30.0) -> dict[str, str]:
        """Settle every running job whose lease has expired, and publish the
        tasks of jobs given back more than ``pending_after`` seconds ago
        whose reaper did not (it died in between). Returns the outcomes."""
        ids = self.store.running_ids()
        outcomes = {
            job_id: self.reap(job_id)
            for job_id, held in zip(ids, self.store.leases_alive(ids), strict=True)
            if not held
        }
        for job_id in self.store.requeue_pending(pending_after):
            self.republish(job_id)
        return outcomes


def default_reaper(store: JobStore, publish: Publish) -> Reaper:
    """A reaper with the retries and queue of the environment's settings."""
    return Reaper(store, publish, settings.job_retries(), settings.queue())
