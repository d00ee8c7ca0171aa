"""Celery tasks: thin wrappers that move a job through its states.

The work itself is in :mod:`worker.training`, imported inside the task so
that only the pool's child processes ever load Keras.
"""

from __future__ import annotations

import os
import socket
import threading
import traceback
from functools import cache
from typing import Any

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

    try:
        result, model_file = training.train(
            job["request"],
            expected_params=job["params"]["total_params"],
            on_progress=lambda progress: jobs.update(job_id, progress=progress),
            should_stop=lambda: jobs.cancel_requested(job_id),
        )
    except training.Cancelled as stop:
        result, model_file = stop.args
        jobs.put_model(job_id, model_file)
        jobs.finish(job_id, "cancelled", result=result)
    except training.TrainingFailed as error:
        jobs.finish(job_id, "failed", error={"type": "TrainingFailed", "message": str(error)})
    except Exception as error:  # noqa: BLE001 (any failure must end the job)
        logger.exception("job %s failed", job_id)
        jobs.finish(
            job_id,
            "failed",
            error={
                "type": type(error).__name__,
                "message": str(error) or type(error).__name__,
                "traceback": traceback.format_exc(limit=-8),
            },
        )
    else:
        jobs.put_model(job_id, model_file)
        jobs.finish(job_id, "succeeded", result=result)


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
        error={"type": type(exception).__name__, "message": str(exception)},
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
