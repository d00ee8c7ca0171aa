"""The Celery application: ``celery -A worker.celery_app worker``.

Redis is the result store (``REDIS_URL``) and, unless ``SEQLAB_BROKER_URL``
names RabbitMQ, the broker; JSON is the only serializer. Training tasks go
to the queue that the API chose by the job's size (``gpu`` or ``cpu``), or
to ``SEQLAB_QUEUE`` where that pins one; a bare ``celery -A
worker.celery_app worker`` serves both (:func:`jobs.settings.worker_queues`),
a CPU host ``-Q cpu``. Nothing here imports TensorFlow or
Keras: the pool's child processes import them inside the task, and the
predictor (:mod:`worker.serving`) is a process of its own.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.worker.consumer import Consumer
from kombu import Queue

from jobs import settings

BROKER_URL = settings.broker_url()
#: The queues of a worker started without ``-Q``; on RabbitMQ, quorum queues.
QUEUE_ARGUMENTS = {"x-queue-type": "quorum"} if settings.is_amqp(BROKER_URL) else None


class JobConsumer(Consumer):
    """Celery's consumer without native delayed delivery.

    On quorum queues Celery sets it up at every (re)connection: some thirty
    exchange and queue declarations, each a round trip, during which the
    consumer sends no heartbeats; over a 200 ms link that is a minute, and
    RabbitMQ closes the connection for missed heartbeats first. No seqlab
    task is delayed (no ETA, no countdown: a lost job is queued again at
    once), so nothing uses it.
    """

    class Blueprint(Consumer.Blueprint):
        default_steps = [
            step
            for step in Consumer.Blueprint.default_steps
            if not step.endswith(":DelayedDelivery")
        ]


celery_app = Celery("seqlab", include=["worker.tasks", "worker.maintenance", "worker.serving"])
celery_app.conf.update(
    broker_url=BROKER_URL,
    result_backend=settings.redis_url(),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # The queues a plain `celery worker` consumes; tasks name their queue.
    task_default_queue=settings.queue(),
    task_queues=[Queue(name, queue_arguments=QUEUE_ARGUMENTS) for name in settings.worker_queues()],
    # Each worker's predictor (worker/serving.py) answers predictions while
    # its pool trains. The task is for APIs from before predictors and for a
    # queue with no live predictor: it shares the training queue, so a
    # worker busy training takes it once its job ends (the API gives up
    # after SEQLAB_PREDICT_TIMEOUT).
    task_routes={"seqlab.predict": {"queue": settings.queue()}},
    # Our own job records hold the results; Celery's are for its bookkeeping.
    result_expires=settings.job_ttl(),
    task_track_started=True,
    # One long task at a time per process: fetch the next only when free,
    # so an idle GPU host is not left waiting behind a busy one. On Redis
    # the transport's prefetch is off; on RabbitMQ, which has no such
    # switch, acknowledgement is late instead (jobs/settings.py,
    # broker_options: when each broker acknowledges, and why).
    worker_prefetch_multiplier=1,
    worker_disable_prefetch=True,
    result_backend_transport_options={"visibility_timeout": settings.visibility_timeout()},
    visibility_timeout=settings.visibility_timeout(),
    broker_connection_retry_on_startup=True,
    worker_consumer="worker.celery_app:JobConsumer",
    # One process per GPU by default; more with --concurrency on CPU hosts.
    worker_concurrency=int(os.environ.get("SEQLAB_WORKER_CONCURRENCY", "1")),
    # Queue types, publisher confirms (RabbitMQ) or the visibility timeout
    # (Redis): jobs/settings.py, shared with the API's producer.
    **settings.broker_options(BROKER_URL),
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
