"""The Celery application: ``celery -A worker.celery_app worker``.

Redis is broker and result store (``REDIS_URL``), JSON the only serializer.
Training tasks go to one named queue (``SEQLAB_QUEUE``, default ``gpu``),
which a bare ``celery -A worker.celery_app worker`` serves by itself; a CPU
host can serve another queue with ``-Q``. Nothing here imports TensorFlow or
Keras: the pool's child processes import them inside the task, and the
predictor (:mod:`worker.serving`) is a process of its own.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery

from jobs import settings

celery_app = Celery("seqlab", include=["worker.tasks", "worker.maintenance", "worker.serving"])
celery_app.conf.update(
    broker_url=settings.redis_url(),
    result_backend=settings.redis_url(),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # The queue a plain `celery worker` consumes, and where train tasks go.
    task_default_queue=settings.queue(),
    # Each worker's predictor (worker/serving.py) answers predictions while
    # its pool trains. The task is for APIs from before predictors and for a
    # queue with no live predictor: it shares the training queue, so a
    # worker busy training takes it once its job ends (the API gives up
    # after SEQLAB_PREDICT_TIMEOUT).
    task_routes={
        "seqlab.train": {"queue": settings.queue()},
        "seqlab.train_group": {"queue": settings.queue()},
        "seqlab.predict": {"queue": settings.queue()},
    },
    # Our own job records hold the results; Celery's are for its bookkeeping.
    result_expires=settings.job_ttl(),
    task_track_started=True,
    # One long task at a time per process: fetch the next only when free,
    # so an idle GPU host is not left waiting behind a busy one.
    worker_prefetch_multiplier=1,
    worker_disable_prefetch=True,
    # Early acknowledgement: a message leaves Redis as its task starts, so
    # Redis never hands a running job to a second worker, however long it
    # runs. A job whose worker dies is not lost with its message: its lease
    # lapses and a reaper queues it again (jobs/reaper.py). Late
    # acknowledgement would add redeliveries after `visibility_timeout`
    # (duplicates that the lease would have to turn away) and nothing else.
    task_acks_late=False,
    # Messages taken but not yet started (none, with prefetch disabled) are
    # handed back only after longer than any job may run.
    broker_transport_options={"visibility_timeout": settings.visibility_timeout()},
    result_backend_transport_options={"visibility_timeout": settings.visibility_timeout()},
    visibility_timeout=settings.visibility_timeout(),
    broker_connection_retry_on_startup=True,
    # One process per GPU by default; more with --concurrency on CPU hosts.
    worker_concurrency=int(os.environ.get("SEQLAB_WORKER_CONCURRENCY", "1")),
)


#: Tasks whose return value is a tenant's data: their success is logged
#: without it.
QUIET_RESULTS = frozenset({"seqlab.predict"})
#: What the log shows in the place of such a return value.
NOT_LOGGED = "<not logged>"


class QuietResults(logging.Filter):
    """Keep tenants' predictions out of the worker's (shared) logs.

    Celery's tracer logs every task's success at INFO with its return value
    (``Task seqlab.predict[<id>] succeeded in 0.02s: {'predictions': ...}``,
    celery.app.trace ``LOG_SUCCESS``) and has no setting to leave it out for
    one task (``resultrepr_maxsize`` only shortens it). The record's
    arguments are the tracer's context mapping: this filter blanks its
    ``return_value`` (and arguments) for :data:`QUIET_RESULTS` and lets the
    line through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = getattr(record, "data", None)
        if (
            isinstance(context, dict)
            and context.get("name") in QUIET_RESULTS
            and "return_value" in context
        ):
            # Its arguments (the instances) too, for handlers that read them.
            quiet: dict[str, Any] = {
                **context,
                **dict.fromkeys(("return_value", "args", "kwargs"), NOT_LOGGED),
            }
            record.args, record.data = quiet, quiet  # type: ignore[attr-defined]
        return True


# The tracer's own logger; pool processes forked from this one keep the filter.
logging.getLogger("celery.app.trace").addFilter(QuietResults())
