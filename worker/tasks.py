"""Celery tasks: thin wrappers that move a job through its states.

The work itself is in :mod:`worker.training`, imported inside the task so
that only the pool's child processes ever load Keras.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import traceback
from functools import cache
from typing import Any

import redis
from celery import shared_task
from celery.signals import task_failure
from celery.signals import worker_process_init
from celery.utils.log import get_task_logger

from . import settings
from .store import JobStore

logger = get_task_logger(__name__)


@cache
def store() -> JobStore:
    """The job store of this process (one Redis connection pool)."""
    return JobStore.from_url(settings.redis_url(), settings.job_ttl())


@shared_task(name="seqlab.train", bind=True, ignore_result=True)
def train_model(self: Any, job_id: str) -> None:
    """Train the job's model and store the outcome in its record."""
    jobs = store()
    worker = f"{socket.gethostname()}:{self.request.hostname or ''}"
    job = jobs.start(job_id, worker)
    if job is None:
        logger.info("job %s was cancelled or has expired; not starting it", job_id)
        return
    from . import training  # Keras loads here, in the child process

    report = Reporter(jobs, job_id)
    try:
        result, model_file = training.train(
            job["request"],
            expected=job["params"],
            on_progress=report.progress,
            should_stop=report.cancel_requested,
        )
    except training.Cancelled as stop:
        result, model_file = stop.args
        report.final("cancelled", model_file, result=result)
    except training.TrainingFailed as error:
        report.final("failed", error=failure("TrainingFailed", str(error)))
    except Exception as error:  # noqa: BLE001 (any failure must end the job)
        logger.exception("job %s failed", job_id)
        report.final(
            "failed",
            error=failure(type(error).__name__, str(error), traceback.format_exc(limit=-8)),
        )
    else:
        report.final("succeeded", model_file, result=result)


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def failure(kind: str, message: str, trace: str | None = None) -> dict[str, str]:
    """A job's ``error`` field: plain text, without the terminal colour codes
    that Keras's and rich's messages may carry."""
    error = {"type": kind, "message": _ANSI.sub("", message) or kind}
    if trace is not None:
        error["traceback"] = _ANSI.sub("", trace)
    return error


class Reporter:
    """Writes a running job's progress and outcome, riding out Redis blips.

    Progress and cancel checks are best effort: a failed write is retried
    once and then dropped (the next one comes within a second), a failed
    cancel check reads as "not cancelled". The final write is retried with
    backoff for ``SEQLAB_FINAL_WRITE_SECONDS``; if Redis stays away past that,
    the job is left as it is for the reaper (a lost worker's job).
    """

    def __init__(self, jobs: JobStore, job_id: str) -> None:
        self.jobs = jobs
        self.job_id = job_id

    def progress(self, progress: dict[str, Any]) -> None:
        for attempt in range(2):
            try:
                self.jobs.update(self.job_id, progress=progress)
                return
            except redis.RedisError as error:
                if attempt:
                    logger.warning("job %s: progress dropped (%s)", self.job_id, error)
                else:
                    time.sleep(0.05)

    def cancel_requested(self) -> bool:
        try:
            return self.jobs.cancel_requested(self.job_id)
        except redis.RedisError as error:
            logger.warning("job %s: cancel check skipped (%s)", self.job_id, error)
            return False

    def final(self, status: str, model_file: bytes | None = None, **fields: Any) -> None:
        """Store the model (if any) and the final status, retrying."""
        deadline = time.monotonic() + settings.final_write_seconds()
        delay = 0.1
        while True:
            try:
                if model_file is not None:
                    self.jobs.put_model(self.job_id, model_file)
                self.jobs.finish(self.job_id, status, **fields)
                return
            except redis.RedisError as error:
                if time.monotonic() + delay > deadline:
                    logger.error(
                        "job %s: could not store its outcome (%s) for %ss; giving up",
                        self.job_id, status, settings.final_write_seconds(),
                    )  # fmt: skip
                    raise
                logger.warning("job %s: storing outcome failed (%s); retrying", self.job_id, error)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


@task_failure.connect
def _mark_lost(sender: Any = None, task_id: str | None = None, exception: Any = None,
               **_: Any) -> None:  # fmt: skip
    """A child process that died mid-task (killed, out of memory) never
    reached the handlers above; the main process hears of it here."""
    if getattr(sender, "name", None) != "seqlab.train" or task_id is None:
        return
    store().finish(
        task_id,
        "failed",
        error=failure(type(exception).__name__, str(exception)),
    )


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Each pool process loads Keras in the background as soon as it starts
    (the handler itself must return within seconds), so jobs find it warm."""
    if os.environ.get("SEQLAB_WARM_UP", "1") == "0":
        return

    def run() -> None:
        from . import training

        try:
            training.warm_up()
        except Exception:  # noqa: BLE001 (a failed warm-up only costs time)
            logger.exception("warm-up failed")

    threading.Thread(target=run, name="seqlab-warm-up", daemon=True).start()
